//! Bit-level reading and writing of H.264/HEVC NAL unit payloads (RBSP):
//! emulation prevention removed and put back, fixed-width and Exp-Golomb
//! fields, and rewriting a few header fields while the rest is copied.

/// The NAL unit's payload with emulation prevention bytes removed
/// (`00 00 03` → `00 00`).
pub(super) fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Emulation prevention put back: a `03` after two zero bytes whenever
/// the next byte is 0-3.
pub(super) fn escape(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 4);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    // A payload ending in a zero byte (cabac_zero_words) gets a final 03.
    if out.last() == Some(&0) {
        out.push(3);
    }
    out
}

/// Reads bits, most significant first; `None` past the end.
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    pub pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Self { data, pos }
    }

    pub fn bit(&mut self) -> Option<u32> {
        let byte = self.data.get(self.pos / 8)?;
        let v = u32::from((byte >> (7 - self.pos % 8)) & 1);
        self.pos += 1;
        Some(v)
    }

    pub fn flag(&mut self) -> Option<bool> {
        self.bit().map(|b| b == 1)
    }

    pub fn u(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        if self.pos + n > self.data.len() * 8 {
            return None;
        }
        self.pos += n;
        Some(())
    }

    pub fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.u(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    pub fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let magnitude = k.div_ceil(2) as i32;
        Some(if k % 2 == 1 { magnitude } else { -magnitude })
    }

    /// Where the RBSP's stop bit is (the last set bit): the payload ends
    /// there.
    pub fn stop_bit(&self) -> Option<usize> {
        let last = self.data.iter().rposition(|&b| b != 0)?;
        let trailing = self.data[last].trailing_zeros() as usize;
        Some(last * 8 + 7 - trailing)
    }
}

/// Writes bits, most significant first.
#[derive(Default)]
pub(super) struct BitWriter {
    out: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    pub fn put(&mut self, n: u32, value: u32) {
        for i in (0..n).rev() {
            if self.bits.is_multiple_of(8) {
                self.out.push(0);
            }
            if (value >> i) & 1 == 1 {
                let last = self.out.len() - 1;
                self.out[last] |= 1 << (7 - self.bits % 8);
            }
            self.bits += 1;
        }
    }

    pub fn put_ue(&mut self, value: u32) {
        let v = u64::from(value) + 1;
        let len = 64 - v.leading_zeros();
        self.put(len - 1, 0);
        for i in (0..len).rev() {
            self.put(1, ((v >> i) & 1) as u32);
        }
    }

    /// Copies bits `[from, to)` of `data`.
    pub fn copy(&mut self, data: &[u8], from: usize, to: usize) {
        let mut r = BitReader::new(data, from);
        // Whole bytes at a time once both sides are aligned.
        while r.pos < to {
            if self.bits.is_multiple_of(8) && r.pos.is_multiple_of(8) && to - r.pos >= 8 {
                let n = (to - r.pos) / 8;
                self.out.extend_from_slice(&data[r.pos / 8..r.pos / 8 + n]);
                self.bits += n * 8;
                r.pos += n * 8;
                continue;
            }
            let b = r.bit().unwrap_or(0);
            self.put(1, b);
        }
    }

    pub fn is_aligned(&self) -> bool {
        self.bits.is_multiple_of(8)
    }

    /// `rbsp_trailing_bits` / `byte_alignment`: a one, then zeros to the
    /// byte boundary.
    pub fn align_with_one(&mut self) {
        self.put(1, 1);
        while !self.bits.is_multiple_of(8) {
            self.put(1, 0);
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_round_trips() {
        let mut w = BitWriter::default();
        for v in [0, 1, 2, 3, 7, 8, 255, 70_000] {
            w.put_ue(v);
        }
        w.put(3, 5);
        w.align_with_one();
        let bytes = w.into_bytes();
        let mut r = BitReader::new(&bytes, 0);
        for v in [0, 1, 2, 3, 7, 8, 255, 70_000] {
            assert_eq!(r.ue(), Some(v));
        }
        assert_eq!(r.u(3), Some(5));
        assert_eq!(r.stop_bit(), Some(r.pos));
    }

    #[test]
    fn emulation_prevention_round_trips() {
        let rbsp = [0x40, 0, 0, 1, 0, 0, 0, 0, 0, 3, 0, 0, 2, 0xff];
        let nal = escape(&rbsp);
        assert!(!nal.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2));
        assert_eq!(unescape(&nal), rbsp);
    }
}

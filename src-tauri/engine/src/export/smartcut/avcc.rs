//! H.264 parameter sets as MP4 keeps them (`avcC`, ISO 14496-15) and as an
//! encoder writes them (Annex B): just enough parsing to add the re-encoded
//! head's sets beside the source's.

/// Reads an unsigned Exp-Golomb value (enough for ids at the start of an
/// SPS/PPS, where emulation prevention bytes cannot occur yet).
fn read_ue(data: &[u8], bit: &mut usize) -> Option<u32> {
    let get =
        |b: usize| -> Option<u32> { data.get(b / 8).map(|v| u32::from((v >> (7 - b % 8)) & 1)) };
    let mut zeros = 0;
    while get(*bit)? == 0 {
        zeros += 1;
        *bit += 1;
        if zeros > 31 {
            return None;
        }
    }
    *bit += 1;
    let mut v = 0u32;
    for _ in 0..zeros {
        v = (v << 1) | get(*bit)?;
        *bit += 1;
    }
    Some((1u32 << zeros) - 1 + v)
}

pub(super) fn sps_id(sps: &[u8]) -> Option<u32> {
    let mut bit = 8 * 4; // NAL header, profile, constraints, level
    read_ue(sps, &mut bit)
}

pub(super) fn pps_id(pps: &[u8]) -> Option<u32> {
    let mut bit = 8; // NAL header
    read_ue(pps, &mut bit)
}

/// A parsed `avcC` (ISO 14496-15).
pub(super) struct Avcc {
    pub profile: u8,
    pub compat: u8,
    pub level: u8,
    pub length_size: usize,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
    /// Bytes after the PPS list (High-profile chroma/bit-depth fields).
    pub tail: Vec<u8>,
}

pub(super) fn parse_avcc(d: &[u8]) -> Option<Avcc> {
    if d.len() < 7 || d[0] != 1 {
        return None;
    }
    let length_size = usize::from(d[4] & 3) + 1;
    let mut i = 5;
    let read_list = |count: usize, i: &mut usize| -> Option<Vec<Vec<u8>>> {
        let mut v = Vec::new();
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([*d.get(*i)?, *d.get(*i + 1)?]));
            *i += 2;
            v.push(d.get(*i..*i + len)?.to_vec());
            *i += len;
        }
        Some(v)
    };
    let n_sps = usize::from(d[i] & 0x1f);
    i += 1;
    let sps = read_list(n_sps, &mut i)?;
    let n_pps = usize::from(*d.get(i)?);
    i += 1;
    let pps = read_list(n_pps, &mut i)?;
    Some(Avcc {
        profile: d[1],
        compat: d[2],
        level: d[3],
        length_size,
        sps,
        pps,
        tail: d[i..].to_vec(),
    })
}

pub(super) fn write_avcc(a: &Avcc) -> Vec<u8> {
    let mut out = vec![
        1,
        a.profile,
        a.compat,
        a.level,
        0xfc | (a.length_size as u8 - 1),
        0xe0 | a.sps.len() as u8,
    ];
    for s in &a.sps {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s);
    }
    out.push(a.pps.len() as u8);
    for p in &a.pps {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(p);
    }
    out.extend_from_slice(&a.tail);
    out
}

/// NAL units of an Annex B byte stream.
pub(super) fn annexb_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut e = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        // A 4-byte start code leaves one zero byte behind.
        while e > s && data[e - 1] == 0 {
            e -= 1;
        }
        if e > s {
            nals.push(&data[s..e]);
        }
    }
    nals
}

//! Encoding a long output in two pieces on two threads: where to cut it
//! ([`split_plan`]) and where to splice the two encoders' packets so that
//! the AAC windows still overlap-add cleanly ([`choose_splice`]).

/// Window sequence and shape of the first channel of an AAC raw data block
/// (ISO 14496-3 `ics_info`), `None` if it does not start with a channel
/// element. Used to splice two encoders' outputs where their windows agree.
pub(crate) fn aac_window(block: &[u8]) -> Option<(u8, u8)> {
    let mut r = Bits {
        data: block,
        pos: 0,
    };
    let id = r.take(3)?;
    r.take(4)?; // element_instance_tag
    match id {
        0 | 3 => {
            // SCE / LFE: global_gain, then ics_info.
            r.take(8)?;
        }
        1 => {
            // CPE: common_window; with it ics_info comes first, without it
            // the first channel's global_gain precedes its ics_info.
            if r.take(1)? == 0 {
                r.take(8)?;
            }
        }
        _ => return None,
    }
    r.take(1)?; // ics_reserved_bit
    let seq = r.take(2)? as u8;
    let shape = r.take(1)? as u8;
    Some((seq, shape))
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            let bit = (byte >> (7 - (self.pos % 8))) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Some(v)
    }
}

/// AAC frame length of FFmpeg's encoder.
pub const AAC_FRAME: usize = 1024;

/// How the output is cut into pieces encoded in parallel: piece A covers
/// `[0, a_end)`, piece B `[b_start, total)`, and the splice is chosen in
/// `[lo, hi]` (all multiples of the AAC frame, so both encoders share the
/// frame grid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitPlan {
    pub a_end: usize,
    pub b_start: usize,
    pub lo: usize,
    pub hi: usize,
    pub mid: usize,
}

/// Splits outputs long enough to gain from a second encoder thread.
pub fn split_plan(total: usize, sample_rate: u32) -> Option<SplitPlan> {
    if total < 20 * sample_rate as usize {
        return None;
    }
    let f = AAC_FRAME;
    let mid = total / 2 / f * f;
    // ±40 frames (~1 s) to find matching windows, 48 more frames of warm-up
    // and run-out so both encoders' psychoacoustic state has settled there.
    let (choose, settle) = (40 * f, 48 * f);
    Some(SplitPlan {
        a_end: mid + choose + settle,
        b_start: mid - choose - settle,
        lo: mid - choose,
        hi: mid + choose,
        mid,
    })
}

/// Picks the splice frame: the one nearest the middle where piece A's and
/// piece B's preceding block were coded with the same window (sequence and
/// shape), so the overlap-add across the splice still cancels aliasing.
/// `a` and `b` map packet pts to their window.
pub fn choose_splice(
    plan: &SplitPlan,
    a: &std::collections::BTreeMap<i64, Option<(u8, u8)>>,
    b: &std::collections::BTreeMap<i64, Option<(u8, u8)>>,
) -> usize {
    let f = AAC_FRAME;
    let mut candidates: Vec<usize> = (plan.lo..=plan.hi).step_by(f).collect();
    candidates.sort_by_key(|&s| s.abs_diff(plan.mid));
    for s in candidates {
        let prev = (s - f) as i64;
        let (Some(Some(wa)), Some(Some(wb))) = (a.get(&prev), b.get(&prev)) else {
            continue;
        };
        if wa == wb && b.contains_key(&(s as i64)) && a.contains_key(&prev) {
            return s;
        }
    }
    plan.mid
}

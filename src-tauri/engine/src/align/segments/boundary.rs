//! Where one play gives way to the next, to the audio frame: short GCC-PHAT
//! windows of the recording against the song as each of the two lines reads
//! it; the cut is the change point between "the first line explains the
//! recording" and "the second one does".

use crate::align::fine::Line;
use crate::dsp::gcc::GccPhat;

/// Recording window of the boundary search (samples at the analysis rate).
const WIN: usize = 1024;
/// Spacing of the windows (samples): the resolution of the cut.
const HOP: usize = 64;
/// Lags searched either side of each line (samples): room for the residual
/// placement error, not for another arrival.
const MAX_LAG: usize = 24;
/// Lags either side of the line's own lag that count as "on the line".
const ON_LINE: usize = 2;
/// Band of the boundary's GCC (Hz), as the fine stage's.
const BAND_HZ: (f64, f64) = (300.0, 3600.0);

/// The recording and the song at the analysis rate.
pub(super) struct Signals<'a> {
    pub recording: &'a [f32],
    pub song: &'a [f32],
    pub fs: f64,
}

/// Each window's centre (s) and its on-line GCC value for each line.
fn on_line_values(sig: &Signals, lines: &[&Line], t_lo: f64, t_hi: f64) -> Vec<(f64, Vec<f32>)> {
    let mut gcc = GccPhat::new(WIN, MAX_LAG, sig.fs as u32, BAND_HZ);
    let seg_len = gcc.segment_len();
    let mut out_corr = Vec::new();
    let first = ((t_lo * sig.fs) as i64).max(0) as usize;
    let last = ((t_hi * sig.fs) as usize).min(sig.recording.len().saturating_sub(WIN));
    let mut values = Vec::new();
    let mut a = first;
    while a <= last {
        let window = &sig.recording[a..a + WIN];
        let t_centre = (a as f64 + 0.5 * WIN as f64) / sig.fs;
        let per_line = lines
            .iter()
            .map(|line| {
                // song sample under the window's first sample, minus the lag range
                let s0 = line.song_at(a as f64 / sig.fs) * sig.fs - MAX_LAG as f64;
                let s0 = s0.round();
                if s0 < 0.0 || s0 as usize + seg_len > sig.song.len() {
                    return 0.0;
                }
                let s0 = s0 as usize;
                if !gcc.correlate(window, &sig.song[s0..s0 + seg_len], &mut out_corr) {
                    return 0.0;
                }
                out_corr[MAX_LAG - ON_LINE..=MAX_LAG + ON_LINE]
                    .iter()
                    .fold(0.0f32, |m, &v| m.max(v))
            })
            .collect();
        values.push((t_centre, per_line));
        a += HOP;
    }
    values
}

/// The change point of `d` (time, value): the split maximising the sum
/// before it minus the sum after it; the time between the two windows.
fn change_point(d: &[(f64, f32)]) -> Option<f64> {
    if d.len() < 2 {
        return None;
    }
    let mut prefix = 0.0f64;
    let (mut best, mut at) = (f64::NEG_INFINITY, None);
    for k in 1..d.len() {
        prefix += f64::from(d[k - 1].1);
        if prefix > best {
            best = prefix;
            at = Some(0.5 * (d[k - 1].0 + d[k].0));
        }
    }
    at
}

/// The cut between a play on `before` and the next one on `after`, searched
/// over recording times `t_lo..t_hi` (s).
pub(super) fn locate_cut(
    sig: &Signals,
    before: &Line,
    after: &Line,
    t_lo: f64,
    t_hi: f64,
) -> Option<f64> {
    let values = on_line_values(sig, &[before, after], t_lo, t_hi);
    let d: Vec<(f64, f32)> = values.iter().map(|(t, v)| (*t, v[0] - v[1])).collect();
    change_point(&d)
}

/// The change point of `d` (time, value) over recording times
/// `t_lo..t_hi` when the change may also lie at either end of that span:
/// the split maximising the sum before it (none before `t_lo`: 0), at
/// `t_lo` or `t_hi` when no window says otherwise (a play heard from the
/// recording's first window starts there, not half a window later).
fn change_point_within(d: &[(f64, f32)], t_lo: f64, t_hi: f64) -> Option<f64> {
    if d.is_empty() {
        return None;
    }
    let (mut prefix, mut best, mut at) = (0.0f64, 0.0f64, t_lo);
    for k in 1..=d.len() {
        prefix += f64::from(d[k - 1].1);
        if prefix > best {
            best = prefix;
            at = d.get(k).map_or(t_hi, |next| 0.5 * (d[k - 1].0 + next.0));
        }
    }
    Some(at)
}

/// Which edge of a play [`locate_edge`] looks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Edge {
    Start,
    End,
}

/// Where the play on `line` starts (or ends) within `t_lo..t_hi` (s), next
/// to a stretch without the song: the change point between "below half the
/// song's typical on-line value" and "above it", the typical value being
/// the median over recording times `typical.0..typical.1` inside the play.
pub(super) fn locate_edge(
    sig: &Signals,
    line: &Line,
    edge: Edge,
    (t_lo, t_hi): (f64, f64),
    typical: (f64, f64),
) -> Option<f64> {
    let inside = on_line_values(sig, &[line], typical.0, typical.1);
    if inside.len() < 8 {
        return None;
    }
    let mut v: Vec<f32> = inside.iter().map(|(_, v)| v[0]).collect();
    v.sort_by(f32::total_cmp);
    let half = 0.5 * v[v.len() / 2];
    let sign = if edge == Edge::Start { -1.0 } else { 1.0 };
    let values = on_line_values(sig, &[line], t_lo, t_hi);
    let d: Vec<(f64, f32)> = values
        .iter()
        .map(|(t, v)| (*t, sign * (v[0] - half)))
        .collect();
    change_point_within(&d, t_lo.max(0.0), t_hi)
}

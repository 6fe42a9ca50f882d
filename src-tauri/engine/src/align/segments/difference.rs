//! Difference-signal evidence between two lines over a piece of the
//! recording, the song read along each line at the recording's rate.
//!
//! The tie-break's [`section_difference_evidence`] reads the song sample
//! for sample, so it declines any recording with drift (over a 20-s play,
//! 65 ppm is already 10 samples at 8 kHz). A play is short and its line is
//! known to a fraction of a sample, so here each section is read along its
//! own line with the windowed-sinc interpolator the fine stage uses; the
//! evidence itself is the tie-break's [`difference_evidence`].
//!
//! [`section_difference_evidence`]: crate::align::tiebreak::section_difference_evidence

use crate::align::fine::Line;
use crate::align::pipeline::Run;
use crate::align::tiebreak::difference_evidence;
use crate::dsp::interp::SincInterpolator;

/// Longest piece compared at once (s): the tie-break's block, for the same
/// reason (memory and time flat in the piece's length).
const BLOCK_S: f64 = 30.0;

/// Difference-signal evidence (positive: `a`) between two lines over the
/// recording times `t_a..t_b` where both place the recording inside the
/// song; `None` when under 2 s of that remains.
pub(super) fn difference(run: &Run, a: &Line, b: &Line, t_a: f64, t_b: f64) -> Option<f64> {
    let song_dur = run.song_s();
    // both lines inside the song (the rate is positive: the lines rise)
    let lo = t_a.max(0.0).max(a.dance_at(0.0)).max(b.dance_at(0.0));
    let hi = t_b
        .min(run.recording_s())
        .min(a.dance_at(song_dur))
        .min(b.dance_at(song_dur));
    let i = (lo * run.fs).ceil() as usize;
    let j = ((hi * run.fs).floor() as usize).min(run.recording.len());
    if j <= i {
        return None;
    }
    let len = j - i;
    let blocks = len.div_ceil(((BLOCK_S * run.fs) as usize).max(1));
    let block = len.div_ceil(blocks);
    let interp = SincInterpolator::new();
    let read = |line: &Line, from: usize, to: usize| -> Vec<f32> {
        (from..to)
            .map(|k| interp.at(run.song, line.song_at(k as f64 / run.fs) * run.fs))
            .collect()
    };
    let (mut sum, mut count) = (0.0, 0usize);
    for n in 0..blocks {
        let from = i + n * block;
        let to = (from + block).min(j);
        let (sa, sb) = (read(a, from, to), read(b, from, to));
        if let Some(ev) = difference_evidence(&run.recording[from..to], &sa, &sb, run.fs) {
            sum += ev;
            count += 1;
        }
        // a long piece is read a block at a time
        run.release_recording();
    }
    let ev = (count > 0).then(|| sum / (count as f64).sqrt());
    if crate::align::debug_enabled() {
        eprintln!("segments: difference {t_a:.2}-{t_b:.2} s: {ev:?}");
    }
    ev
}

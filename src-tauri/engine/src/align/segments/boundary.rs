//! Where a play starts, ends, or gives way to the next. Frame by frame (64 ms
//! frames, 8 ms apart), how much better "the recording holds the song as this
//! line reads it" explains the recording than "it holds nothing of it": the
//! log-likelihood ratio of the frame's short spectrum, band by band at the
//! gain and the noise the play shows there on its line. An edge is the
//! change point of the running sum of that ratio; a cut is the change point
//! of the difference between the two lines' ratios.
//!
//! Why not one GCC peak per window against half its typical value: a
//! window's peak is noise plus a bias wherever the song is quiet or talked
//! over, and the threshold landed restarts seconds off (5 to 9 plays in 20
//! to 30 per bench set beyond 250 ms). The ratio weighs each frame by how
//! loud the song is there (a quiet frame votes little either way) and adds
//! every band's evidence coherently, each band at the gain and the phase the
//! play shows there.

use crate::align::fine::Line;
use crate::dsp::gcc::band_bins;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use std::f64::consts::PI;
use std::sync::Arc;

/// Frame length (samples at the analysis rate: 64 ms at 8 kHz).
const FRAME: usize = 512;
/// Spacing of the frames (samples): the resolution of an edge or a cut.
const HOP: usize = 64;
/// Band of the ratio (Hz), as the fine stage's.
const BAND_HZ: (f64, f64) = (300.0, 3600.0);
/// Spacing of the frames a line's model is read from (samples): its play,
/// where resolution does not matter.
const MODEL_HOP: usize = 256;
/// The song's level tested for next to a play's start, of the play's own
/// (see [`level_of`]).
const START_LEVEL: f64 = 0.5;
/// The level, of its own, the next play's song is tested at beside a cut
/// (the previous play's at its own). A phone's gain control, set by the
/// previous play, takes a moment to come back when the next is quieter, and
/// the room still rings with the previous play: the next play's first
/// frames hear its song weaker than the play goes on, and at its full level
/// they read as no song. Cuts came late: on 101 cuts of ten real-music
/// bench sets, +9.4 ms on average, median error 7.7 ms, 163 ms at most
/// (plays-real 1111 rpl011); at 0.7, +3.2 ms, 5.7 ms and 123 ms (at 0.5,
/// +0.3 ms, 5.7 ms, but 299 ms at most).
const CUT_NEXT_LEVEL: f64 = 0.7;

/// The recording and the song at the analysis rate.
pub(super) struct Signals<'a> {
    pub recording: &'a [f32],
    pub song: &'a [f32],
    pub fs: f64,
}

/// Short spectra over the band, one frame after another.
struct Framer {
    fft: Arc<dyn RealToComplex<f32>>,
    taper: Vec<f32>,
    lo_bin: usize,
    hi_bin: usize,
    input: Vec<f32>,
    output: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl Framer {
    fn new(fs: f64) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FRAME);
        let (lo_bin, hi_bin) = band_bins(fs, FRAME, BAND_HZ);
        let taper = (0..FRAME)
            .map(|i| (0.5 - 0.5 * (2.0 * PI * i as f64 / FRAME as f64).cos()) as f32)
            .collect();
        Self {
            input: fft.make_input_vec(),
            output: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            taper,
            lo_bin,
            hi_bin,
        }
    }

    fn bins(&self) -> usize {
        self.hi_bin - self.lo_bin + 1
    }

    /// Appends the band of `x`'s tapered spectrum, delayed by `shift`
    /// samples (a phase ramp: `x` read `shift` samples later), to `out`;
    /// zeros where `x` is missing.
    fn push(&mut self, x: Option<&[f32]>, shift: f64, out: &mut Vec<Complex<f32>>) {
        let Some(x) = x else {
            out.extend(std::iter::repeat_n(Complex::new(0.0, 0.0), self.bins()));
            return;
        };
        for ((d, &v), &w) in self.input.iter_mut().zip(x).zip(&self.taper) {
            *d = v * w;
        }
        if self
            .fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch)
            .is_err()
        {
            out.extend(std::iter::repeat_n(Complex::new(0.0, 0.0), self.bins()));
            return;
        }
        for k in self.lo_bin..=self.hi_bin {
            out.push(self.output[k] * phase(k, shift));
        }
    }
}

/// `exp(i 2π k shift / FRAME)`: bin `k` of a frame read `shift` samples later.
fn phase(k: usize, shift: f64) -> Complex<f32> {
    let a = 2.0 * PI * k as f64 * shift / FRAME as f64;
    Complex::new(a.cos() as f32, a.sin() as f32)
}

/// Frames of the recording and of the song as a line reads it under them.
struct Frames {
    /// Centre of each frame (s, recording time).
    times: Vec<f64>,
    recording: Vec<Complex<f32>>,
    song: Vec<Complex<f32>>,
}

/// The first sample of each frame `hop` samples apart over recording times
/// `t_lo..t_hi`.
fn frame_starts(
    sig: &Signals,
    (t_lo, t_hi): (f64, f64),
    hop: usize,
) -> impl Iterator<Item = usize> {
    let first = (t_lo * sig.fs).max(0.0) as usize;
    let last = ((t_hi * sig.fs).max(0.0) as usize).min(sig.recording.len().saturating_sub(FRAME));
    let count = if last >= first && sig.recording.len() >= FRAME {
        (last - first) / hop + 1
    } else {
        0
    };
    (first..).step_by(hop).take(count)
}

/// Centre (s) of the frame starting at sample `a`.
fn centre(sig: &Signals, a: usize) -> f64 {
    (a as f64 + 0.5 * FRAME as f64) / sig.fs
}

/// Appends the band spectra of the recording's frame starting at sample
/// `a` and of the song under it as `line` reads it.
fn push_frame(
    sig: &Signals,
    framer: &mut Framer,
    line: &Line,
    a: usize,
    (recording, song): (&mut Vec<Complex<f32>>, &mut Vec<Complex<f32>>),
) {
    framer.push(Some(&sig.recording[a..a + FRAME]), 0.0, recording);
    let pos = line.song_at(a as f64 / sig.fs) * sig.fs;
    let i0 = pos.floor();
    let excerpt = (i0 >= 0.0 && i0 as usize + FRAME <= sig.song.len())
        .then(|| &sig.song[i0 as usize..i0 as usize + FRAME]);
    framer.push(excerpt, pos - i0, song);
}

/// The frames `hop` samples apart over recording times `span`.
fn frames(sig: &Signals, framer: &mut Framer, line: &Line, span: (f64, f64), hop: usize) -> Frames {
    let starts = frame_starts(sig, span, hop);
    let count = starts.size_hint().0;
    let mut out = Frames {
        times: Vec::with_capacity(count),
        recording: Vec::with_capacity(count * framer.bins()),
        song: Vec::with_capacity(count * framer.bins()),
    };
    for a in starts {
        push_frame(sig, framer, line, a, (&mut out.recording, &mut out.song));
        out.times.push(centre(sig, a));
    }
    out
}

/// How a line reads the recording, from the frames of its play: per bin
/// the gain and the phase at which the recording holds the song
/// (loudspeaker, room and microphone: the least-squares transfer over the
/// play) and the power of everything else there (talk, noise,
/// reverberation).
///
/// Why a phase per bin, not one sub-sample delay for every bin with a real
/// gain: a loudspeaker's crossover and a room delay each band its own way,
/// and a band turned more than a quarter turn from that one delay had no
/// weight, or voted against the song where its frames were loud. (Of 289
/// plays on eight synthesised bench sets, starts after a stop more than
/// 250 ms off 5 -> 2, median 11.7 -> 6.7 ms; on a fresh set of real music,
/// cuts at most 82 -> 32 ms.)
struct LineModel {
    /// The conjugate of the play's phase on the line, per bin.
    turn: Vec<Complex<f32>>,
    /// `2 gain / noise` per bin: the weight of the recording's fit.
    fit_weight: Vec<f64>,
    /// `gain² / noise` per bin: the weight of the song's energy.
    energy_weight: Vec<f64>,
    /// The recording's power in the band in a frame of the play, on average.
    power: f64,
}

impl LineModel {
    /// The model read from `play`'s frames; `None` where they do not hear
    /// the line at all.
    fn of(framer: &Framer, play: &Frames) -> Option<Self> {
        let bins = framer.bins();
        // per bin: Σ x ȳ, Σ |y|², Σ |x|² over the play's frames
        let mut cross = vec![Complex::new(0.0f64, 0.0); bins];
        let (mut song, mut rec) = (vec![0.0f64; bins], vec![0.0f64; bins]);
        for (x, y) in play
            .recording
            .chunks_exact(bins)
            .zip(play.song.chunks_exact(bins))
        {
            for b in 0..bins {
                let c = x[b] * y[b].conj();
                cross[b] += Complex::new(f64::from(c.re), f64::from(c.im));
                song[b] += f64::from(y[b].norm_sqr());
                rec[b] += f64::from(x[b].norm_sqr());
            }
        }
        let frames = (play.song.len() / bins).max(1) as f64;
        let (mut fit_weight, mut energy_weight) = (vec![0.0; bins], vec![0.0; bins]);
        let mut turn = vec![Complex::new(1.0f32, 0.0); bins];
        for b in 0..bins {
            let size = cross[b].norm();
            let gain = size / song[b];
            // what the song at that gain and phase leaves of the recording,
            // per frame
            let noise = (rec[b] - size * size / song[b]) / frames;
            if size > 0.0 && gain.is_finite() && noise.is_finite() && noise > 0.0 {
                let u = cross[b].conj() / size;
                turn[b] = Complex::new(u.re as f32, u.im as f32);
                fit_weight[b] = 2.0 * gain / noise;
                energy_weight[b] = gain * gain / noise;
            }
        }
        let power = rec.iter().sum::<f64>() / frames;
        (energy_weight.iter().any(|w| *w > 0.0) && power > 0.0).then_some(Self {
            turn,
            fit_weight,
            energy_weight,
            power,
        })
    }

    /// A frame's log-likelihood ratio (up to a scale) of "the song on the
    /// line, at `level` times the play's gain" against "no song", from its
    /// recording and song spectra.
    fn ratio(&self, x: &[Complex<f32>], y: &[Complex<f32>], level: f64) -> f64 {
        let ratio: f64 = (0..x.len())
            .map(|b| {
                level * f64::from((x[b] * y[b].conj() * self.turn[b]).re) * self.fit_weight[b]
                    - level * level * f64::from(y[b].norm_sqr()) * self.energy_weight[b]
            })
            .sum();
        // a frame louder than the play's are (talk, a shout, a slammed
        // door) holds that much more noise: it votes less
        let power: f64 = x.iter().map(|c| f64::from(c.norm_sqr())).sum();
        ratio / (power / self.power).max(1.0)
    }
}

/// One line's ratio over the frames of `span` (the song tested at `level`
/// of the play's own), its model read from its play's frames.
fn line_ratio(
    sig: &Signals,
    framer: &mut Framer,
    side: &Side,
    span: (f64, f64),
    level: f64,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let play = frames(sig, framer, side.line, side.play, MODEL_HOP);
    let model = LineModel::of(framer, &play)?;
    drop(play);
    // frame by frame: a long search keeps no spectra
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let (mut times, mut ratio) = (Vec::new(), Vec::new());
    for a in frame_starts(sig, span, HOP) {
        x.clear();
        y.clear();
        push_frame(sig, framer, side.line, a, (&mut x, &mut y));
        times.push(centre(sig, a));
        ratio.push(model.ratio(&x, &y, level));
    }
    Some((times, ratio))
}

/// The change point of `d` over recording times `t_lo..t_hi` when the
/// change may also lie at either end of that span: the split maximising the
/// sum before it (none before `t_lo`: 0), at `t_lo` or `t_hi` when no frame
/// says otherwise (a play heard from the recording's first frame starts
/// there, not half a frame later).
fn change_point_within(times: &[f64], d: &[f64], t_lo: f64, t_hi: f64) -> Option<f64> {
    if d.is_empty() {
        return None;
    }
    let (mut prefix, mut best, mut at) = (0.0f64, 0.0f64, t_lo);
    for k in 1..=d.len() {
        prefix += d[k - 1];
        if prefix > best {
            best = prefix;
            at = split_time(times, k, (t_lo, t_hi));
        }
    }
    Some(at)
}

/// The time of the split of frames `times` before frame `k`: between frames
/// `k - 1` and `k`, or `t_lo` before the first, `t_hi` after the last.
fn split_time(times: &[f64], k: usize, (t_lo, t_hi): (f64, f64)) -> f64 {
    match k {
        0 => t_lo,
        _ => times
            .get(k)
            .map_or(t_hi, |next| 0.5 * (times[k - 1] + next)),
    }
}

/// A play next to an edge or a cut: its line, and the recording times whose
/// frames its model is read from (its play, as far as it is placed).
pub(super) struct Side<'a> {
    pub line: &'a Line,
    pub play: (f64, f64),
}

/// The cut between a play `before` and the next one `after`, searched over
/// recording times `t_lo..t_hi` (s): the change point of the difference
/// between the two lines' ratios, read as a play's final start after a stop
/// is ([`Placement::Median`]). Where neither song sounds on either side of
/// the cut (one song's last notes ring out, the next begins after a beat of
/// silence), the splits there are as likely as one another and the likeliest
/// is the first of them (a synthesised bench cut 188 ms early, now 84 ms).
pub(super) fn locate_cut(
    sig: &Signals,
    before: &Side,
    after: &Side,
    (t_lo, t_hi): (f64, f64),
) -> Option<f64> {
    let mut framer = Framer::new(sig.fs);
    let (times, ratio_a) = line_ratio(sig, &mut framer, before, (t_lo, t_hi), 1.0)?;
    let (_, ratio_b) = line_ratio(sig, &mut framer, after, (t_lo, t_hi), CUT_NEXT_LEVEL)?;
    let d: Vec<f64> = ratio_a.iter().zip(&ratio_b).map(|(a, b)| a - b).collect();
    median_split(&times, &d, t_lo, t_hi)
}

/// How an edge is read from the running sum of its ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Placement {
    /// The likeliest split (the first of equals): while the plays settle.
    Likeliest,
    /// The median of the splits, each weighted by its likelihood: a play's
    /// final start after a stop. Where the song is silent or faint on both
    /// sides of where the play starts (an intro, a pause in the song), the
    /// splits there are about as likely as one another and the likeliest
    /// is the first of them (starts 0.3-0.4 s early on the bench sets); the
    /// median lies among them.
    Median,
}

/// How much less likely (in the ratio's units) a split is per e-fold of its
/// weight in the median. The ratio treats its frames as independent; they
/// overlap eightfold and talk is not the noise it models, so it overstates
/// how much one split beats the next. (Of 0.5, 2 and 8 on fourteen bench
/// sets: starts over 250 ms after a stop 10, 5 and 6 of 336, against 12 at
/// the likeliest split; the median error grows with the spread.)
const SPLIT_SPREAD: f64 = 2.0;

/// The median split of `d` over `t_lo..t_hi`, the splits as
/// [`change_point_within`]'s, each weighted by `exp(sum before it /
/// SPLIT_SPREAD)`.
fn median_split(times: &[f64], d: &[f64], t_lo: f64, t_hi: f64) -> Option<f64> {
    if d.is_empty() {
        return None;
    }
    let mut prefix = Vec::with_capacity(d.len() + 1);
    prefix.push(0.0f64);
    for v in d {
        prefix.push(prefix[prefix.len() - 1] + v);
    }
    let top = prefix.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weight: Vec<f64> = prefix
        .iter()
        .map(|p| ((p - top) / SPLIT_SPREAD).exp())
        .collect();
    let half = 0.5 * weight.iter().sum::<f64>();
    let mut below = 0.0;
    let k = weight
        .iter()
        .position(|w| {
            below += w;
            below >= half
        })
        .unwrap_or(d.len());
    Some(split_time(times, k, (t_lo, t_hi)))
}

/// The level (of the play's own on its line) a frame's song is tested at
/// next to an edge: a start at half of it, an end at all of it (a cut:
/// [`CUT_NEXT_LEVEL`]).
/// A play often starts quieter than it goes on (talk carries on over its
/// first bars, the volume goes up, a phone's gain comes back after the
/// talk); it stops at once. (At the play's level, starts over 250 ms off:
/// 6 of 188 on the eight bench sets, 2 of them on real music; at half, 6,
/// none on real music, and one more play's stretch confirmed.)
fn level_of(edge: Edge) -> f64 {
    match edge {
        Edge::Start => START_LEVEL,
        Edge::End => 1.0,
    }
}

/// Which edge of a play [`locate_edge`] looks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Edge {
    Start,
    End,
}

/// Where the play `side` starts (or ends) within `t_lo..t_hi` (s), next to a
/// stretch without the song: the change point of the line's ratio, read as
/// `placement` says.
pub(super) fn locate_edge(
    sig: &Signals,
    side: &Side,
    edge: Edge,
    (t_lo, t_hi): (f64, f64),
    placement: Placement,
) -> Option<f64> {
    // the play cannot reach before the song's first sample on its line, nor
    // past its last (there a frame has no song to test, and no say)
    let song_s = sig.song.len() as f64 / sig.fs;
    let (song_from, song_to) = (side.line.dance_at(0.0), side.line.dance_at(song_s));
    let (t_lo, t_hi) = (t_lo.max(song_from), t_hi.min(song_to));
    if t_hi <= t_lo {
        return None;
    }
    let mut framer = Framer::new(sig.fs);
    let (times, ratio) = line_ratio(sig, &mut framer, side, (t_lo, t_hi), level_of(edge))?;
    let sign = if edge == Edge::Start { -1.0 } else { 1.0 };
    let d: Vec<f64> = ratio.iter().map(|v| sign * v).collect();
    match placement {
        Placement::Likeliest => change_point_within(&times, &d, t_lo.max(0.0), t_hi),
        Placement::Median => median_split(&times, &d, t_lo.max(0.0), t_hi),
    }
}

//! `align`: where the clean song sits in the class recording.
//!
//! Model: `recording_time = offset + rate * song_time` (a straight line: constant
//! offset, clock drift or a playback-speed change). Three stages:
//!
//! 1. **coarse** ([`crate::align::coarse`]): onset envelopes, windowed correlation
//!    against the whole song at a few rates, Hough vote for the line most
//!    consistent across all windows, then direct re-scoring. Gives a handful
//!    of candidate lines (usually the right one and its ± one-bar neighbours).
//! 2. **fine** ([`crate::align::fine`]): GCC-PHAT of short audio windows all along
//!    each candidate line; the line with the most accumulated coherence over
//!    the whole overlap wins (this is what picks the right bar in loop-based
//!    music), then a robust line fit of per-window lags gives rate and offset
//!    to a fraction of a millisecond.
//! 3. **overlap**: windows where the song is clearly heard bound the part of
//!    the recording that has music.

mod coarse;
mod fine;
mod integrate;
mod pipeline;
mod segments;
mod tiebreak;
mod verdict;

use crate::align::fine::{refine_line, FineOutcome, FineParams, Line};
use crate::cancel::CancelToken;
use crate::dsp::spectral::{line_similarity, shape_correlation, SongShapeSpectra};
use crate::dsp::xcorr::{parabolic_offset, top_peaks};
use crate::error::{EngineError, Result};
use crate::media::decode::decode_audio_with;
pub use pipeline::align_signals;
use pipeline::{Fitted, Run, ShapeCandidate};
pub use segments::Segment;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;
pub use verdict::Verdict;
use verdict::{
    integrated_confidence, integrated_presence, integrated_separation, Confidence,
    DECISIVE_SHAPE_Z, DECISIVE_Z, HEARD_ABSENCE_Z, HEARD_CLIP, HEARD_SHAPE_Z, INTEGRATED_MIN_Z,
};

/// Tunables of [`align_signals`]; the defaults are what the app uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlignOptions {
    /// Analysis sample rate (Hz) both files are decoded to.
    pub analysis_rate_hz: u32,
    /// Largest playback-speed difference searched, as a fraction (0.055 = ±5.5 %).
    pub max_rate_deviation: f64,
    /// Shortest audio accepted, in seconds.
    pub min_audio_s: f64,
    /// Track the song's beats (for the waveform view); an export that only
    /// needs the placement skips them.
    #[serde(default = "track_beats_by_default")]
    pub beats: bool,
}

fn track_beats_by_default() -> bool {
    true
}

impl Default for AlignOptions {
    fn default() -> Self {
        Self {
            analysis_rate_hz: 8000,
            max_rate_deviation: 0.055,
            min_audio_s: 3.0,
            beats: true,
        }
    }
}

/// One alternative placement of the song.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlignCandidate {
    pub offset_s: f64,
    /// Evidence relative to the best candidate (1.0 for the best).
    pub score: f64,
}

/// Where the song is heard in the recording, in both time lines.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Overlap {
    pub dance_start_s: f64,
    pub dance_end_s: f64,
    pub bgm_start_s: f64,
    pub bgm_end_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AlignTimings {
    pub decode: f64,
    pub features: f64,
    pub search: f64,
    pub refine: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlignResult {
    /// `recording_time = bgm_time + offset_s`, evaluated at the middle of the overlap.
    pub offset_s: f64,
    /// Recording seconds per song second over the overlap (1.0 = same speed).
    pub rate: f64,
    /// 0..1; at or above 0.9 the placement is right (`verdict` sure).
    pub confidence: f64,
    /// `unsure`: the song may not be this one, or not placed right; listen
    /// before exporting. Absent in results stored before it existed: `sure`.
    #[serde(default)]
    pub verdict: Verdict,
    /// Up to 5 distinct placements, best first (the first is `offset_s`).
    pub candidates: Vec<AlignCandidate>,
    pub overlap: Overlap,
    /// True when the recording plays the song faster or slower with its pitch
    /// kept (time-stretched) rather than resampled.
    pub pitch_kept: bool,
    pub bpm: Option<f64>,
    /// The song's beat times, in song time (seconds).
    pub beats_s: Vec<f64>,
    pub downbeats_s: Vec<f64>,
    pub timings_ms: AlignTimings,
    /// Every play of the song in the recording, in recording order (one:
    /// the answer above). Absent in results stored before it existed.
    #[serde(default)]
    pub segments: Vec<Segment>,
}

/// Decodes both files and aligns them (see [`align_signals`]).
pub fn align_files(
    recording: &Path,
    song: &Path,
    opts: &AlignOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<AlignResult> {
    crate::init();
    let t0 = Instant::now();
    let rate = opts.analysis_rate_hz;
    progress("decode", 0.0);
    // The two decodes are independent: run the song's on a second thread.
    let (recording_pcm, song_pcm) = std::thread::scope(|scope| {
        let song_cancel = cancel.clone();
        let song_job =
            scope.spawn(move || decode_audio_with(song, rate, &song_cancel, &mut |_| {}));
        let recording_pcm = decode_audio_with(recording, rate, cancel, &mut |f| {
            progress("decode", 0.9 * f)
        });
        let song_pcm = song_job
            .join()
            .unwrap_or_else(|_| Err(EngineError::media(song, "decoder thread panicked")));
        (recording_pcm, song_pcm)
    });
    let recording_pcm = recording_pcm?;
    let song_pcm = song_pcm?;
    progress("decode", 1.0);
    check_length(
        recording,
        recording_pcm.samples.len(),
        rate,
        opts.min_audio_s,
    )?;
    check_length(song, song_pcm.samples.len(), rate, opts.min_audio_s)?;
    let decode_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut result = align_signals(
        &recording_pcm.samples,
        &song_pcm.samples,
        rate,
        opts,
        cancel,
        progress,
    )?;
    result.timings_ms.decode = decode_ms;
    Ok(result)
}

/// Aligns one recording against each of several songs (pairing class videos
/// with songs), decoding the recording once: per song, what [`align_files`]
/// answers for that pair. The outer error is the recording's own.
pub fn align_against_songs(
    recording: &Path,
    songs: &[&Path],
    opts: &AlignOptions,
    cancel: &CancelToken,
) -> Result<Vec<Result<AlignResult>>> {
    crate::init();
    let rate = opts.analysis_rate_hz;
    let recording_pcm = decode_audio_with(recording, rate, cancel, &mut |_| {})?;
    check_length(
        recording,
        recording_pcm.samples.len(),
        rate,
        opts.min_audio_s,
    )?;
    let align_one = |song: &Path| -> Result<AlignResult> {
        let t0 = Instant::now();
        let song_pcm = decode_audio_with(song, rate, cancel, &mut |_| {})?;
        check_length(song, song_pcm.samples.len(), rate, opts.min_audio_s)?;
        let decode_ms = t0.elapsed().as_secs_f64() * 1e3;
        let mut result = align_signals(
            &recording_pcm.samples,
            &song_pcm.samples,
            rate,
            opts,
            cancel,
            &mut |_, _| {},
        )?;
        result.timings_ms.decode = decode_ms;
        Ok(result)
    };
    Ok(songs.iter().map(|song| align_one(song)).collect())
}

fn check_length(path: &Path, samples: usize, rate: u32, min_s: f64) -> Result<()> {
    let seconds = samples as f64 / f64::from(rate);
    if seconds < min_s {
        return Err(EngineError::TooShort {
            path: path.to_path_buf(),
            seconds,
            min_seconds: min_s,
        });
    }
    Ok(())
}

/// Hop of the onset envelopes, in seconds (100 frames per second).
const ENVELOPE_HOP_S: f64 = 0.01;
/// How many candidate lines go to the fine stage.
const FINE_CANDIDATES: usize = 4;
/// Log band energies are averaged over ±this many frames before the shape
/// comparison, so sustained content (bass, chords) outweighs drum hits.
const SHAPE_SMOOTH_FRAMES: usize = 10;
/// Placements kept per scanned rate from the spectral-shape correlation.
const SHAPE_PEAKS_PER_RATE: usize = 6;
/// Trend removed from each log band before shape comparison (frames, ±).
const SHAPE_TREND_FRAMES: usize = 300;
/// A candidate without coherence whose rate differs from the leader's by
/// more than this was not checked by GCC at the recording's rate.
const UNCHECKED_RATE_GAP: f64 = 1e-3;

/// Spectral-shape scan of every placement at each of `rates`: the
/// correlations (with their null centre and spread) and the best
/// `peaks_per_rate` placements of each rate as `(shape z, line)`.
fn shape_scan(
    recording_shape: &crate::dsp::spectral::SpectralShape,
    song_spectra: &SongShapeSpectra,
    rates: &[f64],
    frame_rate: f64,
    t_ref: f64,
    peaks_per_rate: usize,
) -> (
    Vec<crate::dsp::spectral::ShapeCorrelation>,
    Vec<ShapeCandidate>,
) {
    let scans = crate::dsp::par::par_map(rates.len(), crate::dsp::par::threads(), |i| {
        shape_correlation(recording_shape, song_spectra, rates[i])
    });
    let mut correlations = Vec::new();
    let mut placements = Vec::new();
    for (&rate, sc) in rates.iter().zip(scans) {
        let Some(sc) = sc else {
            continue;
        };
        for (i, v) in top_peaks(&sc.values, peaks_per_rate, (0.3 * frame_rate) as usize) {
            let frac = if i > 0 && i + 1 < sc.values.len() {
                parabolic_offset(sc.values[i - 1], sc.values[i], sc.values[i + 1])
            } else {
                0.0
            };
            let start_frame = i as f64 + frac + sc.first_start as f64;
            placements.push(ShapeCandidate {
                shape_z: (f64::from(v) - sc.centre) / sc.spread,
                line: crate::align::coarse::CoarseCandidate {
                    sigma_s: start_frame / frame_rate + t_ref / rate,
                    rate,
                    score: 0.0,
                },
            });
        }
        correlations.push(sc);
    }
    (correlations, placements)
}

/// Spacing of the second pass's extra spectral-shape scan over rates...
const DENSE_RATE_STEP: f64 = 0.005;
/// ...(steps either side of 1.0, up to the largest deviation searched)...
const DENSE_RATE_STEPS: i64 = 11;
/// ...and how many of its best placements become hypotheses.
const DENSE_RATE_HYPOTHESES: usize = 2;

/// Moves `line` to the best spectral-shape similarity within half a
/// [`DENSE_RATE_STEP`] of its rate and ±0.15 s of its position: to within
/// what the integration's slope search covers. A coarse grid on every
/// fourth recording frame, then a finer one around its best on every second.
fn polish_by_shape(
    recording_shape: &crate::dsp::spectral::SpectralShape,
    song_shape: &crate::dsp::spectral::SpectralShape,
    frame_rate: f64,
    line: Line,
) -> Line {
    let grid = |centre: (f64, f64),
                rate_step: f64,
                rate_steps: i32,
                sigma_step: f64,
                sigma_steps: i32,
                frame_step: usize| {
        let score = |sigma: f64, rate: f64| {
            line_similarity(
                recording_shape,
                song_shape,
                frame_rate,
                line.t_ref,
                sigma,
                rate,
                frame_step,
            )
        };
        let mut best = (score(centre.0, centre.1), centre.0, centre.1);
        for ri in -rate_steps..=rate_steps {
            let rate = centre.1 + f64::from(ri) * rate_step;
            for si in -sigma_steps..=sigma_steps {
                let sigma = centre.0 + f64::from(si) * sigma_step;
                let v = score(sigma, rate);
                if v > best.0 {
                    best = (v, sigma, rate);
                }
            }
        }
        (best.1, best.2)
    };
    let coarse = grid(
        (line.sigma, line.rate),
        0.1 * DENSE_RATE_STEP,
        5,
        0.03,
        5,
        4,
    );
    let fine = grid(coarse, 0.025 * DENSE_RATE_STEP, 2, 0.01, 3, 2);
    Line {
        t_ref: line.t_ref,
        sigma: fine.0,
        rate: fine.1,
    }
}

/// The final pass on a line: denser windows, both time-stretch hypotheses
/// when the speed differs; the more coherent one.
fn final_pass(run: &Run, line: &Line) -> Result<Option<Fitted>> {
    let (recording, song, fs, threads, cancel) =
        (run.recording, run.song, run.fs, run.threads, run.cancel);
    let mut best: Option<Fitted> = None;
    for params in variants_for(line.rate, false) {
        cancel.check()?;
        let mut out = refine_line(recording, song, fs, line, &params, threads, cancel)?;
        // a second pass re-centres the windows on the refined line
        out = refine_line(recording, song, fs, &out.line, &params, threads, cancel)?;
        if best.as_ref().is_none_or(|b| out.z > b.fine.z) {
            best = Some(Fitted { fine: out, params });
        }
    }
    Ok(best)
}

/// The placement a `no_match` would have given: where the song fits best,
/// for a teacher who knows it is the right song.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BestGuess {
    pub offset_s: f64,
    pub rate: f64,
    pub confidence: f64,
    pub overlap: Overlap,
}

impl BestGuess {
    fn of(r: &AlignResult) -> Self {
        Self {
            offset_s: r.offset_s,
            rate: r.rate,
            confidence: r.confidence,
            overlap: r.overlap.clone(),
        }
    }
}

/// A chosen placement before the result is put together.
struct Placed {
    /// The line and each window's evidence on it.
    fine: FineOutcome,
    pitch_kept: bool,
    confidence: f64,
    verdict: Verdict,
    /// Other placements and their evidence relative to the chosen one.
    alternatives: Vec<(Line, f64)>,
}

/// A placement tried by the second pass, and how well the song's spectral
/// shape follows it (z).
#[derive(Debug, Clone, Copy)]
struct Hypothesis {
    line: Line,
    shape_z: f64,
}

/// The second pass's answer.
struct Integrated {
    placed: Placed,
    /// The placement (a hypothesis or where its integration ended up) that
    /// the spectral shape follows best, and that shape z.
    shape_best: ShapeBest,
    /// Nothing in the song explains the recording: `no_match` (with this
    /// placement as the best guess).
    verdict_refused: bool,
}

/// Look-alike sections the first pass's confirmation integrates beside the winner.
const CONFIRM_ALTERNATIVES: usize = 2;

/// A first-pass placement that is not clear enough on its own: the
/// integrated coherence of its line, and of the best look-alike sections
/// (`alternatives`, best first), can raise presence and separation.
fn confirm_by_integration(
    run: &Run,
    winner: &Line,
    alternatives: &[Line],
    first: Confidence,
) -> Result<Confidence> {
    let (recording, song, fs, threads, cancel) =
        (run.recording, run.song, run.fs, run.threads, run.cancel);
    let mut lines = vec![*winner];
    lines.extend(
        alternatives
            .iter()
            .filter(|a| {
                (a.song_at(winner.t_ref) - winner.song_at(winner.t_ref)).abs() > SAME_SECTION_S
            })
            .take(CONFIRM_ALTERNATIVES),
    );
    let outcomes = crate::dsp::par::par_map(lines.len(), threads, |i| {
        crate::align::integrate::integrate_line(
            recording,
            song,
            fs,
            &lines[i],
            &integrate_params(&lines[i]),
            1,
            cancel,
        )
    });
    let mut z = Vec::with_capacity(lines.len());
    for o in outcomes {
        z.push(o?.map_or(0.0, |o| o.z));
    }
    let z_win = z[0];
    let z_alt = z.iter().skip(1).copied().fold(0.0, f64::max);
    if debug_enabled() {
        eprintln!("confirm: integrated z {z_win:.2}, best look-alike {z_alt:.2}");
    }
    Ok(Confidence {
        presence: first.presence.max(integrated_presence(z_win)),
        separation: first.separation.max(integrated_separation(z_win - z_alt)),
    })
}

/// The integration's windows and search around a line.
fn integrate_params(line: &Line) -> crate::align::integrate::IntegrateParams {
    crate::align::integrate::IntegrateParams {
        win_len: 2048,
        // ±120 ms: a placement found by spectral shape alone can be tens of
        // ms off (same transform length as ±60 ms)
        max_lag: 960,
        // windows overlapping by half: every sample counts fully once
        // (the windows are tapered at their ends)
        hop_s: 0.125,
        max_windows: 600,
        resample: (line.rate - 1.0).abs() > RESAMPLE_MIN_DEVIATION,
        max_end_shift: 2.0 * SAME_RATE_END_SHIFT,
        search_radius: 480,
    }
}

/// Most placements the second pass integrates.
const SECOND_PASS_HYPOTHESES: usize = 7;
/// Two placements closer than this at the reference time (s) are one section...
const SAME_SECTION_S: f64 = 0.03;
/// ...and one hypothesis when their rates differ by less than moves the
/// recording's ends by this many samples (the integration's slope search
/// covers about twice that).
const SAME_RATE_END_SHIFT: f64 = 150.0;

/// The placement the spectral shape follows best, and that shape z.
#[derive(Clone, Copy)]
struct ShapeBest {
    line: Line,
    z: f64,
}

impl ShapeBest {
    /// Keeps `line` when its shape z is higher (ties keep the first).
    fn consider(&mut self, line: Line, z: f64) {
        if z > self.z {
            *self = ShapeBest { line, z };
        }
    }
}

/// One hypothesis integrated over the whole overlap, with the spectral
/// shape's z where the integration ended up.
#[derive(Clone)]
struct Found {
    integrated: crate::align::integrate::IntegratedLine,
    shape_z: f64,
}

/// What the integration of the hypotheses found.
struct Searched {
    found: Vec<Found>,
    shape_best: ShapeBest,
}

/// The distinct hypotheses (section and rate), most likely first, at most
/// [`SECOND_PASS_HYPOTHESES`].
fn distinct_hypotheses(hypotheses: &[Hypothesis], t_ref: f64, fs: f64) -> Vec<Hypothesis> {
    let mut chosen: Vec<Hypothesis> = Vec::new();
    for h in hypotheses {
        if chosen.len() >= SECOND_PASS_HYPOTHESES {
            break;
        }
        let same = |c: &Hypothesis| {
            (c.line.sigma - h.line.sigma).abs() < SAME_SECTION_S
                && (c.line.rate - h.line.rate).abs() * t_ref * fs < SAME_RATE_END_SHIFT
        };
        if !chosen.iter().any(same) {
            chosen.push(*h);
        }
    }
    chosen
}

/// Integrates `chosen` (not empty) in batches of one hypothesis per thread,
/// most likely first: a decisive placement ends the search.
fn integrate_hypotheses(
    run: &Run,
    chosen: &[Hypothesis],
    shape_z_of: &(dyn Fn(&Line) -> f64 + Sync),
) -> Result<Searched> {
    let (recording, song, fs, threads, cancel) =
        (run.recording, run.song, run.fs, run.threads, run.cancel);
    let mut found: Vec<Found> = Vec::new();
    let mut shape_best = ShapeBest {
        line: chosen[0].line,
        z: shape_z_of(&chosen[0].line),
    };
    for batch in chosen.chunks(threads.max(1)) {
        let outcomes = crate::dsp::par::par_map(batch.len(), threads, |i| {
            let line = &batch[i].line;
            crate::align::integrate::integrate_line(
                recording,
                song,
                fs,
                line,
                &integrate_params(line),
                1,
                cancel,
            )
        });
        for (o, h) in outcomes.into_iter().zip(batch) {
            shape_best.consider(h.line, shape_z_of(&h.line));
            if let Some(o) = o? {
                // the spectral shape's support where the integration ended up
                let shape = shape_z_of(&o.line);
                shape_best.consider(o.line, shape);
                if debug_enabled() {
                    eprintln!(
                        "integrated: from sigma {:.4} rate {:.6} shape z {:.2}: sigma {:.5} rate {:.7} z {:.2} parallel z {:.2} shape z {shape:.2}",
                        h.line.sigma, h.line.rate, h.shape_z, o.line.sigma, o.line.rate, o.z, o.z_parallel
                    );
                }
                found.push(Found {
                    integrated: o,
                    shape_z: shape,
                });
            }
        }
        if found
            .iter()
            .any(|f| f.integrated.z >= DECISIVE_Z && f.shape_z >= DECISIVE_SHAPE_Z)
        {
            break;
        }
    }
    Ok(Searched { found, shape_best })
}

/// Up to four other placements (each more than 4 ms from the best and from
/// one another) with their z relative to the best's.
fn integrated_alternatives(
    found: &[Found],
    best: &Line,
    best_z: f64,
    t_ref: f64,
) -> Vec<(Line, f64)> {
    let mut alternatives: Vec<(Line, f64)> = Vec::new();
    for o in found.iter().skip(1) {
        let o = &o.integrated;
        let distinct = alternatives
            .iter()
            .chain(std::iter::once(&(*best, 1.0)))
            .all(|a| (a.0.song_at(t_ref) - o.line.song_at(t_ref)).abs() > 0.004);
        if distinct && alternatives.len() < 4 {
            alternatives.push((o.line, (o.z / best_z.max(1e-9)).clamp(-1.0, 1.0)));
        }
    }
    alternatives
}

/// The second pass's answer from the integrated hypotheses: the most
/// coherent one, its confidence against the best other section, and the
/// alternatives. `None` when nothing was integrated.
fn judge_integrated(searched: Searched, t_ref: f64) -> Option<Integrated> {
    let Searched {
        mut found,
        shape_best,
    } = searched;
    found.sort_by(|a, b| b.integrated.z.total_cmp(&a.integrated.z));
    let Found {
        integrated: best,
        shape_z,
    } = found.first().cloned()?;
    // the best other section (placements at least a section apart)
    let other = found
        .iter()
        .skip(1)
        .filter(|o| {
            (o.integrated.line.song_at(t_ref) - best.line.song_at(t_ref)).abs() > SAME_SECTION_S
        })
        .fold((0.0f64, 0.0f64), |m, o| {
            (m.0.max(o.integrated.z), m.1.max(o.shape_z))
        });
    let confidence = integrated_confidence(best.z, shape_z, other, best.lag_margin);
    let refused = best.z < INTEGRATED_MIN_Z;
    if debug_enabled() {
        eprintln!(
            "evidence: second pass z {:.2} parallel z {:.2} lag margin {:.2} shape z {:.2} other section z {:.2} shape z {:.2} confidence {confidence:.3} refused {refused}",
            best.z, best.z_parallel, best.lag_margin, shape_z, other.0, other.1
        );
    }
    let alternatives = integrated_alternatives(&found, &best.line, best.z, t_ref);
    let fine = FineOutcome {
        line: best.line,
        z: best.z,
        heard_windows: best.windows.iter().filter(|w| w.z_on_line >= 4.0).count(),
        line_z: best.z,
        windows: best.windows,
        hop_s: best.hop_s,
    };
    Some(Integrated {
        shape_best,
        placed: Placed {
            fine,
            pitch_kept: false,
            confidence,
            verdict: if refused {
                Verdict::Unsure
            } else {
                Verdict::from_confidence(confidence)
            },
            alternatives,
        },
        verdict_refused: refused,
    })
}

/// The second pass: every distinct hypothesis (section and rate), the
/// spectral shape's best first, integrated over the whole overlap
/// ([`crate::align::integrate`]); the most coherent one is the placement.
fn integrate_sections(
    run: &Run,
    hypotheses: &[Hypothesis],
    shape_z_of: &(dyn Fn(&Line) -> f64 + Sync),
) -> Result<Option<Integrated>> {
    let Some(t_ref) = hypotheses.first().map(|h| h.line.t_ref) else {
        return Ok(None);
    };
    let chosen = distinct_hypotheses(hypotheses, t_ref, run.fs);
    let searched = integrate_hypotheses(run, &chosen, shape_z_of)?;
    Ok(judge_integrated(searched, t_ref))
}

/// Largest error of a proposed rate that [`polish_rate`] corrects (fraction):
/// the onset search's trial rates are 1.25 % apart and a section found by
/// spectral shape borrows the rate of another section.
const RATE_POLISH_RANGE: f64 = 0.008;

/// One recording window of [`polish_rate`] correlated with the song
/// envelope over every lag a trial line can reach.
struct WindowCorrelation {
    /// The window's first frame (s).
    start_s: f64,
    /// The song frame of `corr[0]`.
    first_lag: f64,
    /// Normalised correlation per lag.
    corr: Vec<f64>,
}

/// Running sums of a signal and of its squares (`sums[j]` over the first `j` values).
struct RunningSums {
    sums: Vec<f64>,
    squares: Vec<f64>,
}

impl RunningSums {
    fn of(x: &[f32]) -> RunningSums {
        let (mut sums, mut squares) = (vec![0f64; x.len() + 1], vec![0f64; x.len() + 1]);
        for (i, &v) in x.iter().enumerate() {
            let v = f64::from(v);
            sums[i + 1] = sums[i] + v;
            squares[i + 1] = squares[i] + v * v;
        }
        RunningSums { sums, squares }
    }
}

/// The lag and rate grid of [`polish_rate`] around a candidate.
struct PolishGrid {
    frame_rate: f64,
    win: usize,
    /// Pivot of the rate trials (s): the recording's middle.
    t_ref: f64,
    rate_range: f64,
    /// Rate step (fraction).
    step: f64,
    k_max: i64,
    /// Offset steps (half frames) searched each side.
    sigma_steps: i64,
}

impl PolishGrid {
    /// `None` when either envelope is too short for a window.
    fn new(n_d: usize, n_song: usize, frame_rate: f64, rate_range: f64) -> Option<PolishGrid> {
        let win = ((POLISH_WINDOW_S * frame_rate).round() as usize).clamp(8, n_d.max(8));
        if n_d < win || n_song < win + 2 {
            return None;
        }
        let t_ref = n_d as f64 / frame_rate / 2.0;
        let lever_s = t_ref.max(1.0);
        // rate steps that move the ends of the recording by about half a frame
        let step = (0.5 / (frame_rate * lever_s)).max(1e-4);
        Some(PolishGrid {
            frame_rate,
            win,
            t_ref,
            rate_range,
            step,
            k_max: (rate_range / step).ceil() as i64,
            sigma_steps: (POLISH_SIGMA_RADIUS_S * frame_rate * 2.0).ceil() as i64,
        })
    }

    /// The window starting at frame `a` correlated with the song over the
    /// lags the grid around `c` reaches; `None` for a flat window or no lag.
    fn correlate_window(
        &self,
        recording_env: &[f32],
        song_env: &[f32],
        song_sums: &RunningSums,
        c: &crate::align::coarse::CoarseCandidate,
        a: usize,
    ) -> Option<WindowCorrelation> {
        let (win, frame_rate, t_ref) = (self.win, self.frame_rate, self.t_ref);
        let seg = &recording_env[a..a + win];
        let mean = seg.iter().map(|&v| f64::from(v)).sum::<f64>() / win as f64;
        let needle: Vec<f64> = seg.iter().map(|&v| f64::from(v) - mean).collect();
        let nn: f64 = needle.iter().map(|v| v * v).sum();
        let t_c = (a as f64 + 0.5 * win as f64) / frame_rate;
        if nn.is_nan() || nn <= 1e-12 {
            return None;
        }
        // song frame where the line puts the window's first frame
        let pred = (c.sigma_s + (a as f64 / frame_rate - t_ref) / c.rate) * frame_rate;
        let reach = self.rate_range * 1.1 * (t_c - t_ref).abs() * frame_rate
            + POLISH_SIGMA_RADIUS_S * frame_rate
            + 2.0;
        let lo = (pred - reach).floor().max(0.0) as usize;
        let hi = ((pred + reach).ceil().max(0.0) as usize).min(song_env.len() - win);
        if lo > hi {
            return None;
        }
        let RunningSums { sums, squares } = song_sums;
        // The needle sums to zero, so its dot product with the song excerpt
        // needs no excerpt mean; the excerpt's spread comes from running sums.
        let corr: Vec<f64> = (lo..=hi)
            .map(|j| {
                let y = &song_env[j..j + win];
                let dot: f64 = needle.iter().zip(y).map(|(x, &v)| x * f64::from(v)).sum();
                let sum = sums[j + win] - sums[j];
                let ss = (squares[j + win] - squares[j]) - sum * sum / win as f64;
                if ss > 1e-12 {
                    dot / (nn * ss).sqrt()
                } else {
                    0.0
                }
            })
            .collect();
        Some(WindowCorrelation {
            start_s: a as f64 / frame_rate,
            first_lag: lo as f64,
            corr,
        })
    }

    /// Every window (half overlapping, the last one flush with the end)
    /// correlated around `c`.
    fn correlate_windows(
        &self,
        recording_env: &[f32],
        song_env: &[f32],
        c: &crate::align::coarse::CoarseCandidate,
    ) -> Vec<WindowCorrelation> {
        let (n_d, win) = (recording_env.len(), self.win);
        let song_sums = RunningSums::of(song_env);
        let mut windows = Vec::new();
        let mut a = 0usize;
        loop {
            windows.extend(self.correlate_window(recording_env, song_env, &song_sums, c, a));
            if a + win >= n_d {
                break;
            }
            a = (a + win / 2).min(n_d - win);
        }
        windows
    }

    /// Summed correlation of the windows along the line (`sigma`, `rate`).
    fn score(&self, windows: &[WindowCorrelation], sigma: f64, rate: f64) -> f64 {
        windows
            .iter()
            .map(|w| {
                let corr = &w.corr;
                let x = (sigma + (w.start_s - self.t_ref) / rate) * self.frame_rate - w.first_lag;
                if x < 0.0 || x > (corr.len() - 1) as f64 {
                    return 0.0;
                }
                let i = (x.floor() as usize).min(corr.len() - 1);
                let f = x - i as f64;
                let next = corr.get(i + 1).copied().unwrap_or(corr[i]);
                corr[i] * (1.0 - f) + next * f
            })
            .sum()
    }

    /// The grid's best line, starting from `c`'s own score.
    fn search(
        &self,
        windows: &[WindowCorrelation],
        c: &crate::align::coarse::CoarseCandidate,
    ) -> crate::align::coarse::CoarseCandidate {
        let (frame_rate, t_ref, sigma_steps) = (self.frame_rate, self.t_ref, self.sigma_steps);
        let mut best = crate::align::coarse::CoarseCandidate {
            sigma_s: c.sigma_s,
            rate: c.rate,
            score: self.score(windows, c.sigma_s, c.rate),
        };
        // Every offset step moves each window's lag by half a frame: per rate,
        // each window adds its correlation at all the trial offsets in one pass
        // (windows in the same order as `score`, so the sums are the same).
        // Even and odd offset steps share a fractional lag: each parity is a
        // straight run of linear interpolations between neighbouring lags.
        let n_sigma = (2 * sigma_steps + 1) as usize;
        let mut parity_totals = [vec![0f64; n_sigma.div_ceil(2)], vec![0f64; n_sigma / 2]];
        for k in -self.k_max..=self.k_max {
            let rate = c.rate * (1.0 + k as f64 * self.step);
            parity_totals.iter_mut().for_each(|t| t.fill(0.0));
            for w in windows {
                let x0 = (c.sigma_s + (w.start_s - t_ref) / rate) * frame_rate - w.first_lag;
                for (parity, run) in parity_totals.iter_mut().enumerate() {
                    add_lerp_run(
                        run,
                        &w.corr,
                        x0 + (parity as f64 - sigma_steps as f64) * 0.5,
                    );
                }
            }
            // offset step d, in increasing order (ties keep the first, as before)
            for d in 0..n_sigma {
                let v = parity_totals[d % 2][d / 2];
                if v > best.score {
                    let sigma = c.sigma_s + (d as f64 - sigma_steps as f64) * 0.5 / frame_rate;
                    best = crate::align::coarse::CoarseCandidate {
                        sigma_s: sigma,
                        rate,
                        score: v,
                    };
                }
            }
        }
        best
    }
}

/// Moves a candidate line to the onset-envelope optimum in offset (±60 ms)
/// and rate (±`rate_range`, pivoting on `t_ref`). The fine stage
/// searches only a few tenths of a percent of rate around its input.
///
/// Each recording window (2 s, half overlapping, read at the candidate's
/// rate) is correlated once with the song envelope over every lag any trial
/// line can reach; trial lines then just sum those normalised correlations.
fn polish_rate(
    recording_env: &[f32],
    song_env: &[f32],
    frame_rate: f64,
    c: crate::align::coarse::CoarseCandidate,
    rate_range: f64,
) -> crate::align::coarse::CoarseCandidate {
    let Some(grid) = PolishGrid::new(recording_env.len(), song_env.len(), frame_rate, rate_range)
    else {
        return c;
    };
    let windows = grid.correlate_windows(recording_env, song_env, &c);
    if windows.len() < 2 {
        return c;
    }
    grid.search(&windows, &c)
}

/// `run[j] += corr` linearly interpolated at lag `x + j`, for every `j` where
/// that lag lies within `corr` (the last lag counts only when hit exactly).
fn add_lerp_run(run: &mut [f64], corr: &[f64], x: f64) {
    let last = corr.len() as f64 - 1.0;
    if corr.is_empty() || x > last || x + run.len() as f64 - 1.0 < 0.0 {
        return;
    }
    let i0 = x.floor();
    let f = x - i0;
    // first j with x + j >= 0, and one past the last with x + j <= last
    let j_first = if x < 0.0 { (-x).ceil() as usize } else { 0 };
    let j_end = (((last - x).floor() as usize) + 1).min(run.len());
    if j_first >= j_end {
        return;
    }
    // lags i0 + j and i0 + j + 1; the very last lag has no right neighbour
    // (it is only reached with f = 0)
    let base = (i0 + j_first as f64) as usize;
    let mut end = j_end;
    if base + (j_end - j_first) >= corr.len() {
        end -= 1;
        run[end] += corr[corr.len() - 1];
    }
    let n = end - j_first;
    let (left, right) = (&corr[base..base + n], &corr[base + 1..base + 1 + n]);
    for ((r, &a), &b) in run[j_first..end].iter_mut().zip(left).zip(right) {
        *r += a * (1.0 - f) + b * f;
    }
}

/// Recording window of [`polish_rate`] (s): short enough that a rate error
/// of [`RATE_POLISH_RANGE`] blurs it by under a frame.
const POLISH_WINDOW_S: f64 = 2.0;
/// Offset searched by [`polish_rate`] around the candidate (s, ±).
const POLISH_SIGMA_RADIUS_S: f64 = 0.15;

/// Above this speed difference the recording may be resampled (pitch shifted)
/// or time-stretched (pitch kept); both are tried.
const STRETCH_MIN_DEVIATION: f64 = 0.003;
/// Below this speed difference a 2048-sample window drifts by under 0.5
/// sample end to end: the song excerpt is read without re-timing.
const RESAMPLE_MIN_DEVIATION: f64 = 4e-4;

fn variants_for(rate: f64, ranking: bool) -> Vec<FineParams> {
    let hop_s = if ranking { 1.5 } else { 0.25 };
    let max_windows = if ranking { 80 } else { 600 };
    let resampled = FineParams {
        win_len: 2048,
        hop_s,
        max_windows,
        max_lag: 480,
        resample: (rate - 1.0).abs() > RESAMPLE_MIN_DEVIATION,
        stretched: false,
        max_end_shift: if ranking { 64.0 } else { 24.0 },
        min_rate_slack: if ranking { 2e-3 } else { 0.0 },
    };
    if (rate - 1.0).abs() <= STRETCH_MIN_DEVIATION {
        return vec![resampled];
    }
    // Pitch-kept time stretching (WSOLA) is only locally a pure delay:
    // shorter windows, song excerpt not re-timed.
    let stretched = FineParams {
        win_len: 2048,
        hop_s: hop_s / 2.0,
        max_windows: max_windows * 2,
        max_lag: 480,
        resample: false,
        stretched: true,
        max_end_shift: if ranking { 64.0 } else { 24.0 },
        min_rate_slack: if ranking { 2e-3 } else { 0.0 },
    };
    vec![resampled, stretched]
}

/// The part of the recording in which the song is heard (recording times, s).
pub(super) struct HeardSpan {
    pub(super) start: f64,
    pub(super) end: f64,
}

/// The run of windows with the largest mean-shift statistic (see [`heard_span`]).
struct PresenceRun {
    first: usize,
    last: usize,
    /// Mean clipped presence over the run.
    mu: f64,
}

/// The run of `windows` (not empty) with the largest `S^2 / n`.
fn strongest_presence_run(windows: &[crate::align::fine::WindowObs]) -> PresenceRun {
    let p: Vec<f64> = windows
        .iter()
        .map(|o| o.presence.clamp(-HEARD_CLIP, HEARD_CLIP))
        .collect();
    let mut prefix = vec![0.0f64; p.len() + 1];
    for (i, v) in p.iter().enumerate() {
        prefix[i + 1] = prefix[i] + v;
    }
    let (mut best_stat, mut first, mut last) = (0.0f64, 0usize, p.len() - 1);
    for i in 0..p.len() {
        for j in i..p.len() {
            let s = prefix[j + 1] - prefix[i];
            if s > 0.0 {
                let stat = s * s / (j + 1 - i) as f64;
                if stat > best_stat {
                    (best_stat, first, last) = (stat, i, j);
                }
            }
        }
    }
    let n_run = (last + 1 - first) as f64;
    PresenceRun {
        first,
        last,
        mu: (prefix[last + 1] - prefix[first]) / n_run,
    }
}

/// Whether the song is shown absent over windows left out of the run.
struct AbsenceTest<'a> {
    /// The run's mean presence.
    mu: f64,
    /// The song's median level over the run (dB).
    run_level: f64,
    shape_z: &'a dyn Fn(f64, f64) -> f64,
}

impl<'a> AbsenceTest<'a> {
    fn new(
        windows: &[crate::align::fine::WindowObs],
        run: &PresenceRun,
        shape_z: &'a dyn Fn(f64, f64) -> f64,
    ) -> Self {
        let mut run_db: Vec<f64> = windows[run.first..=run.last]
            .iter()
            .map(|o| o.song_db)
            .collect();
        run_db.sort_by(f64::total_cmp);
        AbsenceTest {
            mu: run.mu,
            run_level: run_db[run_db.len() / 2],
            shape_z,
        }
    }

    /// Is the song absent over the windows `gap`, recording times `t_a..t_b`?
    fn absent(&self, gap: &[crate::align::fine::WindowObs], t_a: f64, t_b: f64) -> bool {
        let (mu, run_level) = (self.mu, self.run_level);
        if gap.is_empty() || mu <= 0.0 {
            return false;
        }
        let level = gap.iter().map(|o| o.song_db).sum::<f64>() / gap.len() as f64;
        let gap_mean = gap
            .iter()
            .map(|o| o.presence.clamp(-HEARD_CLIP, HEARD_CLIP))
            .sum::<f64>()
            / gap.len() as f64;
        // what the song would show there: presence follows its amplitude
        let expected = mu * 10f64.powf((level - run_level).min(0.0) / 20.0);
        let shape = (self.shape_z)(t_a, t_b);
        if debug_enabled() {
            eprintln!(
                "heard: gap {t_a:.2}-{t_b:.2} s ({} windows, mean presence {gap_mean:.2}, expected {expected:.2}) vs run mean {mu:.2}, level {level:.1} vs {run_level:.1} dB, shape z {shape:.2}",
                gap.len()
            );
        }
        (expected - gap_mean) * (gap.len() as f64).sqrt() >= HEARD_ABSENCE_Z
            && shape < HEARD_SHAPE_Z
    }
}

/// The part of the recording where the song is heard.
///
/// Each window's on-line presence is about 0 (null standard deviations)
/// where the song is absent and some level `mu` where it plays. The run of
/// windows with the largest mean-shift statistic `S^2 / n` (`S`: the sum of
/// presence over the run, clipped against single loud windows) estimates
/// both the run and `mu` at once; its edges sit where the evidence crosses
/// `mu / 2`, so talk before the music neither joins the run nor drags its
/// start. A part of the physical overlap left out of the run is only
/// believed silent when its presence falls short of what the song would
/// give there by enough to show it - the run's `mu`, scaled down where the
/// song itself is quieter (a quiet passage under noise is still played) -
/// and the song's spectral shape does not follow the line there
/// (`shape_z`: recording times to a z-score, see [`shape_presence`]);
/// otherwise that end snaps to the physical overlap.
fn heard_span(
    fine: &FineOutcome,
    line: &Line,
    recording_dur: f64,
    song_dur: f64,
    shape_z: &dyn Fn(f64, f64) -> f64,
) -> HeardSpan {
    let phys_start = line.dance_at(0.0).max(0.0);
    let phys_end = line.dance_at(song_dur).min(recording_dur);
    let physical = HeardSpan {
        start: phys_start,
        end: phys_end,
    };
    let w = &fine.windows;
    if w.is_empty() {
        return physical;
    }
    let run = strongest_presence_run(w);
    let (first, last) = (run.first, run.last);
    let test = AbsenceTest::new(w, &run, shape_z);
    let half = 0.5 * fine.hop_s;
    let mut start = (w[first].t_s - half).max(phys_start);
    let mut end = (w[last].t_s + half).min(phys_end);
    // Where the song itself starts or ends inside the recording, the music
    // is there up to that point: a quiet intro or outro has few clear
    // windows, so those ends snap from further.
    let start_snap = if line.dance_at(0.0) > 0.0 { 1.5 } else { 0.0 };
    let end_snap = if line.dance_at(song_dur) < recording_dur {
        12.0
    } else {
        0.0
    };
    if start - phys_start < start_snap || !test.absent(&w[..first], phys_start, start) {
        start = phys_start;
    }
    if phys_end - end < end_snap || !test.absent(&w[last + 1..], end, phys_end) {
        end = phys_end;
    }
    if end <= start {
        return physical;
    }
    HeardSpan { start, end }
}

/// Spectral-shape evidence that the song plays over recording times
/// `t_a..t_b` on `line`: the mean per-frame shape similarity there, against
/// the same with the song displaced by several seconds either way (z-score).
fn shape_presence(
    recording: &crate::dsp::spectral::SpectralShape,
    song: &crate::dsp::spectral::SpectralShape,
    frame_rate: f64,
    line: &Line,
    t_a: f64,
    t_b: f64,
) -> f64 {
    let nb = recording.n_bands;
    if nb == 0 || song.n_bands != nb || song.frames < 2 {
        return 0.0;
    }
    let f_a = (t_a * frame_rate).ceil().max(0.0) as usize;
    let f_b = ((t_b * frame_rate).floor().max(0.0) as usize).min(recording.frames);
    if f_b <= f_a + 10 {
        return 0.0;
    }
    let mean_at = |shift_s: f64| -> Option<f64> {
        let (mut total, mut n) = (0f64, 0usize);
        for t in f_a..f_b {
            let x = (line.song_at(t as f64 / frame_rate) + shift_s) * frame_rate;
            if let Some(dot) = crate::dsp::spectral::frame_similarity(recording, t, song, x) {
                total += f64::from(dot);
                n += 1;
            }
        }
        (n * 2 > f_b - f_a).then(|| total / n as f64)
    };
    let Some(on) = mean_at(0.0) else {
        return 0.0;
    };
    let nulls: Vec<f64> = (0..12)
        .flat_map(|k| {
            let d = 2.0 + 1.5 * k as f64;
            [d, -d]
        })
        .filter_map(mean_at)
        .collect();
    if nulls.len() < 4 {
        return 0.0;
    }
    let mean = nulls.iter().sum::<f64>() / nulls.len() as f64;
    let sd = (nulls.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>()
        / (nulls.len() - 1) as f64)
        .sqrt()
        .max(1e-9);
    (on - mean) / sd
}

/// Difference-signal evidence between two placements (positive: `a`), over
/// the whole part of the recording that both place inside the song. Only
/// for lines at (nearly) the original speed, read sample for sample.
fn section_difference_evidence(run: &Run, a: &Line, b: &Line) -> Option<f64> {
    let (recording, song, fs) = (run.recording, run.song, run.fs);
    let n = recording.len() as f64;
    if (a.rate - 1.0).abs() * n > 0.5 || (b.rate - 1.0).abs() * n > 0.5 {
        return None;
    }
    let start_a = (a.song_at(0.0) * fs).round() as i64;
    let start_b = (b.song_at(0.0) * fs).round() as i64;
    let k0 = 0i64.max(-start_a).max(-start_b);
    let k1 = (recording.len() as i64)
        .min(song.len() as i64 - start_a)
        .min(song.len() as i64 - start_b);
    if k1 <= k0 {
        return None;
    }
    // In blocks of at most ~30 s (memory and time stay flat however long the
    // overlap): each block's evidence is a z-score difference, so the sum
    // over k independent blocks divided by sqrt(k) keeps the same scale.
    let len = (k1 - k0) as usize;
    let max_block = ((TIEBREAK_BLOCK_S * fs) as usize).max(1);
    let blocks = len.div_ceil(max_block);
    let block = len.div_ceil(blocks);
    let (mut sum, mut count) = (0.0, 0usize);
    for i in 0..blocks {
        let lo = k0 as usize + i * block;
        let hi = (lo + block).min(k1 as usize);
        let (oa, ob) = (start_a + lo as i64, start_b + lo as i64);
        let span = hi - lo;
        let r = &recording[lo..hi];
        let sa = &song[oa as usize..oa as usize + span];
        let sb = &song[ob as usize..ob as usize + span];
        if let Some(ev) = crate::align::tiebreak::difference_evidence(r, sa, sb, fs) {
            sum += ev;
            count += 1;
        }
    }
    (count > 0).then(|| sum / (count as f64).sqrt())
}

/// Longest piece of the overlap the tie-break compares at once (s).
const TIEBREAK_BLOCK_S: f64 = 30.0;

/// Diagnostics on stderr when `BEATSYNC_ALIGN_DEBUG` is set (development aid).
fn debug_enabled() -> bool {
    std::env::var_os("BEATSYNC_ALIGN_DEBUG").is_some()
}

/// Moving average of each band over `±radius` frames (0: unchanged).
fn smooth_bands(log_bands: &[f32], n_bands: usize, radius: usize) -> Vec<f32> {
    if radius == 0 || n_bands == 0 {
        return log_bands.to_vec();
    }
    let frames = log_bands.len() / n_bands;
    let mut out = vec![0f32; log_bands.len()];
    let mut column = vec![0f32; frames];
    for b in 0..n_bands {
        for (f, c) in column.iter_mut().enumerate() {
            *c = log_bands[f * n_bands + b];
        }
        let m = crate::dsp::onset::moving_mean(&column, radius);
        for f in 0..frames {
            out[f * n_bands + b] = m[f];
        }
    }
    out
}

fn is_silent(x: &[f32]) -> bool {
    let peak = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    peak < 1e-5
}

#[cfg(test)]
mod tests {
    //! End-to-end checks of [`align_signals`] on synthetic songs: a drum
    //! pattern that is the same in every bar (the trap) plus a tonal part
    //! that changes per bar, placed in a "recording" with known offset,
    //! rate, noise and reverb.
    use super::verdict::{refutation, Evidence};
    use super::*;
    use crate::dsp::interp::SincInterpolator;

    const FS: u32 = 8000;

    use crate::test_signal::Lcg;

    /// One 2-second bar (120 BPM): kick on every beat, hat on 8ths (identical
    /// in every bar) and a two-note tone whose pitches come from `bar_seed`.
    fn bar(bar_seed: u64) -> Vec<f32> {
        let n = 2 * FS as usize;
        let mut x = vec![0f32; n];
        let mut drum_rng = Lcg(7);
        let hat: Vec<f32> = (0..400).map(|_| drum_rng.next()).collect();
        for beat in 0..4 {
            let at = beat * n / 4;
            for i in 0..1600 {
                let t = i as f32 / FS as f32;
                x[at + i] +=
                    0.8 * (2.0 * std::f32::consts::PI * 60.0 * t).sin() * (-t / 0.08).exp();
            }
        }
        for eighth in 0..8 {
            let at = eighth * n / 8;
            for (i, h) in hat.iter().enumerate() {
                x[at + i] += 0.3 * h * (-(i as f32) / 80.0).exp();
            }
        }
        let mut rng = Lcg(bar_seed.wrapping_mul(977).wrapping_add(13));
        for half in 0..2 {
            let f = 220.0 * 2f32.powf((rng.next() + 1.0) * 1.5);
            let at = half * n / 2;
            for i in 0..n / 2 {
                let t = i as f32 / FS as f32;
                x[at + i] += 0.25 * (2.0 * std::f32::consts::PI * f * t).sin() * (-t / 0.6).exp();
            }
        }
        x
    }

    /// The run form of the polish search adds what a lag-by-lag linear
    /// interpolation adds, ends and partial overlaps included.
    #[test]
    fn lerp_run_matches_lag_by_lag_interpolation() {
        let mut rng = Lcg(2024);
        for case in 0..400 {
            let len = 1 + rng.below(12) as usize;
            let corr: Vec<f64> = (0..len).map(|_| f64::from(rng.next())).collect();
            let n = 1 + rng.below(9) as usize;
            // starts from well before to well after the lags, half-integers and
            // exact integers included
            let x = match case % 3 {
                0 => rng.below(4 * len as u64 + 20) as f64 * 0.5 - 10.0,
                _ => f64::from(rng.next()) * (len as f64 + 10.0),
            };
            let mut run = vec![0.0; n];
            add_lerp_run(&mut run, &corr, x);
            let last = (len - 1) as f64;
            for (j, &got) in run.iter().enumerate() {
                let xj = x + j as f64;
                let want = if xj < 0.0 || xj > last {
                    0.0
                } else {
                    let i = xj.floor() as usize;
                    let f = xj - i as f64;
                    let next = corr.get(i + 1).copied().unwrap_or(corr[i]);
                    corr[i] * (1.0 - f) + next * f
                };
                assert!(
                    (got - want).abs() < 1e-12,
                    "case {case}: len {len} x {x} j {j}: {got} vs {want}"
                );
            }
        }
    }

    fn song_from_bars(seeds: &[u64]) -> Vec<f32> {
        seeds.iter().flat_map(|&s| bar(s)).collect()
    }

    fn song(n_bars: u64, seed: u64) -> Vec<f32> {
        song_from_bars(&(0..n_bars).map(|b| seed * 1000 + b).collect::<Vec<_>>())
    }

    struct Recording {
        /// recording_time = offset + rate * song_time (at song time 0)
        offset_s: f64,
        rate: f64,
        dur_s: f64,
        snr_db: f64,
        reverb: bool,
    }

    /// The song played into a room and recorded; returns the signal and the
    /// expected `offset_s` at the middle of the part where the song is heard.
    fn record(song: &[f32], r: &Recording) -> (Vec<f32>, f64) {
        let it = SincInterpolator::new();
        let n = (r.dur_s * f64::from(FS)) as usize;
        let mut x: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(FS);
                it.at(song, (t - r.offset_s) / r.rate * f64::from(FS))
            })
            .collect();
        if r.reverb {
            // direct sound + a reflection 7 ms later + a decaying diffuse tail
            let mut rng = Lcg(99);
            let tail: Vec<f32> = (0..2400)
                .map(|i| 0.25 * rng.next() * (-(i as f32) / 600.0).exp())
                .collect();
            let dry = x.clone();
            for i in 0..n {
                let mut acc = dry[i];
                if i >= 56 {
                    acc += 0.5 * dry[i - 56];
                }
                for (k, h) in tail.iter().enumerate().skip(80).step_by(3) {
                    if i >= k {
                        acc += h * dry[i - k];
                    }
                }
                x[i] = acc;
            }
        }
        let power = x.iter().map(|v| v * v).sum::<f32>() / n as f32;
        let noise_amp = (power * 10f32.powf(-r.snr_db as f32 / 10.0) * 3.0).sqrt();
        let mut rng = Lcg(4242);
        for v in x.iter_mut() {
            *v += noise_amp * rng.next();
        }
        let song_dur = song.len() as f64 / f64::from(FS);
        let start = r.offset_s.max(0.0);
        let end = (r.offset_s + r.rate * song_dur).min(r.dur_s);
        let mid = 0.5 * (start + end);
        let song_at_mid = (mid - r.offset_s) / r.rate;
        (x, mid - song_at_mid)
    }

    fn run(recording: &[f32], song: &[f32]) -> Result<AlignResult> {
        align_signals(
            recording,
            song,
            FS,
            &AlignOptions::default(),
            &CancelToken::new(),
            &mut |_, _| {},
        )
    }

    fn assert_offset(case: &str, song: &[f32], rec: Recording, tol_ms: f64) -> AlignResult {
        let (recording, want) = record(song, &rec);
        let got = run(&recording, song).unwrap_or_else(|e| panic!("{case}: {e}"));
        let err_ms = (got.offset_s - want) * 1e3;
        assert!(
            err_ms.abs() < tol_ms,
            "{case}: offset {} vs {} ({err_ms:.2} ms)",
            got.offset_s,
            want
        );
        assert!(
            (got.rate - rec.rate).abs() < 2e-4,
            "{case}: rate {} vs {}",
            got.rate,
            rec.rate
        );
        got
    }

    #[test]
    fn integer_lag_recording_starts_before_the_song() {
        let s = song(20, 1);
        let r = assert_offset(
            "positive",
            &s,
            Recording {
                offset_s: 3.0,
                rate: 1.0,
                dur_s: 30.0,
                snr_db: 20.0,
                reverb: false,
            },
            0.5,
        );
        assert!(
            (r.overlap.dance_start_s - 3.0).abs() < 0.6,
            "heard from {}",
            r.overlap.dance_start_s
        );
        assert!(r.confidence >= 0.9, "confidence {}", r.confidence);
    }

    #[test]
    fn sub_sample_lag_recording_starts_inside_the_song() {
        let s = song(30, 2);
        assert_offset(
            "negative",
            &s,
            Recording {
                offset_s: -21.250_06,
                rate: 1.0,
                dur_s: 30.0,
                snr_db: 20.0,
                reverb: false,
            },
            0.2,
        );
    }

    #[test]
    fn noise_at_zero_db_and_reverb() {
        let s = song(30, 3);
        assert_offset(
            "0 dB",
            &s,
            Recording {
                offset_s: -7.3,
                rate: 1.0,
                dur_s: 40.0,
                snr_db: 0.0,
                reverb: false,
            },
            1.0,
        );
        assert_offset(
            "reverb",
            &s,
            Recording {
                offset_s: 4.1,
                rate: 1.0,
                dur_s: 40.0,
                snr_db: 10.0,
                reverb: true,
            },
            1.0,
        );
    }

    #[test]
    fn clock_drift_200_ppm() {
        let s = song(40, 4);
        assert_offset(
            "drift",
            &s,
            Recording {
                offset_s: -12.0,
                rate: 1.0002,
                dur_s: 60.0,
                snr_db: 10.0,
                reverb: false,
            },
            1.0,
        );
    }

    #[test]
    fn playback_three_percent_faster() {
        let s = song(40, 5);
        assert_offset(
            "speed",
            &s,
            Recording {
                offset_s: -5.0,
                rate: 1.0 / 1.03,
                dur_s: 45.0,
                snr_db: 10.0,
                reverb: false,
            },
            2.0,
        );
    }

    /// WSOLA-like pitch-kept stretch: 80-ms chunks of the song, each read
    /// at the ideal position plus its own jitter (up to ±8 ms), cross-faded
    /// over 10 ms. The expected line is the jitter-free one.
    fn wsola(song: &[f32], start_song_s: f64, speed: f64, dur_s: f64) -> Vec<f32> {
        let fs = f64::from(FS);
        let n = (dur_s * fs) as usize;
        let chunk = (0.08 * fs) as usize;
        let fade = (0.01 * fs) as usize;
        let mut out = vec![0f32; n + chunk + fade];
        let mut rng = Lcg(31);
        let mut at = 0usize;
        while at < n {
            let jitter = (f64::from(rng.next()) * 0.008 * fs).round() as i64;
            let src = ((start_song_s + at as f64 / fs * speed) * fs).round() as i64 + jitter;
            for i in 0..chunk + fade {
                let k = src + i as i64;
                if k < 0 || k as usize >= song.len() {
                    continue;
                }
                let w = if i < fade {
                    i as f32 / fade as f32
                } else if i >= chunk {
                    1.0 - (i - chunk) as f32 / fade as f32
                } else {
                    1.0
                };
                out[at + i] += w * song[k as usize];
            }
            at += chunk;
        }
        out.truncate(n);
        let mut noise = Lcg(77);
        for v in out.iter_mut() {
            *v += 0.05 * noise.next();
        }
        out
    }

    #[test]
    fn wsola_stretch_with_jitter_is_placed_on_its_line() {
        let s = song(60, 8);
        // the recording plays the song 3.5 % slower from song time 30 s
        let speed = 0.965;
        let recording = wsola(&s, 30.0, speed, 40.0);
        let got = run(&recording, &s).unwrap_or_else(|e| panic!("wsola: {e}"));
        // recording_time = (song_time - 30) / speed: offset at the middle (20 s)
        let want = 20.0 - (30.0 + 20.0 * speed);
        let err_ms = (got.offset_s - want) * 1e3;
        assert!(
            err_ms.abs() < 3.0,
            "offset {} vs {want} ({err_ms:.2} ms)",
            got.offset_s
        );
        assert!((got.rate - 1.0 / speed).abs() < 3e-4, "rate {}", got.rate);
        assert!(got.pitch_kept, "a time stretch keeps the pitch");
    }

    #[test]
    fn talk_before_music_does_not_move_the_reference_time() {
        let s = song(60, 9);
        let fs = f64::from(FS);
        // 1.2 s of "talk" (voiced, syllable-modulated, nothing like the song),
        // then the song from its 40th second, played 3 % faster
        let rate = 1.0 / 1.03;
        let talk_s = 1.2;
        let (mut recording, _) = record(
            &s,
            &Recording {
                offset_s: talk_s - rate * 40.0,
                rate,
                dur_s: 40.0,
                snr_db: 15.0,
                reverb: false,
            },
        );
        let mut rng = Lcg(5);
        let level = recording[(talk_s * fs) as usize..]
            .iter()
            .map(|v| v.abs())
            .fold(0f32, f32::max);
        let mut phase = 0f64;
        for (i, v) in recording
            .iter_mut()
            .enumerate()
            .take((talk_s * fs) as usize)
        {
            let t = i as f64 / fs;
            let pitch = 140.0 + 30.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
            phase += 2.0 * std::f64::consts::PI * pitch / fs;
            let syllable = (std::f64::consts::PI * 4.0 * t).sin().abs() as f32;
            *v = level
                * syllable
                * (0.4 * phase.sin() as f32 + 0.2 * (3.0 * phase).sin() as f32 + 0.1 * rng.next());
        }
        let got = run(&recording, &s).unwrap_or_else(|e| panic!("talk: {e}"));
        // music from 1.2 s to the end: the offset is read at its middle
        let mid = 0.5 * (talk_s + 40.0);
        let want = mid - (40.0 + (mid - talk_s) / rate);
        let err_ms = (got.offset_s - want) * 1e3;
        assert!(
            err_ms.abs() < 3.0,
            "offset {} vs {want} ({err_ms:.2} ms)",
            got.offset_s
        );
        assert!(
            (got.overlap.dance_start_s - talk_s).abs() < 0.4,
            "music heard from {}",
            got.overlap.dance_start_s
        );
    }

    #[test]
    fn loop_repeated_eight_times_with_one_distinct_bar() {
        // 4 intro bars, the same bar 8 times, one distinct bar, the loop 8 times again
        let mut seeds: Vec<u64> = (100..104).collect();
        seeds.extend(std::iter::repeat_n(555, 8));
        seeds.push(777);
        seeds.extend(std::iter::repeat_n(555, 8));
        let s = song_from_bars(&seeds);
        // the recording sees loop bars and the distinct bar (song 14 s .. 34 s)
        let r = assert_offset(
            "loop",
            &s,
            Recording {
                offset_s: -14.0,
                rate: 1.0,
                dur_s: 20.0,
                snr_db: 10.0,
                reverb: false,
            },
            1.0,
        );
        // the alternatives are whole bars away
        for c in r.candidates.iter().skip(1) {
            assert!(
                (c.offset_s - r.offset_s).abs() > 1.9,
                "alternative {}",
                c.offset_s
            );
        }
    }

    #[test]
    fn another_song_silence_and_noise_are_no_match() {
        let s = song(30, 6);
        let other = song(30, 60);
        // a different song with the same drums: tonal parts differ
        let (recording, _) = record(
            &other,
            &Recording {
                offset_s: -3.0,
                rate: 1.0,
                dur_s: 30.0,
                snr_db: 20.0,
                reverb: false,
            },
        );
        let other_result = run(&recording, &s);
        match other_result {
            Err(EngineError::NoMatch { .. }) => {}
            Ok(r) => assert!(
                r.confidence < 0.5,
                "another song placed with confidence {}",
                r.confidence
            ),
            Err(e) => panic!("unexpected error {e}"),
        }
        let silence = vec![0f32; 20 * FS as usize];
        assert_eq!(
            run(&silence, &s).map(|_| ()).unwrap_err().code(),
            "no_match"
        );
        let mut rng = Lcg(5);
        let noise: Vec<f32> = (0..20 * FS as usize).map(|_| 0.1 * rng.next()).collect();
        assert_eq!(run(&noise, &s).map(|_| ()).unwrap_err().code(), "no_match");
    }

    /// Final-pass evidence measured on bench cases (BENCHMARKS.md, wrong song):
    /// (z, heard, windows, rate, pitch kept, shape z).
    fn evidence(z: f64, heard: usize, windows: usize, rate: f64, pk: bool, shape: f64) -> Evidence {
        Evidence {
            z,
            heard_windows: heard,
            windows,
            rate,
            pitch_kept: pk,
            shape_z: shape,
        }
    }

    #[test]
    fn the_song_itself_is_accepted_in_the_bench_s_weakest_cases() {
        for (case, e) in [
            // pitch-kept tempo change, lowest GCC z and heard fraction
            ("public/pub016", evidence(9.21, 39, 328, 1.039, true, 8.53)),
            // pitch-kept, lowest shape z (held-out seed 41)
            (
                "seed41/pub005",
                evidence(19.79, 119, 348, 0.9655, true, 4.26),
            ),
            // drift, talk and two speakers: lowest non-stretched z and shape z
            (
                "seed11/pub003",
                evidence(14.57, 21, 131, 1.0002, false, 3.23),
            ),
            // varispeed with the lowest heard fraction
            (
                "seed31/pub007",
                evidence(27.13, 55, 161, 0.974, false, 10.18),
            ),
        ] {
            assert_eq!(refutation(&e), None, "{case}");
        }
    }

    #[test]
    fn other_songs_matched_at_a_tempo_ratio_are_refuted() {
        for (pair, e, why) in [
            (
                "seed23 pub008 x pub013",
                evidence(10.85, 5, 309, 1.0264, false, 5.83),
                "heard in only",
            ),
            (
                "seed41 pub004 x pub015",
                evidence(11.29, 25, 600, 0.9592, false, 4.26),
                "heard in only",
            ),
            (
                "seed11 pub018 x pub003",
                evidence(10.88, 59, 944, 1.0205, true, 3.53),
                "pitch-kept",
            ),
            (
                "seed11 pub008 x pub013",
                evidence(14.52, 84, 1153, 1.0205, true, 3.38),
                "pitch-kept",
            ),
            (
                "seed11 pub004 x pub011",
                evidence(9.91, 38, 346, 1.0332, true, 2.53),
                "pitch-kept",
            ),
            (
                "weak everywhere",
                evidence(8.5, 40, 300, 1.0, false, 6.0),
                "noise-level",
            ),
        ] {
            let reason = refutation(&e).unwrap_or_default();
            assert!(reason.contains(why), "{pair}: {reason:?}");
        }
    }

    /// A checkpoint stored before the verdict existed reads as `sure`; a
    /// new one keeps its verdict.
    #[test]
    fn a_result_without_verdict_reads_as_sure() {
        let old = r#"{"offset_s":1.5,"rate":1.0,"confidence":0.97,"candidates":[],"pitch_kept":false,
            "overlap":{"dance_start_s":0,"dance_end_s":10,"bgm_start_s":0,"bgm_end_s":10},
            "bpm":null,"beats_s":[],"downbeats_s":[],
            "timings_ms":{"decode":1,"features":1,"search":1,"refine":1}}"#;
        let r: AlignResult = serde_json::from_str(old).expect("old checkpoint");
        assert_eq!(r.verdict, Verdict::Sure);
        let unsure = AlignResult {
            verdict: Verdict::Unsure,
            ..r
        };
        let json = serde_json::to_string(&unsure).expect("serialise");
        assert!(json.contains(r#""verdict":"unsure""#), "{json}");
        let back: AlignResult = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.verdict, Verdict::Unsure);
    }

    #[test]
    fn under_three_seconds_is_too_short() {
        let s = song(10, 7);
        let short = s[..2 * FS as usize].to_vec();
        assert_eq!(run(&short, &s).map(|_| ()).unwrap_err().code(), "too_short");
        assert_eq!(run(&s, &short).map(|_| ()).unwrap_err().code(), "too_short");
    }

    #[test]
    fn cancellation_stops_the_search() {
        let s = song(20, 8);
        let (recording, _) = record(
            &s,
            &Recording {
                offset_s: 1.0,
                rate: 1.0,
                dur_s: 20.0,
                snr_db: 20.0,
                reverb: false,
            },
        );
        let cancel = CancelToken::new();
        cancel.cancel();
        let r = align_signals(
            &recording,
            &s,
            FS,
            &AlignOptions::default(),
            &cancel,
            &mut |_, _| {},
        );
        assert_eq!(r.map(|_| ()).unwrap_err().code(), "cancelled");
    }
}

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
mod heard;
mod integrate;
mod pipeline;
mod rate_polish;
mod sections;
mod segments;
mod shape;
mod tiebreak;
mod verdict;

use crate::align::fine::{refine_line, FineOutcome, FineParams, Line};
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::media::decode::{decode_audio_with, decode_recording};
pub use pipeline::align_signals;
use pipeline::{Fitted, Run};
pub use segments::Segment;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;
pub use verdict::Verdict;

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
    /// The part of `refine` spent looking for further plays of the song
    /// (absent in results stored before it was measured).
    #[serde(default)]
    pub segments: f64,
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
        let recording_pcm = decode_recording(recording, rate, spill_above_s(), cancel, &mut |f| {
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
        recording_pcm.as_slice().len(),
        rate,
        opts.min_audio_s,
    )?;
    check_length(song, song_pcm.samples.len(), rate, opts.min_audio_s)?;
    let decode_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut result = pipeline::align_releasing(
        recording_pcm.as_slice(),
        &|| recording_pcm.release(),
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
    let recording_pcm = decode_recording(recording, rate, spill_above_s(), cancel, &mut |_| {})?;
    check_length(
        recording,
        recording_pcm.as_slice().len(),
        rate,
        opts.min_audio_s,
    )?;
    let align_one = |song: &Path| -> Result<AlignResult> {
        let t0 = Instant::now();
        let song_pcm = decode_audio_with(song, rate, cancel, &mut |_| {})?;
        check_length(song, song_pcm.samples.len(), rate, opts.min_audio_s)?;
        let decode_ms = t0.elapsed().as_secs_f64() * 1e3;
        let mut result = pipeline::align_releasing(
            recording_pcm.as_slice(),
            &|| recording_pcm.release(),
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

/// Recordings longer than this (s) keep their samples in a spill file
/// ([`crate::media::spill`]): an hour's take is 115 MB of samples, of which
/// each stage after the features reads a few minutes. Shorter ones stay in
/// the heap (a few MB). `BEATSYNC_SPILL_ABOVE_S` sets another limit (0: every
/// recording), to compare both ways on short benchmark cases.
fn spill_above_s() -> f64 {
    std::env::var("BEATSYNC_SPILL_ABOVE_S")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(SPILL_ABOVE_S)
}

const SPILL_ABOVE_S: f64 = 300.0;

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
/// A candidate without coherence whose rate differs from the leader's by
/// more than this was not checked by GCC at the recording's rate.
const UNCHECKED_RATE_GAP: f64 = 1e-3;

/// The final pass on a line: denser windows, both time-stretch hypotheses
/// when the speed differs; the more coherent one. The hypotheses are
/// independent and run side by side (their serial parts, the line search
/// and fit, then overlap; each still spreads its window correlations over
/// the threads): a line's windows give the same values on any number of
/// threads, and the winner is chosen in hypothesis order.
fn final_pass(run: &Run, line: &Line) -> Result<Option<Fitted>> {
    let variants = variants_for(line.rate, false);
    let inner_threads = run.threads;
    let side_by_side = if run.threads > 1 { variants.len() } else { 1 };
    let measure = |params: &FineParams| -> Result<FineOutcome> {
        let (recording, song, fs, cancel) = (run.recording, run.song, run.fs, run.cancel);
        cancel.check()?;
        let out = refine_line(recording, song, fs, line, params, inner_threads, cancel)?;
        // a second pass re-centres the windows on the refined line
        refine_line(
            recording,
            song,
            fs,
            &out.line,
            params,
            inner_threads,
            cancel,
        )
    };
    let outcomes =
        crate::dsp::par::par_map(variants.len(), side_by_side, |i| measure(&variants[i]));
    let mut best: Option<Fitted> = None;
    for (out, params) in outcomes.into_iter().zip(variants) {
        let out = out?;
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

/// Diagnostics on stderr when `BEATSYNC_ALIGN_DEBUG` is set (development aid).
fn debug_enabled() -> bool {
    std::env::var_os("BEATSYNC_ALIGN_DEBUG").is_some()
}

fn is_silent(x: &[f32]) -> bool {
    let peak = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    peak < 1e-5
}

#[cfg(test)]
mod tests;

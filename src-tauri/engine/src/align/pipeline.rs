//! [`align_signals`] as named stages, each with a typed result:
//!
//! `check_signals → extract_features → coarse_search → shape_features →
//! rank_by_shape → rank_by_coherence → recheck_at_lead_rate → distinct_placements
//! → break_tie → final_pass → judge_first_pass → accept_first_pass | second_pass
//! → assemble_result`.

mod first_pass;
mod ranking;
mod second_pass;

use super::coarse::{coarse_candidates, CoarseCandidate, CoarseParams};
use super::fine::{FineOutcome, FineParams};
use super::heard::{heard_span, shape_presence, HeardSpan};
use super::segments::TodaysLine;
use super::shape::{smooth_bands, SHAPE_SMOOTH_FRAMES, SHAPE_TREND_FRAMES};
use super::{
    check_length, final_pass, is_silent, AlignCandidate, AlignOptions, AlignResult, AlignTimings,
    BestGuess, Overlap, Placed, ENVELOPE_HOP_S,
};
use crate::cancel::CancelToken;
use crate::dsp::beats::{track_beats, BeatGrid};
use crate::dsp::onset::{onset_envelope, onset_envelope_releasing, whiten_envelope, OnsetEnvelope};
use crate::dsp::spectral::{spectral_shape_of, SongShapeSpectra, SpectralShape};
use crate::error::{EngineError, Result};
use first_pass::{accept_first_pass, judge_first_pass};
use ranking::{
    break_tie, debug_ranking, distinct_placements, rank_by_coherence, rank_by_shape,
    recheck_at_lead_rate,
};
use second_pass::second_pass;
use std::path::Path;
use std::time::Instant;

/// The two signals and what every stage after the features shares.
pub(super) struct Run<'a> {
    /// The class recording.
    pub recording: &'a [f32],
    /// The song.
    pub song: &'a [f32],
    /// Sample rate of both (Hz).
    pub fs: f64,
    /// Threads of the parallel stages ([`crate::dsp::par::threads`]).
    pub threads: usize,
    pub cancel: &'a CancelToken,
    /// Drops the recording's pages a stage has read from the process when
    /// they are mapped from a spill file ([`crate::media::spill`]); the
    /// samples read after it are the same.
    pub release: &'a (dyn Fn() + Sync),
}

impl Run<'_> {
    /// Between stages: what the last stage read of the recording is not
    /// kept resident for the next.
    pub fn release_recording(&self) {
        (self.release)();
    }

    /// The recording's length (s).
    pub fn recording_s(&self) -> f64 {
        self.recording.len() as f64 / self.fs
    }

    /// The song's length (s).
    pub fn song_s(&self) -> f64 {
        self.song.len() as f64 / self.fs
    }
}

/// Onset features of both signals.
struct Features {
    /// (its `log_bands` are taken by [`shape_features`])
    recording_env: OnsetEnvelope,
    song_env: OnsetEnvelope,
    /// Whitened onset envelopes (what the onset searches correlate).
    recording_white: Vec<f32>,
    song_white: Vec<f32>,
    /// Envelope frames per second.
    frame_rate: f64,
    /// Reference time of every line: half the recording's envelope (s).
    t_ref: f64,
}

/// Spectral shapes of both signals, and the song's beats (computed beside them).
struct Shapes {
    recording: SpectralShape,
    song: SpectralShape,
    song_spectra: SongShapeSpectra,
    beats: Option<BeatGrid>,
}

/// A coarse line and how well the song's spectral shape follows it (z).
#[derive(Debug, Clone, Copy)]
pub(super) struct ShapeCandidate {
    pub shape_z: f64,
    pub line: CoarseCandidate,
}

/// The coarse lines ranked by spectral shape.
struct ShapeRanking {
    /// The rates scanned by spectral shape.
    rates: Vec<f64>,
    /// Distinct placements (≥ 50 ms apart), best shape z first.
    candidates: Vec<ShapeCandidate>,
    /// Level and spread of the shape correlation of unrelated placements
    /// at the first scanned rate.
    null_centre: f64,
    null_spread: f64,
}

/// A candidate after the GCC ranking: its most coherent fine outcome, the
/// window layout that gave it, and its section's shape z.
#[derive(Debug, Clone)]
pub(super) struct Ranked {
    pub fine: FineOutcome,
    pub params: FineParams,
    pub shape_z: f64,
}

/// A line measured by [`final_pass`]: the outcome and the hypothesis (window
/// layout, pitch kept or not) that gave it.
#[derive(Debug, Clone)]
pub(super) struct Fitted {
    pub fine: FineOutcome,
    pub params: FineParams,
}

/// The final pass on the ranking's winner, and why it is not the song if
/// the evidence says so.
struct FirstPass {
    fit: Fitted,
    refuted: Option<String>,
}

/// The chosen placement, and the `no_match` reason when it is only a guess.
struct Decision {
    placed: Placed,
    refusal: Option<String>,
    /// How far the placement's line can be trusted (see [`TodaysLine`]).
    line: TodaysLine,
}

/// Aligns mono signals at `rate_hz` (`recording`: the class recording, `song`: the song).
pub fn align_signals(
    recording: &[f32],
    song: &[f32],
    rate_hz: u32,
    opts: &AlignOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<AlignResult> {
    align_releasing(recording, &|| {}, song, rate_hz, opts, cancel, progress)
}

/// [`align_signals`], calling `release` where the stages have read (part of)
/// the recording and what they read need not stay resident.
pub(super) fn align_releasing(
    recording: &[f32],
    release: &(dyn Fn() + Sync),
    song: &[f32],
    rate_hz: u32,
    opts: &AlignOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<AlignResult> {
    let signals = Signals {
        recording,
        release,
        song,
        rate_hz,
    };
    align_stages(&signals, opts, cancel, progress, Stretches::Searched)
}

/// What [`align_stages`] aligns.
#[derive(Clone, Copy)]
struct Signals<'a> {
    recording: &'a [f32],
    release: &'a (dyn Fn() + Sync),
    song: &'a [f32],
    rate_hz: u32,
}

/// Whether the recording's plays are searched, stretches of it aligned on
/// their own among the ways ([`super::segments`]), or the recording is such
/// a stretch: then its one answer is all (no scan for plays, no plays of a
/// refused answer; one level, so the cost stays a fraction of the whole
/// alignment's).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stretches {
    Searched,
    NotSearched,
}

/// The stages of [`align_releasing`].
fn align_stages(
    signals: &Signals,
    opts: &AlignOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
    stretches: Stretches,
) -> Result<AlignResult> {
    let Signals {
        recording,
        release,
        song,
        rate_hz,
    } = *signals;
    check_signals(recording, release, song, rate_hz, opts)?;
    let run = Run {
        recording,
        song,
        fs: f64::from(rate_hz),
        threads: crate::dsp::par::threads(),
        cancel,
        release,
    };
    let t_features = Instant::now();
    progress("features", 0.0);
    let mut features = extract_features(&run, rate_hz)?;
    progress("features", 1.0);
    let features_ms = t_features.elapsed().as_secs_f64() * 1e3;

    let t_search = Instant::now();
    let coarse = coarse_search(&features, opts, cancel, progress)?;
    let search_ms = t_search.elapsed().as_secs_f64() * 1e3;

    let t_refine = Instant::now();
    progress("refine", 0.0);
    let shapes = shape_features(&mut features, opts);
    let decision = decide(&run, opts, &features, &shapes, &coarse, stretches, progress)?;
    run.release_recording();
    let mut result = assemble_result(&run, decision.placed, &shapes, features.frame_rate);
    let t_segments = Instant::now();
    let result_rate = result.rate;
    let refusal = find_plays(
        &run,
        &shapes,
        features.frame_rate,
        &mut result,
        (decision.refusal, decision.line),
        &|t_a, t_b| align_stretch(signals, opts, cancel, result_rate, t_a, t_b),
        stretches,
    )?;
    progress("refine", 1.0);
    result.timings_ms = AlignTimings {
        decode: 0.0,
        features: features_ms,
        search: search_ms,
        refine: t_refine.elapsed().as_secs_f64() * 1e3,
        segments: t_segments.elapsed().as_secs_f64() * 1e3,
    };
    if let Some(reason) = refusal {
        return Err(EngineError::NoMatch {
            reason,
            best_guess: Some(Box::new(BestGuess::of(&result))),
        });
    }
    Ok(result)
}

/// The refine stage's verdict on the onset search's `coarse` candidates:
/// ranked by spectral shape then coherence, the tie between look-alike
/// sections broken, the winner's final pass judged, and the second pass
/// (integrated evidence) where the first refuses. A stretch whose first
/// pass saw no coherence on its line is refused at once.
fn decide(
    run: &Run,
    opts: &AlignOptions,
    features: &Features,
    shapes: &Shapes,
    coarse: &[CoarseCandidate],
    stretches: Stretches,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<Decision> {
    let ranking = rank_by_shape(features, shapes, coarse, run.cancel)?;
    let ranked = rank_by_coherence(run, features, &ranking)?;
    run.release_recording();
    progress("refine", 0.5);
    debug_ranking(&ranking, &ranked);
    let ranked = recheck_at_lead_rate(run, features, ranked)?;
    let mut distinct = distinct_placements(ranked, features.t_ref)?;
    let tie_evidence = break_tie(run, &mut distinct)?;
    run.release_recording();
    // Final pass on the winner: denser windows, both time-stretch hypotheses
    // when the speed differs. (GCC coherence is not used to break near-ties
    // between look-alike sections: the same drum samples in every bar make
    // wrong sections about as coherent as the right one.)
    let final_best = final_pass(run, &distinct[0].fine.line)?;
    run.release_recording();
    progress("refine", 0.9);
    let first_pass = final_best.map(|fit| judge_first_pass(fit, distinct[0].shape_z));
    let decision = match first_pass {
        Some(FirstPass { fit, refuted: None }) => Decision {
            placed: accept_first_pass(run, fit, &distinct, tie_evidence)?,
            refusal: None,
            line: TodaysLine::Waveform,
        },
        // a long stretch goes on to the second pass (integrated evidence)
        // only where the first pass saw some coherence on its line: on each
        // stretch of talk between plays it would cost a whole alignment's time
        Some(FirstPass {
            fit,
            refuted: Some(reason),
        }) if stretches == Stretches::NotSearched
            && fit.fine.z < STRETCH_SECOND_PASS_Z
            && run.recording_s() > STRETCH_SECOND_PASS_ALWAYS_S =>
        {
            return Err(EngineError::no_match(reason));
        }
        first_pass => second_pass(run, opts, features, shapes, &ranking, &distinct, first_pass)?,
    };
    Ok(decision)
}

/// Every play of the song in the recording into `result.segments`; the
/// refusal that stands (none when the plays of a refused recording are found).
fn find_plays(
    run: &Run,
    shapes: &Shapes,
    frame_rate: f64,
    result: &mut AlignResult,
    (refusal, line): (Option<String>, TodaysLine),
    align_stretch: &super::segments::AlignStretch<'_>,
    stretches: Stretches,
) -> Result<Option<String>> {
    let segment_shapes = super::segments::Shapes {
        recording: &shapes.recording,
        song: &shapes.song,
        frame_rate,
    };
    let mut refusal = refusal;
    if stretches == Stretches::NotSearched {
        // a stretch's own answer is all its caller reads
        if refusal.is_none() {
            result.segments = super::segments::single_segment(result);
        }
    } else if refusal.is_none() {
        super::segments::find_segments(run, &segment_shapes, result, line, align_stretch)?;
    } else if let Some(plays) =
        super::segments::plays_of_refused(run, &segment_shapes, result, line, align_stretch)?
    {
        super::segments::accept_plays(result, plays);
        refusal = None;
    }
    run.release_recording();
    Ok(refusal)
}

/// A stretch over [`STRETCH_SECOND_PASS_ALWAYS_S`] whose first pass is
/// refused below this coherence z is not searched further: half the
/// single-play threshold, where GCC starts to find
/// coherence on a line (talk between plays: ~1-3; a missed play heard
/// under talk: 8.2 before the second pass found it at 12.5).
const STRETCH_SECOND_PASS_Z: f64 = 0.5 * super::verdict::MIN_MATCH_Z;

/// A stretch up to this long (s) goes on to the second pass whatever its
/// first pass saw: a play at about -2 dB SNR under 1.4 s of reverberation
/// shows z 2-4 there, as talk does, and its integration finds it (plays-real
/// 3434 rpl001: 27 s, z 2.5, then unsure on the play's line; 4545 rpl005:
/// 36 s, z 3.95, integrated z 9.35). Short stretches cost little; the minutes
/// of talk between a long take's plays keep the first pass's bound (the
/// 60-min take: CPU +5 %).
const STRETCH_SECOND_PASS_ALWAYS_S: f64 = 60.0;

/// Speeds searched either side of the recording's own in a stretch aligned
/// on its own (the recording's clock is shared by its plays; 2000 ppm
/// covers a phone's drift measured over a short stretch).
const STRETCH_RATE_SLACK: f64 = 0.002;

/// `recording` aligned on its own as a stretch of a longer one is (tests).
#[cfg(test)]
pub(super) fn align_as_stretch(
    recording: &[f32],
    song: &[f32],
    rate_hz: u32,
    cancel: &CancelToken,
) -> Result<Option<AlignResult>> {
    let signals = Signals {
        recording,
        release: &|| {},
        song,
        rate_hz,
    };
    let end = recording.len() as f64 / f64::from(rate_hz);
    align_stretch(&signals, &AlignOptions::default(), cancel, 1.0, 0.0, end)
}

/// The recording's times `t_a..t_b` (s) aligned on their own (their
/// stretches not searched again) at speeds near the recording's `rate`, in
/// the stretch's time; `None` when the song is not found there or the
/// stretch is too short.
fn align_stretch(
    signals: &Signals,
    opts: &AlignOptions,
    cancel: &CancelToken,
    rate: f64,
    t_a: f64,
    t_b: f64,
) -> Result<Option<AlignResult>> {
    let fs = f64::from(signals.rate_hz);
    let len = signals.recording.len();
    let a = ((t_a.max(0.0) * fs) as usize).min(len);
    let b = ((t_b.max(0.0) * fs) as usize).min(len);
    let stretch = Signals {
        recording: &signals.recording[a..b.max(a)],
        ..*signals
    };
    let opts = AlignOptions {
        beats: false,
        max_rate_deviation: ((rate - 1.0).abs() + STRETCH_RATE_SLACK).min(opts.max_rate_deviation),
        ..opts.clone()
    };
    match align_stages(
        &stretch,
        &opts,
        cancel,
        &mut |_, _| {},
        Stretches::NotSearched,
    ) {
        Ok(result) => Ok(Some(result)),
        Err(EngineError::NoMatch { .. } | EngineError::TooShort { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Samples read between two releases where a stage reads the whole
/// recording in order (1 M samples: 4 MB, about two minutes at 8 kHz).
const RELEASE_BLOCK_SAMPLES: usize = 1 << 20;

/// Both signals long enough and not silent (the recording read in blocks,
/// `release` after each).
fn check_signals(
    recording: &[f32],
    release: &dyn Fn(),
    song: &[f32],
    rate_hz: u32,
    opts: &AlignOptions,
) -> Result<()> {
    check_length(
        Path::new("recording"),
        recording.len(),
        rate_hz,
        opts.min_audio_s,
    )?;
    check_length(Path::new("song"), song.len(), rate_hz, opts.min_audio_s)?;
    // (the largest magnitude is the same whatever the blocks)
    let silent = recording.chunks(RELEASE_BLOCK_SAMPLES).all(|block| {
        let silent = is_silent(block);
        release();
        silent
    });
    if silent {
        return Err(EngineError::no_match("the recording is silent"));
    }
    if is_silent(song) {
        return Err(EngineError::no_match("the song file is silent"));
    }
    Ok(())
}

/// Onset envelopes of both signals (the song's on a second thread), whitened.
fn extract_features(run: &Run, rate_hz: u32) -> Result<Features> {
    let hop = ((ENVELOPE_HOP_S * run.fs).round() as usize).max(1);
    let (recording_env, song_env) = std::thread::scope(|scope| {
        let song_job = scope.spawn(|| onset_envelope(run.song, rate_hz, hop));
        let recording_env = onset_envelope_releasing(
            run.recording,
            rate_hz,
            hop,
            RELEASE_BLOCK_SAMPLES / hop,
            run.release,
        );
        let song_env = song_job
            .join()
            .map_err(|_| EngineError::no_match("feature extraction failed"));
        (recording_env, song_env)
    });
    let song_env = song_env?;
    run.cancel.check()?;
    let frame_rate = recording_env.frame_rate_hz;
    let recording_white = whiten_envelope(&recording_env.flux, 20, 150);
    let song_white = whiten_envelope(&song_env.flux, 20, 150);
    let t_ref = recording_env.flux.len() as f64 / frame_rate / 2.0;
    Ok(Features {
        recording_env,
        song_env,
        recording_white,
        song_white,
        frame_rate,
        t_ref,
    })
}

/// The onset search's candidate lines ([`coarse_candidates`]); none: `no_match`.
fn coarse_search(
    features: &Features,
    opts: &AlignOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<Vec<CoarseCandidate>> {
    let coarse = coarse_candidates(
        &features.recording_white,
        &features.song_white,
        features.frame_rate,
        &CoarseParams {
            max_rate_deviation: opts.max_rate_deviation,
            ..CoarseParams::default()
        },
        cancel,
        &mut |f| progress("search", f),
    )?;
    if coarse.is_empty() {
        return Err(EngineError::no_match(
            "no rhythmic match between the recording and the song",
        ));
    }
    Ok(coarse)
}

/// The recording's shape, the song's shape and the song's beats: independent,
/// so the last two run beside the first. The recording's log band energies
/// are consumed (nothing after the shape reads them) and become its shape in
/// their own buffer: on a long recording that buffer is tens of megabytes.
fn shape_features(features: &mut Features, opts: &AlignOptions) -> Shapes {
    let smooth = SHAPE_SMOOTH_FRAMES;
    let shape_of = |bands: Vec<f32>, n_bands: usize| {
        spectral_shape_of(
            smooth_bands(bands, n_bands, smooth),
            n_bands,
            SHAPE_TREND_FRAMES,
        )
    };
    let recording_bands = std::mem::take(&mut features.recording_env.log_bands);
    let n_bands = features.recording_env.n_bands;
    let recording_frames = recording_bands.len() / n_bands.max(1);
    let song_env = &features.song_env;
    std::thread::scope(|scope| {
        // (no thread at all when the beats are not wanted)
        let beats_job = opts.beats.then(|| {
            scope.spawn(|| track_beats(&song_env.flux, &song_env.low_flux, song_env.frame_rate_hz))
        });
        let song_job = scope.spawn(|| {
            let song_shape = shape_of(song_env.log_bands.clone(), song_env.n_bands);
            let song_spectra = SongShapeSpectra::new(
                &song_shape,
                (recording_frames as f64 / (1.0 - opts.max_rate_deviation)).ceil() as usize + 2,
            );
            (song_shape, song_spectra)
        });
        let recording = shape_of(recording_bands, n_bands);
        let (song, song_spectra) = song_job
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        let beats =
            beats_job.and_then(|job| job.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        Shapes {
            recording,
            song,
            song_spectra,
            beats,
        }
    })
}

/// The result for a placement: the heard part of the recording, the offset
/// at its middle, the alternatives at the same time, the song's beats.
fn assemble_result(run: &Run, placed: Placed, shapes: &Shapes, frame_rate: f64) -> AlignResult {
    let recording_dur = run.recording_s();
    let song_dur = run.song_s();
    let line = placed.fine.line;
    let shape_z = |t_a: f64, t_b: f64| {
        shape_presence(&shapes.recording, &shapes.song, frame_rate, &line, t_a, t_b)
    };
    let HeardSpan {
        start: recording_start,
        end: recording_end,
    } = heard_span(&placed.fine, &line, recording_dur, song_dur, &shape_z);
    let t_mid = 0.5 * (recording_start + recording_end);
    let offset_s = t_mid - line.song_at(t_mid);
    // the winner first, then the other distinct placements at the same reference time
    let mut candidates = vec![AlignCandidate {
        offset_s,
        score: 1.0,
    }];
    for (alt, score) in &placed.alternatives {
        candidates.push(AlignCandidate {
            offset_s: t_mid - alt.song_at(t_mid),
            score: *score,
        });
    }
    let beats = shapes.beats.as_ref();
    AlignResult {
        offset_s,
        rate: line.rate,
        confidence: placed.confidence,
        verdict: placed.verdict,
        candidates,
        overlap: Overlap {
            dance_start_s: recording_start,
            dance_end_s: recording_end,
            bgm_start_s: line.song_at(recording_start).clamp(0.0, song_dur),
            bgm_end_s: line.song_at(recording_end).clamp(0.0, song_dur),
        },
        pitch_kept: placed.pitch_kept,
        bpm: beats.map(|b| b.bpm),
        beats_s: beats.map(|b| b.beats_s.clone()).unwrap_or_default(),
        downbeats_s: beats.map(|b| b.downbeats_s.clone()).unwrap_or_default(),
        timings_ms: AlignTimings::default(),
        segments: Vec::new(),
    }
}

//! [`align_signals`] as named stages, each with a typed result:
//!
//! `check_signals → extract_features → coarse_search → shape_features →
//! rank_by_shape → rank_by_coherence → recheck_at_lead_rate → distinct_placements
//! → break_tie → final_pass → judge_first_pass → accept_first_pass | second_pass
//! → assemble_result`.

use super::coarse::{coarse_candidates, CoarseCandidate, CoarseParams};
use super::fine::{refine_line, FineOutcome, FineParams, Line};
use super::verdict::{
    first_pass_confidence, logistic, refutation, Evidence, DIFFERENCE_MIN_Z, NEAR_TIE_MARGIN,
    SHAPE_EXPLAINS_Z, SURE_CONFIDENCE,
};
use super::{
    check_length, confirm_by_integration, debug_enabled, final_pass, integrate_sections, is_silent,
    polish_by_shape, polish_rate, section_difference_evidence, shape_scan, smooth_bands,
    variants_for, AlignCandidate, AlignOptions, AlignResult, AlignTimings, BestGuess, Hypothesis,
    Integrated, Overlap, Placed, Verdict, DENSE_RATE_HYPOTHESES, DENSE_RATE_STEP, DENSE_RATE_STEPS,
    ENVELOPE_HOP_S, FINE_CANDIDATES, RATE_POLISH_RANGE, SHAPE_PEAKS_PER_RATE, SHAPE_SMOOTH_FRAMES,
    SHAPE_TREND_FRAMES, UNCHECKED_RATE_GAP,
};
use crate::cancel::CancelToken;
use crate::dsp::beats::{track_beats, BeatGrid};
use crate::dsp::onset::{onset_envelope, whiten_envelope, OnsetEnvelope};
use crate::dsp::spectral::{line_similarity, spectral_shape, SongShapeSpectra, SpectralShape};
use crate::error::{EngineError, Result};
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
}

/// Onset features of both signals.
struct Features {
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
    check_signals(recording, song, rate_hz, opts)?;
    let run = Run {
        recording,
        song,
        fs: f64::from(rate_hz),
        threads: crate::dsp::par::threads(),
        cancel,
    };
    let t_features = Instant::now();
    progress("features", 0.0);
    let features = extract_features(&run, rate_hz)?;
    progress("features", 1.0);
    let features_ms = t_features.elapsed().as_secs_f64() * 1e3;

    let t_search = Instant::now();
    let coarse = coarse_search(&features, opts, cancel, progress)?;
    let search_ms = t_search.elapsed().as_secs_f64() * 1e3;

    let t_refine = Instant::now();
    progress("refine", 0.0);
    let shapes = shape_features(&features, opts);
    let ranking = rank_by_shape(&features, &shapes, &coarse, cancel)?;
    let ranked = rank_by_coherence(&run, &features, &ranking)?;
    progress("refine", 0.5);
    debug_ranking(&ranking, &ranked);
    let ranked = recheck_at_lead_rate(&run, &features, ranked)?;
    let mut distinct = distinct_placements(ranked, features.t_ref)?;
    let tie_evidence = break_tie(&run, &mut distinct)?;
    // Final pass on the winner: denser windows, both time-stretch hypotheses
    // when the speed differs. (GCC coherence is not used to break near-ties
    // between look-alike sections: the same drum samples in every bar make
    // wrong sections about as coherent as the right one.)
    let final_best = final_pass(&run, &distinct[0].fine.line)?;
    progress("refine", 0.9);
    let first_pass = final_best.map(|fit| judge_first_pass(fit, distinct[0].shape_z));
    let decision = match first_pass {
        Some(FirstPass { fit, refuted: None }) => Decision {
            placed: accept_first_pass(&run, fit, &distinct, tie_evidence)?,
            refusal: None,
        },
        first_pass => second_pass(
            &run, opts, &features, &shapes, &ranking, &distinct, first_pass,
        )?,
    };
    let mut result = assemble_result(&run, decision.placed, &shapes, features.frame_rate);
    if decision.refusal.is_none() {
        let segment_shapes = super::segments::Shapes {
            recording: &shapes.recording,
            song: &shapes.song,
            frame_rate: features.frame_rate,
        };
        result.segments = super::segments::find_segments(&run, &segment_shapes, &result)?;
    }
    progress("refine", 1.0);
    result.timings_ms = AlignTimings {
        decode: 0.0,
        features: features_ms,
        search: search_ms,
        refine: t_refine.elapsed().as_secs_f64() * 1e3,
    };
    if let Some(reason) = decision.refusal {
        return Err(EngineError::NoMatch {
            reason,
            best_guess: Some(Box::new(BestGuess::of(&result))),
        });
    }
    Ok(result)
}

/// Both signals long enough and not silent.
fn check_signals(recording: &[f32], song: &[f32], rate_hz: u32, opts: &AlignOptions) -> Result<()> {
    check_length(
        Path::new("recording"),
        recording.len(),
        rate_hz,
        opts.min_audio_s,
    )?;
    check_length(Path::new("song"), song.len(), rate_hz, opts.min_audio_s)?;
    if is_silent(recording) {
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
        let recording_env = onset_envelope(run.recording, rate_hz, hop);
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
/// so the last two run beside the first.
fn shape_features(features: &Features, opts: &AlignOptions) -> Shapes {
    let smooth = SHAPE_SMOOTH_FRAMES;
    let shape_of = |env: &OnsetEnvelope| {
        spectral_shape(
            &smooth_bands(&env.log_bands, env.n_bands, smooth),
            env.n_bands,
            SHAPE_TREND_FRAMES,
        )
    };
    let (recording_env, song_env) = (&features.recording_env, &features.song_env);
    std::thread::scope(|scope| {
        // (no thread at all when the beats are not wanted)
        let beats_job = opts.beats.then(|| {
            scope.spawn(|| track_beats(&song_env.flux, &song_env.low_flux, song_env.frame_rate_hz))
        });
        let song_job = scope.spawn(|| {
            let song_shape = shape_of(song_env);
            let recording_frames = recording_env.log_bands.len() / recording_env.n_bands.max(1);
            let song_spectra = SongShapeSpectra::new(
                &song_shape,
                (recording_frames as f64 / (1.0 - opts.max_rate_deviation)).ceil() as usize + 2,
            );
            (song_shape, song_spectra)
        });
        let recording = shape_of(recording_env);
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

/// The onset search finds the rate reliably (every look-alike section shares
/// it) but not always the section: every placement is scanned by spectral
/// shape at the few rates it proposes (and at 1.0); those placements and the
/// onset candidates, on one scale, best first, ≥ 50 ms apart.
fn rank_by_shape(
    features: &Features,
    shapes: &Shapes,
    coarse: &[CoarseCandidate],
    cancel: &CancelToken,
) -> Result<ShapeRanking> {
    let (frame_rate, t_ref) = (features.frame_rate, features.t_ref);
    let mut rates: Vec<f64> = Vec::new();
    for c in coarse.iter().take(8) {
        if rates.len() < 3 && rates.iter().all(|r| (r - c.rate).abs() > 3e-4) {
            rates.push(c.rate);
        }
    }
    if rates.iter().all(|r| (r - 1.0).abs() > 3e-4) {
        rates.push(1.0);
    }
    cancel.check()?;
    let (correlations, mut by_shape) = shape_scan(
        &shapes.recording,
        &shapes.song_spectra,
        &rates,
        frame_rate,
        t_ref,
        SHAPE_PEAKS_PER_RATE,
    );
    // the onset candidates too, on the same scale (that of the nearest scanned rate)
    for c in coarse.iter().take(8) {
        if let Some(sc) = correlations
            .iter()
            .min_by(|a, b| (a.rate - c.rate).abs().total_cmp(&(b.rate - c.rate).abs()))
        {
            let v = line_similarity(
                &shapes.recording,
                &shapes.song,
                frame_rate,
                t_ref,
                c.sigma_s,
                c.rate,
                1,
            );
            by_shape.push(ShapeCandidate {
                shape_z: (v - sc.centre) / sc.spread,
                line: *c,
            });
        }
    }
    by_shape.sort_by(|a, b| b.shape_z.total_cmp(&a.shape_z));
    let mut candidates: Vec<ShapeCandidate> = Vec::new();
    for c in by_shape {
        if candidates
            .iter()
            .all(|d| (d.line.sigma_s - c.line.sigma_s).abs() >= 0.05)
        {
            candidates.push(c);
        }
    }
    let (null_centre, null_spread) = correlations
        .first()
        .map_or((0.0, 1.0), |c| (c.centre, c.spread));
    cancel.check()?;
    Ok(ShapeRanking {
        rates,
        candidates,
        null_centre,
        null_spread,
    })
}

/// GCC-PHAT coherence of the best few shape candidates, each at its
/// onset-polished rate under every hypothesis ([`variants_for`]); the
/// candidates are independent: one per thread (each one serial inside).
fn rank_by_coherence(
    run: &Run,
    features: &Features,
    ranking: &ShapeRanking,
) -> Result<Vec<Ranked>> {
    let n_cand = ranking.candidates.len().min(FINE_CANDIDATES);
    let rank_one = |ci: usize| -> Result<Option<Ranked>> {
        let ShapeCandidate { shape_z, line: c } = ranking.candidates[ci];
        let c = polish_rate(
            &features.recording_white,
            &features.song_white,
            features.frame_rate,
            c,
            RATE_POLISH_RANGE,
        );
        let line = Line {
            t_ref: features.t_ref,
            sigma: c.sigma_s,
            rate: c.rate,
        };
        let mut best: Option<Ranked> = None;
        for params in variants_for(line.rate, true) {
            let fine = refine_line(
                run.recording,
                run.song,
                run.fs,
                &line,
                &params,
                1,
                run.cancel,
            )?;
            if best.as_ref().is_none_or(|b| fine.z > b.fine.z) {
                best = Some(Ranked {
                    fine,
                    params,
                    shape_z,
                });
            }
        }
        Ok(best)
    };
    let mut ranked: Vec<Ranked> = Vec::new();
    for r in crate::dsp::par::par_map(n_cand, run.threads, rank_one) {
        if let Some(r) = r? {
            ranked.push(r);
        }
    }
    Ok(ranked)
}

fn debug_ranking(ranking: &ShapeRanking, ranked: &[Ranked]) {
    if !debug_enabled() {
        return;
    }
    eprintln!(
        "shape null centre {:.2} spread {:.2}",
        ranking.null_centre, ranking.null_spread
    );
    for ShapeCandidate { shape_z, line: c } in &ranking.candidates {
        eprintln!(
            "coarse: sigma {:.4} rate {:.6} score {:.2} shape z {:.2}",
            c.sigma_s, c.rate, c.score, shape_z
        );
    }
    for r in ranked {
        eprintln!(
            "ranked: sigma {:.4} rate {:.6} z {:.2} heard {} stretched {} shape z {:.2}",
            r.fine.line.sigma,
            r.fine.line.rate,
            r.fine.z,
            r.fine.heard_windows,
            r.params.stretched,
            r.shape_z
        );
    }
}

/// Orders the ranked candidates: spectral shape over the whole overlap
/// decides between sections; a candidate without waveform coherence is not
/// a placement at all. Every section shares the recording's rate: a section
/// without coherence that was tried at another rate than the leader's is
/// tried again at the leader's (its own may have been too far off to lock on).
fn recheck_at_lead_rate(
    run: &Run,
    features: &Features,
    mut ranked: Vec<Ranked>,
) -> Result<Vec<Ranked>> {
    ranked.sort_by(|a, b| b.rank_key().total_cmp(&a.rank_key()));
    let Some(lead) = ranked
        .first()
        .filter(|r| r.is_coherent())
        .map(|r| r.fine.line)
    else {
        return Ok(ranked);
    };
    let mut rechecked = false;
    for r in ranked.iter_mut().skip(1) {
        if r.is_coherent() || (r.fine.line.rate - lead.rate).abs() <= UNCHECKED_RATE_GAP {
            continue;
        }
        run.cancel.check()?;
        let c = polish_rate(
            &features.recording_white,
            &features.song_white,
            features.frame_rate,
            CoarseCandidate {
                sigma_s: r.fine.line.sigma,
                rate: lead.rate,
                score: 0.0,
            },
            0.0,
        );
        let line = Line {
            t_ref: features.t_ref,
            sigma: c.sigma_s,
            rate: c.rate,
        };
        for params in variants_for(line.rate, true) {
            let out = refine_line(
                run.recording,
                run.song,
                run.fs,
                &line,
                &params,
                run.threads,
                run.cancel,
            )?;
            if debug_enabled() {
                eprintln!(
                    "recheck: sigma {:.4} rate {:.6} z {:.2} (was {:.2}) stretched {}",
                    out.line.sigma, out.line.rate, out.z, r.fine.z, params.stretched
                );
            }
            if out.z > r.fine.z {
                r.fine = out;
                r.params = params;
                rechecked = true;
            }
        }
    }
    if rechecked {
        ranked.sort_by(|a, b| b.rank_key().total_cmp(&a.rank_key()));
    }
    Ok(ranked)
}

/// Several coarse lines can converge on the same placement: the distinct
/// ones (> 4 ms apart at the reference time), best first; none: `no_match`.
fn distinct_placements(ranked: Vec<Ranked>, t_ref: f64) -> Result<Vec<Ranked>> {
    let mut distinct: Vec<Ranked> = Vec::new();
    for r in ranked {
        if distinct
            .iter()
            .all(|d| (d.fine.line.song_at(t_ref) - r.fine.line.song_at(t_ref)).abs() > 0.004)
        {
            distinct.push(r);
        }
    }
    if distinct.is_empty() {
        return Err(EngineError::no_match(
            "no coherent match between the recording and the song",
        ));
    }
    Ok(distinct)
}

/// Near-tie between two coherent look-alike sections: the part of the song
/// in which they differ decides (see `tiebreak`), swapping the first two
/// when it contradicts the shape. The size of that evidence, when measured.
fn break_tie(run: &Run, distinct: &mut [Ranked]) -> Result<Option<f64>> {
    let near_tie = distinct.len() >= 2
        && distinct[1].is_coherent()
        && distinct[0].rank_key() - distinct[1].rank_key() < NEAR_TIE_MARGIN;
    if !near_tie {
        return Ok(None);
    }
    run.cancel.check()?;
    let Some(ev) = section_difference_evidence(run, &distinct[0].fine.line, &distinct[1].fine.line)
    else {
        return Ok(None);
    };
    if debug_enabled() {
        eprintln!("tie-break: difference evidence {ev:.2} (positive keeps the leader)");
    }
    if ev < -DIFFERENCE_MIN_Z {
        distinct.swap(0, 1);
    }
    Ok(Some(ev.abs()))
}

/// The final pass's measurement of the winner, and its refutation if the
/// evidence says it is not the song (`shape_z`: the winner's section's).
fn judge_first_pass(fit: Fitted, shape_z: f64) -> FirstPass {
    let b = &fit.fine;
    if debug_enabled() {
        eprintln!(
            "final: sigma {:.5} rate {:.7} z {:.2} heard {}/{} stretched {}",
            b.line.sigma,
            b.line.rate,
            b.z,
            b.heard_windows,
            b.windows.len(),
            fit.params.stretched
        );
    }
    let refuted = refutation(&Evidence {
        z: b.z,
        heard_windows: b.heard_windows,
        windows: b.windows.len(),
        rate: b.line.rate,
        pitch_kept: fit.params.stretched,
        shape_z,
    });
    FirstPass { fit, refuted }
}

/// A first-pass placement that is the song: its confidence (raised by the
/// integration over the whole overlap when not clear from the first pass
/// alone) and the other distinct placements as alternatives.
fn accept_first_pass(
    run: &Run,
    fit: Fitted,
    distinct: &[Ranked],
    tie_evidence: Option<f64>,
) -> Result<Placed> {
    let best = &fit.fine;
    let mut confidence = first_pass_confidence(distinct, best.z, tie_evidence);
    if confidence.value() < SURE_CONFIDENCE && !fit.params.stretched {
        // not clear enough from the first pass alone: the summed
        // coherence of the winner against its look-alikes decides
        let alternatives: Vec<Line> = distinct.iter().skip(1).map(|d| d.fine.line).collect();
        confidence = confirm_by_integration(run, &best.line, &alternatives, confidence)?;
    }
    if debug_enabled() {
        eprintln!(
            "evidence: first pass z {:.2} line z {:.2} heard {}/{} shape z {:.2} others {:?} ranked z {:.2} tie {:?} confidence {:.3} ({:.3} x {:.3})",
            best.z,
            best.line_z,
            best.heard_windows,
            best.windows.len(),
            distinct[0].shape_z,
            distinct.iter().skip(1).map(|d| (format!("{:.2}", d.shape_z), format!("{:.2}", d.fine.z))).collect::<Vec<_>>(),
            distinct[0].fine.z,
            tie_evidence,
            confidence.value(),
            confidence.presence,
            confidence.separation
        );
    }
    let confidence = confidence.value();
    let alternatives = distinct
        .iter()
        .skip(1)
        .take(4)
        .map(|d| {
            (
                d.fine.line,
                (d.fine.z / distinct[0].fine.z.max(1e-9)).clamp(-1.0, 1.0),
            )
        })
        .collect();
    Ok(Placed {
        fine: fit.fine,
        pitch_kept: fit.params.stretched,
        confidence,
        verdict: Verdict::from_confidence(confidence),
        alternatives,
    })
}

/// The first pass saw too little (or nothing): integrate the waveform
/// evidence of every hypothesis over the whole overlap before refusing.
fn second_pass(
    run: &Run,
    opts: &AlignOptions,
    features: &Features,
    shapes: &Shapes,
    ranking: &ShapeRanking,
    distinct: &[Ranked],
    first_pass: Option<FirstPass>,
) -> Result<Decision> {
    let reason = first_pass
        .as_ref()
        .and_then(|f| f.refuted.clone())
        .unwrap_or_else(|| "no coherent match between the recording and the song".to_string());
    let at_dense_rates = dense_rate_hypotheses(run, opts, features, shapes, &ranking.rates)?;
    let hypotheses = gather_hypotheses(
        first_pass.as_ref(),
        distinct,
        &ranking.candidates,
        &at_dense_rates,
        features.t_ref,
    );
    let shape_z_of = |l: &Line| {
        let v = line_similarity(
            &shapes.recording,
            &shapes.song,
            features.frame_rate,
            features.t_ref,
            l.sigma,
            l.rate,
            1,
        );
        (v - ranking.null_centre) / ranking.null_spread
    };
    let second = integrate_sections(run, &hypotheses, &shape_z_of)?;
    settle_second_pass(run, second, first_pass, reason)
}

/// The first pass scanned the spectral shape only at the onset search's
/// rates (and 1.0): a speed change it missed (soft onsets) is looked for at
/// every rate. The best few placements, polished by shape.
fn dense_rate_hypotheses(
    run: &Run,
    opts: &AlignOptions,
    features: &Features,
    shapes: &Shapes,
    scanned: &[f64],
) -> Result<Vec<Hypothesis>> {
    let (frame_rate, t_ref) = (features.frame_rate, features.t_ref);
    let dense: Vec<f64> = (-DENSE_RATE_STEPS..=DENSE_RATE_STEPS)
        .map(|k| 1.0 + k as f64 * DENSE_RATE_STEP)
        .filter(|r| {
            (r - 1.0).abs() <= opts.max_rate_deviation
                && scanned
                    .iter()
                    .all(|s| (s - r).abs() > 0.5 * DENSE_RATE_STEP)
        })
        .collect();
    run.cancel.check()?;
    let (_, mut at_rates) = shape_scan(
        &shapes.recording,
        &shapes.song_spectra,
        &dense,
        frame_rate,
        t_ref,
        1,
    );
    at_rates.sort_by(|a, b| b.shape_z.total_cmp(&a.shape_z));
    let mut at_dense_rates: Vec<Hypothesis> = Vec::new();
    for ShapeCandidate {
        shape_z: z,
        line: c,
    } in at_rates.iter().take(DENSE_RATE_HYPOTHESES)
    {
        let line = polish_by_shape(
            &shapes.recording,
            &shapes.song,
            frame_rate,
            Line {
                t_ref,
                sigma: c.sigma_s,
                rate: c.rate,
            },
        );
        if debug_enabled() {
            eprintln!(
                "dense rate scan: sigma {:.4} rate {:.5} shape z {z:.2} -> sigma {:.4} rate {:.6}",
                c.sigma_s, c.rate, line.sigma, line.rate
            );
        }
        at_dense_rates.push(Hypothesis { line, shape_z: *z });
    }
    Ok(at_dense_rates)
}

/// The second pass's hypotheses: the first pass's placement, then each
/// source's best (GCC-ranked, shape-ranked, dense-rate scan), second best...
fn gather_hypotheses(
    first_pass: Option<&FirstPass>,
    distinct: &[Ranked],
    by_shape: &[ShapeCandidate],
    at_dense_rates: &[Hypothesis],
    t_ref: f64,
) -> Vec<Hypothesis> {
    let mut hypotheses: Vec<Hypothesis> = Vec::new();
    if let Some(f) = first_pass {
        hypotheses.push(Hypothesis {
            line: f.fit.fine.line,
            shape_z: distinct[0].shape_z,
        });
    }
    let ranked_lines: Vec<Hypothesis> = distinct
        .iter()
        .map(|d| Hypothesis {
            line: d.fine.line,
            shape_z: d.shape_z,
        })
        .collect();
    let shape_lines: Vec<Hypothesis> = by_shape
        .iter()
        .map(|c| Hypothesis {
            line: Line {
                t_ref,
                sigma: c.line.sigma_s,
                rate: c.line.rate,
            },
            shape_z: c.shape_z,
        })
        .collect();
    for i in 0..ranked_lines.len().max(shape_lines.len()) {
        for source in [&ranked_lines[..], &shape_lines[..], at_dense_rates] {
            hypotheses.extend(source.get(i).copied());
        }
    }
    hypotheses
}

/// What the second pass's integration (if any) leads to.
fn settle_second_pass(
    run: &Run,
    second: Option<Integrated>,
    first_pass: Option<FirstPass>,
    reason: String,
) -> Result<Decision> {
    let refused = |placed: Placed, reason: String| Decision {
        placed,
        refusal: Some(reason),
    };
    match second {
        Some(p) if !p.verdict_refused => Ok(Decision {
            placed: p.placed,
            refusal: None,
        }),
        Some(p) if p.shape_best.z >= SHAPE_EXPLAINS_Z => {
            // No waveform evidence, but the song's spectral shape follows a
            // placement (time-stretched playback smears the waveform, so
            // each window's coherence stays low): the final pass's
            // placement there, unsure.
            let (line, shape) = (p.shape_best.line, p.shape_best.z);
            if debug_enabled() {
                eprintln!("evidence: no waveform confirmation, shape z {shape:.2}");
            }
            Ok(match final_pass(run, &line)? {
                Some(fit) => Decision {
                    placed: Placed {
                        fine: fit.fine,
                        pitch_kept: fit.params.stretched,
                        confidence: 0.5 * logistic(shape - SHAPE_EXPLAINS_Z - 2.0),
                        verdict: Verdict::Unsure,
                        alternatives: Vec::new(),
                    },
                    refusal: None,
                },
                None => refused(p.placed, reason),
            })
        }
        // nothing explains the recording: the placement is only a guess
        Some(p) => Ok(refused(p.placed, reason)),
        None => {
            let Some(f) = first_pass else {
                return Err(EngineError::no_match(reason));
            };
            let placed = Placed {
                fine: f.fit.fine,
                pitch_kept: f.fit.params.stretched,
                confidence: 0.0,
                verdict: Verdict::Unsure,
                alternatives: Vec::new(),
            };
            Ok(refused(placed, reason))
        }
    }
}

/// The result for a placement: the heard part of the recording, the offset
/// at its middle, the alternatives at the same time, the song's beats.
fn assemble_result(run: &Run, placed: Placed, shapes: &Shapes, frame_rate: f64) -> AlignResult {
    let recording_dur = run.recording.len() as f64 / run.fs;
    let song_dur = run.song.len() as f64 / run.fs;
    let line = placed.fine.line;
    let shape_z = |t_a: f64, t_b: f64| {
        super::shape_presence(&shapes.recording, &shapes.song, frame_rate, &line, t_a, t_b)
    };
    let super::HeardSpan {
        start: recording_start,
        end: recording_end,
    } = super::heard_span(&placed.fine, &line, recording_dur, song_dur, &shape_z);
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

//! The second pass: hypotheses (ranked sections, a denser rate scan by
//! spectral shape) integrated over the whole overlap, and its verdict.

use super::{Decision, Features, FirstPass, Ranked, Run, ShapeCandidate, ShapeRanking, Shapes};
use crate::align::fine::Line;
use crate::align::sections::{integrate_sections, Hypothesis, Integrated};
use crate::align::segments::TodaysLine;
use crate::align::shape::{
    polish_by_shape, section_lead, shape_scan, DENSE_RATE_HYPOTHESES, DENSE_RATE_STEP,
    DENSE_RATE_STEPS,
};
use crate::align::verdict::{shape_only_confidence, SHAPE_EXPLAINS_Z};
use crate::align::{debug_enabled, final_pass, AlignOptions, Placed, Verdict};
use crate::dsp::spectral::line_similarity;
use crate::error::{EngineError, Result};

/// The first pass saw too little (or nothing): integrate the waveform
/// evidence of every hypothesis over the whole overlap before refusing.
pub(super) fn second_pass(
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
    let section_lead_of = |l: &Line| {
        section_lead(
            &shapes.recording,
            &shapes.song_spectra,
            features.frame_rate,
            l,
        )
        .map(|s| (s.own_z, s.other_z))
    };
    settle_second_pass(run, second, first_pass, reason, &section_lead_of)
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

/// How the second pass placed its line: by its sum over the whole overlap.
fn summed_line(p: &Integrated) -> TodaysLine {
    TodaysLine::Summed {
        lag_margin: p.lag_margin,
    }
}

/// What the second pass's integration (if any) leads to.
fn settle_second_pass(
    run: &Run,
    second: Option<Integrated>,
    first_pass: Option<FirstPass>,
    reason: String,
    section_lead_of: &dyn Fn(&Line) -> Option<(f64, f64)>,
) -> Result<Decision> {
    let refused = |placed: Placed, reason: String, line: TodaysLine| Decision {
        placed,
        refusal: Some(reason),
        line,
    };
    // the second pass's own placement, only a guess
    let summed_guess = |p: Integrated, reason: String| {
        let line = summed_line(&p);
        refused(p.placed, reason, line)
    };
    match second {
        Some(p) if !p.verdict_refused => Ok(Decision {
            line: summed_line(&p),
            placed: p.placed,
            refusal: None,
        }),
        Some(p) if p.shape_best.z >= SHAPE_EXPLAINS_Z => {
            // No waveform evidence, but the song's spectral shape follows a
            // placement (time-stretched playback smears the waveform, so
            // each window's coherence stays low): the final pass's
            // placement there, as sure as the shape alone makes it.
            let (line, shape) = (p.shape_best.line, p.shape_best.z);
            let lead = section_lead_of(&line);
            let confidence = shape_only_confidence(shape, lead);
            if debug_enabled() {
                eprintln!("evidence: no waveform confirmation, shape z {shape:.2} section lead {lead:?} confidence {confidence:.3}");
            }
            Ok(match final_pass(run, &line)? {
                Some(fit) => Decision {
                    placed: Placed {
                        fine: fit.fine,
                        pitch_kept: fit.params.stretched,
                        confidence,
                        verdict: Verdict::from_confidence(confidence),
                        alternatives: Vec::new(),
                    },
                    refusal: None,
                    line: TodaysLine::ShapeAlone,
                },
                None => summed_guess(p, reason),
            })
        }
        // nothing explains the recording: the placement is only a guess
        Some(p) => Ok(summed_guess(p, reason)),
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
            Ok(refused(placed, reason, TodaysLine::Waveform))
        }
    }
}

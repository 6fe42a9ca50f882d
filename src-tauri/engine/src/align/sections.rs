//! Section integration: placements (sections of the song and rates)
//! whose coherence is summed over the whole overlap ([`crate::align::integrate`]),
//! for the first pass's confirmation and as the second pass.

use super::pipeline::Run;
use super::verdict::{
    integrated_confidence, integrated_presence, integrated_separation, Confidence,
    DECISIVE_SHAPE_Z, DECISIVE_Z, INTEGRATED_MIN_Z,
};
use super::{debug_enabled, Placed, Verdict, RESAMPLE_MIN_DEVIATION};
use crate::align::fine::Line;
use crate::error::Result;

/// A placement tried by the second pass, and how well the song's spectral
/// shape follows it (z).
#[derive(Debug, Clone, Copy)]
pub(super) struct Hypothesis {
    pub(super) line: Line,
    pub(super) shape_z: f64,
}

/// The second pass's answer.
pub(super) struct Integrated {
    pub(super) placed: Placed,
    /// The placement (a hypothesis or where its integration ended up) that
    /// the spectral shape follows best, and that shape z.
    pub(super) shape_best: ShapeBest,
    /// Nothing in the song explains the recording: `no_match` (with this
    /// placement as the best guess).
    pub(super) verdict_refused: bool,
    /// How clearly the placement's summed coherence singles out its lag
    /// ([`crate::align::integrate::IntegratedLine::lag_margin`]).
    pub(super) lag_margin: f64,
}

/// Look-alike sections the first pass's confirmation integrates beside the winner.
const CONFIRM_ALTERNATIVES: usize = 2;

/// A first-pass placement that is not clear enough on its own: the
/// integrated coherence of its line, and of the best look-alike sections
/// (`alternatives`, best first), can raise presence and separation.
pub(super) fn confirm_by_integration(
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
            threads,
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
pub(super) fn integrate_params(line: &Line) -> crate::align::integrate::IntegrateParams {
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
pub(super) struct ShapeBest {
    pub(super) line: Line,
    pub(super) z: f64,
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
                threads,
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
    let lag_margin = best.lag_margin;
    let fine = best.into_fine();
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
        lag_margin,
    })
}

/// The second pass: every distinct hypothesis (section and rate), the
/// spectral shape's best first, integrated over the whole overlap
/// ([`crate::align::integrate`]); the most coherent one is the placement.
pub(super) fn integrate_sections(
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

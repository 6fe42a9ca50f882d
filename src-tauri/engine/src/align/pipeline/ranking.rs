//! Ranking the coarse lines: by spectral shape, then by GCC coherence, the
//! leader's rate re-checked, distinct placements kept, and a near-tie between
//! look-alike sections broken by their difference signal.

use super::{Features, Ranked, Run, ShapeCandidate, ShapeRanking, Shapes};
use crate::align::coarse::CoarseCandidate;
use crate::align::fine::{refine_line, Line};
use crate::align::rate_polish::{polish_rate, RATE_POLISH_RANGE};
use crate::align::shape::{shape_scan, SHAPE_PEAKS_PER_RATE};
use crate::align::tiebreak::section_difference_evidence;
use crate::align::verdict::{DIFFERENCE_MIN_Z, NEAR_TIE_MARGIN};
use crate::align::{debug_enabled, variants_for, FINE_CANDIDATES, UNCHECKED_RATE_GAP};
use crate::cancel::CancelToken;
use crate::dsp::spectral::line_similarity;
use crate::error::{EngineError, Result};

/// The onset search finds the rate reliably (every look-alike section shares
/// it) but not always the section: every placement is scanned by spectral
/// shape at the few rates it proposes (and at 1.0); those placements and the
/// onset candidates, on one scale, best first, ≥ 50 ms apart.
pub(super) fn rank_by_shape(
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
pub(super) fn rank_by_coherence(
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
        // each candidate reads its own few minutes of a long take (a
        // candidate on the other thread reads its pages in again)
        run.release_recording();
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

pub(super) fn debug_ranking(ranking: &ShapeRanking, ranked: &[Ranked]) {
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
pub(super) fn recheck_at_lead_rate(
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
pub(super) fn distinct_placements(ranked: Vec<Ranked>, t_ref: f64) -> Result<Vec<Ranked>> {
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
pub(super) fn break_tie(run: &Run, distinct: &mut [Ranked]) -> Result<Option<f64>> {
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

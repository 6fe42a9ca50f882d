//! The first pass's verdict on the ranking's winner: refuted, or accepted
//! (confirmed by integration when not clear on its own).

use super::{FirstPass, Fitted, Ranked, Run};
use crate::align::fine::Line;
use crate::align::sections::confirm_by_integration;
use crate::align::verdict::{first_pass_confidence, refutation, Evidence, SURE_CONFIDENCE};
use crate::align::{debug_enabled, Placed, Verdict};
use crate::error::Result;

/// The final pass's measurement of the winner, and its refutation if the
/// evidence says it is not the song (`shape_z`: the winner's section's).
pub(super) fn judge_first_pass(fit: Fitted, shape_z: f64) -> FirstPass {
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
pub(super) fn accept_first_pass(
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

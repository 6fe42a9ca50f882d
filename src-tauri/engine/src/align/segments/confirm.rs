//! A run of the scan confirmed on its own span: its line and the look-alike
//! lines beside it measured by the fine stage over the run, the most
//! coherent kept where the difference signal agrees, and refused where the
//! evidence is what a wrong song gives, unless its coherence summed over
//! the span shows it ([`crate::align::integrate`]).

use super::difference::difference;
use super::scan::HopRun;
use super::{Play, RUN_END_SHIFT, RUN_MARGIN_S, SHAPE_SLACK_S};
use crate::align::fine::{refine_line, FineOutcome, Line};
use crate::align::heard::{heard_span, HeardSpan};
use crate::align::integrate::integrate_line;
use crate::align::pipeline::Run;
use crate::align::sections::integrate_params;
use crate::align::variants_for;
use crate::align::verdict::{
    refutation_below, Evidence, DIFFERENCE_MIN_Z, HELD_RUN_EVIDENCE, HELD_RUN_INTEGRATED_MIN_Z,
    PLAY_INTEGRATED_MIN_Z, PLAY_LAG_MARGIN,
};
use crate::error::Result;

/// The fine stage's outcome on a piece of the recording, in the piece's own time.
pub(super) struct Piece {
    pub(super) fine: FineOutcome,
    /// The piece's start and length in the recording (s).
    pub(super) start_s: f64,
    pub(super) dur_s: f64,
}

/// A piece placed by its coherence summed over its span
/// ([`integrated_on`]).
pub(super) struct SummedPiece {
    pub(super) piece: Piece,
    /// How clearly the sum singles out the piece's lag
    /// ([`crate::align::integrate::IntegratedLine::lag_margin`]).
    pub(super) lag_margin: f64,
}

impl Piece {
    /// The play this piece confirms over recording times `start_s..end_s`,
    /// on no other play's line yet (`in_doubt`, `summed_lag_margin`: see
    /// [`Play`]).
    pub(super) fn into_play(
        self,
        (start_s, end_s): (f64, f64),
        in_doubt: bool,
        summed_lag_margin: Option<f64>,
    ) -> Play {
        Play {
            line: self.absolute_line(),
            start_s,
            end_s,
            z: self.fine.z,
            cut_before: false,
            on_main: false,
            in_doubt,
            summed_lag_margin,
        }
    }

    /// The piece's line in recording time.
    pub(super) fn absolute_line(&self) -> Line {
        Line {
            t_ref: self.fine.line.t_ref + self.start_s,
            ..self.fine.line
        }
    }
}

/// The fine stage on the recording times `t_a..t_b` along `line` (in
/// recording time), at the shared rate.
pub(super) fn measure_piece(run: &Run, line: &Line, t_a: f64, t_b: f64) -> Result<Option<Piece>> {
    let a = ((t_a.max(0.0) * run.fs) as usize).min(run.recording.len());
    let b = ((t_b * run.fs) as usize).min(run.recording.len());
    if b <= a + run.fs as usize {
        return Ok(None);
    }
    let start = a as f64 / run.fs;
    let piece = &run.recording[a..b];
    let t_ref = 0.5 * piece.len() as f64 / run.fs;
    let local = Line {
        t_ref,
        sigma: line.song_at(start + t_ref),
        rate: line.rate,
    };
    let Some(mut params) = variants_for(line.rate, false).into_iter().next() else {
        return Ok(None);
    };
    params.max_end_shift = RUN_END_SHIFT;
    let mut out = refine_line(
        piece,
        run.song,
        run.fs,
        &local,
        &params,
        run.threads,
        run.cancel,
    )?;
    out = refine_line(
        piece,
        run.song,
        run.fs,
        &out.line,
        &params,
        run.threads,
        run.cancel,
    )?;
    // the pieces of a long take's plays, one after the other, are not kept resident
    run.release_recording();
    Ok(Some(Piece {
        fine: out,
        start_s: start,
        dur_s: piece.len() as f64 / run.fs,
    }))
}

/// A run measured on its own span, on the most coherent of `intercepts`
/// (its line and the look-alike lines the envelopes cannot tell from it);
/// `None` when the evidence there is what a wrong song gives (the
/// single-play refusal's rules, its coherence at `least_z`, and then its
/// coherence summed over the span: [`integrated_on`]).
pub(super) fn confirm_run(
    run: &Run,
    r: &HopRun,
    intercepts: &[f64],
    rate: f64,
    least_z: f64,
) -> Result<Option<Play>> {
    let play = confirm_on(run, r, intercepts, rate, least_z)?;
    if play.is_some() || intercepts.is_empty() {
        return Ok(play);
    }
    // the spectral shape, smoothed over ±100 ms, places the run's own line
    // up to about that far off, and the fine stage searches ±60 ms around
    // the line it is given: refused there, the own line is measured again
    // either side (together ±160 ms). Alone: the look-alikes were weighed
    // against the own line where the scan put it, and a shifted own line,
    // off the song, would hand the run to any of them.
    for shift in [-SHAPE_SLACK_S, SHAPE_SLACK_S] {
        if let Some(p) = confirm_on(run, r, &[intercepts[0] + shift], rate, least_z)? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// [`confirm_run`] with the run's own line at `intercepts[0]`.
fn confirm_on(
    run: &Run,
    r: &HopRun,
    intercepts: &[f64],
    rate: f64,
    least_z: f64,
) -> Result<Option<Play>> {
    let t_mid = 0.5 * (r.start_s + r.end_s);
    let mut measured: Vec<Piece> = Vec::new();
    for &c in intercepts {
        let line = Line {
            t_ref: t_mid,
            sigma: (t_mid - c) / rate,
            rate,
        };
        let piece = measure_piece(run, &line, r.start_s - RUN_MARGIN_S, r.end_s + RUN_MARGIN_S)?;
        if let Some(p) = piece {
            if crate::align::debug_enabled() {
                eprintln!(
                    "segments: run {:.2}-{:.2} s intercept {c:.3}: z {:.2}",
                    r.start_s, r.end_s, p.fine.z
                );
            }
            measured.push(p);
        }
    }
    prefer_look_alike(run, &mut measured);
    let in_doubt = look_alike_in_doubt(run, &measured);
    let Some(piece) = measured.into_iter().next() else {
        return Ok(None);
    };
    let refused = refused_on_span(&piece.fine, least_z);
    if crate::align::debug_enabled() {
        eprintln!(
            "segments: run {:.2}-{:.2} s: z {:.2} heard {}/{} {:?}",
            r.start_s,
            r.end_s,
            piece.fine.z,
            piece.fine.heard_windows,
            piece.fine.windows.len(),
            refused
        );
    }
    match refused {
        None => {
            let song_dur = run.song_s();
            let fine = &piece.fine;
            let HeardSpan { start, end } =
                heard_span(fine, &fine.line, piece.dur_s, song_dur, &|_, _| 0.0);
            let span = (start + piece.start_s, end + piece.start_s);
            Ok(Some(piece.into_play(span, in_doubt, None)))
        }
        // under reverberation or loud noise no window may show the play on
        // its own: its coherence summed over the span may. Its windows are
        // too weak to say where it is heard: the run's span is the estimate
        // its edges are searched from.
        Some(_) => Ok(
            integrated_on(run, &piece, integrated_least_z(r))?.map(|summed| {
                let span = (r.start_s, r.end_s);
                summed
                    .piece
                    .into_play(span, in_doubt, Some(summed.lag_margin))
            }),
        ),
    }
}

/// The integrated coherence a refused run needs: less when the scan holds
/// it ([`HELD_RUN_EVIDENCE`]).
fn integrated_least_z(r: &HopRun) -> f64 {
    if r.evidence >= HELD_RUN_EVIDENCE {
        HELD_RUN_INTEGRATED_MIN_Z
    } else {
        PLAY_INTEGRATED_MIN_Z
    }
}

/// The integration ([`crate::align::integrate`]) over the piece the fine
/// stage measured, near its line, as the fine outcome on the same piece,
/// when it shows the song (at least `least_z`, [`PLAY_LAG_MARGIN`]).
pub(super) fn integrated_on(run: &Run, piece: &Piece, least_z: f64) -> Result<Option<SummedPiece>> {
    let a = ((piece.start_s * run.fs).round() as usize).min(run.recording.len());
    let b = (a + (piece.dur_s * run.fs).round() as usize).min(run.recording.len());
    if b <= a + run.fs as usize {
        return Ok(None);
    }
    let line = &piece.fine.line;
    let out = integrate_line(
        &run.recording[a..b],
        run.song,
        run.fs,
        line,
        &integrate_params(line),
        run.threads,
        run.cancel,
    )?;
    run.release_recording();
    let Some(ig) = out else {
        return Ok(None);
    };
    if crate::align::debug_enabled() {
        eprintln!(
            "segments: piece {:.2}+{:.2} s integrated: z {:.2} lag margin {:.2}, rate {:.7}, line moved {:.1} ms",
            piece.start_s,
            piece.dur_s,
            ig.z,
            ig.lag_margin,
            ig.line.rate,
            (line.song_at(ig.line.t_ref) - ig.line.song_at(ig.line.t_ref)) * 1e3
        );
    }
    if ig.z < least_z || ig.lag_margin < PLAY_LAG_MARGIN {
        return Ok(None);
    }
    let lag_margin = ig.lag_margin;
    Ok(Some(SummedPiece {
        piece: Piece {
            fine: ig.into_fine(),
            ..*piece
        },
        lag_margin,
    }))
}

/// Why the fine stage's outcome on a play's span is what a wrong song gives
/// (the single-play refusal's rules, at the recording's rate, its
/// coherence at `least_z`), if it is.
pub(super) fn refused_on_span(fine: &FineOutcome, least_z: f64) -> Option<String> {
    refutation_below(
        &Evidence {
            z: fine.z,
            heard_windows: fine.heard_windows,
            windows: fine.windows.len(),
            rate: fine.line.rate,
            pitch_kept: false,
            shape_z: 0.0,
        },
        least_z,
    )
}

/// The spectral shape chose the run's own line (`measured[0]`); a
/// look-alike more coherent than it takes over (moves first) only when the
/// difference signal says so (the same drum samples make wrong sections as
/// coherent). (Letting a less coherent look-alike take over on the
/// difference signal alone gained one play and lost one on a fresh bench
/// seed: at |z| 8 that signal can be wrong.)
fn prefer_look_alike(run: &Run, measured: &mut [Piece]) {
    let Some((own, others)) = measured.split_first() else {
        return;
    };
    let own_line = own.absolute_line();
    let (t_a, t_b) = (own.start_s, own.start_s + own.dur_s);
    if crate::align::debug_enabled() {
        for o in others {
            let ev = difference(run, &own_line, &o.absolute_line(), t_a, t_b);
            eprintln!(
                "segments: look-alike {:.3} z {:.2} vs own {:.3} z {:.2}: difference {ev:?}",
                o.absolute_line().dance_at(0.0),
                o.fine.z,
                own_line.dance_at(0.0),
                own.fine.z
            );
        }
    }
    let takeover = others.iter().position(|o| takes_over(run, own, o));
    if let Some(k) = takeover {
        measured.swap(0, k + 1);
    }
}

/// Whether `other`, measured on the same piece of the recording as `own`,
/// takes it over: the difference signal over the piece prefers it (the same
/// drum samples make wrong sections as coherent), and it is more coherent
/// there or the difference signal is decisive ([`DIFFERENCE_DECISIVE_Z`]).
pub(super) fn takes_over(run: &Run, own: &Piece, other: &Piece) -> bool {
    let (t_a, t_b) = (own.start_s, own.start_s + own.dur_s);
    let more_coherent = other.fine.z > own.fine.z;
    difference(run, &own.absolute_line(), &other.absolute_line(), t_a, t_b)
        .is_some_and(|ev| ev < -DIFFERENCE_MIN_Z && (more_coherent || ev < -DIFFERENCE_DECISIVE_Z))
}

/// Difference-signal evidence (z) with which a look-alike less coherent than
/// the run's own line still takes the run over. Coherence counts what two
/// sections share as much as where they differ, and a play heard weakly in
/// its distinct parts can measure less coherent on its own line than on a
/// look-alike's; where they differ, the recording follows one of them. On
/// the bench's plays sets (19 sets, 403 look-alikes measured) the difference
/// signal preferred a wrong look-alike to a right own line by at most 9.7,
/// and a right look-alike to a wrong own line by 30 (plays 1313 ply008).
/// (At 8 it can be wrong: see [`prefer_look_alike`].)
const DIFFERENCE_DECISIVE_Z: f64 = 20.0;

/// Whether the most coherent look-alike measured beside the chosen line
/// (`measured[0]`) is not clearly ruled out by the difference signal over
/// the run: the run may be a look-alike section's, not the play's.
fn look_alike_in_doubt(run: &Run, measured: &[Piece]) -> bool {
    let Some((chosen, others)) = measured.split_first() else {
        return false;
    };
    let Some(rival) = others.iter().max_by(|a, b| a.fine.z.total_cmp(&b.fine.z)) else {
        return false;
    };
    let (t_a, t_b) = (chosen.start_s, chosen.start_s + chosen.dur_s);
    !difference(
        run,
        &chosen.absolute_line(),
        &rival.absolute_line(),
        t_a,
        t_b,
    )
    .is_some_and(|ev| ev >= DIFFERENCE_MIN_Z)
}

/// The fine stage's coherence z of `line` over the recording times
/// `t_a..t_b`, and the line as the fine stage fits it there (the difference
/// signal compares two lines each fitted on the span it reads: a line fitted
/// on another span is off by a fraction of a millisecond here, which the
/// difference signal counts against it); 0 and `line` itself where the span
/// is too short.
pub(super) fn line_on(run: &Run, line: &Line, t_a: f64, t_b: f64) -> Result<(f64, Line)> {
    Ok(measure_piece(run, line, t_a, t_b)?.map_or((0.0, *line), |o| (o.fine.z, o.absolute_line())))
}

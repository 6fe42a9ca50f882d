//! An unsure answer's own play measured on each of the answer's candidate
//! lines. The whole recording's tie-break between look-alike sections
//! hears every play: a play elsewhere on a look-alike line lends it
//! coherence. On the answer's own play's span only that play speaks.

use super::confirm::{measure_piece, takes_over, Piece};
use super::{same_line, Play};
use crate::align::fine::Line;
use crate::align::pipeline::Run;
use crate::align::AlignResult;
use crate::error::Result;

/// Today's answer's plays (`on_main`) each measured on every candidate line
/// of `result` over its own span; a candidate more coherent there than the
/// play's own line, which the difference signal prefers too, takes the
/// play (the most coherent such one). The index of the play that moved,
/// the most coherent if several did.
pub(super) fn main_on_best_candidate(
    run: &Run,
    result: &AlignResult,
    plays: &mut [Play],
) -> Result<Option<usize>> {
    let mut moved: Option<usize> = None;
    for i in 0..plays.len() {
        if !plays[i].on_main {
            continue;
        }
        let Some(best) = best_candidate(run, result, &plays[i])? else {
            continue;
        };
        let p = &mut plays[i];
        if crate::align::debug_enabled() {
            eprintln!(
                "segments: today's play {:.2}-{:.2} s moves to intercept {:.3} (z {:.2} -> {:.2})",
                p.start_s,
                p.end_s,
                best.absolute_line().dance_at(0.0),
                p.z,
                best.fine.z
            );
        }
        p.line = best.absolute_line();
        p.z = best.fine.z;
        if moved.is_none_or(|k| plays[k].z < plays[i].z) {
            moved = Some(i);
        }
    }
    Ok(moved)
}

/// The candidate line of `result` that takes `play` (see
/// [`main_on_best_candidate`]), measured on its span. `result` may be a
/// stretch's answer, in the stretch's time: only differences between its
/// offsets are read.
pub(super) fn best_candidate(
    run: &Run,
    result: &AlignResult,
    play: &Play,
) -> Result<Option<Piece>> {
    let t_mid = 0.5 * (play.start_s + play.end_s);
    let own_song_at = play.line.song_at(t_mid);
    // the candidates' offsets are read at the answer's reference time; the
    // rate is shared, so each is the own line shifted
    let shifted = |offset_s: f64| Line {
        t_ref: t_mid,
        sigma: own_song_at + (result.offset_s - offset_s) / play.line.rate,
        rate: play.line.rate,
    };
    let Some(own) = measure_piece(run, &play.line, play.start_s, play.end_s)? else {
        return Ok(None);
    };
    let own_line = own.absolute_line();
    let mut best: Option<Piece> = None;
    for c in result.candidates.iter().skip(1) {
        let Some(piece) = measure_piece(run, &shifted(c.offset_s), play.start_s, play.end_s)?
        else {
            continue;
        };
        if crate::align::debug_enabled() {
            eprintln!(
                "segments: play {:.2}-{:.2} s on candidate {:.3}: z {:.2} (own {:.2})",
                play.start_s, play.end_s, c.offset_s, piece.fine.z, own.fine.z
            );
        }
        // a candidate the fine stage brings back onto the own line is no other line
        let elsewhere = !same_line(&own_line, &piece.absolute_line());
        let beats_best = best.as_ref().is_none_or(|b| piece.fine.z > b.fine.z);
        if elsewhere && beats_best && takes_over(run, &own, &piece) {
            best = Some(piece);
        }
    }
    Ok(best)
}

//! Plays the scan misses or misreads, found by aligning a stretch of the
//! recording on its own.
//!
//! The scan reads short hops by spectral shape: a loop-based song (the same
//! bars all along) gives every hop a dozen equal positions, and in loud
//! noise a play shows only in a third of its hops, where a look-alike
//! section can measure as coherent as the play's own. The whole pipeline
//! (onset search, shape ranking, tie-break, final pass, refusal) run on the
//! stretch around a play, or between plays, weighs the stretch as it weighs
//! a whole recording, so:
//! - each play the scan found on another line than today's answer is
//!   aligned with the stretch around it; a sure answer there on another
//!   line replaces the play;
//! - each stretch that no play covers, long enough for a play, is aligned
//!   (one refused whole, 40-90 s long, again in halves: two plays on
//!   different lines split its evidence); the plays found there join (each
//!   confirmed at the recording's rate by the single-play refusal's rules,
//!   its coherence at the least a play needs there: lower beside a sure
//!   answer; a play of a stretch answered sure needs only coherence on its
//!   line there; or by its coherence summed over its span).

use super::boundary::{Edge, Side};
use super::candidates::best_candidate;
use super::confirm::{integrated_on, line_on, measure_piece, refused_on_span};
use super::difference::difference;
use super::edges::{edge_near, signals_of};
use super::{same_line, AlignStretch, Line, Play, CUT_GAP_S, LOOK_ALIKE_RATIO};
use crate::align::fine::FineOutcome;
use crate::align::pipeline::Run;
use crate::align::verdict::{COHERENT_Z, DIFFERENCE_MIN_Z, PLAY_INTEGRATED_MIN_Z};
use crate::align::{Segment, Verdict};
use crate::error::Result;

/// Shortest stretch searched for a play of its own (s): plays last ~10 s
/// at least.
const STRETCH_MIN_S: f64 = 10.0;
/// A stretch refused whole at least this long (s) is searched again in
/// halves: room for two plays (10 s or more each) and the talk around them.
/// (On 23 bench sets one play more: plays-real 4545 rpl005, whose stretch of
/// 70 s held two plays on different lines.)
const SPLIT_MIN_S: f64 = 40.0;
/// ...and at most this long: the minutes of talk between the plays of a
/// long take are refused whole too, and each half costs an alignment (the
/// 60-min take's stretches of 1-3 min in halves: 23 -> 31 s of CPU; those
/// up to 2 min, four of them: 21-22 -> 22-26 s).
const SPLIT_MAX_S: f64 = 90.0;
/// How far past a play's span the stretch aligned to check it reaches (s),
/// not past the neighbouring plays: its heard span can be a third of it.
const CHECK_REACH_S: f64 = 30.0;
/// Stretches whose edges are this close (s) are one (a play's edges move a
/// little each time the plays settle).
const SAME_STRETCH_S: f64 = 1.0;
/// A stretch's answer replaces a play it covers at least this fraction of.
const COVER_MIN: f64 = 0.5;

/// The plays on other lines than today's (`main_line`), each checked by
/// aligning the stretch around it.
pub(super) fn verify_plays(
    run: &Run,
    align_stretch: &AlignStretch<'_>,
    mut plays: Vec<Play>,
    main_line: &Line,
    least_z: f64,
) -> Result<Vec<Play>> {
    plays.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let rec_dur = run.recording_s();
    for i in 0..plays.len() {
        let p = &plays[i];
        if p.on_main || !p.in_doubt {
            continue;
        }
        let t_a = (p.start_s - CHECK_REACH_S).max(i.checked_sub(1).map_or(0.0, |k| plays[k].end_s));
        let t_b = (p.end_s + CHECK_REACH_S).min(plays.get(i + 1).map_or(rec_dur, |q| q.start_s));
        let answer = align_stretch(t_a, t_b)?;
        debug_answer("check", t_a, t_b, answer.as_ref());
        let Some(answer) = answer else {
            continue;
        };
        if answer.verdict != Verdict::Sure {
            continue;
        }
        let span = p.end_s - p.start_s;
        let covering = answer
            .segments
            .iter()
            .max_by(|x, y| cover(x, t_a, p).total_cmp(&cover(y, t_a, p)));
        let Some(seg) = covering.filter(|s| cover(s, t_a, p) >= COVER_MIN * span) else {
            continue;
        };
        // (its stretch is answered sure: checked above)
        let confirm = Confirm {
            least_z,
            sure: true,
        };
        let Some(mut found) = play_of(run, seg, (t_a, t_b), p.line.rate, confirm)? else {
            continue;
        };
        if same_line(&found.line, &p.line) {
            continue;
        }
        // a look-alike section can win a short stretch as it can win a run:
        // the stretch's line takes over where the difference signal between
        // the two lines says so
        let (_, p_here) = line_on(run, &p.line, found.start_s, found.end_s)?;
        let ev = difference(run, &p_here, &found.line, found.start_s, found.end_s);
        let replaced = ev.is_some_and(|ev| ev < -DIFFERENCE_MIN_Z);
        if crate::align::debug_enabled() {
            eprintln!(
                "segments: stretch {t_a:.2}-{t_b:.2} s: play {:.2}-{:.2} s on {:.3} vs the stretch's {:.2}-{:.2} s on {:.3}: difference {ev:?}, replaced {replaced}",
                p.start_s,
                p.end_s,
                p.line.dance_at(0.0),
                found.start_s,
                found.end_s,
                found.line.dance_at(0.0)
            );
        }
        if !replaced {
            continue;
        }
        found.on_main = same_line(&found.line, main_line);
        plays[i] = found;
    }
    Ok(plays)
}

/// The plays found in the stretches between `plays` (sorted; and before
/// the first and after the last) at least [`STRETCH_MIN_S`] long, but for
/// those already aligned (`searched`, to which they are added); a stretch
/// refused whole, [`SPLIT_MIN_S`] to [`SPLIT_MAX_S`] long, is aligned again
/// in halves.
pub(super) fn fill_gaps(
    run: &Run,
    align_stretch: &AlignStretch<'_>,
    plays: &[Play],
    least_z: f64,
    searched: &mut Vec<(f64, f64)>,
) -> Result<Vec<Play>> {
    let rec_dur = run.recording_s();
    let mut edges = vec![0.0];
    for p in plays {
        edges.push(p.start_s);
        edges.push(p.end_s);
    }
    edges.push(rec_dur);
    let rate = plays.first().map_or(1.0, |p| p.line.rate);
    let mut found = Vec::new();
    let mut todo: Vec<(f64, f64, bool)> = edges
        .chunks_exact(2)
        .map(|gap| (gap[0].max(0.0), gap[1].min(rec_dur), true))
        .rev()
        .collect();
    while let Some((t_a, t_b, may_split)) = todo.pop() {
        if t_b - t_a < STRETCH_MIN_S || searched.iter().any(|s| same_stretch(*s, (t_a, t_b))) {
            continue;
        }
        searched.push((t_a, t_b));
        let answer = align_stretch(t_a, t_b)?;
        debug_answer("gap", t_a, t_b, answer.as_ref());
        let Some(answer) = answer else {
            // two plays on different lines split a stretch's evidence
            // between them: each half holds one
            if may_split && (SPLIT_MIN_S..=SPLIT_MAX_S).contains(&(t_b - t_a)) {
                let t_mid = 0.5 * (t_a + t_b);
                todo.push((t_mid, t_b, false));
                todo.push((t_a, t_mid, false));
            }
            continue;
        };
        let confirm = Confirm {
            least_z,
            sure: answer.verdict == Verdict::Sure,
        };
        for seg in &answer.segments {
            let Some(mut p) = play_of(run, seg, (t_a, t_b), rate, confirm)? else {
                if crate::align::debug_enabled() {
                    eprintln!("segments: gap play refused at the recording's rate");
                }
                continue;
            };
            // an unsure stretch's tie-break heard all it holds (another
            // play, a neighbour's end): its play is weighed on its own span
            if answer.verdict == Verdict::Unsure {
                if let Some(best) = best_candidate(run, &answer, &p)? {
                    p.line = best.absolute_line();
                    p.z = best.fine.z;
                }
            }
            if plays.iter().any(|q| same_line(&q.line, &p.line))
                || explained_by_neighbour(run, plays, &p)?
            {
                continue;
            }
            if crate::align::debug_enabled() {
                eprintln!(
                    "segments: stretch {t_a:.2}-{t_b:.2} s ({:?}): play {:.2}-{:.2} s on {:.3}, z {:.2}",
                    answer.verdict,
                    p.start_s,
                    p.end_s,
                    p.line.dance_at(0.0),
                    p.z
                );
            }
            found.push(p);
        }
    }
    Ok(found)
}

/// Whether two stretches are one, their edges as the plays' settle anew.
fn same_stretch(a: (f64, f64), b: (f64, f64)) -> bool {
    (a.0 - b.0).abs() <= SAME_STRETCH_S && (a.1 - b.1).abs() <= SAME_STRETCH_S
}

/// Whether the line of a play that meets the stretch's play `p` explains its
/// span about as well ([`LOOK_ALIKE_RATIO`] of its coherence): the stretch
/// held the neighbour's quiet end (its span was placed short), heard on a
/// look-alike section there.
fn explained_by_neighbour(run: &Run, plays: &[Play], p: &Play) -> Result<bool> {
    let before = plays
        .iter()
        .find(|q| (q.end_s - p.start_s).abs() <= CUT_GAP_S);
    let after = plays
        .iter()
        .find(|q| (q.start_s - p.end_s).abs() <= CUT_GAP_S);
    for q in before.into_iter().chain(after) {
        let (z, q_here) = line_on(run, &q.line, p.start_s, p.end_s)?;
        if z < LOOK_ALIKE_RATIO * p.z {
            continue;
        }
        // (as where today's line explains a play: unless the difference
        // signal says the play's own line)
        let ev = difference(run, &p.line, &q_here, p.start_s, p.end_s);
        if crate::align::debug_enabled() {
            eprintln!(
                "segments: gap play {:.2}-{:.2} z {:.2}: neighbour's line z {z:.2}, difference {ev:?}",
                p.start_s, p.end_s, p.z
            );
        }
        if !ev.is_some_and(|ev| ev >= DIFFERENCE_MIN_Z) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How much of play `p` the stretch's segment `seg` (in the time of the
/// stretch starting at `t0`) covers (s).
fn cover(seg: &Segment, t0: f64, p: &Play) -> f64 {
    ((seg.dance_end_s + t0).min(p.end_s) - (seg.dance_start_s + t0).max(p.start_s)).max(0.0)
}

/// What a stretch's play needs, measured on its span at the recording's rate.
#[derive(Debug, Clone, Copy)]
struct Confirm {
    /// The coherence the single-play refusal's rules ask for there.
    least_z: f64,
    /// The stretch, aligned on its own, was answered sure.
    sure: bool,
}

impl Confirm {
    /// Why the play measured on its span (`fine`) is not kept, if it is not:
    /// what a wrong song gives (the single-play refusal's rules at
    /// `least_z`). A stretch answered sure has been through the whole
    /// refusal on its own (where its first pass heard too few windows, on
    /// its integrated coherence, as a whole recording is): its play, at the
    /// recording's rate, needs coherence on its line ([`COHERENT_Z`]), not
    /// the first pass's heard windows again. (Plays of real music at about
    /// -1 dB SNR under 1.1-1.3 s of reverberation: heard in 1-2 of 60-122
    /// windows, z 6.4-8.4 on their spans, their stretches sure at 0.96-1.)
    fn refused(&self, fine: &FineOutcome) -> Option<String> {
        let refused = refused_on_span(fine, self.least_z)?;
        (!self.sure || fine.z < COHERENT_Z).then_some(refused)
    }
}

/// A stretch's segment (in the time of the stretch `t0..t1` it was found
/// in) as a play on the recording's clock (`rate`): its edges placed within
/// the stretch, measured by the fine stage on that span, `None` where
/// `confirm` refuses that evidence.
fn play_of(
    run: &Run,
    seg: &Segment,
    (t0, t1): (f64, f64),
    rate: f64,
    confirm: Confirm,
) -> Result<Option<Play>> {
    let (start_s, end_s) = (seg.dance_start_s + t0, seg.dance_end_s + t0);
    let t_mid = 0.5 * (start_s + end_s);
    let line = Line {
        t_ref: t_mid,
        sigma: t_mid - (seg.offset_s + t0),
        rate,
    };
    // the nested answer's span is what its own stages heard, which can stop
    // short of the play or run into the talk beside it
    let (start_s, end_s) = edges_within(run, &line, (start_s, end_s), (t0, t1));
    let Some(piece) = measure_piece(run, &line, start_s, end_s)? else {
        return Ok(None);
    };
    let refused = confirm.refused(&piece.fine);
    let (piece, summed_lag_margin) = match refused {
        None => (piece, None),
        Some(_) => {
            if crate::align::debug_enabled() {
                eprintln!(
                    "segments: stretch play {start_s:.2}-{end_s:.2} s refused: {refused:?}, z {:.2} heard {}/{}",
                    piece.fine.z,
                    piece.fine.heard_windows,
                    piece.fine.windows.len()
                );
            }
            // no window may show it: its coherence summed over the span may
            match integrated_on(run, &piece, PLAY_INTEGRATED_MIN_Z)? {
                Some(summed) => (summed.piece, Some(summed.lag_margin)),
                None => return Ok(None),
            }
        }
    };
    Ok(Some(piece.into_play(
        (start_s, end_s),
        false,
        summed_lag_margin,
    )))
}

/// The edges of the play on `line` first placed at `span`, each searched as
/// far as the plays' edges are ([`edge_near`]), within `stretch`.
fn edges_within(run: &Run, line: &Line, span: (f64, f64), stretch: (f64, f64)) -> (f64, f64) {
    let sig = signals_of(run);
    let side = Side { line, play: span };
    let (start, end) = span;
    let start = edge_near(&sig, &side, Edge::Start, start, (stretch.0, end)).unwrap_or(start);
    let end = edge_near(&sig, &side, Edge::End, end, (start, stretch.1)).unwrap_or(end);
    run.release_recording();
    (start, end)
}

fn debug_answer(what: &str, t_a: f64, t_b: f64, answer: Option<&crate::align::AlignResult>) {
    if !crate::align::debug_enabled() {
        return;
    }
    match answer {
        None => eprintln!("segments: {what} stretch {t_a:.2}-{t_b:.2} s: no match"),
        Some(a) => eprintln!(
            "segments: {what} stretch {t_a:.2}-{t_b:.2} s: {:?} {:.3}, segments {:?}",
            a.verdict,
            a.confidence,
            a.segments
                .iter()
                .map(|s| (s.dance_start_s + t_a, s.dance_end_s + t_a, s.offset_s + t_a))
                .collect::<Vec<_>>()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::Confirm;
    use crate::align::fine::{FineOutcome, WindowObs};
    use crate::align::verdict::MIN_PLAY_Z_BESIDE_SURE;
    use crate::align::Line;

    /// A play measured at coherence `z`, heard in `heard` of 100 windows.
    fn measured(z: f64, heard: usize) -> FineOutcome {
        let window = WindowObs {
            t_s: 0.0,
            z_on_line: 0.0,
            presence: 0.0,
            song_db: 0.0,
        };
        FineOutcome {
            line: Line {
                t_ref: 0.0,
                sigma: 0.0,
                rate: 1.0,
            },
            z,
            heard_windows: heard,
            line_z: z,
            windows: vec![window; 100],
            hop_s: 0.25,
        }
    }

    /// A play heard in one window of a hundred, at z 7.6 (plays-real 1717
    /// rpl008's second play): refused when its stretch was not answered
    /// sure, kept when it was; without coherence on its line, refused either
    /// way. A play the first pass hears is kept whatever the stretch's answer.
    #[test]
    fn a_sure_stretch_play_needs_coherence_not_the_heard_windows_again() {
        let confirm = |sure| Confirm {
            least_z: MIN_PLAY_Z_BESIDE_SURE,
            sure,
        };
        assert!(confirm(false).refused(&measured(7.6, 1)).is_some());
        assert!(confirm(true).refused(&measured(7.6, 1)).is_none());
        assert!(confirm(true).refused(&measured(3.0, 1)).is_some());
        assert!(confirm(false).refused(&measured(12.0, 20)).is_none());
    }
}

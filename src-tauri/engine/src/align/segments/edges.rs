//! Each play's edges, once the plays are known: where it starts and ends
//! next to talk or silence, or the cut where it gives way to the next
//! (the ratios of `boundary`, searched around the scan's estimates).

use super::boundary::{self, locate_edge, Edge, Placement, Side, Signals};
use super::{Play, CUT_GAP_S};
use crate::align::pipeline::Run;

/// Half-width of the search for a cut around the scan's estimate (s).
const CUT_SEARCH_S: f64 = 2.0;
/// A cut this close to an end of its search (s) is searched again past it...
const AT_SEARCH_END_S: f64 = 0.05;
/// ...at most this many times.
const CUT_WIDENINGS: usize = 3;
/// How far from a placed cut (s) each play's model is read when the cut is
/// placed again: about four analysis frames (64 ms), so that the frames a
/// model reads hold nothing of the other play even where the first
/// placement was 100-odd ms off.
const CUT_MODEL_CLEAR_S: f64 = 0.25;
/// How far an edge next to talk or silence is searched from its estimate
/// (s) into its play...
const EDGE_REACH_S: f64 = 8.0;
/// ...and away from it, not past the neighbouring play nor the recording's
/// ends: the scan's runs can begin 15 s after a quiet or talked-over start.
const EDGE_REACH_OUT_S: f64 = 20.0;
/// Plays whose placed edges are closer than this (s) meet at a cut.
const MEET_S: f64 = 0.5;
/// How far (s) from an edge a play's frames are read for its line's model
/// (its gain and phase on the recording, band by band).
const MODEL_REACH_S: f64 = 60.0;
/// ...and from a start after a stop, into the play: a play's first seconds
/// can sound unlike the minute after them (the phone carried past the
/// loudspeaker, dancers walking into place in front of it, a section of the
/// song louder than the rest through a phone's compressor), and a model
/// read from that minute heard them as no song (plays-real 8484 rpl003: a
/// start 1.5 s late, now 0.12 s). (At 15 s for the ends and the cuts too,
/// ends over 250 ms on eight real-music sets 3 -> 5; for the starts only,
/// starts over 250 ms 4 -> 2 of 185 and the ends the same.)
const START_MODEL_REACH_S: f64 = 15.0;

/// The recording and the song of `run` as the edges read them.
pub(super) fn signals_of<'a>(run: &Run<'a>) -> Signals<'a> {
    Signals {
        recording: run.recording,
        song: run.song,
        fs: run.fs,
    }
}

/// Where the `edge` of the play `side`, estimated at `at`, lies next to
/// talk or silence: searched [`EDGE_REACH_S`] into the play and
/// [`EDGE_REACH_OUT_S`] out of it, within recording times `within`.
pub(super) fn edge_near(
    sig: &Signals,
    side: &Side,
    edge: Edge,
    at: f64,
    within: (f64, f64),
) -> Option<f64> {
    let search = search_near(edge, at, within);
    locate_edge(sig, side, edge, search, Placement::Likeliest)
}

/// The recording times an `edge` estimated at `at` is searched over:
/// [`EDGE_REACH_S`] into the play, [`EDGE_REACH_OUT_S`] out of it, within
/// `lo..hi`.
fn search_near(edge: Edge, at: f64, (lo, hi): (f64, f64)) -> (f64, f64) {
    match edge {
        Edge::Start => ((at - EDGE_REACH_OUT_S).max(lo), (at + EDGE_REACH_S).min(hi)),
        Edge::End => ((at - EDGE_REACH_S).max(lo), (at + EDGE_REACH_OUT_S).min(hi)),
    }
}

/// Where play `i` of `plays`, after a stop, starts: searched around its
/// present start, not before the previous play's end, its model read from
/// the play's first [`START_MODEL_REACH_S`].
fn start_after_stop(sig: &Signals, plays: &[Play], i: usize, placement: Placement) -> Option<f64> {
    let p = &plays[i];
    let prev_end = if i > 0 { plays[i - 1].end_s } else { 0.0 };
    let within = (prev_end.max(0.0), p.end_s);
    let at = p.start_s;
    let search = search_near(Edge::Start, at, within);
    let side = side_within(p, at, START_MODEL_REACH_S);
    locate_edge(sig, &side, Edge::Start, search, placement)
}

/// The settled plays' starts after a stop, each at the median of its splits
/// (see [`Placement::Median`]); the cuts and the ends stay where they are.
pub(super) fn centre_starts(run: &Run, plays: &mut [Play]) {
    let sig = signals_of(run);
    for i in 0..plays.len() {
        if plays[i].cut_before {
            continue;
        }
        if let Some(s) = start_after_stop(&sig, plays, i, Placement::Median) {
            plays[i].start_s = s;
        }
        run.release_recording();
    }
}

/// The cut between plays `p` and `q` that meet ([`search_cut`]), placed
/// again with each play's model read from its own side of that cut, at
/// least [`CUT_MODEL_CLEAR_S`] from it: a play's span as the scan estimates
/// it can run past the cut into the other play, whose frames then lend the
/// model their sound (plays-real 6767 rpl001: the first play's model read
/// 0.26 s of the next, its cut 111 ms late; now 0.7 ms).
fn locate_cut(sig: &Signals, p: &Play, q: &Play) -> Option<f64> {
    let (cut, search) = search_cut(sig, p, q)?;
    let clear = CUT_MODEL_CLEAR_S;
    let before = Side {
        line: &p.line,
        play: (
            p.start_s.max(cut - MODEL_REACH_S),
            (cut - clear).max(p.start_s + clear),
        ),
    };
    let after = Side {
        line: &q.line,
        play: (
            (cut + clear).min(q.end_s - clear),
            q.end_s.min(cut + MODEL_REACH_S),
        ),
    };
    boundary::locate_cut(sig, &before, &after, search).or(Some(cut))
}

/// The cut between plays `p` and `q` that meet, and the recording times it
/// was searched over: `CUT_SEARCH_S` around both estimates, within the two
/// plays; a cut found at an end of its search is searched again with that
/// end `CUT_SEARCH_S` further (the scan can end a play seconds early:
/// plays-real 2222 rpl009, 2.3 s, its cut placed at the end of its search,
/// 315 ms early).
fn search_cut(sig: &Signals, p: &Play, q: &Play) -> Option<(f64, (f64, f64))> {
    let mut t_lo = (p.end_s.min(q.start_s) - CUT_SEARCH_S).max(p.start_s);
    let mut t_hi = (p.end_s.max(q.start_s) + CUT_SEARCH_S).min(q.end_s);
    let mut widened = 0;
    loop {
        let (before, after) = (side_near(p, t_lo), side_near(q, t_hi));
        let cut = boundary::locate_cut(sig, &before, &after, (t_lo, t_hi))?;
        let wider = match cut {
            _ if widened == CUT_WIDENINGS => None,
            c if c >= t_hi - AT_SEARCH_END_S && t_hi < q.end_s => {
                Some((t_lo, (t_hi + CUT_SEARCH_S).min(q.end_s)))
            }
            c if c <= t_lo + AT_SEARCH_END_S && t_lo > p.start_s => {
                Some(((t_lo - CUT_SEARCH_S).max(p.start_s), t_hi))
            }
            _ => None,
        };
        match wider {
            Some(span) => (t_lo, t_hi) = span,
            None => return Some((cut, (t_lo, t_hi))),
        }
        widened += 1;
    }
}

/// Play `p` next to one of its edges, near recording time `at`: its model
/// is read from the part of it within `MODEL_REACH_S` of there.
fn side_near(p: &Play, at: f64) -> Side<'_> {
    side_within(p, at, MODEL_REACH_S)
}

/// Play `p` near recording time `at`, its model read from the part of it
/// within `reach` (s) of there.
fn side_within(p: &Play, at: f64, reach: f64) -> Side<'_> {
    Side {
        line: &p.line,
        play: (p.start_s.max(at - reach), p.end_s.min(at + reach)),
    }
}

/// What lies between two plays heard close together.
enum Between {
    /// One gives way to the other at this time (s).
    Cut(f64),
    /// The first ends, then the second starts (s): neither line explains
    /// the stretch between (a stop, talk, a restart).
    Gap(f64, f64),
}

/// Between plays `p` and `q`, heard within `CUT_GAP_S` of each other: the
/// cut the two lines' ratios place, unless each play's own edges, searched
/// from it, leave at least `CUT_GAP_S` between them (the scan's spans of a
/// stop and a quick restart can meet; a cut would give the talk between
/// them to one of the two). (At 1 s, a cut whose first play's last 1.6 s
/// are quiet became a gap on a bench set; the five stops it found were
/// 3.8-6.1 s long.)
fn between(sig: &Signals, p: &Play, q: &Play) -> Option<Between> {
    let cut = locate_cut(sig, p, q)?;
    let within = (p.start_s, q.end_s);
    let end = edge_near(sig, &side_near(p, cut), Edge::End, cut, within);
    let start = edge_near(sig, &side_near(q, cut), Edge::Start, cut, within);
    match (end, start) {
        (Some(end), Some(start)) if start - end >= CUT_GAP_S => Some(Between::Gap(end, start)),
        _ => Some(Between::Cut(cut)),
    }
}

/// Each play's edges: a cut between plays that meet, otherwise the edge of
/// its evidence next to talk or silence.
pub(super) fn place_edges(run: &Run, plays: &mut [Play]) {
    let sig = signals_of(run);
    let rec_dur = run.recording_s();
    // which plays meet at a cut is read anew from their spans: a play whose
    // neighbour at a cut was dropped since (a look-alike's piece) starts
    // after a stop, and its start is searched as one (plays-real 2222
    // rpl001: a first play left starting at the cut with the piece it
    // followed, 1.4 s late)
    for p in plays.iter_mut() {
        p.cut_before = false;
    }
    for i in 0..plays.len() {
        if !plays[i].cut_before {
            if let Some(s) = start_after_stop(&sig, plays, i, Placement::Likeliest) {
                plays[i].start_s = s;
            }
        }
        let meets_next = plays
            .get(i + 1)
            .is_some_and(|q| q.start_s - plays[i].end_s <= CUT_GAP_S);
        let p = &plays[i];
        if meets_next {
            let q = &plays[i + 1];
            match between(&sig, p, q) {
                Some(Between::Cut(cut)) => {
                    plays[i].end_s = cut;
                    plays[i + 1].start_s = cut;
                    plays[i + 1].cut_before = true;
                }
                Some(Between::Gap(end, start)) => {
                    plays[i].end_s = end;
                    plays[i + 1].start_s = start;
                }
                None => {}
            }
        } else {
            let t = p.end_s;
            let next_start = plays.get(i + 1).map_or(rec_dur, |q| q.start_s);
            let within = (p.start_s, next_start.min(rec_dur));
            if let Some(e) = edge_near(&sig, &side_near(p, t), Edge::End, t, within) {
                plays[i].end_s = e;
            }
        }
        // each play's edges read their own stretch of a long take
        run.release_recording();
    }
    // plays whose edges, once placed, meet: a cut between them
    for i in 1..plays.len() {
        let (p, q) = (&plays[i - 1], &plays[i]);
        if q.cut_before || q.start_s - p.end_s > MEET_S {
            continue;
        }
        if let Some(cut) = locate_cut(&sig, p, q) {
            plays[i - 1].end_s = cut;
            plays[i].start_s = cut;
            plays[i].cut_before = true;
        }
    }
}

//! A restart from the spot another play started at. Teachers start the song
//! again where they started it before ("from the top again"), and a song's
//! sections repeat: the scan can place such a play on a look-alike section
//! (on the bench's synthesised plays sets, five of the nine false segments
//! left on seven seeds were restarts from another play's spot).
//!
//! A play whose song start is no other play's is measured again on the line
//! that starts it where another play started, when the song recurs there:
//! the song's own copy of the play's first seconds, found near that spot by
//! GCC-PHAT of the song with itself, to the sample ([`COPY_MIN_PEAK`]). It
//! takes that line when the line explains its span about as well
//! ([`LOOK_ALIKE_RATIO`]) and the difference signal there prefers it
//! ([`DIFFERENCE_MIN_Z`]): the spot is a prior, the recording decides.

use super::confirm::{measure_piece, Piece};
use super::difference::difference;
use super::{Play, DIFFERENCE_MIN_Z, LOOK_ALIKE_RATIO};
use crate::align::fine::Line;
use crate::align::pipeline::Run;
use crate::dsp::gcc::GccPhat;
use crate::error::Result;

/// Two plays this close in song time at their starts (s) start at one spot
/// (a teacher's "from the top" is a second or so off the last one).
pub(super) const SAME_SPOT_S: f64 = 1.0;
/// How far from another play's start the play's own start is looked for in
/// the song (s): the spot's slack, and a start placed up to a half second
/// off.
const SPOT_SEARCH_S: f64 = 1.5;
/// The play's first seconds compared with the song near the spot (s).
pub(super) const COPY_S: f64 = 10.0;
/// The band the song's copy is found in (Hz), as the scan's.
const COPY_BAND_HZ: (f64, f64) = (200.0, 3500.0);
/// The play's first seconds the two lines are weighed on (s): where it
/// started is what is in question, and a long play's whole span would cost
/// the fine stage minutes of recording per spot (synthesised plays last
/// 15-50 s; a 60-min take's up to 3 min).
pub(super) const MEASURED_S: f64 = 40.0;
/// PHAT peak of the song with itself (1 for an exact copy) from which the
/// song recurs near a spot. On the bench, restarts placed on a look-alike
/// peaked at 0.26-0.52 at their true spot; real songs at spots that do not
/// repeat at 0.01-0.06 (their repeated sections to 0.31).
const COPY_MIN_PEAK: f32 = 0.15;

/// Moves each play whose song start is no other play's onto the line that
/// starts it at another play's spot, where the recording prefers that line
/// (see the module docs). Today's answer's play too: the whole recording's
/// tie-break heard every play, and the others' evidence can carry it onto
/// a look-alike (plays 5050 ply007: today's answer sure on a copy 26.9 s
/// from its play, the two other plays restarting where it truly started).
/// It stays today's play ([`Play::on_main`]), and today's answer follows
/// it. Returns whether any play moved.
pub(super) fn restarts_at_same_spot(run: &Run, plays: &mut [Play]) -> Result<bool> {
    let starts: Vec<f64> = plays.iter().map(song_start).collect();
    // one correlator (its FFT plans) for every search, made at the first
    let mut gcc: Option<GccPhat> = None;
    let mut moved = false;
    for (i, play) in plays.iter_mut().enumerate() {
        let others: Vec<f64> = (0..starts.len())
            .filter(|&k| k != i)
            .map(|k| starts[k])
            .collect();
        let shares = others.iter().any(|s| (s - starts[i]).abs() < SAME_SPOT_S);
        if shares {
            continue;
        }
        let gcc = gcc.get_or_insert_with(|| copy_correlator(run));
        // a copy found where the play already starts is the play itself
        let copies: Vec<f64> = distinct(others)
            .into_iter()
            .filter_map(|spot| song_copy_near(run, gcc, starts[i], spot))
            .filter(|copy| (copy - starts[i]).abs() >= SAME_SPOT_S)
            .collect();
        if let Some((line, z)) = line_at_copies(run, play, &copies)? {
            (play.line, play.z) = (line, z);
            moved = true;
        }
        run.release_recording();
    }
    Ok(moved)
}

/// Where `play` starts in the song.
pub(super) fn song_start(play: &Play) -> f64 {
    play.line.song_at(play.start_s)
}

/// `spots` without those within [`SAME_SPOT_S`] of one kept before.
pub(super) fn distinct(mut spots: Vec<f64>) -> Vec<f64> {
    spots.sort_by(f64::total_cmp);
    let mut kept: Vec<f64> = Vec::new();
    for s in spots {
        if kept.last().is_none_or(|k| s - k >= SAME_SPOT_S) {
            kept.push(s);
        }
    }
    kept
}

/// The first line (and its coherence) that starts `play` at one of the
/// song times `copies` (where the song recurs as at the play's start) and
/// that the recording prefers to the play's own line over its first
/// [`MEASURED_S`].
fn line_at_copies(run: &Run, play: &Play, copies: &[f64]) -> Result<Option<(Line, f64)>> {
    first_copy_taken(run, play, copies, |copy_at, own, other, (t_a, t_b)| {
        let other_line = other.absolute_line();
        let ev = difference(run, &own.absolute_line(), &other_line, t_a, t_b);
        if crate::align::debug_enabled() {
            eprintln!(
                "segments: play {t_a:.2}-{t_b:.2} s from song {:.2} s z {:.2}; from {copy_at:.3} s z {:.2}, difference {ev:?}",
                song_start(play),
                own.fine.z,
                other.fine.z
            );
        }
        let explains = other.fine.z >= LOOK_ALIKE_RATIO * own.fine.z;
        let takes = explains && ev.is_some_and(|ev| ev < -DIFFERENCE_MIN_Z);
        Ok(takes.then_some((other_line, other.fine.z)))
    })
}

/// `play`'s own line and, one copy at a time, the line that starts it at
/// each of the song times `copies`, measured over the play's first
/// [`MEASURED_S`] (the recording times `span`): the first answer `take`
/// gives for `(copy, own, other, span)`, the copies after it not measured.
pub(super) fn first_copy_taken<T>(
    run: &Run,
    play: &Play,
    copies: &[f64],
    mut take: impl FnMut(f64, &Piece, &Piece, (f64, f64)) -> Result<Option<T>>,
) -> Result<Option<T>> {
    let span = (play.start_s, play.end_s.min(play.start_s + MEASURED_S));
    if copies.is_empty() {
        return Ok(None);
    }
    let Some(own) = measure_piece(run, &play.line, span.0, span.1)? else {
        return Ok(None);
    };
    for &copy_at in copies {
        let moved = Line {
            sigma: play.line.sigma + copy_at - song_start(play),
            ..play.line
        };
        let Some(other) = measure_piece(run, &moved, span.0, span.1)? else {
            continue;
        };
        if let Some(taken) = take(copy_at, &own, &other, span)? {
            return Ok(Some(taken));
        }
    }
    Ok(None)
}

/// The correlator of [`song_copy_near`]: [`COPY_S`] of the song against
/// [`SPOT_SEARCH_S`] either side of a spot.
pub(super) fn copy_correlator(run: &Run) -> GccPhat {
    let win = (COPY_S * run.fs) as usize;
    let max_lag = (SPOT_SEARCH_S * run.fs) as usize;
    GccPhat::new(win, max_lag, run.fs as u32, COPY_BAND_HZ)
}

/// The song time within [`SPOT_SEARCH_S`] of `spot` where the song's
/// [`COPY_S`] from `from` recur (the PHAT peak of `gcc`, a
/// [`copy_correlator`], to the sample), when they do ([`COPY_MIN_PEAK`]);
/// `None` too at the song's ends.
pub(super) fn song_copy_near(run: &Run, gcc: &mut GccPhat, from: f64, spot: f64) -> Option<f64> {
    let a = (from * run.fs).round();
    let b = ((spot - SPOT_SEARCH_S) * run.fs).round();
    if a < 0.0 || b < 0.0 {
        return None;
    }
    let (a, b) = (a as usize, b as usize);
    let window = run.song.get(a..a + gcc.window_len())?;
    let segment = run.song.get(b..b + gcc.segment_len())?;
    let mut out = Vec::new();
    if !gcc.correlate(window, segment, &mut out) {
        return None;
    }
    let (lag, &peak) = out.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1))?;
    if crate::align::debug_enabled() {
        eprintln!(
            "segments: song from {from:.2} s near {spot:.2} s: peak {peak:.3} at {:.3} s",
            (b + lag) as f64 / run.fs
        );
    }
    (peak >= COPY_MIN_PEAK).then_some((b + lag) as f64 / run.fs)
}

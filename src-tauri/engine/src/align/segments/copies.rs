//! A play placed on a look-alike section beside the play it meets at a
//! cut, where one line through both is the song: songs repeat whole
//! phrases (a loop, a chorus, the intro again at the end), and a play heard
//! through such a phrase can sit on any of its copies; the scan, which
//! reads five seconds at a time, then splits one play into two on two
//! copies' lines joined by an edit that nobody could hear (plays 4242
//! ply007: one play of 39 s answered as two false segments of 21 and 18 s).
//!
//! Copies of a play's first [`COPY_S`] are found in the song's spectral
//! shape (its best placements), each checked and placed to the sample by
//! GCC-PHAT of the song with itself ([`song_copy_near`]). A play takes a
//! copy's line when that line explains the play about as well as its own
//! ([`LOOK_ALIKE_RATIO`], the difference signal not against it) and
//! explains the play it meets at a cut too: the plays are then one
//! (`drop_look_alikes`). One play through a repeated phrase is likelier
//! than an edit to another copy of it. (A copy's line taking a play on the
//! difference signal alone, as the scan's look-alikes do, moved two right
//! plays of seven synthesised seeds onto wrong copies.)

use super::confirm::{line_on, measure_piece, Piece};
use super::difference::difference;
use super::same_spot::{
    copy_correlator, distinct, song_copy_near, song_start, COPY_S, MEASURED_S, SAME_SPOT_S,
};
use super::{Play, Shapes, CUT_GAP_S, DIFFERENCE_MIN_Z, LOOK_ALIKE_RATIO};
use crate::align::fine::Line;
use crate::align::pipeline::Run;
use crate::dsp::gcc::GccPhat;
use crate::dsp::spectral::{shape_correlation, SongShapeSpectra, SpectralShape};
use crate::dsp::xcorr::top_peaks;
use crate::error::Result;

/// The song's best placements of a play's first seconds kept as possible
/// copies (the play's own place among them).
const SHAPE_PEAKS: usize = 6;
/// Placements at least this many shape frames apart (the shape is
/// smoothed over ±10).
const SHAPE_PEAK_SEPARATION: usize = 20;

/// Moves each play (today's answer's excepted) onto the line of a copy of
/// its section elsewhere in the song where the recording prefers it (see
/// the module docs). Returns whether any play moved.
pub(super) fn plays_on_copies(run: &Run, shapes: &Shapes, plays: &mut [Play]) -> Result<bool> {
    let win = (COPY_S * shapes.frame_rate).round() as usize;
    if plays.iter().all(|p| p.on_main) || shapes.song.frames < win + 8 {
        return Ok(false);
    }
    let spectra = SongShapeSpectra::new(shapes.song, win + 2);
    let mut gcc: Option<GccPhat> = None;
    let mut moved = false;
    for i in 0..plays.len() {
        if plays[i].on_main || cut_neighbours(plays, i).next().is_none() {
            continue;
        }
        let from = song_start(&plays[i]);
        let gcc = gcc.get_or_insert_with(|| copy_correlator(run));
        let copies: Vec<f64> = shape_copies(shapes, &spectra, from, win)
            .into_iter()
            .filter_map(|spot| song_copy_near(run, gcc, from, spot))
            .filter(|copy| (copy - from).abs() >= SAME_SPOT_S)
            .collect();
        if let Some((line, z)) = line_at_copies(run, plays, i, &distinct(copies))? {
            (plays[i].line, plays[i].z) = (line, z);
            moved = true;
        }
        run.release_recording();
    }
    Ok(moved)
}

/// The song times whose spectral shape best matches the song's `win`
/// frames from song time `from` (itself excepted), best first.
fn shape_copies(shapes: &Shapes, spectra: &SongShapeSpectra, from: f64, win: usize) -> Vec<f64> {
    let song = shapes.song;
    let nb = song.n_bands;
    let a = (from * shapes.frame_rate).round();
    if a < 0.0 || a as usize + win > song.frames {
        return Vec::new();
    }
    let a = a as usize;
    let window = SpectralShape {
        frames: win,
        n_bands: nb,
        values: song.values[a * nb..(a + win) * nb].to_vec(),
    };
    let Some(sc) = shape_correlation(&window, spectra, 1.0) else {
        return Vec::new();
    };
    let lo = (-sc.first_start).max(0) as usize;
    let hi = (lo + song.frames).saturating_sub(win).min(sc.values.len());
    if hi <= lo + 2 {
        return Vec::new();
    }
    top_peaks(&sc.values[lo..hi], SHAPE_PEAKS, SHAPE_PEAK_SEPARATION)
        .into_iter()
        .map(|(k, _)| k as f64 / shapes.frame_rate)
        .filter(|s| (s - from).abs() >= SAME_SPOT_S)
        .collect()
}

/// The first line (and its coherence over the play's first
/// [`MEASURED_S`]) that starts play `i` at one of the song times `copies`
/// and that the recording prefers to the play's own line there, or that
/// explains the play as well and the play it meets at a cut too.
fn line_at_copies(
    run: &Run,
    plays: &[Play],
    i: usize,
    copies: &[f64],
) -> Result<Option<(Line, f64)>> {
    let play = &plays[i];
    let (t_a, t_b) = (play.start_s, play.end_s.min(play.start_s + MEASURED_S));
    if copies.is_empty() {
        return Ok(None);
    }
    let Some(own) = measure_piece(run, &play.line, t_a, t_b)? else {
        return Ok(None);
    };
    for &copy_at in copies {
        let moved = Line {
            sigma: play.line.sigma + copy_at - song_start(play),
            ..play.line
        };
        let Some(other) = measure_piece(run, &moved, t_a, t_b)? else {
            continue;
        };
        let joins = explains_as_well(run, &own, &other)
            && explains_neighbour(run, plays, i, &other.absolute_line())?;
        if crate::align::debug_enabled() {
            eprintln!(
                "segments: copies: play {t_a:.2}-{t_b:.2} s from song {:.2} s z {:.2}; copy from {copy_at:.3} s z {:.2}: joins {joins}",
                song_start(play),
                own.fine.z,
                other.fine.z
            );
        }
        if joins {
            return Ok(Some((other.absolute_line(), other.fine.z)));
        }
    }
    Ok(None)
}

/// Whether `other`, measured on the same piece as `own`, explains it about
/// as well ([`LOOK_ALIKE_RATIO`]) and the difference signal there does not
/// rule it out.
fn explains_as_well(run: &Run, own: &Piece, other: &Piece) -> bool {
    let (t_a, t_b) = (own.start_s, own.start_s + own.dur_s);
    other.fine.z >= LOOK_ALIKE_RATIO * own.fine.z
        && !difference(run, &own.absolute_line(), &other.absolute_line(), t_a, t_b)
            .is_some_and(|ev| ev >= DIFFERENCE_MIN_Z)
}

/// Whether `line` explains a play on another line that play `i` meets at a
/// cut, about as well as that play's own line (as in `drop_look_alikes`).
fn explains_neighbour(run: &Run, plays: &[Play], i: usize, line: &Line) -> Result<bool> {
    for q in cut_neighbours(plays, i) {
        let (z_here, here) = line_on(run, line, q.start_s, q.end_s)?;
        let own_wins = difference(run, &q.line, &here, q.start_s, q.end_s)
            .is_some_and(|ev| ev >= DIFFERENCE_MIN_Z);
        if z_here >= LOOK_ALIKE_RATIO * q.z && !own_wins {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The plays on other lines than today's answer's that play `i` meets at a
/// cut (within [`CUT_GAP_S`]).
fn cut_neighbours(plays: &[Play], i: usize) -> impl Iterator<Item = &Play> {
    let p = &plays[i];
    let before = i.checked_sub(1).map(|k| &plays[k]);
    before.into_iter().chain(plays.get(i + 1)).filter(move |q| {
        let gap = (q.start_s - p.end_s).max(p.start_s - q.end_s);
        gap <= CUT_GAP_S && !q.on_main && !q.z.is_nan()
    })
}

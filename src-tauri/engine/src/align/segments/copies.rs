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
//! ([`LOOK_ALIKE_RATIO`]) and explains the play it meets at a cut too, the
//! difference signal over both not against it: both take the line, and
//! are one play. One play through a repeated phrase is likelier
//! than an edit to another copy of it. (A copy's line taking a play on the
//! difference signal alone, as the scan's look-alikes do, moved two right
//! plays of seven synthesised seeds onto wrong copies.)

use super::confirm::line_on;
use super::difference::difference;
use super::same_spot::{
    copy_correlator, distinct, first_copy_taken, song_copy_near, song_start, COPY_S, SAME_SPOT_S,
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

/// Moves each play (today's answer's excepted) and the play it meets at a
/// cut onto the line of a copy of its section elsewhere in the song that
/// explains both (see the module docs). Returns whether any play moved.
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
        if let Some(join) = join_at_copies(run, plays, i, &distinct(copies))? {
            let (play, z) = join.play;
            (plays[i].line, plays[i].z) = (play, z);
            let (k, line, z) = join.neighbour;
            (plays[k].line, plays[k].z) = (line, z);
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

/// Two plays that meet at a cut on one line: play `i` on it (its line
/// and coherence over its first
/// [`MEASURED_S`](super::same_spot::MEASURED_S)), and the neighbour's index,
/// line and coherence as fitted on its own span.
struct Join {
    play: (Line, f64),
    neighbour: (usize, Line, f64),
}

/// The first line that starts play `i` at one of the song times `copies`
/// and explains the play and a play it meets at a cut about as well as
/// their own lines, the difference signal over both not against it.
fn join_at_copies(run: &Run, plays: &[Play], i: usize, copies: &[f64]) -> Result<Option<Join>> {
    let play = &plays[i];
    first_copy_taken(run, play, copies, |copy_at, own, other, (t_a, t_b)| {
        let line = other.absolute_line();
        let neighbour = if other.fine.z >= LOOK_ALIKE_RATIO * own.fine.z {
            let evidence = difference(run, &own.absolute_line(), &line, t_a, t_b);
            neighbour_on(run, plays, i, &line, evidence.unwrap_or(0.0))?
        } else {
            None
        };
        if crate::align::debug_enabled() {
            eprintln!(
                "segments: copies: play {t_a:.2}-{t_b:.2} s from song {:.2} s z {:.2}; copy from {copy_at:.3} s z {:.2}: joins {}",
                song_start(play),
                own.fine.z,
                other.fine.z,
                neighbour.is_some()
            );
        }
        Ok(neighbour.map(|neighbour| Join {
            play: (line, other.fine.z),
            neighbour,
        }))
    })
}

/// The play (its index, and `line` as fitted on its span with its
/// coherence there) that play `i` meets at a cut and that `line` explains
/// about as well as its own line ([`LOOK_ALIKE_RATIO`]), the difference
/// signal over both plays not preferring their two lines to it:
/// `own_evidence` on play `i`'s piece, the neighbour's over its span,
/// summed as the blocks of one span are. (Each piece alone can be wrong by
/// 17: plays 5050 ply004, a 23-s play split on two copies, measured -17.4
/// on its first piece, +17.5 on the second.)
fn neighbour_on(
    run: &Run,
    plays: &[Play],
    i: usize,
    line: &Line,
    own_evidence: f64,
) -> Result<Option<(usize, Line, f64)>> {
    for k in cut_neighbours(plays, i) {
        let q = &plays[k];
        let (z_here, here) = line_on(run, line, q.start_s, q.end_s)?;
        if z_here < LOOK_ALIKE_RATIO * q.z {
            continue;
        }
        let theirs = difference(run, &q.line, &here, q.start_s, q.end_s).unwrap_or(0.0);
        if (own_evidence + theirs) / std::f64::consts::SQRT_2 < DIFFERENCE_MIN_Z {
            return Ok(Some((k, here, z_here)));
        }
    }
    Ok(None)
}

/// The plays (indices) on other lines than today's answer's that play `i`
/// meets at a cut (within [`CUT_GAP_S`]).
fn cut_neighbours(plays: &[Play], i: usize) -> impl Iterator<Item = usize> + '_ {
    let p = &plays[i];
    [i.checked_sub(1), Some(i + 1)]
        .into_iter()
        .flatten()
        .filter(move |&k| {
            plays.get(k).is_some_and(|q| {
                let gap = (q.start_s - p.end_s).max(p.start_s - q.end_s);
                gap <= CUT_GAP_S && !q.on_main && !q.z.is_nan()
            })
        })
}

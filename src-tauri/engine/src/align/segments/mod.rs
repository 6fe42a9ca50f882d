//! `segments`: every play of the song in the recording.
//!
//! A class is often filmed in one take while the song is played several
//! times (stopped, talked over, started again from the same spot) or as a
//! dance edit that jumps from one part to another. Today's answer is one
//! line; this finds the plays around it:
//!
//! 1. the recording in short hops against the whole song (spectral shape,
//!    [`scan`]), each hop's best intercepts at the recording's shared rate;
//! 2. hops grouped into runs on one line (best path over the candidate
//!    lines and "no song");
//! 3. each run's line measured by the fine stage on its own span, refused
//!    below the single-play refusal's evidence (its coherence at 6 beside a
//!    sure answer, 7 beside an unsure one, rather than 9) unless its
//!    coherence summed over the span shows it (the integration: plays that
//!    no window shows under reverberation and noise; a lower bar for a run
//!    the scan holds on its line for long; such a play on today's line is
//!    placed by today's line where the waveform placed that), and dropped
//!    when the neighbouring play's line explains its span as well
//!    (look-alike bars);
//! 4. the stretches no play covers aligned on their own ([`stretches`]; a
//!    long one refused whole, again in halves), and in turn those a play
//!    found there leaves beside it;
//! 5. a play whose song start no other play shares weighed again as a
//!    restart from another play's spot, where the song repeats there
//!    ([`same_spot`]); a play that meets another at a cut weighed on the
//!    song's own copies of its section, one line through both taken where
//!    it explains both ([`copies`]);
//! 6. edges: the change point of a per-frame likelihood ratio
//!    ([`boundary`]): at a hard cut between the two lines', next to silence
//!    or talk between the line's and "no song"; a play left under 8 s (a
//!    look-alike's piece inside another play) dropped; once the plays are
//!    settled, each start after a stop at the median of its splits;
//! 7. an unsure answer's own play, and the play of a stretch answered
//!    unsure, measured on each of that answer's candidate lines over the
//!    play's span ([`candidates`]): its tie-break heard all the recording
//!    or the stretch holds, so a look-alike may have won it;
//! 8. the segments' shared clock: the plays' own lines' where they agree
//!    on one that today's answer's rate is off ([`clock`]).
//!
//! One play (or nothing more found) gives one segment: today's answer.

mod boundary;
mod candidates;
mod clock;
mod confirm;
mod copies;
mod difference;
mod edges;
mod same_spot;
mod scan;
mod stretches;

use super::fine::Line;
use super::pipeline::Run;
use super::verdict::coherence_presence;
use super::verdict::{
    DIFFERENCE_MIN_Z, MIN_MATCH_Z, MIN_PLAY_Z_BESIDE_SURE, MIN_PLAY_Z_BESIDE_UNSURE,
    PLAY_INTEGRATED_MIN_Z, SPEED_CHANGE, SURE_CONFIDENCE,
};
use super::AlignResult;
use super::Verdict;
use crate::dsp::spectral::SpectralShape;
use crate::error::Result;
use candidates::main_on_best_candidate;
use confirm::{confirm_run, line_on};
use difference::difference;
use edges::{centre_starts, place_edges};
use scan::{rivals, scan_runs, Scanned, NEAR_MAIN_S, SAME_LINE_S};
use serde::{Deserialize, Serialize};
use stretches::{fill_gaps, verify_plays};

/// Aligns the recording's times `t_a..t_b` (s) on their own (the whole
/// pipeline, without this search for plays in the stretches it leaves), in
/// the stretch's time; `None` where the song is not found.
pub(super) type AlignStretch<'a> = dyn Fn(f64, f64) -> Result<Option<AlignResult>> + 'a;

/// One play of the song in the recording.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Segment {
    /// The play's span in the recording (s).
    pub dance_start_s: f64,
    pub dance_end_s: f64,
    /// `recording_time = bgm_time + offset_s` at the segment's middle.
    pub offset_s: f64,
    /// Recording seconds per song second (the recording's clock: shared).
    pub rate: f64,
    /// 0..1, as [`AlignResult::confidence`].
    pub confidence: f64,
    /// The play starts straight after the previous one (a cut, as in a
    /// dance edit), not after a stop.
    pub cut_before: bool,
}

/// The spectral shapes the pipeline computed.
pub(super) struct Shapes<'a> {
    pub recording: &'a SpectralShape,
    pub song: &'a SpectralShape,
    pub frame_rate: f64,
}

/// Shift of a run's line, either side, when the fine stage refuses it
/// where the scan put it (s): the spectral shape's smoothing half-width.
const SHAPE_SLACK_S: f64 = 0.1;
/// Highest confidence of an answer made of plays found in a refused
/// recording: just under [`SURE_CONFIDENCE`].
const UNSURE_CONFIDENCE_MAX: f64 = SURE_CONFIDENCE - 0.01;
/// Margin added either side of a run before the fine stage measures it (s).
const RUN_MARGIN_S: f64 = 1.0;
/// Largest deviation from the run's line the fine stage searches at the
/// ends of the run (samples): the rate is the recording's, shared.
const RUN_END_SHIFT: f64 = 8.0;
/// Rounds of the search of the stretches between plays: each searches the
/// stretches the plays found in the last leave beside them.
const FILL_ROUNDS: usize = 3;
/// Two plays whose heard spans are closer than this (s) meet at a cut.
const CUT_GAP_S: f64 = 2.0;
/// A play shorter than this (s) once its edges are placed is dropped: a
/// look-alike section won a few seconds inside another play (plays are 10 s
/// or more, and a quiet start costs a placed play a second or two at most;
/// on twelve bench sets the one segment under 10 s was such a piece, 1.5 s
/// long, splitting a true play in two; at 5 s, a 5.5-s piece of a repeated
/// bar split one on plays 7373 once the ratio read each band's phase).
const MIN_PLAY_S: f64 = 8.0;
/// A play is a look-alike of its neighbour when the neighbour's line, read
/// over the play's span, keeps this fraction of the play's own coherence.
const LOOK_ALIKE_RATIO: f64 = 0.6;
/// Look-alike lines measured beside a run's own: those whose spectral-shape
/// evidence over the run is at least this fraction of its own...
const RIVAL_RATIO: f32 = 0.6;
/// ...at most this many lines in all.
const RIVALS: usize = 4;

/// A run confirmed by the fine stage.
#[derive(Debug, Clone)]
struct Play {
    /// The line, in recording time.
    line: Line,
    start_s: f64,
    end_s: f64,
    z: f64,
    cut_before: bool,
    /// On today's answer's line (its line as fitted on the play's span).
    on_main: bool,
    /// A look-alike line measured beside it on its run that the difference
    /// signal does not clearly rule out (see [`stretches`]).
    in_doubt: bool,
    /// Shown only by its coherence summed over its span (no window showed
    /// it), with how clearly that sum singles out its lag
    /// ([`crate::align::integrate::IntegratedLine::lag_margin`]): its line
    /// is good to the integration's few milliseconds at best.
    summed_lag_margin: Option<f64>,
}

/// The plays of the song in the recording (see the module docs) into
/// `result.segments`, given today's answer `result` (accepted, so at least
/// one); an unsure answer whose own play another of its candidate lines
/// explains better there moves to that line.
pub(super) fn find_segments(
    run: &Run,
    shapes: &Shapes,
    result: &mut AlignResult,
    today: TodaysLine,
    align_stretch: &AlignStretch<'_>,
) -> Result<()> {
    let search = Search::Accepted(align_stretch);
    result.segments = match other_plays(run, shapes, result, today, search)? {
        None => vec![main_segment(result)],
        Some(found) => {
            if let Some(main) = &found.moved_main {
                move_answer(result, main);
            }
            found.segments
        }
    };
    Ok(())
}

/// How today's answer's line was placed, and so what a play on it may
/// borrow from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum TodaysLine {
    /// On the recording's waveform, its windows showing it: good to the
    /// millisecond where its play is.
    Waveform,
    /// On the recording's waveform by its coherence summed over the whole
    /// overlap (the second pass), singling out its lag by `lag_margin`
    /// ([`crate::align::integrate::IntegratedLine::lag_margin`]).
    Summed { lag_margin: f64 },
    /// By the song's spectral shape alone: tens of milliseconds off at best
    /// (its rate too can be a few parts per thousand off).
    ShapeAlone,
}

/// Where [`other_plays`] looks beyond the scan's runs, with the aligner of a
/// stretch of the recording on its own.
#[derive(Clone, Copy)]
enum Search<'s, 'a> {
    /// An accepted answer: the scan's plays on other lines are verified by
    /// aligning their stretch, the stretches between plays are searched,
    /// and an unsure answer's own play is weighed among its candidates.
    Accepted(&'s AlignStretch<'a>),
    /// A refused recording (`result` its best guess): the stretches beside
    /// the plays the scan shows are searched; the scan may show one play
    /// only, the other's evidence too faint in its hops (plays-real 3434
    /// rpl001, 4141 rpl002).
    Refused(&'s AlignStretch<'a>),
}

impl<'s, 'a> Search<'s, 'a> {
    fn aligner(self) -> &'s AlignStretch<'a> {
        match self {
            Search::Accepted(align) | Search::Refused(align) => align,
        }
    }

    fn accepted(self) -> bool {
        matches!(self, Search::Accepted(_))
    }
}

/// The plays [`other_plays`] found.
struct Found {
    segments: Vec<Segment>,
    /// Today's answer's own play, when it moved to another of the answer's
    /// candidate lines ([`main_on_best_candidate`]).
    moved_main: Option<Segment>,
}

/// The plays of a recording whose single line was refused (`result` is
/// the refused best guess): a recording with two plays of the song on
/// different lines (the same spot played twice, one straight after the
/// other) splits the single line's evidence between them, so that neither
/// half reaches the refusal's threshold over the whole recording. The
/// stretches beside the plays the scan shows are searched as an accepted
/// answer's are. `None` unless at least two plays on different lines each
/// pass the single-play refusal's rules on their own span, or the rule a
/// play's integrated coherence is kept on (a wrong song gives none: it is
/// the same refusal, read on each play).
pub(super) fn plays_of_refused(
    run: &Run,
    shapes: &Shapes,
    result: &AlignResult,
    today: TodaysLine,
    align_stretch: &AlignStretch<'_>,
) -> Result<Option<Vec<Segment>>> {
    // every play, once its edges are placed, as a play is confirmed: at the
    // single-play threshold, or kept on its integrated coherence (a play
    // folded onto the refused line keeps that line's evidence there)
    let least = coherence_presence(MIN_MATCH_Z.min(PLAY_INTEGRATED_MIN_Z));
    let plays = other_plays(run, shapes, result, today, Search::Refused(align_stretch))?;
    Ok(plays
        .map(|found| found.segments)
        .filter(|p| p.len() >= 2 && p.iter().all(|s| s.confidence >= least)))
}

/// The refused answer `result` replaced by the plays found in it
/// (`segments`, from [`plays_of_refused`]): the most coherent play is the
/// top-level answer, `unsure` (the whole recording did not pass as one play:
/// listen before exporting).
pub(super) fn accept_plays(result: &mut AlignResult, segments: Vec<Segment>) {
    let Some(best) = segments
        .iter()
        .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
    else {
        return;
    };
    place_answer(result, best);
    if let Some(first) = result.candidates.first_mut() {
        first.offset_s = best.offset_s;
    }
    // unsure, so below the sure threshold whatever the best play scored
    // alone (the UI and the job store read the confidence too)
    result.confidence = best.confidence.min(UNSURE_CONFIDENCE_MAX);
    result.verdict = Verdict::Unsure;
    result.segments = segments;
}

/// The answer's line and span set to `play`'s.
fn place_answer(result: &mut AlignResult, play: &Segment) {
    let t_mid = 0.5 * (play.dance_start_s + play.dance_end_s);
    let song_at = |t: f64| t_mid - play.offset_s + (t - t_mid) / play.rate;
    result.offset_s = play.offset_s;
    result.rate = play.rate;
    result.overlap.dance_start_s = play.dance_start_s;
    result.overlap.dance_end_s = play.dance_end_s;
    result.overlap.bgm_start_s = song_at(play.dance_start_s).max(0.0);
    result.overlap.bgm_end_s = song_at(play.dance_end_s).max(0.0);
}

/// An unsure answer moved to its own play `main` on another of its
/// candidate lines: that candidate first (its score kept in first place),
/// the line left behind in its place.
fn move_answer(result: &mut AlignResult, main: &Segment) {
    let left = result.offset_s;
    let nearest = result
        .candidates
        .iter()
        .enumerate()
        .skip(1)
        .min_by(|(_, a), (_, b)| {
            (a.offset_s - main.offset_s)
                .abs()
                .total_cmp(&(b.offset_s - main.offset_s).abs())
        })
        .map(|(k, _)| k);
    if let Some(k) = nearest {
        result.candidates[k].offset_s = left;
    }
    if let Some(first) = result.candidates.first_mut() {
        first.offset_s = main.offset_s;
    }
    place_answer(result, main);
}

/// The plays of the song in the recording when there is more than today's
/// answer's line, `None` when the answer's one line is all; `search` says
/// where to look beyond the scan's runs.
fn other_plays(
    run: &Run,
    shapes: &Shapes,
    result: &AlignResult,
    today: TodaysLine,
    search: Search<'_, '_>,
) -> Result<Option<Found>> {
    // An unsure answer at a speed change may be the plays confusing the
    // single-line search (each play pulls the line its own way): the plays
    // are looked for at the original speed then.
    let confused = result.verdict == Verdict::Unsure && (result.rate - 1.0).abs() > SPEED_CHANGE;
    if result.pitch_kept && !confused {
        return Ok(None);
    }
    // Cheap test first at the answer's own rate: one continuous play there
    // (every run on its line) is the answer. Only an unsure answer at a
    // speed change is looked at again at the original speed.
    let mut scanned = scan_runs(run, shapes, result, result.rate)?;
    if confused && !scanned.only_main() {
        scanned = scan_runs(run, shapes, result, 1.0)?;
    }
    if scanned.only_main() && !search.accepted() {
        return Ok(None);
    }
    let rate = scanned.rate;
    let least_z = least_play_z(result, search.accepted());
    let t_main = 0.5 * (result.overlap.dance_start_s + result.overlap.dance_end_s);
    let main_line = Line {
        t_ref: t_main,
        sigma: t_main - result.offset_s,
        rate,
    };
    let mut plays = if scanned.only_main() {
        Vec::new()
    } else {
        scanned_plays(run, scanned, (&main_line, today), least_z)?
    };
    if search.accepted() {
        if plays.is_empty() {
            plays.push(main_play(result, &main_line));
        }
        plays = verify_plays(run, search.aligner(), plays, &main_line, least_z)?;
    }
    let mut plays = settle_plays(run, plays)?;
    if search.accepted() || !plays.is_empty() {
        plays = search_stretches(run, search.aligner(), plays, least_z)?;
    }
    if beside_main(&plays) && same_spot::restarts_at_same_spot(run, &mut plays)? {
        plays = settle_plays(run, plays)?;
    }
    if beside_main(&plays) && copies::plays_on_copies(run, shapes, &mut plays)? {
        plays = settle_plays(run, plays)?;
    }
    if !beside_main(&plays) {
        return Ok(None);
    }
    // the whole recording's tie-break between an unsure answer's candidates
    // heard the other plays too; on its own play's span only that play speaks
    let on_candidate = if result.verdict == Verdict::Unsure && search.accepted() {
        main_on_best_candidate(run, result, &mut plays)?
    } else {
        None
    };
    if on_candidate.is_some() {
        place_edges(run, &mut plays);
    }
    centre_starts(run, &mut plays);
    // today's play moved to another spot of the song moves today's answer
    let moved = on_candidate.or_else(|| left_todays_line(&plays, &main_line));
    // the plays' own lines measure the recording's clock where today's
    // answer's rate is off it
    let rate = clock::shared_rate(&plays, rate);
    Ok(Some(Found {
        segments: plays.iter().map(|p| segment_of(p, rate)).collect(),
        moved_main: moved.map(|i| segment_of(&plays[i], rate)),
    }))
}

/// `plays` (settled) with the plays found in the stretches between their
/// placed edges, and in turn in those a play found there leaves either side
/// (a stretch's answer is one play), settled again.
fn search_stretches(
    run: &Run,
    align_stretch: &AlignStretch<'_>,
    mut plays: Vec<Play>,
    least_z: f64,
) -> Result<Vec<Play>> {
    let mut searched = Vec::new();
    for _ in 0..FILL_ROUNDS {
        let found = fill_gaps(run, align_stretch, &plays, least_z, &mut searched)?;
        if found.is_empty() {
            break;
        }
        plays.extend(found);
        plays = settle_plays(run, plays)?;
    }
    Ok(plays)
}

/// The coherence a play needs on its own span: the single-play refusal's
/// for a refused recording's plays, [`MIN_PLAY_Z_BESIDE_SURE`] beside a
/// sure answer and [`MIN_PLAY_Z_BESIDE_UNSURE`] beside an unsure one
/// (`accepted`).
fn least_play_z(result: &AlignResult, accepted: bool) -> f64 {
    match (accepted, result.verdict) {
        (true, Verdict::Sure) => MIN_PLAY_Z_BESIDE_SURE,
        (true, _) => MIN_PLAY_Z_BESIDE_UNSURE,
        _ => MIN_MATCH_Z,
    }
}

/// `plays` joined where they are one, look-alikes dropped, edges placed
/// (none when there is only today's answer).
fn settle_plays(run: &Run, mut plays: Vec<Play>) -> Result<Vec<Play>> {
    if !beside_main(&plays) {
        return Ok(plays);
    }
    // today's answer, when it is one play among others, as measured on its span
    for p in plays.iter_mut().filter(|p| p.z.is_nan()) {
        (p.z, p.line) = line_on(run, &p.line, p.start_s, p.end_s)?;
    }
    let plays = merge_same_lines(plays);
    let mut plays = drop_look_alikes(run, plays)?;
    if beside_main(&plays) {
        place_edges(run, &mut plays);
    }
    Ok(drop_short_pieces(run, plays))
}

/// `plays` (edges placed) without the pieces under [`MIN_PLAY_S`] that a
/// look-alike section won inside another play (today's answer is kept
/// whatever its length): the pieces of that play either side of one are
/// one play again, its edges placed anew.
fn drop_short_pieces(run: &Run, mut plays: Vec<Play>) -> Vec<Play> {
    let short = |p: &Play| !p.on_main && p.end_s - p.start_s < MIN_PLAY_S;
    if !plays.iter().any(short) {
        return plays;
    }
    plays.retain(|p| !short(p));
    let mut plays = merge_same_lines(plays);
    if beside_main(&plays) {
        place_edges(run, &mut plays);
    }
    plays
}

/// Whether `plays` hold more than today's answer: two or more, one of them
/// on another line.
fn beside_main(plays: &[Play]) -> bool {
    plays.len() > 1 && !plays.iter().all(|p| p.on_main)
}

/// The plays the scan's runs show (each confirmed by the fine stage on
/// its span), those today's line explains on it, consecutive ones on one
/// line joined.
fn scanned_plays(
    run: &Run,
    scanned: Scanned,
    (main_line, today): (&Line, TodaysLine),
    least_z: f64,
) -> Result<Vec<Play>> {
    let Scanned {
        hops,
        lines,
        runs,
        rate,
        ..
    } = scanned;
    let mut plays = Vec::new();
    for r in &runs {
        let candidates = rivals(&hops, &lines, r, RIVAL_RATIO, RIVALS);
        plays.extend(confirm_run(run, r, &candidates, rate, least_z)?);
    }
    let plays = explained_by_main(run, plays, main_line, today)?;
    Ok(merge_same_lines(plays))
}

/// The most coherent of today's plays ([`Play::on_main`]) that a later
/// stage moved off today's line (`main_line`), if any.
fn left_todays_line(plays: &[Play], main_line: &Line) -> Option<usize> {
    (0..plays.len())
        .filter(|&i| plays[i].on_main && !near_line(&plays[i].line, main_line))
        .max_by(|&i, &k| plays[i].z.total_cmp(&plays[k].z))
}

/// Today's answer as a play (its coherence measured when it is needed).
fn main_play(result: &AlignResult, main_line: &Line) -> Play {
    Play {
        line: *main_line,
        start_s: result.overlap.dance_start_s,
        end_s: result.overlap.dance_end_s,
        z: f64::NAN,
        cut_before: false,
        on_main: true,
        in_doubt: false,
        summed_lag_margin: None,
    }
}

/// Today's answer as its only segment (a stretch aligned on its own).
pub(super) fn single_segment(result: &AlignResult) -> Vec<Segment> {
    vec![main_segment(result)]
}

/// Today's answer as a segment.
fn main_segment(result: &AlignResult) -> Segment {
    Segment {
        dance_start_s: result.overlap.dance_start_s,
        dance_end_s: result.overlap.dance_end_s,
        offset_s: result.offset_s,
        rate: result.rate,
        confidence: result.confidence,
        cut_before: false,
    }
}

/// Recording time of song time 0 on the line through `offset_s` at `t` (s).
fn intercept_of(offset_s: f64, rate: f64, t: f64) -> f64 {
    t - rate * (t - offset_s)
}

fn segment_of(p: &Play, rate: f64) -> Segment {
    let t_mid = 0.5 * (p.start_s + p.end_s);
    Segment {
        dance_start_s: p.start_s,
        dance_end_s: p.end_s,
        offset_s: t_mid - p.line.song_at(t_mid),
        rate,
        confidence: coherence_presence(p.z),
        cut_before: p.cut_before,
    }
}

/// Whether two lines place the song within [`SAME_LINE_S`] of each other
/// (at the first one's reference time).
fn same_line(a: &Line, b: &Line) -> bool {
    (a.song_at(a.t_ref) - b.song_at(a.t_ref)).abs() * a.rate <= SAME_LINE_S
}

/// Whether two lines place the song within [`NEAR_MAIN_S`] of each other.
fn near_line(a: &Line, b: &Line) -> bool {
    (a.song_at(a.t_ref) - b.song_at(a.t_ref)).abs() * a.rate <= NEAR_MAIN_S
}

/// A play on another line than today's answer whose span today's line
/// explains about as well (a look-alike section; over a short span many
/// lines reach the single-play threshold) is today's line there.
fn explained_by_main(
    run: &Run,
    plays: Vec<Play>,
    main_line: &Line,
    today: TodaysLine,
) -> Result<Vec<Play>> {
    let mut out = Vec::with_capacity(plays.len());
    for p in plays {
        if same_line(&p.line, main_line) {
            let borrow = borrows_todays_line(p.summed_lag_margin, today);
            let line = if borrow { *main_line } else { p.line };
            out.push(Play {
                line,
                on_main: true,
                ..p
            });
            continue;
        }
        let (z_main, main_here) = line_on(run, main_line, p.start_s, p.end_s)?;
        if super::debug_enabled() {
            eprintln!(
                "segments: play {:.2}-{:.2} s z {:.2}, today's line there z {z_main:.2}",
                p.start_s, p.end_s, p.z
            );
        }
        // ...unless the difference signal says the play's own line
        let own_wins = || {
            difference(run, &p.line, &main_here, p.start_s, p.end_s)
                .is_some_and(|ev| ev >= DIFFERENCE_MIN_Z)
        };
        if z_main >= LOOK_ALIKE_RATIO * p.z && !own_wins() {
            // today's line as the fine stage fits it on the play's span:
            // the answer's line is fitted over the whole overlap, which may
            // hold other plays, and can be tens of milliseconds off here
            out.push(Play {
                line: main_here,
                z: z_main,
                on_main: true,
                ..p
            });
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// Whether a play on today's line takes today's line rather than its own:
/// only a play no window shows (`summed_lag_margin`), and only from a line
/// placed at least as surely. Fitted on the whole recording's waveform,
/// today's line places such a play better than its own sum does (plays-real
/// 4040 rpl002: 23 ms off on its own, its sum's lag margin 2.05 against
/// today's 2.70); a line the spectral shape alone placed does not (2468
/// rpl004: 23 ms off there, the play's sum z 58 on the truth), nor a
/// second pass's sum that singles its lag out less clearly than the play's
/// own (9753 rpl002: today's line 23.9 ms late, lag margin 4.18; the
/// play's own sum 5.57, on the truth).
fn borrows_todays_line(summed_lag_margin: Option<f64>, today: TodaysLine) -> bool {
    match (summed_lag_margin, today) {
        (None, _) | (Some(_), TodaysLine::ShapeAlone) => false,
        (Some(_), TodaysLine::Waveform) => true,
        (Some(own), TodaysLine::Summed { lag_margin }) => lag_margin >= own,
    }
}

/// Consecutive plays on one line are one play (the evidence dipped between
/// them); so are two that meet on lines within [`NEAR_MAIN_S`] of each
/// other, on the more coherent one's line: no restart nor edit is that
/// close, and a run whose scan line was ~0.15 s off the play's can be
/// confirmed there on a short span (plays 6262 ply002: a 7-s false segment
/// 148 ms off the next play's line).
fn merge_same_lines(mut plays: Vec<Play>) -> Vec<Play> {
    plays.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let mut merged: Vec<Play> = Vec::new();
    for p in plays {
        if let Some(last) = merged.last_mut() {
            let near = near_line(&last.line, &p.line) && p.start_s - last.end_s <= CUT_GAP_S;
            if near && !same_line(&last.line, &p.line) && p.z > last.z {
                last.line = p.line;
                last.on_main = p.on_main;
            }
            if same_line(&last.line, &p.line) || (last.on_main && p.on_main) || near {
                last.end_s = last.end_s.max(p.end_s);
                last.z = last.z.max(p.z);
                last.in_doubt |= p.in_doubt;
                continue;
            }
        }
        merged.push(p);
    }
    merged
}

/// Plays next to one another of which one's line explains the other's
/// span about as well (bars that repeat exactly) are one play: on the
/// line the difference signal over both spans prefers (or, where it does
/// not apply, the more coherent one over both).
fn drop_look_alikes(run: &Run, plays: Vec<Play>) -> Result<Vec<Play>> {
    let mut kept: Vec<Play> = Vec::new();
    for p in plays {
        let Some(last) = kept.last_mut() else {
            kept.push(p);
            continue;
        };
        if p.start_s - last.end_s > CUT_GAP_S {
            kept.push(p);
            continue;
        }
        let (last_on_p, last_here) = line_on(run, &last.line, p.start_s, p.end_s)?;
        let (p_on_last, p_here) = line_on(run, &p.line, last.start_s, last.end_s)?;
        if super::debug_enabled() {
            eprintln!(
                "segments: look-alike check {:.2}-{:.2} (z {:.2}) / {:.2}-{:.2} (z {:.2}): crossed z {last_on_p:.2} / {p_on_last:.2}",
                last.start_s, last.end_s, last.z, p.start_s, p.end_s, p.z
            );
        }
        // as in `explained_by_main`: a line explains the other play's span
        // unless the difference signal there says the play's own line
        let own_wins = |own: &Play, other_here: &Line| {
            difference(run, &own.line, other_here, own.start_s, own.end_s)
                .is_some_and(|ev| ev >= DIFFERENCE_MIN_Z)
        };
        let explains_p = last_on_p >= LOOK_ALIKE_RATIO * p.z && !own_wins(&p, &last_here);
        let explains_last = p_on_last >= LOOK_ALIKE_RATIO * last.z && !own_wins(last, &p_here);
        if !explains_p && !explains_last {
            kept.push(p);
            continue;
        }
        let (start, end) = (last.start_s.min(p.start_s), last.end_s.max(p.end_s));
        let keep_p = if explains_p && explains_last {
            match difference(run, &last.line, &p.line, start, end) {
                Some(ev) if ev.abs() >= DIFFERENCE_MIN_Z => ev < 0.0,
                _ => p.z + p_on_last > last.z + last_on_p,
            }
        } else {
            explains_last
        };
        if keep_p {
            *last = Play {
                z: p.z + p_on_last,
                ..p
            };
        } else {
            last.z += last_on_p;
        }
        last.start_s = start;
        last.end_s = end;
    }
    Ok(kept)
}

#[cfg(test)]
mod tests;

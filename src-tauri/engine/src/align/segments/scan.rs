//! The recording in short hops against the whole song (spectral shape:
//! onsets repeat in every bar, the shape tells sections apart):
//! each hop's best song positions, as the line's intercept (recording time
//! of song time 0 at the shared rate) and a z-score; then the hops grouped
//! into runs on one intercept (a Viterbi path over the candidate intercepts
//! and "no song").

use super::{intercept_of, Shapes};
use crate::align::pipeline::Run;
use crate::align::AlignResult;
use crate::cancel::CancelToken;
use crate::dsp::par::par_map;
use crate::dsp::spectral::{shape_correlation, ShapeCorrelation, SongShapeSpectra, SpectralShape};
use crate::dsp::xcorr::{parabolic_offset, top_peaks};
use crate::error::Result;

/// Length of a hop's recording window (s): long enough that its envelope
/// correlation stands out of the song's other positions, short enough for
/// ~10-s plays.
const HOP_WINDOW_S: f64 = 5.0;
/// Spacing of the hops (s).
const HOP_S: f64 = 1.0;
/// Song positions kept per hop...
const PEAKS_PER_HOP: usize = 12;
/// ...at least this many frames apart (the shape is smoothed over ±10).
const PEAK_SEPARATION: usize = 20;
/// Two intercepts closer than this (s) are one line (the shape is smoothed
/// over ±100 ms; the fine stage searches ±60 ms around its line).
pub(super) const SAME_LINE_S: f64 = 0.05;
/// Runs whose intercept is this close (s) to today's answer's are on its
/// line. A different play this close would be a restart after a stop
/// shorter than a quarter second, or an edit that jumps by less than a
/// sixteenth note at 120 bpm (edits jump by bars); the spectral shape,
/// smoothed over ±100 ms, does place one play's hops up to ~0.1 s either
/// side of its line (single-play recordings with echo or a second speaker:
/// runs 76-83 ms off the answer on public and real cases).
pub(super) const NEAR_MAIN_S: f64 = 0.25;
/// A hop's peak z from which it proposes a line.
const PROPOSE_Z: f32 = 3.5;
/// Most candidate lines in the path search.
const MAX_LINES: usize = 48;
/// Evidence of a hop's value on a line is clipped here (a few loud hops do
/// not carry a run).
const CLIP_Z: f32 = 8.0;
/// The "no song" state's evidence per hop: above what a line gets from
/// noise (the best of the candidate lines at a hop of noise scores ~2-3).
const OFF_SCORE: f32 = 3.0;
/// Cost of changing state (line to line, line to none).
const SWITCH_COST: f32 = 6.0;

/// One hop: its recording window and best song positions.
pub(super) struct Hop {
    /// Window start and end in the recording (s).
    pub start_s: f64,
    pub end_s: f64,
    /// `(intercept (s), z)`, best first.
    pub peaks: Vec<(f64, f32)>,
}

impl Hop {
    /// The hop's evidence for the line with intercept `c` (0 when none of
    /// its peaks is on it).
    fn score(&self, c: f64) -> f32 {
        self.peaks
            .iter()
            .filter(|p| (p.0 - c).abs() <= SAME_LINE_S)
            .map(|p| p.1.min(CLIP_Z))
            .fold(0.0, f32::max)
    }
}

/// A run of hops on one line.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HopRun {
    /// Intercept: recording time of song time 0 (s).
    pub intercept_s: f64,
    /// Recording span of its hops' windows (s).
    pub start_s: f64,
    pub end_s: f64,
    /// Summed clipped evidence of its hops.
    pub evidence: f32,
    /// Its hops (indices into the scan).
    pub hops: std::ops::Range<usize>,
}

/// Every hop of the recording's spectral shape against the song's
/// (`frame_rate` frames per second), read at the shared `rate`.
pub(super) fn scan_hops(
    recording: &SpectralShape,
    song: &SpectralShape,
    frame_rate: f64,
    rate: f64,
    threads: usize,
    cancel: &CancelToken,
) -> Result<Vec<Hop>> {
    let win = (HOP_WINDOW_S * frame_rate).round() as usize;
    let hop = ((HOP_S * frame_rate).round() as usize).max(1);
    let nb = recording.n_bands;
    if nb == 0 || recording.frames < win || song.frames < win + 8 {
        return Ok(Vec::new());
    }
    let starts: Vec<usize> = (0..=(recording.frames - win) / hop)
        .map(|i| i * hop)
        .collect();
    let song_spectra = SongShapeSpectra::new(song, (win as f64 / rate).ceil() as usize + 2);
    let hops = par_map(starts.len(), threads, |i| -> Result<Hop> {
        cancel.check()?;
        let a = starts[i];
        let window = SpectralShape {
            frames: win,
            n_bands: nb,
            values: recording.values[a * nb..(a + win) * nb].to_vec(),
        };
        let peaks = shape_correlation(&window, &song_spectra, rate)
            .map(|sc| hop_peaks(&sc, a, frame_rate, rate, song.frames))
            .unwrap_or_default();
        Ok(Hop {
            start_s: a as f64 / frame_rate,
            end_s: (a + win) as f64 / frame_rate,
            peaks,
        })
    });
    hops.into_iter().collect()
}

/// The best song positions of the window at frame `a` (its correlation
/// `sc` over the whole song), as intercepts and z-scores against the
/// window's other positions; only positions where the whole window lies
/// inside the song.
fn hop_peaks(
    sc: &ShapeCorrelation,
    a: usize,
    frame_rate: f64,
    rate: f64,
    song_frames: usize,
) -> Vec<(f64, f32)> {
    let needle = (-sc.first_start) as usize + 1;
    let lo = (-sc.first_start) as usize;
    let hi = (lo + song_frames).saturating_sub(needle);
    if hi <= lo + 2 {
        return Vec::new();
    }
    let values = &sc.values[lo..hi];
    top_peaks(values, PEAKS_PER_HOP, PEAK_SEPARATION)
        .into_iter()
        .map(|(i, v)| {
            let frac = if i > 0 && i + 1 < values.len() {
                parabolic_offset(values[i - 1], values[i], values[i + 1])
            } else {
                0.0
            };
            let song_s = (i as f64 + frac) / frame_rate;
            let intercept = a as f64 / frame_rate - rate * song_s;
            (intercept, ((f64::from(v) - sc.centre) / sc.spread) as f32)
        })
        .collect()
}

/// Candidate intercepts: the hops' strong peaks clustered, most supported
/// first, and `always` (today's answer's line) among them.
fn candidate_lines(hops: &[Hop], always: f64) -> Vec<f64> {
    let mut strong: Vec<(f64, f32)> = hops
        .iter()
        .flat_map(|h| h.peaks.iter().copied())
        .filter(|p| p.1 >= PROPOSE_Z)
        .collect();
    strong.sort_by(|a, b| b.1.total_cmp(&a.1));
    // (weighted sum of intercepts, support, hops); the seed is a member
    // only until a hop's peak joins it
    let mut clusters: Vec<(f64, f32, usize)> = vec![(always, 0.0, 0)];
    for (c, z) in strong {
        let centre = |k: &(f64, f32, usize)| if k.2 == 0 { k.0 } else { k.0 / f64::from(k.1) };
        match clusters
            .iter_mut()
            .find(|k| (centre(k) - c).abs() <= SAME_LINE_S)
        {
            Some(k) if k.2 == 0 => *k = (c * f64::from(z), z, 1),
            Some(k) => {
                k.0 += c * f64::from(z);
                k.1 += z;
                k.2 += 1;
            }
            None => clusters.push((c * f64::from(z), z, 1)),
        }
    }
    let seed = clusters[0];
    clusters.retain(|k| k.2 >= 2);
    clusters.sort_by(|a, b| b.1.total_cmp(&a.1));
    clusters.truncate(MAX_LINES);
    let mut lines: Vec<f64> = clusters.iter().map(|k| k.0 / f64::from(k.1)).collect();
    if seed.2 < 2 && lines.iter().all(|c| (c - always).abs() > SAME_LINE_S) {
        lines.push(always);
    }
    lines
}

/// The candidate lines (intercepts) and the runs of hops on them.
pub(super) struct Grouping {
    pub lines: Vec<f64>,
    pub runs: Vec<HopRun>,
}

/// The lines whose evidence over `run`'s hops is at least `ratio` of the
/// run's own, best first, at most `count` (the run's own line first).
pub(super) fn rivals(
    hops: &[Hop],
    lines: &[f64],
    run: &HopRun,
    ratio: f32,
    count: usize,
) -> Vec<f64> {
    let mut scored: Vec<(f64, f32)> = lines
        .iter()
        .map(|&c| {
            (
                c,
                hops[run.hops.clone()]
                    .iter()
                    .map(|h| h.score(c))
                    .sum::<f32>(),
            )
        })
        .filter(|&(c, e)| e >= ratio * run.evidence && (c - run.intercept_s).abs() > SAME_LINE_S)
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    std::iter::once(run.intercept_s)
        .chain(scored.into_iter().map(|(c, _)| c))
        .take(count)
        .collect()
}

/// The hops grouped into runs on one line: the best path over the states
/// "no song" and each candidate line, [`SWITCH_COST`] per change.
pub(super) fn group_runs(hops: &[Hop], main_intercept: f64) -> Grouping {
    if hops.is_empty() {
        return Grouping {
            lines: Vec::new(),
            runs: Vec::new(),
        };
    }
    let lines = candidate_lines(hops, main_intercept);
    let n_states = lines.len() + 1;
    let emission = |h: &Hop, k: usize| {
        if k == 0 {
            OFF_SCORE
        } else {
            h.score(lines[k - 1])
        }
    };
    let mut score: Vec<f32> = (0..n_states).map(|k| emission(&hops[0], k)).collect();
    let mut back: Vec<Vec<u16>> = Vec::with_capacity(hops.len());
    back.push((0..n_states as u16).collect());
    for h in &hops[1..] {
        let (best_k, best_v) = argmax(&score);
        let mut from = vec![0u16; n_states];
        let mut next = vec![0f32; n_states];
        for k in 0..n_states {
            let (src, v) = if score[k] >= best_v - SWITCH_COST {
                (k, score[k])
            } else {
                (best_k, best_v - SWITCH_COST)
            };
            from[k] = src as u16;
            next[k] = v + emission(h, k);
        }
        score = next;
        back.push(from);
    }
    let mut state = argmax(&score).0;
    let mut path = vec![0usize; hops.len()];
    for i in (0..hops.len()).rev() {
        path[i] = state;
        state = back[i][state] as usize;
    }
    let runs = runs_of_path(hops, &path, &lines);
    Grouping { lines, runs }
}

/// The index and value of the largest of `v` (ties: the first).
fn argmax(v: &[f32]) -> (usize, f32) {
    v.iter().enumerate().fold(
        (0, f32::NEG_INFINITY),
        |m, (k, &x)| if x > m.1 { (k, x) } else { m },
    )
}

/// Consecutive hops on the same line, as runs.
fn runs_of_path(hops: &[Hop], path: &[usize], lines: &[f64]) -> Vec<HopRun> {
    let mut runs: Vec<HopRun> = Vec::new();
    let mut i = 0;
    while i < path.len() {
        let k = path[i];
        let mut j = i;
        while j + 1 < path.len() && path[j + 1] == k {
            j += 1;
        }
        if k > 0 {
            let c = lines[k - 1];
            runs.push(HopRun {
                intercept_s: c,
                start_s: hops[i].start_s,
                end_s: hops[j].end_s,
                evidence: hops[i..=j].iter().map(|h| h.score(c)).sum(),
                hops: i..j + 1,
            });
        }
        i = j + 1;
    }
    runs
}

/// `runs` with those within [`NEAR_MAIN_S`] of `main` moved onto it, and
/// consecutive runs on one line joined.
pub(super) fn fold_near_main(hops: &[Hop], runs: Vec<HopRun>, main: f64) -> Vec<HopRun> {
    let mut out: Vec<HopRun> = Vec::with_capacity(runs.len());
    for mut r in runs {
        if (r.intercept_s - main).abs() <= NEAR_MAIN_S {
            r.intercept_s = main;
        }
        match out.last_mut() {
            Some(last) if last.intercept_s == r.intercept_s && last.hops.end == r.hops.start => {
                last.end_s = r.end_s;
                last.hops.end = r.hops.end;
            }
            _ => out.push(r),
        }
    }
    for r in &mut out {
        r.evidence = hops[r.hops.clone()]
            .iter()
            .map(|h| h.score(r.intercept_s))
            .sum();
    }
    out
}

/// The scan at one rate: its hops, candidate lines and runs.
pub(super) struct Scanned {
    pub hops: Vec<Hop>,
    pub lines: Vec<f64>,
    pub runs: Vec<HopRun>,
    pub rate: f64,
    pub main_intercept: f64,
}

impl Scanned {
    /// Every run on today's answer's line: one continuous play.
    pub fn only_main(&self) -> bool {
        self.runs
            .iter()
            .all(|r| (r.intercept_s - self.main_intercept).abs() <= SAME_LINE_S)
    }
}

/// The recording's hops at `rate` grouped into runs, those next to today's
/// answer's line folded onto it.
pub(super) fn scan_runs(
    run: &Run,
    shapes: &Shapes,
    result: &AlignResult,
    rate: f64,
) -> Result<Scanned> {
    let t_mid = 0.5 * (result.overlap.dance_start_s + result.overlap.dance_end_s);
    let main_intercept = intercept_of(result.offset_s, rate, t_mid);
    let t_scan = std::time::Instant::now();
    let hops = scan_hops(
        shapes.recording,
        shapes.song,
        shapes.frame_rate,
        rate,
        run.threads,
        run.cancel,
    )?;
    if std::env::var_os("BEATSYNC_SEGMENTS_HOPS").is_some() {
        for h in &hops {
            let p: Vec<String> = h
                .peaks
                .iter()
                .map(|p| format!("{:.3}:{:.1}", p.0, p.1))
                .collect();
            eprintln!("hop {:.1}: {}", h.start_s, p.join(" "));
        }
    }
    let Grouping { lines, runs } = group_runs(&hops, main_intercept);
    let runs = fold_near_main(&hops, runs, main_intercept);
    if crate::align::debug_enabled() {
        eprintln!(
            "segments: scan at rate {rate:.6}: {:.0} ms, {} hops",
            t_scan.elapsed().as_secs_f64() * 1e3,
            hops.len()
        );
        for r in &runs {
            eprintln!(
                "segments: run {:.2}-{:.2} s intercept {:.3} evidence {:.1}",
                r.start_s, r.end_s, r.intercept_s, r.evidence
            );
        }
    }
    Ok(Scanned {
        hops,
        lines,
        runs,
        rate,
        main_intercept,
    })
}

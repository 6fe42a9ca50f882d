//! `coarse`: candidate lines `song_time = sigma + (dance_time - t_ref) / rate`
//! from onset envelopes.
//!
//! The recording is cut into short windows; each is re-timed at a few trial
//! rates and correlated against the whole song envelope (FFT). Every window's
//! best peaks vote, for every fine rate, for the song position at `t_ref`
//! (a Hough transform over (rate, sigma)). A line that many windows agree on
//! wins even when each window alone is ambiguous (repeated bars) or buried in
//! speech. The best lines are then re-scored directly against all windows.

use crate::cancel::CancelToken;
use crate::dsp::par::{par_map, par_map_with_progress};
use crate::dsp::xcorr::{parabolic_offset, top_peaks, Correlator};
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct CoarseParams {
    /// Length of the recording windows (seconds).
    pub window_s: f64,
    pub max_rate_deviation: f64,
    /// Spacing of the trial rates of the window correlations.
    pub rate_step: f64,
    pub peaks_per_window: usize,
    /// Lines taken from the Hough vote to the direct re-scoring.
    pub lines_to_rescore: usize,
    /// Distinct candidates returned.
    pub max_candidates: usize,
}

impl Default for CoarseParams {
    fn default() -> Self {
        Self {
            window_s: 4.0,
            max_rate_deviation: 0.055,
            rate_step: 0.0125,
            peaks_per_window: 8,
            lines_to_rescore: 8,
            max_candidates: 24,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoarseCandidate {
    /// Song time (s) heard at recording time `t_ref_s`.
    pub sigma_s: f64,
    /// Dance seconds per song second.
    pub rate: f64,
    /// Sum over windows of normalised envelope correlation on the line.
    pub score: f64,
}

/// One window's votes as `(trial rate index, vote)`.
type WindowVotes = Vec<(usize, Vote)>;

struct WindowJob<'a> {
    recording_env: &'a [f32],
    win: usize,
    trial_rates: &'a [f64],
    frame_rate: f64,
    peaks_per_window: usize,
}

impl WindowJob<'_> {
    /// The votes of the window starting at frame `a`, as `(trial rate index, vote)`.
    fn votes(
        &self,
        correlator: &mut Correlator,
        a: usize,
        needle: &mut Vec<f32>,
        corr: &mut Vec<f32>,
    ) -> WindowVotes {
        let mut votes = Vec::new();
        for (k, &r) in self.trial_rates.iter().enumerate() {
            if !retimed_needle(self.recording_env, a as f64, self.win, r, needle) {
                continue;
            }
            if !correlator.correlate(needle, corr) {
                continue;
            }
            let len = needle.len();
            for (s, v) in top_peaks(corr, self.peaks_per_window, 5) {
                if v <= 0.0 {
                    continue;
                }
                let frac = if s > 0 && s + 1 < corr.len() {
                    parabolic_offset(corr[s - 1], corr[s], corr[s + 1])
                } else {
                    0.0
                };
                let half = (len - 1) as f64 / 2.0;
                votes.push((
                    k,
                    Vote {
                        t_centre_s: (a as f64 + half * r) / self.frame_rate,
                        s_centre_s: (s as f64 + frac + half) / self.frame_rate,
                        weight: v,
                    },
                ));
            }
        }
        votes
    }
}

struct Vote {
    t_centre_s: f64,
    s_centre_s: f64,
    weight: f32,
}

/// Candidate lines, best first. `recording_env` / `song_env` are whitened onset
/// envelopes at `frame_rate` frames per second; lines are expressed at
/// `t_ref_s = recording_frames / frame_rate / 2`.
pub fn coarse_candidates(
    recording_env: &[f32],
    song_env: &[f32],
    frame_rate: f64,
    params: &CoarseParams,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<Vec<CoarseCandidate>> {
    if recording_env.len() < 8 || song_env.len() < 8 {
        return Ok(Vec::new());
    }
    let windows = WindowGrid::new(recording_env.len(), frame_rate, params);
    let threads = crate::dsp::par::threads().min(windows.starts.len());
    let votes_by_rate = window_votes(
        recording_env,
        song_env,
        frame_rate,
        &windows,
        params,
        threads,
        cancel,
        progress,
    )?;
    progress(0.7);
    let hough = HoughGrid::new(
        &windows,
        recording_env.len(),
        song_env.len(),
        frame_rate,
        params,
    );
    let hough_lines = hough_vote(&hough, &windows, &votes_by_rate, params, threads, cancel)?;
    let lines = best_hough_lines(hough_lines, params.lines_to_rescore);
    progress(0.8);
    let scorer = LineScorer {
        recording_env,
        song_env,
        frame_rate,
        t_ref_s: windows.t_ref_s,
        starts: &windows.starts,
        win: windows.win,
        needles: NeedleCache::default(),
    };
    let scored = rescore_lines(&scorer, &lines, hough.fine_step, threads, cancel)?;
    progress(1.0);
    Ok(distinct_candidates(scored, params.max_candidates))
}

/// The recording's windows and the trial rates they are read at.
struct WindowGrid {
    /// Reference time of the lines (s): half the recording.
    t_ref_s: f64,
    /// Window length (frames).
    win: usize,
    /// First frame of each window.
    starts: Vec<usize>,
    /// Trial rates either side of 1.0.
    k_max: i64,
    trial_rates: Vec<f64>,
}

impl WindowGrid {
    fn new(n_d: usize, frame_rate: f64, params: &CoarseParams) -> Self {
        let t_ref_s = n_d as f64 / frame_rate / 2.0;
        let win = ((params.window_s * frame_rate).round() as usize).clamp(8, n_d);
        // Non-overlapping windows: this stage only has to propose rates and
        // rough lines (the spectral-shape scan finds the section), so half the
        // correlations of overlapping windows buy little.
        let starts = window_starts(n_d, win, win);
        let k_max = (params.max_rate_deviation / params.rate_step).ceil() as i64;
        let trial_rates: Vec<f64> = (-k_max..=k_max)
            .map(|k| 1.0 + k as f64 * params.rate_step)
            .collect();
        Self {
            t_ref_s,
            win,
            starts,
            k_max,
            trial_rates,
        }
    }
}

/// Per-window correlations at each trial rate -> votes, grouped by trial
/// rate. Windows are independent: spread over threads (one correlator
/// each), the votes gathered in window order (the order the Hough sums see
/// them in).
#[allow(clippy::too_many_arguments)]
fn window_votes(
    recording_env: &[f32],
    song_env: &[f32],
    frame_rate: f64,
    windows: &WindowGrid,
    params: &CoarseParams,
    threads: usize,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<Vec<Vec<Vote>>> {
    let max_needle = ((windows.win as f64) / windows.trial_rates[0]).ceil() as usize + 2;
    let correlator = Correlator::new(song_env, max_needle);
    let job = WindowJob {
        recording_env,
        win: windows.win,
        trial_rates: &windows.trial_rates,
        frame_rate,
        peaks_per_window: params.peaks_per_window,
    };
    let n_windows = windows.starts.len() as f64;
    let per_window = par_map_with_progress(
        windows.starts.len(),
        threads,
        || (correlator.clone(), Vec::new(), Vec::new()),
        |(correlator, needle, corr), i| -> Result<WindowVotes> {
            cancel.check()?;
            Ok(job.votes(correlator, windows.starts[i], needle, corr))
        },
        &mut |done| progress(0.7 * done as f64 / n_windows),
    );
    let mut votes_by_rate: Vec<Vec<Vote>> =
        (0..windows.trial_rates.len()).map(|_| Vec::new()).collect();
    for votes in per_window {
        for (k, vote) in votes? {
            votes_by_rate[k].push(vote);
        }
    }
    Ok(votes_by_rate)
}

/// The (rate, sigma) accumulator of the Hough vote.
struct HoughGrid {
    lo_rate: f64,
    /// Fine rates voted on, `fine_step` apart from `lo_rate`.
    n_fine: usize,
    fine_step: f64,
    /// Sigma of bin 0 (s), and bins (one per envelope frame).
    origin_s: f64,
    n_bins: usize,
    frame_rate: f64,
}

impl HoughGrid {
    fn new(
        windows: &WindowGrid,
        n_d: usize,
        n_s: usize,
        frame_rate: f64,
        params: &CoarseParams,
    ) -> Self {
        let (win, t_ref_s) = (windows.win, windows.t_ref_s);
        let lever_s = windows
            .starts
            .iter()
            .map(|&a| ((a as f64 + win as f64 / 2.0) / frame_rate - t_ref_s).abs())
            .fold(1.0f64, f64::max);
        // sigma moves by at most half a frame between neighbouring fine rates
        let fine_step = (0.5 / (frame_rate * lever_s)).min(0.002);
        let lo_rate = 1.0 - params.max_rate_deviation;
        let hi_rate = 1.0 + params.max_rate_deviation;
        let n_fine = (((hi_rate - lo_rate) / fine_step).ceil() as usize + 1).min(8000);
        let fine_step = (hi_rate - lo_rate) / (n_fine - 1).max(1) as f64;
        let recording_dur_s = n_d as f64 / frame_rate;
        let song_dur_s = n_s as f64 / frame_rate;
        let origin_s = -recording_dur_s * 1.1 - 5.0;
        let n_bins = (((song_dur_s + recording_dur_s * 1.1 + 5.0) - origin_s) * frame_rate).ceil()
            as usize
            + 3;
        Self {
            lo_rate,
            n_fine,
            fine_step,
            origin_s,
            n_bins,
            frame_rate,
        }
    }
}

/// A line of the Hough vote: its neighbour-summed score, rate and sigma.
#[derive(Debug, Clone, Copy)]
struct HoughLine {
    score: f32,
    rate: f64,
    sigma: f64,
}

/// Hough vote over (rate, sigma): the best three lines of every fine rate,
/// in rate order. Each fine rate is voted on independently: chunks of rates
/// go to threads.
fn hough_vote(
    hough: &HoughGrid,
    windows: &WindowGrid,
    votes_by_rate: &[Vec<Vote>],
    params: &CoarseParams,
    threads: usize,
    cancel: &CancelToken,
) -> Result<Vec<HoughLine>> {
    let chunk_lines = |chunk: usize| -> Result<Vec<HoughLine>> {
        cancel.check()?;
        let mut acc = HoughAccumulator::new(hough.n_bins);
        let mut lines: Vec<HoughLine> = Vec::new();
        for m in chunk * HOUGH_CHUNK..((chunk + 1) * HOUGH_CHUNK).min(hough.n_fine) {
            let rho = hough.lo_rate + m as f64 * hough.fine_step;
            let k = (((rho - 1.0) / params.rate_step).round() as i64 + windows.k_max)
                .clamp(0, windows.trial_rates.len() as i64 - 1) as usize;
            acc.vote(&votes_by_rate[k], rho, windows.t_ref_s, hough);
            lines.extend(acc.best_three(rho, hough));
            acc.clear();
        }
        Ok(lines)
    };
    let mut hough_lines: Vec<HoughLine> = Vec::new();
    for lines in par_map(hough.n_fine.div_ceil(HOUGH_CHUNK), threads, chunk_lines) {
        hough_lines.extend(lines?);
    }
    Ok(hough_lines)
}

/// One fine rate's sigma bins, and the bins it touched (cleared after).
struct HoughAccumulator {
    acc: Vec<f32>,
    touched: Vec<usize>,
}

impl HoughAccumulator {
    fn new(n_bins: usize) -> Self {
        Self {
            acc: vec![0f32; n_bins],
            touched: Vec::new(),
        }
    }

    /// Adds each vote at rate `rho`, split between its two nearest bins.
    fn vote(&mut self, votes: &[Vote], rho: f64, t_ref_s: f64, hough: &HoughGrid) {
        let (acc, touched) = (&mut self.acc, &mut self.touched);
        let frame_rate = hough.frame_rate;
        for v in votes {
            let sigma = v.s_centre_s - (v.t_centre_s - t_ref_s) / rho;
            let x = (sigma - hough.origin_s) * frame_rate;
            if x < 1.0 || x >= (hough.n_bins - 2) as f64 {
                continue;
            }
            // x >= 1 here: truncation is floor (and no libm call)
            let b = x as usize;
            let f = (x - b as f64) as f32;
            if acc[b] == 0.0 {
                touched.push(b);
            }
            if acc[b + 1] == 0.0 {
                touched.push(b + 1);
            }
            acc[b] += v.weight * (1.0 - f) + 1e-9;
            acc[b + 1] += v.weight * f + 1e-9;
        }
    }
    /// The best three bins of this rate (neighbour-summed), as lines.
    fn best_three(&self, rho: f64, hough: &HoughGrid) -> Vec<HoughLine> {
        let acc = &self.acc;
        let mut top: [(f32, usize); 3] = [(0.0, 0); 3];
        for &b in &self.touched {
            let s = acc[b - 1] + acc[b] + acc[b + 1];
            if s > top[2].0 && top.iter().all(|t| t.1.abs_diff(b) > 3 || t.0 == 0.0) {
                top[2] = (s, b);
                top.sort_by(|p, q| q.0.total_cmp(&p.0));
            }
        }
        top.iter()
            .filter(|t| t.0 > 0.0)
            .map(|t| {
                let b = t.1;
                // centroid of the three bins for a sub-frame sigma
                let (l, c, r) = (acc[b - 1], acc[b], acc[b + 1]);
                let centroid = (r - l) / (l + c + r).max(1e-9);
                HoughLine {
                    score: t.0,
                    rate: rho,
                    sigma: hough.origin_s + (b as f64 + f64::from(centroid)) / hough.frame_rate,
                }
            })
            .collect()
    }

    fn clear(&mut self) {
        for &b in &self.touched {
            self.acc[b] = 0.0;
        }
        self.touched.clear();
    }
}

/// The best `n` Hough lines ≥ 50 ms apart, as `(rate, sigma)`.
fn best_hough_lines(mut hough_lines: Vec<HoughLine>, n: usize) -> Vec<(f64, f64)> {
    hough_lines.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut lines: Vec<(f64, f64)> = Vec::new();
    for h in &hough_lines {
        if lines.len() >= n {
            break;
        }
        if lines.iter().all(|&(_, s)| (s - h.sigma).abs() >= 0.05) {
            lines.push((h.rate, h.sigma));
        }
    }
    lines
}

/// Direct re-scoring of each `(rate, sigma)` line with a small local search
/// (±2 fine rate steps, ±1 frame in half frames); lines in parallel.
fn rescore_lines(
    scorer: &LineScorer,
    lines: &[(f64, f64)],
    fine_step: f64,
    threads: usize,
    cancel: &CancelToken,
) -> Result<Vec<CoarseCandidate>> {
    let rescore = |li: usize| -> Result<CoarseCandidate> {
        cancel.check()?;
        let (rho, sigma) = lines[li];
        let mut scorer = LineScorer {
            needles: NeedleCache::default(),
            ..*scorer
        };
        let mut best = CoarseCandidate {
            sigma_s: sigma,
            rate: rho,
            score: f64::NEG_INFINITY,
        };
        for dr in -2i32..=2 {
            let r = rho + f64::from(dr) * fine_step;
            for ds in -2i32..=2 {
                let s = sigma + f64::from(ds) * 0.5 / scorer.frame_rate;
                let score = scorer.score(s, r);
                if score > best.score {
                    best = CoarseCandidate {
                        sigma_s: s,
                        rate: r,
                        score,
                    };
                }
            }
        }
        Ok(best)
    };
    par_map(lines.len(), threads, rescore)
        .into_iter()
        .collect::<Result<Vec<CoarseCandidate>>>()
}

/// The best `max` scored lines with a positive score, ≥ 50 ms apart.
fn distinct_candidates(mut scored: Vec<CoarseCandidate>, max: usize) -> Vec<CoarseCandidate> {
    scored.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out: Vec<CoarseCandidate> = Vec::new();
    for c in scored {
        if out.len() >= max {
            break;
        }
        if c.score > 0.0 && out.iter().all(|o| (o.sigma_s - c.sigma_s).abs() >= 0.05) {
            out.push(c);
        }
    }
    out
}

/// Fine rates per work item of the Hough vote.
const HOUGH_CHUNK: usize = 256;

/// Window starts every `hop` frames, the last one flush with the end.
fn window_starts(n: usize, win: usize, hop: usize) -> Vec<usize> {
    let hop = hop.max(1);
    let mut starts: Vec<usize> = (0..=(n - win)).step_by(hop).collect();
    if starts.last().is_some_and(|&l| l + win < n) {
        starts.push(n - win);
    }
    starts
}

/// The recording window starting at frame `start`, `win` frames long, read
/// on the song's time axis for a trial rate (`needle[u] = env(start + u * rate)`),
/// zero-mean. `false` when it is silent.
fn retimed_needle(env: &[f32], start: f64, win: usize, rate: f64, needle: &mut Vec<f32>) -> bool {
    needle.clear();
    let len = ((win - 1) as f64 / rate).floor() as usize + 1;
    for u in 0..len {
        let x = start + u as f64 * rate;
        // x >= 0: truncation is floor (and no libm call)
        let i = x as usize;
        if i + 1 >= env.len() {
            if i < env.len() {
                needle.push(env[i]);
            }
            continue;
        }
        let f = (x - i as f64) as f32;
        needle.push(env[i] * (1.0 - f) + env[i + 1] * f);
    }
    if needle.len() < 4 {
        return false;
    }
    let mean = needle.iter().sum::<f32>() / needle.len() as f32;
    needle.iter_mut().for_each(|v| *v -= mean);
    needle.iter().any(|v| v.abs() > 1e-9)
}

struct LineScorer<'a> {
    recording_env: &'a [f32],
    song_env: &'a [f32],
    frame_rate: f64,
    t_ref_s: f64,
    starts: &'a [usize],
    win: usize,
    needles: NeedleCache,
}

/// The re-timed windows of one rate (the scorer tries many `sigma`s per rate).
#[derive(Default)]
struct NeedleCache {
    rate: Option<f64>,
    /// Per window: its needle and squared norm, or `None` when silent.
    needles: Vec<Option<(Vec<f32>, f64)>>,
}

impl LineScorer<'_> {
    /// Sum over windows of the normalised correlation between the window and
    /// the song envelope where the line puts it (windows off the song count 0).
    fn score(&mut self, sigma_s: f64, rate: f64) -> f64 {
        if self.needles.rate.map(f64::to_bits) != Some(rate.to_bits()) {
            self.needles.needles.resize_with(self.starts.len(), || None);
            for (slot, &a) in self.needles.needles.iter_mut().zip(self.starts) {
                let mut needle = slot.take().map(|(v, _)| v).unwrap_or_default();
                *slot = retimed_needle(self.recording_env, a as f64, self.win, rate, &mut needle)
                    .then(|| {
                        let nn = needle
                            .iter()
                            .fold(0f64, |acc, &x| acc + f64::from(x) * f64::from(x));
                        (needle, nn)
                    });
            }
            self.needles.rate = Some(rate);
        }
        let mut total = 0.0;
        for (&a, slot) in self.starts.iter().zip(&self.needles.needles) {
            let Some((needle, nn)) = slot else {
                continue;
            };
            let t = a as f64 / self.frame_rate;
            let song_start = (sigma_s + (t - self.t_ref_s) / rate) * self.frame_rate;
            if song_start < 0.0 {
                continue;
            }
            // song_start >= 0: truncation is floor
            let j = song_start as usize;
            let f = (song_start - j as f64) as f32;
            if j + needle.len() + 1 >= self.song_env.len() {
                continue;
            }
            let (mut dot, mut ss) = (0f64, 0f64);
            let song = &self.song_env[j..j + needle.len() + 1];
            for (&x, w) in needle.iter().zip(song.windows(2)) {
                let y = w[0] * (1.0 - f) + w[1] * f;
                dot += f64::from(x) * f64::from(y);
                ss += f64::from(y) * f64::from(y);
            }
            if *nn > 0.0 && ss > 0.0 {
                total += dot / (nn * ss).sqrt();
            }
        }
        total
    }
}

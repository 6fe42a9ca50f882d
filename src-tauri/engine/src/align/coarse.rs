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
use crate::dsp::par::par_map;
use crate::dsp::xcorr::{parabolic_offset, top_peaks, Correlator};
use crate::error::{EngineError, Result};
use std::sync::atomic::{AtomicUsize, Ordering};

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
    /// Song time (s) heard at dance time `t_ref_s`.
    pub sigma_s: f64,
    /// Dance seconds per song second.
    pub rate: f64,
    /// Sum over windows of normalised envelope correlation on the line.
    pub score: f64,
}

/// One window's votes as `(trial rate index, vote)`.
type WindowVotes = Vec<(usize, Vote)>;

struct WindowJob<'a> {
    dance_env: &'a [f32],
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
            if !retimed_needle(self.dance_env, a as f64, self.win, r, needle) {
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

/// Candidate lines, best first. `dance_env` / `song_env` are whitened onset
/// envelopes at `frame_rate` frames per second; lines are expressed at
/// `t_ref_s = dance_frames / frame_rate / 2`.
pub fn coarse_candidates(
    dance_env: &[f32],
    song_env: &[f32],
    frame_rate: f64,
    params: &CoarseParams,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<Vec<CoarseCandidate>> {
    let n_d = dance_env.len();
    let n_s = song_env.len();
    if n_d < 8 || n_s < 8 {
        return Ok(Vec::new());
    }
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
    let max_needle = ((win as f64) / trial_rates[0]).ceil() as usize + 2;
    let correlator = Correlator::new(song_env, max_needle);

    // ---- per-window correlations at each trial rate -> votes
    // Windows are independent: spread them over threads, then gather the
    // votes in window order (the order the Hough sums see them in).
    let window_job = WindowJob {
        dance_env,
        win,
        trial_rates: &trial_rates,
        frame_rate,
        peaks_per_window: params.peaks_per_window,
    };
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let run = |correlator: &mut Correlator,
               on_window: &mut dyn FnMut()|
     -> Result<Vec<(usize, WindowVotes)>> {
        let mut out = Vec::new();
        let (mut needle, mut corr) = (Vec::new(), Vec::new());
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&a) = starts.get(i) else {
                return Ok(out);
            };
            cancel.check()?;
            out.push((i, window_job.votes(correlator, a, &mut needle, &mut corr)));
            done.fetch_add(1, Ordering::Relaxed);
            on_window();
        }
    };
    let threads = crate::dsp::par::threads().min(starts.len());
    let mut per_window: Vec<WindowVotes> = (0..starts.len()).map(|_| Vec::new()).collect();
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (1..threads)
            .map(|_| {
                let mut correlator = correlator.clone();
                scope.spawn(move || run(&mut correlator, &mut || {}))
            })
            .collect();
        let mut correlator = correlator;
        let n_windows = starts.len() as f64;
        let mine = run(&mut correlator, &mut || {
            progress(0.7 * done.load(Ordering::Relaxed) as f64 / n_windows);
        });
        let mut results = vec![mine];
        for w in workers {
            results.push(
                w.join()
                    .unwrap_or(Err(EngineError::no_match("coarse search thread panicked"))),
            );
        }
        for r in results {
            for (i, votes) in r? {
                per_window[i] = votes;
            }
        }
        Ok(())
    })?;
    progress(0.7);
    let mut votes_by_rate: Vec<Vec<Vote>> = (0..trial_rates.len()).map(|_| Vec::new()).collect();
    for (k, vote) in per_window.into_iter().flatten() {
        votes_by_rate[k].push(vote);
    }

    // ---- Hough vote over (rate, sigma)
    let lever_s = starts
        .iter()
        .map(|&a| ((a as f64 + win as f64 / 2.0) / frame_rate - t_ref_s).abs())
        .fold(1.0f64, f64::max);
    // sigma moves by at most half a frame between neighbouring fine rates
    let fine_step = (0.5 / (frame_rate * lever_s)).min(0.002);
    let lo_rate = 1.0 - params.max_rate_deviation;
    let hi_rate = 1.0 + params.max_rate_deviation;
    let n_fine = (((hi_rate - lo_rate) / fine_step).ceil() as usize + 1).min(8000);
    let fine_step = (hi_rate - lo_rate) / (n_fine - 1).max(1) as f64;
    let dance_dur_s = n_d as f64 / frame_rate;
    let song_dur_s = n_s as f64 / frame_rate;
    let origin_s = -dance_dur_s * 1.1 - 5.0;
    let n_bins =
        (((song_dur_s + dance_dur_s * 1.1 + 5.0) - origin_s) * frame_rate).ceil() as usize + 3;
    // Each fine rate is voted on independently: chunks of rates go to
    // threads, and the lines come back in rate order.
    let hough_chunk = |chunk: usize| -> Result<Vec<(f32, f64, f64)>> {
        let mut acc = vec![0f32; n_bins];
        let mut touched: Vec<usize> = Vec::new();
        let mut hough_lines: Vec<(f32, f64, f64)> = Vec::new(); // (score, rate, sigma)
        cancel.check()?;
        for m in chunk * HOUGH_CHUNK..((chunk + 1) * HOUGH_CHUNK).min(n_fine) {
            let rho = lo_rate + m as f64 * fine_step;
            let k = (((rho - 1.0) / params.rate_step).round() as i64 + k_max)
                .clamp(0, trial_rates.len() as i64 - 1) as usize;
            for v in &votes_by_rate[k] {
                let sigma = v.s_centre_s - (v.t_centre_s - t_ref_s) / rho;
                let x = (sigma - origin_s) * frame_rate;
                if x < 1.0 || x >= (n_bins - 2) as f64 {
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
            // the best three bins of this rate (neighbour-summed)
            let mut top: [(f32, usize); 3] = [(0.0, 0); 3];
            for &b in &touched {
                let s = acc[b - 1] + acc[b] + acc[b + 1];
                if s > top[2].0 && top.iter().all(|t| t.1.abs_diff(b) > 3 || t.0 == 0.0) {
                    top[2] = (s, b);
                    top.sort_by(|p, q| q.0.total_cmp(&p.0));
                }
            }
            for t in top.iter().filter(|t| t.0 > 0.0) {
                let b = t.1;
                // centroid of the three bins for a sub-frame sigma
                let (l, c, r) = (acc[b - 1], acc[b], acc[b + 1]);
                let centroid = (r - l) / (l + c + r).max(1e-9);
                hough_lines.push((
                    t.0,
                    rho,
                    origin_s + (b as f64 + f64::from(centroid)) / frame_rate,
                ));
            }
            for &b in &touched {
                acc[b] = 0.0;
            }
            touched.clear();
        }
        Ok(hough_lines)
    };
    let mut hough_lines: Vec<(f32, f64, f64)> = Vec::new();
    for lines in par_map(n_fine.div_ceil(HOUGH_CHUNK), threads, hough_chunk) {
        hough_lines.extend(lines?);
    }
    hough_lines.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut lines: Vec<(f64, f64)> = Vec::new();
    for &(_, rho, sigma) in &hough_lines {
        if lines.len() >= params.lines_to_rescore {
            break;
        }
        if lines.iter().all(|&(_, s)| (s - sigma).abs() >= 0.05) {
            lines.push((rho, sigma));
        }
    }
    progress(0.8);

    // ---- direct re-scoring with a small local search (lines in parallel)
    let rescore = |li: usize| -> Result<CoarseCandidate> {
        cancel.check()?;
        let (rho, sigma) = lines[li];
        let mut scorer = LineScorer {
            dance_env,
            song_env,
            frame_rate,
            t_ref_s,
            starts: &starts,
            win,
            needles: NeedleCache::default(),
        };
        let mut best = CoarseCandidate {
            sigma_s: sigma,
            rate: rho,
            score: f64::NEG_INFINITY,
        };
        for dr in -2i32..=2 {
            let r = rho + f64::from(dr) * fine_step;
            for ds in -2i32..=2 {
                let s = sigma + f64::from(ds) * 0.5 / frame_rate;
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
    let mut scored = par_map(lines.len(), threads, rescore)
        .into_iter()
        .collect::<Result<Vec<CoarseCandidate>>>()?;
    progress(1.0);
    scored.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out: Vec<CoarseCandidate> = Vec::new();
    for c in scored {
        if out.len() >= params.max_candidates {
            break;
        }
        if c.score > 0.0 && out.iter().all(|o| (o.sigma_s - c.sigma_s).abs() >= 0.05) {
            out.push(c);
        }
    }
    Ok(out)
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
    dance_env: &'a [f32],
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
                *slot = retimed_needle(self.dance_env, a as f64, self.win, rate, &mut needle).then(
                    || {
                        let nn = needle
                            .iter()
                            .fold(0f64, |acc, &x| acc + f64::from(x) * f64::from(x));
                        (needle, nn)
                    },
                );
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

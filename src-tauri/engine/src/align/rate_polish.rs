//! The rate polish: a candidate line moved to the onset-envelope optimum
//! in offset and rate before the fine stage.

/// Largest error of a proposed rate that [`polish_rate`] corrects (fraction):
/// the onset search's trial rates are 1.25 % apart and a section found by
/// spectral shape borrows the rate of another section.
pub(super) const RATE_POLISH_RANGE: f64 = 0.008;

/// One recording window of [`polish_rate`] correlated with the song
/// envelope over every lag a trial line can reach.
struct WindowCorrelation {
    /// The window's first frame (s).
    start_s: f64,
    /// The song frame of `corr[0]`.
    first_lag: f64,
    /// Normalised correlation per lag.
    corr: Vec<f64>,
}

/// Running sums of a signal and of its squares (`sums[j]` over the first `j` values).
struct RunningSums {
    sums: Vec<f64>,
    squares: Vec<f64>,
}

impl RunningSums {
    fn of(x: &[f32]) -> RunningSums {
        let (mut sums, mut squares) = (vec![0f64; x.len() + 1], vec![0f64; x.len() + 1]);
        for (i, &v) in x.iter().enumerate() {
            let v = f64::from(v);
            sums[i + 1] = sums[i] + v;
            squares[i + 1] = squares[i] + v * v;
        }
        RunningSums { sums, squares }
    }
}

/// The lag and rate grid of [`polish_rate`] around a candidate.
struct PolishGrid {
    frame_rate: f64,
    win: usize,
    /// Pivot of the rate trials (s): the recording's middle.
    t_ref: f64,
    rate_range: f64,
    /// Rate step (fraction).
    step: f64,
    k_max: i64,
    /// Offset steps (half frames) searched each side.
    sigma_steps: i64,
}

impl PolishGrid {
    /// `None` when either envelope is too short for a window.
    fn new(n_d: usize, n_song: usize, frame_rate: f64, rate_range: f64) -> Option<PolishGrid> {
        let win = ((POLISH_WINDOW_S * frame_rate).round() as usize).clamp(8, n_d.max(8));
        if n_d < win || n_song < win + 2 {
            return None;
        }
        let t_ref = n_d as f64 / frame_rate / 2.0;
        let lever_s = t_ref.max(1.0);
        // rate steps that move the ends of the recording by about half a frame
        let step = (0.5 / (frame_rate * lever_s)).max(1e-4);
        Some(PolishGrid {
            frame_rate,
            win,
            t_ref,
            rate_range,
            step,
            k_max: (rate_range / step).ceil() as i64,
            sigma_steps: (POLISH_SIGMA_RADIUS_S * frame_rate * 2.0).ceil() as i64,
        })
    }

    /// The window starting at frame `a` correlated with the song over the
    /// lags the grid around `c` reaches; `None` for a flat window or no lag.
    fn correlate_window(
        &self,
        recording_env: &[f32],
        song_env: &[f32],
        song_sums: &RunningSums,
        c: &crate::align::coarse::CoarseCandidate,
        a: usize,
    ) -> Option<WindowCorrelation> {
        let (win, frame_rate, t_ref) = (self.win, self.frame_rate, self.t_ref);
        let seg = &recording_env[a..a + win];
        let mean = seg.iter().map(|&v| f64::from(v)).sum::<f64>() / win as f64;
        let needle: Vec<f64> = seg.iter().map(|&v| f64::from(v) - mean).collect();
        let nn: f64 = needle.iter().map(|v| v * v).sum();
        let t_c = (a as f64 + 0.5 * win as f64) / frame_rate;
        if nn.is_nan() || nn <= 1e-12 {
            return None;
        }
        // song frame where the line puts the window's first frame
        let pred = (c.sigma_s + (a as f64 / frame_rate - t_ref) / c.rate) * frame_rate;
        let reach = self.rate_range * 1.1 * (t_c - t_ref).abs() * frame_rate
            + POLISH_SIGMA_RADIUS_S * frame_rate
            + 2.0;
        let lo = (pred - reach).floor().max(0.0) as usize;
        let hi = ((pred + reach).ceil().max(0.0) as usize).min(song_env.len() - win);
        if lo > hi {
            return None;
        }
        let RunningSums { sums, squares } = song_sums;
        // The needle sums to zero, so its dot product with the song excerpt
        // needs no excerpt mean; the excerpt's spread comes from running sums.
        let corr: Vec<f64> = (lo..=hi)
            .map(|j| {
                let y = &song_env[j..j + win];
                let dot: f64 = needle.iter().zip(y).map(|(x, &v)| x * f64::from(v)).sum();
                let sum = sums[j + win] - sums[j];
                let ss = (squares[j + win] - squares[j]) - sum * sum / win as f64;
                if ss > 1e-12 {
                    dot / (nn * ss).sqrt()
                } else {
                    0.0
                }
            })
            .collect();
        Some(WindowCorrelation {
            start_s: a as f64 / frame_rate,
            first_lag: lo as f64,
            corr,
        })
    }

    /// Every window (half overlapping, the last one flush with the end)
    /// correlated around `c`.
    fn correlate_windows(
        &self,
        recording_env: &[f32],
        song_env: &[f32],
        c: &crate::align::coarse::CoarseCandidate,
    ) -> Vec<WindowCorrelation> {
        let (n_d, win) = (recording_env.len(), self.win);
        let song_sums = RunningSums::of(song_env);
        let mut windows = Vec::new();
        let mut a = 0usize;
        loop {
            windows.extend(self.correlate_window(recording_env, song_env, &song_sums, c, a));
            if a + win >= n_d {
                break;
            }
            a = (a + win / 2).min(n_d - win);
        }
        windows
    }

    /// Summed correlation of the windows along the line (`sigma`, `rate`).
    fn score(&self, windows: &[WindowCorrelation], sigma: f64, rate: f64) -> f64 {
        windows
            .iter()
            .map(|w| {
                let corr = &w.corr;
                let x = (sigma + (w.start_s - self.t_ref) / rate) * self.frame_rate - w.first_lag;
                if x < 0.0 || x > (corr.len() - 1) as f64 {
                    return 0.0;
                }
                let i = (x.floor() as usize).min(corr.len() - 1);
                let f = x - i as f64;
                let next = corr.get(i + 1).copied().unwrap_or(corr[i]);
                corr[i] * (1.0 - f) + next * f
            })
            .sum()
    }

    /// The grid's best line, starting from `c`'s own score.
    fn search(
        &self,
        windows: &[WindowCorrelation],
        c: &crate::align::coarse::CoarseCandidate,
    ) -> crate::align::coarse::CoarseCandidate {
        let (frame_rate, t_ref, sigma_steps) = (self.frame_rate, self.t_ref, self.sigma_steps);
        let mut best = crate::align::coarse::CoarseCandidate {
            sigma_s: c.sigma_s,
            rate: c.rate,
            score: self.score(windows, c.sigma_s, c.rate),
        };
        // Every offset step moves each window's lag by half a frame: per rate,
        // each window adds its correlation at all the trial offsets in one pass
        // (windows in the same order as `score`, so the sums are the same).
        // Even and odd offset steps share a fractional lag: each parity is a
        // straight run of linear interpolations between neighbouring lags.
        let n_sigma = (2 * sigma_steps + 1) as usize;
        let mut parity_totals = [vec![0f64; n_sigma.div_ceil(2)], vec![0f64; n_sigma / 2]];
        for k in -self.k_max..=self.k_max {
            let rate = c.rate * (1.0 + k as f64 * self.step);
            parity_totals.iter_mut().for_each(|t| t.fill(0.0));
            for w in windows {
                let x0 = (c.sigma_s + (w.start_s - t_ref) / rate) * frame_rate - w.first_lag;
                for (parity, run) in parity_totals.iter_mut().enumerate() {
                    add_lerp_run(
                        run,
                        &w.corr,
                        x0 + (parity as f64 - sigma_steps as f64) * 0.5,
                    );
                }
            }
            // offset step d, in increasing order (ties keep the first, as before)
            for d in 0..n_sigma {
                let v = parity_totals[d % 2][d / 2];
                if v > best.score {
                    let sigma = c.sigma_s + (d as f64 - sigma_steps as f64) * 0.5 / frame_rate;
                    best = crate::align::coarse::CoarseCandidate {
                        sigma_s: sigma,
                        rate,
                        score: v,
                    };
                }
            }
        }
        best
    }
}

/// Moves a candidate line to the onset-envelope optimum in offset (±60 ms)
/// and rate (±`rate_range`, pivoting on `t_ref`). The fine stage
/// searches only a few tenths of a percent of rate around its input.
///
/// Each recording window (2 s, half overlapping, read at the candidate's
/// rate) is correlated once with the song envelope over every lag any trial
/// line can reach; trial lines then just sum those normalised correlations.
pub(super) fn polish_rate(
    recording_env: &[f32],
    song_env: &[f32],
    frame_rate: f64,
    c: crate::align::coarse::CoarseCandidate,
    rate_range: f64,
) -> crate::align::coarse::CoarseCandidate {
    let Some(grid) = PolishGrid::new(recording_env.len(), song_env.len(), frame_rate, rate_range)
    else {
        return c;
    };
    let windows = grid.correlate_windows(recording_env, song_env, &c);
    if windows.len() < 2 {
        return c;
    }
    grid.search(&windows, &c)
}

/// `run[j] += corr` linearly interpolated at lag `x + j`, for every `j` where
/// that lag lies within `corr` (the last lag counts only when hit exactly).
fn add_lerp_run(run: &mut [f64], corr: &[f64], x: f64) {
    let last = corr.len() as f64 - 1.0;
    if corr.is_empty() || x > last || x + run.len() as f64 - 1.0 < 0.0 {
        return;
    }
    let i0 = x.floor();
    let f = x - i0;
    // first j with x + j >= 0, and one past the last with x + j <= last
    let j_first = if x < 0.0 { (-x).ceil() as usize } else { 0 };
    let j_end = (((last - x).floor() as usize) + 1).min(run.len());
    if j_first >= j_end {
        return;
    }
    // lags i0 + j and i0 + j + 1; the very last lag has no right neighbour
    // (it is only reached with f = 0)
    let base = (i0 + j_first as f64) as usize;
    let mut end = j_end;
    if base + (j_end - j_first) >= corr.len() {
        end -= 1;
        run[end] += corr[corr.len() - 1];
    }
    let n = end - j_first;
    let (left, right) = (&corr[base..base + n], &corr[base + 1..base + 1 + n]);
    for ((r, &a), &b) in run[j_first..end].iter_mut().zip(left).zip(right) {
        *r += a * (1.0 - f) + b * f;
    }
}

/// Recording window of [`polish_rate`] (s): short enough that a rate error
/// of [`RATE_POLISH_RANGE`] blurs it by under a frame.
const POLISH_WINDOW_S: f64 = 2.0;
/// Offset searched by [`polish_rate`] around the candidate (s, ±).
const POLISH_SIGMA_RADIUS_S: f64 = 0.15;

#[cfg(test)]
mod tests {
    use super::add_lerp_run;
    use crate::test_signal::Lcg;

    /// The run form of the polish search adds what a lag-by-lag linear
    /// interpolation adds, ends and partial overlaps included.
    #[test]
    fn lerp_run_matches_lag_by_lag_interpolation() {
        let mut rng = Lcg(2024);
        for case in 0..400 {
            let len = 1 + rng.below(12) as usize;
            let corr: Vec<f64> = (0..len).map(|_| f64::from(rng.next())).collect();
            let n = 1 + rng.below(9) as usize;
            // starts from well before to well after the lags, half-integers and
            // exact integers included
            let x = match case % 3 {
                0 => rng.below(4 * len as u64 + 20) as f64 * 0.5 - 10.0,
                _ => f64::from(rng.next()) * (len as f64 + 10.0),
            };
            let mut run = vec![0.0; n];
            add_lerp_run(&mut run, &corr, x);
            let last = (len - 1) as f64;
            for (j, &got) in run.iter().enumerate() {
                let xj = x + j as f64;
                let want = if xj < 0.0 || xj > last {
                    0.0
                } else {
                    let i = xj.floor() as usize;
                    let f = xj - i as f64;
                    let next = corr.get(i + 1).copied().unwrap_or(corr[i]);
                    corr[i] * (1.0 - f) + next * f
                };
                assert!(
                    (got - want).abs() < 1e-12,
                    "case {case}: len {len} x {x} j {j}: {got} vs {want}"
                );
            }
        }
    }
}

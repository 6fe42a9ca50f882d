//! `integrate`: waveform evidence of the song along a line from the whole
//! overlap at once, for recordings in which no single window shows it.
//!
//! Soft music (strings, pads, no drums), loud talk over it or noise at a
//! negative SNR leave each short GCC-PHAT window with a peak at the right lag
//! that is no higher than the noise around it. Summed along the right line
//! over hundreds of windows, those peaks add up linearly and the noise only
//! as its square root: the sum stands out where no window does. Counting
//! windows with a clear peak, or taking each window's largest value near the
//! line (which passes only a fraction of a weak peak), throws that away.
//!
//! Each window's correlation is normalised by its rms and clipped (a window
//! can vouch for a line, not carry it: another song sharing a drum sample
//! gives a few windows far above the rest), then summed along every line
//! near the candidate: a 2-D search over offset and slope on lightly
//! smoothed sums, then the exact sum (fractional lags) around the best one.
//! The result is a z-score against the null of the same sum: its spread from
//! the windows' own variance (and how much neighbouring windows co-vary),
//! its centre from parallel lines far from the song's arrival.

use crate::align::fine::{
    add_parity_row, direct_lag, window_correlations, FineOutcome, Line, WindowCorr, WindowGeometry,
    WindowObs,
};
use crate::cancel::CancelToken;
use crate::dsp::xcorr::parabolic_offset;
use crate::error::Result;

/// Per-window normalised correlations are clipped to this many rms.
const CLIP: f32 = 4.0;
/// Lags on either side of the found line left out of the null (the direct
/// sound's own reflections and a second loudspeaker come within a few ms).
const NULL_GUARD: i64 = 40;
/// Reflections and a second loudspeaker arrive within this time after the
/// direct sound (s): lags that count as the same arrival in [`IntegratedLine::lag_margin`].
const DIRECT_REACH_S: f64 = 0.04;
/// Fewest parallel lines the null of a sum is measured on.
const MIN_NULL_LINES: usize = 64;
/// An arrival earlier than the strongest one is the direct sound from this
/// many robust deviations of the summed profile (the fine stage asks 8 of a
/// sum of unclipped windows; a weak song's sum stands lower).
const DIRECT_MIN_Z: f64 = 4.5;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntegrateParams {
    pub win_len: usize,
    pub max_lag: usize,
    pub hop_s: f64,
    pub max_windows: usize,
    /// Re-time the song excerpts by the line's rate (resampled playback).
    pub resample: bool,
    /// Largest deviation from the input line searched at the ends of the
    /// overlap (lags): how far its rate may be off.
    pub max_end_shift: f64,
    /// Offsets searched around the input line (lags, ±).
    pub search_radius: usize,
}

/// The best line near the input one and its summed coherence.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegratedLine {
    pub line: Line,
    /// Summed coherence on the line in null standard deviations (about 0 to
    /// 4 where the song is not, the largest of many lines being searched).
    pub z: f64,
    /// The same against the spread of the sums along parallel lines: lower
    /// than `z` where the music itself correlates at many lags (held notes).
    pub z_parallel: f64,
    /// How far the line's arrivals (the direct sound and what comes up to
    /// 40 ms after it) stand above every other offset searched, in null
    /// deviations: small when the music's own periodicity (held notes, a
    /// steady beat) offers another lag almost as coherent.
    pub lag_margin: f64,
    /// Each window's evidence on the line (for where the song is heard).
    pub windows: Vec<WindowObs>,
    pub hop_s: f64,
}

impl IntegratedLine {
    /// The integrated line as the fine stage's outcome on it (what the
    /// verdict and the heard span read): its summed coherence as the
    /// coherence, its windows with a peak of 4 null deviations or more on
    /// the line as heard.
    pub fn into_fine(self) -> FineOutcome {
        FineOutcome {
            line: self.line,
            z: self.z,
            heard_windows: self.windows.iter().filter(|w| w.z_on_line >= 4.0).count(),
            line_z: self.z,
            windows: self.windows,
            hop_s: self.hop_s,
        }
    }
}

/// Searches the lines near `line` for the largest summed coherence.
pub fn integrate_line(
    recording: &[f32],
    song: &[f32],
    fs: f64,
    line: &Line,
    params: &IntegrateParams,
    threads: usize,
    cancel: &CancelToken,
) -> Result<Option<IntegratedLine>> {
    let geometry = WindowGeometry {
        win_len: params.win_len,
        max_lag: params.max_lag,
        hop_s: params.hop_s,
        max_windows: params.max_windows,
        resample: params.resample,
    };
    let Some(crate::align::fine::LineWindows { windows, hop_s }) =
        window_correlations(recording, song, fs, line, &geometry, threads, cancel)?
    else {
        return Ok(None);
    };
    cancel.check()?;
    let rows = Rows::new(&windows, params.max_lag, threads);
    let Some((a, b)) = rows.search(params.max_end_shift, params.search_radius) else {
        return Ok(None);
    };
    let a = rows.direct_arrival(a, b, params.search_radius, fs);
    let (a, b) = rows.polish(a, b);
    let Some((z, z_parallel)) = rows.significance(a, b) else {
        return Ok(None);
    };
    let lag_margin = rows.lag_margin(a, b, params.search_radius, fs);
    Ok(Some(IntegratedLine {
        line: Line {
            t_ref: line.t_ref,
            sigma: line.sigma + (a + b * (line.t_ref - rows.t0)) / fs,
            rate: 1.0 / (1.0 / line.rate + b / fs),
        },
        z,
        z_parallel,
        lag_margin,
        windows: rows.observations(&windows, a, b),
        hop_s,
    }))
}

/// The windows' clipped, normalised correlations and where they sit. A line
/// is `dev(t) = a + b * (t - t0)` song samples from the input line; window
/// `j` reads it at lag index `max_lag + (dev(t_j) - base_shift_j) / lag_scale_j`.
struct Rows {
    clipped: Vec<Vec<f32>>,
    t: Vec<f64>,
    lag_scale: Vec<f64>,
    base_shift: Vec<f64>,
    t0: f64,
    lever: f64,
    max_lag: usize,
    /// Threads the many independent sums along lines are spread over (each
    /// sum is computed whole on one thread, so its value does not depend on
    /// the count).
    threads: usize,
}

impl Rows {
    fn new(windows: &[WindowCorr], max_lag: usize, threads: usize) -> Self {
        let clipped = windows
            .iter()
            .map(|w| {
                w.corr
                    .iter()
                    .map(|v| (v / w.rms).clamp(-CLIP, CLIP))
                    .collect()
            })
            .collect();
        let t: Vec<f64> = windows.iter().map(|w| w.t_s).collect();
        let t0 = t.iter().sum::<f64>() / t.len().max(1) as f64;
        let lever = t.iter().map(|v| (v - t0).abs()).fold(0.0, f64::max);
        Self {
            clipped,
            t,
            lag_scale: windows.iter().map(|w| w.lag_scale).collect(),
            base_shift: windows.iter().map(|w| w.base_shift).collect(),
            t0,
            lever,
            max_lag,
            threads,
        }
    }

    fn lags(&self) -> usize {
        2 * self.max_lag + 1
    }

    /// Window `j`'s fractional lag index on line `(a, b)`.
    fn tau(&self, j: usize, a: f64, b: f64) -> f64 {
        self.max_lag as f64
            + (a + b * (self.t[j] - self.t0) - self.base_shift[j]) / self.lag_scale[j]
    }

    /// Grid search: offsets every lag within ±`radius` of the input line,
    /// slopes moving the ends by 2 lags a step up to ±`end_shift`, on sums
    /// of each window's three neighbouring lags (a line then passes within
    /// a lag of each window's peak). Returns `(a, b)` in song samples.
    fn search(&self, end_shift: f64, radius: usize) -> Option<(f64, f64)> {
        let radius = radius.min(self.max_lag.saturating_sub(1)) as i64;
        // each window's sums of three neighbouring lags, at even and at odd
        // lags: offsets step by 2 lags, which the three-lag sums still cover
        let parity_rows: Vec<[Vec<f32>; 2]> = self
            .clipped
            .iter()
            .map(|c| {
                let smoothed: Vec<f32> = (0..c.len())
                    .map(|k| {
                        let lo = k.saturating_sub(1);
                        let hi = (k + 1).min(c.len() - 1);
                        c[lo..=hi].iter().sum::<f32>()
                    })
                    .collect();
                [
                    smoothed.iter().step_by(2).copied().collect(),
                    smoothed.iter().skip(1).step_by(2).copied().collect(),
                ]
            })
            .collect();
        let (steps, step) = if self.lever > 1.0 {
            ((end_shift / 2.0).ceil() as i64, 2.0 / self.lever)
        } else {
            (0, 0.0)
        };
        let slopes: Vec<f64> = (-steps..=steps).map(|bi| bi as f64 * step).collect();
        let sums = self.slope_sums(&parity_rows, &slopes, radius);
        let width = radius as usize + 1;
        let mut best: Option<(f32, i64, f64)> = None;
        // sums[p] of a slope: offset 2 p - radius lags
        for (sums, &b) in sums.chunks(width).zip(&slopes) {
            for (p, &s) in sums.iter().enumerate() {
                if best.is_none_or(|(v, _, _)| s > v) {
                    best = Some((s, 2 * p as i64 - radius, b));
                }
            }
        }
        // (offsets in lags of the first window's scale: all share it within 1e-3)
        best.map(|(_, q, b)| (q as f64 * self.lag_scale[0], b))
    }

    /// The grid's sums for every slope (`radius + 1` offsets each, slope
    /// after slope), the slopes spread over the threads. Within a thread the
    /// windows are the outer loop: a window's rows stay in cache for all its
    /// slopes, where slope by slope every row was read again from memory.
    /// Each sum still adds its windows in window order from zero, so it is
    /// the same number whatever the loop order and the thread count.
    fn slope_sums(&self, parity_rows: &[[Vec<f32>; 2]], slopes: &[f64], radius: i64) -> Vec<f32> {
        let width = radius as usize + 1;
        let chunk = slopes.len().div_ceil(2 * self.threads.max(1)).max(1);
        crate::dsp::par::par_map(slopes.len().div_ceil(chunk), self.threads, |c| {
            let mine = &slopes[c * chunk..((c + 1) * chunk).min(slopes.len())];
            let mut sums = vec![0f32; mine.len() * width];
            for (j, rows) in parity_rows.iter().enumerate() {
                for (sums, &b) in sums.chunks_mut(width).zip(mine) {
                    // lag index of offset -radius in this window
                    let first = self.tau(j, -(radius as f64) * self.lag_scale[j], b).round() as i64;
                    add_parity_row(sums, rows, first);
                }
            }
            sums
        })
        .concat()
    }

    /// Exact sum (fractional lags, linear interpolation) along line `(a, b)`.
    fn sum_on(&self, a: f64, b: f64) -> f64 {
        self.sums_on_here(&[(a, b)])[0]
    }

    /// Window `j`'s interpolated value on line `(a, b)`; `None` where the
    /// line leaves its lags.
    fn value_on(&self, j: usize, c: &[f32], a: f64, b: f64) -> Option<f32> {
        let lags = self.lags();
        let x = self.tau(j, a, b);
        if x < 0.0 || x > (lags - 1) as f64 {
            return None;
        }
        let i = (x.floor() as usize).min(lags - 1);
        let f = (x - i as f64) as f32;
        let next = c.get(i + 1).copied().unwrap_or(c[i]);
        Some(c[i] * (1.0 - f) + next * f)
    }

    /// [`Rows::sum_on`] of each line on this thread. The windows are the
    /// outer loop (each window's row is read once, in lag order, for all the
    /// lines, rather than every row once per line: the rows of a long
    /// overlap are megabytes); each line's sum still adds its windows in
    /// window order from zero, so every sum is the one line-by-line gives.
    fn sums_on_here(&self, lines: &[(f64, f64)]) -> Vec<f64> {
        let mut totals = vec![0f64; lines.len()];
        for (j, c) in self.clipped.iter().enumerate() {
            for (total, &(a, b)) in totals.iter_mut().zip(lines) {
                if let Some(v) = self.value_on(j, c, a, b) {
                    *total += f64::from(v);
                }
            }
        }
        totals
    }

    /// Local refinement of the grid's line: offset in quarter lags, slope
    /// in quarter grid steps, on the exact sums.
    fn polish(&self, a: f64, b: f64) -> (f64, f64) {
        let scale = self.lag_scale[0];
        let b_step = if self.lever > 1.0 {
            0.5 / self.lever
        } else {
            0.0
        };
        let lines: Vec<(f64, f64)> = (-4..=4)
            .flat_map(|bi| (-8..=8).map(move |ai| (ai, bi)))
            .map(|(ai, bi)| (a + ai as f64 * 0.25 * scale, b + bi as f64 * b_step))
            .collect();
        let sums = self.sums_on(&lines);
        // the first of the largest, in the order of the serial scan
        let mut best = (self.sum_on(a, b), a, b);
        for (&(ta, tb), v) in lines.iter().zip(sums) {
            if v > best.0 {
                best = (v, ta, tb);
            }
        }
        (best.1, best.2)
    }

    /// [`Rows::sum_on`] of each line, in order, spread over the threads.
    fn sums_on(&self, lines: &[(f64, f64)]) -> Vec<f64> {
        let chunk = lines.len().div_ceil(4 * self.threads.max(1)).max(1);
        crate::dsp::par::par_map(lines.len().div_ceil(chunk), self.threads, |c| {
            self.sums_on_here(&lines[c * chunk..((c + 1) * chunk).min(lines.len())])
        })
        .concat()
    }

    /// The exact sums along the lines parallel to `(a, b)`, lag index `k`
    /// standing for offset `a + (k - max_lag)` lags.
    fn profile(&self, a: f64, b: f64) -> Vec<f64> {
        let scale = self.lag_scale[0];
        let m = self.max_lag as i64;
        let lines: Vec<(f64, f64)> = (0..self.lags() as i64)
            .map(|k| (a + (k - m) as f64 * scale, b))
            .collect();
        self.sums_on(&lines)
    }

    /// The offset of the direct sound on slope `b`: the strongest parallel
    /// line within ±`radius` lags of `a` or, when that is a reflection or a
    /// farther loudspeaker, the earlier arrival [`crate::align::fine::direct_lag`]
    /// finds; to a fraction of a lag.
    fn direct_arrival(&self, a: f64, b: f64, radius: usize, fs: f64) -> f64 {
        let scale = self.lag_scale[0];
        let m = self.max_lag;
        let profile = self.profile(a, b);
        let lo = m.saturating_sub(radius).max(1);
        let hi = (m + radius).min(profile.len() - 2);
        let Some(k_max) = (lo..=hi).max_by(|&i, &j| profile[i].total_cmp(&profile[j])) else {
            return a;
        };
        let k = direct_lag(&profile, k_max as f64, fs, DIRECT_MIN_Z).unwrap_or(k_max);
        if std::env::var_os("BEATSYNC_ALIGN_DEBUG").is_some() {
            let (centre, spread) = median_spread(&profile);
            let peaks: Vec<String> = (k_max.saturating_sub(330).max(1)
                ..=(k_max + 330).min(profile.len() - 2))
                .filter(|&i| {
                    profile[i] >= profile[i - 1]
                        && profile[i] >= profile[i + 1]
                        && profile[i] - centre >= 0.3 * (profile[k_max] - centre)
                })
                .map(|i| {
                    format!(
                        "{}:{:.1}",
                        i as i64 - k_max as i64,
                        (profile[i] - centre) / spread
                    )
                })
                .collect();
            eprintln!(
                "  integrate: max at {} peaks {peaks:?} direct {}",
                k_max as i64 - m as i64,
                k as i64 - k_max as i64
            );
        }
        let frac = if k >= 1 && k + 1 < profile.len() {
            parabolic_offset(
                profile[k - 1] as f32,
                profile[k] as f32,
                profile[k + 1] as f32,
            )
        } else {
            0.0
        };
        a + ((k as f64 - m as f64) + frac) * scale
    }

    /// See [`IntegratedLine::lag_margin`]: line `(a, b)` against the lines
    /// parallel to it within ±`radius` lags, outside its arrivals.
    fn lag_margin(&self, a: f64, b: f64, radius: usize, fs: f64) -> f64 {
        let profile = self.profile(a, b);
        let m = self.max_lag as i64;
        let later = (DIRECT_REACH_S * fs / self.lag_scale[0]).round() as i64;
        let (mut arrivals, mut other) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        for k in (m - radius as i64).max(0)..=(m + radius as i64).min(profile.len() as i64 - 1) {
            let v = profile[k as usize];
            if (m - later..=m + 3).contains(&k) {
                arrivals = arrivals.max(v);
            } else {
                other = other.max(v);
            }
        }
        if !other.is_finite() {
            return f64::INFINITY;
        }
        (arrivals - other) / self.null_variance(a, b).sqrt().max(1e-9)
    }

    /// `(z, z_parallel)` of line `(a, b)`; `None` without enough null lines.
    fn significance(&self, a: f64, b: f64) -> Option<(f64, f64)> {
        let on = self.sum_on(a, b);
        let scale = self.lag_scale[0];
        let lags = self.lags() as i64;
        // parallel lines a whole number of lags away, beyond the guard, on
        // the side of earlier arrivals (higher lags): the other side holds
        // the room's reverberation of the song itself; both sides when the
        // line sits too near the end of the lags for enough of them
        let side = |sign: f64| -> Vec<f64> {
            let lines: Vec<(f64, f64)> = (NULL_GUARD..lags)
                .map(|d| a + sign * d as f64 * scale)
                .filter(|&ad| self.covered(ad, b))
                .map(|ad| (ad, b))
                .collect();
            self.sums_on(&lines)
        };
        let mut null = side(1.0);
        if null.len() < MIN_NULL_LINES {
            null.extend(side(-1.0));
        }
        if null.len() < MIN_NULL_LINES {
            return None;
        }
        let (centre, spread) = median_spread(&null);
        let sd = (self.null_variance(a, b)).sqrt().max(1e-9);
        Some(((on - centre) / sd, (on - centre) / spread.max(1e-9)))
    }

    /// Each window's value on line `(a, b)` (the largest within ±1 lag) and
    /// its presence: that value against the same statistic on parallel
    /// lines beyond the guard, over all windows (about 0 where the song is
    /// not heard).
    fn observations(&self, windows: &[WindowCorr], a: f64, b: f64) -> Vec<WindowObs> {
        let lags = self.lags() as i64;
        let near = |c: &[f32], k: i64| -> Option<f32> {
            (k >= 1 && k + 1 < lags).then(|| {
                c[(k - 1) as usize..=(k + 1) as usize]
                    .iter()
                    .fold(f32::NEG_INFINITY, |m, &v| m.max(v))
            })
        };
        let (mut sum, mut sq, mut n) = (0f64, 0f64, 0usize);
        let mut on = Vec::with_capacity(windows.len());
        for (j, c) in self.clipped.iter().enumerate() {
            let k = self.tau(j, a, b).round() as i64;
            on.push(near(c, k).map_or(0.0, f64::from));
            for probe in (k + NULL_GUARD..lags).step_by(7) {
                if let Some(v) = near(c, probe) {
                    sum += f64::from(v);
                    sq += f64::from(v) * f64::from(v);
                    n += 1;
                }
            }
        }
        let mean = sum / n.max(1) as f64;
        let sd = (sq / n.max(1) as f64 - mean * mean)
            .max(0.0)
            .sqrt()
            .max(1e-6);
        windows
            .iter()
            .zip(on)
            .map(|(w, v)| WindowObs {
                t_s: w.t_s,
                z_on_line: v,
                presence: (v - mean) / sd,
                song_db: w.song_db,
            })
            .collect()
    }

    /// Whether at least 3/4 of the windows see line `(a, b)` inside their lags.
    fn covered(&self, a: f64, b: f64) -> bool {
        let last = (self.lags() - 1) as f64;
        let inside = (0..self.clipped.len())
            .filter(|&j| {
                let x = self.tau(j, a, b);
                (0.0..=last).contains(&x)
            })
            .count();
        4 * inside >= 3 * self.clipped.len()
    }

    /// Variance of the sum along a line where the song is absent: the sum
    /// of the windows' variances, times how much the windows co-vary
    /// (`1 + 2 (rho_1 + rho_2)` of neighbouring windows' values at lags
    /// far from the line).
    fn null_variance(&self, a: f64, b: f64) -> f64 {
        let n = self.clipped.len();
        let lags = self.lags();
        // per window: values at lags beyond the guard, earlier side
        let columns: Vec<Vec<f32>> = (0..n)
            .map(|j| {
                let k0 = self.tau(j, a, b).round() as i64 + NULL_GUARD;
                (k0.max(0) as usize..lags)
                    .map(|k| self.clipped[j][k])
                    .collect()
            })
            .collect();
        let mut var_sum = 0f64;
        for c in &self.clipped {
            let mean = c.iter().map(|&v| f64::from(v)).sum::<f64>() / c.len() as f64;
            var_sum += c
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / c.len() as f64;
        }
        let mut rho = 0f64;
        for k in 1..=2usize {
            let (mut num, mut den) = (0f64, 0f64);
            for j in 0..n.saturating_sub(k) {
                let (x, y) = (&columns[j], &columns[j + k]);
                for (&u, &v) in x.iter().zip(y) {
                    num += f64::from(u) * f64::from(v);
                    den += 0.5 * (f64::from(u) * f64::from(u) + f64::from(v) * f64::from(v));
                }
            }
            if den > 0.0 {
                rho += num / den;
            }
        }
        var_sum * (1.0 + 2.0 * rho).clamp(1.0, 3.0)
    }
}

fn median_spread(v: &[f64]) -> (f64, f64) {
    // the middle elements by selection: the same values a full sort puts there
    let mut s = v.to_vec();
    let mid = s.len() / 2;
    let median = *s.select_nth_unstable_by(mid, f64::total_cmp).1;
    let mut dev: Vec<f64> = s.iter().map(|x| (x - median).abs()).collect();
    (
        median,
        1.4826 * *dev.select_nth_unstable_by(mid, f64::total_cmp).1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_signal::noise;

    fn rows(threads: usize) -> Rows {
        let max_lag = 120;
        let windows: Vec<WindowCorr> = (0..90)
            .map(|j| WindowCorr {
                t_s: 0.125 * j as f64,
                corr: noise(2 * max_lag + 1, 40 + j as u64),
                rms: 0.25 + 0.01 * (j % 5) as f32,
                lag_scale: 1.0 + 1e-4 * (j % 3) as f64,
                base_shift: 0.3 * (j % 4) as f64,
                song_db: 0.0,
            })
            .collect();
        Rows::new(&windows, max_lag, threads)
    }

    /// The sum along one line as it was computed before the windows became
    /// the outer loop: line by line, each window in turn.
    fn sum_line_by_line(rows: &Rows, a: f64, b: f64) -> f64 {
        let lags = rows.lags();
        let mut total = 0f64;
        for (j, c) in rows.clipped.iter().enumerate() {
            let x = rows.tau(j, a, b);
            if x < 0.0 || x > (lags - 1) as f64 {
                continue;
            }
            let i = (x.floor() as usize).min(lags - 1);
            let f = (x - i as f64) as f32;
            let next = c.get(i + 1).copied().unwrap_or(c[i]);
            total += f64::from(c[i] * (1.0 - f) + next * f);
        }
        total
    }

    #[test]
    fn sums_along_lines_are_the_line_by_line_sums_on_any_thread_count() {
        // offsets across and beyond the lags, a few slopes (lines leaving the lags)
        let lines: Vec<(f64, f64)> = (-150..=150)
            .flat_map(|k| [-3.0, 0.0, 2.5].map(|b| (k as f64 * 0.93, b)))
            .collect();
        let want: Vec<u64> = lines
            .iter()
            .map(|&(a, b)| sum_line_by_line(&rows(1), a, b).to_bits())
            .collect();
        for threads in [1, 2, 3] {
            let r = rows(threads);
            let got: Vec<u64> = r.sums_on(&lines).iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want, "threads {threads}");
            assert_eq!(r.sum_on(lines[7].0, lines[7].1).to_bits(), want[7]);
        }
    }

    /// The grid search as it was: slope after slope, every window's rows
    /// added into one row of sums.
    fn search_slope_by_slope(rows: &Rows, end_shift: f64, radius: usize) -> Option<(f64, f64)> {
        let radius = radius.min(rows.max_lag.saturating_sub(1)) as i64;
        let parity_rows: Vec<[Vec<f32>; 2]> = rows
            .clipped
            .iter()
            .map(|c| {
                let smoothed: Vec<f32> = (0..c.len())
                    .map(|k| {
                        c[k.saturating_sub(1)..=(k + 1).min(c.len() - 1)]
                            .iter()
                            .sum()
                    })
                    .collect();
                [
                    smoothed.iter().step_by(2).copied().collect(),
                    smoothed.iter().skip(1).step_by(2).copied().collect(),
                ]
            })
            .collect();
        let (steps, step) = ((end_shift / 2.0).ceil() as i64, 2.0 / rows.lever);
        let mut best: Option<(f32, i64, f64)> = None;
        let mut sums = vec![0f32; radius as usize + 1];
        for bi in -steps..=steps {
            let b = bi as f64 * step;
            sums.fill(0.0);
            for (j, r) in parity_rows.iter().enumerate() {
                let first = rows.tau(j, -(radius as f64) * rows.lag_scale[j], b).round() as i64;
                add_parity_row(&mut sums, r, first);
            }
            for (p, &s) in sums.iter().enumerate() {
                if best.is_none_or(|(v, _, _)| s > v) {
                    best = Some((s, 2 * p as i64 - radius, b));
                }
            }
        }
        best.map(|(_, q, b)| (q as f64 * rows.lag_scale[0], b))
    }

    #[test]
    fn the_grid_search_finds_the_slope_by_slope_line_on_any_thread_count() {
        let want = search_slope_by_slope(&rows(1), 30.0, 60);
        assert!(want.is_some());
        for threads in [1, 2, 3] {
            assert_eq!(rows(threads).search(30.0, 60), want, "threads {threads}");
        }
    }
}

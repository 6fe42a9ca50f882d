//! How coherent the windows are on a line: each window's peak on it against
//! the null off it (z, presence per window), and the clipped sum along the
//! line against parallel lines.

use super::{stretch_radius, Coherence, FineParams, LineFit, WindowCorr, WindowObs};

/// What the windows show on and off a line (see [`line_window_coherence`]).
struct WindowStats {
    /// Sum over windows of the on-line peak minus the mean of two off-line ones.
    sum_on: f64,
    /// Sum of the windows' squared rms.
    sum_var: f64,
    heard: usize,
    /// Per window: on-line z, mean of its null probes, rms.
    per_window: Vec<(f64, f64, f64)>,
    window_obs: Vec<WindowObs>,
    /// Every window's null probes, NULL_PROBES per window, in window order.
    probes: Vec<f64>,
    null_mean: f64,
    null_sd: f64,
}

/// Coherence on a line: on-line peak minus the same statistic off the line.
/// Time-stretched playback scatters each window's peak by the WSOLA wobble
/// (several ms), so there the statistic is the largest value within ±5 ms of
/// the line.
pub(super) fn line_window_coherence(
    windows: &[WindowCorr],
    t0: f64,
    params: &FineParams,
    fit: LineFit,
) -> Coherence {
    let mut st = window_stats(windows, t0, params, fit);
    for o in &mut st.window_obs {
        o.presence = (o.z_on_line - st.null_mean) / st.null_sd;
    }
    if std::env::var_os("BEATSYNC_ALIGN_DEBUG").is_some() {
        eprintln!(
            "  null: mean {:.3} sd {:.3} overlap inflation {:.3}",
            st.null_mean,
            st.null_sd,
            overlap_inflation(&st.probes, st.null_mean)
        );
    }
    let z = if params.stretched {
        // on-line maximum minus the mean of the off-line probes, against
        // the null spread; scaled to the resampled statistic's units (its
        // null standard deviation is RESAMPLED_NULL_SD for Gaussian noise)
        let (mut s, mut v) = (0f64, 0f64);
        for &(on, off_mean, rms) in &st.per_window {
            s += (on - off_mean) * rms;
            v += rms * rms;
        }
        // overlapping windows see the same song: neighbours' values
        // are correlated, and a sum over them varies more than the
        // sum of their variances (measured on the null probes)
        let inflation = overlap_inflation(&st.probes, st.null_mean);
        let var = v * st.null_sd * st.null_sd * (1.0 + 1.0 / NULL_PROBES as f64) * inflation;
        if var > 0.0 {
            RESAMPLED_NULL_SD * s / var.sqrt()
        } else {
            0.0
        }
    } else if st.sum_var > 0.0 {
        st.sum_on / (2.0 * st.sum_var).sqrt()
    } else {
        0.0
    };
    Coherence {
        z,
        heard: st.heard,
        windows: st.window_obs,
    }
}

/// Each window's on-line and off-line statistics on `fit`, and the null
/// distribution of the statistic in units of each window's rms
/// (NULL_PROBES positions per window spread over the lag range, away from
/// the line).
fn window_stats(windows: &[WindowCorr], t0: f64, params: &FineParams, fit: LineFit) -> WindowStats {
    let m = params.max_lag;
    let lags = 2 * m + 1;
    let z_radius = stretch_radius(params);
    let mut sum_on = 0f64;
    let mut sum_var = 0f64;
    let mut heard = 0usize;
    let (mut null_sum, mut null_sq, mut null_n) = (0f64, 0f64, 0usize);
    let mut per_window: Vec<(f64, f64, f64)> = Vec::with_capacity(windows.len());
    let mut window_obs = Vec::with_capacity(windows.len());
    let mut probes: Vec<f64> = Vec::with_capacity(windows.len() * NULL_PROBES);
    for w in windows {
        let dev = fit.a + fit.b * (w.t_s - t0);
        let tau = (dev - w.base_shift) / w.lag_scale + m as f64;
        let on = local_max(&w.corr, tau, z_radius);
        let off = 0.5
            * (local_max(&w.corr, tau + m as f64 / 2.0, z_radius)
                + local_max(&w.corr, tau - m as f64 / 2.0, z_radius));
        let mut off_sum = 0f64;
        for j in 0..NULL_PROBES {
            let shift = (j as f64 + 0.5) * lags as f64 / NULL_PROBES as f64;
            let v = f64::from(local_max(&w.corr, tau + shift, z_radius) / w.rms);
            probes.push(v);
            off_sum += v;
            null_sum += v;
            null_sq += v * v;
            null_n += 1;
        }
        let z_on = f64::from(on / w.rms);
        sum_on += f64::from(on - off);
        sum_var += f64::from(w.rms) * f64::from(w.rms);
        if z_on > 4.0 {
            heard += 1;
        }
        per_window.push((z_on, off_sum / NULL_PROBES as f64, f64::from(w.rms)));
        window_obs.push(WindowObs {
            t_s: w.t_s,
            z_on_line: z_on,
            presence: 0.0,
            song_db: w.song_db,
        });
    }
    let null_mean = null_sum / null_n.max(1) as f64;
    let null_sd = (null_sq / null_n.max(1) as f64 - null_mean * null_mean)
        .max(0.0)
        .sqrt()
        .max(1e-6);
    WindowStats {
        sum_on,
        sum_var,
        heard,
        per_window,
        window_obs,
        probes,
        null_mean,
        null_sd,
    }
}

/// Per-window normalised correlations are clipped to this many noise
/// deviations before [`line_coherence`] adds them: a window can vouch for a
/// line, not carry it (another song sharing a drum sample gives a handful of
/// windows far above it, the song itself many windows near or under it).
const LINE_CLIP: f32 = 4.0;
/// Lags either side of the line left out of [`line_coherence`]'s null
/// (beyond the pitch-kept wobble): the direct sound's own reflections.
const LINE_GUARD: i64 = 40;

/// Whole-overlap coherence along a line: `taus[j]` is window `j`'s
/// (fractional) lag index on the line. Each window's correlation, in units
/// of its rms and clipped to ±[`LINE_CLIP`], is read on the line (the
/// largest value within ±`radius` lags when playback is time-stretched) and
/// summed over windows; the same sum along every parallel line displaced by
/// more than [`LINE_GUARD`] + 2 `radius` lags gives the null distribution
/// (median and robust spread), against which the line's sum (the largest
/// within ±1 lag, as for the null) is a z-score. Unlike counting windows
/// with clear peaks, this adds up evidence that no single window shows.
pub(super) fn line_coherence(windows: &[WindowCorr], taus: &[f64], radius: i64) -> f64 {
    let Some(lags) = windows.first().map(|w| w.corr.len() as i64) else {
        return 0.0;
    };
    let guard = LINE_GUARD + 2 * radius + 1;
    if lags < 2 * guard + 16 {
        return 0.0;
    }
    let n = lags as usize;
    let r = radius.max(0) as usize;
    // profile[d]: the sum along the line displaced by d lags (circular)
    let mut profile = vec![0f64; n];
    let mut clipped = vec![0f32; n];
    // the line read from d = -r to n - 1 + r, then the largest within ±r
    let mut line = vec![0f32; n + 2 * r];
    let mut widest = RunningMax::new(n + 2 * r, 2 * r + 1);
    for (w, &tau) in windows.iter().zip(taus) {
        for (c, v) in clipped.iter_mut().zip(&w.corr) {
            *c = (v / w.rms).clamp(-LINE_CLIP, LINE_CLIP);
        }
        let base = tau.floor() as i64;
        let f = (tau - base as f64) as f32;
        // value at fractional lag base + f + d (indices wrap around the lags)
        let mut k = (base - r as i64).rem_euclid(lags) as usize;
        for v in line.iter_mut() {
            let next = if k + 1 == n { 0 } else { k + 1 };
            *v = clipped[k] * (1.0 - f) + clipped[next] * f;
            k = next;
        }
        if r == 0 {
            for (p, &v) in profile.iter_mut().zip(&line) {
                *p += f64::from(v);
            }
        } else {
            for (p, v) in profile.iter_mut().zip(widest.of(&line)) {
                *p += f64::from(v);
            }
        }
    }
    let near = |d: i64| -> f64 {
        (d - 1..=d + 1)
            .map(|k| profile[k.rem_euclid(lags) as usize])
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let on = near(0);
    let mut null: Vec<f64> = (guard..=lags - guard).map(near).collect();
    // middle elements by selection: the values a full sort puts there
    let mid = null.len() / 2;
    let centre = *null.select_nth_unstable_by(mid, f64::total_cmp).1;
    let mut dev: Vec<f64> = null.iter().map(|v| (v - centre).abs()).collect();
    let spread = (1.4826 * *dev.select_nth_unstable_by(mid, f64::total_cmp).1).max(1e-9);
    (on - centre) / spread
}

/// The largest of every `width` consecutive values (van Herk / Gil-Werman:
/// running maxima from each block's start and from its end, so three
/// comparisons a value whatever the width). Each result is the largest of
/// exactly the same values as a direct scan, starting from -inf as the
/// direct scan's fold does, so it is the same number.
pub(super) struct RunningMax {
    width: usize,
    from_start: Vec<f32>,
    to_end: Vec<f32>,
}

impl RunningMax {
    pub(super) fn new(len: usize, width: usize) -> Self {
        Self {
            width: width.max(1),
            from_start: vec![f32::NEG_INFINITY; len],
            to_end: vec![f32::NEG_INFINITY; len],
        }
    }

    /// `out[d]` = the largest of `values[d..d + width]`, for every `d` with
    /// a whole window (`values.len() - width + 1` of them).
    pub(super) fn of<'s>(&'s mut self, values: &[f32]) -> impl Iterator<Item = f32> + 's {
        let (len, w) = (values.len(), self.width);
        debug_assert_eq!(len, self.from_start.len());
        for (block, chunk) in values.chunks(w).enumerate() {
            let start = block * w;
            let mut m = f32::NEG_INFINITY;
            for (i, &v) in chunk.iter().enumerate() {
                m = m.max(v);
                self.from_start[start + i] = m;
            }
            m = f32::NEG_INFINITY;
            for (i, &v) in chunk.iter().enumerate().rev() {
                m = m.max(v);
                self.to_end[start + i] = m;
            }
        }
        let (from_start, to_end) = (&self.from_start, &self.to_end);
        (0..(len + 1).saturating_sub(w)).map(move |d| to_end[d].max(from_start[d + w - 1]))
    }
}

/// Variance of a sum over consecutive windows relative to the sum of their
/// variances, `1 + 2 * (rho_1 + rho_2)` with `rho_k` the correlation of a
/// null probe with the same probe `k` windows later (clamped to 1..3).
fn overlap_inflation(probes: &[f64], mean: f64) -> f64 {
    let n = probes.len() / NULL_PROBES;
    if n < 8 {
        return 1.0;
    }
    let at = |w: usize, j: usize| probes[w * NULL_PROBES + j] - mean;
    let var: f64 =
        probes.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / probes.len() as f64;
    if var <= 0.0 {
        return 1.0;
    }
    let mut rho_sum = 0.0;
    for k in 1..=2 {
        let mut c = 0.0;
        for w in 0..n - k {
            for j in 0..NULL_PROBES {
                c += at(w, j) * at(w + k, j);
            }
        }
        rho_sum += c / ((n - k) * NULL_PROBES) as f64 / var;
    }
    (1.0 + 2.0 * rho_sum).clamp(1.0, 3.0)
}

/// Off-line positions per window that sample the null distribution of the
/// coherence statistic.
const NULL_PROBES: usize = 6;
/// Standard deviation, under Gaussian noise, of the resampled-hypothesis
/// coherence z (largest of 3 lags on the line minus the mean of two such
/// maxima off it, over `sqrt(2)` noise deviations): `sqrt(1.5 * 0.5595 / 2)`.
/// The stretched hypothesis's calibrated z is scaled by it so that both
/// hypotheses' scores share thresholds.
const RESAMPLED_NULL_SD: f64 = 0.648;

/// Largest correlation within `±radius` lags of fractional lag `tau`
/// (wrapping around the lag range, so an "off the line" probe always exists).
fn local_max(corr: &[f32], tau: f64, radius: i64) -> f32 {
    let n = corr.len() as i64;
    let c = tau.round() as i64;
    (c - radius..=c + radius)
        .map(|k| corr[k.rem_euclid(n) as usize])
        .fold(f32::NEG_INFINITY, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_signal::noise;

    /// The direct form of [`line_coherence`] (every value read through a
    /// wrapped index, every maximum by a scan of its 2 r + 1 lags): the fast
    /// form must give the same number, bit for bit.
    fn line_coherence_direct(windows: &[WindowCorr], taus: &[f64], radius: i64) -> f64 {
        let lags = windows[0].corr.len() as i64;
        let guard = LINE_GUARD + 2 * radius + 1;
        if lags < 2 * guard + 16 {
            return 0.0;
        }
        let mut profile = vec![0f64; lags as usize];
        for (w, &tau) in windows.iter().zip(taus) {
            let c: Vec<f32> = w
                .corr
                .iter()
                .map(|v| (v / w.rms).clamp(-LINE_CLIP, LINE_CLIP))
                .collect();
            let base = tau.floor() as i64;
            let f = (tau - base as f64) as f32;
            let at = |k: i64| -> f32 {
                let a = c[k.rem_euclid(lags) as usize];
                let b = c[(k + 1).rem_euclid(lags) as usize];
                a * (1.0 - f) + b * f
            };
            let line: Vec<f32> = (0..lags).map(|d| at(base + d)).collect();
            for (d, p) in profile.iter_mut().enumerate() {
                let d = d as i64;
                let v = (d - radius..=d + radius)
                    .map(|k| line[k.rem_euclid(lags) as usize])
                    .fold(f32::NEG_INFINITY, f32::max);
                *p += f64::from(v);
            }
        }
        let near = |d: i64| -> f64 {
            (d - 1..=d + 1)
                .map(|k| profile[k.rem_euclid(lags) as usize])
                .fold(f64::NEG_INFINITY, f64::max)
        };
        let on = near(0);
        let mut null: Vec<f64> = (guard..=lags - guard).map(near).collect();
        null.sort_by(f64::total_cmp);
        let centre = null[null.len() / 2];
        let mut dev: Vec<f64> = null.iter().map(|v| (v - centre).abs()).collect();
        dev.sort_by(f64::total_cmp);
        (on - centre) / (1.4826 * dev[dev.len() / 2]).max(1e-9)
    }

    fn windows(count: usize, lags: usize, seed: u64) -> Vec<WindowCorr> {
        (0..count)
            .map(|j| {
                let mut corr = noise(lags, seed + j as u64);
                // a peak on the line, some clipped values, a NaN-free rms
                corr[lags / 2] += 3.0;
                corr[j % lags] *= 40.0;
                WindowCorr {
                    t_s: j as f64,
                    rms: 0.3 + 0.01 * (j % 7) as f32,
                    corr,
                    lag_scale: 1.0,
                    base_shift: 0.0,
                    song_db: 0.0,
                }
            })
            .collect()
    }

    #[test]
    fn the_fast_line_coherence_is_the_direct_sum_bit_for_bit() {
        for (lags, radius) in [
            (801, 0),
            (801, 1),
            (801, 40),
            (283, 40),
            (2001, 40),
            (700, 7),
        ] {
            let ws = windows(37, lags, 5 + lags as u64);
            // lags on and off the middle, fractional, beyond both ends (wrapping)
            let taus: Vec<f64> = (0..ws.len())
                .map(|j| {
                    lags as f64 / 2.0
                        + (j as f64 * 0.37).sin() * 3.0
                        + [0.0, -1.3 * lags as f64, 2.2 * lags as f64][j % 3]
                })
                .collect();
            let fast = line_coherence(&ws, &taus, radius);
            let direct = line_coherence_direct(&ws, &taus, radius);
            assert_eq!(
                fast.to_bits(),
                direct.to_bits(),
                "lags {lags} radius {radius}: {fast} vs {direct}"
            );
            assert!(fast.is_finite());
        }
    }

    #[test]
    fn running_max_is_the_largest_of_each_window() {
        let values = noise(97, 3);
        for width in [1, 2, 5, 81, 97] {
            let got: Vec<f32> = RunningMax::new(values.len(), width).of(&values).collect();
            let want: Vec<f32> = values
                .windows(width)
                .map(|w| w.iter().copied().fold(f32::NEG_INFINITY, f32::max))
                .collect();
            assert_eq!(got, want, "width {width}");
        }
    }
}

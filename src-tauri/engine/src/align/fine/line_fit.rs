//! The line fit: each window's own peak near the summed line, measured to
//! a fraction of a lag, and a robust weighted line through those peaks.

use super::{FineParams, SummedLine, WindowCorr};
use crate::dsp::xcorr::parabolic_offset;

/// Per-window peaks near the summed line, for the robust line fit:
/// `(t - t0, song-sample deviation, weight)`.
pub(super) fn window_peaks(
    windows: &[WindowCorr],
    summed: &SummedLine,
    t0: f64,
    params: &FineParams,
) -> Vec<(f64, f64, f64)> {
    let m = params.max_lag;
    let lags = 2 * m + 1;
    let radius: i64 = if params.stretched { 48 } else { 6 };
    let mut obs: Vec<(f64, f64, f64)> = Vec::new();
    for w in windows {
        let pred = summed.a + summed.b * (w.t_s - t0);
        let lo = ((pred.round() as i64) - radius).max(1);
        let hi = ((pred.round() as i64) + radius).min(lags as i64 - 2);
        if lo > hi {
            continue;
        }
        let (mut k_best, mut v_best) = (lo as usize, f32::NEG_INFINITY);
        for k in lo as usize..=hi as usize {
            if w.corr[k] > v_best {
                v_best = w.corr[k];
                k_best = k;
            }
        }
        if w.corr[k_best] < w.corr[k_best - 1] || w.corr[k_best] < w.corr[k_best + 1] {
            continue;
        }
        let z = f64::from(v_best / w.rms);
        if z < 3.0 {
            continue;
        }
        let tau = k_best as f64
            + parabolic_offset(w.corr[k_best - 1], w.corr[k_best], w.corr[k_best + 1]);
        let dev = (tau - m as f64) * w.lag_scale + w.base_shift;
        obs.push((w.t_s - t0, dev, z));
    }
    obs
}

/// Weighted least-squares line `dev = a + b * t` with iterative outlier
/// rejection (3 x MAD, at least 0.75 sample). `None` with fewer than 3 points.
pub(super) fn robust_line_fit(obs: &[(f64, f64, f64)], fit_slope: bool) -> Option<(f64, f64)> {
    let mut keep: Vec<bool> = vec![true; obs.len()];
    let mut fit = None;
    for _ in 0..5 {
        let pts: Vec<&(f64, f64, f64)> = obs
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(o, _)| o)
            .collect();
        if pts.len() < 3 {
            break;
        }
        let sw: f64 = pts.iter().map(|p| p.2).sum();
        let mt = pts.iter().map(|p| p.2 * p.0).sum::<f64>() / sw;
        let md = pts.iter().map(|p| p.2 * p.1).sum::<f64>() / sw;
        let b = if fit_slope {
            let stt: f64 = pts.iter().map(|p| p.2 * (p.0 - mt) * (p.0 - mt)).sum();
            let std: f64 = pts.iter().map(|p| p.2 * (p.0 - mt) * (p.1 - md)).sum();
            if stt > 1e-9 {
                std / stt
            } else {
                0.0
            }
        } else {
            0.0
        };
        let a = md - b * mt;
        fit = Some((a, b));
        let mut res: Vec<f64> = obs.iter().map(|p| (p.1 - a - b * p.0).abs()).collect();
        let mut sorted: Vec<f64> = res
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(r, _)| *r)
            .collect();
        sorted.sort_by(f64::total_cmp);
        let mad = sorted[sorted.len() / 2];
        let thr = (3.0 * 1.4826 * mad).max(0.75);
        let mut changed = false;
        for (k, r) in keep.iter_mut().zip(res.iter_mut()) {
            let new = *r <= thr;
            if new != *k {
                changed = true;
                *k = new;
            }
        }
        if !changed {
            break;
        }
    }
    fit
}

//! `tiebreak`: tells two look-alike song sections apart with the part of the
//! song in which they differ.
//!
//! Two candidate placements A and B of a near-repeat are nearly the same
//! signal: both correlate with the recording almost equally, and the small
//! difference between those two correlations drowns in noise. The evidence
//! that separates them lies only in `A - B`. Here B is fitted to A (common
//! sub-sample delay, one gain per band, in the same whitened inner product
//! that is used for the test), and the residual `D_A = A - fit(B)` is the
//! part of A that B does not explain (and likewise `D_B`). The recording is
//! correlated with `D_A` and `D_B` at the direct-path lag of the common part
//! (found to a fraction of a sample, so the residual's derivative-like
//! leakage of the common signal does not bias the test). The section that
//! was played shows a positive peak on its own residual; the other residual
//! is orthogonal to it by construction.

use realfft::num_complex::Complex;
use realfft::RealFftPlanner;

/// Width of the bands with their own gain in the fit of one section to the other (Hz).
const BAND_HZ: f64 = 500.0;
/// Lowest frequency used (Hz): below it the phone and speaker leave little.
const LO_HZ: f64 = 150.0;
/// Direct-path lag searched around the candidate placement (s, ±).
const LAG_SEARCH_S: f64 = 0.003;
/// Longest excerpt compared (samples, power of two FFT at most twice this).
const MAX_LEN: usize = 1 << 21;

fn smooth(x: &[f64], radius: usize) -> Vec<f64> {
    let mut prefix = vec![0.0; x.len() + 1];
    for (i, v) in x.iter().enumerate() {
        prefix[i + 1] = prefix[i] + v;
    }
    (0..x.len())
        .map(|i| {
            let a = i.saturating_sub(radius);
            let b = (i + radius + 1).min(x.len());
            (prefix[b] - prefix[a]) / (b - a) as f64
        })
        .collect()
}

/// Newton refinement of the lag maximising `Re sum P(f) e^{i w tau}`.
fn peak_lag(p: &[Complex<f64>], w: &[f64], start: f64) -> f64 {
    let mut tau = start;
    for _ in 0..20 {
        let (mut d1, mut d2) = (0.0, 0.0);
        for (pk, wk) in p.iter().zip(w) {
            let e = Complex::from_polar(1.0, wk * tau);
            let v = pk * e;
            d1 += -wk * v.im;
            d2 += -wk * wk * v.re;
        }
        if d2 >= 0.0 {
            break;
        }
        let step = d1 / d2;
        tau -= step.clamp(-0.5, 0.5);
        if step.abs() < 1e-6 {
            break;
        }
    }
    tau
}

/// Evidence (z-score difference) that the recording `r` holds section `a`
/// rather than section `b` (all three the same length, `b` already placed
/// within a few milliseconds of `a`'s alignment with the song). Positive:
/// `a`; negative: `b`. `None` when the excerpt is too short.
pub fn difference_evidence(r: &[f32], a: &[f32], b: &[f32], fs: f64) -> Option<f64> {
    let len = r.len().min(a.len()).min(b.len()).min(MAX_LEN);
    if len < (2.0 * fs) as usize {
        return None;
    }
    let n = (2 * len).next_power_of_two();
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let spec = |x: &[f32]| {
        let mut buf = vec![0.0f64; n];
        for (d, s) in buf.iter_mut().zip(&x[..len]) {
            *d = f64::from(*s);
        }
        let mut out = fwd.make_output_vec();
        fwd.process(&mut buf, &mut out).ok()?;
        Some(out)
    };
    let (rf, af, bf) = (spec(r)?, spec(a)?, spec(b)?);
    let bins = rf.len();
    let hz = |k: usize| k as f64 * fs / n as f64;
    let hi_hz = (0.45 * fs).min(6500.0);
    let w: Vec<f64> = (0..bins)
        .map(|k| 2.0 * std::f64::consts::PI * k as f64 / n as f64)
        .collect();
    let in_band: Vec<bool> = (0..bins).map(|k| hz(k) >= LO_HZ && hz(k) < hi_hz).collect();
    let radius = 32;
    let sr = smooth(&rf.iter().map(|c| c.norm()).collect::<Vec<_>>(), radius);
    let sab = smooth(
        &af.iter()
            .zip(&bf)
            .map(|(x, y)| 0.5 * (x.norm() + y.norm()))
            .collect::<Vec<_>>(),
        radius,
    );
    let floor = 1e-12 * sr.iter().zip(&sab).map(|(x, y)| x * y).fold(0.0, f64::max);
    let weight: Vec<f64> = (0..bins)
        .map(|k| {
            if in_band[k] {
                1.0 / (sr[k] * sab[k] + floor + 1e-30)
            } else {
                0.0
            }
        })
        .collect();
    let band_of = |k: usize| ((hz(k) - LO_HZ) / BAND_HZ).floor().max(0.0) as usize;
    let n_bands = band_of(bins - 1) + 1;
    let max_lag = ((LAG_SEARCH_S * fs).round() as usize).max(2);

    let irfft = |x: &[Complex<f64>]| -> Option<Vec<f64>> {
        let mut s = x.to_vec();
        s[0].im = 0.0;
        if let Some(last) = s.last_mut() {
            last.im = 0.0;
        }
        let mut out = vec![0.0; n];
        inv.process(&mut s, &mut out).ok()?;
        Some(out)
    };
    let lag_of_peak = |p: &[Complex<f64>]| -> Option<f64> {
        let c = irfft(p)?;
        let mut best = (f64::NEG_INFINITY, 0i64);
        for l in -(max_lag as i64)..=(max_lag as i64) {
            let v = c[l.rem_euclid(n as i64) as usize];
            if v > best.0 {
                best = (v, l);
            }
        }
        Some(peak_lag(p, &w, best.1 as f64))
    };
    // residual of x after the best fit of y (delay + per-band gain)
    let residual = |x: &[Complex<f64>], y: &[Complex<f64>]| -> Option<(f64, Vec<Complex<f64>>)> {
        let p: Vec<Complex<f64>> = (0..bins).map(|k| x[k] * y[k].conj() * weight[k]).collect();
        let tau = lag_of_peak(&p)?;
        let ys: Vec<Complex<f64>> = (0..bins)
            .map(|k| y[k] * Complex::from_polar(1.0, -w[k] * tau))
            .collect();
        let mut num = vec![0.0; n_bands];
        let mut den = vec![0.0; n_bands];
        for k in (0..bins).filter(|&k| in_band[k]) {
            num[band_of(k)] += (x[k] * ys[k].conj()).re * weight[k];
            den[band_of(k)] += ys[k].norm_sqr() * weight[k];
        }
        let d = (0..bins)
            .map(|k| {
                if in_band[k] && den[band_of(k)] > 0.0 {
                    x[k] - ys[k] * (num[band_of(k)] / den[band_of(k)])
                } else {
                    Complex::new(0.0, 0.0)
                }
            })
            .collect();
        Some((tau, d))
    };
    let (tau_ab, da) = residual(&af, &bf)?;
    let (_, db) = residual(&bf, &af)?;
    // the common part and the recording's direct-path lag on it
    let cf: Vec<Complex<f64>> = (0..bins)
        .map(|k| 0.5 * (af[k] + bf[k] * Complex::from_polar(1.0, -w[k] * tau_ab)))
        .collect();
    let pc: Vec<Complex<f64>> = (0..bins)
        .map(|k| rf[k] * cf[k].conj() * weight[k])
        .collect();
    let lag = lag_of_peak(&pc)?;
    let z_at_lag = |d: &[Complex<f64>]| -> Option<f64> {
        let p: Vec<Complex<f64>> = (0..bins).map(|k| rf[k] * d[k].conj() * weight[k]).collect();
        let c = irfft(&p)?;
        let (lo, hi) = ((0.05 * fs) as usize, ((2.0 * fs) as usize).min(n / 2 - 1));
        if hi <= lo {
            return None;
        }
        let far: Vec<f64> = c[lo..hi]
            .iter()
            .chain(&c[n - hi..n - lo])
            .copied()
            .collect();
        let sd = (far.iter().map(|v| v * v).sum::<f64>() / far.len() as f64).sqrt();
        // correlation at the fractional lag: Re sum P e^{i w lag}, on the irfft's scale
        let mut v = 0.0;
        for (k, pk) in p.iter().enumerate() {
            let m = if k == 0 || k == bins - 1 { 1.0 } else { 2.0 };
            v += m * (pk * Complex::from_polar(1.0, w[k] * lag)).re;
        }
        (sd > 0.0).then_some(v / sd)
    };
    Some(z_at_lag(&da)? - z_at_lag(&db)?)
}

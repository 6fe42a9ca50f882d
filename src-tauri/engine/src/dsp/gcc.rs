//! `gcc`: GCC-PHAT (generalised cross-correlation with phase transform) of a
//! short recording window against a slightly longer song excerpt.
//!
//! PHAT whitens the cross-spectrum so every frequency band votes equally: the
//! direct sound of the loudspeaker gives one sharp peak even under reverb and
//! strong colouration, which is what millisecond precision needs.

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// The bins `lo..=hi` of a `fft_len`-point spectrum of a signal sampled at
/// `rate_hz` that lie within `band_hz`: above DC, below Nyquist, two at
/// least.
pub(crate) fn band_bins(rate_hz: f64, fft_len: usize, band_hz: (f64, f64)) -> (usize, usize) {
    let bin_hz = rate_hz / fft_len as f64;
    let lo_bin = ((band_hz.0 / bin_hz).ceil() as usize).max(1);
    let hi_bin = ((band_hz.1 / bin_hz).floor() as usize)
        .min(fft_len / 2 - 1)
        .max(lo_bin + 1);
    (lo_bin, hi_bin)
}

pub(crate) struct GccPhat {
    win_len: usize,
    max_lag: usize,
    lo_bin: usize,
    hi_bin: usize,
    taper: Vec<f32>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    buf_a: Vec<f32>,
    buf_b: Vec<f32>,
    spec_a: Vec<Complex<f32>>,
    spec_b: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    scale: f32,
    /// In-band energy of the last segment passed to [`GccPhat::correlate`].
    segment_energy: f64,
}

impl GccPhat {
    /// Windows of `win_len` samples, lags up to `±max_lag`, using only the
    /// band `band_hz` of a signal sampled at `rate_hz`.
    pub fn new(win_len: usize, max_lag: usize, rate_hz: u32, band_hz: (f64, f64)) -> Self {
        let fft_len = (win_len + 2 * max_lag + 1).next_power_of_two();
        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(fft_len);
        let inverse = planner.plan_fft_inverse(fft_len);
        let (lo_bin, hi_bin) = band_bins(f64::from(rate_hz), fft_len, band_hz);
        // Tukey taper (10 % each side) on the recording window: fewer edge artefacts.
        let edge = (win_len / 10).max(1);
        let taper = (0..win_len)
            .map(|i| {
                let d = i.min(win_len - 1 - i);
                if d >= edge {
                    1.0
                } else {
                    (0.5 - 0.5 * (std::f64::consts::PI * d as f64 / edge as f64).cos()) as f32
                }
            })
            .collect();
        let scratch_len = forward.get_scratch_len().max(inverse.get_scratch_len());
        Self {
            win_len,
            max_lag,
            lo_bin,
            hi_bin,
            taper,
            buf_a: forward.make_input_vec(),
            buf_b: forward.make_input_vec(),
            spec_a: forward.make_output_vec(),
            spec_b: forward.make_output_vec(),
            scratch: vec![Complex::new(0.0, 0.0); scratch_len],
            // a perfect match (pure delay) gives 1.0 at its lag
            scale: 1.0 / (2.0 * (hi_bin - lo_bin + 1) as f32),
            segment_energy: 0.0,
            forward,
            inverse,
        }
    }

    /// In-band energy (sum of squared spectrum magnitudes over the band) of
    /// the song excerpt of the last [`GccPhat::correlate`] call: how loud the
    /// song is there, where PHAT itself is blind to level.
    pub fn segment_energy(&self) -> f64 {
        self.segment_energy
    }

    /// Length of the window [`GccPhat::correlate`] expects.
    pub fn window_len(&self) -> usize {
        self.win_len
    }

    /// Length of the song excerpt [`GccPhat::correlate`] expects.
    pub fn segment_len(&self) -> usize {
        self.win_len + 2 * self.max_lag
    }

    /// `out[τ]` (τ in `0..=2*max_lag`) is the PHAT correlation of `window`
    /// with `segment[τ..τ + win_len]`; a window that matches the middle of
    /// the segment peaks at `τ = max_lag`. Returns `false` for silent input.
    pub fn correlate(&mut self, window: &[f32], segment: &[f32], out: &mut Vec<f32>) -> bool {
        out.clear();
        if window.len() != self.win_len || segment.len() != self.segment_len() {
            return false;
        }
        self.buf_a.iter_mut().for_each(|v| *v = 0.0);
        for ((d, &x), &w) in self.buf_a.iter_mut().zip(window).zip(&self.taper) {
            *d = x * w;
        }
        self.buf_b.iter_mut().for_each(|v| *v = 0.0);
        self.buf_b[..segment.len()].copy_from_slice(segment);
        if self
            .forward
            .process_with_scratch(&mut self.buf_a, &mut self.spec_a, &mut self.scratch)
            .is_err()
            || self
                .forward
                .process_with_scratch(&mut self.buf_b, &mut self.spec_b, &mut self.scratch)
                .is_err()
        {
            return false;
        }
        self.segment_energy = self.spec_b[self.lo_bin..=self.hi_bin]
            .iter()
            .map(|c| f64::from(c.norm_sqr()))
            .sum();
        let mut any = false;
        let (lo, hi) = (self.lo_bin, self.hi_bin);
        self.spec_a[..lo].fill(Complex::new(0.0, 0.0));
        self.spec_a[hi + 1..].fill(Complex::new(0.0, 0.0));
        for (a, b) in self.spec_a[lo..=hi].iter_mut().zip(&self.spec_b[lo..=hi]) {
            // sum_n w[n] s[n + τ]  <=>  S * conj(W)
            let cross = b * a.conj();
            // |cross| by a plain square root (the magnitudes of audio spectra
            // are far from f32's limits; `norm` guards them, at 4x the cost)
            let power = cross.norm_sqr();
            if power > 1e-38 {
                *a = cross * (1.0 / power.sqrt());
                any = true;
            } else {
                *a = Complex::new(0.0, 0.0);
            }
        }
        if !any {
            return false;
        }
        if self
            .inverse
            .process_with_scratch(&mut self.spec_a, &mut self.buf_a, &mut self.scratch)
            .is_err()
        {
            return false;
        }
        out.extend(
            self.buf_a[..=2 * self.max_lag]
                .iter()
                .map(|v| v * self.scale),
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::xcorr::parabolic_offset;

    use crate::test_signal::centred_noise32 as noise;

    #[test]
    fn peak_at_known_lag_with_sub_sample_precision() {
        let song = noise(20_000, 3);
        let it = crate::dsp::interp::SincInterpolator::new();
        let mut g = GccPhat::new(2048, 100, 8000, (300.0, 3500.0));
        // the recording window shows the song 37.4 samples later than predicted
        let start = 5000usize;
        let true_lag = 37.4f64;
        let window: Vec<f32> = (0..2048)
            .map(|n| it.at(&song, (start + n) as f64 + true_lag))
            .collect();
        let segment = &song[start - 100..start - 100 + g.segment_len()];
        let mut out = Vec::new();
        assert!(g.correlate(&window, segment, &mut out));
        let (k, v) = out
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, v)| (k, *v))
            .unwrap_or((0, 0.0));
        let lag = k as f64 + parabolic_offset(out[k - 1], out[k], out[k + 1]) - 100.0;
        assert!((lag - true_lag).abs() < 0.15, "lag {lag}");
        assert!(v > 0.5, "peak {v}");
    }
}

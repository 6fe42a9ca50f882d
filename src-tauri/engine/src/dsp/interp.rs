//! `interp`: band-limited reading of a sampled signal at fractional positions
//! (windowed-sinc, tabulated), used to re-time song excerpts by a playback rate.

/// Taps on each side of the interpolation point.
const HALF_TAPS: usize = 8;
/// Tabulated sub-sample phases (time quantisation 1/512 sample).
const PHASES: usize = 512;

pub(crate) struct SincInterpolator {
    /// `(PHASES + 1) * 2 * HALF_TAPS` coefficients; row `p` is for fraction `p / PHASES`.
    table: Vec<f32>,
}

impl Default for SincInterpolator {
    fn default() -> Self {
        Self::new()
    }
}

impl SincInterpolator {
    pub fn new() -> Self {
        let taps = 2 * HALF_TAPS;
        let cutoff = 0.92f64; // relative to Nyquist: a little headroom against aliasing
        let mut table = vec![0f32; (PHASES + 1) * taps];
        for p in 0..=PHASES {
            let frac = p as f64 / PHASES as f64;
            let mut sum = 0.0;
            let row = &mut table[p * taps..(p + 1) * taps];
            for (k, c) in row.iter_mut().enumerate() {
                // tap k reads sample floor(pos) - HALF_TAPS + 1 + k
                let d = frac - (k as f64 - HALF_TAPS as f64 + 1.0);
                let x = d / HALF_TAPS as f64;
                let window = if x.abs() < 1.0 {
                    (1.0 - x * x).powi(2)
                } else {
                    0.0
                };
                let arg = std::f64::consts::PI * cutoff * d;
                let sinc = if arg.abs() < 1e-12 {
                    1.0
                } else {
                    arg.sin() / arg
                };
                let v = cutoff * sinc * window;
                *c = v as f32;
                sum += v;
            }
            // unity gain at DC for every phase
            for c in row.iter_mut() {
                *c = (f64::from(*c) / sum) as f32;
            }
        }
        Self { table }
    }

    /// `x` read at fractional sample position `pos` (zero outside the signal).
    pub fn at(&self, x: &[f32], pos: f64) -> f32 {
        let base = pos.floor();
        let frac = pos - base;
        let phase = ((frac * PHASES as f64).round() as usize).min(PHASES);
        let taps = 2 * HALF_TAPS;
        let coeffs = &self.table[phase * taps..(phase + 1) * taps];
        let first = base as i64 - HALF_TAPS as i64 + 1;
        let n = x.len() as i64;
        if first >= 0 && first + taps as i64 <= n {
            let s = &x[first as usize..first as usize + taps];
            s.iter().zip(coeffs).map(|(a, b)| a * b).sum()
        } else {
            let mut acc = 0f32;
            for (k, c) in coeffs.iter().enumerate() {
                let i = first + k as i64;
                if i >= 0 && i < n {
                    acc += x[i as usize] * c;
                }
            }
            acc
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_a_sine_between_samples() {
        let f = 0.05; // cycles per sample (400 Hz at 8 kHz)
        let x: Vec<f32> = (0..400)
            .map(|n| (2.0 * std::f64::consts::PI * f * n as f64).sin() as f32)
            .collect();
        let it = SincInterpolator::new();
        for &pos in &[100.25, 150.5, 200.75, 250.1] {
            let want = (2.0 * std::f64::consts::PI * f * pos).sin() as f32;
            let got = it.at(&x, pos);
            assert!((got - want).abs() < 0.01, "at {pos}: {got} vs {want}");
        }
        // integer positions are exact samples
        assert!((it.at(&x, 123.0) - x[123]).abs() < 1e-3);
    }
}

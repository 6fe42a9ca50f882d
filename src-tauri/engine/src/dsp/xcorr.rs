//! `xcorr`: normalised cross-correlation of many short sequences against one
//! long sequence, by FFT. The long sequence's spectrum is computed once.

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// Correlates short "needles" against a fixed long "haystack". Cloning is
/// cheap next to building one (the plans and the spectra are shared): one
/// clone per thread.
///
/// Overlap-save: the haystack is cut into blocks of a few needle lengths,
/// each transformed once; a needle is transformed once at the block length
/// and each block gives the correlations of the starts it holds in full.
/// Against a song-long haystack that is about three times less work than
/// one transform pair at the whole length (and stays in cache).
#[derive(Clone)]
pub(crate) struct Correlator {
    /// FFT length of a block.
    block_len: usize,
    /// Needle starts covered by one block (`block_len - max_needle`).
    block_step: usize,
    haystack_len: usize,
    /// Spectrum of each block `haystack[j * block_step..][..block_len]`, zero-padded.
    block_spectra: Arc<Vec<Vec<Complex<f32>>>>,
    /// Prefix sums of the haystack's squares, for the local norm under a needle.
    prefix_sq: Arc<Vec<f64>>,
    /// Floor for that norm (a fraction of the typical norm), so silent stretches
    /// of the haystack cannot produce huge normalised values.
    power_floor: f64,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    buf: Vec<f32>,
    needle_spectrum: Vec<Complex<f32>>,
    spec: Vec<Complex<f32>>,
    scratch_fwd: Vec<Complex<f32>>,
    scratch_inv: Vec<Complex<f32>>,
    max_needle: usize,
    /// `sqrt(max(local energy, floor))` under a needle of each length seen so
    /// far (`(len, per-start values)`): the coarse search uses a dozen lengths
    /// for hundreds of needles, so the square roots are taken once per length.
    local_norms: Vec<(usize, Vec<f64>)>,
}

impl Correlator {
    /// `max_needle` is the longest needle that will be correlated.
    pub fn new(haystack: &[f32], max_needle: usize) -> Self {
        // One block when the haystack is short: then a single transform
        // pair covers everything.
        let whole_len = (haystack.len() + max_needle + 1).next_power_of_two();
        let block_len = (4 * (max_needle + 1)).next_power_of_two().min(whole_len);
        let block_step = block_len - max_needle;
        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(block_len);
        let inverse = planner.plan_fft_inverse(block_len);
        let mut buf = forward.make_input_vec();
        let mut scratch_fwd = forward.make_scratch_vec();
        let n_blocks = haystack.len().div_ceil(block_step).max(1);
        let block_spectra = (0..n_blocks)
            .map(|j| {
                let from = (j * block_step).min(haystack.len());
                let to = (from + block_len).min(haystack.len());
                buf.iter_mut().for_each(|v| *v = 0.0);
                buf[..to - from].copy_from_slice(&haystack[from..to]);
                let mut spectrum = forward.make_output_vec();
                // The lengths come from the plan itself, so this cannot fail.
                let _ = forward.process_with_scratch(&mut buf, &mut spectrum, &mut scratch_fwd);
                spectrum
            })
            .collect();
        let mut prefix_sq = vec![0f64; haystack.len() + 1];
        for (i, &x) in haystack.iter().enumerate() {
            prefix_sq[i + 1] = prefix_sq[i] + f64::from(x) * f64::from(x);
        }
        let mean_power = prefix_sq[haystack.len()] / haystack.len().max(1) as f64;
        let spec = forward.make_output_vec();
        let needle_spectrum = forward.make_output_vec();
        let scratch_inv = inverse.make_scratch_vec();
        Self {
            block_len,
            block_step,
            haystack_len: haystack.len(),
            block_spectra: Arc::new(block_spectra),
            prefix_sq: Arc::new(prefix_sq),
            power_floor: 0.1 * mean_power,
            forward,
            inverse,
            buf,
            needle_spectrum,
            spec,
            scratch_fwd,
            scratch_inv,
            max_needle,
            local_norms: Vec::new(),
        }
    }

    /// Index into `local_norms` of the norms for needles of length `len`.
    fn local_norms_for(&mut self, len: usize) -> usize {
        if let Some(i) = self.local_norms.iter().position(|(l, _)| *l == len) {
            return i;
        }
        let floor = self.power_floor * len as f64;
        let norms = (0..=self.haystack_len - len)
            .map(|s| {
                (self.prefix_sq[s + len] - self.prefix_sq[s])
                    .max(floor)
                    .sqrt()
            })
            .collect();
        self.local_norms.push((len, norms));
        self.local_norms.len() - 1
    }

    /// Normalised correlation `c[s] = <needle, haystack[s..s+len]> / (|needle| |haystack[s..s+len]|)`
    /// for every start `s` in `0..=haystack_len - len` (written into `out`).
    /// The needle should be zero-mean. Returns `false` (and leaves `out` empty)
    /// when the needle is longer than the haystack or all zero.
    pub fn correlate(&mut self, needle: &[f32], out: &mut Vec<f32>) -> bool {
        out.clear();
        let len = needle.len();
        if len == 0 || len > self.haystack_len || len > self.max_needle {
            return false;
        }
        let needle_norm = needle
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if needle_norm <= 0.0 {
            return false;
        }
        self.buf.iter_mut().for_each(|v| *v = 0.0);
        self.buf[..len].copy_from_slice(needle);
        if self
            .forward
            .process_with_scratch(
                &mut self.buf,
                &mut self.needle_spectrum,
                &mut self.scratch_fwd,
            )
            .is_err()
        {
            return false;
        }
        let scale = 1.0 / self.block_len as f64;
        let norms_at = self.local_norms_for(len);
        let norms = &self.local_norms[norms_at].1;
        let starts = self.haystack_len - len + 1;
        out.reserve(starts);
        for block in self.block_spectra.iter() {
            let first = out.len();
            if first >= starts {
                break;
            }
            // corr[s] = sum_u needle[u] * block[s + u]  <=>  B * conj(N);
            // starts below `block_step` read no wrapped-around sample.
            for ((s, b), n) in self.spec.iter_mut().zip(block).zip(&self.needle_spectrum) {
                *s = b * n.conj();
            }
            // The inverse real FFT wants purely real DC / Nyquist bins.
            if let Some(dc) = self.spec.first_mut() {
                dc.im = 0.0;
            }
            if let Some(nyquist) = self.spec.last_mut() {
                nyquist.im = 0.0;
            }
            if self
                .inverse
                .process_with_scratch(&mut self.spec, &mut self.buf, &mut self.scratch_inv)
                .is_err()
            {
                out.clear();
                return false;
            }
            let count = self.block_step.min(starts - first);
            out.extend(
                self.buf[..count]
                    .iter()
                    .zip(&norms[first..first + count])
                    .map(|(&c, &local)| (f64::from(c) * scale / (needle_norm * local)) as f32),
            );
        }
        true
    }
}

/// The `count` highest local maxima of `x`, at least `min_separation` apart,
/// as `(index, value)`, best first.
///
/// Greedy: maxima are taken in decreasing value, skipping those closer than
/// `min_separation` to one already taken, among the best `max(8 * count, 32)`
/// local maxima only (equal values: lower index first).
pub(crate) fn top_peaks(x: &[f32], count: usize, min_separation: usize) -> Vec<(usize, f32)> {
    if count == 0 || x.is_empty() {
        return Vec::new();
    }
    let keep = (count * 8).max(32);
    // The best `keep` maxima, kept sorted best first; once full, a value must
    // beat the worst of them to get in, which almost no sample of a long
    // correlation does, so the scan is one comparison per sample.
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(keep + 1);
    let mut threshold = f32::NEG_INFINITY;
    let n = x.len();
    const BLOCK: usize = 16;
    for block_start in (0..n).step_by(BLOCK) {
        let block = &x[block_start..(block_start + BLOCK).min(n)];
        // branch-free test of a whole block first (vectorised)
        if !block.iter().fold(false, |any, &v| any | (v > threshold)) {
            continue;
        }
        for (j, &v) in block.iter().enumerate() {
            let i = block_start + j;
            if v <= threshold || v.is_nan() {
                continue;
            }
            let left = if i > 0 { x[i - 1] } else { f32::NEG_INFINITY };
            let right = if i + 1 < n {
                x[i + 1]
            } else {
                f32::NEG_INFINITY
            };
            if !(v >= left && v > right) {
                continue;
            }
            if best.len() == keep {
                best.pop();
            }
            let at = best.partition_point(|b| b.1 >= v);
            best.insert(at, (i, v));
            if best.len() == keep {
                threshold = best[keep - 1].1;
            }
        }
    }
    let mut picked: Vec<(usize, f32)> = Vec::with_capacity(count);
    for m in best {
        if picked.len() >= count {
            break;
        }
        if picked.iter().all(|p| p.0.abs_diff(m.0) >= min_separation) {
            picked.push(m);
        }
    }
    picked
}

/// Sub-sample position of a peak from its two neighbours (parabola through
/// three points): returns the offset in `-0.5..=0.5` to add to the centre index.
pub(crate) fn parabolic_offset(left: f32, centre: f32, right: f32) -> f64 {
    let denom = f64::from(left) - 2.0 * f64::from(centre) + f64::from(right);
    if denom >= 0.0 {
        return 0.0;
    }
    (0.5 * (f64::from(left) - f64::from(right)) / denom).clamp(-0.5, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_signal::centred_noise32 as noise;

    #[test]
    fn finds_needle_position() {
        let hay = noise(5000, 7);
        let needle: Vec<f32> = hay[3210..3610].to_vec();
        let mut c = Correlator::new(&hay, 500);
        let mut out = Vec::new();
        assert!(c.correlate(&needle, &mut out));
        let peaks = top_peaks(&out, 3, 10);
        assert_eq!(peaks[0].0, 3210);
        assert!((peaks[0].1 - 1.0).abs() < 0.05, "{}", peaks[0].1);
        assert!(peaks[1].1 < 0.3);
    }

    /// The definition: every local maximum, sorted, the best `keep`, greedy.
    fn top_peaks_by_sorting(x: &[f32], count: usize, sep: usize) -> Vec<(usize, f32)> {
        let mut maxima: Vec<(usize, f32)> = (0..x.len())
            .filter(|&i| {
                let left = if i > 0 { x[i - 1] } else { f32::NEG_INFINITY };
                let right = x.get(i + 1).copied().unwrap_or(f32::NEG_INFINITY);
                x[i] >= left && x[i] > right
            })
            .map(|i| (i, x[i]))
            .collect();
        maxima.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        maxima.truncate((count * 8).max(32));
        let mut picked: Vec<(usize, f32)> = Vec::new();
        for m in maxima {
            if picked.len() < count && picked.iter().all(|p| p.0.abs_diff(m.0) >= sep) {
                picked.push(m);
            }
        }
        picked
    }

    #[test]
    fn top_peaks_matches_full_sort() {
        for (n, seed) in [(1, 1), (2, 2), (7, 3), (100, 4), (5000, 5), (23_000, 6)] {
            let mut x = noise(n, seed);
            // plateaus, repeated values and a clustered region
            for i in (0..n).step_by(13) {
                x[i] = 0.25;
            }
            for (i, v) in x.iter_mut().enumerate().take(300) {
                *v += 1.0 - i as f32 / 300.0;
            }
            for (count, sep) in [(1, 1), (3, 10), (8, 5), (6, 30), (40, 2)] {
                assert_eq!(
                    top_peaks(&x, count, sep),
                    top_peaks_by_sorting(&x, count, sep),
                    "n {n} count {count} sep {sep}"
                );
            }
        }
        assert!(top_peaks(&[], 3, 1).is_empty());
        assert!(top_peaks(&[1.0, 2.0], 0, 1).is_empty());
    }

    /// Every start, across the overlap-save blocks' boundaries.
    #[test]
    fn correlate_matches_direct_sum() {
        let hay = noise(3000, 11);
        let mut c = Correlator::new(&hay, 400);
        assert!(c.block_spectra.len() >= 2, "the test must span blocks");
        let mut out = Vec::new();
        for (len, seed) in [(400, 12), (123, 13), (400, 14), (37, 15)] {
            let mut needle = noise(len, seed);
            let mean = needle.iter().sum::<f32>() / len as f32;
            needle.iter_mut().for_each(|v| *v -= mean);
            assert!(c.correlate(&needle, &mut out));
            assert_eq!(out.len(), hay.len() - len + 1);
            let nn = needle.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
            let mean_power = hay.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 3000.0;
            for s in 0..out.len() {
                let w = &hay[s..s + len];
                let dot: f64 = needle
                    .iter()
                    .zip(w)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                let hh = w.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
                let expect = dot / (nn * hh.max(0.1 * mean_power * len as f64)).sqrt();
                assert!((f64::from(out[s]) - expect).abs() < 1e-4, "len {len} s {s}");
            }
        }
        // a needle longer than announced is refused
        assert!(!c.correlate(&noise(401, 16), &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn parabola_recovers_fraction() {
        // samples of -(x - 0.3)^2 at -1, 0, 1
        let f = |x: f64| -((x - 0.3) * (x - 0.3)) as f32;
        let d = parabolic_offset(f(-1.0), f(0.0), f(1.0));
        assert!((d - 0.3).abs() < 1e-6);
    }
}

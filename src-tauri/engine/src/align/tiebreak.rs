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

use super::fine::Line;
use super::pipeline::Run;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use std::ops::Range;
use std::sync::Arc;

/// Width of the bands with their own gain in the fit of one section to the other (Hz).
const BAND_HZ: f64 = 500.0;
/// Lowest frequency used (Hz): below it the phone and speaker leave little.
const LO_HZ: f64 = 150.0;
/// Direct-path lag searched around the candidate placement (s, ±).
const LAG_SEARCH_S: f64 = 0.003;
/// Longest excerpt compared (samples; the FFT is at most twice this long):
/// callers split longer overlaps (about 30 s at 8 kHz fits).
const MAX_LEN: usize = 1 << 18;

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

/// Calls `f(k, e^{i step k})` for every `k` in `band`. The phasors come by
/// rotation (a complex product per bin instead of a sine and a cosine),
/// restarted from an exact value every [`PHASOR_RUN`] bins so that rounding
/// stays near 1e-13.
fn for_each_phasor(step: f64, band: Range<usize>, mut f: impl FnMut(usize, Complex<f64>)) {
    let rot = Complex::from_polar(1.0, step);
    let mut k = band.start;
    while k < band.end {
        let end = (k + PHASOR_RUN).min(band.end);
        let mut e = Complex::from_polar(1.0, step * k as f64);
        for j in k..end {
            f(j, e);
            e *= rot;
        }
        k = end;
    }
}

/// Runs `a` here and `b` on a second thread (the halves of the test are
/// independent and each is a few transforms of up to 2^19 points).
fn join<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|scope| {
        let other = scope.spawn(b);
        let first = a();
        let second = other
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (first, second)
    })
}

thread_local! {
    static PLANNER: std::cell::RefCell<RealFftPlanner<f64>> =
        std::cell::RefCell::new(RealFftPlanner::new());
}

/// Bins between exact phasors in [`for_each_phasor`].
const PHASOR_RUN: usize = 512;

/// Newton refinement of the lag maximising `Re sum P(f) e^{i w tau}`
/// (`w = 2 pi k / n`; `p` is zero outside `band`).
fn peak_lag(p: &[Complex<f64>], n: usize, band: Range<usize>, start: f64) -> f64 {
    let bin_w = 2.0 * std::f64::consts::PI / n as f64;
    let mut tau = start;
    for _ in 0..20 {
        let (mut d1, mut d2) = (0.0, 0.0);
        for_each_phasor(bin_w * tau, band.clone(), |k, e| {
            let wk = bin_w * k as f64;
            let v = p[k] * e;
            d1 += -wk * v.im;
            d2 += -wk * wk * v.re;
        });
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

/// A spectrum of one excerpt (the real FFT's half spectrum).
type Spectrum = Vec<Complex<f64>>;

/// The transforms of one comparison: the excerpt length used and the
/// forward and inverse plans of the zero-padded length `n`.
struct Transforms {
    len: usize,
    n: usize,
    fwd: Arc<dyn RealToComplex<f64>>,
    inv: Arc<dyn ComplexToReal<f64>>,
}

impl Transforms {
    fn plan(len: usize) -> Transforms {
        let n = (2 * len).next_power_of_two();
        // Planning a transform this long computes its twiddles (a sine and a
        // cosine each): the plans are kept for the next excerpt, which is
        // usually as long.
        let (fwd, inv) = PLANNER.with(|p| {
            let mut p = p.borrow_mut();
            (p.plan_fft_forward(n), p.plan_fft_inverse(n))
        });
        Transforms { len, n, fwd, inv }
    }

    /// The spectrum of the first `len` samples of `x`, zero-padded to `n`.
    fn spectrum(&self, x: &[f32]) -> Option<Spectrum> {
        let mut buf = vec![0.0f64; self.n];
        for (d, s) in buf.iter_mut().zip(&x[..self.len]) {
            *d = f64::from(*s);
        }
        let mut out = self.fwd.make_output_vec();
        self.fwd.process(&mut buf, &mut out).ok()?;
        Some(out)
    }

    /// The circular correlation whose spectrum is `x`.
    fn irfft(&self, x: &[Complex<f64>]) -> Option<Vec<f64>> {
        let mut s = x.to_vec();
        s[0].im = 0.0;
        if let Some(last) = s.last_mut() {
            last.im = 0.0;
        }
        let mut out = vec![0.0; self.n];
        self.inv.process(&mut s, &mut out).ok()?;
        Some(out)
    }
}

/// The analysed band (one run of bins; outside it every weighted product is
/// zero), the whitening weight of each bin and the gain bands of the fit.
struct WeightedBand<'t> {
    t: &'t Transforms,
    fs: f64,
    bins: usize,
    range: Range<usize>,
    weight: Vec<f64>,
    n_bands: usize,
    max_lag: usize,
    bin_w: f64,
}

/// Section `x` less the best fit of section `y` (delay + per-band gain).
struct Residual {
    /// The delay of `y` in that fit (samples).
    tau: f64,
    /// The residual's spectrum (zero outside the band).
    diff: Spectrum,
}

impl<'t> WeightedBand<'t> {
    /// `None` when no bin falls in the band.
    fn new(
        t: &'t Transforms,
        fs: f64,
        rf: &[Complex<f64>],
        af: &[Complex<f64>],
        bf: &[Complex<f64>],
    ) -> Option<Self> {
        let n = t.n;
        let bins = rf.len();
        let hz = |k: usize| k as f64 * fs / n as f64;
        let hi_hz = (0.45 * fs).min(6500.0);
        let bin_w = 2.0 * std::f64::consts::PI / n as f64;
        let in_band = |k: usize| hz(k) >= LO_HZ && hz(k) < hi_hz;
        let range = match ((0..bins).position(in_band), (0..bins).rposition(in_band)) {
            (Some(lo), Some(hi)) => lo..hi + 1,
            _ => return None,
        };
        let radius = 32;
        let norm = |c: &Complex<f64>| c.norm_sqr().sqrt();
        let sr = smooth(&rf.iter().map(norm).collect::<Vec<_>>(), radius);
        let sab = smooth(
            &af.iter()
                .zip(bf)
                .map(|(x, y)| 0.5 * (norm(x) + norm(y)))
                .collect::<Vec<_>>(),
            radius,
        );
        let floor = 1e-12 * sr.iter().zip(&sab).map(|(x, y)| x * y).fold(0.0, f64::max);
        let weight: Vec<f64> = (0..bins)
            .map(|k| {
                if range.contains(&k) {
                    1.0 / (sr[k] * sab[k] + floor + 1e-30)
                } else {
                    0.0
                }
            })
            .collect();
        let mut wb = WeightedBand {
            t,
            fs,
            bins,
            range,
            weight,
            n_bands: 0,
            max_lag: ((LAG_SEARCH_S * fs).round() as usize).max(2),
            bin_w,
        };
        wb.n_bands = wb.band_of(bins - 1) + 1;
        Some(wb)
    }

    fn band_of(&self, k: usize) -> usize {
        let hz = k as f64 * self.fs / self.t.n as f64;
        ((hz - LO_HZ) / BAND_HZ).floor().max(0.0) as usize
    }

    /// The weighted cross-spectrum `x y* w`.
    fn cross(&self, x: &[Complex<f64>], y: &[Complex<f64>]) -> Spectrum {
        (0..self.bins)
            .map(|k| x[k] * y[k].conj() * self.weight[k])
            .collect()
    }

    /// The fractional lag of the correlation peak within `max_lag` of zero.
    fn lag_of_peak(&self, p: &[Complex<f64>]) -> Option<f64> {
        let n = self.t.n;
        let c = self.t.irfft(p)?;
        let mut best = (f64::NEG_INFINITY, 0i64);
        for l in -(self.max_lag as i64)..=(self.max_lag as i64) {
            let v = c[l.rem_euclid(n as i64) as usize];
            if v > best.0 {
                best = (v, l);
            }
        }
        Some(peak_lag(p, n, self.range.clone(), best.1 as f64))
    }

    /// Residual of `x` after the best fit of `y` (delay + per-band gain).
    fn residual(&self, x: &[Complex<f64>], y: &[Complex<f64>]) -> Option<Residual> {
        let band = &self.range;
        let weight = &self.weight;
        let p = self.cross(x, y);
        let tau = self.lag_of_peak(&p)?;
        let mut ys = vec![Complex::new(0.0, 0.0); self.bins];
        for_each_phasor(-self.bin_w * tau, band.clone(), |k, e| ys[k] = y[k] * e);
        let mut num = vec![0.0; self.n_bands];
        let mut den = vec![0.0; self.n_bands];
        for k in band.clone() {
            num[self.band_of(k)] += (x[k] * ys[k].conj()).re * weight[k];
            den[self.band_of(k)] += ys[k].norm_sqr() * weight[k];
        }
        let diff = (0..self.bins)
            .map(|k| {
                if band.contains(&k) && den[self.band_of(k)] > 0.0 {
                    x[k] - ys[k] * (num[self.band_of(k)] / den[self.band_of(k)])
                } else {
                    Complex::new(0.0, 0.0)
                }
            })
            .collect();
        Some(Residual { tau, diff })
    }

    /// The recording's direct-path lag on the common part of `af` and `bf`
    /// (`bf` delayed by `tau_ab`, the fit's delay).
    fn direct_lag(
        &self,
        rf: &[Complex<f64>],
        af: &[Complex<f64>],
        bf: &[Complex<f64>],
        tau_ab: f64,
    ) -> Option<f64> {
        let mut cf = vec![Complex::new(0.0, 0.0); self.bins];
        for_each_phasor(-self.bin_w * tau_ab, self.range.clone(), |k, e| {
            cf[k] = 0.5 * (af[k] + bf[k] * e)
        });
        self.lag_of_peak(&self.cross(rf, &cf))
    }

    /// The z-score of the recording's correlation with residual `d` at
    /// `lag`, against the correlation's spread away from it.
    fn z_at_lag(&self, rf: &[Complex<f64>], d: &[Complex<f64>], lag: f64) -> Option<f64> {
        let (fs, n, bins) = (self.fs, self.t.n, self.bins);
        let p = self.cross(rf, d);
        let c = self.t.irfft(&p)?;
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
        for_each_phasor(self.bin_w * lag, self.range.clone(), |k, e| {
            let m = if k == 0 || k == bins - 1 { 1.0 } else { 2.0 };
            v += m * (p[k] * e).re;
        });
        (sd > 0.0).then_some(v / sd)
    }
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
    let t = Transforms::plan(len);
    let (rf, (af, bf)) = join(|| t.spectrum(r), || (t.spectrum(a), t.spectrum(b)));
    let (rf, af, bf) = (rf?, af?, bf?);
    let wb = WeightedBand::new(&t, fs, &rf, &af, &bf)?;
    let (ra, rb) = join(|| wb.residual(&af, &bf), || wb.residual(&bf, &af));
    let (ra, rb) = (ra?, rb?);
    let lag = wb.direct_lag(&rf, &af, &bf, ra.tau)?;
    let (za, zb) = join(
        || wb.z_at_lag(&rf, &ra.diff, lag),
        || wb.z_at_lag(&rf, &rb.diff, lag),
    );
    Some(za? - zb?)
}

/// Difference-signal evidence between two placements (positive: `a`), over
/// the whole part of the recording that both place inside the song. Only
/// for lines at (nearly) the original speed, read sample for sample.
pub(super) fn section_difference_evidence(run: &Run, a: &Line, b: &Line) -> Option<f64> {
    let (recording, song, fs) = (run.recording, run.song, run.fs);
    let n = recording.len() as f64;
    if (a.rate - 1.0).abs() * n > 0.5 || (b.rate - 1.0).abs() * n > 0.5 {
        return None;
    }
    let start_a = (a.song_at(0.0) * fs).round() as i64;
    let start_b = (b.song_at(0.0) * fs).round() as i64;
    let k0 = 0i64.max(-start_a).max(-start_b);
    let k1 = (recording.len() as i64)
        .min(song.len() as i64 - start_a)
        .min(song.len() as i64 - start_b);
    if k1 <= k0 {
        return None;
    }
    // In blocks of at most ~30 s (memory and time stay flat however long the
    // overlap): each block's evidence is a z-score difference, so the sum
    // over k independent blocks divided by sqrt(k) keeps the same scale.
    let len = (k1 - k0) as usize;
    let max_block = ((TIEBREAK_BLOCK_S * fs) as usize).max(1);
    let blocks = len.div_ceil(max_block);
    let block = len.div_ceil(blocks);
    let (mut sum, mut count) = (0.0, 0usize);
    for i in 0..blocks {
        let lo = k0 as usize + i * block;
        let hi = (lo + block).min(k1 as usize);
        let (oa, ob) = (start_a + lo as i64, start_b + lo as i64);
        let span = hi - lo;
        let r = &recording[lo..hi];
        let sa = &song[oa as usize..oa as usize + span];
        let sb = &song[ob as usize..ob as usize + span];
        if let Some(ev) = crate::align::tiebreak::difference_evidence(r, sa, sb, fs) {
            sum += ev;
            count += 1;
        }
    }
    (count > 0).then(|| sum / (count as f64).sqrt())
}

/// Longest piece of the overlap the tie-break compares at once (s).
const TIEBREAK_BLOCK_S: f64 = 30.0;

#[cfg(test)]
mod tests {
    use super::{difference_evidence, for_each_phasor};
    use realfft::num_complex::Complex;

    use crate::test_signal::Lcg;

    const FS: f64 = 8000.0;

    /// 12 s of loop music: a kick on each beat, noise hats on each eighth, a
    /// chord held throughout (identical in both sections).
    fn common(len: usize) -> Vec<f32> {
        let mut x = vec![0f32; len];
        let mut rng = Lcg(7);
        let hat: Vec<f32> = (0..600).map(|_| rng.next()).collect();
        let beat = 4000;
        for at in (0..len).step_by(beat) {
            for i in 0..3000.min(len - at) {
                let t = i as f32 / FS as f32;
                x[at + i] += 0.6 * (2.0 * std::f32::consts::PI * 65.0 * t).sin() * (-t / 0.1).exp();
            }
        }
        for at in (0..len).step_by(beat / 2) {
            for (i, h) in hat.iter().enumerate().take(len - at) {
                x[at + i] += 0.2 * h * (-(i as f32) / 200.0).exp();
            }
        }
        for (i, v) in x.iter_mut().enumerate() {
            let t = i as f32 / FS as f32;
            for f in [220.0f32, 277.2, 329.6] {
                *v += 0.05 * (2.0 * std::f32::consts::PI * f * t).sin();
            }
        }
        x
    }

    /// A part that differs between the sections: a short melody in bars 2
    /// and 4 (notes drawn from `seed`), well under the rest.
    fn melody(len: usize, seed: u64) -> Vec<f32> {
        let mut x = vec![0f32; len];
        let mut rng = Lcg(seed);
        for bar in [1usize, 3] {
            for note in 0..8 {
                let at = bar * 16000 + note * 2000;
                let f = 400.0 * 2f32.powf(rng.next() + 1.0);
                for i in 0..1800.min(len.saturating_sub(at)) {
                    let t = i as f32 / FS as f32;
                    x[at + i] +=
                        0.06 * (2.0 * std::f32::consts::PI * f * t).sin() * (-t / 0.15).exp();
                }
            }
        }
        x
    }

    /// What a phone hears: a 2 ms delay, one reflection, noise at about 0 dB.
    fn record(x: &[f32], seed: u64) -> Vec<f32> {
        let mut rng = Lcg(seed);
        let d = 16;
        let refl = 90;
        (0..x.len())
            .map(|i| {
                let direct = if i >= d { x[i - d] } else { 0.0 };
                let echo = if i >= d + refl {
                    0.5 * x[i - d - refl]
                } else {
                    0.0
                };
                direct + echo + 0.5 * rng.next()
            })
            .collect()
    }

    #[test]
    fn the_section_that_was_played_wins_on_its_own_part() {
        let len = (12.0 * FS) as usize;
        let base = common(len);
        let a: Vec<f32> = base
            .iter()
            .zip(melody(len, 1))
            .map(|(c, m)| c + m)
            .collect();
        let b: Vec<f32> = base
            .iter()
            .zip(melody(len, 2))
            .map(|(c, m)| c + m)
            .collect();
        let heard_a = record(&a, 11);
        let heard_b = record(&b, 12);
        let ev_a = difference_evidence(&heard_a, &a, &b, FS).expect("long enough");
        let ev_b = difference_evidence(&heard_b, &a, &b, FS).expect("long enough");
        println!("evidence: recording of A {ev_a:.2}, of B {ev_b:.2}");
        assert!(
            ev_a > 3.0,
            "recording of A: evidence {ev_a:.2} should favour A"
        );
        assert!(
            ev_b < -3.0,
            "recording of B: evidence {ev_b:.2} should favour B"
        );
    }

    #[test]
    fn identical_sections_give_no_evidence_either_way() {
        let len = (12.0 * FS) as usize;
        let a = common(len);
        let heard = record(&a, 13);
        let ev = difference_evidence(&heard, &a, &a, FS).unwrap_or(0.0);
        println!("evidence from identical sections {ev:.2}");
        assert!(
            ev.abs() < 3.0,
            "evidence {ev:.2} from two identical sections"
        );
    }

    #[test]
    fn rotated_phasors_match_exact_ones_over_a_long_band() {
        // the longest band a 30 s excerpt at 8 kHz gives (2^19-point
        // transforms), at lags from a fraction of a sample to hundreds
        for lag in [0.37, -23.71, 480.5] {
            let step = 2.0 * std::f64::consts::PI * lag / 524_288.0;
            let mut worst = 0f64;
            let mut seen = 0usize;
            for_each_phasor(step, 3..262_145, |k, e| {
                let exact = Complex::from_polar(1.0, step * k as f64);
                worst = worst.max((e - exact).norm());
                seen += 1;
            });
            assert_eq!(seen, 262_142);
            assert!(worst < 1e-12, "lag {lag}: phasor error {worst:e}");
        }
    }

    #[test]
    fn too_short_gives_none() {
        let a = common((1.0 * FS) as usize);
        assert!(difference_evidence(&a, &a, &a, FS).is_none());
    }
}

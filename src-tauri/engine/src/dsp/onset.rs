//! `onset`: onset-strength envelopes (log-spectral flux) of mono audio.
//!
//! The envelope is what the coarse search correlates: it keeps *when* notes
//! and drums start and forgets timbre, so it survives a phone's band limit,
//! room reverb, AGC and clipping far better than the waveform does.

use realfft::RealFftPlanner;

/// Analysis frame length in samples at 8 kHz (32 ms).
const FRAME_LEN_8K: usize = 256;

/// Onset-strength envelopes at `frame_rate_hz` (frame `i` describes the audio
/// around `i / frame_rate_hz` seconds).
#[derive(Debug, Clone)]
pub(crate) struct OnsetEnvelope {
    pub frame_rate_hz: f64,
    /// Broadband positive log-spectral flux, 100 Hz .. 3.8 kHz.
    pub flux: Vec<f32>,
    /// Flux of the low band only (< 250 Hz: kick drum and bass), for downbeats.
    pub low_flux: Vec<f32>,
    /// Log band energies, `n_bands` per frame (frame-major): the spectral
    /// shape over time, which tells song sections apart where the rhythm
    /// alone (same drums every bar) cannot.
    pub log_bands: Vec<f32>,
    pub n_bands: usize,
}

/// Computes the onset envelopes with a hop of `hop` samples.
///
/// Band energies are log-compressed relative to the signal's own mean level,
/// so the result does not depend on the recording gain.
pub(crate) fn onset_envelope(samples: &[f32], rate_hz: u32, hop: usize) -> OnsetEnvelope {
    onset_envelope_releasing(samples, rate_hz, hop, usize::MAX, &|| {})
}

/// [`onset_envelope`], calling `release` after every `release_frames` frames
/// (the samples read so far need not stay resident: a long recording mapped
/// from a file). The envelopes are the same.
pub(crate) fn onset_envelope_releasing(
    samples: &[f32],
    rate_hz: u32,
    hop: usize,
    release_frames: usize,
    release: &dyn Fn(),
) -> OnsetEnvelope {
    let hop = hop.max(1);
    // Keep the frame about 32 ms whatever the rate (power of two for the FFT).
    let frame_len = (FRAME_LEN_8K * (rate_hz as usize).div_ceil(8000)).next_power_of_two();
    let n_frames = if samples.len() >= hop {
        samples.len() / hop
    } else {
        0
    };
    let frame_rate_hz = f64::from(rate_hz) / hop as f64;
    if n_frames < 2 {
        return OnsetEnvelope {
            frame_rate_hz,
            flux: vec![0.0; n_frames],
            low_flux: vec![0.0; n_frames],
            log_bands: Vec::new(),
            n_bands: 0,
        };
    }
    let bands = log_bands(frame_len, rate_hz);
    let low_band_count = bands
        .iter()
        .filter(|b| b.1 as f64 * f64::from(rate_hz) / frame_len as f64 <= 250.0)
        .count();
    let n_bands = bands.len();
    let mut energy = band_energies(samples, hop, frame_len, &bands, n_frames, &|f: usize| {
        if f > 0 && f.is_multiple_of(release_frames.max(1)) {
            release();
        }
    });
    release();
    log_compress(&mut energy, n_frames, n_bands);
    let flux = positive_flux(&energy, n_frames, n_bands, low_band_count);
    OnsetEnvelope {
        frame_rate_hz,
        flux: flux.all,
        low_flux: flux.low,
        log_bands: energy,
        n_bands,
    }
}

/// Mean power spectrum in each of `bands`, per frame (frame-major, frame `f`
/// centred on sample `f * hop`, Hann-windowed, zero outside the signal).
fn band_energies(
    samples: &[f32],
    hop: usize,
    frame_len: usize,
    bands: &[(usize, usize)],
    n_frames: usize,
    at_frame: &dyn Fn(usize),
) -> Vec<f32> {
    let mut planner = RealFftPlanner::<f32>::new();
    let fft = planner.plan_fft_forward(frame_len);
    let mut input = fft.make_input_vec();
    let mut spectrum = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    let window: Vec<f32> = (0..frame_len)
        .map(|i| {
            (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / frame_len as f64).cos()) as f32
        })
        .collect();
    let n_bands = bands.len();
    let mut energy = vec![0f32; n_frames * n_bands];
    for f in 0..n_frames {
        at_frame(f);
        let centre = f * hop;
        match centre.checked_sub(frame_len / 2) {
            // the whole frame inside the signal (all but the first and last few)
            Some(start) if start + frame_len <= samples.len() => {
                let frame = &samples[start..start + frame_len];
                for ((x, &v), &w) in input.iter_mut().zip(frame).zip(&window) {
                    *x = v * w;
                }
            }
            _ => {
                for (k, x) in input.iter_mut().enumerate() {
                    let idx = (centre + k) as isize - (frame_len / 2) as isize;
                    *x = if idx >= 0 && (idx as usize) < samples.len() {
                        samples[idx as usize] * window[k]
                    } else {
                        0.0
                    };
                }
            }
        }
        if fft
            .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
            .is_err()
        {
            continue;
        }
        for (b, &(lo, hi)) in bands.iter().enumerate() {
            let e: f32 = spectrum[lo..hi].iter().map(|c| c.norm_sqr()).sum();
            energy[f * n_bands + b] = e / (hi - lo) as f32;
        }
    }
    energy
}

/// Log compression (in place) relative to each band's mean energy: a floor
/// 30 dB below the mean keeps silence and dither from producing huge flux.
fn log_compress(energy: &mut [f32], n_frames: usize, n_bands: usize) {
    let mut floor = vec![0f64; n_bands];
    for f in 0..n_frames {
        for b in 0..n_bands {
            floor[b] += f64::from(energy[f * n_bands + b]);
        }
    }
    for v in floor.iter_mut() {
        *v = (*v / n_frames as f64) * 1e-3 + 1e-12;
    }
    for f in 0..n_frames {
        for b in 0..n_bands {
            let e = &mut energy[f * n_bands + b];
            *e = ((f64::from(*e) + floor[b]).ln()) as f32;
        }
    }
}

/// Positive spectral flux, over all bands and over the low ones.
struct Flux {
    all: Vec<f32>,
    low: Vec<f32>,
}

/// The positive flux of the log band energies (`n_frames` frames of
/// `n_bands`, frame-major; the first `low_band_count` bands are the low band).
fn positive_flux(energy: &[f32], n_frames: usize, n_bands: usize, low_band_count: usize) -> Flux {
    let mut flux = vec![0f32; n_frames];
    let mut low_flux = vec![0f32; n_frames];
    for f in 1..n_frames {
        let (mut all, mut low) = (0f32, 0f32);
        for b in 0..n_bands {
            let d = energy[f * n_bands + b] - energy[(f - 1) * n_bands + b];
            if d > 0.0 {
                all += d;
                if b < low_band_count {
                    low += d;
                }
            }
        }
        flux[f] = all;
        low_flux[f] = low;
    }
    Flux {
        all: flux,
        low: low_flux,
    }
}

/// FFT-bin ranges `[lo, hi)` of about 24 log-spaced bands from 100 Hz up to
/// 3.8 kHz (or 95 % of Nyquist), each at least one bin wide.
fn log_bands(frame_len: usize, rate_hz: u32) -> Vec<(usize, usize)> {
    let bin_hz = f64::from(rate_hz) / frame_len as f64;
    let f_lo = 100.0f64;
    let f_hi = (3800.0f64).min(0.95 * f64::from(rate_hz) / 2.0);
    let n = 24;
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut prev = (f_lo / bin_hz).round() as usize;
    for i in 1..=n {
        let f = f_lo * (f_hi / f_lo).powf(i as f64 / n as f64);
        let hi = ((f / bin_hz).round() as usize).max(prev + 1);
        if hi > frame_len / 2 {
            break;
        }
        out.push((prev, hi));
        prev = hi;
    }
    out
}

/// Removes the slowly varying part of an envelope and equalises its local
/// level: subtract a moving mean (`mean_radius` frames), then divide by a
/// moving RMS (`norm_radius` frames). The result is near zero-mean with unit
/// local variance, so a loud chorus, a quiet verse or a stretch of AGC pumping
/// all weigh the same in a correlation. Silent stretches stay at zero.
pub(crate) fn whiten_envelope(env: &[f32], mean_radius: usize, norm_radius: usize) -> Vec<f32> {
    let n = env.len();
    if n == 0 {
        return Vec::new();
    }
    let centred: Vec<f32> = {
        let mean = moving_mean(env, mean_radius);
        env.iter().zip(&mean).map(|(x, m)| x - m).collect()
    };
    let sq: Vec<f32> = centred.iter().map(|x| x * x).collect();
    let local_power = moving_mean(&sq, norm_radius);
    let global_power = sq.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
    // A floor at 1 % of the global power: silence is not blown up into noise.
    let floor = (0.01 * global_power).max(1e-12) as f32;
    centred
        .iter()
        .zip(&local_power)
        .map(|(x, p)| x / (p.max(floor)).sqrt())
        .collect()
}

/// Centred moving average with a radius of `radius` samples (shorter at the ends).
pub(crate) fn moving_mean(x: &[f32], radius: usize) -> Vec<f32> {
    let n = x.len();
    let mut prefix = vec![0f64; n + 1];
    for i in 0..n {
        prefix[i + 1] = prefix[i] + f64::from(x[i]);
    }
    (0..n)
        .map(|i| {
            let a = i.saturating_sub(radius);
            let b = (i + radius + 1).min(n);
            ((prefix[b] - prefix[a]) / (b - a) as f64) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flux_peaks_at_clicks() {
        let rate = 8000;
        let mut x = vec![0f32; rate as usize * 3];
        // a little noise so the log floor is exercised
        for (v, n) in x
            .iter_mut()
            .zip(crate::test_signal::centred_noise32(rate as usize * 3, 1))
        {
            *v = n * 1e-3;
        }
        for k in 0..5 {
            let at = 4000 + k * 4000;
            for i in 0..200 {
                x[at + i] +=
                    (0.5 * (-(i as f32) / 40.0).exp()) * if i % 2 == 0 { 1.0 } else { -1.0 };
            }
        }
        let env = onset_envelope(&x, rate, 80);
        assert!((env.frame_rate_hz - 100.0).abs() < 1e-9);
        for k in 0..5 {
            let frame = (4000 + k * 4000) / 80;
            let local_max = (frame - 3..=frame + 3)
                .map(|f| env.flux[f])
                .fold(0f32, f32::max);
            let between = env.flux[frame + 25];
            assert!(
                local_max > 10.0 * between.max(1e-3),
                "click {k}: {local_max} vs {between}"
            );
        }
    }

    #[test]
    fn whitening_equalises_level() {
        let mut env = vec![0f32; 2000];
        for (i, v) in env.iter_mut().enumerate() {
            let pulse = if i % 50 == 0 { 1.0 } else { 0.0 };
            *v = pulse * if i < 1000 { 3.16 } else { 1.0 }; // 10 dB apart
        }
        let w = whiten_envelope(&env, 25, 150);
        let peak_loud = w[500];
        let peak_quiet = w[1500];
        assert!(
            (peak_loud / peak_quiet - 1.0).abs() < 0.2,
            "{peak_loud} vs {peak_quiet}"
        );
    }
}

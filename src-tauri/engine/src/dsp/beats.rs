//! `beats`: the song's tempo, beat times and downbeats from its onset envelope.
//!
//! Dance music keeps a steady tempo, so one global beat grid (period + phase)
//! fitted to the whole song is both robust and simple: tempo from the
//! envelope's autocorrelation (70–180 BPM), then period and phase refined by
//! a comb over every beat of the song; downbeats are the beat phase (of 4)
//! with the strongest low-frequency (kick / bass) onsets.

use crate::dsp::onset::moving_mean;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BeatGrid {
    pub bpm: f64,
    pub beats_s: Vec<f64>,
    pub downbeats_s: Vec<f64>,
}

/// `None` when the song has no clear periodic pulse.
pub(crate) fn track_beats(flux: &[f32], low_flux: &[f32], frame_rate_hz: f64) -> Option<BeatGrid> {
    let n = flux.len();
    if n < (frame_rate_hz * 4.0) as usize {
        return None;
    }
    let env = positive_detrended(flux, (frame_rate_hz * 0.1) as usize);
    let low = positive_detrended(low_flux, (frame_rate_hz * 0.1) as usize);
    let lag = beat_lag(&env, frame_rate_hz)?;
    let comb = refine_comb(&env, lag);
    let mut beats_frames = Vec::new();
    let mut t = comb.phase;
    while t < n as f64 {
        beats_frames.push(t);
        t += comb.period;
    }
    let down_phase = downbeat_phase(&beats_frames, &low, n);
    let beats_s: Vec<f64> = beats_frames.iter().map(|b| b / frame_rate_hz).collect();
    let downbeats_s = beats_s
        .iter()
        .skip(down_phase)
        .step_by(4)
        .copied()
        .collect();
    Some(BeatGrid {
        bpm: 60.0 * frame_rate_hz / comb.period,
        beats_s,
        downbeats_s,
    })
}

/// The beat period (frames) from the envelope's autocorrelation, 70–180 BPM;
/// `None` for a silent envelope or no clear periodicity.
fn beat_lag(env: &[f32], frame_rate_hz: f64) -> Option<usize> {
    let n = env.len();
    let energy: f64 = env
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        / n as f64;
    if energy <= 0.0 {
        return None;
    }
    let lag_min = (frame_rate_hz * 60.0 / 180.0).floor() as usize;
    let lag_max = ((frame_rate_hz * 60.0 / 70.0).ceil() as usize).min(n / 3);
    if lag_min < 2 || lag_max <= lag_min + 2 {
        return None;
    }
    let autocorr = |lag: usize| -> f64 {
        let m = n - lag;
        env[..m]
            .iter()
            .zip(&env[lag..])
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum::<f64>()
            / (m as f64 * energy)
    };
    let ac: Vec<f64> = (0..=2 * lag_max + 2)
        .map(|l| if l < n { autocorr(l) } else { 0.0 })
        .collect();
    // Periodicity at the beat and at two beats (a bar of 4 is also periodic);
    // a mild preference for ~120 BPM resolves half/double ambiguities.
    let (mut lag, mut best_score) = (0usize, f64::NEG_INFINITY);
    for l in lag_min..=lag_max {
        let bpm = 60.0 * frame_rate_hz / l as f64;
        let prior = (-0.5 * ((bpm / 120.0).log2() / 0.9).powi(2)).exp();
        let s = (ac[l] + 0.5 * ac[2 * l]) * (0.6 + 0.4 * prior);
        if s > best_score {
            (lag, best_score) = (l, s);
        }
    }
    if ac[lag] < 0.05 {
        return None;
    }
    Some(lag)
}

/// A beat grid's period and phase (frames).
struct CombFit {
    period: f64,
    phase: f64,
}

/// Period (within a frame of `lag`) and phase refined by a comb over the
/// whole envelope.
fn refine_comb(env: &[f32], lag: usize) -> CombFit {
    let n = env.len();
    let comb = |period: f64, phase: f64| -> f64 {
        let mut s = 0.0;
        let mut t = phase;
        while t < (n - 1) as f64 {
            let i = t as usize;
            let f = t - i as f64;
            s += f64::from(env[i]) * (1.0 - f) + f64::from(env[i + 1]) * f;
            t += period;
        }
        s
    };
    let mut best = CombFit {
        period: lag as f64,
        phase: 0.0,
    };
    let mut best_score = f64::NEG_INFINITY;
    let mut period = lag as f64 - 1.0;
    while period <= lag as f64 + 1.0 {
        let mut phase = 0.0;
        while phase < period {
            let s = comb(period, phase);
            if s > best_score {
                best = CombFit { period, phase };
                best_score = s;
            }
            phase += 0.5;
        }
        period += 0.02;
    }
    best
}

/// Downbeat phase: which beat of 4 carries the most kick / bass onsets
/// (`low`, read up to frame `n`, the envelope's length).
fn downbeat_phase(beats_frames: &[f64], low: &[f32], n: usize) -> usize {
    let mut phase_strength = [0f64; 4];
    for (k, &b) in beats_frames.iter().enumerate() {
        let i = b.round() as usize;
        let lo = i.saturating_sub(2);
        let hi = (i + 3).min(n);
        let v = low[lo..hi].iter().fold(0f32, |m, &x| m.max(x));
        phase_strength[k % 4] += f64::from(v);
    }
    (0..4)
        .max_by(|&a, &b| phase_strength[a].total_cmp(&phase_strength[b]))
        .unwrap_or(0)
}

fn positive_detrended(x: &[f32], radius: usize) -> Vec<f32> {
    let mean = moving_mean(x, radius.max(1));
    x.iter().zip(&mean).map(|(v, m)| (v - m).max(0.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tempo_phase_and_downbeat() {
        let fr = 100.0;
        let bpm = 123.0;
        let period = fr * 60.0 / bpm;
        let first: f64 = 37.0;
        let n = 6000;
        let mut flux = vec![0.05f32; n];
        let mut low = vec![0.0f32; n];
        let mut k = 0;
        let mut t = first;
        while (t as usize) < n {
            flux[t.round() as usize] += 1.0;
            if k % 4 == 1 {
                low[t.round() as usize] += 1.0; // kick on the 2nd beat of the list
            }
            // off-beat hats
            let h = (t + period / 2.0).round() as usize;
            if h < n {
                flux[h] += 0.4;
            }
            k += 1;
            t += period;
        }
        let g = track_beats(&flux, &low, fr).expect("a clear pulse");
        assert!((g.bpm - bpm).abs() < 0.5, "bpm {}", g.bpm);
        let first_beat_s = first / fr;
        let d = (g.beats_s[0] - first_beat_s).abs();
        assert!(d < 0.02, "first beat {} vs {}", g.beats_s[0], first_beat_s);
        let want_down = (first + period) / fr;
        assert!(
            (g.downbeats_s[0] - want_down).abs() < 0.02,
            "downbeat {}",
            g.downbeats_s[0]
        );
    }

    #[test]
    fn no_pulse_in_flat_envelope() {
        let flux = vec![0.0f32; 3000];
        assert!(track_beats(&flux, &flux, 100.0).is_none());
    }
}

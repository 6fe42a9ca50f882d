//! Talk-like sound, synthesised: a voiced pulse train at a speaking pitch
//! with a falling intonation, shaped by vowel formants that change every
//! syllable, with noisy consonant onsets, grouped into words and phrases
//! with pauses. Not words, but it has speech's spectrum and rhythm, which is
//! what the alignment has to ignore.

use super::rng::Rng;

/// Formant frequencies (Hz) of five vowels.
const VOWELS: [[f64; 3]; 5] = [
    [730.0, 1090.0, 2440.0],
    [270.0, 2290.0, 3010.0],
    [300.0, 870.0, 2240.0],
    [530.0, 1840.0, 2480.0],
    [570.0, 840.0, 2410.0],
];

/// One syllable's sound: `len_s` long, voice at `pitch_hz` (falling by
/// `fall` over the syllable), peak about 1.
pub fn syllable(rng: &mut Rng, sample_rate: u32, len_s: f64, pitch_hz: f64, fall: f64) -> Vec<f32> {
    let sr = f64::from(sample_rate);
    let n = (len_s * sr) as usize;
    let vowel = VOWELS[rng.below(VOWELS.len())];
    let mut formants: Vec<Resonator> = vowel
        .iter()
        .zip([90.0, 110.0, 140.0])
        .map(|(&f, bw)| Resonator::new(f * rng.between(0.92, 1.08), bw, sr))
        .collect();
    let consonant_s = if rng.chance(0.6) {
        rng.between(0.02, 0.05)
    } else {
        0.0
    };
    let mut phase = 0.0f64;
    let mut prev_noise = 0.0f32;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = i as f64 / sr;
        let f0 = pitch_hz * (1.0 - fall * t / len_s) * (1.0 + 0.01 * f64::from(rng.signed()));
        phase += f0 / sr;
        // A glottal-like pulse: a sharp rise once per period, decaying after.
        let frac = phase.fract();
        let pulse = ((1.0 - frac).powi(6) - 1.0 / 7.0) as f32;
        let noise = rng.signed();
        let hiss = noise - prev_noise;
        prev_noise = noise;
        let source = pulse + 0.05 * noise;
        let voiced: f32 = formants
            .iter_mut()
            .zip([1.0f32, 0.6, 0.3])
            .map(|(r, g)| g * r.process(source))
            .sum();
        let attack = (t / 0.02).min(1.0);
        let release = ((len_s - t) / 0.04).clamp(0.0, 1.0);
        let in_consonant = t < consonant_s;
        let s = if in_consonant {
            0.6 * hiss
        } else {
            voiced * (attack * release) as f32
        };
        out.push(s);
    }
    normalise(&mut out);
    out
}

/// `len_s` of continuous talk: phrases of words of syllables, with pauses.
pub fn talk(rng: &mut Rng, sample_rate: u32, len_s: f64, pitch_hz: f64) -> Vec<f32> {
    let sr = f64::from(sample_rate);
    let mut out = vec![0.0f32; (len_s * sr) as usize];
    let mut t = rng.between(0.0, 0.2);
    while t < len_s {
        let words = 2 + rng.below(5);
        for w in 0..words {
            let syllables = 1 + rng.below(3);
            for _ in 0..syllables {
                let dur = rng.between(0.11, 0.26);
                // Pitch falls over a phrase: higher at its start.
                let pitch = pitch_hz * (1.15 - 0.25 * w as f64 / words as f64);
                let fall = rng.between(0.0, 0.15);
                let s = syllable(rng, sample_rate, dur, pitch, fall);
                let gain = rng.between(0.6, 1.0) as f32;
                add_at(&mut out, (t * sr) as usize, &s, gain);
                t += dur + rng.between(0.01, 0.05);
            }
            t += rng.between(0.06, 0.18);
        }
        t += rng.between(0.3, 0.8);
    }
    out
}

pub fn add_at(out: &mut [f32], start: usize, sound: &[f32], gain: f32) {
    for (o, s) in out.iter_mut().skip(start).zip(sound) {
        *o += gain * s;
    }
}

fn normalise(v: &mut [f32]) {
    let peak = v.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    if peak > 0.0 {
        v.iter_mut().for_each(|s| *s /= peak);
    }
}

/// A two-pole resonator (band-pass) at `freq` with bandwidth `bw`.
struct Resonator {
    a1: f32,
    a2: f32,
    gain: f32,
    y1: f32,
    y2: f32,
}

impl Resonator {
    fn new(freq: f64, bw: f64, sr: f64) -> Self {
        let r = (-std::f64::consts::PI * bw / sr).exp();
        Self {
            a1: (2.0 * r * (std::f64::consts::TAU * freq / sr).cos()) as f32,
            a2: (-r * r) as f32,
            gain: (1.0 - r) as f32,
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn process(&mut self, x: f32) -> f32 {
        let y = self.gain * x + self.a1 * self.y1 + self.a2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Energy in a band, by a plain DFT over a few bins (enough for a test).
    fn band_energy(x: &[f32], sr: f64, lo: f64, hi: f64) -> f64 {
        let n = x.len() as f64;
        let mut e = 0.0;
        let mut f = lo;
        while f < hi {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &s) in x.iter().enumerate() {
                let p = std::f64::consts::TAU * f * i as f64 / sr;
                re += f64::from(s) * p.cos();
                im += f64::from(s) * p.sin();
            }
            e += (re * re + im * im) / n;
            f += 25.0;
        }
        e
    }

    #[test]
    fn talk_has_pauses_and_speech_band_energy() {
        let sr = 16_000;
        let v = talk(&mut Rng::new(3), sr, 4.0, 120.0);
        // Pauses: a good share of 20 ms windows are near silent.
        let win = (sr / 50) as usize;
        let rms: Vec<f32> = v
            .chunks(win)
            .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt())
            .collect();
        let loud = rms.iter().fold(0f32, |m, r| m.max(*r));
        let quiet = rms.iter().filter(|r| **r < loud * 0.05).count();
        assert!(
            quiet * 10 > rms.len(),
            "{quiet} quiet windows of {}",
            rms.len()
        );
        assert!(
            quiet * 10 < rms.len() * 7,
            "mostly silent: {quiet} of {}",
            rms.len()
        );
        // Most energy in the voice band (200-3500 Hz), little above 6 kHz.
        let part = &v[..sr as usize];
        let voice = band_energy(part, f64::from(sr), 200.0, 3500.0);
        let high = band_energy(part, f64::from(sr), 6000.0, 7900.0);
        assert!(voice > 5.0 * high, "voice {voice} high {high}");
    }
}

//! The demo song: fifteen bars of drums, bass, chords and a lead line at
//! 100 BPM, synthesised note by note. Chords, bass patterns, drum variations
//! and the melody come from a seeded generator, so no two bars are alike and
//! the alignment has one right answer (not one bar off).

use super::rng::Rng;

pub const SAMPLE_RATE: u32 = 44_100;
pub const BPM: f64 = 100.0;
pub const BEATS_PER_BAR: usize = 4;
pub const BARS: usize = 15;

/// Seconds per beat.
pub fn beat_s() -> f64 {
    60.0 / BPM
}

/// A rendered stereo song and where its beats fall.
pub struct Song {
    pub left: Vec<f32>,
    pub right: Vec<f32>,
    /// Beat times, seconds from the song's start; every fourth is a downbeat.
    pub beats_s: Vec<f64>,
}

impl Song {
    pub fn len(&self) -> usize {
        self.left.len()
    }
}

/// Minor or major triads: root (MIDI note) and whether the third is minor.
const PROGRESSION: [(u8, bool); BARS] = [
    (57, true),  // Am
    (53, false), // F
    (48, false), // C
    (55, false), // G
    (50, true),  // Dm
    (57, true),  // Am
    (53, false), // F
    (52, false), // E
    (57, true),  // Am
    (48, false), // C
    (55, false), // G
    (50, true),  // Dm
    (53, false), // F
    (55, false), // G
    (57, true),  // Am
];

/// A minor pentatonic, from A4 up.
const LEAD_SCALE: [u8; 8] = [69, 72, 74, 76, 79, 81, 84, 86];

/// Bass patterns over a bar's eight eighths: semitones above the root, or rest.
const BASS_PATTERNS: [[Option<i8>; 8]; 4] = [
    [
        Some(0),
        None,
        Some(0),
        Some(12),
        Some(0),
        None,
        Some(7),
        None,
    ],
    [
        Some(0),
        Some(0),
        None,
        Some(7),
        Some(0),
        Some(12),
        None,
        Some(7),
    ],
    [
        Some(0),
        None,
        None,
        Some(0),
        Some(7),
        None,
        Some(10),
        Some(12),
    ],
    [
        Some(-12),
        None,
        Some(0),
        None,
        Some(-12),
        Some(0),
        Some(7),
        Some(0),
    ],
];

fn midi_hz(note: f64) -> f64 {
    440.0 * 2f64.powf((note - 69.0) / 12.0)
}

/// Composes and renders the song.
pub fn compose(seed: u64) -> Song {
    let sr = f64::from(SAMPLE_RATE);
    let eighth = beat_s() / 2.0;
    let bar_s = beat_s() * BEATS_PER_BAR as f64;
    // One more beat so the last chord rings out.
    let total = ((BARS as f64 * bar_s + beat_s()) * sr) as usize;
    let mut mix = Mix::new(total);
    let mut rng = Rng::new(seed);
    for (bar, &(root, minor)) in PROGRESSION.iter().enumerate() {
        let t0 = bar as f64 * bar_s;
        drums(&mut mix, &mut rng, bar, t0);
        let pattern = BASS_PATTERNS[rng.below(BASS_PATTERNS.len())];
        for (i, step) in pattern.iter().enumerate() {
            if let Some(semi) = step {
                let hz = midi_hz(f64::from(root) - 24.0 + f64::from(*semi));
                mix.add(t0 + i as f64 * eighth, &bass(hz, eighth * 0.9), 0.55, 0.0);
            }
        }
        let third = if minor { 3.0 } else { 4.0 };
        for (k, semi) in [0.0, third, 7.0].into_iter().enumerate() {
            let hz = midi_hz(f64::from(root) + semi);
            mix.add(t0, &pad(hz, bar_s), 0.07, [-0.4, 0.0, 0.4][k]);
        }
        if bar >= 1 {
            melody(&mut mix, &mut rng, t0);
        }
    }
    let beats_s = (0..BARS * BEATS_PER_BAR)
        .map(|i| i as f64 * beat_s())
        .collect();
    let (left, right) = mix.normalised(0.89);
    Song {
        left,
        right,
        beats_s,
    }
}

/// Kick on 1 and 3 (plus a varying extra), snare on 2 and 4, eighth hats,
/// a crash every four bars and a snare fill closing bars 4, 8 and 12.
fn drums(mix: &mut Mix, rng: &mut Rng, bar: usize, t0: f64) {
    let eighth = beat_s() / 2.0;
    let fill = bar % 4 == 3 && bar + 1 < BARS;
    for i in 0..8usize {
        let t = t0 + i as f64 * eighth;
        let extra_kick = (i == 3 || i == 5 || i == 7) && rng.chance(0.35);
        if i == 0 || i == 4 || extra_kick {
            mix.add(t, &kick(), if extra_kick { 0.6 } else { 0.9 }, 0.0);
        }
        if fill && i >= 6 {
            continue;
        }
        if i == 2 || i == 6 {
            mix.add(t, &snare(rng), 0.55, 0.1);
        } else if rng.chance(0.12) {
            mix.add(t, &snare(rng), 0.15, 0.1); // a ghost note
        }
        let open = i % 2 == 1 && rng.chance(0.2);
        let accent = if i.is_multiple_of(2) { 0.22 } else { 0.14 };
        mix.add(t, &hat(rng, open), accent, -0.3);
    }
    if fill {
        for k in 0..4 {
            let t = t0 + 6.0 * eighth + k as f64 * eighth / 2.0;
            mix.add(t, &snare(rng), 0.3 + 0.08 * k as f32, 0.1);
        }
    }
    if bar.is_multiple_of(4) {
        mix.add(t0, &crash(rng), 0.25, 0.3);
    }
}

/// A pentatonic line of eighths with rests, moving by small steps.
fn melody(mix: &mut Mix, rng: &mut Rng, t0: f64) {
    let eighth = beat_s() / 2.0;
    let mut degree = 2 + rng.below(3);
    for i in 0..8 {
        if !rng.chance(0.6) {
            continue;
        }
        let step = rng.below(5) as isize - 2;
        degree = (degree as isize + step).clamp(0, LEAD_SCALE.len() as isize - 1) as usize;
        let hz = midi_hz(f64::from(LEAD_SCALE[degree]));
        let len = if rng.chance(0.3) {
            eighth * 2.0
        } else {
            eighth
        };
        mix.add(t0 + i as f64 * eighth, &lead(hz, len), 0.3, 0.25);
    }
}

fn samples(len_s: f64) -> impl Iterator<Item = f64> {
    let sr = f64::from(SAMPLE_RATE);
    (0..(len_s * sr) as usize).map(move |n| n as f64 / sr)
}

fn kick() -> Vec<f32> {
    let sr = f64::from(SAMPLE_RATE);
    let mut phase = 0.0f64;
    samples(0.35)
        .map(|t| {
            phase += std::f64::consts::TAU * (45.0 + 85.0 * (-t * 30.0).exp()) / sr;
            (phase.sin() * (-t * 9.0).exp()) as f32
        })
        .collect()
}

fn snare(rng: &mut Rng) -> Vec<f32> {
    let mut prev = 0.0f32;
    samples(0.22)
        .map(|t| {
            let white = rng.signed();
            let bright = white - prev; // first difference: a high-passed noise
            prev = white;
            let tone = (std::f64::consts::TAU * 185.0 * t).sin() * (-t * 28.0).exp();
            (f64::from(bright) * 0.5 * (-t * 16.0).exp() + tone * 0.45) as f32
        })
        .collect()
}

fn hat(rng: &mut Rng, open: bool) -> Vec<f32> {
    let (len, decay) = if open { (0.25, 12.0) } else { (0.06, 70.0) };
    let mut prev = 0.0f32;
    samples(len)
        .map(|t| {
            let white = rng.signed();
            let bright = white - prev;
            prev = white;
            bright * (-t * decay).exp() as f32
        })
        .collect()
}

fn crash(rng: &mut Rng) -> Vec<f32> {
    let mut prev = 0.0f32;
    samples(1.6)
        .map(|t| {
            let white = rng.signed();
            let bright = white - prev;
            prev = white;
            bright * (-t * 2.5).exp() as f32
        })
        .collect()
}

/// Attack, then exponential decay, ending with a short release to zero.
fn envelope(t: f64, len: f64, attack: f64, decay: f64) -> f64 {
    let rise = (t / attack).min(1.0);
    let fall = ((len - t) / 0.02).clamp(0.0, 1.0);
    rise * fall * (-t * decay).exp()
}

fn bass(hz: f64, len: f64) -> Vec<f32> {
    samples(len)
        .map(|t| {
            let p = std::f64::consts::TAU * hz * t;
            let v = p.sin() + 0.35 * (2.0 * p).sin() + 0.15 * (3.0 * p).sin();
            (v * envelope(t, len, 0.005, 3.0)) as f32
        })
        .collect()
}

fn pad(hz: f64, len: f64) -> Vec<f32> {
    samples(len)
        .map(|t| {
            let p = std::f64::consts::TAU * hz * t;
            let detuned = std::f64::consts::TAU * hz * 1.004 * t;
            let v = p.sin() + detuned.sin() + 0.3 * (2.0 * p).sin();
            let fade_in = (t / 0.12).min(1.0);
            let fade_out = ((len - t) / 0.25).clamp(0.0, 1.0);
            (v * fade_in * fade_out) as f32
        })
        .collect()
}

fn lead(hz: f64, len: f64) -> Vec<f32> {
    samples(len)
        .map(|t| {
            let p = std::f64::consts::TAU * hz * t;
            let v = p.sin() + 0.3 * (3.0 * p).sin() + 0.15 * (5.0 * p).sin();
            (v * envelope(t, len, 0.01, 2.5)) as f32
        })
        .collect()
}

/// A stereo mix that sounds are added into at a time, with a gain and a pan.
struct Mix {
    left: Vec<f32>,
    right: Vec<f32>,
}

impl Mix {
    fn new(len: usize) -> Self {
        Self {
            left: vec![0.0; len],
            right: vec![0.0; len],
        }
    }

    /// `pan` from -1 (left) to 1 (right), constant power.
    fn add(&mut self, at_s: f64, sound: &[f32], gain: f32, pan: f32) {
        let start = (at_s * f64::from(SAMPLE_RATE)).round() as usize;
        let angle = (pan + 1.0) * std::f32::consts::FRAC_PI_4;
        let (gl, gr) = (gain * angle.cos(), gain * angle.sin());
        let end = (start + sound.len()).min(self.left.len());
        for (i, s) in (start..end).zip(sound) {
            self.left[i] += gl * s;
            self.right[i] += gr * s;
        }
    }

    fn normalised(self, peak: f32) -> (Vec<f32>, Vec<f32>) {
        let max = self
            .left
            .iter()
            .chain(&self.right)
            .fold(0.0f32, |m, v| m.max(v.abs()));
        let g = if max > 0.0 { peak / max } else { 1.0 };
        let scale = |v: Vec<f32>| v.into_iter().map(|s| s * g).collect();
        (scale(self.left), scale(self.right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_song_is_fifteen_bars_at_100_bpm_and_never_clips() {
        let song = compose(7);
        let len_s = song.len() as f64 / f64::from(SAMPLE_RATE);
        assert!((len_s - (36.0 + 0.6)).abs() < 0.01, "{len_s}");
        assert_eq!(song.beats_s.len(), 60);
        assert!((song.beats_s[4] - 2.4).abs() < 1e-9);
        let peak = song
            .left
            .iter()
            .chain(&song.right)
            .fold(0f32, |m, v| m.max(v.abs()));
        assert!((peak - 0.89).abs() < 1e-3, "peak {peak}");
    }

    #[test]
    fn no_two_bars_are_alike() {
        let song = compose(7);
        let bar = (2.4 * f64::from(SAMPLE_RATE)) as usize;
        for a in 0..BARS {
            for b in a + 1..BARS {
                let (x, y) = (&song.left[a * bar..][..bar], &song.left[b * bar..][..bar]);
                let dot: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
                let nx: f32 = x.iter().map(|p| p * p).sum();
                let ny: f32 = y.iter().map(|q| q * q).sum();
                let similarity = dot / (nx * ny).sqrt();
                assert!(similarity < 0.9, "bars {a} and {b}: {similarity}");
            }
        }
    }
}

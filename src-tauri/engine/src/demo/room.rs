//! The class recording's sound, as a phone in a studio hears it: the song
//! from small speakers (no deep bass, dull top) with the room's echo, the
//! teacher talking before, over and after the music and counting in, the
//! dancers' steps, room noise, and the phone's clipping.

use super::rng::Rng;
use super::song::{beat_s, Song, SAMPLE_RATE};
use super::voice::{add_at, syllable, talk};

/// Where the song sits in the recording.
#[derive(Debug, Clone, Copy)]
pub struct Take {
    /// Recording sample at which the song's first sample is heard.
    pub offset_samples: usize,
    /// How much of the song plays before the teacher stops it.
    pub play_s: f64,
    /// The recording's length.
    pub total_s: f64,
}

impl Take {
    pub fn offset_s(&self) -> f64 {
        self.offset_samples as f64 / f64::from(SAMPLE_RATE)
    }

    /// Recording time at which the music stops.
    pub fn music_end_s(&self) -> f64 {
        self.offset_s() + self.play_s
    }
}

/// The recording (mono, at the song's sample rate).
pub fn record(song: &Song, take: &Take, rng: &mut Rng) -> Vec<f32> {
    let sr = f64::from(SAMPLE_RATE);
    let total = (take.total_s * sr) as usize;
    let mut rec = vec![0.0f32; total];
    let music = speaker(song, take.play_s);
    add_at(&mut rec, take.offset_samples, &music, 0.9);
    room_echo(&mut rec);
    voices(&mut rec, take, rng);
    steps(&mut rec, song, take, rng);
    let mut colour = 0.0f32;
    for s in rec.iter_mut() {
        // Room noise: white noise through a gentle low-pass (a rumble-hiss mix).
        colour = 0.97 * colour + 0.03 * rng.signed();
        *s += 0.05 * colour + 0.004 * rng.signed();
        // The phone's limiter clips the loud parts.
        *s = (1.6 * *s).tanh() / 1.6f32.tanh();
    }
    rec
}

/// The song's mono mix through small speakers: played for `play_s`, then
/// faded out over 0.4 s; low end below ~150 Hz and top above ~5 kHz weakened.
fn speaker(song: &Song, play_s: f64) -> Vec<f32> {
    let sr = f64::from(SAMPLE_RATE);
    let n = ((play_s * sr) as usize).min(song.len());
    let fade = (0.4 * sr) as usize;
    let hp = one_pole(150.0, sr);
    let lp = one_pole(5000.0, sr);
    let (mut low, mut top1, mut top2) = (0.0f32, 0.0f32, 0.0f32);
    (0..n)
        .map(|i| {
            let x = 0.5 * (song.left[i] + song.right[i]);
            low += hp * (x - low);
            let no_bass = x - low;
            top1 += lp * (no_bass - top1);
            top2 += lp * (top1 - top2);
            let left = n - i;
            top2 * if left < fade {
                left as f32 / fade as f32
            } else {
                1.0
            }
        })
        .collect()
}

/// The coefficient of a one-pole low-pass with corner `hz`.
fn one_pole(hz: f64, sr: f64) -> f32 {
    (1.0 - (-std::f64::consts::TAU * hz / sr).exp()) as f32
}

/// Early reflections off the walls and mirror, then a decaying tail.
fn room_echo(rec: &mut [f32]) {
    let sr = f64::from(SAMPLE_RATE);
    let dry = rec.to_vec();
    for (delay_s, gain) in [(0.011, 0.45f32), (0.023, 0.32), (0.037, 0.22)] {
        let d = (delay_s * sr) as usize;
        for i in d..rec.len() {
            rec[i] += gain * dry[i - d];
        }
    }
    let d = (0.061 * sr) as usize;
    for i in d..rec.len() {
        let fed = 0.42 * rec[i - d];
        rec[i] += fed;
    }
}

/// The teacher: talking before the music, counting in "5, 6, 7, 8" on the
/// beats of the second bar, a few words over the music, talking after it.
fn voices(rec: &mut [f32], take: &Take, rng: &mut Rng) {
    let sr = f64::from(SAMPLE_RATE);
    let pitch = 125.0;
    let spans = [
        (0.3, take.offset_s() - 0.4, 0.45f32),
        (take.offset_s() + 11.5, take.offset_s() + 14.0, 0.4),
        (take.offset_s() + 21.0, take.offset_s() + 22.5, 0.4),
        (take.music_end_s() + 0.5, take.total_s - 0.3, 0.45),
    ];
    for (from, to, gain) in spans {
        if to > from + 0.3 {
            let v = talk(rng, SAMPLE_RATE, to - from, pitch);
            add_at(rec, (from * sr) as usize, &v, gain);
        }
    }
    for k in 0..4 {
        let at = take.offset_s() + (4 + k) as f64 * beat_s();
        let v = syllable(rng, SAMPLE_RATE, 0.28, pitch * 1.3, 0.2);
        add_at(rec, (at * sr) as usize, &v, 0.5);
    }
}

/// Dancers' steps near the beats while the music plays: low thumps a little
/// off the beat, some beats without.
fn steps(rec: &mut [f32], song: &Song, take: &Take, rng: &mut Rng) {
    let sr = f64::from(SAMPLE_RATE);
    let thump: Vec<f32> = (0..(0.12 * sr) as usize)
        .map(|i| {
            let t = i as f64 / sr;
            ((std::f64::consts::TAU * 70.0 * t).sin() * (-t * 30.0).exp()) as f32
        })
        .collect();
    for &b in song.beats_s.iter().filter(|&&b| b > 2.4 && b < take.play_s) {
        if rng.chance(0.6) {
            let at = take.offset_s() + b + rng.between(-0.04, 0.04);
            add_at(
                rec,
                (at * sr) as usize,
                &thump,
                rng.between(0.1, 0.25) as f32,
            );
        }
    }
}

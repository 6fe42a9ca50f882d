//! Slow audition: the preview's mix at 0.5x or 0.75x with the pitch kept, to
//! check a fast hit. The mix (recording and song, as `player` mixes them) is
//! rendered from the play's start for at most [`SLOW_SPAN_S`] of recording
//! and stretched once by the engine's time stretcher; the player then reads
//! it at recording time, its clock advancing `speed` seconds of recording per
//! second heard, so the playhead and the picture follow the slow sound.

use crate::error::IpcError;
use crate::player::{gains, gains_at, mix_at, song_time, PREVIEW_RATE};
use beatsync_engine::{Placement, Play};

/// The speeds the audition offers, slowest first (1: normal, no stretching).
pub const SPEEDS: [f64; 3] = [0.5, 0.75, 1.0];

/// Longest stretch of recording a slow play covers (heard over 60-120 s).
pub const SLOW_SPAN_S: f64 = 60.0;

/// A speed the page sent, checked against [`SPEEDS`].
pub fn check_speed(speed: f64) -> Result<f64, IpcError> {
    SPEEDS
        .iter()
        .copied()
        .find(|s| (s - speed).abs() < 1e-9)
        .ok_or_else(|| {
            IpcError::invalid_argument(format!("speed is {speed}; it must be 0.5, 0.75 or 1"))
        })
}

/// The mix from `from_s` on, slowed to `speed` with the pitch kept.
pub struct SlowMix {
    pub speed: f64,
    from_s: f64,
    samples: Vec<f32>,
}

impl SlowMix {
    /// Renders and stretches the mix of `recording` and `song` (mono at
    /// [`PREVIEW_RATE`]) from `from_s` for up to [`SLOW_SPAN_S`], the song
    /// placed per play and the room between plays at `room` (see
    /// `player::gains_at`), as the normal-speed preview plays them.
    pub fn render(
        recording: &[f32],
        song: &[f32],
        (placement, plays, room): (&Placement, &[Play], f32),
        (from_s, balance, speed): (f64, f64, f64),
    ) -> Result<Self, IpcError> {
        let rate = f64::from(PREVIEW_RATE);
        let end_s = (recording.len() as f64 / rate).min(from_s + SLOW_SPAN_S);
        let g = gains(balance);
        let n = ((end_s - from_s).max(0.0) * rate) as usize;
        let mix: Vec<f32> = (0..n)
            .map(|i| {
                let t = from_s + i as f64 / rate;
                let song_t = song_time(placement, plays, t);
                mix_at(recording, song, song_t, t, gains_at(g, plays, song_t, room))
            })
            .collect();
        let samples = beatsync_engine::slow::slowed(&mix, PREVIEW_RATE, speed)?;
        Ok(Self {
            speed,
            from_s,
            samples,
        })
    }

    /// Recording time where the slow mix ends.
    pub fn end_s(&self) -> f64 {
        self.from_s + self.samples.len() as f64 * self.speed / f64::from(PREVIEW_RATE)
    }

    /// The sample heard when the playhead is at recording time `t`.
    pub fn at(&self, t: f64) -> f32 {
        let i = (t - self.from_s) / self.speed * f64::from(PREVIEW_RATE);
        if i < 0.0 {
            return 0.0;
        }
        let i0 = i.floor() as usize;
        match (self.samples.get(i0), self.samples.get(i0 + 1)) {
            (Some(a), Some(b)) => a + (b - a) * (i - i0 as f64) as f32,
            (Some(a), None) => *a,
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_offered_speeds_are_taken() {
        assert_eq!(check_speed(0.5).ok(), Some(0.5));
        assert_eq!(check_speed(0.75).ok(), Some(0.75));
        assert_eq!(check_speed(1.0).ok(), Some(1.0));
        for bad in [0.0, 0.6, 2.0, -0.5, f64::NAN] {
            assert!(check_speed(bad).is_err(), "{bad}");
        }
    }

    /// A click in the song is heard where the playhead shows it: at half
    /// speed, recording time t is reached after 2 (t - from) s of listening.
    #[test]
    fn the_slow_mix_is_read_at_recording_time() {
        let rate = f64::from(PREVIEW_RATE);
        let recording = vec![0.0f32; PREVIEW_RATE as usize * 6];
        // A 440 Hz burst 2.0-2.2 s into the song, which starts 1 s into the recording.
        let song: Vec<f32> = (0..PREVIEW_RATE as usize * 5)
            .map(|i| {
                let t = i as f64 / rate;
                if (2.0..2.2).contains(&t) {
                    (0.5 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as f32
                } else {
                    0.0
                }
            })
            .collect();
        let p = Placement::new(1.0, 1.0);
        let slow =
            SlowMix::render(&recording, &song, (&p, &[], 0.0), (0.5, 1.0, 0.5)).expect("render");
        assert!((slow.end_s() - 6.0).abs() < 0.1, "{}", slow.end_s());
        let loud = |t0: f64, t1: f64| {
            let n = 200;
            (0..n)
                .map(|k| slow.at(t0 + (t1 - t0) * k as f64 / n as f64).abs())
                .fold(0.0f32, f32::max)
        };
        // The burst is at recording 3.0-3.2 s.
        assert!(loud(3.05, 3.15) > 0.1, "{}", loud(3.05, 3.15));
        assert!(loud(2.0, 2.8) < 0.05, "{}", loud(2.0, 2.8));
        assert!(loud(3.5, 5.0) < 0.05, "{}", loud(3.5, 5.0));
    }
}

//! `timeline`: how the song's clock maps onto the recording's.
//!
//! All export and preview code speaks of two clocks: *recording time* (seconds on
//! the recording's audio clock, sample 0 = its first decoded audio sample, the
//! aligner's convention) and *song time* (seconds into the clean song).
//! [`Placement`] is the one map between them.

use crate::error::{EngineError, Result};
use serde::{Deserialize, Serialize};

/// How the song sits in the recording:
/// `recording_time = ref + rate * (song_time - (ref - offset_s))`, i.e. at recording
/// time `ref` the offset is exactly `offset_s` (`recording_time = song_time +
/// offset_s`), and around it one second of song lasts `rate` seconds of
/// recording. The aligner reports `offset_s` at the middle of the part where
/// the song is heard; that is `ref_dance_s`. With `rate == 1` the reference
/// does not matter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub offset_s: f64,
    #[serde(default = "one")]
    pub rate: f64,
    /// Recording time where `offset_s` holds exactly; `None`: the middle of the
    /// recording (export resolves it before use).
    #[serde(default)]
    pub ref_dance_s: Option<f64>,
}

fn one() -> f64 {
    1.0
}

impl Placement {
    pub fn new(offset_s: f64, rate: f64) -> Self {
        Self {
            offset_s,
            rate,
            ref_dance_s: None,
        }
    }
    fn reference(&self) -> f64 {
        self.ref_dance_s.unwrap_or(0.0)
    }
    /// Song time heard at `recording_s`.
    pub fn song_at(&self, recording_s: f64) -> f64 {
        let r = self.reference();
        (r - self.offset_s) + (recording_s - r) / self.rate
    }
    /// Recording time at which song time `song_s` is heard.
    pub fn dance_at(&self, song_s: f64) -> f64 {
        let r = self.reference();
        r + self.rate * (song_s - (r - self.offset_s))
    }
    pub fn validate(&self) -> Result<()> {
        if !self.offset_s.is_finite() || !self.ref_dance_s.is_none_or(f64::is_finite) {
            return Err(EngineError::InvalidRequest(
                "the offset must be a finite number of seconds".into(),
            ));
        }
        if !(self.rate.is_finite() && (0.5..=2.0).contains(&self.rate)) {
            return Err(EngineError::InvalidRequest(format!(
                "rate {} is outside 0.5..2 (1 = same speed)",
                self.rate
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_round_trips() {
        let p = Placement {
            offset_s: 12.5,
            rate: 1.02,
            ref_dance_s: Some(40.0),
        };
        assert!((p.song_at(40.0) - 27.5).abs() < 1e-12);
        for t in [0.0, 17.0, 250.0] {
            assert!((p.dance_at(p.song_at(t)) - t).abs() < 1e-9);
        }
    }
}

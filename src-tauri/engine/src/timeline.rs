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

/// Most plays one recording may be exported with (a class of a few hours
/// with a play every few minutes stays far below it).
pub const MAX_PLAYS: usize = 200;

/// One play of the song in the recording, as the export places it: the
/// recording span it covers and where the song sits inside that span. The
/// aligner's `segments` give one per play; the teacher may nudge a play's
/// offset or leave a play out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Play {
    /// Start of the play in the recording (s). The JSON keys are the
    /// aligner's (`dance_start_s`, `dance_end_s`).
    #[serde(rename = "dance_start_s")]
    pub recording_start_s: f64,
    #[serde(rename = "dance_end_s")]
    pub recording_end_s: f64,
    /// `recording_time = song_time + offset_s` at the play's middle.
    pub offset_s: f64,
    /// Recording seconds per song second (the recording's clock).
    #[serde(default = "one")]
    pub rate: f64,
    /// The play starts straight after the previous one (a cut), not after a stop.
    #[serde(default)]
    pub cut_before: bool,
}

impl Play {
    /// Where the song goes inside this play.
    pub fn placement(&self) -> Placement {
        Placement {
            offset_s: self.offset_s,
            rate: self.rate,
            ref_dance_s: Some(0.5 * (self.recording_start_s + self.recording_end_s)),
        }
    }

    pub fn duration_s(&self) -> f64 {
        self.recording_end_s - self.recording_start_s
    }
}

impl From<&crate::align::Segment> for Play {
    fn from(s: &crate::align::Segment) -> Self {
        Self {
            recording_start_s: s.dance_start_s,
            recording_end_s: s.dance_end_s,
            offset_s: s.offset_s,
            rate: s.rate,
            cut_before: s.cut_before,
        }
    }
}

/// Checks a list of plays where it enters (CLI, IPC, store): each play a
/// finite, non-empty span with a valid placement, in recording order, not
/// overlapping (a cut may share its edge with the previous play).
pub fn validate_plays(plays: &[Play]) -> Result<()> {
    if plays.len() > MAX_PLAYS {
        return Err(EngineError::InvalidRequest(format!(
            "{} plays: at most {MAX_PLAYS} can be exported from one recording",
            plays.len()
        )));
    }
    let mut previous_end = f64::NEG_INFINITY;
    for (i, play) in plays.iter().enumerate() {
        let n = i + 1;
        play.placement().validate()?;
        let (start, end) = (play.recording_start_s, play.recording_end_s);
        if !(start.is_finite() && end.is_finite() && start >= 0.0 && end > start) {
            return Err(EngineError::InvalidRequest(format!(
                "play {n}: its span {start}..{end} s is not a stretch of the recording"
            )));
        }
        if start < previous_end - PLAY_EDGE_SLACK_S {
            return Err(EngineError::InvalidRequest(format!(
                "play {n} starts at {start:.3} s, before the previous play ends \
                 ({previous_end:.3} s): plays must be in order and not overlap"
            )));
        }
        previous_end = end;
    }
    Ok(())
}

/// How far a play may start before the previous one ends: the aligner's
/// edges at a cut are each located to within a few audio frames.
const PLAY_EDGE_SLACK_S: f64 = 0.05;

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

    fn play(start: f64, end: f64, offset_s: f64) -> Play {
        Play {
            recording_start_s: start,
            recording_end_s: end,
            offset_s,
            rate: 1.0,
            cut_before: false,
        }
    }

    #[test]
    fn plays_are_checked_where_they_enter() {
        assert!(validate_plays(&[]).is_ok());
        assert!(validate_plays(&[play(0.0, 10.0, 1.0), play(10.0, 20.0, -5.0)]).is_ok());
        for bad in [
            vec![play(5.0, 5.0, 0.0)],
            vec![play(-1.0, 5.0, 0.0)],
            vec![play(0.0, f64::NAN, 0.0)],
            vec![play(0.0, 5.0, f64::INFINITY)],
            vec![play(10.0, 20.0, 0.0), play(0.0, 5.0, 0.0)],
            vec![play(0.0, 10.0, 0.0), play(9.0, 20.0, 0.0)],
            vec![play(0.0, 1.0, 0.0); MAX_PLAYS + 1],
        ] {
            assert!(validate_plays(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_play_places_the_song_at_its_middle() {
        let p = Play {
            rate: 1.001,
            ..play(100.0, 160.0, 30.0)
        };
        let placement = p.placement();
        assert!((placement.song_at(130.0) - 100.0).abs() < 1e-12);
        let json = serde_json::to_value(p).expect("json");
        assert_eq!(json["dance_start_s"], 100.0);
        let back: Play = serde_json::from_value(json).expect("back");
        assert_eq!(back, p);
    }
}

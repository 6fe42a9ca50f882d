//! `trim`: where the exported video starts and ends, each end with the reason
//! shown to the user: [`decide_trim`], the pure decision from the facts that
//! the detectors ([`super::detect`]) and the placement give.
//!
//! All times here are *recording time* (seconds on the recording's audio clock,
//! sample 0 = first decoded audio sample, the convention of `align`) unless a
//! name says otherwise.

use crate::error::{EngineError, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartReason {
    /// The song was already playing when the recording started.
    RecordingStart,
    /// The song starts being heard here (minus the requested lead-in); the
    /// talk and waiting before it are dropped.
    SongStart,
    /// The user moved the start.
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The recording stops while the song still plays.
    RecordingEnd,
    /// The song (including its fade into silence) ends before the recording.
    SongEnd,
    /// From here to the end the picture is black (phone face down).
    BlackPicture,
    /// The user moved the end.
    User,
}

/// The facts the trim decision is made from (recording time, seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrimFacts {
    /// First and last instant of picture in the recording.
    pub recording_start_s: f64,
    pub recording_end_s: f64,
    /// Where the song starts / stops being heard in the recording (may lie
    /// outside the recording).
    pub song_heard_start_s: f64,
    pub song_heard_end_s: f64,
    /// Start of a final stretch of black picture, if any.
    pub black_from_s: Option<f64>,
    /// Seconds kept before the song starts (talk, counting in).
    pub lead_in_s: f64,
    /// The user's own start and end, overriding the automatic ones (kept
    /// inside the recording).
    pub user_start_s: Option<f64>,
    pub user_end_s: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrimDecision {
    pub start_s: f64,
    pub end_s: f64,
    pub start_reason: StartReason,
    pub end_reason: EndReason,
}

/// Differences below this are "the same moment" for choosing a reason: the
/// song heard 50 ms after the recording starts was already playing.
const SAME_MOMENT_S: f64 = 0.1;
/// Shortest export that makes sense.
pub const MIN_EXPORT_S: f64 = 1.0;

/// The pure trim decision: start where the song starts being heard (or at the
/// recording's start if it was already playing), keeping `lead_in_s` before
/// it; end at the earliest of the recording's end, the song's end, and a final
/// black stretch.
pub fn decide_trim(f: &TrimFacts) -> Result<TrimDecision> {
    let heard_start = f.song_heard_start_s.max(f.recording_start_s);
    let (start_s, start_reason) = if heard_start - f.recording_start_s <= SAME_MOMENT_S {
        (f.recording_start_s, StartReason::RecordingStart)
    } else {
        let s = (heard_start - f.lead_in_s.max(0.0)).max(f.recording_start_s);
        if s - f.recording_start_s <= 1e-6 {
            (f.recording_start_s, StartReason::RecordingStart)
        } else {
            (s, StartReason::SongStart)
        }
    };
    let mut end_s = f.recording_end_s;
    let mut end_reason = EndReason::RecordingEnd;
    if f.song_heard_end_s < end_s - SAME_MOMENT_S {
        end_s = f.song_heard_end_s;
        end_reason = EndReason::SongEnd;
    }
    if let Some(black) = f.black_from_s {
        // A black tail that would swallow (almost) everything is ignored: the
        // user then sees the whole part rather than nothing.
        if black < end_s && black >= start_s + MIN_EXPORT_S {
            end_s = black;
            end_reason = EndReason::BlackPicture;
        }
    }
    let (mut start_s, mut start_reason) = (start_s, start_reason);
    if let Some(u) = f.user_start_s {
        start_s = u.clamp(f.recording_start_s, f.recording_end_s);
        start_reason = StartReason::User;
    }
    if let Some(u) = f.user_end_s {
        end_s = u.clamp(f.recording_start_s, f.recording_end_s);
        end_reason = EndReason::User;
    }
    if end_s - start_s < MIN_EXPORT_S {
        return Err(EngineError::NothingToExport {
            reason: format!(
                "with this offset the song is heard for only {:.2} s of the recording (from {:.2} s to {:.2} s); check the offset",
                (end_s - start_s).max(0.0),
                start_s,
                end_s
            ),
        });
    }
    Ok(TrimDecision {
        start_s,
        end_s,
        start_reason,
        end_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> TrimFacts {
        TrimFacts {
            user_start_s: None,
            user_end_s: None,
            recording_start_s: 0.0,
            recording_end_s: 100.0,
            song_heard_start_s: 10.0,
            song_heard_end_s: 200.0,
            black_from_s: None,
            lead_in_s: 0.0,
        }
    }

    #[test]
    fn the_users_trim_wins_and_stays_inside_the_recording() {
        let d = decide_trim(&TrimFacts {
            user_start_s: Some(4.5),
            user_end_s: Some(60.0),
            black_from_s: Some(80.0),
            ..facts()
        })
        .unwrap();
        assert_eq!((d.start_s, d.start_reason), (4.5, StartReason::User));
        assert_eq!((d.end_s, d.end_reason), (60.0, EndReason::User));
        let d = decide_trim(&TrimFacts {
            user_start_s: Some(-3.0),
            user_end_s: Some(500.0),
            ..facts()
        })
        .unwrap();
        assert_eq!((d.start_s, d.end_s), (0.0, 100.0));
        // Only the end moved: the start stays automatic.
        let d = decide_trim(&TrimFacts {
            user_end_s: Some(50.0),
            ..facts()
        })
        .unwrap();
        assert_eq!(
            (d.start_s, d.start_reason, d.end_reason),
            (10.0, StartReason::SongStart, EndReason::User)
        );
        assert!(
            decide_trim(&TrimFacts {
                user_start_s: Some(30.0),
                user_end_s: Some(30.1),
                ..facts()
            })
            .is_err(),
            "too short"
        );
    }

    #[test]
    fn pre_roll_is_dropped_and_lead_in_kept() {
        let d = decide_trim(&facts()).unwrap();
        assert_eq!((d.start_s, d.start_reason), (10.0, StartReason::SongStart));
        assert_eq!((d.end_s, d.end_reason), (100.0, EndReason::RecordingEnd));
        let d = decide_trim(&TrimFacts {
            lead_in_s: 3.0,
            ..facts()
        })
        .unwrap();
        assert_eq!(d.start_s, 7.0);
        let d = decide_trim(&TrimFacts {
            lead_in_s: 30.0,
            ..facts()
        })
        .unwrap();
        assert_eq!(
            (d.start_s, d.start_reason),
            (0.0, StartReason::RecordingStart)
        );
    }

    #[test]
    fn song_already_playing_starts_at_recording_start() {
        let d = decide_trim(&TrimFacts {
            song_heard_start_s: -40.0,
            ..facts()
        })
        .unwrap();
        assert_eq!(
            (d.start_s, d.start_reason),
            (0.0, StartReason::RecordingStart)
        );
    }

    #[test]
    fn earliest_end_wins() {
        let d = decide_trim(&TrimFacts {
            song_heard_end_s: 80.0,
            ..facts()
        })
        .unwrap();
        assert_eq!((d.end_s, d.end_reason), (80.0, EndReason::SongEnd));
        let d = decide_trim(&TrimFacts {
            song_heard_end_s: 80.0,
            black_from_s: Some(60.0),
            ..facts()
        })
        .unwrap();
        assert_eq!((d.end_s, d.end_reason), (60.0, EndReason::BlackPicture));
        let d = decide_trim(&TrimFacts {
            song_heard_end_s: 80.0,
            black_from_s: Some(90.0),
            ..facts()
        })
        .unwrap();
        assert_eq!(d.end_reason, EndReason::SongEnd);
    }

    #[test]
    fn song_not_heard_is_an_error() {
        let e = decide_trim(&TrimFacts {
            song_heard_start_s: 150.0,
            ..facts()
        })
        .unwrap_err();
        assert_eq!(e.code(), "nothing_to_export");
    }
}

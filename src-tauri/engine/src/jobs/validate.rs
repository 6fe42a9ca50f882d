//! The one place numbers from outside (the CLI, the app's IPC, the store's
//! API) are checked: finite and within what the engine can use, or refused
//! with `invalid_argument` and a message that names the value, what is
//! allowed and what to do.

use super::model::JobOptions;
use crate::error::EngineError;
use crate::timeline::{validate_plays, Play};

/// Longest recording the engine accepts a time inside (seconds): one day.
pub const MAX_TIME_S: f64 = 86_400.0;
/// Longest lead-in kept before the song starts (seconds).
pub const MAX_LEAD_IN_S: f64 = 600.0;
/// Recording seconds per song second: what `Placement` accepts.
pub const RATE_RANGE: (f64, f64) = (0.5, 2.0);

/// `value` when it is a finite number within `min..=max`; otherwise an
/// `invalid_argument` error naming `name`.
pub fn finite_in(name: &'static str, value: f64, min: f64, max: f64) -> Result<f64, EngineError> {
    if value.is_finite() && (min..=max).contains(&value) {
        return Ok(value);
    }
    let what = if value.is_nan() {
        "not a number".to_string()
    } else if value.is_infinite() {
        "infinite".to_string()
    } else {
        format!("{value}")
    };
    Err(EngineError::InvalidArgument(format!(
        "{name} is {what}; it must be a number from {min} to {max}; change it and try again"
    )))
}

/// Checks every number of a job's options (and that a trim ends after it starts).
pub fn check_options(options: &JobOptions) -> Result<(), EngineError> {
    finite_in("the lead-in (s)", options.lead_in_s, 0.0, MAX_LEAD_IN_S)?;
    if let Some(o) = options.offset_s {
        finite_in("the offset (s)", o, -MAX_TIME_S, MAX_TIME_S)?;
    }
    if let Some(r) = options.rate {
        finite_in("the rate", r, RATE_RANGE.0, RATE_RANGE.1)?;
    }
    let start = options
        .trim_start_s
        .map(|s| finite_in("the trim start (s)", s, 0.0, MAX_TIME_S))
        .transpose()?;
    let end = options
        .trim_end_s
        .map(|s| finite_in("the trim end (s)", s, 0.0, MAX_TIME_S))
        .transpose()?;
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            return Err(EngineError::InvalidArgument(format!(
                "the trim ends at {e} s, not after its start at {s} s; move the end after the start"
            )));
        }
    }
    if let Some(plays) = &options.plays {
        check_plays(plays)?;
    }
    check_plays(&options.plays_left_out)?;
    Ok(())
}

/// Each play's numbers within range, and the list in order without overlaps.
fn check_plays(plays: &[Play]) -> Result<(), EngineError> {
    for p in plays {
        finite_in("a play's start (s)", p.recording_start_s, 0.0, MAX_TIME_S)?;
        finite_in("a play's end (s)", p.recording_end_s, 0.0, MAX_TIME_S)?;
        finite_in("a play's offset (s)", p.offset_s, -MAX_TIME_S, MAX_TIME_S)?;
        finite_in("a play's rate", p.rate, RATE_RANGE.0, RATE_RANGE.1)?;
    }
    validate_plays(plays).map_err(|e| match e {
        EngineError::InvalidRequest(m) => EngineError::InvalidArgument(m),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn refuses_non_finite_negative_and_absurd_numbers() {
        assert_eq!(finite_in("x", 1.5, 0.0, 2.0).ok(), Some(1.5));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.1, 2.1, 1e300] {
            let e = finite_in("the lead-in (s)", bad, 0.0, 2.0).expect_err("refused");
            assert_eq!(e.error_code(), ErrorCode::InvalidArgument);
            let m = e.to_string();
            assert!(
                m.contains("the lead-in (s)") && m.contains("from 0 to 2"),
                "{m}"
            );
        }
        let nan = finite_in("the rate", f64::NAN, 0.5, 2.0).expect_err("nan");
        assert!(nan.to_string().contains("not a number"), "{nan}");
    }

    #[test]
    fn options_are_checked_field_by_field() {
        assert!(check_options(&JobOptions::default()).is_ok());
        let ok = JobOptions {
            lead_in_s: 2.0,
            offset_s: Some(-3.5),
            rate: Some(1.001),
            trim_start_s: Some(1.0),
            trim_end_s: Some(90.0),
            ..Default::default()
        };
        assert!(check_options(&ok).is_ok());
        let play = |start: f64, end: f64| Play {
            recording_start_s: start,
            recording_end_s: end,
            offset_s: 1.0,
            rate: 1.0,
            cut_before: false,
        };
        let two_plays = JobOptions {
            plays: Some(vec![play(0.0, 30.0), play(40.0, 70.0)]),
            ..ok.clone()
        };
        assert!(check_options(&two_plays).is_ok());
        let cases: Vec<(&str, JobOptions)> = vec![
            (
                "play",
                JobOptions {
                    plays: Some(vec![play(40.0, 70.0), play(0.0, 30.0)]),
                    ..ok.clone()
                },
            ),
            (
                "play's end",
                JobOptions {
                    plays: Some(vec![play(0.0, f64::NAN)]),
                    ..ok.clone()
                },
            ),
            (
                "lead-in",
                JobOptions {
                    lead_in_s: f64::INFINITY,
                    ..ok.clone()
                },
            ),
            (
                "lead-in",
                JobOptions {
                    lead_in_s: -1.0,
                    ..ok.clone()
                },
            ),
            (
                "offset",
                JobOptions {
                    offset_s: Some(f64::NAN),
                    ..ok.clone()
                },
            ),
            (
                "offset",
                JobOptions {
                    offset_s: Some(1e9),
                    ..ok.clone()
                },
            ),
            (
                "rate",
                JobOptions {
                    rate: Some(0.0),
                    ..ok.clone()
                },
            ),
            (
                "rate",
                JobOptions {
                    rate: Some(f64::INFINITY),
                    ..ok.clone()
                },
            ),
            (
                "trim start",
                JobOptions {
                    trim_start_s: Some(-5.0),
                    ..ok.clone()
                },
            ),
            (
                "trim end",
                JobOptions {
                    trim_end_s: Some(f64::NAN),
                    ..ok.clone()
                },
            ),
            (
                "trim ends",
                JobOptions {
                    trim_end_s: Some(0.5),
                    ..ok.clone()
                },
            ),
        ];
        for (name, o) in cases {
            let e = check_options(&o).expect_err(name);
            assert_eq!(e.error_code(), ErrorCode::InvalidArgument, "{name}");
            assert!(e.to_string().contains(name), "{name}: {e}");
        }
    }
}

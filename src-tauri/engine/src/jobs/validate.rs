//! The one place numbers given by a user (CLI, IPC, a stored job) are
//! checked: finite and within what the engine can use. Anything else is
//! refused with `invalid_argument`, naming the value, what is allowed and
//! what to do.

use crate::error::EngineError;
use crate::jobs::JobOptions;

/// `value` if it is a finite number in `min..=max`; otherwise an
/// `invalid_argument` error that names it.
pub fn finite_in(name: &'static str, value: f64, min: f64, max: f64) -> Result<f64, EngineError> {
    if value.is_finite() && (min..=max).contains(&value) {
        return Ok(value);
    }
    Err(EngineError::InvalidArgument(format!(
        "{name} is {value}; it must be a number from {min} to {max}; enter a value in that range"
    )))
}

/// Every number in a job's options: the lead-in, the user's placement and trim.
pub fn check_options(options: &JobOptions) -> Result<(), EngineError> {
    finite_in("lead_in_s", options.lead_in_s, 0.0, 60.0)?;
    if let Some(o) = options.offset_s {
        finite_in("offset_s", o, -86_400.0, 86_400.0)?;
    }
    if let Some(r) = options.rate {
        finite_in("rate", r, 0.5, 2.0)?;
    }
    if let Some(s) = options.trim_start_s {
        finite_in("trim_start_s", s, 0.0, 86_400.0)?;
    }
    if let Some(e) = options.trim_end_s {
        finite_in("trim_end_s", e, 0.0, 86_400.0)?;
    }
    if let (Some(s), Some(e)) = (options.trim_start_s, options.trim_end_s) {
        if e <= s {
            return Err(EngineError::InvalidArgument(format!(
                "the trim ends at {e} s, before its start at {s} s; the end must come after the start"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn only_finite_numbers_in_range_pass() {
        assert_eq!(finite_in("x", 1.5, 0.0, 2.0).ok(), Some(1.5));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.1, 2.1] {
            let e = finite_in("x", bad, 0.0, 2.0).expect_err("refused");
            assert_eq!(e.error_code(), ErrorCode::InvalidArgument, "{bad}");
            assert!(e.to_string().starts_with("x is "), "{e}");
        }
    }

    #[test]
    fn options_with_a_bad_number_are_refused() {
        assert!(check_options(&JobOptions::default()).is_ok());
        let cases = [
            JobOptions {
                lead_in_s: f64::INFINITY,
                ..Default::default()
            },
            JobOptions {
                rate: Some(f64::NAN),
                ..Default::default()
            },
            JobOptions {
                offset_s: Some(f64::NEG_INFINITY),
                ..Default::default()
            },
            JobOptions {
                trim_start_s: Some(-1.0),
                ..Default::default()
            },
            JobOptions {
                trim_start_s: Some(5.0),
                trim_end_s: Some(2.0),
                ..Default::default()
            },
        ];
        for o in cases {
            let e = check_options(&o).expect_err("refused");
            assert_eq!(e.error_code(), ErrorCode::InvalidArgument, "{o:?}");
        }
    }
}

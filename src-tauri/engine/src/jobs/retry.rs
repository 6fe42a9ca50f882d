//! Which failures are worth retrying, and when.

use std::time::Duration;

/// Transient failures may succeed on a later try: the disk was full, the
/// output folder was briefly unavailable (USB disk, network share), an I/O
/// call was interrupted, the work stalled, or the app stopped mid-job.
/// Everything else (bad input, `no_match`, unsupported codec…) fails at once.
pub fn is_transient(code: &str) -> bool {
    matches!(
        code,
        "disk_full" | "output_dir" | "output_write" | "interrupted" | "stalled" | "io"
    )
}

/// Backoff before try `attempt + 1` after `attempt` tries failed (1-based):
/// 2 s, 10 s, then 60 s for every later try.
pub fn backoff(attempt: u32, steps: &[Duration]) -> Duration {
    let i = (attempt.max(1) - 1) as usize;
    steps
        .get(i)
        .or(steps.last())
        .copied()
        .unwrap_or(Duration::from_secs(2))
}

/// Wait before trying a store operation again after `failures` failed in a
/// row (busy, full, I/O): 20 ms doubling up to 2 s, so a store that comes
/// back is used again at once and one that stays away is not hammered.
pub fn store_backoff(failures: u32) -> Duration {
    Duration::from_millis(10u64 << failures.clamp(1, 8)).min(Duration::from_secs(2))
}

pub const DEFAULT_BACKOFF: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(60),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_errors() {
        for c in ["disk_full", "output_dir", "stalled", "interrupted"] {
            assert!(is_transient(c), "{c}");
        }
        for c in [
            "no_match",
            "not_media",
            "no_audio",
            "unsupported",
            "input_changed",
            "too_short",
            "cancelled",
        ] {
            assert!(!is_transient(c), "{c}");
        }
    }

    #[test]
    fn backoff_grows_then_stays() {
        let s = DEFAULT_BACKOFF;
        assert_eq!(backoff(1, &s), Duration::from_secs(2));
        assert_eq!(backoff(2, &s), Duration::from_secs(10));
        assert_eq!(backoff(3, &s), Duration::from_secs(60));
        assert_eq!(backoff(9, &s), Duration::from_secs(60));
        assert_eq!(backoff(0, &s), Duration::from_secs(2));
        assert_eq!(store_backoff(1), Duration::from_millis(20));
        assert_eq!(store_backoff(3), Duration::from_millis(80));
        assert_eq!(store_backoff(40), Duration::from_secs(2));
    }
}

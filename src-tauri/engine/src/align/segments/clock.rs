//! The recording's clock as its plays measure it.
//!
//! The plays are scanned and confirmed at the rate of today's answer. Where
//! that answer is weak (unsure, or placed by the spectral shape alone) its
//! rate can be parts per thousand off the recording's clock: plays-real
//! 2468 rpl004 at 0.99902 (977 ppm off), 5555 rpl009 at 1.00286 (3013 ppm).
//! The plays' own lines still measure it: a line fitted by the integration
//! or by a stretch's own alignment carries its own rate, and there the
//! plays agreed with the truth within 6 ppm. A segment's offset is read
//! at its middle, so such a rate moved its two ends by up to 70 ms.

use super::Play;

/// Plays whose clock differs from the scan's rate by more than this
/// (fraction) give the segments their clock. The lines a play's fine stage
/// fits at the scan's rate move it by a few ppm; a 60-s play at this much
/// off is 3 ms off at its ends.
const CLOCK_TOLERANCE: f64 = 1e-4;

/// The clock shared by the segments of `plays`, scanned at `scan_rate`:
/// the median of the plays' line rates, each weighted by its coherence
/// and its length, where it differs from `scan_rate` by more than
/// [`CLOCK_TOLERANCE`]; `scan_rate` otherwise.
pub(super) fn shared_rate(plays: &[Play], scan_rate: f64) -> f64 {
    let mut rated: Vec<(f64, f64)> = plays
        .iter()
        .filter(|p| p.z.is_finite() && p.z > 0.0 && p.line.rate.is_finite())
        .map(|p| (p.line.rate, p.z * (p.end_s - p.start_s).max(0.0)))
        .collect();
    rated.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = 0.5 * rated.iter().map(|r| r.1).sum::<f64>();
    let mut below = 0.0;
    let median = rated.iter().find(|r| {
        below += r.1;
        below >= half && half > 0.0
    });
    match median {
        Some(&(rate, _)) if (rate - scan_rate).abs() > CLOCK_TOLERANCE * scan_rate => rate,
        _ => scan_rate,
    }
}

#[cfg(test)]
mod tests {
    use super::shared_rate;
    use crate::align::fine::Line;
    use crate::align::segments::Play;

    fn play(rate: f64, z: f64, start_s: f64, end_s: f64) -> Play {
        Play {
            line: Line {
                t_ref: 0.5 * (start_s + end_s),
                sigma: 10.0,
                rate,
            },
            start_s,
            end_s,
            z,
            cut_before: false,
            on_main: false,
            in_doubt: false,
            summed_lag_margin: None,
        }
    }

    #[test]
    fn the_plays_clock_replaces_a_scan_rate_parts_per_thousand_off() {
        // plays-real 5555 rpl009 as measured: three plays' own lines at the
        // recording's clock, one confirmed at the scan's rate
        let plays = [
            play(0.999_845_2, 58.2, 0.1, 46.5),
            play(1.002_858_3, 10.7, 59.6, 75.7),
            play(0.999_845_0, 42.1, 91.0, 112.3),
            play(0.999_845_5, 34.1, 127.9, 147.7),
        ];
        assert_eq!(shared_rate(&plays, 1.002_858_3), 0.999_845_2);
    }

    #[test]
    fn a_scan_rate_the_plays_agree_with_stays() {
        let plays = [
            play(1.000_001, 40.0, 0.0, 40.0),
            play(0.999_998, 20.0, 50.0, 80.0),
        ];
        assert_eq!(shared_rate(&plays, 1.000_000_8), 1.000_000_8);
        // nor does one short weak play move it
        let plays = [play(1.0, 40.0, 0.0, 40.0), play(1.003, 7.0, 50.0, 60.0)];
        assert_eq!(shared_rate(&plays, 1.0), 1.0);
        assert_eq!(shared_rate(&[], 1.0002), 1.0002);
    }
}

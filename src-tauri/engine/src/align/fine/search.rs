//! The summed search: every window's correlation added along each nearby
//! line (offset and slope), then the direct sound ahead of the strongest
//! arrival on the best one.

use super::coherence::RunningMax;
use super::{FineParams, SummedLine, WindowCorr};
use crate::cancel::CancelToken;
use crate::error::Result;

/// 2-D search (offset, slope) over all windows. PHAT peaks are about one lag
/// wide, so each window's correlation is first widened by a max filter (±2
/// lags): a line then only has to pass within 2 lags of every window's peak,
/// and the slope grid can be correspondingly coarse. Ends on the direct
/// sound's arrival.
pub(super) fn search_summed(
    windows: &[WindowCorr],
    t0: f64,
    params: &FineParams,
    fs: f64,
    cancel: &CancelToken,
) -> Result<SummedLine> {
    let m = params.max_lag;
    let lags = 2 * m + 1;
    let widened = widen_rows(windows, lags, params.stretched);
    let lever = lever_of(windows, t0);
    let (slope_steps, slope_step) = if lever > 1.0 {
        let step = 2.0 / lever;
        // onset-derived rates of short clips are loose: the ranking pass searches ±0.2 %
        let end_shift = params
            .max_end_shift
            .max(params.min_rate_slack * fs * lever)
            .min(0.6 * m as f64);
        ((end_shift / 2.0).ceil() as i64, step)
    } else {
        (0, 0.0)
    };
    let mut best2d = (f32::NEG_INFINITY, m as f64, 0.0f64);
    let mut shifts: Vec<i64> = vec![0; windows.len()];
    // The ±2-lag widening lets the offset grid step by 2 lags too. Offset
    // `a = 2q` reads lag `2q + shift` of each window: the even or the odd
    // lags of its row, in a straight run over q. Each offset's sum still
    // adds the windows in order, as a lag-by-lag loop would.
    let parity_rows: Vec<[Vec<f32>; 2]> = widened
        .iter()
        .map(|wc| {
            [
                wc.iter().step_by(2).copied().collect(),
                wc.iter().skip(1).step_by(2).copied().collect(),
            ]
        })
        .collect();
    let mut sums = vec![0f32; lags.div_ceil(2)];
    for bi in -slope_steps..=slope_steps {
        let b = bi as f64 * slope_step;
        for (sh, w) in shifts.iter_mut().zip(windows) {
            *sh = (b * (w.t_s - t0)).round() as i64;
        }
        sums.fill(0.0);
        for (rows, &sh) in parity_rows.iter().zip(&shifts) {
            add_parity_row(&mut sums, rows, sh);
        }
        for (q, &s) in sums.iter().enumerate() {
            if s > best2d.0 {
                best2d = (s, (2 * q) as f64, b);
            }
        }
        if bi % 64 == 0 {
            cancel.check()?;
        }
    }
    let (_, a_star, b_star) = best2d;
    // The strongest arrival can be a room reflection or a farther
    // loudspeaker; the placement is that of the direct sound, which comes
    // first. (Time-stretched playback smears every peak over several ms:
    // there the arrivals are not told apart.)
    let line = SummedLine {
        a: a_star,
        b: b_star,
        lever,
    };
    if params.stretched {
        return Ok(line);
    }
    Ok(SummedLine {
        a: direct_arrival(windows, &line, t0, fs),
        ..line
    })
}

/// The largest distance (s) of a window from the reference time `t0`: how
/// far a slope moves the line's ends.
fn lever_of(windows: &[WindowCorr], t0: f64) -> f64 {
    windows
        .iter()
        .map(|w| (w.t_s - t0).abs())
        .fold(0.0f64, f64::max)
}

/// Each window's correlation over `rms`, max-filtered over ±2 lags (±40 for
/// time-stretched playback (WSOLA), which wobbles around its line by several
/// ms: there the widening has to cover that wobble).
fn widen_rows(windows: &[WindowCorr], lags: usize, stretched: bool) -> Vec<Vec<f32>> {
    let widen: usize = if stretched { 40 } else { 2 };
    // each row between -inf margins: the largest of the 2 widen + 1 values
    // around lag k is then that of the lags inside the row (the margins
    // never win, as the direct scan starts from -inf)
    let mut padded = vec![f32::NEG_INFINITY; lags + 2 * widen];
    let mut widest = RunningMax::new(padded.len(), 2 * widen + 1);
    windows
        .iter()
        .map(|w| {
            padded[widen..widen + lags].copy_from_slice(&w.corr[..lags]);
            widest.of(&padded).map(|v| v / w.rms).collect()
        })
        .collect()
}

/// How far before the strongest arrival the direct sound is looked for (s):
/// reflections and a second loudspeaker arrive within a few tens of ms.
const DIRECT_SEARCH_S: f64 = 0.04;
/// An earlier arrival is the direct sound when its summed correlation is at
/// least this fraction of the strongest one's...
const DIRECT_MIN_RATIO: f64 = 0.5;
/// ...stands this many noise deviations above the floor of the summed
/// correlation (and so must the strongest arrival for one to be looked
/// for)... At 8 a weak play's sum was left on its strongest arrival, a
/// reflection 20.6 ms after a direct sound 0.9 times as strong (plays-real
/// 8642 rpl004, 7.9 and 7.2 deviations); noise peaks in the searched 40 ms
/// stand 2-5 deviations up.
const DIRECT_MIN_Z: f64 = 6.0;
/// ...and is more than this many times the value at the mirror lag on the
/// other side of the strongest arrival: a periodic signal (a held note, a
/// beat subdivision) gives side peaks on both sides, an echo only one later
/// copy (PHAT even makes the mirror of an echo negative).
const DIRECT_MIRROR_RATIO: f64 = 2.0;

/// Lag index (in the correlations' `0..=2*max_lag` range) of the direct
/// sound along the `line` found by the 2-D search (`a + b * (t - t0)`): the
/// correlations of all windows are summed along the sharpest slope near the
/// line's; among the significant peaks up to [`DIRECT_SEARCH_S`] before the
/// strongest one (larger lags: the song position heard earlier), the
/// earliest is the direct path. Returns `line.a` unchanged when there is none.
fn direct_arrival(windows: &[WindowCorr], line: &SummedLine, t0: f64, fs: f64) -> f64 {
    let a = line.a;
    let Some(lags) = windows.first().map(|w| w.corr.len()) else {
        return a;
    };
    let centre = a.round() as i64;
    let peak = |p: &[f64]| {
        (centre - 4..=centre + 4)
            .filter(|&i| i >= 0 && (i as usize) < p.len())
            .map(|i| p[i as usize])
            .fold(f64::NEG_INFINITY, f64::max)
    };
    // the 2-D search reads rows widened by ±2 lags, so its slope is loose by
    // about that much over the lever; the raw rows summed along a loose slope
    // smear every arrival: the sharpest slope near it is summed
    let mut best = profile_along(windows, line.b, t0, lags);
    if line.lever > 1.0 {
        let step = 0.5 / line.lever;
        let mut best_peak = peak(&best);
        for j in (-SLOPE_TRIALS..=SLOPE_TRIALS).filter(|&j| j != 0) {
            let p = profile_along(windows, line.b + j as f64 * step, t0, lags);
            let p_peak = peak(&p);
            if p_peak > best_peak {
                (best, best_peak) = (p, p_peak);
            }
        }
    }
    direct_lag(&best, a, fs, DIRECT_MIN_Z).map_or(a, |k| k as f64)
}

/// Every window's correlation over its `rms`, summed lag by lag along the
/// slope `b` (lags per second from `t0`): `lags` values.
fn profile_along(windows: &[WindowCorr], b: f64, t0: f64, lags: usize) -> Vec<f64> {
    let mut profile = vec![0f64; lags];
    for w in windows {
        let shift = (b * (w.t_s - t0)).round() as i64;
        for (k, p) in profile.iter_mut().enumerate() {
            let i = k as i64 + shift;
            if i >= 0 && (i as usize) < lags {
                *p += f64::from(w.corr[i as usize] / w.rms);
            }
        }
    }
    profile
}

/// Slopes tried either side of the 2-D search's, a half lag over the lever apart.
const SLOPE_TRIALS: i64 = 5;

/// The direct sound's lag index in a correlation `profile` summed along a
/// line whose strongest arrival is near lag index `a` (see [`direct_arrival`]),
/// or `None` when no earlier arrival qualifies. Arrivals count from `min_z`
/// robust deviations of the profile above its median.
pub(crate) fn direct_lag(profile: &[f64], a: f64, fs: f64, min_z: f64) -> Option<usize> {
    let lags = profile.len();
    if lags < 3 {
        return None;
    }
    // middle elements by selection: the values a full sort puts there
    let mut sorted = profile.to_vec();
    let floor = *sorted.select_nth_unstable_by(lags / 2, f64::total_cmp).1;
    let mut dev: Vec<f64> = profile.iter().map(|v| (v - floor).abs()).collect();
    let sd = (1.4826 * *dev.select_nth_unstable_by(lags / 2, f64::total_cmp).1).max(1e-9);
    let centre = a.round() as i64;
    let lo = (centre - 4).max(0) as usize;
    let hi = ((centre + 4) as usize).min(lags - 1);
    let k_max = (lo..=hi).max_by(|&i, &j| profile[i].total_cmp(&profile[j]))?;
    let h_max = profile[k_max] - floor;
    if h_max < min_z * sd {
        return None;
    }
    let reach = (DIRECT_SEARCH_S * fs).round() as usize;
    let mut direct = None;
    for k in k_max + 3..=(k_max + reach).min(lags - 2) {
        if profile[k] < profile[k - 1] || profile[k] < profile[k + 1] {
            continue;
        }
        let h = profile[k] - floor;
        if h < DIRECT_MIN_RATIO * h_max || h < min_z * sd {
            continue;
        }
        let mirror = 2 * k_max as i64 - k as i64;
        let h_mirror = if mirror >= 1 {
            let m = mirror as usize;
            profile[m - 1..=(m + 1).min(lags - 1)]
                .iter()
                .fold(f64::NEG_INFINITY, |x, &v| x.max(v))
                - floor
        } else {
            0.0
        };
        if h < DIRECT_MIRROR_RATIO * h_mirror {
            continue;
        }
        direct = Some(k);
    }
    if std::env::var_os("BEATSYNC_ALIGN_DEBUG").is_some() {
        let show = |k: usize| format!("{:.1}", (profile[k] - floor) / sd);
        let mut peaks: Vec<String> = Vec::new();
        for k in k_max.saturating_sub(reach).max(1)..=(k_max + reach).min(lags - 2) {
            if profile[k] >= profile[k - 1]
                && profile[k] >= profile[k + 1]
                && profile[k] - floor >= 0.3 * h_max
            {
                peaks.push(format!("{}:{}", k as i64 - k_max as i64, show(k)));
            }
        }
        eprintln!(
            "  direct: max at {} ({} sd), peaks {:?}, direct {:?}",
            k_max as i64 - (lags / 2) as i64,
            show(k_max),
            peaks,
            direct.map(|k| k as i64 - k_max as i64)
        );
    }
    direct
}

/// Adds one window's correlation to `sums`, shifted: `sums[q] += lag
/// (first + 2 q)`, where `rows` holds the window's even and odd lags apart
/// (lag `2 k + parity` at `rows[parity][k]`); lags the window lacks add
/// nothing.
pub(crate) fn add_parity_row(sums: &mut [f32], rows: &[Vec<f32>; 2], first: i64) {
    let parity = first.rem_euclid(2);
    let row = &rows[parity as usize];
    // lag first + 2 q is element q + skip of the row
    let skip = (first - parity) / 2;
    let q_lo = (-skip).max(0);
    let q_hi = (sums.len() as i64).min(row.len() as i64 - skip);
    if q_lo >= q_hi {
        return;
    }
    let (q_lo, q_hi) = (q_lo as usize, q_hi as usize);
    let from = (q_lo as i64 + skip) as usize;
    for (s, &v) in sums[q_lo..q_hi].iter_mut().zip(&row[from..]) {
        *s += v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_signal::noise;

    #[test]
    fn widened_rows_are_the_direct_maxima() {
        let lags = 301;
        let windows: Vec<WindowCorr> = (0..5)
            .map(|j| WindowCorr {
                t_s: j as f64,
                corr: noise(lags, 70 + j),
                rms: 0.4,
                lag_scale: 1.0,
                base_shift: 0.0,
                song_db: 0.0,
            })
            .collect();
        for stretched in [false, true] {
            let widen: usize = if stretched { 40 } else { 2 };
            let direct: Vec<Vec<f32>> = windows
                .iter()
                .map(|w| {
                    (0..lags)
                        .map(|k| {
                            let lo = k.saturating_sub(widen);
                            let hi = (k + widen).min(lags - 1);
                            w.corr[lo..=hi]
                                .iter()
                                .fold(f32::NEG_INFINITY, |a, &v| a.max(v))
                                / w.rms
                        })
                        .collect()
                })
                .collect();
            assert_eq!(widen_rows(&windows, lags, stretched), direct);
        }
    }

    /// Correlations of 40 windows with noise and peaks `(lag offset, height)`
    /// around lag index 480.
    fn windows_with_peaks(peaks: &[(i64, f32)]) -> Vec<WindowCorr> {
        (0..40)
            .map(|j| {
                let mut corr: Vec<f32> = noise(961, 100 + j).iter().map(|v| 0.05 * v).collect();
                for &(d, h) in peaks {
                    corr[(480 + d) as usize] += h;
                }
                window_at(j as f64, corr)
            })
            .collect()
    }

    /// Window `corr` at `t_s`, its rms measured.
    fn window_at(t_s: f64, corr: Vec<f32>) -> WindowCorr {
        let rms = (corr.iter().map(|v| v * v).sum::<f32>() / corr.len() as f32).sqrt();
        WindowCorr {
            t_s,
            corr,
            rms,
            lag_scale: 1.0,
            base_shift: 0.0,
            song_db: 0.0,
        }
    }

    /// [`direct_arrival`] on the line `a + b * (t - 20 s)` over `windows`
    /// (at 8 kHz), its lever as the 2-D search measures it.
    fn arrival(windows: &[WindowCorr], a: f64, b: f64) -> f64 {
        let t0 = 20.0;
        let lever = lever_of(windows, t0);
        direct_arrival(windows, &SummedLine { a, b, lever }, t0, 8000.0)
    }

    #[test]
    fn direct_arrival_is_the_earlier_one_sided_peak() {
        // an echo: the later copy (lower lag) strongest, its mirror negative
        let w = windows_with_peaks(&[(0, 0.5), (-112, 0.6), (-224, -0.1)]);
        assert_eq!(arrival(&w, 368.0, 0.0), 480.0);
        // two loudspeakers 3 ms apart, the farther one louder
        let w = windows_with_peaks(&[(0, 0.4), (-24, 0.5)]);
        assert_eq!(arrival(&w, 456.0, 0.0), 480.0);
        // symmetric side peaks (periodic signal): the strongest one stays
        let w = windows_with_peaks(&[(0, 0.5), (80, 0.35), (-80, 0.35)]);
        assert_eq!(arrival(&w, 480.0, 0.0), 480.0);
        // a weak earlier peak is not the direct sound
        let w = windows_with_peaks(&[(0, 0.5), (60, 0.15)]);
        assert_eq!(arrival(&w, 480.0, 0.0), 480.0);
        // nor one beyond the search range
        let w = windows_with_peaks(&[(0, 0.5), (400, 0.45)]);
        assert_eq!(arrival(&w, 480.0, 0.0), 480.0);
    }

    /// A weak sum (its strongest arrival 6-8 robust deviations up) whose
    /// strongest arrival is a reflection 20.6 ms after the direct sound, the
    /// direct sound nine tenths as strong: the direct sound is the placement
    /// (plays-real 8642 rpl004: a play 20.7 ms late on the reflection, at
    /// 7.9 and 7.2 sd). An earlier peak under 6 deviations is not.
    #[test]
    fn a_weak_sums_direct_sound_is_found_before_its_reflection() {
        // 40 windows of independent noise with the two arrivals
        let weak = |direct: f32, reflection: f32| -> Vec<WindowCorr> {
            let all = noise(961 * 40, 7);
            all.chunks_exact(961)
                .enumerate()
                .map(|(j, n)| {
                    let mut corr: Vec<f32> = n.to_vec();
                    corr[480 + 165] += direct;
                    corr[480] += reflection;
                    window_at(j as f64, corr)
                })
                .collect()
        };
        assert_eq!(arrival(&weak(0.6, 0.8), 480.0, 0.0), 645.0);
        assert_eq!(arrival(&weak(0.35, 0.8), 480.0, 0.0), 480.0);
    }

    /// The 2-D search's slope is loose by up to its ±2-lag widening over the
    /// lever (here 0.1 lag/s over 20 s); along such a slope the one-lag-wide
    /// arrivals smear over five lags, the direct one under its bar (plays-real
    /// 9090 rpl004: a play placed on a reflection 11.5 ms late). The sharpest
    /// slope near it sums them unsmeared.
    #[test]
    fn direct_arrival_is_found_along_a_loose_slope() {
        let w = windows_with_peaks(&[(0, 0.25), (-92, 0.4)]);
        assert_eq!(arrival(&w, 388.0, 0.1), 480.0);
        assert_eq!(arrival(&w, 388.0, -0.1), 480.0);
    }
}

//! `fine`: millisecond placement of a candidate line with GCC-PHAT.
//!
//! Short recording windows all along the overlap are each correlated with the
//! song excerpt the line predicts (re-timed by the line's rate when the
//! recording is resampled, as is when it is time-stretched with pitch kept).
//! The windows' correlations are summed along every nearby line (2-D search
//! on offset and slope), which is robust when most single windows are buried
//! in speech; then each window's own peak near that line is measured to a
//! fraction of a sample and a robust weighted line fit gives the final offset
//! and rate.

use crate::cancel::CancelToken;
use crate::dsp::gcc::GccPhat;
use crate::dsp::interp::SincInterpolator;
use crate::dsp::par::par_map_with;
use crate::dsp::xcorr::parabolic_offset;
use crate::error::Result;

/// Frequency band used by GCC-PHAT (Hz): phones keep it, rooms smear less above 300 Hz.
const GCC_BAND_HZ: (f64, f64) = (300.0, 3600.0);

/// `song_time = sigma + (dance_time - t_ref) / rate` (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    pub t_ref: f64,
    pub sigma: f64,
    /// Dance seconds per song second.
    pub rate: f64,
}

impl Line {
    pub fn song_at(&self, dance_t: f64) -> f64 {
        self.sigma + (dance_t - self.t_ref) / self.rate
    }
    pub fn dance_at(&self, song_t: f64) -> f64 {
        self.t_ref + (song_t - self.sigma) * self.rate
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FineParams {
    /// Recording window length in samples.
    pub win_len: usize,
    /// Spacing of windows (s); widened to stay under `max_windows`.
    pub hop_s: f64,
    pub max_windows: usize,
    /// Lags searched around the line, in samples (±).
    pub max_lag: usize,
    /// Re-time song excerpts by the line's rate (resampled playback), or not
    /// (time-stretched playback: locally a pure delay).
    pub resample: bool,
    /// Pitch-kept time stretch hypothesis: the local delay wobbles around
    /// the line by several ms, so peaks are searched and scored more widely.
    pub stretched: bool,
    /// Largest deviation from the input line searched at the ends of the
    /// overlap (samples): how far the input line's rate may be off.
    pub max_end_shift: f64,
    /// Rate uncertainty always searched (fraction), whatever `max_end_shift`.
    pub min_rate_slack: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowObs {
    /// Centre of the window in the recording (s).
    pub t_s: f64,
    /// Peak height on the final line, in noise standard deviations.
    pub z_on_line: f64,
    /// The same peak against the null distribution of the statistic (the
    /// largest value within the search radius, measured off the line over
    /// all windows): about 0 where the song is not heard, whatever the radius.
    pub presence: f64,
    /// Level of the song excerpt in the correlation band (dB, arbitrary reference).
    pub song_db: f64,
}

#[derive(Debug, Clone)]
pub struct FineOutcome {
    pub line: Line,
    /// Whole-overlap coherence on the line, in noise standard deviations
    /// (about 0 for a wrong song, tens for a right one).
    pub z: f64,
    /// Windows with a clear peak on the line.
    pub heard_windows: usize,
    /// Summed coherence along the line ([`line_coherence`]): every window's
    /// normalised correlation at the line's lag, clipped, added over the
    /// whole overlap, against the same sum along parallel lines (z-score).
    /// Weak windows add up here; a few loud coincidences do not.
    pub line_z: f64,
    pub windows: Vec<WindowObs>,
    pub hop_s: f64,
}

pub(crate) struct WindowCorr {
    pub t_s: f64,
    pub corr: Vec<f32>,
    pub rms: f32,
    /// Song samples per correlation lag step.
    pub lag_scale: f64,
    /// Song position that lag index `max_lag` stands for, minus the line's prediction.
    pub base_shift: f64,
    pub song_db: f64,
}

/// Per-thread scratch of the window correlations.
struct WindowScratch {
    gcc: GccPhat,
    segment: Vec<f32>,
    corr: Vec<f32>,
}

/// Refines `line` on the signals (`fs` Hz) with up to `threads` threads; see
/// the module docs. The result does not depend on `threads`.
pub fn refine_line(
    recording: &[f32],
    song: &[f32],
    fs: f64,
    line: &Line,
    params: &FineParams,
    threads: usize,
    cancel: &CancelToken,
) -> Result<FineOutcome> {
    let m = params.max_lag;
    let geometry = WindowGeometry {
        win_len: params.win_len,
        max_lag: m,
        hop_s: params.hop_s,
        max_windows: params.max_windows,
        resample: params.resample,
    };
    let Some(LineWindows { windows, hop_s }) =
        window_correlations(recording, song, fs, line, &geometry, threads, cancel)?
    else {
        return Ok(FineOutcome {
            line: *line,
            z: 0.0,
            heard_windows: 0,
            line_z: 0.0,
            windows: Vec::new(),
            hop_s: params.hop_s,
        });
    };
    let t0 = windows.iter().map(|w| w.t_s).sum::<f64>() / windows.len() as f64;
    let summed = search_summed(&windows, t0, params, fs, cancel)?;
    let obs = window_peaks(&windows, &summed, t0, params);
    // fall back on the 2-D search line (in song samples) when too few windows stand out
    let default_fit = LineFit {
        a: (summed.a - m as f64) * windows[0].lag_scale,
        b: summed.b * windows[0].lag_scale,
    };
    let coherence = |fit: LineFit| line_window_coherence(&windows, t0, params, fit);
    // The per-window fit is more precise, but with few clear windows it can
    // be worse than the summed search: keep whichever line is more coherent.
    let mut best_fit = (default_fit, coherence(default_fit));
    if let Some((a, b)) = robust_line_fit(&obs, summed.lever > 1.0) {
        let fit = LineFit { a, b };
        let c = coherence(fit);
        if c.z >= best_fit.1.z - 0.5 {
            best_fit = (fit, c);
        }
    }
    let (fit, found) = best_fit;
    let line_z = summed_line_coherence(&windows, t0, params, fit);
    if std::env::var_os("BEATSYNC_ALIGN_DEBUG").is_some() {
        eprintln!(
            "  fine: line ({:.4},{:.6}) windows {} a* {:.1} b* {:.3} obs {} default ({:.1},{:.3}) fit ({:.1},{:.3}) z {:.2} line z {line_z:.2}",
            line.sigma,
            line.rate,
            windows.len(),
            summed.a - m as f64,
            summed.b,
            obs.len(),
            default_fit.a,
            default_fit.b,
            fit.a,
            fit.b,
            found.z
        );
    }
    let new_line = Line {
        t_ref: line.t_ref,
        sigma: line.sigma + (fit.a + fit.b * (line.t_ref - t0)) / fs,
        rate: 1.0 / (1.0 / line.rate + fit.b / fs),
    };
    Ok(FineOutcome {
        line: new_line,
        z: found.z,
        heard_windows: found.heard,
        line_z,
        windows: found.windows,
        hop_s,
    })
}

/// [`line_coherence`] along `fit` (within the pitch-kept wobble for
/// time-stretched playback, on the line otherwise).
fn summed_line_coherence(
    windows: &[WindowCorr],
    t0: f64,
    params: &FineParams,
    fit: LineFit,
) -> f64 {
    let m = params.max_lag;
    let taus: Vec<f64> = windows
        .iter()
        .map(|w| (fit.a + fit.b * (w.t_s - t0) - w.base_shift) / w.lag_scale + m as f64)
        .collect();
    let z_radius = stretch_radius(params);
    line_coherence(windows, &taus, if params.stretched { z_radius } else { 0 })
}

/// A line through the windows' correlations: song-sample deviation `a` at
/// `t0` (the windows' mean time) and `b` per second after it.
#[derive(Debug, Clone, Copy)]
struct LineFit {
    a: f64,
    b: f64,
}

/// The 2-D search's line, in lag units: offset `a` (lag index at `t0`),
/// slope `b` (lags per second), and the longest distance of a window from
/// `t0` (s).
#[derive(Debug, Clone, Copy)]
struct SummedLine {
    a: f64,
    b: f64,
    lever: f64,
}

/// Coherence of the windows on a line: the z-score, the windows with a
/// clear peak on it, and each window's evidence.
struct Coherence {
    z: f64,
    heard: usize,
    windows: Vec<WindowObs>,
}

/// Time-stretched playback scatters each window's peak by the WSOLA wobble
/// (several ms): there the on-line statistic is the largest value within
/// ±5 ms of the line (lags either side).
fn stretch_radius(params: &FineParams) -> i64 {
    if params.stretched {
        40
    } else {
        1
    }
}

/// 2-D search (offset, slope) over all windows. PHAT peaks are about one lag
/// wide, so each window's correlation is first widened by a max filter (±2
/// lags): a line then only has to pass within 2 lags of every window's peak,
/// and the slope grid can be correspondingly coarse. Ends on the direct
/// sound's arrival.
fn search_summed(
    windows: &[WindowCorr],
    t0: f64,
    params: &FineParams,
    fs: f64,
    cancel: &CancelToken,
) -> Result<SummedLine> {
    let m = params.max_lag;
    let lags = 2 * m + 1;
    let widened = widen_rows(windows, lags, params.stretched);
    let lever = windows
        .iter()
        .map(|w| (w.t_s - t0).abs())
        .fold(0.0f64, f64::max);
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
    let a_star = if params.stretched {
        a_star
    } else {
        direct_arrival(windows, a_star, b_star, t0, fs)
    };
    Ok(SummedLine {
        a: a_star,
        b: b_star,
        lever,
    })
}

/// Each window's correlation over `rms`, max-filtered over ±2 lags (±40 for
/// time-stretched playback (WSOLA), which wobbles around its line by several
/// ms: there the widening has to cover that wobble).
fn widen_rows(windows: &[WindowCorr], lags: usize, stretched: bool) -> Vec<Vec<f32>> {
    let widen: usize = if stretched { 40 } else { 2 };
    windows
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
        .collect()
}

/// Per-window peaks near the summed line, for the robust line fit:
/// `(t - t0, song-sample deviation, weight)`.
fn window_peaks(
    windows: &[WindowCorr],
    summed: &SummedLine,
    t0: f64,
    params: &FineParams,
) -> Vec<(f64, f64, f64)> {
    let m = params.max_lag;
    let lags = 2 * m + 1;
    let radius: i64 = if params.stretched { 48 } else { 6 };
    let mut obs: Vec<(f64, f64, f64)> = Vec::new();
    for w in windows {
        let pred = summed.a + summed.b * (w.t_s - t0);
        let lo = ((pred.round() as i64) - radius).max(1);
        let hi = ((pred.round() as i64) + radius).min(lags as i64 - 2);
        if lo > hi {
            continue;
        }
        let (mut k_best, mut v_best) = (lo as usize, f32::NEG_INFINITY);
        for k in lo as usize..=hi as usize {
            if w.corr[k] > v_best {
                v_best = w.corr[k];
                k_best = k;
            }
        }
        if w.corr[k_best] < w.corr[k_best - 1] || w.corr[k_best] < w.corr[k_best + 1] {
            continue;
        }
        let z = f64::from(v_best / w.rms);
        if z < 3.0 {
            continue;
        }
        let tau = k_best as f64
            + parabolic_offset(w.corr[k_best - 1], w.corr[k_best], w.corr[k_best + 1]);
        let dev = (tau - m as f64) * w.lag_scale + w.base_shift;
        obs.push((w.t_s - t0, dev, z));
    }
    obs
}

/// What the windows show on and off a line (see [`line_window_coherence`]).
struct WindowStats {
    /// Sum over windows of the on-line peak minus the mean of two off-line ones.
    sum_on: f64,
    /// Sum of the windows' squared rms.
    sum_var: f64,
    heard: usize,
    /// Per window: on-line z, mean of its null probes, rms.
    per_window: Vec<(f64, f64, f64)>,
    window_obs: Vec<WindowObs>,
    /// Every window's null probes, NULL_PROBES per window, in window order.
    probes: Vec<f64>,
    null_mean: f64,
    null_sd: f64,
}

/// Coherence on a line: on-line peak minus the same statistic off the line.
/// Time-stretched playback scatters each window's peak by the WSOLA wobble
/// (several ms), so there the statistic is the largest value within ±5 ms of
/// the line.
fn line_window_coherence(
    windows: &[WindowCorr],
    t0: f64,
    params: &FineParams,
    fit: LineFit,
) -> Coherence {
    let mut st = window_stats(windows, t0, params, fit);
    for o in &mut st.window_obs {
        o.presence = (o.z_on_line - st.null_mean) / st.null_sd;
    }
    if std::env::var_os("BEATSYNC_ALIGN_DEBUG").is_some() {
        eprintln!(
            "  null: mean {:.3} sd {:.3} overlap inflation {:.3}",
            st.null_mean,
            st.null_sd,
            overlap_inflation(&st.probes, st.null_mean)
        );
    }
    let z = if params.stretched {
        // on-line maximum minus the mean of the off-line probes, against
        // the null spread; scaled to the resampled statistic's units (its
        // null standard deviation is RESAMPLED_NULL_SD for Gaussian noise)
        let (mut s, mut v) = (0f64, 0f64);
        for &(on, off_mean, rms) in &st.per_window {
            s += (on - off_mean) * rms;
            v += rms * rms;
        }
        // overlapping windows see the same song: neighbours' values
        // are correlated, and a sum over them varies more than the
        // sum of their variances (measured on the null probes)
        let inflation = overlap_inflation(&st.probes, st.null_mean);
        let var = v * st.null_sd * st.null_sd * (1.0 + 1.0 / NULL_PROBES as f64) * inflation;
        if var > 0.0 {
            RESAMPLED_NULL_SD * s / var.sqrt()
        } else {
            0.0
        }
    } else if st.sum_var > 0.0 {
        st.sum_on / (2.0 * st.sum_var).sqrt()
    } else {
        0.0
    };
    Coherence {
        z,
        heard: st.heard,
        windows: st.window_obs,
    }
}

/// Each window's on-line and off-line statistics on `fit`, and the null
/// distribution of the statistic in units of each window's rms
/// (NULL_PROBES positions per window spread over the lag range, away from
/// the line).
fn window_stats(windows: &[WindowCorr], t0: f64, params: &FineParams, fit: LineFit) -> WindowStats {
    let m = params.max_lag;
    let lags = 2 * m + 1;
    let z_radius = stretch_radius(params);
    let mut sum_on = 0f64;
    let mut sum_var = 0f64;
    let mut heard = 0usize;
    let (mut null_sum, mut null_sq, mut null_n) = (0f64, 0f64, 0usize);
    let mut per_window: Vec<(f64, f64, f64)> = Vec::with_capacity(windows.len());
    let mut window_obs = Vec::with_capacity(windows.len());
    let mut probes: Vec<f64> = Vec::with_capacity(windows.len() * NULL_PROBES);
    for w in windows {
        let dev = fit.a + fit.b * (w.t_s - t0);
        let tau = (dev - w.base_shift) / w.lag_scale + m as f64;
        let on = local_max(&w.corr, tau, z_radius);
        let off = 0.5
            * (local_max(&w.corr, tau + m as f64 / 2.0, z_radius)
                + local_max(&w.corr, tau - m as f64 / 2.0, z_radius));
        let mut off_sum = 0f64;
        for j in 0..NULL_PROBES {
            let shift = (j as f64 + 0.5) * lags as f64 / NULL_PROBES as f64;
            let v = f64::from(local_max(&w.corr, tau + shift, z_radius) / w.rms);
            probes.push(v);
            off_sum += v;
            null_sum += v;
            null_sq += v * v;
            null_n += 1;
        }
        let z_on = f64::from(on / w.rms);
        sum_on += f64::from(on - off);
        sum_var += f64::from(w.rms) * f64::from(w.rms);
        if z_on > 4.0 {
            heard += 1;
        }
        per_window.push((z_on, off_sum / NULL_PROBES as f64, f64::from(w.rms)));
        window_obs.push(WindowObs {
            t_s: w.t_s,
            z_on_line: z_on,
            presence: 0.0,
            song_db: w.song_db,
        });
    }
    let null_mean = null_sum / null_n.max(1) as f64;
    let null_sd = (null_sq / null_n.max(1) as f64 - null_mean * null_mean)
        .max(0.0)
        .sqrt()
        .max(1e-6);
    WindowStats {
        sum_on,
        sum_var,
        heard,
        per_window,
        window_obs,
        probes,
        null_mean,
        null_sd,
    }
}

/// Per-window normalised correlations are clipped to this many noise
/// deviations before [`line_coherence`] adds them: a window can vouch for a
/// line, not carry it (another song sharing a drum sample gives a handful of
/// windows far above it, the song itself many windows near or under it).
const LINE_CLIP: f32 = 4.0;
/// Lags either side of the line left out of [`line_coherence`]'s null
/// (beyond the pitch-kept wobble): the direct sound's own reflections.
const LINE_GUARD: i64 = 40;

/// Whole-overlap coherence along a line: `taus[j]` is window `j`'s
/// (fractional) lag index on the line. Each window's correlation, in units
/// of its rms and clipped to ±[`LINE_CLIP`], is read on the line (the
/// largest value within ±`radius` lags when playback is time-stretched) and
/// summed over windows; the same sum along every parallel line displaced by
/// more than [`LINE_GUARD`] + 2 `radius` lags gives the null distribution
/// (median and robust spread), against which the line's sum (the largest
/// within ±1 lag, as for the null) is a z-score. Unlike counting windows
/// with clear peaks, this adds up evidence that no single window shows.
fn line_coherence(windows: &[WindowCorr], taus: &[f64], radius: i64) -> f64 {
    let Some(lags) = windows.first().map(|w| w.corr.len() as i64) else {
        return 0.0;
    };
    let guard = LINE_GUARD + 2 * radius + 1;
    if lags < 2 * guard + 16 {
        return 0.0;
    }
    // profile[d]: the sum along the line displaced by d lags (circular)
    let mut profile = vec![0f64; lags as usize];
    let clipped: Vec<Vec<f32>> = windows
        .iter()
        .map(|w| {
            w.corr
                .iter()
                .map(|v| (v / w.rms).clamp(-LINE_CLIP, LINE_CLIP))
                .collect()
        })
        .collect();
    for (c, &tau) in clipped.iter().zip(taus) {
        let base = tau.floor() as i64;
        let f = (tau - base as f64) as f32;
        // value at fractional lag base + f + d, then the largest within ±radius
        let at = |k: i64| -> f32 {
            let a = c[k.rem_euclid(lags) as usize];
            let b = c[(k + 1).rem_euclid(lags) as usize];
            a * (1.0 - f) + b * f
        };
        let line: Vec<f32> = (0..lags).map(|d| at(base + d)).collect();
        for (d, p) in profile.iter_mut().enumerate() {
            let d = d as i64;
            let v = if radius == 0 {
                line[d as usize]
            } else {
                (d - radius..=d + radius)
                    .map(|k| line[k.rem_euclid(lags) as usize])
                    .fold(f32::NEG_INFINITY, f32::max)
            };
            *p += f64::from(v);
        }
    }
    let near = |d: i64| -> f64 {
        (d - 1..=d + 1)
            .map(|k| profile[k.rem_euclid(lags) as usize])
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let on = near(0);
    let mut null: Vec<f64> = (guard..=lags - guard).map(near).collect();
    null.sort_by(f64::total_cmp);
    let centre = null[null.len() / 2];
    let mut dev: Vec<f64> = null.iter().map(|v| (v - centre).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let spread = (1.4826 * dev[dev.len() / 2]).max(1e-9);
    (on - centre) / spread
}

/// Where and how the recording windows of a line are cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WindowGeometry {
    pub win_len: usize,
    pub max_lag: usize,
    pub hop_s: f64,
    pub max_windows: usize,
    pub resample: bool,
}

/// The correlations of a line's recording windows and the hop actually used.
pub(crate) struct LineWindows {
    pub windows: Vec<WindowCorr>,
    pub hop_s: f64,
}

/// Where the windows along a line are centred: `count` windows `hop_s`
/// apart, centred in the overlap, their centres within `t_a..=t_b`.
struct WindowSchedule {
    t_a: f64,
    t_b: f64,
    t_first: f64,
    hop_s: f64,
    count: usize,
}

impl WindowSchedule {
    /// `None` when no whole window fits in the overlap of the line.
    fn new(
        recording_len: usize,
        song_len: usize,
        fs: f64,
        line: &Line,
        geometry: &WindowGeometry,
    ) -> Option<Self> {
        let recording_dur = recording_len as f64 / fs;
        let song_dur = song_len as f64 / fs;
        let half_s = geometry.win_len as f64 / 2.0 / fs;
        let t_a = line.dance_at(0.0).max(0.0) + half_s;
        let t_b = line.dance_at(song_dur).min(recording_dur) - half_s;
        if t_b <= t_a {
            return None;
        }
        let span = t_b - t_a;
        let hop_s = geometry
            .hop_s
            .max(span / geometry.max_windows.max(1) as f64);
        let count = (span / hop_s).floor() as usize + 1;
        let t_first = t_a + 0.5 * (span - (count - 1) as f64 * hop_s);
        Some(WindowSchedule {
            t_a,
            t_b,
            t_first,
            hop_s,
            count,
        })
    }

    /// The centre of window `j` (s).
    fn centre_s(&self, j: usize) -> f64 {
        // Windows at a fixed spacing can all land on the same phase of the
        // beat (e.g. every 1.5 s at 120 BPM, always between the drum hits):
        // a low-discrepancy jitter of up to ±40 % of the hop breaks that.
        let jitter = ((j as f64 * 0.618_033_988_75).fract() - 0.5) * 0.8 * self.hop_s;
        (self.t_first + j as f64 * self.hop_s + jitter).clamp(self.t_a, self.t_b)
    }
}

/// How the song segment of a window maps onto correlation lags.
struct SegmentMapping {
    /// Song samples per correlation lag step.
    lag_scale: f64,
    /// Song position that lag index `max_lag` stands for, minus the line's prediction.
    base_shift: f64,
}

/// Fills `segment` with the song around `p_centre` (song samples): read at
/// the line's rate through `interp` when `resample`, else whole samples
/// around the nearest one (zero outside the song).
fn read_song_segment(
    song: &[f32],
    line: &Line,
    p_centre: f64,
    geometry: &WindowGeometry,
    interp: &SincInterpolator,
    segment: &mut [f32],
) -> SegmentMapping {
    let (n, m) = (geometry.win_len, geometry.max_lag);
    if geometry.resample {
        let step = 1.0 / line.rate;
        for (k, v) in segment.iter_mut().enumerate() {
            *v = interp.at(song, p_centre + (k as f64 - (m + n / 2) as f64) * step);
        }
        SegmentMapping {
            lag_scale: step,
            base_shift: 0.0,
        }
    } else {
        let base = p_centre.round();
        let s0 = base as i64 - (m + n / 2) as i64;
        for (k, v) in segment.iter_mut().enumerate() {
            let i = s0 + k as i64;
            *v = if i >= 0 && (i as usize) < song.len() {
                song[i as usize]
            } else {
                0.0
            };
        }
        SegmentMapping {
            lag_scale: 1.0,
            base_shift: base - p_centre,
        }
    }
}

/// GCC-PHAT correlation of every recording window along `line` with the
/// song excerpt the line predicts (independent: spread over `threads`), and
/// the hop actually used. `None` when fewer than two windows fit.
pub(crate) fn window_correlations(
    recording: &[f32],
    song: &[f32],
    fs: f64,
    line: &Line,
    geometry: &WindowGeometry,
    threads: usize,
    cancel: &CancelToken,
) -> Result<Option<LineWindows>> {
    let n = geometry.win_len;
    let m = geometry.max_lag;
    let Some(schedule) = WindowSchedule::new(recording.len(), song.len(), fs, line, geometry)
    else {
        return Ok(None);
    };

    // ---- correlations of every window (independent: spread over `threads`)
    let interp = SincInterpolator::new();
    let correlate_window = |scratch: &mut WindowScratch, j: usize| -> Result<Option<WindowCorr>> {
        if j.is_multiple_of(32) {
            cancel.check()?;
        }
        let t = schedule.centre_s(j);
        let centre = (t * fs).round() as i64;
        let first = centre - (n / 2) as i64;
        if first < 0 || first as usize + n > recording.len() {
            return Ok(None);
        }
        let window = &recording[first as usize..first as usize + n];
        let t_centre = centre as f64 / fs;
        let p_centre = line.song_at(t_centre) * fs;
        let WindowScratch { gcc, segment, corr } = scratch;
        let mapping = read_song_segment(song, line, p_centre, geometry, &interp, segment);
        if !gcc.correlate(window, segment, corr) {
            return Ok(None);
        }
        let rms = (corr.iter().map(|v| v * v).sum::<f32>() / corr.len() as f32).sqrt();
        if rms <= 0.0 {
            return Ok(None);
        }
        Ok(Some(WindowCorr {
            t_s: t_centre,
            corr: corr.clone(),
            rms,
            lag_scale: mapping.lag_scale,
            base_shift: mapping.base_shift,
            song_db: 10.0 * gcc.segment_energy().max(1e-30).log10(),
        }))
    };
    let new_scratch = || {
        let gcc = GccPhat::new(n, m, fs.round() as u32, GCC_BAND_HZ);
        let segment = vec![0f32; gcc.segment_len()];
        WindowScratch {
            gcc,
            segment,
            corr: Vec::new(),
        }
    };
    let mut windows: Vec<WindowCorr> = Vec::with_capacity(schedule.count);
    for w in par_map_with(schedule.count, threads, new_scratch, correlate_window) {
        if let Some(w) = w? {
            windows.push(w);
        }
    }
    if windows.len() < 2 {
        return Ok(None);
    }
    Ok(Some(LineWindows {
        windows,
        hop_s: schedule.hop_s,
    }))
}

/// How far before the strongest arrival the direct sound is looked for (s):
/// reflections and a second loudspeaker arrive within a few tens of ms.
const DIRECT_SEARCH_S: f64 = 0.04;
/// An earlier arrival is the direct sound when its summed correlation is at
/// least this fraction of the strongest one's...
const DIRECT_MIN_RATIO: f64 = 0.5;
/// ...stands this many noise deviations above the floor of the summed
/// correlation...
const DIRECT_MIN_Z: f64 = 8.0;
/// ...and is more than this many times the value at the mirror lag on the
/// other side of the strongest arrival: a periodic signal (a held note, a
/// beat subdivision) gives side peaks on both sides, an echo only one later
/// copy (PHAT even makes the mirror of an echo negative).
const DIRECT_MIRROR_RATIO: f64 = 2.0;

/// Lag index (in the correlations' `0..=2*max_lag` range) of the direct
/// sound along the line `a + b * (t - t0)` found by the 2-D search: the
/// correlations of all windows are summed along the line's slope; among the
/// significant peaks up to [`DIRECT_SEARCH_S`] before the strongest one
/// (larger lags: the song position heard earlier), the earliest is the
/// direct path. Returns `a` unchanged when there is none.
fn direct_arrival(windows: &[WindowCorr], a: f64, b: f64, t0: f64, fs: f64) -> f64 {
    let Some(lags) = windows.first().map(|w| w.corr.len()) else {
        return a;
    };
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
    direct_lag(&profile, a, fs, DIRECT_MIN_Z).map_or(a, |k| k as f64)
}

/// The direct sound's lag index in a correlation `profile` summed along a
/// line whose strongest arrival is near lag index `a` (see [`direct_arrival`]),
/// or `None` when no earlier arrival qualifies. Arrivals count from `min_z`
/// robust deviations of the profile above its median.
pub(crate) fn direct_lag(profile: &[f64], a: f64, fs: f64, min_z: f64) -> Option<usize> {
    let lags = profile.len();
    if lags < 3 {
        return None;
    }
    let mut sorted = profile.to_vec();
    sorted.sort_by(f64::total_cmp);
    let floor = sorted[lags / 2];
    let mut dev: Vec<f64> = profile.iter().map(|v| (v - floor).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let sd = (1.4826 * dev[lags / 2]).max(1e-9);
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

/// Variance of a sum over consecutive windows relative to the sum of their
/// variances, `1 + 2 * (rho_1 + rho_2)` with `rho_k` the correlation of a
/// null probe with the same probe `k` windows later (clamped to 1..3).
fn overlap_inflation(probes: &[f64], mean: f64) -> f64 {
    let n = probes.len() / NULL_PROBES;
    if n < 8 {
        return 1.0;
    }
    let at = |w: usize, j: usize| probes[w * NULL_PROBES + j] - mean;
    let var: f64 =
        probes.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / probes.len() as f64;
    if var <= 0.0 {
        return 1.0;
    }
    let mut rho_sum = 0.0;
    for k in 1..=2 {
        let mut c = 0.0;
        for w in 0..n - k {
            for j in 0..NULL_PROBES {
                c += at(w, j) * at(w + k, j);
            }
        }
        rho_sum += c / ((n - k) * NULL_PROBES) as f64 / var;
    }
    (1.0 + 2.0 * rho_sum).clamp(1.0, 3.0)
}

/// Off-line positions per window that sample the null distribution of the
/// coherence statistic.
const NULL_PROBES: usize = 6;
/// Standard deviation, under Gaussian noise, of the resampled-hypothesis
/// coherence z (largest of 3 lags on the line minus the mean of two such
/// maxima off it, over `sqrt(2)` noise deviations): `sqrt(1.5 * 0.5595 / 2)`.
/// The stretched hypothesis's calibrated z is scaled by it so that both
/// hypotheses' scores share thresholds.
const RESAMPLED_NULL_SD: f64 = 0.648;

/// Largest correlation within `±radius` lags of fractional lag `tau`
/// (wrapping around the lag range, so an "off the line" probe always exists).
fn local_max(corr: &[f32], tau: f64, radius: i64) -> f32 {
    let n = corr.len() as i64;
    let c = tau.round() as i64;
    (c - radius..=c + radius)
        .map(|k| corr[k.rem_euclid(n) as usize])
        .fold(f32::NEG_INFINITY, f32::max)
}

/// Weighted least-squares line `dev = a + b * t` with iterative outlier
/// rejection (3 x MAD, at least 0.75 sample). `None` with fewer than 3 points.
fn robust_line_fit(obs: &[(f64, f64, f64)], fit_slope: bool) -> Option<(f64, f64)> {
    let mut keep: Vec<bool> = vec![true; obs.len()];
    let mut fit = None;
    for _ in 0..5 {
        let pts: Vec<&(f64, f64, f64)> = obs
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(o, _)| o)
            .collect();
        if pts.len() < 3 {
            break;
        }
        let sw: f64 = pts.iter().map(|p| p.2).sum();
        let mt = pts.iter().map(|p| p.2 * p.0).sum::<f64>() / sw;
        let md = pts.iter().map(|p| p.2 * p.1).sum::<f64>() / sw;
        let b = if fit_slope {
            let stt: f64 = pts.iter().map(|p| p.2 * (p.0 - mt) * (p.0 - mt)).sum();
            let std: f64 = pts.iter().map(|p| p.2 * (p.0 - mt) * (p.1 - md)).sum();
            if stt > 1e-9 {
                std / stt
            } else {
                0.0
            }
        } else {
            0.0
        };
        let a = md - b * mt;
        fit = Some((a, b));
        let mut res: Vec<f64> = obs.iter().map(|p| (p.1 - a - b * p.0).abs()).collect();
        let mut sorted: Vec<f64> = res
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(r, _)| *r)
            .collect();
        sorted.sort_by(f64::total_cmp);
        let mad = sorted[sorted.len() / 2];
        let thr = (3.0 * 1.4826 * mad).max(0.75);
        let mut changed = false;
        for (k, r) in keep.iter_mut().zip(res.iter_mut()) {
            let new = *r <= thr;
            if new != *k {
                changed = true;
                *k = new;
            }
        }
        if !changed {
            break;
        }
    }
    fit
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

    fn params() -> FineParams {
        FineParams {
            win_len: 2048,
            hop_s: 0.25,
            max_windows: 600,
            max_lag: 480,
            resample: false,
            stretched: false,
            max_end_shift: 24.0,
            min_rate_slack: 0.0,
        }
    }

    #[test]
    fn a_reflection_stronger_than_the_direct_sound_is_not_the_placement() {
        let fs = 8000.0;
        let song = noise(30 * 8000, 11);
        // recording starts 5 s into the song; direct sound at 0.8, a
        // reflection 14 ms later at 1.0, noise about 6 dB under the music
        let start = 5.0;
        let echo = (0.014 * fs) as usize;
        let first = (start * fs) as usize;
        let background = noise(20 * 8000, 12);
        let recording: Vec<f32> = (0..20 * 8000)
            .map(|i| 0.8 * song[first + i] + song[first + i - echo] + 0.6 * background[i])
            .collect();
        let t_ref = 10.0;
        let truth = t_ref + start;
        // the candidate line is 3 ms off
        let line = Line {
            t_ref,
            sigma: truth + 0.003,
            rate: 1.0,
        };
        let out = refine_line(
            &recording,
            &song,
            fs,
            &line,
            &params(),
            2,
            &CancelToken::new(),
        )
        .expect("refine");
        let err_ms = (out.line.sigma - truth) * 1e3;
        assert!(err_ms.abs() < 1.0, "direct sound missed by {err_ms:.2} ms");
        assert!(out.z > 20.0, "z {}", out.z);
    }

    #[test]
    fn a_periodic_side_peak_is_not_taken_for_the_direct_sound() {
        let fs = 8000.0;
        // a held note (period 10 ms) over a quieter unique part: the
        // correlation has side peaks every 10 ms on both sides
        let cycle = noise(80, 21);
        let unique = noise(30 * 8000, 23);
        let song: Vec<f32> = (0..30 * 8000)
            .map(|i| cycle[i % 80] + 0.2 * unique[i])
            .collect();
        let start = 5.0;
        let first = (start * fs) as usize;
        let background = noise(20 * 8000, 22);
        let recording: Vec<f32> = (0..20 * 8000)
            .map(|i| song[first + i] + 0.3 * background[i])
            .collect();
        let t_ref = 10.0;
        let truth = t_ref + start;
        let line = Line {
            t_ref,
            sigma: truth - 0.002,
            rate: 1.0,
        };
        let out = refine_line(
            &recording,
            &song,
            fs,
            &line,
            &params(),
            2,
            &CancelToken::new(),
        )
        .expect("refine");
        let err_ms = (out.line.sigma - truth) * 1e3;
        assert!(err_ms.abs() < 0.5, "placement off by {err_ms:.2} ms");
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
                let rms = (corr.iter().map(|v| v * v).sum::<f32>() / corr.len() as f32).sqrt();
                WindowCorr {
                    t_s: j as f64,
                    corr,
                    rms,
                    lag_scale: 1.0,
                    base_shift: 0.0,
                    song_db: 0.0,
                }
            })
            .collect()
    }

    #[test]
    fn direct_arrival_is_the_earlier_one_sided_peak() {
        // an echo: the later copy (lower lag) strongest, its mirror negative
        let w = windows_with_peaks(&[(0, 0.5), (-112, 0.6), (-224, -0.1)]);
        assert_eq!(direct_arrival(&w, 368.0, 0.0, 20.0, 8000.0), 480.0);
        // two loudspeakers 3 ms apart, the farther one louder
        let w = windows_with_peaks(&[(0, 0.4), (-24, 0.5)]);
        assert_eq!(direct_arrival(&w, 456.0, 0.0, 20.0, 8000.0), 480.0);
        // symmetric side peaks (periodic signal): the strongest one stays
        let w = windows_with_peaks(&[(0, 0.5), (80, 0.35), (-80, 0.35)]);
        assert_eq!(direct_arrival(&w, 480.0, 0.0, 20.0, 8000.0), 480.0);
        // a weak earlier peak is not the direct sound
        let w = windows_with_peaks(&[(0, 0.5), (60, 0.15)]);
        assert_eq!(direct_arrival(&w, 480.0, 0.0, 20.0, 8000.0), 480.0);
        // nor one beyond the search range
        let w = windows_with_peaks(&[(0, 0.5), (400, 0.45)]);
        assert_eq!(direct_arrival(&w, 480.0, 0.0, 20.0, 8000.0), 480.0);
    }
}

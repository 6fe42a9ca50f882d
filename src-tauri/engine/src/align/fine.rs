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

mod coherence;
mod line_fit;
mod search;
mod windows;

use crate::cancel::CancelToken;
use crate::error::Result;
use coherence::{line_coherence, line_window_coherence};
use line_fit::{robust_line_fit, window_peaks};
use search::search_summed;
pub(crate) use search::{add_parity_row, direct_lag};
pub(crate) use windows::{window_correlations, LineWindows, WindowGeometry};

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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::align::tests::fine_params;
    use crate::test_signal::noise;

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
            &fine_params(),
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
            &fine_params(),
            2,
            &CancelToken::new(),
        )
        .expect("refine");
        let err_ms = (out.line.sigma - truth) * 1e3;
        assert!(err_ms.abs() < 0.5, "placement off by {err_ms:.2} ms");
    }
}

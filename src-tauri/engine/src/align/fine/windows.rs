//! The windows' correlations: each recording window along a line cut, the
//! song excerpt the line predicts read (re-timed when resampled), and the
//! two correlated with GCC-PHAT.

use super::{Line, WindowCorr};
use crate::cancel::CancelToken;
use crate::dsp::gcc::GccPhat;
use crate::dsp::interp::SincInterpolator;
use crate::dsp::par::par_map_with;
use crate::error::Result;

/// Frequency band used by GCC-PHAT (Hz): phones keep it, rooms smear less above 300 Hz.
const GCC_BAND_HZ: (f64, f64) = (300.0, 3600.0);

/// Per-thread scratch of the window correlations.
struct WindowScratch {
    gcc: GccPhat,
    segment: Vec<f32>,
    corr: Vec<f32>,
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

//! `audio`: the clean song, placed in time for the output video.
//!
//! Output sample `n` (at the song's sample rate) is the song at
//! `song_time = b0 + n / (rate * sr)`, where `b0` is the song time heard at the
//! first presented video frame. Three ways of following `rate`:
//! * `rate == 1`: samples pass through (only the start is positioned);
//! * clock drift (|rate - 1| small): libswresample's compensation stretches
//!   the song by exactly `rate` (a resampling: pitch moves by a few cents at
//!   most, inaudible, and it is exact in time);
//! * a real playback speed change: libavfilter's `rubberband` (or `atempo`
//!   when FFmpeg lacks it) stretches time and keeps the pitch ([`stretch`]).
//!
//! The result is encoded to AAC with FFmpeg's native encoder
//! ([`encoder`]), for long outputs by two encoders in parallel spliced where
//! they agree ([`split`]). Alternatively, when the song is AAC and the rate
//! is 1, its packets are copied and an edit list positions them to the
//! sample ([`copier`]); with clock drift only (within
//! [`PICTURE_DRIFT_LIMIT`]) they are copied too, and the picture's
//! timestamps follow the song's clock instead. [`track`] chooses among
//! these and feeds the muxer.

pub(crate) mod copier;
pub(crate) mod encoder;
pub(crate) mod feed;
pub(crate) mod mix;
mod retime;
pub(crate) mod split;
pub(crate) mod stretch;
pub(crate) mod track;

use crate::timeline::Placement;
use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How a rate other than 1 is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RetimeMode {
    /// Resample for small differences (clock drift), keep the pitch for
    /// larger ones (a real speed change).
    #[default]
    Auto,
    /// Always resample (the pitch follows the speed, like a turntable).
    Resample,
    /// Always stretch time keeping the pitch (`atempo`).
    KeepPitch,
}

/// What was actually done to follow the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retime {
    None,
    Resample,
    Tempo,
    /// The song's packets copied on its own clock, and the picture's
    /// timestamps scaled by `1 / rate` to follow it (clock drift only, see
    /// [`PICTURE_DRIFT_LIMIT`]): nothing decoded or encoded. Only in a
    /// report; a render is never asked for it.
    Picture,
}

/// Up to this far from 1 the difference is clock drift between two devices
/// (typically 50-300 ppm): resampling moves the pitch by under 5 cents.
pub(crate) const DRIFT_LIMIT: f64 = 0.003;

/// Up to this far from 1, when the song's packets are copied, the drift is
/// followed by the picture instead of the song: its timestamps scaled by
/// `1 / rate` (at most 1 ms per second: 3.6 s over an hour, a frame every
/// 33 s at 30 frames/s; a phone's clock drifts 50-300 ppm). Beyond it the
/// song is re-timed and encoded, as a real speed change needs.
pub(crate) const PICTURE_DRIFT_LIMIT: f64 = 0.001;

pub(crate) fn choose_retime(rate: f64, mode: RetimeMode) -> Retime {
    if (rate - 1.0).abs() < 1e-7 {
        return Retime::None;
    }
    match mode {
        RetimeMode::Resample => Retime::Resample,
        RetimeMode::KeepPitch => Retime::Tempo,
        RetimeMode::Auto if (rate - 1.0).abs() <= DRIFT_LIMIT => Retime::Resample,
        RetimeMode::Auto => Retime::Tempo,
    }
}

/// What the audio encoder needs to know.
#[derive(Debug, Clone)]
pub(crate) struct SongRender {
    pub song: PathBuf,
    pub placement: Placement,
    /// Recording time shown at output time 0 (the first presented frame).
    pub out_start_recording_s: f64,
    /// Output length, seconds.
    pub duration_s: f64,
    pub bitrate: usize,
    pub retime: Retime,
    /// Render only output samples `[from, to)` (for encoding in parallel
    /// pieces; `Retime::None` only). Packet timestamps stay global.
    pub range: Option<(usize, usize)>,
    /// Several plays mixed (`placement` and `retime` are then the first
    /// play's and the strongest re-timing): see [`mix`].
    pub mix: Option<std::sync::Arc<mix::Mix>>,
}

impl SongRender {
    /// Output length in samples at `sample_rate`.
    pub fn total_samples(&self, sample_rate: u32) -> usize {
        (self.duration_s * f64::from(sample_rate)).round().max(0.0) as usize
    }
}

/// Where the output's audio packets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioSource {
    Encoded,
    Copied,
}

/// An encoded audio packet with its timing in 1/sample_rate units.
pub(crate) type AudioPacket = ffmpeg::Packet;

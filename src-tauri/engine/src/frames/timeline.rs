//! Every frame's presentation time, from the stream's own timestamps (read
//! from the packets, nothing decoded): frame index <-> time both ways, exact
//! for variable frame rates. Costs one read of the file's video packets.

use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::media::ffi::select_stream;
use crate::media::input::open_input_fast;
use ffmpeg_next as ffmpeg;
use std::path::Path;

/// A frame's place: index and presentation interval in recording time (s).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrameSpan {
    pub index: usize,
    pub start_s: f64,
    pub end_s: f64,
}

#[derive(Debug, Clone)]
pub struct Timeline {
    /// Presentation start of every frame, ticks, increasing.
    starts: Vec<i64>,
    /// End of the last frame, ticks.
    end: i64,
    tb: f64,
    origin_s: f64,
}

impl Timeline {
    /// Reads the presentation timestamps of video stream `stream_index` of
    /// `path`. Frames an edit list hides (flagged discard) are not counted.
    pub(crate) fn scan(
        path: &Path,
        stream_index: usize,
        origin_s: f64,
        frame_ticks: i64,
        cancel: &CancelToken,
    ) -> Result<Self> {
        let mut ictx = open_input_fast(path)?;
        let tb = ictx
            .stream(stream_index)
            .map(|s| f64::from(s.time_base()))
            .ok_or_else(|| EngineError::NoVideo(path.to_path_buf()))?;
        select_stream(&mut ictx, stream_index);
        let mut starts = Vec::new();
        let mut end = i64::MIN;
        let mut n = 0u32;
        loop {
            // A fresh packet each time: reading into a filled one leaks its data.
            let mut packet = ffmpeg::Packet::empty();
            if packet.read(&mut ictx).is_err() {
                break;
            }
            n += 1;
            if n.is_multiple_of(256) {
                cancel.check()?;
            }
            // SAFETY: reading a plain field of a valid packet.
            let hidden = unsafe { (*ffmpeg::packet::Ref::as_ptr(&packet)).flags }
                & ffmpeg::ffi::AV_PKT_FLAG_DISCARD
                != 0;
            if packet.stream() != stream_index || hidden {
                continue;
            }
            if let Some(pts) = packet.pts() {
                starts.push(pts);
                let d = if packet.duration() > 0 {
                    packet.duration()
                } else {
                    frame_ticks
                };
                end = end.max(pts + d);
            }
        }
        if starts.is_empty() {
            return Err(EngineError::Unreadable {
                path: path.to_path_buf(),
                reason: "no video frame could be read; the file looks damaged".into(),
            });
        }
        starts.sort_unstable();
        starts.dedup();
        Ok(Self {
            starts,
            end,
            tb,
            origin_s,
        })
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    fn ticks(&self, t_s: f64) -> i64 {
        ((t_s + self.origin_s) / self.tb).round() as i64
    }

    fn seconds(&self, ticks: i64) -> f64 {
        ticks as f64 * self.tb - self.origin_s
    }

    /// The frame shown at recording time `t_s` (the one whose interval holds
    /// it; the first before the picture starts, the last after it ends).
    pub fn index_at(&self, t_s: f64) -> usize {
        let ts = self.ticks(t_s);
        self.starts.partition_point(|&s| s <= ts).saturating_sub(1)
    }

    /// The interval `[start, end)` in stream ticks of the frame holding `ts`
    /// (stream ticks), when `ts` lies within the picture.
    pub(crate) fn interval_at_ticks(&self, ts: i64) -> Option<(i64, i64)> {
        let i = self.starts.partition_point(|&s| s <= ts).checked_sub(1)?;
        let end = self.starts.get(i + 1).copied().unwrap_or(self.end);
        (ts < end).then_some((self.starts[i], end))
    }

    /// Frame `index` (clamped to the last).
    pub fn span(&self, index: usize) -> FrameSpan {
        let i = index.min(self.starts.len().saturating_sub(1));
        let end = self.starts.get(i + 1).copied().unwrap_or(self.end);
        FrameSpan {
            index: i,
            start_s: self.seconds(self.starts[i]),
            end_s: self.seconds(end),
        }
    }

    /// The frame `frames` away from the one shown at `t_s` (clamped to the video).
    pub fn step(&self, t_s: f64, frames: i64) -> FrameSpan {
        let i = self.index_at(t_s) as i64 + frames;
        self.span(i.clamp(0, self.starts.len() as i64 - 1) as usize)
    }
}

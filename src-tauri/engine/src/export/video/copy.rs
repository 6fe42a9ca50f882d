//! The output's video stream: the cut's packets as they are (after a
//! smart-cut head, if any), timestamps shifted so that the cut is time 0.

use super::cut::{CutReader, VideoCut};
use super::{VideoReader, VideoTrack};
use crate::error::{EngineError, Result};
use crate::export::mux::OutStream;
use crate::export::smartcut::SmartHead;
use crate::media::ffi::{self, OwnedParams};
use ffmpeg_next as ffmpeg;
use std::collections::VecDeque;
use std::path::Path;

/// The video stream being copied.
pub(crate) struct VideoCopy<'a> {
    reader: CutReader<'a>,
    /// A smart cut's re-encoded packets, sent before the copied ones.
    head: VecDeque<ffmpeg::Packet>,
    /// pts of the cut, which becomes output time 0.
    shift: i64,
    /// Output time per recording time: 1, or `1 / rate` when the picture
    /// follows the song's clock (its packets copied, see `audio::copier`).
    scale: f64,
    pub stream: OutStream,
    /// At most this many packets are written, when the recording's header
    /// counts its frames (MP4, MOV, AVI; not Matroska).
    pub packets_at_most: Option<u64>,
}

impl<'a> VideoCopy<'a> {
    /// Adds the video stream to `octx` (the recording's codec parameters
    /// `params`, or with a smart cut's head its `avcC`/`hvcC`), with the
    /// recording's date and other global tags.
    pub fn add(
        octx: &mut ffmpeg::format::context::Output,
        reader: VideoReader<'a>,
        (track, params): (&VideoTrack, &OwnedParams),
        (cut, head, scale): (&VideoCut, Option<&SmartHead>, f64),
    ) -> Result<Self> {
        let path = reader.path.to_path_buf();
        let reader = CutReader::open(reader, track, head.map_or(cut, |h| &h.rest))?;
        let ist = reader
            .input_stream()
            .ok_or_else(|| EngineError::NoVideo(path.clone()))?;
        let id = ist.parameters().id();
        if !ffi::mp4_accepts(id) {
            return Err(EngineError::Unsupported {
                path,
                reason: format!(
                    "its video codec ({id:?}) cannot be stored in MP4 without re-encoding; convert the video to H.264 or HEVC first"
                ),
            });
        }
        let in_tb = ist.time_base();
        // A re-encoded head replaces copied packets; counting both is a bound.
        let head_packets = head.map_or(0, |h| h.packets.len() as u64);
        let packets_at_most = u64::try_from(ist.frames())
            .ok()
            .filter(|&n| n > 0)
            .map(|n| n + head_packets);
        let output_error = |e| EngineError::media(Path::new("output"), e);
        let index = ffi::add_copied_stream(octx, &ist, params).map_err(output_error)?;
        if let Some(h) = head {
            ffi::set_extradata(octx, index, &h.extradata).map_err(output_error)?;
        }
        if let Some((container, codec)) = aspect_ratios(octx, index) {
            if contradict(container, codec) {
                return Err(crate::media::input::damaged(
                    &path,
                    &format!(
                        "its picture's pixel aspect ratio is stated twice, differently (container {container}, video {codec})"
                    ),
                ));
            }
        }
        // Keep the recording's date (and other global tags) in the export.
        let mut meta = ffmpeg::Dictionary::new();
        if let Some(ct) = reader.tag("creation_time") {
            meta.set("creation_time", &ct);
        }
        meta.set("comment", "made with BeatSync");
        octx.set_metadata(meta);
        Ok(Self {
            reader,
            head: head
                .map(|h| h.packets.iter().cloned().collect())
                .unwrap_or_default(),
            shift: cut.start_pts,
            scale,
            stream: OutStream::new(index, in_tb),
            packets_at_most,
        })
    }

    /// The next packet, as read (input time base, unshifted).
    pub fn next(&mut self) -> Result<Option<ffmpeg::Packet>> {
        match self.head.pop_front() {
            Some(p) => Ok(Some(p)),
            None => self.reader.next(),
        }
    }

    /// Output time of a packet read by [`VideoCopy::next`], seconds.
    pub fn time_of(&self, p: &ffmpeg::Packet) -> f64 {
        self.out_ts(p.dts().or(p.pts()).unwrap_or(self.shift)) as f64 * f64::from(self.stream.in_tb)
    }

    /// A recording timestamp as an output one (input time base): shifted
    /// so that the cut is 0, then scaled (a monotonic map: order and
    /// pts >= dts are kept).
    fn out_ts(&self, ts: i64) -> i64 {
        scaled_ts(ts - self.shift, self.scale)
    }

    /// A packet read by [`VideoCopy::next`], ready for the muxer.
    pub fn prepare(&self, mut pkt: ffmpeg::Packet) -> ffmpeg::Packet {
        let pts = pkt.pts().or(pkt.dts()).map(|t| self.out_ts(t));
        let dts = pkt.dts().or(pkt.pts()).map(|t| self.out_ts(t));
        pkt.set_pts(pts);
        pkt.set_dts(dts);
        if self.scale != 1.0 {
            pkt.set_duration(scaled_ts(pkt.duration(), self.scale));
        }
        self.stream.prepare(&mut pkt);
        pkt
    }
}

/// `ts * scale` to the nearest tick; exactly `ts` at scale 1.
fn scaled_ts(ts: i64, scale: f64) -> i64 {
    if scale == 1.0 {
        ts
    } else {
        (ts as f64 * scale).round() as i64
    }
}

/// The pixel aspect ratio an output stream states twice: the stream's (the
/// container's, from the recording's `tkhd`/`pasp`) and its codec's.
fn aspect_ratios(
    octx: &ffmpeg::format::context::Output,
    index: usize,
) -> Option<(ffmpeg::Rational, ffmpeg::Rational)> {
    let st = octx.stream(index)?;
    // SAFETY: reading plain fields of a live stream and of its parameters.
    unsafe {
        let s = st.as_ptr();
        Some((
            (*s).sample_aspect_ratio.into(),
            (*(*s).codecpar).sample_aspect_ratio.into(),
        ))
    }
}

/// Whether the MP4 muxer refuses the header for these two ratios (FFmpeg's
/// `init_muxer`: both set and more than 0.4 % apart). A bit flipped in the
/// recording's `pasp` box gives 16385:1 against the codec's 1:1; the
/// muxer's refusal (`EINVAL`, no write failed) would read as an output
/// error.
fn contradict(container: ffmpeg::Rational, codec: ffmpeg::Rational) -> bool {
    let set = |r: ffmpeg::Rational| r.numerator() != 0 && r.denominator() != 0;
    if !set(container) || !set(codec) || container == codec {
        return false;
    }
    let (a, b) = (f64::from(container), f64::from(codec));
    (a - b).abs() > 0.004 * a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_timestamps_keep_their_order_and_are_exact_at_scale_one() {
        for ts in [-7_i64, 0, 1, 511, 512, 1 << 40] {
            assert_eq!(scaled_ts(ts, 1.0), ts);
        }
        // An hour at 90 kHz, 300 ppm faster: 1.08 s shorter, to the tick.
        let scale = 1.0 / 1.0003;
        assert_eq!(scaled_ts(324_000_000, scale), 323_902_829);
        let frames: Vec<i64> = (0..10_000).map(|i| scaled_ts(i * 3003, scale)).collect();
        assert!(frames.windows(2).all(|w| w[1] - w[0] >= 3001), "order kept");
    }

    #[test]
    fn only_two_set_and_different_aspect_ratios_contradict() {
        let r = ffmpeg::Rational::new;
        assert!(contradict(r(16385, 1), r(1, 1)));
        assert!(contradict(r(4, 3), r(1, 1)));
        assert!(!contradict(r(1, 1), r(1, 1)));
        assert!(!contradict(r(2, 2), r(1, 1)), "equal values");
        assert!(!contradict(r(0, 1), r(1, 1)), "container unset");
        assert!(!contradict(r(16385, 1), r(0, 1)), "codec unset");
        assert!(!contradict(r(1000, 1001), r(1, 1)), "within 0.4 %");
    }
}

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
        cut: &VideoCut,
        head: Option<&SmartHead>,
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
        (p.dts().or(p.pts()).unwrap_or(self.shift) - self.shift) as f64
            * f64::from(self.stream.in_tb)
    }

    /// A packet read by [`VideoCopy::next`], ready for the muxer.
    pub fn prepare(&self, mut pkt: ffmpeg::Packet) -> ffmpeg::Packet {
        let pts = pkt.pts().or(pkt.dts()).map(|t| t - self.shift);
        let dts = pkt.dts().or(pkt.pts()).map(|t| t - self.shift);
        pkt.set_pts(pts);
        pkt.set_dts(dts);
        self.stream.prepare(&mut pkt);
        pkt
    }
}

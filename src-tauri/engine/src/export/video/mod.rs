//! `video`: the recording's picture, copied packet for packet into the MP4
//! without decoding it, starting frame-accurately through an MP4 edit list.
//!
//! How the start works: copying must begin at a keyframe, and the cut rarely
//! falls on one. The packets from the previous keyframe on are copied with
//! their timestamps shifted so that the frame at the cut has pts 0; the frames
//! before it get negative timestamps, and FFmpeg's mov muxer turns that into
//! an edit list whose media time skips them. Players (QuickTime, WebKit,
//! Chrome, VLC, ffmpeg) decode those frames but start presenting at the cut.
//!
//! How the end works: packets are copied in decode order up to (not
//! including) the first one presented at or after the planned end. Every
//! copied frame then only references frames copied before it, so nothing
//! undecodable is left at the end.
//!
//! Here: the track's clock and extent ([`VideoTrack`]), reading its packets
//! ([`VideoReader`]) and its complete codec parameters; the cut itself is in
//! [`cut`].

pub(crate) mod copy;
pub(crate) mod cut;

use crate::error::{EngineError, Result};
use crate::media::ffi::{self, OwnedParams};
use crate::media::input::{open_input, read_error, seek_error, video_decoder, Input};
use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The recording's picture: which stream, its clock and extent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoTrack {
    pub stream_index: usize,
    pub codec: String,
    /// Stream time base as (numerator, denominator).
    pub time_base: (i32, i32),
    /// First and last instant of picture, container seconds.
    pub start_s: f64,
    pub end_s: f64,
    /// Typical frame duration, seconds.
    pub frame_s: f64,
}

impl VideoTrack {
    pub fn tb(&self) -> f64 {
        f64::from(self.time_base.0) / f64::from(self.time_base.1)
    }
    fn to_ts(&self, seconds: f64) -> i64 {
        (seconds / self.tb()).round() as i64
    }
    fn to_s(&self, ts: i64) -> f64 {
        ts as f64 * self.tb()
    }
}

/// One video packet's timing, as the demuxer gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PacketTiming {
    pts: i64,
    dts: i64,
    duration: i64,
    key: bool,
    pos: isize,
}

pub(crate) fn timing_of(p: &ffmpeg::Packet) -> Option<PacketTiming> {
    let pts = p.pts().or(p.dts())?;
    let dts = p.dts().unwrap_or(pts);
    Some(PacketTiming {
        pts,
        dts,
        duration: p.duration(),
        key: p.is_key(),
        pos: p.position(),
    })
}

impl PacketTiming {
    pub fn pts(&self) -> i64 {
        self.pts
    }
}

/// Reads one video stream's packets from an opened input whose other
/// streams are dropped ([`ffi::select_stream`]).
pub(crate) struct VideoReader<'a> {
    pub ictx: &'a mut Input,
    pub stream_index: usize,
    pub path: &'a Path,
}

impl VideoReader<'_> {
    /// Seeks to the keyframe at or before `ts` (stream time base); a file
    /// that cannot seek there is read from its start instead.
    pub fn seek(&mut self, ts: i64) -> Result<()> {
        if let Err(e) = ffi::seek_keyframe_before(self.ictx, self.stream_index, ts) {
            if ffi::seek_file_start(self.ictx).is_err() {
                return Err(seek_error(self.path, e));
            }
        }
        Ok(())
    }

    /// Next packet of the video stream; `None` at the end.
    pub fn next(&mut self) -> Result<Option<ffmpeg::Packet>> {
        loop {
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(self.ictx) {
                Ok(()) => {
                    if packet.stream() == self.stream_index {
                        return Ok(Some(packet));
                    }
                }
                Err(ffmpeg::Error::Eof) => return Ok(None),
                Err(e) => return Err(read_error(self.path, e)),
            }
        }
    }

    pub fn stream(&self) -> Result<ffmpeg::format::stream::Stream<'_>> {
        self.ictx
            .stream(self.stream_index)
            .ok_or_else(|| EngineError::NoVideo(self.path.to_path_buf()))
    }
}

/// The video track's clock and extent. `first_pts`: the lowest pts of the
/// stream's first packets (where the picture starts). The end is measured
/// from the last packets (one seek near the end), not trusted from the header.
pub(crate) fn measure_track(r: &mut VideoReader, first_pts: i64) -> Result<VideoTrack> {
    let mut track = header_track(r)?;
    track.start_s = track.to_s(first_pts);
    // Last presented instant: seek a few seconds before the header's end and
    // read to the end.
    let mut back = 3.0;
    loop {
        r.seek(track.to_ts((track.end_s - back).max(track.start_s)))?;
        let mut end_ts: Option<i64> = None;
        let mut n = 0usize;
        while let Some(p) = r.next()? {
            if let Some(t) = timing_of(&p) {
                let d = if t.duration > 0 {
                    t.duration
                } else {
                    track.to_ts(track.frame_s).max(1)
                };
                end_ts = Some(end_ts.map_or(t.pts + d, |e: i64| e.max(t.pts + d)));
                n += 1;
            }
        }
        if let Some(e) = end_ts {
            track.end_s = track.to_s(e);
            break;
        }
        if n == 0 && back < 1e5 && track.end_s - back > track.start_s {
            back *= 4.0;
            continue;
        }
        break;
    }
    if track.end_s <= track.start_s {
        return Err(EngineError::Empty(r.path.to_path_buf()));
    }
    Ok(track)
}

/// What the header says: time base, codec, frame duration, extent.
fn header_track(r: &VideoReader) -> Result<VideoTrack> {
    let st = r.stream()?;
    let tb = st.time_base();
    if tb.numerator() <= 0 || tb.denominator() <= 0 {
        return Err(EngineError::media(r.path, "video stream has no time base"));
    }
    let known = |q: ffmpeg::Rational| q.numerator() > 0 && q.denominator() > 0;
    let fr = if known(st.avg_frame_rate()) {
        f64::from(st.avg_frame_rate())
    } else if known(st.rate()) {
        f64::from(st.rate())
    } else {
        30.0
    };
    let tbf = f64::from(tb);
    let header_start = if st.start_time() != ffmpeg::ffi::AV_NOPTS_VALUE {
        st.start_time() as f64 * tbf
    } else {
        0.0
    };
    let header_dur = if st.duration() > 0 {
        st.duration() as f64 * tbf
    } else if r.ictx.duration() > 0 {
        r.ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
    } else {
        0.0
    };
    Ok(VideoTrack {
        stream_index: r.stream_index,
        codec: format!("{:?}", st.parameters().id()).to_lowercase(),
        time_base: (tb.numerator(), tb.denominator()),
        start_s: header_start,
        end_s: header_start + header_dur,
        frame_s: 1.0 / fr.clamp(1.0, 1000.0),
    })
}

/// The stream's parameters with what only the bitstream tells (pixel
/// format, profile, level, colour description, chroma siting) filled in the
/// way `avformat_find_stream_info` fills them, by decoding one frame: the
/// first keyframe (that function decodes up to seven frames, to also guess
/// the reordering delay, which a muxer given every packet's dts does not
/// use). `None` when that keyframe does not decode.
pub(crate) fn complete_params(
    r: &mut VideoReader,
    track: &VideoTrack,
) -> Result<Option<OwnedParams>> {
    let params = r.stream()?.parameters();
    let owned =
        OwnedParams::copy_of(&params).ok_or_else(|| EngineError::media(r.path, "out of memory"))?;
    if ffi::param_fields(&params).format >= 0 {
        // Already complete (the input was opened with full probing).
        return Ok(Some(owned));
    }
    let Ok(mut decoder) = video_decoder(params.clone(), 1) else {
        return Ok(None);
    };
    r.seek(track.to_ts(track.start_s))?;
    let mut frame = ffmpeg::frame::Video::empty();
    for _ in 0..64 {
        let Some(p) = r.next()? else { break };
        if !p.is_key() {
            continue;
        }
        let _ = decoder.send_packet(&p);
        let _ = decoder.send_eof();
        if decoder.receive_frame(&mut frame).is_err() {
            return Ok(None);
        }
        return Ok(OwnedParams::completed_by(&params, &decoder));
    }
    Ok(None)
}

/// The video stream's parameters as FFmpeg's own probing completes them,
/// for a stream whose first keyframe would not decode: a full opening of
/// the file of its own, the one case that needs it.
pub(crate) fn probed_params(path: &Path) -> Result<OwnedParams> {
    let ictx = open_input(path)?;
    ictx.streams()
        .best(ffmpeg::media::Type::Video)
        .and_then(|st| OwnedParams::copy_of(&st.parameters()))
        .ok_or_else(|| EngineError::NoVideo(path.to_path_buf()))
}

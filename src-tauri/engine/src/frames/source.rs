//! A video opened for pictures: the demuxer and decoder of its video stream,
//! decoding in presentation order with each frame's presentation interval.
//!
//! Time: frames carry the demuxer's presentation timestamps (edit lists
//! already applied by libavformat, as for the export's copy), in the stream's
//! time base. Recording time 0 is the container time of the recording's first
//! decoded audio sample (see [`crate::export::source::Recording::read_start`]), the clock
//! of the waveform and of the aligner; a video without sound has origin 0.

use crate::error::{EngineError, Result};
use crate::media::ffi::{seek_keyframe_before, select_stream};
use crate::media::input::open_input_fast;
use crate::media::probe::rotation_of;
use ffmpeg_next as ffmpeg;
use std::path::{Path, PathBuf};

/// How many undecodable packets or frames in a row end the decode (a damaged
/// file must end in an error, not in a loop).
const MAX_ERRORS_IN_A_ROW: u32 = 200;

/// Frames this close before a target are always decoded, even the ones no
/// other frame refers to: the frame shown at the target starts at most one
/// frame interval before it, and a phone's variable frame rate stretches an
/// interval well below this (see [`VideoSource::skip_unreferenced_before`]).
const KEEP_BEFORE_TARGET_S: f64 = 0.25;

/// What a picture consumer needs to know about the video stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PictureInfo {
    pub path: PathBuf,
    /// Size of the decoded pictures, before rotation.
    pub coded_width: u32,
    pub coded_height: u32,
    /// Size as shown: pixel aspect and rotation applied.
    pub display_width: u32,
    pub display_height: u32,
    /// Clockwise rotation applied for display (0, 90, 180, 270).
    pub rotation: i32,
    /// Average frame rate (informational: frame times come from timestamps).
    pub frame_rate: f64,
    /// Container time (s) of recording time 0.
    pub origin_s: f64,
    /// First frame's start and the header's end of the picture, recording time (s).
    pub start_s: f64,
    pub end_s: f64,
}

/// One decoded frame and its presentation interval `[start, end)` in stream ticks.
pub(crate) struct DecodedFrame {
    pub start: i64,
    pub end: i64,
    pub picture: ffmpeg::frame::Video,
}

pub(crate) struct VideoSource {
    path: PathBuf,
    ictx: ffmpeg::format::context::Input,
    stream_index: usize,
    decoder: ffmpeg::decoder::Video,
    /// Stream time base, seconds per tick.
    pub tb: f64,
    /// Typical frame duration in ticks (for the last frame's end).
    pub frame_ticks: i64,
    /// Last decoded frame, whose end is known once the next one is decoded.
    held: Option<(i64, ffmpeg::frame::Video)>,
    eof_sent: bool,
    /// Deblocking skipped (see [`VideoSource::set_fast`]).
    fast: bool,
    /// Some picture since the last seek was decoded without deblocking, so
    /// the pictures referring to it are not exact.
    inexact: bool,
    /// Packets before this (ticks) that no other frame refers to are not
    /// decoded (see [`VideoSource::skip_unreferenced_before`]).
    skip_before: Option<i64>,
    /// The decoder is set to drop unreferenced frames now.
    skipping: bool,
    /// The interval of the frame a seek is for, when the timeline told it
    /// (see [`VideoSource::expect_frame`]).
    known: Option<(i64, i64)>,
    pub rotation: i32,
    pub sar: (i32, i32),
    pub frame_rate: f64,
    /// Header duration of the stream (ticks from its start), 0 when unknown.
    header_end: i64,
}

impl VideoSource {
    /// Opens the best video stream of `path` for decoding with `threads`
    /// decoder threads (0: FFmpeg chooses).
    pub fn open(path: &Path, threads: usize) -> Result<Self> {
        let mut ictx = open_input_fast(path)?;
        let stream = ictx
            .streams()
            .filter(|s| {
                s.parameters().medium() == ffmpeg::media::Type::Video
                    && !s
                        .disposition()
                        .contains(ffmpeg::format::stream::Disposition::ATTACHED_PIC)
            })
            .max_by_key(|s| {
                // SAFETY: reading plain fields of valid codec parameters.
                unsafe {
                    let p = s.parameters().as_ptr();
                    i64::from((*p).width) * i64::from((*p).height)
                }
            })
            .ok_or_else(|| EngineError::NoVideo(path.to_path_buf()))?;
        let stream_index = stream.index();
        let tb_r = stream.time_base();
        if tb_r.numerator() <= 0 || tb_r.denominator() <= 0 {
            return Err(EngineError::media(path, "video stream has no time base"));
        }
        let tb = f64::from(tb_r);
        let decoder = open_decoder(path, &stream, threads)?;
        let frame_rate = rate_of(&stream);
        let frame_ticks = ((1.0 / frame_rate.clamp(1.0, 1000.0)) / tb)
            .round()
            .max(1.0) as i64;
        let sar = sample_aspect_of(&stream);
        let header_end = if stream.duration() > 0 {
            stream.duration()
        } else if ictx.duration() > 0 {
            (ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE) / tb) as i64
        } else {
            0
        };
        let rotation = rotation_of(&stream);
        select_stream(&mut ictx, stream_index);
        Ok(Self {
            path: path.to_path_buf(),
            ictx,
            stream_index,
            decoder,
            tb,
            frame_ticks,
            held: None,
            eof_sent: false,
            fast: false,
            inexact: false,
            skip_before: None,
            skipping: false,
            known: None,
            rotation,
            sar,
            frame_rate,
            header_end,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stream_index(&self) -> usize {
        self.stream_index
    }

    /// Seconds to stream ticks (nearest tick).
    pub fn ticks(&self, seconds: f64) -> i64 {
        (seconds / self.tb).round() as i64
    }

    pub fn seconds(&self, ticks: i64) -> f64 {
        ticks as f64 * self.tb
    }

    /// The header's idea of where the picture ends, from `start` (ticks).
    pub fn header_end(&self, start: i64) -> i64 {
        if self.header_end > 0 {
            start + self.header_end
        } else {
            start + self.frame_ticks
        }
    }

    /// Positions the decoder at the last keyframe at or before `ts`.
    pub fn seek(&mut self, ts: i64) -> Result<()> {
        seek_keyframe_before(&mut self.ictx, self.stream_index, ts)
            .map_err(|e| EngineError::media(&self.path, format!("seeking failed: {e}")))?;
        self.decoder.flush();
        self.held = None;
        self.eof_sent = false;
        self.inexact = self.fast;
        self.skip_before = None;
        self.known = None;
        Ok(())
    }

    /// The frame asked after this seek is the one of interval `[start, end)`
    /// (ticks; the timeline's packet scan knows every frame's start): the
    /// unreferenced frames before it are not decoded (as
    /// [`Self::skip_unreferenced_before`], without its margin), and it is
    /// returned as soon as it is decoded, its end known, instead of after the
    /// frame that follows it. The frames kept are still exactly a full
    /// decode's, and the decoder stands right after the frame, so decoding
    /// on gives the next ones. Ends at the next seek.
    pub fn expect_frame(&mut self, start: i64, end: i64) {
        self.skip_before = Some(start);
        self.known = Some((start, end));
    }

    /// Until the decoding reaches [`KEEP_BEFORE_TARGET_S`] before `target`
    /// (ticks), frames that no other frame refers to (H.264/HEVC
    /// non-reference frames: most B-frames) are dropped by the decoder
    /// instead of decoded: they would be decoded only to be passed over, and
    /// no later picture depends on them, so the frames kept are exactly what
    /// a full decode gives. Ends at the next seek.
    pub fn skip_unreferenced_before(&mut self, target: i64) {
        self.skip_before = Some(target - self.ticks(KEEP_BEFORE_TARGET_S));
    }

    /// Sets the decoder to drop or decode unreferenced frames for `packet`
    /// (read by the decoder, its frame threads included, per packet sent).
    fn choose_discard(&mut self, packet: &ffmpeg::Packet) {
        let skip = match (self.skip_before, packet.pts().or(packet.dts())) {
            (Some(before), Some(ts)) => ts < before,
            _ => false,
        };
        if skip == self.skipping {
            return;
        }
        if !skip {
            // Past the point: never again until the next seek.
            self.skip_before = None;
        }
        self.skipping = skip;
        let how = if skip {
            ffmpeg::ffi::AVDiscard::AVDISCARD_NONREF
        } else {
            ffmpeg::ffi::AVDiscard::AVDISCARD_DEFAULT
        };
        // SAFETY: a plain field of the open decoder's context (as in set_fast).
        unsafe { (*self.decoder.as_mut_ptr()).skip_frame = how };
    }

    /// Skips H.264/HEVC deblocking from the next packet on (about a quarter
    /// of the decoding time), or decodes exactly again. Without deblocking,
    /// block edges show slightly and the error carries on to the frames that
    /// refer to them until the next keyframe: invisible at preview sizes while
    /// playing, not acceptable for a still frame (see [`Self::is_exact`]).
    pub fn set_fast(&mut self, fast: bool) {
        if fast == self.fast {
            return;
        }
        self.fast = fast;
        self.inexact |= fast;
        let how = if fast {
            ffmpeg::ffi::AVDiscard::AVDISCARD_ALL
        } else {
            ffmpeg::ffi::AVDiscard::AVDISCARD_DEFAULT
        };
        // SAFETY: a plain field of the open decoder's context, read for each
        // packet sent (and copied to the frame threads' contexts then).
        unsafe { (*self.decoder.as_mut_ptr()).skip_loop_filter = how };
    }

    /// Whether the pictures decoded from here on are exact (no picture since
    /// the last seek was decoded fast).
    pub fn is_exact(&self) -> bool {
        !self.inexact
    }

    /// The next frame in presentation order with its interval; `None` at the
    /// end of the stream. The last frame lasts one typical frame duration.
    pub fn next(&mut self) -> Result<Option<DecodedFrame>> {
        loop {
            if let Some(f) = self.take_known() {
                return Ok(Some(f));
            }
            let mut picture = ffmpeg::frame::Video::empty();
            if !self.decode_one(&mut picture)? {
                return Ok(self.held.take().map(|(start, picture)| DecodedFrame {
                    start,
                    end: start + self.frame_ticks,
                    picture,
                }));
            }
            let Some(pts) = picture.timestamp().or(picture.pts()) else {
                continue;
            };
            match self.held.take() {
                None => self.held = Some((pts, picture)),
                Some((start, prev)) if pts > start => {
                    self.held = Some((pts, picture));
                    return Ok(Some(DecodedFrame {
                        start,
                        end: pts,
                        picture: prev,
                    }));
                }
                // A frame not after the held one (broken timestamps): keep the first.
                Some(held) => self.held = Some(held),
            }
        }
    }

    /// The held frame, when it is the one [`Self::expect_frame`] named.
    fn take_known(&mut self) -> Option<DecodedFrame> {
        let (start, end) = self.known?;
        if self.held.as_ref()?.0 != start {
            return None;
        }
        self.known = None;
        let (start, picture) = self.held.take()?;
        Some(DecodedFrame {
            start,
            end,
            picture,
        })
    }

    /// The picture of the last keyframe at or before `ts` (ticks), decoded
    /// alone; [`Keyframe::Same`] without decoding when its pts is `known`.
    pub fn keyframe_at(&mut self, ts: i64, known: Option<i64>) -> Result<Keyframe> {
        let mut from = ts;
        let mut back = self.ticks(1.0);
        for attempt in 0.. {
            self.seek(from)?;
            let Some(packet) = self.next_key_packet() else {
                return Ok(Keyframe::None);
            };
            let pts = packet.pts().unwrap_or(i64::MIN);
            if pts > ts && attempt < 4 {
                // A keyframe after the time (timestamps reordered around it):
                // look further back.
                from = ts - back;
                back *= 3;
                continue;
            }
            if Some(pts) == known {
                return Ok(Keyframe::Same);
            }
            return self
                .decode_alone(&packet)
                .map(|p| Keyframe::Picture(pts, p));
        }
        Ok(Keyframe::None)
    }

    /// The next keyframe packet of the stream with a timestamp.
    fn next_key_packet(&mut self) -> Option<ffmpeg::Packet> {
        loop {
            // A fresh packet each time: reading into a filled one leaks its data.
            let mut packet = ffmpeg::Packet::empty();
            packet.read(&mut self.ictx).ok()?;
            if packet.stream() == self.stream_index && packet.is_key() && packet.pts().is_some() {
                return Some(packet);
            }
        }
    }

    /// Decodes one intra-coded packet on its own (the decoder is flushed after).
    fn decode_alone(&mut self, packet: &ffmpeg::Packet) -> Result<ffmpeg::frame::Video> {
        let mut picture = ffmpeg::frame::Video::empty();
        let sent = self.decoder.send_packet(packet).is_ok();
        let _ = self.decoder.send_eof();
        let got = sent && self.decoder.receive_frame(&mut picture).is_ok();
        self.decoder.flush();
        if got {
            Ok(picture)
        } else {
            Err(self.damaged("a keyframe could not be decoded"))
        }
    }

    /// Receives one frame into `out`, feeding packets as needed; false at the end.
    fn decode_one(&mut self, out: &mut ffmpeg::frame::Video) -> Result<bool> {
        let mut errors = 0u32;
        loop {
            match self.decoder.receive_frame(out) {
                Ok(()) => return Ok(true),
                Err(ffmpeg::Error::Eof) => return Ok(false),
                Err(ffmpeg::Error::Other { errno }) if errno == libc::EAGAIN => {}
                Err(_) => {
                    // A frame that failed to decode: skip it, as players do.
                    errors += 1;
                    if errors > MAX_ERRORS_IN_A_ROW {
                        return Err(self.damaged("too many undecodable frames"));
                    }
                    continue;
                }
            }
            if self.eof_sent {
                return Ok(false);
            }
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) => {
                    if packet.stream() != self.stream_index {
                        continue;
                    }
                    self.choose_discard(&packet);
                    if self.decoder.send_packet(&packet).is_err() {
                        errors += 1;
                        if errors > MAX_ERRORS_IN_A_ROW {
                            return Err(self.damaged("too many undecodable packets"));
                        }
                    }
                }
                // End of file, or a read error in a truncated file: decode
                // what was read.
                Err(_) => {
                    let _ = self.decoder.send_eof();
                    self.eof_sent = true;
                }
            }
        }
    }

    pub fn damaged(&self, what: &str) -> EngineError {
        crate::media::input::damaged(&self.path, &format!("its video: {what}"))
    }
}

/// What [`VideoSource::keyframe_at`] found.
pub(crate) enum Keyframe {
    /// The keyframe whose pts the caller already knows.
    Same,
    Picture(i64, ffmpeg::frame::Video),
    /// No keyframe from there to the end.
    None,
}

/// The stream's decoder, frame-threaded on `threads` threads.
fn open_decoder(
    path: &Path,
    stream: &ffmpeg::format::stream::Stream,
    threads: usize,
) -> Result<ffmpeg::decoder::Video> {
    let codec_id = stream.parameters().id();
    if ffmpeg::codec::decoder::find(codec_id).is_none() {
        return Err(EngineError::Unsupported {
            path: path.to_path_buf(),
            reason: format!("no decoder for video codec {codec_id:?}"),
        });
    }
    let mut cctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| EngineError::media(path, e))?;
    cctx.set_threading(ffmpeg::codec::threading::Config {
        kind: ffmpeg::codec::threading::Type::Frame,
        count: threads,
        safe: false,
    });
    let mut dec = cctx.decoder();
    dec.set_packet_time_base(stream.time_base());
    dec.video().map_err(|e| EngineError::Unsupported {
        path: path.to_path_buf(),
        reason: format!("cannot open the video decoder: {e}"),
    })
}

/// The stream's sample aspect ratio, square pixels when it declares none.
fn sample_aspect_of(stream: &ffmpeg::format::stream::Stream) -> (i32, i32) {
    let r = stream.parameters();
    // SAFETY: reading a plain field of valid codec parameters.
    let a = unsafe { (*r.as_ptr()).sample_aspect_ratio };
    if a.num > 0 && a.den > 0 {
        (a.num, a.den)
    } else {
        (1, 1)
    }
}

fn rate_of(stream: &ffmpeg::format::stream::Stream) -> f64 {
    for r in [stream.avg_frame_rate(), stream.rate()] {
        if r.numerator() > 0 && r.denominator() > 0 {
            return f64::from(r);
        }
    }
    30.0
}

//! `decode`: the first audio stream of any file as mono f32 at an analysis
//! rate. Video packets are read past but never decoded. Streaming: callers
//! that do not need the whole signal in memory use [`AudioChunks`].
//!
//! Time base: sample 0 is the stream's first presented sample as FFmpeg
//! decodes it (encoder priming removed through the container's edit list or
//! gapless info by libavcodec itself), the same convention as `ffmpeg -i F
//! -f f32le -`, which is what the offset benchmark measures against.

use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::probe::{layout_or_default, open_input_fast};
use ffmpeg_next as ffmpeg;
use std::path::{Path, PathBuf};

/// Mono samples at `rate` Hz.
#[derive(Debug, Clone)]
pub struct MonoPcm {
    pub rate: u32,
    pub samples: Vec<f32>,
    /// Presentation time of sample 0 in the stream's own clock, in seconds
    /// (usually 0; informational).
    pub start_pts_s: f64,
}

impl MonoPcm {
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate)
    }
}

/// A pull-based decoder: each call to [`AudioChunks::next_chunk`] returns the
/// next block of mono samples at the requested rate (a few thousand samples).
pub struct AudioChunks {
    path: PathBuf,
    ictx: ffmpeg::format::context::Input,
    stream_index: usize,
    decoder: ffmpeg::decoder::Audio,
    resampler: Option<Resampler>,
    out_rate: u32,
    frame: ffmpeg::frame::Audio,
    eof_sent: bool,
    finished: bool,
    /// Estimated duration of the stream, for progress.
    pub duration_s: f64,
    /// Seconds of source audio decoded so far.
    pub position_s: f64,
    pub start_pts_s: Option<f64>,
    time_base: f64,
}

struct Resampler {
    ctx: ffmpeg::software::resampling::Context,
    in_format: ffmpeg::format::Sample,
    in_layout: ffmpeg::ChannelLayout,
    in_rate: u32,
}

impl AudioChunks {
    pub fn open(path: &Path, out_rate: u32) -> Result<Self> {
        // Decoding needs no stream-info probing (which would decode video
        // frames of a class video only to skip them).
        let ictx = open_input_fast(path)?;
        let stream = ictx
            .streams()
            .best(ffmpeg::media::Type::Audio)
            .ok_or_else(|| EngineError::NoAudio(path.to_path_buf()))?;
        let stream_index = stream.index();
        let tb = stream.time_base();
        let codec_id = stream.parameters().id();
        if ffmpeg::codec::decoder::find(codec_id).is_none() {
            return Err(EngineError::Unsupported {
                path: path.to_path_buf(),
                reason: format!("no decoder for audio codec {codec_id:?}"),
            });
        }
        let cctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| EngineError::media(path, e))?;
        let mut dec = cctx.decoder();
        dec.set_packet_time_base(tb);
        let decoder = dec.audio().map_err(|e| EngineError::Unsupported {
            path: path.to_path_buf(),
            reason: format!("cannot open the audio decoder: {e}"),
        })?;
        let duration_s = {
            let d = stream.duration();
            if d > 0 && d != ffmpeg::ffi::AV_NOPTS_VALUE {
                d as f64 * f64::from(tb)
            } else if ictx.duration() > 0 {
                ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
            } else {
                0.0
            }
        };
        let mut ictx = ictx;
        crate::probe::read_only_stream(&mut ictx, stream_index);
        Ok(Self {
            path: path.to_path_buf(),
            ictx,
            stream_index,
            decoder,
            resampler: None,
            out_rate,
            frame: ffmpeg::frame::Audio::empty(),
            eof_sent: false,
            finished: false,
            duration_s,
            position_s: 0.0,
            start_pts_s: None,
            time_base: f64::from(tb),
        })
    }

    /// Progress through the stream in 0..=1.
    pub fn fraction(&self) -> f64 {
        if self.duration_s > 0.0 {
            (self.position_s / self.duration_s).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    fn resample(&mut self, out: &mut Vec<f32>) -> Result<()> {
        let (format, rate) = (self.frame.format(), self.frame.rate());
        let layout = layout_or_default(self.frame.channel_layout(), self.frame.channels());
        let needs_new = match &self.resampler {
            None => true,
            Some(r) => r.in_format != format || r.in_layout != layout || r.in_rate != rate,
        };
        if needs_new {
            if self.resampler.is_some() {
                // Parameters changed mid-stream: drain the old resampler first.
                self.drain(out)?;
            }
            let ctx = ffmpeg::software::resampling::Context::get(
                format,
                layout,
                rate,
                ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Packed),
                ffmpeg::ChannelLayout::MONO,
                self.out_rate,
            )
            .map_err(|e| EngineError::media(&self.path, format!("resampler: {e}")))?;
            self.resampler = Some(Resampler {
                ctx,
                in_format: format,
                in_layout: layout,
                in_rate: rate,
            });
        }
        let f = &self.frame;
        let r = self.resampler.as_mut().expect("resampler set above");
        let in_samples = f.samples() as i32;
        // SAFETY: swr_convert reads `in_samples` from the frame's planes and
        // writes at most `cap` samples into `out`'s spare capacity.
        unsafe {
            let swr = r.ctx.as_mut_ptr();
            let cap = ffmpeg::ffi::swr_get_out_samples(swr, in_samples).max(0) as usize + 16;
            out.reserve(cap);
            let len = out.len();
            let mut dst = out.as_mut_ptr().add(len) as *mut u8;
            let src = (*f.as_ptr()).extended_data as *mut *const u8;
            let n = ffmpeg::ffi::swr_convert(swr, &mut dst, cap as i32, src, in_samples);
            if n < 0 {
                return Err(EngineError::media(&self.path, ffmpeg::Error::from(n)));
            }
            out.set_len(len + n as usize);
        }
        Ok(())
    }

    fn drain(&mut self, out: &mut Vec<f32>) -> Result<()> {
        if let Some(r) = self.resampler.as_mut() {
            // SAFETY: flushing with a null input, writing into spare capacity.
            unsafe {
                let swr = r.ctx.as_mut_ptr();
                loop {
                    let cap = 4096usize;
                    out.reserve(cap);
                    let len = out.len();
                    let mut dst = out.as_mut_ptr().add(len) as *mut u8;
                    let n = ffmpeg::ffi::swr_convert(
                        swr,
                        &mut dst,
                        cap as i32,
                        std::ptr::null_mut(),
                        0,
                    );
                    if n <= 0 {
                        break;
                    }
                    out.set_len(len + n as usize);
                }
            }
        }
        Ok(())
    }

    fn receive_frames(&mut self, out: &mut Vec<f32>) -> Result<()> {
        while self.decoder.receive_frame(&mut self.frame).is_ok() {
            if self.start_pts_s.is_none() {
                self.start_pts_s =
                    Some(self.frame.pts().map_or(0.0, |p| p as f64 * self.time_base));
            }
            if self.frame.rate() > 0 {
                self.position_s += self.frame.samples() as f64 / f64::from(self.frame.rate());
            }
            self.resample(out)?;
        }
        Ok(())
    }

    /// Next block of samples; `Ok(None)` at the end of the stream.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<f32>>> {
        if self.finished {
            return Ok(None);
        }
        let mut out = Vec::new();
        while out.is_empty() {
            if self.eof_sent {
                self.receive_frames(&mut out)?;
                self.drain(&mut out)?;
                self.finished = true;
                break;
            }
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) => {
                    if packet.stream() != self.stream_index {
                        continue;
                    }
                    // A corrupt packet is skipped, as players do; the stream goes on.
                    if self.decoder.send_packet(&packet).is_ok() {
                        self.receive_frames(&mut out)?;
                    }
                }
                Err(ffmpeg::Error::Eof) => {
                    let _ = self.decoder.send_eof();
                    self.eof_sent = true;
                }
                Err(e) => {
                    // A read error in the middle of a file (truncated download):
                    // stop decoding and keep what was read.
                    tracing::warn!("{}: read stopped early: {e}", self.path.display());
                    let _ = self.decoder.send_eof();
                    self.eof_sent = true;
                }
            }
        }
        Ok(Some(out))
    }
}

/// Decodes the whole first audio stream to mono f32 at `rate` Hz.
pub fn decode_audio(path: &Path, rate: u32) -> Result<MonoPcm> {
    decode_audio_with(path, rate, &CancelToken::new(), &mut |_| {})
}

/// Like [`decode_audio`], with cancellation and a progress callback
/// (fraction of the stream decoded).
pub fn decode_audio_with(
    path: &Path,
    rate: u32,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<MonoPcm> {
    let mut chunks = AudioChunks::open(path, rate)?;
    let cap = (chunks.duration_s * f64::from(rate) * 1.01) as usize + 1024;
    let mut samples = Vec::with_capacity(cap.min(1 << 28));
    while let Some(c) = chunks.next_chunk()? {
        samples.extend_from_slice(&c);
        cancel.check()?;
        progress(chunks.fraction());
    }
    if samples.is_empty() {
        return Err(EngineError::Empty(path.to_path_buf()));
    }
    samples.shrink_to_fit();
    Ok(MonoPcm {
        rate,
        samples,
        start_pts_s: chunks.start_pts_s.unwrap_or(0.0),
    })
}

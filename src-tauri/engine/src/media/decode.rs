//! `decode`: the first audio stream of any file as mono f32 at an analysis
//! rate. Video packets are read past but never decoded. Streaming: callers
//! that do not need the whole signal in memory use [`AudioChunks`].
//!
//! Time base: sample 0 is the stream's first presented sample as FFmpeg
//! decodes it (encoder priming removed through the container's edit list or
//! gapless info by libavcodec itself), the same convention as `ffmpeg -i F
//! -f f32le -`, which is what the offset benchmark measures against.

use super::ffi::{self, SampleSpec, Swr};
use super::input::{layout_or_default, open_input_fast, AudioDecoder};
use super::spill::Samples;
#[cfg(unix)]
use super::spill::{Mapped, SpillWriter};
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
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

/// Demuxing and decoding: the first audio stream's frames, in order.
struct FrameSource {
    path: PathBuf,
    ictx: ffmpeg::format::context::Input,
    stream_index: usize,
    decoder: ffmpeg::decoder::Audio,
    eof_sent: bool,
    /// Estimated duration of the stream, for progress.
    duration_s: f64,
    time_base: f64,
}

impl FrameSource {
    fn open(path: &Path) -> Result<Self> {
        // Decoding needs no stream-info probing (which would decode video
        // frames of a class video only to skip them).
        let mut ictx = open_input_fast(path)?;
        let audio = AudioDecoder::open(&ictx, path)?;
        let duration_s = {
            let d = ictx
                .stream(audio.stream_index)
                .map_or(0, |st| st.duration());
            if d > 0 && d != ffmpeg::ffi::AV_NOPTS_VALUE {
                d as f64 * f64::from(audio.time_base)
            } else if ictx.duration() > 0 {
                ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
            } else {
                0.0
            }
        };
        ffi::select_stream(&mut ictx, audio.stream_index);
        ffi::read_packets_directly(&mut ictx);
        Ok(Self {
            path: path.to_path_buf(),
            ictx,
            stream_index: audio.stream_index,
            decoder: audio.decoder,
            eof_sent: false,
            duration_s,
            time_base: f64::from(audio.time_base),
        })
    }

    /// The next decoded frame into `frame`; `Ok(false)` at the end of the stream.
    fn next_frame(&mut self, frame: &mut ffmpeg::frame::Audio) -> Result<bool> {
        loop {
            if self.decoder.receive_frame(frame).is_ok() {
                return Ok(true);
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
                    // A corrupt packet is skipped, as players do; the stream goes on.
                    let _ = self.decoder.send_packet(&packet);
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
    }
}

/// Decoded frames of any format and layout to mono f32 at `out_rate`.
struct MonoResampler {
    path: PathBuf,
    out_rate: u32,
    resampler: Option<Resampler>,
    /// Seconds of source audio taken in so far.
    position_s: f64,
    /// Presentation time of the first frame (s).
    start_pts_s: Option<f64>,
    time_base: f64,
}

struct Resampler {
    swr: Swr,
    in_format: ffmpeg::format::Sample,
    in_layout: ffmpeg::ChannelLayout,
    in_rate: u32,
}

impl MonoResampler {
    fn new(path: &Path, out_rate: u32, time_base: f64) -> Self {
        Self {
            path: path.to_path_buf(),
            out_rate,
            resampler: None,
            position_s: 0.0,
            start_pts_s: None,
            time_base,
        }
    }

    /// Appends the frame's samples, resampled, to `out`.
    fn push(&mut self, f: &ffmpeg::frame::Audio, out: &mut Vec<f32>) -> Result<()> {
        if self.start_pts_s.is_none() {
            self.start_pts_s = Some(f.pts().map_or(0.0, |p| p as f64 * self.time_base));
        }
        if f.rate() > 0 {
            self.position_s += f.samples() as f64 / f64::from(f.rate());
        }
        let (format, rate) = (f.format(), f.rate());
        let layout = layout_or_default(f.channel_layout(), f.channels());
        let needs_new = match &self.resampler {
            None => true,
            Some(r) => r.in_format != format || r.in_layout != layout || r.in_rate != rate,
        };
        if needs_new {
            if self.resampler.is_some() {
                // Parameters changed mid-stream: drain the old resampler first.
                self.drain(out);
            }
            let swr = Swr::new(
                SampleSpec {
                    layout,
                    format: format.into(),
                    rate,
                },
                SampleSpec {
                    layout: ffmpeg::ChannelLayout::MONO,
                    format: ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Packed)
                        .into(),
                    rate: self.out_rate,
                },
            )
            .map_err(|e| EngineError::media(&self.path, format!("resampler: {e}")))?;
            self.resampler = Some(Resampler {
                swr,
                in_format: format,
                in_layout: layout,
                in_rate: rate,
            });
        }
        let r = self.resampler.as_mut().expect("resampler set above");
        r.swr
            .convert_frame(f, std::slice::from_mut(out))
            .map_err(|e| EngineError::media(&self.path, e))
    }

    /// Appends what the resampler still holds (at the end, or before a change of input).
    fn drain(&mut self, out: &mut Vec<f32>) {
        if let Some(r) = self.resampler.as_mut() {
            r.swr.drain(std::slice::from_mut(out));
        }
    }
}

/// A pull-based decoder: each call to [`AudioChunks::next_chunk`] returns the
/// next block of mono samples at the requested rate (a few thousand samples).
pub struct AudioChunks {
    source: FrameSource,
    resampler: MonoResampler,
    frame: ffmpeg::frame::Audio,
    finished: bool,
}

impl AudioChunks {
    pub fn open(path: &Path, out_rate: u32) -> Result<Self> {
        let source = FrameSource::open(path)?;
        let resampler = MonoResampler::new(path, out_rate, source.time_base);
        Ok(Self {
            source,
            resampler,
            frame: ffmpeg::frame::Audio::empty(),
            finished: false,
        })
    }

    /// Next block of samples; `Ok(None)` at the end of the stream.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<f32>>> {
        if self.finished {
            return Ok(None);
        }
        let mut out = Vec::new();
        while out.is_empty() {
            if !self.source.next_frame(&mut self.frame)? {
                self.resampler.drain(&mut out);
                self.finished = true;
                break;
            }
            self.resampler.push(&self.frame, &mut out)?;
        }
        Ok(Some(out))
    }
}

fn fraction(position_s: f64, duration_s: f64) -> f64 {
    if duration_s > 0.0 {
        (position_s / duration_s).clamp(0.0, 1.0)
    } else {
        0.0
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
    let source = FrameSource::open(path)?;
    let cap = (source.duration_s * f64::from(rate) * 1.01) as usize + 1024;
    let mut samples = Vec::with_capacity(cap.min(1 << 28));
    // the samples stay in `samples`: nothing to hand on while decoding
    let start_pts_s = decode_stream(
        source,
        rate,
        &mut samples,
        &mut |_| Ok(()),
        cancel,
        progress,
    )?;
    if samples.is_empty() {
        return Err(EngineError::Empty(path.to_path_buf()));
    }
    samples.shrink_to_fit();
    Ok(MonoPcm {
        rate,
        samples,
        start_pts_s,
    })
}

/// A recording's samples as [`decode_audio_with`] decodes them, kept in a
/// spill file ([`super::spill`]) when the stream is longer than `spill_above_s`
/// seconds (unix only; in the heap otherwise, or when the file cannot be
/// written).
pub(crate) fn decode_recording(
    path: &Path,
    rate: u32,
    spill_above_s: f64,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<Samples> {
    #[cfg(unix)]
    {
        let source = FrameSource::open(path)?;
        if source.duration_s > spill_above_s {
            match decode_spilled(source, path, rate, cancel, progress) {
                Ok(mapped) => return Ok(Samples::Mapped(mapped)),
                Err(EngineError::Cancelled) => return Err(EngineError::Cancelled),
                // (a decode error comes back from the heap decode below)
                Err(e) => tracing::warn!("decoding into the heap instead: {e}"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = spill_above_s;
    Ok(Samples::Heap(
        decode_audio_with(path, rate, cancel, progress)?.samples,
    ))
}

/// The stream's samples written to a spill file as they are decoded.
#[cfg(unix)]
fn decode_spilled(
    source: FrameSource,
    path: &Path,
    rate: u32,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<Mapped> {
    let mut spill = SpillWriter::create(&super::spill::spill_dir(), path)?;
    let mut samples = Vec::new();
    decode_stream(
        source,
        rate,
        &mut samples,
        &mut |done| {
            spill.write(done)?;
            done.clear();
            Ok(())
        },
        cancel,
        progress,
    )?;
    spill.finish()
}

/// Decodes `source` to mono f32 at `rate` Hz, appending to `samples` and
/// handing them to `flush` after each batch of frames and at the end
/// (`flush` may take them out). Returns the presentation time of sample 0.
fn decode_stream(
    mut source: FrameSource,
    rate: u32,
    samples: &mut Vec<f32>,
    flush: &mut dyn FnMut(&mut Vec<f32>) -> Result<()>,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<f64> {
    let path = source.path.clone();
    let path = path.as_path();
    let mut resampler = MonoResampler::new(path, rate, source.time_base);
    let duration_s = source.duration_s;
    // Decoding and resampling cost about the same: the decoder runs on a
    // helper thread, a few frames ahead of the resampler on this one. Frames
    // travel in batches: handing them over one by one (a thread wake-up
    // each) cost about a fifth of the decode's CPU time.
    // The output is that of the serial loop, sample for sample.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<ffmpeg::frame::Audio>>(DECODE_AHEAD_BATCHES);
    std::thread::scope(|scope| -> Result<()> {
        let decoder = scope.spawn(move || -> Result<()> {
            loop {
                let mut batch = Vec::with_capacity(DECODE_BATCH_FRAMES);
                let mut more = true;
                while more && batch.len() < DECODE_BATCH_FRAMES {
                    let mut frame = ffmpeg::frame::Audio::empty();
                    more = source.next_frame(&mut frame)?;
                    if more {
                        // The resampler gets its own copy of the samples: on a
                        // damaged stream FFmpeg's AAC decoder can still write
                        // into the buffer of a frame it has already returned
                        // (while decoding a later, broken packet), which the
                        // resampler would be reading on the other thread: the
                        // decode then differed from run to run.
                        let copy = ffi::owned_audio_copy(&frame)
                            .map_err(|e| EngineError::media(path, e))?;
                        batch.push(copy);
                    }
                }
                if !batch.is_empty() && tx.send(batch).is_err() {
                    // the resampler stopped (cancelled or failed)
                    return Ok(());
                }
                if !more {
                    return Ok(());
                }
            }
        });
        let resampled = (|| -> Result<()> {
            for batch in rx.iter() {
                for frame in &batch {
                    resampler.push(frame, samples)?;
                }
                flush(samples)?;
                cancel.check()?;
                progress(fraction(resampler.position_s, duration_s));
            }
            resampler.drain(samples);
            flush(samples)
        })();
        // dropping the receiver (on error) lets a blocked decoder return
        drop(rx);
        let decoded = decoder
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        resampled.and(decoded)
    })?;
    cancel.check()?;
    progress(1.0);
    Ok(resampler.start_pts_s.unwrap_or(0.0))
}

/// Decoded frames handed to the resampler at once (16 AAC frames: 0.3-0.4 s
/// of audio, 64-128 kB of samples).
const DECODE_BATCH_FRAMES: usize = 16;
/// Batches allowed to wait for the resampler (a few hundred kB at most).
const DECODE_AHEAD_BATCHES: usize = 3;

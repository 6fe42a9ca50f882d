//! Writing the demo files through the FFmpeg libraries: AAC sound (FFmpeg's
//! own encoder) and, for the class video, the generated picture as H.264
//! (libx264, when this FFmpeg has it) or MPEG-4 Part 2, in MP4.

use super::picture::{Picture, Plane, FPS, HEIGHT, WIDTH};
use crate::error::{EngineError, Result};
use ffmpeg_next as ffmpeg;
use std::path::Path;

/// Sound to encode: planar channels (1 or 2) at `rate`.
pub struct Sound<'a> {
    pub channels: Vec<&'a [f32]>,
    pub rate: u32,
    pub bitrate: usize,
}

/// Writes an audio-only MP4 (.m4a) to `path`.
pub fn write_song(path: &Path, sound: &Sound<'_>) -> Result<()> {
    let fail = |e: ffmpeg::Error| write_error(path, e);
    let mut octx = ffmpeg::format::output_as(path, "ipod").map_err(fail)?;
    let mut audio = AudioOut::add(&mut octx, sound, path)?;
    octx.write_header().map_err(fail)?;
    audio.encode_until(&mut octx, sound, usize::MAX)?;
    audio.finish(&mut octx)?;
    octx.write_trailer().map_err(fail)
}

/// Writes the class video: `picture` drawn for `frames` frames, with `sound`.
/// Returns the video codec's name.
pub fn write_class(
    path: &Path,
    sound: &Sound<'_>,
    picture: &Picture,
    frames: usize,
) -> Result<String> {
    let fail = |e: ffmpeg::Error| write_error(path, e);
    let mut octx = ffmpeg::format::output_as(path, "mp4").map_err(fail)?;
    let mut video = VideoOut::add(&mut octx, path)?;
    let mut audio = AudioOut::add(&mut octx, sound, path)?;
    octx.write_header().map_err(fail)?;
    let mut frame = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, WIDTH, HEIGHT);
    for n in 0..frames {
        let t = n as f64 / f64::from(FPS);
        // Sound up to this frame's time first, so the muxer interleaves little.
        audio.encode_until(&mut octx, sound, (t * f64::from(sound.rate)) as usize)?;
        draw(picture, t, &mut frame);
        frame.set_pts(Some(n as i64));
        video.encoder.send_frame(&frame).map_err(fail)?;
        video.drain(&mut octx)?;
    }
    audio.encode_until(&mut octx, sound, usize::MAX)?;
    video.encoder.send_eof().map_err(fail)?;
    video.drain(&mut octx)?;
    audio.finish(&mut octx)?;
    octx.write_trailer().map_err(fail)?;
    Ok(video.codec_name)
}

fn draw(picture: &Picture, t: f64, frame: &mut ffmpeg::frame::Video) {
    for (i, plane) in Plane::ALL.into_iter().enumerate() {
        let stride = frame.stride(i);
        picture.draw(t, plane, frame.data_mut(i), stride);
    }
}

fn write_error(path: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::OutputWrite {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Whether the container wants codec headers out of band (MP4 does).
fn global_header(octx: &ffmpeg::format::context::Output) -> bool {
    octx.format()
        .flags()
        .contains(ffmpeg::format::Flags::GLOBAL_HEADER)
}

/// Sends every packet the encoder has ready to the muxer, in the stream's time base.
fn drain_into(
    encoder: &mut ffmpeg::encoder::Encoder,
    octx: &mut ffmpeg::format::context::Output,
    stream: usize,
    encoder_tb: ffmpeg::Rational,
    path: &Path,
) -> Result<()> {
    let stream_tb = octx
        .stream(stream)
        .map(|s| s.time_base())
        .ok_or_else(|| write_error(path, "output stream missing"))?;
    let mut packet = ffmpeg::Packet::empty();
    while encoder.receive_packet(&mut packet).is_ok() {
        packet.set_stream(stream);
        packet.rescale_ts(encoder_tb, stream_tb);
        packet
            .write_interleaved(octx)
            .map_err(|e| write_error(path, e))?;
    }
    Ok(())
}

struct VideoOut<'p> {
    encoder: ffmpeg::encoder::Video,
    stream: usize,
    codec_name: String,
    path: &'p Path,
}

impl<'p> VideoOut<'p> {
    fn add(octx: &mut ffmpeg::format::context::Output, path: &'p Path) -> Result<Self> {
        let fail = |e: ffmpeg::Error| write_error(path, e);
        let x264 = ffmpeg::encoder::find_by_name("libx264");
        let codec = x264
            .or_else(|| ffmpeg::encoder::find(ffmpeg::codec::Id::MPEG4))
            .ok_or_else(|| EngineError::Unsupported {
                path: path.to_path_buf(),
                reason: "this FFmpeg has neither an H.264 (libx264) nor an MPEG-4 video encoder"
                    .into(),
            })?;
        let global = global_header(octx);
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(fail)?;
        enc.set_width(WIDTH);
        enc.set_height(HEIGHT);
        enc.set_format(ffmpeg::format::Pixel::YUV420P);
        enc.set_time_base(ffmpeg::Rational::new(1, FPS));
        enc.set_frame_rate(Some(ffmpeg::Rational::new(FPS, 1)));
        enc.set_gop(FPS as u32 * 2);
        if global {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let mut options = ffmpeg::Dictionary::new();
        if x264.is_some() {
            options.set("preset", "veryfast");
            options.set("crf", "26");
        } else {
            enc.set_bit_rate(1_500_000);
        }
        let encoder = enc.open_as_with(codec, options).map_err(fail)?;
        let mut ost = octx.add_stream(codec).map_err(fail)?;
        ost.set_parameters(ffmpeg::codec::Parameters::from(&*encoder));
        ost.set_time_base(ffmpeg::Rational::new(1, FPS));
        Ok(Self {
            stream: ost.index(),
            encoder,
            codec_name: codec.name().to_string(),
            path,
        })
    }

    fn drain(&mut self, octx: &mut ffmpeg::format::context::Output) -> Result<()> {
        let tb = ffmpeg::Rational::new(1, FPS);
        drain_into(&mut self.encoder, octx, self.stream, tb, self.path)
    }
}

struct AudioOut<'p> {
    encoder: ffmpeg::encoder::Audio,
    stream: usize,
    layout: ffmpeg::ChannelLayout,
    frame_size: usize,
    /// The next sample to encode.
    next: usize,
    path: &'p Path,
}

impl<'p> AudioOut<'p> {
    fn add(
        octx: &mut ffmpeg::format::context::Output,
        sound: &Sound<'_>,
        path: &'p Path,
    ) -> Result<Self> {
        let fail = |e: ffmpeg::Error| write_error(path, e);
        let codec = ffmpeg::encoder::find(ffmpeg::codec::Id::AAC).ok_or_else(|| {
            EngineError::Unsupported {
                path: path.to_path_buf(),
                reason: "this FFmpeg has no AAC encoder".into(),
            }
        })?;
        let layout = if sound.channels.len() >= 2 {
            ffmpeg::ChannelLayout::STEREO
        } else {
            ffmpeg::ChannelLayout::MONO
        };
        let global = global_header(octx);
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(fail)?;
        enc.set_rate(sound.rate as i32);
        enc.set_format(ffmpeg::format::Sample::F32(
            ffmpeg::format::sample::Type::Planar,
        ));
        enc.set_channel_layout(layout);
        enc.set_channels(layout.channels());
        enc.set_bit_rate(sound.bitrate);
        enc.set_time_base(ffmpeg::Rational::new(1, sound.rate as i32));
        if global {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let encoder = enc.open_as(codec).map_err(fail)?;
        let mut ost = octx.add_stream(codec).map_err(fail)?;
        ost.set_parameters(ffmpeg::codec::Parameters::from(&*encoder));
        ost.set_time_base(ffmpeg::Rational::new(1, sound.rate as i32));
        Ok(Self {
            stream: ost.index(),
            frame_size: (encoder.frame_size() as usize).max(1),
            encoder,
            layout,
            next: 0,
            path,
        })
    }

    /// Encodes whole frames of `sound` up to sample `until` (or its end).
    fn encode_until(
        &mut self,
        octx: &mut ffmpeg::format::context::Output,
        sound: &Sound<'_>,
        until: usize,
    ) -> Result<()> {
        let len = sound.channels.first().map_or(0, |c| c.len());
        let until = until.min(len);
        while self.next < until {
            let n = self.frame_size.min(len - self.next);
            if n < self.frame_size && until < len {
                break; // only the very last frame may be short
            }
            let mut frame = ffmpeg::frame::Audio::new(
                ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar),
                n,
                self.layout,
            );
            frame.set_rate(sound.rate);
            for (ch, samples) in sound.channels.iter().enumerate() {
                frame.plane_mut::<f32>(ch)[..n].copy_from_slice(&samples[self.next..self.next + n]);
            }
            frame.set_pts(Some(self.next as i64));
            self.encoder
                .send_frame(&frame)
                .map_err(|e| write_error(self.path, e))?;
            self.next += n;
            self.drain(octx, sound.rate)?;
        }
        Ok(())
    }

    fn drain(&mut self, octx: &mut ffmpeg::format::context::Output, rate: u32) -> Result<()> {
        let tb = ffmpeg::Rational::new(1, rate as i32);
        drain_into(&mut self.encoder, octx, self.stream, tb, self.path)
    }

    fn finish(&mut self, octx: &mut ffmpeg::format::context::Output) -> Result<()> {
        self.encoder
            .send_eof()
            .map_err(|e| write_error(self.path, e))?;
        let rate = self.encoder.rate();
        self.drain(octx, rate)
    }
}

//! Decoding, positioning, re-timing and encoding the song to AAC.

use super::retime::{Planar, Retimer};
use super::{AudioPacket, Retime, SongRender};
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::media::ffi::{self, SampleSpec, Swr};
use crate::media::input::{layout_or_default, open_input, read_error, AudioDecoder, Input};
use ffmpeg_next as ffmpeg;
use std::path::{Path, PathBuf};

const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

type Sink<'a> = &'a mut dyn FnMut(AudioPacket) -> Result<()>;

/// Decodes, positions, re-times and encodes the song; call [`SongEncoder::run`]
/// (typically on its own thread) to get the packets.
pub(crate) struct SongEncoder {
    job: SongRender,
    /// The song, opened with full probing: a stream's real sample rate
    /// (HE-AAC's, twice its header's) is known only then.
    ictx: Input,
    audio: AudioDecoder,
    out: FrameEncoder,
}

impl SongEncoder {
    /// Opens the song and the AAC encoder. `global_header`: the container
    /// wants codec headers out of band (MP4 does).
    pub fn open(job: SongRender, global_header: bool) -> Result<Self> {
        let path = job.song.clone();
        let mut ictx = open_input(&path)?;
        let audio = AudioDecoder::open(&ictx, &path)?;
        let layout = if audio.decoder.channels().max(1) >= 2 {
            ffmpeg::ChannelLayout::STEREO
        } else {
            ffmpeg::ChannelLayout::MONO
        };
        let song_rate = audio.decoder.rate();
        let sample_rate = if AAC_RATES.contains(&song_rate) {
            song_rate
        } else {
            48000
        };
        let out = FrameEncoder::open(&path, layout, sample_rate, job.bitrate, global_header)?;
        ffi::select_stream(&mut ictx, audio.stream_index);
        Ok(Self {
            job,
            ictx,
            audio,
            out,
        })
    }

    /// Output (= encoding) sample rate; also the rate the song is converted to.
    pub fn sample_rate(&self) -> u32 {
        self.out.sample_rate
    }

    pub fn channels(&self) -> u16 {
        self.out.layout.channels() as u16
    }

    /// Codec parameters for the output stream.
    pub fn parameters(&self) -> ffmpeg::codec::Parameters {
        ffmpeg::codec::Parameters::from(&*self.out.encoder)
    }

    /// Renders another range of the same output (a parallel piece).
    pub fn set_range(&mut self, range: (usize, usize)) {
        self.job.range = Some(range);
    }

    /// Encodes the whole output (or its range); every packet goes to `sink`
    /// in order, timestamps on the whole output's time line.
    pub fn run(mut self, cancel: &CancelToken, sink: Sink) -> Result<()> {
        let path = self.job.song.clone();
        let mut start = self.start()?;
        let from = start.from;
        self.out.total = start.total_out;
        let mut sink = |mut p: AudioPacket| -> Result<()> {
            p.set_pts(p.pts().map(|t| t + from as i64));
            p.set_dts(p.dts().map(|t| t + from as i64));
            sink(p)
        };
        let sink: Sink = &mut sink;
        let channels = usize::from(self.channels());
        let mut retimer = Retimer::new(
            self.job.retime,
            self.job.placement.rate,
            self.out.layout,
            self.out.sample_rate,
            &path,
        )?;
        self.seek_near(&mut start);
        let mut input = SongInput::new(&path, self.out.layout, self.out.sample_rate);
        let mut ready = Planar::new(channels);
        ready.push_silence(start.lead_silence.min(start.total_out));
        while self.out.emitted < start.total_out {
            cancel.check()?;
            // Enough buffered for the rest of the output: stop decoding.
            if ready.len() >= start.total_out - self.out.emitted || input.done {
                break;
            }
            self.decode_step(&mut input, &mut start)?;
            if start.to_skip > 0 {
                let n = start.to_skip.min(input.converted.len());
                input.converted.drop_front(n);
                start.to_skip -= n;
            }
            if start.to_skip == 0 && (input.converted.len() > 0 || input.done) {
                let mut stretched = Planar::new(channels);
                retimer.process(Some(&mut input.converted), &mut stretched, &path)?;
                if input.done {
                    retimer.process(None, &mut stretched, &path)?;
                }
                ready.append(&mut stretched);
            }
            self.out.encode_ready(&mut ready, false, &path, sink)?;
        }
        self.out.encode_ready(&mut ready, true, &path, sink)?;
        self.out.finish(&path, sink)
    }

    /// Where this render starts in the song: output samples `[from, from +
    /// total_out)`, preceded by silence before the song starts (a lead-in
    /// before the music) or after song samples to skip.
    fn start(&self) -> Result<RenderStart> {
        let sr = f64::from(self.out.sample_rate);
        let b0 = self.job.placement.song_at(self.job.out_start_recording_s);
        let full = self.job.total_samples(self.out.sample_rate);
        let (from, to) = self.job.range.unwrap_or((0, full));
        let to = to.min(full);
        if from > 0 && self.job.retime != Retime::None {
            return Err(EngineError::InvalidRequest(
                "a re-timed song is rendered in one piece".into(),
            ));
        }
        let (lead_silence, to_skip) = if self.job.retime == Retime::None {
            let start = (b0 * sr).round() as i64 + from as i64;
            ((-start).max(0) as usize, start.max(0) as usize)
        } else if b0 < 0.0 {
            ((-b0 * self.job.placement.rate * sr).round() as usize, 0)
        } else {
            (0, (b0 * sr).round() as usize)
        };
        Ok(RenderStart {
            from,
            total_out: to.saturating_sub(from),
            lead_silence,
            to_skip,
            skip_from_pts: false,
        })
    }

    /// A song far from its start: seek there instead of decoding what is
    /// skipped. Only where timestamps are exact to the sample (MP4/M4A AAC,
    /// MKV: index-based) and no rate conversion changes the count; 2 s early,
    /// since the first frame after a seek lacks its overlap.
    fn seek_near(&mut self, start: &mut RenderStart) {
        let exact_timestamps = {
            let format = self.ictx.format();
            let name = format.name();
            name.contains("mp4") || name.contains("matroska")
        };
        let sr = self.out.sample_rate;
        if !(exact_timestamps
            && self.audio.decoder.rate() == sr
            && start.to_skip > 10 * sr as usize)
        {
            return;
        }
        let tb = f64::from(self.audio.time_base);
        let target_s = start.to_skip as f64 / f64::from(sr) - 2.0;
        let ts = (target_s / tb) as i64;
        if ffi::seek_keyframe_before(&mut self.ictx, self.audio.stream_index, ts).is_ok() {
            self.audio.decoder.flush();
            start.skip_from_pts = true;
        }
    }

    /// Decodes one packet's worth into `input.converted`; at the end of the
    /// song, flushes and marks `input.done`.
    fn decode_step(&mut self, input: &mut SongInput, start: &mut RenderStart) -> Result<()> {
        let mut frame = ffmpeg::frame::Audio::empty();
        let mut got_frames = false;
        while self.audio.decoder.receive_frame(&mut frame).is_ok() {
            got_frames = true;
            if start.skip_from_pts {
                self.count_skip_from(&frame, start, &input.path)?;
            }
            input.convert(&frame)?;
        }
        if got_frames {
            return Ok(());
        }
        if input.eof_sent {
            input.flush()?;
            input.done = true;
            return Ok(());
        }
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(&mut self.ictx) {
            Ok(()) => {
                if packet.stream() == self.audio.stream_index {
                    // A damaged packet is skipped, as players do.
                    let _ = self.audio.decoder.send_packet(&packet);
                }
            }
            Err(ffmpeg::Error::Eof) => {
                let _ = self.audio.decoder.send_eof();
                input.eof_sent = true;
            }
            Err(e) => return Err(read_error(&input.path, e)),
        }
        Ok(())
    }

    /// The seek landed at `frame`: the samples to skip count from there.
    fn count_skip_from(
        &self,
        frame: &ffmpeg::frame::Audio,
        start: &mut RenderStart,
        path: &Path,
    ) -> Result<()> {
        let tb = f64::from(self.audio.time_base);
        let sr = f64::from(self.out.sample_rate);
        let at = frame
            .pts()
            .map(|p| (p as f64 * tb * sr).round() as i64)
            .ok_or_else(|| EngineError::media(path, "the song has no timestamps after seeking"))?;
        if at < 0 || at as usize > start.to_skip {
            return Err(EngineError::media(path, "seeking in the song went wrong"));
        }
        start.to_skip -= at as usize;
        start.skip_from_pts = false;
        Ok(())
    }
}

/// Where a render starts (see [`SongEncoder::start`]).
struct RenderStart {
    /// First output sample rendered (pieces after the first start later).
    from: usize,
    total_out: usize,
    /// Output samples of silence before the song.
    lead_silence: usize,
    /// Song samples (at the output rate) not used.
    to_skip: usize,
    /// A seek happened: `to_skip` still counts from the song's start, and
    /// the first decoded frame says where the seek landed.
    skip_from_pts: bool,
}

/// The decoded song converted to planar f32 at the output's rate and layout.
struct SongInput {
    path: PathBuf,
    layout: ffmpeg::ChannelLayout,
    rate: u32,
    /// The converter and the input format it was made for.
    converter: Option<(Swr, SampleSpec)>,
    converted: Planar,
    eof_sent: bool,
    /// Decoded, converted and flushed to the end.
    done: bool,
}

impl SongInput {
    fn new(path: &Path, layout: ffmpeg::ChannelLayout, rate: u32) -> Self {
        Self {
            path: path.to_path_buf(),
            layout,
            rate,
            converter: None,
            converted: Planar::new(layout.channels() as usize),
            eof_sent: false,
            done: false,
        }
    }

    fn convert(&mut self, frame: &ffmpeg::frame::Audio) -> Result<()> {
        let spec = SampleSpec {
            layout: layout_or_default(frame.channel_layout(), frame.channels()),
            format: frame.format().into(),
            rate: frame.rate(),
        };
        if self.converter.as_ref().is_none_or(|(_, s)| *s != spec) {
            self.flush()?;
            let to = SampleSpec {
                layout: self.layout,
                format: ffmpeg::ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP,
                rate: self.rate,
            };
            let swr = Swr::new(spec, to)
                .map_err(|e| EngineError::media(&self.path, format!("resampler: {e}")))?;
            self.converter = Some((swr, spec));
        }
        if let Some((swr, _)) = self.converter.as_mut() {
            swr.convert_frame(frame, &mut self.converted.0)
                .map_err(|e| EngineError::media(&self.path, e))?;
        }
        Ok(())
    }

    /// Takes what the converter still holds, and drops it.
    fn flush(&mut self) -> Result<()> {
        if let Some((mut swr, _)) = self.converter.take() {
            swr.flush(&mut self.converted.0)
                .map_err(|e| EngineError::media(&self.path, e))?;
        }
        Ok(())
    }
}

/// The AAC encoder, fed whole frames of the output.
struct FrameEncoder {
    encoder: ffmpeg::encoder::Audio,
    layout: ffmpeg::ChannelLayout,
    sample_rate: u32,
    frame_size: usize,
    /// Output samples to encode, and encoded so far.
    total: usize,
    emitted: usize,
}

impl FrameEncoder {
    fn open(
        path: &Path,
        layout: ffmpeg::ChannelLayout,
        sample_rate: u32,
        bitrate: usize,
        global_header: bool,
    ) -> Result<Self> {
        let codec = ffmpeg::encoder::find(ffmpeg::codec::Id::AAC).ok_or_else(|| {
            EngineError::Unsupported {
                path: path.to_path_buf(),
                reason: "this FFmpeg has no AAC encoder".into(),
            }
        })?;
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(|e| EngineError::media(path, e))?;
        enc.set_rate(sample_rate as i32);
        enc.set_format(ffmpeg::format::Sample::F32(
            ffmpeg::format::sample::Type::Planar,
        ));
        enc.set_channel_layout(layout);
        enc.set_channels(layout.channels());
        enc.set_bit_rate(bitrate);
        enc.set_time_base(ffmpeg::Rational::new(1, sample_rate as i32));
        if global_header {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let encoder = enc
            .open_as(codec)
            .map_err(|e| EngineError::media(path, format!("cannot open the AAC encoder: {e}")))?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        Ok(Self {
            encoder,
            layout,
            sample_rate,
            frame_size,
            total: 0,
            emitted: 0,
        })
    }

    /// Encodes whole frames from `ready`; with `finish`, also the final
    /// short one, padded with silence when the song ended before the output.
    fn encode_ready(
        &mut self,
        ready: &mut Planar,
        finish: bool,
        path: &Path,
        sink: Sink,
    ) -> Result<()> {
        loop {
            let left = self.total - self.emitted;
            if left == 0 {
                return Ok(());
            }
            let n = self.frame_size.min(left);
            if ready.len() < n {
                if !finish {
                    return Ok(());
                }
                ready.push_silence(n - ready.len());
            }
            let mut f = ffmpeg::frame::Audio::new(
                ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar),
                n,
                self.layout,
            );
            f.set_rate(self.sample_rate);
            f.set_pts(Some(self.emitted as i64));
            for (c, samples) in ready.0.iter().enumerate() {
                f.plane_mut::<f32>(c)[..n].copy_from_slice(&samples[..n]);
            }
            ready.drop_front(n);
            self.emitted += n;
            self.encoder
                .send_frame(&f)
                .map_err(|e| EngineError::media(path, format!("AAC encoder: {e}")))?;
            self.drain(sink)?;
        }
    }

    fn drain(&mut self, sink: Sink) -> Result<()> {
        let mut pkt = ffmpeg::Packet::empty();
        while self.encoder.receive_packet(&mut pkt).is_ok() {
            sink(std::mem::replace(&mut pkt, ffmpeg::Packet::empty()))?;
        }
        Ok(())
    }

    /// Flushes the encoder's last packets.
    fn finish(&mut self, path: &Path, sink: Sink) -> Result<()> {
        self.encoder
            .send_eof()
            .map_err(|e| EngineError::media(path, format!("AAC encoder: {e}")))?;
        self.drain(sink)
    }
}

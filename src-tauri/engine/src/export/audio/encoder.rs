//! Decoding, positioning, re-timing and encoding the song to AAC.

use super::mix::MixPcm;
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
    /// (HE-AAC's, twice its header's) is known only then. A render of
    /// several plays opens it again for each play.
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
        let (layout, sample_rate) = (self.out.layout, self.out.sample_rate);
        let (from, total, mut source): (usize, usize, Box<dyn PcmSource>) =
            match self.job.mix.take() {
                None => {
                    let pcm = SongPcm::start(
                        self.job,
                        (self.ictx, self.audio),
                        (layout, sample_rate),
                        SeekRule::EXACT,
                    )?;
                    (pcm.from, pcm.total_out, Box::new(pcm))
                }
                Some(mix) => {
                    let full = self.job.total_samples(sample_rate);
                    let (from, to) = self.job.range.unwrap_or((0, full));
                    let to = to.min(full);
                    let pcm = MixPcm::new(&self.job, mix, (layout, sample_rate), (from, to))?;
                    (from, to.saturating_sub(from), Box::new(pcm))
                }
            };
        self.out.total = total;
        let mut sink = |mut p: AudioPacket| -> Result<()> {
            p.set_pts(p.pts().map(|t| t + from as i64));
            p.set_dts(p.dts().map(|t| t + from as i64));
            sink(p)
        };
        let sink: Sink = &mut sink;
        let mut ready = Planar::new(layout.channels() as usize);
        while self.out.emitted < total {
            cancel.check()?;
            let n = self.out.frame_size.min(total - self.out.emitted);
            source.fill(&mut ready, n, cancel)?;
            self.out.encode_ready(&mut ready, false, &path, sink)?;
        }
        self.out.finish(&path, sink)
    }
}

/// Output samples, produced in order: the song placed in time, or several
/// plays mixed ([`super::mix`]).
pub(super) trait PcmSource {
    /// Appends exactly the next `n` samples to `out` (silence past the end).
    fn fill(&mut self, out: &mut Planar, n: usize, cancel: &CancelToken) -> Result<()>;
}

/// How a render may seek instead of decoding what it skips.
#[derive(Debug, Clone, Copy)]
pub(super) struct SeekRule {
    /// Only where no rate conversion changes the sample count (the song:
    /// positioned to the sample); otherwise to within a sample (the
    /// recording's own sound between plays).
    pub exact_only: bool,
    /// Container time of sample 0 (the recording's first decoded audio sample).
    pub origin_s: f64,
}

impl SeekRule {
    pub const EXACT: SeekRule = SeekRule {
        exact_only: true,
        origin_s: 0.0,
    };
}

/// One file's sound positioned and re-timed for the output: decoded,
/// converted to the output's rate and layout, the samples before the output
/// skipped (or silence put before the sound starts), stretched by the rate.
pub(super) struct SongPcm {
    job: SongRender,
    ictx: Input,
    audio: AudioDecoder,
    start: RenderStart,
    input: SongInput,
    retimer: Retimer,
    /// Samples ready for the output, in order.
    ready: Planar,
    seek: SeekRule,
    /// First output sample rendered and how many.
    pub from: usize,
    pub total_out: usize,
}

impl SongPcm {
    /// Opens `job.song` for a render at `(layout, sample_rate)`.
    pub fn open(
        job: SongRender,
        spec: (ffmpeg::ChannelLayout, u32),
        seek: SeekRule,
    ) -> Result<Self> {
        let path = job.song.clone();
        let mut ictx = open_input(&path)?;
        let audio = AudioDecoder::open(&ictx, &path)?;
        ffi::select_stream(&mut ictx, audio.stream_index);
        Self::start(job, (ictx, audio), spec, seek)
    }

    fn start(
        job: SongRender,
        (ictx, audio): (Input, AudioDecoder),
        (layout, sample_rate): (ffmpeg::ChannelLayout, u32),
        seek: SeekRule,
    ) -> Result<Self> {
        let path = job.song.clone();
        let start = render_start(&job, sample_rate)?;
        let retimer = Retimer::new(job.retime, job.placement.rate, layout, sample_rate, &path)?;
        let mut ready = Planar::new(layout.channels() as usize);
        ready.push_silence(start.lead_silence.min(start.total_out));
        let mut pcm = Self {
            from: start.from,
            total_out: start.total_out,
            input: SongInput::new(&path, layout, sample_rate),
            job,
            ictx,
            audio,
            start,
            retimer,
            ready,
            seek,
        };
        pcm.seek_near();
        Ok(pcm)
    }

    /// Decodes one packet's worth, skips what precedes the output, and
    /// re-times what is left into `ready`.
    fn step(&mut self) -> Result<()> {
        let path = self.job.song.clone();
        self.decode_step()?;
        let (input, start) = (&mut self.input, &mut self.start);
        if start.to_skip > 0 {
            let n = start.to_skip.min(input.converted.len());
            input.converted.drop_front(n);
            start.to_skip -= n;
        }
        if start.to_skip == 0 && (input.converted.len() > 0 || input.done) {
            let mut stretched = Planar::new(input.converted.0.len());
            self.retimer
                .process(Some(&mut input.converted), &mut stretched, &path)?;
            if input.done {
                self.retimer.process(None, &mut stretched, &path)?;
            }
            self.ready.append(&mut stretched);
        }
        Ok(())
    }

    /// A song far from its start: seek there instead of decoding what is
    /// skipped. Only where timestamps are exact to the sample (MP4/M4A AAC,
    /// MKV: index-based) and (for the song) no rate conversion changes the
    /// count; 2 s early, since the first frame after a seek lacks its overlap.
    fn seek_near(&mut self) {
        let exact_timestamps = {
            let format = self.ictx.format();
            let name = format.name();
            name.contains("mp4") || name.contains("matroska")
        };
        let sr = self.input.rate;
        let same_rate = self.audio.decoder.rate() == sr || !self.seek.exact_only;
        if !(exact_timestamps && same_rate && self.start.to_skip > 10 * sr as usize) {
            return;
        }
        let tb = f64::from(self.audio.time_base);
        let target_s = self.start.to_skip as f64 / f64::from(sr) - 2.0 + self.seek.origin_s;
        let ts = (target_s / tb) as i64;
        if ffi::seek_keyframe_before(&mut self.ictx, self.audio.stream_index, ts).is_ok() {
            self.audio.decoder.flush();
            self.start.skip_from_pts = true;
        }
    }

    /// Decodes one packet's worth into `input.converted`; at the end of the
    /// song, flushes and marks `input.done`.
    fn decode_step(&mut self) -> Result<()> {
        let input = &mut self.input;
        let mut frame = ffmpeg::frame::Audio::empty();
        let mut got_frames = false;
        while self.audio.decoder.receive_frame(&mut frame).is_ok() {
            got_frames = true;
            if self.start.skip_from_pts {
                count_skip_from(
                    &self.audio,
                    &frame,
                    (input.rate, self.seek),
                    &mut self.start,
                    &input.path,
                )?;
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
}

impl PcmSource for SongPcm {
    fn fill(&mut self, out: &mut Planar, n: usize, cancel: &CancelToken) -> Result<()> {
        while self.ready.len() < n && !self.input.done {
            cancel.check()?;
            self.step()?;
        }
        if self.ready.len() < n {
            // The song ended before the output: silence.
            self.ready.push_silence(n - self.ready.len());
        }
        self.ready.move_front_to(n, out);
        Ok(())
    }
}

/// Where a render starts in the song: output samples `[from, from +
/// total_out)`, preceded by silence before the song starts (a lead-in
/// before the music) or after song samples to skip.
fn render_start(job: &SongRender, sample_rate: u32) -> Result<RenderStart> {
    let sr = f64::from(sample_rate);
    let b0 = job.placement.song_at(job.out_start_recording_s);
    let full = job.total_samples(sample_rate);
    let (from, to) = job.range.unwrap_or((0, full));
    let to = to.min(full);
    if from > 0 && job.retime != Retime::None {
        return Err(EngineError::InvalidRequest(
            "a re-timed song is rendered in one piece".into(),
        ));
    }
    let (lead_silence, to_skip) = if job.retime == Retime::None {
        let start = (b0 * sr).round() as i64 + from as i64;
        ((-start).max(0) as usize, start.max(0) as usize)
    } else if b0 < 0.0 {
        ((-b0 * job.placement.rate * sr).round() as usize, 0)
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

/// The seek landed at `frame`: the samples to skip count from there.
fn count_skip_from(
    audio: &AudioDecoder,
    frame: &ffmpeg::frame::Audio,
    (sample_rate, seek): (u32, SeekRule),
    start: &mut RenderStart,
    path: &Path,
) -> Result<()> {
    let tb = f64::from(audio.time_base);
    let sr = f64::from(sample_rate);
    let at = frame
        .pts()
        .map(|p| ((p as f64 * tb - seek.origin_s) * sr).round() as i64)
        .ok_or_else(|| EngineError::media(path, "the song has no timestamps after seeking"))?;
    if at < 0 || at as usize > start.to_skip {
        return Err(EngineError::media(path, "seeking in the song went wrong"));
    }
    start.to_skip -= at as usize;
    start.skip_from_pts = false;
    Ok(())
}

/// Where a render starts (see [`render_start`]).
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

//! `audio_out`: the clean song, placed in time for the output video.
//!
//! Output sample `n` (at the song's sample rate) is the song at
//! `bgm_time = b0 + n / (rate * sr)`, where `b0` is the song time heard at the
//! first presented video frame. Three ways of following `rate`:
//! * `rate == 1`: samples pass through (only the start is positioned);
//! * clock drift (|rate - 1| small): libswresample's compensation stretches
//!   the song by exactly `rate` (a resampling: pitch moves by a few cents at
//!   most, inaudible, and it is exact in time);
//! * a real playback speed change: libavfilter's `rubberband` (or `atempo`
//!   when FFmpeg lacks it) stretches time and keeps the pitch.
//!
//! The result is encoded to AAC with FFmpeg's native encoder. Alternatively,
//! when the song is AAC and the rate is 1, its packets are copied and an edit
//! list positions them to the sample ([`SongCopier`]).

pub(crate) mod stretch;

use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::media::probe::{layout_or_default, open_input};
use crate::timeline::Placement;
use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How a rate other than 1 is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RetimeMode {
    /// Resample for small differences (clock drift), keep the pitch for
    /// larger ones (a real speed change).
    #[default]
    Auto,
    /// Always resample (the pitch follows the speed, like a turntable).
    Resample,
    /// Always stretch time keeping the pitch (`atempo`).
    KeepPitch,
}

/// What was actually done to follow the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retime {
    None,
    Resample,
    Tempo,
}

/// Up to this far from 1 the difference is clock drift between two devices
/// (typically 50-300 ppm): resampling moves the pitch by under 5 cents.
pub const DRIFT_LIMIT: f64 = 0.003;

pub fn choose_retime(rate: f64, mode: RetimeMode) -> Retime {
    if (rate - 1.0).abs() < 1e-7 {
        return Retime::None;
    }
    match mode {
        RetimeMode::Resample => Retime::Resample,
        RetimeMode::KeepPitch => Retime::Tempo,
        RetimeMode::Auto if (rate - 1.0).abs() <= DRIFT_LIMIT => Retime::Resample,
        RetimeMode::Auto => Retime::Tempo,
    }
}

/// What the audio encoder needs to know.
#[derive(Debug, Clone)]
pub struct SongRender {
    pub song: PathBuf,
    pub placement: Placement,
    /// Dance time shown at output time 0 (the first presented frame).
    pub out_start_dance_s: f64,
    /// Output length, seconds.
    pub duration_s: f64,
    pub bitrate: usize,
    pub retime: Retime,
    /// Render only output samples `[from, to)` (for encoding in parallel
    /// pieces; `Retime::None` only). Packet timestamps stay global.
    pub range: Option<(usize, usize)>,
}

impl SongRender {
    /// Output length in samples at `sample_rate`.
    pub fn total_samples(&self, sample_rate: u32) -> usize {
        (self.duration_s * f64::from(sample_rate)).round().max(0.0) as usize
    }
}

const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// A raw libswresample context that frees itself.
struct Swr(*mut ffi::SwrContext);
// SAFETY: the context is only used by the thread that owns the `Swr`.
unsafe impl Send for Swr {}
impl Drop for Swr {
    fn drop(&mut self) {
        // SAFETY: allocated by swr_alloc_set_opts, freed once.
        unsafe { ffi::swr_free(&mut self.0) }
    }
}

impl Swr {
    #[allow(clippy::too_many_arguments)]
    fn new(
        in_layout: ffmpeg::ChannelLayout,
        in_fmt: ffi::AVSampleFormat,
        in_rate: u32,
        out_layout: ffmpeg::ChannelLayout,
        out_rate: u32,
        path: &Path,
    ) -> Result<Self> {
        // SAFETY: plain allocation + init; failure returns null / < 0.
        unsafe {
            let ctx = ffi::swr_alloc_set_opts(
                std::ptr::null_mut(),
                out_layout.bits() as i64,
                ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP,
                out_rate as i32,
                in_layout.bits() as i64,
                in_fmt,
                in_rate as i32,
                0,
                std::ptr::null_mut(),
            );
            if ctx.is_null() {
                return Err(EngineError::media(path, "cannot create the resampler"));
            }
            let swr = Swr(ctx);
            let r = ffi::swr_init(ctx);
            if r < 0 {
                return Err(EngineError::media(
                    path,
                    format!("resampler: {}", ffmpeg::Error::from(r)),
                ));
            }
            Ok(swr)
        }
    }

    /// Converts `in_count` samples from the planes at `input` (null: flush)
    /// and appends the output to `out` (one Vec per channel).
    ///
    /// # Safety
    /// `input` must point to as many planes as the input layout has channels
    /// (or 1 for packed formats), each holding `in_count` samples.
    unsafe fn convert(
        &mut self,
        input: *const *const u8,
        in_count: usize,
        out: &mut [Vec<f32>],
        path: &Path,
    ) -> Result<()> {
        unsafe {
            let cap = ffi::swr_get_out_samples(self.0, in_count as i32).max(0) as usize + 64;
            let mut ptrs: Vec<*mut u8> = Vec::with_capacity(out.len());
            for ch in out.iter_mut() {
                ch.reserve(cap);
                ptrs.push(ch.as_mut_ptr().add(ch.len()) as *mut u8);
            }
            let n = ffi::swr_convert(
                self.0,
                ptrs.as_mut_ptr(),
                cap as i32,
                input as *mut *const u8,
                in_count as i32,
            );
            if n < 0 {
                return Err(EngineError::media(path, ffmpeg::Error::from(n)));
            }
            for ch in out.iter_mut() {
                ch.set_len(ch.len() + n as usize);
            }
        }
        Ok(())
    }
}

fn planes_ptrs(chans: &[Vec<f32>], from: usize) -> Vec<*const u8> {
    chans
        .iter()
        .map(|c| c[from..].as_ptr() as *const u8)
        .collect()
}

/// Planar f32 samples, one Vec per channel.
#[derive(Default)]
struct Planar(Vec<Vec<f32>>);

impl Planar {
    fn new(channels: usize) -> Self {
        Planar(vec![Vec::new(); channels])
    }
    fn len(&self) -> usize {
        self.0.first().map_or(0, Vec::len)
    }
    fn drop_front(&mut self, n: usize) {
        for c in &mut self.0 {
            let n = n.min(c.len());
            c.drain(..n);
        }
    }
    fn push_silence(&mut self, n: usize) {
        for c in &mut self.0 {
            c.resize(c.len() + n, 0.0);
        }
    }
    fn append(&mut self, other: &mut Planar) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter_mut()) {
            a.append(b);
        }
    }
}

/// Stretches time by `rate` (more samples when `rate > 1`).
enum Retimer {
    None,
    Resample(Swr),
    Tempo {
        stretcher: stretch::Stretcher,
        layout: ffmpeg::ChannelLayout,
        rate: u32,
        pts: i64,
    },
}

impl Retimer {
    fn new(
        kind: Retime,
        rate: f64,
        layout: ffmpeg::ChannelLayout,
        sr: u32,
        path: &Path,
    ) -> Result<Self> {
        match kind {
            Retime::None => Ok(Retimer::None),
            Retime::Resample => {
                let swr = Swr::new(
                    layout,
                    ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP,
                    sr,
                    layout,
                    sr,
                    path,
                )?;
                // Over `distance` output samples, add `delta`: each output
                // sample then advances the input by exactly 1/rate (to 1e-9).
                let distance: i32 = 1 << 30;
                let delta = (f64::from(distance) * (1.0 - 1.0 / rate)).round() as i32;
                // SAFETY: valid, initialised context.
                let r = unsafe { ffi::swr_set_compensation(swr.0, delta, distance) };
                if r < 0 {
                    return Err(EngineError::media(
                        path,
                        format!("resampler: {}", ffmpeg::Error::from(r)),
                    ));
                }
                Ok(Retimer::Resample(swr))
            }
            Retime::Tempo => {
                let stretcher = stretch::Stretcher::new(rate, sr, layout.bits(), path)?;
                Ok(Retimer::Tempo {
                    stretcher,
                    layout,
                    rate: sr,
                    pts: 0,
                })
            }
        }
    }

    /// Feeds all of `input` (emptied) and appends what comes out to `out`;
    /// `input == None` flushes.
    fn process(&mut self, input: Option<&mut Planar>, out: &mut Planar, path: &Path) -> Result<()> {
        match self {
            Retimer::None => {
                if let Some(i) = input {
                    out.append(i);
                }
                Ok(())
            }
            Retimer::Resample(swr) => {
                match input {
                    Some(i) => {
                        let n = i.len();
                        if n > 0 {
                            let ptrs = planes_ptrs(&i.0, 0);
                            // SAFETY: one plane per channel, `n` samples each.
                            unsafe { swr.convert(ptrs.as_ptr(), n, &mut out.0, path)? };
                        }
                        i.drop_front(n);
                    }
                    None => {
                        // SAFETY: null input flushes.
                        unsafe { swr.convert(std::ptr::null(), 0, &mut out.0, path)? };
                    }
                }
                Ok(())
            }
            Retimer::Tempo {
                stretcher,
                layout,
                rate,
                pts,
            } => {
                match input {
                    Some(i) => {
                        let n = i.len();
                        if n > 0 {
                            let mut frame = ffmpeg::frame::Audio::new(
                                ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar),
                                n,
                                *layout,
                            );
                            frame.set_rate(*rate);
                            frame.set_pts(Some(*pts));
                            *pts += n as i64;
                            for (c, samples) in i.0.iter().enumerate() {
                                frame.plane_mut::<f32>(c)[..n].copy_from_slice(&samples[..n]);
                            }
                            stretcher.push(Some(&frame), path)?;
                        }
                        i.drop_front(n);
                    }
                    None => stretcher.push(None, path)?,
                }
                let mut frame = ffmpeg::frame::Audio::empty();
                while stretcher.pull(&mut frame) {
                    let n = frame.samples();
                    for (c, o) in out.0.iter_mut().enumerate() {
                        o.extend_from_slice(&frame.plane::<f32>(c)[..n]);
                    }
                }
                Ok(())
            }
        }
    }
}

/// Decodes, positions, re-times and encodes the song; call [`SongEncoder::run`]
/// (typically on its own thread) to get the packets.
pub struct SongEncoder {
    job: SongRender,
    ictx: ffmpeg::format::context::Input,
    stream_index: usize,
    decoder: ffmpeg::decoder::Audio,
    encoder: ffmpeg::encoder::Audio,
    layout: ffmpeg::ChannelLayout,
    /// Output (= encoding) sample rate; also the rate the song is converted to.
    pub sample_rate: u32,
    pub channels: u16,
    frame_size: usize,
}

/// An encoded audio packet with its timing in 1/sample_rate units.
pub type AudioPacket = ffmpeg::Packet;

impl SongEncoder {
    /// Opens the song and the AAC encoder. `global_header`: the container
    /// wants codec headers out of band (MP4 does).
    pub fn open(job: SongRender, global_header: bool) -> Result<Self> {
        let path = job.song.clone();
        let ictx = open_input(&path)?;
        let stream = ictx
            .streams()
            .best(ffmpeg::media::Type::Audio)
            .ok_or_else(|| EngineError::NoAudio(path.clone()))?;
        let stream_index = stream.index();
        let cctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| EngineError::media(&path, e))?;
        let mut dec = cctx.decoder();
        dec.set_packet_time_base(stream.time_base());
        let decoder = dec.audio().map_err(|e| EngineError::Unsupported {
            path: path.clone(),
            reason: format!("cannot decode the song: {e}"),
        })?;
        let in_channels = decoder.channels().max(1);
        let layout = if in_channels >= 2 {
            ffmpeg::ChannelLayout::STEREO
        } else {
            ffmpeg::ChannelLayout::MONO
        };
        let song_rate = decoder.rate();
        let sample_rate = if AAC_RATES.contains(&song_rate) {
            song_rate
        } else {
            48000
        };

        let codec = ffmpeg::encoder::find(ffmpeg::codec::Id::AAC).ok_or_else(|| {
            EngineError::Unsupported {
                path: path.clone(),
                reason: "this FFmpeg has no AAC encoder".into(),
            }
        })?;
        let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(|e| EngineError::media(&path, e))?;
        enc.set_rate(sample_rate as i32);
        enc.set_format(ffmpeg::format::Sample::F32(
            ffmpeg::format::sample::Type::Planar,
        ));
        enc.set_channel_layout(layout);
        enc.set_channels(layout.channels());
        enc.set_bit_rate(job.bitrate);
        enc.set_time_base(ffmpeg::Rational::new(1, sample_rate as i32));
        if global_header {
            enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        }
        let encoder = enc
            .open_as(codec)
            .map_err(|e| EngineError::media(&path, format!("cannot open the AAC encoder: {e}")))?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        let mut ictx = ictx;
        crate::media::probe::read_only_stream(&mut ictx, stream_index);
        Ok(Self {
            job,
            ictx,
            stream_index,
            decoder,
            encoder,
            layout,
            sample_rate,
            channels: layout.channels() as u16,
            frame_size,
        })
    }

    /// Codec parameters for the output stream.
    pub fn parameters(&self) -> ffmpeg::codec::Parameters {
        ffmpeg::codec::Parameters::from(&*self.encoder)
    }

    /// Encodes the whole output; every packet goes to `sink` in order.
    pub fn run(
        mut self,
        cancel: &CancelToken,
        sink: &mut dyn FnMut(AudioPacket) -> Result<()>,
    ) -> Result<()> {
        let path = self.job.song.clone();
        let sr = f64::from(self.sample_rate);
        let rate = self.job.placement.rate;
        let b0 = self.job.placement.bgm_at(self.job.out_start_dance_s);
        let full = self.job.total_samples(self.sample_rate);
        let (from, to) = self.job.range.unwrap_or((0, full));
        let to = to.min(full);
        if from > 0 && self.job.retime != Retime::None {
            return Err(EngineError::InvalidRequest(
                "a re-timed song is rendered in one piece".into(),
            ));
        }
        let total_out = to.saturating_sub(from);
        let channels = usize::from(self.channels);
        // Silence before the song starts (lead-in before the music), or
        // song samples to skip.
        let (mut lead_silence, mut to_skip) = if self.job.retime == Retime::None {
            let start = (b0 * sr).round() as i64 + from as i64;
            ((-start).max(0) as usize, start.max(0) as usize)
        } else if b0 < 0.0 {
            ((-b0 * rate * sr).round() as usize, 0)
        } else {
            (0, (b0 * sr).round() as usize)
        };
        // Timestamps in the whole output's time line.
        let mut sink = |mut p: AudioPacket| -> Result<()> {
            p.set_pts(p.pts().map(|t| t + from as i64));
            p.set_dts(p.dts().map(|t| t + from as i64));
            sink(p)
        };
        let sink: &mut dyn FnMut(AudioPacket) -> Result<()> = &mut sink;

        let mut retimer =
            Retimer::new(self.job.retime, rate, self.layout, self.sample_rate, &path)?;
        let mut converter: Option<(Swr, ffi::AVSampleFormat, u64, u32)> = None;
        let mut converted = Planar::new(channels);
        let mut ready = Planar::new(channels);
        let mut emitted = 0usize;
        let mut frame = ffmpeg::frame::Audio::empty();
        let mut packet_out = ffmpeg::Packet::empty();
        let mut input_done = false;
        let mut eof_sent = false;
        // A song far from its start: seek there instead of decoding what is
        // skipped. Only where timestamps are exact to the sample (MP4/M4A
        // AAC, MKV: index-based) and no rate conversion changes the count;
        // 2 s early, since the first frame after a seek lacks its overlap.
        let mut fix_skip_from_pts = false;
        let exact_timestamps = {
            let format = self.ictx.format();
            let name = format.name();
            name.contains("mp4") || name.contains("matroska")
        };
        if exact_timestamps
            && self.decoder.rate() == self.sample_rate
            && to_skip > 10 * self.sample_rate as usize
        {
            if let Some(st) = self.ictx.stream(self.stream_index) {
                let tb = f64::from(st.time_base());
                let target_s = to_skip as f64 / sr - 2.0;
                let ts = (target_s / tb) as i64;
                if crate::media::probe::seek_keyframe_before(&mut self.ictx, self.stream_index, ts)
                    .is_ok()
                {
                    self.decoder.flush();
                    fix_skip_from_pts = true;
                }
            }
        }
        let stream_tb = self
            .ictx
            .stream(self.stream_index)
            .map_or(0.0, |st| f64::from(st.time_base()));

        // Encodes whole frames from `ready` (and the final short one at the end).
        let encode_ready = |ready: &mut Planar,
                            emitted: &mut usize,
                            finish: bool,
                            encoder: &mut ffmpeg::encoder::Audio,
                            sink: &mut dyn FnMut(AudioPacket) -> Result<()>|
         -> Result<()> {
            loop {
                let left = total_out - *emitted;
                if left == 0 {
                    break;
                }
                let n = self.frame_size.min(left);
                if ready.len() < n {
                    if !finish {
                        break;
                    }
                    // The song ended before the output: silence to the end.
                    ready.push_silence(n - ready.len());
                }
                let mut f = ffmpeg::frame::Audio::new(
                    ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar),
                    n,
                    self.layout,
                );
                f.set_rate(self.sample_rate);
                f.set_pts(Some(*emitted as i64));
                for (c, samples) in ready.0.iter().enumerate() {
                    f.plane_mut::<f32>(c)[..n].copy_from_slice(&samples[..n]);
                }
                ready.drop_front(n);
                *emitted += n;
                encoder
                    .send_frame(&f)
                    .map_err(|e| EngineError::media(&self.job.song, format!("AAC encoder: {e}")))?;
                let mut pkt = ffmpeg::Packet::empty();
                while encoder.receive_packet(&mut pkt).is_ok() {
                    sink(std::mem::replace(&mut pkt, ffmpeg::Packet::empty()))?;
                }
            }
            Ok(())
        };

        if lead_silence > 0 {
            let n = lead_silence.min(total_out);
            ready.push_silence(n);
            lead_silence = 0;
        }
        let _ = lead_silence;

        while emitted < total_out {
            cancel.check()?;
            // Enough buffered for the rest of the output: stop decoding.
            if ready.len() >= total_out - emitted {
                break;
            }
            if input_done {
                break;
            }
            // Decode one packet's worth.
            let mut got_frames = false;
            while self.decoder.receive_frame(&mut frame).is_ok() {
                got_frames = true;
                if fix_skip_from_pts {
                    // The seek landed here: count the skip from this frame.
                    let start = frame
                        .pts()
                        .map(|p| (p as f64 * stream_tb * sr).round() as i64)
                        .ok_or_else(|| {
                            EngineError::media(&path, "the song has no timestamps after seeking")
                        })?;
                    if start < 0 || start as usize > to_skip {
                        return Err(EngineError::media(&path, "seeking in the song went wrong"));
                    }
                    to_skip -= start as usize;
                    fix_skip_from_pts = false;
                }
                let fmt: ffi::AVSampleFormat = frame.format().into();
                let layout = layout_or_default(frame.channel_layout(), frame.channels());
                let fr = frame.rate();
                let stale = match &converter {
                    None => true,
                    Some((_, f, l, r)) => *f != fmt || *l != layout.bits() || *r != fr,
                };
                if stale {
                    if let Some((mut old, ..)) = converter.take() {
                        // SAFETY: flush with null input.
                        unsafe { old.convert(std::ptr::null(), 0, &mut converted.0, &path)? };
                    }
                    let swr = Swr::new(layout, fmt, fr, self.layout, self.sample_rate, &path)?;
                    converter = Some((swr, fmt, layout.bits(), fr));
                }
                if let Some((swr, ..)) = converter.as_mut() {
                    // SAFETY: the frame's extended_data has one plane per
                    // channel (or one for packed), `samples()` each.
                    unsafe {
                        let data = (*frame.as_ptr()).extended_data as *const *const u8;
                        swr.convert(data, frame.samples(), &mut converted.0, &path)?;
                    }
                }
            }
            if !got_frames {
                if eof_sent {
                    if let Some((mut swr, ..)) = converter.take() {
                        // SAFETY: flush with null input.
                        unsafe { swr.convert(std::ptr::null(), 0, &mut converted.0, &path)? };
                    }
                    input_done = true;
                } else {
                    match packet_out.read(&mut self.ictx) {
                        Ok(()) => {
                            if packet_out.stream() == self.stream_index {
                                // A damaged packet is skipped, as players do.
                                let _ = self.decoder.send_packet(&packet_out);
                            }
                        }
                        Err(ffmpeg::Error::Eof) => {
                            let _ = self.decoder.send_eof();
                            eof_sent = true;
                        }
                        Err(e) => {
                            return Err(EngineError::media(&path, e));
                        }
                    }
                }
            }
            if to_skip > 0 {
                let n = to_skip.min(converted.len());
                converted.drop_front(n);
                to_skip -= n;
            }
            if to_skip == 0 && (converted.len() > 0 || input_done) {
                let mut stretched = Planar::new(channels);
                retimer.process(Some(&mut converted), &mut stretched, &path)?;
                if input_done {
                    retimer.process(None, &mut stretched, &path)?;
                }
                ready.append(&mut stretched);
            }
            encode_ready(&mut ready, &mut emitted, false, &mut self.encoder, sink)?;
        }
        encode_ready(&mut ready, &mut emitted, true, &mut self.encoder, sink)?;
        self.encoder
            .send_eof()
            .map_err(|e| EngineError::media(&path, format!("AAC encoder: {e}")))?;
        let mut pkt = ffmpeg::Packet::empty();
        while self.encoder.receive_packet(&mut pkt).is_ok() {
            sink(std::mem::replace(&mut pkt, ffmpeg::Packet::empty()))?;
        }
        Ok(())
    }
}

/// Window sequence and shape of the first channel of an AAC raw data block
/// (ISO 14496-3 `ics_info`), `None` if it does not start with a channel
/// element. Used to splice two encoders' outputs where their windows agree.
pub(crate) fn aac_window(block: &[u8]) -> Option<(u8, u8)> {
    let mut r = Bits {
        data: block,
        pos: 0,
    };
    let id = r.take(3)?;
    r.take(4)?; // element_instance_tag
    match id {
        0 | 3 => {
            // SCE / LFE: global_gain, then ics_info.
            r.take(8)?;
        }
        1 => {
            // CPE: common_window; with it ics_info comes first, without it
            // the first channel's global_gain precedes its ics_info.
            if r.take(1)? == 0 {
                r.take(8)?;
            }
        }
        _ => return None,
    }
    r.take(1)?; // ics_reserved_bit
    let seq = r.take(2)? as u8;
    let shape = r.take(1)? as u8;
    Some((seq, shape))
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            let bit = (byte >> (7 - (self.pos % 8))) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Some(v)
    }
}

/// AAC frame length of FFmpeg's encoder.
pub const AAC_FRAME: usize = 1024;

/// How the output is cut into pieces encoded in parallel: piece A covers
/// `[0, a_end)`, piece B `[b_start, total)`, and the splice is chosen in
/// `[lo, hi]` (all multiples of the AAC frame, so both encoders share the
/// frame grid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitPlan {
    pub a_end: usize,
    pub b_start: usize,
    pub lo: usize,
    pub hi: usize,
    pub mid: usize,
}

/// Splits outputs long enough to gain from a second encoder thread.
pub fn split_plan(total: usize, sample_rate: u32) -> Option<SplitPlan> {
    if total < 20 * sample_rate as usize {
        return None;
    }
    let f = AAC_FRAME;
    let mid = total / 2 / f * f;
    // ±40 frames (~1 s) to find matching windows, 48 more frames of warm-up
    // and run-out so both encoders' psychoacoustic state has settled there.
    let (choose, settle) = (40 * f, 48 * f);
    Some(SplitPlan {
        a_end: mid + choose + settle,
        b_start: mid - choose - settle,
        lo: mid - choose,
        hi: mid + choose,
        mid,
    })
}

/// Picks the splice frame: the one nearest the middle where piece A's and
/// piece B's preceding block were coded with the same window (sequence and
/// shape), so the overlap-add across the splice still cancels aliasing.
/// `a` and `b` map packet pts to their window.
pub fn choose_splice(
    plan: &SplitPlan,
    a: &std::collections::BTreeMap<i64, Option<(u8, u8)>>,
    b: &std::collections::BTreeMap<i64, Option<(u8, u8)>>,
) -> usize {
    let f = AAC_FRAME;
    let mut candidates: Vec<usize> = (plan.lo..=plan.hi).step_by(f).collect();
    candidates.sort_by_key(|&s| s.abs_diff(plan.mid));
    for s in candidates {
        let prev = (s - f) as i64;
        let (Some(Some(wa)), Some(Some(wb))) = (a.get(&prev), b.get(&prev)) else {
            continue;
        };
        if wa == wb && b.contains_key(&(s as i64)) && a.contains_key(&prev) {
            return s;
        }
    }
    plan.mid
}

/// Copies the song's AAC packets instead of encoding (rate 1 only): no
/// generation loss, much faster. Positioned to the sample: copying starts
/// one packet before the one holding the first output sample (the AAC
/// decoder needs it for the overlap), and the output's first packets get
/// negative timestamps, which the MP4 muxer turns into an edit list that
/// players and FFmpeg's decoder honour sample-exactly.
pub struct SongCopier {
    ictx: ffmpeg::format::context::Input,
    stream_index: usize,
    time_base: ffmpeg::Rational,
    /// Song sample (in its own rate) shown at output time 0.
    first_sample: i64,
    /// Output length in song samples.
    total: i64,
    pub sample_rate: u32,
    pub channels: u16,
    path: PathBuf,
    /// Reading state: the packet before the first needed one (it primes the
    /// decoder), whether copying started, a packet due next, the end reached.
    previous: Option<(ffmpeg::Packet, i64)>,
    started: bool,
    queued: Option<AudioPacket>,
    done: bool,
}

impl SongCopier {
    /// `Ok(Err(reason))` when the song cannot be copied (then it is encoded).
    pub fn open(job: &SongRender) -> Result<std::result::Result<Self, String>> {
        let path = job.song.clone();
        if job.retime != Retime::None {
            return Ok(Err("the song is re-timed (rate is not 1)".into()));
        }
        let mut ictx = open_input(&path)?;
        let stream = ictx
            .streams()
            .best(ffmpeg::media::Type::Audio)
            .ok_or_else(|| EngineError::NoAudio(path.clone()))?;
        let params = stream.parameters();
        if params.id() != ffmpeg::codec::Id::AAC {
            return Ok(Err(format!("the song is {:?}, not AAC", params.id())));
        }
        // SAFETY: reading plain fields of valid codec parameters.
        let (rate, channels, has_config) = unsafe {
            let p = params.as_ptr();
            (
                (*p).sample_rate.max(0) as u32,
                (*p).ch_layout.nb_channels.max(0) as u16,
                (*p).extradata_size > 0,
            )
        };
        if !has_config || rate == 0 {
            return Ok(Err(
                "the song is raw AAC without a decoder configuration (ADTS)".into(),
            ));
        }
        let b0 = job.placement.bgm_at(job.out_start_dance_s);
        if b0 < 0.0 {
            return Ok(Err(
                "the output starts before the song (lead-in), which needs encoded silence".into(),
            ));
        }
        let stream_index = stream.index();
        let time_base = stream.time_base();
        crate::media::probe::read_only_stream(&mut ictx, stream_index);
        Ok(Ok(Self {
            ictx,
            stream_index,
            time_base,
            first_sample: (b0 * f64::from(rate)).round() as i64,
            total: (job.duration_s * f64::from(rate)).round() as i64,
            sample_rate: rate,
            channels,
            path,
            previous: None,
            started: false,
            queued: None,
            done: false,
        }))
    }

    /// The song stream's codec parameters, for the output stream.
    pub fn parameters(&self) -> Option<ffmpeg::codec::Parameters> {
        self.ictx.stream(self.stream_index).map(|s| s.parameters())
    }

    /// Sends the packets, timestamps in 1/sample_rate, output time line.
    pub fn run(
        mut self,
        cancel: &CancelToken,
        sink: &mut dyn FnMut(AudioPacket) -> Result<()>,
    ) -> Result<()> {
        let mut n = 0usize;
        while let Some(p) = self.next_packet()? {
            n += 1;
            if n.is_multiple_of(64) {
                cancel.check()?;
            }
            sink(p)?;
        }
        Ok(())
    }

    /// The next packet to copy, timestamps in 1/sample_rate, output time
    /// line; `None` at the end. Demuxing only: cheap enough to be called
    /// from the muxing loop itself.
    pub fn next_packet(&mut self) -> Result<Option<AudioPacket>> {
        if let Some(p) = self.queued.take() {
            return Ok(Some(p));
        }
        if self.done {
            return Ok(None);
        }
        let rate = self.sample_rate as i32;
        let to_samples = |ts: i64, tb: ffmpeg::Rational| -> i64 {
            // SAFETY: pure arithmetic helper.
            unsafe { ffi::av_rescale_q(ts, tb.into(), ffi::AVRational { num: 1, den: rate }) }
        };
        // Packets are read from the start: seeking AAC precisely is less
        // reliable than reading past a few MB of audio.
        let end = self.first_sample + self.total;
        loop {
            let mut p = ffmpeg::Packet::empty();
            match p.read(&mut self.ictx) {
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(e) => return Err(EngineError::media(&self.path, e)),
            }
            if p.stream() != self.stream_index {
                continue;
            }
            let Some(pts) = p.pts().or(p.dts()) else {
                continue;
            };
            let start = to_samples(pts, self.time_base);
            let dur = if p.duration() > 0 {
                to_samples(p.duration(), self.time_base)
            } else {
                AAC_FRAME as i64
            };
            if start >= end {
                self.done = true;
                return Ok(None);
            }
            if !self.started {
                if start + dur <= self.first_sample {
                    self.previous = Some((p, start));
                    continue;
                }
                self.started = true;
                // The packet before the first needed one primes the decoder.
                if let Some((prev, prev_start)) = self.previous.take() {
                    self.queued = Some(self.retime_packet(p, start, dur));
                    return Ok(Some(self.retime_packet(prev, prev_start, AAC_FRAME as i64)));
                }
            }
            return Ok(Some(self.retime_packet(p, start, dur)));
        }
    }

    fn retime_packet(&self, mut p: ffmpeg::Packet, start: i64, dur: i64) -> AudioPacket {
        let t = start - self.first_sample;
        p.set_pts(Some(t));
        p.set_dts(Some(t));
        p.set_duration(dur);
        p.set_position(-1);
        // Skip-samples side data from the source's priming must not travel:
        // the edit list positions the output.
        // SAFETY: valid packet; freeing its side data leaves a plain packet.
        unsafe {
            ffi::av_packet_free_side_data(ffmpeg::packet::Mut::as_mut_ptr(&mut p));
        }
        p
    }
}

//! `trim`: where the exported video starts and ends, each end with the reason
//! shown to the user.
//!
//! * [`Placement`]: the time map between the recording and the song.
//! * [`decide_trim`]: the pure decision from the facts below.
//! * [`song_audible_range`]: where the song itself starts and stops being
//!   audible (its intro silence and its fade into silence), from its audio.
//! * [`find_black_tail`]: the start of a final stretch of black picture (phone
//!   put face down while the music plays on), decoding only a handful of
//!   frames near the end, never the whole video.
//!
//! All times here are *dance time* (seconds on the recording's audio clock,
//! sample 0 = first decoded audio sample, the convention of `align`) unless a
//! name says otherwise.

use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::media::probe::{layout_or_default, open_input_fast, OwnedParams};
use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartReason {
    /// The song was already playing when the recording started.
    RecordingStart,
    /// The song starts being heard here (minus the requested lead-in); the
    /// talk and waiting before it are dropped.
    SongStart,
    /// The user moved the start.
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The recording stops while the song still plays.
    RecordingEnd,
    /// The song (including its fade into silence) ends before the recording.
    SongEnd,
    /// From here to the end the picture is black (phone face down).
    BlackPicture,
    /// The user moved the end.
    User,
}

/// The facts the trim decision is made from (dance time, seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrimFacts {
    /// First and last instant of picture in the recording.
    pub recording_start_s: f64,
    pub recording_end_s: f64,
    /// Where the song starts / stops being heard in the recording (may lie
    /// outside the recording).
    pub song_heard_start_s: f64,
    pub song_heard_end_s: f64,
    /// Start of a final stretch of black picture, if any.
    pub black_from_s: Option<f64>,
    /// Seconds kept before the song starts (talk, counting in).
    pub lead_in_s: f64,
    /// The user's own start and end, overriding the automatic ones (kept
    /// inside the recording).
    pub user_start_s: Option<f64>,
    pub user_end_s: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrimDecision {
    pub start_s: f64,
    pub end_s: f64,
    pub start_reason: StartReason,
    pub end_reason: EndReason,
}

/// Differences below this are "the same moment" for choosing a reason: the
/// song heard 50 ms after the recording starts was already playing.
const SAME_MOMENT_S: f64 = 0.1;
/// Shortest export that makes sense.
pub const MIN_EXPORT_S: f64 = 1.0;

/// The pure trim decision: start where the song starts being heard (or at the
/// recording's start if it was already playing), keeping `lead_in_s` before
/// it; end at the earliest of the recording's end, the song's end, and a final
/// black stretch.
pub fn decide_trim(f: &TrimFacts) -> Result<TrimDecision> {
    let heard_start = f.song_heard_start_s.max(f.recording_start_s);
    let (start_s, start_reason) = if heard_start - f.recording_start_s <= SAME_MOMENT_S {
        (f.recording_start_s, StartReason::RecordingStart)
    } else {
        let s = (heard_start - f.lead_in_s.max(0.0)).max(f.recording_start_s);
        if s - f.recording_start_s <= 1e-6 {
            (f.recording_start_s, StartReason::RecordingStart)
        } else {
            (s, StartReason::SongStart)
        }
    };
    let mut end_s = f.recording_end_s;
    let mut end_reason = EndReason::RecordingEnd;
    if f.song_heard_end_s < end_s - SAME_MOMENT_S {
        end_s = f.song_heard_end_s;
        end_reason = EndReason::SongEnd;
    }
    if let Some(black) = f.black_from_s {
        // A black tail that would swallow (almost) everything is ignored: the
        // user then sees the whole part rather than nothing.
        if black < end_s && black >= start_s + MIN_EXPORT_S {
            end_s = black;
            end_reason = EndReason::BlackPicture;
        }
    }
    let (mut start_s, mut start_reason) = (start_s, start_reason);
    if let Some(u) = f.user_start_s {
        start_s = u.clamp(f.recording_start_s, f.recording_end_s);
        start_reason = StartReason::User;
    }
    if let Some(u) = f.user_end_s {
        end_s = u.clamp(f.recording_start_s, f.recording_end_s);
        end_reason = EndReason::User;
    }
    if end_s - start_s < MIN_EXPORT_S {
        return Err(EngineError::NothingToExport {
            reason: format!(
                "with this offset the song is heard for only {:.2} s of the recording (from {:.2} s to {:.2} s); check the offset",
                (end_s - start_s).max(0.0),
                start_s,
                end_s
            ),
        });
    }
    Ok(TrimDecision {
        start_s,
        end_s,
        start_reason,
        end_reason,
    })
}

/// Where the song is audible in its own timeline (song seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SongAudibleRange {
    pub start_s: f64,
    /// End of the fade into silence (not its start).
    pub end_s: f64,
    pub duration_s: f64,
}

/// Level below the loudest part of the song that counts as silence. A fade
/// is followed until it is this far down: quieter than that, nobody hears it
/// over studio speakers.
const SILENCE_BELOW_PEAK_DB: f64 = 50.0;
const ENVELOPE_RATE: u32 = 8000;
const ENVELOPE_BLOCK: usize = 160; // 20 ms at 8 kHz

/// 20-ms block powers (mono) of the song between `from_s` and `to_s` (song
/// seconds); seeks instead of decoding what lies before `from_s`. Returns
/// the powers (block `i` starts at `from_s + i * 0.02`) and where the
/// decoded audio ended.
fn block_powers(
    song: &Path,
    from_s: f64,
    to_s: f64,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<(Vec<f32>, f64)> {
    let mut ictx = open_input_fast(song)?;
    let stream = ictx
        .streams()
        .best(ffmpeg::media::Type::Audio)
        .ok_or_else(|| EngineError::NoAudio(song.to_path_buf()))?;
    let index = stream.index();
    let tb = stream.time_base();
    let mut dctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| EngineError::media(song, e))?
        .decoder();
    dctx.set_packet_time_base(tb);
    let mut decoder = dctx.audio().map_err(|e| EngineError::Unsupported {
        path: song.to_path_buf(),
        reason: format!("cannot decode the song: {e}"),
    })?;
    if from_s > 1.0 {
        // A second early: the first frame after a seek decodes without its
        // overlap and is not used.
        let ts = ((from_s - 1.0) / f64::from(tb)) as i64;
        // An unseekable song is read from its start instead.
        let _ = crate::media::probe::seek_keyframe_before(&mut ictx, index, ts);
    }
    let block_s = ENVELOPE_BLOCK as f64 / f64::from(ENVELOPE_RATE);
    let mut sums: Vec<(f64, u32)> = Vec::new();
    let mut frame = ffmpeg::frame::Audio::empty();
    let mut mono = ffmpeg::frame::Audio::empty();
    let mut resampler: Option<ffmpeg::software::resampling::Context> = None;
    let mut next_t: Option<f64> = None;
    let mut end_t = from_s;
    let mut eof = false;
    let mut done = false;
    let mut n = 0usize;
    while !done {
        while decoder.receive_frame(&mut frame).is_ok() {
            let rate = frame.rate().max(1);
            let t0 = frame
                .pts()
                .map(|p| p as f64 * f64::from(tb))
                .or(next_t)
                .unwrap_or(0.0);
            next_t = Some(t0 + frame.samples() as f64 / f64::from(rate));
            let layout = layout_or_default(frame.channel_layout(), frame.channels());
            if resampler
                .as_ref()
                .is_none_or(|r| r.input().format != frame.format() || r.input().rate != rate)
            {
                resampler = Some(
                    ffmpeg::software::resampling::Context::get(
                        frame.format(),
                        layout,
                        rate,
                        ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Packed),
                        ffmpeg::ChannelLayout::MONO,
                        rate,
                    )
                    .map_err(|e| EngineError::media(song, e))?,
                );
            }
            frame.set_channel_layout(layout);
            if let Some(r) = resampler.as_mut() {
                r.run(&frame, &mut mono)
                    .map_err(|e| EngineError::media(song, e))?;
            }
            let samples = &mono.plane::<f32>(0)[..mono.samples()];
            for (i, v) in samples.iter().enumerate() {
                let t = t0 + i as f64 / f64::from(rate);
                if t < from_s {
                    continue;
                }
                if t >= to_s {
                    done = true;
                    break;
                }
                let b = ((t - from_s) / block_s) as usize;
                if sums.len() <= b {
                    sums.resize(b + 1, (0.0, 0));
                }
                sums[b].0 += f64::from(*v) * f64::from(*v);
                sums[b].1 += 1;
                end_t = t;
            }
            if done {
                break;
            }
        }
        if done || eof {
            break;
        }
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(&mut ictx) {
            Ok(()) => {
                if packet.stream() == index {
                    let _ = decoder.send_packet(&packet);
                    n += 1;
                    if n.is_multiple_of(64) {
                        cancel.check()?;
                        if to_s.is_finite() && to_s > from_s {
                            progress(((end_t - from_s) / (to_s - from_s)).clamp(0.0, 1.0));
                        }
                    }
                }
            }
            Err(_) => {
                let _ = decoder.send_eof();
                eof = true;
            }
        }
    }
    let powers = sums
        .iter()
        .map(|(s, c)| {
            if *c > 0 {
                (*s / f64::from(*c)) as f32
            } else {
                0.0
            }
        })
        .collect();
    Ok((powers, end_t))
}

/// Finds where the song is audible: the first and last 20 ms block louder
/// than `SILENCE_BELOW_PEAK_DB` under its loudest block. A song longer than
/// a minute is not decoded whole: its end is found in its last 30 s (seeking
/// there; the window grows backwards, to 90 s, only while it holds nothing
/// audible), its start by decoding from the beginning in growing pieces
/// (1, 3, 9… s) up to the first audible block, at most 45 s. The loudest
/// block is then the loudest of what was decoded: a lower estimate than the
/// whole song's at worst, which keeps a little more of a fade, never less.
/// When no audible start or end is found that way, the whole song is decoded.
pub fn song_audible_range(
    song: &Path,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<SongAudibleRange> {
    const HEAD_S: f64 = 45.0;
    const TAIL_S: [f64; 2] = [30.0, 90.0];
    let info = crate::media::probe::probe_fast(song)?;
    let dur = info
        .audio()
        .and_then(|a| a.duration_s)
        .unwrap_or(info.duration_s);
    let block_s = ENVELOPE_BLOCK as f64 / f64::from(ENVELOPE_RATE);
    let level = |powers: &[f32]| powers.iter().copied().fold(0.0f32, f32::max);
    let threshold =
        |peak: f32| (f64::from(peak) * 10f64.powf(-SILENCE_BELOW_PEAK_DB / 10.0)).max(1e-9) as f32;
    if dur > 60.0 {
        // The end: the last audible block of the last 30 (or 90) seconds.
        let from = ((dur - TAIL_S[0]) / block_s).floor() * block_s;
        let (mut tail, tail_end) = block_powers(song, from, f64::INFINITY, cancel, &mut |f| {
            progress(0.3 * f)
        })?;
        let mut tail_from = from;
        if level(&tail) <= 1e-12 {
            // Nothing in the last 30 s: the 60 s before them.
            let from = ((dur - TAIL_S[1]) / block_s).floor() * block_s;
            let (mut more, _) = block_powers(song, from, tail_from, cancel, &mut |f| {
                progress(0.3 + 0.3 * f)
            })?;
            more.resize(((tail_from - from) / block_s).round() as usize, 0.0);
            more.append(&mut tail);
            tail = more;
            tail_from = from;
        }
        // The start: decode from 0 in growing pieces up to the first block
        // louder than the threshold of everything decoded so far.
        let mut head: Vec<f32> = Vec::new();
        let mut head_to = 0.0;
        let mut piece = 1.0;
        let head_limit = HEAD_S.min(tail_from);
        let first = loop {
            let peak = level(&head).max(level(&tail));
            if peak > 1e-12 {
                if let Some(i) = head.iter().position(|&p| p > threshold(peak)) {
                    break Some(i);
                }
            }
            if head_to >= head_limit {
                break None;
            }
            let to = (head_to + piece).min(head_limit);
            let (mut more, _) = block_powers(song, head_to, to, cancel, &mut |f| {
                progress(0.4 + 0.6 * (head_to + f * (to - head_to)) / head_limit)
            })?;
            more.resize(((to - head_to) / block_s).round() as usize, 0.0);
            head.append(&mut more);
            head_to = to;
            piece *= 3.0;
        };
        let peak = level(&head).max(level(&tail));
        let last = tail.iter().rposition(|&p| p > threshold(peak));
        if let (Some(first), Some(last), true) = (first, last, peak > 1e-12) {
            return Ok(SongAudibleRange {
                start_s: first as f64 * block_s,
                end_s: (tail_from + (last + 1) as f64 * block_s).min(tail_end + block_s),
                duration_s: tail_end,
            });
        }
        // A silent head or tail: look at the whole song.
    }
    let (all, end) = block_powers(song, 0.0, f64::INFINITY, cancel, progress)?;
    let peak = level(&all);
    if peak <= 1e-12 {
        return Err(EngineError::Empty(song.to_path_buf()));
    }
    let t = threshold(peak);
    let (first, last) = (
        all.iter().position(|&p| p > t),
        all.iter().rposition(|&p| p > t),
    );
    Ok(SongAudibleRange {
        start_s: first.unwrap_or(0) as f64 * block_s,
        end_s: (last.map_or(all.len(), |l| l + 1) as f64 * block_s).min(end + block_s),
        duration_s: end,
    })
}

/// Black-picture test on a decoded frame's luma: dark on average and almost
/// no bright pixels. A phone lying face down gives a dark, noisy picture, not
/// pure black, hence the tolerances.
fn is_black(frame: &ffmpeg::frame::Video) -> bool {
    use ffmpeg::format::Pixel;
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    if w == 0 || h == 0 {
        return false;
    }
    let fmt = frame.format();
    // Luma in plane 0, 8 or 16 bits; full-range formats have black at 0,
    // limited-range at 16 (8-bit scale).
    let (bytes_per_sample, shift) = match fmt {
        Pixel::YUV420P
        | Pixel::YUVJ420P
        | Pixel::NV12
        | Pixel::NV21
        | Pixel::YUV422P
        | Pixel::YUVJ422P
        | Pixel::YUV444P
        | Pixel::YUVJ444P
        | Pixel::GRAY8 => (1usize, 0u32),
        Pixel::YUV420P10LE | Pixel::P010LE | Pixel::YUV422P10LE | Pixel::YUV444P10LE => (2, 2),
        _ => return false,
    };
    let stride = frame.stride(0);
    let data = frame.data(0);
    let step = 4usize;
    let (mut sum, mut bright, mut n) = (0u64, 0u64, 0u64);
    for y in (0..h).step_by(step) {
        let row = &data[y * stride..];
        for x in (0..w).step_by(step) {
            let v = if bytes_per_sample == 1 {
                u32::from(row[x])
            } else {
                let lo = row[2 * x];
                let hi = row[2 * x + 1];
                // P010 keeps its 10 bits in the high bits of each 16-bit word.
                let raw = u32::from(u16::from_le_bytes([lo, hi]));
                if fmt == Pixel::P010LE {
                    raw >> 8
                } else {
                    raw >> shift
                }
            };
            sum += u64::from(v);
            if v > 56 {
                bright += 1;
            }
            n += 1;
        }
    }
    if n == 0 {
        return false;
    }
    let mean = sum as f64 / n as f64;
    mean < 32.0 && (bright as f64) < 0.02 * n as f64
}

/// Decodes video frames of one stream on demand: "the frame shown at time t".
struct FrameSampler {
    ictx: ffmpeg::format::context::Input,
    stream_index: usize,
    decoder: ffmpeg::decoder::Video,
    time_base: f64,
    path: std::path::PathBuf,
    /// Whether a frame was decoded (the decoder then knows the stream).
    decoded: bool,
}

impl FrameSampler {
    fn open(path: &Path) -> Result<Self> {
        let mut ictx = open_input_fast(path)?;
        let stream = ictx
            .streams()
            .best(ffmpeg::media::Type::Video)
            .ok_or_else(|| EngineError::NoVideo(path.to_path_buf()))?;
        let stream_index = stream.index();
        let time_base = f64::from(stream.time_base());
        let mut cctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| EngineError::media(path, e))?;
        // Two threads are enough for a few frames and leave the other work room.
        cctx.set_threading(ffmpeg::threading::Config {
            kind: ffmpeg::threading::Type::Frame,
            count: 2,
            ..Default::default()
        });
        let decoder = cctx
            .decoder()
            .video()
            .map_err(|e| EngineError::Unsupported {
                path: path.to_path_buf(),
                reason: format!("cannot decode the video to look for a black ending: {e}"),
            })?;
        crate::media::probe::read_only_stream(&mut ictx, stream_index);
        Ok(Self {
            ictx,
            stream_index,
            decoder,
            time_base,
            path: path.to_path_buf(),
            decoded: false,
        })
    }

    /// The stream's codec parameters with what the decoder learnt from the
    /// bitstream (pixel format, profile, level, colour, chroma siting), as
    /// `avformat_find_stream_info` completes them; `None` before a frame was
    /// decoded.
    fn stream_params(&self) -> Option<OwnedParams> {
        if !self.decoded {
            return None;
        }
        let st = self.ictx.stream(self.stream_index)?;
        let mut owned = OwnedParams::copy_of(&st.parameters())?;
        // SAFETY: valid parameters owned here and a valid opened decoder.
        let r = unsafe {
            ffmpeg::ffi::avcodec_parameters_from_context(owned.as_mut_ptr(), self.decoder.as_ptr())
        };
        (r >= 0).then_some(owned)
    }

    /// The keyframe at or before container time `t`: whether it is black,
    /// and its time. Decodes that one frame only.
    fn keyframe_before(&mut self, t: f64) -> Result<Option<(bool, f64)>> {
        if !self.seek_before(t) {
            return Ok(None);
        }
        loop {
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) if packet.stream() == self.stream_index => {
                    if !packet.is_key() {
                        return Ok(None);
                    }
                    let _ = self.decoder.send_packet(&packet);
                    let _ = self.decoder.send_eof();
                    let mut frame = ffmpeg::frame::Video::empty();
                    let got = self.decoder.receive_frame(&mut frame).is_ok();
                    self.decoder.flush();
                    if !got {
                        return Ok(None);
                    }
                    self.decoded = true;
                    let pts = frame.timestamp().or(frame.pts()).or(packet.pts());
                    return Ok(pts.map(|p| (is_black(&frame), p as f64 * self.time_base)));
                }
                Ok(()) => continue,
                Err(ffmpeg::Error::Eof) => return Ok(None),
                Err(e) => return Err(EngineError::media(&self.path, e)),
            }
        }
    }

    /// Seeks to the keyframe at or before container time `t` and resets the
    /// decoder; false when the file cannot seek there.
    fn seek_before(&mut self, t: f64) -> bool {
        let ts = (t / self.time_base).floor() as i64;
        if crate::media::probe::seek_keyframe_before(&mut self.ictx, self.stream_index, ts).is_err()
        {
            return false;
        }
        self.decoder.flush();
        true
    }

    /// Whether the frame shown at container time `t` is black; `None` when no
    /// frame could be decoded there. Seeks to the keyframe before `t` and
    /// decodes forward to `t` (at most one GOP).
    fn black_at(&mut self, t: f64, cancel: &CancelToken) -> Result<Option<bool>> {
        if !self.seek_before(t) {
            return Ok(None);
        }
        let mut frame = ffmpeg::frame::Video::empty();
        let mut last_black: Option<bool> = None;
        let mut eof = false;
        loop {
            cancel.check()?;
            while self.decoder.receive_frame(&mut frame).is_ok() {
                let pts = frame.timestamp().or(frame.pts()).unwrap_or(i64::MIN);
                if pts != i64::MIN && pts as f64 * self.time_base > t + 1e-6 {
                    // First frame after `t`: the previous one was on screen at `t`.
                    return Ok(last_black.or(Some(is_black(&frame))));
                }
                last_black = Some(is_black(&frame));
                self.decoded = true;
            }
            if eof {
                return Ok(last_black);
            }
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) => {
                    if packet.stream() == self.stream_index {
                        let _ = self.decoder.send_packet(&packet);
                    }
                }
                Err(ffmpeg::Error::Eof) => {
                    let _ = self.decoder.send_eof();
                    eof = true;
                }
                Err(e) => return Err(EngineError::media(&self.path, e)),
            }
        }
    }
}

/// Whether the frame shown at container time `t` is black (`None`: no
/// frame there). One seek and at most one GOP decoded.
pub fn black_at(video: &Path, t: f64, cancel: &CancelToken) -> Result<Option<bool>> {
    FrameSampler::open(video)?.black_at(t, cancel)
}

/// Whether the recording can end in a black stretch of at least
/// [`MIN_BLACK_TAIL_S`] before container time `end`: decodes only the last
/// keyframe when that settles it (a keyframe with picture inside the last
/// [`MIN_BLACK_TAIL_S`] rules a black tail out), else the last frame.
pub fn may_end_black(video: &Path, end: f64, cancel: &CancelToken) -> Result<bool> {
    Ok(look_at_the_end(video, end, cancel)?.0)
}

/// [`may_end_black`], and the video stream's parameters completed by the
/// decoder that looked (see [`FrameSampler::stream_params`]): one keyframe
/// decode serves both.
pub(crate) fn look_at_the_end(
    video: &Path,
    end: f64,
    cancel: &CancelToken,
) -> Result<(bool, Option<OwnedParams>)> {
    let mut sampler = FrameSampler::open(video)?;
    if let Some((black, key_t)) = sampler.keyframe_before(end - 0.05)? {
        if !black && key_t >= end - MIN_BLACK_TAIL_S {
            return Ok((false, sampler.stream_params()));
        }
    }
    let black = sampler.black_at(end - 0.05, cancel)? == Some(true);
    Ok((black, sampler.stream_params()))
}

/// Shortest black ending that counts as "phone face down".
pub const MIN_BLACK_TAIL_S: f64 = 2.0;

/// Start of a final black stretch ending at container time `end_c` (and not
/// earlier than `not_before_c`), in container seconds, to ~1/10 s. Samples
/// frames backwards from the end with growing steps, then bisects between the
/// last picture and the first black frame: a few dozen frames decoded at most.
pub fn find_black_tail(
    video: &Path,
    not_before_c: f64,
    end_c: f64,
    cancel: &CancelToken,
) -> Result<Option<f64>> {
    let mut sampler = FrameSampler::open(video)?;
    let probe_at = |s: &mut FrameSampler, t: f64| -> Result<Option<bool>> { s.black_at(t, cancel) };
    // The very last frames first: no black there, no black tail.
    let last = (end_c - 0.05).max(not_before_c);
    if probe_at(&mut sampler, last)? != Some(true) {
        return Ok(None);
    }
    let mut black_t = last;
    let mut step = 0.5;
    let picture_t: f64;
    loop {
        let t = black_t - step;
        if t <= not_before_c {
            // Black all the way back to where the export would start.
            if probe_at(&mut sampler, not_before_c)? == Some(true) {
                return Ok(Some(not_before_c));
            }
            picture_t = not_before_c;
            break;
        }
        match probe_at(&mut sampler, t)? {
            Some(true) => {
                black_t = t;
                step *= 2.0;
            }
            _ => {
                picture_t = t;
                break;
            }
        }
    }
    let mut lo = picture_t;
    let mut hi = black_t;
    while hi - lo > 0.1 {
        let mid = 0.5 * (lo + hi);
        if probe_at(&mut sampler, mid)? == Some(true) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    if end_c - hi < MIN_BLACK_TAIL_S {
        return Ok(None);
    }
    Ok(Some(hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> TrimFacts {
        TrimFacts {
            user_start_s: None,
            user_end_s: None,
            recording_start_s: 0.0,
            recording_end_s: 100.0,
            song_heard_start_s: 10.0,
            song_heard_end_s: 200.0,
            black_from_s: None,
            lead_in_s: 0.0,
        }
    }

    #[test]
    fn the_users_trim_wins_and_stays_inside_the_recording() {
        let d = decide_trim(&TrimFacts {
            user_start_s: Some(4.5),
            user_end_s: Some(60.0),
            black_from_s: Some(80.0),
            ..facts()
        })
        .unwrap();
        assert_eq!((d.start_s, d.start_reason), (4.5, StartReason::User));
        assert_eq!((d.end_s, d.end_reason), (60.0, EndReason::User));
        let d = decide_trim(&TrimFacts {
            user_start_s: Some(-3.0),
            user_end_s: Some(500.0),
            ..facts()
        })
        .unwrap();
        assert_eq!((d.start_s, d.end_s), (0.0, 100.0));
        // Only the end moved: the start stays automatic.
        let d = decide_trim(&TrimFacts {
            user_end_s: Some(50.0),
            ..facts()
        })
        .unwrap();
        assert_eq!(
            (d.start_s, d.start_reason, d.end_reason),
            (10.0, StartReason::SongStart, EndReason::User)
        );
        assert!(
            decide_trim(&TrimFacts {
                user_start_s: Some(30.0),
                user_end_s: Some(30.1),
                ..facts()
            })
            .is_err(),
            "too short"
        );
    }

    #[test]
    fn pre_roll_is_dropped_and_lead_in_kept() {
        let d = decide_trim(&facts()).unwrap();
        assert_eq!((d.start_s, d.start_reason), (10.0, StartReason::SongStart));
        assert_eq!((d.end_s, d.end_reason), (100.0, EndReason::RecordingEnd));
        let d = decide_trim(&TrimFacts {
            lead_in_s: 3.0,
            ..facts()
        })
        .unwrap();
        assert_eq!(d.start_s, 7.0);
        let d = decide_trim(&TrimFacts {
            lead_in_s: 30.0,
            ..facts()
        })
        .unwrap();
        assert_eq!(
            (d.start_s, d.start_reason),
            (0.0, StartReason::RecordingStart)
        );
    }

    #[test]
    fn song_already_playing_starts_at_recording_start() {
        let d = decide_trim(&TrimFacts {
            song_heard_start_s: -40.0,
            ..facts()
        })
        .unwrap();
        assert_eq!(
            (d.start_s, d.start_reason),
            (0.0, StartReason::RecordingStart)
        );
    }

    #[test]
    fn earliest_end_wins() {
        let d = decide_trim(&TrimFacts {
            song_heard_end_s: 80.0,
            ..facts()
        })
        .unwrap();
        assert_eq!((d.end_s, d.end_reason), (80.0, EndReason::SongEnd));
        let d = decide_trim(&TrimFacts {
            song_heard_end_s: 80.0,
            black_from_s: Some(60.0),
            ..facts()
        })
        .unwrap();
        assert_eq!((d.end_s, d.end_reason), (60.0, EndReason::BlackPicture));
        let d = decide_trim(&TrimFacts {
            song_heard_end_s: 80.0,
            black_from_s: Some(90.0),
            ..facts()
        })
        .unwrap();
        assert_eq!(d.end_reason, EndReason::SongEnd);
    }

    #[test]
    fn song_not_heard_is_an_error() {
        let e = decide_trim(&TrimFacts {
            song_heard_start_s: 150.0,
            ..facts()
        })
        .unwrap_err();
        assert_eq!(e.code(), "nothing_to_export");
    }
}

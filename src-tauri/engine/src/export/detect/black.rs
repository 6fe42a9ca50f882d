//! Whether the recording ends in black picture (phone put face down while
//! the music plays on), and where that black stretch starts: decoding only a
//! handful of frames near the end, never the whole video.

use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::export::video::VideoReader;
use crate::media::ffi::{self, OwnedParams};
use crate::media::input::video_decoder;
use ffmpeg_next as ffmpeg;

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
struct FrameSampler<'a> {
    r: VideoReader<'a>,
    decoder: ffmpeg::decoder::Video,
    time_base: f64,
    /// Whether a frame was decoded (the decoder then knows the stream).
    decoded: bool,
}

impl<'a> FrameSampler<'a> {
    fn open(r: VideoReader<'a>) -> Result<Self> {
        let stream = r.stream()?;
        let time_base = f64::from(stream.time_base());
        // Two threads are enough for a few frames and leave the other work room.
        let decoder =
            video_decoder(stream.parameters(), 2).map_err(|e| EngineError::Unsupported {
                path: r.path.to_path_buf(),
                reason: format!("cannot decode the video to look for a black ending: {e}"),
            })?;
        Ok(Self {
            r,
            decoder,
            time_base,
            decoded: false,
        })
    }

    /// The stream's codec parameters with what the decoder learnt from the
    /// bitstream, as `avformat_find_stream_info` completes them; `None`
    /// before a frame was decoded.
    fn stream_params(&self) -> Option<OwnedParams> {
        if !self.decoded {
            return None;
        }
        OwnedParams::completed_by(&self.r.stream().ok()?.parameters(), &self.decoder)
    }

    /// The keyframe at or before container time `t`: whether it is black,
    /// and its time. Decodes that one frame only.
    fn keyframe_before(&mut self, t: f64) -> Result<Option<(bool, f64)>> {
        if !self.seek_before(t) {
            return Ok(None);
        }
        let Some(packet) = self.r.next()? else {
            return Ok(None);
        };
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
        Ok(pts.map(|p| (is_black(&frame), p as f64 * self.time_base)))
    }

    /// Seeks to the keyframe at or before container time `t` and resets the
    /// decoder; false when the file cannot seek there.
    fn seek_before(&mut self, t: f64) -> bool {
        let ts = (t / self.time_base).floor() as i64;
        if ffi::seek_keyframe_before(self.r.ictx, self.r.stream_index, ts).is_err() {
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
            match self.r.next()? {
                Some(packet) => {
                    let _ = self.decoder.send_packet(&packet);
                }
                None => {
                    let _ = self.decoder.send_eof();
                    eof = true;
                }
            }
        }
    }
}

/// Whether the recording can end in a black stretch of at least
/// [`MIN_BLACK_TAIL_S`] before container time `end` (decoding only the last
/// keyframe when that settles it: a keyframe with picture inside the last
/// [`MIN_BLACK_TAIL_S`] rules a black tail out, else the last frame), and
/// the video stream's parameters completed by the decoder that looked (see
/// [`FrameSampler::stream_params`]): one keyframe decode serves both.
pub(crate) fn look_at_the_end(
    video: VideoReader,
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
const MIN_BLACK_TAIL_S: f64 = 2.0;

/// Start of a final black stretch ending at container time `end_c` (and not
/// earlier than `not_before_c`), in container seconds, to ~1/10 s. Samples
/// frames backwards from the end with growing steps, then bisects between the
/// last picture and the first black frame: a few dozen frames decoded at most.
pub(crate) fn find_black_tail(
    video: VideoReader,
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

//! `smartcut`: the default start of an export (H.264 and HEVC). The frames
//! from the cut to the next keyframe are decoded and re-encoded (libx264 /
//! libx265, near-transparent quality, no B-frames), the rest is copied, so
//! the file starts at the cut whether or not a player honours edit lists.
//!
//! The re-encoded head needs its own parameter sets. MP4 keeps them in one
//! box for the whole track (`avcC`, `hvcC`), so the head's sets get ids the
//! source does not use and are added to the source's box next to the
//! originals: the head's slices refer to the new ids, the copied slices to
//! the old ones, and every decoder finds both ([`splice`]).

mod avcc;
mod bits;
mod hvcc;
mod splice;

use crate::cancel::CancelToken;
use crate::error::EngineError;
use crate::export::video::cut::VideoCut;
use crate::export::video::VideoReader;
use crate::media::ffi::{self, OwnedParams};
use crate::media::input::video_decoder;
use avcc::annexb_nals;
use ffmpeg_next as ffmpeg;
use splice::Splice;

/// The re-encoded head of a smart cut.
pub(crate) struct SmartHead {
    /// Re-encoded packets, length-prefixed NAL units, timestamps in the
    /// input stream's time base (original frame times).
    pub packets: Vec<ffmpeg::Packet>,
    /// The source's `avcC`/`hvcC` with the head's parameter sets added.
    pub extradata: Vec<u8>,
    /// Where copying resumes: the cut with its keyframe moved to the next one.
    pub rest: VideoCut,
}

/// Why a head re-encode stopped.
pub(crate) enum HeadError {
    /// Stops any export (cancel, an unreadable file).
    Stop(EngineError),
    /// Stops only the re-encode: the export starts with an edit list
    /// instead, and the report says why.
    NotPossible(String),
}

impl From<EngineError> for HeadError {
    fn from(e: EngineError) -> Self {
        HeadError::Stop(e)
    }
}

type HeadResult<T> = std::result::Result<T, HeadError>;

fn not_possible<T>(why: impl Into<String>) -> HeadResult<T> {
    Err(HeadError::NotPossible(why.into()))
}

/// Decodes from the cut's keyframe to the next one and re-encodes the
/// frames from the cut on, one at a time as they are decoded (memory stays
/// at a few frames whatever the GOP). `Ok(None)` when the cut is on a
/// keyframe. `params`: the video stream's complete parameters (colour
/// description included, see [`crate::export::video::complete_params`]).
pub(crate) fn encode_head(
    r: &mut VideoReader,
    params: &OwnedParams,
    cut: &VideoCut,
    cancel: &CancelToken,
) -> HeadResult<Option<SmartHead>> {
    if cut.hidden_frames == 0 {
        return Ok(None);
    }
    let params = params.to_parameters();
    let rates = {
        let st = r.stream()?;
        (st.time_base(), st.avg_frame_rate())
    };
    let mut splice = Splice::for_source(&params)?;
    let mut head = HeadEncoder::new(&mut splice, &params, rates);
    let next_key = decode_head(r, &params, cut, cancel, &mut |f| head.push(f))?;
    let packets = head.finish(next_key.dts)?;
    Ok(Some(SmartHead {
        packets,
        extradata: splice.write_box(),
        rest: cut.resume_at(next_key.dts, next_key.pts, next_key.pos),
    }))
}

/// The keyframe after the cut, where copying resumes.
struct NextKey {
    pts: i64,
    dts: i64,
    pos: isize,
}

fn frame_pts(f: &ffmpeg::frame::Video) -> Option<i64> {
    f.timestamp().or(f.pts())
}

/// Hands the decoder's frames shown in `[from, before)` to `sink`.
fn drain_decoder(
    decoder: &mut ffmpeg::decoder::Video,
    (from, before): (i64, i64),
    sink: &mut dyn FnMut(&ffmpeg::frame::Video) -> HeadResult<()>,
) -> HeadResult<()> {
    let mut decoded = ffmpeg::frame::Video::empty();
    while decoder.receive_frame(&mut decoded).is_ok() {
        let pts = frame_pts(&decoded).unwrap_or(i64::MIN);
        if pts >= from && pts < before {
            sink(&decoded)?;
        }
    }
    Ok(())
}

/// Reads from the cut's keyframe to the next keyframe shown after the cut,
/// decoding, and hands the frames shown from the cut to that keyframe to
/// `sink`, in presentation order.
fn decode_head(
    r: &mut VideoReader,
    params: &ffmpeg::codec::Parameters,
    cut: &VideoCut,
    cancel: &CancelToken,
    sink: &mut dyn FnMut(&ffmpeg::frame::Video) -> HeadResult<()>,
) -> HeadResult<NextKey> {
    let Ok(mut decoder) = video_decoder(params.clone(), 2) else {
        return not_possible("the video's decoder does not open");
    };
    r.seek(cut.seek_ts)?;
    let mut started = false;
    // Until the next keyframe is found, every frame from the cut is kept:
    // the decoder gives frames in presentation order, and one shown at or
    // after that keyframe only comes out once the keyframe went in.
    let mut window = (cut.start_pts, i64::MAX);
    let mut next_key: Option<NextKey> = None;
    while let Some(p) = r.next()? {
        cancel.check()?;
        let pts = p.pts().or(p.dts()).unwrap_or(i64::MIN);
        match &next_key {
            None if !started => {
                if !(p.is_key() && pts == cut.key_pts()) {
                    continue;
                }
                started = true;
            }
            None if p.is_key() && pts > cut.start_pts => {
                next_key = Some(NextKey {
                    pts,
                    dts: p.dts().unwrap_or(pts),
                    pos: p.position(),
                });
                window.1 = pts;
            }
            // Leading pictures of an open-GOP keyframe (HEVC CRA): after it
            // in decode order, before it on screen. They are decoded here,
            // with the keyframe, and re-encoded in the head; the copy leaves
            // them out ([`VideoCut::resume_at`]).
            Some(k) if pts >= k.pts => break,
            _ => {}
        }
        if decoder.send_packet(&p).is_ok() {
            drain_decoder(&mut decoder, window, sink)?;
        }
    }
    let _ = decoder.send_eof();
    drain_decoder(&mut decoder, window, sink)?;
    match next_key {
        Some(k) => Ok(k),
        None => not_possible("no keyframe after the cut"),
    }
}

/// Re-encodes the head's frames as they come: the encoder opens on the
/// first (same size, pixel format and colour as the source, the options of
/// [`Splice::encoder_options`]; its parameter sets join the splice's box).
struct HeadEncoder<'a> {
    splice: &'a mut Splice,
    params: &'a ffmpeg::codec::Parameters,
    /// Stream time base and average frame rate.
    rates: (ffmpeg::Rational, ffmpeg::Rational),
    encoder: Option<ffmpeg::encoder::Video>,
    packets: Vec<ffmpeg::Packet>,
    frames: usize,
    last_pts: Option<i64>,
}

impl<'a> HeadEncoder<'a> {
    fn new(
        splice: &'a mut Splice,
        params: &'a ffmpeg::codec::Parameters,
        rates: (ffmpeg::Rational, ffmpeg::Rational),
    ) -> Self {
        Self {
            splice,
            params,
            rates,
            encoder: None,
            packets: Vec::new(),
            frames: 0,
            last_pts: None,
        }
    }

    /// Encodes one frame (the first as a keyframe).
    fn push(&mut self, frame: &ffmpeg::frame::Video) -> HeadResult<()> {
        let pts = frame_pts(frame);
        if pts.is_none() || pts <= self.last_pts {
            return not_possible("the decoded frames are not in presentation order");
        }
        self.last_pts = pts;
        let first = self.encoder.is_none();
        let encoder = match self.encoder.take() {
            Some(e) => e,
            None => open_encoder(self.params, self.rates, frame, self.splice)?,
        };
        let encoder = self.encoder.insert(encoder);
        let mut f = frame.clone();
        f.set_pts(pts);
        f.set_kind(if first {
            ffmpeg::picture::Type::I
        } else {
            ffmpeg::picture::Type::None
        });
        if let Err(e) = encoder.send_frame(&f) {
            let name = self.splice.encoder_name();
            return not_possible(format!("{name} refused a frame ({e})"));
        }
        self.frames += 1;
        drain_encoder(encoder, self.splice, &mut self.packets)
    }

    /// The head's packets, decode times from [`head_dts`]; the last one
    /// carries the splice's end of the head.
    fn finish(mut self, next_key_dts: i64) -> HeadResult<Vec<ffmpeg::Packet>> {
        let Some(encoder) = self.encoder.as_mut() else {
            return not_possible("the frames after the cut do not decode");
        };
        let _ = encoder.send_eof();
        drain_encoder(encoder, self.splice, &mut self.packets)?;
        let mut packets = self.packets;
        if packets.len() != self.frames {
            return not_possible("the re-encoder dropped frames");
        }
        let length_size = self.splice.length_size();
        if let (Some(eos), Some(last)) = (self.splice.end_of_head(), packets.last_mut()) {
            let mut body = last.data().unwrap_or_default().to_vec();
            body.extend_from_slice(&(eos.len() as u32).to_be_bytes()[4 - length_size..]);
            body.extend_from_slice(&eos);
            let mut p = ffmpeg::Packet::copy(&body);
            p.set_pts(last.pts());
            p.set_flags(last.flags());
            *last = p;
        }
        let pts: Vec<i64> = packets.iter().map(|p| p.pts().unwrap_or(0)).collect();
        for (p, dts) in packets.iter_mut().zip(head_dts(&pts, next_key_dts)) {
            p.set_dts(Some(dts));
        }
        Ok(packets)
    }
}

/// The encoder's packets so far, its Annex B output as length-prefixed NAL
/// units ([`Splice::sample_nal`]), timestamps in the input stream's time
/// base.
fn drain_encoder(
    encoder: &mut ffmpeg::encoder::Video,
    splice: &Splice,
    packets: &mut Vec<ffmpeg::Packet>,
) -> HeadResult<()> {
    let length_size = splice.length_size();
    let mut pkt = ffmpeg::Packet::empty();
    while encoder.receive_packet(&mut pkt).is_ok() {
        let Some(data) = pkt.data() else { continue };
        let mut body = Vec::with_capacity(data.len() + 16);
        for nal in annexb_nals(data) {
            let Some(nal) = splice.sample_nal(nal)? else {
                continue;
            };
            let len = nal.len() as u32;
            body.extend_from_slice(&len.to_be_bytes()[4 - length_size..]);
            body.extend_from_slice(&nal);
        }
        let mut out = ffmpeg::Packet::copy(&body);
        out.set_pts(Some(pkt.pts().unwrap_or(0)));
        out.set_flags(pkt.flags());
        packets.push(out);
    }
    Ok(())
}

/// The head's encoder: same size, pixel format and colour as the source,
/// the options of [`Splice::encoder_options`]; its parameter sets are added
/// to the splice's box.
fn open_encoder(
    params: &ffmpeg::codec::Parameters,
    (tb, avg_rate): (ffmpeg::Rational, ffmpeg::Rational),
    first: &ffmpeg::frame::Video,
    splice: &mut Splice,
) -> HeadResult<ffmpeg::encoder::Video> {
    let name = splice.encoder_name();
    let Some(codec) = ffmpeg::encoder::find_by_name(name) else {
        return not_possible(format!("this FFmpeg has no {name} encoder"));
    };
    let Ok(mut enc) = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
    else {
        return not_possible(format!("{name} does not open"));
    };
    enc.set_width(first.width());
    enc.set_height(first.height());
    enc.set_format(first.format());
    enc.set_time_base(tb);
    if avg_rate.numerator() > 0 {
        enc.set_frame_rate(Some(avg_rate));
    }
    enc.set_max_b_frames(0);
    enc.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
    ffi::copy_colour(params, &mut enc);
    let encoder = match enc.open_as_with(codec, splice.encoder_options()) {
        Ok(e) => e,
        Err(e) => return not_possible(format!("{name} does not open ({e})")),
    };
    splice.add_encoder_sets(&ffi::encoder_extradata(&encoder))?;
    Ok(encoder)
}

/// Decode times for the head's packets (presentation times `pts`,
/// increasing; no reordering): increasing, never after their presentation,
/// all before the copied keyframe's decode time `next_key_dts`, and the
/// first equal to the first presentation time when there is room, so that
/// the output starts with decode time 0 and needs no edit list for its
/// video. (The copied part decodes some frames ahead of their presentation;
/// the head's decode times are squeezed to end before it.)
fn head_dts(pts: &[i64], next_key_dts: i64) -> Vec<i64> {
    let Some(&p0) = pts.first() else {
        return Vec::new();
    };
    let n = pts.len() as i64;
    let start = p0.min(next_key_dts - n);
    let span = next_key_dts - start;
    pts.iter()
        .enumerate()
        .map(|(i, &p)| p.min(start + i as i64 * span / n))
        .collect()
}

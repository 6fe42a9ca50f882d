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
/// frames from the cut on. `Ok(None)` when the cut is on a keyframe.
/// `params`: the video stream's complete parameters (colour description
/// included, see [`crate::export::video::complete_params`]).
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
    let (tb, avg_rate) = {
        let st = r.stream()?;
        (st.time_base(), st.avg_frame_rate())
    };
    let mut splice = Splice::for_source(&params)?;
    let gop = decode_head(r, &params, cut, cancel)?;
    let mut encoder = open_encoder(&params, (tb, avg_rate), &gop.frames[0], &mut splice)?;
    let packets = encode_frames(&mut encoder, &gop.frames, &splice, gop.next_key_dts, cancel)?;
    Ok(Some(SmartHead {
        packets,
        extradata: splice.write_box(),
        rest: cut.resume_at(gop.next_key_dts, gop.next_key_pts, gop.next_key_pos),
    }))
}

/// The frames shown from the cut up to the next keyframe, decoded.
struct DecodedHead {
    /// In presentation order; never empty.
    frames: Vec<ffmpeg::frame::Video>,
    next_key_pts: i64,
    next_key_dts: i64,
    next_key_pos: isize,
}

fn frame_pts(f: &ffmpeg::frame::Video) -> Option<i64> {
    f.timestamp().or(f.pts())
}

/// Reads from the cut's keyframe to the next keyframe shown after the cut,
/// decoding.
fn decode_head(
    r: &mut VideoReader,
    params: &ffmpeg::codec::Parameters,
    cut: &VideoCut,
    cancel: &CancelToken,
) -> HeadResult<DecodedHead> {
    let Ok(mut decoder) = video_decoder(params.clone(), 2) else {
        return not_possible("the video's decoder does not open");
    };
    r.seek(cut.seek_ts)?;
    let mut started = false;
    let mut next_key: Option<ffmpeg::Packet> = None;
    let mut frames: Vec<ffmpeg::frame::Video> = Vec::new();
    let mut decoded = ffmpeg::frame::Video::empty();
    let mut keep = |f: &ffmpeg::frame::Video| {
        if frame_pts(f).unwrap_or(i64::MIN) >= cut.start_pts {
            frames.push(f.clone());
        }
    };
    let mut decode = |p: &ffmpeg::Packet, keep: &mut dyn FnMut(&ffmpeg::frame::Video)| {
        if decoder.send_packet(p).is_ok() {
            while decoder.receive_frame(&mut decoded).is_ok() {
                keep(&decoded);
            }
        }
    };
    while let Some(p) = r.next()? {
        cancel.check()?;
        let pts = p.pts().or(p.dts()).unwrap_or(i64::MIN);
        if !started {
            if !(p.is_key() && pts == cut.key_pts()) {
                continue;
            }
            started = true;
        } else if p.is_key() && pts > cut.start_pts {
            next_key = Some(p);
            break;
        }
        decode(&p, &mut keep);
    }
    let Some(next_key) = next_key else {
        return not_possible("no keyframe after the cut");
    };
    // Leading pictures of an open-GOP keyframe (HEVC CRA): after it in
    // decode order, before it on screen. The copy leaves them out
    // ([`VideoCut::resume_at`]): they are decoded here, with the keyframe,
    // and re-encoded in the head.
    let next_key_pts = next_key.pts().or(next_key.dts()).unwrap_or(0);
    decode(&next_key, &mut keep);
    while let Some(p) = r.next()? {
        cancel.check()?;
        if p.pts().or(p.dts()).unwrap_or(i64::MAX) >= next_key_pts {
            break;
        }
        decode(&p, &mut keep);
    }
    let _ = decoder.send_eof();
    while decoder.receive_frame(&mut decoded).is_ok() {
        keep(&decoded);
    }
    frames.retain(|f| frame_pts(f).unwrap_or(i64::MIN) < next_key_pts);
    frames.sort_by_key(|f| frame_pts(f).unwrap_or(0));
    if frames.is_empty() {
        return not_possible("the frames after the cut do not decode");
    }
    Ok(DecodedHead {
        frames,
        next_key_pts,
        next_key_dts: next_key.dts().unwrap_or(next_key_pts),
        next_key_pos: next_key.position(),
    })
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

/// Encodes the head's frames (the first as a keyframe); the Annex B output
/// becomes length-prefixed NAL units, timestamps in the input stream's time
/// base, decode times from [`head_dts`].
fn encode_frames(
    encoder: &mut ffmpeg::encoder::Video,
    frames: &[ffmpeg::frame::Video],
    splice: &Splice,
    next_key_dts: i64,
    cancel: &CancelToken,
) -> HeadResult<Vec<ffmpeg::Packet>> {
    let mut packets = Vec::new();
    let length_size = splice.length_size();
    let emit = |encoder: &mut ffmpeg::encoder::Video,
                packets: &mut Vec<ffmpeg::Packet>|
     -> HeadResult<()> {
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
    };
    for (i, f) in frames.iter().enumerate() {
        cancel.check()?;
        let mut f = f.clone();
        let pts = frame_pts(&f);
        f.set_pts(pts);
        f.set_kind(if i == 0 {
            ffmpeg::picture::Type::I
        } else {
            ffmpeg::picture::Type::None
        });
        if let Err(e) = encoder.send_frame(&f) {
            let name = splice.encoder_name();
            return not_possible(format!("{name} refused a frame ({e})"));
        }
        emit(encoder, &mut packets)?;
    }
    let _ = encoder.send_eof();
    emit(encoder, &mut packets)?;
    if packets.len() != frames.len() {
        return not_possible("the re-encoder dropped frames");
    }
    if let (Some(eos), Some(last)) = (splice.end_of_head(), packets.last_mut()) {
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

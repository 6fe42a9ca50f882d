//! `smartcut`: the optional alternative to the edit-list start (H.264 only).
//! The frames from the cut to the next keyframe are decoded and re-encoded
//! (libx264, near-transparent quality, no B-frames), the rest is copied.
//!
//! The re-encoded head needs its own SPS/PPS. MP4 keeps parameter sets in
//! one `avcC` box for the whole track, so the head's sets get ids the
//! source does not use and are added to the source's `avcC` next to the
//! originals: the head's slices refer to the new ids, the copied slices to
//! the old ones, and every decoder finds both.

mod avcc;

use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::export::video::cut::VideoCut;
use crate::export::video::VideoReader;
use crate::media::ffi::{self, OwnedParams};
use crate::media::input::video_decoder;
use avcc::{annexb_nals, parse_avcc, pps_id, sps_id, write_avcc, Avcc};
use ffmpeg_next as ffmpeg;
use std::path::Path;

/// The re-encoded head of a smart cut.
pub(crate) struct SmartHead {
    /// Re-encoded packets, length-prefixed NAL units, timestamps in the
    /// input stream's time base (original frame times).
    pub packets: Vec<ffmpeg::Packet>,
    /// The source's `avcC` with the head's parameter sets added.
    pub avcc: Vec<u8>,
    /// Where copying resumes: the cut with its keyframe moved to the next one.
    pub rest: VideoCut,
}

fn unsupported(path: &Path, why: &str) -> EngineError {
    EngineError::Unsupported {
        path: path.to_path_buf(),
        reason: format!("smart cut is not possible here: {why}; use the default edit-list cut"),
    }
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
) -> Result<Option<SmartHead>> {
    if cut.hidden_frames == 0 {
        return Ok(None);
    }
    let path = r.path.to_path_buf();
    let params = params.to_parameters();
    let (tb, avg_rate) = {
        let st = r.stream()?;
        (st.time_base(), st.avg_frame_rate())
    };
    if params.id() != ffmpeg::codec::Id::H264 {
        return Err(unsupported(&path, "only H.264 video can be smart-cut"));
    }
    let mut avcc = parse_avcc(&ffi::extradata(&params))
        .ok_or_else(|| unsupported(&path, "the video has no avcC (not MP4/MOV/MKV H.264)"))?;
    let Some(gop) = decode_head(r, &params, cut, cancel)? else {
        return Ok(None);
    };
    let mut encoder = open_encoder(&path, &params, (tb, avg_rate), &gop.frames[0], &mut avcc)?;
    // Decode times run `delay` ahead, like the copied stream's, so they keep
    // increasing into the copied part.
    let delay = (gop.next_key_pts - gop.next_key_dts).max(0);
    let packets = encode_frames(
        &path,
        &mut encoder,
        &gop.frames,
        avcc.length_size,
        delay,
        cancel,
    )?;
    Ok(Some(SmartHead {
        packets,
        avcc: write_avcc(&avcc),
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
/// decoding; `None` when no frame from the cut on decodes.
fn decode_head(
    r: &mut VideoReader,
    params: &ffmpeg::codec::Parameters,
    cut: &VideoCut,
    cancel: &CancelToken,
) -> Result<Option<DecodedHead>> {
    let mut decoder =
        video_decoder(params.clone(), 2).map_err(|e| EngineError::media(r.path, e))?;
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
        if decoder.send_packet(&p).is_ok() {
            while decoder.receive_frame(&mut decoded).is_ok() {
                keep(&decoded);
            }
        }
    }
    let _ = decoder.send_eof();
    while decoder.receive_frame(&mut decoded).is_ok() {
        keep(&decoded);
    }
    let Some(next_key) = next_key else {
        return Err(unsupported(r.path, "no keyframe after the cut"));
    };
    let next_key_pts = next_key.pts().or(next_key.dts()).unwrap_or(0);
    frames.retain(|f| frame_pts(f).unwrap_or(i64::MIN) < next_key_pts);
    frames.sort_by_key(|f| frame_pts(f).unwrap_or(0));
    if frames.is_empty() {
        return Ok(None);
    }
    Ok(Some(DecodedHead {
        frames,
        next_key_pts,
        next_key_dts: next_key.dts().unwrap_or(next_key_pts),
        next_key_pos: next_key.position(),
    }))
}

/// libx264 for the head: same size, pixel format and colour as the source,
/// no B-frames, and a parameter-set id the source does not use; its SPS and
/// PPS are added to `avcc` (whose level becomes the higher of the two).
fn open_encoder(
    path: &Path,
    params: &ffmpeg::codec::Parameters,
    (tb, avg_rate): (ffmpeg::Rational, ffmpeg::Rational),
    first: &ffmpeg::frame::Video,
    avcc: &mut Avcc,
) -> Result<ffmpeg::encoder::Video> {
    let used: Vec<u32> = avcc
        .sps
        .iter()
        .filter_map(|s| sps_id(s))
        .chain(avcc.pps.iter().filter_map(|p| pps_id(p)))
        .collect();
    let new_id = (0..32u32)
        .find(|i| !used.contains(i))
        .ok_or_else(|| unsupported(path, "all parameter-set ids are in use"))?;
    let codec = ffmpeg::encoder::find_by_name("libx264")
        .ok_or_else(|| unsupported(path, "this FFmpeg has no libx264 encoder"))?;
    let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|e| EngineError::media(path, e))?;
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
    let mut opts = ffmpeg::Dictionary::new();
    opts.set("preset", "fast");
    opts.set("crf", "14");
    opts.set(
        "x264-params",
        &format!("sps-id={new_id}:bframes=0:scenecut=0:keyint=100000:repeat-headers=0"),
    );
    let encoder = enc
        .open_as_with(codec, opts)
        .map_err(|e| unsupported(path, &format!("cannot open libx264 ({e})")))?;
    for nal in annexb_nals(&ffi::encoder_extradata(&encoder)) {
        match nal[0] & 0x1f {
            7 => avcc.sps.push(nal.to_vec()),
            8 => avcc.pps.push(nal.to_vec()),
            _ => {}
        }
    }
    // Level: the higher of the two, so the box does not understate the stream.
    if let Some(s) = avcc.sps.last() {
        if s.len() > 3 {
            avcc.level = avcc.level.max(s[3]);
        }
    }
    Ok(encoder)
}

/// Encodes the head's frames (the first as a keyframe); the Annex B output
/// becomes length-prefixed NAL units, timestamps in the input stream's time
/// base, decode times `delay` ahead of presentation.
fn encode_frames(
    path: &Path,
    encoder: &mut ffmpeg::encoder::Video,
    frames: &[ffmpeg::frame::Video],
    length_size: usize,
    delay: i64,
    cancel: &CancelToken,
) -> Result<Vec<ffmpeg::Packet>> {
    let mut packets = Vec::new();
    let emit = |encoder: &mut ffmpeg::encoder::Video, packets: &mut Vec<ffmpeg::Packet>| {
        let mut pkt = ffmpeg::Packet::empty();
        while encoder.receive_packet(&mut pkt).is_ok() {
            let Some(data) = pkt.data() else { continue };
            let mut body = Vec::with_capacity(data.len() + 16);
            for nal in annexb_nals(data) {
                if matches!(nal[0] & 0x1f, 7..=9) {
                    continue; // parameter sets live in avcC; no access unit delimiters
                }
                let len = nal.len() as u32;
                body.extend_from_slice(&len.to_be_bytes()[4 - length_size..]);
                body.extend_from_slice(nal);
            }
            let mut out = ffmpeg::Packet::copy(&body);
            let pts = pkt.pts().unwrap_or(0);
            out.set_pts(Some(pts));
            out.set_dts(Some(pts - delay));
            out.set_flags(pkt.flags());
            packets.push(out);
        }
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
        encoder
            .send_frame(&f)
            .map_err(|e| EngineError::media(path, format!("libx264: {e}")))?;
        emit(encoder, &mut packets);
    }
    let _ = encoder.send_eof();
    emit(encoder, &mut packets);
    if packets.len() != frames.len() {
        return Err(unsupported(path, "the re-encoder dropped frames"));
    }
    Ok(packets)
}

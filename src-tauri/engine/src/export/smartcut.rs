//! `smartcut`: the optional alternative to the edit-list start (H.264 only).
//! The frames from the cut to the next keyframe are decoded and re-encoded
//! (libx264, near-transparent quality, no B-frames), the rest is copied.
//!
//! The re-encoded head needs its own SPS/PPS. MP4 keeps parameter sets in
//! one `avcC` box for the whole track, so the head's sets get ids the
//! source does not use and are added to the source's `avcC` next to the
//! originals: the head's slices refer to the new ids, the copied slices to
//! the old ones, and every decoder finds both.

use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::export::video::{VideoCut, VideoReader};
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

/// Reads an unsigned Exp-Golomb value (enough for ids at the start of an
/// SPS/PPS, where emulation prevention bytes cannot occur yet).
fn read_ue(data: &[u8], bit: &mut usize) -> Option<u32> {
    let get =
        |b: usize| -> Option<u32> { data.get(b / 8).map(|v| u32::from((v >> (7 - b % 8)) & 1)) };
    let mut zeros = 0;
    while get(*bit)? == 0 {
        zeros += 1;
        *bit += 1;
        if zeros > 31 {
            return None;
        }
    }
    *bit += 1;
    let mut v = 0u32;
    for _ in 0..zeros {
        v = (v << 1) | get(*bit)?;
        *bit += 1;
    }
    Some((1u32 << zeros) - 1 + v)
}

fn sps_id(sps: &[u8]) -> Option<u32> {
    let mut bit = 8 * 4; // NAL header, profile, constraints, level
    read_ue(sps, &mut bit)
}

fn pps_id(pps: &[u8]) -> Option<u32> {
    let mut bit = 8; // NAL header
    read_ue(pps, &mut bit)
}

/// A parsed `avcC` (ISO 14496-15).
struct Avcc {
    profile: u8,
    compat: u8,
    level: u8,
    length_size: usize,
    sps: Vec<Vec<u8>>,
    pps: Vec<Vec<u8>>,
    /// Bytes after the PPS list (High-profile chroma/bit-depth fields).
    tail: Vec<u8>,
}

fn parse_avcc(d: &[u8]) -> Option<Avcc> {
    if d.len() < 7 || d[0] != 1 {
        return None;
    }
    let length_size = usize::from(d[4] & 3) + 1;
    let mut i = 5;
    let read_list = |count: usize, i: &mut usize| -> Option<Vec<Vec<u8>>> {
        let mut v = Vec::new();
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([*d.get(*i)?, *d.get(*i + 1)?]));
            *i += 2;
            v.push(d.get(*i..*i + len)?.to_vec());
            *i += len;
        }
        Some(v)
    };
    let n_sps = usize::from(d[i] & 0x1f);
    i += 1;
    let sps = read_list(n_sps, &mut i)?;
    let n_pps = usize::from(*d.get(i)?);
    i += 1;
    let pps = read_list(n_pps, &mut i)?;
    Some(Avcc {
        profile: d[1],
        compat: d[2],
        level: d[3],
        length_size,
        sps,
        pps,
        tail: d[i..].to_vec(),
    })
}

fn write_avcc(a: &Avcc) -> Vec<u8> {
    let mut out = vec![
        1,
        a.profile,
        a.compat,
        a.level,
        0xfc | (a.length_size as u8 - 1),
        0xe0 | a.sps.len() as u8,
    ];
    for s in &a.sps {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s);
    }
    out.push(a.pps.len() as u8);
    for p in &a.pps {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(p);
    }
    out.extend_from_slice(&a.tail);
    out
}

/// NAL units of an Annex B byte stream.
fn annexb_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut e = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        // A 4-byte start code leaves one zero byte behind.
        while e > s && data[e - 1] == 0 {
            e -= 1;
        }
        if e > s {
            nals.push(&data[s..e]);
        }
    }
    nals
}

/// Decodes from the cut's keyframe to the next one and re-encodes the
/// frames from the cut on. `Ok(None)` when the cut is on a keyframe.
pub(crate) fn encode_head(
    path: &Path,
    cut: &VideoCut,
    cancel: &CancelToken,
) -> Result<Option<SmartHead>> {
    if cut.hidden_frames == 0 {
        return Ok(None);
    }
    let mut r = VideoReader::open_full(path)?;
    let (params, tb, avg_rate) = {
        let st = r
            .ictx
            .stream(r.stream_index)
            .ok_or_else(|| EngineError::NoVideo(path.to_path_buf()))?;
        (st.parameters(), st.time_base(), st.avg_frame_rate())
    };
    if params.id() != ffmpeg::codec::Id::H264 {
        return Err(unsupported(path, "only H.264 video can be smart-cut"));
    }
    // SAFETY: reading the extradata bytes of valid codec parameters.
    let extradata = unsafe {
        let p = params.as_ptr();
        if (*p).extradata.is_null() || (*p).extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*p).extradata, (*p).extradata_size as usize).to_vec()
        }
    };
    let mut avcc = parse_avcc(&extradata)
        .ok_or_else(|| unsupported(path, "the video has no avcC (not MP4/MOV/MKV H.264)"))?;

    // Decoder.
    let mut dctx = ffmpeg::codec::context::Context::from_parameters(params.clone())
        .map_err(|e| EngineError::media(path, e))?;
    dctx.set_threading(ffmpeg::threading::Config {
        kind: ffmpeg::threading::Type::Frame,
        count: 2,
        ..Default::default()
    });
    let mut decoder = dctx
        .decoder()
        .video()
        .map_err(|e| EngineError::media(path, e))?;

    // Read from the keyframe to the next keyframe shown after the cut.
    r.seek_to(cut.seek_ts)?;
    let mut started = false;
    let mut next_key: Option<ffmpeg::Packet> = None;
    let mut frames: Vec<ffmpeg::frame::Video> = Vec::new();
    let mut decoded = ffmpeg::frame::Video::empty();
    let keep = |f: &ffmpeg::frame::Video, frames: &mut Vec<ffmpeg::frame::Video>| {
        let pts = f.timestamp().or(f.pts()).unwrap_or(i64::MIN);
        if pts >= cut.start_pts {
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
                keep(&decoded, &mut frames);
            }
        }
    }
    let _ = decoder.send_eof();
    while decoder.receive_frame(&mut decoded).is_ok() {
        keep(&decoded, &mut frames);
    }
    let Some(next_key) = next_key else {
        return Err(unsupported(path, "no keyframe after the cut"));
    };
    let k2_pts = next_key.pts().or(next_key.dts()).unwrap_or(0);
    let k2_dts = next_key.dts().unwrap_or(k2_pts);
    frames.retain(|f| f.timestamp().or(f.pts()).unwrap_or(i64::MIN) < k2_pts);
    frames.sort_by_key(|f| f.timestamp().or(f.pts()).unwrap_or(0));
    if frames.is_empty() {
        return Ok(None);
    }

    // Encoder: same size and pixel format, new parameter-set id.
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
    let first = &frames[0];
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
    // SAFETY: copying colour fields between valid contexts.
    unsafe {
        let e = enc.as_mut_ptr();
        let p = params.as_ptr();
        (*e).color_range = (*p).color_range;
        (*e).color_primaries = (*p).color_primaries;
        (*e).color_trc = (*p).color_trc;
        (*e).colorspace = (*p).color_space;
        (*e).chroma_sample_location = (*p).chroma_location;
        (*e).sample_aspect_ratio = (*p).sample_aspect_ratio;
    }
    let mut opts = ffmpeg::Dictionary::new();
    opts.set("preset", "fast");
    opts.set("crf", "14");
    opts.set(
        "x264-params",
        &format!("sps-id={new_id}:bframes=0:scenecut=0:keyint=100000:repeat-headers=0"),
    );
    let mut encoder = enc
        .open_as_with(codec, opts)
        .map_err(|e| unsupported(path, &format!("cannot open libx264 ({e})")))?;
    // SAFETY: reading the encoder's extradata after open.
    let enc_headers = unsafe {
        let e = encoder.as_ptr();
        if (*e).extradata.is_null() {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*e).extradata, (*e).extradata_size as usize).to_vec()
        }
    };
    for nal in annexb_nals(&enc_headers) {
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
    let length_size = avcc.length_size;

    // Encode; Annex B output becomes length-prefixed NAL units.
    let delay = (k2_pts - k2_dts).max(0);
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
            // Decode times run `delay` ahead, like the copied stream's, so
            // they keep increasing into the copied part.
            out.set_dts(Some(pts - delay));
            out.set_flags(pkt.flags());
            packets.push(out);
        }
    };
    for (i, f) in frames.iter().enumerate() {
        cancel.check()?;
        let mut f = f.clone();
        let pts = f.timestamp().or(f.pts());
        f.set_pts(pts);
        if i == 0 {
            f.set_kind(ffmpeg::picture::Type::I);
        } else {
            f.set_kind(ffmpeg::picture::Type::None);
        }
        encoder
            .send_frame(&f)
            .map_err(|e| EngineError::media(path, format!("libx264: {e}")))?;
        emit(&mut encoder, &mut packets);
    }
    let _ = encoder.send_eof();
    emit(&mut encoder, &mut packets);
    if packets.len() != frames.len() {
        return Err(unsupported(path, "the re-encoder dropped frames"));
    }
    let rest = cut.resume_at(
        next_key.dts().unwrap_or(k2_pts),
        k2_pts,
        next_key.position(),
    );
    Ok(Some(SmartHead {
        packets,
        avcc: write_avcc(&avcc),
        rest,
    }))
}

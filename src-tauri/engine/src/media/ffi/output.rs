//! Output streams and the encoders that feed them.

use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;

use super::params::OwnedParams;

/// Whether MP4 can hold this video codec.
pub(crate) fn mp4_accepts(codec_id: ffmpeg::codec::Id) -> bool {
    crate::init();
    // SAFETY: looking up a muxer by a valid C string; the query is read-only.
    unsafe {
        let of = ffi::av_guess_format(c"mp4".as_ptr(), std::ptr::null(), std::ptr::null());
        if of.is_null() {
            return false;
        }
        ffi::avformat_query_codec(of, codec_id.into(), ffi::FF_COMPLIANCE_NORMAL) == 1
    }
}

fn mktag(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from(a) | (u32::from(b) << 8) | (u32::from(c) << 16) | (u32::from(d) << 24)
}

/// Adds a stream to `octx` that receives the input stream's packets as they
/// are: the codec parameters `params`, and the input stream's time base,
/// frame rate, display matrix (phone rotation), colour metadata, language and
/// handler name. HEVC is tagged `hvc1` so Apple players open it.
pub(crate) fn add_copied_stream(
    octx: &mut ffmpeg::format::context::Output,
    ist: &ffmpeg::format::stream::Stream,
    params: &OwnedParams,
) -> std::result::Result<usize, ffmpeg::Error> {
    // SAFETY: all pointers come from live FFmpeg contexts; the new stream is
    // owned by `octx`; side data is copied byte for byte with its size.
    unsafe {
        let ost = ffi::avformat_new_stream(octx.as_mut_ptr(), std::ptr::null());
        if ost.is_null() {
            return Err(ffmpeg::Error::Other {
                errno: libc::ENOMEM,
            });
        }
        let ist_ptr = ist.as_ptr();
        let r = ffi::avcodec_parameters_copy((*ost).codecpar, params.0);
        if r < 0 {
            return Err(ffmpeg::Error::from(r));
        }
        let par = (*ost).codecpar;
        (*par).codec_tag = if (*par).codec_id == ffi::AVCodecID::AV_CODEC_ID_HEVC {
            mktag(b'h', b'v', b'c', b'1')
        } else {
            0
        };
        (*ost).time_base = (*ist_ptr).time_base;
        (*ost).avg_frame_rate = (*ist_ptr).avg_frame_rate;
        (*ost).r_frame_rate = (*ist_ptr).r_frame_rate;
        (*ost).sample_aspect_ratio = (*ist_ptr).sample_aspect_ratio;
        for i in 0..(*ist_ptr).nb_side_data as usize {
            let sd = (*ist_ptr).side_data.add(i);
            let dst = ffi::av_stream_new_side_data(ost, (*sd).type_, (*sd).size);
            if !dst.is_null() {
                std::ptr::copy_nonoverlapping((*sd).data, dst, (*sd).size);
            }
        }
        ffi::av_dict_copy(&mut (*ost).metadata, (*ist_ptr).metadata, 0);
        Ok((*ost).index as usize)
    }
}

/// Makes an output stream's display matrix flip the picture left-right as
/// shown (after the rotation it already had, kept): players that honour the
/// matrix show it mirrored; the packets are not touched. Call before the
/// header is written (MP4 writes the matrix in the track header).
pub(crate) fn mirror_display(
    octx: &mut ffmpeg::format::context::Output,
    index: usize,
) -> std::result::Result<(), ffmpeg::Error> {
    const TYPE: ffi::AVPacketSideDataType = ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX;
    const SIZE: usize = 9 * std::mem::size_of::<i32>();
    // SAFETY: the stream exists; side data is read and written with its
    // size checked (a display matrix is 9 native-endian i32).
    unsafe {
        let fc = octx.as_mut_ptr();
        if index >= (*fc).nb_streams as usize {
            return Err(ffmpeg::Error::StreamNotFound);
        }
        let st = *(*fc).streams.add(index);
        let mut matrix = [0i32; 9];
        let mut size = 0;
        let old = ffi::av_stream_get_side_data(st, TYPE, &mut size);
        if !old.is_null() && size >= SIZE {
            std::ptr::copy_nonoverlapping(old, matrix.as_mut_ptr() as *mut u8, SIZE);
        } else {
            ffi::av_display_rotation_set(matrix.as_mut_ptr(), 0.0);
        }
        ffi::av_display_matrix_flip(matrix.as_mut_ptr(), 1, 0);
        // Replaces the copied matrix, if any.
        let dst = ffi::av_stream_new_side_data(st, TYPE, SIZE);
        if dst.is_null() {
            return Err(ffmpeg::Error::Other {
                errno: libc::ENOMEM,
            });
        }
        std::ptr::copy_nonoverlapping(matrix.as_ptr() as *const u8, dst, SIZE);
    }
    Ok(())
}

/// Replaces an output stream's codec extradata (e.g. an `avcC` with extra
/// parameter sets).
pub(crate) fn set_extradata(
    octx: &mut ffmpeg::format::context::Output,
    index: usize,
    data: &[u8],
) -> std::result::Result<(), ffmpeg::Error> {
    // SAFETY: the stream exists; the buffer is allocated with FFmpeg's
    // allocator and the padding FFmpeg requires, and owned by the parameters.
    unsafe {
        let fc = octx.as_mut_ptr();
        if index >= (*fc).nb_streams as usize {
            return Err(ffmpeg::Error::StreamNotFound);
        }
        let par = (**(*fc).streams.add(index)).codecpar;
        let pad = ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        let buf = ffi::av_mallocz(data.len() + pad) as *mut u8;
        if buf.is_null() {
            return Err(ffmpeg::Error::Other {
                errno: libc::ENOMEM,
            });
        }
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
        ffi::av_freep(&mut (*par).extradata as *mut *mut u8 as *mut std::ffi::c_void);
        (*par).extradata = buf;
        (*par).extradata_size = data.len() as i32;
    }
    Ok(())
}

/// A zero codec tag, so the muxer picks its own (`mp4a` for AAC in MP4).
pub(crate) fn clear_codec_tag(stream: &mut ffmpeg::format::stream::StreamMut) {
    // SAFETY: the stream's codec parameters are valid.
    unsafe { (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0 };
}

/// Lets written packet data go straight to the sink instead of being copied
/// through FFmpeg's I/O buffer first (the sink buffers for itself).
pub(crate) fn write_directly(io: &mut ffmpeg::format::context::StreamIo) {
    // SAFETY: a valid write context owned by `io`, not in use yet; `direct`
    // only changes how avio_write and avio_seek reach the callbacks.
    unsafe { (*io.as_mut_ptr()).direct = 1 };
}

// ---------------------------------------------------------------------------
// Encoders

/// Gives a video encoder the colour description and pixel aspect of the
/// stream it re-encodes.
pub(crate) fn copy_colour(
    params: &ffmpeg::codec::Parameters,
    enc: &mut ffmpeg::encoder::video::Video,
) {
    // SAFETY: copying plain fields between valid parameters and a valid,
    // not yet opened, encoder context.
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
}

/// An opened encoder's out-of-band headers (SPS/PPS for libx264 with
/// global headers), empty if none.
pub(crate) fn encoder_extradata(enc: &ffmpeg::encoder::Video) -> Vec<u8> {
    // SAFETY: reading the extradata of an opened encoder.
    unsafe {
        let e = enc.as_ptr();
        if (*e).extradata.is_null() || (*e).extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*e).extradata, (*e).extradata_size as usize).to_vec()
        }
    }
}

//! Codec parameters: their plain fields, extradata, owned copies, rotation
//! and channel layout names.

use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;
use std::ffi::CStr;

/// The plain fields of codec parameters that ffmpeg-next does not expose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ParamFields {
    pub width: i32,
    pub height: i32,
    /// Pixel or sample format; negative while unknown (not yet probed).
    pub format: i32,
    pub sample_rate: i32,
    pub channels: i32,
    /// The channel mask when the layout is a native one, else 0.
    pub channel_mask: u64,
    pub has_extradata: bool,
}

pub(crate) fn param_fields(params: &ffmpeg::codec::Parameters) -> ParamFields {
    // SAFETY: reading plain fields of valid codec parameters.
    unsafe {
        let p = params.as_ptr();
        let layout = &(*p).ch_layout;
        ParamFields {
            width: (*p).width,
            height: (*p).height,
            format: (*p).format,
            sample_rate: (*p).sample_rate,
            channels: layout.nb_channels,
            channel_mask: if layout.order == ffi::AVChannelOrder::AV_CHANNEL_ORDER_NATIVE {
                layout.u.mask
            } else {
                0
            },
            has_extradata: (*p).extradata_size > 0,
        }
    }
}

/// The codec's out-of-band headers (`avcC` for H.264 in MP4), empty if none.
pub(crate) fn extradata(params: &ffmpeg::codec::Parameters) -> Vec<u8> {
    // SAFETY: reading the extradata bytes of valid codec parameters.
    unsafe {
        let p = params.as_ptr();
        if (*p).extradata.is_null() || (*p).extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*p).extradata, (*p).extradata_size as usize).to_vec()
        }
    }
}

/// Codec parameters owned apart from any context (sendable between threads),
/// e.g. a probed stream's, to describe an output stream later.
pub(crate) struct OwnedParams(pub(super) *mut ffi::AVCodecParameters);

// SAFETY: the parameters are owned exclusively by this value and only read
// through `&self`.
unsafe impl Send for OwnedParams {}
unsafe impl Sync for OwnedParams {}

impl OwnedParams {
    /// A copy of `params`.
    pub fn copy_of(params: &ffmpeg::codec::Parameters) -> Option<Self> {
        // SAFETY: the pointer of valid parameters, read during the call.
        Self::copy_raw(unsafe { params.as_ptr() })
    }

    fn copy_raw(src: *const ffi::AVCodecParameters) -> Option<Self> {
        // SAFETY: allocating fresh parameters and deep-copying valid ones.
        unsafe {
            let p = ffi::avcodec_parameters_alloc();
            if p.is_null() {
                return None;
            }
            let mut owned = Self(p);
            if ffi::avcodec_parameters_copy(owned.0, src) < 0 {
                ffi::avcodec_parameters_free(&mut owned.0);
                return None;
            }
            Some(owned)
        }
    }

    /// `params` with what an opened decoder learnt from the bitstream
    /// (pixel format, profile, level, colour, chroma siting), as
    /// `avformat_find_stream_info` completes a stream's parameters.
    pub fn completed_by(
        params: &ffmpeg::codec::Parameters,
        decoder: &ffmpeg::decoder::Video,
    ) -> Option<Self> {
        let owned = Self::copy_of(params)?;
        // SAFETY: valid parameters owned here and a valid opened decoder.
        let r = unsafe { ffi::avcodec_parameters_from_context(owned.0, decoder.as_ptr()) };
        (r >= 0).then_some(owned)
    }

    /// Codec parameters (ffmpeg-next's type) holding a copy of these.
    pub fn to_parameters(&self) -> ffmpeg::codec::Parameters {
        let mut p = ffmpeg::codec::Parameters::new();
        // SAFETY: both are valid parameters; a failed copy leaves `p` empty.
        unsafe { ffi::avcodec_parameters_copy(p.as_mut_ptr(), self.0) };
        p
    }
}

impl Clone for OwnedParams {
    fn clone(&self) -> Self {
        // An allocation failure aborts, like Rust's own allocations.
        Self::copy_raw(self.0).expect("out of memory")
    }
}

impl Drop for OwnedParams {
    fn drop(&mut self) {
        // SAFETY: owned; freeing sets the pointer to null.
        unsafe { ffi::avcodec_parameters_free(&mut self.0) }
    }
}

impl std::fmt::Debug for OwnedParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: reading a plain field.
        let id = unsafe { (*self.0).codec_id };
        write!(f, "OwnedParams({id:?})")
    }
}

/// Clockwise rotation a player applies, from a stream's display matrix
/// (nine native-endian i32 values); `None` when the matrix says nothing.
/// A matrix that also mirrors (an export with the mirror option: negative
/// determinant) is read for its rotation alone; the mirror is not a turn.
pub(crate) fn display_rotation_cw(matrix: &[u8]) -> Option<i32> {
    if matrix.len() < 36 {
        return None;
    }
    let mut m = [0i32; 9];
    for (i, v) in m.iter_mut().enumerate() {
        let b = &matrix[i * 4..i * 4 + 4];
        *v = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
    }
    let det = i64::from(m[0]) * i64::from(m[4]) - i64::from(m[1]) * i64::from(m[3]);
    if det < 0 {
        // Undo the left-right flip (the first column negated).
        for i in [0, 3, 6] {
            m[i] = m[i].saturating_neg();
        }
    }
    // SAFETY: `m` is a valid 9-element matrix as the function expects.
    let ccw = unsafe { ffi::av_display_rotation_get(m.as_ptr()) };
    (!ccw.is_nan()).then(|| ((-ccw).round() as i32).rem_euclid(360))
}

/// FFmpeg's name for a channel layout (`stereo`, `5.1`…).
pub(crate) fn layout_name(layout: ffmpeg::ChannelLayout) -> String {
    let mut buf = [0 as std::os::raw::c_char; 64];
    // SAFETY: the buffer is valid for its length; FFmpeg NUL-terminates.
    unsafe {
        ffi::av_get_channel_layout_string(
            buf.as_mut_ptr(),
            buf.len() as i32,
            layout.channels(),
            layout.bits(),
        );
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(m: [i32; 9]) -> Vec<u8> {
        m.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    #[test]
    fn a_mirrored_matrix_keeps_its_rotation() {
        crate::init();
        const ONE: i32 = 1 << 16;
        let w = 1 << 30;
        let upright = [ONE, 0, 0, 0, ONE, 0, 0, 0, w];
        let turned = [0, ONE, 0, -ONE, 0, 0, 0, 0, w];
        let mut flipped = upright;
        let mut flipped_turned = turned;
        for m in [&mut flipped, &mut flipped_turned] {
            for i in [0, 3, 6] {
                m[i] = -m[i];
            }
        }
        let upright_cw = display_rotation_cw(&bytes(upright));
        let turned_cw = display_rotation_cw(&bytes(turned));
        assert_eq!(upright_cw, Some(0));
        assert_ne!(turned_cw, Some(0));
        assert_eq!(display_rotation_cw(&bytes(flipped)), upright_cw);
        assert_eq!(display_rotation_cw(&bytes(flipped_turned)), turned_cw);
    }
}

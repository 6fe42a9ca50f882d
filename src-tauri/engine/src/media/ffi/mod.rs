//! `ffi`: the engine's raw FFmpeg calls, each behind a safe function.
//!
//! Everything else goes through ffmpeg-next's safe API or through these
//! wrappers, so the `unsafe` blocks (and the reasons they are sound) stand in
//! one place. libavfilter, which is loaded at run time, has its own binding
//! (`export::audio::stretch`).

mod input;
mod output;
mod params;
mod resample;

pub(crate) use input::{
    index_span, open_local_input, read_packets_directly, seek_file_start, seek_keyframe_before,
    select_stream, select_streams,
};
pub(crate) use output::{
    add_copied_stream, clear_codec_tag, copy_colour, encoder_extradata, mirror_display,
    mp4_accepts, set_extradata, write_directly,
};
pub(crate) use params::{display_rotation_cw, extradata, layout_name, param_fields, OwnedParams};
pub(crate) use resample::{owned_audio_copy, strip_side_data, ts_to_samples, SampleSpec, Swr};

use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;
use std::ffi::CStr;

/// The FFmpeg build in use: its version string and the libavformat and
/// libavcodec versions (major.minor.micro) loaded at run time.
pub(crate) fn version_info() -> String {
    // SAFETY: av_version_info returns a static NUL-terminated string.
    let build = unsafe { CStr::from_ptr(ffi::av_version_info()) }
        .to_string_lossy()
        .into_owned();
    let v = |n: u32| format!("{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff);
    format!(
        "{build} (libavformat {}, libavcodec {})",
        v(ffmpeg::format::version()),
        v(ffmpeg::codec::version())
    )
}

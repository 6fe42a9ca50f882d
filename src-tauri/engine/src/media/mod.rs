//! `media`: reading files. What a file holds ([`probe`]), its sound as mono
//! samples ([`decode`]), peaks for display ([`waveform`]), and a fingerprint
//! that notices a replaced file ([`fingerprint`]).

pub(crate) mod decode;
pub(crate) mod ffi;
pub mod fingerprint;
pub(crate) mod input;
pub(crate) mod probe;
pub(crate) mod spill;
pub mod waveform;

pub use decode::{decode_audio, MonoPcm};
pub use probe::{probe, AudioStreamInfo, MediaInfo, Role, StreamInfo, VideoStreamInfo};
pub use spill::set_spill_dir;
pub use waveform::Waveform;

/// A path as a string for JSON: a name that is not valid UTF-8 gets U+FFFD
/// where its stray bytes were (serde's own path serializer fails on it).
pub(crate) fn serialize_path_lossy<S: serde::Serializer>(
    path: &std::path::Path,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// The FFmpeg libraries in use, e.g. `5.1.6-0+deb12u1 (libavformat 59.27.100,
/// libavcodec 59.37.100)`, for an About box or a bug report.
pub fn ffmpeg_version() -> String {
    crate::init();
    ffi::version_info()
}

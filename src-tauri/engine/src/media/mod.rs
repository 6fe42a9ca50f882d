//! `media`: reading files. What a file holds ([`probe`]), its sound as mono
//! samples ([`decode`]), peaks for display ([`waveform`]), and a fingerprint
//! that notices a replaced file ([`fingerprint`]).

pub(crate) mod decode;
pub(crate) mod ffi;
pub mod fingerprint;
pub(crate) mod input;
pub(crate) mod probe;
pub mod waveform;

pub use decode::{decode_audio, MonoPcm};
pub use probe::{probe, AudioStreamInfo, MediaInfo, Role, StreamInfo, VideoStreamInfo};
pub use waveform::Waveform;

//! BeatSync engine: everything that touches media, with no GUI dependency.
//! The Tauri app and the `beatsync` CLI are thin shells over this crate.

pub mod align;
pub mod audio_out;
pub mod beats;
pub mod cancel;
pub mod coarse;
pub mod decode;
pub mod demo;
#[cfg(target_os = "linux")]
mod direct_out;
pub mod error;
pub mod export;
pub mod fine;
pub mod gcc;
pub mod interp;
pub mod jobs;
pub mod mux;
pub mod onset;
pub mod par;
pub mod probe;
pub mod smartcut;
pub mod spectral;
pub mod stretch;
pub mod tiebreak;
pub mod trim;
pub mod waveform;
pub mod xcorr;

#[cfg(test)]
mod test_signal;

pub use align::{
    align_files, align_signals, AlignCandidate, AlignOptions, AlignResult, AlignTimings, Overlap,
};
pub use cancel::{CancelToken, ProgressFn};
pub use decode::{decode_audio, decode_audio_with, AudioChunks, MonoPcm};
pub use error::{EngineError, ErrorPayload, Result};
pub use export::{
    analyse_inputs, export, export_analysed, remove_stale_partials, AudioChoice, ExportReport,
    ExportRequest, InputAnalysis, SongHeard, StartCut,
};
pub use probe::{probe, AudioStreamInfo, MediaInfo, Role, StreamInfo, VideoStreamInfo};
pub use trim::{EndReason, Placement, StartReason};

/// FFmpeg's global initialisation; cheap and idempotent, called by every entry point.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ffmpeg_next::init();
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
    });
}

//! BeatSync engine: everything that touches media, with no GUI dependency.
//! The Tauri app and the `beatsync` CLI are thin shells over this crate.
//!
//! Layout (see docs/architecture.md): [`media`] reads files (probe, decode,
//! waveform, fingerprint), `align` finds where the song sits ([`align_files`];
//! built on the crate-private `dsp`), [`Placement`] is that placement,
//! [`export`] writes the finished video, [`frames`] serves its pictures, and
//! [`jobs`] runs both in the background from a durable store.

pub mod demo;
pub mod export;
pub mod frames;
pub mod jobs;
pub mod media;
pub mod slow;

mod align;
mod cancel;
mod dsp;
mod error;
#[cfg(test)]
mod test_signal;
mod timeline;

pub use align::{
    align_against_songs, align_files, align_signals, AlignCandidate, AlignOptions, AlignResult,
    AlignTimings, BestGuess, Overlap, Segment, Verdict,
};
pub use cancel::CancelToken;
pub use error::{EngineError, ErrorCode, ErrorPayload, Result};
pub use export::{export, ExportReport, ExportRequest, StartCutUsed};
pub use media::{decode_audio, probe, MediaInfo, Role};
pub use timeline::{validate_plays, Placement, Play, MAX_PLAYS};

/// FFmpeg's global initialisation; cheap and idempotent, called by every entry point.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ffmpeg_next::init();
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
    });
}

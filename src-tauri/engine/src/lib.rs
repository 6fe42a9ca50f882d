//! BeatSync engine: everything that touches media, with no GUI dependency.
//! The Tauri app and the `beatsync` CLI are thin shells over this crate.
//!
//! Layout (see docs/architecture.md): [`media`] reads files (probe, decode,
//! waveform, fingerprint), the align family finds where the song sits,
//! [`Placement`] is that placement, [`export`] writes the finished video, and
//! [`jobs`] runs both in the background from a durable store.

pub mod demo;
pub mod export;
pub mod jobs;
pub mod media;

mod cancel;
mod error;
mod timeline;

// The align family; it moves into align/ and dsp/ in a later pass.
pub mod align;
pub mod beats;
pub mod coarse;
pub mod fine;
pub mod frames;
pub mod gcc;
pub mod integrate;
pub mod interp;
pub mod onset;
pub mod par;
pub mod spectral;
#[cfg(test)]
mod test_signal;
pub mod tiebreak;
pub mod xcorr;

// The align family reads audio through this path.
use media::decode;

pub use align::{
    align_files, align_signals, AlignCandidate, AlignOptions, AlignResult, AlignTimings, BestGuess,
    Overlap, Verdict,
};
pub use cancel::CancelToken;
pub use error::{EngineError, ErrorCode, ErrorPayload, Result};
pub use export::{export, ExportReport, ExportRequest, StartCutUsed};
pub use media::{decode_audio, probe, MediaInfo, Role};
pub use timeline::Placement;

/// FFmpeg's global initialisation; cheap and idempotent, called by every entry point.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ffmpeg_next::init();
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
    });
}

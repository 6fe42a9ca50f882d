//! Typed engine errors. Every variant has a stable machine-readable `code()`
//! that the CLI prints and the app sends to the UI as `{code, message}`.

use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("file not found: {0}")]
    NotFound(PathBuf),
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "{0} is not a media file FFmpeg can open (wrong extension, or not audio/video at all)"
    )]
    NotMedia(PathBuf),
    #[error("{0} has no audio track; choose a file with sound")]
    NoAudio(PathBuf),
    #[error("{0} has no video track; choose the class video, not an audio file")]
    NoVideo(PathBuf),
    #[error("{0} is empty (0 bytes); the copy may be incomplete")]
    Empty(PathBuf),
    #[error("unsupported media in {path}: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path} has only {seconds:.2} s of audio; at least {min_seconds:.0} s are needed")]
    TooShort {
        path: PathBuf,
        seconds: f64,
        min_seconds: f64,
    },
    #[error("the song was not found in the recording ({reason}); check that it is the right song")]
    NoMatch {
        reason: String,
        /// Where the song would fit best, for a teacher who knows it is the
        /// right song (absent when nothing could be placed at all).
        best_guess: Option<Box<crate::align::BestGuess>>,
    },
    #[error("cancelled")]
    Cancelled,
    #[error("media error in {path}: {reason}")]
    Media { path: PathBuf, reason: String },
    #[error("cannot write to the output folder {path}: {reason}; choose another folder")]
    OutputDir { path: PathBuf, reason: String },
    #[error("not enough disk space in {path}: {reason}; free some space or choose another folder")]
    DiskFull { path: PathBuf, reason: String },
    #[error("writing {path} failed: {reason}")]
    OutputWrite { path: PathBuf, reason: String },
    #[error("{0} was removed or changed while exporting; keep the files in place until the export finishes, then try again")]
    InputChanged(PathBuf),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("nothing to export: {reason}")]
    NothingToExport { reason: String },
}

impl EngineError {
    /// Stable code, part of the CLI and IPC contract.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::NotFound(_) => "not_found",
            EngineError::Unreadable { .. } => "unreadable",
            EngineError::NotMedia(_) => "not_media",
            EngineError::NoAudio(_) => "no_audio",
            EngineError::NoVideo(_) => "no_video",
            EngineError::Empty(_) => "empty",
            EngineError::Unsupported { .. } => "unsupported",
            EngineError::TooShort { .. } => "too_short",
            EngineError::NoMatch { .. } => "no_match",
            EngineError::Cancelled => "cancelled",
            EngineError::Media { .. } => "media",
            EngineError::OutputDir { .. } => "output_dir",
            EngineError::DiskFull { .. } => "disk_full",
            EngineError::OutputWrite { .. } => "output_write",
            EngineError::InputChanged(_) => "input_changed",
            EngineError::InvalidRequest(_) => "invalid_request",
            EngineError::NothingToExport { .. } => "nothing_to_export",
        }
    }

    pub fn to_payload(&self) -> ErrorPayload {
        ErrorPayload {
            code: self.code().to_string(),
            message: self.to_string(),
        }
    }

    /// `no_match` without a best guess.
    pub fn no_match(reason: impl Into<String>) -> Self {
        EngineError::NoMatch {
            reason: reason.into(),
            best_guess: None,
        }
    }

    pub(crate) fn media(path: &Path, err: impl std::fmt::Display) -> Self {
        EngineError::Media {
            path: path.to_path_buf(),
            reason: err.to_string(),
        }
    }
}

/// The shape an error takes on the wire (CLI `--json`, Tauri IPC).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ErrorPayload {
    pub code: String,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, EngineError>;

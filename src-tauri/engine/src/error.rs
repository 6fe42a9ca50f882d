//! Typed engine errors. Every variant has a stable machine-readable code
//! (an [`ErrorCode`]) that the CLI prints and the app sends to the UI as
//! `{code, message}`. [`ErrorCode`] is the one list of codes the UI can
//! receive: the engine's, the job store's and the app shell's.

use serde::Serialize;
use std::path::{Path, PathBuf};

/// Defines a fieldless enum whose wire names are written once: `ALL`,
/// `as_str`, `parse`, `Display` and serde all use them. For the names the UI
/// receives, which a test enumerates.
macro_rules! wire_names {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The name on the wire and in the store.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| {
                    serde::de::Error::unknown_variant(&s, &[$($wire,)*])
                })
            }
        }
    };
}
pub(crate) use wire_names;

wire_names! {
    /// Every error code the UI can receive, grouped by where it comes from.
    /// The UI has a sentence and advice for each, in English and Chinese
    /// (a test enumerates this list against ui/js/i18n.js).
    pub enum ErrorCode {
        // The engine (`EngineError`).
        NotFound = "not_found",
        Unreadable = "unreadable",
        NotMedia = "not_media",
        NoAudio = "no_audio",
        NoVideo = "no_video",
        Empty = "empty",
        Unsupported = "unsupported",
        TooShort = "too_short",
        NoMatch = "no_match",
        Cancelled = "cancelled",
        Media = "media",
        OutputDir = "output_dir",
        DiskFull = "disk_full",
        OutputWrite = "output_write",
        InputChanged = "input_changed",
        InvalidRequest = "invalid_request",
        NothingToExport = "nothing_to_export",
        /// The song may not be the right one: the teacher listens and confirms first.
        NeedsConfirmation = "needs_confirmation",
        // The job store (`JobsError`) and the runner.
        StoreLocked = "store_locked",
        Store = "store",
        JobNotFound = "job_not_found",
        InvalidState = "invalid_state",
        StoreIo = "store_io",
        /// A stage reported no progress for too long (it is tried again).
        Stalled = "stalled",
        /// The app stopped while running the job, too many times.
        Crashed = "crashed",
        // The app shell.
        Internal = "internal",
        NoAudioDevice = "no_audio_device",
        InvalidArgument = "invalid_argument",
        OpenFailed = "open_failed",
    }
}

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
    #[error("not sure this is the right song (confidence {confidence:.2}); listen to the placement, then confirm it to export")]
    NeedsConfirmation { confidence: f64 },
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
    /// A number or option given by the user (CLI, IPC, store) that cannot be used.
    #[error("{0}")]
    InvalidArgument(String),
}

impl EngineError {
    /// Stable code, part of the CLI and IPC contract.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            EngineError::NotFound(_) => ErrorCode::NotFound,
            EngineError::Unreadable { .. } => ErrorCode::Unreadable,
            EngineError::NotMedia(_) => ErrorCode::NotMedia,
            EngineError::NoAudio(_) => ErrorCode::NoAudio,
            EngineError::NoVideo(_) => ErrorCode::NoVideo,
            EngineError::Empty(_) => ErrorCode::Empty,
            EngineError::Unsupported { .. } => ErrorCode::Unsupported,
            EngineError::TooShort { .. } => ErrorCode::TooShort,
            EngineError::NoMatch { .. } => ErrorCode::NoMatch,
            EngineError::NeedsConfirmation { .. } => ErrorCode::NeedsConfirmation,
            EngineError::Cancelled => ErrorCode::Cancelled,
            EngineError::Media { .. } => ErrorCode::Media,
            EngineError::OutputDir { .. } => ErrorCode::OutputDir,
            EngineError::DiskFull { .. } => ErrorCode::DiskFull,
            EngineError::OutputWrite { .. } => ErrorCode::OutputWrite,
            EngineError::InputChanged(_) => ErrorCode::InputChanged,
            EngineError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            EngineError::NothingToExport { .. } => ErrorCode::NothingToExport,
            EngineError::InvalidArgument(_) => ErrorCode::InvalidArgument,
        }
    }

    /// The code's wire name (what the CLI prints).
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    pub fn to_payload(&self) -> ErrorPayload {
        let best_guess = match self {
            EngineError::NoMatch { best_guess, .. } => best_guess.as_deref().cloned(),
            _ => None,
        };
        ErrorPayload {
            best_guess,
            ..ErrorPayload::new(self.error_code(), self.to_string())
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
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ErrorPayload {
    pub code: ErrorCode,
    pub message: String,
    /// `no_match` only: where the song would fit best, for a teacher who
    /// knows it is the right song. The job store keeps it (schema v7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_guess: Option<crate::align::BestGuess>,
}

impl ErrorPayload {
    pub fn new(code: ErrorCode, message: String) -> Self {
        Self {
            code,
            message,
            best_guess: None,
        }
    }

    /// An error as the store kept it: a code no longer in the list becomes
    /// `internal`, with the old code kept in front of the message.
    pub fn from_stored(code: &str, message: String) -> Self {
        match ErrorCode::parse(code) {
            Some(code) => ErrorPayload::new(code, message),
            None => ErrorPayload::new(ErrorCode::Internal, format!("{code}: {message}")),
        }
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value has its own name, and serde writes and reads that name.
    fn check_wire_names<T>(all: &[T])
    where
        T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display,
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let mut seen = std::collections::HashSet::new();
        for &v in all {
            assert!(seen.insert(v.to_string()), "{v} twice");
            let json = serde_json::to_string(&v).expect("serialise");
            assert_eq!(json, format!("\"{v}\""));
            assert_eq!(serde_json::from_str::<T>(&json).expect("parse"), v);
        }
        assert!(serde_json::from_str::<T>("\"no_such_name\"").is_err());
    }

    #[test]
    fn wire_names_are_unique_and_serde_uses_them() {
        use crate::jobs::{JobState, Stage};
        check_wire_names(ErrorCode::ALL);
        check_wire_names(Stage::ALL);
        check_wire_names(JobState::ALL);
        check_wire_names(crate::align::Verdict::ALL);
        check_wire_names(crate::export::StartCutUsed::ALL);
        assert_eq!(ErrorCode::parse("store_io"), Some(ErrorCode::StoreIo));
        assert_eq!(Stage::parse("audio"), None, "not sent by anything");
    }

    /// `no_match` with a best guess sends it in its payload; without one,
    /// and for every other error, the payload is `{code, message}` only.
    #[test]
    fn no_match_payload_carries_the_best_guess() {
        let guess = crate::align::BestGuess {
            offset_s: -5.5,
            rate: 1.0002,
            confidence: 0.2,
            overlap: crate::align::Overlap {
                dance_start_s: 1.0,
                dance_end_s: 30.0,
                bgm_start_s: 6.5,
                bgm_end_s: 35.5,
            },
        };
        let e = EngineError::NoMatch {
            reason: "weak".into(),
            best_guess: Some(Box::new(guess.clone())),
        };
        let v = serde_json::to_value(e.to_payload()).expect("serialise");
        assert_eq!(v["code"], "no_match");
        assert_eq!(v["best_guess"]["offset_s"], -5.5);
        assert_eq!(v["best_guess"]["overlap"]["bgm_end_s"], 35.5);
        let back: ErrorPayload = serde_json::from_value(v).expect("parse");
        assert_eq!(back.best_guess, Some(guess));
        for e in [EngineError::no_match("silent"), EngineError::Cancelled] {
            let v = serde_json::to_value(e.to_payload()).expect("serialise");
            assert!(v.get("best_guess").is_none(), "{v}");
        }
        // an error stored before the field existed still reads
        let old: ErrorPayload =
            serde_json::from_str(r#"{"code":"no_match","message":"m"}"#).expect("parse");
        assert_eq!(old.best_guess, None);
    }
}

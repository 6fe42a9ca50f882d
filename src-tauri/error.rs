//! The error shape every command returns to the UI: `{code, message}`, with
//! the code from the one list of codes (`ErrorCode`).

use beatsync_engine::jobs::JobsError;
use beatsync_engine::ErrorCode;
use beatsync_engine::{EngineError, ErrorPayload};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl IpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The user's input cannot be used (an empty path, a value out of range).
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// Something inside the app failed; not the user's doing.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, format!("internal error: {message}"))
    }
}

impl From<EngineError> for IpcError {
    fn from(e: EngineError) -> Self {
        Self::new(e.error_code(), e.to_string())
    }
}

impl From<JobsError> for IpcError {
    fn from(e: JobsError) -> Self {
        Self::new(e.error_code(), e.to_string())
    }
}

impl From<IpcError> for ErrorPayload {
    fn from(e: IpcError) -> Self {
        ErrorPayload {
            code: e.code,
            message: e.message,
        }
    }
}

/// A blocking task that did not finish (it panicked or was aborted).
impl From<tauri::Error> for IpcError {
    fn from(e: tauri::Error) -> Self {
        Self::internal(e)
    }
}

//! The error shape every command returns to the UI: `{code, message}`.

use beatsync_engine::EngineError;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IpcError {
    pub code: String,
    pub message: String,
}

impl IpcError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl From<EngineError> for IpcError {
    fn from(e: EngineError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

/// A blocking task that did not finish (it panicked or was aborted).
impl From<tauri::Error> for IpcError {
    fn from(e: tauri::Error) -> Self {
        Self::new("internal", format!("internal error: {e}"))
    }
}

//! Tauri commands (docs/ipc.md), by what they work on. Each validates its
//! input, does media work on a blocking thread (never the async runtime's
//! workers), changes jobs only through the store, and maps errors to
//! `{code, message}`. Arguments are snake_case on the wire, as docs/ipc.md
//! says. Files are named by the ids the shell handed out, never by path.

pub mod about;
pub mod files;
pub mod jobs;
pub mod output;
pub mod picture;
pub mod plays;
pub mod preview;
pub mod settings;

use crate::error::IpcError;
use beatsync_engine::jobs::validate;
use serde::Deserialize;
use std::path::PathBuf;

/// Runs media work on the blocking pool, never on the async runtime's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, IpcError> + Send + 'static,
) -> Result<T, IpcError> {
    tauri::async_runtime::spawn_blocking(f).await?
}

fn non_empty(path: &str) -> Result<PathBuf, IpcError> {
    if path.trim().is_empty() {
        return Err(IpcError::invalid_argument("no file path given"));
    }
    Ok(PathBuf::from(path))
}

/// A number from the page. JSON has no NaN or infinity (the page's
/// `JSON.stringify` sends them as `null`), so whatever is not a number
/// arrives here too and is refused with `invalid_argument`, like a number
/// out of range — never as a deserialisation failure.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Number {
    Finite(f64),
    Other(serde_json::Value),
}

impl Number {
    /// The value, checked by the engine's one validation function.
    pub fn within(&self, name: &'static str, min: f64, max: f64) -> Result<f64, IpcError> {
        match self {
            Number::Finite(v) => Ok(validate::finite_in(name, *v, min, max)?),
            Number::Other(v) => Err(IpcError::invalid_argument(format!(
                "{name} is {v}; it must be a number from {min} to {max}; enter a value in that range"
            ))),
        }
    }
}

//! Tauri commands (docs/ipc.md), by what they work on. Each validates its
//! input, does media work on a blocking thread (never the async runtime's
//! workers), changes jobs only through the store, and maps errors to
//! `{code, message}`. Arguments are snake_case on the wire, as docs/ipc.md says.

pub mod about;
pub mod files;
pub mod jobs;
pub mod output;
pub mod preview;
pub mod settings;

use crate::error::IpcError;
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

//! Tauri commands: each validates its input, hands media work to a blocking
//! thread (never the async runtime's workers), and maps errors to `IpcError`.

use crate::error::IpcError;
use beatsync_engine::{self as engine, MediaInfo};
use std::path::PathBuf;

/// Probes one file the user chose or dropped.
#[tauri::command]
pub async fn probe_media(path: String) -> Result<MediaInfo, IpcError> {
    if path.trim().is_empty() {
        return Err(IpcError::new("invalid_argument", "no file path given"));
    }
    let path = PathBuf::from(path);
    let info = tauri::async_runtime::spawn_blocking(move || engine::probe(&path)).await??;
    Ok(info)
}

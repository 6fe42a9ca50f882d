//! Adding files: the one path a window drop, the file dialog, a second
//! launch and the `add_files` command all take. Each file is probed, given a
//! role, and (when accepted) granted to the asset scope on its own.

use crate::view::AddedFile;
use beatsync_engine::{EngineError, MediaInfo};
use std::path::PathBuf;
use tauri::{AppHandle, Manager, Runtime};

/// 'class' for a video with sound, 'song' for sound only; an error otherwise.
pub fn role_of(info: &MediaInfo) -> Result<&'static str, EngineError> {
    info.require_audio()?;
    Ok(if info.video().is_some() {
        "class"
    } else {
        "song"
    })
}

/// Probes each path (on blocking threads) and grants accepted files to the asset scope.
pub async fn add_paths<R: Runtime>(app: &AppHandle<R>, paths: Vec<PathBuf>) -> Vec<AddedFile> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let p = path.clone();
        let probed = tauri::async_runtime::spawn_blocking(move || beatsync_engine::probe(&p)).await;
        let added = match probed {
            Ok(Ok(info)) => match role_of(&info) {
                Ok(role) => {
                    if let Err(e) = app.asset_protocol_scope().allow_file(&path) {
                        tracing::warn!("asset scope for {}: {e}", path.display());
                    }
                    AddedFile::accepted(path, info, role)
                }
                Err(e) => AddedFile::rejected(path, e.to_payload()),
            },
            Ok(Err(e)) => AddedFile::rejected(path, e.to_payload()),
            Err(e) => AddedFile::rejected(
                path,
                beatsync_engine::ErrorPayload {
                    code: "internal".into(),
                    message: format!("internal error: {e}"),
                },
            ),
        };
        out.push(added);
    }
    out
}

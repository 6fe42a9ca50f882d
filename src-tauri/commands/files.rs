//! Adding files and reading them: the one path a window drop, the file
//! dialog, a second launch and the `add_files` command all take (each file
//! probed, given a role, and when accepted granted to the asset scope on
//! its own), plus probing and waveforms.

use super::{blocking, non_empty};
use crate::error::IpcError;
use crate::view::AddedFile;
use beatsync_engine::media::Waveform;
use beatsync_engine::{self as engine, CancelToken, EngineError, MediaInfo, Role};
use std::path::PathBuf;
use tauri::{AppHandle, Manager, Runtime};

/// A class video for a video with sound, the song for sound only; an error otherwise.
pub fn role_of(info: &MediaInfo) -> Result<Role, EngineError> {
    info.require_audio()?;
    Ok(if info.video().is_some() {
        Role::Class
    } else {
        Role::Song
    })
}

/// Probes each path (on blocking threads) and grants accepted files to the asset scope.
pub async fn add_paths<R: Runtime>(app: &AppHandle<R>, paths: Vec<PathBuf>) -> Vec<AddedFile> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let p = path.clone();
        let probed = blocking(move || {
            let info = engine::probe(&p)?;
            let role = role_of(&info)?;
            Ok((info, role))
        })
        .await;
        out.push(match probed {
            Ok((info, role)) => {
                if let Err(e) = app.asset_protocol_scope().allow_file(&path) {
                    tracing::warn!("asset scope for {}: {e}", path.display());
                }
                AddedFile::accepted(path, info, role)
            }
            Err(e) => AddedFile::rejected(path, e.into()),
        });
    }
    out
}

/// Probes one file the user chose or dropped.
#[tauri::command(rename_all = "snake_case")]
pub async fn probe_media(path: String) -> Result<MediaInfo, IpcError> {
    let path = non_empty(&path)?;
    blocking(move || Ok(engine::probe(&path)?)).await
}

/// The same path a window drop takes: probe, classify, grant to the asset scope.
#[tauri::command(rename_all = "snake_case")]
pub async fn add_files<R: Runtime>(
    app: AppHandle<R>,
    paths: Vec<String>,
) -> Result<Vec<AddedFile>, IpcError> {
    let paths = paths
        .iter()
        .map(|p| non_empty(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(add_paths(&app, paths).await)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn pick_files<R: Runtime>(app: AppHandle<R>) -> Result<Vec<AddedFile>, IpcError> {
    let picked = rfd::AsyncFileDialog::new()
        .set_title("Add class videos and the song")
        .add_filter(
            "Video and audio",
            &[
                "mp4", "mov", "m4v", "mkv", "avi", "webm", "m4a", "mp3", "wav", "aac", "flac",
                "ogg", "opus",
            ],
        )
        .pick_files()
        .await
        .unwrap_or_default();
    let paths = picked.into_iter().map(|h| h.path().to_path_buf()).collect();
    Ok(add_paths(&app, paths).await)
}

/// Waveform peaks computed in Rust (the UI never decodes media).
#[tauri::command(rename_all = "snake_case")]
pub async fn waveform(path: String, peaks_per_s: f64) -> Result<Waveform, IpcError> {
    let path = non_empty(&path)?;
    if !peaks_per_s.is_finite() || peaks_per_s <= 0.0 {
        return Err(IpcError::invalid_argument(
            "peaks_per_s must be a positive number",
        ));
    }
    blocking(move || {
        Ok(engine::media::waveform::waveform(
            &path,
            peaks_per_s,
            &CancelToken::new(),
        )?)
    })
    .await
}

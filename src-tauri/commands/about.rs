//! The first five minutes: a sample class video and song to try the whole
//! flow on, and what the About box shows.

use super::blocking;
use super::files::add_paths;
use crate::error::IpcError;
use crate::view::AddedFile;
use beatsync_engine::jobs::Store;
use serde::Serialize;
use std::path::PathBuf;
use tauri::{AppHandle, Runtime};

/// Makes the demo pair (a generated song and a class video of it with a
/// known offset) in the data folder's `sample/` and adds both, as a drop
/// would; the analysis then starts by itself. The page names no path.
#[tauri::command(rename_all = "snake_case")]
pub async fn try_sample<R: Runtime>(app: AppHandle<R>) -> Result<Vec<AddedFile>, IpcError> {
    let dir = Store::default_dir()?.join("sample");
    let demo = blocking(move || Ok(beatsync_engine::demo::make_demo(&dir)?)).await?;
    Ok(add_paths(&app, vec![demo.class_video, demo.song]).await)
}

/// What the About box shows.
#[derive(Debug, Clone, Serialize)]
pub struct About {
    pub version: &'static str,
    /// The FFmpeg libraries in use.
    pub ffmpeg: String,
    /// Where the job history is kept.
    pub data_dir: Option<PathBuf>,
    /// Where the log files are written.
    pub log_dir: Option<PathBuf>,
}

#[tauri::command(rename_all = "snake_case")]
pub async fn about() -> Result<About, IpcError> {
    blocking(|| {
        Ok(About {
            version: env!("CARGO_PKG_VERSION"),
            ffmpeg: beatsync_engine::media::ffmpeg_version(),
            data_dir: Store::default_dir().ok(),
            log_dir: crate::logging::log_dir(),
        })
    })
    .await
}

//! The user's settings (output folder, language, preview balance, mirrored picture, mirrored exports): every
//! preference the app has, kept in the job store under the data folder
//! (nothing in the webview's own storage). The output folder is set only
//! through the native folder dialog (`pick_folder`); the page cannot name one.

use crate::error::IpcError;
use crate::state::AppState;
use crate::view::{Settings, SettingsChange};
use beatsync_engine::jobs::os_path;
use std::path::{Path, PathBuf};
use tauri::State;

/// The store's key for the settings.
const KEY: &str = "settings";

/// The store's key for the output folder spelt exactly (`os_path` JSON):
/// the settings' `out_dir` is what the page shows, lossy where the folder's
/// name is not UTF-8, and must not be taken for the folder itself.
const EXACT_OUT_DIR_KEY: &str = "out_dir_exact";

/// The languages the UI has words for.
const LANGUAGES: [&str; 2] = ["en", "zh"];

/// The user's Videos folder (their home without one): chosen on the Rust side.
fn default_out_dir() -> String {
    directories::UserDirs::new()
        .and_then(|u| {
            u.video_dir()
                .map(Path::to_path_buf)
                .or_else(|| Some(u.home_dir().to_path_buf()))
        })
        .map(|p| p.canonicalize().unwrap_or(p))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn load_settings(state: &AppState) -> Result<Settings, IpcError> {
    let stored = state.store.setting(KEY)?;
    Ok(stored
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or(Settings {
            out_dir: default_out_dir(),
            language: None,
            balance: 0.0,
            mirror: true,
            mirror_export: false,
        }))
}

fn save_settings(state: &AppState, s: &Settings) -> Result<(), IpcError> {
    let v = serde_json::to_value(s).map_err(IpcError::internal)?;
    Ok(state.store.set_setting(KEY, &v)?)
}

#[tauri::command(rename_all = "snake_case")]
pub fn get_settings(state: State<'_, AppState>) -> Result<Settings, IpcError> {
    load_settings(&state)
}

/// The language and the preview balance; the output folder only as it is.
#[tauri::command(rename_all = "snake_case")]
pub fn set_settings(
    state: State<'_, AppState>,
    settings: SettingsChange,
) -> Result<Settings, IpcError> {
    let mut s = load_settings(&state)?;
    if settings.out_dir.as_ref().is_some_and(|d| *d != s.out_dir) {
        return Err(IpcError::invalid_argument(
            "the output folder can only be changed with Choose folder",
        ));
    }
    if let Some(l) = &settings.language {
        if !LANGUAGES.contains(&l.as_str()) {
            return Err(IpcError::invalid_argument(format!(
                "language is {l:?}; it must be \"en\" or \"zh\""
            )));
        }
    }
    s.balance = settings.balance.within("balance", -1.0, 1.0)?;
    s.language = settings.language;
    s.mirror = switch("mirror", settings.mirror, s.mirror)?;
    s.mirror_export = switch("mirror_export", settings.mirror_export, s.mirror_export)?;
    save_settings(&state, &s)?;
    Ok(s)
}

/// An on/off setting as the page sent it: `true`/`false`, or absent (`kept`).
fn switch(name: &str, sent: Option<serde_json::Value>, kept: bool) -> Result<bool, IpcError> {
    match sent {
        None => Ok(kept),
        Some(serde_json::Value::Bool(on)) => Ok(on),
        Some(v) => Err(IpcError::invalid_argument(format!(
            "{name} is {v}; it must be true or false"
        ))),
    }
}

/// The native folder dialog: the one way the output folder changes. The
/// folder is kept canonical (symlinks resolved) on the Rust side.
#[tauri::command(rename_all = "snake_case")]
pub async fn pick_folder(state: State<'_, AppState>) -> Result<Option<String>, IpcError> {
    let current = load_settings(&state)?.out_dir;
    let picked = rfd::AsyncFileDialog::new()
        .set_title("Export to folder")
        .set_directory(&current)
        .pick_folder()
        .await;
    let Some(dir) = picked else { return Ok(None) };
    keep_out_dir(&state, dir.path()).map(Some)
}

/// Keeps the folder the user picked in the native dialog as the output
/// folder, canonical; answers it as the page shows it.
pub fn keep_out_dir(state: &AppState, dir: &Path) -> Result<String, IpcError> {
    let dir = dir
        .canonicalize()
        .ok()
        .filter(|d| d.is_dir())
        .ok_or_else(|| {
            IpcError::new(
                beatsync_engine::ErrorCode::OutputDir,
                format!(
                    "the folder {} cannot be used; choose another folder",
                    dir.display()
                ),
            )
        })?;
    let mut s = load_settings(state)?;
    s.out_dir = dir.to_string_lossy().into_owned();
    state
        .store
        .set_setting(EXACT_OUT_DIR_KEY, &os_path::json_value(&dir))?;
    save_settings(state, &s)?;
    Ok(s.out_dir)
}

/// The output folder itself: the exact folder kept with the settings' one
/// (the same folder when its name shown is the one shown), else the
/// settings' text (kept by an older version, or the default folder).
pub fn out_dir_path(state: &AppState, s: &Settings) -> Result<PathBuf, IpcError> {
    let exact = state
        .store
        .setting(EXACT_OUT_DIR_KEY)?
        .and_then(os_path::from_json_value)
        .filter(|d| d.to_string_lossy() == s.out_dir);
    Ok(exact.unwrap_or_else(|| PathBuf::from(&s.out_dir)))
}

//! The user's settings (output folder, language, preview balance), kept in
//! the job store.

use crate::error::IpcError;
use crate::state::AppState;
use crate::view::Settings;
use std::path::Path;
use tauri::State;

/// The store's key for the settings.
const KEY: &str = "settings";

fn default_out_dir() -> String {
    directories::UserDirs::new()
        .and_then(|u| {
            u.video_dir()
                .map(Path::to_path_buf)
                .or_else(|| Some(u.home_dir().to_path_buf()))
        })
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
        }))
}

fn save_settings(state: &AppState, s: &Settings) -> Result<(), IpcError> {
    let v = serde_json::to_value(s).map_err(IpcError::internal)?;
    Ok(state.store.set_setting(KEY, &v)?)
}

/// Remembers the folder the user exported to last.
pub fn remember_out_dir(state: &AppState, dir: &str) -> Result<(), IpcError> {
    let mut s = load_settings(state)?;
    s.out_dir = dir.to_string();
    save_settings(state, &s)
}

#[tauri::command(rename_all = "snake_case")]
pub fn get_settings(state: State<'_, AppState>) -> Result<Settings, IpcError> {
    load_settings(&state)
}

#[tauri::command(rename_all = "snake_case")]
pub fn set_settings(state: State<'_, AppState>, settings: Settings) -> Result<Settings, IpcError> {
    if !(-1.0..=1.0).contains(&settings.balance) {
        return Err(IpcError::invalid_argument(
            "balance must be between -1 and 1",
        ));
    }
    save_settings(&state, &settings)?;
    Ok(settings)
}

/// The native folder dialog; the folder chosen is remembered.
#[tauri::command(rename_all = "snake_case")]
pub async fn pick_folder(state: State<'_, AppState>) -> Result<Option<String>, IpcError> {
    let current = load_settings(&state)?.out_dir;
    let picked = rfd::AsyncFileDialog::new()
        .set_title("Export to folder")
        .set_directory(&current)
        .pick_folder()
        .await;
    let Some(dir) = picked else { return Ok(None) };
    let dir = dir.path().to_string_lossy().into_owned();
    remember_out_dir(&state, &dir)?;
    Ok(Some(dir))
}

//! The exported files: opened or shown in the file manager. Only files
//! BeatSync wrote may be opened from the page.

use super::non_empty;
use crate::error::IpcError;
use crate::state::AppState;
use beatsync_engine::jobs::JobState;
use beatsync_engine::ErrorCode;
use std::path::{Path, PathBuf};
use tauri::State;

/// Only files BeatSync wrote may be opened or revealed from the UI.
fn exported_file(state: &AppState, path: &str) -> Result<PathBuf, IpcError> {
    let p = non_empty(path)?;
    let known = state
        .store
        .list(&[JobState::Done], 10_000)?
        .iter()
        .any(|j| j.output_path.as_deref() == Some(p.as_path()));
    if !known {
        return Err(IpcError::invalid_argument(
            "only files exported by BeatSync can be opened from here",
        ));
    }
    if !p.exists() {
        return Err(IpcError::new(
            ErrorCode::NotFound,
            format!(
                "{} is no longer there; was it moved or deleted?",
                p.display()
            ),
        ));
    }
    Ok(p)
}

/// Hands an exported file to the system (`act`); on failure the message
/// reads "could not {verb} {path}{place}".
fn hand_over(
    state: &AppState,
    path: &str,
    act: impl FnOnce(&Path) -> Result<(), opener::OpenError>,
    (verb, place): (&str, &str),
) -> Result<(), IpcError> {
    let p = exported_file(state, path)?;
    act(&p).map_err(|e| {
        IpcError::new(
            ErrorCode::OpenFailed,
            format!("could not {verb} {}{place}: {e}", p.display()),
        )
    })
}

#[tauri::command(rename_all = "snake_case")]
pub fn open_path(state: State<'_, AppState>, path: String) -> Result<(), IpcError> {
    hand_over(&state, &path, |p| opener::open(p), ("open", ""))
}

/// Shows the file in the file manager.
#[tauri::command(rename_all = "snake_case")]
pub fn reveal_path(state: State<'_, AppState>, path: String) -> Result<(), IpcError> {
    hand_over(
        &state,
        &path,
        |p| opener::reveal(p),
        ("show", " in the file manager"),
    )
}

//! The exported files: opened or shown in the file manager. The page names
//! a job (its id); only the file that job wrote, once done, is handed over.

use crate::error::IpcError;
use crate::state::AppState;
use beatsync_engine::jobs::JobState;
use beatsync_engine::ErrorCode;
use std::path::{Path, PathBuf};
use tauri::State;

/// The file a finished job wrote.
fn exported_file(state: &AppState, id: &str) -> Result<PathBuf, IpcError> {
    let job = state.store.get(id)?;
    let p = match (job.state, job.output_path) {
        (JobState::Done, Some(p)) => p,
        (s, _) => {
            return Err(IpcError::new(
                ErrorCode::InvalidState,
                format!("job {id} is {s}; only an exported file can be opened"),
            ))
        }
    };
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

/// Hands a job's exported file to the system (`act`); on failure the
/// message reads "could not {verb} {path}{place}".
fn hand_over(
    state: &AppState,
    id: &str,
    act: impl FnOnce(&Path) -> Result<(), opener::OpenError>,
    (verb, place): (&str, &str),
) -> Result<(), IpcError> {
    let p = exported_file(state, id)?;
    act(&p).map_err(|e| {
        IpcError::new(
            ErrorCode::OpenFailed,
            format!("could not {verb} {}{place}: {e}", p.display()),
        )
    })
}

/// Opens a finished job's exported file (`id`: the job's id).
#[tauri::command(rename_all = "snake_case")]
pub fn open_path(state: State<'_, AppState>, id: String) -> Result<(), IpcError> {
    hand_over(&state, &id, |p| opener::open(p), ("open", ""))
}

/// Shows a finished job's exported file in the file manager.
#[tauri::command(rename_all = "snake_case")]
pub fn reveal_path(state: State<'_, AppState>, id: String) -> Result<(), IpcError> {
    hand_over(
        &state,
        &id,
        |p| opener::reveal(p),
        ("show", " in the file manager"),
    )
}

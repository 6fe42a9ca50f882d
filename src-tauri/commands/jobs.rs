//! Jobs: analysing a class video against the song, the user's placement and
//! trim, exporting (one, or a batch), cancel, retry, the list and the
//! history. Every change goes through the store, which announces it. Files
//! are named by id; the output folder is the one kept in the settings
//! (picked with `pick_folder`), never one the page names.

use super::settings::{load_settings, out_dir_path};
use super::{blocking, Number};
use crate::error::IpcError;
use crate::state::AppState;
use crate::view::JobView;
use beatsync_engine::jobs::{validate, Job, JobInput, JobOptions, NewJob};
use beatsync_engine::media::fingerprint::fingerprint;
use beatsync_engine::ErrorCode;
use beatsync_engine::{self as engine, Role};
use std::path::PathBuf;
use tauri::State;

/// The longest offset or trim time the page may set (a day, in seconds).
const MAX_TIME_S: f64 = 86_400.0;

fn view(state: &AppState, job: Job) -> JobView {
    JobView::new(job, &state.files)
}

/// A job input: the file checked for its role, with its fingerprint.
fn job_input(path: PathBuf, role: Role) -> Result<JobInput, IpcError> {
    engine::probe(&path)?.check_role(role)?;
    Ok(JobInput {
        fingerprint: fingerprint(&path)?,
        path,
    })
}

async fn new_job(
    state: &AppState,
    recording: PathBuf,
    song: PathBuf,
    options: JobOptions,
) -> Result<JobView, IpcError> {
    validate::check_options(&options)?;
    let store = state.store.clone();
    let job = blocking(move || {
        Ok(store.add(NewJob {
            recording: job_input(recording, Role::Class)?,
            song: job_input(song, Role::Song)?,
            options,
            max_attempts: 3,
        })?)
    })
    .await?;
    state.wake();
    Ok(view(state, job))
}

/// The output folder kept in the settings, if it is still a folder.
fn out_dir(state: &AppState) -> Result<PathBuf, IpcError> {
    let dir = out_dir_path(state, &load_settings(state)?)?;
    if dir.as_os_str().is_empty() || !dir.is_dir() {
        return Err(IpcError::new(
            ErrorCode::OutputDir,
            format!(
                "the output folder {} is not there; choose a folder to export to",
                dir.display()
            ),
        ));
    }
    Ok(dir)
}

/// The user listened to an unsure placement and says it is the right song:
/// the job may be exported (a batch's job waiting for this goes on if its
/// export was asked for).
#[tauri::command(rename_all = "snake_case")]
pub fn confirm_song(state: State<'_, AppState>, id: String) -> Result<JobView, IpcError> {
    let job = state.store.confirm_song(&id)?;
    state.wake();
    Ok(view(&state, job))
}

/// Starts analysing a class video against the song (file ids); the job waits at `analyzed`.
/// The arguments keep the names the page sends (`dance`, `bgm`): the IPC contract.
#[tauri::command(rename_all = "snake_case")]
pub async fn analyze(
    state: State<'_, AppState>,
    dance: String,
    bgm: String,
) -> Result<JobView, IpcError> {
    let (recording, song) = (state.files.resolve(&dance)?, state.files.resolve(&bgm)?);
    let options = JobOptions {
        out_dir: Some(out_dir_path(&state, &load_settings(&state)?)?),
        auto_export: false,
        ..Default::default()
    };
    new_job(&state, recording, song, options).await
}

/// The user's nudge, or an alternative chosen.
#[tauri::command(rename_all = "snake_case")]
pub fn set_placement(
    state: State<'_, AppState>,
    id: String,
    offset_s: Number,
    rate: Number,
) -> Result<JobView, IpcError> {
    let offset_s = offset_s.within("offset_s", -MAX_TIME_S, MAX_TIME_S)?;
    let rate = rate.within("rate", 0.5, 2.0)?;
    let job = state.store.update_options(&id, |o| {
        o.offset_s = Some(offset_s);
        o.rate = Some(rate);
    })?;
    Ok(view(&state, job))
}

/// The user's trim, in recording time.
#[tauri::command(rename_all = "snake_case")]
pub fn set_trim(
    state: State<'_, AppState>,
    id: String,
    start_s: Number,
    end_s: Number,
) -> Result<JobView, IpcError> {
    let start_s = start_s.within("start_s", 0.0, MAX_TIME_S)?;
    let end_s = end_s.within("end_s", 0.0, MAX_TIME_S)?;
    validate::check_options(&JobOptions {
        trim_start_s: Some(start_s),
        trim_end_s: Some(end_s),
        ..Default::default()
    })?;
    let job = state.store.update_options(&id, |o| {
        o.trim_start_s = Some(start_s);
        o.trim_end_s = Some(end_s);
    })?;
    Ok(view(&state, job))
}

/// The user's go: export these analysed (or still analysing) jobs to the
/// output folder the user picked.
#[tauri::command(rename_all = "snake_case")]
pub fn export(state: State<'_, AppState>, ids: Vec<String>) -> Result<Vec<JobView>, IpcError> {
    let dir = out_dir(&state)?;
    let mut out = Vec::new();
    for id in ids {
        let mut options = state.store.get(&id)?.options;
        options.out_dir = Some(dir.clone());
        options.mirror = load_settings(&state)?.mirror_export;
        validate::check_options(&options)?;
        let job = state.store.request_export(&id, &options)?;
        out.push(view(&state, job));
    }
    state.wake();
    Ok(out)
}

/// Batch: every class video (ids) against the same song (id), analysed and
/// exported to the output folder the user picked (IPC argument names as in
/// [`analyze`]).
#[tauri::command(rename_all = "snake_case")]
pub async fn export_all(
    state: State<'_, AppState>,
    dances: Vec<String>,
    bgm: String,
) -> Result<Vec<JobView>, IpcError> {
    let dir = out_dir(&state)?;
    let song = state.files.resolve(&bgm)?;
    // Every id is checked before any job is made.
    let recordings = dances
        .iter()
        .map(|d| state.files.resolve(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for recording in recordings {
        let options = JobOptions {
            out_dir: Some(dir.clone()),
            auto_export: true,
            mirror: load_settings(&state)?.mirror_export,
            ..Default::default()
        };
        out.push(new_job(&state, recording, song.clone(), options).await?);
    }
    Ok(out)
}

#[tauri::command(rename_all = "snake_case")]
pub fn cancel_job(state: State<'_, AppState>, id: String) -> Result<JobView, IpcError> {
    let job = match state.runner() {
        Some(r) => r.cancel(&id)?,
        None => state.store.cancel(&id)?,
    };
    Ok(view(&state, job))
}

#[tauri::command(rename_all = "snake_case")]
pub fn retry_job(state: State<'_, AppState>, id: String) -> Result<JobView, IpcError> {
    let job = state.store.retry(&id)?;
    state.wake();
    Ok(view(&state, job))
}

/// Every job, newest first: the UI's state at start-up.
#[tauri::command(rename_all = "snake_case")]
pub fn list_jobs(state: State<'_, AppState>) -> Result<Vec<JobView>, IpcError> {
    Ok(state
        .store
        .list(&[], 1000)?
        .into_iter()
        .map(|j| view(&state, j))
        .collect())
}

#[tauri::command(rename_all = "snake_case")]
pub fn clear_history(state: State<'_, AppState>) -> Result<usize, IpcError> {
    Ok(state.store.clear_history(None)?)
}

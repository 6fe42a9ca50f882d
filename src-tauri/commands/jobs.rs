//! Jobs: analysing a class video against the song, the user's placement and
//! trim, exporting (one, or a batch), cancel, retry, the list and the
//! history. Every change goes through the store, which announces it.

use super::settings::{load_settings, remember_out_dir};
use super::{blocking, non_empty};
use crate::error::IpcError;
use crate::state::AppState;
use crate::view::JobView;
use beatsync_engine::jobs::{JobInput, JobOptions, NewJob};
use beatsync_engine::media::fingerprint::fingerprint;
use beatsync_engine::ErrorCode;
use beatsync_engine::{self as engine, Role};
use std::path::PathBuf;
use tauri::State;

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
    dance: PathBuf,
    bgm: PathBuf,
    options: JobOptions,
) -> Result<JobView, IpcError> {
    let store = state.store.clone();
    let job = blocking(move || {
        let dance = job_input(dance, Role::Class)?;
        let bgm = job_input(bgm, Role::Song)?;
        Ok(store.add(NewJob {
            dance,
            bgm,
            options,
            max_attempts: 3,
        })?)
    })
    .await?;
    state.wake();
    Ok(job.into())
}

/// Starts analysing a class video against the song; the job waits at `analyzed`.
#[tauri::command(rename_all = "snake_case")]
pub async fn analyze(
    state: State<'_, AppState>,
    dance: String,
    bgm: String,
) -> Result<JobView, IpcError> {
    let out_dir = load_settings(&state)?.out_dir;
    let options = JobOptions {
        out_dir: Some(PathBuf::from(out_dir)),
        auto_export: false,
        ..Default::default()
    };
    new_job(&state, non_empty(&dance)?, non_empty(&bgm)?, options).await
}

/// The user's nudge, or an alternative chosen.
#[tauri::command(rename_all = "snake_case")]
pub fn set_placement(
    state: State<'_, AppState>,
    id: String,
    offset_s: f64,
    rate: f64,
) -> Result<JobView, IpcError> {
    if !offset_s.is_finite() || !(0.5..=2.0).contains(&rate) {
        return Err(IpcError::invalid_argument(
            "the offset must be a number and the rate between 0.5 and 2",
        ));
    }
    Ok(state
        .store
        .update_options(&id, |o| {
            o.offset_s = Some(offset_s);
            o.rate = Some(rate);
        })?
        .into())
}

#[tauri::command(rename_all = "snake_case")]
pub fn set_trim(
    state: State<'_, AppState>,
    id: String,
    start_s: f64,
    end_s: f64,
) -> Result<JobView, IpcError> {
    if !(start_s.is_finite() && end_s.is_finite() && start_s >= 0.0 && end_s > start_s) {
        return Err(IpcError::invalid_argument(
            "the trim end must come after its start",
        ));
    }
    Ok(state
        .store
        .update_options(&id, |o| {
            o.trim_start_s = Some(start_s);
            o.trim_end_s = Some(end_s);
        })?
        .into())
}

fn check_out_dir(out_dir: &str) -> Result<PathBuf, IpcError> {
    let dir = non_empty(out_dir)?;
    if !dir.is_dir() {
        return Err(IpcError::new(
            ErrorCode::OutputDir,
            format!(
                "the folder {} does not exist; choose another folder",
                dir.display()
            ),
        ));
    }
    Ok(dir)
}

/// The user's go: export these analysed (or still analysing) jobs to `out_dir`.
#[tauri::command(rename_all = "snake_case")]
pub fn export(
    state: State<'_, AppState>,
    ids: Vec<String>,
    out_dir: String,
) -> Result<Vec<JobView>, IpcError> {
    let dir = check_out_dir(&out_dir)?;
    remember_out_dir(&state, &out_dir)?;
    let mut out = Vec::new();
    for id in ids {
        let mut options = state.store.get(&id)?.options;
        options.out_dir = Some(dir.clone());
        out.push(state.store.request_export(&id, &options)?.into());
    }
    state.wake();
    Ok(out)
}

/// Batch: every class video against the same song, analysed and exported.
#[tauri::command(rename_all = "snake_case")]
pub async fn export_all(
    state: State<'_, AppState>,
    dances: Vec<String>,
    bgm: String,
    out_dir: String,
) -> Result<Vec<JobView>, IpcError> {
    let dir = check_out_dir(&out_dir)?;
    let bgm = non_empty(&bgm)?;
    let mut out = Vec::new();
    for d in dances {
        let options = JobOptions {
            out_dir: Some(dir.clone()),
            auto_export: true,
            ..Default::default()
        };
        out.push(new_job(&state, non_empty(&d)?, bgm.clone(), options).await?);
    }
    Ok(out)
}

#[tauri::command(rename_all = "snake_case")]
pub fn cancel_job(state: State<'_, AppState>, id: String) -> Result<JobView, IpcError> {
    let job = match state.runner() {
        Some(r) => r.cancel(&id)?,
        None => state.store.cancel(&id)?,
    };
    Ok(job.into())
}

#[tauri::command(rename_all = "snake_case")]
pub fn retry_job(state: State<'_, AppState>, id: String) -> Result<JobView, IpcError> {
    let job = state.store.retry(&id)?;
    state.wake();
    Ok(job.into())
}

/// Every job, newest first: the UI's state at start-up.
#[tauri::command(rename_all = "snake_case")]
pub fn list_jobs(state: State<'_, AppState>) -> Result<Vec<JobView>, IpcError> {
    Ok(state
        .store
        .list(&[], 1000)?
        .into_iter()
        .map(JobView::from)
        .collect())
}

#[tauri::command(rename_all = "snake_case")]
pub fn clear_history(state: State<'_, AppState>) -> Result<usize, IpcError> {
    Ok(state.store.clear_history(None)?)
}

//! Tauri commands (docs/ipc.md): each validates its input, does media work
//! on a blocking thread (never the async runtime's workers), changes jobs
//! only through the store, and maps errors to `{code, message}`. Arguments
//! are snake_case on the wire, as docs/ipc.md says.

use crate::error::IpcError;
use crate::files::add_paths;
use crate::preview::PlayRequest;
use crate::state::AppState;
use crate::view::{AddedFile, JobView, Settings};
use beatsync_engine::jobs::fingerprint::fingerprint;
use beatsync_engine::jobs::{JobInput, JobOptions, JobState, JobsError, NewJob};
use beatsync_engine::waveform::Waveform;
use beatsync_engine::{self as engine, CancelToken, MediaInfo};
use std::path::{Path, PathBuf};
use tauri::{AppHandle, Runtime, State};

impl From<JobsError> for IpcError {
    fn from(e: JobsError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

/// Runs media work on the blocking pool, never on the async runtime's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, IpcError> + Send + 'static,
) -> Result<T, IpcError> {
    tauri::async_runtime::spawn_blocking(f).await?
}

fn non_empty(path: &str) -> Result<PathBuf, IpcError> {
    if path.trim().is_empty() {
        return Err(IpcError::new("invalid_argument", "no file path given"));
    }
    Ok(PathBuf::from(path))
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
    let mut s = load_settings(&state)?;
    s.out_dir = dir.clone();
    save_settings(&state, &s)?;
    Ok(Some(dir))
}

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
    let stored = state.store.setting("settings")?;
    Ok(stored
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or(Settings {
            out_dir: default_out_dir(),
            language: None,
            balance: 0.0,
        }))
}

fn save_settings(state: &AppState, s: &Settings) -> Result<(), IpcError> {
    let v = serde_json::to_value(s).map_err(|e| IpcError::new("internal", e.to_string()))?;
    Ok(state.store.set_setting("settings", &v)?)
}

#[tauri::command(rename_all = "snake_case")]
pub fn get_settings(state: State<'_, AppState>) -> Result<Settings, IpcError> {
    load_settings(&state)
}

#[tauri::command(rename_all = "snake_case")]
pub fn set_settings(state: State<'_, AppState>, settings: Settings) -> Result<Settings, IpcError> {
    if !(-1.0..=1.0).contains(&settings.balance) {
        return Err(IpcError::new(
            "invalid_argument",
            "balance must be between -1 and 1",
        ));
    }
    save_settings(&state, &settings)?;
    Ok(settings)
}

/// Waveform peaks computed in Rust (the UI never decodes media).
#[tauri::command(rename_all = "snake_case")]
pub async fn waveform(path: String, peaks_per_s: f64) -> Result<Waveform, IpcError> {
    let path = non_empty(&path)?;
    if !peaks_per_s.is_finite() || peaks_per_s <= 0.0 {
        return Err(IpcError::new(
            "invalid_argument",
            "peaks_per_s must be a positive number",
        ));
    }
    blocking(move || {
        Ok(engine::waveform::waveform(
            &path,
            peaks_per_s,
            &CancelToken::new(),
        )?)
    })
    .await
}

async fn new_job(
    state: &AppState,
    dance: PathBuf,
    bgm: PathBuf,
    options: JobOptions,
) -> Result<JobView, IpcError> {
    let store = state.store.clone();
    let job = blocking(move || {
        engine::probe(&dance)?.check_role(engine::Role::Class)?;
        engine::probe(&bgm)?.check_role(engine::Role::Song)?;
        let dance = JobInput {
            fingerprint: fingerprint(&dance)?,
            path: dance,
        };
        let bgm = JobInput {
            fingerprint: fingerprint(&bgm)?,
            path: bgm,
        };
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
        return Err(IpcError::new(
            "invalid_argument",
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
        return Err(IpcError::new(
            "invalid_argument",
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
            "output_dir",
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
    let mut s = load_settings(&state)?;
    s.out_dir = out_dir;
    save_settings(&state, &s)?;
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

/// Only files BeatSync wrote may be opened or revealed from the UI.
fn exported_file(state: &AppState, path: &str) -> Result<PathBuf, IpcError> {
    let p = non_empty(path)?;
    let known = state
        .store
        .list(&[JobState::Done], 10_000)?
        .iter()
        .any(|j| j.output_path.as_deref() == Some(p.as_path()));
    if !known {
        return Err(IpcError::new(
            "invalid_argument",
            "only files exported by BeatSync can be opened from here",
        ));
    }
    if !p.exists() {
        return Err(IpcError::new(
            "not_found",
            format!(
                "{} is no longer there; was it moved or deleted?",
                p.display()
            ),
        ));
    }
    Ok(p)
}

#[tauri::command(rename_all = "snake_case")]
pub fn open_path(state: State<'_, AppState>, path: String) -> Result<(), IpcError> {
    let p = exported_file(&state, &path)?;
    opener::open(&p).map_err(|e| {
        IpcError::new(
            "open_failed",
            format!("could not open {}: {e}", p.display()),
        )
    })
}

#[tauri::command(rename_all = "snake_case")]
pub fn reveal_path(state: State<'_, AppState>, path: String) -> Result<(), IpcError> {
    let p = exported_file(&state, &path)?;
    opener::reveal(&p).map_err(|e| {
        IpcError::new(
            "open_failed",
            format!("could not show {} in the file manager: {e}", p.display()),
        )
    })
}

/// Plays the recording and the aligned song together from `from_s`.
#[tauri::command(rename_all = "snake_case")]
pub async fn preview_play<R: Runtime>(
    app: AppHandle<R>,
    id: String,
    from_s: f64,
    balance: f64,
) -> Result<(), IpcError> {
    use tauri::Manager;
    let state = app.state::<AppState>();
    let job = state.store.get(&id)?;
    let analysis: Option<engine::AlignResult> = job
        .checkpoint
        .as_ref()
        .and_then(|c| serde_json::from_value(c.clone()).ok());
    let Some(a) = analysis else {
        return Err(IpcError::new(
            "invalid_state",
            "the job is not analysed yet; wait for the analysis to finish",
        ));
    };
    let mid = 0.5 * (a.overlap.dance_start_s + a.overlap.dance_end_s);
    let placement = engine::trim::Placement {
        offset_s: job.options.offset_s.unwrap_or(a.offset_s),
        rate: job.options.rate.unwrap_or(a.rate),
        ref_dance_s: Some(mid),
    };
    let handle = app.clone();
    blocking(move || {
        let state = handle.state::<AppState>();
        let recording = state.preview.pcm(&job.dance.path)?;
        let song = state.preview.pcm(&job.bgm.path)?;
        state.preview.play(PlayRequest {
            recording,
            song,
            placement,
            from_s: from_s.max(0.0),
            balance,
        })
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
pub fn preview_stop(state: State<'_, AppState>) -> Result<(), IpcError> {
    state.preview.stop();
    Ok(())
}

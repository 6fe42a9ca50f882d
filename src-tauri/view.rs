//! The shapes the UI receives (docs/ipc.md), built from engine types.

use beatsync_engine::jobs::{Job, JobOptions, JobState, Stage};
use beatsync_engine::{AlignResult, ErrorPayload, MediaInfo, Role};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: String,
    /// The job's revision: of two views of a job the higher `rev` is the
    /// newer; the UI ignores a view older than the one it has.
    pub rev: u64,
    pub dance_path: PathBuf,
    pub bgm_path: PathBuf,
    pub state: JobState,
    pub stage: Option<Stage>,
    pub progress: f64,
    pub eta_s: Option<f64>,
    pub attempts: u32,
    pub max_attempts: u32,
    pub interruptions: u32,
    pub error: Option<ErrorPayload>,
    /// The alignment, once analysed.
    pub analysis: Option<AlignResult>,
    /// The export report, once done.
    pub report: Option<serde_json::Value>,
    pub options: JobOptions,
    pub output_path: Option<PathBuf>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl From<Job> for JobView {
    fn from(j: Job) -> Self {
        Self {
            id: j.id,
            rev: j.rev,
            dance_path: j.dance.path,
            bgm_path: j.bgm.path,
            state: j.state,
            stage: j.stage,
            progress: j.progress,
            eta_s: j.eta_s,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            interruptions: j.interruptions,
            error: j.error,
            analysis: j.checkpoint,
            report: j.report,
            options: j.options,
            output_path: j.output_path,
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
        }
    }
}

/// A file the user added: what it is, or why it cannot be used.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum AddedFile {
    Ok {
        path: PathBuf,
        ok: bool,
        info: MediaInfo,
        role: Role,
    },
    Err {
        path: PathBuf,
        ok: bool,
        error: ErrorPayload,
    },
}

impl AddedFile {
    pub fn accepted(path: PathBuf, info: MediaInfo, role: Role) -> Self {
        AddedFile::Ok {
            path,
            ok: true,
            info,
            role,
        }
    }
    pub fn rejected(path: PathBuf, error: ErrorPayload) -> Self {
        AddedFile::Err {
            path,
            ok: false,
            error,
        }
    }
}

/// User settings kept in the job store.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Settings {
    pub out_dir: String,
    pub language: Option<String>,
    pub balance: f64,
}

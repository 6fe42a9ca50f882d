//! What a job is: its inputs, options, state and history fields. Plain data,
//! serialised as-is to the UI (`Job`) and stored column by column.

use crate::error::ErrorPayload;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `queued → analyzing → analyzed → exporting → done | failed | cancelled`.
/// `analyzed` waits for the user's go unless the job has `export_requested`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Analyzing,
    Analyzed,
    Exporting,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Analyzing => "analyzing",
            JobState::Analyzed => "analyzed",
            JobState::Exporting => "exporting",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "analyzing" => JobState::Analyzing,
            "analyzed" => JobState::Analyzed,
            "exporting" => JobState::Exporting,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    /// Finished jobs are history: nothing more happens to them unless retried.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }

    /// Options may still change: the export has not started.
    pub fn is_before_export(self) -> bool {
        matches!(
            self,
            JobState::Queued | JobState::Analyzing | JobState::Analyzed
        )
    }

    /// A runner is working on the job right now.
    pub fn is_running(self) -> bool {
        matches!(self, JobState::Analyzing | JobState::Exporting)
    }
}

/// Identifies the exact file a job was queued with, so a file replaced or
/// edited in the meantime is noticed instead of producing a wrong result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// xxh3-64 of the first and last MiB, hex.
    pub head_tail_xxh3: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInput {
    pub path: PathBuf,
    pub fingerprint: Fingerprint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AudioMode {
    /// Re-encode the song (AAC 192 kbit/s), re-timed when the rate is not 1.
    #[default]
    Encode,
    /// Copy the song's AAC packets when possible.
    Copy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOptions {
    pub out_dir: Option<PathBuf>,
    pub name: Option<String>,
    #[serde(default)]
    pub lead_in_s: f64,
    #[serde(default)]
    pub audio_mode: AudioMode,
    /// The user's placement (nudged, or an alternative chosen); overrides the analysis.
    pub offset_s: Option<f64>,
    pub rate: Option<f64>,
    /// The user's trim in recording time, overriding the automatic one.
    pub trim_start_s: Option<f64>,
    pub trim_end_s: Option<f64>,
    /// Export as soon as the analysis is done (batch, CLI default).
    pub auto_export: bool,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            out_dir: None,
            name: None,
            lead_in_s: 0.0,
            audio_mode: AudioMode::Encode,
            offset_s: None,
            rate: None,
            trim_start_s: None,
            trim_end_s: None,
            auto_export: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub dance: JobInput,
    pub bgm: JobInput,
    pub options: JobOptions,
    pub state: JobState,
    /// What the job is doing inside its state (e.g. `decode`, `search`, `audio`).
    pub stage: Option<String>,
    /// 0..1 through the current state's work.
    pub progress: f64,
    pub eta_s: Option<f64>,
    /// Set when export was asked for (by the user, or `auto_export`).
    pub export_requested: bool,
    pub attempts: u32,
    pub max_attempts: u32,
    /// Unix ms before which a retried job is not picked up (backoff).
    pub next_run_at: Option<i64>,
    /// The analysis result (the engine's `AlignResult` as JSON): not redone after a crash.
    pub checkpoint: Option<serde_json::Value>,
    /// The export report (JSON) once done.
    pub report: Option<serde_json::Value>,
    pub output_path: Option<PathBuf>,
    pub error: Option<ErrorPayload>,
    /// How many times a run was interrupted by the app or machine stopping.
    pub interruptions: u32,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub runner_id: Option<String>,
    pub heartbeat_at: Option<i64>,
}

/// What the store tells its subscribers (the app forwards these as events).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoreEvent {
    JobChanged(Box<Job>),
    JobRemoved { id: String },
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

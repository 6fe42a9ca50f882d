//! The durable job system: a SQLite store that is the single source of truth
//! for every job, and a runner that does the work in the background with
//! progress, retry, stall detection, cancellation and resume after a crash.

pub mod model;
pub mod os_path;
pub mod retry;
pub mod runner;
pub mod store;
pub mod validate;
pub mod work;

pub use model::{
    AudioMode, Fingerprint, Job, JobInput, JobOptions, JobState, OutputSeal, Stage, StoreEvent,
};
pub use runner::{Runner, RunnerConfig};
pub use store::WorkKind;
pub use store::{Interruption, NewJob, Recovery, Retention, Store, UnreadableRow};
pub use work::{EngineWork, ExportOutcome, Work};

use crate::error::{EngineError, ErrorCode, ErrorPayload};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("another BeatSync is already processing jobs from {0} (the app or `beatsync jobs run`); close it first, or let it finish")]
    Locked(PathBuf),
    #[error("{}", db_message(.0))]
    Db(#[from] rusqlite::Error),
    #[error("no job with id {0}")]
    NotFound(String),
    #[error("job {id} is {state}; it cannot be {action}")]
    InvalidState {
        id: String,
        state: &'static str,
        action: &'static str,
    },
    #[error("job store at {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl JobsError {
    /// A store error that may pass if tried again: the database busy or
    /// locked by another process, the disk full, an I/O error.
    pub fn is_retryable(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            JobsError::Db(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    C::DatabaseBusy
                        | C::DatabaseLocked
                        | C::DiskFull
                        | C::SystemIoFailure
                        | C::CannotOpen
                        | C::OutOfMemory
                )
            ),
            JobsError::Io { .. } => true,
            _ => false,
        }
    }

    pub fn error_code(&self) -> ErrorCode {
        match self {
            JobsError::Locked(_) => ErrorCode::StoreLocked,
            JobsError::Db(_) => ErrorCode::Store,
            JobsError::NotFound(_) => ErrorCode::JobNotFound,
            JobsError::InvalidState { .. } => ErrorCode::InvalidState,
            JobsError::Io { .. } => ErrorCode::StoreIo,
            JobsError::Engine(e) => e.error_code(),
        }
    }

    /// The code's wire name (what the CLI prints).
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    pub fn to_payload(&self) -> ErrorPayload {
        match self {
            JobsError::Engine(e) => e.to_payload(),
            _ => ErrorPayload::new(self.error_code(), self.to_string()),
        }
    }
}

/// What a database error tells the user: a busy database says who may
/// hold it (another BeatSync, `beatsync jobs`) and that waiting helps.
fn db_message(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => format!(
            "the job database is busy: another program (another BeatSync, or `beatsync jobs`) is writing to it; try again in a moment ({e})"
        ),
        _ => format!("job database error: {e}"),
    }
}

pub type JobsResult<T> = std::result::Result<T, JobsError>;

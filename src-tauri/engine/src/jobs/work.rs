//! What a job does, behind a trait so the runner's state handling is tested
//! with scripted work, and the real engine plugs in the same way.

use super::model::Job;
use crate::cancel::CancelToken;
use crate::error::Result;
use std::path::PathBuf;

/// The result of a successful export.
#[derive(Debug, Clone)]
pub struct ExportOutcome {
    pub output: PathBuf,
    /// The engine's export report, kept with the job.
    pub report: serde_json::Value,
}

/// The two kinds of work a job needs. Both run on a blocking thread, report
/// `(stage, overall fraction 0..1)` through `progress`, and stop promptly with
/// `EngineError::Cancelled` once `cancel` is set.
pub trait Work: Send + Sync + 'static {
    /// Finds the placement; the returned JSON is the job's checkpoint.
    fn analyze(
        &self,
        job: &Job,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(&str, f64),
    ) -> Result<serde_json::Value>;
    /// Writes the output file (atomically: nothing under the final name unless complete).
    fn export(
        &self,
        job: &Job,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(&str, f64),
    ) -> Result<ExportOutcome>;
}

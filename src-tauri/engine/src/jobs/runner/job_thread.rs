//! A job's own thread: checks the inputs, runs the analysis or the export,
//! reports progress for the watchdog and the store (throttled), and seals an
//! export's file before its rename. It never holds the runner itself, so a
//! thread left behind (abandoned) does not keep the store's runner lock.

use super::eta;
use crate::cancel::CancelToken;
use crate::error::EngineError;
use crate::jobs::model::{Job, OutputSeal, Stage};
use crate::jobs::os_path;
use crate::jobs::retry::store_backoff;
use crate::jobs::store::{Store, WorkKind};
use crate::jobs::work::Work;
use crate::jobs::{JobsError, JobsResult};
use crate::media::fingerprint::{check_unchanged, fingerprint};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tries of a store call made from a job's thread before the run fails
/// (about a minute with [`store_backoff`]).
pub(super) const STORE_TRIES_IN_WORK: u32 = 36;

/// Runs a store call, trying again with backoff while it fails with an
/// error that may pass (busy, full, I/O), `tries` times at most.
pub(super) fn with_store_retries<T>(
    tries: u32,
    mut op: impl FnMut() -> JobsResult<T>,
) -> JobsResult<T> {
    let mut failures = 0;
    loop {
        match op() {
            Err(e) if e.is_retryable() && failures + 1 < tries => {
                failures += 1;
                tracing::warn!("job store: {e}; trying again");
                std::thread::sleep(store_backoff(failures));
            }
            r => return r,
        }
    }
}

pub(super) type Outcome = Result<Done, EngineError>;

pub(super) enum Done {
    Analysis(crate::align::AlignResult),
    Export(PathBuf, serde_json::Value),
}

/// Per-job progress bookkeeping shared by the work thread and the watchdog.
pub(super) struct Pulse {
    pub(super) last_change: Instant,
    pub(super) last_write: Option<Instant>,
    pub(super) stage: Option<Stage>,
    pub(super) fraction: f64,
    pub(super) started: Instant,
}

/// What a job's thread holds: never the runner itself, so that a thread
/// left behind (abandoned) does not keep the store's runner lock.
pub(super) struct JobContext<W: Work> {
    pub(super) store: Arc<Store>,
    pub(super) work: Arc<W>,
    pub(super) progress_interval: Duration,
    pub(super) pulse: Arc<Mutex<Pulse>>,
    /// Set when the runner abandoned this run: it writes nothing more.
    pub(super) abandoned: Arc<AtomicBool>,
    /// The runner is stopping: the job's "stopping" stage stays as set.
    pub(super) stopping: Arc<AtomicBool>,
}

impl<W: Work> JobContext<W> {
    /// Runs on the job's thread: checks the inputs, then analyses or exports.
    pub(super) fn do_work(&self, job: &Job, kind: WorkKind, token: &CancelToken) -> Outcome {
        check_unchanged(&job.recording.path, &job.recording.fingerprint)?;
        check_unchanged(&job.song.path, &job.song.fingerprint)?;
        let mut report = |stage: Stage, fraction: f64| self.report(job, token, stage, fraction);
        match kind {
            WorkKind::Analysis => self
                .work
                .analyze(job, token, &mut report)
                .map(Done::Analysis),
            WorkKind::Export => self.export(job, token, &mut report),
        }
    }

    /// Notes progress for the watchdog; writes it to the store (throttled)
    /// unless the run was abandoned or the runner is stopping.
    fn report(&self, job: &Job, token: &CancelToken, stage: Stage, fraction: f64) {
        let now = Instant::now();
        let write = {
            let Ok(mut p) = self.pulse.lock() else { return };
            let stage_changed = p.stage != Some(stage);
            if stage_changed || (fraction - p.fraction).abs() > 1e-9 {
                p.last_change = now;
            }
            p.stage = Some(stage);
            p.fraction = fraction;
            let due = stage_changed
                || p.last_write
                    .is_none_or(|t| now.duration_since(t) >= self.progress_interval);
            if due {
                p.last_write = Some(now);
            }
            due.then(|| eta(p.started.elapsed(), fraction))
        };
        let quiet = self.abandoned.load(Ordering::SeqCst) || self.stopping.load(Ordering::SeqCst);
        let Some(eta_s) = write.filter(|_| !quiet) else {
            return;
        };
        match self.store.progress(&job.id, stage, fraction, eta_s) {
            // The job was cancelled in the store (maybe by another process).
            Ok(false) => token.cancel(),
            Ok(true) => {}
            Err(e) => tracing::warn!("job {}: progress not recorded: {e}", job.id),
        }
    }

    /// Adopts the file(s) an earlier run of this job wrote and sealed, or
    /// plans the output, exports, and seals the file(s) before the rename.
    fn export(
        &self,
        job: &Job,
        token: &CancelToken,
        report: &mut dyn FnMut(Stage, f64),
    ) -> Outcome {
        if let Some(done) = own_clips(job) {
            // A previous run renamed every clip: adopt them.
            if let Ok(mut r) = self.work.adopt(job, &done[0]) {
                r["outputs"] = done.iter().map(|p| os_path::json_value(p)).collect();
                return Ok(Done::Export(done[0].clone(), r));
            }
        } else if let Some(done) = own_output(job) {
            // A previous run got as far as the final rename: adopt it.
            if let Ok(r) = self.work.adopt(job, &done) {
                return Ok(Done::Export(done, r));
            }
        }
        let planned = self.work.plan_output(job)?;
        let job = with_store_retries(STORE_TRIES_IN_WORK, || {
            self.store.plan_output(&job.id, &planned)
        })
        .map_err(|e| store_failed(&planned, &e))?;
        // A split export calls this once per clip, all before the first
        // rename; the store keeps every seal so far.
        let mut seals: Vec<OutputSeal> = Vec::new();
        let mut seal = |partial: &Path| -> crate::Result<()> {
            if self.abandoned.load(Ordering::SeqCst) {
                return Err(EngineError::Cancelled);
            }
            seals.push(OutputSeal::of(&fingerprint(partial)?));
            with_store_retries(STORE_TRIES_IN_WORK, || {
                if seals.len() == 1 {
                    self.store.seal_output(&job.id, &seals[0])
                } else {
                    self.store.seal_outputs(&job.id, &seals)
                }
            })
            .map(|_| ())
            .map_err(|e| store_failed(partial, &e))
        };
        self.work
            .export(&job, token, report, &mut seal)
            .map(|o| Done::Export(o.output, o.report))
    }
}

fn store_failed(path: &Path, e: &JobsError) -> EngineError {
    EngineError::Media {
        path: path.to_path_buf(),
        reason: format!("job store: {e}"),
    }
}

/// The file an earlier run of this job wrote and sealed, when it is still
/// there: at the planned path, or under the numbered name the rename took
/// when that one was occupied. A file that does not match the seal (another
/// job's, or anything else) is never the job's.
fn own_output(job: &Job) -> Option<PathBuf> {
    let (planned, seal) = (job.output_path.as_ref()?, job.output_seal.as_ref()?);
    let dir = planned.parent()?;
    let name = planned.file_name()?.to_str()?;
    (1..=20)
        .map(|n| dir.join(crate::export::numbered(name, n)))
        .find(|p| seal.matches(p))
}

/// The clips an earlier split run of this job sealed, when every one is
/// in the output folder under a final name (any name: a taken one was
/// numbered). When only some are there (a run killed among the renames),
/// those are removed — they are this job's, the seal says so — and `None`
/// is returned: the export runs again and writes every clip once.
fn own_clips(job: &Job) -> Option<Vec<PathBuf>> {
    if job.output_seals.len() < 2 {
        return None;
    }
    let dir = job.output_path.as_ref()?.parent()?;
    let names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| {
            !e.file_name()
                .to_string_lossy()
                .starts_with(crate::export::PARTIAL_PREFIX)
        })
        .map(|e| e.path())
        .collect();
    let found: Vec<Option<PathBuf>> = job
        .output_seals
        .iter()
        .map(|seal| names.iter().find(|p| seal.matches(p)).cloned())
        .collect();
    if found.iter().all(Option::is_some) {
        return Some(found.into_iter().flatten().collect());
    }
    for path in found.into_iter().flatten() {
        tracing::info!("removing {} of an interrupted split export", path.display());
        let _ = std::fs::remove_file(path);
    }
    None
}

/// Lowers the calling thread's CPU priority (Linux: nice is per thread).
pub(super) fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on the calling thread (who = 0) with a valid value.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

//! The runner: takes jobs from the store and does their work in the
//! background, within concurrency limits, reporting progress (throttled, with
//! ETA) and a heartbeat, detecting stalls, retrying transient failures with
//! backoff, and handing interrupted work back to the queue on shutdown.
//!
//! The store can fail (busy with another process, disk full): every store
//! call is tried again with backoff, and the loop never ends on one. Work
//! that stalls is cancelled, and abandoned when it does not stop (a thread
//! stuck in a hung fsync or open): its slot is freed, the job failed as
//! `stalled`, and whatever the thread does later is ignored. After an
//! unclean stop, jobs that were running together resume one at a time.

mod job_thread;

use super::model::{Job, JobState, Stage};
use super::retry::{backoff, is_transient, store_backoff, DEFAULT_BACKOFF};
use super::store::{Interruption, Retention, RunnerLock, Store, WorkKind};
use super::work::Work;
use super::JobsResult;
use crate::cancel::CancelToken;
use crate::error::{EngineError, ErrorCode, ErrorPayload};
use job_thread::{lower_priority, with_store_retries, Done, JobContext, Outcome, Pulse};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch, Notify};

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Analyses at once (CPU-bound: one on a 2-core machine).
    pub analysis_slots: usize,
    /// Exports at once (I/O-bound: one keeps the disk streaming).
    pub export_slots: usize,
    /// A running stage that reports no progress for this long is a stall.
    pub stall_after: Duration,
    /// After a stall, how long the cancelled work gets to end before it is
    /// abandoned (its slot freed, its thread left to finish and ignored).
    pub abandon_after: Duration,
    /// At most one progress write per job per interval (≤ 10/s).
    pub progress_interval: Duration,
    pub backoff: Vec<Duration>,
    /// How often the runner looks for jobs whose backoff has run out.
    pub poll_interval: Duration,
    /// Finished history kept (applied at start).
    pub retention: Retention,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self {
            analysis_slots: (cores / 2).max(1),
            export_slots: 1,
            stall_after: Duration::from_secs(120),
            abandon_after: Duration::from_secs(10),
            progress_interval: Duration::from_millis(100),
            backoff: DEFAULT_BACKOFF.to_vec(),
            poll_interval: Duration::from_millis(500),
            retention: Retention::default(),
        }
    }
}

pub struct Runner<W: Work> {
    store: Arc<Store>,
    work: Arc<W>,
    cfg: RunnerConfig,
    id: String,
    /// Jobs whose work is under way here.
    running: Mutex<HashMap<String, Slot>>,
    wake: Notify,
    stopping: Arc<AtomicBool>,
    /// False while `run` is working; true once it has returned (after a
    /// stop: every running job handed back).
    idle: watch::Sender<bool>,
    _lock: RunnerLock,
}

/// A job under way: its kind of work, its cancel token, and whether it
/// must run alone (no other job starts beside it).
struct Slot {
    kind: WorkKind,
    token: CancelToken,
    alone: bool,
}

fn internal(why: &str) -> EngineError {
    EngineError::Media {
        path: Default::default(),
        reason: format!("internal error: {why}"),
    }
}

impl<W: Work> Runner<W> {
    /// Takes the store's runner lock and recovers what a previous runner left
    /// running (re-queued; after an unclean stop, see [`Interruption`]).
    pub fn start(store: Arc<Store>, work: Arc<W>, cfg: RunnerConfig) -> JobsResult<Arc<Self>> {
        let lock = store.lock_runner()?;
        let recovered = with_store_retries(10, || store.recover_interrupted())?;
        if !recovered.is_empty() {
            tracing::info!("resuming {} interrupted job(s)", recovered.len());
        }
        // Housekeeping: history beyond the retention policy, and partial files
        // a dead export left in any output folder the jobs used.
        let pruned = with_store_retries(10, || store.prune(cfg.retention))?;
        let mut dirs: Vec<PathBuf> = with_store_retries(10, || store.list(&[], usize::MAX >> 1))?
            .into_iter()
            .filter_map(|j| j.options.out_dir)
            .collect();
        dirs.sort();
        dirs.dedup();
        let swept: usize = dirs
            .iter()
            .map(|d| crate::export::remove_stale_partials(d))
            .sum();
        if pruned + swept > 0 {
            tracing::info!("pruned {pruned} old job(s), removed {swept} stale partial file(s)");
        }
        let id = format!("{}-{}", std::process::id(), super::model::now_ms());
        Ok(Arc::new(Self {
            store,
            work,
            cfg,
            id,
            running: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            stopping: Arc::new(AtomicBool::new(false)),
            idle: watch::Sender::new(true),
            _lock: lock,
        }))
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Tells the runner there may be new work (a job added, export requested, retry).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancels a job: the store records it at once, running work stops within
    /// the engine's cancellation latency and removes its partial output.
    pub fn cancel(&self, id: &str) -> JobsResult<Job> {
        let job = self.store.cancel(id)?;
        if let Some(slot) = self.running().get(id) {
            slot.token.cancel();
        }
        Ok(job)
    }

    /// Asks the loop to stop: each running job shows the stage `stopping`
    /// at once, its work is cancelled, and it is handed back to the queue as
    /// interrupted (not failed, no try used), to resume on the next start.
    /// [`Runner::wait_idle`] waits for that to be done.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let running: Vec<(String, CancelToken)> = self
            .running()
            .iter()
            .map(|(id, s)| (id.clone(), s.token.clone()))
            .collect();
        for (id, token) in running {
            if let Err(e) = self.store.mark_stopping(&id) {
                tracing::warn!("job {id}: stopping not shown: {e}");
            }
            token.cancel();
        }
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Whether any job's work is under way here.
    pub fn is_busy(&self) -> bool {
        !self.running().is_empty()
    }

    /// Returns once `run` is not working (at once if it is not running):
    /// after [`Runner::stop`], once every running job has been handed back.
    pub async fn wait_idle(&self) {
        let mut rx = self.idle.subscribe();
        let _ = rx.wait_for(|idle| *idle).await;
    }

    /// [`Runner::wait_idle`] for a thread outside the async runtime.
    pub fn wait_idle_blocking(&self) {
        while !*self.idle.borrow() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Slots in use: counted until the work's thread has really ended (or
    /// was abandoned), even when the job was cancelled in the store meanwhile.
    fn count_running(&self, kind: WorkKind) -> usize {
        self.running().values().filter(|s| s.kind == kind).count()
    }

    /// Whether anything is waiting (now or after a backoff) or running.
    fn has_pending(&self) -> JobsResult<bool> {
        if !self.running().is_empty() {
            return Ok(true);
        }
        self.store.has_waiting()
    }

    /// The main loop. Returns when stopped, or with `until_empty` when no job
    /// is waiting or running. A store error never ends it: the loop waits
    /// (backing off) and tries again.
    pub async fn run(self: Arc<Self>, until_empty: bool) -> JobsResult<()> {
        self.idle.send_replace(false);
        let mut tasks = tokio::task::JoinSet::new();
        let mut failures = 0u32;
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            let step = self.start_ready(&mut tasks).and_then(|()| {
                if until_empty {
                    self.has_pending()
                } else {
                    Ok(true)
                }
            });
            while let Some(r) = tasks.try_join_next() {
                if let Err(e) = r {
                    tracing::error!("job task failed: {e}");
                }
            }
            let pause = match step {
                Ok(false) => break,
                Ok(true) => {
                    failures = 0;
                    self.cfg.poll_interval
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!("job store unavailable ({e}); trying again");
                    store_backoff(failures)
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
        self.idle.send_replace(true);
        Ok(())
    }

    /// Claims and starts what the free slots allow. While jobs an unclean
    /// stop interrupted together wait, they run one at a time and alone, so
    /// that a crash then is charged to the job that caused it.
    fn start_ready(self: &Arc<Self>, tasks: &mut tokio::task::JoinSet<()>) -> JobsResult<()> {
        if self.running().values().any(|s| s.alone) {
            return Ok(());
        }
        if self.store.has_isolated_waiting()? {
            if self.running().is_empty() {
                for kind in [WorkKind::Analysis, WorkKind::Export] {
                    if let Some(job) = self.store.claim_isolated(kind, &self.id)? {
                        self.launch(job, kind, true, tasks);
                        break;
                    }
                }
            }
            return Ok(());
        }
        for (kind, slots) in [
            (WorkKind::Analysis, self.cfg.analysis_slots),
            (WorkKind::Export, self.cfg.export_slots),
        ] {
            while self.count_running(kind) < slots {
                let Some(job) = self.store.claim(kind, &self.id)? else {
                    break;
                };
                self.launch(job, kind, false, tasks);
            }
        }
        Ok(())
    }

    fn launch(
        self: &Arc<Self>,
        job: Job,
        kind: WorkKind,
        alone: bool,
        tasks: &mut tokio::task::JoinSet<()>,
    ) {
        let token = CancelToken::new();
        let slot = Slot {
            kind,
            token: token.clone(),
            alone,
        };
        self.running().insert(job.id.clone(), slot);
        // A stop() between the claim and the insert must still reach this job.
        if self.stopping.load(Ordering::SeqCst) {
            if let Err(e) = self.store.mark_stopping(&job.id) {
                tracing::warn!("job {}: stopping not shown: {e}", job.id);
            }
            token.cancel();
        }
        let me = self.clone();
        tasks.spawn(async move { me.run_job(job, kind, token).await });
    }

    async fn run_job(self: Arc<Self>, job: Job, kind: WorkKind, token: CancelToken) {
        let id = job.id.clone();
        let pulse = Arc::new(Mutex::new(Pulse {
            last_change: Instant::now(),
            last_write: None,
            stage: None,
            fraction: 0.0,
            started: Instant::now(),
        }));
        let ctx = JobContext {
            store: self.store.clone(),
            work: self.work.clone(),
            progress_interval: self.cfg.progress_interval,
            pulse: pulse.clone(),
            abandoned: Arc::new(AtomicBool::new(false)),
            stopping: self.stopping.clone(),
        };
        let abandoned = ctx.abandoned.clone();
        let (tx, mut rx) = oneshot::channel();
        // A thread of its own at a lower CPU priority (threads it starts
        // inherit it): background work must not starve the window.
        let spawned = std::thread::Builder::new()
            .name(format!("job-{}", job.id))
            .spawn({
                let token = token.clone();
                move || {
                    lower_priority();
                    let _ = tx.send(ctx.do_work(&job, kind, &token));
                }
            });
        let (outcome, stalled) = match spawned {
            Ok(_) => self.watch(&mut rx, &pulse, &token, &abandoned).await,
            Err(e) => (Err(internal(&format!("no thread for the job: {e}"))), false),
        };
        self.record(&id, kind, &outcome, stalled).await;
        // Only now, with the outcome recorded: `has_pending` must never see the
        // job neither running nor queued (a retry would be dropped by `until_empty`).
        self.running().remove(&id);
        self.wake();
    }

    /// Waits for the job's thread, watching its progress: a stage that stops
    /// moving for `stall_after` is cancelled, and when its work does not end
    /// within `abandon_after` then, it is abandoned. Returns the outcome and
    /// whether the run stalled.
    async fn watch(
        &self,
        rx: &mut oneshot::Receiver<Outcome>,
        pulse: &Mutex<Pulse>,
        token: &CancelToken,
        abandoned: &AtomicBool,
    ) -> (Outcome, bool) {
        let lost = || Err(internal("the job's thread ended without a result"));
        let tick = (self.cfg.stall_after / 4).max(Duration::from_millis(20));
        loop {
            tokio::select! {
                r = &mut *rx => return (r.unwrap_or_else(|_| lost()), false),
                _ = tokio::time::sleep(tick) => {}
            }
            let idle = pulse
                .lock()
                .map(|p| p.last_change.elapsed())
                .unwrap_or_default();
            if idle >= self.cfg.stall_after {
                break;
            }
        }
        token.cancel();
        match tokio::time::timeout(self.cfg.abandon_after, &mut *rx).await {
            Ok(r) => (r.unwrap_or_else(|_| lost()), true),
            Err(_) => {
                abandoned.store(true, Ordering::SeqCst);
                tracing::error!(
                    "a stalled job did not stop within {:?}: abandoned, its slot freed",
                    self.cfg.abandon_after
                );
                (Err(EngineError::Cancelled), true)
            }
        }
    }

    /// Records a run's outcome, trying again while the store fails in a way
    /// that may pass. When it cannot be recorded, the job is failed with a
    /// plain update, so it is never left looking as if it were running.
    async fn record(&self, id: &str, kind: WorkKind, outcome: &Outcome, stalled: bool) {
        let mut failures = 0u32;
        let err = loop {
            match self.settle(id, kind, outcome, stalled) {
                Ok(()) => return,
                // Stopping: about a minute; otherwise as long as it takes.
                Err(e) if e.is_retryable() && (!self.is_stopping() || failures < 36) => {
                    failures += 1;
                    tracing::warn!("job {id}: outcome not recorded yet ({e}); trying again");
                    tokio::time::sleep(store_backoff(failures)).await;
                }
                Err(e) => break e,
            }
        };
        tracing::error!("job {id}: could not record the outcome: {err}");
        let payload = ErrorPayload::new(
            ErrorCode::Store,
            format!("the result could not be saved in the job history ({err}); use Retry"),
        );
        for i in 1..=20 {
            match self.store.force_fail(id, &payload) {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!("job {id}: not marked failed yet ({e})");
                    tokio::time::sleep(store_backoff(i)).await;
                }
            }
        }
    }

    fn settle(&self, id: &str, kind: WorkKind, outcome: &Outcome, stalled: bool) -> JobsResult<()> {
        match outcome {
            Ok(Done::Analysis(checkpoint)) => {
                if self.store.get(id)?.state == JobState::Analyzing {
                    self.store.complete_analysis(id, checkpoint)?;
                }
            }
            Ok(Done::Export(output, report)) => {
                if self.store.get(id)?.state == JobState::Exporting {
                    self.store.complete_export(id, output, report)?;
                } else {
                    // Cancelled as it finished: the user asked for no file.
                    // `output` is this job's own (written by this run, or a
                    // sealed file of an earlier one), never another job's.
                    let _ = std::fs::remove_file(output);
                }
            }
            Err(EngineError::Cancelled) if stalled => {
                let job = self.store.get(id)?;
                let what = if kind == WorkKind::Analysis {
                    "analysis"
                } else {
                    "export"
                };
                let err = ErrorPayload::new(
                    ErrorCode::Stalled,
                    format!(
                        "no progress for {} s during {}; it will be tried again",
                        self.cfg.stall_after.as_secs_f64().round(),
                        job.stage.map_or(what, Stage::as_str)
                    ),
                );
                self.store
                    .fail_run(id, &err, true, backoff(job.attempts, &self.cfg.backoff))?;
            }
            Err(EngineError::Cancelled) if self.is_stopping() => {
                // Shutting down: hand the job back as interrupted, to resume next start.
                self.store.interrupt(id, Interruption::Clean)?;
            }
            Err(EngineError::Cancelled) => {
                // The user cancelled: the store already says so.
            }
            Err(e) => {
                let job = self.store.get(id)?;
                let payload = e.to_payload();
                let transient = is_transient(payload.code.as_str());
                self.store.fail_run(
                    id,
                    &payload,
                    transient,
                    backoff(job.attempts, &self.cfg.backoff),
                )?;
            }
        }
        Ok(())
    }
}

/// Remaining time from elapsed time and fraction done; none until there is
/// enough progress to extrapolate from.
pub fn eta(elapsed: Duration, fraction: f64) -> Option<f64> {
    if !(0.02..1.0).contains(&fraction) {
        return if fraction >= 1.0 { Some(0.0) } else { None };
    }
    Some(elapsed.as_secs_f64() * (1.0 - fraction) / fraction)
}

#[cfg(test)]
mod tests;

//! The runner: takes jobs from the store and does their work in the
//! background, within concurrency limits, reporting progress (throttled, with
//! ETA) and a heartbeat, detecting stalls, retrying transient failures with
//! backoff, and handing interrupted work back to the queue on shutdown.

use super::model::{Job, JobState, Stage};
use super::retry::{backoff, is_transient, DEFAULT_BACKOFF};
use super::store::{Retention, RunnerLock, Store, WorkKind};
use super::work::Work;
use super::JobsResult;
use crate::cancel::CancelToken;
use crate::error::{EngineError, ErrorCode, ErrorPayload};
use crate::media::fingerprint::check_unchanged;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Analyses at once (CPU-bound: one on a 2-core machine).
    pub analysis_slots: usize,
    /// Exports at once (I/O-bound: one keeps the disk streaming).
    pub export_slots: usize,
    /// A running stage that reports no progress for this long is a stall.
    pub stall_after: Duration,
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
    /// Jobs whose work is under way here, with what kind of work and its cancel token.
    running: Mutex<HashMap<String, (WorkKind, CancelToken)>>,
    wake: Notify,
    stopping: AtomicBool,
    _lock: RunnerLock,
}

/// Per-job progress bookkeeping shared by the work thread and the watchdog.
struct Pulse {
    last_change: Instant,
    last_write: Option<Instant>,
    stage: Option<Stage>,
    fraction: f64,
    started: Instant,
}

impl<W: Work> Runner<W> {
    /// Takes the store's runner lock and recovers what a previous runner left
    /// running (re-queued, or failed when out of tries).
    pub fn start(store: Arc<Store>, work: Arc<W>, cfg: RunnerConfig) -> JobsResult<Arc<Self>> {
        let lock = store.lock_runner()?;
        let recovered = store.recover_interrupted()?;
        if !recovered.is_empty() {
            tracing::info!("resuming {} interrupted job(s)", recovered.len());
        }
        // Housekeeping: history beyond the retention policy, and partial files
        // a dead export left in any output folder the jobs used.
        let pruned = store.prune(cfg.retention)?;
        let mut dirs: Vec<std::path::PathBuf> = store
            .list(&[], usize::MAX >> 1)?
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
            stopping: AtomicBool::new(false),
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

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, (WorkKind, CancelToken)>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancels a job: the store records it at once, running work stops within
    /// the engine's cancellation latency and removes its partial output.
    pub fn cancel(&self, id: &str) -> JobsResult<Job> {
        let job = self.store.cancel(id)?;
        if let Some((_, t)) = self.running().get(id) {
            t.cancel();
        }
        Ok(job)
    }

    /// Asks the loop to stop: running work is cancelled and handed back to the
    /// queue as interrupted (not failed), to resume on the next start.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for (_, t) in self.running().values() {
            t.cancel();
        }
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    /// Slots in use: counted until the work's thread has really ended, even
    /// when the job was cancelled in the store meanwhile.
    fn count_running(&self, kind: WorkKind) -> usize {
        self.running().values().filter(|(k, _)| *k == kind).count()
    }

    /// Whether anything is waiting (now or after a backoff) or running.
    fn has_pending(&self) -> JobsResult<bool> {
        if !self.running().is_empty() {
            return Ok(true);
        }
        let jobs = self
            .store
            .list(&[JobState::Queued, JobState::Analyzed], usize::MAX >> 1)?;
        Ok(jobs.iter().any(|j| {
            j.state == JobState::Queued || (j.state == JobState::Analyzed && j.export_requested)
        }))
    }

    /// The main loop. Returns when stopped, or with `until_empty` when no job
    /// is waiting or running.
    pub async fn run(self: Arc<Self>, until_empty: bool) -> JobsResult<()> {
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            for (kind, slots) in [
                (WorkKind::Analysis, self.cfg.analysis_slots),
                (WorkKind::Export, self.cfg.export_slots),
            ] {
                while self.count_running(kind) < slots {
                    let Some(job) = self.store.claim(kind, &self.id)? else {
                        break;
                    };
                    let token = CancelToken::new();
                    self.running().insert(job.id.clone(), (kind, token.clone()));
                    // A stop() between the claim and the insert must still reach this job.
                    if self.stopping.load(Ordering::SeqCst) {
                        token.cancel();
                    }
                    let me = self.clone();
                    tasks.spawn(async move { me.run_job(job, kind, token).await });
                }
            }
            while let Some(r) = tasks.try_join_next() {
                if let Err(e) = r {
                    tracing::error!("job task failed: {e}");
                }
            }
            if until_empty && !self.has_pending()? {
                break;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.cfg.poll_interval) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
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
        let stalled = Arc::new(AtomicBool::new(false));

        // Watchdog: a stage that stops moving is cancelled and retried.
        let watchdog = {
            let (pulse, stalled, token) = (pulse.clone(), stalled.clone(), token.clone());
            let stall_after = self.cfg.stall_after;
            tokio::spawn(async move {
                let tick = (stall_after / 4).max(Duration::from_millis(20));
                loop {
                    tokio::time::sleep(tick).await;
                    let idle = pulse
                        .lock()
                        .map(|p| p.last_change.elapsed())
                        .unwrap_or_default();
                    if idle >= stall_after {
                        stalled.store(true, Ordering::SeqCst);
                        token.cancel();
                        break;
                    }
                }
            })
        };

        let result = {
            let (me, pulse, token) = (self.clone(), pulse.clone(), token.clone());
            // A thread of its own at a lower CPU priority (threads it starts
            // inherit it): background work must not starve the window.
            let (tx, rx) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new()
                .name(format!("job-{}", job.id))
                .spawn(move || {
                    lower_priority();
                    let outcome = me.do_work(&job, kind, &token, &pulse);
                    // Let go of the runner (and so of the store's runner lock)
                    // before the result is seen: once `run` returns, a new
                    // runner must be able to start at once.
                    drop(me);
                    let _ = tx.send(outcome);
                });
            match spawned {
                Ok(_) => rx
                    .await
                    .map_err(|_| "the job's thread ended without a result".to_string()),
                Err(e) => Err(format!("no thread for the job: {e}")),
            }
        };
        watchdog.abort();

        let outcome = match result {
            Ok(r) => r,
            Err(why) => Err(EngineError::Media {
                path: Default::default(),
                reason: format!("internal error: {why}"),
            }),
        };
        if let Err(e) = self.settle(&id, kind, outcome, stalled.load(Ordering::SeqCst)) {
            tracing::error!("job {id}: could not record the outcome: {e}");
        }
        // Only now, with the outcome recorded: `has_pending` must never see the
        // job neither running nor queued (a retry would be dropped by `until_empty`).
        self.running().remove(&id);
        self.wake();
    }

    /// Runs on a blocking thread: checks the inputs, then analyses or exports.
    fn do_work(
        &self,
        job: &Job,
        kind: WorkKind,
        token: &CancelToken,
        pulse: &Mutex<Pulse>,
    ) -> Result<Done, EngineError> {
        check_unchanged(&job.dance.path, &job.dance.fingerprint)?;
        check_unchanged(&job.bgm.path, &job.bgm.fingerprint)?;
        let interval = self.cfg.progress_interval;
        let mut report = |stage: Stage, fraction: f64| {
            let now = Instant::now();
            let write = {
                let Ok(mut p) = pulse.lock() else { return };
                let stage_changed = p.stage != Some(stage);
                if stage_changed || (fraction - p.fraction).abs() > 1e-9 {
                    p.last_change = now;
                }
                p.stage = Some(stage);
                p.fraction = fraction;
                let due = stage_changed
                    || p.last_write
                        .is_none_or(|t| now.duration_since(t) >= interval);
                if due {
                    p.last_write = Some(now);
                }
                due.then(|| eta(p.started.elapsed(), fraction))
            };
            if let Some(eta_s) = write {
                match self.store.progress(&job.id, stage, fraction, eta_s) {
                    // The job was cancelled in the store (maybe by another process).
                    Ok(false) => token.cancel(),
                    Ok(true) => {}
                    Err(e) => tracing::warn!("job {}: progress not recorded: {e}", job.id),
                }
            }
        };
        match kind {
            WorkKind::Analysis => self
                .work
                .analyze(job, token, &mut report)
                .map(Done::Analysis),
            WorkKind::Export => {
                if let Some(done) = job.output_path.as_ref().filter(|p| p.exists()) {
                    // A previous run got as far as the final rename: adopt it.
                    if let Ok(report) = self.work.adopt(job, done) {
                        return Ok(Done::Export(done.clone(), report));
                    }
                }
                let planned = self.work.plan_output(job)?;
                let job =
                    self.store
                        .plan_output(&job.id, &planned)
                        .map_err(|e| EngineError::Media {
                            path: planned.clone(),
                            reason: format!("job store: {e}"),
                        })?;
                self.work
                    .export(&job, token, &mut report)
                    .map(|o| Done::Export(o.output, o.report))
            }
        }
    }

    fn settle(
        &self,
        id: &str,
        kind: WorkKind,
        outcome: Result<Done, EngineError>,
        stalled: bool,
    ) -> JobsResult<()> {
        match outcome {
            Ok(Done::Analysis(checkpoint)) => {
                if self.store.get(id)?.state == JobState::Analyzing {
                    self.store.complete_analysis(id, &checkpoint)?;
                }
            }
            Ok(Done::Export(output, report)) => {
                if self.store.get(id)?.state == JobState::Exporting {
                    self.store.complete_export(id, &output, &report)?;
                } else {
                    // Cancelled as it finished: the user asked for no file.
                    let _ = std::fs::remove_file(&output);
                }
            }
            Err(EngineError::Cancelled) if stalled => {
                let job = self.store.get(id)?;
                let err = ErrorPayload {
                    code: ErrorCode::Stalled,
                    message: format!(
                        "no progress for {} s during {}; it will be tried again",
                        self.cfg.stall_after.as_secs_f64().round(),
                        job.stage.map_or(
                            if kind == WorkKind::Analysis {
                                "analysis"
                            } else {
                                "export"
                            },
                            Stage::as_str
                        )
                    ),
                };
                self.store
                    .fail_run(id, &err, true, backoff(job.attempts, &self.cfg.backoff))?;
            }
            Err(EngineError::Cancelled) if self.stopping.load(Ordering::SeqCst) => {
                // Shutting down: hand the job back as interrupted, to resume next start.
                self.store.interrupt(id, true)?;
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

/// Lowers the calling thread's CPU priority (Linux: nice is per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on the calling thread (who = 0) with a valid value.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

enum Done {
    Analysis(crate::align::AlignResult),
    Export(std::path::PathBuf, serde_json::Value),
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
mod tests {
    use super::*;
    use crate::jobs::model::fixtures::analysis;
    use crate::jobs::model::{JobInput, JobOptions, StoreEvent};
    use crate::jobs::store::NewJob;
    use crate::jobs::work::ExportOutcome;
    use crate::media::fingerprint::fingerprint;
    use std::path::Path;
    use std::sync::atomic::AtomicU32;

    /// Scripted work: what it does depends on the class video's file name.
    #[derive(Default)]
    struct Scripted {
        exports: AtomicU32,
        cancels_seen: AtomicU32,
    }

    fn steps(
        cancel: &CancelToken,
        progress: &mut dyn FnMut(Stage, f64),
        stage: Stage,
        n: u32,
    ) -> crate::Result<()> {
        for i in 1..=n {
            cancel.check()?;
            std::thread::sleep(Duration::from_millis(5));
            progress(stage, f64::from(i) / f64::from(n));
        }
        Ok(())
    }

    impl Work for Scripted {
        fn analyze(
            &self,
            job: &Job,
            cancel: &CancelToken,
            progress: &mut dyn FnMut(Stage, f64),
        ) -> crate::Result<crate::align::AlignResult> {
            let name = job
                .dance
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if name.starts_with("nomatch") {
                return Err(EngineError::NoMatch {
                    reason: "scripted".into(),
                });
            }
            if name.starts_with("stall") || name.starts_with("slow") {
                progress(Stage::Decode, 0.1);
                let mut f = 0.1;
                loop {
                    if cancel.is_cancelled() {
                        self.cancels_seen.fetch_add(1, Ordering::SeqCst);
                        return Err(EngineError::Cancelled);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                    if name.starts_with("slow") {
                        f = (f + 0.0001f64).min(0.99);
                        progress(Stage::Search, f);
                    }
                }
            }
            steps(cancel, progress, Stage::Search, 20)?;
            Ok(analysis(1.5))
        }

        fn plan_output(&self, job: &Job) -> crate::Result<std::path::PathBuf> {
            Ok(job
                .options
                .out_dir
                .clone()
                .unwrap_or_default()
                .join(format!("{}.out", job.id)))
        }

        fn adopt(&self, _job: &Job, _output: &Path) -> crate::Result<serde_json::Value> {
            Ok(serde_json::json!({ "adopted": true }))
        }

        fn export(
            &self,
            job: &Job,
            cancel: &CancelToken,
            progress: &mut dyn FnMut(Stage, f64),
        ) -> crate::Result<ExportOutcome> {
            self.exports.fetch_add(1, Ordering::SeqCst);
            steps(cancel, progress, Stage::Export, 10)?;
            let out = job.output_path.clone().unwrap_or_default();
            std::fs::write(&out, b"done").map_err(|e| EngineError::Media {
                path: out.clone(),
                reason: e.to_string(),
            })?;
            Ok(ExportOutcome {
                output: out,
                report: serde_json::json!({ "video": "copied" }),
            })
        }
    }

    fn add(store: &Store, dir: &Path, dance: &str, max_attempts: u32, auto_export: bool) -> Job {
        let mk = |name: &str| {
            let path = dir.join(name);
            if !path.exists() {
                std::fs::write(&path, name.repeat(50)).expect("write");
            }
            JobInput {
                fingerprint: fingerprint(&path).expect("fp"),
                path,
            }
        };
        store
            .add(NewJob {
                dance: mk(dance),
                bgm: mk("song.m4a"),
                options: JobOptions {
                    out_dir: Some(dir.to_path_buf()),
                    auto_export,
                    ..Default::default()
                },
                max_attempts,
            })
            .expect("add")
    }

    fn cfg() -> RunnerConfig {
        RunnerConfig {
            analysis_slots: 1,
            export_slots: 1,
            // Long enough that a loaded machine never stalls the steady "slow" work
            // (job threads run at nice 10: behind a busy build they can wait seconds).
            stall_after: Duration::from_secs(10),
            progress_interval: Duration::from_millis(100),
            backoff: vec![Duration::from_millis(10)],
            poll_interval: Duration::from_millis(20),
            retention: Retention::default(),
        }
    }

    fn setup() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open(&dir.path().join("data")).expect("open");
        (dir, Arc::new(store))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_the_queue_to_the_end_with_throttled_progress() {
        let (dir, store) = setup();
        let ids: Vec<String> = (0..3)
            .map(|i| add(&store, dir.path(), &format!("ok{i}.mp4"), 3, true).id)
            .collect();
        let mut events = store.subscribe();
        let runner =
            Runner::start(store.clone(), Arc::new(Scripted::default()), cfg()).expect("start");
        let started = Instant::now();
        runner.clone().run(true).await.expect("run");
        let elapsed = started.elapsed();
        for id in &ids {
            let j = store.get(id).expect("job");
            assert_eq!(j.state, JobState::Done, "{j:?}");
            assert_eq!(j.checkpoint, Some(analysis(1.5)));
            assert!(j.output_path.as_ref().is_some_and(|p| p.exists()));
        }
        // 20 analysis callbacks 5 ms apart, written at most once per 100 ms (plus the
        // first): the bound follows the real elapsed time, so a slow machine cannot
        // make this flaky, and stays far below 20 on any sane one.
        let mut progress_events: HashMap<String, u32> = HashMap::new();
        while let Ok(ev) = events.try_recv() {
            if let StoreEvent::JobChanged(j) = ev {
                if j.state == JobState::Analyzing && j.stage.is_some() {
                    *progress_events.entry(j.id.clone()).or_default() += 1;
                }
            }
        }
        for id in &ids {
            let n = progress_events.get(id).copied().unwrap_or(0);
            let bound = (elapsed.as_millis() / 100) as u32 + 2;
            assert!(
                n >= 1 && n <= bound.min(19),
                "job {id}: {n} progress events for 20 engine callbacks in {elapsed:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn permanent_errors_fail_once_and_analysed_jobs_wait() {
        let (dir, store) = setup();
        let bad = add(&store, dir.path(), "nomatch.mp4", 3, true);
        let wait = add(&store, dir.path(), "ok.mp4", 3, false);
        let work = Arc::new(Scripted::default());
        let runner = Runner::start(store.clone(), work.clone(), cfg()).expect("start");
        runner.clone().run(true).await.expect("run");
        let b = store.get(&bad.id).expect("job");
        assert_eq!((b.state, b.attempts), (JobState::Failed, 1));
        assert_eq!(b.error.map(|e| e.code), Some(ErrorCode::NoMatch));
        assert_eq!(store.get(&wait.id).expect("job").state, JobState::Analyzed);
        assert_eq!(
            work.exports.load(Ordering::SeqCst),
            0,
            "no export without the user's go"
        );

        let opts = store.get(&wait.id).expect("job").options;
        store.request_export(&wait.id, &opts).expect("go");
        runner.clone().run(true).await.expect("run");
        assert_eq!(store.get(&wait.id).expect("job").state, JobState::Done);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_stage_is_cancelled_and_retried_until_out_of_tries() {
        let (dir, store) = setup();
        let job = add(&store, dir.path(), "stall.mp4", 2, true);
        let work = Arc::new(Scripted::default());
        // "stall" work never reports progress, so a short threshold is safe here.
        let cfg = RunnerConfig {
            stall_after: Duration::from_millis(500),
            ..cfg()
        };
        let runner = Runner::start(store.clone(), work.clone(), cfg).expect("start");
        runner.clone().run(true).await.expect("run");
        let j = store.get(&job.id).expect("job");
        assert_eq!((j.state, j.attempts), (JobState::Failed, 2));
        assert_eq!(j.error.map(|e| e.code), Some(ErrorCode::Stalled));
        assert_eq!(
            work.cancels_seen.load(Ordering::SeqCst),
            2,
            "the stalled work was told to stop each time"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancel_stops_running_work() {
        let (dir, store) = setup();
        let job = add(&store, dir.path(), "slow.mp4", 3, true);
        let work = Arc::new(Scripted::default());
        let runner = Runner::start(store.clone(), work.clone(), cfg()).expect("start");
        let mut events = store.subscribe();
        let run = tokio::spawn(runner.clone().run(true));
        // Wait until it is running, then cancel.
        loop {
            if let Ok(StoreEvent::JobChanged(j)) = events.recv().await {
                if j.state == JobState::Analyzing && j.stage.is_some() {
                    break;
                }
            }
        }
        let j = runner.cancel(&job.id).expect("cancel");
        assert_eq!(j.state, JobState::Cancelled);
        run.await.expect("join").expect("run");
        assert_eq!(work.cancels_seen.load(Ordering::SeqCst), 1);
        assert_eq!(store.get(&job.id).expect("job").state, JobState::Cancelled);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_clean_stop_hands_work_back_for_the_next_start() {
        let (dir, store) = setup();
        let job = add(&store, dir.path(), "slow.mp4", 3, true);
        let runner =
            Runner::start(store.clone(), Arc::new(Scripted::default()), cfg()).expect("start");
        let mut events = store.subscribe();
        let run = tokio::spawn(runner.clone().run(false));
        loop {
            if let Ok(StoreEvent::JobChanged(j)) = events.recv().await {
                if j.state == JobState::Analyzing {
                    break;
                }
            }
        }
        runner.stop();
        run.await.expect("join").expect("run");
        let j = store.get(&job.id).expect("job");
        assert_eq!(
            (j.state, j.attempts, j.stage),
            (JobState::Queued, 0, Some(Stage::Interrupted))
        );
        drop(runner);
        // The next runner (next app start) can take the lock and the job.
        let again =
            Runner::start(store.clone(), Arc::new(Scripted::default()), cfg()).expect("restart");
        assert_eq!(
            store
                .claim(WorkKind::Analysis, "x")
                .expect("claim")
                .map(|j| j.id),
            Some(job.id)
        );
        drop(again);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_input_changed_since_queued_fails_with_a_clear_message() {
        let (dir, store) = setup();
        let job = add(&store, dir.path(), "ok.mp4", 3, true);
        std::fs::write(dir.path().join("ok.mp4"), b"another recording now").expect("overwrite");
        let runner =
            Runner::start(store.clone(), Arc::new(Scripted::default()), cfg()).expect("start");
        runner.clone().run(true).await.expect("run");
        let j = store.get(&job.id).expect("job");
        assert_eq!(j.state, JobState::Failed);
        let e = j.error.expect("error");
        assert_eq!(e.code, ErrorCode::InputChanged);
        assert!(e.message.contains("ok.mp4"), "{}", e.message);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_applies_retention_and_sweeps_stale_partials() {
        let (dir, store) = setup();
        let old = add(&store, dir.path(), "nomatch.mp4", 1, true);
        let keep = add(&store, dir.path(), "ok.mp4", 1, true);
        for _ in 0..2 {
            store.claim(WorkKind::Analysis, "r").expect("claim");
        }
        for id in [&old.id, &keep.id] {
            let e = ErrorPayload {
                code: ErrorCode::NoMatch,
                message: "x".into(),
            };
            store.fail_run(id, &e, false, Duration::ZERO).expect("fail");
        }
        // A partial file left by a killed export (not locked by anyone).
        let stale = dir.path().join(".beatsync-partial-dead.mp4.partial");
        std::fs::write(&stale, b"half a video").expect("write");
        let cfg = RunnerConfig {
            retention: Retention {
                keep_last: 1,
                max_age: Duration::from_secs(3600),
            },
            ..cfg()
        };
        let _runner =
            Runner::start(store.clone(), Arc::new(Scripted::default()), cfg).expect("start");
        let left: Vec<String> = store
            .list(&[], 10)
            .expect("list")
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(
            left.len(),
            1,
            "only the newest finished job is kept: {left:?}"
        );
        assert!(!stale.exists(), "the stale partial file was removed");
    }

    #[test]
    fn eta_extrapolates_from_progress() {
        assert_eq!(eta(Duration::from_secs(10), 0.5), Some(10.0));
        assert_eq!(eta(Duration::from_secs(3), 0.75), Some(1.0));
        assert_eq!(eta(Duration::from_secs(1), 0.01), None, "too early to tell");
        assert_eq!(eta(Duration::from_secs(9), 1.0), Some(0.0));
    }
}

use super::*;
use crate::jobs::model::fixtures::analysis;
use crate::jobs::model::{JobInput, JobOptions, OutputSeal, StoreEvent};
use crate::jobs::store::NewJob;
use crate::jobs::work::ExportOutcome;
use crate::media::fingerprint::fingerprint;
use std::path::Path;
use std::sync::atomic::AtomicU32;

/// Scripted work: what it does depends on the class video's file name.
#[derive(Default)]
struct Scripted {
    exports: AtomicU32,
    adopted: AtomicU32,
    cancels_seen: AtomicU32,
    /// Jobs whose work is under way, and for each run started: the
    /// job and the jobs it ran beside.
    active: Mutex<Vec<String>>,
    runs: Mutex<Vec<(String, Vec<String>)>>,
    /// Jobs that have started an export.
    exported: Mutex<std::collections::HashSet<String>>,
}

/// Notes a run's start and end in `Scripted::active` / `runs`.
struct Active<'a>(&'a Scripted, String);

impl<'a> Active<'a> {
    fn new(work: &'a Scripted, job: &Job) -> Self {
        let mut active = work.active.lock().expect("lock");
        let beside = active.clone();
        work.runs
            .lock()
            .expect("lock")
            .push((job.id.clone(), beside));
        active.push(job.id.clone());
        Self(work, job.id.clone())
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0
            .active
            .lock()
            .expect("lock")
            .retain(|id| *id != self.1);
    }
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
        let _active = Active::new(self, job);
        let name = job
            .recording
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.starts_with("nomatch") {
            return Err(EngineError::no_match("scripted"));
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

    /// Named like the engine's: `<class video's stem>_beatsync.mp4`,
    /// numbered when taken.
    fn plan_output(&self, job: &Job) -> crate::Result<std::path::PathBuf> {
        let dir = job.options.out_dir.clone().unwrap_or_default();
        let stem = job.recording.path.file_stem().unwrap_or_default();
        let name = format!("{}_beatsync.mp4", stem.to_string_lossy());
        Ok((1..100)
            .map(|n| dir.join(crate::export::numbered(&name, n)))
            .find(|p| !p.exists())
            .unwrap_or_default())
    }

    fn adopt(&self, _job: &Job, _output: &Path) -> crate::Result<serde_json::Value> {
        self.adopted.fetch_add(1, Ordering::SeqCst);
        Ok(serde_json::json!({ "adopted": true }))
    }

    /// Writes the job's id into a partial file, seals it, renames it
    /// without replacing anything. A class video in a folder named
    /// `failing` fails its first export after planning its output.
    fn export(
        &self,
        job: &Job,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(Stage, f64),
        before_commit: crate::jobs::work::BeforeCommit<'_>,
    ) -> crate::Result<ExportOutcome> {
        let _active = Active::new(self, job);
        self.exports.fetch_add(1, Ordering::SeqCst);
        let first = self.exported.lock().expect("lock").insert(job.id.clone());
        steps(cancel, progress, Stage::Export, 10)?;
        let planned = job.output_path.clone().unwrap_or_default();
        let io = |e: std::io::Error| EngineError::OutputWrite {
            path: planned.clone(),
            reason: e.to_string(),
        };
        let failing = job
            .recording
            .path
            .parent()
            .is_some_and(|p| p.ends_with("failing"));
        if failing && first {
            return Err(io(std::io::Error::other("scripted write error")));
        }
        if job.recording.path.to_string_lossy().contains("hang") {
            // Blocks forever, deaf to cancellation (a hung fsync).
            loop {
                std::thread::park();
            }
        }
        let partial = planned.with_extension("partial");
        std::fs::write(&partial, format!("written by {}", job.id)).map_err(io)?;
        before_commit(&partial)?;
        let dir = planned.parent().unwrap_or(Path::new("."));
        let name = planned
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        for n in 1..100 {
            let target = dir.join(crate::export::numbered(name, n));
            if std::fs::hard_link(&partial, &target).is_ok() {
                std::fs::remove_file(&partial).map_err(io)?;
                return Ok(ExportOutcome {
                    output: target,
                    report: serde_json::json!({ "video": "copied" }),
                });
            }
        }
        Err(io(std::io::Error::other("no free name")))
    }
}

fn add(store: &Store, dir: &Path, recording: &str, max_attempts: u32, auto_export: bool) -> Job {
    let mk = |name: &str| {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
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
            recording: mk(recording),
            song: mk("song.m4a"),
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
        abandon_after: Duration::from_millis(300),
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
    let runner = Runner::start(store.clone(), Arc::new(Scripted::default()), cfg()).expect("start");
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
    let runner = Runner::start(store.clone(), Arc::new(Scripted::default()), cfg()).expect("start");
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
    // The window shows the job finishing until it is handed back.
    let mut shown_stopping = false;
    while let Ok(StoreEvent::JobChanged(j)) = events.recv().await {
        shown_stopping |= j.state == JobState::Analyzing && j.stage == Some(Stage::Stopping);
        if j.state == JobState::Queued {
            break;
        }
    }
    assert!(shown_stopping, "the stopping stage was announced");
    runner.wait_idle().await;
    run.await.expect("join").expect("run");
    let j = store.get(&job.id).expect("job");
    assert_eq!(
        (j.state, j.attempts, j.stage, j.crashes),
        (JobState::Queued, 0, Some(Stage::Interrupted), 0)
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
    let runner = Runner::start(store.clone(), Arc::new(Scripted::default()), cfg()).expect("start");
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
        let e = ErrorPayload::new(ErrorCode::NoMatch, "x".into());
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
    let _runner = Runner::start(store.clone(), Arc::new(Scripted::default()), cfg).expect("start");
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

/// Two phones' `IMG_0001.MOV`: the same output name. A fails after
/// planning it, is cancelled and retried while B writes that name: A
/// never ends pointing at B's file, and B's file is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jobs_with_one_output_name_never_share_a_file() {
    let (dir, store) = setup();
    let a = add(&store, dir.path(), "failing/IMG_0001.MOV", 3, true);
    let b = add(&store, dir.path(), "phone2/IMG_0001.MOV", 3, true);
    let work = Arc::new(Scripted::default());
    let runner = Runner::start(store.clone(), work.clone(), cfg()).expect("start");
    let mut events = store.subscribe();
    let run = tokio::spawn(runner.clone().run(true));
    // A's first export fails after planning the shared name; A is then
    // cancelled while B writes that name.
    let failed = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(ev) = events.recv().await {
            let StoreEvent::JobChanged(j) = ev else {
                continue;
            };
            if j.id == a.id && j.error.is_some() && j.state == JobState::Analyzed {
                assert_eq!(
                    j.output_path, None,
                    "the failed run's planned path is forgotten"
                );
                runner.cancel(&a.id).expect("cancel A");
                return true;
            }
        }
        false
    });
    assert!(
        failed.await.expect("A's export failed in time"),
        "events ended"
    );
    run.await.expect("join").expect("run");
    let pb = store.get(&b.id).expect("b").output_path.expect("B's file");
    assert_eq!(store.get(&a.id).expect("a").output_path, None);
    assert_eq!(
        std::fs::read_to_string(&pb).expect("B"),
        format!("written by {}", b.id)
    );
    store.retry(&a.id).expect("retry A");
    runner.clone().run(true).await.expect("run");
    let (ja, jb) = (store.get(&a.id).expect("a"), store.get(&b.id).expect("b"));
    assert_eq!((ja.state, jb.state), (JobState::Done, JobState::Done));
    let (pa, pb) = (
        ja.output_path.expect("A's file"),
        jb.output_path.expect("B's file"),
    );
    assert_ne!(pa, pb);
    assert_eq!(pb, dir.path().join("IMG_0001_beatsync.mp4"));
    assert_eq!(
        std::fs::read_to_string(&pa).expect("A"),
        format!("written by {}", a.id)
    );
    assert_eq!(
        std::fs::read_to_string(&pb).expect("B"),
        format!("written by {}", b.id)
    );
    assert_eq!(work.adopted.load(Ordering::SeqCst), 0);
}

/// A job killed after planning its output finds another job's file
/// there: no seal (or another file's seal), so it is not adopted, and
/// the job writes its own file beside it. With its own sealed file
/// there, it adopts it instead of exporting twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_file_matching_the_jobs_seal_is_adopted() {
    let (dir, store) = setup();
    let planned = dir.path().join("mine_beatsync.mp4");
    let theirs = b"another job's video".to_vec();
    let not_mine = OutputSeal::of(&fingerprint(&dir.path().join("song.m4a")).unwrap_or_else(
        |_| {
            std::fs::write(dir.path().join("song.m4a"), b"x").expect("write");
            fingerprint(&dir.path().join("song.m4a")).expect("fp")
        },
    ));
    for seal in [None, Some(not_mine)] {
        std::fs::write(&planned, &theirs).expect("their file");
        let job = add(&store, dir.path(), "mine.mp4", 3, true);
        store.claim(WorkKind::Analysis, "dead").expect("claim");
        store
            .complete_analysis(&job.id, &analysis(1.5))
            .expect("analysed");
        store.claim(WorkKind::Export, "dead").expect("claim");
        store.plan_output(&job.id, &planned).expect("plan");
        if let Some(seal) = &seal {
            store.seal_output(&job.id, seal).expect("seal");
        }
        let work = Arc::new(Scripted::default());
        let runner = Runner::start(store.clone(), work.clone(), cfg()).expect("start");
        runner.clone().run(true).await.expect("run");
        drop(runner);
        let j = store.get(&job.id).expect("job");
        assert_eq!(j.state, JobState::Done, "{seal:?}");
        assert_ne!(
            j.output_path.as_deref(),
            Some(planned.as_path()),
            "{seal:?}"
        );
        assert_eq!(
            std::fs::read(&planned).expect("theirs"),
            theirs,
            "left alone"
        );
        assert_eq!(work.adopted.load(Ordering::SeqCst), 0);
        std::fs::remove_file(j.output_path.expect("own")).expect("clean");
    }
    // Killed between the seal and `done`: its own file is adopted.
    let job = add(&store, dir.path(), "mine.mp4", 3, true);
    store.claim(WorkKind::Analysis, "dead").expect("claim");
    store
        .complete_analysis(&job.id, &analysis(1.5))
        .expect("analysed");
    store.claim(WorkKind::Export, "dead").expect("claim");
    let numbered = dir.path().join("mine_beatsync (2).mp4");
    std::fs::write(&numbered, b"my own video").expect("mine");
    store.plan_output(&job.id, &planned).expect("plan");
    let seal = OutputSeal::of(&fingerprint(&numbered).expect("fp"));
    store.seal_output(&job.id, &seal).expect("seal");
    let work = Arc::new(Scripted::default());
    let runner = Runner::start(store.clone(), work.clone(), cfg()).expect("start");
    runner.clone().run(true).await.expect("run");
    let j = store.get(&job.id).expect("job");
    assert_eq!((j.state, j.output_path), (JobState::Done, Some(numbered)));
    assert_eq!(
        (
            work.adopted.load(Ordering::SeqCst),
            work.exports.load(Ordering::SeqCst)
        ),
        (1, 0)
    );
}

/// The store fails (SQLITE_BUSY / SQLITE_FULL) 100 times while six jobs
/// run: the runner never stops, and every job ends done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_faults_never_stop_the_runner() {
    // Ten jobs make enough store calls for all 100 planned faults to land
    // (six made ~77: the issue's run is 100 faults).
    const JOBS: usize = 10;
    let (dir, store) = setup();
    let ids: Vec<String> = (0..JOBS)
        .map(|i| add(&store, dir.path(), &format!("ok{i}.mp4"), 3, true).id)
        .collect();
    let runner = Runner::start(store.clone(), Arc::new(Scripted::default()), cfg()).expect("start");
    store.inject_faults(100, 3);
    let started = Instant::now();
    let run = tokio::time::timeout(Duration::from_secs(120), runner.clone().run(true));
    run.await.expect("the runner finished").expect("run");
    let injected = store.faults_injected();
    // The last faults may still be planned when the queue is empty.
    store.inject_faults(0, 1);
    let done = ids
        .iter()
        .filter(|id| store.get(id).expect("job").state == JobState::Done)
        .count();
    eprintln!(
        "store-faults: injected={injected} (BUSY and FULL in turn, at one store call in 3) jobs={JOBS} done={done} total_s={:.1}",
        started.elapsed().as_secs_f64()
    );
    assert!(injected >= 60, "only {injected} faults were injected");
    assert_eq!(done, JOBS);
}

/// Work stuck for good (a hung fsync) is abandoned after a stall: the
/// job fails as `stalled`, its slot is freed for the next job, and the
/// stuck thread's late doings are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_that_never_returns_is_abandoned_and_its_slot_freed() {
    let (dir, store) = setup();
    let stuck = add(&store, dir.path(), "hang.mp4", 1, true);
    let next = add(&store, dir.path(), "ok.mp4", 1, true);
    let cfg = RunnerConfig {
        stall_after: Duration::from_millis(500),
        ..cfg()
    };
    let runner = Runner::start(store.clone(), Arc::new(Scripted::default()), cfg).expect("start");
    tokio::time::timeout(Duration::from_secs(60), runner.clone().run(true))
        .await
        .expect("the runner did not wait for the stuck work")
        .expect("run");
    let j = store.get(&stuck.id).expect("stuck");
    assert_eq!(j.state, JobState::Failed);
    assert_eq!(j.error.map(|e| e.code), Some(ErrorCode::Stalled));
    assert_eq!(store.get(&next.id).expect("next").state, JobState::Done);
    assert!(!runner.is_busy(), "the slot was freed");
    // Nothing the stuck run could still do changes the job now.
    let rev = store.get(&stuck.id).expect("stuck").rev;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.get(&stuck.id).expect("stuck").rev, rev);
}

/// A FIFO put in place of an input does not hang the run: it is refused
/// as not a regular file, at once.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_in_place_of_an_input_fails_without_hanging() {
    let (dir, store) = setup();
    let job = add(&store, dir.path(), "class.mp4", 1, true);
    let path = dir.path().join("class.mp4");
    std::fs::remove_file(&path).expect("rm");
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    let runner = Runner::start(store.clone(), Arc::new(Scripted::default()), cfg()).expect("start");
    tokio::time::timeout(Duration::from_secs(30), runner.clone().run(true))
        .await
        .expect("the FIFO hung the run")
        .expect("run");
    let j = store.get(&job.id).expect("job");
    assert_eq!(j.state, JobState::Failed);
    let e = j.error.expect("error");
    assert_eq!(e.code, ErrorCode::Unreadable);
    assert!(e.message.contains("not a regular file"), "{}", e.message);
}

/// After an unclean stop with two jobs running, each runs alone first
/// (a third, fresh job waits), and nobody is charged a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_interrupted_together_resume_one_at_a_time() {
    let (dir, store) = setup();
    let a = add(&store, dir.path(), "a.mp4", 3, true);
    let b = add(&store, dir.path(), "b.mp4", 3, true);
    store.claim(WorkKind::Analysis, "dead").expect("claim");
    store.claim(WorkKind::Analysis, "dead").expect("claim");
    store
        .complete_analysis(&b.id, &analysis(1.5))
        .expect("analysed");
    store.claim(WorkKind::Export, "dead").expect("claim");
    let c = add(&store, dir.path(), "c.mp4", 3, true);
    let work = Arc::new(Scripted::default());
    let runner = Runner::start(store.clone(), work.clone(), cfg()).expect("start");
    runner.clone().run(true).await.expect("run");
    for id in [&a.id, &b.id, &c.id] {
        let j = store.get(id).expect("job");
        assert_eq!((j.state, j.crashes, j.isolated), (JobState::Done, 0, false));
    }
    let runs = work.runs.lock().expect("runs").clone();
    for id in [&a.id, &b.id] {
        let (_, beside) = runs.iter().find(|(j, _)| j == id).expect("ran");
        assert!(beside.is_empty(), "{id} ran beside {beside:?}: {runs:?}");
    }
    let first_c = runs.iter().position(|(j, _)| *j == c.id).expect("c ran");
    let last_isolated = runs.iter().rposition(|(j, _)| *j == a.id || *j == b.id);
    assert!(
        last_isolated.is_some_and(|l| l < first_c) || runs[..first_c].len() >= 2,
        "{runs:?}"
    );
}

#[test]
fn eta_extrapolates_from_progress() {
    assert_eq!(eta(Duration::from_secs(10), 0.5), Some(10.0));
    assert_eq!(eta(Duration::from_secs(3), 0.75), Some(1.0));
    assert_eq!(eta(Duration::from_secs(1), 0.01), None, "too early to tell");
    assert_eq!(eta(Duration::from_secs(9), 1.0), Some(0.0));
}

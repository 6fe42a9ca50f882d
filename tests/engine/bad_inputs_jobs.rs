//! The corpus's runner pass and its store rows. Every kind is also queued
//! as a job in one real job store, in a temp data folder, and run by the
//! engine's runner (what the app and `beatsync jobs run` run) with the
//! engine's work; the job must end `done` with its output, or `failed`
//! with a typed code and nothing in its output folder. The store itself
//! is then damaged, locked and written by a newer version, each opened the
//! way the app and the CLI open it (`Store::open`).

use crate::common::files_in;
use crate::{Ctx, Lcg, Outcome, Outcomes, OFFSET_S};
use beatsync_engine as engine;
use engine::export::WriteFault;
use engine::jobs::work::BeforeCommit;
use engine::jobs::{
    EngineWork, ExportOutcome, Fingerprint, Job, JobInput, JobOptions, JobState, NewJob, Runner,
    RunnerConfig, Stage, Store, Work,
};
use engine::media::fingerprint::fingerprint;
use engine::{AlignResult, CancelToken};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What happens to a job's export, as in the kind's direct export.
#[derive(Clone, Copy)]
pub enum Hook {
    None,
    /// Called at the export stage (class video, output folder) until it
    /// returns true: the change made during the export.
    During(fn(&Path, &Path) -> bool),
    /// The output's writes fail past N bytes (the engine's hidden fault).
    Fault(WriteFault),
}

/// The engine's work, unchanged, with each job's [`Hook`] (by output
/// folder: one per job). The hooks only act inside the progress callback
/// or set the engine's write fault; everything else is `EngineWork`.
#[derive(Default)]
struct CorpusWork {
    engine: EngineWork,
    /// Output folder → its hook and whether a `During` change was made.
    hooks: Mutex<HashMap<PathBuf, (Hook, bool)>>,
}

impl CorpusWork {
    fn hooks(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (Hook, bool)>> {
        self.hooks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hook(&self, out: &Path) -> Hook {
        self.hooks().get(out).map_or(Hook::None, |h| h.0)
    }

    fn acted(&self, out: &Path) -> bool {
        self.hooks().get(out).is_some_and(|h| h.1)
    }
}

impl Work for CorpusWork {
    fn analyze(
        &self,
        job: &Job,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(Stage, f64),
    ) -> engine::Result<AlignResult> {
        self.engine.analyze(job, cancel, progress)
    }

    fn plan_output(&self, job: &Job) -> engine::Result<PathBuf> {
        self.engine.plan_output(job)
    }

    fn adopt(&self, job: &Job, output: &Path) -> engine::Result<serde_json::Value> {
        self.engine.adopt(job, output)
    }

    fn export(
        &self,
        job: &Job,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(Stage, f64),
        before_commit: BeforeCommit<'_>,
    ) -> engine::Result<ExportOutcome> {
        let out = job.options.out_dir.clone().unwrap_or_default();
        match self.hook(&out) {
            Hook::None => self.engine.export(job, cancel, progress, before_commit),
            Hook::Fault(fault) => EngineWork {
                write_fault: Some(fault),
                ..self.engine.clone()
            }
            .export(job, cancel, progress, before_commit),
            Hook::During(act) => {
                let mut changing = |stage: Stage, f: f64| {
                    if stage == Stage::Export && !self.acted(&out) && act(&job.recording.path, &out)
                    {
                        if let Some(h) = self.hooks().get_mut(&out) {
                            h.1 = true;
                        }
                    }
                    progress(stage, f);
                };
                self.engine
                    .export(job, cancel, &mut changing, before_commit)
            }
        }
    }
}

/// One job store and its runner for the whole corpus.
pub struct Rig {
    store: Arc<Store>,
    runner: Arc<Runner<CorpusWork>>,
    work: Arc<CorpusWork>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The valid class video's fingerprint: what a job was queued with
    /// when its input is no longer a file that can be fingerprinted (the
    /// app and the CLI refuse such a file when adding it; the runner meets
    /// it when the file is replaced after it was queued).
    queued_as: Fingerprint,
}

impl Rig {
    /// Opens the store in `data` and starts the runner on its own thread:
    /// one analysis and one export at a time (the app's slots on two
    /// cores), transient failures tried again after 100 ms instead of 2 s.
    pub fn start(data: &Path, class: &Path) -> Rig {
        let (store, recovery) = Store::open(data).expect("the job store opens");
        assert!(recovery.is_none(), "a new store needs no recovery");
        let store = Arc::new(store);
        let work = Arc::new(CorpusWork::default());
        let cfg = RunnerConfig {
            analysis_slots: 1,
            export_slots: 1,
            stall_after: Duration::from_secs(30),
            abandon_after: Duration::from_secs(5),
            backoff: vec![Duration::from_millis(100)],
            poll_interval: Duration::from_millis(100),
            ..RunnerConfig::default()
        };
        let runner = Runner::start(store.clone(), work.clone(), cfg).expect("the runner starts");
        let running = runner.clone();
        let thread = std::thread::Builder::new()
            .name("corpus-runner".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(running.run(false))
                    .expect("the runner ends only when stopped");
            })
            .expect("runner thread");
        Rig {
            store,
            runner,
            work,
            thread: Mutex::new(Some(thread)),
            queued_as: fingerprint(class).expect("the class video fingerprints"),
        }
    }

    /// Queues `class` against `song` into the fresh folder `out`, with the
    /// direct export's placement ([`OFFSET_S`], rate 1) and the song
    /// confirmed, as the app queues a job the teacher placed by hand (the
    /// runner still analyses first). Three tries, as the app gives.
    pub fn submit(&self, out: &Path, class: &Path, song: &Path, hook: Hook) -> String {
        std::fs::create_dir_all(out).expect("job output folder");
        self.work.hooks().insert(out.to_path_buf(), (hook, false));
        let input = |p: &Path| JobInput {
            path: p.to_path_buf(),
            fingerprint: fingerprint(p).unwrap_or_else(|_| self.queued_as.clone()),
        };
        let job = self
            .store
            .add(NewJob {
                recording: input(class),
                song: input(song),
                options: JobOptions {
                    out_dir: Some(out.to_path_buf()),
                    offset_s: Some(OFFSET_S),
                    rate: Some(1.0),
                    song_confirmed: true,
                    ..JobOptions::default()
                },
                max_attempts: 3,
            })
            .expect("the job is added");
        self.runner.wake();
        job.id
    }

    /// Waits for the job to end and checks what it left: `done` with one
    /// output that probes with picture and sound and nothing else in its
    /// folder, or `failed` with a code, a message and an empty folder.
    pub fn outcome(&self, id: &str, out: &Path) -> Outcome {
        let job = loop {
            let j = self.store.get(id).expect("the job is in the store");
            if j.state.is_finished() {
                break j;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Hook::During(_) = self.work.hook(out) {
            assert!(
                self.work.acted(out),
                "the change was made during the export"
            );
        }
        let left = files_in(out);
        match job.state {
            JobState::Done => {
                let output = job.output_path.as_ref().expect("a done job has its output");
                assert_eq!(output.parent(), Some(out), "written where asked");
                let name = output.file_name().expect("file name").to_string_lossy();
                assert_eq!(left, vec![name.to_string()], "one output, nothing else");
                let info = engine::probe(output).expect("the output probes");
                info.require_video().expect("the output has its picture");
                info.require_audio().expect("the output has the song");
                "done".into()
            }
            JobState::Failed => {
                let e = job.error.as_ref().expect("a failed job says why");
                assert!(!e.message.is_empty(), "the user reads a message");
                assert!(left.is_empty(), "failed ({}) but left {left:?}", e.message);
                e.code.as_str().into()
            }
            s => panic!("job {id} ended {s:?}, neither done nor failed"),
        }
    }

    /// [`Rig::submit`] then [`Rig::outcome`].
    pub fn run(&self, out: &Path, class: &Path, song: &Path, hook: Hook) -> Outcome {
        let id = self.submit(out, class, song, hook);
        self.outcome(&id, out)
    }

    /// Jobs the store holds.
    pub fn jobs(&self) -> usize {
        self.store.list(&[], usize::MAX >> 1).expect("list").len()
    }

    /// Stops the runner (nothing is running by then) and waits for it.
    pub fn stop(&self) {
        self.runner.stop();
        self.runner.wait_idle_blocking();
        if let Some(t) = self.thread.lock().expect("lock").take() {
            t.join().expect("the runner thread ends");
        }
    }
}

// ---------------------------------------------------------------------------
// The store rows

const DB_FILE: &str = "jobs.sqlite3";

/// A store as the app leaves it on closing: `n` jobs on the valid files,
/// the connection closed (the WAL folded into the database file).
fn store_with_jobs(ctx: &Ctx, data: &Path, n: usize) -> Vec<String> {
    let (store, _) = Store::open(data).expect("store");
    let input = |p: &Path| JobInput {
        path: p.to_path_buf(),
        fingerprint: fingerprint(p).expect("fingerprint"),
    };
    (0..n)
        .map(|i| {
            store
                .add(NewJob {
                    recording: input(&ctx.class),
                    song: input(&ctx.song),
                    options: JobOptions {
                        out_dir: Some(data.join(format!("out {i}"))),
                        ..JobOptions::default()
                    },
                    max_attempts: 3,
                })
                .expect("add")
                .id
        })
        .collect()
}

fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Lcg(seed);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// A store whose database file was damaged: `Store::open` moves it aside
/// byte for byte, copies what can still be read into a fresh one, and
/// says so (the app tells the page); the new store takes jobs.
fn reopen_damaged(ctx: &Ctx, data: &Path, ids: &[String], damaged: &[u8]) -> usize {
    let (store, recovery) = Store::open(data).expect("a damaged store still opens");
    let r = recovery.expect("the recovery is reported");
    assert!(!r.reason.is_empty());
    let kept = std::fs::read(&r.moved_to).expect("the damaged file is kept");
    assert!(kept == damaged, "the damaged file is kept as it was");
    let listed = store.list(&[], 1000).expect("the new store lists");
    assert_eq!(listed.len(), r.recovered_jobs, "{r:?}");
    assert!(listed.iter().all(|j| ids.contains(&j.id)), "only real jobs");
    drop(store);
    let added = store_with_jobs(ctx, data, 1);
    let (store, again) = Store::open(data).expect("reopens");
    assert!(again.is_none(), "the new store is sound");
    assert!(store.get(&added[0]).is_ok(), "a new job is kept");
    r.recovered_jobs
}

/// The database file overwritten with garbage, whole; then one page in the
/// middle of a store of 200 jobs: every row on another page comes back.
pub fn store_damaged(ctx: &Ctx, case: &Path) -> Outcomes {
    let data = case.join("whole");
    let ids = store_with_jobs(ctx, &data, 3);
    let db = data.join(DB_FILE);
    let bad = garbage(std::fs::metadata(&db).expect("db").len() as usize, 5);
    std::fs::write(&db, &bad).expect("damage");
    assert_eq!(
        reopen_damaged(ctx, &data, &ids, &bad),
        0,
        "nothing readable"
    );

    let data = case.join("page");
    let ids = store_with_jobs(ctx, &data, 200);
    let db = data.join(DB_FILE);
    let mut bad = std::fs::read(&db).expect("db");
    let pages = bad.len() / 4096;
    assert!(pages >= 8, "{pages} pages");
    let at = pages / 2 * 4096;
    bad[at..at + 4096].copy_from_slice(&garbage(4096, 6));
    std::fs::write(&db, &bad).expect("damage");
    let back = reopen_damaged(ctx, &data, &ids, &bad);
    eprintln!(
        "store damaged in page {} of {pages}: {back} of 200 jobs read back",
        pages / 2
    );
    // Only the rows on the damaged page are lost (a few: a 4-kB page holds
    // about six); a scan would stop there and lose every row after it.
    assert!((180..200).contains(&back), "{back} of 200 jobs read back");
    Outcomes::of("-", "-", "-", "recovered")
}

/// Another connection holds an exclusive transaction (another program
/// writing the store). A second `Store::open` (the CLI beside the app)
/// still opens and reads; a write waits for the lock (5 s), then fails
/// with `store` (which the runner tries again); once the lock is let go,
/// the same write succeeds and nothing was lost.
pub fn store_locked(ctx: &Ctx, case: &Path) -> Outcomes {
    let data = case.join("data");
    let ids = store_with_jobs(ctx, &data, 2);
    let (store, _) = Store::open(&data).expect("store");
    let other = rusqlite::Connection::open(data.join(DB_FILE)).expect("connection");
    other
        .execute_batch("BEGIN EXCLUSIVE; UPDATE jobs SET progress = progress;")
        .expect("exclusive transaction");
    let (beside, _) = Store::open(&data).expect("a second open while locked");
    assert_eq!(beside.list(&[], 10).expect("reads while locked").len(), 2);
    let input = |p: &Path| JobInput {
        path: p.to_path_buf(),
        fingerprint: fingerprint(p).expect("fingerprint"),
    };
    let new = || NewJob {
        recording: input(&ctx.class),
        song: input(&ctx.song),
        options: JobOptions {
            out_dir: Some(data.clone()),
            ..JobOptions::default()
        },
        max_attempts: 3,
    };
    let t = Instant::now();
    let e = store.add(new()).expect_err("a write while locked fails");
    let waited = t.elapsed();
    assert!(e.is_retryable(), "the runner tries it again: {e}");
    let payload = e.to_payload();
    eprintln!(
        "store locked: {} after {:.1} s: {}",
        payload.code,
        waited.as_secs_f64(),
        payload.message
    );
    assert!(payload.message.contains("busy"), "{}", payload.message);
    let code = payload.code.as_str().to_string();
    other.execute_batch("COMMIT").expect("lock released");
    let added = store.add(new()).expect("the write succeeds once released");
    let all: Vec<String> = store
        .list(&[], 10)
        .expect("list")
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(ids.iter().chain([&added.id]).all(|id| all.contains(id)));
    Outcomes::of("-", "-", "-", &format!("{code}, then ok"))
}

/// A store written by a newer BeatSync (schema version one past this
/// one's): refused with `store` and "update BeatSync", the file left as
/// it was, its jobs still there.
pub fn store_newer(ctx: &Ctx, case: &Path) -> Outcomes {
    let data = case.join("data");
    let ids = store_with_jobs(ctx, &data, 2);
    let db = data.join(DB_FILE);
    {
        let c = rusqlite::Connection::open(&db).expect("connection");
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        c.pragma_update(None, "user_version", v + 1).expect("newer");
    }
    let before = std::fs::read(&db).expect("db");
    let e = Store::open(&data).err().expect("a newer store is refused");
    let payload = e.to_payload();
    assert!(
        payload.message.contains("update BeatSync"),
        "{}",
        payload.message
    );
    assert!(std::fs::read(&db).expect("db") == before, "left as it was");
    let names: Vec<String> = std::fs::read_dir(&data)
        .expect("data")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("damaged")),
        "not moved aside: {names:?}"
    );
    let c = rusqlite::Connection::open(&db).expect("connection");
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n as usize, ids.len(), "its jobs are all there");
    Outcomes::of("-", "-", "-", payload.code.as_str())
}

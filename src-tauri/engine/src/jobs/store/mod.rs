//! The job store: SQLite (WAL, synchronous=FULL) in the user data directory.
//! Every state change is one transaction, and every change is announced on a
//! broadcast channel right after it commits — the only place events come from.

use super::model::{now_ms, Fingerprint, Job, JobInput, JobOptions, JobState, StoreEvent};
use super::{JobsError, JobsResult};
use crate::error::ErrorPayload;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, Transaction};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::broadcast;

pub const DB_FILE: &str = "jobs.sqlite3";
const LOCK_FILE: &str = "runner.lock";

/// Schema migrations; `PRAGMA user_version` is how many have been applied.
/// Never edit one that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // v1: the jobs table.
    "CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        dance_path TEXT NOT NULL,
        dance_fp TEXT NOT NULL,
        bgm_path TEXT NOT NULL,
        bgm_fp TEXT NOT NULL,
        options TEXT NOT NULL,
        state TEXT NOT NULL,
        stage TEXT,
        progress REAL NOT NULL DEFAULT 0,
        eta_s REAL,
        export_requested INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 3,
        next_run_at INTEGER,
        checkpoint TEXT,
        report TEXT,
        output_path TEXT,
        error_code TEXT,
        error_message TEXT,
        interruptions INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        runner_id TEXT,
        heartbeat_at INTEGER
    );
    CREATE INDEX jobs_by_state ON jobs(state, next_run_at);
    CREATE INDEX jobs_by_created ON jobs(created_at);",
    // v2: app settings (output folder, language, …) live beside the jobs.
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub dance: JobInput,
    pub bgm: JobInput,
    pub options: JobOptions,
    pub max_attempts: u32,
}

/// What happened when the database was found damaged at start-up.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recovery {
    pub moved_to: PathBuf,
    pub reason: String,
    pub recovered_jobs: usize,
}

/// How much finished history to keep.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub keep_last: usize,
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep_last: 500,
            max_age: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkKind {
    Analysis,
    Export,
}

/// History figures for the UI.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stats {
    pub done: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// done / (done + failed), or None when nothing finished yet.
    pub success_rate: Option<f64>,
}

pub struct Store {
    conn: Mutex<Connection>,
    dir: PathBuf,
    events: broadcast::Sender<StoreEvent>,
}

/// Held by the one runner allowed per store; released on drop.
pub struct RunnerLock {
    _file: std::fs::File,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> JobsError {
    JobsError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) | Some(rusqlite::ErrorCode::NotADatabase)
    )
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

/// Applies the migrations not yet applied, each in its own transaction.
pub(crate) fn migrate(conn: &mut Connection, upto: i64) -> rusqlite::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(upto as usize) {
        let version = i as i64 + 1;
        if version <= current {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

fn open_checked(db: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(db)?;
    configure(&conn)?;
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(check),
        ));
    }
    migrate(&mut conn, SCHEMA_VERSION)?;
    Ok(conn)
}

const JOB_COLUMNS: &str = "id, dance_path, dance_fp, bgm_path, bgm_fp, options, state, stage, progress, eta_s, export_requested, attempts, max_attempts, next_run_at, checkpoint, report, output_path, error_code, error_message, interruptions, created_at, started_at, finished_at, runner_id, heartbeat_at";

fn json_col<T: serde::de::DeserializeOwned>(row: &Row, i: usize) -> rusqlite::Result<T> {
    let s: String = row.get(i)?;
    serde_json::from_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn opt_json_col(row: &Row, i: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    let s: Option<String> = row.get(i)?;
    match s {
        None => Ok(None),
        Some(s) => serde_json::from_str(&s).map(Some).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        }),
    }
}

fn job_from_row(row: &Row) -> rusqlite::Result<Job> {
    let state: String = row.get(6)?;
    let error_code: Option<String> = row.get(17)?;
    let error_message: Option<String> = row.get(18)?;
    Ok(Job {
        id: row.get(0)?,
        dance: JobInput {
            path: PathBuf::from(row.get::<_, String>(1)?),
            fingerprint: json_col::<Fingerprint>(row, 2)?,
        },
        bgm: JobInput {
            path: PathBuf::from(row.get::<_, String>(3)?),
            fingerprint: json_col::<Fingerprint>(row, 4)?,
        },
        options: json_col::<JobOptions>(row, 5)?,
        state: JobState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                6,
                rusqlite::types::Type::Text,
                format!("unknown state {state}").into(),
            )
        })?,
        stage: row.get(7)?,
        progress: row.get(8)?,
        eta_s: row.get(9)?,
        export_requested: row.get::<_, i64>(10)? != 0,
        attempts: row.get(11)?,
        max_attempts: row.get(12)?,
        next_run_at: row.get(13)?,
        checkpoint: opt_json_col(row, 14)?,
        report: opt_json_col(row, 15)?,
        output_path: row.get::<_, Option<String>>(16)?.map(PathBuf::from),
        error: error_code.map(|code| ErrorPayload {
            code,
            message: error_message.unwrap_or_default(),
        }),
        interruptions: row.get(19)?,
        created_at: row.get(20)?,
        started_at: row.get(21)?,
        finished_at: row.get(22)?,
        runner_id: row.get(23)?,
        heartbeat_at: row.get(24)?,
    })
}

/// A transition the job's state does not allow.
fn refuse(j: &Job, action: &'static str) -> JobsError {
    JobsError::InvalidState {
        id: j.id.clone(),
        state: j.state.as_str(),
        action,
    }
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn get_tx(tx: &Transaction, id: &str) -> JobsResult<Job> {
    tx.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
        [id],
        job_from_row,
    )
    .optional()?
    .ok_or_else(|| JobsError::NotFound(id.to_string()))
}

/// A short unique id: time-ordered, with a per-process counter and pid mixed in.
fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mix = xxhash_rust::xxh3::xxh3_64(
        &[
            nanos.to_le_bytes().as_slice(),
            &n.to_le_bytes(),
            &std::process::id().to_le_bytes(),
        ]
        .concat(),
    );
    format!("{:011x}{:05x}", (nanos / 1_000_000) as u64, mix & 0xfffff)
}

impl Store {
    /// Where the store lives: `$BEATSYNC_DATA_DIR`, else the platform's user data directory.
    pub fn default_dir() -> JobsResult<PathBuf> {
        if let Some(d) = std::env::var_os("BEATSYNC_DATA_DIR") {
            return Ok(PathBuf::from(d));
        }
        directories::ProjectDirs::from("app", "BeatSync", "BeatSync")
            .map(|p| p.data_dir().to_path_buf())
            .ok_or_else(|| {
                io_err(
                    Path::new("~"),
                    "no home directory to keep the job history in; set BEATSYNC_DATA_DIR",
                )
            })
    }

    /// Opens (creating or migrating) the store in `dir`. A damaged database is
    /// moved aside with a timestamped name, what can be read from it is
    /// copied into a fresh one, and the returned `Recovery` says so.
    pub fn open(dir: &Path) -> JobsResult<(Store, Option<Recovery>)> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let db = dir.join(DB_FILE);
        let (conn, recovery) = match open_checked(&db) {
            Ok(c) => (c, None),
            Err(e) if is_damage(&e) => {
                let reason = e.to_string();
                let moved_to = move_aside(&db)?;
                tracing::error!(
                    "job database {} was damaged ({reason}); moved to {}",
                    db.display(),
                    moved_to.display()
                );
                let mut conn = open_checked(&db)?;
                let recovered_jobs = salvage(&moved_to, &mut conn);
                (
                    conn,
                    Some(Recovery {
                        moved_to,
                        reason,
                        recovered_jobs,
                    }),
                )
            }
            Err(e) => return Err(e.into()),
        };
        let (events, _) = broadcast::channel(1024);
        Ok((
            Store {
                conn: Mutex::new(conn),
                dir: dir.to_path_buf(),
                events,
            },
            recovery,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the one-runner-per-store lock, or says who has it.
    pub fn lock_runner(&self) -> JobsResult<RunnerLock> {
        let path = self.dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(RunnerLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(JobsError::Locked(self.dir.clone())),
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path, e)),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    fn emit(&self, job: &Job) {
        let _ = self
            .events
            .send(StoreEvent::JobChanged(Box::new(job.clone())));
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (transactions roll back), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one transaction on the job `id`, commits, and announces the result.
    fn transition(
        &self,
        id: &str,
        f: impl FnOnce(&Transaction, &Job) -> JobsResult<()>,
    ) -> JobsResult<Job> {
        let job = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let before = get_tx(&tx, id)?;
            f(&tx, &before)?;
            let after = get_tx(&tx, id)?;
            tx.commit()?;
            after
        };
        self.emit(&job);
        Ok(job)
    }

    pub fn add(&self, new: NewJob) -> JobsResult<Job> {
        let id = new_id();
        let now = now_ms();
        {
            let conn = self.conn();
            conn.execute(
                "INSERT INTO jobs (id, dance_path, dance_fp, bgm_path, bgm_fp, options, state, export_requested, max_attempts, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8, ?9)",
                params![
                    id,
                    path_str(&new.dance.path),
                    to_json(&new.dance.fingerprint),
                    path_str(&new.bgm.path),
                    to_json(&new.bgm.fingerprint),
                    to_json(&new.options),
                    new.options.auto_export as i64,
                    new.max_attempts.max(1),
                    now
                ],
            )?;
        }
        let job = self.get(&id)?;
        self.emit(&job);
        Ok(job)
    }

    pub fn get(&self, id: &str) -> JobsResult<Job> {
        let conn = self.conn();
        conn.query_row(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
            [id],
            job_from_row,
        )
        .optional()?
        .ok_or_else(|| JobsError::NotFound(id.to_string()))
    }

    /// Jobs, newest first; `states` filters when not empty.
    pub fn list(&self, states: &[JobState], limit: usize) -> JobsResult<Vec<Job>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit as i64], job_from_row)?;
        let mut out = Vec::new();
        for r in rows {
            let j = r?;
            if states.is_empty() || states.contains(&j.state) {
                out.push(j);
            }
        }
        Ok(out)
    }

    /// Picks the oldest job ready for `kind` and marks it running, counting the
    /// attempt in the same transaction (so a file that crashes the process
    /// cannot loop forever).
    pub fn claim(&self, kind: WorkKind, runner_id: &str) -> JobsResult<Option<Job>> {
        let now = now_ms();
        let (from, to) = match kind {
            WorkKind::Analysis => ("queued", "analyzing"),
            WorkKind::Export => ("analyzed", "exporting"),
        };
        let job = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let extra = if kind == WorkKind::Export {
                "AND export_requested = 1"
            } else {
                ""
            };
            let id: Option<String> = tx
                .query_row(
                    &format!(
                        "SELECT id FROM jobs WHERE state = ?1 {extra} AND (next_run_at IS NULL OR next_run_at <= ?2)
                         ORDER BY created_at, id LIMIT 1"
                    ),
                    params![from, now],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = id else { return Ok(None) };
            tx.execute(
                "UPDATE jobs SET state = ?2, attempts = attempts + 1, stage = NULL, progress = 0, eta_s = NULL,
                     next_run_at = NULL, started_at = COALESCE(started_at, ?3), runner_id = ?4, heartbeat_at = ?3
                 WHERE id = ?1",
                params![id, to, now, runner_id],
            )?;
            let j = get_tx(&tx, &id)?;
            tx.commit()?;
            j
        };
        self.emit(&job);
        Ok(Some(job))
    }

    /// Records progress and the heartbeat of a running job. Returns false when
    /// the job is no longer running here (cancelled, possibly by another process).
    pub fn progress(
        &self,
        id: &str,
        stage: &str,
        fraction: f64,
        eta_s: Option<f64>,
    ) -> JobsResult<bool> {
        let now = now_ms();
        let job = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let j = get_tx(&tx, id)?;
            if !j.state.is_running() {
                return Ok(false);
            }
            tx.execute(
                "UPDATE jobs SET stage = ?2, progress = ?3, eta_s = ?4, heartbeat_at = ?5 WHERE id = ?1",
                params![id, stage, fraction.clamp(0.0, 1.0), eta_s, now],
            )?;
            let j = get_tx(&tx, id)?;
            tx.commit()?;
            j
        };
        self.emit(&job);
        Ok(true)
    }

    pub fn complete_analysis(&self, id: &str, checkpoint: &serde_json::Value) -> JobsResult<Job> {
        self.transition(id, |tx, j| {
            if j.state != JobState::Analyzing {
                return Err(refuse(j, "marked analysed"));
            }
            // `attempts` counts runs of the current phase: the export starts afresh.
            tx.execute(
                "UPDATE jobs SET state = 'analyzed', stage = NULL, progress = 1, eta_s = NULL, checkpoint = ?2,
                     attempts = 0, error_code = NULL, error_message = NULL, runner_id = NULL
                 WHERE id = ?1",
                params![id, checkpoint.to_string()],
            )?;
            Ok(())
        })
    }

    pub fn complete_export(
        &self,
        id: &str,
        output: &Path,
        report: &serde_json::Value,
    ) -> JobsResult<Job> {
        let now = now_ms();
        self.transition(id, |tx, j| {
            if j.state != JobState::Exporting {
                return Err(refuse(j, "marked done"));
            }
            tx.execute(
                "UPDATE jobs SET state = 'done', stage = NULL, progress = 1, eta_s = NULL, output_path = ?2, report = ?3,
                     error_code = NULL, error_message = NULL, finished_at = ?4, runner_id = NULL
                 WHERE id = ?1",
                params![id, path_str(output), report.to_string(), now],
            )?;
            Ok(())
        })
    }

    /// A run failed. Transient failures go back to the queue after `backoff`
    /// while tries remain; anything else fails the job for good.
    pub fn fail_run(
        &self,
        id: &str,
        error: &ErrorPayload,
        transient: bool,
        backoff: Duration,
    ) -> JobsResult<Job> {
        let now = now_ms();
        self.transition(id, |tx, j| {
            if !j.state.is_running() {
                // Cancelled meanwhile: the cancellation stands.
                return Ok(());
            }
            if transient && j.attempts < j.max_attempts {
                let back = if j.state == JobState::Analyzing { "queued" } else { "analyzed" };
                tx.execute(
                    "UPDATE jobs SET state = ?2, stage = NULL, eta_s = NULL, next_run_at = ?3, error_code = ?4,
                         error_message = ?5, runner_id = NULL
                     WHERE id = ?1",
                    params![id, back, now + backoff.as_millis() as i64, error.code, error.message],
                )?;
            } else {
                tx.execute(
                    "UPDATE jobs SET state = 'failed', stage = NULL, eta_s = NULL, error_code = ?2, error_message = ?3,
                         finished_at = ?4, runner_id = NULL
                     WHERE id = ?1",
                    params![id, error.code, error.message, now],
                )?;
            }
            Ok(())
        })
    }

    pub fn cancel(&self, id: &str) -> JobsResult<Job> {
        let now = now_ms();
        self.transition(id, |tx, j| {
            if j.state.is_finished() {
                return Err(refuse(j, "cancelled"));
            }
            tx.execute(
                "UPDATE jobs SET state = 'cancelled', stage = NULL, eta_s = NULL, next_run_at = NULL,
                     error_code = 'cancelled', error_message = 'cancelled by the user', finished_at = ?2, runner_id = NULL
                 WHERE id = ?1",
                params![id, now],
            )?;
            Ok(())
        })
    }

    /// Puts a failed or cancelled job back in line; an analysis already done is kept.
    pub fn retry(&self, id: &str) -> JobsResult<Job> {
        self.transition(id, |tx, j| {
            if !matches!(j.state, JobState::Failed | JobState::Cancelled) {
                return Err(refuse(j, "retried"));
            }
            let back = if j.checkpoint.is_some() { "analyzed" } else { "queued" };
            tx.execute(
                "UPDATE jobs SET state = ?2, stage = NULL, progress = 0, eta_s = NULL, attempts = 0, next_run_at = NULL,
                     error_code = NULL, error_message = NULL, finished_at = NULL
                 WHERE id = ?1",
                params![id, back],
            )?;
            Ok(())
        })
    }

    /// Asks for the export (the user's go), with the options to export with.
    pub fn request_export(&self, id: &str, options: &JobOptions) -> JobsResult<Job> {
        self.transition(id, |tx, j| {
            if !j.state.is_before_export() {
                return Err(refuse(j, "exported"));
            }
            tx.execute(
                "UPDATE jobs SET export_requested = 1, options = ?2 WHERE id = ?1",
                params![id, to_json(options)],
            )?;
            Ok(())
        })
    }

    /// Records where the running export will write, before it writes.
    pub fn plan_output(&self, id: &str, path: &Path) -> JobsResult<Job> {
        self.transition(id, |tx, j| {
            if j.state != JobState::Exporting {
                return Err(refuse(j, "given an output"));
            }
            tx.execute(
                "UPDATE jobs SET output_path = ?2 WHERE id = ?1",
                params![id, path_str(path)],
            )?;
            Ok(())
        })
    }

    /// Changes the options of a job that has not started exporting.
    pub fn update_options(&self, id: &str, f: impl FnOnce(&mut JobOptions)) -> JobsResult<Job> {
        self.transition(id, |tx, j| {
            if !j.state.is_before_export() {
                return Err(refuse(j, "changed"));
            }
            let mut o = j.options.clone();
            f(&mut o);
            tx.execute(
                "UPDATE jobs SET options = ?2 WHERE id = ?1",
                params![id, to_json(&o)],
            )?;
            Ok(())
        })
    }

    /// At start-up, with the runner lock held: jobs a dead runner left running
    /// are interrupted and re-queued (analysis from scratch, export from its
    /// checkpoint), or failed when they have used up their tries.
    pub fn recover_interrupted(&self) -> JobsResult<Vec<Job>> {
        let ids: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT id FROM jobs WHERE state IN ('analyzing', 'exporting') ORDER BY created_at",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        ids.iter().map(|id| self.interrupt(id, false)).collect()
    }

    /// Hands a running job back to the queue. `clean` (the runner stopped on
    /// request) does not use up a try; a crash does, so that a file that
    /// crashes the app ends `failed` instead of looping forever.
    pub fn interrupt(&self, id: &str, clean: bool) -> JobsResult<Job> {
        let now = now_ms();
        self.transition(id, |tx, j| {
            if !j.state.is_running() {
                return Ok(());
            }
            if clean {
                tx.execute("UPDATE jobs SET attempts = MAX(attempts - 1, 0) WHERE id = ?1", [id])?;
            } else if j.attempts >= j.max_attempts {
                tx.execute(
                    "UPDATE jobs SET state = 'failed', stage = NULL, eta_s = NULL, interruptions = interruptions + 1,
                         error_code = 'crashed', error_message = ?2, finished_at = ?3, runner_id = NULL
                     WHERE id = ?1",
                    params![
                        id,
                        format!("BeatSync stopped while working on this job {} times, so it is not tried again automatically; check the files, then use Retry", j.attempts),
                        now
                    ],
                )?;
                return Ok(());
            }
            let back = if j.state == JobState::Analyzing { "queued" } else { "analyzed" };
            tx.execute(
                "UPDATE jobs SET state = ?2, stage = 'interrupted', eta_s = NULL, interruptions = interruptions + 1,
                     runner_id = NULL
                 WHERE id = ?1",
                params![id, back],
            )?;
            Ok(())
        })
    }

    /// Deletes finished jobs (all of them, or the given ones); returns how many.
    pub fn clear_history(&self, only: Option<&[String]>) -> JobsResult<usize> {
        let ids: Vec<String> = {
            let conn = self.conn();
            let mut stmt =
                conn.prepare("SELECT id FROM jobs WHERE state IN ('done', 'failed', 'cancelled')")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter(|id| only.is_none_or(|o| o.contains(id)))
                .collect()
        };
        self.delete(&ids)
    }

    fn delete(&self, ids: &[String]) -> JobsResult<usize> {
        {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            for id in ids {
                tx.execute("DELETE FROM jobs WHERE id = ?1", [id])?;
            }
            tx.commit()?;
        }
        for id in ids {
            let _ = self.events.send(StoreEvent::JobRemoved { id: id.clone() });
        }
        Ok(ids.len())
    }

    /// Applies the retention policy to finished jobs: keeps the newest
    /// `keep_last`, and none older than `max_age`.
    pub fn prune(&self, retention: Retention) -> JobsResult<usize> {
        let cutoff = now_ms() - retention.max_age.as_millis() as i64;
        let ids: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT id, COALESCE(finished_at, created_at) FROM jobs WHERE state IN ('done', 'failed', 'cancelled')
                 ORDER BY COALESCE(finished_at, created_at) DESC, id DESC",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let all = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            all.into_iter()
                .enumerate()
                .filter(|(i, (_, t))| *i >= retention.keep_last || *t < cutoff)
                .map(|(_, (id, _))| id)
                .collect()
        };
        self.delete(&ids)
    }

    pub fn stats(&self) -> JobsResult<Stats> {
        let conn = self.conn();
        let count = |state: &str| -> rusqlite::Result<u64> {
            conn.query_row("SELECT COUNT(*) FROM jobs WHERE state = ?1", [state], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
        };
        let (done, failed, cancelled) = (count("done")?, count("failed")?, count("cancelled")?);
        Ok(Stats {
            done,
            failed,
            cancelled,
            success_rate: (done + failed > 0).then(|| done as f64 / (done + failed) as f64),
        })
    }

    pub fn setting(&self, key: &str) -> JobsResult<Option<serde_json::Value>> {
        let conn = self.conn();
        let v: Option<String> = conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.and_then(|s| serde_json::from_str(&s).ok()))
    }

    pub fn set_setting(&self, key: &str, value: &serde_json::Value) -> JobsResult<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value.to_string()],
        )?;
        Ok(())
    }
}

/// Renames a damaged database (and its WAL/SHM files) to `jobs.damaged-<time>.sqlite3`.
fn move_aside(db: &Path) -> JobsResult<PathBuf> {
    let stamp = {
        let ms = now_ms();
        let secs = ms / 1000;
        let (d, s) = (secs / 86400, secs % 86400);
        // Civil date from days since the epoch (proleptic Gregorian).
        let z = d + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{year:04}{month:02}{day:02}-{:02}{:02}{:02}-{:03}",
            s / 3600,
            s % 3600 / 60,
            s % 60,
            ms % 1000
        )
    };
    let dir = db.parent().unwrap_or(Path::new("."));
    let target = dir.join(format!("jobs.damaged-{stamp}.sqlite3"));
    std::fs::rename(db, &target).map_err(|e| io_err(db, e))?;
    for ext in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{ext}", db.display()));
        if side.exists() {
            let _ = std::fs::rename(&side, PathBuf::from(format!("{}{ext}", target.display())));
        }
    }
    Ok(target)
}

/// Copies every job row that can still be read from a damaged database.
fn salvage(damaged: &Path, into: &mut Connection) -> usize {
    let Ok(old) = Connection::open_with_flags(damaged, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    let Ok(mut stmt) = old.prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs")) else {
        return 0;
    };
    let Ok(rows) = stmt.query_map([], job_from_row) else {
        return 0;
    };
    let mut n = 0;
    for job in rows.map_while(|r| r.ok()) {
        let ok = into.execute(
            &format!("INSERT OR IGNORE INTO jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)"),
            params![
                job.id,
                path_str(&job.dance.path),
                to_json(&job.dance.fingerprint),
                path_str(&job.bgm.path),
                to_json(&job.bgm.fingerprint),
                to_json(&job.options),
                job.state.as_str(),
                job.stage,
                job.progress,
                job.eta_s,
                job.export_requested as i64,
                job.attempts,
                job.max_attempts,
                job.next_run_at,
                job.checkpoint.map(|v| v.to_string()),
                job.report.map(|v| v.to_string()),
                job.output_path.as_deref().map(path_str),
                job.error.as_ref().map(|e| e.code.clone()),
                job.error.as_ref().map(|e| e.message.clone()),
                job.interruptions,
                job.created_at,
                job.started_at,
                job.finished_at,
                job.runner_id,
                job.heartbeat_at,
            ],
        );
        if ok.is_ok() {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::fingerprint::fingerprint;

    pub(crate) fn input(dir: &Path, name: &str) -> JobInput {
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, name.repeat(100)).expect("write input");
        }
        JobInput {
            fingerprint: fingerprint(&path).expect("fp"),
            path,
        }
    }

    fn new_job(dir: &Path, auto_export: bool) -> NewJob {
        NewJob {
            dance: input(dir, "class.mp4"),
            bgm: input(dir, "song.m4a"),
            options: JobOptions {
                auto_export,
                ..Default::default()
            },
            max_attempts: 3,
        }
    }

    fn err(code: &str) -> ErrorPayload {
        ErrorPayload {
            code: code.into(),
            message: format!("{code} happened"),
        }
    }

    #[test]
    fn a_job_goes_through_every_state_and_each_change_is_announced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, rec) = Store::open(dir.path()).expect("open");
        assert!(rec.is_none());
        let mut events = store.subscribe();
        let job = store.add(new_job(dir.path(), true)).expect("add");
        assert_eq!(
            (job.state, job.attempts, job.export_requested),
            (JobState::Queued, 0, true)
        );

        assert!(
            store.claim(WorkKind::Export, "r").expect("claim").is_none(),
            "nothing analysed yet"
        );
        let j = store
            .claim(WorkKind::Analysis, "r")
            .expect("claim")
            .expect("a job");
        assert_eq!(
            (j.state, j.attempts, j.runner_id.as_deref()),
            (JobState::Analyzing, 1, Some("r"))
        );
        assert!(j.started_at.is_some() && j.heartbeat_at.is_some());
        assert!(store
            .progress(&j.id, "search", 0.5, Some(3.0))
            .expect("progress"));
        let j = store.get(&j.id).expect("get");
        assert_eq!(
            (j.stage.as_deref(), j.progress, j.eta_s),
            (Some("search"), 0.5, Some(3.0))
        );

        let checkpoint = serde_json::json!({"offset_s": -12.5, "rate": 1.0});
        let j = store
            .complete_analysis(&j.id, &checkpoint)
            .expect("analysed");
        assert_eq!((j.state, j.attempts), (JobState::Analyzed, 0));
        assert_eq!(j.checkpoint, Some(checkpoint));

        let j = store
            .claim(WorkKind::Export, "r")
            .expect("claim")
            .expect("export");
        assert_eq!((j.state, j.attempts), (JobState::Exporting, 1));
        let out = dir.path().join("out.mp4");
        let j = store
            .complete_export(&j.id, &out, &serde_json::json!({"video": "copied"}))
            .expect("done");
        assert_eq!(
            (j.state, j.output_path.as_deref()),
            (JobState::Done, Some(out.as_path()))
        );
        assert!(j.finished_at.is_some());
        assert!(
            store
                .complete_export(&j.id, &out, &serde_json::json!({}))
                .is_err(),
            "done is final"
        );

        let mut states = Vec::new();
        while let Ok(StoreEvent::JobChanged(j)) = events.try_recv() {
            states.push(j.state);
        }
        use JobState::*;
        assert_eq!(
            states,
            vec![Queued, Analyzing, Analyzing, Analyzed, Exporting, Done]
        );
    }

    #[test]
    fn analysed_jobs_wait_for_the_users_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open(dir.path()).expect("open");
        let job = store.add(new_job(dir.path(), false)).expect("add");
        store
            .claim(WorkKind::Analysis, "r")
            .expect("claim")
            .expect("job");
        store
            .complete_analysis(&job.id, &serde_json::json!({}))
            .expect("analysed");
        assert!(store.claim(WorkKind::Export, "r").expect("claim").is_none());
        let opts = JobOptions {
            out_dir: Some(dir.path().into()),
            offset_s: Some(1.25),
            auto_export: false,
            ..Default::default()
        };
        let j = store.request_export(&job.id, &opts).expect("go");
        assert!(j.export_requested);
        assert_eq!(j.options.offset_s, Some(1.25));
        assert_eq!(
            store
                .claim(WorkKind::Export, "r")
                .expect("claim")
                .map(|j| j.id),
            Some(job.id)
        );
    }

    #[test]
    fn transient_failures_back_off_and_give_up_after_max_attempts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open(dir.path()).expect("open");
        let job = store.add(new_job(dir.path(), true)).expect("add");
        store.claim(WorkKind::Analysis, "r").expect("claim");
        let j = store
            .fail_run(&job.id, &err("disk_full"), true, Duration::from_secs(60))
            .expect("fail");
        assert_eq!(j.state, JobState::Queued);
        assert!(j.next_run_at.expect("backoff") > now_ms() + 50_000);
        assert_eq!(j.error.as_ref().map(|e| e.code.as_str()), Some("disk_full"));
        assert!(
            store
                .claim(WorkKind::Analysis, "r")
                .expect("claim")
                .is_none(),
            "still backing off"
        );

        for attempt in 2..=3 {
            // Time passes: the backoff runs out.
            store
                .conn()
                .execute(
                    "UPDATE jobs SET next_run_at = ?2 WHERE id = ?1",
                    params![job.id, now_ms() - 1],
                )
                .expect("age");
            let c = store
                .claim(WorkKind::Analysis, "r")
                .expect("claim")
                .expect("retried");
            assert_eq!(c.attempts, attempt);
            if attempt < 3 {
                let j = store
                    .fail_run(&job.id, &err("stalled"), true, Duration::ZERO)
                    .expect("fail");
                assert_eq!(j.state, JobState::Queued);
            }
        }
        let j = store
            .fail_run(&job.id, &err("disk_full"), true, Duration::ZERO)
            .expect("fail");
        assert_eq!((j.state, j.attempts), (JobState::Failed, 3), "out of tries");
    }

    #[test]
    fn permanent_failures_fail_at_once_and_export_failures_keep_the_analysis() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open(dir.path()).expect("open");
        let a = store.add(new_job(dir.path(), true)).expect("add");
        store.claim(WorkKind::Analysis, "r").expect("claim");
        let j = store
            .fail_run(&a.id, &err("no_match"), false, Duration::ZERO)
            .expect("fail");
        assert_eq!((j.state, j.attempts), (JobState::Failed, 1));

        let b = store.add(new_job(dir.path(), true)).expect("add");
        store.claim(WorkKind::Analysis, "r").expect("claim");
        store
            .complete_analysis(&b.id, &serde_json::json!({"offset_s": 3.0}))
            .expect("analysed");
        store.claim(WorkKind::Export, "r").expect("claim");
        let j = store
            .fail_run(&b.id, &err("output_dir"), true, Duration::ZERO)
            .expect("fail");
        assert_eq!(
            j.state,
            JobState::Analyzed,
            "export retried from the checkpoint"
        );
        assert!(j.checkpoint.is_some());
    }

    #[test]
    fn cancel_and_retry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open(dir.path()).expect("open");
        let job = store.add(new_job(dir.path(), true)).expect("add");
        store.claim(WorkKind::Analysis, "r").expect("claim");
        let j = store.cancel(&job.id).expect("cancel");
        assert_eq!(j.state, JobState::Cancelled);
        assert!(
            !store
                .progress(&job.id, "search", 0.7, None)
                .expect("progress"),
            "the worker learns it was cancelled"
        );
        assert_eq!(
            store.cancel(&job.id).map_err(|e| e.code()).err(),
            Some("invalid_state")
        );
        let j = store.retry(&job.id).expect("retry");
        assert_eq!(
            (j.state, j.attempts, j.finished_at, j.error),
            (JobState::Queued, 0, None, None)
        );
        assert_eq!(
            store.retry(&job.id).map_err(|e| e.code()).err(),
            Some("invalid_state")
        );

        store.claim(WorkKind::Analysis, "r").expect("claim");
        store
            .complete_analysis(&job.id, &serde_json::json!({}))
            .expect("analysed");
        store.cancel(&job.id).expect("cancel");
        assert_eq!(
            store.retry(&job.id).expect("retry").state,
            JobState::Analyzed,
            "analysis kept"
        );
        assert_eq!(
            store.get("nope").map_err(|e| e.code()).err(),
            Some("job_not_found")
        );
    }

    #[test]
    fn interrupted_jobs_resume_and_repeat_crashers_fail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open(dir.path()).expect("open");
        let a = store.add(new_job(dir.path(), true)).expect("add");
        let b = store.add(new_job(dir.path(), true)).expect("add");
        store.claim(WorkKind::Analysis, "dead").expect("claim");
        store.claim(WorkKind::Analysis, "dead").expect("claim");
        store
            .complete_analysis(&b.id, &serde_json::json!({"offset_s": 1.0}))
            .expect("analysed");
        store.claim(WorkKind::Export, "dead").expect("claim");

        let rec = store.recover_interrupted().expect("recover");
        assert_eq!(rec.len(), 2);
        let a2 = store.get(&a.id).expect("a");
        assert_eq!(
            (a2.state, a2.stage.as_deref(), a2.interruptions, a2.attempts),
            (JobState::Queued, Some("interrupted"), 1, 1)
        );
        let b2 = store.get(&b.id).expect("b");
        assert_eq!((b2.state, b2.interruptions), (JobState::Analyzed, 1));
        assert_eq!(
            b2.checkpoint,
            Some(serde_json::json!({"offset_s": 1.0})),
            "not analysed again"
        );

        // A clean stop gives the try back.
        store.claim(WorkKind::Analysis, "r").expect("claim");
        let a3 = store.interrupt(&a.id, true).expect("stop");
        assert_eq!((a3.state, a3.attempts), (JobState::Queued, 1));

        // Crashing on every try ends in `failed`, not a loop.
        for _ in 0..3 {
            if store
                .claim(WorkKind::Analysis, "r")
                .expect("claim")
                .is_none()
            {
                break;
            }
            store.recover_interrupted().expect("recover");
        }
        let a4 = store.get(&a.id).expect("a");
        assert_eq!(a4.state, JobState::Failed);
        assert_eq!(a4.error.map(|e| e.code), Some("crashed".to_string()));
    }

    #[test]
    fn retention_keeps_the_newest_and_drops_the_old() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open(dir.path()).expect("open");
        let mut ids = Vec::new();
        for _ in 0..6 {
            let j = store.add(new_job(dir.path(), true)).expect("add");
            store.claim(WorkKind::Analysis, "r").expect("claim");
            store
                .fail_run(&j.id, &err("no_match"), false, Duration::ZERO)
                .expect("fail");
            ids.push(j.id);
        }
        let running = store.add(new_job(dir.path(), true)).expect("add");
        {
            // Finish times one day apart, oldest first; one is 100 days old.
            let conn = store.conn();
            for (i, id) in ids.iter().enumerate() {
                let t = now_ms()
                    - (6 - i as i64) * 86_400_000
                    - if i == 0 { 94 * 86_400_000 } else { 0 };
                conn.execute(
                    "UPDATE jobs SET finished_at = ?2 WHERE id = ?1",
                    params![id, t],
                )
                .expect("age");
            }
        }
        let removed = store
            .prune(Retention {
                keep_last: 3,
                max_age: Duration::from_secs(90 * 86_400),
            })
            .expect("prune");
        assert_eq!(removed, 3);
        let left: Vec<String> = store
            .list(&[], 100)
            .expect("list")
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert!(
            left.contains(&running.id),
            "unfinished jobs are never pruned"
        );
        for id in &ids[3..] {
            assert!(left.contains(id));
        }
        assert_eq!(
            store
                .prune(Retention {
                    keep_last: 500,
                    max_age: Duration::from_secs(3 * 86_400 - 3600)
                })
                .expect("prune"),
            1
        );
        let s = store.stats().expect("stats");
        assert_eq!((s.done, s.failed, s.success_rate), (0, 2, Some(0.0)));
        assert_eq!(store.clear_history(None).expect("clear"), 2);
        assert_eq!(store.list(&[], 100).expect("list").len(), 1);
    }

    #[test]
    fn migrates_from_every_earlier_version() {
        for from in 0..SCHEMA_VERSION {
            let dir = tempfile::tempdir().expect("tempdir");
            let db = dir.path().join(DB_FILE);
            {
                let mut conn = Connection::open(&db).expect("open");
                migrate(&mut conn, from).expect("old schema");
                if from >= 1 {
                    let fp = to_json(&input(dir.path(), "a.mp4").fingerprint);
                    conn.execute(
                        "INSERT INTO jobs (id, dance_path, dance_fp, bgm_path, bgm_fp, options, state, created_at)
                         VALUES ('old', '/a.mp4', ?1, '/b.m4a', ?1, ?2, 'done', 1)",
                        params![fp, to_json(&JobOptions::default())],
                    )
                    .expect("insert");
                }
            }
            let (store, rec) = Store::open(dir.path()).expect("migrated");
            assert!(rec.is_none());
            let v: i64 = store
                .conn()
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .expect("version");
            assert_eq!(v, SCHEMA_VERSION, "from v{from}");
            if from >= 1 {
                assert_eq!(
                    store.get("old").expect("old job kept").state,
                    JobState::Done
                );
            }
            store
                .set_setting("out_dir", &serde_json::json!("/videos"))
                .expect("settings table exists");
            assert_eq!(
                store.setting("out_dir").expect("get"),
                Some(serde_json::json!("/videos"))
            );
        }
    }

    #[test]
    fn one_runner_per_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, _) = Store::open(dir.path()).expect("open");
        let (b, _) = Store::open(dir.path()).expect("second handle (e.g. the CLI adding a job)");
        let lock = a.lock_runner().expect("first runner");
        let e = b.lock_runner().err().expect("second runner refused");
        assert_eq!(e.code(), "store_locked");
        assert!(e.to_string().contains("already processing jobs"));
        drop(lock);
        b.lock_runner()
            .expect("free again once the first runner is gone");
    }

    #[test]
    fn a_garbage_database_is_moved_aside_and_a_fresh_one_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(DB_FILE),
            b"this is not a database, it was overwritten".repeat(200),
        )
        .expect("write");
        let (store, rec) = Store::open(dir.path()).expect("starts anyway");
        let rec = rec.expect("recovery reported");
        assert!(rec.moved_to.exists());
        assert!(rec
            .moved_to
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("jobs.damaged-")));
        assert_eq!(rec.recovered_jobs, 0);
        store
            .add(new_job(dir.path(), true))
            .expect("fresh store works");
    }

    #[test]
    fn a_damaged_database_keeps_what_can_be_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (store, _) = Store::open(dir.path()).expect("open");
            for _ in 0..300 {
                store.add(new_job(dir.path(), true)).expect("add");
            }
            let conn = store.conn();
            conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
                .expect("checkpoint");
        }
        let db = dir.path().join(DB_FILE);
        let mut bytes = std::fs::read(&db).expect("read");
        assert!(
            bytes.len() > 8 * 4096,
            "db has several pages ({} bytes)",
            bytes.len()
        );
        // Overwrite two pages near the end (table b-tree pages) with garbage.
        let at = bytes.len() - 3 * 4096;
        for b in &mut bytes[at..at + 2 * 4096] {
            *b = 0xA5;
        }
        std::fs::write(&db, &bytes).expect("write");
        let (store, rec) = Store::open(dir.path()).expect("starts anyway");
        let rec = rec.expect("damage noticed");
        assert!(
            rec.recovered_jobs > 0 && rec.recovered_jobs < 300,
            "recovered {}",
            rec.recovered_jobs
        );
        assert_eq!(
            store.list(&[], 1000).expect("list").len(),
            rec.recovered_jobs
        );
    }
}

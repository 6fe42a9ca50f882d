//! The job store: SQLite (WAL, synchronous=FULL) in the user data directory.
//! Every state change is one transaction, and every change is announced on a
//! broadcast channel right after it commits — the only place events come from.

#[cfg(test)]
mod faults;
mod history;
mod recovery;
mod rows;
mod runs;
pub(crate) mod schema;
#[cfg(test)]
mod tests;

use super::model::{now_ms, unconfirmed, Job, JobInput, JobOptions, JobState, StoreEvent};
use super::{JobsError, JobsResult};
use crate::error::EngineError;
use rows::{get_tx, job_from_row, path_bytes, path_str, select_jobs, to_json};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use schema::{is_damage, open_checked, DB_FILE};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::sync::broadcast;

pub use history::{Retention, Stats};
pub use recovery::{Interruption, Recovery};

const LOCK_FILE: &str = "runner.lock";

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub recording: JobInput,
    pub song: JobInput,
    pub options: JobOptions,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkKind {
    Analysis,
    Export,
}

pub struct Store {
    conn: Mutex<Connection>,
    dir: PathBuf,
    events: broadcast::Sender<StoreEvent>,
    #[cfg(test)]
    faults: faults::Faults,
}

/// A row `list` could not read (skipped, so one bad row never hides the rest).
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadableRow {
    pub id: String,
    pub reason: String,
}

/// How many unclean stops while running alone set a job aside as `crashed`.
pub const MAX_CRASHES: u32 = 3;

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

/// A transition the job's state does not allow.
fn refuse(j: &Job, action: &'static str) -> JobsError {
    JobsError::InvalidState {
        id: j.id.clone(),
        state: j.state.as_str(),
        action,
    }
}

/// A short unique id: a hash of the time, a per-process counter and the pid
/// (not ordered: the store orders jobs by `created_at`, then insertion).
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
                let moved_to = recovery::move_aside(&db)?;
                tracing::error!(
                    "job database {} was damaged ({reason}); moved to {}",
                    db.display(),
                    moved_to.display()
                );
                let mut conn = open_checked(&db)?;
                let recovered_jobs = recovery::salvage(&moved_to, &mut conn);
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
                #[cfg(test)]
                faults: Default::default(),
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

    /// The connection, for one operation (where a test's faults are injected).
    fn conn(&self) -> JobsResult<std::sync::MutexGuard<'_, Connection>> {
        #[cfg(test)]
        self.faults.check()?;
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (transactions roll back), so a poisoned lock is still usable.
        Ok(self.conn.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Makes the next store operations fail: `count` faults, at one
    /// operation in `every` on average, SQLITE_BUSY and SQLITE_FULL in turn.
    #[cfg(test)]
    pub(crate) fn inject_faults(&self, count: u32, every: u32) {
        self.faults.plan(count, every);
    }

    #[cfg(test)]
    pub(crate) fn faults_injected(&self) -> u32 {
        self.faults.injected()
    }

    /// A read-then-write transaction: IMMEDIATE, so it takes the write lock
    /// before reading (a DEFERRED one fails with SQLITE_BUSY at its first
    /// write when another process wrote meanwhile, and waiting cannot help).
    fn write_tx(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
        conn.transaction_with_behavior(TransactionBehavior::Immediate)
    }

    /// Runs `f` in one transaction on the job `id`, commits, and announces the result.
    fn transition(
        &self,
        id: &str,
        f: impl FnOnce(&Transaction, &Job) -> JobsResult<()>,
    ) -> JobsResult<Job> {
        let job = {
            let mut conn = self.conn()?;
            let tx = Self::write_tx(&mut conn)?;
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
        super::validate::check_options(&new.options)?;
        let id = new_id();
        let now = now_ms();
        {
            let conn = self.conn()?;
            conn.execute(
                "INSERT INTO jobs (id, dance_path, dance_fp, bgm_path, bgm_fp, options, state, export_requested, max_attempts, created_at,
                     dance_path_bytes, bgm_path_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8, ?9, ?10, ?11)",
                params![
                    id,
                    path_str(&new.recording.path),
                    to_json(&new.recording.fingerprint),
                    path_str(&new.song.path),
                    to_json(&new.song.fingerprint),
                    to_json(&new.options),
                    new.options.auto_export as i64,
                    new.max_attempts.max(1),
                    now,
                    path_bytes(&new.recording.path),
                    path_bytes(&new.song.path)
                ],
            )?;
        }
        let job = self.get(&id)?;
        self.emit(&job);
        Ok(job)
    }

    pub fn get(&self, id: &str) -> JobsResult<Job> {
        let conn = self.conn()?;
        conn.query_row(&select_jobs("WHERE id = ?1"), [id], job_from_row)
            .optional()?
            .ok_or_else(|| JobsError::NotFound(id.to_string()))
    }

    /// Jobs, newest first; `states` filters when not empty. A row that does
    /// not read is skipped and logged (see [`Store::list_checked`]).
    pub fn list(&self, states: &[JobState], limit: usize) -> JobsResult<Vec<Job>> {
        let (jobs, unreadable) = self.list_checked(states, limit)?;
        for u in &unreadable {
            tracing::error!("job {} is unreadable and left out: {}", u.id, u.reason);
        }
        Ok(jobs)
    }

    /// Jobs, newest first, and the rows that could not be read.
    pub fn list_checked(
        &self,
        states: &[JobState],
        limit: usize,
    ) -> JobsResult<(Vec<Job>, Vec<UnreadableRow>)> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&select_jobs(
            "ORDER BY created_at DESC, rowid DESC LIMIT ?1",
        ))?;
        let rows = stmt.query_map([limit as i64], |row| {
            Ok(job_from_row(row).map_err(|e| UnreadableRow {
                id: row.get::<_, String>(0).unwrap_or_default(),
                reason: e.to_string(),
            }))
        })?;
        let (mut jobs, mut unreadable) = (Vec::new(), Vec::new());
        for r in rows {
            match r? {
                Ok(j) if states.is_empty() || states.contains(&j.state) => jobs.push(j),
                Ok(_) => {}
                Err(u) => unreadable.push(u),
            }
        }
        Ok((jobs, unreadable))
    }

    pub fn cancel(&self, id: &str) -> JobsResult<Job> {
        let now = now_ms();
        self.transition(id, |tx, j| {
            if j.state.is_finished() {
                return Err(refuse(j, "cancelled"));
            }
            tx.execute(
                "UPDATE jobs SET state = 'cancelled', stage = NULL, eta_s = NULL, next_run_at = NULL,
                     error_code = 'cancelled', error_message = 'cancelled by the user', error_best_guess = NULL, finished_at = ?2, runner_id = NULL,
                     output_path = NULL, output_path_bytes = NULL, output_seal = NULL, output_seals = NULL, isolate = 0
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
                     error_code = NULL, error_message = NULL, error_best_guess = NULL, finished_at = NULL, output_path = NULL, output_path_bytes = NULL, output_seal = NULL, output_seals = NULL,
                     crashes = 0
                 WHERE id = ?1",
                params![id, back],
            )?;
            Ok(())
        })
    }

    /// Asks for the export (the user's go), with the options to export with.
    pub fn request_export(&self, id: &str, options: &JobOptions) -> JobsResult<Job> {
        super::validate::check_options(options)?;
        self.transition(id, |tx, j| {
            if !j.state.is_before_export() {
                return Err(refuse(j, "exported"));
            }
            if unconfirmed(j.checkpoint.as_ref(), options) {
                let confidence = j.checkpoint.as_ref().map_or(0.0, |a| a.confidence);
                return Err(EngineError::NeedsConfirmation { confidence }.into());
            }
            tx.execute(
                "UPDATE jobs SET export_requested = 1, options = ?2 WHERE id = ?1",
                params![id, to_json(options)],
            )?;
            Ok(())
        })
    }

    /// The user listened to an unsure placement and says the song is the
    /// right one: the job may be exported from now on.
    pub fn confirm_song(&self, id: &str) -> JobsResult<Job> {
        self.update_options(id, |o| o.song_confirmed = true)
    }

    /// Changes the options of a job that has not started exporting.
    pub fn update_options(&self, id: &str, f: impl FnOnce(&mut JobOptions)) -> JobsResult<Job> {
        self.transition(id, |tx, j| {
            if !j.state.is_before_export() {
                return Err(refuse(j, "changed"));
            }
            let mut o = j.options.clone();
            f(&mut o);
            super::validate::check_options(&o)?;
            tx.execute(
                "UPDATE jobs SET options = ?2 WHERE id = ?1",
                params![id, to_json(&o)],
            )?;
            Ok(())
        })
    }

    pub fn setting(&self, key: &str) -> JobsResult<Option<serde_json::Value>> {
        let conn = self.conn()?;
        let v: Option<String> = conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.and_then(|s| serde_json::from_str(&s).ok()))
    }

    pub fn set_setting(&self, key: &str, value: &serde_json::Value) -> JobsResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value.to_string()],
        )?;
        Ok(())
    }
}

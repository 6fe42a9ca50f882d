//! Recovery at start-up: jobs a dead runner left running go back to the
//! queue (or fail, out of tries), and a damaged database is moved aside
//! under a timestamped name, every job that can still be read copied into a
//! fresh one.

use super::rows::{insert_row, job_from_row, JOB_COLUMNS};
use super::Store;
use crate::jobs::model::now_ms;
use crate::jobs::model::{Job, JobState};
use crate::jobs::JobsResult;
use rusqlite::{params, Connection, OpenFlags};
use std::path::{Path, PathBuf};

/// What happened when the database was found damaged at start-up.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recovery {
    pub moved_to: PathBuf,
    pub reason: String,
    pub recovered_jobs: usize,
}

impl Store {
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
}

/// Renames a damaged database (and its WAL/SHM files) to `jobs.damaged-<time>.sqlite3`.
pub(super) fn move_aside(db: &Path) -> JobsResult<PathBuf> {
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
    std::fs::rename(db, &target).map_err(|e| super::io_err(db, e))?;
    for ext in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{ext}", db.display()));
        if side.exists() {
            let _ = std::fs::rename(&side, PathBuf::from(format!("{}{ext}", target.display())));
        }
    }
    Ok(target)
}

/// Copies every job row that can still be read from a damaged database.
pub(super) fn salvage(damaged: &Path, into: &mut Connection) -> usize {
    let Ok(old) = Connection::open_with_flags(damaged, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    let Ok(mut stmt) = old.prepare(&format!("SELECT {JOB_COLUMNS}, 0 FROM jobs")) else {
        return 0;
    };
    let Ok(rows) = stmt.query_map([], job_from_row) else {
        return 0;
    };
    let mut n = 0;
    for job in rows.map_while(|r| r.ok()) {
        if insert_row(into, &job).is_ok() {
            n += 1;
        }
    }
    n
}

//! Recovery at start-up: jobs a dead runner left running go back to the
//! queue (or fail, out of tries), and a damaged database is moved aside
//! under a timestamped name, every job that can still be read copied into a
//! fresh one.

use super::rows::{get_tx, insert_row, job_from_row, JOB_COLUMNS, PATH_BYTES_COLUMNS};
use super::Store;
use crate::jobs::model::now_ms;
use crate::jobs::model::{Job, JobState};
use crate::jobs::JobsResult;
use rusqlite::{params, Connection, OpenFlags, Transaction};
use std::path::{Path, PathBuf};

/// What happened when the database was found damaged at start-up.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recovery {
    pub moved_to: PathBuf,
    pub reason: String,
    pub recovered_jobs: usize,
}

/// How a run came to be handed back to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// The runner stopped on request (the app closing, Ctrl-C): no try used.
    Clean,
    /// The process died (crash, kill, power loss) while this job ran alone:
    /// charged to the job, which is set aside as `crashed` after
    /// [`MAX_CRASHES`](super::MAX_CRASHES).
    CrashedAlone,
    /// The process died while this job ran beside others: the culprit is
    /// unknown, so nothing is charged; the job runs alone next.
    CrashedBeside,
}

impl Store {
    /// At start-up, with the runner lock held: jobs a dead runner left running
    /// are handed back to the queue (analysis from scratch, export from its
    /// checkpoint). A crash is charged only to a job that was running alone;
    /// jobs that ran together are resumed one at a time (see `Job::isolated`).
    /// All in one transaction: a kill during the recovery must not leave
    /// one of several interrupted jobs looking as if it had run alone.
    pub fn recover_interrupted(&self) -> JobsResult<Vec<Job>> {
        let jobs = {
            let mut conn = self.conn()?;
            let tx = Store::write_tx(&mut conn)?;
            let ids: Vec<String> = {
                let mut stmt = tx.prepare(
                    "SELECT id FROM jobs WHERE state IN ('analyzing', 'exporting') ORDER BY created_at, rowid",
                )?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let how = if ids.len() == 1 {
                Interruption::CrashedAlone
            } else {
                Interruption::CrashedBeside
            };
            let mut jobs = Vec::new();
            for id in &ids {
                interrupt_in(&tx, &get_tx(&tx, id)?, how)?;
                jobs.push(get_tx(&tx, id)?);
            }
            tx.commit()?;
            jobs
        };
        for j in &jobs {
            self.emit(j);
        }
        Ok(jobs)
    }

    /// Hands a running job back to the queue. The try the run used is given
    /// back (a crash is not the job's failure); only a crash while it ran
    /// alone is counted, and the third such crash fails it as `crashed`.
    pub fn interrupt(&self, id: &str, how: Interruption) -> JobsResult<Job> {
        self.transition(id, |tx, j| interrupt_in(tx, j, how))
    }
}

/// [`Store::interrupt`] inside a transaction.
fn interrupt_in(tx: &Transaction, j: &Job, how: Interruption) -> JobsResult<()> {
    let id = j.id.as_str();
    if !j.state.is_running() {
        return Ok(());
    }
    tx.execute(
        "UPDATE jobs SET attempts = MAX(attempts - 1, 0) WHERE id = ?1",
        [id],
    )?;
    let back = if j.state == JobState::Analyzing {
        "queued"
    } else {
        "analyzed"
    };
    if how == Interruption::Clean {
        tx.execute(
            "UPDATE jobs SET state = ?2, stage = 'interrupted', eta_s = NULL, runner_id = NULL WHERE id = ?1",
            params![id, back],
        )?;
        return Ok(());
    }
    let crashes = j.crashes + u32::from(how == Interruption::CrashedAlone);
    if crashes >= super::MAX_CRASHES {
        tx.execute(
            "UPDATE jobs SET state = 'failed', stage = NULL, eta_s = NULL, interruptions = interruptions + 1,
                 crashes = ?2, error_code = 'crashed', error_message = ?3, error_best_guess = NULL, finished_at = ?4, runner_id = NULL,
                 isolate = 0
             WHERE id = ?1",
            params![
                id,
                crashes,
                format!("BeatSync stopped {crashes} times while working on this job alone, so it is not tried again automatically; check the files, then use Retry"),
                now_ms()
            ],
        )?;
        return Ok(());
    }
    tx.execute(
        "UPDATE jobs SET state = ?2, stage = 'interrupted', eta_s = NULL, interruptions = interruptions + 1,
             crashes = ?3, runner_id = NULL, isolate = 1
         WHERE id = ?1",
        params![id, back, crashes],
    )?;
    Ok(())
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

/// Copies every job row that can still be read from a damaged database:
/// row by row, by rowid, so that a damaged page loses only the rows on it
/// (a scan stops at the first page it cannot read, losing every row after
/// it); a scan when even the highest rowid cannot be read.
pub(super) fn salvage(damaged: &Path, into: &mut Connection) -> usize {
    let Ok(old) = Connection::open_with_flags(damaged, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    // The exact paths when the damaged database has them (v5 on), else
    // the text as rows before v5 were read.
    let exact =
        format!("SELECT {JOB_COLUMNS}, 0, NULL, 0, 0, {PATH_BYTES_COLUMNS}, NULL, NULL FROM jobs");
    let text_only =
        format!("SELECT {JOB_COLUMNS}, 0, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL FROM jobs");
    let top: Option<i64> = old
        .query_row("SELECT max(rowid) FROM jobs", [], |r| r.get(0))
        .ok()
        .flatten();
    let Some(top) = top else {
        return salvage_scan(&old, &exact, &text_only, into);
    };
    let one = |sql: &str| old.prepare(&format!("{sql} WHERE rowid = ?1"));
    let Ok(mut stmt) = one(&exact).or_else(|_| one(&text_only)) else {
        return 0;
    };
    let mut n = 0;
    for rowid in 1..=top {
        if let Ok(job) = stmt.query_row([rowid], job_from_row) {
            if insert_row(into, &job).is_ok() {
                n += 1;
            }
        }
    }
    n
}

/// The rows a scan of the table reads before its first damaged page.
fn salvage_scan(old: &Connection, exact: &str, text_only: &str, into: &mut Connection) -> usize {
    let Ok(mut stmt) = old.prepare(exact).or_else(|_| old.prepare(text_only)) else {
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

//! A run's transitions, the runner's side of the store: finding waiting
//! work, claiming it, progress and heartbeat, completion, failure (retried
//! or for good), and where an export writes and what it wrote.

use super::rows::{get_tx, path_bytes, path_str, to_json};
use super::{refuse, Store, WorkKind};
use crate::align::AlignResult;
use crate::error::ErrorPayload;
use crate::jobs::model::{now_ms, unconfirmed, Job, JobState, OutputSeal, Stage};
use crate::jobs::JobsResult;
use rusqlite::{params, OptionalExtension};
use std::path::Path;
use std::time::Duration;

/// The SQL condition of a job waiting for work of either kind.
const WAITING: &str = "(state = 'queued' OR (state = 'analyzed' AND export_requested = 1))";

impl Store {
    /// Whether a job waiting for work must run alone (see [`Job::isolated`]).
    pub fn has_isolated_waiting(&self) -> JobsResult<bool> {
        let conn = self.conn()?;
        let n: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM jobs WHERE isolate = 1 AND {WAITING}"),
            [],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Whether any job waits for work, now or after its backoff.
    pub fn has_waiting(&self) -> JobsResult<bool> {
        let conn = self.conn()?;
        let n: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM jobs WHERE {WAITING}"),
            [],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Picks the oldest job ready for `kind` and marks it running, counting the
    /// attempt in the same transaction.
    pub fn claim(&self, kind: WorkKind, runner_id: &str) -> JobsResult<Option<Job>> {
        self.claim_where(kind, runner_id, false)
    }

    /// Like [`Store::claim`], but only a job that must run alone.
    pub fn claim_isolated(&self, kind: WorkKind, runner_id: &str) -> JobsResult<Option<Job>> {
        self.claim_where(kind, runner_id, true)
    }

    fn claim_where(
        &self,
        kind: WorkKind,
        runner_id: &str,
        isolated_only: bool,
    ) -> JobsResult<Option<Job>> {
        let now = now_ms();
        let (from, to) = match kind {
            WorkKind::Analysis => ("queued", "analyzing"),
            WorkKind::Export => ("analyzed", "exporting"),
        };
        let job = {
            let mut conn = self.conn()?;
            let tx = Self::write_tx(&mut conn)?;
            let mut extra = if kind == WorkKind::Export {
                "AND export_requested = 1".to_string()
            } else {
                String::new()
            };
            if isolated_only {
                extra.push_str(" AND isolate = 1");
            }
            let id: Option<String> = tx
                .query_row(
                    &format!(
                        "SELECT id FROM jobs WHERE state = ?1 {extra} AND (next_run_at IS NULL OR next_run_at <= ?2)
                         ORDER BY created_at, rowid LIMIT 1"
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
        stage: Stage,
        fraction: f64,
        eta_s: Option<f64>,
    ) -> JobsResult<bool> {
        let now = now_ms();
        let job = {
            let mut conn = self.conn()?;
            let tx = Self::write_tx(&mut conn)?;
            let j = get_tx(&tx, id)?;
            if !j.state.is_running() {
                return Ok(false);
            }
            tx.execute(
                "UPDATE jobs SET stage = ?2, progress = ?3, eta_s = ?4, heartbeat_at = ?5 WHERE id = ?1",
                params![id, stage.as_str(), fraction.clamp(0.0, 1.0), eta_s, now],
            )?;
            let j = get_tx(&tx, id)?;
            tx.commit()?;
            j
        };
        self.emit(&job);
        Ok(true)
    }

    pub fn complete_analysis(&self, id: &str, checkpoint: &AlignResult) -> JobsResult<Job> {
        self.transition(id, |tx, j| {
            if j.state != JobState::Analyzing {
                return Err(refuse(j, "marked analysed"));
            }
            // `attempts` counts runs of the current phase: the export starts afresh.
            // An unsure placement is never exported unasked (a batch's job waits
            // for the user to listen and confirm the song).
            let hold = unconfirmed(Some(checkpoint), &j.options);
            tx.execute(
                "UPDATE jobs SET state = 'analyzed', stage = NULL, progress = 1, eta_s = NULL, checkpoint = ?2,
                     attempts = 0, error_code = NULL, error_message = NULL, error_best_guess = NULL, runner_id = NULL, isolate = 0,
                     export_requested = export_requested * (1 - ?3)
                 WHERE id = ?1",
                params![id, to_json(checkpoint), hold as i64],
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
                "UPDATE jobs SET state = 'done', stage = NULL, progress = 1, eta_s = NULL, output_path = ?2, output_path_bytes = ?5, report = ?3,
                     error_code = NULL, error_message = NULL, error_best_guess = NULL, finished_at = ?4, runner_id = NULL, isolate = 0
                 WHERE id = ?1",
                params![id, path_str(output), report.to_string(), now, path_bytes(output)],
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
                         error_message = ?5, error_best_guess = ?6, runner_id = NULL, output_path = NULL, output_path_bytes = NULL, output_seal = NULL, output_seals = NULL, isolate = 0
                     WHERE id = ?1",
                    params![
                        id,
                        back,
                        now + backoff.as_millis() as i64,
                        error.code.as_str(),
                        error.message,
                        error.best_guess.as_ref().map(to_json)
                    ],
                )?;
            } else {
                tx.execute(
                    "UPDATE jobs SET state = 'failed', stage = NULL, eta_s = NULL, error_code = ?2, error_message = ?3,
                         error_best_guess = ?5, finished_at = ?4, runner_id = NULL, output_path = NULL, output_path_bytes = NULL, output_seal = NULL, output_seals = NULL, isolate = 0
                     WHERE id = ?1",
                    params![id, error.code.as_str(), error.message, now, error.best_guess.as_ref().map(to_json)],
                )?;
            }
            Ok(())
        })
    }

    /// Records where the running export will write, before it writes (a
    /// seal from an earlier run is dropped: the new run writes a new file).
    pub fn plan_output(&self, id: &str, path: &Path) -> JobsResult<Job> {
        self.transition(id, |tx, j| {
            if j.state != JobState::Exporting {
                return Err(refuse(j, "given an output"));
            }
            tx.execute(
                "UPDATE jobs SET output_path = ?2, output_path_bytes = ?3, output_seal = NULL, output_seals = NULL WHERE id = ?1",
                params![id, path_str(path), path_bytes(path)],
            )?;
            Ok(())
        })
    }

    /// Shows that the runner is stopping a running job (the app closing):
    /// the job keeps its state until it is handed back.
    pub fn mark_stopping(&self, id: &str) -> JobsResult<Job> {
        self.transition(id, |tx, j| {
            if j.state.is_running() {
                tx.execute(
                    "UPDATE jobs SET stage = 'stopping', eta_s = NULL WHERE id = ?1",
                    [id],
                )?;
            }
            Ok(())
        })
    }

    /// Records what the running export wrote, before the file gets its
    /// final name: only a file matching this is ever taken as the job's.
    pub fn seal_output(&self, id: &str, seal: &OutputSeal) -> JobsResult<Job> {
        self.transition(id, |tx, j| {
            if j.state != JobState::Exporting {
                return Err(refuse(j, "given an output"));
            }
            tx.execute(
                "UPDATE jobs SET output_seal = ?2 WHERE id = ?1",
                params![id, to_json(seal)],
            )?;
            Ok(())
        })
    }

    /// Records what a split export wrote, one seal per clip in order, before
    /// any clip gets its final name (`output_seal` keeps the first).
    pub fn seal_outputs(&self, id: &str, seals: &[OutputSeal]) -> JobsResult<Job> {
        self.transition(id, |tx, j| {
            if j.state != JobState::Exporting {
                return Err(refuse(j, "given an output"));
            }
            tx.execute(
                "UPDATE jobs SET output_seal = ?2, output_seals = ?3 WHERE id = ?1",
                params![id, seals.first().map(to_json), to_json(&seals)],
            )?;
            Ok(())
        })
    }

    /// The last resort when a run's outcome cannot be recorded the normal
    /// way (its row no longer reads): a plain UPDATE that reads nothing, so
    /// the job is never left looking as if it were running.
    pub fn force_fail(&self, id: &str, error: &ErrorPayload) -> JobsResult<()> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE jobs SET state = 'failed', stage = NULL, eta_s = NULL, error_code = ?2, error_message = ?3,
                 error_best_guess = ?5, finished_at = ?4, runner_id = NULL, output_path = NULL, output_path_bytes = NULL, output_seal = NULL, output_seals = NULL, isolate = 0
             WHERE id = ?1 AND state IN ('analyzing', 'exporting')",
            params![id, error.code.as_str(), error.message, now_ms(), error.best_guess.as_ref().map(to_json)],
        )?;
        Ok(())
    }
}

//! Jobs as table rows: the column list, reading a row into a [`Job`], and
//! the JSON columns.

use crate::error::ErrorPayload;
use crate::jobs::model::{
    checkpoint_from_stored, Fingerprint, Job, JobInput, JobOptions, JobState, Stage,
};
pub(super) use crate::jobs::os_path::path_bytes;
use crate::jobs::os_path::path_from_bytes;
use crate::jobs::{JobsError, JobsResult};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use std::path::{Path, PathBuf};

// The columns keep the first names of the recording (`dance_*`) and the
// song (`bgm_*`): they are the stored format, read by every earlier version.
pub(super) const JOB_COLUMNS: &str = "id, dance_path, dance_fp, bgm_path, bgm_fp, options, state, stage, progress, eta_s, export_requested, attempts, max_attempts, next_run_at, checkpoint, report, output_path, error_code, error_message, interruptions, created_at, started_at, finished_at, runner_id, heartbeat_at";

/// The exact spelling of each path column (schema v5), see [`path_bytes`].
pub(super) const PATH_BYTES_COLUMNS: &str = "dance_path_bytes, bgm_path_bytes, output_path_bytes";

/// `SELECT` of every column `job_from_row` reads, then `tail` (WHERE, ORDER…).
pub(super) fn select_jobs(tail: &str) -> String {
    format!("SELECT {JOB_COLUMNS}, rev, output_seal, crashes, isolate, {PATH_BYTES_COLUMNS}, output_seals, error_best_guess FROM jobs {tail}")
}

pub(super) fn json_col<T: serde::de::DeserializeOwned>(row: &Row, i: usize) -> rusqlite::Result<T> {
    let s: String = row.get(i)?;
    serde_json::from_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(super) fn opt_json_col(row: &Row, i: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    let s: Option<String> = row.get(i)?;
    match s {
        None => Ok(None),
        Some(s) => serde_json::from_str(&s).map(Some).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        }),
    }
}

pub(super) fn job_from_row(row: &Row) -> rusqlite::Result<Job> {
    let state: String = row.get(6)?;
    let error_code: Option<String> = row.get(17)?;
    let error_message: Option<String> = row.get(18)?;
    Ok(Job {
        id: row.get(0)?,
        recording: JobInput {
            path: stored_path(row, 1, 29)?,
            fingerprint: json_col::<Fingerprint>(row, 2)?,
        },
        song: JobInput {
            path: stored_path(row, 3, 30)?,
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
        stage: row
            .get::<_, Option<String>>(7)?
            .as_deref()
            .and_then(Stage::parse),
        progress: row.get(8)?,
        eta_s: row.get(9)?,
        export_requested: row.get::<_, i64>(10)? != 0,
        attempts: row.get(11)?,
        max_attempts: row.get(12)?,
        next_run_at: row.get(13)?,
        checkpoint: checkpoint_from_stored(row.get(14)?),
        report: opt_json_col(row, 15)?,
        output_path: match row.get::<_, Option<String>>(16)? {
            // The exact bytes count only beside the text: a row cleared by
            // an older query (`output_path = NULL`) has no output.
            Some(_) => Some(stored_path(row, 16, 31)?),
            None => None,
        },
        error: error_code.map(|code| ErrorPayload {
            // a guess that no longer reads is dropped, not the job
            best_guess: row
                .get::<_, Option<String>>(33)
                .ok()
                .flatten()
                .and_then(|s| serde_json::from_str(&s).ok()),
            ..ErrorPayload::from_stored(&code, error_message.unwrap_or_default())
        }),
        interruptions: row.get(19)?,
        output_seal: row
            .get::<_, Option<String>>(26)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        output_seals: row
            .get::<_, Option<String>>(32)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        crashes: row.get(27)?,
        isolated: row.get::<_, i64>(28)? != 0,
        created_at: row.get(20)?,
        started_at: row.get(21)?,
        finished_at: row.get(22)?,
        runner_id: row.get(23)?,
        heartbeat_at: row.get(24)?,
        rev: row.get(25)?,
    })
}

/// A path as text, for people and for older versions of BeatSync: lossy
/// (U+FFFD for bytes that are not UTF-8). Never read back as the path while
/// the exact bytes ([`path_bytes`]) are there.
pub(super) fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A path column: its exact bytes (column `bytes_i`) when the row has them,
/// else the text (rows written before schema v5, which kept only text).
fn stored_path(row: &Row, text_i: usize, bytes_i: usize) -> rusqlite::Result<PathBuf> {
    match row.get::<_, Option<Vec<u8>>>(bytes_i)? {
        Some(b) => path_from_bytes(&b).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                bytes_i,
                rusqlite::types::Type::Blob,
                "a path's stored bytes are not a path on this system".into(),
            )
        }),
        None => Ok(PathBuf::from(row.get::<_, String>(text_i)?)),
    }
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

pub(super) fn get_tx(tx: &Transaction, id: &str) -> JobsResult<Job> {
    tx.query_row(&select_jobs("WHERE id = ?1"), [id], job_from_row)
        .optional()?
        .ok_or_else(|| JobsError::NotFound(id.to_string()))
}

/// Inserts a whole job row (the salvage of a damaged database); a job with
/// the same id is kept.
pub(super) fn insert_row(conn: &Connection, job: &Job) -> rusqlite::Result<usize> {
    conn.execute(
        &format!("INSERT OR IGNORE INTO jobs ({JOB_COLUMNS}, {PATH_BYTES_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)"),
        params![
            job.id,
            path_str(&job.recording.path),
            to_json(&job.recording.fingerprint),
            path_str(&job.song.path),
            to_json(&job.song.fingerprint),
            to_json(&job.options),
            job.state.as_str(),
            job.stage.map(Stage::as_str),
            job.progress,
            job.eta_s,
            job.export_requested as i64,
            job.attempts,
            job.max_attempts,
            job.next_run_at,
            job.checkpoint.as_ref().map(to_json),
            job.report.as_ref().map(|v| v.to_string()),
            job.output_path.as_deref().map(path_str),
            job.error.as_ref().map(|e| e.code.as_str()),
            job.error.as_ref().map(|e| e.message.clone()),
            job.interruptions,
            job.created_at,
            job.started_at,
            job.finished_at,
            job.runner_id,
            job.heartbeat_at,
            path_bytes(&job.recording.path),
            path_bytes(&job.song.path),
            job.output_path.as_deref().map(path_bytes),
        ],
    )
}

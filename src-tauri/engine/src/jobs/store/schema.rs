//! The database's schema and how it is opened: migrations applied in
//! order, WAL with full synchronous writes, an integrity check first.

use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

pub const DB_FILE: &str = "jobs.sqlite3";

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
    // v3: each job row's revision, raised by every change of the row, so the
    // UI can tell the newer of two copies of a job.
    "ALTER TABLE jobs ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
    CREATE TRIGGER jobs_rev AFTER UPDATE ON jobs FOR EACH ROW WHEN NEW.rev = OLD.rev
    BEGIN UPDATE jobs SET rev = OLD.rev + 1 WHERE id = OLD.id; END;",
    // v4: the seal of the file an export wrote (recorded before its rename),
    // crashes charged to a job that ran alone, and jobs to run alone next.
    "ALTER TABLE jobs ADD COLUMN output_seal TEXT;
    ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN isolate INTEGER NOT NULL DEFAULT 0;",
    // v5: each path exactly as the OS spells it (bytes on Unix, UTF-16 on
    // Windows): a file name that is not UTF-8 must lead back to that file.
    // The text columns stay, lossy, for people and older rows; a row
    // without the bytes (written before v5) is read from its text as before.
    "ALTER TABLE jobs ADD COLUMN dance_path_bytes BLOB;
    ALTER TABLE jobs ADD COLUMN bgm_path_bytes BLOB;
    ALTER TABLE jobs ADD COLUMN output_path_bytes BLOB;",
    // v6: the seals of the clips a split export wrote (one per play, JSON
    // list), recorded before the first rename, so a run killed among the
    // renames is recognised and its clips are neither doubled nor lost.
    "ALTER TABLE jobs ADD COLUMN output_seals TEXT;",
    // v7: a `no_match` failure's best guess (JSON), so the history keeps
    // where the song would fit best for a teacher who knows it is the song.
    "ALTER TABLE jobs ADD COLUMN error_best_guess TEXT;",
];

pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Whether an error means the database file is damaged (not merely busy).
pub(super) fn is_damage(e: &rusqlite::Error) -> bool {
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

/// Applies the migrations not yet applied, each in its own transaction. A
/// database a newer BeatSync wrote is refused, not damaged: this version
/// would not keep up the columns it does not know (the exact paths of v5
/// included), and it is left as it is for that newer version.
pub(crate) fn migrate(conn: &mut Connection, upto: i64) -> rusqlite::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!(
                "the job database was written by a newer BeatSync (schema v{current}; this version reads up to v{SCHEMA_VERSION}): update BeatSync, or move the database aside to start a new job history"
            )),
        ));
    }
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

pub(super) fn open_checked(db: &Path) -> rusqlite::Result<Connection> {
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

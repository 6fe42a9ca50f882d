//! The store's state machine, retention, migrations and recovery.

use super::rows::to_json;
use super::schema::{migrate, DB_FILE, SCHEMA_VERSION};
use super::*;
use crate::error::ErrorCode;
use crate::jobs::model::fixtures::analysis;
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
        code: ErrorCode::parse(code).expect("a known code"),
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
        .progress(&j.id, Stage::Search, 0.5, Some(3.0))
        .expect("progress"));
    let j = store.get(&j.id).expect("get");
    assert_eq!(
        (j.stage, j.progress, j.eta_s),
        (Some(Stage::Search), 0.5, Some(3.0))
    );

    let checkpoint = analysis(-12.5);
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
        .complete_analysis(&job.id, &analysis(0.0))
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
        .complete_analysis(&b.id, &analysis(3.0))
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
            .progress(&job.id, Stage::Search, 0.7, None)
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
        .complete_analysis(&job.id, &analysis(0.0))
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
        .complete_analysis(&b.id, &analysis(1.0))
        .expect("analysed");
    store.claim(WorkKind::Export, "dead").expect("claim");

    let rec = store.recover_interrupted().expect("recover");
    assert_eq!(rec.len(), 2);
    let a2 = store.get(&a.id).expect("a");
    assert_eq!(
        (a2.state, a2.stage, a2.interruptions, a2.attempts),
        (JobState::Queued, Some(Stage::Interrupted), 1, 1)
    );
    let b2 = store.get(&b.id).expect("b");
    assert_eq!((b2.state, b2.interruptions), (JobState::Analyzed, 1));
    assert_eq!(b2.checkpoint, Some(analysis(1.0)), "not analysed again");

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
    assert_eq!(a4.error.map(|e| e.code), Some(ErrorCode::Crashed));
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
            let t =
                now_ms() - (6 - i as i64) * 86_400_000 - if i == 0 { 94 * 86_400_000 } else { 0 };
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

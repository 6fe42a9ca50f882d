//! The store's state machine, retention, migrations and recovery.

use super::rows::to_json;
use super::schema::{migrate, DB_FILE, SCHEMA_VERSION};
use super::*;
use crate::error::{ErrorCode, ErrorPayload};
use crate::jobs::model::fixtures::analysis;
use crate::jobs::model::{OutputSeal, Stage};
use crate::media::fingerprint::fingerprint;
use std::time::Duration;

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
        recording: input(dir, "class.mp4"),
        song: input(dir, "song.m4a"),
        options: JobOptions {
            auto_export,
            ..Default::default()
        },
        max_attempts: 3,
    }
}

fn err(code: &str) -> ErrorPayload {
    ErrorPayload::new(
        ErrorCode::parse(code).expect("a known code"),
        format!("{code} happened"),
    )
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
            .expect("conn")
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
fn interrupted_jobs_resume_and_only_a_job_crashing_alone_is_charged() {
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

    // Two jobs were running when the process died: nobody is charged, and
    // both are to run alone next.
    let rec = store.recover_interrupted().expect("recover");
    assert_eq!(rec.len(), 2);
    let a2 = store.get(&a.id).expect("a");
    assert_eq!(
        (
            a2.state,
            a2.stage,
            a2.interruptions,
            a2.attempts,
            a2.crashes,
            a2.isolated
        ),
        (JobState::Queued, Some(Stage::Interrupted), 1, 0, 0, true)
    );
    let b2 = store.get(&b.id).expect("b");
    assert_eq!(
        (b2.state, b2.interruptions, b2.crashes, b2.isolated),
        (JobState::Analyzed, 1, 0, true)
    );
    assert_eq!(b2.checkpoint, Some(analysis(1.0)), "not analysed again");
    assert!(store.has_isolated_waiting().expect("isolated"));

    // Run alone, b finishes: it no longer needs to run alone.
    let claimed = store.claim_isolated(WorkKind::Export, "r").expect("claim");
    assert_eq!(claimed.map(|j| j.id), Some(b.id.clone()));
    store
        .complete_export(&b.id, &dir.path().join("b.mp4"), &serde_json::json!({}))
        .expect("done");
    assert!(!store.get(&b.id).expect("b").isolated);

    // A clean stop gives the try back and charges nothing.
    store
        .claim_isolated(WorkKind::Analysis, "r")
        .expect("claim");
    let a3 = store.interrupt(&a.id, Interruption::Clean).expect("stop");
    assert_eq!(
        (a3.state, a3.attempts, a3.crashes),
        (JobState::Queued, 0, 0)
    );

    // Crashing while running alone, three times, sets it aside as `crashed`.
    for n in 1..=MAX_CRASHES {
        let j = store.claim(WorkKind::Analysis, "r").expect("claim");
        assert_eq!(j.map(|j| j.id), Some(a.id.clone()), "crash {n}");
        store.recover_interrupted().expect("recover");
        assert_eq!(store.get(&a.id).expect("a").crashes, n);
    }
    let a4 = store.get(&a.id).expect("a");
    assert_eq!(a4.state, JobState::Failed);
    let e = a4.error.expect("error");
    assert_eq!(e.code, ErrorCode::Crashed);
    assert!(e.message.contains("alone"), "{}", e.message);
    // Retry starts the count afresh.
    assert_eq!(store.retry(&a.id).expect("retry").crashes, 0);
}

/// A job running beside a crashing one is never failed as `crashed`, however
/// often the process dies.
#[test]
fn an_innocent_job_beside_the_culprit_is_never_charged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(dir.path()).expect("open");
    let culprit = store.add(new_job(dir.path(), true)).expect("add");
    let innocent = store.add(new_job(dir.path(), true)).expect("add");
    while !store.get(&culprit.id).expect("c").state.is_finished() {
        // Together (the process dies): nobody charged.
        store.claim(WorkKind::Analysis, "r").expect("claim");
        store.claim(WorkKind::Analysis, "r").expect("claim");
        store.recover_interrupted().expect("recover");
        // Then one at a time: the culprit dies alone, the innocent one
        // gets through its run alone and is interrupted cleanly.
        let first = store
            .claim_isolated(WorkKind::Analysis, "r")
            .expect("claim");
        assert_eq!(
            first.map(|j| j.id),
            Some(culprit.id.clone()),
            "oldest first"
        );
        store.recover_interrupted().expect("recover");
        store
            .claim_isolated(WorkKind::Analysis, "r")
            .expect("claim");
        store
            .interrupt(&innocent.id, Interruption::Clean)
            .expect("stop");
    }
    let c = store.get(&culprit.id).expect("c");
    assert_eq!((c.state, c.crashes), (JobState::Failed, MAX_CRASHES));
    let i = store.get(&innocent.id).expect("i");
    assert_eq!((i.state.is_finished(), i.crashes), (false, 0), "{i:?}");
}

/// Failing, cancelling and retrying forget the planned output, so a later
/// run never takes a file found there (another job's) for its own.
#[test]
fn the_planned_output_is_forgotten_on_fail_cancel_and_retry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(dir.path()).expect("open");
    let out = dir.path().join("IMG_0001_beatsync.mp4");
    let job = store.add(new_job(dir.path(), true)).expect("add");
    store.claim(WorkKind::Analysis, "r").expect("claim");
    store
        .complete_analysis(&job.id, &analysis(0.0))
        .expect("analysed");
    let seal = OutputSeal {
        size: 4,
        head_tail_xxh3: "00".into(),
    };
    let plan = |store: &Store| {
        store
            .claim(WorkKind::Export, "r")
            .expect("claim")
            .expect("a job");
        store.plan_output(&job.id, &out).expect("plan");
        let j = store.seal_output(&job.id, &seal).expect("seal");
        assert_eq!(
            (j.output_path.as_deref(), j.output_seal.as_ref()),
            (Some(out.as_path()), Some(&seal))
        );
    };
    plan(&store);
    let j = store
        .fail_run(&job.id, &err("output_write"), true, Duration::ZERO)
        .expect("fail");
    assert_eq!(
        (j.state, j.output_path, j.output_seal),
        (JobState::Analyzed, None, None)
    );
    plan(&store);
    let j = store.cancel(&job.id).expect("cancel");
    assert_eq!((j.output_path, j.output_seal), (None, None));
    let j = store.retry(&job.id).expect("retry");
    assert_eq!((j.state, j.output_path), (JobState::Analyzed, None));
    plan(&store);
    let j = store
        .fail_run(&job.id, &err("no_match"), false, Duration::ZERO)
        .expect("fail");
    assert_eq!((j.state, j.output_path), (JobState::Failed, None));
    // An interruption keeps them: the run may have got as far as the rename.
    store.retry(&job.id).expect("retry");
    plan(&store);
    let j = store.interrupt(&job.id, Interruption::Clean).expect("stop");
    assert_eq!(
        (j.output_path.as_deref(), j.output_seal),
        (Some(out.as_path()), Some(seal))
    );
}

/// `--lead-in inf` and friends never reach the store, and a row that does
/// not read (written by hand, or by an older version) is skipped by `list`,
/// which reports it, instead of breaking every list.
#[test]
fn bad_numbers_are_refused_and_a_bad_row_never_breaks_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(dir.path()).expect("open");
    for bad in [f64::INFINITY, f64::NAN, -1.0, 1e12] {
        let mut new = new_job(dir.path(), true);
        new.options.lead_in_s = bad;
        let e = store.add(new).expect_err("refused");
        assert_eq!(e.code(), "invalid_argument", "{bad}: {e}");
    }
    let good = store.add(new_job(dir.path(), false)).expect("add");
    let e = store
        .update_options(&good.id, |o| o.offset_s = Some(f64::NEG_INFINITY))
        .expect_err("refused");
    assert_eq!(e.code(), "invalid_argument");
    let opts = JobOptions {
        rate: Some(f64::NAN),
        ..good.options.clone()
    };
    assert_eq!(
        store
            .request_export(&good.id, &opts)
            .map_err(|e| e.code())
            .err(),
        Some("invalid_argument")
    );
    assert_eq!(store.get(&good.id).expect("get").options, good.options);

    // What `--lead-in inf` used to leave: `null` where a number belongs.
    let broken = store.add(new_job(dir.path(), true)).expect("add");
    store
        .conn()
        .expect("conn")
        .execute(
            "UPDATE jobs SET options = '{\"lead_in_s\":null}' WHERE id = ?1",
            [&broken.id],
        )
        .expect("break the row");
    let (jobs, unreadable) = store.list_checked(&[], 10).expect("list");
    assert_eq!(
        jobs.iter().map(|j| &j.id).collect::<Vec<_>>(),
        vec![&good.id]
    );
    assert_eq!(unreadable.len(), 1);
    assert_eq!(unreadable[0].id, broken.id);
    assert_eq!(store.list(&[], 10).expect("list").len(), 1);
}

/// A read-then-write transaction waits for another process's write lock
/// (IMMEDIATE + busy timeout) instead of failing with SQLITE_BUSY.
#[test]
fn a_concurrent_writer_does_not_make_transitions_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(dir.path()).expect("open");
    let job = store.add(new_job(dir.path(), true)).expect("add");
    let other = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("open");
    other
        .execute_batch("BEGIN IMMEDIATE; UPDATE settings SET value = value;")
        .expect("lock");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        other.execute_batch("COMMIT").expect("commit");
    });
    let claimed = store
        .claim(WorkKind::Analysis, "r")
        .expect("claim waits, then works");
    assert_eq!(claimed.map(|j| j.id), Some(job.id.clone()));
    store
        .progress(&job.id, Stage::Decode, 0.5, None)
        .expect("progress");
    release.join().expect("join");
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
        let conn = store.conn().expect("conn");
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
            .expect("conn")
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
        let conn = store.conn().expect("conn");
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

/// An analysis the aligner was not sure of (the right song, maybe).
fn unsure(offset_s: f64) -> crate::align::AlignResult {
    let mut a = analysis(offset_s);
    a.verdict = crate::align::Verdict::Unsure;
    a.confidence = 0.42;
    a
}

/// Runs a fresh job's analysis to its end with `result`.
fn analysed(
    store: &Store,
    dir: &Path,
    auto_export: bool,
    result: &crate::align::AlignResult,
) -> Job {
    let job = store.add(new_job(dir, auto_export)).expect("add");
    let j = store
        .claim(WorkKind::Analysis, "r")
        .expect("claim")
        .expect("a job");
    assert_eq!(j.id, job.id);
    store.complete_analysis(&job.id, result).expect("analysed")
}

#[test]
fn a_batch_job_with_an_unsure_analysis_waits_for_the_user_to_confirm_the_song() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(dir.path()).expect("open");
    let job = analysed(&store, dir.path(), true, &unsure(2.0));
    assert_eq!(job.state, JobState::Analyzed);
    assert!(!job.export_requested, "the batch's go is withdrawn");
    assert!(job.awaits_confirmation());
    assert!(store.claim(WorkKind::Export, "r").expect("claim").is_none());

    // Asking again without confirming is refused with a code the UI explains.
    let e = store
        .request_export(&job.id, &job.options)
        .expect_err("refused");
    assert_eq!(e.error_code(), ErrorCode::NeedsConfirmation);
    assert!(e.to_string().contains("listen"), "{e}");

    let confirmed = store.confirm_song(&job.id).expect("confirmed");
    assert!(!confirmed.awaits_confirmation());
    store
        .request_export(&job.id, &confirmed.options)
        .expect("exportable once confirmed");
    let claimed = store.claim(WorkKind::Export, "r").expect("claim");
    assert_eq!(claimed.map(|j| j.id), Some(job.id));
}

#[test]
fn a_sure_analysis_exports_without_confirmation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(dir.path()).expect("open");
    let job = analysed(&store, dir.path(), true, &analysis(2.0));
    assert!(job.export_requested && !job.awaits_confirmation());
    assert!(store.claim(WorkKind::Export, "r").expect("claim").is_some());
}

#[test]
fn a_confirmation_given_before_the_analysis_ends_lets_the_batch_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(dir.path()).expect("open");
    let job = store.add(new_job(dir.path(), true)).expect("add");
    store.confirm_song(&job.id).expect("confirmed while queued");
    store
        .claim(WorkKind::Analysis, "r")
        .expect("claim")
        .expect("a job");
    let done = store
        .complete_analysis(&job.id, &unsure(2.0))
        .expect("analysed");
    assert!(done.export_requested, "confirmed: the batch exports it");
}

/// A path from bytes (file names that are not UTF-8 exist on Unix only).
#[cfg(unix)]
fn os_path(dir: &Path, name: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    dir.join(std::ffi::OsStr::from_bytes(name))
}

#[cfg(unix)]
fn bytes_of(p: &Path) -> &[u8] {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes()
}

/// Two inputs whose names differ only in bytes that are not UTF-8 (as lossy
/// text both are `class-\u{FFFD}.mp4`), an output folder and an output
/// likewise: after reopening the store every path is byte-identical.
#[cfg(unix)]
#[test]
fn paths_that_are_not_utf8_come_back_byte_identical_after_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recording = os_path(dir.path(), b"class-\xff.mp4");
    let twin = os_path(dir.path(), b"class-\xfe.mp4");
    let song = os_path(dir.path(), b"song-\x80\xc3.m4a");
    let out_dir = os_path(dir.path(), b"out-\xff");
    let out = os_path(&out_dir, b"class-\xff_beatsync.mp4");
    for (p, body) in [(&recording, "recording"), (&twin, "twin"), (&song, "song")] {
        std::fs::write(p, body.repeat(100)).expect("write input");
    }
    let job_for = |recording: &Path| NewJob {
        recording: JobInput {
            fingerprint: fingerprint(recording).expect("fp"),
            path: recording.to_path_buf(),
        },
        song: JobInput {
            fingerprint: fingerprint(&song).expect("fp"),
            path: song.clone(),
        },
        options: JobOptions {
            out_dir: Some(out_dir.clone()),
            auto_export: true,
            ..Default::default()
        },
        max_attempts: 3,
    };
    let (a, b) = {
        let (store, _) = Store::open(dir.path()).expect("open");
        let a = store.add(job_for(&recording)).expect("add");
        let b = store.add(job_for(&twin)).expect("add twin");
        store.claim(WorkKind::Analysis, "r").expect("claim");
        store
            .complete_analysis(&a.id, &analysis(0.0))
            .expect("analysed");
        store.claim(WorkKind::Export, "r").expect("claim export");
        store.plan_output(&a.id, &out).expect("plan");
        (a.id, b.id)
    };
    let (store, _) = Store::open(dir.path()).expect("reopen");
    let check = |j: &Job, recording: &Path| {
        assert_eq!(bytes_of(&j.recording.path), bytes_of(recording));
        assert_eq!(bytes_of(&j.song.path), bytes_of(&song));
        let kept = j.options.out_dir.as_deref().expect("out_dir");
        assert_eq!(bytes_of(kept), bytes_of(&out_dir));
    };
    let ja = store.get(&a).expect("a");
    check(&ja, &recording);
    check(&store.get(&b).expect("b"), &twin);
    assert_eq!(
        bytes_of(ja.output_path.as_deref().expect("planned")),
        bytes_of(&out)
    );
    assert_eq!(store.list(&[], 10).expect("list").len(), 2, "both readable");
    // The text columns keep what people read: lossy, never read back as the path.
    let text: String = store
        .conn()
        .expect("conn")
        .query_row("SELECT dance_path FROM jobs WHERE id = ?1", [&a], |r| {
            r.get(0)
        })
        .expect("text");
    assert!(text.ends_with("class-\u{FFFD}.mp4"), "{text}");

    // A cleared output clears its bytes too.
    let j = store
        .fail_run(&a, &err("output_write"), true, Duration::ZERO)
        .expect("fail");
    assert_eq!(j.output_path, None);
    let cleared: Option<Vec<u8>> = store
        .conn()
        .expect("conn")
        .query_row(
            "SELECT output_path_bytes FROM jobs WHERE id = ?1",
            [&a],
            |r| r.get(0),
        )
        .expect("bytes column");
    assert_eq!(cleared, None);
    store
        .claim(WorkKind::Export, "r")
        .expect("claim export again");
    let done = store
        .complete_export(&a, &out, &serde_json::json!({}))
        .expect("done");
    assert_eq!(
        bytes_of(done.output_path.as_deref().expect("out")),
        bytes_of(&out)
    );
    drop(store);
    let (store, _) = Store::open(dir.path()).expect("reopen");
    let j = store.get(&a).expect("a");
    assert_eq!(
        bytes_of(j.output_path.as_deref().expect("out")),
        bytes_of(&out)
    );
}

/// A database written by schema v4 (paths as text only) opens at the
/// current version, and its rows read their paths as before.
#[test]
fn a_v4_database_reads_its_paths_as_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join(DB_FILE);
    {
        let mut conn = Connection::open(&db).expect("open");
        migrate(&mut conn, 4).expect("v4 schema");
        let fp = to_json(&input(dir.path(), "a.mp4").fingerprint);
        let options = r#"{"out_dir":"/videos/出","name":null,"offset_s":null,"rate":null,"trim_start_s":null,"trim_end_s":null,"auto_export":true}"#;
        conn.execute(
            "INSERT INTO jobs (id, dance_path, dance_fp, bgm_path, bgm_fp, options, state, output_path, created_at)
             VALUES ('old', '/videos/舞 class.mp4', ?1, '/songs/song.m4a', ?1, ?2, 'done', '/videos/出/舞 class_beatsync.mp4', 1)",
            params![fp, options],
        )
        .expect("insert");
    }
    let (store, rec) = Store::open(dir.path()).expect("migrated");
    assert!(rec.is_none());
    let j = store.get("old").expect("the old row reads");
    assert_eq!(j.recording.path, PathBuf::from("/videos/舞 class.mp4"));
    assert_eq!(j.song.path, PathBuf::from("/songs/song.m4a"));
    assert_eq!(
        j.output_path,
        Some(PathBuf::from("/videos/出/舞 class_beatsync.mp4"))
    );
    assert_eq!(j.options.out_dir, Some(PathBuf::from("/videos/出")));
    let bytes: Option<Vec<u8>> = store
        .conn()
        .expect("conn")
        .query_row(
            "SELECT dance_path_bytes FROM jobs WHERE id = 'old'",
            [],
            |r| r.get(0),
        )
        .expect("v5 column");
    assert_eq!(bytes, None, "an old row has no bytes until rewritten");
    assert_eq!(
        store.retry("old").err().map(|e| e.code()),
        Some("invalid_state")
    );
}

/// A database a newer version wrote is refused with a clear message, and
/// left where it is (neither migrated nor moved aside as damaged).
#[test]
fn a_database_from_a_newer_version_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (store, _) = Store::open(dir.path()).expect("open");
        store.add(new_job(dir.path(), true)).expect("add");
        store
            .conn()
            .expect("conn")
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
    }
    let e = Store::open(dir.path()).err().expect("refused");
    assert_eq!(e.code(), "store");
    assert!(!e.is_retryable());
    let msg = e.to_string();
    assert!(
        msg.contains("newer BeatSync") && msg.contains("update BeatSync"),
        "{msg}"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("damaged")), "{names:?}");
    let conn = Connection::open(dir.path().join(DB_FILE)).expect("still there");
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(v, SCHEMA_VERSION + 1);
}

/// A `no_match` failure keeps its best guess in the history (reopened
/// store included); a retry clears it with the error.
#[test]
fn a_no_match_failure_keeps_its_best_guess() {
    let dir = tempfile::tempdir().expect("tempdir");
    let guess = crate::align::BestGuess {
        offset_s: -14.4,
        rate: 0.998,
        confidence: 0.0001,
        overlap: crate::align::Overlap {
            dance_start_s: 0.0,
            dance_end_s: 15.6,
            bgm_start_s: 14.4,
            bgm_end_s: 30.0,
        },
    };
    let id = {
        let (store, _) = Store::open(dir.path()).expect("open");
        let a = store.add(new_job(dir.path(), false)).expect("add");
        store.claim(WorkKind::Analysis, "r").expect("claim");
        let e = ErrorPayload {
            best_guess: Some(guess.clone()),
            ..err("no_match")
        };
        let j = store
            .fail_run(&a.id, &e, false, Duration::ZERO)
            .expect("fail");
        assert_eq!(j.error.and_then(|e| e.best_guess), Some(guess.clone()));
        a.id
    };
    let (store, _) = Store::open(dir.path()).expect("reopen");
    let j = store.get(&id).expect("get");
    assert_eq!(j.state, JobState::Failed);
    let e = j.error.expect("the error");
    assert_eq!((e.code, e.best_guess), (ErrorCode::NoMatch, Some(guess)));
    let j = store.retry(&id).expect("retry");
    assert!(j.error.is_none(), "{:?}", j.error);
    store.claim(WorkKind::Analysis, "r").expect("claim");
    let j = store
        .fail_run(&id, &err("media"), false, Duration::ZERO)
        .expect("fail");
    assert_eq!(j.error.and_then(|e| e.best_guess), None);
}

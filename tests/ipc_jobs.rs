//! A job analysed and exported through the commands on the mock runtime, in
//! a process of its own (so this app's runner, and no other, works on its
//! job store): the events the page receives are typed, their revisions
//! ordered, and every stage the engine reports has a name in `Stage`.

#[path = "ipc/common.rs"]
mod common;

use beatsync_app::events::{self, Event};
use beatsync_engine::jobs::{JobState, Stage};
use common::{
    analyze_pair, app, call, collect, main_window, make_pair, pick_out_dir, wait_for, Analysed,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Every stage name the real engine reports, analysing and exporting a
/// placeable pair, is a `Stage`.
#[test]
fn the_engine_reports_only_known_stages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (song, class) = make_pair(dir.path());
    let mut seen = BTreeSet::new();
    let mut record = |name: &str, _: f64| {
        seen.insert(name.to_string());
    };
    let cancel = beatsync_engine::CancelToken::new();
    let opts = beatsync_engine::AlignOptions::default();
    beatsync_engine::align_files(&class, &song, &opts, &cancel, &mut record).expect("aligned");
    let mut req = beatsync_engine::ExportRequest::new(&class, &song, dir.path(), None);
    beatsync_engine::export(&req, &cancel, &mut record).expect("exported, aligning first");
    req.placement = Some(beatsync_engine::Placement::new(2.0, 1.0));
    beatsync_engine::export(&req, &cancel, &mut record).expect("exported with a placement");
    let unknown: Vec<_> = seen.iter().filter(|n| Stage::parse(n).is_none()).collect();
    assert!(unknown.is_empty(), "stages without a Stage: {unknown:?}");
    // Paced stages (`align`, `analyse`, `plan`, `export`, `finish`) are
    // reported only when they last long enough to be paced (100 ms); these
    // are reported whatever the timing.
    for s in ["decode", "features", "search", "refine", "verify", "done"] {
        assert!(seen.contains(s), "{s} not reported: {seen:?}");
    }
}

/// A job analysed and exported through the commands: every `job-changed`
/// carries a typed job whose `rev` goes up by change, each command's answer
/// carries the revision of its own change, and the stages are all `Stage`s.
#[test]
fn job_events_are_typed_and_their_revisions_ordered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (song, class) = make_pair(dir.path());
    let out = tempfile::tempdir().expect("out dir");
    let app = app();
    let main = main_window(&app);
    let changed = collect(&app, events::JobChanged::NAME);

    pick_out_dir(&app, out.path());
    let Analysed { job, id, .. } = analyze_pair(&app, &main, &class, &song);
    wait_for(&changed, &id, "analysed", |j| j["state"] == "analyzed");
    let before = changed
        .lock()
        .expect("lock")
        .iter()
        .filter(|j| j["id"] == id.as_str())
        .count();
    let nudged = call(
        &main,
        "set_placement",
        json!({ "id": id, "offset_s": 2.001, "rate": 1.0 }),
    )
    .expect("nudge");
    let exporting = call(&main, "export", json!({ "ids": [id] })).expect("export");
    wait_for(&changed, &id, "exported", |j| j["state"] == "done");
    let listed = call(&main, "list_jobs", json!({})).expect("list");

    let seen: Vec<Value> = changed
        .lock()
        .expect("lock")
        .iter()
        .filter(|j| j["id"] == id.as_str())
        .cloned()
        .collect();
    let revs: Vec<u64> = seen
        .iter()
        .map(|j| j["rev"].as_u64().expect("rev"))
        .collect();
    assert!(
        revs.windows(2).all(|w| w[0] < w[1]),
        "revisions go up: {revs:?}"
    );
    // A command's answer is the job as its own change left it: the event
    // for that change has the same revision, earlier events lower ones.
    assert_eq!(
        job["rev"].as_u64(),
        Some(revs[0]),
        "analyze answers the job as added"
    );
    let answer_rev = nudged["rev"].as_u64().expect("rev");
    let same = seen
        .iter()
        .find(|j| j["rev"].as_u64() == Some(answer_rev))
        .expect("its event");
    assert_eq!(same["options"]["offset_s"].as_f64(), Some(2.001));
    assert!(
        revs[..before].iter().all(|&r| r < answer_rev),
        "{revs:?} before {answer_rev}"
    );
    assert!(exporting[0]["rev"].as_u64() > Some(answer_rev));
    let last = listed
        .as_array()
        .expect("list")
        .iter()
        .find(|j| j["id"] == id.as_str())
        .expect("listed");
    assert_eq!(
        last["rev"].as_u64(),
        revs.last().copied(),
        "the list has the newest revision"
    );

    // Typed payloads: each event reads back as the contract's types.
    let mut stages = BTreeSet::new();
    for j in &seen {
        let state: JobState = serde_json::from_value(j["state"].clone()).expect("a JobState");
        if let Some(stage) = j["stage"].as_str() {
            stages.insert(Stage::parse(stage).expect("a Stage"));
        }
        if state == JobState::Done {
            assert_eq!(
                j["analysis"]["offset_s"]
                    .as_f64()
                    .map(|o| (o - 2.0).abs() < 0.01),
                Some(true)
            );
        }
    }
    use Stage::*;
    for s in [Decode, Features, Search, Refine, Verify, Done] {
        assert!(stages.contains(&s), "{s} announced: {stages:?}");
    }
}

//! The app's commands called through Tauri's IPC on the mock runtime, with the
//! app's real configuration and capabilities (so the ACL is exercised too),
//! and the contract files checked against the types.

#[path = "ipc/common.rs"]
mod common;

use beatsync_app::{contract, events};
use beatsync_engine::ErrorCode;
use common::{app, call, main_window, make_class, make_song, request};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use tauri::test::get_ipc_response;
use tauri::WebviewWindowBuilder;

#[test]
fn probe_media_through_ipc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let song = make_song(dir.path());
    let app = app();
    let main = main_window(&app);

    let ok = get_ipc_response(&main, request("probe_media", json!({ "path": song })))
        .expect("probe succeeds")
        .deserialize::<Value>()
        .expect("json");
    assert_eq!(ok["streams"][0]["kind"], "audio");
    assert_eq!(ok["streams"][0]["codec"], "aac");
    assert_eq!(ok["streams"][0]["sample_rate"], 44100);
    assert!((ok["duration_s"].as_f64().expect("duration") - 2.0).abs() < 0.1);

    // Errors arrive as {code, message}.
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "hello").expect("write");
    let err = get_ipc_response(&main, request("probe_media", json!({ "path": text })))
        .expect_err("not media");
    assert_eq!(err["code"], "not_media");
    assert!(err["message"]
        .as_str()
        .expect("message")
        .contains("notes.mp4"));

    let err = get_ipc_response(&main, request("probe_media", json!({ "path": "" })))
        .expect_err("empty path");
    assert_eq!(err["code"], "invalid_argument");
}

#[test]
fn capability_grants_our_commands_only_to_the_main_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let song = make_song(dir.path());
    let app = app();
    let other = WebviewWindowBuilder::new(&app, "other", Default::default())
        .build()
        .expect("second window");
    let err = get_ipc_response(&other, request("probe_media", json!({ "path": song })))
        .expect_err("a window without the capability is refused");
    let text = err.to_string();
    assert!(text.contains("not allowed"), "{text}");
}

#[test]
fn files_jobs_and_settings_through_ipc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let song = make_song(dir.path());
    let class = make_class(dir.path());
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "hello").expect("write");
    let app = app();
    let main = main_window(&app);

    // The path a drop takes: each file probed and given a role, or rejected with the reason.
    let added =
        call(&main, "add_files", json!({ "paths": [class, song, text] })).expect("add_files");
    assert_eq!(added[0]["ok"], true);
    assert_eq!(added[0]["role"], "class");
    assert_eq!(added[1]["role"], "song");
    assert_eq!(added[2]["ok"], false);
    assert_eq!(added[2]["error"]["code"], "not_media");

    // Settings persist in the store.
    let mut settings = call(&main, "get_settings", json!({})).expect("settings");
    settings["out_dir"] = json!(dir.path());
    settings["balance"] = json!(0.25);
    call(&main, "set_settings", json!({ "settings": settings })).expect("set");
    assert_eq!(
        call(&main, "get_settings", json!({})).expect("settings")["balance"],
        0.25
    );
    assert_eq!(
        call(
            &main,
            "set_settings",
            json!({ "settings": { "out_dir": "", "language": null, "balance": 3.0 } })
        )
        .expect_err("bad balance")["code"],
        "invalid_argument"
    );

    // A job: created queued with the chosen folder, visible in the list, then cancelled.
    let job = call(&main, "analyze", json!({ "dance": class, "bgm": song })).expect("analyze");
    let id = job["id"].as_str().expect("id").to_string();
    assert_eq!(job["dance_path"], json!(class));
    assert_eq!(job["options"]["out_dir"], json!(dir.path()));
    assert_eq!(job["options"]["auto_export"], false);
    let listed = call(&main, "list_jobs", json!({})).expect("list");
    assert!(listed
        .as_array()
        .expect("array")
        .iter()
        .any(|j| j["id"] == json!(id)));
    let j = call(
        &main,
        "set_placement",
        json!({ "id": id, "offset_s": 1.5, "rate": 1.0 }),
    );
    // The job may already have been analysed by the runner; either way the nudge is kept or refused cleanly.
    if let Ok(j) = j {
        assert_eq!(j["options"]["offset_s"], 1.5);
    }
    let cancelled = call(&main, "cancel_job", json!({ "id": id })).expect("cancel");
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(
        call(&main, "cancel_job", json!({ "id": id })).expect_err("twice")["code"],
        "invalid_state"
    );
    assert_eq!(
        call(&main, "retry_job", json!({ "id": id })).expect("retry")["state"]
            .as_str()
            .map(|s| s == "queued" || s == "analyzed"),
        Some(true)
    );

    // A song cannot be the class video.
    let err =
        call(&main, "analyze", json!({ "dance": song, "bgm": song })).expect_err("song as class");
    assert_eq!(err["code"], "no_video");

    // Waveform peaks come from Rust.
    let w = call(
        &main,
        "waveform",
        json!({ "path": song, "peaks_per_s": 50 }),
    )
    .expect("waveform");
    let peaks = w["peaks"].as_array().expect("peaks");
    assert!(
        (peaks.len() as i64 - 200).abs() <= 4,
        "{} peaks for 2 s at 50/s",
        peaks.len()
    );
    // ffmpeg's sine source has amplitude 1/8 (the AAC start may overshoot: use the median).
    let mut maxima: Vec<f64> = peaks
        .iter()
        .skip(1)
        .step_by(2)
        .filter_map(|p| p.as_f64())
        .collect();
    maxima.sort_by(f64::total_cmp);
    let median = maxima[maxima.len() / 2];
    assert!(
        (0.1..0.15).contains(&median),
        "the tone's typical peak is {median}"
    );

    // Only BeatSync's own outputs can be opened.
    assert_eq!(
        call(&main, "open_path", json!({ "path": song })).expect_err("not ours")["code"],
        "invalid_argument"
    );
}

#[test]
fn launch_files_wait_for_the_page_then_arrive_like_a_drop() {
    use tauri::{Emitter, Listener};
    let dir = tempfile::tempdir().expect("tempdir");
    let song = make_song(dir.path());
    let app = app();
    let _main = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("main window");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    app.listen_any("files-added", move |e| {
        let _ = tx.send(e.payload().to_string());
    });
    // `beatsync-app song.m4a missing.mp4`, started in `dir`.
    let files = beatsync_app::launch::files_from_args(
        ["beatsync-app", "song.m4a", "--some-option", "missing.mp4"],
        dir.path(),
    );
    beatsync_app::launch::offer(app.handle(), files);
    let early = rx.recv_timeout(std::time::Duration::from_millis(500));
    assert!(
        early.is_err(),
        "handed over before the page listened: {early:?}"
    );

    app.emit(beatsync_app::launch::PAGE_READY, ())
        .expect("emit page-ready");
    let added: Value = serde_json::from_str(
        &rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("files-added after page-ready"),
    )
    .expect("json");
    let added = added.as_array().expect("a list");
    assert_eq!(added.len(), 2);
    assert_eq!(added[0]["path"], json!(song));
    assert_eq!(added[0]["ok"], true);
    assert_eq!(added[0]["role"], "song");
    assert_eq!(added[1]["path"], json!(dir.path().join("missing.mp4")));
    assert_eq!(added[1]["ok"], false);
    assert_eq!(added[1]["error"]["code"], "not_found");
}

/// The repository root (this file is tests/ipc.rs).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Compares a file with what the types say it must be; `BEATSYNC_BLESS=1`
/// rewrites it instead.
fn check_generated(rel: &str, want: &str) {
    let path = root().join(rel);
    if std::env::var_os("BEATSYNC_BLESS").is_some() {
        std::fs::write(&path, want).expect("write generated file");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{rel} differs from the types (src-tauri/contract.rs); run BEATSYNC_BLESS=1 cargo test --test ipc contract to rewrite it.\n--- wanted ---\n{want}"
    );
}

#[test]
fn contract_files_are_written_from_the_types() {
    check_generated("ui/js/contract.js", &contract::ui_module());
    let doc = std::fs::read_to_string(root().join("docs/ipc.md")).expect("docs/ipc.md");
    check_generated("docs/ipc.md", &contract::fill_doc(&doc).expect("markers"));
}

#[test]
fn every_event_type_is_in_the_contract() {
    let src = std::fs::read_to_string(root().join("src-tauri/events.rs")).expect("events.rs");
    let types = src.matches("impl Event for ").count();
    assert_eq!(
        types,
        events::ALL.len(),
        "an Event type missing from events::ALL"
    );
    let names: BTreeSet<_> = events::ALL.iter().map(|e| e.name).collect();
    assert_eq!(names.len(), events::ALL.len(), "event names are unique");
}

/// The commands docs/ipc.md documents are exactly those the window may call.
#[test]
fn docs_list_every_command_the_window_may_call() {
    let caps: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("src-tauri/capabilities/main.json"))
            .expect("capability"),
    )
    .expect("json");
    let granted: BTreeSet<String> = caps["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .filter_map(|p| {
            p.as_str()?
                .strip_prefix("allow-")
                .map(|c| c.replace('-', "_"))
        })
        .collect();
    let doc = std::fs::read_to_string(root().join("docs/ipc.md")).expect("docs/ipc.md");
    let table = doc
        .split("## Commands")
        .nth(1)
        .and_then(|t| t.split("\n## ").next())
        .expect("a Commands section");
    let documented: BTreeSet<String> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split(" |").next())
        .flat_map(|cell| {
            cell.split(" / ")
                .map(|c| c.trim_matches('`').to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(granted.len() >= 20, "{granted:?}");
    assert_eq!(documented, granted);
}

/// Error codes on the wire are the list's names.
#[test]
fn command_errors_carry_codes_from_the_list() {
    let app = app();
    let main = main_window(&app);
    let mut codes = HashMap::new();
    for (cmd, args) in [
        ("retry_job", json!({ "id": "no-such-job" })),
        (
            "set_trim",
            json!({ "id": "x", "start_s": 5.0, "end_s": 1.0 }),
        ),
        ("export", json!({ "ids": [], "out_dir": "/no/such/folder" })),
        (
            "preview_play",
            json!({ "id": "no-such-job", "from_s": 0.0, "balance": 0.0 }),
        ),
    ] {
        let err = call(&main, cmd, args).expect_err(cmd);
        let code: ErrorCode = serde_json::from_value(err["code"].clone()).expect("a listed code");
        codes.insert(cmd, code);
    }
    assert_eq!(codes["retry_job"], ErrorCode::JobNotFound);
    assert_eq!(codes["set_trim"], ErrorCode::InvalidArgument);
    assert_eq!(codes["export"], ErrorCode::OutputDir);
    assert_eq!(codes["preview_play"], ErrorCode::JobNotFound);
}

//! The app's commands called through Tauri's IPC on the mock runtime, with the
//! app's real configuration and capabilities (so the ACL is exercised too).

use serde_json::{json, Value};
use std::path::Path;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindowBuilder;

/// One job store for this test process (tests in it share the env).
fn data_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        std::env::set_var("BEATSYNC_DATA_DIR", d.path());
        d
    })
    .path()
}

fn app() -> tauri::App<tauri::test::MockRuntime> {
    data_dir();
    let app = beatsync_app::builder(mock_builder())
        .build(beatsync_app::context())
        .expect("app builds on the mock runtime");
    beatsync_app::setup(app.handle()).expect("store and runner start");
    app
}

fn request(cmd: &str, body: Value) -> InvokeRequest {
    InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        // On Linux the app's pages are served from tauri://localhost.
        url: "tauri://localhost".parse().expect("url"),
        body: InvokeBody::Json(body),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    }
}

fn call(
    w: &tauri::WebviewWindow<tauri::test::MockRuntime>,
    cmd: &str,
    body: Value,
) -> Result<Value, Value> {
    get_ipc_response(w, request(cmd, body)).map(|b| b.deserialize::<Value>().expect("json"))
}

fn make_class(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("class.mp4");
    let st = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=15:duration=2",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("sine=frequency=330:sample_rate=44100:duration=2")
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"])
        .arg(&p)
        .status()
        .expect("ffmpeg CLI for fixtures");
    assert!(st.success());
    p
}

fn make_song(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("song.m4a");
    let st = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("sine=frequency=330:sample_rate=44100:duration=2")
        .args(["-c:a", "aac"])
        .arg(&p)
        .status()
        .expect("ffmpeg CLI for fixtures");
    assert!(st.success());
    p
}

#[test]
fn probe_media_through_ipc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let song = make_song(dir.path());
    let app = app();
    let main = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("main window");

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
    let main = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("main window");

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

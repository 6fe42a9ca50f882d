//! The app's commands called through Tauri's IPC on the mock runtime, with the
//! app's real configuration and capabilities (so the ACL is exercised too).

use serde_json::{json, Value};
use std::path::Path;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindowBuilder;

fn app() -> tauri::App<tauri::test::MockRuntime> {
    beatsync_app::builder(mock_builder())
        .build(beatsync_app::context())
        .expect("app builds on the mock runtime")
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

//! Helpers shared by the IPC tests: the app on Tauri's mock runtime with its
//! real configuration, calling commands as the page does, and small media
//! fixtures made with the `ffmpeg` command line.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{WebviewWindow, WebviewWindowBuilder};

/// One job store for this test process (tests in it share the env).
pub fn data_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        std::env::set_var("BEATSYNC_DATA_DIR", d.path());
        d
    })
    .path()
}

pub fn app() -> tauri::App<MockRuntime> {
    data_dir();
    let app = beatsync_app::builder(mock_builder())
        .build(beatsync_app::context())
        .expect("app builds on the mock runtime");
    beatsync_app::setup(app.handle()).expect("store and runner start");
    app
}

pub fn request(cmd: &str, body: Value) -> InvokeRequest {
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

pub fn call(w: &WebviewWindow<MockRuntime>, cmd: &str, body: Value) -> Result<Value, Value> {
    get_ipc_response(w, request(cmd, body)).map(|b| b.deserialize::<Value>().expect("json"))
}

/// Runs `ffmpeg -nostdin -v error -y ARGS…` for a fixture; a fixture that
/// cannot be made is a broken test environment.
pub fn ffmpeg(args: &[&str], out: &Path) {
    let st = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg CLI for fixtures");
    assert!(st.success(), "ffmpeg {args:?}");
}

#[rustfmt::skip]
pub fn make_class(dir: &Path) -> PathBuf {
    let p = dir.join("class.mp4");
    ffmpeg(
        &[
            "-f", "lavfi", "-i", "testsrc=size=160x120:rate=15:duration=2",
            "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100:duration=2",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
        ],
        &p,
    );
    p
}

#[rustfmt::skip]
pub fn make_song(dir: &Path) -> PathBuf {
    let p = dir.join("song.m4a");
    ffmpeg(
        &["-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100:duration=2", "-c:a", "aac"],
        &p,
    );
    p
}

/// A 20 s song the aligner can place (a kick every 0.5 s, two tones changing
/// pitch on different grids) and a 12 s class video that plays it from 2 s.
#[rustfmt::skip]
pub fn make_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let song = dir.join("beat.m4a");
    let class = dir.join("beat class.mp4");
    let expr = "0.6*sin(2*PI*55*t)*exp(-18*mod(t\\,0.5))\
                +0.2*sin(2*PI*(220+20*mod(floor(t*2)*7\\,11))*t)\
                +0.15*sin(2*PI*(330+25*mod(floor(t*4/3)*5\\,13))*t)";
    let source = format!("aevalsrc={expr}:s=44100:d=20");
    ffmpeg(&["-f", "lavfi", "-i", &source, "-ac", "2", "-c:a", "aac"], &song);
    let song_arg = song.to_str().expect("utf-8 temp path");
    ffmpeg(
        &[
            "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=15", "-i", song_arg,
            "-filter_complex", "[1:a]adelay=2000|2000,volume=0.5[a]",
            "-map", "0:v", "-map", "[a]", "-t", "12",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
        ],
        &class,
    );
    (song, class)
}

/// The app's main window (the one the capability grants our commands to).
pub fn main_window(app: &tauri::App<MockRuntime>) -> WebviewWindow<MockRuntime> {
    WebviewWindowBuilder::new(app, "main", Default::default())
        .build()
        .expect("main window")
}

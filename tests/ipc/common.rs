//! Helpers shared by the IPC tests: the app on Tauri's mock runtime with its
//! real configuration, calling commands as the page does, and small media
//! fixtures made with the `ffmpeg` command line.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::Listener;
use tauri::{WebviewWindow, WebviewWindowBuilder};

/// One job store for this test process (tests in it share the env).
pub fn data_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        std::env::set_var("BEATSYNC_DATA_DIR", d.path());
        // No native dialog can open in these tests (the mock runtime has no
        // window): without a display or a session bus, every dialog answers
        // "cancelled" at once instead of waiting for a user.
        std::env::remove_var("DISPLAY");
        std::env::remove_var("WAYLAND_DISPLAY");
        std::env::set_var(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/beatsync-test-bus",
        );
        d
    })
    .path()
}

/// The app of one test. The tests of a process share one data folder (one
/// job store, one runner lock, one output folder setting), so one app runs
/// at a time: the guard is held until the app is dropped (fields drop in
/// order: the app first).
pub struct TestApp {
    app: tauri::App<MockRuntime>,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl std::ops::Deref for TestApp {
    type Target = tauri::App<MockRuntime>;
    fn deref(&self) -> &Self::Target {
        &self.app
    }
}

pub fn app() -> TestApp {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    // A test that failed while holding it leaves it poisoned; the next goes on.
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    data_dir();
    let app = beatsync_app::builder(mock_builder())
        .build(beatsync_app::context())
        .expect("app builds on the mock runtime");
    beatsync_app::setup(app.handle()).expect("store and runner start");
    TestApp {
        app,
        _one_at_a_time: guard,
    }
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

/// Files dropped on the window: the Rust path a drop takes (registered,
/// probed), answered as the page receives them in `files-added`.
pub fn drop_files(app: &tauri::App<MockRuntime>, paths: &[&Path]) -> Vec<Value> {
    let paths = paths.iter().map(|p| p.to_path_buf()).collect();
    let added = tauri::async_runtime::block_on(beatsync_app::commands::files::add_paths(
        app.handle(),
        paths,
    ));
    added
        .iter()
        .map(|a| serde_json::to_value(a).expect("json"))
        .collect()
}

/// The id the page got for a dropped file.
pub fn drop_one(app: &tauri::App<MockRuntime>, path: &Path) -> String {
    let added = drop_files(app, &[path]);
    assert_eq!(added[0]["ok"], true, "{:?}", added[0]);
    added[0]["id"].as_str().expect("id").to_string()
}

/// A class video and its song dropped on the window: their ids.
pub fn drop_pair(app: &tauri::App<MockRuntime>, class: &Path, song: &Path) -> (String, String) {
    (drop_one(app, class), drop_one(app, song))
}

/// The job the `analyze` command answered for a dropped class video and
/// song (the page's ids), and its id.
pub fn analyze(
    main: &WebviewWindow<MockRuntime>,
    class_id: &str,
    song_id: &str,
) -> (Value, String) {
    let job = call(
        main,
        "analyze",
        json!({ "dance": class_id, "bgm": song_id }),
    )
    .expect("analyze");
    let id = job["id"].as_str().expect("id").to_string();
    (job, id)
}

/// A class video and its song dropped and analysed as the page does it.
pub struct Analysed {
    pub class_id: String,
    pub song_id: String,
    /// The `analyze` command's answer, and its id.
    pub job: Value,
    pub id: String,
}

/// [`drop_pair`], then [`analyze`].
pub fn analyze_pair(
    app: &tauri::App<MockRuntime>,
    main: &WebviewWindow<MockRuntime>,
    class: &Path,
    song: &Path,
) -> Analysed {
    let (class_id, song_id) = drop_pair(app, class, song);
    let (job, id) = analyze(main, &class_id, &song_id);
    Analysed {
        class_id,
        song_id,
        job,
        id,
    }
}

/// The folder the user picked in the native folder dialog.
pub fn pick_out_dir(app: &tauri::App<MockRuntime>, dir: &Path) {
    use tauri::Manager;
    let state = app.state::<beatsync_app::state::AppState>();
    beatsync_app::commands::settings::keep_out_dir(&state, dir).expect("folder kept");
}

/// The app's main window (the one the capability grants our commands to).
pub fn main_window(app: &tauri::App<MockRuntime>) -> WebviewWindow<MockRuntime> {
    WebviewWindowBuilder::new(app, "main", Default::default())
        .build()
        .expect("main window")
}

/// Collects the payloads of one event as the page would receive them.
pub fn collect(app: &tauri::App<tauri::test::MockRuntime>, event: &str) -> Arc<Mutex<Vec<Value>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    app.listen_any(event, move |e| {
        let v: Value = serde_json::from_str(e.payload()).expect("payload is JSON");
        sink.lock().expect("lock").push(v);
    });
    got
}

/// Waits until an event for job `id` satisfies `done`.
pub fn wait_for(events: &Mutex<Vec<Value>>, id: &str, what: &str, done: impl Fn(&Value) -> bool) {
    let until = Instant::now() + Duration::from_secs(300);
    while Instant::now() < until {
        if events
            .lock()
            .expect("lock")
            .iter()
            .any(|j| j["id"] == id && done(j))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let states: Vec<_> = events
        .lock()
        .expect("lock")
        .iter()
        .filter(|j| j["id"] == id)
        .map(|j| format!("{} {} {}", j["state"], j["stage"], j["error"]))
        .collect();
    panic!("job {id} never {what}: {states:?}");
}

/// A 40 s song and a 38 s class recording that plays it twice from its
/// start (at 2 s and again at 22 s, 14 s each) with talk between: the
/// aligner finds two segments (offsets 2 s and 22 s).
#[rustfmt::skip]
pub fn make_two_plays(dir: &Path) -> (PathBuf, PathBuf) {
    let song = dir.join("twice.m4a");
    let class = dir.join("two plays.mp4");
    let expr = "0.6*sin(2*PI*55*t)*exp(-18*mod(t\\,0.5))\
                +0.15*(random(0)*2-1)*exp(-80*mod(t+0.25\\,0.5))\
                +0.2*sin(2*PI*(220+20*mod(floor(t*2)*7\\,11))*t)\
                +0.15*sin(2*PI*(330+25*mod(floor(t*4/3)*5\\,13))*t)";
    let source = format!("aevalsrc={expr}:s=44100:d=40");
    ffmpeg(&["-f", "lavfi", "-i", &source, "-ac", "2", "-c:a", "aac", "-b:a", "192k"], &song);
    let song_arg = song.to_str().expect("utf-8 temp path");
    let mix = "[1:a]asplit[s1][s2];\
               [s1]atrim=0:14,asetpts=PTS-STARTPTS,adelay=2000|2000,volume=0.5[p1];\
               [s2]atrim=0:14,asetpts=PTS-STARTPTS,adelay=22000|22000,volume=0.5[p2];\
               aevalsrc=0.25*sin(2*PI*(180+60*sin(2*PI*3*t))*t)*(0.5+0.5*sin(2*PI*4*t)):s=48000:d=3.5,\
               adelay=17000|17000[talk];\
               anoisesrc=d=38:c=pink:r=48000:a=0.03:seed=3[n];\
               [p1][p2][talk][n]amix=inputs=4:duration=longest:normalize=0[a]";
    ffmpeg(
        &[
            "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=15", "-i", song_arg,
            "-filter_complex", mix, "-map", "0:v", "-map", "[a]", "-t", "38",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-ar", "48000",
        ],
        &class,
    );
    (song, class)
}

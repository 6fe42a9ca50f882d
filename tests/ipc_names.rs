//! File names that are not UTF-8 through the commands on the mock runtime,
//! in a process of its own (so this app's runner, and no other, works on
//! its job store). Unix only: there a file name may be any bytes.
#![cfg(unix)]

#[path = "ipc/common.rs"]
mod common;

use beatsync_app::events::{self, Event};
use common::{
    analyze_pair, app, call, collect, main_window, make_pair, pick_out_dir, wait_for, Analysed,
};
use serde_json::json;

/// Files whose names are not UTF-8 (byte 0xFF), dropped on the window, and
/// an output folder so named picked in the dialog: the job is analysed and
/// exported through the commands into that very folder. The page sees the
/// names as lossy text (display only; it names files by id); the job keeps
/// the real paths. Files under the lossy names hold text, so a job that
/// had kept the lossy text would fail.
#[test]
fn files_named_with_byte_0xff_are_exported_through_the_commands() {
    use std::os::unix::ffi::OsStrExt;
    use tauri::Manager;
    let bytes = |p: &std::path::Path| p.as_os_str().as_bytes().to_vec();
    let dir = tempfile::tempdir().expect("tempdir");
    let named = |name: &[u8]| dir.path().join(std::ffi::OsStr::from_bytes(name));
    let (song_made, class_made) = make_pair(dir.path());
    let (class, song, out) = (
        named(b"class-\xff.mp4"),
        named(b"beat-\xfe.m4a"),
        named(b"out-\xff"),
    );
    std::fs::rename(&class_made, &class).expect("rename");
    std::fs::rename(&song_made, &song).expect("rename");
    std::fs::create_dir(&out).expect("out dir");
    for decoy in ["class-\u{FFFD}.mp4", "beat-\u{FFFD}.m4a"] {
        std::fs::write(dir.path().join(decoy), "not the file the job names").expect("decoy");
    }
    std::fs::create_dir(dir.path().join("out-\u{FFFD}")).expect("decoy folder");
    let app = app();
    let main = main_window(&app);
    let changed = collect(&app, events::JobChanged::NAME);

    pick_out_dir(&app, &out);
    let settings = call(&main, "get_settings", json!({})).expect("settings");
    assert!(
        settings["out_dir"]
            .as_str()
            .is_some_and(|d| d.ends_with("out-\u{FFFD}")),
        "{settings}"
    );
    let Analysed {
        class_id, job, id, ..
    } = analyze_pair(&app, &main, &class, &song);
    assert_eq!(
        job["dance_file"],
        class_id.as_str(),
        "the same id as dropped"
    );
    assert!(
        job["dance_path"]
            .as_str()
            .is_some_and(|p| p.ends_with("class-\u{FFFD}.mp4")),
        "{job}"
    );
    wait_for(&changed, &id, "analysed", |j| j["state"] == "analyzed");
    call(&main, "export", json!({ "ids": [id] })).expect("export");
    wait_for(&changed, &id, "exported", |j| {
        j["state"] == "done" || j["state"] == "failed"
    });
    let listed = call(&main, "list_jobs", json!({})).expect("list");
    let view = listed
        .as_array()
        .expect("list")
        .iter()
        .find(|j| j["id"] == id.as_str())
        .expect("listed");
    assert_eq!(view["state"], "done", "{view}");
    for shown in [&view["output_path"], &view["report"]["output"]] {
        assert!(
            shown
                .as_str()
                .is_some_and(|p| p.ends_with("out-\u{FFFD}/class-\u{FFFD}_beatsync.mp4")),
            "shown as text: {view}"
        );
    }
    assert!(view["options"]["out_dir"].is_string(), "{view}");

    let state = app.state::<beatsync_app::state::AppState>();
    let kept = state.store.get(&id).expect("the stored job");
    assert_eq!(
        bytes(&kept.recording.path),
        bytes(&class.canonicalize().expect("c"))
    );
    assert_eq!(
        bytes(&kept.song.path),
        bytes(&song.canonicalize().expect("c"))
    );
    let output = kept.output_path.expect("output");
    assert_eq!(
        bytes(output.parent().expect("folder")),
        bytes(&out.canonicalize().expect("c"))
    );
    let info = beatsync_engine::probe(&output).expect("the output is a video");
    info.require_audio().expect("sound");
    assert_eq!(
        std::fs::read_dir(dir.path().join("out-\u{FFFD}"))
            .expect("decoy folder")
            .count(),
        0,
        "nothing written to the folder of the lossy name"
    );
}

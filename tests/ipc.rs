//! The app's commands called through Tauri's IPC on the mock runtime, with the
//! app's real configuration and capabilities (so the ACL is exercised too),
//! and the contract files checked against the types. Every command has a
//! test here, its errors included; files are named by the ids the shell
//! hands out (docs/security.md lists what the page may and may not do, and
//! the test for each).

#[path = "ipc/common.rs"]
mod common;

use beatsync_app::state::{AppState, TypedPathConfirm};
use beatsync_app::{contract, events};
use beatsync_engine::ErrorCode;
use common::{
    analyze, analyze_pair, app, call, drop_files, drop_one, drop_pair, main_window, make_class,
    make_song, pick_out_dir, Analysed,
};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use tauri::test::{get_ipc_response, MockRuntime};
use tauri::{Manager, WebviewWindow, WebviewWindowBuilder};

/// The code of a command's error (every error is `{code, message}`).
fn code_of(w: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> String {
    let err = call(w, cmd, args.clone()).expect_err(&format!("{cmd} {args} refused"));
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{err}"
    );
    err["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{cmd}: {err}"))
        .to_string()
}

fn set_typed_paths(app: &tauri::App<MockRuntime>, mode: TypedPathConfirm) {
    *app.state::<AppState>().typed_paths.lock().expect("lock") = mode;
}

#[test]
fn probe_media_takes_an_id_the_shell_handed_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let song = make_song(dir.path());
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "hello").expect("write");
    let app = app();
    let main = main_window(&app);

    let added = drop_files(&app, &[&song, &text]);
    let id = added[0]["id"].as_str().expect("an id for the song");
    assert_eq!(id.len(), 32, "128 random bits");
    assert!(!id.contains("song"), "the id says nothing of the path");
    assert_eq!(added[1]["ok"], false);
    assert_eq!(added[1]["error"]["code"], "not_media");
    assert!(added[1].get("id").is_none(), "a rejected file gets no id");

    let ok = call(&main, "probe_media", json!({ "id": id })).expect("probe succeeds");
    assert_eq!(ok["streams"][0]["kind"], "audio");
    assert_eq!(ok["streams"][0]["codec"], "aac");
    assert_eq!(ok["streams"][0]["sample_rate"], 44100);
    assert!((ok["duration_s"].as_f64().expect("duration") - 2.0).abs() < 0.1);

    // A path, an id never handed out, or nothing names no file.
    let path = song.to_str().expect("utf-8");
    for bad in [path, "0123456789abcdef0123456789abcdef", ""] {
        assert_eq!(
            code_of(&main, "probe_media", json!({ "id": bad })),
            "invalid_argument"
        );
    }
    assert!(
        call(&main, "probe_media", json!({ "path": path })).is_err(),
        "no path argument"
    );
}

/// A name that is not UTF-8 costs at most that file: the rest of the drop
/// is added, and the name is shown with replacement characters.
#[cfg(unix)]
#[test]
fn a_name_that_is_not_utf8_never_loses_the_rest_of_the_drop() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let song = make_song(dir.path());
    let odd = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"class \xff\xfe.mp4"));
    std::fs::write(&odd, "not a video").expect("write");
    let app = app();
    let added = drop_files(&app, &[&odd, &song]);
    assert_eq!(added.len(), 2);
    assert_eq!(added[0]["ok"], false, "{}", added[0]);
    assert!(added[0]["path"]
        .as_str()
        .expect("shown")
        .contains('\u{FFFD}'));
    assert_eq!(added[1]["ok"], true, "{}", added[1]);
}

#[test]
fn capability_grants_our_commands_only_to_the_main_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let song = make_song(dir.path());
    let app = app();
    let id = drop_one(&app, &song);
    let other = WebviewWindowBuilder::new(&*app, "other", Default::default())
        .build()
        .expect("second window");
    let err = get_ipc_response(&other, common::request("probe_media", json!({ "id": id })))
        .expect_err("a window without the capability is refused");
    let text = err.to_string();
    assert!(text.contains("not allowed"), "{text}");
}

#[test]
fn a_typed_path_is_added_only_when_the_user_confirms_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let class = make_class(dir.path());
    let app = app();
    let main = main_window(&app);
    // As typed: with `.` in it; registered under its canonical path.
    let typed = dir.path().join(".").join("class.mp4");
    let args = json!({ "paths": [typed] });

    // The native dialog cannot open here (no display): not confirmed, nothing added.
    assert_eq!(
        *app.state::<AppState>().typed_paths.lock().expect("lock"),
        TypedPathConfirm::Dialog
    );
    assert_eq!(
        call(&main, "add_files", args.clone()).expect("asked"),
        json!([])
    );
    set_typed_paths(&app, TypedPathConfirm::Answer(false));
    assert_eq!(
        call(&main, "add_files", args.clone()).expect("declined"),
        json!([])
    );

    set_typed_paths(&app, TypedPathConfirm::Answer(true));
    let added = call(&main, "add_files", args).expect("confirmed");
    assert_eq!(added[0]["ok"], true);
    assert_eq!(added[0]["role"], "class");
    let canonical = class.canonicalize().expect("canonical");
    assert_eq!(added[0]["path"], json!(canonical));
    let id = added[0]["id"].as_str().expect("id");
    assert_eq!(drop_one(&app, &class), id, "the same file keeps its id");
    assert!(call(&main, "probe_media", json!({ "id": id })).is_ok());

    // A missing file is that file's error; the others in the list are still added.
    let missing = dir.path().join("gone.mp4");
    let added = call(&main, "add_files", json!({ "paths": [missing, class] })).expect("added");
    assert_eq!(added[0]["error"]["code"], "not_found");
    assert_eq!(added[1]["ok"], true);
    assert_eq!(
        code_of(&main, "add_files", json!({ "paths": ["  "] })),
        "invalid_argument"
    );
}

#[test]
fn native_dialogs_add_nothing_when_no_choice_is_made() {
    let app = app();
    let main = main_window(&app);
    let before = call(&main, "get_settings", json!({})).expect("settings");
    // No display, no portal: the dialogs come back empty, as when cancelled.
    assert_eq!(
        call(&main, "pick_files", json!({})).expect("picked"),
        json!([])
    );
    assert_eq!(
        call(&main, "pick_folder", json!({})).expect("picked"),
        Value::Null
    );
    assert_eq!(
        call(&main, "get_settings", json!({})).expect("settings"),
        before
    );
}

#[test]
fn settings_keep_preferences_and_only_the_picked_folder() {
    let out = tempfile::tempdir().expect("out");
    let app = app();
    let main = main_window(&app);
    pick_out_dir(&app, out.path());
    let kept = out.path().canonicalize().expect("canonical");
    let s = call(&main, "get_settings", json!({})).expect("settings");
    assert_eq!(s["out_dir"], json!(kept));
    assert_eq!(
        s["mirror"], true,
        "the picture is mirrored until turned off"
    );
    let saved = call(
        &main,
        "set_settings",
        json!({ "settings": { "language": null, "balance": 0.0, "mirror": false } }),
    )
    .expect("mirror off");
    assert_eq!(saved["mirror"], false);
    assert_eq!(
        s["mirror_export"], false,
        "exports are not mirrored until turned on"
    );
    let saved = call(
        &main,
        "set_settings",
        json!({ "settings": { "language": null, "balance": 0.0, "mirror_export": true } }),
    )
    .expect("mirror export on");
    assert_eq!(
        (saved["mirror"].as_bool(), saved["mirror_export"].as_bool()),
        (Some(false), Some(true))
    );
    for field in ["mirror", "mirror_export"] {
        let mut bad = json!({ "language": null, "balance": 0.0 });
        bad[field] = json!("yes");
        assert_eq!(
            code_of(&main, "set_settings", json!({ "settings": bad })),
            "invalid_argument",
            "{field}"
        );
    }

    let saved = call(
        &main,
        "set_settings",
        json!({ "settings": { "language": "zh", "balance": 0.25 } }),
    )
    .expect("saved");
    assert_eq!(saved["language"], "zh");
    let s = call(&main, "get_settings", json!({})).expect("settings");
    assert_eq!(
        (s["language"].as_str(), s["balance"].as_f64()),
        (Some("zh"), Some(0.25))
    );
    // Sending back the folder it was given is fine; any other folder is refused.
    let mut same = s.clone();
    same["balance"] = json!(-0.5);
    assert!(call(&main, "set_settings", json!({ "settings": same })).is_ok());
    let other = tempfile::tempdir().expect("other");
    for (field, value) in [
        ("out_dir", json!(other.path())),
        ("out_dir", json!("/")),
        ("language", json!("fr")),
        ("balance", json!(3.0)),
        ("balance", json!(null)), // NaN and infinity arrive as null
        ("balance", json!("inf")),
    ] {
        let mut bad = json!({ "language": null, "balance": 0.0 });
        bad[field] = value.clone();
        assert_eq!(
            code_of(&main, "set_settings", json!({ "settings": bad })),
            "invalid_argument",
            "{field} = {value}"
        );
    }
    let s = call(&main, "get_settings", json!({})).expect("settings");
    assert_eq!(s["out_dir"], json!(kept), "the folder is unchanged");
    assert_eq!(s["balance"], -0.5);
    assert_eq!(s["mirror"], false, "kept when not sent");
    assert_eq!(s["mirror_export"], true, "kept when not sent");
}

#[test]
fn waveform_by_id_with_a_valid_resolution() {
    let dir = tempfile::tempdir().expect("tempdir");
    let song = make_song(dir.path());
    let app = app();
    let main = main_window(&app);
    let id = drop_one(&app, &song);
    let w = call(&main, "waveform", json!({ "id": id, "peaks_per_s": 50 })).expect("waveform");
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

    for pps in [json!(0), json!(-5), json!(null), json!(1e9), json!("200")] {
        assert_eq!(
            code_of(&main, "waveform", json!({ "id": id, "peaks_per_s": pps })),
            "invalid_argument",
            "peaks_per_s {pps}"
        );
    }
    let path = song.to_str().expect("utf-8");
    assert_eq!(
        code_of(&main, "waveform", json!({ "id": path, "peaks_per_s": 50 })),
        "invalid_argument"
    );
}

#[test]
fn jobs_through_ipc_with_their_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("out dir");
    let class = make_class(dir.path());
    let song = make_song(dir.path());
    let app = app();
    let main = main_window(&app);
    pick_out_dir(&app, out.path());
    let (class_id, song_id) = drop_pair(&app, &class, &song);

    // Ids only: a path, or an id never handed out, is refused; a song cannot be the class video.
    let path = class.to_str().expect("utf-8");
    for (recording, song) in [(path, song_id.as_str()), (class_id.as_str(), "f00")] {
        assert_eq!(
            code_of(&main, "analyze", json!({ "dance": recording, "bgm": song })),
            "invalid_argument"
        );
    }
    assert_eq!(
        code_of(
            &main,
            "analyze",
            json!({ "dance": song_id, "bgm": song_id })
        ),
        "no_video"
    );

    let (job, id) = analyze(&main, &class_id, &song_id);
    assert_eq!(
        job["dance_file"],
        json!(class_id),
        "the job names its files by the same ids"
    );
    assert_eq!(job["bgm_file"], json!(song_id));
    assert_eq!(
        job["dance_path"],
        json!(class.canonicalize().expect("canonical"))
    );
    assert_eq!(
        job["options"]["out_dir"],
        json!(out.path().canonicalize().expect("canonical"))
    );
    assert_eq!(job["options"]["auto_export"], false);
    let listed = call(&main, "list_jobs", json!({})).expect("list");
    assert!(listed
        .as_array()
        .expect("array")
        .iter()
        .any(|j| j["id"] == json!(id)));

    // Placement and trim: kept when valid; NaN/inf (null on the wire), out of range, refused.
    let j = call(
        &main,
        "set_placement",
        json!({ "id": id, "offset_s": 1.5, "rate": 1.0 }),
    )
    .expect("nudge");
    assert_eq!(j["options"]["offset_s"], 1.5);
    for (offset, rate) in [
        (json!(null), json!(1.0)),
        (json!(1.0), json!(3.0)),
        (json!(1e12), json!(1.0)),
        (json!(1.0), json!(-1.0)),
    ] {
        assert_eq!(
            code_of(
                &main,
                "set_placement",
                json!({ "id": id, "offset_s": offset, "rate": rate })
            ),
            "invalid_argument"
        );
    }
    assert_eq!(
        code_of(
            &main,
            "set_placement",
            json!({ "id": "no-such-job", "offset_s": 1.0, "rate": 1.0 })
        ),
        "job_not_found"
    );
    let j = call(
        &main,
        "set_trim",
        json!({ "id": id, "start_s": 0.25, "end_s": 1.5 }),
    )
    .expect("trim");
    assert_eq!(
        (
            j["options"]["trim_start_s"].as_f64(),
            j["options"]["trim_end_s"].as_f64()
        ),
        (Some(0.25), Some(1.5))
    );
    for (start, end) in [
        (json!(5.0), json!(1.0)),
        (json!(-1.0), json!(1.0)),
        (json!(null), json!(1.0)),
        (json!(0.0), json!("x")),
    ] {
        assert_eq!(
            code_of(
                &main,
                "set_trim",
                json!({ "id": id, "start_s": start, "end_s": end })
            ),
            "invalid_argument"
        );
    }
    assert_eq!(
        code_of(
            &main,
            "set_trim",
            json!({ "id": "nope", "start_s": 0.0, "end_s": 1.0 })
        ),
        "job_not_found"
    );

    // Not exported yet: nothing to open or show.
    for cmd in ["open_path", "reveal_path"] {
        assert_eq!(
            code_of(&main, cmd, json!({ "id": id })),
            "invalid_state",
            "{cmd}"
        );
        assert_eq!(
            code_of(&main, cmd, json!({ "id": "nope" })),
            "job_not_found",
            "{cmd}"
        );
        let p = class.to_str().expect("utf-8");
        assert_eq!(
            code_of(&main, cmd, json!({ "id": p })),
            "job_not_found",
            "{cmd} with a path"
        );
    }

    let cancelled = call(&main, "cancel_job", json!({ "id": id })).expect("cancel");
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(
        code_of(&main, "cancel_job", json!({ "id": id })),
        "invalid_state"
    );
    assert_eq!(
        code_of(&main, "cancel_job", json!({ "id": "nope" })),
        "job_not_found"
    );
    let retried = call(&main, "retry_job", json!({ "id": id })).expect("retry");
    assert!(
        ["queued", "analyzing", "analyzed"].contains(&retried["state"].as_str().expect("state"))
    );
    assert_eq!(
        code_of(&main, "retry_job", json!({ "id": id })),
        "invalid_state",
        "not finished"
    );
    assert_eq!(
        code_of(&main, "retry_job", json!({ "id": "nope" })),
        "job_not_found"
    );

    // The history: a finished job is cleared, the count answered.
    call(&main, "cancel_job", json!({ "id": id })).expect("cancel again");
    let cleared = call(&main, "clear_history", json!({})).expect("cleared");
    assert!(cleared.as_u64() >= Some(1), "{cleared}");
    let listed = call(&main, "list_jobs", json!({})).expect("list");
    assert!(!listed
        .as_array()
        .expect("array")
        .iter()
        .any(|j| j["id"] == json!(id)));
}

/// Several songs: a class video is aligned against each song it is given
/// (by id): its own song is placed and sure, a song that is not in it is not
/// placed. A job's song is confirmed by id (an unsure analysis waits for it).
#[test]
fn songs_are_matched_by_id_and_a_song_is_confirmed_by_job_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (beat, beat_class) = common::make_pair(dir.path());
    let tone = make_song(dir.path());
    let app = app();
    let main = main_window(&app);
    let ids: Vec<String> = [&beat_class, &beat, &tone]
        .iter()
        .map(|p| drop_one(&app, p))
        .collect();
    let matches = call(
        &main,
        "match_songs",
        json!({ "dance": ids[0], "songs": [ids[1], ids[2]] }),
    )
    .expect("matched");
    let (own, other) = (&matches[0], &matches[1]);
    assert_eq!(own["song"], ids[1].as_str(), "{matches}");
    assert_eq!(own["verdict"], "sure", "{own}");
    let offset = own["offset_s"].as_f64().expect("placed");
    assert!((offset - 2.0).abs() < 0.01, "offset {offset}");
    assert_eq!(other["song"], ids[2].as_str());
    assert!(
        other["verdict"].is_null() && other["error"]["code"].is_string(),
        "{other}"
    );

    let path = beat.to_str().expect("utf-8");
    for args in [
        json!({ "dance": ids[0], "songs": [] }),
        json!({ "dance": ids[0], "songs": [path] }),
        json!({ "dance": "f00", "songs": [ids[1]] }),
    ] {
        assert_eq!(code_of(&main, "match_songs", args), "invalid_argument");
    }

    let job = call(&main, "analyze", json!({ "dance": ids[0], "bgm": ids[1] })).expect("job");
    assert_eq!(job["options"]["song_confirmed"], false);
    let confirmed = call(&main, "confirm_song", json!({ "id": job["id"] })).expect("confirmed");
    assert_eq!(confirmed["options"]["song_confirmed"], true);
    assert_eq!(
        code_of(&main, "confirm_song", json!({ "id": "no-such-job" })),
        "job_not_found"
    );
}

#[test]
fn exports_go_only_to_the_folder_the_user_picked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let picked = tempfile::tempdir().expect("picked");
    let elsewhere = tempfile::tempdir().expect("elsewhere");
    let class = make_class(dir.path());
    let song = make_song(dir.path());
    let app = app();
    let main = main_window(&app);
    pick_out_dir(&app, picked.path());
    let (class_id, song_id) = drop_pair(&app, &class, &song);

    // A folder the page names is not an argument: the job goes to the picked one.
    let jobs = call(
        &main,
        "export_all",
        json!({ "dances": [class_id], "bgm": song_id, "out_dir": elsewhere.path() }),
    )
    .expect("export_all");
    let id = jobs[0]["id"].as_str().expect("id").to_string();
    let kept = json!(picked.path().canonicalize().expect("canonical"));
    assert_eq!(jobs[0]["options"]["out_dir"], kept);
    assert_eq!(jobs[0]["options"]["auto_export"], true);
    let again = call(
        &main,
        "export",
        json!({ "ids": [id], "out_dir": elsewhere.path() }),
    );
    if let Ok(again) = again {
        assert_eq!(again[0]["options"]["out_dir"], kept);
    }
    call(&main, "cancel_job", json!({ "id": id })).ok();

    // Bad ids: nothing is made; an unknown job is named.
    let before = call(&main, "list_jobs", json!({}))
        .expect("list")
        .as_array()
        .expect("a")
        .len();
    assert_eq!(
        code_of(
            &main,
            "export_all",
            json!({ "dances": [class_id, "nope"], "bgm": song_id })
        ),
        "invalid_argument"
    );
    assert_eq!(
        code_of(
            &main,
            "export_all",
            json!({ "dances": [class_id], "bgm": "nope" })
        ),
        "invalid_argument"
    );
    let after = call(&main, "list_jobs", json!({}))
        .expect("list")
        .as_array()
        .expect("a")
        .len();
    assert_eq!(before, after, "no job from a refused batch");
    assert_eq!(
        code_of(&main, "export", json!({ "ids": ["no-such-job"] })),
        "job_not_found"
    );

    // The picked folder removed since: said plainly, before any job changes.
    let gone = tempfile::tempdir().expect("gone");
    pick_out_dir(&app, gone.path());
    drop(gone);
    assert_eq!(
        code_of(&main, "export", json!({ "ids": [id] })),
        "output_dir"
    );
    assert_eq!(
        code_of(
            &main,
            "export_all",
            json!({ "dances": [class_id], "bgm": song_id })
        ),
        "output_dir"
    );
}

#[test]
fn preview_commands_check_the_job_and_the_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let class = make_class(dir.path());
    let song = make_song(dir.path());
    let app = app();
    let main = main_window(&app);
    let Analysed { id, .. } = analyze_pair(&app, &main, &class, &song);
    let id = id.as_str();
    call(&main, "cancel_job", json!({ "id": id })).ok();

    let play = |id: &str, from: Value, balance: Value| {
        code_of(
            &main,
            "preview_play",
            json!({ "id": id, "from_s": from, "balance": balance }),
        )
    };
    assert_eq!(play("no-such-job", json!(0.0), json!(0.0)), "job_not_found");
    for (from, balance) in [
        (json!(null), json!(0.0)),
        (json!(-1.0), json!(0.0)),
        (json!(0.0), json!(2.0)),
        (json!(0.0), json!(null)),
    ] {
        assert_eq!(
            play(id, from.clone(), balance.clone()),
            "invalid_argument",
            "{from} {balance}"
        );
    }
    // The 2 s class video has no placement the aligner could find, or is cancelled
    // before: without an analysis there is nothing to play.
    let now = call(&main, "list_jobs", json!({})).expect("list");
    let analysed = now
        .as_array()
        .expect("a")
        .iter()
        .any(|j| j["id"] == id && !j["analysis"].is_null());
    if !analysed {
        assert_eq!(play(id, json!(0.0), json!(0.0)), "invalid_state");
    }
    assert_eq!(
        call(&main, "preview_stop", json!({})).expect("stop"),
        Value::Null
    );
}

/// Asks the `frame:` scheme as the page's `<img>` does; answers (status, content type, body).
fn picture(app: &tauri::App<MockRuntime>, url: &str) -> (u16, String, Vec<u8>) {
    let state = app.state::<AppState>();
    // As the webview sends it: a space (in a path tried as an id) percent-encoded.
    let request = tauri::http::Request::builder()
        .uri(url.replace(' ', "%20"))
        .body(Vec::new())
        .expect("request");
    let r = beatsync_app::pictures::answer(&state.files, &state.pictures, &request);
    let kind = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (r.status().as_u16(), kind, r.into_body())
}

/// Width and height from a JPEG's start-of-frame segment.
fn jpeg_size(b: &[u8]) -> (u32, u32) {
    assert_eq!(&b[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
    let mut i = 2;
    while i + 9 < b.len() {
        let (marker, len) = (b[i + 1], usize::from(b[i + 2]) << 8 | usize::from(b[i + 3]));
        if (0xC0..=0xC2).contains(&marker) {
            let h = u32::from(b[i + 5]) << 8 | u32::from(b[i + 6]);
            let w = u32::from(b[i + 7]) << 8 | u32::from(b[i + 8]);
            return (w, h);
        }
        i += 2 + len;
    }
    panic!("no frame header in the JPEG");
}

/// The picture view's frames: by a file id the shell handed out and a time,
/// never a path; unknown ids, paths, `..` and bad numbers are refused with a
/// status and an empty body. Frame stepping by the stream's own frame times,
/// the filmstrip served by index, and at most three recordings kept open.
#[test]
fn pictures_by_id_through_the_frame_scheme_and_frame_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (song, class) = common::make_pair(dir.path());
    let app = app();
    let main = main_window(&app);
    let id = drop_one(&app, &class);
    let song_id = drop_one(&app, &song);

    let (code, kind, body) = picture(&app, &format!("frame://localhost/{id}/5000?w=80"));
    assert_eq!((code, kind.as_str()), (200, "image/jpeg"));
    assert_eq!(
        jpeg_size(&body),
        (80, 46),
        "160x90 at 80 px wide, even height"
    );
    let (code, _, body) = picture(
        &app,
        &format!("http://frame.localhost/{id}/5000?w=640&play=1"),
    );
    assert_eq!(
        (code, jpeg_size(&body)),
        (200, (640, 360)),
        "the Windows form, playing"
    );

    let path = class.to_str().expect("utf-8");
    let made_up = "0123456789abcdef0123456789abcdef";
    for (url, want) in [
        (format!("frame://localhost/{made_up}/0?w=80"), 404),
        (format!("frame://localhost/{song_id}/0?w=80"), 500), // sound only: no picture
        (format!("frame://localhost/{id}/strip/0"), 404),     // no filmstrip made yet
        (format!("frame://localhost/{path}/0?w=80"), 400),
        (format!("frame://localhost/..%2F..{path}/0?w=80"), 400),
        (format!("frame://localhost/../{id}/0?w=80"), 400),
        (
            "frame://localhost/..%2F..%2Fetc%2Fpasswd/0?w=80".to_string(),
            400,
        ),
        (format!("frame://localhost/{id}/0?w=8"), 400),
        (format!("frame://localhost/{id}/0?w=99999"), 400),
        (format!("frame://localhost/{id}/0.5?w=80"), 400),
        (format!("frame://localhost/{id}/-40?w=80"), 400),
        (format!("frame://localhost/{id}/0"), 400),
        (format!("frame://localhost/{id}/0?w=80&path={path}"), 400),
    ] {
        let (code, _, body) = picture(&app, &url);
        assert_eq!(code, want, "{url}");
        assert!(body.is_empty(), "{url}: no detail in the body");
    }

    // Stepping: 15 frames/s, by the stream's timestamps.
    let here = call(
        &main,
        "frame_step",
        json!({ "id": id, "at_s": 5.0, "frames": 0 }),
    )
    .expect("step 0");
    let next = call(
        &main,
        "frame_step",
        json!({ "id": id, "at_s": 5.0, "frames": 1 }),
    )
    .expect("step 1");
    let back = call(
        &main,
        "frame_step",
        json!({ "id": id, "at_s": 5.0, "frames": -3 }),
    )
    .expect("step -3");
    let index = here["index"].as_u64().expect("index");
    assert!((index as f64 - 75.0).abs() <= 1.0, "{here}");
    assert_eq!(next["index"].as_u64(), Some(index + 1));
    assert_eq!(back["index"].as_u64(), Some(index - 3));
    let (start, end) = (
        here["start_s"].as_f64().expect("s"),
        here["end_s"].as_f64().expect("s"),
    );
    assert!(
        (end - start - 1.0 / 15.0).abs() < 1e-3 && start <= 5.0 && 5.0 < end,
        "{here}"
    );
    assert_eq!(next["start_s"], here["end_s"]);
    let last = call(
        &main,
        "frame_step",
        json!({ "id": id, "at_s": 11.9, "frames": 1000 }),
    )
    .expect("end");
    assert_eq!(
        last["index"].as_u64(),
        Some(179),
        "clamped to the last of 12 s × 15"
    );
    for (args, why) in [
        (
            json!({ "id": id, "at_s": 1.0, "frames": 0.5 }),
            "half a frame",
        ),
        (json!({ "id": id, "at_s": null, "frames": 1 }), "NaN"),
        (
            json!({ "id": id, "at_s": -1.0, "frames": 1 }),
            "negative time",
        ),
        (json!({ "id": id, "at_s": 1.0, "frames": 5000 }), "too far"),
        (
            json!({ "id": made_up, "at_s": 1.0, "frames": 1 }),
            "unknown id",
        ),
        (json!({ "id": path, "at_s": 1.0, "frames": 1 }), "a path"),
    ] {
        assert_eq!(
            code_of(&main, "frame_step", args),
            "invalid_argument",
            "{why}"
        );
    }

    // The filmstrip: one thumbnail every 2 s, cached on disk, served by index.
    let strip = call(&main, "filmstrip", json!({ "id": id })).expect("filmstrip");
    let thumbs = strip["thumbnails"].as_array().expect("thumbnails");
    assert_eq!(thumbs.len(), 6, "{strip}");
    assert!(strip.get("dir").is_none(), "no folder for the page");
    let (code, _, body) = picture(&app, &format!("frame://localhost/{id}/strip/5"));
    assert_eq!((code, jpeg_size(&body).0), (200, 160));
    assert_eq!(
        picture(&app, &format!("frame://localhost/{id}/strip/6")).0,
        404
    );
    assert!(
        common::data_dir()
            .join("filmstrips")
            .read_dir()
            .expect("cache")
            .count()
            >= 1
    );
    assert_eq!(
        call(&main, "filmstrip", json!({ "id": id })).expect("again"),
        strip
    );
    assert_eq!(
        code_of(&main, "filmstrip", json!({ "id": made_up })),
        "invalid_argument"
    );
    // The dense strip started the proxy, at the width last asked (640): once
    // ready, the recording's frames of that width are read from it; an id
    // never handed out still gets nothing.
    let server = app
        .state::<AppState>()
        .pictures
        .server(&id, &class)
        .expect("server");
    let proxy = (0..1200)
        .find_map(|_| {
            let s = server.proxy_status().expect("the strip started the proxy");
            assert_eq!(s.error, None);
            std::thread::sleep(std::time::Duration::from_millis(50));
            s.ready.then_some(s)
        })
        .expect("proxy ready within 60 s");
    assert_eq!((proxy.width, proxy.frames), (640, 180), "{proxy:?}");
    assert!(common::data_dir().join("proxies").is_dir());
    let hits = server.stats().proxy_hits;
    let (code, _, body) = picture(&app, &format!("frame://localhost/{id}/7000?w=640"));
    assert_eq!((code, jpeg_size(&body)), (200, (640, 360)));
    assert_eq!(server.stats().proxy_hits, hits + 1, "read from the proxy");
    assert_eq!(
        picture(&app, &format!("frame://localhost/{made_up}/7000?w=640")).0,
        404
    );
    assert_eq!(server.stats().proxy_hits, hits + 1);
    // A sparser strip, asked by spacing, is served under its own spacing.
    let sparse = call(&main, "filmstrip", json!({ "id": id, "every_s": 8 })).expect("sparse");
    assert_eq!(sparse["every_s"], json!(8.0));
    assert_eq!(sparse["thumbnails"].as_array().map(Vec::len), Some(2));
    let (code, _, body) = picture(&app, &format!("frame://localhost/{id}/strip/1?e=8000"));
    assert_eq!((code, jpeg_size(&body).0), (200, 160));
    assert_eq!(
        picture(&app, &format!("frame://localhost/{id}/strip/2?e=8000")).0,
        404
    );
    assert_eq!(
        picture(&app, &format!("frame://localhost/{id}/strip/1?e=4000")).0,
        404,
        "no strip made with that spacing"
    );
    for every_s in [json!(0.05), json!(601), json!("8")] {
        assert_eq!(
            code_of(&main, "filmstrip", json!({ "id": id, "every_s": every_s })),
            "invalid_argument",
            "{every_s}"
        );
    }

    // At most three recordings open: the least recently used is closed.
    let mut ids = vec![id.clone()];
    for n in 2..=4 {
        let copy = dir.path().join(format!("class {n}.mp4"));
        std::fs::copy(&class, &copy).expect("copy");
        ids.push(drop_one(&app, &copy));
    }
    for other in &ids[1..] {
        assert_eq!(
            picture(&app, &format!("frame://localhost/{other}/1000?w=80")).0,
            200
        );
    }
    let open = app.state::<AppState>().pictures.open_ids();
    assert_eq!(open, ids[1..].to_vec(), "the first one closed");
    assert_eq!(
        picture(&app, &format!("frame://localhost/{id}/1000?w=80")).0,
        200,
        "reopened"
    );

    // A file that leaves the list closes its frame server: its decoding
    // thread ends (the page's close of a file not open says so).
    let worker = {
        let server = app.state::<AppState>().pictures.server(&id, &class);
        server.expect("open").worker_name().to_string()
    };
    assert!(threads_named(&worker) > 0, "{worker} runs");
    assert_eq!(
        call(&main, "close_pictures", json!({ "id": id })),
        Ok(json!(true))
    );
    assert!(!app.state::<AppState>().pictures.open_ids().contains(&id));
    assert_eq!(threads_named(&worker), 0, "its decoding threads ended");
    assert_eq!(
        call(&main, "close_pictures", json!({ "id": id })),
        Ok(json!(false))
    );
    assert_eq!(
        code_of(&main, "close_pictures", json!({ "id": made_up })),
        "invalid_argument"
    );
}

/// Threads of this process named `name` (FFmpeg's own decoding threads
/// inherit the name of the frame server's thread that starts them).
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc")
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .count()
}

#[test]
fn launch_files_wait_for_the_page_then_arrive_like_a_drop() {
    use tauri::Listener;
    let dir = tempfile::tempdir().expect("tempdir");
    let song = make_song(dir.path());
    let app = app();
    let _main = WebviewWindowBuilder::new(&*app, "main", Default::default())
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

    call(&_main, "page_ready", json!({})).expect("page ready");
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
        ("probe_media", json!({ "id": "no-such-file" })),
        (
            "set_plays",
            json!({ "id": "no-such-job", "plays": [{ "index": 0, "included": true, "offset_s": 1.0 }] }),
        ),
        (
            "set_plays_layout",
            json!({ "id": "no-such-job", "layout": "both", "between": "silence" }),
        ),
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
    assert_eq!(codes["probe_media"], ErrorCode::InvalidArgument);
    assert_eq!(codes["set_plays"], ErrorCode::JobNotFound);
    assert_eq!(codes["set_plays_layout"], ErrorCode::InvalidArgument);
    assert_eq!(codes["preview_play"], ErrorCode::JobNotFound);
}

/// Every command the window may call is called in this file (errors included above).
#[test]
fn every_command_has_an_ipc_test() {
    let caps: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("src-tauri/capabilities/main.json"))
            .expect("capability"),
    )
    .expect("json");
    let src = std::fs::read_to_string(root().join("tests/ipc.rs")).expect("this file");
    let untested: Vec<String> = caps["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .filter_map(|p| {
            p.as_str()?
                .strip_prefix("allow-")
                .map(|c| c.replace('-', "_"))
        })
        .filter(|c| !src.contains(&format!("\"{c}\"")))
        .collect();
    assert!(
        untested.is_empty(),
        "commands never called through IPC: {untested:?}"
    );
}

/// The page's reach, as configured: no asset protocol, a CSP that allows
/// nothing but the app's own files and IPC, and a capability of our own
/// commands plus listening to events (docs/security.md).
#[test]
fn the_window_gets_the_least_it_needs() {
    let conf: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tauri.conf.json")).expect("tauri.conf.json"),
    )
    .expect("json");
    let security = &conf["app"]["security"];
    assert!(security.get("assetProtocol").is_none(), "{security}");
    let csp = security["csp"].as_str().expect("csp");
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("asset"), "{csp}");
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    assert!(
        !manifest.contains("protocol-asset"),
        "the asset protocol is not built in"
    );
    let caps: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("src-tauri/capabilities/main.json"))
            .expect("capability"),
    )
    .expect("json");
    let foreign: Vec<&str> = caps["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .filter_map(|p| p.as_str())
        .filter(|p| {
            !p.starts_with("allow-")
                && !["core:event:allow-listen", "core:event:allow-unlisten"].contains(p)
        })
        .collect();
    assert!(
        foreign.is_empty(),
        "permissions beyond our commands and events: {foreign:?}"
    );
    assert_eq!(caps["windows"], json!(["main"]));
}

/// First five minutes: `about` names the version, the FFmpeg in use and the
/// data folder; `try_sample` makes the demo pair in the data folder (no path
/// from the page) and adds it like a drop: a class video and its song, by id.
#[test]
fn about_and_the_sample_through_ipc() {
    let app = app();
    let main = main_window(&app);
    let about = call(&main, "about", json!({})).expect("about");
    assert_eq!(about["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        about["ffmpeg"].as_str().is_some_and(|s| !s.is_empty()),
        "{about}"
    );
    assert_eq!(
        about["data_dir"],
        json!(common::data_dir()),
        "the jobs are kept in the data folder"
    );

    let added = call(&main, "try_sample", json!({})).expect("sample made");
    let added = added.as_array().expect("a list");
    let roles: Vec<&str> = added
        .iter()
        .map(|a| {
            assert_eq!(a["ok"], true, "{a}");
            assert!(a["id"].as_str().is_some_and(|id| !id.is_empty()), "{a}");
            assert!(
                Path::new(a["path"].as_str().expect("path")).starts_with(common::data_dir()),
                "made in the data folder: {a}"
            );
            a["role"].as_str().expect("role")
        })
        .collect();
    assert_eq!(roles, ["class", "song"], "{added:?}");
}

//! `beatsync demo DIR`: the demo class video and song made in process, then
//! aligned by the CLI like any user's files — the offset found must be the
//! one the demo was made with, within 10 ms — and checked by the probe (a
//! video with sound, a stereo AAC song).

mod common;

use common::{path_str, tmp};
use serde_json::Value;
use std::process::Command;

fn beatsync(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_beatsync"))
        .args(args)
        .output()
        .expect("run beatsync");
    assert!(
        out.status.success(),
        "beatsync {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn the_demo_aligns_at_its_known_offset() {
    let dir = tmp();
    let out = dir.path().join("new folder");
    let demo = beatsync(&["demo", path_str(&out), "--json"]);
    let class = demo["class_video"].as_str().expect("class path");
    let song = demo["song"].as_str().expect("song path");
    let known = demo["offset_s"].as_f64().expect("offset");
    assert!((known - 4.3187).abs() < 1e-3, "offset {known}");
    // Only the two files, none left under a temporary name.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("demo folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["beatsync-demo-class.mp4", "beatsync-demo-song.m4a"]);

    let class_info = beatsync(&["probe", class, "--json", "--role", "class"]);
    let streams = class_info["streams"].as_array().expect("streams");
    let video = streams
        .iter()
        .find(|s| s["kind"] == "video")
        .expect("video stream");
    assert!(["h264", "mpeg4"].contains(&video["codec"].as_str().expect("codec")));
    assert_eq!(video["width"], 640);
    let duration = class_info["duration_s"].as_f64().expect("duration");
    assert!((duration - demo["class_duration_s"].as_f64().expect("length")).abs() < 0.1);
    let song_info = beatsync(&["probe", song, "--json", "--role", "song"]);
    assert_eq!(song_info["streams"][0]["codec"], "aac");
    assert_eq!(song_info["streams"][0]["channels"], 2);

    let found = beatsync(&["align", "--dance", class, "--bgm", song, "--json"]);
    let offset = found["offset_s"].as_f64().expect("offset_s");
    assert!(
        (offset - known).abs() < 0.010,
        "align found {offset:.4} s, the demo was made at {known:.4} s"
    );
    assert!((found["rate"].as_f64().expect("rate") - 1.0).abs() < 1e-4);
    // The song is heard from its start for the 30.5 s it plays.
    let heard = found["overlap"]["bgm_end_s"].as_f64().expect("overlap end")
        - found["overlap"]["bgm_start_s"]
            .as_f64()
            .expect("overlap start");
    assert!(heard > 28.0, "song heard for {heard:.1} s");
}

#[test]
fn a_demo_folder_that_cannot_be_made_is_an_output_dir_error() {
    let dir = tmp();
    let file = dir.path().join("a file");
    std::fs::write(&file, "x").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_beatsync"))
        .args(["demo", path_str(&file.join("sub"))])
        .output()
        .expect("run beatsync");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("output_dir: "), "{err}");
}

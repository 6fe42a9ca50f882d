//! The user's nudge and trim checked in the exported file, through the
//! commands on the mock runtime, in a process of its own (so this app's
//! runner, and no other, works on its job store).

#[path = "ipc/common.rs"]
mod common;

use beatsync_app::events::{self, Event};
use common::{
    analyze, app, call, collect, drop_pair, main_window, make_pair, pick_out_dir, wait_for,
};
use serde_json::json;

/// Mono PCM of a file's audio as a player hears it (edit lists honoured),
/// decoded by the ffmpeg command line at `rate`.
fn pcm(path: &std::path::Path, rate: u32) -> Vec<f32> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:a:0",
            "-ac",
            "1",
            "-ar",
            &rate.to_string(),
            "-f",
            "f32le",
            "-",
        ])
        .output()
        .expect("ffmpeg CLI");
    assert!(out.status.success(), "decoding {}", path.display());
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The lag (s) within `expected ± 0.1 s` at which `out(t)` best matches
/// `song(t + lag)`: normalised cross-correlation, peak refined by a parabola.
fn lag_in_song(out: &[f32], song: &[f32], rate: u32, expected: f64) -> f64 {
    let r = f64::from(rate);
    let span = (0.1 * r) as i64;
    let centre = (expected * r).round() as i64;
    let score = |lag: i64| -> f64 {
        let (mut dot, mut e1, mut e2) = (0.0f64, 0.0f64, 0.0f64);
        for (i, &a) in out.iter().enumerate() {
            let j = i as i64 + lag;
            if j < 0 || j as usize >= song.len() {
                continue;
            }
            let b = song[j as usize];
            dot += f64::from(a) * f64::from(b);
            e1 += f64::from(a) * f64::from(a);
            e2 += f64::from(b) * f64::from(b);
        }
        dot / (e1 * e2).sqrt().max(1e-12)
    };
    let lags: Vec<i64> = (centre - span..=centre + span).collect();
    let scores: Vec<f64> = lags.iter().map(|&l| score(l)).collect();
    let best = (0..scores.len())
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .expect("lags");
    assert!(
        scores[best] > 0.8,
        "the output is the song (correlation {})",
        scores[best]
    );
    let refine = if best > 0 && best + 1 < scores.len() {
        let (a, b, c) = (scores[best - 1], scores[best], scores[best + 1]);
        0.5 * (a - c) / (a - 2.0 * b + c)
    } else {
        0.0
    };
    (lags[best] as f64 + refine) / r
}

/// The duration ffprobe gives a file's first stream of `kind` (`a` or `v`).
fn stream_duration(path: &std::path::Path, kind: &str) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", &format!("{kind}:0")])
        .args(["-show_entries", "stream=duration", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe CLI");
    // A stream with side data (a display matrix) prints `D,` and an empty line.
    String::from_utf8_lossy(&out.stdout)
        .split([',', '\n'])
        .next()
        .and_then(|d| d.trim().parse().ok())
        .unwrap_or_else(|| panic!("a {kind} duration for {}", path.display()))
}

/// The user's nudge and trim reach the exported file: exported once as
/// analysed and once nudged +40 ms, both trimmed to 3…9 s of the recording;
/// decoded with the ffmpeg CLI, the song in the nudged output sits 40 ± 1 ms
/// later, each output's audio starts at the trim start (the song time the
/// placement puts there, ± 1 ms) and both streams last the trimmed 6 s.
#[test]
fn a_nudge_and_a_trim_reach_the_exported_audio() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (song, class) = make_pair(dir.path());
    let (plain_dir, nudged_dir) = (
        tempfile::tempdir().expect("out"),
        tempfile::tempdir().expect("out"),
    );
    let app = app();
    let main = main_window(&app);
    let changed = collect(&app, events::JobChanged::NAME);
    let (class_id, song_id) = drop_pair(&app, &class, &song);
    let (trim_start, trim_end) = (3.0, 9.0);

    let mut outputs = Vec::new();
    for (nudge, out) in [(0.0, &plain_dir), (0.040, &nudged_dir)] {
        let (_, id) = analyze(&main, &class_id, &song_id);
        wait_for(&changed, &id, "analysed", |j| j["state"] == "analyzed");
        let analysed = call(&main, "list_jobs", json!({})).expect("list");
        let a = analysed
            .as_array()
            .expect("list")
            .iter()
            .find(|j| j["id"] == id.as_str())
            .expect("listed")["analysis"]
            .clone();
        let offset = a["offset_s"].as_f64().expect("offset") + nudge;
        let rate = a["rate"].as_f64().expect("rate");
        assert!((rate - 1.0).abs() < 1e-3, "rate {rate}");
        call(
            &main,
            "set_placement",
            json!({ "id": id, "offset_s": offset, "rate": rate }),
        )
        .expect("nudge");
        call(
            &main,
            "set_trim",
            json!({ "id": id, "start_s": trim_start, "end_s": trim_end }),
        )
        .expect("trim");
        pick_out_dir(&app, out.path());
        // The nudged export is also mirrored (the setting, read at export).
        let mirror = nudge > 0.0;
        call(
            &main,
            "set_settings",
            json!({ "settings": { "language": null, "balance": 0.0, "mirror_export": mirror } }),
        )
        .expect("mirror setting");
        let exported = call(&main, "export", json!({ "ids": [id] })).expect("export");
        assert_eq!(exported[0]["options"]["mirror"], mirror);
        wait_for(&changed, &id, "exported", |j| j["state"] == "done");
        let done = call(&main, "list_jobs", json!({})).expect("list");
        let path = done
            .as_array()
            .expect("list")
            .iter()
            .find(|j| j["id"] == id.as_str())
            .and_then(|j| j["output_path"].as_str().map(std::path::PathBuf::from))
            .expect("an output");
        assert!(
            path.starts_with(out.path().canonicalize().expect("canonical")),
            "{}",
            path.display()
        );
        outputs.push((path, offset));
    }

    for ((path, _), mirrored) in outputs.iter().zip([false, true]) {
        let matrix = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream_side_data=displaymatrix",
            ])
            .args(["-select_streams", "v:0", "-of", "default=nw=1"])
            .arg(path)
            .output()
            .expect("ffprobe");
        let text = String::from_utf8_lossy(&matrix.stdout);
        assert_eq!(
            text.contains("-65536"),
            mirrored,
            "{}: {text}",
            path.display()
        );
    }

    const RATE: u32 = 8000;
    let song_pcm = pcm(&song, RATE);
    let mut lags = Vec::new();
    for (path, offset) in &outputs {
        // Output time t is recording time trim_start + t, i.e. song time trim_start + t - offset.
        let expected = trim_start - offset;
        let lag = lag_in_song(&pcm(path, RATE), &song_pcm, RATE, expected);
        assert!(
            (lag - expected).abs() < 0.001,
            "{}: audio starts at song {lag:.4} s, the trim and placement say {expected:.4} s",
            path.display()
        );
        lags.push(lag);
        for kind in ["a", "v"] {
            let d = stream_duration(path, kind);
            assert!(
                (d - (trim_end - trim_start)).abs() <= 1.0 / 15.0 + 0.03,
                "{kind} lasts {d} s in {}",
                path.display()
            );
        }
    }
    let moved = lags[0] - lags[1];
    println!(
        "song time at the output's start: {:.4} s as analysed, {:.4} s nudged; moved {:.3} ms",
        lags[0],
        lags[1],
        moved * 1000.0
    );
    assert!(
        (moved - 0.040).abs() < 0.001,
        "the nudge moved the song by {:.2} ms",
        moved * 1000.0
    );
}

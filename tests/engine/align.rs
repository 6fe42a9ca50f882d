//! `align` on real media generated at test time: a synthetic song encoded
//! as AAC, and a "class video" (H.264 + AAC) whose sound is that song delayed,
//! with noise. Checks the offset through the whole decode path, the CLI's
//! JSON and error lines, and the error codes.

mod common;

use beatsync_engine::{align_files, AlignOptions, CancelToken, EngineError};
use common::{ffmpeg, path_str, tmp};
use std::path::{Path, PathBuf};
use std::process::Command;

const RATE: u32 = 22_050;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// A song of `bars` 2-second bars: the same kick/hat pattern every bar and a
/// tone whose pitch changes per bar (from `seed`).
fn synth_song(bars: usize, seed: u64) -> Vec<f32> {
    synth_song_with(bars, seed, 3, 2.0)
}

/// Kick on each beat, hi-hat (noise from `hat_seed`) on each eighth, one
/// tone per bar (pitch from `seed`); bars of `bar_s` seconds.
fn synth_song_with(bars: usize, seed: u64, hat_seed: u64, bar_s: f64) -> Vec<f32> {
    let bar_len = (bar_s * f64::from(RATE)) as usize;
    let mut x = vec![0f32; bars * bar_len + 4000];
    let mut hat_rng = Lcg(hat_seed);
    let hat: Vec<f32> = (0..800).map(|_| hat_rng.next()).collect();
    let mut tone_rng = Lcg(seed);
    for b in 0..bars {
        let start = b * bar_len;
        for beat in 0..4 {
            let at = start + beat * bar_len / 4;
            for i in 0..4000 {
                let t = i as f32 / RATE as f32;
                x[at + i] +=
                    0.7 * (2.0 * std::f32::consts::PI * 70.0 * t).sin() * (-t / 0.08).exp();
            }
        }
        for eighth in 0..8 {
            let at = start + eighth * bar_len / 8;
            for (i, h) in hat.iter().enumerate() {
                x[at + i] += 0.25 * h * (-(i as f32) / 150.0).exp();
            }
        }
        let f = 200.0 * 2f32.powf((tone_rng.next() + 1.0) * 1.5);
        for i in 0..bar_len {
            let t = i as f32 / RATE as f32;
            x[start + i] += 0.25 * (2.0 * std::f32::consts::PI * f * t).sin() * (-t / 0.8).exp();
        }
    }
    x
}

fn write_wav(path: &Path, x: &[f32]) {
    let mut bytes = Vec::with_capacity(44 + 2 * x.len());
    let data_len = (2 * x.len()) as u32;
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&RATE.to_le_bytes());
    bytes.extend_from_slice(&(2 * RATE).to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for v in x {
        let s = (v.clamp(-1.0, 1.0) * 32000.0) as i16;
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, bytes).expect("write wav");
}

/// bgm.m4a from the song; dance.mp4 = video + the song starting `delay_s`
/// into the recording (talk-like noise before), `dur_s` long.
fn make_case(dir: &Path, song: &[f32], delay_s: f64, dur_s: f64) -> (PathBuf, PathBuf) {
    let song_wav = dir.join("song.wav");
    write_wav(&song_wav, song);
    let bgm = dir.join("bgm.m4a");
    ffmpeg(&[
        "-i",
        path_str(&song_wav),
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-ar",
        "44100",
        path_str(&bgm),
    ]);
    let n = (dur_s * f64::from(RATE)) as usize;
    let delay = (delay_s * f64::from(RATE)).round() as usize;
    let mut rng = Lcg(11);
    let rec: Vec<f32> = (0..n)
        .map(|i| {
            let music = if i >= delay && i - delay < song.len() {
                0.6 * song[i - delay]
            } else {
                0.0
            };
            music + 0.08 * rng.next()
        })
        .collect();
    let rec_wav = dir.join("rec.wav");
    write_wav(&rec_wav, &rec);
    let dance = dir.join("dance.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc=size=160x120:rate=10:duration={dur_s}"),
        "-i",
        path_str(&rec_wav),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-ar",
        "48000",
        "-shortest",
        path_str(&dance),
    ]);
    (dance, bgm)
}

fn align(dance: &Path, bgm: &Path) -> beatsync_engine::Result<beatsync_engine::AlignResult> {
    align_files(
        dance,
        bgm,
        &AlignOptions::default(),
        &CancelToken::new(),
        &mut |_, _| {},
    )
}

#[test]
fn finds_the_song_in_an_encoded_class_video() {
    let d = tmp();
    let song = synth_song(15, 1);
    let (dance, bgm) = make_case(d.path(), &song, 2.5, 25.0);
    let mut stages = Vec::new();
    let r = align_files(
        &dance,
        &bgm,
        &AlignOptions::default(),
        &CancelToken::new(),
        &mut |s, _| {
            if stages.last().map(String::as_str) != Some(s) {
                stages.push(s.to_string());
            }
        },
    )
    .expect("aligned");
    let err_ms = (r.offset_s - 2.5) * 1e3;
    assert!(
        err_ms.abs() < 2.0,
        "offset {} ({err_ms:.2} ms off)",
        r.offset_s
    );
    assert!((r.rate - 1.0).abs() < 1e-4, "rate {}", r.rate);
    assert!(
        (r.overlap.dance_start_s - 2.5).abs() < 0.6,
        "song heard from {}",
        r.overlap.dance_start_s
    );
    assert!(
        r.overlap.bgm_start_s < 0.6,
        "song start {}",
        r.overlap.bgm_start_s
    );
    assert!(r.confidence > 0.5, "confidence {}", r.confidence);
    let bpm = r.bpm.expect("a tempo");
    assert!((bpm - 120.0).abs() < 1.0, "bpm {bpm}");
    assert!(
        stages.contains(&"decode".to_string()) && stages.contains(&"refine".to_string()),
        "{stages:?}"
    );
}

#[test]
fn another_song_is_no_match() {
    let d = tmp();
    let song = synth_song(15, 1);
    // Another song: other drum sounds, another tempo (128 instead of 120 bpm),
    // other tones — nothing of it is in the song file.
    let other = synth_song_with(16, 99, 17, 1.875);
    let (dance, _) = make_case(d.path(), &other, 1.0, 20.0);
    let other_dir = tmp();
    let song_wav = other_dir.path().join("song.wav");
    write_wav(&song_wav, &song);
    match align(&dance, &song_wav) {
        Err(e) => assert_eq!(e.code(), "no_match", "{e}"),
        Ok(r) => panic!(
            "another song placed at {} with confidence {}",
            r.offset_s, r.confidence
        ),
    }
}

#[test]
fn error_codes_for_short_and_non_media_files() {
    let d = tmp();
    let song = synth_song(6, 2);
    let short: Vec<f32> = song[..(1.5 * f64::from(RATE)) as usize].to_vec();
    let short_wav = d.path().join("short.wav");
    write_wav(&short_wav, &short);
    let song_wav = d.path().join("song.wav");
    write_wav(&song_wav, &song);
    let e = align(&short_wav, &song_wav).map(|_| ()).unwrap_err();
    assert!(matches!(e, EngineError::TooShort { .. }), "{e}");
    let text = d.path().join("notes.txt");
    std::fs::write(&text, "not a song at all, just some text").expect("write");
    assert_eq!(
        align(&song_wav, &text).map(|_| ()).unwrap_err().code(),
        "not_media"
    );
}

#[test]
fn cli_prints_json_and_error_lines() {
    let d = tmp();
    let song = synth_song(12, 3);
    let (dance, bgm) = make_case(d.path(), &song, 1.25, 20.0);
    let out = Command::new(env!("CARGO_BIN_EXE_beatsync"))
        .args([
            "align",
            "--dance",
            path_str(&dance),
            "--bgm",
            path_str(&bgm),
            "--json",
        ])
        .output()
        .expect("run beatsync");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let offset = v["offset_s"].as_f64().expect("offset_s");
    assert!((offset - 1.25).abs() < 0.002, "offset {offset}");
    for key in [
        "rate",
        "confidence",
        "candidates",
        "overlap",
        "beats_s",
        "downbeats_s",
        "timings_ms",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let short: Vec<f32> = song[..RATE as usize].to_vec();
    let short_wav = d.path().join("short.wav");
    write_wav(&short_wav, &short);
    let out = Command::new(env!("CARGO_BIN_EXE_beatsync"))
        .args([
            "align",
            "--dance",
            path_str(&short_wav),
            "--bgm",
            path_str(&bgm),
            "--json",
        ])
        .output()
        .expect("run beatsync");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("too_short: "), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
}

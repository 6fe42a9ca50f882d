//! Probe and decode on real media generated at test time: every container
//! and codec a teacher is likely to drop, and every error code.

mod common;

use beatsync_engine::{decode_audio, probe, EngineError, Role};
use common::{click_expr, ffmpeg, path_str, tmp, Fixture, H264};
use std::path::Path;

fn video_src(dur: &str) -> String {
    format!("testsrc=size=320x240:rate=25:duration={dur}")
}

fn tone(rate: u32, ch: u32, dur: &str) -> String {
    format!(
        "sine=frequency=440:sample_rate={rate}:duration={dur},aformat=channel_layouts={}",
        if ch == 1 { "mono" } else { "stereo" }
    )
}

#[test]
fn probes_h264_aac_mp4() {
    let d = tmp();
    let v = video_src("2");
    let a = tone(48000, 2, "2");
    let p = Fixture::new()
        .lavfi(&v)
        .lavfi(&a)
        .args(&H264)
        .aac("128k")
        .write(&d.path().join("class.mp4"));
    let info = probe(&p).expect("probe mp4");
    assert!(
        info.container.contains("mp4"),
        "container {}",
        info.container
    );
    assert!(
        (info.duration_s - 2.0).abs() < 0.1,
        "duration {}",
        info.duration_s
    );
    let v = info.video().expect("video stream");
    assert_eq!((v.codec.as_str(), v.width, v.height), ("h264", 320, 240));
    assert!((v.frame_rate - 25.0).abs() < 0.01, "fps {}", v.frame_rate);
    assert_eq!(v.rotation, 0);
    let a = info.audio().expect("audio stream");
    assert_eq!(
        (a.codec.as_str(), a.sample_rate, a.channels),
        ("aac", 48000, 2)
    );
    assert_eq!(a.layout, "stereo");
    info.check_role(Role::Class).expect("a class video");
}

/// ffprobe's view of the display matrix (counter-clockwise degrees), to cross-check ours.
fn ffprobe_rotation(p: &Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream_side_data=rotation",
            "-of",
            "csv=p=0",
        ])
        .arg(p)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0)
}

#[test]
fn probes_hevc_mov_with_rotation() {
    let d = tmp();
    let v = video_src("1");
    let a = tone(44100, 1, "1");
    let upright = Fixture::new()
        .lavfi(&v)
        .lavfi(&a)
        .args(&[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-tag:v",
            "hvc1",
            "-c:a",
            "aac",
        ])
        .write(&d.path().join("upright.mov"));
    let info = probe(&upright).expect("probe mov");
    assert!(info.container.contains("mov"));
    let v = info.video().expect("video");
    assert_eq!((v.codec.as_str(), v.rotation), ("hevc", 0));
    assert_eq!(info.audio().expect("audio").channels, 1);

    // Phones store portrait video upright-sensor frames plus a display matrix.
    // FFmpeg 5.1 writes the matrix from the legacy `rotate` tag on stream copy.
    for (tag, clockwise) in [("270", 90), ("90", 270), ("180", 180)] {
        let rotated = d.path().join(format!("portrait{tag}.mov"));
        let rot = format!("rotate={tag}");
        ffmpeg(&[
            "-i",
            path_str(&upright),
            "-c",
            "copy",
            "-metadata:s:v:0",
            &rot,
            path_str(&rotated),
        ]);
        let v = probe(&rotated)
            .expect("probe rotated")
            .video()
            .cloned()
            .expect("video");
        assert_eq!(v.rotation, clockwise, "tag {tag}");
        let ccw = ffprobe_rotation(&rotated);
        assert_eq!(
            (-ccw).rem_euclid(360.0) as i32,
            clockwise,
            "agrees with ffprobe ({ccw})"
        );
    }
}

#[test]
fn probes_mkv_avi_m4a_mp3() {
    let d = tmp();
    let v = video_src("1");
    let a = tone(48000, 2, "1");
    let mkv = Fixture::new()
        .lavfi(&v)
        .lavfi(&a)
        .args(&H264)
        .args(&["-c:a", "libopus"])
        .write(&d.path().join("class.mkv"));
    let info = probe(&mkv).expect("mkv");
    assert!(info.container.contains("matroska"));
    assert_eq!(info.audio().expect("audio").codec, "opus");

    let avi = Fixture::new()
        .lavfi(&v)
        .lavfi(&a)
        .args(&["-c:v", "mpeg4", "-c:a", "libmp3lame"])
        .write(&d.path().join("class.avi"));
    let info = probe(&avi).expect("avi");
    assert_eq!(info.container, "avi");
    assert_eq!(info.video().expect("video").codec, "mpeg4");
    assert_eq!(info.audio().expect("audio").codec, "mp3float");

    let m4a = Fixture::new()
        .lavfi(&a)
        .args(&["-c:a", "aac"])
        .write(&d.path().join("song.m4a"));
    let info = probe(&m4a).expect("m4a");
    assert!(info.video().is_none());
    assert_eq!(info.audio().expect("audio").codec, "aac");
    info.check_role(Role::Song).expect("a song");
    assert_eq!(
        info.check_role(Role::Class).map_err(|e| e.code()),
        Err("no_video")
    );

    let mp3 = Fixture::new()
        .lavfi(&a)
        .args(&["-c:a", "libmp3lame"])
        .write(&d.path().join("song.mp3"));
    let info = probe(&mp3).expect("mp3");
    assert_eq!(info.container, "mp3");
    assert_eq!(info.audio().expect("audio").sample_rate, 48000);
}

#[test]
fn wav_without_channel_mask_gets_a_default_layout_and_decodes() {
    let d = tmp();
    let a = tone(44100, 2, "3");
    let wav = Fixture::new()
        .lavfi(&a)
        .args(&["-c:a", "pcm_s16le"])
        .write(&d.path().join("song.wav"));
    let info = probe(&wav).expect("wav");
    let au = info.audio().expect("audio");
    assert_eq!((au.channels, au.layout.as_str()), (2, "stereo"));
    let pcm = decode_audio(&wav, 8000).expect("decode wav without mask");
    assert!(
        (pcm.samples.len() as i64 - 24000).abs() <= 1,
        "len {}",
        pcm.samples.len()
    );
}

#[test]
fn error_codes_for_bad_files() {
    let d = tmp();
    let code = |p: &Path| probe(p).map(|_| ()).map_err(|e| e.code());

    assert_eq!(code(&d.path().join("missing.mp4")), Err("not_found"));

    let empty = d.path().join("empty.mp4");
    std::fs::write(&empty, b"").expect("write");
    assert_eq!(code(&empty), Err("empty"));

    let text = d.path().join("notes.mp4");
    std::fs::write(&text, "these are my class notes, not a video\n".repeat(50)).expect("write");
    assert_eq!(code(&text), Err("not_media"));

    assert_eq!(code(d.path()), Err("unreadable"), "a folder");

    // A recording cut short while copying: the index (moov) at the end is missing.
    let v = video_src("2");
    let a = tone(48000, 2, "2");
    let full = Fixture::new()
        .lavfi(&v)
        .lavfi(&a)
        .args(&H264)
        .args(&["-c:a", "aac"])
        .write(&d.path().join("full.mp4"));
    let bytes = std::fs::read(&full).expect("read");
    let cut = d.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let err = probe(&cut).expect_err("truncated");
    assert_eq!(err.code(), "unreadable", "{err}");
    assert!(err.to_string().contains("damaged or incomplete"), "{err}");

    // A video with no sound: probe works, but it cannot be a class video, and decoding says why.
    let silent = Fixture::new()
        .lavfi(&v)
        .args(&H264)
        .write(&d.path().join("silent.mp4"));
    let info = probe(&silent).expect("probe silent video");
    assert!(info.audio().is_none());
    assert_eq!(
        info.check_role(Role::Class).map_err(|e| e.code()),
        Err("no_audio")
    );
    assert!(matches!(
        decode_audio(&silent, 8000),
        Err(EngineError::NoAudio(_))
    ));
}

#[test]
fn unicode_and_spaces_in_path() {
    let d = tmp();
    let dir = d.path().join("舞蹈 课 2026");
    std::fs::create_dir(&dir).expect("mkdir");
    let a = tone(44100, 1, "1");
    let p = Fixture::new()
        .lavfi(&a)
        .args(&["-c:a", "aac"])
        .write(&dir.join("周六 班 song.m4a"));
    let info = probe(&p).expect("probe unicode path");
    assert_eq!(info.path, p);
    assert!(decode_audio(&p, 8000).expect("decode").samples.len() > 7000);
}

/// Finds the sample with the largest magnitude.
fn argmax_abs(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if v.abs() > x[best].abs() {
            best = i;
        }
    }
    best
}

#[test]
fn a_click_lands_on_the_right_sample_in_every_format() {
    // 44.1 kHz source, click at sample 66150 (1.5 s) → 12000 at 8 kHz.
    let d = tmp();
    let src = format!("aevalsrc={}:s=44100:d=3", click_expr(66150));
    let expected = 66150.0 * 8000.0 / 44100.0;
    let v = video_src("3");
    let cases = [
        Fixture::new()
            .lavfi(&src)
            .args(&["-c:a", "pcm_s16le"])
            .write(&d.path().join("click.wav")),
        Fixture::new()
            .lavfi(&src)
            .aac("192k")
            .write(&d.path().join("click.m4a")),
        Fixture::new()
            .lavfi(&src)
            .args(&["-c:a", "libmp3lame", "-b:a", "256k"])
            .write(&d.path().join("click.mp3")),
        Fixture::new()
            .lavfi(&v)
            .lavfi(&src)
            .args(&H264)
            .aac("128k")
            .write(&d.path().join("click.mp4")),
        Fixture::new()
            .lavfi(&v)
            .lavfi(&src)
            .args(&H264)
            .args(&["-c:a", "libopus"])
            .write(&d.path().join("click.mkv")),
    ];
    for p in &cases {
        let pcm = decode_audio(p, 8000).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(pcm.rate, 8000);
        // Length: 3 s, give or take one codec frame of padding at the end.
        let len_s = pcm.duration_s();
        assert!((len_s - 3.0).abs() < 0.03, "{}: {len_s} s", p.display());
        let peak = argmax_abs(&pcm.samples) as f64;
        assert!(
            (peak - expected).abs() <= 1.0,
            "{}: click at {peak}, expected {expected:.1} (priming not removed?)",
            p.display()
        );
    }
}

#[test]
fn cli_prints_code_and_message_and_exits_non_zero() {
    let d = tmp();
    let text = d.path().join("readme.mp4");
    std::fs::write(&text, "not a video").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_beatsync"))
        .args(["probe", path_str(&text)])
        .output()
        .expect("run beatsync");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("not_media: "), "stderr: {err}");
    assert_eq!(err.trim().lines().count(), 1);

    let a = tone(44100, 1, "1");
    let song = Fixture::new()
        .lavfi(&a)
        .args(&["-c:a", "aac"])
        .write(&d.path().join("song.m4a"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_beatsync"))
        .args(["probe", "--json", path_str(&song)])
        .output()
        .expect("run beatsync");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["streams"][0]["kind"], "audio");
    assert_eq!(v["streams"][0]["sample_rate"], 44100);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_beatsync"))
        .args(["probe", "--role", "class", path_str(&song)])
        .output()
        .expect("run beatsync");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("no_video: "));
}

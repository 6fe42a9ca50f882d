//! The export's start, read the way players that ignore MP4 edit lists read
//! it (`-ignore_editlist 1`) and the way the others do: the first frame
//! shown must be the frame at the cut, and the song must be heard in time
//! with it (±1 frame). Every fixture is made here with the ffmpeg CLI: a
//! moving test pattern (each frame differs, so a decoded frame identifies
//! its source frame by pixel difference) and a song whose only loud sound is
//! one beep at a known time.

mod common;

use beatsync_engine as engine;
use common::{ffmpeg_output, gray_pixels, path_str as s, psnr, Fixture, H264};
use engine::export::{StartCut, StartCutUsed};
use engine::{CancelToken, ExportReport, ExportRequest, Placement};
use std::path::{Path, PathBuf};
use std::process::Command;

const FPS: f64 = 30.0;
const AUDIO_RATE: u32 = 48_000;
/// The beep is heard this long after the cut.
const BEEP_AFTER_CUT_S: f64 = 1.5;

/// A class video: `testsrc2` at 30 fps, `frames` frames, encoded with
/// `codec` (which sets the GOP), with some sound of its own.
fn class_video(dir: &Path, name: &str, frames: u32, codec: &[&str]) -> PathBuf {
    Fixture::new()
        .lavfi("testsrc2=size=320x180:rate=30")
        .lavfi("sine=f=330:r=48000")
        .args(&["-frames:v", &frames.to_string(), "-shortest"])
        .args(codec)
        .aac("64k")
        .write(&dir.join(name))
}

/// H.264 with a keyframe every `gop` frames exactly and B-frames.
fn h264(gop: u32) -> Vec<String> {
    let mut v: Vec<String> = H264.iter().map(|a| a.to_string()).collect();
    for a in ["-g", &gop.to_string(), "-bf", "2", "-sc_threshold", "0"] {
        v.push(a.to_string());
    }
    v
}

/// A song of `dur` seconds: a quiet tone, and one loud 2 kHz beep of 30 ms
/// at `beep_s`.
fn beep_song(dir: &Path, dur: f64, beep_s: f64) -> PathBuf {
    let expr = format!(
        "0.05*sin(2*PI*220*t)+if(between(t\\,{beep_s}\\,{})\\,0.8*sin(2*PI*2000*t)\\,0)",
        beep_s + 0.03
    );
    Fixture::new()
        .lavfi(&format!("aevalsrc=exprs={expr}:s=48000:d={dur}"))
        .aac("128k")
        .write(&dir.join("song.m4a"))
}

/// Every frame of a video (edit lists honoured), gray, presentation order.
fn frames_of(path: &Path) -> Vec<Vec<u8>> {
    let raw = gray_pixels(path, &[], &["-fps_mode", "passthrough"]);
    raw.chunks_exact(320 * 180).map(<[u8]>::to_vec).collect()
}

fn editlist_arg(ignore: bool) -> &'static str {
    if ignore {
        "1"
    } else {
        "0"
    }
}

/// The first frame of `path` as a player shows it, gray, and its time.
fn first_frame(path: &Path, ignore_editlist: bool) -> (f64, Vec<u8>) {
    let editlist = ["-ignore_editlist", editlist_arg(ignore_editlist)];
    let pixels = gray_pixels(path, &editlist, &["-frames:v", "1"]);
    let t = first_time(path, ignore_editlist, "v:0");
    (t, pixels)
}

/// The time of the first decoded frame of a stream (`v:0`, `a:0`).
fn first_time(path: &Path, ignore_editlist: bool, stream: &str) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-ignore_editlist",
            editlist_arg(ignore_editlist),
            "-select_streams",
            stream,
            "-show_entries",
            "frame=pts_time",
            "-of",
            "csv=p=0",
            s(path),
        ])
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no first frame time for {stream}: {text:?}"))
}

/// When the beep is heard, output seconds: the first audio frame's time
/// plus the first loud sample.
fn beep_time(path: &Path, ignore_editlist: bool) -> f64 {
    let raw = ffmpeg_output(&[
        "-ignore_editlist",
        editlist_arg(ignore_editlist),
        "-i",
        s(path),
        "-map",
        "0:a:0",
        "-ac",
        "1",
        "-ar",
        &AUDIO_RATE.to_string(),
        "-f",
        "f32le",
        "-",
    ]);
    let onset = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .position(|x| x.abs() > 0.4)
        .expect("the beep is in the export");
    first_time(path, ignore_editlist, "a:0") + onset as f64 / f64::from(AUDIO_RATE)
}

/// The source frame a decoded frame is (best PSNR), with its PSNR and the
/// next best one's.
fn identify(frame: &[u8], source: &[Vec<u8>]) -> (usize, f64, f64) {
    identify_near(frame, source, 0, source.len())
}

/// [`identify`] among the source frames within `radius` of `around`.
fn identify_near(
    frame: &[u8],
    source: &[Vec<u8>],
    around: usize,
    radius: usize,
) -> (usize, f64, f64) {
    let from = around.saturating_sub(radius);
    let to = (around + radius + 1).min(source.len());
    let mut scored: Vec<(usize, f64)> = (from..to).map(|i| (i, psnr(frame, &source[i]))).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    (scored[0].0, scored[0].1, scored[1].1)
}

/// How an export's start reads in one kind of player.
#[derive(Debug)]
struct StartSeen {
    /// Source frame shown first.
    first_frame: usize,
    /// Source frame on screen when the song reaches the cut's instant.
    frame_at_song_cut: f64,
    /// PSNR of the first frame against its source frame, and against the
    /// next best match.
    psnr: (f64, f64),
}

fn seen(report: &ExportReport, source: &[Vec<u8>], ignore_editlist: bool) -> StartSeen {
    let (v0, pixels) = first_frame(&report.output, ignore_editlist);
    let (first, best, second) = identify(&pixels, source);
    // The song reaches the cut's instant BEEP_AFTER_CUT_S before the beep.
    let song_cut = beep_time(&report.output, ignore_editlist) - BEEP_AFTER_CUT_S;
    StartSeen {
        first_frame: first,
        frame_at_song_cut: first as f64 + (song_cut - v0) * FPS,
        psnr: (best, second),
    }
}

/// A class video cut at source frame `cut` and exported to three seconds
/// after it, with `start_cut`; the song's beep is heard
/// [`BEEP_AFTER_CUT_S`] after the cut.
struct Case {
    _dir: tempfile::TempDir,
    source: Vec<Vec<u8>>,
    report: ExportReport,
    cut: usize,
}

fn export_case(video: &dyn Fn(&Path) -> PathBuf, cut: usize, start_cut: StartCut) -> Case {
    let dir = common::tmp();
    let dance = video(dir.path());
    let cut_s = cut as f64 / FPS;
    let song = beep_song(dir.path(), cut_s + 8.0, cut_s + BEEP_AFTER_CUT_S);
    let mut req = ExportRequest::new(&dance, &song, dir.path(), Some(Placement::new(0.0, 1.0)));
    req.trim_start_s = Some(cut_s);
    req.trim_end_s = Some(cut_s + 3.0);
    req.start_cut = start_cut;
    req.detect_black_tail = false;
    let report = engine::export(&req, &CancelToken::new(), &mut |_, _| {}).expect("export");
    assert!(
        (report.trim.start_s * FPS - cut as f64).abs() < 0.01,
        "the export starts at frame {:.2}, not {cut}",
        report.trim.start_s * FPS
    );
    Case {
        source: frames_of(&dance),
        _dir: dir,
        report,
        cut,
    }
}

/// The first frame shown is the cut's, and the song reaches the cut within
/// one frame of it, with edit lists ignored and with them honoured.
fn assert_right_either_way(case: &Case) {
    for ignore in [true, false] {
        let seen = seen(&case.report, &case.source, ignore);
        eprintln!("ignore_editlist={ignore}: {seen:?} (cut {})", case.cut);
        assert_eq!(
            seen.first_frame, case.cut,
            "ignore_editlist={ignore}: the first frame shown is source frame {}, the cut is {}",
            seen.first_frame, case.cut
        );
        assert!(
            seen.psnr.0 > 40.0 && seen.psnr.1 < seen.psnr.0 - 6.0,
            "ignore_editlist={ignore}: the first frame matches the cut at {:.1} dB, the next best at {:.1} dB",
            seen.psnr.0,
            seen.psnr.1
        );
        let off = seen.frame_at_song_cut - case.cut as f64;
        assert!(
            off.abs() <= 1.0,
            "ignore_editlist={ignore}: the song reaches the cut {off:+.2} frames from it"
        );
    }
}

/// The whole export decodes without an error, edit lists ignored or not.
fn assert_decodes_cleanly(path: &Path) {
    for ignore in ["0", "1"] {
        let log = Command::new("ffmpeg")
            .args(["-v", "error", "-ignore_editlist", ignore, "-i", s(path)])
            .args(["-f", "null", "-"])
            .output()
            .expect("ffmpeg runs");
        assert!(
            log.status.success() && log.stderr.is_empty(),
            "ignore_editlist={ignore}: {}",
            String::from_utf8_lossy(&log.stderr)
        );
    }
}

#[test]
fn long_gop_h264_starts_at_the_cut_in_every_player() {
    // Keyframes at 0, 250 and 500; the cut 194 frames after the second.
    let case = export_case(
        &|d| class_video(d, "long_gop.mp4", 560, &as_strs(&h264(250))),
        444,
        StartCut::default(),
    );
    assert_eq!(case.report.start_cut, StartCutUsed::SmartCut);
    assert_eq!(case.report.start_cut_reason, None);
    assert_eq!(case.report.trim.hidden_frames, 0);
    assert_right_either_way(&case);
    assert_decodes_cleanly(&case.report.output);
}

#[test]
fn short_gop_h264_starts_at_the_cut_in_every_player() {
    let case = export_case(
        &|d| class_video(d, "short_gop.mp4", 210, &as_strs(&h264(30))),
        69,
        StartCut::default(),
    );
    assert_eq!(case.report.start_cut, StartCutUsed::SmartCut);
    assert_right_either_way(&case);
    assert_decodes_cleanly(&case.report.output);
}

/// HEVC with a keyframe every 60 frames: libx265's default open GOP (CRA
/// keyframes whose leading pictures reference the GOP before) or closed.
fn hevc(open_gop: bool) -> Vec<String> {
    let params = format!(
        "log-level=none:keyint=60:min-keyint=60:scenecut=0:open-gop={}",
        u8::from(open_gop)
    );
    [
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ]
    .iter()
    .map(|a| a.to_string())
    .chain([
        "-x265-params".to_string(),
        params,
        "-tag:v".into(),
        "hvc1".into(),
    ])
    .collect()
}

fn assert_hevc_smart_cut(case: &Case) {
    assert_eq!(
        case.report.start_cut,
        StartCutUsed::SmartCut,
        "{:?}",
        case.report.start_cut_reason
    );
    assert_eq!(case.report.video_codec, "hevc");
    assert_right_either_way(case);
    assert_decodes_cleanly(&case.report.output);
    // Every frame is there, in order: the head's, then the copied ones (to
    // the end the report gives, which the copy's end rule may bring in by a
    // frame or two).
    let out = frames_of(&case.report.output);
    let planned = (case.report.duration_s * FPS).round() as usize;
    assert!(
        out.len() == planned && planned >= 85,
        "{} frames, {planned} planned",
        out.len()
    );
    for (i, f) in out.iter().enumerate() {
        let (src, _, _) = identify_near(f, &case.source, case.cut + i, 3);
        assert_eq!(src, case.cut + i, "output frame {i}");
    }
    let tag = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries"])
        .args([
            "stream=codec_tag_string",
            "-of",
            "csv=p=0",
            s(&case.report.output),
        ])
        .output()
        .expect("ffprobe runs");
    assert_eq!(String::from_utf8_lossy(&tag.stdout).trim(), "hvc1");
}

#[test]
fn hevc_open_gop_starts_at_the_cut_in_every_player() {
    // Keyframes (CRA) at 0, 60, 120; the cut half-way to the next one.
    let case = export_case(
        &|d| class_video(d, "hevc_open.mp4", 240, &as_strs(&hevc(true))),
        90,
        StartCut::default(),
    );
    assert_hevc_smart_cut(&case);
}

#[test]
fn hevc_closed_gop_starts_at_the_cut_in_every_player() {
    let case = export_case(
        &|d| class_video(d, "hevc_closed.mp4", 240, &as_strs(&hevc(false))),
        97,
        StartCut::default(),
    );
    assert_hevc_smart_cut(&case);
}

#[test]
fn a_cut_on_a_keyframe_copies_everything() {
    let case = export_case(
        &|d| class_video(d, "on_key.mp4", 210, &as_strs(&h264(30))),
        60,
        StartCut::default(),
    );
    assert_eq!(case.report.start_cut, StartCutUsed::Keyframe);
    assert_eq!(case.report.trim.hidden_frames, 0);
    assert_right_either_way(&case);
    // Nothing re-encoded: the first frame is the source's, bit for bit.
    let (_, first) = first_frame(&case.report.output, true);
    assert_eq!(first, case.source[60]);
}

#[test]
fn the_edit_list_on_request_is_right_only_where_edit_lists_are_honoured() {
    let case = export_case(
        &|d| class_video(d, "asked_edit_list.mp4", 560, &as_strs(&h264(250))),
        444,
        StartCut::EditList,
    );
    assert_eq!(case.report.start_cut, StartCutUsed::EditList);
    assert_eq!(
        case.report.start_cut_reason, None,
        "asked for, not a fallback"
    );
    assert_eq!(case.report.trim.hidden_frames, 194);
    // Honoured: right, and bit-exact.
    let honoured = seen(&case.report, &case.source, false);
    assert_eq!(honoured.first_frame, 444, "{honoured:?}");
    assert!(honoured.psnr.0 > 100.0, "{honoured:?}");
    assert!(
        (honoured.frame_at_song_cut - 444.0).abs() <= 1.0,
        "{honoured:?}"
    );
    // Ignored: the 194 frames before the cut are shown first and the song
    // is 194 frames early against the picture: why it is not the default.
    let ignored = seen(&case.report, &case.source, true);
    eprintln!("edit list ignored: {ignored:?}");
    assert_eq!(ignored.first_frame, 250, "{ignored:?}");
    assert!(
        (ignored.frame_at_song_cut - 250.0).abs() <= 1.0,
        "{ignored:?}"
    );
}

#[test]
fn a_codec_without_a_re_encoder_falls_back_to_the_edit_list_and_says_why() {
    // MPEG-4 Part 2 fits MP4 but has no head re-encoder here.
    let mpeg4 = ["-c:v", "mpeg4", "-q:v", "3", "-g", "30", "-bf", "0"];
    let case = export_case(
        &|d| class_video(d, "mpeg4.mp4", 210, &mpeg4),
        69,
        StartCut::default(),
    );
    assert_eq!(case.report.start_cut, StartCutUsed::EditList);
    let why = case.report.start_cut_reason.as_deref().unwrap_or_default();
    assert!(why.contains("no re-encoder"), "{why:?}");
    assert_eq!(case.report.trim.hidden_frames, 9);
    // Right where edit lists are honoured, and bit-exact.
    let honoured = seen(&case.report, &case.source, false);
    assert_eq!(honoured.first_frame, 69, "{honoured:?}");
    assert!(
        (honoured.frame_at_song_cut - 69.0).abs() <= 1.0,
        "{honoured:?}"
    );
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

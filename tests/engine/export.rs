//! Export tests: real media generated with the ffmpeg CLI into temp folders,
//! outputs checked with the ffmpeg CLI (decoded audio cross-correlated
//! against the song, packet and frame hashes, stream metadata).

mod common;

use beatsync_engine as engine;
use common::{
    ffmpeg, ffmpeg_output, files_in, gray_frame, measured_lag_s, path_str as s, pink_song, psnr,
    Fixture, H264,
};
use engine::export::{EndReason, RetimeMode, StartReason};
use engine::{CancelToken, ExportReport, ExportRequest, Placement};
use std::path::{Path, PathBuf};
use std::process::Command;

const SR: u32 = 44100;

/// A "song": stereo pink noise (never repeats, so correlation has one sharp
/// peak), `dur` seconds, fading out over its last `fade` seconds, then
/// `tail_silence` seconds of silence. AAC in .m4a at 44.1 kHz.
fn make_song(dir: &Path, name: &str, dur: f64, fade: f64, tail_silence: f64) -> PathBuf {
    make_song_with(dir, name, dur, fade, tail_silence, &[])
}

fn make_song_with(
    dir: &Path,
    name: &str,
    dur: f64,
    fade: f64,
    tail_silence: f64,
    encoder_args: &[&str],
) -> PathBuf {
    pink_song(dur, fade, tail_silence, 7)
        .args(encoder_args)
        .write(&dir.join(name))
}

struct RecordingOpts<'a> {
    dur: f64,
    /// Extra video filter (e.g. a black ending).
    vf: Option<&'a str>,
    /// Video codec options; `None`: H.264 with a 1-s GOP and B-frames.
    vcodec: Option<&'a [&'a str]>,
    extra: &'a [&'a str],
    size: &'a str,
}

impl Default for RecordingOpts<'_> {
    fn default() -> Self {
        Self {
            dur: 10.0,
            vf: None,
            vcodec: None,
            extra: &[],
            size: "320x180",
        }
    }
}

/// A class video: a moving test pattern at 30 fps (1-s GOP, B-frames) with
/// some sound (its content does not matter when the offset is given).
fn make_recording(dir: &Path, name: &str, o: &RecordingOpts) -> PathBuf {
    let mut v = format!("testsrc2=size={}:rate=30", o.size);
    if let Some(vf) = o.vf {
        v = format!("{v},{vf}");
    }
    let video = Fixture::new()
        .lavfi(&v)
        .lavfi("sine=f=330:r=48000")
        .args(&["-t", &o.dur.to_string()]);
    let video = match o.vcodec {
        Some(codec) => video.args(codec),
        None => video.h264(30).args(&["-bf", "2"]),
    };
    video.aac("64k").args(o.extra).write(&dir.join(name))
}

/// `song.m4a` of `song_s` seconds (2-s fade) and `class.mp4` of `class_s`
/// seconds, both with [`make_song`] and [`make_recording`]'s defaults.
fn song_and_class(dir: &Path, song_s: f64, class_s: f64) -> (PathBuf, PathBuf) {
    let song = make_song(dir, "song.m4a", song_s, 2.0, 0.0);
    let recording = make_recording(
        dir,
        "class.mp4",
        &RecordingOpts {
            dur: class_s,
            ..Default::default()
        },
    );
    (song, recording)
}

fn decode_mono(path: &Path) -> Vec<f32> {
    common::mono_samples(path, SR)
}

/// Checks the output's audio placement at `points` (output seconds).
fn assert_placed(report: &ExportReport, song: &Path, points: &[f64], tol_s: f64) -> Vec<f64> {
    let out = decode_mono(&report.output);
    let song_pcm = decode_mono(song);
    let p = Placement {
        offset_s: report.offset_s,
        rate: report.rate,
        ref_dance_s: Some(report.offset_ref_s),
    };
    let win = (0.25 * f64::from(SR)) as usize;
    let mut lags = Vec::new();
    for &u in points {
        let out_c = (u * f64::from(SR)) as usize;
        let t = out_c as f64 / f64::from(SR);
        let song_c = p.song_at(report.trim.start_s + t) * f64::from(SR);
        let lag = measured_lag_s(&out, out_c, &song_pcm, song_c, win, 1500, SR);
        assert!(
            lag.abs() <= tol_s,
            "at output {u:.2} s the song is off by {:.3} ms (tolerance {:.1} ms)",
            lag * 1e3,
            tol_s * 1e3
        );
        lags.push(lag);
    }
    lags
}

fn run(req: &ExportRequest) -> engine::Result<ExportReport> {
    engine::export(req, &CancelToken::new(), &mut |_, _| {})
}

fn request(recording: &Path, song: &Path, out: &Path, offset: f64) -> ExportRequest {
    ExportRequest::new(recording, song, out, Some(Placement::new(offset, 1.0)))
}

/// Per-packet MD5s of the video stream, without decoding.
fn packet_hashes(path: &Path) -> Vec<String> {
    let txt = ffmpeg_output(&[
        "-i",
        s(path),
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-f",
        "framemd5",
        "-",
    ]);
    String::from_utf8_lossy(&txt)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

/// Per-frame MD5s of the decoded pictures, in presentation order.
fn frame_hashes(path: &Path) -> Vec<String> {
    let txt = ffmpeg_output(&["-i", s(path), "-map", "0:v:0", "-f", "framemd5", "-"]);
    String::from_utf8_lossy(&txt)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

fn ffprobe_entries(path: &Path, entries: &str) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            entries,
            "-of",
            "default=nw=1",
            s(path),
        ])
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn song_is_placed_within_1ms_at_start_middle_and_end() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 30.0, 12.0);
    // The song starts 2.37 s into the recording: talk before it is dropped.
    let report = run(&request(&recording, &song, d.path(), 2.37)).unwrap();
    assert_eq!(report.trim.start_reason, StartReason::SongStart);
    assert_eq!(report.trim.end_reason, EndReason::RecordingEnd);
    assert!(
        (report.trim.start_s - 2.37).abs() <= 1.0 / 30.0,
        "{:?}",
        report.trim
    );
    let dur = report.duration_s;
    assert!(
        (dur - (12.0 - report.trim.start_s)).abs() < 0.05,
        "duration {dur}"
    );
    assert_placed(&report, &song, &[0.3, dur / 2.0, dur - 0.3], 0.001);
    assert_eq!(report.audio.codec, "aac");
    assert_eq!(report.audio.bitrate, 192_000);
    assert_eq!(report.audio.sample_rate, SR);
}

#[test]
fn long_export_encoded_in_two_pieces_is_seamless() {
    let d = tempfile::tempdir().unwrap();
    let song = make_song(d.path(), "song.m4a", 60.0, 2.0, 0.0);
    let recording = make_recording(
        d.path(),
        "class.mp4",
        &RecordingOpts {
            dur: 44.0,
            size: "160x90",
            ..Default::default()
        },
    );
    let report = run(&request(&recording, &song, d.path(), 0.5)).unwrap();
    let dur = report.duration_s;
    let mid = dur / 2.0;
    assert_placed(
        &report,
        &song,
        &[
            0.5,
            mid - 1.2,
            mid - 0.4,
            mid,
            mid + 0.4,
            mid + 1.2,
            dur - 0.5,
        ],
        0.001,
    );
    // No click where the two encoders' outputs meet (within ~1 s of the
    // middle): no 1024-sample block there matches the song much worse than
    // the typical block. (A single AAC encoder has isolated blocks up to
    // ~9 dB below its median on this noise; a broken splice is far worse.)
    let out = decode_mono(&report.output);
    let song_pcm = decode_mono(&song);
    let start = ((report.trim.start_s - report.offset_s) * f64::from(SR)).round() as usize;
    let n = 1024;
    let block_snr = |b: usize| {
        let o = &out[b * n..(b + 1) * n];
        let r = &song_pcm[start + b * n..start + (b + 1) * n];
        let sig: f64 = r.iter().map(|v| f64::from(*v).powi(2)).sum();
        let err: f64 = o.iter().zip(r).map(|(a, b)| f64::from(a - b).powi(2)).sum();
        10.0 * (sig / err.max(1e-12)).log10()
    };
    let mut all: Vec<f64> = (4..out.len() / n - 4).map(block_snr).collect();
    all.sort_by(|a, b| a.total_cmp(b));
    let median = all[all.len() / 2];
    let mid_block = (mid * f64::from(SR)) as usize / n;
    for b in mid_block - 50..mid_block + 50 {
        let v = block_snr(b);
        assert!(
            v > median - 10.0,
            "block {b} ({:.2} s) is {:.1} dB worse than the median ({median:.1} dB)",
            b as f64 * n as f64 / f64::from(SR),
            median - v
        );
    }
}

#[test]
fn copied_song_packets_are_placed_within_1ms() {
    let d = tempfile::tempdir().unwrap();
    // Without perceptual noise substitution, whose random generator makes
    // decoding from the middle differ (inaudibly) from decoding from the
    // start, so that the decoded samples can be compared exactly.
    let song = make_song_with(d.path(), "song.m4a", 30.0, 2.0, 0.0, &["-aac_pns", "0"]);
    let recording = make_recording(
        d.path(),
        "class.mp4",
        &RecordingOpts {
            dur: 12.0,
            ..Default::default()
        },
    );
    // Recording starts 3.217 s into the song: not on an AAC frame boundary.
    let mut req = request(&recording, &song, d.path(), -3.217);
    req.audio.copy_if_possible = true;
    let report = run(&req).unwrap();
    assert_eq!(
        report.audio.source,
        engine::export::AudioSource::Copied,
        "{:?}",
        report.audio
    );
    assert!(report.audio.note.is_none());
    let dur = report.duration_s;
    assert_placed(&report, &song, &[0.13, 0.3, dur / 2.0, dur - 0.3], 0.001);
    // The copied audio decodes to exactly the song's samples.
    let out = decode_mono(&report.output);
    let song_pcm = decode_mono(&song);
    let first = (3.217f64 * f64::from(SR)).round() as usize;
    let n = (dur * f64::from(SR)) as usize - 2048;
    let max_diff = out[..n]
        .iter()
        .zip(&song_pcm[first..first + n])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        max_diff < 1e-4,
        "copied audio differs from the song by {max_diff}"
    );
    // With a lead-in before the song there is nothing to copy at the start:
    // encoded instead, and the report says why.
    let mut req = request(&recording, &song, d.path(), 3.0);
    req.audio.copy_if_possible = true;
    req.lead_in_s = 1.0;
    let report = run(&req).unwrap();
    assert_eq!(report.audio.source, engine::export::AudioSource::Encoded);
    assert!(report.audio.note.is_some());
}

#[test]
fn without_an_offset_the_song_is_aligned_first() {
    let d = tempfile::tempdir().unwrap();
    // A song with a beat (noise bursts every 0.5 s) the aligner can lock on.
    let song = Fixture::new()
        .lavfi("anoisesrc=d=24:c=pink:r=44100:a=0.5:seed=3,volume='0.15+0.85*lt(mod(t\\,0.5)\\,0.06)':eval=frame,afade=t=out:st=21:d=3")
        .args(&["-ac", "2"])
        .aac("160k")
        .write(&d.path().join("beat.m4a"));
    // The class: talk-like brown noise, the song from 2.5 s through a
    // speaker (high-passed, quieter), phone-grade mono AAC.
    let recording = Fixture::new()
        .lavfi("testsrc2=size=160x90:rate=30")
        .input(&song)
        .lavfi("anoisesrc=d=16:c=brown:r=48000:a=0.05:seed=9")
        .args(&[
            "-filter_complex",
            "[1:a]adelay=2500|2500,highpass=f=200,volume=0.5[m];[m][2:a]amix=inputs=2:duration=longest[a]",
            "-map", "0:v", "-map", "[a]", "-t", "14", "-ac", "1",
        ])
        .h264(30)
        .aac("64k")
        .write(&d.path().join("class.mp4"));
    let req = ExportRequest::new(&recording, &song, d.path(), None);
    let mut stages = Vec::new();
    let report = engine::export(&req, &CancelToken::new(), &mut |st, _| {
        if stages.last() != Some(&st.to_string()) {
            stages.push(st.to_string());
        }
    })
    .unwrap();
    assert!(
        (report.offset_s - 2.5).abs() < 0.005,
        "aligned offset {}",
        report.offset_s
    );
    assert!(report.confidence.is_some());
    assert_eq!(report.trim.start_reason, StartReason::SongStart);
    assert!(report.timings_ms.contains_key("align"));
    assert_eq!(
        stages.first().map(String::as_str),
        Some("align"),
        "{stages:?}"
    );
    let dur = report.duration_s;
    assert_placed(&report, &song, &[0.5, dur / 2.0, dur - 0.5], 0.001);
}

#[test]
fn copied_packets_are_identical_and_the_first_frame_is_the_cut() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 30.0, 8.0);
    // 2.3 s: frame 69, between the keyframes at 2.0 and 3.0 s; the edit list
    // asked for (the default re-encodes the head: see start_cut.rs).
    let mut req = request(&recording, &song, d.path(), 2.3);
    req.start_cut = engine::export::StartCut::EditList;
    let report = run(&req).unwrap();
    assert_eq!(report.start_cut, engine::export::StartCutUsed::EditList);
    assert!(
        report.trim.hidden_frames > 0,
        "the cut should not be on a keyframe"
    );
    let src_packets = packet_hashes(&recording);
    let out_packets = packet_hashes(&report.output);
    let first = src_packets
        .iter()
        .position(|h| *h == out_packets[0])
        .expect("the first output packet is a source packet");
    assert_eq!(
        &src_packets[first..first + out_packets.len()],
        &out_packets[..],
        "copied packets differ from the source"
    );
    let src_frames = frame_hashes(&recording);
    let out_frames = frame_hashes(&report.output);
    let cut = (2.3f64 * 30.0).round() as usize;
    let shown = src_frames
        .iter()
        .position(|h| *h == out_frames[0])
        .expect("the first shown frame is a source frame");
    assert!(
        shown.abs_diff(cut) <= 1,
        "first shown frame is source frame {shown}, the cut is frame {cut}"
    );
    // And every following frame in order.
    assert_eq!(
        &src_frames[shown..shown + out_frames.len()],
        &out_frames[..]
    );
}

/// The mirror option flips the picture through the display matrix: the
/// output's matrix says "mirrored left-right" (its first column negated),
/// and the picture packets are those of the export without it, byte for byte.
#[test]
fn mirror_writes_a_flipping_display_matrix_and_copies_the_same_packets() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 30.0, 6.0);
    let plain = run(&request(&recording, &song, d.path(), 1.5)).unwrap();
    let mut req = request(&recording, &song, d.path(), 1.5);
    req.mirror = true;
    req.name = Some("mirrored.mp4".into());
    let mirrored = run(&req).unwrap();
    assert_ne!(plain.output, mirrored.output);
    assert_eq!(
        packet_hashes(&mirrored.output),
        packet_hashes(&plain.output),
        "the picture is copied as it was"
    );
    let matrix = |p: &Path| -> Option<Vec<i64>> {
        let text = ffprobe_entries(p, "stream_side_data=displaymatrix");
        let rows: Vec<i64> = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .flat_map(|(_, nums)| nums.split_whitespace().filter_map(|n| n.parse().ok()))
            .collect();
        (rows.len() == 9).then_some(rows)
    };
    assert_eq!(matrix(&plain.output), None, "no matrix without mirror");
    let m = matrix(&mirrored.output).expect("a display matrix");
    // 16.16 fixed point: x' = -x, y' = y (rows of FFmpeg's matrix).
    assert_eq!(&m[..2], &[-65536, 0], "{m:?}");
    assert_eq!(&m[3..5], &[0, 65536], "{m:?}");
    // Read back by BeatSync, the mirror is not taken for a half turn.
    let v = engine::probe(&mirrored.output).unwrap();
    assert_eq!(v.video().unwrap().rotation, 0);
}

#[test]
fn smart_cut_reencodes_only_the_head() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 30.0, 6.0);
    let mut req = request(&recording, &song, d.path(), 2.3);
    req.start_cut = engine::export::StartCut::SmartCut;
    let report = run(&req).unwrap();
    assert_eq!(report.video, engine::export::VideoMethod::SmartCut);
    assert_eq!(report.trim.hidden_frames, 0);
    // The first shown frame is the cut frame (69), re-encoded near-losslessly.
    let first = gray_frame(&report.output, 0);
    let cut = (2.3f64 * 30.0).round() as usize;
    let at_cut = psnr(&first, &gray_frame(&recording, cut));
    assert!(
        at_cut > 40.0,
        "first frame PSNR against the cut frame: {at_cut:.1} dB"
    );
    for other in [cut - 1, cut + 1] {
        assert!(psnr(&first, &gray_frame(&recording, other)) < at_cut - 6.0);
    }
    // From the next keyframe (3.0 s) on, packets are the source's, byte for byte.
    let src = packet_hashes(&recording);
    let out = packet_hashes(&report.output);
    let head = 90 - cut;
    assert_eq!(&out[head..], &src[90..90 + out.len() - head]);
    // And everything decodes cleanly.
    let log = Command::new("ffmpeg")
        .args(["-v", "error", "-i", s(&report.output), "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        log.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&log.stderr)
    );
    assert_eq!(frame_hashes(&report.output).len(), 180 - cut);
}

#[test]
fn hevc_gets_hvc1_and_rotation_is_kept() {
    let d = tempfile::tempdir().unwrap();
    let song = make_song(d.path(), "song.m4a", 20.0, 2.0, 0.0);
    let plain = make_recording(
        d.path(),
        "plain.mp4",
        &RecordingOpts {
            dur: 6.0,
            vcodec: Some(&[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "log-level=none:keyint=30",
                "-pix_fmt",
                "yuv420p",
            ]),
            ..Default::default()
        },
    );
    // A portrait phone video: the rotation lives in the MOV display matrix
    // (FFmpeg 5.1 writes it from the `rotate` tag when stream-copying).
    let recording = d.path().join("phone.mov");
    ffmpeg(&[
        "-i",
        s(&plain),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        s(&recording),
    ]);
    let src = engine::probe(&recording).unwrap();
    assert_ne!(src.video().unwrap().rotation, 0, "fixture rotation");
    let report = run(&request(&recording, &song, d.path(), 1.5)).unwrap();
    let out = engine::probe(&report.output).unwrap();
    let v = out.video().unwrap();
    assert_eq!(v.codec, "hevc");
    assert_eq!(v.rotation, src.video().unwrap().rotation);
    assert_eq!((v.width, v.height), (320, 180));
    assert!(ffprobe_entries(&report.output, "stream=codec_tag_string").contains("hvc1"));
}

#[test]
fn mkv_input_exports_to_mp4() {
    let d = tempfile::tempdir().unwrap();
    let song = make_song(d.path(), "song.m4a", 20.0, 2.0, 0.0);
    let recording = make_recording(
        d.path(),
        "class.mkv",
        &RecordingOpts {
            dur: 6.0,
            ..Default::default()
        },
    );
    let report = run(&request(&recording, &song, d.path(), 1.0)).unwrap();
    assert_eq!(report.output.extension().unwrap(), "mp4");
    let out = engine::probe(&report.output).unwrap();
    assert!((out.duration_s - 5.0).abs() < 0.1, "{}", out.duration_s);
    assert_placed(&report, &song, &[0.5, 4.5], 0.001);
    // Matroska does not count its packets: no index space is reserved, and
    // the index follows the data.
    let atoms = top_level_atoms(&report.output);
    let at = |name: &str| atoms.iter().position(|(a, _)| a == name).unwrap();
    assert!(at("mdat") < at("moov"), "{atoms:?}");
}

#[test]
fn avi_input_exports_to_mp4() {
    let d = tempfile::tempdir().unwrap();
    let song = make_song(d.path(), "song.m4a", 20.0, 2.0, 0.0);
    // H.264 in AVI (Annex B, no B-frames) with PCM sound (MP3 in AVI keeps
    // its codec delay, which moves the audio clock, recording time 0, by ~1 frame).
    let recording = make_recording(
        d.path(),
        "class.avi",
        &RecordingOpts {
            dur: 6.0,
            vcodec: Some(&[&H264[..], &["-g", "30", "-bf", "0"]].concat()),
            extra: &["-c:a", "pcm_s16le"],
            ..Default::default()
        },
    );
    let report = run(&request(&recording, &song, d.path(), 1.3)).unwrap();
    let src_frames = frame_hashes(&recording);
    let out_frames = frame_hashes(&report.output);
    let shown = src_frames
        .iter()
        .position(|h| *h == out_frames[0])
        .expect("a source frame");
    assert!(shown.abs_diff(39) <= 1, "first frame {shown}");
    assert_eq!(
        &src_frames[shown..shown + out_frames.len()],
        &out_frames[..]
    );
}

#[test]
fn variable_frame_rate_is_kept() {
    let d = tempfile::tempdir().unwrap();
    let song = make_song(d.path(), "song.m4a", 20.0, 2.0, 0.0);
    // 30 fps for 3 s, then 15 fps (a phone lowering its rate in the dark).
    let plain = make_recording(
        d.path(),
        "plain.mp4",
        &RecordingOpts {
            dur: 8.0,
            ..Default::default()
        },
    );
    let recording = Fixture::new()
        .input(&plain)
        .args(&[
            "-vf",
            "select='lt(n\\,90)+not(mod(n\\,2))'",
            "-fps_mode",
            "vfr",
        ])
        .h264(30)
        .args(&["-bf", "2", "-c:a", "copy"])
        .write(&d.path().join("vfr.mp4"));
    let ts = |p: &Path| -> Vec<f64> {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v",
                "-show_entries",
                "frame=pts_time",
                "-of",
                "csv=p=0",
                s(p),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let src = ts(&recording);
    let report = run(&request(&recording, &song, d.path(), 2.5)).unwrap();
    let out = ts(&report.output);
    // The frame times after the cut are the source's, shifted to start at 0.
    let first = src
        .iter()
        .position(|t| (t - (report.trim.start_s)).abs() < 1e-3)
        .expect("cut frame");
    for (o, s) in out.iter().zip(&src[first..]) {
        assert!(
            (o - (s - src[first])).abs() < 1e-3,
            "{o} vs {}",
            s - src[first]
        );
    }
    assert_eq!(out.len(), src.len() - first);
}

#[test]
fn song_already_playing_keeps_the_recording_start() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 30.0, 8.0);
    // 12.25 s into the song: the encoder seeks there rather than decoding it.
    let report = run(&request(&recording, &song, d.path(), -12.25)).unwrap();
    assert_eq!(report.trim.start_reason, StartReason::RecordingStart);
    assert!(report.trim.start_s.abs() < 1e-6);
    assert_placed(&report, &song, &[0.2, 7.5], 0.001);
}

#[test]
fn lead_in_keeps_seconds_before_the_song() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 30.0, 10.0);
    let mut req = request(&recording, &song, d.path(), 4.0);
    req.lead_in_s = 1.5;
    let report = run(&req).unwrap();
    assert_eq!(report.trim.start_reason, StartReason::SongStart);
    assert!(
        (report.trim.start_s - 2.5).abs() <= 1.0 / 30.0,
        "{:?}",
        report.trim
    );
    // Silence during the lead-in, then the song in place.
    let out = decode_mono(&report.output);
    let lead = &out[..(1.3 * f64::from(SR)) as usize];
    assert!(
        lead.iter().all(|v| v.abs() < 1e-3),
        "the lead-in should be silent"
    );
    assert_placed(&report, &song, &[2.0, 6.0], 0.001);
}

#[test]
fn the_users_trim_sets_both_ends() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 30.0, 10.0);
    let mut req = request(&recording, &song, d.path(), 1.0);
    req.trim_start_s = Some(3.0);
    req.trim_end_s = Some(7.5);
    let report = run(&req).unwrap();
    assert_eq!(
        (report.trim.start_reason, report.trim.end_reason),
        (StartReason::User, EndReason::User)
    );
    assert!(
        (report.trim.start_s - 3.0).abs() <= 1.0 / 30.0,
        "{:?}",
        report.trim
    );
    // The end snaps to a frame the B-frame order lets the cut end on (within 3 frames).
    assert!(
        (report.trim.end_s - 7.5).abs() <= 3.0 / 30.0,
        "{:?}",
        report.trim
    );
    assert!(
        (report.duration_s - 4.5).abs() <= 0.1 + 1e-6,
        "{} s",
        report.duration_s
    );
    assert_placed(&report, &song, &[0.5, 4.0], 0.001);
}

#[test]
fn song_ending_before_the_recording_ends_the_export_after_its_fade() {
    let d = tempfile::tempdir().unwrap();
    // 7 s of song, the last 2 s fading out, then 3 s of silence in the file.
    let song = make_song(d.path(), "song.m4a", 7.0, 2.0, 3.0);
    let recording = make_recording(
        d.path(),
        "class.mp4",
        &RecordingOpts {
            dur: 14.0,
            ..Default::default()
        },
    );
    let report = run(&request(&recording, &song, d.path(), 1.0)).unwrap();
    assert_eq!(report.trim.end_reason, EndReason::SongEnd);
    // The fade reaches -50 dB shortly before its end (7 s in the song = 8 s
    // in the recording); the export must not stop at the fade's start.
    assert!(
        report.trim.end_s > 7.0 && report.trim.end_s <= 8.1,
        "end {:?}",
        report.trim
    );
}

#[test]
fn long_song_end_is_found_from_its_tail() {
    let d = tempfile::tempdir().unwrap();
    // 156 s: only its first 45 s and last 90 s are decoded to find its ends.
    let song = make_song(d.path(), "song.m4a", 156.0, 3.0, 4.0);
    let recording = make_recording(
        d.path(),
        "class.mp4",
        &RecordingOpts {
            dur: 14.0,
            size: "160x90",
            ..Default::default()
        },
    );
    // Song time 146 s plays at recording time 0: it ends (fade done) near 10 s.
    let report = run(&request(&recording, &song, d.path(), -146.0)).unwrap();
    assert_eq!(report.trim.start_reason, StartReason::RecordingStart);
    assert_eq!(report.trim.end_reason, EndReason::SongEnd);
    assert!(
        report.trim.end_s > 9.0 && report.trim.end_s <= 10.1,
        "{:?}",
        report.trim
    );
}

#[test]
fn black_ending_is_trimmed() {
    let d = tempfile::tempdir().unwrap();
    let song = make_song(d.path(), "song.m4a", 30.0, 2.0, 0.0);
    // Picture goes black (with a little sensor noise) from 7.0 s to 12 s.
    let recording = make_recording(
        d.path(),
        "class.mp4",
        &RecordingOpts {
            dur: 12.0,
            vf: Some("drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='gte(t,7)',noise=alls=6:allf=t"),
            ..Default::default()
        },
    );
    let report = run(&request(&recording, &song, d.path(), 0.5)).unwrap();
    assert_eq!(
        report.trim.end_reason,
        EndReason::BlackPicture,
        "{:?}",
        report.trim
    );
    assert!((report.trim.end_s - 7.0).abs() <= 0.15, "{:?}", report.trim);
    // Without detection the whole recording is kept.
    let mut req = request(&recording, &song, d.path(), 0.5);
    req.detect_black_tail = false;
    let report = run(&req).unwrap();
    assert_eq!(report.trim.end_reason, EndReason::RecordingEnd);
}

#[test]
fn drift_is_followed_to_the_last_second() {
    let d = tempfile::tempdir().unwrap();
    // 0.2 % clock drift: 60 ms over 30 s, far more than the tolerance.
    let (req, song) = retimed(d.path(), 30.0, 1.002);
    let report = run(&req).unwrap();
    assert_eq!(report.audio.retime, engine::export::Retime::Resample);
    let dur = report.duration_s;
    assert_placed(&report, &song, &[0.5, dur / 2.0, dur - 0.5], 0.001);
}

/// Each video packet's presentation time (s, as ffprobe shows it: edit
/// list applied) and the MD5 of its bytes, in decode order.
fn video_packets(path: &Path) -> Vec<(f64, String)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_data_hash",
            "md5",
        ])
        .args([
            "-show_entries",
            "packet=pts_time,data_hash",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (t, h) = l.split_once(',')?;
            Some((t.parse().ok()?, h.to_string()))
        })
        .collect()
}

#[test]
fn drift_with_the_song_copied_is_followed_by_the_picture() {
    let d = tempfile::tempdir().unwrap();
    // 800 ppm (a fast phone clock): 24 ms over 30 s, most of a frame.
    let rate = 1.0008;
    let (mut req, song) = retimed(d.path(), 30.0, rate);
    req.audio.copy_if_possible = true;
    let report = run(&req).unwrap();
    assert_eq!(report.audio.source, engine::export::AudioSource::Copied);
    assert_eq!(report.audio.retime, engine::export::Retime::Picture);
    let span = report.trim.end_s - report.trim.start_s;
    assert!((report.duration_s - span / rate).abs() < 1e-6, "{report:?}");
    // The picture: the recording's packets, byte for byte (those after a
    // smart-cut head), each presented at its recording time on the song's
    // clock: (t - start) / rate.
    let input = video_packets(&req.recording);
    let origin = input.iter().map(|p| p.0).fold(f64::MAX, f64::min);
    let output = video_packets(&report.output);
    let pairs: Vec<(f64, f64)> = output
        .iter()
        .filter_map(|(t_out, h)| {
            let (t_in, _) = input.iter().find(|(_, hi)| hi == h)?;
            Some((*t_out, *t_in - origin))
        })
        .collect();
    assert!(
        pairs.len() + 30 >= output.len(),
        "{} of {}",
        pairs.len(),
        output.len()
    );
    assert!(pairs.len() >= 600, "{} packets copied", pairs.len());
    let worst = pairs
        .iter()
        .map(|(t_out, t_rec)| (t_out - (t_rec - report.trim.start_s) / rate).abs())
        .fold(0.0, f64::max);
    assert!(worst < 0.001, "a frame off its scaled time by {worst} s");
    let last = pairs.iter().map(|p| p.0).fold(0.0, f64::max);
    assert!(
        last > report.duration_s - 0.1,
        "{last} of {}",
        report.duration_s
    );
    // The sound: the song's own samples from the song time at the first
    // frame on, so what the recording heard at recording time t is heard
    // at t's frame, at the start and at the end.
    let out = decode_mono(&report.output);
    let song_pcm = decode_mono(&song);
    let p = Placement {
        offset_s: report.offset_s,
        rate: report.rate,
        ref_dance_s: Some(report.offset_ref_s),
    };
    let b0 = p.song_at(report.trim.start_s);
    let win = (0.25 * f64::from(SR)) as usize;
    for u in [0.2, report.duration_s / 2.0, report.duration_s - 0.3] {
        let out_c = (u * f64::from(SR)) as usize;
        let t = out_c as f64 / f64::from(SR);
        // The frame shown at output time t is recording time start + t * rate.
        let song_c = p.song_at(report.trim.start_s + t * rate) * f64::from(SR);
        assert!((song_c / f64::from(SR) - (b0 + t)).abs() < 1e-6);
        let lag = measured_lag_s(&out, out_c, &song_pcm, song_c, win, 1500, SR);
        assert!(
            lag.abs() <= 0.001,
            "at output {u:.2} s: {:.3} ms",
            lag * 1e3
        );
    }
    // Beyond the bound the song is re-timed (and encoded) as before.
    let (mut req, _) = retimed(d.path(), 30.0, 1.002);
    req.audio.copy_if_possible = true;
    req.name = Some("beyond.mp4".into());
    let report = run(&req).unwrap();
    assert_eq!(report.audio.retime, engine::export::Retime::Resample);
    assert_eq!(report.audio.source, engine::export::AudioSource::Encoded);
}

/// A class of `dur` seconds to a 40-s song at `rate`, offset 1 s at its middle.
fn retimed(dir: &Path, dur: f64, rate: f64) -> (ExportRequest, PathBuf) {
    let song = make_song(dir, "song.m4a", 40.0, 2.0, 0.0);
    let recording = make_recording(
        dir,
        "class.mp4",
        &RecordingOpts {
            dur,
            size: "160x90",
            ..Default::default()
        },
    );
    let mut req = request(&recording, &song, dir, 1.0);
    req.placement = Some(Placement {
        offset_s: 1.0,
        rate,
        ref_dance_s: Some(dur / 2.0),
    });
    (req, song)
}

#[test]
fn speed_change_keeps_pitch_and_stays_in_sync() {
    let d = tempfile::tempdir().unwrap();
    // The class played the song 4 % slower.
    let (mut req, song) = retimed(d.path(), 20.0, 1.04);
    req.retime = RetimeMode::Auto;
    let report = run(&req).unwrap();
    assert_eq!(report.audio.retime, engine::export::Retime::Tempo);
    let dur = report.duration_s;
    // A pitch-keeping stretch moves each grain a little (Rubber Band: a few
    // ms on pink noise, the hardest material); the placement must still
    // hold everywhere, the end included, with no accumulated drift.
    assert_placed(&report, &song, &[0.5, dur / 2.0, dur - 0.5], 0.012);
}

#[test]
fn never_overwrites_and_honours_the_name() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 20.0, 4.0);
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let a = run(&request(&recording, &song, &out, 0.5)).unwrap();
    let b = run(&request(&recording, &song, &out, 0.5)).unwrap();
    assert_eq!(a.output, out.join("class_beatsync.mp4"));
    assert_eq!(b.output, out.join("class_beatsync (2).mp4"));
    let mut req = request(&recording, &song, &out, 0.5);
    req.name = Some("Monday class".into());
    assert_eq!(run(&req).unwrap().output, out.join("Monday class.mp4"));
    req.name = Some("../escape".into());
    assert_eq!(run(&req).unwrap_err().code(), "invalid_request");
}

#[test]
fn stale_partials_are_removed_and_live_ones_kept() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 20.0, 4.0);
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let stale = out.join(".beatsync-999999-0-class_beatsync.mp4.partial");
    std::fs::write(&stale, b"half a file").unwrap();
    let unrelated = out.join("notes.partial");
    std::fs::write(&unrelated, b"not ours").unwrap();
    run(&request(&recording, &song, &out, 0.5)).unwrap();
    assert!(!stale.exists(), "the stale partial should be removed");
    assert!(unrelated.exists(), "other programs' files are left alone");
}

#[test]
fn missing_output_folder_is_a_typed_error() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 20.0, 4.0);
    let e = run(&request(&recording, &song, &d.path().join("nope"), 0.5)).unwrap_err();
    assert_eq!(e.code(), "output_dir", "{e}");
    let e = run(&request(
        &recording,
        &d.path().join("gone.m4a"),
        d.path(),
        0.5,
    ))
    .unwrap_err();
    assert_eq!(e.code(), "not_found", "{e}");
}

#[test]
fn unsupported_video_codec_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let song = make_song(d.path(), "song.m4a", 20.0, 2.0, 0.0);
    let recording = make_recording(
        d.path(),
        "class.mkv",
        &RecordingOpts {
            dur: 3.0,
            vcodec: Some(&["-c:v", "ffv1", "-g", "10"]),
            size: "64x36",
            ..Default::default()
        },
    );
    let e = run(&request(&recording, &song, d.path(), 0.2)).unwrap_err();
    assert_eq!(e.code(), "unsupported", "{e}");
    assert_eq!(files_in(d.path()), vec!["class.mkv", "song.m4a"]);
}

#[test]
fn input_changed_during_export_is_detected_and_nothing_left() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 20.0, 6.0);
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let req = request(&recording, &song, &out, 0.5);
    // Removed while exporting.
    let mut removed = false;
    let e = engine::export(&req, &CancelToken::new(), &mut |stage, _| {
        if stage == "export" && !removed {
            removed = std::fs::remove_file(&recording).is_ok();
        }
    })
    .unwrap_err();
    assert!(removed);
    assert_eq!(e.code(), "input_changed", "{e}");
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
    // Changed (appended to) while exporting.
    let recording = make_recording(
        d.path(),
        "class.mp4",
        &RecordingOpts {
            dur: 6.0,
            ..Default::default()
        },
    );
    let mut changed = false;
    let e = engine::export(&req, &CancelToken::new(), &mut |stage, _| {
        if stage == "export" && !changed {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&song)
                .unwrap();
            changed = f.write_all(b"more").is_ok();
        }
    })
    .unwrap_err();
    assert!(changed && recording.exists());
    assert_eq!(e.code(), "input_changed", "{e}");
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
}

#[test]
fn cancel_stops_and_leaves_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 20.0, 6.0);
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let cancel = CancelToken::new();
    let c2 = cancel.clone();
    let mut stages = Vec::new();
    let e = engine::export(
        &request(&recording, &song, &out, 0.5),
        &cancel,
        &mut |stage, f| {
            stages.push((stage.to_string(), f));
            if stage == "export" {
                c2.cancel();
            }
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "cancelled");
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
    assert!(stages.iter().all(|(_, f)| (0.0..=1.0).contains(f)));
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A small tmpfs (root only); unmounted on drop.
struct SmallDisk(PathBuf);
impl SmallDisk {
    fn mount(dir: &Path, opts: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs", s(dir)])
            .status()
            .map(|st| st.success())
            .unwrap_or(false);
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }
}
impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_is_a_typed_error_and_leaves_nothing() {
    if !is_root() {
        common::skip("disk_full test: mounting a small tmpfs needs root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let song = make_song(d.path(), "song.m4a", 20.0, 2.0, 0.0);
    let recording = make_recording(
        d.path(),
        "class.mp4",
        &RecordingOpts {
            dur: 8.0,
            size: "640x360",
            ..Default::default()
        },
    );
    let Some(disk) = SmallDisk::mount(&d.path().join("small"), "size=256k") else {
        common::skip("disk_full test: mount -t tmpfs failed");
        return;
    };
    // Refused up front from the free-space estimate…
    let e = run(&request(&recording, &song, &disk.0, 0.5)).unwrap_err();
    assert_eq!(e.code(), "disk_full", "{e}");
    assert!(files_in(&disk.0).is_empty());
    // …and, without the estimate, when the disk fills up mid-write.
    let mut req = request(&recording, &song, &disk.0, 0.5);
    req.check_free_space = false;
    let e = run(&req).unwrap_err();
    assert_eq!(e.code(), "disk_full", "{e}");
    assert!(files_in(&disk.0).is_empty(), "{:?}", files_in(&disk.0));
}

#[test]
fn read_only_folder_is_a_typed_error() {
    if !is_root() {
        common::skip("read-only folder test: mounting needs root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 20.0, 4.0);
    let Some(disk) = SmallDisk::mount(&d.path().join("ro"), "size=4m,ro") else {
        common::skip("read-only folder test: mount failed");
        return;
    };
    let e = run(&request(&recording, &song, &disk.0, 0.5)).unwrap_err();
    assert_eq!(e.code(), "output_dir", "{e}");
}

#[test]
fn killed_export_leaves_no_final_file_and_the_next_run_cleans_up() {
    use std::io::{BufRead, BufReader};
    let d = tempfile::tempdir().unwrap();
    let song = make_song(d.path(), "song.m4a", 40.0, 2.0, 0.0);
    // Big enough that the export takes a while: 30 s of 640x360 at a high bit rate.
    let recording = make_recording(
        d.path(),
        "class.mp4",
        &RecordingOpts {
            dur: 30.0,
            size: "640x360",
            vcodec: Some(&[&H264[..], &["-g", "30", "-b:v", "12M"]].concat()),
            ..Default::default()
        },
    );
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let args = [
        "sync",
        "--dance",
        s(&recording),
        "--bgm",
        s(&song),
        "--out",
        s(&out),
        "--offset",
        "0.5",
        "--progress",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_beatsync"))
        .args(args)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut saw_export = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap_or_default();
        if let Some(fraction) = line.strip_prefix("export ") {
            let f: f64 = fraction.trim().parse().unwrap_or(0.0);
            if f > 0.0 {
                saw_export = true;
                break;
            }
        }
    }
    assert!(saw_export, "the export never reported progress");
    // SIGKILL: no chance to clean up.
    child.kill().unwrap();
    let _ = child.wait();
    let left = files_in(&out);
    assert!(
        !left.iter().any(|f| f.ends_with(".mp4")),
        "a final file exists: {left:?}"
    );
    assert!(
        left.iter()
            .any(|f| f.starts_with(".beatsync-") && f.ends_with(".partial")),
        "expected the killed export's partial file: {left:?}"
    );
    // The next run removes it and succeeds.
    let status = Command::new(env!("CARGO_BIN_EXE_beatsync"))
        .args(&args[..args.len() - 1])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(files_in(&out), vec!["class_beatsync.mp4"]);
}

#[test]
fn cli_json_report_has_the_contract_fields() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 20.0, 4.0);
    let out = Command::new(env!("CARGO_BIN_EXE_beatsync"))
        .args([
            "sync",
            "--dance",
            s(&recording),
            "--bgm",
            s(&song),
            "--out",
            s(d.path()),
            "--offset",
            "0.5",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "output",
        "offset_s",
        "rate",
        "trim",
        "video",
        "start_cut",
        "audio",
        "timings_ms",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    for key in ["start_s", "end_s", "start_reason", "end_reason"] {
        assert!(v["trim"].get(key).is_some(), "missing trim.{key}");
    }
    // 0.5 s is between keyframes: the head is re-encoded by default.
    assert_eq!(v["video"], "smart-cut");
    assert_eq!(v["start_cut"], "smart_cut");
    assert!(v.get("start_cut_reason").is_none(), "{v}");
    assert_eq!(v["audio"]["source"], "encoded");
    assert_eq!(v["audio"]["codec"], "aac");
    // The request/report types round-trip through JSON (the job system stores them).
    let report: ExportReport = serde_json::from_value(v).unwrap();
    assert!(report.output.exists());
    let req = request(&recording, &song, d.path(), 0.5);
    let back: ExportRequest = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
    assert_eq!(back, req);
}

/// The Linux-only output calls (O_DIRECT writes, sync_file_range writeback,
/// renameat2) turned off with `BEATSYNC_PLAIN_IO=1` give the plain paths
/// every other OS takes: the same bytes, under the same name, nothing else
/// left in the folder. The song copied and encoded; the video large enough
/// (over two of O_DIRECT's 4 MB blocks) for whole blocks to go through it.
#[test]
fn plain_io_paths_write_the_same_file_as_the_linux_ones() {
    // In the target folder rather than /tmp, which may be a tmpfs that
    // refuses O_DIRECT (and the default run would then test nothing new).
    let d = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let probe = d.path().join("o_direct");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe)
            .expect("the test folder takes O_DIRECT, so the default run uses it");
        std::fs::remove_file(probe).unwrap();
    }
    let song = make_song(d.path(), "song.m4a", 14.0, 2.0, 0.0);
    let recording = make_recording(
        d.path(),
        "class.mp4",
        &RecordingOpts {
            size: "960x540",
            extra: &["-qp", "4"],
            ..Default::default()
        },
    );
    for copy in [true, false] {
        let mut outputs = Vec::new();
        for plain in ["0", "1"] {
            let out = d.path().join(format!("out-copy{copy}-plain{plain}"));
            std::fs::create_dir(&out).unwrap();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_beatsync"));
            cmd.args(["sync", "--dance", s(&recording), "--bgm", s(&song)])
                .args(["--out", s(&out), "--offset", "-1.5"])
                .env("BEATSYNC_PLAIN_IO", plain);
            if copy {
                cmd.arg("--copy-audio");
            }
            let run = cmd.output().unwrap();
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
            assert_eq!(files_in(&out), vec!["class_beatsync.mp4"]);
            outputs.push(std::fs::read(out.join("class_beatsync.mp4")).unwrap());
        }
        assert!(outputs[0].len() > 8 << 20, "{} bytes", outputs[0].len());
        assert!(
            outputs[0] == outputs[1],
            "song copied: {copy}: {} bytes by default, {} plain",
            outputs[0].len(),
            outputs[1].len()
        );
    }
}

/// The top-level boxes of an MP4: (type, size).
fn top_level_atoms(path: &Path) -> Vec<(String, u64)> {
    let data = std::fs::read(path).unwrap();
    let mut atoms = Vec::new();
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let word = |i: usize| u32::from_be_bytes(data[i..i + 4].try_into().unwrap());
        let mut size = u64::from(word(at));
        if size == 1 {
            size = u64::from_be_bytes(data[at + 8..at + 16].try_into().unwrap());
        } else if size == 0 {
            size = (data.len() - at) as u64;
        }
        assert!(
            size >= 8,
            "box of {size} bytes at {at} in {}",
            path.display()
        );
        atoms.push((
            String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned(),
            size,
        ));
        at += size as usize;
    }
    assert_eq!(at, data.len(), "boxes overrun the file: {atoms:?}");
    atoms
}

/// The index (`moov`) comes right after `ftyp`, before the media data, in
/// one pass: the space kept for it is followed by `free` padding, and the
/// file reads back with every packet (song encoded, copied, smart cut).
#[test]
fn the_index_comes_before_the_media_data() {
    let d = tempfile::tempdir().unwrap();
    let (song, recording) = song_and_class(d.path(), 20.0, 12.0);
    let mut cases = Vec::new();
    for (copy, smart) in [(false, false), (true, false), (false, true)] {
        let out = d.path().join(format!("out-{copy}-{smart}"));
        std::fs::create_dir(&out).unwrap();
        let mut req = request(&recording, &song, &out, -1.5);
        req.audio.copy_if_possible = copy;
        req.start_cut = if smart {
            engine::export::StartCut::SmartCut
        } else {
            engine::export::StartCut::EditList
        };
        let report = run(&req).unwrap();
        let atoms = top_level_atoms(&report.output);
        let names: Vec<&str> = atoms.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(names[..3], ["ftyp", "moov", "free"], "{atoms:?}");
        assert_eq!(names.last(), Some(&"mdat"), "{atoms:?}");
        // The reservation is a bound, not a guess many times too large.
        let (moov, free) = (atoms[1].1, atoms[2].1);
        assert!(free < 256 << 10, "moov {moov} bytes, {free} bytes free");
        let packets = ffprobe_entries(&report.output, "packet=stream_index");
        let video = packets
            .lines()
            .filter(|l| l.trim() == "stream_index=0")
            .count();
        let audio = packets
            .lines()
            .filter(|l| l.trim() == "stream_index=1")
            .count();
        assert!(
            video >= 300 && audio >= 400,
            "{video} video, {audio} audio packets"
        );
        cases.push((copy, smart, moov, free));
    }
    eprintln!("(copied song, smart cut, moov bytes, free bytes): {cases:?}");
}

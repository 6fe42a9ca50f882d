//! Exporting a recording with several plays of the song (issue 18 §3): one
//! video with the song placed in each play, or one clip per play. Real media
//! generated with the ffmpeg CLI; every placement checked by
//! cross-correlating the output's decoded audio with the song.

mod common;

use beatsync_engine as engine;
use common::{files_in, measured_lag_s, mono_samples, path_str as s, pink_song, Fixture};
use engine::export::{Between, PlaysLayout};
use engine::Play;
use engine::{CancelToken, EngineError, ExportReport, ExportRequest};
use std::path::{Path, PathBuf};

const SR: u32 = 44100;
const FRAME_S: f64 = 1.0 / 30.0;

/// Where each piece of the recording's sound comes from: the song from
/// `song_from` for `len` seconds, or the room's talk (noise of its own).
#[derive(Clone, Copy)]
enum Piece {
    Song { song_from: f64, len: f64 },
    Talk { len: f64 },
}

/// The generated class: a 30-fps test picture whose sound is talk, play 1
/// (the song from 0 s), talk, play 2 (a restart from 5 s), then straight
/// into play 3 (a cut back to 2 s, as in a dance edit), talk.
const CLASS: [Piece; 6] = [
    Piece::Talk { len: 4.0 },
    Piece::Song {
        song_from: 0.0,
        len: 16.0,
    },
    Piece::Talk { len: 6.0 },
    Piece::Song {
        song_from: 5.0,
        len: 12.0,
    },
    Piece::Song {
        song_from: 2.0,
        len: 11.0,
    },
    Piece::Talk { len: 4.0 },
];

struct Class {
    _dir: tempfile::TempDir,
    recording: PathBuf,
    song: PathBuf,
    out: PathBuf,
    plays: Vec<Play>,
}

/// Writes the song (22 s of pink noise) and the class video made of
/// [`CLASS`]; the plays are where the pieces were put.
fn make_class() -> Class {
    let dir = common::tmp();
    let song = pink_song(22.0, 1.0, 0.0, 11).write(&dir.path().join("song.m4a"));
    let mut graph = String::new();
    let mut labels = String::new();
    let (mut at, mut talk_at) = (0.0, 0.0);
    let mut plays = Vec::new();
    for (i, piece) in CLASS.iter().enumerate() {
        let (input, from, len) = match *piece {
            Piece::Song { song_from, len } => {
                plays.push(Play {
                    recording_start_s: at,
                    recording_end_s: at + len,
                    offset_s: at - song_from,
                    rate: 1.0,
                    cut_before: plays
                        .last()
                        .is_some_and(|p: &Play| (p.recording_end_s - at).abs() < 1e-9),
                });
                (0, song_from, len)
            }
            Piece::Talk { len } => {
                talk_at += len;
                (1, talk_at - len, len)
            }
        };
        graph.push_str(&format!(
            "[{input}:a]atrim={from}:{end},asetpts=PTS-STARTPTS,aformat=sample_rates=44100:channel_layouts=stereo[p{i}];",
            end = from + len
        ));
        labels.push_str(&format!("[p{i}]"));
        at += len;
    }
    graph.push_str(&format!(
        "{labels}concat=n={}:v=0:a=1,aresample=48000[a]",
        CLASS.len()
    ));
    let recording = Fixture::new()
        .input(&song)
        .lavfi("anoisesrc=d=40:c=brown:r=44100:a=0.4:seed=3")
        .lavfi(&format!("testsrc2=size=320x180:rate=30:d={at}"))
        .args(&["-filter_complex", &graph, "-map", "2:v", "-map", "[a]"])
        .h264(30)
        .args(&["-bf", "2"])
        .aac("96k")
        .write(&dir.path().join("class.mp4"));
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    Class {
        recording,
        song,
        out,
        plays,
        _dir: dir,
    }
}

fn request(c: &Class, layout: PlaysLayout, between: Between) -> ExportRequest {
    let mut req = ExportRequest::new(&c.recording, &c.song, &c.out, None);
    req.plays = c.plays.clone();
    req.layout = layout;
    req.between = between;
    req
}

fn export(req: &ExportRequest) -> ExportReport {
    engine::export(req, &CancelToken::new(), &mut |_, _| {}).expect("export")
}

/// The first audio stream of `path`, mono f32 at [`SR`].
fn decode_mono(path: &Path) -> Vec<f32> {
    mono_samples(path, SR)
}

/// Checks that around output second `u` (recording second `u + start_s`)
/// the output holds the song at `play`'s placement, within 1 ms.
fn assert_song_at(out: &[f32], song: &[f32], start_s: f64, play: &Play, u: f64) {
    let out_c = (u * f64::from(SR)).round() as usize;
    let t = out_c as f64 / f64::from(SR) + start_s;
    let song_c = play.placement().song_at(t) * f64::from(SR);
    let win = (0.25 * f64::from(SR)) as usize;
    let lag = measured_lag_s(out, out_c, song, song_c, win, 1500, SR);
    assert!(
        lag.abs() <= 0.001,
        "at output {u:.2} s (play at {:.1}-{:.1} s) the song is {:.2} ms off",
        play.recording_start_s,
        play.recording_end_s,
        lag * 1e3
    );
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// Level (dB) of the output around `u` against the recording around the
/// same recording time, and their normalised correlation at lag 0 (±2 ms).
fn room_vs_recording(out: &[f32], rec: &[f32], start_s: f64, u: f64) -> (f64, f64) {
    let sr = f64::from(SR);
    let n = (0.5 * sr) as usize;
    let o0 = (u * sr) as usize - n / 2;
    let r0 = ((u + start_s) * sr) as usize - n / 2;
    let o = &out[o0..o0 + n];
    let level = 20.0 * (rms(o) / rms(&rec[r0..r0 + n]).max(1e-12)).log10();
    let mut best = 0.0f64;
    for lag in -88i64..=88 {
        let r = &rec[(r0 as i64 + lag) as usize..(r0 as i64 + lag) as usize + n];
        let xy: f64 = o
            .iter()
            .zip(r)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        best = best.max(xy / (rms(o) * rms(r) * n as f64).max(1e-12));
    }
    (level, best)
}

#[test]
fn one_video_places_the_song_in_every_play_and_ducks_the_room_between() {
    let c = make_class();
    let report = export(&request(&c, PlaysLayout::OneVideo, Between::Recorded));
    assert_eq!(report.outputs, vec![report.output.clone()]);
    assert_eq!(report.plays, c.plays);
    assert_eq!(files_in(&c.out).len(), 1, "{:?}", files_in(&c.out));
    // The output runs from the first play's start to the last one's end.
    assert!((report.trim.start_s - c.plays[0].recording_start_s).abs() <= FRAME_S);
    let last_end = c.plays[2].recording_end_s;
    assert!(
        (report.trim.end_s - last_end).abs() <= FRAME_S,
        "{:?}",
        report.trim
    );
    let out = decode_mono(&report.output);
    let song = decode_mono(&c.song);
    let rec = decode_mono(&c.recording);
    let start = report.trim.start_s;
    for play in &c.plays {
        let (a, b) = (play.recording_start_s - start, play.recording_end_s - start);
        for u in [a + 0.6, 0.5 * (a + b), b - 0.6] {
            assert_song_at(&out, &song, start, play, u);
        }
    }
    // Between play 1 and play 2: the recording's own sound, 12 dB down.
    let gap_mid = 0.5 * (c.plays[0].recording_end_s + c.plays[1].recording_start_s) - start;
    let (level, corr) = room_vs_recording(&out, &rec, start, gap_mid);
    assert!((level + 12.0).abs() < 1.5, "room at {level:.1} dB");
    assert!(corr > 0.9, "the room's sound correlates {corr:.3}");
}

#[test]
fn one_video_with_silence_between_and_a_lead_in() {
    let c = make_class();
    let mut req = request(&c, PlaysLayout::OneVideo, Between::Silence);
    req.lead_in_s = 2.0;
    let report = export(&req);
    assert!((report.trim.start_s - (c.plays[0].recording_start_s - 2.0)).abs() <= FRAME_S);
    let out = decode_mono(&report.output);
    let song = decode_mono(&c.song);
    let start = report.trim.start_s;
    let sr = f64::from(SR);
    let gap_mid = 0.5 * (c.plays[0].recording_end_s + c.plays[1].recording_start_s) - start;
    let quiet = &out[((gap_mid - 1.0) * sr) as usize..((gap_mid + 1.0) * sr) as usize];
    assert!(
        20.0 * rms(quiet).max(1e-9).log10() < -60.0,
        "between plays: {}",
        rms(quiet)
    );
    let lead = &out[(0.2 * sr) as usize..(1.7 * sr) as usize];
    assert!(
        20.0 * rms(lead).max(1e-9).log10() < -60.0,
        "lead-in: {}",
        rms(lead)
    );
    // Across the cut from play 2 into play 3 each side holds its own play.
    let cut = c.plays[2].recording_start_s - start;
    assert_song_at(&out, &song, start, &c.plays[1], cut - 0.2);
    assert_song_at(&out, &song, start, &c.plays[2], cut + 0.2);
}

/// Duration of `path` as ffprobe reads it (container), seconds.
fn duration_of(path: &Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            s(path),
        ])
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a duration")
}

#[test]
fn split_writes_one_clip_per_play_each_starting_at_its_play() {
    let c = make_class();
    let report = export(&request(&c, PlaysLayout::Split, Between::Recorded));
    let names: Vec<String> = report
        .outputs
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        ["class_play01.mp4", "class_play02.mp4", "class_play03.mp4"]
    );
    assert_eq!(report.output, report.outputs[0]);
    assert_eq!(files_in(&c.out), names);
    let song = decode_mono(&c.song);
    for (clip, play) in report.clips.iter().zip(&c.plays) {
        assert_eq!(clip.play, *play);
        assert!(
            (clip.trim.start_s - play.recording_start_s).abs() <= FRAME_S
                && (clip.trim.end_s - play.recording_end_s).abs() <= FRAME_S,
            "{:?} for {play:?}",
            clip.trim
        );
        let d = duration_of(&clip.output);
        assert!(
            (d - play.duration_s()).abs() <= 2.0 * FRAME_S,
            "{d} s for {play:?}"
        );
        let out = decode_mono(&clip.output);
        for u in [0.5, 0.5 * play.duration_s(), play.duration_s() - 0.5] {
            assert_song_at(&out, &song, clip.trim.start_s, play, u);
        }
    }
}

#[test]
fn a_cancelled_split_leaves_no_file() {
    let c = make_class();
    let req = request(&c, PlaysLayout::Split, Between::Recorded);
    let cancel = CancelToken::new();
    let mut seen = 0.0f64;
    let r = engine::export(&req, &cancel, &mut |stage, f| {
        // Half-way through the clips (inside the second one).
        if stage == "export" {
            seen = seen.max(f);
            if f > 0.5 {
                cancel.cancel();
            }
        }
    });
    assert!(matches!(r, Err(EngineError::Cancelled)), "{r:?}");
    assert!(seen > 0.5);
    assert!(files_in(&c.out).is_empty(), "{:?}", files_in(&c.out));
}

#[test]
fn a_refused_seal_leaves_no_clip() {
    let c = make_class();
    // The job runner's seal of the last clip fails: nothing is renamed.
    let req = request(&c, PlaysLayout::Split, Between::Silence);
    let mut sealed = Vec::new();
    let r = engine::export::export_sealed(&req, &CancelToken::new(), &mut |_, _| {}, &mut |p| {
        sealed.push(p.to_path_buf());
        if sealed.len() == 3 {
            return Err(EngineError::Cancelled);
        }
        Ok(())
    });
    assert!(matches!(r, Err(EngineError::Cancelled)), "{r:?}");
    assert_eq!(sealed.len(), 3, "every clip is sealed before any rename");
    assert!(files_in(&c.out).is_empty(), "{:?}", files_in(&c.out));
}

#[test]
fn plays_are_checked_where_they_enter_the_export() {
    let c = make_class();
    let mut req = request(&c, PlaysLayout::Split, Between::Recorded);
    req.plays.swap(0, 1);
    let r = engine::export(&req, &CancelToken::new(), &mut |_, _| {});
    assert!(matches!(r, Err(EngineError::InvalidRequest(_))), "{r:?}");
    assert!(files_in(&c.out).is_empty());
}

/// `beatsync jobs run --until-empty` on the store in `data`; it must succeed.
fn run_jobs(data: &Path) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_beatsync"))
        .env("BEATSYNC_DATA_DIR", data)
        .args(["jobs", "run", "--until-empty"])
        .output()
        .expect("jobs run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Puts the job back as a run killed before it could record `done` left it.
fn as_if_killed_while_exporting(data: &Path, id: &str) {
    let db = rusqlite::Connection::open(data.join("jobs.sqlite3")).expect("db");
    let n = db
        .execute(
            "UPDATE jobs SET state = 'exporting', stage = 'export', runner_id = 'killed' WHERE id = ?1",
            [id],
        )
        .expect("update");
    assert_eq!(n, 1);
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime")
}

#[test]
fn a_split_job_killed_among_its_renames_ends_with_every_clip_once() {
    use engine::jobs::{JobInput, JobOptions, JobState, NewJob, Store};
    let c = make_class();
    let data = c.out.parent().expect("parent").join("data");
    let input = |p: &Path| {
        let path = std::fs::canonicalize(p).expect("canonical");
        JobInput {
            fingerprint: engine::media::fingerprint::fingerprint(&path).expect("fingerprint"),
            path,
        }
    };
    let id = {
        let (store, _) = Store::open(&data).expect("store");
        let options = JobOptions {
            out_dir: Some(c.out.clone()),
            plays: Some(c.plays.clone()),
            layout: PlaysLayout::Split,
            ..Default::default()
        };
        let new = NewJob {
            recording: input(&c.recording),
            song: input(&c.song),
            options,
            max_attempts: 3,
        };
        store.add(new).expect("add").id
    };
    let names = ["class_play01.mp4", "class_play02.mp4", "class_play03.mp4"];
    let job_after_run = || {
        run_jobs(&data);
        let (store, _) = Store::open(&data).expect("store");
        store.get(&id).expect("job")
    };
    let job = job_after_run();
    assert_eq!(job.state, JobState::Done, "{:?}", job.error);
    assert_eq!(files_in(&c.out), names);
    assert_eq!(job.output_seals.len(), 3);
    assert_eq!(
        job.output_path.as_deref(),
        Some(c.out.join(names[0]).as_path())
    );
    let outputs = job
        .report
        .as_ref()
        .map(|r| r["outputs"].clone())
        .unwrap_or_default();
    assert_eq!(outputs.as_array().map(Vec::len), Some(3), "{outputs}");

    // Killed after every rename, before `done`: the clips are adopted as they are.
    let before: Vec<_> = names.iter().map(|n| modified(&c.out.join(n))).collect();
    as_if_killed_while_exporting(&data, &id);
    let job = job_after_run();
    assert_eq!(job.state, JobState::Done, "{:?}", job.error);
    assert_eq!(files_in(&c.out), names);
    let after: Vec<_> = names.iter().map(|n| modified(&c.out.join(n))).collect();
    assert_eq!(before, after, "adopted, not written again");
    assert_eq!(
        job.report.as_ref().map(|r| r["adopted"].clone()),
        Some(true.into())
    );

    // Killed among the renames: the third clip never got its name. The two
    // renamed ones are the job's (sealed): they are replaced, not doubled.
    std::fs::remove_file(c.out.join(names[2])).expect("remove");
    as_if_killed_while_exporting(&data, &id);
    let job = job_after_run();
    assert_eq!(job.state, JobState::Done, "{:?}", job.error);
    assert_eq!(files_in(&c.out), names, "every clip once");
    assert!(modified(&c.out.join(names[0])) > before[0], "written again");
}

fn beatsync_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_beatsync"))
        .args(args)
        .output()
        .expect("beatsync runs")
}

/// `beatsync sync` on the class's recording and song into its output folder.
fn sync_args(c: &Class) -> [&str; 7] {
    [
        "sync",
        "--dance",
        s(&c.recording),
        "--bgm",
        s(&c.song),
        "--out",
        s(&c.out),
    ]
}

#[test]
fn cli_sync_split_exports_the_plays_the_aligner_finds() {
    let c = make_class();
    let o = beatsync_cli(&[&sync_args(&c)[..], &["--split", "--json"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: ExportReport = serde_json::from_slice(&o.stdout).expect("report");
    assert_eq!(report.outputs.len(), 3, "{:?}", report.plays);
    assert_eq!(
        files_in(&c.out),
        ["class_play01.mp4", "class_play02.mp4", "class_play03.mp4"]
    );
    let song = decode_mono(&c.song);
    // Each clip holds its play's song where the fixture put it (the
    // placement truth, not the aligner's answer).
    for (clip, truth) in report.clips.iter().zip(&c.plays) {
        let out = decode_mono(&clip.output);
        let mid = 0.5 * (truth.recording_start_s + truth.recording_end_s) - clip.trim.start_s;
        assert_song_at(&out, &song, clip.trim.start_s, truth, mid);
    }
}

#[test]
fn cli_refuses_split_with_an_offset_and_unknown_between() {
    let c = make_class();
    let base = sync_args(&c);
    let o = beatsync_cli(&[&base[..], &["--offset", "4", "--split"]].concat());
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--offset"), "{err}");
    let o = beatsync_cli(&[&base[..], &["--between", "loud"]].concat());
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("recorded"));
    let bad = c.out.parent().expect("dir").join("plays.json");
    std::fs::write(
        &bad,
        r#"[{"dance_start_s": 30, "dance_end_s": 20, "offset_s": 1}]"#,
    )
    .expect("write");
    let o = beatsync_cli(&[&base[..], &["--plays", s(&bad)]].concat());
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("play 1"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(files_in(&c.out).is_empty());
}

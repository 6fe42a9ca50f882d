//! Crash safety of the job system, end to end: `beatsync jobs run` is killed
//! with SIGKILL at seeded random moments — mid-analysis, mid-export, right
//! after a transition — and restarted until the queue is empty. Every job must
//! end `done` exactly once with a valid, correctly placed output, or be set
//! aside as `crashed` after three kills while it ran alone (and only then);
//! nothing partial or duplicated may be left behind.

mod common;

use beatsync_engine::jobs::{JobState, Store};
use common::{measured_lag_s, path_str, pink_song, tmp, Fixture};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Jobs and kills: 4 and 8 in the suite; `bench/jobs_crash.sh` runs 20 and 100.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A tiny deterministic generator (splitmix64) so the kill schedule is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The song: 14 s of stereo pink noise (one sharp correlation peak), AAC.
fn make_song(dir: &Path) -> PathBuf {
    pink_song(14.0, 2.0, 0.0, 11).write(&dir.join("song.m4a"))
}

/// A class video whose sound is the song starting `delay` s in, under noise.
fn make_class(dir: &Path, song: &Path, i: usize, delay: f64) -> PathBuf {
    let ms = (delay * 1000.0).round() as i64;
    let filter = format!("[1:a]adelay={ms}|{ms},volume=0.6[m];anoisesrc=d=10:c=white:r=48000:a=0.05:seed={i}[n];[m][n]amix=inputs=2:duration=longest:normalize=0[a]");
    Fixture::new()
        .lavfi("testsrc2=size=320x180:rate=30")
        .input(song)
        .args(&[
            "-filter_complex",
            &filter,
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-t",
            "10",
        ])
        .h264(30)
        .aac("96k")
        .args(&["-ar", "48000"])
        .write(&dir.join(format!("class {i}.mp4")))
}

/// Analysis rate for the placement check.
const CHECK_RATE: u32 = 8000;

/// How far (s) the song in `output` is, around each output time in `points`,
/// from where `output_time = song_time + offset` puts it: normalised
/// cross-correlation of a 0.5-s window over ±50 ms at 8 kHz.
fn song_lags(output: &Path, song: &[f32], points: &[f64], offset: f64) -> Vec<f64> {
    let out = beatsync_engine::decode_audio(output, CHECK_RATE)
        .expect("decode output")
        .samples;
    let rate = f64::from(CHECK_RATE);
    points
        .iter()
        .map(|at| {
            let out_c = (at * rate) as usize;
            let song_c = (at - offset) * rate;
            measured_lag_s(
                &out,
                out_c,
                song,
                song_c,
                (0.5 * rate) as usize,
                400,
                CHECK_RATE,
            )
        })
        .collect()
}

/// An exported file is a valid video with sound, and the song in it sits
/// where `output_time = song_time + offset` puts it (±2 ms at 1, 3 and 5 s).
fn assert_song_placed(output: &Path, song: &[f32], offset: f64) {
    let info = beatsync_engine::probe(output).expect("output is a valid media file");
    info.require_video().expect("picture");
    info.require_audio().expect("sound");
    let points = [1.0, 3.0, 5.0];
    for (at, lag) in points.iter().zip(song_lags(output, song, &points, offset)) {
        assert!(
            lag.abs() < 0.002,
            "{}: at {at} s the song is off by {:.2} ms",
            output.display(),
            lag * 1e3
        );
    }
}

/// `beatsync jobs add --dance CLASS --bgm SONG --out OUT` with the paths as
/// the OS spells them; it must succeed.
fn add_job(data: &Path, class: &Path, song: &Path, out: &Path) {
    let o = beatsync(data)
        .args(["jobs", "add", "--dance"])
        .arg(class)
        .arg("--bgm")
        .arg(song)
        .arg("--out")
        .arg(out)
        .output()
        .expect("jobs add");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn beatsync(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_beatsync"));
    c.env("BEATSYNC_DATA_DIR", data);
    c
}

fn states(store: &Store) -> Vec<JobState> {
    store
        .list(&[], 100)
        .map(|v| v.iter().map(|j| j.state).collect())
        .unwrap_or_default()
}

/// What to wait for before killing.
#[derive(Debug, Clone, Copy)]
enum Moment {
    MidAnalysis,
    MidExport,
    AfterTransition,
    Random,
}

/// Kills `child` at `moment`, `skip` polls (of ~3 ms) later than the first
/// one that sees it; false when the run finished first. The moments are
/// defined by the store's states, not by elapsed time, so that kills land
/// however fast the machine and the build (debug or release) are.
fn wait_and_kill(child: &mut Child, store: &Store, moment: Moment, skip: u64) -> bool {
    let initial = states(store);
    let start = Instant::now();
    let mut seen = 0u64;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return false; // finished by itself first
        }
        let now = states(store);
        let at_moment = match moment {
            Moment::MidAnalysis => now.contains(&JobState::Analyzing),
            Moment::MidExport => now.contains(&JobState::Exporting),
            Moment::AfterTransition => now != initial,
            Moment::Random => true,
        };
        if at_moment {
            seen += 1;
        }
        if seen > skip || start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn killed_at_random_moments_every_job_is_done_exactly_once() {
    let d = tmp();
    let media = d.path().join("media");
    let out = d.path().join("out");
    let data = d.path().join("data");
    std::fs::create_dir_all(&media).expect("mkdir");
    let song = make_song(&media);
    let (jobs_n, kills_n) = (
        env_count("BEATSYNC_CRASH_JOBS", 4),
        env_count("BEATSYNC_CRASH_KILLS", 8),
    );
    let started = Instant::now();
    // Jobs keep the default 3 tries: a kill gives its try back, and only a
    // kill while the job ran alone counts towards `crashed`.
    let mut classes = Vec::new();
    for i in 0..jobs_n {
        // Song start times spread over 0.5..3.5 s.
        let delay = 0.5 + (i as f64 * 0.73) % 3.0;
        let class = make_class(&media, &song, i, delay);
        add_job(&data, &class, &song, &out);
        classes.push((class, delay));
    }
    let (store, _) = Store::open(&data).expect("store");

    let mut rng = Rng(0xBEA7_5EED);
    let moments = [
        Moment::MidAnalysis,
        Moment::MidExport,
        Moment::AfterTransition,
        Moment::Random,
    ];
    let mut kills = 0;
    let mut runs = 0;
    // Kills that found exactly one job running: the only ones charged.
    let mut alone_kills: HashMap<String, u32> = HashMap::new();
    loop {
        runs += 1;
        assert!(
            runs < kills_n + 60,
            "the queue never emptied: {:?}",
            states(&store)
        );
        let mut child = beatsync(&data)
            .args(["jobs", "run", "--until-empty"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("jobs run");
        if kills < kills_n {
            let moment = moments[kills % moments.len()];
            // Random: 0-150 ms into the run; the others: within a few polls
            let skip = match moment {
                Moment::Random => rng.below(50),
                Moment::AfterTransition => 0,
                _ => rng.below(6),
            };
            let pid = child.id();
            if wait_and_kill(&mut child, &store, moment, skip) {
                kills += 1;
                // Jobs this run claimed (a run killed before its recovery
                // leaves the previous run's jobs, already counted).
                let running: Vec<String> = store
                    .list(&[JobState::Analyzing, JobState::Exporting], 100)
                    .expect("list")
                    .into_iter()
                    .filter(|j| {
                        j.runner_id
                            .as_deref()
                            .is_some_and(|r| r.starts_with(&format!("{pid}-")))
                    })
                    .map(|j| j.id)
                    .collect();
                if let [alone] = running.as_slice() {
                    *alone_kills.entry(alone.clone()).or_default() += 1;
                }
                continue;
            }
        }
        let status = child.wait().expect("wait");
        assert!(status.success(), "jobs run failed: {status}");
        let left = states(&store);
        if left.iter().all(|s| s.is_finished()) {
            break;
        }
    }

    let jobs = store.list(&[], 100).expect("list");
    assert_eq!(jobs.len(), jobs_n);
    let song_pcm = beatsync_engine::decode_audio(&song, CHECK_RATE)
        .expect("decode song")
        .samples;
    let mut outputs = Vec::new();
    let mut interruptions = 0;
    let mut crashed = Vec::new();
    for j in &jobs {
        let charged = alone_kills.get(&j.id).copied().unwrap_or(0);
        assert_eq!(
            j.crashes, charged,
            "job {}: crashes charged only when it ran alone",
            j.id
        );
        interruptions += j.interruptions;
        if j.state == JobState::Failed {
            let code = j.error.as_ref().map(|e| e.code.as_str());
            assert_eq!(
                (code, j.crashes),
                (Some("crashed"), 3),
                "job {} ended {:?}",
                j.id,
                j.error
            );
            crashed.push(j);
            continue;
        }
        assert_eq!(
            j.state,
            JobState::Done,
            "job {} ended {:?}: {:?}",
            j.id,
            j.state,
            j.error
        );
        assert!(j.attempts >= 1 && j.attempts <= j.max_attempts);
        let output = j.output_path.clone().expect("output path");
        // The clean song is placed where it is heard in the recording: aligning
        // the output against the song finds the recording's offset (minus the trim).
        let delay = classes
            .iter()
            .find(|(c, _)| *c == j.recording.path)
            .map(|(_, d)| *d)
            .expect("known class");
        let report = j.report.clone().expect("report");
        let trim_start = report["trim"]["start_s"].as_f64().unwrap_or(0.0);
        assert_song_placed(&output, &song_pcm, delay - trim_start);
        outputs.push(output);
    }
    let done = outputs.len();
    outputs.sort();
    outputs.dedup();
    assert_eq!(outputs.len(), done, "one distinct output per job");
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .expect("out dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // A job set aside as crashed may have got as far as its sealed rename.
    let crashed_files = crashed
        .iter()
        .filter(|j| {
            let (Some(p), Some(seal)) = (&j.output_path, &j.output_seal) else {
                return false;
            };
            seal.matches(p)
        })
        .count();
    assert_eq!(
        files.len(),
        done + crashed_files,
        "no duplicates, no partial files: {files:?}"
    );
    assert!(
        files
            .iter()
            .all(|f| f.ends_with("_beatsync.mp4") && !f.contains(" (2)")),
        "{files:?}"
    );
    assert!(
        kills >= kills_n / 2,
        "the schedule killed only {kills} runs"
    );
    assert!(
        interruptions >= 1,
        "kills hit running work ({interruptions} interruptions)"
    );
    let attempts: u32 = jobs.iter().map(|j| j.attempts).sum();
    let alone: u32 = alone_kills.values().sum();
    eprintln!(
        "crash-test: jobs={jobs_n} kills={kills} kills_with_one_job_running={alone} runs={runs} resumed_interruptions={interruptions} done={done} crashed={} lost=0 corrupt=0 duplicates=0 partial=0 export_attempts={attempts} total_s={:.1}",
        crashed.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Numbers are checked where they enter: `--lead-in inf`, NaN or negative
/// is refused with `invalid_argument` before anything is read or stored.
#[test]
fn jobs_add_refuses_bad_numbers() {
    let d = tmp();
    let data = d.path().join("data");
    for bad in ["inf", "NaN", "-1", "1e9"] {
        let o = beatsync(&data)
            .args([
                "jobs",
                "add",
                "--dance",
                "/nonexistent/class.mp4",
                "--bgm",
                "/nonexistent/song.m4a",
            ])
            .args(["--out", path_str(d.path()), &format!("--lead-in={bad}")])
            .output()
            .expect("jobs add");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "--lead-in {bad} accepted");
        assert!(
            err.starts_with("invalid_argument:") && err.contains("--lead-in"),
            "--lead-in {bad}: {err}"
        );
    }
    let (store, _) = Store::open(&data).expect("store");
    assert!(
        store.list(&[], 10).expect("list").is_empty(),
        "nothing stored"
    );
}

/// A file name that is not UTF-8 goes through the whole job system: `jobs
/// add` (the store), `jobs run` (EngineWork: analysis, export), a new
/// process reading the job back. Files under the lossy names
/// (`class-\u{FFFD}.mp4`, …) hold text, so a job that lost the exact path
/// would read them and fail.
#[cfg(unix)]
#[test]
fn a_job_for_files_named_with_byte_0xff_is_done() {
    use std::os::unix::ffi::OsStrExt;
    let bytes = |p: &Path| p.as_os_str().as_bytes().to_vec();
    let named = |dir: &Path, name: &[u8]| dir.join(std::ffi::OsStr::from_bytes(name));
    let d = tmp();
    let media = named(d.path(), b"media-\xff");
    let out = named(d.path(), b"out-\xfe");
    let data = d.path().join("data");
    std::fs::create_dir_all(&media).expect("mkdir");
    let made_song = make_song(d.path());
    let delay = 1.5;
    let made_class = make_class(d.path(), &made_song, 0, delay);
    let class = named(&media, b"class-\xff.mp4");
    let song = named(&media, b"song-\xfe\x80.m4a");
    std::fs::rename(&made_class, &class).expect("rename class");
    std::fs::rename(&made_song, &song).expect("rename song");
    for lossy in ["class-\u{FFFD}.mp4", "song-\u{FFFD}\u{FFFD}.m4a"] {
        std::fs::write(media.join(lossy), "not the file the job names").expect("decoy");
    }

    add_job(&data, &class, &song, &out);
    let o = beatsync(&data)
        .args(["jobs", "run", "--until-empty"])
        .output()
        .expect("jobs run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let (store, _) = Store::open(&data).expect("store");
    let jobs = store.list(&[], 10).expect("list");
    let [j] = jobs.as_slice() else {
        panic!("one job: {jobs:?}")
    };
    assert_eq!(j.state, JobState::Done, "{:?}", j.error);
    assert_eq!(
        bytes(&j.recording.path),
        bytes(&class.canonicalize().expect("c"))
    );
    assert_eq!(bytes(&j.song.path), bytes(&song.canonicalize().expect("c")));
    let output = j.output_path.clone().expect("output path");
    let out_dir = out.canonicalize().expect("out");
    assert_eq!(bytes(output.parent().expect("dir")), bytes(&out_dir));
    assert_eq!(
        output.file_name().and_then(|n| n.to_str()),
        Some("class-\u{FFFD}_beatsync.mp4"),
        "the output's own name is UTF-8"
    );
    let song_pcm = beatsync_engine::decode_audio(&song, CHECK_RATE)
        .expect("decode song")
        .samples;
    let report = j.report.clone().expect("report");
    let expected = delay - report["trim"]["start_s"].as_f64().unwrap_or(0.0);
    assert_song_placed(&output, &song_pcm, expected);

    // `jobs show` answers JSON with the exact path (bytes where not UTF-8).
    let o = beatsync(&data)
        .args(["jobs", "show", &j.id])
        .output()
        .expect("jobs show");
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    // The JSON keeps the recording's key `dance` (what scripts read).
    let recording: Vec<u8> = serde_json::from_value(shown["dance"]["path"]["os"].clone())
        .expect("the recording's path as bytes");
    assert_eq!(recording, bytes(&j.recording.path));
}

//! Fixture helpers shared by the engine's integration tests: small media
//! files generated at test time with the `ffmpeg` command line.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `ffmpeg -nostdin -v error -y ARGS…`, panicking with its stderr on failure
/// (a fixture that cannot be made is a broken test environment).
pub fn ffmpeg(args: &[&str]) {
    ffmpeg_output(args);
}

/// [`ffmpeg`], returning what it wrote on its standard output (e.g. raw
/// samples with `-f f32le -`).
pub fn ffmpeg_output(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("the ffmpeg command line is needed to generate test fixtures");
    assert!(
        out.status.success(),
        "ffmpeg {:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// H.264 as the fixtures encode it: fast, 8-bit 4:2:0.
pub const H264: [&str; 6] = [
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-pix_fmt",
    "yuv420p",
];

/// One ffmpeg command that makes a fixture: its inputs, then output
/// options, then the file. Output options may come in any order.
#[derive(Default)]
pub struct Fixture {
    args: Vec<String>,
}

impl Fixture {
    pub fn new() -> Self {
        Self::default()
    }

    /// A generated input (`testsrc2=…`, `sine=…`, `anoisesrc=…`).
    pub fn lavfi(self, graph: &str) -> Self {
        self.args(&["-f", "lavfi", "-i", graph])
    }

    /// A file as the next input.
    pub fn input(self, path: &Path) -> Self {
        self.args(&["-i", path_str(path)])
    }

    /// Further arguments, as given.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// [`H264`] with a keyframe every `gop` frames.
    pub fn h264(self, gop: u32) -> Self {
        self.args(&H264).args(&["-g", &gop.to_string()])
    }

    /// AAC at `bitrate` (e.g. `64k`).
    pub fn aac(self, bitrate: &str) -> Self {
        self.args(&["-c:a", "aac", "-b:a", bitrate])
    }

    /// Runs ffmpeg, writing `path`.
    pub fn write(self, path: &Path) -> PathBuf {
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        args.push(path_str(path));
        ffmpeg(&args);
        path.to_path_buf()
    }
}

/// A song that never repeats (so correlation has one sharp peak): stereo
/// pink noise at 44.1 kHz, `dur` seconds fading out over the last `fade`,
/// then `silence` seconds of silence; AAC at 160 kbit/s.
pub fn pink_song(dur: f64, fade: f64, silence: f64, seed: u32) -> Fixture {
    let pad = if silence > 0.0 {
        format!(",apad=pad_dur={silence}")
    } else {
        String::new()
    };
    Fixture::new()
        .lavfi(&format!(
            "anoisesrc=d={dur}:c=pink:r=44100:a=0.5:seed={seed},afade=t=out:st={}:d={fade}{pad}",
            dur - fade
        ))
        .args(&["-ac", "2"])
        .aac("160k")
}

/// The first audio stream of `path`, decoded by the ffmpeg command line to
/// mono f32 at `rate` Hz.
pub fn mono_samples(path: &Path, rate: u32) -> Vec<f32> {
    let raw = ffmpeg_output(&[
        "-i",
        path_str(path),
        "-map",
        "0:a:0",
        "-ac",
        "1",
        "-ar",
        &rate.to_string(),
        "-f",
        "f32le",
        "-",
    ]);
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// A short click train source: a click of 8 samples at `at_sample` (at `rate`), else silence.
pub fn click_expr(at_sample: u64) -> String {
    format!(
        "if(between(n\\,{}\\,{})\\,0.9\\,0)",
        at_sample,
        at_sample + 7
    )
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("beatsync-test-")
        .tempdir()
        .expect("temp dir")
}

/// The names in `dir`, sorted (empty when it cannot be read).
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn join(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Lag (seconds) of `song` against `out` around the expected position: the
/// output window of `win` samples centred at output sample `out_c` is
/// compared with the song centred at sample `song_c` (fractional), within
/// ±`search` samples (at `rate` Hz); parabolic peak interpolation. Positive: the output
/// holds later song content than planned (the song runs early).
pub fn measured_lag_s(
    out: &[f32],
    out_c: usize,
    song: &[f32],
    song_c: f64,
    win: usize,
    search: i64,
    rate: u32,
) -> f64 {
    let o0 = out_c - win / 2;
    let w = &out[o0..o0 + win];
    let base = song_c.round() as i64 - (win / 2) as i64;
    let mut scores = Vec::new();
    for lag in -search..=search {
        let st = base + lag;
        assert!(
            st >= 0 && (st as usize + win) <= song.len(),
            "window outside the song"
        );
        let seg = &song[st as usize..st as usize + win];
        let (mut xy, mut yy) = (0.0f64, 0.0f64);
        for (a, b) in w.iter().zip(seg) {
            xy += f64::from(*a) * f64::from(*b);
            yy += f64::from(*b) * f64::from(*b);
        }
        scores.push(xy / yy.max(1e-12).sqrt());
    }
    let (imax, _) =
        scores.iter().enumerate().fold(
            (0, f64::MIN),
            |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
        );
    let frac = if imax > 0 && imax + 1 < scores.len() {
        let (a, b, c) = (scores[imax - 1], scores[imax], scores[imax + 1]);
        let d = a - 2.0 * b + c;
        if d.abs() > 1e-12 {
            0.5 * (a - c) / d
        } else {
            0.0
        }
    } else {
        0.0
    };
    let lag = (imax as i64 - search) as f64 + frac;
    // Song position actually found at the window's centre, minus the planned one.
    ((base as f64 + lag + (win / 2) as f64) - song_c) / f64::from(rate)
}

/// The first video stream of `path` decoded to 8-bit gray pixels, every
/// frame one after the other: `ffmpeg INPUT_OPTS -i path -map 0:v:0
/// OUTPUT_OPTS -f rawvideo -pix_fmt gray -`.
pub fn gray_pixels(path: &Path, input_opts: &[&str], output_opts: &[&str]) -> Vec<u8> {
    let mut args: Vec<&str> = input_opts.to_vec();
    args.extend(["-i", path_str(path), "-map", "0:v:0"]);
    args.extend(output_opts);
    args.extend(["-f", "rawvideo", "-pix_fmt", "gray", "-"]);
    ffmpeg_output(&args)
}

/// Frame `n` (presentation order) of a video as 8-bit gray pixels.
pub fn gray_frame(path: &Path, n: usize) -> Vec<u8> {
    let sel = format!("select=eq(n\\,{n})");
    gray_pixels(path, &[], &["-vf", &sel, "-frames:v", "1"])
}

/// Peak signal-to-noise ratio of two 8-bit pictures of the same size, dB
/// (identical pictures: about 138 dB, not infinity).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
}

/// A test that cannot run on this machine says why. Under `CI=true` that
/// fails the test: in CI a skip must never pass silently.
pub fn skip(reason: &str) {
    eprintln!("SKIPPED: {reason}");
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "skipped under CI=true: {reason}"
    );
}

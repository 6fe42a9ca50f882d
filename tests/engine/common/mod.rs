//! Fixture helpers shared by the engine's integration tests: small media
//! files generated at test time with the `ffmpeg` command line.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `ffmpeg -nostdin -v error -y ARGS…`, panicking with its stderr on failure
/// (a fixture that cannot be made is a broken test environment).
pub fn ffmpeg(args: &[&str]) {
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

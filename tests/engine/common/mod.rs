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

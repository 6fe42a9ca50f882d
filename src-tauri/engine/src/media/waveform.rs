//! Waveform peaks for display: min/max per bin, computed while decoding so
//! memory holds only the peaks, whatever the file's length.

use crate::cancel::CancelToken;
use crate::error::Result;
use crate::media::decode::AudioChunks;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Decode rate for peaks: enough for a faithful envelope, cheap to produce.
const PEAK_RATE: u32 = 8000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Waveform {
    pub path: PathBuf,
    pub peaks_per_s: f64,
    pub duration_s: f64,
    /// `[min0, max0, min1, max1, …]` in -1..1.
    pub peaks: Vec<f32>,
}

/// Min/max of each `bin`-sample block of `samples` (the last block may be short).
pub fn peaks_of(samples: &[f32], bin: usize) -> Vec<f32> {
    let bin = bin.max(1);
    let mut out = Vec::with_capacity(2 * samples.len().div_ceil(bin));
    for block in samples.chunks(bin) {
        let (lo, hi) = block
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        out.push(lo.clamp(-1.0, 1.0));
        out.push(hi.clamp(-1.0, 1.0));
    }
    out
}

/// Peaks of the first audio stream, `peaks_per_s` bins per second (1..=400).
pub fn waveform(path: &Path, peaks_per_s: f64, cancel: &CancelToken) -> Result<Waveform> {
    let pps = peaks_per_s.clamp(1.0, 400.0);
    let bin = (f64::from(PEAK_RATE) / pps).round().max(1.0) as usize;
    let mut chunks = AudioChunks::open(path, PEAK_RATE)?;
    let mut pending: Vec<f32> = Vec::with_capacity(2 * bin);
    let mut peaks = Vec::new();
    let mut total = 0usize;
    while let Some(c) = chunks.next_chunk()? {
        cancel.check()?;
        total += c.len();
        pending.extend_from_slice(&c);
        let whole = pending.len() / bin * bin;
        peaks.extend(peaks_of(&pending[..whole], bin));
        pending.drain(..whole);
    }
    peaks.extend(peaks_of(&pending, bin));
    Ok(Waveform {
        path: path.to_path_buf(),
        peaks_per_s: f64::from(PEAK_RATE) / bin as f64,
        duration_s: total as f64 / f64::from(PEAK_RATE),
        peaks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_per_bin() {
        let x = [0.1, -0.5, 0.3, 0.9, -0.2, 0.0, 2.0];
        assert_eq!(peaks_of(&x, 3), vec![-0.5, 0.3, -0.2, 0.9, 1.0, 1.0]);
        assert!(peaks_of(&[], 4).is_empty());
    }
}

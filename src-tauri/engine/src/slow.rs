//! Slow audition: mono audio played slower with its pitch kept, through the
//! same time stretcher the export uses for a speed change with the pitch kept
//! (libavfilter's rubberband or atempo, loaded on first use).

use crate::error::{EngineError, Result};
use crate::export::audio::stretch::Stretcher;
use ffmpeg_next as ffmpeg;
use std::path::Path;

/// Slowest and fastest speeds accepted (the audition offers 0.5 and 0.75).
pub const MIN_SPEED: f64 = 0.25;
pub const MAX_SPEED: f64 = 1.0;

/// Samples fed to the stretcher at a time.
const CHUNK: usize = 4096;

/// `samples` (mono, `sample_rate` Hz) as heard at `speed` (0.25..=1; 0.5:
/// half as fast, twice as long), the pitch unchanged.
pub fn slowed(samples: &[f32], sample_rate: u32, speed: f64) -> Result<Vec<f32>> {
    if !(speed.is_finite() && (MIN_SPEED..=MAX_SPEED).contains(&speed)) {
        return Err(EngineError::InvalidRequest(format!(
            "speed {speed} is outside {MIN_SPEED}..={MAX_SPEED}"
        )));
    }
    crate::init();
    let here = Path::new("the preview");
    let layout = ffmpeg::ChannelLayout::MONO;
    let mut stretcher = Stretcher::new(1.0 / speed, sample_rate, layout.bits(), here)?;
    let mut out = Vec::with_capacity((samples.len() as f64 / speed) as usize + CHUNK);
    let mut frame = ffmpeg::frame::Audio::empty();
    let mut take = |s: &mut Stretcher, out: &mut Vec<f32>| {
        while s.pull(&mut frame) {
            out.extend_from_slice(&frame.plane::<f32>(0)[..frame.samples()]);
        }
    };
    for (i, chunk) in samples.chunks(CHUNK).enumerate() {
        let planar = ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar);
        let mut f = ffmpeg::frame::Audio::new(planar, chunk.len(), layout);
        f.set_rate(sample_rate);
        f.set_pts(Some((i * CHUNK) as i64));
        f.plane_mut::<f32>(0)[..chunk.len()].copy_from_slice(chunk);
        stretcher.push(Some(&f), here)?;
        take(&mut stretcher, &mut out);
    }
    stretcher.push(None, here)?;
    take(&mut stretcher, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upward zero crossings per second.
    fn pitch(x: &[f32], sr: f64) -> f64 {
        let ups = x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        ups as f64 * sr / x.len() as f64
    }

    #[test]
    fn half_speed_lasts_twice_as_long_at_the_same_pitch() {
        let sr = 22_050u32;
        let tone: Vec<f32> = (0..sr as usize * 3)
            .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / sr as f32).sin())
            .collect();
        for speed in [0.5, 0.75] {
            let out = slowed(&tone, sr, speed).expect("slowed");
            let want = tone.len() as f64 / speed;
            assert!(
                (out.len() as f64 - want).abs() < 0.02 * want,
                "{speed}x: {} samples, about {want:.0} expected",
                out.len()
            );
            // The middle, away from the stretcher's ramps at the ends.
            let mid = &out[out.len() / 4..3 * out.len() / 4];
            let hz = pitch(mid, f64::from(sr));
            assert!((hz - 440.0).abs() < 5.0, "{speed}x: {hz:.1} Hz");
        }
        assert!(slowed(&tone, sr, 0.1).is_err());
        assert!(slowed(&tone, sr, f64::NAN).is_err());
    }
}

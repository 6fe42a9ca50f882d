//! Stretching the song's time by the placement's rate: samples pass through,
//! are resampled with exact compensation, or are time-stretched keeping the
//! pitch.

use super::stretch::Stretcher;
use super::Retime;
use crate::error::{EngineError, Result};
use crate::media::ffi::{SampleSpec, Swr};
use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi::AVSampleFormat;
use std::path::Path;

/// Planar f32 samples, one Vec per channel.
#[derive(Default)]
pub(super) struct Planar(pub Vec<Vec<f32>>);

impl Planar {
    pub fn new(channels: usize) -> Self {
        Planar(vec![Vec::new(); channels])
    }
    pub fn len(&self) -> usize {
        self.0.first().map_or(0, Vec::len)
    }
    pub fn drop_front(&mut self, n: usize) {
        for c in &mut self.0 {
            let n = n.min(c.len());
            c.drain(..n);
        }
    }
    pub fn push_silence(&mut self, n: usize) {
        for c in &mut self.0 {
            c.resize(c.len() + n, 0.0);
        }
    }
    /// Moves the first `n` samples (all there are) to the end of `to`.
    pub fn move_front_to(&mut self, n: usize, to: &mut Planar) {
        for (a, b) in self.0.iter_mut().zip(to.0.iter_mut()) {
            let n = n.min(a.len());
            b.extend(a.drain(..n));
        }
    }
    pub fn append(&mut self, other: &mut Planar) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter_mut()) {
            a.append(b);
        }
    }
}

/// Stretches time by `rate` (more samples when `rate > 1`).
pub(super) enum Retimer {
    None,
    Resample(Swr),
    Tempo {
        stretcher: Stretcher,
        layout: ffmpeg::ChannelLayout,
        rate: u32,
        pts: i64,
    },
}

impl Retimer {
    pub fn new(
        kind: Retime,
        rate: f64,
        layout: ffmpeg::ChannelLayout,
        sr: u32,
        path: &Path,
    ) -> Result<Self> {
        match kind {
            // The picture follows the song: the song is not re-timed.
            Retime::None | Retime::Picture => Ok(Retimer::None),
            Retime::Resample => {
                let spec = SampleSpec {
                    layout,
                    format: AVSampleFormat::AV_SAMPLE_FMT_FLTP,
                    rate: sr,
                };
                let resampler_error = |e| EngineError::media(path, format!("resampler: {e}"));
                let mut swr = Swr::new(spec, spec).map_err(resampler_error)?;
                // Over `distance` output samples, add `delta`: each output
                // sample then advances the input by exactly 1/rate (to 1e-9).
                let distance: i32 = 1 << 30;
                let delta = (f64::from(distance) * (1.0 - 1.0 / rate)).round() as i32;
                swr.compensate(delta, distance).map_err(resampler_error)?;
                Ok(Retimer::Resample(swr))
            }
            Retime::Tempo => Ok(Retimer::Tempo {
                stretcher: Stretcher::new(rate, sr, layout.bits(), path)?,
                layout,
                rate: sr,
                pts: 0,
            }),
        }
    }

    /// Feeds all of `input` (emptied) and appends what comes out to `out`;
    /// `input == None` flushes.
    pub fn process(
        &mut self,
        input: Option<&mut Planar>,
        out: &mut Planar,
        path: &Path,
    ) -> Result<()> {
        match self {
            Retimer::None => {
                if let Some(i) = input {
                    out.append(i);
                }
                Ok(())
            }
            Retimer::Resample(swr) => {
                match input {
                    Some(i) => {
                        let n = i.len();
                        if n > 0 {
                            let planes: Vec<&[f32]> = i.0.iter().map(|c| &c[..]).collect();
                            swr.convert_planes(&planes, &mut out.0)
                                .map_err(|e| EngineError::media(path, e))?;
                        }
                        i.drop_front(n);
                    }
                    None => swr
                        .flush(&mut out.0)
                        .map_err(|e| EngineError::media(path, e))?,
                }
                Ok(())
            }
            Retimer::Tempo {
                stretcher,
                layout,
                rate,
                pts,
            } => {
                if let Some(i) = input {
                    let n = i.len();
                    if n > 0 {
                        let mut frame = ffmpeg::frame::Audio::new(
                            ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar),
                            n,
                            *layout,
                        );
                        frame.set_rate(*rate);
                        frame.set_pts(Some(*pts));
                        *pts += n as i64;
                        for (c, samples) in i.0.iter().enumerate() {
                            frame.plane_mut::<f32>(c)[..n].copy_from_slice(&samples[..n]);
                        }
                        stretcher.push(Some(&frame), path)?;
                    }
                    i.drop_front(n);
                } else {
                    stretcher.push(None, path)?;
                }
                let mut frame = ffmpeg::frame::Audio::empty();
                while stretcher.pull(&mut frame) {
                    let n = frame.samples();
                    for (c, o) in out.0.iter_mut().enumerate() {
                        o.extend_from_slice(&frame.plane::<f32>(c)[..n]);
                    }
                }
                Ok(())
            }
        }
    }
}

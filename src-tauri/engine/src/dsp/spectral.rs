//! `spectral`: spectral-shape similarity along a candidate line.
//!
//! Pop and recording songs reuse the same drum samples in every bar, so rhythm
//! (onsets) and even waveform coherence of drum hits match at many wrong
//! places. What differs between sections is the *spectral shape* over time
//! (bass line, chords, instrumentation). Log band energies survive reverb and
//! phone colouration well once each band's slow trend (EQ, AGC) and each
//! frame's overall level are removed, so summing frame-by-frame cosine
//! similarity over the whole overlap tells the right section from a look-alike.

use crate::dsp::onset::moving_mean;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub(crate) struct SpectralShape {
    pub frames: usize,
    pub n_bands: usize,
    /// Unit-norm shape vectors, frame-major (all zero for a silent frame).
    pub values: Vec<f32>,
}

/// Normalises log band energies (`n_bands` per frame): each band minus its
/// moving mean over `±trend_radius` frames, then each frame minus its mean
/// across bands, scaled to unit norm.
#[cfg(test)]
pub(crate) fn spectral_shape(
    log_bands: &[f32],
    n_bands: usize,
    trend_radius: usize,
) -> SpectralShape {
    spectral_shape_of(log_bands.to_vec(), n_bands, trend_radius)
}

/// [`spectral_shape`] made in the energies' own buffer (on a long recording
/// it is tens of megabytes: no second copy). Each band is read whole before
/// it is written, so the values are those of a separate output.
pub(crate) fn spectral_shape_of(
    mut values: Vec<f32>,
    n_bands: usize,
    trend_radius: usize,
) -> SpectralShape {
    if n_bands == 0 {
        return SpectralShape {
            frames: 0,
            n_bands: 0,
            values: Vec::new(),
        };
    }
    let frames = values.len() / n_bands;
    values.truncate(frames * n_bands);
    let mut column = vec![0f32; frames];
    for b in 0..n_bands {
        for (f, c) in column.iter_mut().enumerate() {
            *c = values[f * n_bands + b];
        }
        let trend = moving_mean(&column, trend_radius);
        for f in 0..frames {
            values[f * n_bands + b] = column[f] - trend[f];
        }
    }
    for frame in values.chunks_mut(n_bands) {
        let mean = frame.iter().sum::<f32>() / n_bands as f32;
        frame.iter_mut().for_each(|v| *v -= mean);
        let norm = frame.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 1e-6 {
            frame.iter_mut().for_each(|v| *v /= norm);
        } else {
            frame.iter_mut().for_each(|v| *v = 0.0);
        }
    }
    SpectralShape {
        frames,
        n_bands,
        values,
    }
}

/// Sum of per-frame cosine similarity between recording frames and the song
/// frames the line `song_t = sigma + (dance_t - t_ref) / rate` maps them to
/// (every `step`-th recording frame; song frames interpolated linearly).
/// Frames mapped outside the song contribute nothing.
pub(crate) fn line_similarity(
    recording: &SpectralShape,
    song: &SpectralShape,
    frame_rate: f64,
    t_ref: f64,
    sigma: f64,
    rate: f64,
    step: usize,
) -> f64 {
    let nb = recording.n_bands;
    if nb == 0 || song.n_bands != nb || song.frames < 2 {
        return 0.0;
    }
    let mut total = 0f64;
    for t in (0..recording.frames).step_by(step.max(1)) {
        let song_t = sigma + (t as f64 / frame_rate - t_ref) / rate;
        if let Some(dot) = frame_similarity(recording, t, song, song_t * frame_rate) {
            total += f64::from(dot);
        }
    }
    total
}

/// Shape similarity of recording frame `t` with the song at fractional frame
/// `x` (linear interpolation between song frames); `None` outside the song.
/// Both shapes must have the same number of bands.
pub(crate) fn frame_similarity(
    recording: &SpectralShape,
    t: usize,
    song: &SpectralShape,
    x: f64,
) -> Option<f32> {
    let nb = recording.n_bands;
    if x < 0.0 || x >= song.frames.saturating_sub(1) as f64 || t >= recording.frames {
        return None;
    }
    let j = x.floor() as usize;
    let f = (x - j as f64) as f32;
    let d = &recording.values[t * nb..(t + 1) * nb];
    let s0 = &song.values[j * nb..(j + 1) * nb];
    let s1 = &song.values[(j + 1) * nb..(j + 2) * nb];
    let mut dot = 0f32;
    for k in 0..nb {
        dot += d[k] * (s0[k] * (1.0 - f) + s1[k] * f);
    }
    Some(dot)
}

/// Whole-overlap shape similarity for every placement at one rate.
#[derive(Debug, Clone)]
pub(crate) struct ShapeCorrelation {
    /// `values[i]` is the sum of per-frame cosine similarities when recording
    /// frame 0 sits at song frame `i as i64 + first_start`.
    pub values: Vec<f32>,
    pub first_start: i64,
    pub rate: f64,
    /// Median and robust spread of `values`: the level of unrelated placements.
    pub centre: f64,
    pub spread: f64,
}

/// The song side of [`shape_correlation`], transformed once, or (against a
/// long recording, when its band spectra would take more than
/// [`KEPT_SPECTRA_MAX_BYTES`]) transformed again in each correlation.
pub(crate) struct SongShapeSpectra {
    fft_len: usize,
    song_frames: usize,
    n_bands: usize,
    song: SongSide,
    /// The plans of every correlation against this song (planning computes
    /// the twiddles: as costly as a transform, once per call otherwise).
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

enum SongSide {
    /// Each band's spectrum.
    Spectra(Vec<Vec<Complex<f32>>>),
    /// The song's shape values (frame-major), each band transformed when it
    /// is needed: the same spectra, made by the same code, at the cost of a
    /// transform per band and correlation.
    Shape(Vec<f32>),
}

/// Largest band spectra kept between correlations (an hour's take makes them
/// 50 MB: 24 bands of 2^19 points, most of it the recording's length; the
/// long-take target is peak memory flat in the take's length).
const KEPT_SPECTRA_MAX_BYTES: usize = 16 << 20;

impl SongShapeSpectra {
    /// `max_needle` is the longest re-timed recording (frames) to be correlated.
    pub fn new(song: &SpectralShape, max_needle: usize) -> Self {
        Self::keeping_up_to(song, max_needle, KEPT_SPECTRA_MAX_BYTES)
    }

    /// [`Self::new`], keeping the band spectra if they fit in `kept_max_bytes`.
    fn keeping_up_to(song: &SpectralShape, max_needle: usize, kept_max_bytes: usize) -> Self {
        let fft_len = (song.frames + max_needle + 1).next_power_of_two();
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(fft_len);
        let spectra_bytes = song.n_bands * (fft_len / 2 + 1) * std::mem::size_of::<Complex<f32>>();
        let side = if spectra_bytes > kept_max_bytes {
            SongSide::Shape(song.values.clone())
        } else {
            let mut input = fft.make_input_vec();
            let mut scratch = fft.make_scratch_vec();
            let spectra = (0..song.n_bands)
                .map(|b| {
                    let mut out = fft.make_output_vec();
                    let shape = (&song.values[..], song.n_bands, song.frames);
                    song_band_spectrum(&*fft, shape, b, &mut input, &mut out, &mut scratch);
                    out
                })
                .collect();
            SongSide::Spectra(spectra)
        };
        Self {
            fft_len,
            song_frames: song.frames,
            n_bands: song.n_bands,
            song: side,
            forward: fft,
            inverse: planner.plan_fft_inverse(fft_len),
        }
    }
}

/// Band `b` of the song's shape (`values`, `n_bands` per frame, `frames`
/// frames), zero-padded to the plan's length, transformed into `out`.
fn song_band_spectrum(
    fft: &dyn RealToComplex<f32>,
    (values, n_bands, frames): (&[f32], usize, usize),
    b: usize,
    input: &mut [f32],
    out: &mut [Complex<f32>],
    scratch: &mut [Complex<f32>],
) {
    input.iter_mut().for_each(|v| *v = 0.0);
    for (f, v) in input.iter_mut().take(frames).enumerate() {
        *v = values[f * n_bands + b];
    }
    // Lengths come from the plan: cannot fail.
    let _ = fft.process_with_scratch(input, out, scratch);
}

/// A transform's input, output and scratch buffers.
type FftBuffers = (Vec<f32>, Vec<Complex<f32>>, Vec<Complex<f32>>);

/// The song's band spectra one band at a time: the kept ones, or each made
/// again in its own buffers.
struct SongBands<'a> {
    song: &'a SongShapeSpectra,
    /// (input, output, scratch) when the spectra are made here
    buffers: Option<FftBuffers>,
}

impl<'a> SongBands<'a> {
    fn new(song: &'a SongShapeSpectra) -> Self {
        let f = &song.forward;
        let buffers = match song.song {
            SongSide::Spectra(_) => None,
            SongSide::Shape(_) => Some((
                f.make_input_vec(),
                f.make_output_vec(),
                f.make_scratch_vec(),
            )),
        };
        Self { song, buffers }
    }

    fn band(&mut self, b: usize) -> &[Complex<f32>] {
        let song = self.song;
        match (&song.song, &mut self.buffers) {
            (SongSide::Spectra(spectra), _) => &spectra[b],
            (SongSide::Shape(values), Some((input, out, scratch))) => {
                let shape = (&values[..], song.n_bands, song.song_frames);
                song_band_spectrum(&*song.forward, shape, b, input, out, scratch);
                out
            }
            // (made with its buffers in `new`)
            (SongSide::Shape(_), None) => &[],
        }
    }
}

/// Shape similarity of the whole recording against the song for every
/// placement at `rate` (recording seconds per song second), by FFT: the recording's
/// band sequences are re-timed onto the song's time axis and their
/// cross-correlations with the song's summed over bands.
pub(crate) fn shape_correlation(
    recording: &SpectralShape,
    song: &SongShapeSpectra,
    rate: f64,
) -> Option<ShapeCorrelation> {
    let nb = recording.n_bands;
    if nb == 0 || nb != song.n_bands || recording.frames < 2 {
        return None;
    }
    let needle_len = (((recording.frames - 1) as f64) / rate).floor() as usize + 1;
    if song.song_frames + needle_len + 1 > song.fft_len {
        return None;
    }
    let n = song.fft_len;
    let (forward, inverse) = (&song.forward, &song.inverse);
    let mut input = forward.make_input_vec();
    let mut spec = forward.make_output_vec();
    let mut acc = vec![Complex::new(0f32, 0f32); spec.len()];
    // one scratch for both transforms (each reads and writes it only during its own run)
    let mut scratch =
        vec![Complex::new(0f32, 0f32); forward.get_scratch_len().max(inverse.get_scratch_len())];
    let mut song_bands = SongBands::new(song);
    for b in 0..nb {
        input.iter_mut().for_each(|v| *v = 0.0);
        for (u, v) in input.iter_mut().take(needle_len).enumerate() {
            let x = u as f64 * rate;
            let i = x.floor() as usize;
            let f = (x - i as f64) as f32;
            let a = recording.values[i * nb + b];
            let c = if i + 1 < recording.frames {
                recording.values[(i + 1) * nb + b]
            } else {
                a
            };
            *v = a * (1.0 - f) + c * f;
        }
        forward
            .process_with_scratch(&mut input, &mut spec, &mut scratch)
            .ok()?;
        for ((a, s), d) in acc.iter_mut().zip(song_bands.band(b)).zip(&spec) {
            *a += s * d.conj();
        }
    }
    if let Some(first) = acc.first_mut() {
        first.im = 0.0;
    }
    if let Some(last) = acc.last_mut() {
        last.im = 0.0;
    }
    inverse
        .process_with_scratch(&mut acc, &mut input, &mut scratch)
        .ok()?;
    // the transform buffers go before the placements and their median are
    // made: on a long recording each is megabytes, and this runs on every thread
    drop((acc, spec, scratch, song_bands));
    let scale = 1.0 / n as f32;
    // starts from -(needle_len - 1) (wrapped to the end of the buffer) to song_frames - 1
    let first_start = -(needle_len as i64 - 1);
    let values: Vec<f32> = (first_start..song.song_frames as i64)
        .map(|k| input[k.rem_euclid(n as i64) as usize] * scale)
        .collect();
    drop(input);
    let (centre, spread) = median_spread(&values);
    Some(ShapeCorrelation {
        values,
        first_start,
        rate,
        centre,
        spread,
    })
}

fn median_spread(v: &[f32]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 1.0);
    }
    // the middle elements by selection: the same values a full sort puts there
    let mut s: Vec<f32> = v.to_vec();
    let mid = s.len() / 2;
    let median = f64::from(*s.select_nth_unstable_by(mid, f32::total_cmp).1);
    let mut dev: Vec<f64> = s.iter().map(|x| (f64::from(*x) - median).abs()).collect();
    let mad = *dev.select_nth_unstable_by(mid, f64::total_cmp).1;
    (median, (1.4826 * mad).max(1e-6))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random-ish band energies: frame f, band b.
    fn bands(frames: usize, nb: usize, seed: u32) -> Vec<f32> {
        crate::test_signal::unit_noise32(frames * nb, seed)
            .into_iter()
            .map(|v| v * 4.0)
            .collect()
    }

    #[test]
    fn right_line_beats_shifted_line() {
        let nb = 16;
        let song_bands = bands(3000, nb, 5);
        // the recording shows song frames 1000..2000 with gain and EQ changes
        let mut rec = Vec::new();
        for f in 1000..2000 {
            for b in 0..nb {
                rec.push(song_bands[f * nb + b] + 3.0 + 0.1 * b as f32);
            }
        }
        let song = spectral_shape(&song_bands, nb, 150);
        let dance = spectral_shape(&rec, nb, 150);
        let t_ref = 5.0; // dance frame 500 at 100 fps -> song frame 1500
        let right = line_similarity(&dance, &song, 100.0, t_ref, 15.0, 1.0, 1);
        let shifted = line_similarity(&dance, &song, 100.0, t_ref, 15.5, 1.0, 1);
        assert!(right > 800.0, "right {right}");
        assert!(shifted.abs() < 100.0, "shifted {shifted}");
    }

    #[test]
    fn correlation_peaks_at_the_placement() {
        let nb = 12;
        let song_bands = bands(4000, nb, 9);
        let rec: Vec<f32> = song_bands[1500 * nb..2300 * nb].to_vec();
        let song = spectral_shape(&song_bands, nb, 150);
        let dance = spectral_shape(&rec, nb, 150);
        let spectra = SongShapeSpectra::new(&song, 900);
        let c = shape_correlation(&dance, &spectra, 1.0).expect("fits");
        let (k, _) = c
            .values
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap_or((0, &0.0));
        assert_eq!(k as i64 + c.first_start, 1500);
        assert!((f64::from(c.values[k]) - c.centre) / c.spread > 20.0);
    }

    /// Song spectra made again in each correlation (a long recording) give
    /// the correlation of the kept ones, bit for bit.
    #[test]
    fn spectra_made_per_correlation_are_the_kept_ones() {
        let nb = 12;
        let song_bands = bands(4000, nb, 9);
        let rec: Vec<f32> = song_bands[1200 * nb..2900 * nb].to_vec();
        let song = spectral_shape(&song_bands, nb, 150);
        let dance = spectral_shape(&rec, nb, 150);
        let kept = SongShapeSpectra::keeping_up_to(&song, 1900, usize::MAX);
        let made = SongShapeSpectra::keeping_up_to(&song, 1900, 0);
        assert!(matches!(kept.song, SongSide::Spectra(_)));
        assert!(matches!(made.song, SongSide::Shape(_)));
        for rate in [1.0, 0.97, 1.031] {
            let a = shape_correlation(&dance, &kept, rate).expect("fits");
            let b = shape_correlation(&dance, &made, rate).expect("fits");
            let bits =
                |c: &ShapeCorrelation| c.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b));
            assert_eq!(
                (a.first_start, a.centre, a.spread),
                (b.first_start, b.centre, b.spread)
            );
        }
    }
}

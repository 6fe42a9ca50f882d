//! Spectral-shape evidence over placements: the scan of every placement
//! at a few rates, the polish of one placement, and the band smoothing
//! both recording and song go through first.

use crate::align::fine::Line;
use crate::align::pipeline::ShapeCandidate;
use crate::dsp::spectral::{line_similarity, shape_correlation, SongShapeSpectra};
use crate::dsp::xcorr::{parabolic_offset, top_peaks};

/// Log band energies are averaged over ±this many frames before the shape
/// comparison, so sustained content (bass, chords) outweighs drum hits.
pub(super) const SHAPE_SMOOTH_FRAMES: usize = 10;
/// Placements kept per scanned rate from the spectral-shape correlation.
pub(super) const SHAPE_PEAKS_PER_RATE: usize = 6;
/// Trend removed from each log band before shape comparison (frames, ±).
pub(super) const SHAPE_TREND_FRAMES: usize = 300;

/// Spectral-shape scan of every placement at each of `rates`: the
/// correlations (with their null centre and spread) and the best
/// `peaks_per_rate` placements of each rate as `(shape z, line)`.
pub(super) fn shape_scan(
    recording_shape: &crate::dsp::spectral::SpectralShape,
    song_spectra: &SongShapeSpectra,
    rates: &[f64],
    frame_rate: f64,
    t_ref: f64,
    peaks_per_rate: usize,
) -> (
    Vec<crate::dsp::spectral::ShapeCorrelation>,
    Vec<ShapeCandidate>,
) {
    let scans = crate::dsp::par::par_map(rates.len(), crate::dsp::par::threads(), |i| {
        shape_correlation(recording_shape, song_spectra, rates[i])
    });
    let mut correlations = Vec::new();
    let mut placements = Vec::new();
    for (&rate, sc) in rates.iter().zip(scans) {
        let Some(sc) = sc else {
            continue;
        };
        for (i, v) in top_peaks(&sc.values, peaks_per_rate, (0.3 * frame_rate) as usize) {
            let frac = if i > 0 && i + 1 < sc.values.len() {
                parabolic_offset(sc.values[i - 1], sc.values[i], sc.values[i + 1])
            } else {
                0.0
            };
            let start_frame = i as f64 + frac + sc.first_start as f64;
            placements.push(ShapeCandidate {
                shape_z: (f64::from(v) - sc.centre) / sc.spread,
                line: crate::align::coarse::CoarseCandidate {
                    sigma_s: start_frame / frame_rate + t_ref / rate,
                    rate,
                    score: 0.0,
                },
            });
        }
        correlations.push(sc);
    }
    (correlations, placements)
}

/// Spacing of the second pass's extra spectral-shape scan over rates...
pub(super) const DENSE_RATE_STEP: f64 = 0.005;
/// ...(steps either side of 1.0, up to the largest deviation searched)...
pub(super) const DENSE_RATE_STEPS: i64 = 11;
/// ...and how many of its best placements become hypotheses.
pub(super) const DENSE_RATE_HYPOTHESES: usize = 2;

/// Moves `line` to the best spectral-shape similarity within half a
/// [`DENSE_RATE_STEP`] of its rate and ±0.15 s of its position: to within
/// what the integration's slope search covers. A coarse grid on every
/// fourth recording frame, then a finer one around its best on every second.
pub(super) fn polish_by_shape(
    recording_shape: &crate::dsp::spectral::SpectralShape,
    song_shape: &crate::dsp::spectral::SpectralShape,
    frame_rate: f64,
    line: Line,
) -> Line {
    let grid = |centre: (f64, f64),
                rate_step: f64,
                rate_steps: i32,
                sigma_step: f64,
                sigma_steps: i32,
                frame_step: usize| {
        let score = |sigma: f64, rate: f64| {
            line_similarity(
                recording_shape,
                song_shape,
                frame_rate,
                line.t_ref,
                sigma,
                rate,
                frame_step,
            )
        };
        let mut best = (score(centre.0, centre.1), centre.0, centre.1);
        for ri in -rate_steps..=rate_steps {
            let rate = centre.1 + f64::from(ri) * rate_step;
            for si in -sigma_steps..=sigma_steps {
                let sigma = centre.0 + f64::from(si) * sigma_step;
                let v = score(sigma, rate);
                if v > best.0 {
                    best = (v, sigma, rate);
                }
            }
        }
        (best.1, best.2)
    };
    let coarse = grid(
        (line.sigma, line.rate),
        0.1 * DENSE_RATE_STEP,
        5,
        0.03,
        5,
        4,
    );
    let fine = grid(coarse, 0.025 * DENSE_RATE_STEP, 2, 0.01, 3, 2);
    Line {
        t_ref: line.t_ref,
        sigma: fine.0,
        rate: fine.1,
    }
}

/// Moving average of each band over `±radius` frames (0: unchanged), in the
/// energies' own buffer: each band is read whole before it is written.
pub(super) fn smooth_bands(mut log_bands: Vec<f32>, n_bands: usize, radius: usize) -> Vec<f32> {
    if radius == 0 || n_bands == 0 {
        return log_bands;
    }
    let frames = log_bands.len() / n_bands;
    let mut column = vec![0f32; frames];
    for b in 0..n_bands {
        for (f, c) in column.iter_mut().enumerate() {
            *c = log_bands[f * n_bands + b];
        }
        let m = crate::dsp::onset::moving_mean(&column, radius);
        for f in 0..frames {
            log_bands[f * n_bands + b] = m[f];
        }
    }
    log_bands
}

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

/// A placement's section against the song's other sections, by spectral
/// shape at the placement's rate (z-scores against every placement).
#[derive(Debug, Clone, Copy)]
pub(super) struct SectionLead {
    /// The best placement within ±[`SECTION_PEAK_S`] of the line.
    pub(super) own_z: f64,
    /// The best placement outside the line's lobe: beyond where the
    /// similarity first falls back to the level of unrelated placements
    /// (the scan's median), on either side.
    pub(super) other_z: f64,
}

/// Half-width (s) of the search for a placement's own shape peak.
pub(super) const SECTION_PEAK_S: f64 = 0.3;

/// How far `line`'s section leads every other section of the song on
/// spectral shape: one scan of every placement at the line's rate; the
/// line's own lobe is left out of the runner-up, so a section is compared
/// with other places in the song, never with its own shoulder. `None` when
/// the scan cannot be made.
pub(super) fn section_lead(
    recording_shape: &crate::dsp::spectral::SpectralShape,
    song_spectra: &SongShapeSpectra,
    frame_rate: f64,
    line: &Line,
) -> Option<SectionLead> {
    let sc = shape_correlation(recording_shape, song_spectra, line.rate)?;
    let n = sc.values.len();
    let at = (line.song_at(0.0) * frame_rate).round() as i64 - sc.first_start;
    let reach = (SECTION_PEAK_S * frame_rate).ceil() as i64;
    let lo = (at - reach).clamp(0, n as i64) as usize;
    let hi = (at + reach + 1).clamp(0, n as i64) as usize;
    let peak = (lo..hi).max_by(|&a, &b| sc.values[a].total_cmp(&sc.values[b]))?;
    let above = |i: usize| f64::from(sc.values[i]) > sc.centre;
    let mut first = peak;
    while first > 0 && above(first - 1) {
        first -= 1;
    }
    let mut last = peak;
    while last + 1 < n && above(last + 1) {
        last += 1;
    }
    let z = |v: f32| (f64::from(v) - sc.centre) / sc.spread;
    let other = sc.values[..first]
        .iter()
        .chain(&sc.values[last + 1..])
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    Some(SectionLead {
        own_z: z(sc.values[peak]),
        other_z: if other.is_finite() { z(other) } else { 0.0 },
    })
}

#[cfg(test)]
mod tests {
    use super::{section_lead, smooth_bands, SHAPE_TREND_FRAMES};
    use crate::align::fine::Line;
    use crate::align::verdict::{shape_only_confidence, SURE_CONFIDENCE};
    use crate::dsp::spectral::{spectral_shape_of, SongShapeSpectra, SpectralShape};

    const FRAME_RATE: f64 = 50.0;
    const BANDS: usize = 12;

    /// Pseudo-random log band energies (frames x bands), smoothed like the
    /// engine's so they change at a musical pace.
    fn bands(frames: usize, seed: u64) -> Vec<f32> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let raw: Vec<f32> = (0..frames * BANDS).map(|_| next()).collect();
        smooth_bands(raw, BANDS, 4)
    }

    fn shape(log_bands: Vec<f32>) -> SpectralShape {
        spectral_shape_of(log_bands, BANDS, SHAPE_TREND_FRAMES)
    }

    /// The recording heard on `line` (song frames re-timed by its rate), with
    /// uncorrelated band noise `noise` times the music's spread added.
    fn recording_of(song: &[f32], line: &Line, frames: usize, noise: f32) -> Vec<f32> {
        let hiss = bands(frames, 99);
        let mut out = vec![0f32; frames * BANDS];
        for t in 0..frames {
            let x = line.song_at(t as f64 / FRAME_RATE) * FRAME_RATE;
            let (j, f) = (x.floor() as usize, (x - x.floor()) as f32);
            for b in 0..BANDS {
                let v = song[j * BANDS + b] * (1.0 - f) + song[(j + 1) * BANDS + b] * f;
                out[t * BANDS + b] = v + noise * hiss[t * BANDS + b];
            }
        }
        out
    }

    fn lead_of(song: Vec<f32>, line: &Line, frames: usize) -> (f64, f64) {
        let recording = recording_of(&song, line, frames, 1.0);
        let recording = shape(recording);
        let song = shape(song);
        let spectra = SongShapeSpectra::new(&song, (frames as f64 / 0.95) as usize + 2);
        let lead = section_lead(&recording, &spectra, FRAME_RATE, line).expect("scan");
        (lead.own_z, lead.other_z)
    }

    #[test]
    fn a_speed_changed_copy_leads_every_other_section() {
        // 2 % slower playback of a minute from 40 s into a 3-minute song
        let frames = 60 * FRAME_RATE as usize;
        let line = Line {
            t_ref: 30.0,
            sigma: 40.0 + 30.0 / 1.02,
            rate: 1.02,
        };
        let (own, other) = lead_of(bands(180 * FRAME_RATE as usize, 7), &line, frames);
        assert!(
            own > 20.0 && own - other > 5.0,
            "own {own:.1}, other {other:.1}"
        );
        assert!(shape_only_confidence(own, Some((own, other))) >= SURE_CONFIDENCE);
    }

    #[test]
    fn a_section_of_a_loop_has_no_lead() {
        // a 20-s block played nine times: every repeat is as good a placement
        let block = bands(20 * FRAME_RATE as usize, 11);
        let song: Vec<f32> = (0..9).flat_map(|_| block.iter().copied()).collect();
        let frames = 50 * FRAME_RATE as usize;
        let line = Line {
            t_ref: 25.0,
            sigma: 60.0 + 25.0 / 1.02,
            rate: 1.02,
        };
        let (own, other) = lead_of(song, &line, frames);
        assert!(
            own > 10.0 && own - other < 1.0,
            "own {own:.1}, other {other:.1}"
        );
        assert!(shape_only_confidence(own, Some((own, other))) < SURE_CONFIDENCE);
        // and without a measured lead, never sure
        assert!(shape_only_confidence(40.0, None) < SURE_CONFIDENCE);
    }
}

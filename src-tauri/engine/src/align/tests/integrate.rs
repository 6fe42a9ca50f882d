//! The second pass's integration ([`crate::align::integrate`]) on soft,
//! noisy, clipped and drifted recordings.

use super::fine_params;
use crate::align::fine::{refine_line, Line};
use crate::align::integrate::{integrate_line, IntegrateParams, IntegratedLine};
use crate::cancel::CancelToken;
use crate::dsp::interp::SincInterpolator;
use crate::test_signal::{noise, Lcg};

const FS: f64 = 8000.0;

/// A soft pad: a chord every 2.5 s (four notes, each a few slightly
/// detuned partials with a slow vibrato), half-second attacks and
/// releases - sustained tones, no transient anywhere.
fn pad(chords: usize, seed: u64) -> Vec<f32> {
    let chord_len = (2.5 * FS) as usize;
    let tail = FS as usize;
    let mut x = vec![0f32; chords * chord_len + tail];
    let mut rng = Lcg(seed);
    for c in 0..chords {
        let root = 110.0 * 2f64.powf(rng.below(12) as f64 / 12.0);
        for semis in [0.0, 4.0, 7.0, 12.0 + rng.below(3) as f64] {
            let f0 = root * 2f64.powf(semis / 12.0);
            for k in 1..=6 {
                for detune in [-0.004, 0.004] {
                    let f = f0 * k as f64 * (1.0 + detune + 0.002 * f64::from(rng.next()));
                    let rate = 4.0 + f64::from(rng.next());
                    let mut phase = std::f64::consts::PI * f64::from(rng.next());
                    for i in 0..chord_len + tail {
                        let t = i as f64 / FS;
                        let env = (t / 0.5).min(1.0) * (-(t - 2.5).max(0.0) / 0.3).exp();
                        let vibrato = 1.0 + 0.002 * (2.0 * std::f64::consts::PI * rate * t).sin();
                        phase += 2.0 * std::f64::consts::PI * f * vibrato / FS;
                        x[c * chord_len + i] += (env * phase.sin() * 0.3 / k as f64) as f32;
                    }
                }
            }
        }
    }
    x
}

/// `song` from `start_s` on, read `rate` times slower (a clock drift or a
/// resampled speed change), `dur_s` long, under noise `snr_db` (relative
/// to the music's power) and then hard-clipped at `clip` times its peak.
fn recording(
    song: &[f32],
    start_s: f64,
    rate: f64,
    dur_s: f64,
    snr_db: f64,
    clip: f32,
) -> Vec<f32> {
    let it = SincInterpolator::new();
    let n = (dur_s * FS) as usize;
    let mut x: Vec<f32> = (0..n)
        .map(|i| it.at(song, (start_s + i as f64 / FS / rate) * FS))
        .collect();
    let power = x.iter().map(|v| v * v).sum::<f32>() / n as f32;
    // uniform noise in -1..1 has power 1/3
    let amp = (3.0 * power * 10f32.powf(-snr_db as f32 / 10.0)).sqrt();
    for (v, e) in x.iter_mut().zip(noise(n, 99)) {
        *v += amp * e;
    }
    let peak = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    x.iter_mut()
        .for_each(|v| *v = v.clamp(-clip * peak, clip * peak));
    x
}

fn params(rate: f64) -> IntegrateParams {
    IntegrateParams {
        win_len: 2048,
        max_lag: 960,
        hop_s: 0.125,
        max_windows: 600,
        resample: (rate - 1.0).abs() > 4e-4,
        max_end_shift: 300.0,
        search_radius: 480,
    }
}

fn integrate(recording: &[f32], song: &[f32], line: &Line) -> IntegratedLine {
    integrate_line(
        recording,
        song,
        FS,
        line,
        &params(line.rate),
        2,
        &CancelToken::new(),
    )
    .expect("not cancelled")
    .expect("enough windows")
}

#[test]
fn a_soft_pad_under_noise_adds_up_where_no_window_shows_it() {
    let song = pad(16, 3);
    // the song from 9 s, 30 s long, noise 11 dB above the music
    let recording = recording(&song, 9.0, 1.0, 30.0, -11.0, 1.0);
    let t_ref = 15.0;
    let truth = 9.0 + t_ref;
    // each window alone: almost none with a clear peak on the right line
    let fine = refine_line(
        &recording,
        &song,
        FS,
        &Line {
            t_ref,
            sigma: truth,
            rate: 1.0,
        },
        &fine_params(),
        2,
        &CancelToken::new(),
    )
    .expect("not cancelled");
    assert!(
        (fine.heard_windows as f64) < 0.08 * fine.windows.len() as f64,
        "{} of {} windows heard: not the weak case this test is about",
        fine.heard_windows,
        fine.windows.len()
    );
    // summed over the overlap, from a line 25 ms off
    let found = integrate(
        &recording,
        &song,
        &Line {
            t_ref,
            sigma: truth + 0.025,
            rate: 1.0,
        },
    );
    let err_ms = (found.line.sigma - truth) * 1e3;
    assert!(err_ms.abs() < 0.5, "placed {err_ms:.2} ms off");
    assert!(found.z > 8.0, "z {:.2}", found.z);
    assert!(found.lag_margin > 3.0, "lag margin {:.2}", found.lag_margin);
    // another section of the song (4 s on) and another pad: nothing
    for (what, song_b, sigma) in [
        ("another section", song.clone(), truth + 4.0),
        ("another pad", pad(16, 4), truth),
    ] {
        let other = integrate(
            &recording,
            &song_b,
            &Line {
                t_ref,
                sigma,
                rate: 1.0,
            },
        );
        assert!(other.z < 6.0, "{what}: z {:.2}", other.z);
    }
}

#[test]
fn a_clipped_drifted_copy_is_placed_with_its_rate() {
    let song = pad(16, 5);
    // 250 ppm slow clock, noise at the music's level, clipped at 30 % of the peak
    let rate = 1.00025;
    let recording = recording(&song, 6.0, rate, 30.0, 0.0, 0.3);
    let t_ref = 15.0;
    let truth = 6.0 + t_ref / rate;
    // searched from the nominal rate and 20 ms off
    let found = integrate(
        &recording,
        &song,
        &Line {
            t_ref,
            sigma: truth - 0.02,
            rate: 1.0,
        },
    );
    let err_ms = (found.line.sigma - truth) * 1e3;
    assert!(err_ms.abs() < 0.3, "placed {err_ms:.2} ms off");
    assert!(
        (found.line.rate - rate).abs() < 2e-5,
        "rate {}",
        found.line.rate
    );
    assert!(found.z > 15.0, "z {:.2}", found.z);
    // where the song is heard: every window's presence well above nothing
    let mean = found.windows.iter().map(|w| w.presence).sum::<f64>() / found.windows.len() as f64;
    assert!(mean > 1.0, "mean presence {mean:.2}");
}

#[test]
fn the_integration_gives_the_same_line_on_one_thread_and_on_several() {
    // a drifted, noisy, clipped recording: the sums along lines (search,
    // polish, profile, null lines) are spread over the threads
    let song = pad(16, 5);
    let rate = 1.0 + 150e-6;
    let recording = recording(&song, 7.0, rate, 28.0, -6.0, 0.6);
    let line = Line {
        t_ref: 14.0,
        sigma: 7.0 + 14.0 / rate + 0.002,
        rate,
    };
    let on = |threads: usize| {
        integrate_line(
            &recording,
            &song,
            FS,
            &line,
            &params(line.rate),
            threads,
            &CancelToken::new(),
        )
        .expect("not cancelled")
        .expect("enough windows")
    };
    let serial = on(1);
    for threads in [2, 3, 4] {
        assert_eq!(on(threads), serial, "{threads} threads");
    }
    // and it is the song's line, so the comparison is of a real result
    let truth = 7.0 + 14.0 / rate;
    assert!(
        (serial.line.sigma - truth).abs() < 1e-3,
        "placed {:.5} s, truth {truth:.5} s",
        serial.line.sigma
    );
}

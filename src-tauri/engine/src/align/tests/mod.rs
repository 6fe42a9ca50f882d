//! Tests of the aligner as a whole, and fixtures its modules share.

mod end_to_end;
mod integrate;

use super::fine::FineParams;
use super::{AlignResult, Verdict};

/// The fine stage's parameters for an 8 kHz test signal at the nominal
/// rate: 2048-sample windows every 0.25 s, lags within ±60 ms.
pub(super) fn fine_params() -> FineParams {
    FineParams {
        win_len: 2048,
        hop_s: 0.25,
        max_windows: 600,
        max_lag: 480,
        resample: false,
        stretched: false,
        max_end_shift: 24.0,
        min_rate_slack: 0.0,
    }
}

/// A checkpoint stored before the verdict existed reads as `sure`; a
/// new one keeps its verdict.
#[test]
fn a_result_without_verdict_reads_as_sure() {
    let old = r#"{"offset_s":1.5,"rate":1.0,"confidence":0.97,"candidates":[],"pitch_kept":false,
        "overlap":{"dance_start_s":0,"dance_end_s":10,"bgm_start_s":0,"bgm_end_s":10},
        "bpm":null,"beats_s":[],"downbeats_s":[],
        "timings_ms":{"decode":1,"features":1,"search":1,"refine":1}}"#;
    let r: AlignResult = serde_json::from_str(old).expect("old checkpoint");
    assert_eq!(r.verdict, Verdict::Sure);
    let unsure = AlignResult {
        verdict: Verdict::Unsure,
        ..r
    };
    let json = serde_json::to_string(&unsure).expect("serialise");
    assert!(json.contains(r#""verdict":"unsure""#), "{json}");
    let back: AlignResult = serde_json::from_str(&json).expect("parse");
    assert_eq!(back.verdict, Verdict::Unsure);
}

/// The final pass measures both speed hypotheses side by side on two
/// threads: the same line, evidence and hypothesis as one after the other.
#[test]
fn the_final_pass_gives_the_same_answer_on_one_thread_and_on_two() {
    use super::fine::Line;
    use super::pipeline::Run;
    use crate::cancel::CancelToken;
    use crate::dsp::interp::SincInterpolator;
    use crate::test_signal::noise;
    let fs = 8000.0;
    let song = noise(40 * 8000, 31);
    // played 1 % slow (resampled) from 6 s on, under noise
    let rate = 1.01;
    let it = SincInterpolator::new();
    let background = noise(25 * 8000, 32);
    let recording: Vec<f32> = (0..25 * 8000)
        .map(|i| it.at(&song, (6.0 + i as f64 / fs / rate) * fs) + 0.5 * background[i])
        .collect();
    let t_ref = 12.0;
    let truth = 6.0 + t_ref / rate;
    let line = Line {
        t_ref,
        sigma: truth + 0.004,
        rate: rate + 2e-4,
    };
    let cancel = CancelToken::new();
    let on = |threads: usize| {
        let run = Run {
            recording: &recording,
            song: &song,
            fs,
            threads,
            cancel: &cancel,
            release: &|| {},
        };
        super::final_pass(&run, &line)
            .expect("not cancelled")
            .expect("a fit")
    };
    let serial = on(1);
    let side_by_side = on(2);
    assert_eq!(side_by_side.params, serial.params);
    assert_eq!(side_by_side.fine.line, serial.fine.line);
    assert_eq!(side_by_side.fine.z.to_bits(), serial.fine.z.to_bits());
    assert_eq!(
        side_by_side.fine.line_z.to_bits(),
        serial.fine.line_z.to_bits()
    );
    assert_eq!(side_by_side.fine.heard_windows, serial.fine.heard_windows);
    assert_eq!(side_by_side.fine.windows, serial.fine.windows);
    // both hypotheses were measured, and the resampled one is the song's
    assert!(!serial.params.stretched);
    let err_ms = (serial.fine.line.sigma - truth) * 1e3;
    assert!(err_ms.abs() < 1.0, "placed {err_ms:.3} ms off");
}

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

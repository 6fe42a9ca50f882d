//! A recording that plays the song twice, through the commands on the mock
//! runtime, in a process of its own (so this app's runner, and no other,
//! works on its job store): the analysis finds two plays; `set_plays` keeps
//! the teacher's choice (a play left out, a nudged offset) with the spans
//! of the checkpoint, `set_plays_layout` the layout, and every bad value is
//! refused with `invalid_argument`, leaving the options as they were.

#[path = "ipc/common.rs"]
mod common;

use beatsync_app::events::{self, Event};
use common::{
    analyze_pair, app, call, collect, main_window, make_two_plays, pick_out_dir, wait_for, Analysed,
};
use serde_json::{json, Value};

fn code_of(r: Result<Value, Value>) -> String {
    r.expect_err("refused")["code"]
        .as_str()
        .expect("code")
        .to_string()
}

fn listed(main: &tauri::WebviewWindow<tauri::test::MockRuntime>, id: &str) -> Value {
    let list = call(main, "list_jobs", json!({})).expect("list");
    list.as_array()
        .expect("array")
        .iter()
        .find(|j| j["id"] == id)
        .cloned()
        .expect("listed")
}

#[test]
fn plays_and_their_layout_are_kept_in_the_job_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (song, class) = make_two_plays(dir.path());
    let out = tempfile::tempdir().expect("out dir");
    let app = app();
    let main = main_window(&app);
    let changed = collect(&app, events::JobChanged::NAME);
    pick_out_dir(&app, out.path());
    let Analysed { id, .. } = analyze_pair(&app, &main, &class, &song);
    let one = json!([{ "index": 0, "included": true, "offset_s": 2.0 }]);
    assert_eq!(
        code_of(call(&main, "set_plays", json!({ "id": id, "plays": one }))),
        "invalid_state",
        "no plays before the analysis"
    );
    wait_for(&changed, &id, "analysed", |j| j["state"] == "analyzed");

    let job = listed(&main, &id);
    let segments = job["analysis"]["segments"].as_array().expect("segments");
    assert_eq!(segments.len(), 2, "two plays found: {segments:?}");
    let offset = |i: usize| segments[i]["offset_s"].as_f64().expect("offset");
    assert!((offset(0) - 2.0).abs() < 0.01 && (offset(1) - 22.0).abs() < 0.01);
    assert_eq!(
        job["options"]["plays"],
        Value::Null,
        "every play until chosen"
    );
    assert_eq!(job["options"]["layout"], "one_video");
    assert_eq!(job["options"]["between"], "recorded");

    // The second play left out, the first nudged by 10 ms: one play kept,
    // with the checkpoint's span and rate.
    let nudged = offset(0) + 0.01;
    let j = call(
        &main,
        "set_plays",
        json!({ "id": id, "plays": [
            { "index": 0, "included": true, "offset_s": nudged },
            { "index": 1, "included": false, "offset_s": offset(1) },
        ] }),
    )
    .expect("plays");
    let kept = j["options"]["plays"].as_array().expect("plays kept");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["offset_s"].as_f64(), Some(nudged));
    for key in ["dance_start_s", "dance_end_s", "rate", "cut_before"] {
        assert_eq!(kept[0][key], segments[0][key], "{key}");
    }
    assert_eq!(
        listed(&main, &id)["options"]["plays"],
        j["options"]["plays"]
    );

    // The second play nudged while left out: its offset is kept beside the
    // exported plays, and putting it back in brings it back.
    let nudged_out = offset(1) - 0.02;
    let second = |included: bool, offset_s: f64| {
        call(
            &main,
            "set_plays",
            json!({ "id": id, "plays": [
                { "index": 0, "included": true, "offset_s": nudged },
                { "index": 1, "included": included, "offset_s": offset_s },
            ] }),
        )
        .expect("plays")
    };
    let j = second(false, nudged_out);
    let out = j["options"]["plays_left_out"].as_array().expect("left out");
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["offset_s"].as_f64(), Some(nudged_out));
    assert_eq!(out[0]["dance_start_s"], segments[1]["dance_start_s"]);
    assert_eq!(
        listed(&main, &id)["options"]["plays_left_out"],
        j["options"]["plays_left_out"],
        "kept in the job store"
    );
    let j = second(true, nudged_out);
    assert_eq!(
        j["options"]["plays"][1]["offset_s"].as_f64(),
        Some(nudged_out)
    );
    assert_eq!(j["options"]["plays_left_out"], json!([]));
    let j = second(false, offset(1));

    let good = |i: usize| json!({ "index": i, "included": true, "offset_s": offset(i) });
    let bad: Vec<(&str, Value)> = vec![
        (
            "an index past the last",
            json!([good(0), { "index": 2, "included": true, "offset_s": 1.0 }]),
        ),
        ("out of order", json!([good(1), good(0)])),
        ("twice the same", json!([good(0), good(0)])),
        (
            "a NaN offset",
            json!([good(0), { "index": 1, "included": true, "offset_s": null }]),
        ),
        (
            "an offset out of range",
            json!([good(0), { "index": 1, "included": true, "offset_s": 1e9 }]),
        ),
        (
            "a fractional index",
            json!([good(0), { "index": 0.5, "included": true, "offset_s": 1.0 }]),
        ),
        (
            "a string index",
            json!([good(0), { "index": "1", "included": true, "offset_s": 1.0 }]),
        ),
        (
            "included not a boolean",
            json!([good(0), { "index": 1, "included": "yes", "offset_s": 1.0 }]),
        ),
        ("one play of two", json!([good(0)])),
        (
            "every play left out",
            json!([
                { "index": 0, "included": false, "offset_s": offset(0) },
                { "index": 1, "included": false, "offset_s": offset(1) },
            ]),
        ),
    ];
    for (what, plays) in bad {
        assert_eq!(
            code_of(call(
                &main,
                "set_plays",
                json!({ "id": id, "plays": plays })
            )),
            "invalid_argument",
            "{what}"
        );
    }
    assert_eq!(
        listed(&main, &id)["options"]["plays"],
        j["options"]["plays"],
        "refused choices change nothing"
    );
    assert_eq!(
        code_of(call(
            &main,
            "set_plays",
            json!({ "id": "no-such-job", "plays": [good(0), good(1)] })
        )),
        "job_not_found"
    );

    let j = call(
        &main,
        "set_plays_layout",
        json!({ "id": id, "layout": "split", "between": "silence" }),
    )
    .expect("layout");
    assert_eq!(
        (&j["options"]["layout"], &j["options"]["between"]),
        (&json!("split"), &json!("silence"))
    );
    for (layout, between) in [("both", "silence"), ("split", "quiet"), ("", "recorded")] {
        assert_eq!(
            code_of(call(
                &main,
                "set_plays_layout",
                json!({ "id": id, "layout": layout, "between": between })
            )),
            "invalid_argument",
            "{layout} {between}"
        );
    }
    let job = listed(&main, &id);
    assert_eq!(
        (&job["options"]["layout"], &job["options"]["between"]),
        (&json!("split"), &json!("silence"))
    );
    assert_eq!(
        job["options"]["plays"], j["options"]["plays"],
        "the plays stay"
    );
}

//! The UI↔Rust contract written out from its types: the names the page
//! receives (job states, stages, error codes, events, the plays' layouts) as an ES module for
//! the page (`ui/js/contract.js`) and as the generated parts of
//! `docs/ipc.md`. tests/ipc.rs fails while either file differs from what
//! this writes (`BEATSYNC_BLESS=1` makes it rewrite them).

use crate::events;
use beatsync_engine::export::{Between, PlaysLayout};
use beatsync_engine::jobs::{JobState, Stage};
use beatsync_engine::{ErrorCode, StartCutUsed, Verdict};

/// `files-added` → `filesAdded`.
fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn js_list(names: impl IntoIterator<Item = &'static str>) -> String {
    let items: Vec<String> = names.into_iter().map(|n| format!("  '{n}',\n")).collect();
    format!("Object.freeze([\n{}])", items.concat())
}

/// The ES module the page imports its names from.
pub fn ui_module() -> String {
    let events: String = events::ALL
        .iter()
        .map(|e| format!("  {}: '{}',\n", camel(e.name), e.name))
        .collect();
    format!(
        "// The names the Rust side sends, written out from its types by src-tauri/contract.rs.\n\
         // Do not edit: tests/ipc.rs fails while this differs, and BEATSYNC_BLESS=1 rewrites it.\n\
         export const EVENTS = Object.freeze({{\n{events}}});\n\
         export const JOB_STATES = {};\n\
         export const STAGES = {};\n\
         export const ERROR_CODES = {};\n\
         export const VERDICTS = {};\n\
         export const START_CUTS = {};\n\
         export const PLAYS_LAYOUTS = {};\n\
         export const BETWEEN = {};\n",
        js_list(JobState::ALL.iter().map(|s| s.as_str())),
        js_list(Stage::ALL.iter().map(|s| s.as_str())),
        js_list(ErrorCode::ALL.iter().map(|c| c.as_str())),
        js_list(Verdict::ALL.iter().map(|v| v.as_str())),
        js_list(StartCutUsed::ALL.iter().map(|v| v.as_str())),
        js_list(PlaysLayout::ALL.iter().map(|v| v.as_str())),
        js_list(Between::ALL.iter().map(|v| v.as_str())),
    )
}

fn ts_union(names: impl IntoIterator<Item = &'static str>) -> String {
    let quoted: Vec<String> = names.into_iter().map(|n| format!("'{n}'")).collect();
    quoted.join(" | ")
}

/// The generated blocks of docs/ipc.md: `(name, text between the markers)`.
pub fn doc_blocks() -> Vec<(&'static str, String)> {
    let union = |kind: &str, names: String| format!("```ts\n{kind} = {names}\n```\n");
    let mut events = String::from("| event | payload | when |\n| --- | --- | --- |\n");
    for e in events::ALL {
        events.push_str(&format!("| `{}` | {} | {} |\n", e.name, e.payload, e.when));
    }
    vec![
        (
            "job-states",
            union(
                "JobState",
                ts_union(JobState::ALL.iter().map(|s| s.as_str())),
            ),
        ),
        (
            "stages",
            union("Stage", ts_union(Stage::ALL.iter().map(|s| s.as_str()))),
        ),
        (
            "error-codes",
            union(
                "ErrorCode",
                ts_union(ErrorCode::ALL.iter().map(|c| c.as_str())),
            ),
        ),
        (
            "verdicts",
            union("Verdict", ts_union(Verdict::ALL.iter().map(|v| v.as_str()))),
        ),
        (
            "start-cuts",
            union(
                "StartCut",
                ts_union(StartCutUsed::ALL.iter().map(|v| v.as_str())),
            ),
        ),
        (
            "plays-layouts",
            union(
                "PlaysLayout",
                ts_union(PlaysLayout::ALL.iter().map(|v| v.as_str())),
            ),
        ),
        (
            "between",
            union("Between", ts_union(Between::ALL.iter().map(|v| v.as_str()))),
        ),
        ("events", events),
    ]
}

fn begin(name: &str) -> String {
    format!("<!-- generated: {name} (src-tauri/contract.rs) -->\n")
}

fn end(name: &str) -> String {
    format!("<!-- end generated: {name} -->")
}

/// `doc` with each generated block replaced by what the types say now.
pub fn fill_doc(doc: &str) -> Result<String, String> {
    let mut out = doc.to_string();
    for (name, text) in doc_blocks() {
        let (b, e) = (begin(name), end(name));
        let start = out
            .find(&b)
            .ok_or_else(|| format!("docs/ipc.md has no line {}", b.trim()))?
            + b.len();
        let stop = start
            + out[start..]
                .find(&e)
                .ok_or_else(|| format!("docs/ipc.md has no line {e}"))?;
        out.replace_range(start..stop, &text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_become_js_keys() {
        assert_eq!(camel("files-added"), "filesAdded");
        assert_eq!(camel("job-changed"), "jobChanged");
    }

    #[test]
    fn blocks_are_replaced_between_their_markers_only() {
        let mut doc = String::from("intro\n");
        for (name, _) in doc_blocks() {
            doc.push_str(&format!(
                "{}old\n{}\nafter {name}\n",
                begin(name),
                end(name)
            ));
        }
        let filled = fill_doc(&doc).expect("filled");
        assert!(filled.starts_with("intro\n"));
        assert!(!filled.contains("old\n"));
        assert!(filled.contains("'plan'") && filled.contains("'store_io'"));
        assert!(filled.contains("Verdict = 'sure' | 'unsure'"));
        assert!(filled.contains("PlaysLayout = 'one_video' | 'split'"));
        assert!(filled.contains("Between = 'recorded' | 'silence'"));
        assert!(filled.contains("| `job-changed` | `Job` |"));
        assert!(filled.contains("after events"));
        assert!(fill_doc("no markers").is_err());
    }
}

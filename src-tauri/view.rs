//! The shapes the UI receives (docs/ipc.md), built from engine types.

use crate::registry::FileRegistry;
use beatsync_engine::jobs::{Job, JobOptions, JobState, Stage};
use beatsync_engine::{AlignResult, ErrorPayload, MediaInfo, Role, Verdict};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A path as the page shows it: ids name files, so a name that is not
/// UTF-8 is shown with replacement characters instead of failing the answer.
fn shown(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The export report as the page shows it: its `output` as text, lossy
/// where not UTF-8 (the store keeps it exactly, as `{"os": [bytes]}`).
fn shown_report(mut report: serde_json::Value) -> serde_json::Value {
    let show = |v: &mut serde_json::Value| {
        if let Some(p) = beatsync_engine::jobs::os_path::from_json_value(v.clone()) {
            *v = serde_json::Value::from(shown(&p));
        }
    };
    if let Some(out) = report.get_mut("output") {
        show(out);
    }
    // With several plays: every file written, and each clip's.
    if let Some(outputs) = report.get_mut("outputs").and_then(|o| o.as_array_mut()) {
        outputs.iter_mut().for_each(show);
    }
    if let Some(clips) = report.get_mut("clips").and_then(|c| c.as_array_mut()) {
        clips
            .iter_mut()
            .filter_map(|c| c.get_mut("output"))
            .for_each(show);
    }
    report
}

#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: String,
    /// The job's revision: of two views of a job the higher `rev` is the
    /// newer; the UI ignores a view older than the one it has.
    pub rev: u64,
    /// Shown to the user (lossy where not UTF-8); commands take the ids below.
    /// `dance_*` is the recording, `bgm_*` the song: the names of the IPC contract.
    pub dance_path: String,
    pub bgm_path: String,
    /// The files' ids (the same id the file got when it was added).
    pub dance_file: String,
    pub bgm_file: String,
    pub state: JobState,
    pub stage: Option<Stage>,
    pub progress: f64,
    pub eta_s: Option<f64>,
    pub attempts: u32,
    pub max_attempts: u32,
    pub interruptions: u32,
    pub error: Option<ErrorPayload>,
    /// The alignment, once analysed.
    pub analysis: Option<AlignResult>,
    /// The export report, once done.
    pub report: Option<serde_json::Value>,
    pub options: JobOptions,
    pub output_path: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl JobView {
    /// The page's view of a job; its files get ids (a stored job is one of
    /// the ways a path reaches the page).
    pub fn new(j: Job, files: &FileRegistry) -> Self {
        Self {
            id: j.id,
            rev: j.rev,
            dance_file: files.id_of_stored(&j.recording.path),
            bgm_file: files.id_of_stored(&j.song.path),
            dance_path: shown(&j.recording.path),
            bgm_path: shown(&j.song.path),
            state: j.state,
            stage: j.stage,
            progress: j.progress,
            eta_s: j.eta_s,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            interruptions: j.interruptions,
            error: j.error,
            analysis: j.checkpoint,
            report: j.report.map(shown_report),
            options: JobOptions {
                // Display only, like the paths above: the job keeps the folder.
                out_dir: j
                    .options
                    .out_dir
                    .as_deref()
                    .map(|d| PathBuf::from(shown(d))),
                ..j.options
            },
            output_path: j.output_path.as_deref().map(shown),
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
        }
    }
}

/// How well one song explains a class video (`match_songs`), for pairing
/// each video with its song when several songs were added.
#[derive(Debug, Clone, Serialize)]
pub struct SongMatch {
    /// The song's file id.
    pub song: String,
    /// `None` when the song is not in the video (or could not be read: `error`).
    pub verdict: Option<Verdict>,
    pub confidence: f64,
    pub offset_s: Option<f64>,
    pub error: Option<ErrorPayload>,
}

impl SongMatch {
    pub fn of(song: String, aligned: beatsync_engine::Result<AlignResult>) -> Self {
        match aligned {
            Ok(a) => Self {
                song,
                verdict: Some(a.verdict),
                confidence: a.confidence,
                offset_s: Some(a.offset_s),
                error: None,
            },
            Err(e) => Self::failed(song, e.to_payload()),
        }
    }

    /// A song that could not be tried against the video.
    pub fn failed(song: String, error: ErrorPayload) -> Self {
        Self {
            song,
            verdict: None,
            confidence: 0.0,
            offset_s: None,
            error: Some(error),
        }
    }
}

/// A file the user added: what it is, or why it cannot be used.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum AddedFile {
    Ok {
        /// What commands take to name this file.
        id: String,
        path: String,
        ok: bool,
        info: MediaInfo,
        role: Role,
    },
    Err {
        path: String,
        ok: bool,
        error: ErrorPayload,
    },
}

impl AddedFile {
    pub fn accepted(id: String, path: PathBuf, info: MediaInfo, role: Role) -> Self {
        AddedFile::Ok {
            id,
            path: shown(&path),
            ok: true,
            info,
            role,
        }
    }
    pub fn rejected(path: PathBuf, error: ErrorPayload) -> Self {
        AddedFile::Err {
            path: shown(&path),
            ok: false,
            error,
        }
    }
}

/// User settings kept in the job store (under the data folder): every
/// preference the app has. `out_dir` is set only by `pick_folder`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Settings {
    pub out_dir: String,
    pub language: Option<String>,
    pub balance: f64,
    /// The picture view shows the recording mirrored (dancers learn from a
    /// mirror); on until the teacher turns it off.
    #[serde(default = "mirror_by_default")]
    pub mirror: bool,
    /// Exports are marked to be shown mirrored (display matrix, no
    /// re-encode); off until the teacher turns it on, as not every player
    /// honours it.
    #[serde(default)]
    pub mirror_export: bool,
}

fn mirror_by_default() -> bool {
    true
}

/// What the page may change with `set_settings`. An `out_dir` is accepted
/// only when it is the folder already kept (the page sending back what
/// `get_settings` gave it); any other folder is refused.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SettingsChange {
    #[serde(default)]
    pub out_dir: Option<String>,
    pub language: Option<String>,
    pub balance: crate::commands::Number,
    /// `true` / `false`; absent: unchanged. Anything else is refused with
    /// `invalid_argument` (read as a value, not failed as a shape).
    #[serde(default)]
    pub mirror: Option<serde_json::Value>,
    /// As `mirror`, for [`Settings::mirror_export`].
    #[serde(default)]
    pub mirror_export: Option<serde_json::Value>,
}

// A name that is not UTF-8 can only be made on Unix.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use beatsync_engine::jobs::os_path::json_value;

    #[test]
    fn every_output_of_a_report_is_shown_as_text() {
        use std::os::unix::ffi::OsStrExt;
        let odd = Path::new(std::ffi::OsStr::from_bytes(b"/o/class\xff_play01.mp4"));
        let plain = Path::new("/o/class_play02.mp4");
        let report = serde_json::json!({
            "output": json_value(odd),
            "outputs": [json_value(odd), json_value(plain)],
            "clips": [{"output": json_value(odd)}, {"output": json_value(plain)}],
        });
        let shown = shown_report(report);
        let lossy = "/o/class\u{FFFD}_play01.mp4";
        assert_eq!(shown["output"], lossy);
        assert_eq!(
            shown["outputs"],
            serde_json::json!([lossy, "/o/class_play02.mp4"])
        );
        assert_eq!(shown["clips"][0]["output"], lossy);
        assert_eq!(shown["clips"][1]["output"], "/o/class_play02.mp4");
    }
}

//! What a job is: its inputs, options, state and history fields. Plain data,
//! serialised as-is to the UI (`Job`) and stored column by column.

use crate::align::AlignResult;
use crate::error::{wire_names, ErrorPayload};
use crate::export::{Between, PlaysLayout};
use crate::timeline::Play;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

wire_names! {
    /// `queued → analyzing → analyzed → exporting → done | failed | cancelled`.
    /// `analyzed` waits for the user's go unless the job has `export_requested`.
    pub enum JobState {
        Queued = "queued",
        Analyzing = "analyzing",
        Analyzed = "analyzed",
        Exporting = "exporting",
        Done = "done",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl JobState {
    /// Finished jobs are history: nothing more happens to them unless retried.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }

    /// Options may still change: the export has not started.
    pub fn is_before_export(self) -> bool {
        matches!(
            self,
            JobState::Queued | JobState::Analyzing | JobState::Analyzed
        )
    }

    /// A runner is working on the job right now.
    pub fn is_running(self) -> bool {
        matches!(self, JobState::Analyzing | JobState::Exporting)
    }
}

wire_names! {
    /// What a job is doing inside its state. The engine reports these names
    /// with its progress; the UI has words for each (a test enumerates them).
    pub enum Stage {
        // Analysis (`align::align_files`).
        Decode = "decode",
        Features = "features",
        Search = "search",
        Refine = "refine",
        // Export (`export::export`): `align` only when the job has no analysis.
        Align = "align",
        Analyse = "analyse",
        Plan = "plan",
        Export = "export",
        Finish = "finish",
        Verify = "verify",
        Done = "done",
        /// Set by the store when a run is handed back to the queue.
        Interrupted = "interrupted",
        /// The app is closing: the runner is stopping this job's work and
        /// handing it back to the queue (it resumes on the next start).
        Stopping = "stopping",
    }
}

/// Identifies the exact file a job was queued with, so a file replaced or
/// edited in the meantime is noticed instead of producing a wrong result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// xxh3-64 of the first and last MiB, hex.
    pub head_tail_xxh3: String,
}

/// What an export wrote, recorded in the store before the file gets its
/// final name. A file found later at the job's output path is the job's own
/// only when it matches: same size, same hash of its first and last MiB
/// (our MP4s end with the `moov` index, unique to each export, and begin
/// with its first frames; hashing the whole file would read a 2 GB export
/// back once more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSeal {
    pub size: u64,
    pub head_tail_xxh3: String,
}

impl OutputSeal {
    pub fn of(fp: &Fingerprint) -> Self {
        Self {
            size: fp.size,
            head_tail_xxh3: fp.head_tail_xxh3.clone(),
        }
    }

    /// Whether the file at `path` is the one sealed (false when unreadable).
    pub fn matches(&self, path: &std::path::Path) -> bool {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == self.size)
            && crate::media::fingerprint::fingerprint(path).is_ok_and(|fp| Self::of(&fp) == *self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInput {
    /// Kept exactly, even when not UTF-8 (see `os_path::json`).
    #[serde(with = "super::os_path::json")]
    pub path: PathBuf,
    pub fingerprint: Fingerprint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AudioMode {
    /// Re-encode the song (AAC 192 kbit/s), re-timed when the rate is not 1.
    #[default]
    Encode,
    /// Copy the song's AAC packets when possible.
    Copy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOptions {
    /// Kept exactly, even when not UTF-8 (see `os_path::opt_json`).
    #[serde(with = "super::os_path::opt_json", default)]
    pub out_dir: Option<PathBuf>,
    pub name: Option<String>,
    #[serde(default)]
    pub lead_in_s: f64,
    #[serde(default)]
    pub audio_mode: AudioMode,
    /// The user's placement (nudged, or an alternative chosen); overrides the analysis.
    pub offset_s: Option<f64>,
    pub rate: Option<f64>,
    /// The user's trim in recording time, overriding the automatic one.
    pub trim_start_s: Option<f64>,
    pub trim_end_s: Option<f64>,
    /// Export as soon as the analysis is done (batch, CLI default).
    pub auto_export: bool,
    /// The user confirmed the song after an unsure analysis (listened to
    /// it); until then such a job waits at `analyzed` and is never exported.
    #[serde(default)]
    pub song_confirmed: bool,
    /// The plays the teacher chose (nudged, some left out), in recording
    /// order; `None`: every play the aligner found.
    #[serde(default)]
    pub plays: Option<Vec<Play>>,
    /// The plays the teacher left out, each at its own (nudged) offset, so
    /// that putting one back in restores its offset; in recording order.
    #[serde(default)]
    pub plays_left_out: Vec<Play>,
    /// With several plays: one video or one clip per play.
    #[serde(default)]
    pub layout: PlaysLayout,
    /// With several plays in one video: what is heard between them.
    #[serde(default)]
    pub between: Between,
    /// The export is marked to be shown mirrored (display matrix; the
    /// picture is copied as it is).
    #[serde(default)]
    pub mirror: bool,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            out_dir: None,
            name: None,
            lead_in_s: 0.0,
            audio_mode: AudioMode::Encode,
            offset_s: None,
            rate: None,
            trim_start_s: None,
            trim_end_s: None,
            auto_export: true,
            song_confirmed: false,
            plays: None,
            plays_left_out: Vec::new(),
            layout: PlaysLayout::default(),
            between: Between::default(),
            mirror: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    /// The class video. `dance` and `bgm` in JSON (`jobs show`), as scripts
    /// know them.
    #[serde(rename = "dance")]
    pub recording: JobInput,
    #[serde(rename = "bgm")]
    pub song: JobInput,
    pub options: JobOptions,
    pub state: JobState,
    /// What the job is doing inside its state.
    pub stage: Option<Stage>,
    /// 0..1 through the current state's work.
    pub progress: f64,
    pub eta_s: Option<f64>,
    /// Set when export was asked for (by the user, or `auto_export`).
    pub export_requested: bool,
    pub attempts: u32,
    pub max_attempts: u32,
    /// Unix ms before which a retried job is not picked up (backoff).
    pub next_run_at: Option<i64>,
    /// The analysis result: not redone after a crash.
    pub checkpoint: Option<AlignResult>,
    /// The export report (JSON) once done.
    pub report: Option<serde_json::Value>,
    /// Where the export writes (planned before it starts), or wrote once done.
    #[serde(with = "super::os_path::opt_json")]
    pub output_path: Option<PathBuf>,
    /// The export's file as recorded before its rename (see [`OutputSeal`]).
    pub output_seal: Option<OutputSeal>,
    /// With one clip per play: every clip's seal, in order (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_seals: Vec<OutputSeal>,
    pub error: Option<ErrorPayload>,
    /// How many times a run was interrupted by the app or machine stopping.
    pub interruptions: u32,
    /// Unclean stops (crash, kill, power loss) while this job ran alone:
    /// only these are charged to the job; at 3 it is set aside as `crashed`.
    pub crashes: u32,
    /// Interrupted by an unclean stop beside other jobs: it runs alone next,
    /// so that a crash then is known to be its own.
    pub isolated: bool,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub runner_id: Option<String>,
    pub heartbeat_at: Option<i64>,
    /// The row's revision: goes up by one with every change of the job, so
    /// of two copies of a job the one with the higher `rev` is the newer.
    pub rev: u64,
}

/// The analysis as the store kept it (JSON text). One that no longer reads
/// as an `AlignResult` is dropped, so the job analyses again rather than
/// failing to load.
impl Job {
    /// Analysed with an unsure verdict and not yet confirmed by the user:
    /// the job must not be exported (a batch leaves it waiting).
    pub fn awaits_confirmation(&self) -> bool {
        unconfirmed(self.checkpoint.as_ref(), &self.options)
    }
}

/// An unsure analysis the options do not confirm.
pub(crate) fn unconfirmed(analysis: Option<&AlignResult>, options: &JobOptions) -> bool {
    analysis.is_some_and(|a| a.verdict == crate::align::Verdict::Unsure) && !options.song_confirmed
}

pub(crate) fn checkpoint_from_stored(text: Option<String>) -> Option<AlignResult> {
    let text = text?;
    serde_json::from_str(&text)
        .map_err(|e| tracing::warn!("stored analysis not usable, it will be redone: {e}"))
        .ok()
}

/// What the store tells its subscribers (the app forwards these as events).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoreEvent {
    JobChanged(Box<Job>),
    JobRemoved { id: String },
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Test data shared by the job tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::align::AlignResult;

    /// A checkpoint exactly as the store wrote it before it was typed (the
    /// engine's `AlignResult` through `serde_json::Value`, keys sorted), from
    /// a real analysis; the beat lists are shortened.
    pub const OLD_CHECKPOINT: &str = r#"{"beats_s":[0.49,0.9900000000000015,1.490000000000003,1.9900000000000047],"bpm":119.99999999999963,"candidates":[{"offset_s":2.000002742453062,"score":1.0},{"offset_s":-7.49150216787157,"score":0.43215887618590243},{"offset_s":-3.5000709546810533,"score":0.574436319044987},{"offset_s":-2.054141800909745,"score":0.3795147779539522}],"confidence":0.9293710416508894,"downbeats_s":[0.9900000000000015,2.9900000000000078],"offset_s":2.000002742453062,"overlap":{"bgm_end_s":10.004744157159214,"bgm_start_s":0.0,"dance_end_s":12.00475,"dance_start_s":1.9999996420653385},"pitch_kept":false,"rate":1.0000006197835096,"timings_ms":{"decode":137.298591,"features":421.71257,"refine":1275.766538,"search":116.279618}}"#;

    /// An analysis placing the song at `offset_s`.
    pub fn analysis(offset_s: f64) -> AlignResult {
        let mut a: AlignResult = serde_json::from_str(OLD_CHECKPOINT).expect("checkpoint parses");
        a.offset_s = offset_s;
        a
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::OLD_CHECKPOINT;
    use super::*;
    use crate::jobs::store::schema::{migrate, DB_FILE};
    use crate::jobs::store::Store;
    use rusqlite::{params, Connection};

    /// A row written by the store before checkpoints, stages and error codes
    /// were typed and before rows had a revision (schema v2) still loads,
    /// with its analysis, and gets a revision that goes up with each change.
    #[test]
    fn a_row_written_the_old_way_loads_with_its_analysis() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fp =
            serde_json::json!({ "size": 1, "mtime_ns": 0, "head_tail_xxh3": "00" }).to_string();
        {
            let mut conn = Connection::open(dir.path().join(DB_FILE)).expect("open");
            migrate(&mut conn, 2).expect("schema v2");
            let rows = [
                ("analysed", "analyzed", None, Some(OLD_CHECKPOINT), None),
                (
                    "stalled",
                    "queued",
                    Some("interrupted"),
                    None,
                    Some("stalled"),
                ),
                // Names no type has any more: the row still loads, without them.
                (
                    "unknown",
                    "failed",
                    Some("audio"),
                    Some("{\"offset_s\":1}"),
                    Some("gone"),
                ),
            ];
            for (id, state, stage, checkpoint, code) in rows {
                conn.execute(
                    "INSERT INTO jobs (id, dance_path, dance_fp, bgm_path, bgm_fp, options, state, stage,
                         checkpoint, error_code, error_message, created_at)
                     VALUES (?1, '/class.mp4', ?2, '/song.m4a', ?2, ?3, ?4, ?5, ?6, ?7, 'it happened', 1)",
                    params![id, fp, serde_json::to_string(&JobOptions::default()).expect("json"), state, stage, checkpoint, code],
                )
                .expect("insert");
            }
        }
        let (store, _) = Store::open(dir.path()).expect("migrated");

        let a = store.get("analysed").expect("old analysed row loads");
        let analysis = a.checkpoint.expect("the analysis is kept");
        assert_eq!(analysis.offset_s, 2.000002742453062);
        assert_eq!(analysis.overlap.dance_end_s, 12.00475);
        assert_eq!(analysis.candidates.len(), 4);
        // serde_json reads floats to within one unit in the last place.
        assert!(analysis.bpm.is_some_and(|b| (b - 120.0).abs() < 1e-9));
        assert_eq!(a.rev, 0);

        let s = store.get("stalled").expect("old queued row loads");
        assert_eq!(s.stage, Some(Stage::Interrupted));
        assert_eq!(
            s.error.map(|e| e.code),
            Some(crate::error::ErrorCode::Stalled)
        );

        let u = store
            .get("unknown")
            .expect("a row with unknown names loads");
        assert_eq!((u.stage, u.checkpoint.is_none()), (None, true));
        assert_eq!(
            u.error.map(|e| (e.code, e.message)),
            Some((
                crate::error::ErrorCode::Internal,
                "gone: it happened".to_string()
            ))
        );
        assert_eq!(store.list(&[], 10).expect("list").len(), 3);

        // Each change raises the revision by one; the returned job carries it.
        let r1 = store
            .request_export("analysed", &a.options)
            .expect("export asked");
        let r2 = store
            .update_options("analysed", |o| o.lead_in_s = 1.0)
            .expect("options");
        assert_eq!((r1.rev, r2.rev), (1, 2));
        assert_eq!(store.get("analysed").expect("get").rev, 2);
    }
}

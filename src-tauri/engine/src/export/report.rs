//! What an export reports: the file written, where the song went, the trim
//! and its reasons, how the picture and the audio were made, and timings.

use super::audio::track::AudioDone;
use super::audio::{AudioSource, Retime};
use super::plan::ExportPlan;
use super::request::ExportRequest;
use super::trim::{EndReason, StartReason};
use crate::media::probe::MediaInfo;
use crate::timeline::Play;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrimReport {
    /// Recording time of the first presented frame (the cut) and of the end.
    pub start_s: f64,
    pub end_s: f64,
    pub start_reason: StartReason,
    pub end_reason: EndReason,
    pub lead_in_s: f64,
    /// Where the song is heard in the recording (recording time).
    pub song_heard_start_s: f64,
    pub song_heard_end_s: f64,
    /// Frames between the keyframe and the cut, in the file but not shown.
    pub hidden_frames: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VideoMethod {
    /// Every packet copied; an edit list starts presentation at the cut.
    #[serde(rename = "copied")]
    Copied,
    #[serde(rename = "smart-cut")]
    SmartCut,
}

crate::error::wire_names! {
    /// How the export's first frame was made to be the cut.
    pub enum StartCutUsed {
        /// The frames from the cut to the next keyframe re-encoded: right in
        /// every player.
        SmartCut = "smart_cut",
        /// Copied from the keyframe before the cut, an edit list hiding the
        /// frames before it: right only in players that honour edit lists.
        EditList = "edit_list",
        /// The cut is on a keyframe: everything copied, nothing hidden.
        Keyframe = "keyframe",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioReport {
    pub codec: String,
    /// bit/s (nominal for encoded audio, measured for copied).
    pub bitrate: u64,
    pub source: AudioSource,
    pub sample_rate: u32,
    pub channels: u16,
    pub retime: Retime,
    /// Why a requested copy was not possible, etc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One clip of an export with one clip per play.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipReport {
    #[serde(with = "crate::jobs::os_path::json")]
    pub output: PathBuf,
    /// The play it holds.
    pub play: Play,
    pub trim: TrimReport,
    pub start_cut: StartCutUsed,
    pub duration_s: f64,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportReport {
    /// Exact even when not UTF-8 (a string, else `{"os": [bytes]}`).
    /// The file written; with one clip per play, the first clip.
    #[serde(with = "crate::jobs::os_path::json")]
    pub output: PathBuf,
    /// Every file written, in order: the one video, or one clip per play.
    #[serde(with = "crate::jobs::os_path::vec_json", default)]
    pub outputs: Vec<PathBuf>,
    /// The plays placed, when there were several (`offset_s` and `rate`
    /// are then the first play's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plays: Vec<Play>,
    /// With one clip per play: each clip (its play, trim and file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clips: Vec<ClipReport>,
    pub offset_s: f64,
    pub rate: f64,
    /// Recording time where `offset_s` holds exactly (matters when `rate != 1`).
    pub offset_ref_s: f64,
    /// The aligner's confidence, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    pub trim: TrimReport,
    pub video: VideoMethod,
    /// How the start was made.
    pub start_cut: StartCutUsed,
    /// Why the start is an edit list although a smart cut was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_cut_reason: Option<String>,
    pub video_codec: String,
    pub audio: AudioReport,
    pub duration_s: f64,
    pub size_bytes: u64,
    pub timings_ms: BTreeMap<String, u64>,
}

/// Milliseconds per export step.
pub(crate) struct Timings {
    started: Instant,
    ms: BTreeMap<String, u64>,
}

impl Timings {
    /// Starts counting; the analysis took `analyse_ms` before.
    pub fn start(analyse_ms: u64) -> Self {
        let mut ms = BTreeMap::new();
        ms.insert("analyse".to_string(), analyse_ms);
        Self {
            started: Instant::now(),
            ms,
        }
    }

    /// Records the time since `since` as `step`.
    pub fn record(&mut self, step: &str, since: Instant) {
        self.ms
            .insert(step.to_string(), since.elapsed().as_millis() as u64);
    }

    /// The steps and the total (this export's time and the analysis's).
    fn finish(mut self) -> BTreeMap<String, u64> {
        let analyse = self.ms.get("analyse").copied().unwrap_or(0);
        self.record("total", self.started);
        if let Some(t) = self.ms.get_mut("total") {
            *t += analyse;
        }
        self.ms
    }
}

/// The export's result, as written.
pub(crate) struct Written {
    pub output: PathBuf,
    pub video_codec: String,
    /// The output file as read back.
    pub info: MediaInfo,
    pub audio: AudioDone,
    pub audio_bytes: u64,
}

/// The report of an export that wrote `written` following `plan`.
pub(crate) fn report(
    req: &ExportRequest,
    plan: &ExportPlan,
    written: Written,
    timings: Timings,
) -> ExportReport {
    let p = &plan.placement;
    let duration_s = plan.output_duration_s();
    let smart = plan.smart_head.is_some();
    let audio = written.audio;
    ExportReport {
        outputs: vec![written.output.clone()],
        plays: if req.plays.len() >= 2 {
            req.plays.clone()
        } else {
            Vec::new()
        },
        clips: Vec::new(),
        output: written.output,
        offset_s: p.offset_s,
        rate: p.rate,
        offset_ref_s: p.ref_dance_s.unwrap_or(0.0),
        confidence: None,
        trim: TrimReport {
            start_s: plan.start_recording_s,
            end_s: plan.end_recording_s,
            start_reason: plan.decision.start_reason,
            end_reason: plan.decision.end_reason,
            lead_in_s: req.lead_in_s,
            song_heard_start_s: plan.song_heard.0,
            song_heard_end_s: plan.song_heard.1,
            hidden_frames: if smart { 0 } else { plan.cut.hidden_frames },
        },
        video: if smart {
            VideoMethod::SmartCut
        } else {
            VideoMethod::Copied
        },
        start_cut: plan.start_cut,
        start_cut_reason: plan.start_cut_reason.clone(),
        video_codec: written.video_codec,
        audio: AudioReport {
            codec: written
                .info
                .audio()
                .map(|a| a.codec.clone())
                .unwrap_or_default(),
            bitrate: match audio.source {
                AudioSource::Encoded => u64::from(req.audio.bitrate),
                AudioSource::Copied => {
                    (written.audio_bytes as f64 * 8.0 / duration_s.max(1e-3)) as u64
                }
            },
            source: audio.source,
            sample_rate: audio.sample_rate,
            channels: audio.channels,
            retime: audio.retime,
            note: audio.note,
        },
        duration_s,
        size_bytes: written.info.size_bytes,
        timings_ms: timings.finish(),
    }
}

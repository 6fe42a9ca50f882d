//! The plan: everything decided before a byte is written. Where the song
//! sits, where the export starts and ends and why, which video packets are
//! copied, and (with a smart cut) the re-encoded head.

use super::analysis::InputAnalysis;
use super::detect::black::find_black_tail;
use super::progress::{with_ticks, Progress};
use super::report::StartCutUsed;
use super::request::{ExportRequest, StartCut};
use super::smartcut::{encode_head, HeadError, SmartHead};
use super::trim::{decide_trim, EndReason, TrimDecision, TrimFacts, MIN_EXPORT_S};
use super::video::cut::{plan_cut, VideoCut};
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::timeline::Placement;

/// The export, decided.
pub(crate) struct ExportPlan {
    /// The request's placement, its reference time resolved.
    pub placement: Placement,
    pub decision: TrimDecision,
    /// Where the song is heard in the recording (recording time).
    pub song_heard: (f64, f64),
    pub cut: VideoCut,
    pub smart_head: Option<SmartHead>,
    /// How the start was made, and why not by a smart cut when one was asked.
    pub start_cut: StartCutUsed,
    pub start_cut_reason: Option<String>,
    /// The output's first and last instant, recording time (the cut's frames).
    pub start_recording_s: f64,
    pub end_recording_s: f64,
    /// Output time per recording time: 1, or `1 / rate` when the picture
    /// follows the song's clock (decided when the audio starts).
    pub picture_scale: f64,
}

impl ExportPlan {
    /// The span of recording exported, seconds.
    pub fn duration_s(&self) -> f64 {
        self.end_recording_s - self.start_recording_s
    }

    /// The output's length, seconds.
    pub fn output_duration_s(&self) -> f64 {
        self.duration_s() * self.picture_scale
    }
}

/// Decides the export; reports `plan` progress while it looks at the
/// recording (black ending, cut, smart-cut head).
pub(crate) fn plan_export(
    req: &ExportRequest,
    a: &mut InputAnalysis,
    cancel: &CancelToken,
    progress: &mut Progress,
) -> Result<ExportPlan> {
    let placement = resolve_placement(req, a)?;
    let mut facts = trim_facts(req, a, &placement);
    let first = decide_trim(&facts)?;
    let origin = a.picture.recording_origin_s;
    // A black ending is searched backwards from the planned end; when that
    // is the recording's end and its last frame is not black, there is none.
    let ends_with_picture =
        first.end_reason == EndReason::RecordingEnd && a.picture.last_frame_black == Some(false);
    let look_for_black = req.detect_black_tail && !ends_with_picture;
    let (recording, track) = (&mut a.recording, &a.picture.track);
    let (decision, cut) = with_ticks("plan", progress, |_| {
        if look_for_black {
            let black = find_black_tail(
                recording.video(),
                first.start_s + origin + MIN_EXPORT_S,
                first.end_s + origin,
                cancel,
            )?;
            facts.black_from_s = black.map(|c| c - origin);
        }
        let decision = decide_trim(&facts)?;
        let cut = plan_cut(
            &mut recording.video(),
            track,
            decision.start_s + origin,
            decision.end_s + origin,
        )?;
        Ok((decision, cut))
    })?;
    let start = if cut.hidden_frames == 0 {
        StartChoice::plain(StartCutUsed::Keyframe)
    } else if req.start_cut == StartCut::SmartCut {
        let params = &a.picture.params;
        with_ticks("plan", progress, |_| {
            smart_or_edit_list(encode_head(&mut recording.video(), params, &cut, cancel))
        })?
    } else {
        StartChoice::plain(StartCutUsed::EditList)
    };
    Ok(ExportPlan {
        smart_head: start.head,
        start_cut: start.used,
        start_cut_reason: start.reason,
        placement,
        decision,
        song_heard: (facts.song_heard_start_s, facts.song_heard_end_s),
        start_recording_s: cut.start_s(track) - origin,
        end_recording_s: cut.end_s(track) - origin,
        cut,
        picture_scale: 1.0,
    })
}

/// How the start will be made.
struct StartChoice {
    head: Option<SmartHead>,
    used: StartCutUsed,
    reason: Option<String>,
}

impl StartChoice {
    fn plain(used: StartCutUsed) -> Self {
        Self {
            head: None,
            used,
            reason: None,
        }
    }
}

/// The smart cut when the head re-encode worked; the edit list, with the
/// reason, when it was not possible for this file; the error when the
/// export itself has to stop (cancel, unreadable input).
fn smart_or_edit_list(
    head: std::result::Result<Option<SmartHead>, HeadError>,
) -> Result<StartChoice> {
    match head {
        Ok(Some(h)) => Ok(StartChoice {
            head: Some(h),
            used: StartCutUsed::SmartCut,
            reason: None,
        }),
        Ok(None) => Ok(StartChoice::plain(StartCutUsed::Keyframe)),
        Err(HeadError::NotPossible(why)) => {
            tracing::info!("smart cut not possible, starting with an edit list: {why}");
            Ok(StartChoice {
                head: None,
                used: StartCutUsed::EditList,
                reason: Some(why),
            })
        }
        Err(HeadError::Stop(e)) => Err(e),
    }
}

/// The request's placement (with plays, the first play's); without a
/// reference time, the middle of the recording.
fn resolve_placement(req: &ExportRequest, a: &InputAnalysis) -> Result<Placement> {
    if let Some(first) = req.plays.first() {
        return Ok(first.placement());
    }
    let mut p = req.placement.ok_or_else(|| {
        EngineError::InvalidRequest("export_analysed needs a placement (offset and rate)".into())
    })?;
    if p.ref_dance_s.is_none() {
        let track = &a.picture.track;
        p.ref_dance_s = Some(0.5 * (track.start_s + track.end_s) - a.picture.recording_origin_s);
    }
    Ok(p)
}

/// What the trim is decided from, recording time; no black ending yet.
/// With plays, the song is heard from the first play's start to the last
/// one's end: the export starts and ends as a single play's does (the
/// lead-in before, nothing after the song stops), and the user's trim, a
/// black ending and the recording's own ends still apply.
fn trim_facts(req: &ExportRequest, a: &InputAnalysis, p: &Placement) -> TrimFacts {
    let origin = a.picture.recording_origin_s;
    let heard = match (req.plays.first(), req.plays.last()) {
        (Some(first), Some(last)) => (first.recording_start_s, last.recording_end_s),
        _ => (
            match req.song_heard {
                Some(h) => h.recording_start_s,
                None => p.dance_at(a.song_range.start_s),
            },
            p.dance_at(a.song_range.end_s),
        ),
    };
    TrimFacts {
        recording_start_s: a.picture.track.start_s - origin,
        recording_end_s: a.picture.track.end_s - origin,
        song_heard_start_s: heard.0,
        song_heard_end_s: heard.1,
        black_from_s: None,
        lead_in_s: req.lead_in_s,
        user_start_s: req.trim_start_s,
        user_end_s: req.trim_end_s,
    }
}

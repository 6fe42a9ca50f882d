//! A job's plays (issue 18): when the analysis found the song played
//! several times in the recording (`analysis.segments`), the teacher nudges
//! each play's offset, leaves plays out, and chooses how they are exported
//! (one video, or one clip per play; what is heard between plays). The page
//! names a play by its index in the analysis's segments: the spans come
//! from the job's checkpoint, never from the page.

use super::Number;
use crate::error::IpcError;
use crate::state::AppState;
use crate::view::JobView;
use beatsync_engine::export::{Between, PlaysLayout};
use beatsync_engine::jobs::validate::MAX_TIME_S;
use beatsync_engine::{AlignResult, ErrorCode, Play, Segment};
use serde::Deserialize;
use tauri::State;

/// A segment of the analysis as a play, at the analysis's placement.
pub fn play_of(s: &Segment) -> Play {
    Play {
        recording_start_s: s.dance_start_s,
        recording_end_s: s.dance_end_s,
        offset_s: s.offset_s,
        rate: s.rate,
        cut_before: s.cut_before,
    }
}

/// One play as the page sends it: which segment, whether it is exported,
/// and its offset (the analysis's, or the teacher's nudge).
#[derive(Debug, Clone, Deserialize)]
pub struct PlayChoice {
    pub index: Number,
    /// `true` / `false`; anything else is refused (read as a value, so a
    /// wrong type is `invalid_argument`, not a failed call).
    pub included: serde_json::Value,
    pub offset_s: Number,
}

/// The page's choices read against the checkpoint's segments: the plays
/// to export, and those left out, each at the offset the page sent (so a
/// play put back in comes back with its nudge).
#[derive(Debug, Clone, PartialEq)]
pub struct ChosenPlays {
    pub kept: Vec<Play>,
    pub left_out: Vec<Play>,
}

/// The plays to export and those left out, built from the checkpoint's
/// segments and the page's choices: every segment named once, in order; at
/// least one kept.
pub fn plays_from_choices(
    analysis: &AlignResult,
    choices: &[PlayChoice],
) -> Result<ChosenPlays, IpcError> {
    let segments = &analysis.segments;
    if choices.len() != segments.len() {
        return Err(IpcError::invalid_argument(format!(
            "{} plays sent, but the analysis found {}; send every play once (left out or not), \
             or reload the job",
            choices.len(),
            segments.len()
        )));
    }
    let last = segments.len().saturating_sub(1) as f64;
    let mut chosen = ChosenPlays {
        kept: Vec::new(),
        left_out: Vec::new(),
    };
    for (position, choice) in choices.iter().enumerate() {
        let index = choice.index.within("a play's index", 0.0, last)?;
        if index.fract() != 0.0 || index as usize != position {
            return Err(IpcError::invalid_argument(format!(
                "play index {index} is sent in place {position}: send the plays in the \
                 analysis's order, each once, by whole index"
            )));
        }
        let included = choice.included.as_bool().ok_or_else(|| {
            IpcError::invalid_argument(format!(
                "included is {}; it must be true or false",
                choice.included
            ))
        })?;
        let offset_s = choice
            .offset_s
            .within("a play's offset (s)", -MAX_TIME_S, MAX_TIME_S)?;
        let play = Play {
            offset_s,
            ..play_of(&segments[position])
        };
        if included {
            chosen.kept.push(play);
        } else {
            chosen.left_out.push(play);
        }
    }
    if chosen.kept.is_empty() {
        return Err(IpcError::invalid_argument(
            "every play is left out; keep at least one play to export",
        ));
    }
    Ok(chosen)
}

/// The teacher's plays: each segment's offset (nudged or not) and whether
/// it is exported; a left-out play keeps its offset in `plays_left_out`. The job must be analysed and not exporting or done.
#[tauri::command(rename_all = "snake_case")]
pub fn set_plays(
    state: State<'_, AppState>,
    id: String,
    plays: Vec<PlayChoice>,
) -> Result<JobView, IpcError> {
    let job = state.store.get(&id)?;
    let Some(analysis) = job.checkpoint.as_ref() else {
        return Err(IpcError::new(
            ErrorCode::InvalidState,
            "the job is not analysed yet; wait for the analysis to find its plays",
        ));
    };
    let chosen = plays_from_choices(analysis, &plays)?;
    let job = state.store.update_options(&id, |o| {
        o.plays = Some(chosen.kept);
        o.plays_left_out = chosen.left_out;
    })?;
    Ok(JobView::new(job, &state.files))
}

/// A wire name the page sent, read into its type or refused with the names allowed.
fn wire_name<T>(
    what: &str,
    sent: &str,
    parse: fn(&str) -> Option<T>,
    all: &[&str],
) -> Result<T, IpcError> {
    parse(sent).ok_or_else(|| {
        IpcError::invalid_argument(format!(
            "{what} '{sent}' is not one of {}; choose one of them",
            all.join(", ")
        ))
    })
}

/// With several plays: one video or one clip per play, and what is heard
/// between plays in one video.
#[tauri::command(rename_all = "snake_case")]
pub fn set_plays_layout(
    state: State<'_, AppState>,
    id: String,
    layout: String,
    between: String,
) -> Result<JobView, IpcError> {
    let layouts: Vec<&str> = PlaysLayout::ALL.iter().map(|l| l.as_str()).collect();
    let betweens: Vec<&str> = Between::ALL.iter().map(|b| b.as_str()).collect();
    let layout = wire_name("layout", &layout, PlaysLayout::parse, &layouts)?;
    let between = wire_name("between", &between, Between::parse, &betweens)?;
    let job = state.store.update_options(&id, |o| {
        o.layout = layout;
        o.between = between;
    })?;
    Ok(JobView::new(job, &state.files))
}

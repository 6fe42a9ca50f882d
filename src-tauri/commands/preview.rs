//! Listening: the recording and the aligned song played together from any
//! point (see `player`).

use super::plays::play_of;
use super::{blocking, Number};
use crate::audition::{check_speed, SlowMix};
use crate::error::IpcError;
use crate::player::PlayRequest;
use crate::state::AppState;
use beatsync_engine::export::PlaysLayout;
use beatsync_engine::jobs::Job;
use beatsync_engine::ErrorCode;
use beatsync_engine::{Placement, Play};
use tauri::{AppHandle, Manager, Runtime, State};

/// The placement the job plays with: the user's nudge, else the analysis;
/// `None` before the analysis.
fn placement_of(job: &Job) -> Option<Placement> {
    let a = job.checkpoint.as_ref()?;
    Some(Placement {
        offset_s: job.options.offset_s.unwrap_or(a.offset_s),
        rate: job.options.rate.unwrap_or(a.rate),
        ref_dance_s: Some(0.5 * (a.overlap.dance_start_s + a.overlap.dance_end_s)),
    })
}

/// The plays the job plays with: the teacher's (nudged, some left out),
/// else every segment when the analysis found several; empty for one play
/// (the placement above is used everywhere).
fn plays_of(job: &Job) -> Vec<Play> {
    if let Some(plays) = &job.options.plays {
        return plays.clone();
    }
    match job.checkpoint.as_ref() {
        Some(a) if a.segments.len() > 1 => a.segments.iter().map(play_of).collect(),
        _ => Vec::new(),
    }
}

/// With plays, the recording's gain between them: what the export writes
/// there (one video: ducked or silence; clips: nothing, so silence).
fn room_of(job: &Job) -> f32 {
    match job.options.layout {
        PlaysLayout::OneVideo => job.options.between.room_gain(),
        PlaysLayout::Split => 0.0,
    }
}

/// Plays the recording and the aligned song together from `from_s`, at
/// `speed` 1 (absent), 0.75 or 0.5 (pitch kept; see `audition`).
#[tauri::command(rename_all = "snake_case")]
pub async fn preview_play<R: Runtime>(
    app: AppHandle<R>,
    id: String,
    from_s: Number,
    balance: Number,
    speed: Option<Number>,
) -> Result<(), IpcError> {
    let from_s = from_s.within("from_s", 0.0, 86_400.0)?;
    let balance = balance.within("balance", -1.0, 1.0)?;
    let speed = match speed {
        Some(s) => check_speed(s.within("speed", 0.0, 1.0)?)?,
        None => 1.0,
    };
    let job = app.state::<AppState>().store.get(&id)?;
    let Some(placement) = placement_of(&job) else {
        return Err(IpcError::new(
            ErrorCode::InvalidState,
            "the job is not analysed yet; wait for the analysis to finish",
        ));
    };
    let plays = plays_of(&job);
    let room = room_of(&job);
    let handle = app.clone();
    blocking(move || {
        let state = handle.state::<AppState>();
        let recording = state.preview.pcm(&job.recording.path)?;
        let song = state.preview.pcm(&job.song.path)?;
        let slow = (speed < 1.0)
            .then(|| {
                SlowMix::render(
                    &recording,
                    &song,
                    (&placement, &plays, room),
                    (from_s, balance, speed),
                )
            })
            .transpose()?;
        state.preview.play(PlayRequest {
            recording,
            song,
            placement,
            plays,
            from_s,
            balance,
            room,
            slow,
        })
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
pub fn preview_stop(state: State<'_, AppState>) -> Result<(), IpcError> {
    state.preview.stop();
    Ok(())
}

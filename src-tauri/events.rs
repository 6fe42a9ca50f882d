//! Every event the shell sends to the page, in one place: its name and its
//! payload type. docs/ipc.md and ui/js/contract.js list them from here (a
//! test keeps both in step).

use crate::error::IpcError;
use crate::view::{AddedFile, JobView};
use serde::Serialize;
use std::path::PathBuf;
use tauri::{AppHandle, Emitter, Runtime};

/// An event the page can listen to.
pub trait Event: Serialize + Clone {
    /// The name the page listens to.
    const NAME: &'static str;
    /// The payload's shape as docs/ipc.md writes it.
    const PAYLOAD: &'static str;
    /// When it is sent.
    const WHEN: &'static str;
}

/// Files dropped on the window or handed over by a second launch, probed.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct FilesAdded(pub Vec<AddedFile>);

impl Event for FilesAdded {
    const NAME: &'static str = "files-added";
    const PAYLOAD: &'static str = "`AddedFile[]`";
    const WHEN: &'static str =
        "files dropped on the window (probed in Rust) or handed over by a second launch";
}

/// A job changed in the store: its new view (with a higher `rev`).
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct JobChanged(pub JobView);

impl Event for JobChanged {
    const NAME: &'static str = "job-changed";
    const PAYLOAD: &'static str = "`Job`";
    const WHEN: &'static str =
        "any change of a job in the store (state, stage, progress ≤ 10/s, error)";
}

#[derive(Debug, Clone, Serialize)]
pub struct JobRemoved {
    pub id: String,
}

impl Event for JobRemoved {
    const NAME: &'static str = "job-removed";
    const PAYLOAD: &'static str = "`{id}`";
    const WHEN: &'static str = "history cleared / pruned";
}

/// The audio preview started, stopped or moved.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewState {
    pub playing: bool,
    /// Recording time.
    pub position_s: f64,
    pub error: Option<IpcError>,
}

impl Event for PreviewState {
    const NAME: &'static str = "preview-state";
    const PAYLOAD: &'static str =
        "`{playing: boolean, position_s: number, error: {code, message} \\| null}`";
    const WHEN: &'static str = "playback started/stopped/moved (≤ 20/s); `error.code == 'no_audio_device'` when there is no output device";
}

/// The job database was damaged at start-up and moved aside.
#[derive(Debug, Clone, Serialize)]
pub struct StoreRecovered {
    pub moved_to: PathBuf,
    pub reason: String,
    pub recovered_jobs: usize,
}

impl Event for StoreRecovered {
    const NAME: &'static str = "store-recovered";
    const PAYLOAD: &'static str = "`{moved_to: string, reason: string, recovered_jobs: number}`";
    const WHEN: &'static str = "the job database was damaged and moved aside at start-up";
}

/// Sends an event to the page; a page that is gone is not an error.
pub fn emit<R: Runtime, E: Event>(app: &AppHandle<R>, event: E) {
    if let Err(e) = app.emit(E::NAME, event) {
        tracing::warn!("event {} not sent: {e}", E::NAME);
    }
}

/// What docs/ipc.md says about an event.
#[derive(Debug, Clone, Copy)]
pub struct EventDoc {
    pub name: &'static str,
    pub payload: &'static str,
    pub when: &'static str,
}

const fn doc<E: Event>() -> EventDoc {
    EventDoc {
        name: E::NAME,
        payload: E::PAYLOAD,
        when: E::WHEN,
    }
}

/// Every event the shell sends.
pub const ALL: &[EventDoc] = &[
    doc::<FilesAdded>(),
    doc::<JobChanged>(),
    doc::<JobRemoved>(),
    doc::<PreviewState>(),
    doc::<StoreRecovered>(),
];

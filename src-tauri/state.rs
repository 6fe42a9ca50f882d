//! What the app keeps while it runs: the job store (the single source of
//! truth), the runner doing the work, the audio preview, and the files the
//! page may name (by id).

use crate::pictures::Pictures;
use crate::player::Preview;
use crate::registry::FileRegistry;
use beatsync_engine::jobs::{EngineWork, Runner, Store};
use std::sync::{Arc, Mutex};

/// How a path typed into the Add box is confirmed before it is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypedPathConfirm {
    /// A native yes/no dialog showing the path (the page cannot answer it).
    Dialog,
    /// A fixed answer, set only from the app's environment
    /// (`BEATSYNC_TEST_CONFIRM_TYPED_PATHS=yes|no`) or by a Rust test: a
    /// WebDriver test cannot click a native dialog.
    Answer(bool),
}

impl TypedPathConfirm {
    /// From the environment the app was started with; a dialog by default.
    pub fn from_env() -> Self {
        match std::env::var("BEATSYNC_TEST_CONFIRM_TYPED_PATHS").as_deref() {
            Ok("yes") => TypedPathConfirm::Answer(true),
            Ok("no") => TypedPathConfirm::Answer(false),
            _ => TypedPathConfirm::Dialog,
        }
    }
}

pub struct AppState {
    pub store: Arc<Store>,
    /// None while another process (e.g. `beatsync jobs run`) holds the runner lock.
    pub runner: Mutex<Option<Arc<Runner<EngineWork>>>>,
    pub preview: Preview,
    pub files: FileRegistry,
    /// Frame servers and filmstrips of the recordings the picture view shows.
    pub pictures: Pictures,
    pub typed_paths: Mutex<TypedPathConfirm>,
}

impl AppState {
    /// Lets the runner know there is new work, if it is running.
    pub fn wake(&self) {
        if let Some(r) = self
            .runner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            r.wake();
        }
    }

    pub fn runner(&self) -> Option<Arc<Runner<EngineWork>>> {
        self.runner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

//! What the app keeps while it runs: the job store (the single source of
//! truth), the runner doing the work, and the audio preview.

use crate::player::Preview;
use beatsync_engine::jobs::{EngineWork, Runner, Store};
use std::sync::{Arc, Mutex};

pub struct AppState {
    pub store: Arc<Store>,
    /// None while another process (e.g. `beatsync jobs run`) holds the runner lock.
    pub runner: Mutex<Option<Arc<Runner<EngineWork>>>>,
    pub preview: Preview,
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

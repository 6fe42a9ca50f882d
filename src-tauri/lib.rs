//! BeatSync desktop app: a thin Tauri shell over `beatsync-engine`.
//! Commands validate and delegate; the engine does the media work.

pub mod commands;
pub mod error;

use tauri::Runtime;

/// Registers commands, plugins and state. Shared by `run()` and the tests
/// (which pass a mock-runtime builder).
pub fn builder<R: Runtime>(b: tauri::Builder<R>) -> tauri::Builder<R> {
    b.invoke_handler(tauri::generate_handler![commands::probe_media])
}

/// The app's compiled configuration: tauri.conf.json, capabilities, ui/ assets.
pub fn context<R: Runtime>() -> tauri::Context<R> {
    tauri::generate_context!()
}

/// Why the app could not start, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no graphical display found (DISPLAY and WAYLAND_DISPLAY are not set); start BeatSync from a desktop session, or under Xvfb: xvfb-run beatsync-app")]
    NoDisplay,
    #[error("the window could not be created: {0}")]
    Tauri(#[from] tauri::Error),
}

pub fn run() -> Result<(), StartError> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    if cfg!(target_os = "linux")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return Err(StartError::NoDisplay);
    }
    beatsync_engine::init();
    builder(tauri::Builder::default()).run(context())?;
    Ok(())
}

//! BeatSync desktop app: a thin Tauri shell over `beatsync-engine`.
//! Commands validate and delegate; the engine does the media work; the job
//! store is the single source of truth and the only source of job events.

pub mod audition;
pub mod commands;
pub mod contract;
pub mod error;
pub mod events;
mod handover;
mod heap;
pub mod launch;
pub mod logging;
pub mod pictures;
pub mod player;
pub mod registry;
pub mod state;
pub mod view;
pub mod webkit;

use beatsync_engine::jobs::{EngineWork, JobsError, Runner, RunnerConfig, Store, StoreEvent};
use commands::{about, files, jobs, output, picture, plays, preview, settings};
use events::{emit, FilesAdded, JobChanged, JobRemoved, StoreRecovered};
use state::{AppState, TypedPathConfirm};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tauri::{AppHandle, DragDropEvent, Manager, Runtime, WindowEvent};
use view::JobView;

/// Registers commands, state, the job runner, event forwarding and the drop
/// handler. Shared by `run()` and the tests (which pass a mock-runtime builder).
pub fn builder<R: Runtime>(b: tauri::Builder<R>) -> tauri::Builder<R> {
    b.invoke_handler(tauri::generate_handler![
        files::probe_media,
        files::add_files,
        files::pick_files,
        settings::pick_folder,
        settings::get_settings,
        settings::set_settings,
        files::waveform,
        jobs::analyze,
        files::match_songs,
        jobs::confirm_song,
        launch::page_ready,
        jobs::set_placement,
        jobs::set_trim,
        plays::set_plays,
        plays::set_plays_layout,
        jobs::export,
        jobs::export_all,
        jobs::cancel_job,
        jobs::retry_job,
        jobs::list_jobs,
        jobs::clear_history,
        output::open_path,
        output::reveal_path,
        preview::preview_play,
        preview::preview_stop,
        about::try_sample,
        about::about,
        picture::frame_step,
        picture::filmstrip,
        picture::close_pictures,
    ])
    .register_asynchronous_uri_scheme_protocol(pictures::SCHEME, |ctx, request, responder| {
        let app = ctx.app_handle().clone();
        // Only the main window's page may ask (as for the commands).
        let main = ctx.webview_label() == "main";
        tauri::async_runtime::spawn_blocking(move || {
            let response = match app.try_state::<AppState>() {
                Some(state) if main => pictures::answer(&state.files, &state.pictures, &request),
                _ => pictures::forbidden(),
            };
            responder.respond(response);
        });
    })
    .setup(|app| {
        setup(app.handle())?;
        Ok(())
    })
    .on_window_event(|window, event| match event {
        WindowEvent::DragDrop(DragDropEvent::Drop { paths, .. }) => {
            hand_over_files(window.app_handle().clone(), paths.clone());
        }
        WindowEvent::CloseRequested { api, .. } => {
            let runner = window
                .app_handle()
                .try_state::<AppState>()
                .and_then(|s| s.runner());
            // Running work is handed back before the window goes: the jobs
            // show "finishing…" (stage `stopping`) meanwhile; then it closes.
            if let Some(r) = runner.filter(|r| r.is_busy()) {
                api.prevent_close();
                r.stop();
                let window = window.clone();
                tauri::async_runtime::spawn(async move {
                    r.wait_idle().await;
                    let _ = window.close();
                });
            }
        }
        _ => {}
    })
}

/// The app's compiled configuration: tauri.conf.json, capabilities, ui/ assets.
pub fn context<R: Runtime>() -> tauri::Context<R> {
    tauri::generate_context!()
}

/// Opens the job store, starts the runner and the event forwarding. Runs from
/// the setup hook; tests on the mock runtime (whose event loop never starts)
/// call it directly.
pub fn setup<R: Runtime>(app: &AppHandle<R>) -> Result<(), JobsError> {
    let dir = Store::default_dir()?;
    let (store, recovery) = Store::open(&dir)?;
    // A long take's decoded samples go to a file on disk, not to a RAM-backed /tmp.
    let spill = dir.join("tmp");
    match std::fs::create_dir_all(&spill) {
        Ok(()) => beatsync_engine::media::set_spill_dir(spill),
        Err(e) => tracing::warn!(
            "{}: {e}; long takes spill to the system's temporary folder",
            spill.display()
        ),
    }
    let store = Arc::new(store);
    let events = store.subscribe();
    let emitter = app.clone();
    let notify: player::Notify = Arc::new(move |state| emit(&emitter, state));
    app.manage(AppState {
        store,
        runner: Mutex::new(None),
        preview: player::Preview::new(notify),
        files: registry::FileRegistry::default(),
        pictures: pictures::Pictures::default(),
        typed_paths: Mutex::new(TypedPathConfirm::from_env()),
    });
    forward_store_events(app.clone(), events);
    start_runner(app.clone());
    if let Some(r) = recovery {
        tracing::error!(
            "job database damaged: moved to {}, {} job(s) recovered",
            r.moved_to.display(),
            r.recovered_jobs
        );
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            // Give the page time to subscribe before telling it.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            emit(
                &app,
                StoreRecovered {
                    moved_to: r.moved_to,
                    reason: r.reason,
                    recovered_jobs: r.recovered_jobs,
                },
            );
        });
    }
    launch::install(app);
    Ok(())
}

/// Files dropped on the window or the app was launched with (`launch`):
/// probed on the same path as `add_files`, then announced as `files-added`.
pub(crate) fn hand_over_files<R: Runtime>(app: AppHandle<R>, paths: Vec<PathBuf>) {
    tauri::async_runtime::spawn(async move {
        let added = files::add_paths(&app, paths).await;
        emit(&app, FilesAdded(added));
    });
}

/// Store change → broadcast channel → Tauri event: the one place job events come from.
fn forward_store_events<R: Runtime>(
    app: AppHandle<R>,
    mut rx: tokio::sync::broadcast::Receiver<StoreEvent>,
) {
    tauri::async_runtime::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(StoreEvent::JobChanged(job)) => {
                    let files = &app.state::<AppState>().files;
                    emit(&app, JobChanged(JobView::new(*job, files)));
                }
                Ok(StoreEvent::JobRemoved { id }) => {
                    emit(&app, JobRemoved { id });
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    // Missed some: send every job's current state instead.
                    tracing::warn!("job events lagged by {n}; resending all");
                    let state = app.state::<AppState>();
                    if let Ok(jobs) = state.store.list(&[], 1000) {
                        for j in jobs {
                            emit(&app, JobChanged(JobView::new(j, &state.files)));
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// Runs the job runner; while another process holds the store's runner lock
/// (e.g. `beatsync jobs run`), or the store cannot be used, tries again every
/// few seconds. A runner that returns without being stopped is let go of
/// (and so its lock) and started again.
fn start_runner<R: Runtime>(app: AppHandle<R>) {
    tauri::async_runtime::spawn(async move {
        loop {
            let store = app.state::<AppState>().store.clone();
            match Runner::start(
                store,
                Arc::new(EngineWork::default()),
                RunnerConfig::default(),
            ) {
                Ok(runner) => {
                    let slot = &app.state::<AppState>().runner;
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(runner.clone());
                    let result = runner.clone().run(false).await;
                    let stopped = runner.is_stopping();
                    if !stopped {
                        // Never keep the lock of a runner that is not running.
                        *slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    }
                    drop(runner);
                    if let Err(e) = result {
                        tracing::error!("job runner ended: {e}");
                    }
                    if stopped {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    tracing::warn!("job runner not started: {e}");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    });
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
    // Before any thread starts: the environment and the heap are the process's.
    heap::limit_arenas();
    webkit::configure();
    let _log = logging::init();
    let context = context();
    // A second launch: its files go to the running window, nothing starts here.
    if handover::to_running_instance(&context.config().identifier) {
        return Ok(());
    }
    if cfg!(target_os = "linux")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return Err(StartError::NoDisplay);
    }
    beatsync_engine::init();
    // Single instance first: a second launch focuses this window and hands over its files.
    let b = tauri::Builder::default()
        .manage(launch::LaunchQueue::holding(launch::command_line_files()))
        .plugin(tauri_plugin_single_instance::init(|app, argv, cwd| {
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.unminimize();
                let _ = w.set_focus();
            }
            launch::offer(
                app,
                launch::files_from_args(argv, std::path::Path::new(&cwd)),
            );
        }))
        .plugin(tauri_plugin_window_state::Builder::default().build());
    let app = builder(b).build(context)?;
    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            // Hand running work back to the queue cleanly (it resumes next
            // start, and the stop is not counted as a crash), waiting as long
            // as that takes: the runner's watchdog abandons stuck work.
            if let Some(r) = handle.try_state::<AppState>().and_then(|s| s.runner()) {
                r.stop();
                r.wait_idle_blocking();
            }
        }
    });
    Ok(())
}

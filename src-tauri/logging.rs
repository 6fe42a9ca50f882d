//! The app's log: to stderr as before, and to files in the data folder's
//! `logs/` (one a day, `beatsync.YYYY-MM-DD.log`, the last seven kept), so
//! that a teacher can send what happened without a terminal.

use beatsync_engine::jobs::Store;
use std::path::PathBuf;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Days of logs kept.
const KEEP_FILES: usize = 7;

/// Where the log files go: `logs/` in the data folder (beside the jobs).
pub fn log_dir() -> Option<PathBuf> {
    Store::default_dir().ok().map(|d| d.join("logs"))
}

/// Starts logging; the returned guard flushes the file when dropped (keep
/// it for the life of the app). Without a usable log folder, stderr only.
pub fn init() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let file = log_dir().and_then(|dir| {
        std::fs::create_dir_all(&dir).ok()?;
        tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("beatsync")
            .filename_suffix("log")
            .max_log_files(KEEP_FILES)
            .build(&dir)
            .ok()
    });
    let (file_layer, guard) = match file {
        Some(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = fmt::layer()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(filter());
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter()),
        )
        .with(file_layer)
        .try_init();
    guard
}

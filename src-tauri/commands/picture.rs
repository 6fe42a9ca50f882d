//! The picture view's commands: frame stepping by the recording's own frame
//! times, and its filmstrip (the pictures themselves come through the
//! `frame:` URI scheme, see `crate::pictures`).

use super::{blocking, Number};
use crate::error::IpcError;
use crate::pictures::DEFAULT_STRIP_EVERY_MS;
use crate::state::AppState;
use beatsync_engine::frames::FrameSpan;
use beatsync_engine::jobs::Store;
use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime};

/// Most frames one `frame_step` moves.
const MAX_STEP: f64 = 1000.0;

/// The frame `frames` away (negative: back) from the one shown at `at_s` in
/// a class video the user added, by its id.
#[tauri::command(rename_all = "snake_case")]
pub async fn frame_step<R: Runtime>(
    app: AppHandle<R>,
    id: String,
    at_s: Number,
    frames: Number,
) -> Result<FrameSpan, IpcError> {
    let at_s = at_s.within("at_s", 0.0, 86_400.0)?;
    let frames = frames.within("frames", -MAX_STEP, MAX_STEP)?;
    if frames.fract() != 0.0 {
        return Err(IpcError::invalid_argument(format!(
            "frames is {frames}; it must be a whole number of frames"
        )));
    }
    let path = app.state::<AppState>().files.resolve(&id)?;
    blocking(move || {
        let state = app.state::<AppState>();
        state.pictures.step(&id, &path, at_s, frames as i64)
    })
    .await
}

/// A filmstrip as the page gets it: thumbnails by index (served as
/// `frame://localhost/<id>/strip/<index>?e=<every ms>`), never the folder
/// they are in.
#[derive(Debug, Clone, Serialize)]
pub struct FilmstripView {
    pub every_s: f64,
    pub width: u32,
    pub height: u32,
    pub thumbnails: Vec<ThumbnailView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThumbnailView {
    pub index: usize,
    /// The time it stands for and the keyframe's time shown, recording time (s).
    pub at_s: f64,
    pub frame_s: f64,
}

/// Thumbnails along a class video, one every `every_s` (whole ms, 2 s when
/// not given), made on a blocking thread, cached on disk under the data
/// folder by the file's fingerprint. A page asks a sparse strip first (it
/// covers the view sooner), then the dense one, which reuses its pictures.
/// Once the dense strip is made, the recording's proxy starts (every frame
/// kept small on disk, so that a seek is a read: `Pictures::start_proxy`).
#[tauri::command(rename_all = "snake_case")]
pub async fn filmstrip<R: Runtime>(
    app: AppHandle<R>,
    id: String,
    every_s: Option<Number>,
) -> Result<FilmstripView, IpcError> {
    let every_ms = match every_s {
        Some(e) => (e.within("every_s", 0.1, 600.0)? * 1000.0).round() as u64,
        None => DEFAULT_STRIP_EVERY_MS,
    };
    let path = app.state::<AppState>().files.resolve(&id)?;
    let data = Store::default_dir()?;
    blocking(move || {
        let pictures = &app.state::<AppState>().pictures;
        let strip = pictures.filmstrip(&id, &path, &data.join("filmstrips"), every_ms)?;
        if every_ms == DEFAULT_STRIP_EVERY_MS {
            // After the strip, not beside it: the strip is what the teacher waits for.
            if let Err(e) = pictures.start_proxy(&id, &path, &data.join("proxies")) {
                tracing::warn!("proxy of {id}: {}", e.message);
            }
        }
        Ok(FilmstripView {
            every_s: strip.every_s,
            width: strip.width,
            height: strip.height,
            thumbnails: strip
                .thumbnails
                .iter()
                .map(|t| ThumbnailView {
                    index: t.index,
                    at_s: t.at_s,
                    frame_s: t.frame_s,
                })
                .collect(),
        })
    })
    .await
}

/// The file `id` left the list: its frame server (decoder, cached frames)
/// and filmstrip are closed. Whether anything was open; an id the shell never
/// handed out is refused like everywhere else.
#[tauri::command(rename_all = "snake_case")]
pub async fn close_pictures<R: Runtime>(app: AppHandle<R>, id: String) -> Result<bool, IpcError> {
    app.state::<AppState>().files.resolve(&id)?;
    blocking(move || Ok(app.state::<AppState>().pictures.close(&id))).await
}

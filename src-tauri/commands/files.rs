//! Adding files and reading them. A window drop, the file dialog, a second
//! launch and a confirmed typed path all take `add_paths`: each file is
//! registered (canonical path → random id), probed and given a role. The
//! page receives ids; `probe_media` and `waveform` take them.

use super::{blocking, non_empty, Number};
use crate::error::IpcError;
use crate::state::{AppState, TypedPathConfirm};
use crate::view::{AddedFile, SongMatch};
use beatsync_engine::media::Waveform;
use beatsync_engine::{self as engine, CancelToken, EngineError, MediaInfo, Role};
use std::path::PathBuf;
use tauri::{AppHandle, Manager, Runtime, State};

/// A class video for a video with sound, the song for sound only; an error otherwise.
pub fn role_of(info: &MediaInfo) -> Result<Role, EngineError> {
    info.require_audio()?;
    Ok(if info.video().is_some() {
        Role::Class
    } else {
        Role::Song
    })
}

/// Registers and probes each path a user act named (on blocking threads).
/// One file's failure is that file's entry; the others are still added.
pub async fn add_paths<R: Runtime>(app: &AppHandle<R>, paths: Vec<PathBuf>) -> Vec<AddedFile> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let registered = app.state::<AppState>().files.register(&path);
        let (id, canonical) = match registered {
            Ok(r) => r,
            Err(e) => {
                out.push(AddedFile::rejected(path, e.into()));
                continue;
            }
        };
        let p = canonical.clone();
        let probed = blocking(move || {
            let info = engine::probe(&p)?;
            let role = role_of(&info)?;
            Ok((info, role))
        })
        .await;
        out.push(match probed {
            Ok((info, role)) => AddedFile::accepted(id, canonical, info, role),
            Err(e) => AddedFile::rejected(canonical, e.into()),
        });
    }
    out
}

/// Probes a file the user added, by its id.
#[tauri::command(rename_all = "snake_case")]
pub async fn probe_media(state: State<'_, AppState>, id: String) -> Result<MediaInfo, IpcError> {
    let path = state.files.resolve(&id)?;
    blocking(move || Ok(engine::probe(&path)?)).await
}

/// Paths the user typed into the Add box: shown back in a native dialog
/// (which the page cannot answer for the user) and added only when the user
/// says yes; `[]` when declined.
#[tauri::command(rename_all = "snake_case")]
pub async fn add_files<R: Runtime>(
    app: AppHandle<R>,
    paths: Vec<String>,
) -> Result<Vec<AddedFile>, IpcError> {
    let paths = paths
        .iter()
        .map(|p| non_empty(p))
        .collect::<Result<Vec<_>, _>>()?;
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mode = *app
        .state::<AppState>()
        .typed_paths
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let confirmed = match mode {
        TypedPathConfirm::Answer(yes) => yes,
        TypedPathConfirm::Dialog => confirm_in_dialog(&paths).await,
    };
    if !confirmed {
        return Ok(Vec::new());
    }
    Ok(add_paths(&app, paths).await)
}

/// The native yes/no question for typed paths.
async fn confirm_in_dialog(paths: &[PathBuf]) -> bool {
    let listed: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let answer = rfd::AsyncMessageDialog::new()
        .set_title("Add files to BeatSync?")
        .set_description(format!(
            "Add these files to BeatSync?\n\n{}",
            listed.join("\n")
        ))
        .set_buttons(rfd::MessageButtons::YesNo)
        .set_level(rfd::MessageLevel::Info)
        .show()
        .await;
    answer == rfd::MessageDialogResult::Yes
}

#[tauri::command(rename_all = "snake_case")]
pub async fn pick_files<R: Runtime>(app: AppHandle<R>) -> Result<Vec<AddedFile>, IpcError> {
    let picked = rfd::AsyncFileDialog::new()
        .set_title("Add class videos and the song")
        .add_filter(
            "Video and audio",
            &[
                "mp4", "mov", "m4v", "mkv", "avi", "webm", "m4a", "mp3", "wav", "aac", "flac",
                "ogg", "opus",
            ],
        )
        .pick_files()
        .await
        .unwrap_or_default();
    let paths = picked.into_iter().map(|h| h.path().to_path_buf()).collect();
    Ok(add_paths(&app, paths).await)
}

/// Most songs one `match_songs` call tries (a drop of a whole music folder
/// is not a pairing question).
const MAX_SONGS_TO_MATCH: usize = 12;

/// Aligns one class video against each song (file ids), for pairing videos
/// with songs when several were added (the UI takes the sure one, or asks).
/// `dance` is the IPC argument's name (the contract with the page).
#[tauri::command(rename_all = "snake_case")]
pub async fn match_songs(
    state: State<'_, AppState>,
    dance: String,
    songs: Vec<String>,
) -> Result<Vec<SongMatch>, IpcError> {
    if songs.is_empty() || songs.len() > MAX_SONGS_TO_MATCH {
        return Err(IpcError::invalid_argument(format!(
            "give between 1 and {MAX_SONGS_TO_MATCH} songs to match"
        )));
    }
    let recording = state.files.resolve(&dance)?;
    let songs = songs
        .into_iter()
        .map(|id| Ok((state.files.resolve(&id)?, id)))
        .collect::<Result<Vec<_>, IpcError>>()?;
    blocking(move || {
        let paths: Vec<&std::path::Path> = songs.iter().map(|(p, _)| p.as_path()).collect();
        let aligned = engine::align_against_songs(
            &recording,
            &paths,
            &engine::AlignOptions::default(),
            &CancelToken::new(),
        );
        let ids = songs.iter().map(|(_, id)| id.clone());
        Ok(match aligned {
            Ok(each) => ids.zip(each).map(|(id, a)| SongMatch::of(id, a)).collect(),
            // The class video itself could not be read: every song says so.
            Err(e) => {
                let e = e.to_payload();
                ids.map(|id| SongMatch::failed(id, e.clone())).collect()
            }
        })
    })
    .await
}

/// Waveform peaks of a file the user added, computed in Rust (the UI never decodes media).
#[tauri::command(rename_all = "snake_case")]
pub async fn waveform(
    state: State<'_, AppState>,
    id: String,
    peaks_per_s: Number,
) -> Result<Waveform, IpcError> {
    let peaks_per_s = peaks_per_s.within("peaks_per_s", 1.0, 1000.0)?;
    let path = state.files.resolve(&id)?;
    blocking(move || {
        Ok(engine::media::waveform::waveform(
            &path,
            peaks_per_s,
            &CancelToken::new(),
        )?)
    })
    .await
}

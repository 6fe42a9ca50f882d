//! What export needs to know about its inputs that does not depend on the
//! placement, read once ([`analyse_inputs`]); the `sync` command runs it
//! while the aligner works.

use super::detect::black::look_at_the_end;
use super::detect::song::{song_audible_range, SongAudibleRange};
use super::progress::Progress;
use super::source::{Recording, Song};
use super::video::{complete_params, measure_track, probed_params, VideoTrack};
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::media::ffi::OwnedParams;
use crate::media::fingerprint::FileStamp;
use std::path::Path;
use std::time::Instant;

/// The recording, opened, and the facts of both inputs. (The song's
/// encoders open it for themselves, on their own threads.)
pub(crate) struct InputAnalysis {
    pub recording: Recording,
    pub picture: Picture,
    pub song_range: SongAudibleRange,
    /// The inputs as they were when read, to notice a change before the
    /// output gets its name.
    pub stamps: Vec<FileStamp>,
    pub elapsed_ms: u64,
}

/// The recording's picture facts.
pub(crate) struct Picture {
    pub track: VideoTrack,
    /// Container time of the recording's first decoded audio sample:
    /// recording time 0 (the aligner's clock).
    pub recording_origin_s: f64,
    /// Whether the recording may end in a black stretch (checked while the
    /// aligner runs, so that a normal ending costs nothing later).
    pub last_frame_black: Option<bool>,
    /// The video stream's complete codec parameters, for the output stream.
    pub params: OwnedParams,
}

/// Reads what export needs from both inputs (probe, video extent, song's
/// audible range, whether the last frame is black). Decodes of the song its
/// start (up to its first audible block) and its last 30 s, at its own rate
/// in mono; of the video at most the last GOP, whose decoder also completes
/// the video stream's parameters for the output. MP4/MOV inputs are read
/// from their header alone, without FFmpeg's stream-info probing.
pub(crate) fn analyse_inputs(
    recording_path: &Path,
    song_path: &Path,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<InputAnalysis> {
    let t0 = Instant::now();
    crate::init();
    let stamps = vec![FileStamp::of(recording_path)?, FileStamp::of(song_path)?];
    let mut recording = Recording::open(recording_path)?;
    let mut song = Song::open(song_path)?;
    cancel.check()?;
    // The song's envelope and the recording's picture facts are independent:
    // read them side by side.
    let (song_range, picture) = std::thread::scope(|scope| {
        let rec = &mut recording;
        let picture = scope.spawn(move || picture_facts(rec, cancel));
        let mut paced = Progress::new(progress);
        let range = song_audible_range(&mut song, cancel, &mut |f| paced.tick("analyse", f));
        let picture = picture.join().unwrap_or_else(|_| {
            Err(EngineError::media(
                recording_path,
                "reading the video failed",
            ))
        });
        (range, picture)
    });
    let picture = picture?;
    Ok(InputAnalysis {
        recording,
        picture,
        song_range: song_range?,
        stamps,
        elapsed_ms: t0.elapsed().as_millis() as u64,
    })
}

/// Where the picture and the sound start, where the picture ends, whether
/// it ends black, and the stream's complete parameters.
fn picture_facts(rec: &mut Recording, cancel: &CancelToken) -> Result<Picture> {
    let start = rec.read_start()?;
    let track = measure_track(&mut rec.video(), start.first_video_pts)?;
    cancel.check()?;
    // The decoder that looks at the last frames also completes the
    // stream's parameters for the output (one keyframe decoded).
    let (black, params) = look_at_the_end(rec.video(), track.end_s, cancel)?;
    let params = match params {
        Some(p) => p,
        None => match complete_params(&mut rec.video(), &track)? {
            Some(p) => p,
            // The first keyframe did not decode: let FFmpeg's probing do it.
            None => probed_params(&rec.path)?,
        },
    };
    Ok(Picture {
        track,
        recording_origin_s: start.audio_origin_s,
        last_frame_black: Some(black),
        params,
    })
}

//! `demo`: a short demo class video and its song, made in process, so a
//! newcomer can see BeatSync work before having media of their own
//! (`beatsync demo DIR`; the app's "Try a sample" calls the same function).
//!
//! The song is synthesised (drums, bass, chords, a lead line). The class
//! video's sound is that song as a phone in a studio hears it — small
//! speakers, echo, talk, counting, steps, noise, clipping — starting at a
//! known offset; its picture is a generated pattern moving on the beats.
//! Nothing is downloaded and no outside program runs: the files are encoded
//! through the FFmpeg libraries.

mod encode;
mod picture;
mod rng;
mod room;
pub(crate) mod song;
mod voice;

use crate::error::{EngineError, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// File names of the demo pair inside the chosen folder.
pub const CLASS_FILE: &str = "beatsync-demo-class.mp4";
pub const SONG_FILE: &str = "beatsync-demo-song.m4a";

/// The seed of the published demo: the same files on every machine.
const SEED: u64 = 2024;
/// The song starts this many samples (at 44.1 kHz) into the recording:
/// about 4.319 s, not a whole number of beats or video frames.
const OFFSET_SAMPLES: usize = 190_453;
/// The teacher stops the music after this much of the song.
const PLAY_S: f64 = 30.5;
/// Talk after the music stops.
const AFTER_S: f64 = 2.5;

/// What [`make_demo`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct DemoFiles {
    pub class_video: PathBuf,
    pub song: PathBuf,
    /// The known answer: `class_time = song_time + offset_s`.
    pub offset_s: f64,
    /// Length of the class video, seconds.
    pub class_duration_s: f64,
    /// The class video's picture codec (`libx264`, else `mpeg4`).
    pub video_codec: String,
}

/// Writes the demo class video and its song into `dir` (created if needed),
/// replacing an earlier demo pair there. Each file is written under a
/// temporary name and renamed when complete.
pub fn make_demo(dir: &Path) -> Result<DemoFiles> {
    crate::init();
    std::fs::create_dir_all(dir).map_err(|e| EngineError::OutputDir {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let take = room::Take {
        offset_samples: OFFSET_SAMPLES,
        play_s: PLAY_S,
        total_s: OFFSET_SAMPLES as f64 / f64::from(song::SAMPLE_RATE) + PLAY_S + AFTER_S,
    };
    let mut rng = rng::Rng::new(SEED);
    let tune = song::compose(SEED);
    let recording = room::record(&tune, &take, &mut rng);

    let song_path = dir.join(SONG_FILE);
    let stereo = encode::Sound {
        channels: vec![&tune.left, &tune.right],
        rate: song::SAMPLE_RATE,
        bitrate: 192_000,
    };
    write_whole(&song_path, |tmp| encode::write_song(tmp, &stereo))?;

    let class_path = dir.join(CLASS_FILE);
    let mono = encode::Sound {
        channels: vec![&recording],
        rate: song::SAMPLE_RATE,
        bitrate: 96_000,
    };
    let heard = picture::Picture {
        beats_s: tune
            .beats_s
            .iter()
            .filter(|&&b| b < take.play_s)
            .map(|b| b + take.offset_s())
            .collect(),
    };
    let frames = (take.total_s * f64::from(picture::FPS)) as usize;
    let video_codec = write_whole(&class_path, |tmp| {
        encode::write_class(tmp, &mono, &heard, frames)
    })?;
    Ok(DemoFiles {
        class_video: class_path,
        song: song_path,
        offset_s: take.offset_s(),
        class_duration_s: frames as f64 / f64::from(picture::FPS),
        video_codec,
    })
}

/// Runs `write` on a temporary name beside `path`, then renames it into
/// place; a failed write leaves no file behind under either name.
fn write_whole<T>(path: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = write(&tmp).and_then(|value| {
        std::fs::rename(&tmp, path)
            .map(|()| value)
            .map_err(|e| EngineError::OutputWrite {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

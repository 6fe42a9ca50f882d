//! What an export is asked to do: the inputs, where the song goes, the trim
//! overrides and how the picture's start and the audio are made.

use super::audio::RetimeMode;
use super::output::{fit_name, MAX_FINAL_NAME_BYTES, PARTIAL_PREFIX};
use crate::error::{wire_names, EngineError, Result};
use crate::timeline::{validate_plays, Placement, Play};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How the frame-accurate start is asked to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StartCut {
    /// Copy from the previous keyframe; an MP4 edit list starts presentation
    /// at the cut. Bit-exact picture, but players that ignore edit lists
    /// show the frames before the cut and the song out of place.
    EditList,
    /// Re-encode from the cut to the next keyframe, copy the rest: right in
    /// every player. The default; when the video cannot be re-encoded here
    /// the export falls back to the edit list and its report says why.
    #[default]
    SmartCut,
}

/// What to put in the audio track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioChoice {
    /// AAC bit rate for encoding, bit/s.
    pub bitrate: u32,
    /// Copy the song's packets when it is AAC and the rate is 1, or within
    /// `audio::PICTURE_DRIFT_LIMIT` of 1 (the picture then follows the
    /// song's clock): no generation loss, about a remux's cost; otherwise
    /// encode.
    pub copy_if_possible: bool,
}

impl Default for AudioChoice {
    fn default() -> Self {
        Self {
            bitrate: 192_000,
            copy_if_possible: false,
        }
    }
}

/// Where the song is heard in the recording, when the aligner knows it
/// (`AlignResult.overlap`); recording time, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SongHeard {
    #[serde(rename = "dance_start_s")]
    pub recording_start_s: f64,
}

wire_names! {
    /// What an export of a recording with several plays writes.
    #[derive(Default)]
    pub enum PlaysLayout {
        #[default]
        /// One video: the song placed in each play, the recording's own
        /// sound (or silence) between plays.
        OneVideo = "one_video",
        /// One clip per play, `<name>_play01.mp4`, … each trimmed to its play.
        Split = "split",
    }
}

wire_names! {
    /// What is heard between plays in a one-video export.
    #[derive(Default)]
    pub enum Between {
        #[default]
        /// The recording's own sound, ducked.
        Recorded = "recorded",
        Silence = "silence",
    }
}

impl Between {
    /// The recording's own sound is lowered this much between plays (dB).
    pub const DUCK_DB: f64 = -12.0;

    /// The gain (linear) of the recording's sound between plays, relative
    /// to the song's inside them: what one video writes there, and what the
    /// preview plays there.
    pub fn room_gain(self) -> f32 {
        match self {
            Between::Recorded => 10f64.powf(Self::DUCK_DB / 20.0) as f32,
            Between::Silence => 0.0,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRequest {
    /// The class recording (video). The JSON keys stay `dance` and `bgm`,
    /// the names scripts know.
    #[serde(rename = "dance")]
    pub recording: PathBuf,
    /// The clean song.
    #[serde(rename = "bgm")]
    pub song: PathBuf,
    /// Folder to write into.
    pub out_dir: PathBuf,
    /// File name; default `<recording stem>_beatsync.mp4`. `.mp4` is added if missing.
    #[serde(default)]
    pub name: Option<String>,
    /// Where the song goes; `None`: run the aligner ([`crate::align_files`]).
    #[serde(default)]
    pub placement: Option<Placement>,
    /// From the aligner; when absent it is computed from the placement and
    /// the song's own audio.
    #[serde(default)]
    pub song_heard: Option<SongHeard>,
    /// Every play to place, in recording order (`AlignResult.segments`,
    /// nudged or left out by the teacher). Empty: one play, `placement`.
    #[serde(default)]
    pub plays: Vec<Play>,
    /// With several plays: one video, or one clip per play.
    #[serde(default)]
    pub layout: PlaysLayout,
    /// With several plays in one video: what is heard between them.
    #[serde(default)]
    pub between: Between,
    /// Seconds kept before the song starts being heard.
    #[serde(default)]
    pub lead_in_s: f64,
    /// The user's trim (recording time), overriding the automatic start / end.
    #[serde(default)]
    pub trim_start_s: Option<f64>,
    #[serde(default)]
    pub trim_end_s: Option<f64>,
    #[serde(default)]
    pub start_cut: StartCut,
    #[serde(default)]
    pub audio: AudioChoice,
    #[serde(default)]
    pub retime: RetimeMode,
    /// Look for a final stretch of black picture (phone face down).
    #[serde(default = "yes")]
    pub detect_black_tail: bool,
    /// Mark the video to be shown mirrored (left-right), through its display
    /// matrix: the picture is copied as it is, and a player that honours the
    /// matrix flips it (not every player does).
    #[serde(default)]
    pub mirror: bool,
    /// Export even when the aligner is not sure the song is the right one
    /// (the user listened and confirmed); without it such a request fails
    /// with `needs_confirmation`. Only read when the request has no placement.
    pub accept_unsure: bool,
    /// Refuse up front when the folder's free space is clearly too small.
    #[serde(default = "yes")]
    pub check_free_space: bool,
    /// Tests make the output's writes fail with it; never read from JSON.
    #[doc(hidden)]
    #[serde(skip)]
    pub write_fault: Option<super::WriteFault>,
}

impl ExportRequest {
    pub fn new(
        recording: &Path,
        song: &Path,
        out_dir: &Path,
        placement: Option<Placement>,
    ) -> Self {
        Self {
            recording: recording.to_path_buf(),
            song: song.to_path_buf(),
            out_dir: out_dir.to_path_buf(),
            name: None,
            placement,
            song_heard: None,
            plays: Vec::new(),
            layout: PlaysLayout::default(),
            between: Between::default(),
            lead_in_s: 0.0,
            trim_start_s: None,
            trim_end_s: None,
            start_cut: StartCut::default(),
            audio: AudioChoice::default(),
            retime: RetimeMode::default(),
            detect_black_tail: true,
            mirror: false,
            accept_unsure: false,
            check_free_space: true,
            write_fault: None,
        }
    }
}

/// Checks every value of a request where it enters the engine.
pub(crate) fn validate(req: &ExportRequest) -> Result<()> {
    if let Some(p) = &req.placement {
        p.validate()?;
    }
    validate_plays(&req.plays)?;
    if !(req.lead_in_s.is_finite() && req.lead_in_s >= 0.0) {
        return Err(EngineError::InvalidRequest(
            "the lead-in must be zero or a positive number of seconds".into(),
        ));
    }
    if !(32_000..=512_000).contains(&req.audio.bitrate) {
        return Err(EngineError::InvalidRequest(format!(
            "audio bit rate {} is outside 32-512 kbit/s",
            req.audio.bitrate / 1000
        )));
    }
    output_name(req)?;
    Ok(())
}

/// The output file name: `<recording stem>_beatsync.mp4` or the user's name.
pub(crate) fn output_name(req: &ExportRequest) -> Result<String> {
    let base = match &req.name {
        Some(n) => {
            let n = n.trim();
            if n.is_empty()
                || n == "."
                || n == ".."
                || n.contains(['/', '\\', '\0'])
                || n.starts_with(PARTIAL_PREFIX)
            {
                return Err(EngineError::InvalidRequest(format!(
                    "'{n}' is not a usable file name (no folders, not empty)"
                )));
            }
            n.to_string()
        }
        None => {
            // A name that is not UTF-8 gets U+FFFD where its stray bytes were.
            let stem = req
                .recording
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "video".into());
            return Ok(fit_name(&stem, DEFAULT_SUFFIX, MAX_FINAL_NAME_BYTES));
        }
    };
    // A long name loses the end of its stem, never its extension.
    let has_ext = base.len() > 4
        && base.is_char_boundary(base.len() - 4)
        && base[base.len() - 4..].eq_ignore_ascii_case(".mp4");
    let (stem, ext) = if has_ext {
        base.split_at(base.len() - 4)
    } else {
        (base.as_str(), ".mp4")
    };
    Ok(fit_name(stem, ext, MAX_FINAL_NAME_BYTES))
}

/// The name of clip `index` (from 0) of a split export:
/// `<stem>_play01.mp4`, `_play02`, … where the stem is the user's name (its
/// `.mp4` taken off) or the class video's.
pub(crate) fn clip_name(req: &ExportRequest, index: usize) -> Result<String> {
    let stem = match &req.name {
        Some(_) => {
            let name = output_name(req)?;
            let cut = name.len() - 4;
            name[..cut].to_string()
        }
        None => req
            .recording
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "video".into()),
    };
    let tail = format!("_play{:02}.mp4", index + 1);
    Ok(fit_name(&stem, &tail, MAX_FINAL_NAME_BYTES))
}

/// What the default output name adds to the class video's stem.
const DEFAULT_SUFFIX: &str = "_beatsync.mp4";

#[cfg(test)]
mod tests {
    use super::*;

    fn named(recording: &str, name: Option<&str>) -> String {
        let mut req = ExportRequest::new(
            Path::new(recording),
            Path::new("s.m4a"),
            Path::new("/o"),
            None,
        );
        req.name = name.map(str::to_string);
        output_name(&req).expect("a name")
    }

    #[test]
    fn long_names_are_shortened_at_a_character_boundary() {
        // 75 Chinese characters: 225 bytes of stem.
        let stem = "舞".repeat(75);
        let name = named(&format!("/v/{stem}.mp4"), None);
        assert!(name.len() <= MAX_FINAL_NAME_BYTES, "{} bytes", name.len());
        assert!(name.ends_with("_beatsync.mp4"), "{name}");
        assert!(stem.starts_with(name.trim_end_matches("_beatsync.mp4")));
        assert_eq!(
            name,
            named(&format!("/v/{stem}.mp4"), None),
            "deterministic"
        );
        // A user's long name keeps its extension (given or added).
        let user = named("/v/a.mp4", Some(&format!("{stem}{stem}.MP4")));
        assert!(
            user.len() <= MAX_FINAL_NAME_BYTES && user.ends_with(".MP4"),
            "{user}"
        );
        let user = named("/v/a.mp4", Some(&stem.repeat(2)));
        assert!(
            user.len() <= MAX_FINAL_NAME_BYTES && user.ends_with(".mp4"),
            "{user}"
        );
        // Short names are kept as they are.
        assert_eq!(named("/v/class.mov", None), "class_beatsync.mp4");
        assert_eq!(named("/v/a.mp4", Some("mine")), "mine.mp4");
        assert_eq!(named("/v/a.mp4", Some("mine.Mp4")), "mine.Mp4");
    }

    #[test]
    fn clips_are_named_after_the_class_or_the_users_name() {
        let mut req = ExportRequest::new(
            Path::new("/v/class.mov"),
            Path::new("s.m4a"),
            Path::new("/o"),
            None,
        );
        assert_eq!(clip_name(&req, 0).expect("name"), "class_play01.mp4");
        assert_eq!(clip_name(&req, 11).expect("name"), "class_play12.mp4");
        req.name = Some("tuesday.MP4".into());
        assert_eq!(clip_name(&req, 1).expect("name"), "tuesday_play02.mp4");
        req.name = Some("舞".repeat(100));
        let long = clip_name(&req, 2).expect("name");
        assert!(
            long.len() <= MAX_FINAL_NAME_BYTES && long.ends_with("_play03.mp4"),
            "{long}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_name_that_is_not_utf8_gives_a_lossy_output_name() {
        use std::os::unix::ffi::OsStrExt;
        let recording = std::ffi::OsStr::from_bytes(b"/v/class\xff.mp4");
        let req = ExportRequest::new(
            Path::new(recording),
            Path::new("s.m4a"),
            Path::new("/o"),
            None,
        );
        assert_eq!(
            output_name(&req).expect("a name"),
            "class\u{FFFD}_beatsync.mp4"
        );
    }
}

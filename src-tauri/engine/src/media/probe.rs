//! `probe`: what is in a media file (container, duration, streams), without
//! decoding anything.

use super::ffi;
use super::input::{layout_or_default, open_input, open_input_fast, Input};
use crate::error::{EngineError, Result};
use ffmpeg_next as ffmpeg;
use ffmpeg_next::media::Type as MediaType;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MediaInfo {
    /// The file as opened; written out (JSON) lossily when the name is not
    /// valid UTF-8, which JSON cannot carry.
    #[serde(serialize_with = "crate::media::serialize_path_lossy")]
    pub path: PathBuf,
    /// FFmpeg demuxer name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, `wav`.
    pub container: String,
    pub duration_s: f64,
    pub size_bytes: u64,
    pub streams: Vec<StreamInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StreamInfo {
    Video(VideoStreamInfo),
    Audio(AudioStreamInfo),
    Other { index: usize, codec: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VideoStreamInfo {
    pub index: usize,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// Average frame rate in frames per second (0 when unknown).
    pub frame_rate: f64,
    /// Clockwise rotation, in degrees, a player applies for display (phone portrait video: 90).
    pub rotation: i32,
    pub duration_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AudioStreamInfo {
    pub index: usize,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    /// Channel layout name; when the file has no channel mask (e.g. a plain WAV)
    /// this is the default layout for the channel count.
    pub layout: String,
    pub duration_s: Option<f64>,
    /// Whether this FFmpeg build has a decoder for the codec.
    pub decodable: bool,
}

impl MediaInfo {
    pub fn video(&self) -> Option<&VideoStreamInfo> {
        self.streams.iter().find_map(|s| match s {
            StreamInfo::Video(v) => Some(v),
            _ => None,
        })
    }
    pub fn audio(&self) -> Option<&AudioStreamInfo> {
        self.streams.iter().find_map(|s| match s {
            StreamInfo::Audio(a) => Some(a),
            _ => None,
        })
    }
    pub fn require_audio(&self) -> Result<&AudioStreamInfo> {
        let a = self
            .audio()
            .ok_or_else(|| EngineError::NoAudio(self.path.clone()))?;
        if !a.decodable {
            return Err(EngineError::Unsupported {
                path: self.path.clone(),
                reason: format!("no decoder for audio codec '{}'", a.codec),
            });
        }
        Ok(a)
    }
    pub fn require_video(&self) -> Result<&VideoStreamInfo> {
        self.video()
            .ok_or_else(|| EngineError::NoVideo(self.path.clone()))
    }
}

/// What a file is expected to be, so the CLI and the app can reject a wrong
/// file up front with the right error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A class recording: needs a picture and sound.
    Class,
    /// The clean song: needs sound (a video file with sound is fine).
    Song,
}

impl MediaInfo {
    pub fn check_role(&self, role: Role) -> Result<()> {
        match role {
            Role::Class => {
                self.require_video()?;
                self.require_audio()?;
            }
            Role::Song => {
                self.require_audio()?;
            }
        }
        Ok(())
    }
}

fn seconds(ts: i64, tb: ffmpeg::Rational) -> Option<f64> {
    if ts == ffmpeg::ffi::AV_NOPTS_VALUE || ts <= 0 || tb.denominator() == 0 {
        return None;
    }
    Some(ts as f64 * f64::from(tb))
}

pub(crate) fn rotation_of(stream: &ffmpeg::format::stream::Stream) -> i32 {
    stream
        .side_data()
        .find(|sd| sd.kind() == ffmpeg::codec::packet::side_data::Type::DisplayMatrix)
        .and_then(|sd| ffi::display_rotation_cw(sd.data()))
        .unwrap_or(0)
}

/// Reads a file's container and stream information.
pub fn probe(path: &Path) -> Result<MediaInfo> {
    describe(path, &open_input(path)?)
}

/// [`probe`] from the container's header alone when it describes the streams
/// (MP4/MOV, see [`open_input_fast`]): the same streams and durations in a few
/// milliseconds; profile-level details the header lacks are not needed by the
/// callers (export's checks of its inputs and of the file it wrote).
pub(crate) fn probe_fast(path: &Path) -> Result<MediaInfo> {
    describe(path, &open_input_fast(path)?)
}

/// What an opened input holds.
pub(crate) fn describe(path: &Path, ictx: &Input) -> Result<MediaInfo> {
    let size_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    // MP4/MOV index every packet from the header; other containers index
    // as they are read, so their index says nothing of the end yet.
    let full_index = ictx.format().name().starts_with("mov,");
    let streams: Vec<StreamInfo> = ictx
        .streams()
        .map(|st| describe_stream(&st, full_index))
        .collect();
    let longest_stream = streams
        .iter()
        .filter_map(|s| match s {
            StreamInfo::Video(v) => v.duration_s,
            StreamInfo::Audio(a) => a.duration_s,
            _ => None,
        })
        .fold(0.0, f64::max);
    let duration_s = if ictx.duration() > 0 {
        let declared = ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE);
        plausible_duration(
            Some(declared),
            (longest_stream > 0.0).then_some(longest_stream),
        )
        .unwrap_or(declared)
    } else {
        longest_stream
    };
    if !streams
        .iter()
        .any(|s| matches!(s, StreamInfo::Video(_) | StreamInfo::Audio(_)))
    {
        return Err(EngineError::NotMedia(path.to_path_buf()));
    }
    if duration_s <= 0.0 {
        return Err(EngineError::Empty(path.to_path_buf()));
    }
    Ok(MediaInfo {
        path: path.to_path_buf(),
        container: ictx.format().name().to_string(),
        duration_s,
        size_bytes,
        streams,
    })
}

fn describe_stream(st: &ffmpeg::format::stream::Stream, full_index: bool) -> StreamInfo {
    let params = st.parameters();
    let codec_id = params.id();
    let decoder = ffmpeg::codec::decoder::find(codec_id);
    let codec = decoder
        .map(|c| c.name().to_string())
        .unwrap_or_else(|| format!("{codec_id:?}").to_lowercase());
    let duration_s = plausible_duration(
        seconds(st.duration(), st.time_base()),
        ffi::index_span(st)
            .filter(|_| full_index)
            .and_then(|span| seconds(span, st.time_base())),
    );
    let f = ffi::param_fields(&params);
    let attached = st
        .disposition()
        .contains(ffmpeg::format::stream::Disposition::ATTACHED_PIC);
    match params.medium() {
        // Cover art in audio files is a "video" stream with one picture.
        MediaType::Video if !attached => StreamInfo::Video(VideoStreamInfo {
            index: st.index(),
            codec,
            width: f.width.max(0) as u32,
            height: f.height.max(0) as u32,
            frame_rate: frame_rate(st),
            rotation: rotation_of(st),
            duration_s,
        }),
        MediaType::Audio => {
            let channels = f.channels.max(0) as u16;
            let layout = layout_or_default(
                ffmpeg::ChannelLayout::from_bits_truncate(f.channel_mask),
                channels,
            );
            StreamInfo::Audio(AudioStreamInfo {
                index: st.index(),
                codec,
                sample_rate: f.sample_rate.max(0) as u32,
                channels,
                layout: ffi::layout_name(layout),
                duration_s,
                decodable: decoder.is_some(),
            })
        }
        _ => StreamInfo::Other {
            index: st.index(),
            codec,
        },
    }
}

/// The declared duration, unless what is there (the sample index, the
/// streams) ends well before it: a header claiming days for ten seconds of
/// content (damaged or crafted) is not shown to the user as days.
fn plausible_duration(declared: Option<f64>, content: Option<f64>) -> Option<f64> {
    match (declared, content) {
        (Some(d), Some(c)) if c > 0.0 && d > c + 1.0 && d > 1.1 * c => Some(c),
        (d, _) => d,
    }
}

/// Average frame rate, else the stream's base rate, else 0.
fn frame_rate(st: &ffmpeg::format::stream::Stream) -> f64 {
    let known = |r: ffmpeg::Rational| r.denominator() != 0 && r.numerator() > 0;
    let (avg, base) = (st.avg_frame_rate(), st.rate());
    if known(avg) {
        f64::from(avg)
    } else if known(base) {
        f64::from(base)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::plausible_duration;

    #[test]
    fn a_declared_duration_far_past_the_content_gives_way() {
        // A header claiming 24 days over 10 s of packets.
        assert_eq!(
            plausible_duration(Some(2_147_483.0), Some(10.0)),
            Some(10.0)
        );
        // Small differences (an audio track a little longer, rounding) stand.
        assert_eq!(plausible_duration(Some(10.4), Some(10.0)), Some(10.4));
        assert_eq!(plausible_duration(Some(600.0), Some(590.0)), Some(600.0));
        // Nothing to compare with: the declared value, or none.
        assert_eq!(plausible_duration(Some(10.0), None), Some(10.0));
        assert_eq!(plausible_duration(None, Some(10.0)), None);
    }
}

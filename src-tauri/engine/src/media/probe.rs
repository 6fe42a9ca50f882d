//! `probe`: what is in a media file (container, duration, streams), without
//! decoding anything. Also the shared "open this path" step that turns
//! filesystem and FFmpeg failures into typed errors.

use crate::error::{EngineError, Result};
use ffmpeg_next as ffmpeg;
use ffmpeg_next::media::Type as MediaType;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MediaInfo {
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

/// Opens `path` with FFmpeg, mapping every failure to a typed error. Reads
/// the streams' first packets (and decodes a few video frames) to complete
/// their parameters: see [`open_input_fast`] for reading packets only.
pub(crate) fn open_input(path: &Path) -> Result<ffmpeg::format::context::Input> {
    let head = check_readable(path)?;
    match ffmpeg::format::input(path) {
        Ok(ctx) => Ok(ctx),
        Err(e) => Err(open_error(path, &head, e)),
    }
}

/// Like [`open_input`], without `avformat_find_stream_info` when the
/// container's header already describes every stream (MP4/MOV: the `moov`
/// holds codec, size, rate, channels, durations). Finding stream info decodes
/// up to seven video frames (H.264 with B-frames), tens of milliseconds for
/// 1080p and more for 4K, and is paid again by every opening; reading packets,
/// seeking and decoding need none of what it adds (profile, pixel format,
/// colour from the bitstream). Other containers, or a header lacking
/// something, get the full [`open_input`]. Not for parameters copied into an
/// output (they would lack the bitstream's colour description).
pub(crate) fn open_input_fast(path: &Path) -> Result<ffmpeg::format::context::Input> {
    let head = check_readable(path)?;
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
        EngineError::Unreadable {
            path: path.to_path_buf(),
            reason: "the path contains a NUL byte".into(),
        }
    })?;
    let mut ps = std::ptr::null_mut();
    // SAFETY: a valid C path; on success `ps` is an opened context that the
    // wrapper closes on drop; on failure FFmpeg frees it and leaves it null.
    let r = unsafe {
        ffmpeg::ffi::avformat_open_input(
            &mut ps,
            c.as_ptr(),
            std::ptr::null(),
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        return Err(open_error(path, &head, ffmpeg::Error::from(r)));
    }
    // SAFETY: `ps` was just opened.
    let ictx = unsafe { ffmpeg::format::context::Input::wrap(ps) };
    if header_is_complete(&ictx) {
        Ok(ictx)
    } else {
        drop(ictx);
        open_input(path)
    }
}

/// Whether an input opened without stream-info probing is as usable as a
/// probed one: an MP4/MOV whose streams all have their codec and basic
/// parameters, with one video and at most one audio stream (so that "the best
/// stream" cannot depend on what probing would have counted).
fn header_is_complete(ictx: &ffmpeg::format::context::Input) -> bool {
    if !ictx.format().name().starts_with("mov,") {
        return false;
    }
    let (mut videos, mut audios) = (0, 0);
    for st in ictx.streams() {
        let params = st.parameters();
        // SAFETY: reading plain fields of valid codec parameters.
        let (w, h, rate, channels) = unsafe {
            let p = params.as_ptr();
            (
                (*p).width,
                (*p).height,
                (*p).sample_rate,
                (*p).ch_layout.nb_channels,
            )
        };
        match params.medium() {
            MediaType::Video => {
                if params.id() == ffmpeg::codec::Id::None || w <= 0 || h <= 0 {
                    return false;
                }
                videos += 1;
            }
            MediaType::Audio => {
                if params.id() == ffmpeg::codec::Id::None || rate <= 0 || channels <= 0 {
                    return false;
                }
                audios += 1;
            }
            _ => {}
        }
    }
    videos <= 1 && audios <= 1
}

/// The checks before FFmpeg opens a file; returns the file's first bytes.
fn check_readable(path: &Path) -> Result<Vec<u8>> {
    crate::init();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => EngineError::NotFound(path.to_path_buf()),
        _ => EngineError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })?;
    if meta.is_dir() {
        return Err(EngineError::Unreadable {
            path: path.to_path_buf(),
            reason: "it is a folder, not a file".into(),
        });
    }
    if meta.len() == 0 {
        return Err(EngineError::Empty(path.to_path_buf()));
    }
    // Read a few bytes ourselves first: a permission problem is then reported
    // as such, and the header tells a damaged media file from a non-media one.
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| EngineError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(head[..n].to_vec())
}

fn open_error(path: &Path, head: &[u8], e: ffmpeg::Error) -> EngineError {
    if looks_like_media(head) {
        EngineError::Unreadable {
            path: path.to_path_buf(),
            reason: format!(
                "the file looks damaged or incomplete ({e}); copy it again from the phone"
            ),
        }
    } else {
        EngineError::NotMedia(path.to_path_buf())
    }
}

/// Codec parameters owned apart from any context (sendable between threads),
/// e.g. a probed stream's, to describe an output stream later.
pub(crate) struct OwnedParams(*mut ffmpeg::ffi::AVCodecParameters);

// SAFETY: the parameters are owned exclusively by this value and only read
// through `&self`.
unsafe impl Send for OwnedParams {}
unsafe impl Sync for OwnedParams {}

impl OwnedParams {
    /// A copy of `params`.
    pub fn copy_of(params: &ffmpeg::codec::Parameters) -> Option<Self> {
        // SAFETY: allocating fresh parameters and deep-copying valid ones.
        unsafe {
            let p = ffmpeg::ffi::avcodec_parameters_alloc();
            if p.is_null() {
                return None;
            }
            let mut owned = Self(p);
            if ffmpeg::ffi::avcodec_parameters_copy(owned.0, params.as_ptr()) < 0 {
                ffmpeg::ffi::avcodec_parameters_free(&mut owned.0);
                return None;
            }
            Some(owned)
        }
    }
    pub fn as_ptr(&self) -> *const ffmpeg::ffi::AVCodecParameters {
        self.0
    }
    pub fn as_mut_ptr(&mut self) -> *mut ffmpeg::ffi::AVCodecParameters {
        self.0
    }
}

impl Clone for OwnedParams {
    fn clone(&self) -> Self {
        // SAFETY: as in `copy_of`; an allocation failure aborts like Rust's.
        unsafe {
            let p = ffmpeg::ffi::avcodec_parameters_alloc();
            assert!(!p.is_null(), "out of memory");
            ffmpeg::ffi::avcodec_parameters_copy(p, self.0);
            Self(p)
        }
    }
}

impl Drop for OwnedParams {
    fn drop(&mut self) {
        // SAFETY: owned; freeing sets the pointer to null.
        unsafe { ffmpeg::ffi::avcodec_parameters_free(&mut self.0) }
    }
}

impl std::fmt::Debug for OwnedParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: reading a plain field.
        let id = unsafe { (*self.0).codec_id };
        write!(f, "OwnedParams({id:?})")
    }
}

/// Tells the demuxer to drop every stream but `stream_index`: the other
/// streams' packets (video, for an audio decode) are then skipped cheaply
/// instead of being read out and handed to us.
pub(crate) fn read_only_stream(ictx: &mut ffmpeg::format::context::Input, stream_index: usize) {
    // SAFETY: the format context and its streams are valid while `ictx` lives.
    unsafe {
        let fc = ictx.as_mut_ptr();
        for i in 0..(*fc).nb_streams as usize {
            if i != stream_index {
                (**(*fc).streams.add(i)).discard = ffmpeg::ffi::AVDiscard::AVDISCARD_ALL;
            }
        }
    }
}

/// Seeks `ictx` to the last keyframe at or before `ts` (in the time base of
/// stream `stream_index`). The caller flushes its decoder.
pub(crate) fn seek_keyframe_before(
    ictx: &mut ffmpeg::format::context::Input,
    stream_index: usize,
    ts: i64,
) -> std::result::Result<(), ffmpeg::Error> {
    // SAFETY: a valid format context; FFmpeg checks the stream index.
    let r = unsafe {
        ffmpeg::ffi::av_seek_frame(
            ictx.as_mut_ptr(),
            stream_index as i32,
            ts,
            ffmpeg::ffi::AVSEEK_FLAG_BACKWARD,
        )
    };
    if r < 0 {
        Err(ffmpeg::Error::from(r))
    } else {
        Ok(())
    }
}

/// Recognises the headers of common containers, so a truncated MP4 is
/// reported as damaged rather than as "not a media file".
pub(crate) fn looks_like_media(head: &[u8]) -> bool {
    let at = |i: usize, m: &[u8]| head.len() >= i + m.len() && &head[i..i + m.len()] == m;
    at(4, b"ftyp")
        || at(4, b"moov")
        || at(4, b"mdat")
        || at(4, b"wide")
        || at(4, b"free")
        || at(0, b"RIFF")
        || at(0, &[0x1A, 0x45, 0xDF, 0xA3])
        || at(0, b"ID3")
        || at(0, b"OggS")
        || at(0, b"fLaC")
        || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0)
}

fn seconds(ts: i64, tb: ffmpeg::Rational) -> Option<f64> {
    if ts == ffmpeg::ffi::AV_NOPTS_VALUE || ts <= 0 || tb.denominator() == 0 {
        return None;
    }
    Some(ts as f64 * f64::from(tb))
}

fn rotation_of(stream: &ffmpeg::format::stream::Stream) -> i32 {
    for sd in stream.side_data() {
        if sd.kind() == ffmpeg::codec::packet::side_data::Type::DisplayMatrix
            && sd.data().len() >= 36
        {
            // The display matrix is nine native-endian i32 values.
            let mut m = [0i32; 9];
            for (i, v) in m.iter_mut().enumerate() {
                let b = &sd.data()[i * 4..i * 4 + 4];
                *v = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            }
            // SAFETY: `m` is a valid 9-element matrix as the function expects.
            let ccw = unsafe { ffmpeg::ffi::av_display_rotation_get(m.as_ptr()) };
            if ccw.is_nan() {
                return 0;
            }
            let cw = (-ccw).round() as i32;
            return cw.rem_euclid(360);
        }
    }
    0
}

/// Default layout for a channel count, for files without a channel mask
/// (FFmpeg 5.1 reports layout 0 for them, which resamplers reject).
pub(crate) fn layout_or_default(
    layout: ffmpeg::ChannelLayout,
    channels: u16,
) -> ffmpeg::ChannelLayout {
    if layout.bits() == 0 || layout.channels() != i32::from(channels) {
        ffmpeg::ChannelLayout::default(i32::from(channels.max(1)))
    } else {
        layout
    }
}

fn layout_name(layout: ffmpeg::ChannelLayout) -> String {
    let mut buf = [0 as std::os::raw::c_char; 64];
    // SAFETY: the buffer is valid for its length; FFmpeg NUL-terminates.
    unsafe {
        ffmpeg::ffi::av_get_channel_layout_string(
            buf.as_mut_ptr(),
            buf.len() as i32,
            layout.channels(),
            layout.bits(),
        );
        std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
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

fn describe(path: &Path, ictx: &ffmpeg::format::context::Input) -> Result<MediaInfo> {
    let size_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut streams = Vec::new();
    for st in ictx.streams() {
        let params = st.parameters();
        let codec_id = params.id();
        let codec = ffmpeg::codec::decoder::find(codec_id)
            .map(|c| c.name().to_string())
            .unwrap_or_else(|| format!("{codec_id:?}").to_lowercase());
        let duration_s = seconds(st.duration(), st.time_base());
        match params.medium() {
            MediaType::Video => {
                // SAFETY: the parameters pointer is valid while `st` lives.
                let (w, h) = unsafe {
                    let p = params.as_ptr();
                    ((*p).width.max(0) as u32, (*p).height.max(0) as u32)
                };
                // Cover art in audio files is a "video" stream with one picture.
                let attached = st
                    .disposition()
                    .contains(ffmpeg::format::stream::Disposition::ATTACHED_PIC);
                if attached {
                    streams.push(StreamInfo::Other {
                        index: st.index(),
                        codec,
                    });
                    continue;
                }
                let fr = st.avg_frame_rate();
                let fr = if fr.denominator() != 0 && fr.numerator() > 0 {
                    f64::from(fr)
                } else {
                    let r = st.rate();
                    if r.denominator() != 0 && r.numerator() > 0 {
                        f64::from(r)
                    } else {
                        0.0
                    }
                };
                streams.push(StreamInfo::Video(VideoStreamInfo {
                    index: st.index(),
                    codec,
                    width: w,
                    height: h,
                    frame_rate: fr,
                    rotation: rotation_of(&st),
                    duration_s,
                }));
            }
            MediaType::Audio => {
                // SAFETY: as above.
                let (rate, channels, mask) = unsafe {
                    let p = params.as_ptr();
                    (
                        (*p).sample_rate.max(0) as u32,
                        (*p).ch_layout.nb_channels.max(0) as u16,
                        if (*p).ch_layout.order
                            == ffmpeg::ffi::AVChannelOrder::AV_CHANNEL_ORDER_NATIVE
                        {
                            (*p).ch_layout.u.mask
                        } else {
                            0
                        },
                    )
                };
                let layout =
                    layout_or_default(ffmpeg::ChannelLayout::from_bits_truncate(mask), channels);
                streams.push(StreamInfo::Audio(AudioStreamInfo {
                    index: st.index(),
                    codec,
                    sample_rate: rate,
                    channels,
                    layout: layout_name(layout),
                    duration_s,
                    decodable: ffmpeg::codec::decoder::find(codec_id).is_some(),
                }));
            }
            _ => streams.push(StreamInfo::Other {
                index: st.index(),
                codec,
            }),
        }
    }
    let duration_s = if ictx.duration() > 0 {
        ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE)
    } else {
        streams
            .iter()
            .filter_map(|s| match s {
                StreamInfo::Video(v) => v.duration_s,
                StreamInfo::Audio(a) => a.duration_s,
                _ => None,
            })
            .fold(0.0, f64::max)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_container_headers() {
        assert!(looks_like_media(b"\0\0\0\x20ftypisom\0\0\x02\0"));
        assert!(looks_like_media(b"RIFF\x24\0\0\0WAVEfmt "));
        assert!(looks_like_media(&[0x1A, 0x45, 0xDF, 0xA3, 1, 0, 0, 0]));
        assert!(looks_like_media(b"ID3\x04\0\0\0\0\0\0"));
        assert!(looks_like_media(&[0xFF, 0xFB, 0x90, 0x64]));
        assert!(!looks_like_media(b"hello, these are notes"));
        assert!(!looks_like_media(b""));
    }

    #[test]
    fn missing_channel_mask_gets_the_default_layout() {
        let none = ffmpeg::ChannelLayout::from_bits_truncate(0);
        assert_eq!(layout_or_default(none, 2), ffmpeg::ChannelLayout::STEREO);
        assert_eq!(layout_or_default(none, 1), ffmpeg::ChannelLayout::MONO);
        let stereo = ffmpeg::ChannelLayout::STEREO;
        assert_eq!(layout_or_default(stereo, 2), stereo);
        // A mask that disagrees with the channel count is not trusted.
        assert_eq!(layout_or_default(stereo, 1), ffmpeg::ChannelLayout::MONO);
    }
}

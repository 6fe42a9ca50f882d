//! Opening a media file: the one place where filesystem and FFmpeg failures
//! become typed errors, where the fast (header-only) opening is chosen, and
//! where the best audio stream gets its decoder.

use super::ffi;
use crate::error::{EngineError, Result};
use ffmpeg_next as ffmpeg;
use ffmpeg_next::media::Type as MediaType;
use std::io::Read;
use std::path::Path;

pub(crate) type Input = ffmpeg::format::context::Input;

/// A filesystem error on an input: missing, or unreadable and why.
pub(crate) fn input_error(path: &Path, e: std::io::Error) -> EngineError {
    match e.kind() {
        std::io::ErrorKind::NotFound => EngineError::NotFound(path.to_path_buf()),
        _ => EngineError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    }
}

/// A packet read from an opened input failed (not at its end): the demuxer
/// met data it cannot use (a sample size larger than the file, tables that
/// contradict each other) or the disk could not read. Either way the input
/// is what cannot be read, whatever FFmpeg's code says (`ENOMEM` for an
/// absurd sample size, `EPERM` for its generic -1), so the user is sent to
/// the file, not to the output folder or to a "media error".
pub(crate) fn read_error(path: &Path, e: ffmpeg::Error) -> EngineError {
    damaged(
        path,
        &format!("reading it failed partway ({})", ffmpeg_text(e)),
    )
}

/// Seeking in an opened input failed even to its start: its index (the
/// MP4 sample tables) does not lead to its packets.
pub(crate) fn seek_error(path: &Path, e: ffmpeg::Error) -> EngineError {
    damaged(path, &format!("seeking in it failed ({})", ffmpeg_text(e)))
}

/// An input whose content cannot be used as its header describes it.
pub(crate) fn damaged(path: &Path, what: &str) -> EngineError {
    EngineError::Unreadable {
        path: path.to_path_buf(),
        reason: format!(
            "{what}; the file looks damaged or incomplete, copy it again from the phone"
        ),
    }
}

/// FFmpeg's error as text; its generic -1 is `EPERM`, whose text ("Operation
/// not permitted") would send the user to the file's permissions.
fn ffmpeg_text(e: ffmpeg::Error) -> String {
    match e {
        ffmpeg::Error::Other { errno } if errno == libc::EPERM => "FFmpeg error -1".into(),
        e => e.to_string(),
    }
}

/// Opens an input for reading without ever blocking in the open (a FIFO
/// put in place of a file would block a plain open until a writer comes:
/// O_NONBLOCK), and refuses anything but a regular file.
pub(crate) fn open_regular(path: &Path) -> Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(|e| input_error(path, e))?;
    let meta = file.metadata().map_err(|e| input_error(path, e))?;
    if !meta.is_file() {
        return Err(EngineError::Unreadable {
            path: path.to_path_buf(),
            reason: if meta.is_dir() {
                "it is a folder, not a file".into()
            } else {
                "it is not a regular file (a pipe or a device); choose the video file itself".into()
            },
        });
    }
    Ok(file)
}

/// Opens `path` with FFmpeg, mapping every failure to a typed error. Reads
/// the streams' first packets (and decodes a few video frames) to complete
/// their parameters: see [`open_input_fast`] for reading packets only.
pub(crate) fn open_input(path: &Path) -> Result<Input> {
    let head = check_readable(path)?;
    ffi::open_local_input(&c_path(path)?, true).map_err(|e| open_error(path, &head, e))
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
pub(crate) fn open_input_fast(path: &Path) -> Result<Input> {
    let head = check_readable(path)?;
    let ictx =
        ffi::open_local_input(&c_path(path)?, false).map_err(|e| open_error(path, &head, e))?;
    if header_is_complete(&ictx) {
        Ok(ictx)
    } else {
        drop(ictx);
        open_input(path)
    }
}

/// The path as FFmpeg takes it: the OS's own bytes on Unix (a name need not
/// be UTF-8 there), UTF-8 elsewhere (FFmpeg converts it to the wide
/// Windows name itself; a name with an unpaired surrogate cannot be passed).
fn c_path(path: &Path) -> Result<std::ffi::CString> {
    let unusable = |reason: &str| EngineError::Unreadable {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    #[cfg(unix)]
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
    #[cfg(not(unix))]
    let bytes = path
        .to_str()
        .ok_or_else(|| unusable("the file name is not valid Unicode; rename the file"))?
        .as_bytes()
        .to_vec();
    std::ffi::CString::new(bytes).map_err(|_| unusable("the path contains a NUL byte"))
}

/// Whether an input opened without stream-info probing is as usable as a
/// probed one: an MP4/MOV whose streams all have their codec and basic
/// parameters, with one video and at most one audio stream (so that "the best
/// stream" cannot depend on what probing would have counted).
fn header_is_complete(ictx: &Input) -> bool {
    if !ictx.format().name().starts_with("mov,") {
        return false;
    }
    let (mut videos, mut audios) = (0, 0);
    for st in ictx.streams() {
        let params = st.parameters();
        let f = ffi::param_fields(&params);
        match params.medium() {
            MediaType::Video => {
                if params.id() == ffmpeg::codec::Id::None || f.width <= 0 || f.height <= 0 {
                    return false;
                }
                videos += 1;
            }
            MediaType::Audio => {
                if params.id() == ffmpeg::codec::Id::None || f.sample_rate <= 0 || f.channels <= 0 {
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
    let mut file = open_regular(path)?;
    let meta = file.metadata().map_err(|e| input_error(path, e))?;
    if meta.len() == 0 {
        return Err(EngineError::Empty(path.to_path_buf()));
    }
    // Read a few bytes ourselves first: a permission problem is then reported
    // as such, and the header tells a damaged media file from a non-media one.
    let mut head = [0u8; 16];
    let n = file.read(&mut head).map_err(|e| EngineError::Unreadable {
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

/// An input's best audio stream with an opened decoder for it (packet time
/// base set, so frames carry the stream's timestamps).
pub(crate) struct AudioDecoder {
    pub stream_index: usize,
    pub time_base: ffmpeg::Rational,
    pub decoder: ffmpeg::decoder::Audio,
}

impl AudioDecoder {
    /// `NoAudio` without an audio stream; `Unsupported` when this FFmpeg
    /// cannot decode it.
    pub fn open(ictx: &Input, path: &Path) -> Result<Self> {
        let stream = ictx
            .streams()
            .best(MediaType::Audio)
            .ok_or_else(|| EngineError::NoAudio(path.to_path_buf()))?;
        let time_base = stream.time_base();
        let codec_id = stream.parameters().id();
        if ffmpeg::codec::decoder::find(codec_id).is_none() {
            return Err(EngineError::Unsupported {
                path: path.to_path_buf(),
                reason: format!("no decoder for audio codec {codec_id:?}"),
            });
        }
        let mut ctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| EngineError::media(path, e))?
            .decoder();
        ctx.set_packet_time_base(time_base);
        let decoder = ctx.audio().map_err(|e| EngineError::Unsupported {
            path: path.to_path_buf(),
            reason: format!("cannot open the audio decoder: {e}"),
        })?;
        Ok(Self {
            stream_index: stream.index(),
            time_base,
            decoder,
        })
    }
}

/// A video decoder for a stream with `params`: `frame_threads` frames
/// decoded in parallel (more than one), or all on the calling thread.
pub(crate) fn video_decoder(
    params: ffmpeg::codec::Parameters,
    frame_threads: usize,
) -> std::result::Result<ffmpeg::decoder::Video, ffmpeg::Error> {
    let mut ctx = ffmpeg::codec::context::Context::from_parameters(params)?;
    ctx.set_threading(if frame_threads > 1 {
        ffmpeg::threading::Config {
            kind: ffmpeg::threading::Type::Frame,
            count: frame_threads,
            ..Default::default()
        }
    } else {
        ffmpeg::threading::Config {
            kind: ffmpeg::threading::Type::None,
            count: 1,
            ..Default::default()
        }
    });
    ctx.decoder().video()
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

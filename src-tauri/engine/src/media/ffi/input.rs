//! Opening, selecting, seeking and reading inputs.

use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;
use std::ffi::CStr;

/// The demuxers an input may be opened with: the containers phones,
/// cameras and music files come in. Playlist and reference formats (HLS,
/// DASH, ffconcat, image sequences, SDP…) are left out: they name other files
/// or URLs, which FFmpeg would then open on the file's behalf.
const DEMUXER_WHITELIST: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,dv,asf,flv,\
     wav,w64,aiff,caf,mp3,aac,ac3,eac3,flac,ogg,wv,ape,amr";

/// Opens a local file with FFmpeg: `path` is the file's name as the OS
/// spells it (bytes, not necessarily UTF-8), read through the `file`
/// protocol only and with the demuxers of [`DEMUXER_WHITELIST`] only, so a
/// file can never make FFmpeg open a URL or another file. With
/// `find_stream_info`, the streams' first packets are read to complete their
/// parameters (`avformat_find_stream_info`); without it only the container's
/// header is read.
pub(crate) fn open_local_input(
    path: &CStr,
    find_stream_info: bool,
) -> std::result::Result<ffmpeg::format::context::Input, ffmpeg::Error> {
    let mut url = b"file:".to_vec();
    url.extend_from_slice(path.to_bytes());
    let url = std::ffi::CString::new(url).map_err(|_| ffmpeg::Error::InvalidData)?;
    let mut options = ffmpeg::Dictionary::new();
    options.set("protocol_whitelist", "file");
    options.set("format_whitelist", DEMUXER_WHITELIST);
    let mut ps = std::ptr::null_mut();
    // SAFETY: the dictionary's pointer, owned here until handed back below.
    let mut opts = unsafe { options.disown() };
    // SAFETY: a valid C URL and an owned option dictionary (what FFmpeg did
    // not consume is handed back and freed below); on success `ps` is an
    // opened context that the wrapper closes on drop; on failure FFmpeg
    // frees it and leaves it null.
    let r = unsafe { ffi::avformat_open_input(&mut ps, url.as_ptr(), std::ptr::null(), &mut opts) };
    // SAFETY: the dictionary FFmpeg handed back (or null), owned here.
    drop(unsafe { ffmpeg::Dictionary::own(opts) });
    if r < 0 {
        return Err(ffmpeg::Error::from(r));
    }
    if find_stream_info {
        // SAFETY: `ps` was just opened; closed here on failure.
        let r = unsafe { ffi::avformat_find_stream_info(ps, std::ptr::null_mut()) };
        if r < 0 {
            // SAFETY: closing the context opened above.
            unsafe { ffi::avformat_close_input(&mut ps) };
            return Err(ffmpeg::Error::from(r));
        }
    }
    // SAFETY: `ps` was just opened.
    Ok(unsafe { ffmpeg::format::context::Input::wrap(ps) })
}

/// How long a stream's sample index says it lasts, in its time base: the
/// last entry's timestamp plus one average entry spacing. `None` without an
/// index of at least two entries (MP4/MOV list every packet in theirs; most
/// other containers build it while reading).
pub(crate) fn index_span(st: &ffmpeg::format::stream::Stream) -> Option<i64> {
    // SAFETY: the stream is valid while `st` lives; the entries are read
    // at once, before any other call on the context.
    unsafe {
        let p = st.as_ptr() as *mut ffi::AVStream;
        let n = ffi::avformat_index_get_entries_count(p);
        if n < 2 {
            return None;
        }
        let first = ffi::avformat_index_get_entry(p, 0);
        let last = ffi::avformat_index_get_entry(p, n - 1);
        if first.is_null() || last.is_null() {
            return None;
        }
        let (t0, t1) = ((*first).timestamp, (*last).timestamp);
        (t1 > t0).then(|| t1 + (t1 - t0) / i64::from(n - 1))
    }
}

/// Tells the demuxer to drop every stream but `keep`: the other streams'
/// packets (video, for an audio decode) are then skipped cheaply instead of
/// being read out and handed to us. `keep` itself is read again if an
/// earlier selection dropped it.
pub(crate) fn select_stream(ictx: &mut ffmpeg::format::context::Input, keep: usize) {
    select_streams(ictx, &[keep]);
}

/// [`select_stream`] for several streams.
pub(crate) fn select_streams(ictx: &mut ffmpeg::format::context::Input, keep: &[usize]) {
    // SAFETY: the format context and its streams are valid while `ictx` lives.
    unsafe {
        let fc = ictx.as_mut_ptr();
        for i in 0..(*fc).nb_streams as usize {
            (**(*fc).streams.add(i)).discard = if keep.contains(&i) {
                ffi::AVDiscard::AVDISCARD_DEFAULT
            } else {
                ffi::AVDiscard::AVDISCARD_ALL
            };
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
        ffi::av_seek_frame(
            ictx.as_mut_ptr(),
            stream_index as i32,
            ts,
            ffi::AVSEEK_FLAG_BACKWARD,
        )
    };
    if r < 0 {
        Err(ffmpeg::Error::from(r))
    } else {
        Ok(())
    }
}

/// Seeks to the start of the file, for containers that cannot seek by time.
pub(crate) fn seek_file_start(
    ictx: &mut ffmpeg::format::context::Input,
) -> std::result::Result<(), ffmpeg::Error> {
    // SAFETY: a valid format context.
    let r = unsafe { ffi::avformat_seek_file(ictx.as_mut_ptr(), -1, i64::MIN, 0, 0, 0) };
    if r < 0 {
        Err(ffmpeg::Error::from(r))
    } else {
        Ok(())
    }
}

/// In an MP4/MOV with video, the audio packets (a few hundred bytes each)
/// sit between video frames tens of kB long, and the demuxer seeks to each
/// one by the index: read each packet itself instead of a 32 kB buffer
/// around it (a phone video's audio was otherwise read with half the file,
/// 141 MB of 272 on the bench's 3-min case: ~5 % of the alignment's CPU).
/// Other containers are read through, which their demuxers expect.
pub(crate) fn read_packets_directly(ictx: &mut ffmpeg::format::context::Input) {
    if !ictx.format().name().starts_with("mov,") {
        return;
    }
    // SAFETY: the context and its I/O context are valid while `ictx` lives;
    // `direct` only changes how later reads and seeks use the buffer.
    unsafe {
        let fc = ictx.as_mut_ptr();
        if (*fc).nb_streams > 1 && !(*fc).pb.is_null() {
            (*(*fc).pb).direct = 1;
        }
    }
}

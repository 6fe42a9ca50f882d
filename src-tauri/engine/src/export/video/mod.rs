//! `mux`: copying the recording's video packets into an MP4 without decoding
//! them, starting frame-accurately through an MP4 edit list.
//!
//! How the start works: copying must begin at a keyframe, and the cut rarely
//! falls on one. The packets from the previous keyframe on are copied with
//! their timestamps shifted so that the frame at the cut has pts 0; the frames
//! before it get negative timestamps, and FFmpeg's mov muxer turns that into
//! an edit list whose media time skips them. Players (QuickTime, WebKit,
//! Chrome, VLC, ffmpeg) decode those frames but start presenting at the cut.
//!
//! How the end works: packets are copied in decode order up to (not
//! including) the first one presented at or after the planned end. Every
//! copied frame then only references frames copied before it, so nothing
//! undecodable is left at the end.

use crate::error::{EngineError, Result};
use crate::media::probe::{open_input, open_input_fast, OwnedParams};
use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The recording's picture: which stream, its clock and extent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoTrack {
    pub stream_index: usize,
    pub codec: String,
    /// Stream time base as (numerator, denominator).
    pub time_base: (i32, i32),
    /// First and last instant of picture, container seconds.
    pub start_s: f64,
    pub end_s: f64,
    /// Typical frame duration, seconds.
    pub frame_s: f64,
}

impl VideoTrack {
    pub fn tb(&self) -> f64 {
        f64::from(self.time_base.0) / f64::from(self.time_base.1)
    }
    fn to_ts(&self, seconds: f64) -> i64 {
        (seconds / self.tb()).round() as i64
    }
    fn to_s(&self, ts: i64) -> f64 {
        ts as f64 * self.tb()
    }
}

/// One video packet's timing, as the demuxer gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PacketTiming {
    pts: i64,
    dts: i64,
    duration: i64,
    key: bool,
    pos: isize,
}

fn timing_of(p: &ffmpeg::Packet) -> Option<PacketTiming> {
    let pts = p.pts().or(p.dts())?;
    let dts = p.dts().unwrap_or(pts);
    Some(PacketTiming {
        pts,
        dts,
        duration: p.duration(),
        key: p.is_key(),
        pos: p.position(),
    })
}

/// An input opened for reading one video stream's packets (others discarded).
pub(crate) struct VideoReader {
    pub ictx: ffmpeg::format::context::Input,
    pub stream_index: usize,
    path: PathBuf,
}

impl VideoReader {
    /// Opens for reading packets: from the container header alone when it
    /// suffices (see [`open_input_fast`]).
    pub fn open(path: &Path) -> Result<Self> {
        Self::with(path, open_input_fast(path)?)
    }

    /// Opens with the stream's parameters completed from its first frames
    /// (colour, profile, pixel format), for re-encoding or for describing a
    /// copy of it.
    pub fn open_full(path: &Path) -> Result<Self> {
        Self::with(path, open_input(path)?)
    }

    fn with(path: &Path, mut ictx: ffmpeg::format::context::Input) -> Result<Self> {
        let stream_index = ictx
            .streams()
            .best(ffmpeg::media::Type::Video)
            .ok_or_else(|| EngineError::NoVideo(path.to_path_buf()))?
            .index();
        crate::media::probe::read_only_stream(&mut ictx, stream_index);
        Ok(Self {
            ictx,
            stream_index,
            path: path.to_path_buf(),
        })
    }

    /// Seeks to the keyframe at or before `ts` (stream time base).
    pub fn seek_to(&mut self, ts: i64) -> Result<()> {
        self.seek(ts)
    }

    fn seek(&mut self, ts: i64) -> Result<()> {
        if let Err(e) =
            crate::media::probe::seek_keyframe_before(&mut self.ictx, self.stream_index, ts)
        {
            // Unseekable file: read from the start instead.
            // SAFETY: a valid format context.
            let r0 =
                unsafe { ffi::avformat_seek_file(self.ictx.as_mut_ptr(), -1, i64::MIN, 0, 0, 0) };
            if r0 < 0 {
                return Err(EngineError::media(&self.path, e));
            }
        }
        Ok(())
    }

    /// Next packet of the video stream; `None` at the end.
    pub fn next(&mut self) -> Result<Option<ffmpeg::Packet>> {
        loop {
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) => {
                    if packet.stream() == self.stream_index {
                        return Ok(Some(packet));
                    }
                }
                Err(ffmpeg::Error::Eof) => return Ok(None),
                Err(e) => return Err(EngineError::media(&self.path, e)),
            }
        }
    }
}

/// Reads the video track's clock and extent. The end is measured from the
/// last packets (one seek near the end), not trusted from the header.
pub fn video_track(path: &Path) -> Result<VideoTrack> {
    track_of(path, &mut VideoReader::open(path)?)
}

/// The stream's complete codec parameters (as a remux by FFmpeg would copy
/// them) for the output's video stream: see [`complete_params`].
pub(crate) fn video_params(path: &Path, track: &VideoTrack) -> Result<OwnedParams> {
    let mut r = VideoReader::open(path)?;
    if let Some(p) = complete_params(&mut r, track)? {
        return Ok(p);
    }
    // The first keyframe did not decode: let FFmpeg's probing do it.
    let full = VideoReader::open_full(path)?;
    full.ictx
        .stream(full.stream_index)
        .and_then(|st| OwnedParams::copy_of(&st.parameters()))
        .ok_or_else(|| EngineError::NoVideo(path.to_path_buf()))
}

/// The stream's parameters with what only the bitstream tells (pixel
/// format, profile, level, colour description, chroma siting) filled in the
/// way `avformat_find_stream_info` fills them, by decoding one frame: the
/// first keyframe (that function decodes up to seven frames, to also guess
/// the reordering delay, which a muxer given every packet's dts does not
/// use). `None` when that keyframe does not decode.
fn complete_params(r: &mut VideoReader, track: &VideoTrack) -> Result<Option<OwnedParams>> {
    let path = r.path.clone();
    let params = r
        .ictx
        .stream(r.stream_index)
        .map(|st| st.parameters())
        .ok_or_else(|| EngineError::NoVideo(path.clone()))?;
    let mut owned =
        OwnedParams::copy_of(&params).ok_or_else(|| EngineError::media(&path, "out of memory"))?;
    // SAFETY: reading a plain field of valid parameters.
    if unsafe { (*params.as_ptr()).format } >= 0 {
        // Already complete (the input was opened with full probing).
        return Ok(Some(owned));
    }
    let mut ctx = ffmpeg::codec::context::Context::from_parameters(params)
        .map_err(|e| EngineError::media(&path, e))?;
    ctx.set_threading(ffmpeg::threading::Config {
        kind: ffmpeg::threading::Type::None,
        count: 1,
        ..Default::default()
    });
    let Ok(mut decoder) = ctx.decoder().video() else {
        return Ok(None);
    };
    r.seek(track.to_ts(track.start_s))?;
    let mut frame = ffmpeg::frame::Video::empty();
    for _ in 0..64 {
        let Some(p) = r.next()? else { break };
        if !p.is_key() {
            continue;
        }
        let _ = decoder.send_packet(&p);
        let _ = decoder.send_eof();
        if decoder.receive_frame(&mut frame).is_err() {
            return Ok(None);
        }
        // SAFETY: both pointers are valid; this copies the decoder's view of
        // the stream into parameters owned here, as FFmpeg's probing does.
        let r =
            unsafe { ffi::avcodec_parameters_from_context(owned.as_mut_ptr(), decoder.as_ptr()) };
        return Ok((r >= 0).then_some(owned));
    }
    Ok(None)
}

fn track_of(path: &Path, r: &mut VideoReader) -> Result<VideoTrack> {
    let st = r
        .ictx
        .stream(r.stream_index)
        .ok_or_else(|| EngineError::NoVideo(path.to_path_buf()))?;
    let tb = st.time_base();
    if tb.numerator() <= 0 || tb.denominator() <= 0 {
        return Err(EngineError::media(path, "video stream has no time base"));
    }
    let codec = format!("{:?}", st.parameters().id()).to_lowercase();
    let fr = {
        let a = st.avg_frame_rate();
        if a.numerator() > 0 && a.denominator() > 0 {
            f64::from(a)
        } else {
            let r = st.rate();
            if r.numerator() > 0 && r.denominator() > 0 {
                f64::from(r)
            } else {
                30.0
            }
        }
    };
    let frame_s = 1.0 / fr.clamp(1.0, 1000.0);
    let tbf = f64::from(tb);
    let header_start = if st.start_time() != ffi::AV_NOPTS_VALUE {
        st.start_time() as f64 * tbf
    } else {
        0.0
    };
    let header_dur = if st.duration() > 0 {
        st.duration() as f64 * tbf
    } else if r.ictx.duration() > 0 {
        r.ictx.duration() as f64 / f64::from(ffi::AV_TIME_BASE)
    } else {
        0.0
    };
    let mut track = VideoTrack {
        stream_index: r.stream_index,
        codec,
        time_base: (tb.numerator(), tb.denominator()),
        start_s: header_start,
        end_s: header_start + header_dur,
        frame_s,
    };
    // First presented frame: min pts among the first packets.
    let mut first_pts: Option<i64> = None;
    for _ in 0..16 {
        match r.next()? {
            Some(p) => {
                if let Some(t) = timing_of(&p) {
                    first_pts = Some(first_pts.map_or(t.pts, |f: i64| f.min(t.pts)));
                }
            }
            None => break,
        }
    }
    let first_pts = first_pts.ok_or_else(|| EngineError::Empty(path.to_path_buf()))?;
    track.start_s = track.to_s(first_pts);
    // Last presented instant: seek a few seconds before the header's end and
    // read to the end.
    let mut back = 3.0;
    loop {
        r.seek(track.to_ts((track.end_s - back).max(track.start_s)))?;
        let mut end_ts: Option<i64> = None;
        let mut n = 0usize;
        while let Some(p) = r.next()? {
            if let Some(t) = timing_of(&p) {
                let d = if t.duration > 0 {
                    t.duration
                } else {
                    track.to_ts(frame_s).max(1)
                };
                end_ts = Some(end_ts.map_or(t.pts + d, |e: i64| e.max(t.pts + d)));
                n += 1;
            }
        }
        if let Some(e) = end_ts {
            track.end_s = track.to_s(e);
            break;
        }
        if n == 0 && back < 1e5 && track.end_s - back > track.start_s {
            back *= 4.0;
            continue;
        }
        break;
    }
    if track.end_s <= track.start_s {
        return Err(EngineError::Empty(path.to_path_buf()));
    }
    Ok(track)
}

/// Which packets to copy, decided before writing anything.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoCut {
    /// Where the copy pass seeks to (stream time base); it then skips to `key`.
    pub(crate) seek_ts: i64,
    key: PacketTiming,
    /// pts of the first presented frame (the cut); becomes output time 0.
    pub start_pts: i64,
    /// The copy stops at the first packet (decode order) with pts >= this.
    pub stop_pts: i64,
    /// Presentation end of the copied frames.
    pub end_pts: i64,
    /// Packets from the keyframe to the cut that are decoded but not shown.
    pub hidden_frames: usize,
}

impl VideoCut {
    /// pts of the keyframe copying starts from.
    pub fn key_pts(&self) -> i64 {
        self.key.pts
    }
    /// The same cut with copying resuming at another keyframe (after a
    /// re-encoded head).
    pub fn resume_at(&self, key_dts: i64, key_pts: i64, key_pos: isize) -> VideoCut {
        VideoCut {
            seek_ts: key_dts,
            key: PacketTiming {
                pts: key_pts,
                dts: key_dts,
                duration: 0,
                key: true,
                pos: key_pos,
            },
            hidden_frames: 0,
            ..self.clone()
        }
    }
    pub fn start_s(&self, track: &VideoTrack) -> f64 {
        track.to_s(self.start_pts)
    }
    pub fn end_s(&self, track: &VideoTrack) -> f64 {
        track.to_s(self.end_pts)
    }
}

/// Decides the packets to copy for presenting container times
/// `[start_s, end_s)`: the frame shown at `start_s` (nearest frame start),
/// the keyframe to begin copying from, and the exact end.
pub fn plan_cut(path: &Path, track: &VideoTrack, start_s: f64, end_s: f64) -> Result<VideoCut> {
    let mut r = VideoReader::open(path)?;
    let half = track.to_ts(track.frame_s * 0.5).max(1);
    let target = track.to_ts(start_s);
    let stop_pts = track.to_ts(end_s);
    let mut back = 1.5;
    let (seek_ts, key, start_pts, hidden_frames) = loop {
        let seek_ts = track.to_ts(start_s - back);
        r.seek(seek_ts)?;
        let mut read: Vec<PacketTiming> = Vec::new();
        while let Some(p) = r.next()? {
            if let Some(t) = timing_of(&p) {
                let past = t.dts > target + track.to_ts(1.0);
                read.push(t);
                if past {
                    break;
                }
            }
        }
        // The cut frame: the first frame starting at or after the target
        // (within half a frame), else the last frame read.
        let f0 = read
            .iter()
            .enumerate()
            .filter(|(_, t)| t.pts >= target - half)
            .min_by_key(|(_, t)| t.pts)
            .map(|(i, t)| (i, t.pts));
        let Some((f0_idx, f0_pts)) = f0 else {
            return Err(EngineError::NothingToExport {
                reason: format!("no video frame at {start_s:.3} s"),
            });
        };
        // The keyframe to start copying from: the last keyframe in decode
        // order at or before the cut frame that is shown no later than it.
        let key = read[..=f0_idx]
            .iter()
            .rposition(|t| t.key && t.pts <= f0_pts)
            .map(|i| (i, read[i]));
        match key {
            Some((ki, k)) => {
                let hidden = read[ki..].iter().filter(|t| t.pts < f0_pts).count();
                break (seek_ts, k, f0_pts, hidden);
            }
            None if start_s - back > track.start_s - 1.0 => back *= 3.0,
            None => {
                return Err(EngineError::Unsupported {
                    path: path.to_path_buf(),
                    reason: "no keyframe before the cut point; the video stream looks damaged"
                        .into(),
                })
            }
        }
    };
    // The end: scan from a keyframe a little before it (or from the copy
    // start when the export is short), applying the same stop rule as the copy.
    let end_scan_from = track.to_ts(end_s - 2.0);
    if end_scan_from > key.pts {
        r.seek(end_scan_from)?;
    } else {
        r.seek(seek_ts)?;
    }
    let mut end_pts = start_pts;
    let frame_ts = track.to_ts(track.frame_s).max(1);
    while let Some(p) = r.next()? {
        let Some(t) = timing_of(&p) else { continue };
        if t.pts >= stop_pts {
            break;
        }
        let d = if t.duration > 0 { t.duration } else { frame_ts };
        end_pts = end_pts.max(t.pts + d);
    }
    if end_pts <= start_pts {
        return Err(EngineError::NothingToExport {
            reason: format!("no video frames between {start_s:.3} s and {end_s:.3} s"),
        });
    }
    Ok(VideoCut {
        seek_ts,
        key,
        start_pts,
        stop_pts,
        end_pts,
        hidden_frames,
    })
}

/// Streams the packets of a [`VideoCut`] in decode order, unchanged except
/// for missing decode timestamps, which are filled in (Matroska gives none
/// for the first packets after a keyframe when there are B-frames; MP4
/// needs them).
pub(crate) struct CutReader {
    reader: VideoReader,
    cut: VideoCut,
    started: bool,
    done: bool,
    /// Packets read ahead while looking for the first known dts.
    ahead: std::collections::VecDeque<ffmpeg::Packet>,
    last_dts: Option<i64>,
    frame_ts: i64,
}

impl CutReader {
    pub fn open(path: &Path, track: &VideoTrack, cut: &VideoCut) -> Result<Self> {
        let mut reader = VideoReader::open(path)?;
        reader.seek(cut.seek_ts)?;
        Ok(Self {
            reader,
            cut: cut.clone(),
            started: false,
            done: false,
            ahead: std::collections::VecDeque::new(),
            last_dts: None,
            frame_ts: track.to_ts(track.frame_s).max(1),
        })
    }

    /// A global tag of the input (e.g. `creation_time`).
    pub fn tag(&self, key: &str) -> Option<String> {
        self.reader.ictx.metadata().get(key).map(str::to_string)
    }

    pub fn input_stream(&self) -> Option<ffmpeg::format::stream::Stream<'_>> {
        self.reader.ictx.stream(self.reader.stream_index)
    }

    /// Next packet of the cut as the demuxer gives it.
    fn next_raw(&mut self) -> Result<Option<ffmpeg::Packet>> {
        if self.done {
            return Ok(None);
        }
        while let Some(p) = self.reader.next()? {
            let Some(t) = timing_of(&p) else {
                if self.started {
                    return Err(EngineError::Unsupported {
                        path: self.reader.path.clone(),
                        reason: "a video packet has no timestamp; remux the file first".into(),
                    });
                }
                continue;
            };
            if !self.started {
                let k = &self.cut.key;
                let same = t.pts == k.pts && t.key && (k.pos < 0 || t.pos == k.pos);
                if !same {
                    continue;
                }
                self.started = true;
            }
            if t.pts >= self.cut.stop_pts {
                self.done = true;
                return Ok(None);
            }
            return Ok(Some(p));
        }
        self.done = true;
        if !self.started {
            return Err(EngineError::media(
                &self.reader.path,
                "the keyframe to copy from was not found again (was the file changed?)",
            ));
        }
        Ok(None)
    }

    /// Next packet to copy, original pts, dts always set and increasing.
    pub fn next(&mut self) -> Result<Option<ffmpeg::Packet>> {
        if self.ahead.is_empty() {
            let Some(p) = self.next_raw()? else {
                return Ok(None);
            };
            if p.dts().is_some() || self.last_dts.is_some() {
                return Ok(Some(self.fix_dts(p)));
            }
            // Leading packets without dts: read ahead to the first known one
            // and count back from it, one frame per packet.
            self.ahead.push_back(p);
            let mut known: Option<i64> = None;
            while self.ahead.len() < 64 {
                match self.next_raw()? {
                    Some(p) => {
                        let d = p.dts();
                        self.ahead.push_back(p);
                        if let Some(d) = d {
                            known = Some(d);
                            break;
                        }
                    }
                    None => break,
                }
            }
            let missing = self.ahead.iter().take_while(|p| p.dts().is_none()).count();
            for (i, p) in self.ahead.iter_mut().take(missing).enumerate() {
                let pts = p.pts().unwrap_or(0);
                let dts = match known {
                    Some(k) => (k - (missing - i) as i64 * self.frame_ts).min(pts),
                    None => pts,
                };
                p.set_dts(Some(dts));
            }
        }
        match self.ahead.pop_front() {
            Some(p) => Ok(Some(self.fix_dts(p))),
            None => Ok(None),
        }
    }

    fn fix_dts(&mut self, mut p: ffmpeg::Packet) -> ffmpeg::Packet {
        let pts = p.pts().or(p.dts()).unwrap_or(0);
        let mut dts = match (p.dts(), self.last_dts) {
            (Some(d), _) => d,
            (None, Some(last)) => (last + self.frame_ts).min(pts),
            (None, None) => pts,
        };
        if let Some(last) = self.last_dts {
            if dts <= last {
                dts = last + 1;
            }
        }
        p.set_pts(Some(pts.max(dts)));
        p.set_dts(Some(dts));
        self.last_dts = Some(dts);
        p
    }
}

fn mktag(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from(a) | (u32::from(b) << 8) | (u32::from(c) << 16) | (u32::from(d) << 24)
}

/// Whether MP4 can hold this video codec.
pub fn mp4_accepts(codec_id: ffmpeg::codec::Id) -> bool {
    crate::init();
    let name = std::ffi::CString::new("mp4").unwrap_or_default();
    // SAFETY: looking up a muxer by a valid C string; query is read-only.
    unsafe {
        let of = ffi::av_guess_format(name.as_ptr(), std::ptr::null(), std::ptr::null());
        if of.is_null() {
            return false;
        }
        ffi::avformat_query_codec(of, codec_id.into(), ffi::FF_COMPLIANCE_NORMAL) == 1
    }
}

/// Adds a stream to `octx` that receives the input stream's packets as they
/// are: same codec parameters (`params` when given: the stream's complete
/// ones, see [`video_track_and_params`]), time base, frame rate, display
/// matrix (phone rotation) and colour metadata. HEVC is tagged `hvc1` so
/// Apple players open it.
pub(crate) fn add_copied_video_stream(
    octx: &mut ffmpeg::format::context::Output,
    ist: &ffmpeg::format::stream::Stream,
    params: Option<&OwnedParams>,
) -> Result<usize> {
    // SAFETY: all pointers come from live FFmpeg contexts; the new stream is
    // owned by `octx`; side data is copied byte for byte with its size.
    unsafe {
        let ost = ffi::avformat_new_stream(octx.as_mut_ptr(), std::ptr::null());
        if ost.is_null() {
            return Err(EngineError::media(
                Path::new("output"),
                "cannot add the video stream",
            ));
        }
        let ist_ptr = ist.as_ptr();
        let src = params.map_or((*ist_ptr).codecpar as *const _, |p| p.as_ptr());
        let r = ffi::avcodec_parameters_copy((*ost).codecpar, src);
        if r < 0 {
            return Err(EngineError::media(
                Path::new("output"),
                ffmpeg::Error::from(r),
            ));
        }
        let par = (*ost).codecpar;
        (*par).codec_tag = if (*par).codec_id == ffi::AVCodecID::AV_CODEC_ID_HEVC {
            mktag(b'h', b'v', b'c', b'1')
        } else {
            0
        };
        (*ost).time_base = (*ist_ptr).time_base;
        (*ost).avg_frame_rate = (*ist_ptr).avg_frame_rate;
        (*ost).r_frame_rate = (*ist_ptr).r_frame_rate;
        (*ost).sample_aspect_ratio = (*ist_ptr).sample_aspect_ratio;
        for i in 0..(*ist_ptr).nb_side_data as usize {
            let sd = (*ist_ptr).side_data.add(i);
            let dst = ffi::av_stream_new_side_data(ost, (*sd).type_, (*sd).size);
            if !dst.is_null() {
                std::ptr::copy_nonoverlapping((*sd).data, dst, (*sd).size);
            }
        }
        // Language and handler name help players label the track.
        ffi::av_dict_copy(&mut (*ost).metadata, (*ist_ptr).metadata, 0);
        Ok((*ost).index as usize)
    }
}

/// Replaces an output stream's codec extradata (e.g. an `avcC` with extra
/// parameter sets).
pub(crate) fn set_extradata(
    octx: &mut ffmpeg::format::context::Output,
    index: usize,
    data: &[u8],
) -> Result<()> {
    // SAFETY: the stream exists; the buffer is allocated with FFmpeg's
    // allocator and the padding FFmpeg requires, and owned by the parameters.
    unsafe {
        let fc = octx.as_mut_ptr();
        if index >= (*fc).nb_streams as usize {
            return Err(EngineError::media(Path::new("output"), "no such stream"));
        }
        let par = (**(*fc).streams.add(index)).codecpar;
        let pad = ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        let buf = ffi::av_mallocz(data.len() + pad) as *mut u8;
        if buf.is_null() {
            return Err(EngineError::media(Path::new("output"), "out of memory"));
        }
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
        ffi::av_freep(&mut (*par).extradata as *mut *mut u8 as *mut std::ffi::c_void);
        (*par).extradata = buf;
        (*par).extradata_size = data.len() as i32;
    }
    Ok(())
}

/// Shared record of the first write error, so a failed mux can say
/// "disk full" rather than "I/O error".
#[derive(Clone, Default)]
pub(crate) struct WriteErrorSlot(Arc<Mutex<Option<std::io::Error>>>);

impl WriteErrorSlot {
    fn record(&self, e: &std::io::Error) {
        if let Ok(mut g) = self.0.lock() {
            if g.is_none() {
                *g = Some(std::io::Error::new(e.kind(), e.to_string()));
                // Keep the OS error number, which `kind` alone may lose.
                if let Some(code) = e.raw_os_error() {
                    *g = Some(std::io::Error::from_raw_os_error(code));
                }
            }
        }
    }
    pub fn take(&self) -> Option<std::io::Error> {
        self.0.lock().ok().and_then(|mut g| g.take())
    }
}

/// Whether an I/O error means the disk (or quota) is full.
pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || e.kind() == std::io::ErrorKind::StorageFull
}

/// The partial output file as the muxer's byte sink; records the first
/// error. On Linux the data bypasses the page cache (see
/// [`crate::export::output::direct`]) when the file system allows it. Otherwise every
/// new 8 MB is handed to the kernel for writeback as soon as written, so
/// that the final fsync is short. The writeback requests are made by a
/// helper thread: starting writeback allocates blocks and submits I/O in the
/// caller's time, which would otherwise stall the muxer.
pub(crate) struct OutputSink {
    file: File,
    errors: WriteErrorSlot,
    #[cfg(target_os = "linux")]
    direct: Option<crate::export::output::direct::DirectSink>,
    /// Write position, and the end of what was handed to writeback.
    pos: u64,
    high: u64,
    handed: u64,
    writeback: Option<Writeback>,
    pub written: Arc<std::sync::atomic::AtomicU64>,
}

const WRITEBACK_EVERY: u64 = 8 << 20;

/// The helper thread asking the kernel to write ranges of the file out.
struct Writeback {
    tx: Option<std::sync::mpsc::Sender<(u64, u64)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writeback {
    #[cfg(target_os = "linux")]
    fn start(file: &File) -> Option<Self> {
        use std::os::unix::io::AsRawFd;
        let file = file.try_clone().ok()?;
        let (tx, rx) = std::sync::mpsc::channel::<(u64, u64)>();
        let thread = std::thread::Builder::new()
            .name("writeback".into())
            .spawn(move || {
                while let Ok((offset, len)) = rx.recv() {
                    // SAFETY: a valid fd owned by this thread; this starts
                    // writing the range's dirty pages out, without waiting
                    // for them. Errors surface in the final fsync.
                    unsafe {
                        libc::sync_file_range(
                            file.as_raw_fd(),
                            offset as libc::off64_t,
                            len as libc::off64_t,
                            libc::SYNC_FILE_RANGE_WRITE,
                        );
                    }
                }
            })
            .ok()?;
        Some(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn start(_file: &File) -> Option<Self> {
        None
    }

    fn request(&self, offset: u64, len: u64) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((offset, len));
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl OutputSink {
    pub fn new(file: File, errors: WriteErrorSlot) -> Self {
        #[cfg(target_os = "linux")]
        let direct = crate::export::output::direct::DirectSink::open(&file);
        #[cfg(target_os = "linux")]
        let writeback = if direct.is_some() {
            None
        } else {
            Writeback::start(&file)
        };
        #[cfg(not(target_os = "linux"))]
        let writeback = Writeback::start(&file);
        Self {
            file,
            errors,
            #[cfg(target_os = "linux")]
            direct,
            pos: 0,
            high: 0,
            handed: 0,
            writeback,
            written: Arc::default(),
        }
    }
}

impl Write for OutputSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        #[cfg(target_os = "linux")]
        if let Some(d) = &mut self.direct {
            let n = d.write(buf).inspect_err(|e| self.errors.record(e))?;
            self.written
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            return Ok(n);
        }
        match self.file.write(buf) {
            Ok(n) => {
                self.pos += n as u64;
                self.high = self.high.max(self.pos);
                self.written
                    .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                if self.high - self.handed >= WRITEBACK_EVERY {
                    if let Some(w) = &self.writeback {
                        w.request(self.handed, self.high - self.handed);
                    }
                    self.handed = self.high;
                }
                Ok(n)
            }
            Err(e) => {
                self.errors.record(&e);
                Err(e)
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(d) = &mut self.direct {
            return d.flush().inspect_err(|e| self.errors.record(e));
        }
        self.file.flush().inspect_err(|e| self.errors.record(e))
    }
}

#[cfg(target_os = "linux")]
impl Drop for OutputSink {
    fn drop(&mut self) {
        // The muxer's StreamIo flushes before dropping its stream; this
        // covers any other owner, so staged bytes are never lost silently.
        let _ = self.flush();
    }
}

impl Seek for OutputSink {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        #[cfg(target_os = "linux")]
        if let Some(d) = &mut self.direct {
            return d.seek(pos).inspect_err(|e| self.errors.record(e));
        }
        let at = self.file.seek(pos).inspect_err(|e| self.errors.record(e))?;
        self.pos = at;
        Ok(at)
    }
}

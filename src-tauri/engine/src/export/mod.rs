//! `export`: the finished video — the recording's picture, copied packet for
//! packet, with the clean song placed exactly in time, trimmed to where the
//! song is heard.
//!
//! # Frame-accurate start: edit list by default
//! The cut rarely falls on a keyframe. The default copies the packets from the
//! previous keyframe and writes an MP4 edit list so that presentation starts
//! at the cut ([`StartCut::EditList`]). Why this default: the picture stays
//! bit-identical (no generation loss, no encoder needed), it works the same
//! for H.264 and HEVC, it is the fastest, and QuickTime, WebKit, Chrome, VLC
//! and ffmpeg all honour edit lists. The cost: up to one GOP (~1 s on phones)
//! of extra packets in the file, decoded but not shown, and players that
//! ignore edit lists (rare, old) would show those frames first.
//! [`StartCut::SmartCut`] is the option: H.264 only, the frames from the cut
//! to the next keyframe are re-encoded with libx264 (CRF 14) under
//! parameter-set ids of their own, added to the track's `avcC`, and the rest
//! is copied (see [`smartcut`]); it needs libx264 and splices two
//! encoders' streams, which is why it is not the default.
//!
//! # Inputs and outputs
//! MP4, MOV, MKV and AVI in (any container FFmpeg reads); MP4 out, always.
//! The video codec must fit MP4 (H.264, HEVC — tagged `hvc1` for Apple —,
//! MPEG-4, AV1, VP9…); one that does not (FFV1, ProRes, raw video…) is
//! refused with an `unsupported` error saying to convert the video first:
//! no MKV fallback, since MKV cannot start frame-accurately without an edit
//! list. The audio is the song only: AAC-LC, 192 kbit/s by default, at the
//! song's sample rate, or the song's own AAC packets ([`AudioChoice`]).
//!
//! # Crash safety
//! The file is written as `.beatsync-<pid>-<n>-<final name>.partial` in the
//! output folder, locked (flock) while being written, flushed and fsynced,
//! probed (streams, duration as planned), renamed to the final name without
//! ever replacing an existing file (` (2)`, ` (3)`… are added), and the folder
//! is fsynced. A killed export leaves only the `.partial` file, whose lock
//! died with the process; the next export into that folder removes it.

pub mod audio;
pub(crate) mod output;
pub(crate) mod smartcut;
pub mod trim;
pub(crate) mod video;

pub use audio::{Retime, RetimeMode};
pub use trim::{EndReason, StartReason};

use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::export::audio::{
    aac_window, choose_retime, choose_splice, split_plan, AudioPacket, SongCopier, SongEncoder,
    SongRender, SplitPlan, AAC_FRAME,
};
use crate::export::trim::{SongAudibleRange, TrimFacts};
use crate::export::video::{CutReader, OutputSink, VideoTrack, WriteErrorSlot};
use crate::media::probe::{probe_fast, MediaInfo, OwnedParams};
use crate::timeline::Placement;
use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How the frame-accurate start is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StartCut {
    /// Copy from the previous keyframe; an MP4 edit list starts presentation
    /// at the cut. Bit-exact picture. The default.
    #[default]
    EditList,
    /// Re-encode from the cut to the next keyframe, copy the rest.
    SmartCut,
}

/// What to put in the audio track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioChoice {
    /// AAC bit rate for encoding, bit/s.
    pub bitrate: u32,
    /// Copy the song's packets when it is AAC and the rate is 1 (no
    /// generation loss, faster); otherwise encode.
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
/// (`AlignResult.overlap`); dance time, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SongHeard {
    pub dance_start_s: f64,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRequest {
    /// The class recording (video).
    pub dance: PathBuf,
    /// The clean song.
    pub bgm: PathBuf,
    /// Folder to write into.
    pub out_dir: PathBuf,
    /// File name; default `<dance stem>_beatsync.mp4`. `.mp4` is added if missing.
    #[serde(default)]
    pub name: Option<String>,
    /// Where the song goes; `None`: run the aligner ([`crate::align_files`]).
    #[serde(default)]
    pub placement: Option<Placement>,
    /// From the aligner; when absent it is computed from the placement and
    /// the song's own audio.
    #[serde(default)]
    pub song_heard: Option<SongHeard>,
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
    /// Refuse up front when the folder's free space is clearly too small.
    #[serde(default = "yes")]
    pub check_free_space: bool,
}

impl ExportRequest {
    pub fn new(dance: &Path, bgm: &Path, out_dir: &Path, placement: Option<Placement>) -> Self {
        Self {
            dance: dance.to_path_buf(),
            bgm: bgm.to_path_buf(),
            out_dir: out_dir.to_path_buf(),
            name: None,
            placement,
            song_heard: None,
            lead_in_s: 0.0,
            trim_start_s: None,
            trim_end_s: None,
            start_cut: StartCut::default(),
            audio: AudioChoice::default(),
            retime: RetimeMode::default(),
            detect_black_tail: true,
            check_free_space: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrimReport {
    /// Dance time of the first presented frame (the cut) and of the end.
    pub start_s: f64,
    pub end_s: f64,
    pub start_reason: StartReason,
    pub end_reason: EndReason,
    pub lead_in_s: f64,
    /// Where the song is heard in the recording (dance time).
    pub song_heard_start_s: f64,
    pub song_heard_end_s: f64,
    /// Frames between the keyframe and the cut, in the file but not shown.
    pub hidden_frames: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VideoMethod {
    /// Every packet copied; an edit list starts presentation at the cut.
    #[serde(rename = "copied")]
    Copied,
    #[serde(rename = "smart-cut")]
    SmartCut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioSource {
    Encoded,
    Copied,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioReport {
    pub codec: String,
    /// bit/s (nominal for encoded audio, measured for copied).
    pub bitrate: u64,
    pub source: AudioSource,
    pub sample_rate: u32,
    pub channels: u16,
    pub retime: Retime,
    /// Why a requested copy was not possible, etc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportReport {
    pub output: PathBuf,
    pub offset_s: f64,
    pub rate: f64,
    /// Dance time where `offset_s` holds exactly (matters when `rate != 1`).
    pub offset_ref_s: f64,
    /// The aligner's confidence, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    pub trim: TrimReport,
    pub video: VideoMethod,
    pub video_codec: String,
    pub audio: AudioReport,
    pub duration_s: f64,
    pub size_bytes: u64,
    pub timings_ms: BTreeMap<String, u64>,
}

/// What export needs to know about the inputs that does not depend on the
/// placement; computed by [`analyse_inputs`] (the `sync` command runs it
/// while the aligner works).
#[derive(Debug, Clone)]
pub struct InputAnalysis {
    pub dance_info: MediaInfo,
    pub bgm_info: MediaInfo,
    pub video: VideoTrack,
    /// Container time of the recording's first decoded audio sample: dance
    /// time 0 (the aligner's clock).
    pub dance_origin_s: f64,
    pub song: SongAudibleRange,
    /// Whether the recording may end in a black stretch (checked while the
    /// aligner runs, so that a normal ending costs nothing later).
    pub last_frame_black: Option<bool>,
    /// The video stream's complete codec parameters, for the output stream.
    video_params: OwnedParams,
    fingerprints: Vec<Fingerprint>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct Fingerprint {
    path: PathBuf,
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    inode: u64,
}

fn fingerprint(path: &Path) -> Result<Fingerprint> {
    let m = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => EngineError::NotFound(path.to_path_buf()),
        _ => EngineError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })?;
    Ok(Fingerprint {
        path: path.to_path_buf(),
        len: m.len(),
        modified: m.modified().ok(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&m),
    })
}

fn check_unchanged(prints: &[Fingerprint]) -> Result<()> {
    for f in prints {
        match fingerprint(&f.path) {
            Ok(now) if now == *f => {}
            _ => return Err(EngineError::InputChanged(f.path.clone())),
        }
    }
    Ok(())
}

/// Container time of the first decoded audio sample of `dance` (0 when it
/// has no sound): the pts of the first frame its decoder gives, as
/// [`crate::media::decode`] counts it (priming already removed by libavcodec).
fn dance_audio_origin(dance: &Path, info: &MediaInfo) -> Result<f64> {
    if info.audio().is_none() {
        return Ok(0.0);
    }
    let mut ictx = crate::media::probe::open_input_fast(dance)?;
    let stream = ictx
        .streams()
        .best(ffmpeg::media::Type::Audio)
        .ok_or_else(|| EngineError::NoAudio(dance.to_path_buf()))?;
    let index = stream.index();
    let tb = stream.time_base();
    let mut dctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| EngineError::media(dance, e))?
        .decoder();
    dctx.set_packet_time_base(tb);
    let mut decoder = dctx.audio().map_err(|e| EngineError::Unsupported {
        path: dance.to_path_buf(),
        reason: format!("cannot open the audio decoder: {e}"),
    })?;
    crate::media::probe::read_only_stream(&mut ictx, index);
    let mut frame = ffmpeg::frame::Audio::empty();
    let mut eof = false;
    loop {
        if decoder.receive_frame(&mut frame).is_ok() {
            return Ok(frame.pts().map_or(0.0, |p| p as f64 * f64::from(tb)));
        }
        if eof {
            return Ok(0.0);
        }
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(&mut ictx) {
            Ok(()) => {
                if packet.stream() == index {
                    // A corrupt packet is skipped, as the aligner's decoder does.
                    let _ = decoder.send_packet(&packet);
                }
            }
            Err(_) => {
                let _ = decoder.send_eof();
                eof = true;
            }
        }
    }
}

/// Reads what export needs from both inputs (probe, video extent, song's
/// audible range, whether the last frame is black). Decodes of the song its
/// start (up to its first audible block) and its last 30 s, at its own rate
/// in mono; of the video at most the last GOP, whose decoder also completes
/// the video stream's parameters for the output. MP4/MOV inputs are read
/// from their header alone, without FFmpeg's stream-info probing.
pub fn analyse_inputs(
    dance: &Path,
    bgm: &Path,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<InputAnalysis> {
    let t0 = Instant::now();
    crate::init();
    let fingerprints = vec![fingerprint(dance)?, fingerprint(bgm)?];
    let dance_info = probe_fast(dance)?;
    dance_info.require_video()?;
    let bgm_info = probe_fast(bgm)?;
    bgm_info.require_audio()?;
    cancel.check()?;
    // The song's envelope and the recording's picture facts are independent:
    // read them side by side.
    let (song, picture) = std::thread::scope(|scope| {
        let picture = scope.spawn(|| -> Result<(VideoTrack, OwnedParams, f64, Option<bool>)> {
            let video = video::video_track(dance)?;
            let origin = dance_audio_origin(dance, &dance_info)?;
            cancel.check()?;
            // The decoder that looks at the last frames also completes the
            // stream's parameters for the output (one keyframe decoded).
            let (black, params) = trim::look_at_the_end(dance, video.end_s, cancel)?;
            let params = match params {
                Some(p) => p,
                None => video::video_params(dance, &video)?,
            };
            Ok((video, params, origin, Some(black)))
        });
        let mut paced = Progress::new(progress);
        let song = trim::song_audible_range(bgm, cancel, &mut |f| paced.tick("analyse", f));
        let picture = picture
            .join()
            .unwrap_or_else(|_| Err(EngineError::media(dance, "reading the video failed")));
        (song, picture)
    });
    let (video, video_params, dance_origin_s, last_frame_black) = picture?;
    let song = song?;
    Ok(InputAnalysis {
        dance_info,
        bgm_info,
        video,
        dance_origin_s,
        song,
        last_frame_black,
        video_params,
        fingerprints,
        elapsed_ms: t0.elapsed().as_millis() as u64,
    })
}

/// Progress reporting at a steady pace (the UI wants news every 250 ms).
struct Progress<'a> {
    f: &'a mut dyn FnMut(&str, f64),
    last: Instant,
}

impl<'a> Progress<'a> {
    fn new(f: &'a mut dyn FnMut(&str, f64)) -> Self {
        Self {
            f,
            last: Instant::now() - Duration::from_secs(1),
        }
    }
    fn tick(&mut self, stage: &str, fraction: f64) {
        if self.last.elapsed() >= Duration::from_millis(100) {
            self.now(stage, fraction);
        }
    }
    fn now(&mut self, stage: &str, fraction: f64) {
        (self.f)(stage, fraction.clamp(0.0, 1.0));
        self.last = Instant::now();
    }
}

/// Runs `work` on a helper thread while reporting progress and watching for
/// cancellation, for blocking steps (fsync) that cannot report themselves.
fn blocking_with_ticks<T: Send + 'static>(
    stage: &str,
    progress: &mut Progress,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    with_ticks(stage, progress, move |_| Ok(work()))
}

/// Runs `work` on a scoped helper thread; the fractions it reports, and a
/// steady repeat of the last one every 100 ms, reach `progress` on this
/// thread. Steps that cannot report often (the aligner's stages, decoding a
/// few 4K frames, fsync) thus still keep the UI informed every 250 ms.
fn with_ticks<T: Send>(
    stage: &str,
    progress: &mut Progress,
    work: impl FnOnce(&mut dyn FnMut(f64)) -> Result<T> + Send,
) -> Result<T> {
    enum Msg<T> {
        Fraction(f64),
        Done(Result<T>),
    }
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<Msg<T>>();
        scope.spawn(move || {
            let txf = tx.clone();
            let r = work(&mut |f| {
                let _ = txf.send(Msg::Fraction(f));
            });
            let _ = tx.send(Msg::Done(r));
        });
        let mut last = 0.0;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Msg::Fraction(f)) => {
                    last = f;
                    progress.tick(stage, f);
                }
                Ok(Msg::Done(r)) => return r,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => progress.now(stage, last),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(EngineError::Media {
                        path: PathBuf::from(stage),
                        reason: "an internal worker stopped unexpectedly".into(),
                    })
                }
            }
        }
    })
}

const PARTIAL_PREFIX: &str = ".beatsync-";
const PARTIAL_SUFFIX: &str = ".partial";

/// The file being written; removed on drop unless committed.
struct PartialFile {
    path: PathBuf,
    /// Holds the flock that tells other runs this partial is alive.
    file: File,
    committed: bool,
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(unix)]
fn try_lock(file: &File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: a valid fd; flock is released when the fd closes or the process dies.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> bool {
    true
}

fn dir_error(dir: &Path, e: &std::io::Error) -> EngineError {
    if video::is_disk_full(e) {
        return EngineError::DiskFull {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        };
    }
    EngineError::OutputDir {
        path: dir.to_path_buf(),
        reason: match e.kind() {
            std::io::ErrorKind::PermissionDenied => "permission denied".into(),
            std::io::ErrorKind::NotFound => "the folder does not exist".into(),
            _ => e.to_string(),
        },
    }
}

/// Removes `.partial` files left by killed BeatSync exports in `dir`: those
/// nobody holds a lock on any more. Returns how many were removed.
pub fn remove_stale_partials(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(PARTIAL_PREFIX) && name.ends_with(PARTIAL_SUFFIX)) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        else {
            continue;
        };
        if try_lock(&file) && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn check_out_dir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(EngineError::OutputDir {
            path: dir.to_path_buf(),
            reason: "it is a file, not a folder".into(),
        }),
        Err(e) => Err(dir_error(dir, &e)),
    }
}

/// The output file name: `<dance stem>_beatsync.mp4` or the user's name.
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
            let stem = req
                .dance
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "video".into());
            format!("{stem}_beatsync")
        }
    };
    if base.to_lowercase().ends_with(".mp4") {
        Ok(base)
    } else {
        Ok(format!("{base}.mp4"))
    }
}

/// `name.mp4`, then `name (2).mp4`, `name (3).mp4`…
pub(crate) fn numbered(name: &str, n: u32) -> String {
    if n <= 1 {
        return name.to_string();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    format!("{stem} ({n}){ext}")
}

/// Renames without ever replacing an existing file: `Ok(false)` when `to` exists.
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let f = std::ffi::CString::new(from.as_os_str().as_bytes())?;
        let t = std::ffi::CString::new(to.as_os_str().as_bytes())?;
        // SAFETY: valid NUL-terminated paths.
        let r = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                f.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if r == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EEXIST) => return Ok(false),
            // File systems without RENAME_NOREPLACE: fall through.
            Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {}
            _ => return Err(e),
        }
    }
    // Portable: a hard link fails if the target exists; then drop the old name.
    match std::fs::hard_link(from, to) {
        Ok(()) => {
            std::fs::remove_file(from)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(_) => {
            // No hard links (FAT, exFAT): check, then rename (small race).
            if to.exists() {
                return Ok(false);
            }
            std::fs::rename(from, to)?;
            Ok(true)
        }
    }
}

fn fsync_dir(dir: &Path) {
    // Directory fsync is what makes the rename durable; some file systems
    // refuse to open folders this way, and then there is nothing more to do.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(unix)]
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some(s.f_bavail as u64 * s.f_frsize as u64)
}

#[cfg(not(unix))]
fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

fn ms(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

/// Exports: runs the aligner when the request has no placement (in parallel
/// with the input analysis), then [`export_analysed`].
///
/// `progress(stage, fraction)` is called at least every ~100-250 ms with the
/// fraction of the current stage: `align` (only without a placement) or
/// `analyse`, `plan` (trim, black ending, smart-cut head), `export` (writing,
/// by output time), `finish` (fsync), `verify`, then `done` with 1.0.
/// `cancel` is checked between packets and frames: the call then returns
/// `EngineError::Cancelled` within a fraction of a second, with the partial
/// file removed.
pub fn export(
    req: &ExportRequest,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<ExportReport> {
    validate(req)?;
    check_out_dir(&req.out_dir)?;
    if req.placement.is_some() {
        let analysis = {
            let mut paced = Progress::new(progress);
            with_ticks("analyse", &mut paced, |report| {
                analyse_inputs(&req.dance, &req.bgm, cancel, &mut |_, f| report(f))
            })?
        };
        return export_analysed(req, &analysis, cancel, progress);
    }
    let t_align = Instant::now();
    let analysis_cancel = CancelToken::new();
    let mut paced = Progress::new(progress);
    let (aligned, analysis) = with_ticks("align", &mut paced, |report| {
        Ok(std::thread::scope(|scope| {
            let ac = analysis_cancel.clone();
            // With fewer than four cores the analysis waits until the aligner
            // leaves its two-thread stages (decoding both files, their
            // features): run beside them, it would slow them down by about
            // what it costs; beside the later stages it uses an idle core.
            // Dropping `go` starts it (at the latest when the aligner returns).
            let (go, wait) = std::sync::mpsc::channel::<()>();
            let job = scope.spawn(move || {
                let _ = wait.recv();
                ac.check()?;
                analyse_inputs(&req.dance, &req.bgm, &ac, &mut |_, _| {})
            });
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let mut go = (cores < 4).then_some(go);
            let aligned = crate::align::align_files(
                &req.dance,
                &req.bgm,
                &crate::align::AlignOptions {
                    beats: false,
                    ..Default::default()
                },
                cancel,
                &mut |stage, f| {
                    if go.is_some() && !matches!(stage, "decode" | "features") {
                        go = None;
                    }
                    report(f)
                },
            );
            if aligned.is_err() {
                analysis_cancel.cancel();
            }
            drop(go);
            let analysis = job.join().unwrap_or_else(|_| {
                Err(EngineError::media(&req.dance, "the input analysis failed"))
            });
            (aligned, analysis)
        }))
    })?;
    let aligned = aligned?;
    let mut analysis = analysis?;
    let align_ms = ms(t_align);
    // The analysis ran alongside; count the wall time once.
    analysis.elapsed_ms = 0;
    let mut resolved = req.clone();
    resolved.placement = Some(Placement {
        offset_s: aligned.offset_s,
        rate: aligned.rate,
        ref_dance_s: Some(0.5 * (aligned.overlap.dance_start_s + aligned.overlap.dance_end_s)),
    });
    resolved.song_heard = Some(SongHeard {
        dance_start_s: aligned.overlap.dance_start_s,
    });
    if resolved.retime == RetimeMode::Auto {
        // Follow the recording: a pitch-kept speed change is matched with a
        // pitch-kept stretch, a resampled one (or drift) by resampling.
        resolved.retime = if aligned.pitch_kept {
            RetimeMode::KeepPitch
        } else {
            RetimeMode::Resample
        };
    }
    let mut report = export_analysed(&resolved, &analysis, cancel, progress)?;
    report.confidence = Some(aligned.confidence);
    report.timings_ms.insert("align".to_string(), align_ms);
    if let Some(t) = report.timings_ms.get_mut("total") {
        *t += align_ms;
    }
    Ok(report)
}

fn validate(req: &ExportRequest) -> Result<()> {
    if let Some(p) = &req.placement {
        p.validate()?;
    }
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

/// Exports given an [`InputAnalysis`] of the same files.
pub fn export_analysed(
    req: &ExportRequest,
    a: &InputAnalysis,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<ExportReport> {
    let t_total = Instant::now();
    let mut timings = BTreeMap::new();
    timings.insert("analyse".to_string(), a.elapsed_ms);
    validate(req)?;
    check_out_dir(&req.out_dir)?;
    let mut progress = Progress::new(progress);
    let origin = a.dance_origin_s;
    let mut p = req.placement.ok_or_else(|| {
        EngineError::InvalidRequest("export_analysed needs a placement (offset and rate)".into())
    })?;
    if p.ref_dance_s.is_none() {
        p.ref_dance_s = Some(0.5 * (a.video.start_s + a.video.end_s) - origin);
    }

    // --- Trim decision.
    let t_plan = Instant::now();
    let heard_start = match req.song_heard {
        Some(h) => h.dance_start_s,
        None => p.dance_at(a.song.start_s),
    };
    let heard_end = p.dance_at(a.song.end_s);
    let rec_start = a.video.start_s - origin;
    let rec_end = a.video.end_s - origin;
    let mut facts = TrimFacts {
        recording_start_s: rec_start,
        recording_end_s: rec_end,
        song_heard_start_s: heard_start,
        song_heard_end_s: heard_end,
        black_from_s: None,
        lead_in_s: req.lead_in_s,
        user_start_s: req.trim_start_s,
        user_end_s: req.trim_end_s,
    };
    let first = trim::decide_trim(&facts)?;
    // A black ending is searched backwards from the planned end; when that
    // is the recording's end and its last frame is not black, there is none.
    let ends_with_picture =
        first.end_reason == EndReason::RecordingEnd && a.last_frame_black == Some(false);
    let (decision, cut) = with_ticks("plan", &mut progress, |_| {
        if req.detect_black_tail && !ends_with_picture {
            let black = trim::find_black_tail(
                &req.dance,
                first.start_s + origin + trim::MIN_EXPORT_S,
                first.end_s + origin,
                cancel,
            )?;
            facts.black_from_s = black.map(|c| c - origin);
        }
        let decision = trim::decide_trim(&facts)?;
        let cut = video::plan_cut(
            &req.dance,
            &a.video,
            decision.start_s + origin,
            decision.end_s + origin,
        )?;
        Ok((decision, cut))
    })?;
    let smart_head = if req.start_cut == StartCut::SmartCut {
        with_ticks("plan", &mut progress, |_| {
            crate::export::smartcut::encode_head(&req.dance, &cut, cancel)
        })?
    } else {
        None
    };
    let cut_start_dance = cut.start_s(&a.video) - origin;
    let cut_end_dance = cut.end_s(&a.video) - origin;
    let duration_s = cut_end_dance - cut_start_dance;
    timings.insert("plan".to_string(), ms(t_plan));
    cancel.check()?;

    // --- Output file.
    let t_write = Instant::now();
    let removed = remove_stale_partials(&req.out_dir);
    if removed > 0 {
        tracing::info!(
            "removed {removed} stale partial export(s) in {}",
            req.out_dir.display()
        );
    }
    let final_name = output_name(req)?;
    if req.check_free_space {
        let video_bytes = a.dance_info.size_bytes as f64 * duration_s
            / (a.video.end_s - a.video.start_s).max(1e-3);
        let needed = (video_bytes * 1.02) as u64
            + (f64::from(req.audio.bitrate) / 8.0 * duration_s * 1.1) as u64
            + (1 << 20);
        if let Some(free) = free_bytes(&req.out_dir) {
            if free < needed {
                return Err(EngineError::DiskFull {
                    path: req.out_dir.clone(),
                    reason: format!(
                        "the export needs about {:.1} MB and only {:.1} MB are free",
                        needed as f64 / 1e6,
                        free as f64 / 1e6
                    ),
                });
            }
        }
    }
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let partial_path = req.out_dir.join(format!(
        "{PARTIAL_PREFIX}{}-{}-{final_name}{PARTIAL_SUFFIX}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&partial_path)
        .map_err(|e| dir_error(&req.out_dir, &e))?;
    let mut partial = PartialFile {
        path: partial_path.clone(),
        file,
        committed: false,
    };
    try_lock(&partial.file);
    let sink_file = partial
        .file
        .try_clone()
        .map_err(|e| dir_error(&req.out_dir, &e))?;

    let errors = WriteErrorSlot::default();
    let write_failed = |e: ffmpeg::Error, errors: &WriteErrorSlot| -> EngineError {
        match errors.take() {
            Some(io) if video::is_disk_full(&io) => EngineError::DiskFull {
                path: req.out_dir.clone(),
                reason: io.to_string(),
            },
            Some(io) => EngineError::OutputWrite {
                path: partial_path.clone(),
                reason: io.to_string(),
            },
            None => EngineError::OutputWrite {
                path: partial_path.clone(),
                reason: e.to_string(),
            },
        }
    };
    let sink = OutputSink::new(sink_file, errors.clone());
    let mut io = ffmpeg::format::context::StreamIo::from_write_seek_with_capacity(sink, 1 << 20)
        .map_err(|e| write_failed(e, &errors))?;
    // The muxer flushes its buffer after every packet anyway, and the sink
    // buffers for itself: let packet data go straight to the sink instead
    // of being copied through FFmpeg's buffer first.
    // SAFETY: a valid write context owned by `io`, not in use yet; `direct`
    // only changes how avio_write and avio_seek reach the callbacks.
    unsafe { (*io.as_mut_ptr()).direct = 1 };
    let mut octx = ffmpeg::format::output_to_stream(io, Some("output.mp4"), Some("mp4"))
        .map_err(|e| write_failed(e, &errors))?;

    // Video stream, copied.
    let mut video_in = CutReader::open(
        &req.dance,
        &a.video,
        smart_head.as_ref().map_or(&cut, |h| &h.rest),
    )?;
    let mut head_packets: std::collections::VecDeque<ffmpeg::Packet> = smart_head
        .as_ref()
        .map(|h| h.packets.iter().cloned().collect())
        .unwrap_or_default();
    let (video_codec, in_tb) = {
        let ist = video_in
            .input_stream()
            .ok_or_else(|| EngineError::NoVideo(req.dance.clone()))?;
        let id = ist.parameters().id();
        if !video::mp4_accepts(id) {
            return Err(EngineError::Unsupported {
                path: req.dance.clone(),
                reason: format!(
                    "its video codec ({id:?}) cannot be stored in MP4 without re-encoding; convert the video to H.264 or HEVC first"
                ),
            });
        }
        (a.video.codec.clone(), ist.time_base())
    };
    let video_out_index = {
        let ist = video_in
            .input_stream()
            .ok_or_else(|| EngineError::NoVideo(req.dance.clone()))?;
        let index = video::add_copied_video_stream(&mut octx, &ist, Some(&a.video_params))?;
        if let Some(h) = &smart_head {
            video::set_extradata(&mut octx, index, &h.avcc)?;
        }
        index
    };
    // Keep the recording's date (and other global tags) in the export.
    let mut meta = ffmpeg::Dictionary::new();
    if let Some(ct) = video_in.tag("creation_time") {
        meta.set("creation_time", &ct);
    }
    meta.set("comment", "made with BeatSync");
    octx.set_metadata(meta);

    // Audio stream, encoded on its own thread (two threads for long
    // outputs at rate 1, spliced where both encoders agree).
    // A rate this close to 1 moves the song by under half a millisecond over
    // the whole export: treat it as 1 (exact sample copy, parallel encoding).
    let retime = if (p.rate - 1.0).abs() * duration_s.max(1.0) < 0.0005 {
        Retime::None
    } else {
        choose_retime(p.rate, req.retime)
    };
    let render = SongRender {
        song: req.bgm.clone(),
        placement: p,
        out_start_dance_s: cut_start_dance,
        duration_s,
        bitrate: req.audio.bitrate as usize,
        retime,
        range: None,
    };
    let mut audio_note = None;
    let copier = if req.audio.copy_if_possible {
        match SongCopier::open(&render)? {
            Ok(c) => Some(c),
            Err(reason) => {
                audio_note = Some(format!(
                    "the song's packets were not copied ({reason}); encoded instead"
                ));
                None
            }
        }
    } else {
        None
    };
    let encoder = match copier {
        Some(_) => None,
        None => Some(SongEncoder::open(render.clone(), true)?),
    };
    let (audio_rate, audio_channels, audio_params) = match (&copier, &encoder) {
        (Some(c), _) => (
            c.sample_rate,
            c.channels,
            c.parameters()
                .ok_or_else(|| EngineError::NoAudio(req.bgm.clone()))?,
        ),
        (None, Some(e)) => (e.sample_rate, e.channels, e.parameters()),
        (None, None) => return Err(EngineError::NoAudio(req.bgm.clone())),
    };
    let audio_tb_in = ffmpeg::Rational::new(1, audio_rate as i32);
    let audio_out_index = {
        let mut ost = octx
            .add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::AAC))
            .map_err(|e| write_failed(e, &errors))?;
        ost.set_parameters(audio_params);
        ost.set_time_base(audio_tb_in);
        // SAFETY: the stream's codec parameters are valid; a zero tag lets the
        // muxer pick `mp4a`.
        unsafe {
            (*(*ost.as_mut_ptr()).codecpar).codec_tag = 0;
        }
        ost.index()
    };
    octx.write_header().map_err(|e| write_failed(e, &errors))?;
    let video_out_tb = octx
        .stream(video_out_index)
        .map(|s| s.time_base())
        .unwrap_or(in_tb);
    let audio_out_tb = octx
        .stream(audio_out_index)
        .map(|s| s.time_base())
        .unwrap_or(audio_tb_in);

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let split = if encoder.is_some() && retime == Retime::None && cores >= 2 {
        split_plan(render.total_samples(audio_rate), audio_rate)
    } else {
        None
    };
    let audio_source = if copier.is_some() {
        AudioSource::Copied
    } else {
        AudioSource::Encoded
    };
    let mut threads = Vec::new();
    let mut feed = match (copier, encoder, split) {
        // Copying is demuxing only: done in this loop, no thread or channel.
        (Some(c), _, _) => AudioFeed::copied(c),
        (None, Some(e), None) => {
            let (rx, t) = spawn_audio(cancel.clone(), Some(256), move |cancel, sink| {
                e.run(cancel, sink)
            });
            threads.push(t);
            AudioFeed::single(rx)
        }
        (None, Some(e), Some(plan)) => {
            let mut job_a = render.clone();
            job_a.range = Some((0, plan.a_end));
            let mut job_b = render.clone();
            job_b.range = Some((plan.b_start, usize::MAX));
            drop(e);
            let enc_a = SongEncoder::open(job_a, true)?;
            let enc_b = SongEncoder::open(job_b, true)?;
            let (rx_a, ta) = spawn_audio(cancel.clone(), Some(256), move |c, s| enc_a.run(c, s));
            // Piece B runs ahead of the muxer: unbounded (it is ~24 kB/s).
            let (rx_b, tb) = spawn_audio(cancel.clone(), None, move |c, s| enc_b.run(c, s));
            threads.push(ta);
            threads.push(tb);
            AudioFeed::spliced(rx_a, rx_b, plan)
        }
        (None, None, _) => return Err(EngineError::NoAudio(req.bgm.clone())),
    };
    let mut audio_bytes = 0u64;

    let result = (|| -> Result<()> {
        let tbv = f64::from(in_tb);
        let shift = cut.start_pts;
        let mut next_video = |video_in: &mut CutReader| -> Result<Option<ffmpeg::Packet>> {
            match head_packets.pop_front() {
                Some(p) => Ok(Some(p)),
                None => video_in.next(),
            }
        };
        let mut video_next: Option<ffmpeg::Packet> = next_video(&mut video_in)?;
        let mut audio_next: Option<AudioPacket> = None;
        let mut audio_done = false;
        let mut fraction = 0.0;
        loop {
            cancel.check()?;
            if audio_next.is_none() && !audio_done {
                match feed.poll(Duration::from_millis(50))? {
                    Polled::Packet(pkt) => audio_next = Some(pkt),
                    Polled::Waiting => {
                        progress.tick("export", fraction);
                        continue;
                    }
                    Polled::Done => audio_done = true,
                }
            }
            let v_time = video_next
                .as_ref()
                .map(|p| (p.dts().or(p.pts()).unwrap_or(shift) - shift) as f64 * tbv);
            let a_time = audio_next
                .as_ref()
                .map(|p| p.dts().or(p.pts()).unwrap_or(0) as f64 / f64::from(audio_rate));
            let take_video = match (v_time, a_time) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(v), Some(a)) => v <= a,
            };
            if take_video {
                let Some(mut pkt) = video_next.take() else {
                    break;
                };
                let pts = pkt.pts().or(pkt.dts()).map(|t| t - shift);
                let dts = pkt.dts().or(pkt.pts()).map(|t| t - shift);
                pkt.set_pts(pts);
                pkt.set_dts(dts);
                pkt.set_position(-1);
                pkt.set_stream(video_out_index);
                pkt.rescale_ts(in_tb, video_out_tb);
                if let Some(v) = v_time {
                    fraction = v / duration_s.max(1e-3);
                    progress.tick("export", fraction);
                }
                pkt.write_interleaved(&mut octx)
                    .map_err(|e| write_failed(e, &errors))?;
                video_next = next_video(&mut video_in)?;
            } else {
                let Some(mut pkt) = audio_next.take() else {
                    break;
                };
                audio_bytes += pkt.size() as u64;
                pkt.set_stream(audio_out_index);
                pkt.set_position(-1);
                pkt.rescale_ts(audio_tb_in, audio_out_tb);
                pkt.write_interleaved(&mut octx)
                    .map_err(|e| write_failed(e, &errors))?;
            }
        }
        octx.write_trailer().map_err(|e| write_failed(e, &errors))?;
        Ok(())
    })();
    // Stop the audio threads (if still running) before anything else.
    drop(feed);
    for t in threads {
        let _ = t.join();
    }
    result?;
    drop(octx); // flushes the last buffered bytes into the file
    if let Some(io) = errors.take() {
        return Err(if video::is_disk_full(&io) {
            EngineError::DiskFull {
                path: req.out_dir.clone(),
                reason: io.to_string(),
            }
        } else {
            EngineError::OutputWrite {
                path: partial_path.clone(),
                reason: io.to_string(),
            }
        });
    }
    timings.insert("write".to_string(), ms(t_write));

    // --- Make it durable, check it, give it its name.
    let t_sync = Instant::now();
    let sync_file = partial
        .file
        .try_clone()
        .map_err(|e| dir_error(&req.out_dir, &e))?;
    blocking_with_ticks("finish", &mut progress, move || sync_file.sync_all())?.map_err(|e| {
        if video::is_disk_full(&e) {
            EngineError::DiskFull {
                path: req.out_dir.clone(),
                reason: e.to_string(),
            }
        } else {
            EngineError::OutputWrite {
                path: partial_path.clone(),
                reason: e.to_string(),
            }
        }
    })?;
    timings.insert("fsync".to_string(), ms(t_sync));
    cancel.check()?;

    let t_verify = Instant::now();
    progress.now("verify", 0.0);
    let written = probe_fast(&partial_path).map_err(|e| EngineError::OutputWrite {
        path: partial_path.clone(),
        reason: format!("the written file does not read back: {e}"),
    })?;
    let (Some(v), Some(au)) = (written.video(), written.audio()) else {
        return Err(EngineError::OutputWrite {
            path: partial_path.clone(),
            reason: "the written file lacks its video or audio stream".into(),
        });
    };
    let tolerance = 0.1 + 2.0 * a.video.frame_s;
    let v_dur = v.duration_s.unwrap_or(written.duration_s);
    if (v_dur - duration_s).abs() > tolerance || (written.duration_s - duration_s).abs() > tolerance
    {
        return Err(EngineError::OutputWrite {
            path: partial_path.clone(),
            reason: format!(
                "the written file lasts {:.3} s (video {v_dur:.3} s) instead of {duration_s:.3} s",
                written.duration_s
            ),
        });
    }
    check_unchanged(&a.fingerprints)?;
    timings.insert("verify".to_string(), ms(t_verify));
    cancel.check()?;

    let mut final_path = None;
    for n in 1..=9999 {
        let candidate = req.out_dir.join(numbered(&final_name, n));
        if candidate.exists() {
            continue;
        }
        match rename_no_replace(&partial_path, &candidate) {
            Ok(true) => {
                final_path = Some(candidate);
                break;
            }
            Ok(false) => continue,
            Err(e) => return Err(dir_error(&req.out_dir, &e)),
        }
    }
    let final_path = final_path.ok_or_else(|| EngineError::OutputDir {
        path: req.out_dir.clone(),
        reason: format!("too many files named like {final_name}"),
    })?;
    partial.committed = true;
    fsync_dir(&req.out_dir);
    progress.now("done", 1.0);
    timings.insert("total".to_string(), ms(t_total) + a.elapsed_ms);

    Ok(ExportReport {
        output: final_path,
        offset_s: p.offset_s,
        rate: p.rate,
        offset_ref_s: p.ref_dance_s.unwrap_or(0.0),
        confidence: None,
        trim: crate::export::TrimReport {
            start_s: cut_start_dance,
            end_s: cut_end_dance,
            start_reason: decision.start_reason,
            end_reason: decision.end_reason,
            lead_in_s: req.lead_in_s,
            song_heard_start_s: heard_start,
            song_heard_end_s: heard_end,
            hidden_frames: if smart_head.is_some() {
                0
            } else {
                cut.hidden_frames
            },
        },
        video: if smart_head.is_some() {
            VideoMethod::SmartCut
        } else {
            VideoMethod::Copied
        },
        video_codec,
        audio: AudioReport {
            codec: au.codec.clone(),
            bitrate: match audio_source {
                AudioSource::Encoded => u64::from(req.audio.bitrate),
                AudioSource::Copied => (audio_bytes as f64 * 8.0 / duration_s.max(1e-3)) as u64,
            },
            source: audio_source,
            sample_rate: audio_rate,
            channels: audio_channels,
            retime,
            note: audio_note,
        },
        duration_s,
        size_bytes: written.size_bytes,
        timings_ms: timings,
    })
}

type PacketRx = std::sync::mpsc::Receiver<Result<AudioPacket>>;

type AudioSink<'a> = &'a mut dyn FnMut(AudioPacket) -> Result<()>;

/// Runs an audio producer (encoder or copier) on its own thread; `bound`:
/// channel capacity (None: unbounded).
fn spawn_audio(
    cancel: CancelToken,
    bound: Option<usize>,
    run: impl FnOnce(&CancelToken, AudioSink) -> Result<()> + std::marker::Send + 'static,
) -> (PacketRx, std::thread::JoinHandle<()>) {
    type Send = Box<dyn Fn(Result<AudioPacket>) -> bool + std::marker::Send>;
    let (send, rx): (Send, PacketRx) = match bound {
        Some(n) => {
            let (tx, rx) = std::sync::mpsc::sync_channel(n);
            (Box::new(move |m| tx.send(m).is_ok()), rx)
        }
        None => {
            let (tx, rx) = std::sync::mpsc::channel();
            (Box::new(move |m| tx.send(m).is_ok()), rx)
        }
    };
    let t = std::thread::spawn(move || {
        let r = run(&cancel, &mut |pkt| {
            if send(Ok(pkt)) {
                Ok(())
            } else {
                Err(EngineError::Cancelled)
            }
        });
        if let Err(e) = r {
            send(Err(e));
        }
    });
    (rx, t)
}

enum Polled {
    Packet(AudioPacket),
    Waiting,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeedPhase {
    Single,
    /// Piece A before the splice window: passed straight through.
    StreamA,
    /// Piece A inside the window: kept until A ends.
    CollectA,
    /// Piece B up to the end of the window: kept, then the splice is chosen.
    CollectB,
    /// Piece B after the splice: passed through.
    StreamB,
}

/// The encoded audio in output order, from one encoder or two spliced ones.
struct AudioFeed {
    /// The song's own packets, read in the muxing loop (then `a` is unused).
    copier: Option<SongCopier>,
    a: PacketRx,
    b: Option<PacketRx>,
    plan: Option<SplitPlan>,
    phase: FeedPhase,
    ready: std::collections::VecDeque<AudioPacket>,
    a_win: BTreeMap<i64, AudioPacket>,
    b_win: BTreeMap<i64, AudioPacket>,
}

impl AudioFeed {
    fn copied(c: SongCopier) -> Self {
        let (_, a) = std::sync::mpsc::channel();
        Self {
            copier: Some(c),
            ..Self::single(a)
        }
    }
    fn single(a: PacketRx) -> Self {
        Self {
            copier: None,
            a,
            b: None,
            plan: None,
            phase: FeedPhase::Single,
            ready: Default::default(),
            a_win: BTreeMap::new(),
            b_win: BTreeMap::new(),
        }
    }
    fn spliced(a: PacketRx, b: PacketRx, plan: SplitPlan) -> Self {
        Self {
            b: Some(b),
            plan: Some(plan),
            phase: FeedPhase::StreamA,
            ..Self::single(a)
        }
    }

    fn splice(&mut self) {
        let Some(plan) = self.plan else { return };
        let windows = |m: &BTreeMap<i64, AudioPacket>| -> BTreeMap<i64, Option<(u8, u8)>> {
            m.iter()
                .map(|(k, p)| (*k, p.data().and_then(aac_window)))
                .collect()
        };
        let s = choose_splice(&plan, &windows(&self.a_win), &windows(&self.b_win)) as i64;
        tracing::debug!("audio pieces spliced at sample {s}");
        let a_win = std::mem::take(&mut self.a_win);
        let b_win = std::mem::take(&mut self.b_win);
        let tail: Vec<AudioPacket> = self.ready.drain(..).collect();
        self.ready
            .extend(a_win.into_iter().filter(|(k, _)| *k < s).map(|(_, p)| p));
        self.ready
            .extend(b_win.into_iter().filter(|(k, _)| *k >= s).map(|(_, p)| p));
        self.ready.extend(tail);
        self.phase = FeedPhase::StreamB;
    }

    fn poll(&mut self, wait: Duration) -> Result<Polled> {
        use std::sync::mpsc::RecvTimeoutError;
        if let Some(c) = self.copier.as_mut() {
            return Ok(match c.next_packet()? {
                Some(p) => Polled::Packet(p),
                None => Polled::Done,
            });
        }
        loop {
            if let Some(p) = self.ready.pop_front() {
                return Ok(Polled::Packet(p));
            }
            let from_b = matches!(self.phase, FeedPhase::CollectB | FeedPhase::StreamB);
            let rx = if from_b {
                match &self.b {
                    Some(b) => b,
                    None => return Ok(Polled::Done),
                }
            } else {
                &self.a
            };
            let got = rx.recv_timeout(wait);
            let (lo, hi) = self
                .plan
                .map_or((0, 0), |p| (p.lo as i64 - AAC_FRAME as i64, p.hi as i64));
            match (self.phase, got) {
                (_, Ok(Err(e))) => return Err(e),
                (_, Err(RecvTimeoutError::Timeout)) => return Ok(Polled::Waiting),
                (FeedPhase::Single | FeedPhase::StreamB, Ok(Ok(p))) => {
                    return Ok(Polled::Packet(p))
                }
                (FeedPhase::Single | FeedPhase::StreamB, Err(RecvTimeoutError::Disconnected)) => {
                    return Ok(Polled::Done)
                }
                (FeedPhase::StreamA | FeedPhase::CollectA, Ok(Ok(p))) => {
                    let pts = p.pts().unwrap_or(0);
                    if pts < lo && self.phase == FeedPhase::StreamA {
                        return Ok(Polled::Packet(p));
                    }
                    self.phase = FeedPhase::CollectA;
                    if pts <= hi {
                        self.a_win.insert(pts, p);
                    }
                    // Let the caller report progress and check for cancellation.
                    return Ok(Polled::Waiting);
                }
                (FeedPhase::StreamA | FeedPhase::CollectA, Err(RecvTimeoutError::Disconnected)) => {
                    self.phase = FeedPhase::CollectB;
                }
                (FeedPhase::CollectB, Ok(Ok(p))) => {
                    let pts = p.pts().unwrap_or(0);
                    if pts < lo {
                        return Ok(Polled::Waiting);
                    }
                    if pts <= hi {
                        self.b_win.insert(pts, p);
                        return Ok(Polled::Waiting);
                    } else {
                        self.ready.push_back(p);
                        self.splice();
                    }
                }
                (FeedPhase::CollectB, Err(RecvTimeoutError::Disconnected)) => self.splice(),
            }
        }
    }
}

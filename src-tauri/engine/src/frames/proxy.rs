//! The proxy: every frame of the recording, small, on disk, as editors keep
//! one. A low-priority thread decodes the video once from its start (exactly:
//! deblocking on), scales and encodes each frame as the frame server does a
//! still frame of the same width, and appends the JPEG to one data file,
//! noting its presentation interval and place in an index kept in memory. A
//! seek or a step whose frame the proxy already holds is then a read of a
//! few kB instead of a keyframe and up to a GOP of 1080p frames decoded
//! (259-306 ms of CPU on the perf case). Frames not covered yet are served
//! the usual way.
//!
//! Exact: the frames are decoded in order from the first, so each is the
//! frame a full decode gives; scaled and encoded by the same
//! [`PictureMaker`] path as a still frame, its JPEG is byte for byte the one
//! the server would make (engine test).
//!
//! Memory stays flat: each JPEG goes to the disk as it is made (the index
//! holds 32 bytes a frame). Disk: about 15-50 kB a frame at 640 px; the
//! proxy stops at [`MAX_PROXY_BYTES`] (the rest is served the usual way).
//!
//! Cached on disk by the video's fingerprint and the width, under a folder
//! the caller chooses: `<cache>/<fingerprint>-proxy-w<W>/` holding
//! [`DATA`] and [`INDEX`], built under a temporary name and renamed when
//! complete (a cancelled or crashed build leaves nothing under the final
//! name). A file changed since has another fingerprint, so another folder.
//! The caller passes a path it resolved; nothing here takes one from the page.

use super::cache::CachedFrame;
use super::filmstrip::{out_dir_error, write_error, Partial};
use super::picture::{PictureMaker, ScaleQuality};
use super::source::VideoSource;
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::media::fingerprint::fingerprint;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const DATA: &str = "frames.jpegs";
const INDEX: &str = "index.json";
const INDEX_VERSION: u32 = 1;
/// Disk a proxy may take: about 60-90 min of 640-px frames of phone video.
const MAX_PROXY_BYTES: u64 = 2 << 30;
/// Disk all proxies together may take: the least recently used are removed
/// beyond it when a new one starts (about four 3-min class videos' worth at
/// 1080p, or one long take).
const PROXIES_BUDGET_BYTES: u64 = 4 << 30;
/// Decoder threads of the proxy's decoder (frame threads, at low priority).
const PROXY_DECODE_THREADS: usize = 2;

/// One frame in the data file; times in stream ticks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Entry {
    start: i64,
    end: i64,
    offset: u64,
    len: u32,
}

#[derive(Serialize, Deserialize)]
struct Index {
    version: u32,
    width: u32,
    height: u32,
    /// Whether the proxy stopped at its disk budget before the end.
    truncated: bool,
    entries: Vec<Entry>,
}

/// Where a proxy stands (for the caller's log and the benchmarks).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProxyStatus {
    pub width: u32,
    /// Frames held, and the end of the last one, recording time (s).
    pub frames: usize,
    pub covered_until_s: Option<f64>,
    pub bytes: u64,
    /// Built to the end (or to its disk budget) and in place.
    pub ready: bool,
    /// Read from the disk cache, not built this time.
    pub reused: bool,
    /// Seconds from the start of the build to ready.
    pub ready_after_s: Option<f64>,
    /// Why the build stopped, when it failed.
    pub error: Option<String>,
}

struct Inner {
    entries: Vec<Entry>,
    height: u32,
    /// The data file, open for reading (None while it is being renamed).
    reader: Option<File>,
    bytes: u64,
    ready: bool,
    reused: bool,
    ready_after_s: Option<f64>,
    error: Option<String>,
}

struct State {
    width: u32,
    stop: CancelToken,
    /// Frames the picture view waits for on the decode path: the build
    /// pauses while there are any.
    waiting: AtomicUsize,
    inner: Mutex<Inner>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A proxy being built or built, and its building thread (stopped and
/// joined on drop).
pub(crate) struct Proxy {
    state: Arc<State>,
    builder: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts building (or reading from `cache_dir`) the proxy of `video` at
    /// `width` px on a low-priority thread named `thread_name`.
    pub fn start(video: &Path, cache_dir: &Path, width: u32, thread_name: String) -> Result<Self> {
        let state = Arc::new(State {
            width,
            stop: CancelToken::new(),
            waiting: AtomicUsize::new(0),
            inner: Mutex::new(Inner {
                entries: Vec::new(),
                height: 0,
                reader: None,
                bytes: 0,
                ready: false,
                reused: false,
                ready_after_s: None,
                error: None,
            }),
        });
        let (video_buf, cache_buf, state2) =
            (video.to_path_buf(), cache_dir.to_path_buf(), state.clone());
        let builder = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let t0 = Instant::now();
                let built = build(&video_buf, &cache_buf, &state2);
                let mut inner = state2.lock();
                match built {
                    Ok(()) => {
                        inner.ready_after_s = Some(t0.elapsed().as_secs_f64());
                        tracing::info!(
                            target: "beatsync::frames",
                            frames = inner.entries.len(),
                            bytes = inner.bytes,
                            reused = inner.reused,
                            seconds = t0.elapsed().as_secs_f64(),
                            "proxy of {} ready", video_buf.display()
                        );
                    }
                    Err(EngineError::Cancelled) => {}
                    Err(e) => {
                        tracing::warn!(target: "beatsync::frames", "proxy of {}: {e}", video_buf.display());
                        inner.error = Some(e.to_string());
                    }
                }
            })
            .map_err(|e| EngineError::media(video, format!("cannot start a thread: {e}")))?;
        Ok(Self {
            state,
            builder: Some(builder),
        })
    }

    pub fn width(&self) -> u32 {
        self.state.width
    }

    /// Pauses the build (after the frame it is on) until the returned guard
    /// is dropped: a frame the view waits for is decoded with both cores.
    /// (On 2 cores the build, even at the lowest priority, shares the
    /// processor's caches and, on one hyper-threaded core, its units.)
    pub fn hold(&self) -> Hold {
        self.state.waiting.fetch_add(1, Ordering::SeqCst);
        Hold {
            state: Arc::clone(&self.state),
        }
    }

    /// The frame whose interval `[start, end)` holds `ts` (stream ticks), if
    /// the proxy holds it and it reads back.
    pub fn frame(&self, ts: i64) -> Option<CachedFrame> {
        let mut inner = self.state.lock();
        let i = inner.entries.partition_point(|e| e.start <= ts);
        let e = *inner.entries.get(i.checked_sub(1)?)?;
        if ts >= e.end {
            return None;
        }
        let height = inner.height;
        let reader = inner.reader.as_mut()?;
        let mut jpeg = vec![0u8; e.len as usize];
        reader.seek(SeekFrom::Start(e.offset)).ok()?;
        reader.read_exact(&mut jpeg).ok()?;
        Some(CachedFrame {
            jpeg: jpeg.into(),
            width: self.state.width,
            height,
            start: e.start,
            end: e.end,
            exact: true,
        })
    }

    /// Where it stands; `seconds` turns stream ticks into recording time.
    pub fn status(&self, seconds: impl Fn(i64) -> f64) -> ProxyStatus {
        let inner = self.state.lock();
        ProxyStatus {
            width: self.state.width,
            frames: inner.entries.len(),
            covered_until_s: inner.entries.last().map(|e| seconds(e.end)),
            bytes: inner.bytes,
            ready: inner.ready,
            reused: inner.reused,
            ready_after_s: inner.ready_after_s,
            error: inner.error.clone(),
        }
    }
}

/// The build paused while it lives ([`Proxy::hold`]).
pub(crate) struct Hold {
    state: Arc<State>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.state.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How often a paused build looks whether it may go on.
const PAUSE_POLL: Duration = Duration::from_millis(2);

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.cancel();
        if let Some(b) = self.builder.take() {
            let _ = b.join();
        }
    }
}

/// Decodes `video` into a proxy under `cache_dir`, or reads the one made before.
fn build(video: &Path, cache_dir: &Path, state: &State) -> Result<()> {
    let fp = fingerprint(video)?;
    let key = format!(
        "{}-{}-{}-proxy-w{}",
        fp.head_tail_xxh3, fp.size, fp.mtime_ns, state.width
    );
    let dir = cache_dir.join(&key);
    if let Some(index) = read_index(&dir, state.width) {
        super::disk_budget::mark_used(&dir.join(INDEX));
        let reader = File::open(dir.join(DATA)).map_err(|e| write_error(&dir, e))?;
        let mut inner = state.lock();
        inner.bytes = index
            .entries
            .last()
            .map_or(0, |e| e.offset + u64::from(e.len));
        inner.entries = index.entries;
        inner.height = index.height;
        inner.reader = Some(reader);
        inner.ready = true;
        inner.reused = true;
        return Ok(());
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| out_dir_error(cache_dir, &e))?;
    remove_abandoned(cache_dir, &key);
    // Room for this one (up to MAX_PROXY_BYTES) within the budget.
    super::disk_budget::trim(
        cache_dir,
        INDEX,
        &key,
        PROXIES_BUDGET_BYTES.saturating_sub(MAX_PROXY_BYTES),
    );
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial =
        Partial::create(cache_dir.join(format!("{key}.partial-{}-{run}", std::process::id())))?;
    let data = partial.0.join(DATA);
    // Reading a proxy made before is prompt; decoding one yields to everything else.
    lower_priority();
    let mut writer = File::create(&data).map_err(|e| write_error(&data, e))?;
    state.lock().reader = Some(File::open(&data).map_err(|e| write_error(&data, e))?);
    let truncated = decode_all(video, &data, &mut writer, state)?;
    drop(writer);
    let index = {
        let inner = state.lock();
        Index {
            version: INDEX_VERSION,
            width: state.width,
            height: inner.height,
            truncated,
            entries: inner.entries.clone(),
        }
    };
    let json = serde_json::to_vec(&index).map_err(|e| EngineError::OutputWrite {
        path: partial.0.clone(),
        reason: e.to_string(),
    })?;
    std::fs::write(partial.0.join(INDEX), json).map_err(|e| write_error(&partial.0, e))?;
    // The data file is closed while its folder is renamed (Windows refuses
    // to rename a folder with a file open in it), then opened in place.
    let mut inner = state.lock();
    inner.reader = None;
    let renamed = std::fs::rename(&partial.0, &dir).is_ok();
    // Made meanwhile by another run: use that one (same frames).
    if !renamed && read_index(&dir, state.width).is_none() {
        return Err(out_dir_error(
            &dir,
            &std::io::Error::other("cannot put the proxy in place"),
        ));
    }
    inner.reader = Some(File::open(dir.join(DATA)).map_err(|e| write_error(&dir, e))?);
    inner.ready = true;
    Ok(())
}

/// Decodes every frame of `video` into `writer` (the file `data`), noting
/// each in the index as soon as it is written. Whether it stopped at the
/// disk budget before the end.
fn decode_all(video: &Path, data: &Path, writer: &mut File, state: &State) -> Result<bool> {
    let mut src = VideoSource::open(video, PROXY_DECODE_THREADS)?;
    let mut maker = PictureMaker::new();
    let mut offset = 0u64;
    loop {
        while state.waiting.load(Ordering::SeqCst) > 0 && !state.stop.is_cancelled() {
            std::thread::sleep(PAUSE_POLL);
        }
        let Some(f) = src.next()? else {
            break;
        };
        if state.stop.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let jpeg = maker.jpeg(
            video,
            &f.picture,
            state.width,
            src.sar,
            src.rotation,
            ScaleQuality::Still,
        )?;
        writer
            .write_all(&jpeg.bytes)
            .map_err(|e| write_error(data, e))?;
        let len = jpeg.bytes.len() as u32;
        let mut inner = state.lock();
        inner.height = jpeg.height;
        inner.entries.push(Entry {
            start: f.start,
            end: f.end,
            offset,
            len,
        });
        offset += u64::from(len);
        inner.bytes = offset;
        if offset > MAX_PROXY_BYTES {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes the half-made proxies of `key` left by processes that ended
/// before finishing them (a crash, a kill, the app closed mid-build): up to
/// a proxy's size each, and nothing else would ever remove them.
fn remove_abandoned(cache_dir: &Path, key: &str) {
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    let prefix = format!("{key}.partial-");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether process `pid` runs (where that cannot be told: assumed so, and
/// its folder kept).
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// The index of a complete proxy in `dir`, if it is one for `width` whose
/// data file holds every frame it lists.
fn read_index(dir: &Path, width: u32) -> Option<Index> {
    let index: Index = serde_json::from_slice(&std::fs::read(dir.join(INDEX)).ok()?).ok()?;
    let data_len = std::fs::metadata(dir.join(DATA)).ok()?.len();
    let end = index
        .entries
        .last()
        .map_or(0, |e| e.offset + u64::from(e.len));
    (index.version == INDEX_VERSION && index.width == width && end <= data_len).then_some(index)
}

/// This thread (and the decoder threads it starts, which inherit it) at the
/// lowest scheduling priority: the proxy uses the time nothing else wants.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions; setpriority on this thread's id
    // changes only this thread's nice value (Linux).
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

#[cfg(test)]
mod tests {
    use super::Proxy;
    use std::time::{Duration, Instant};

    /// A build held pauses (after the frame it is on) and goes on to the end
    /// once the hold is dropped.
    #[test]
    fn a_held_build_pauses_and_goes_on_when_let_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let video = dir.path().join("v.mp4");
        let made = std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=s=320x240:r=30:d=20",
            ])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "30"])
            .arg(&video)
            .status()
            .expect("run the ffmpeg CLI (test fixtures)");
        assert!(made.success(), "ffmpeg made the fixture");
        let proxy = Proxy::start(&video, &dir.path().join("proxies"), 64, "test-proxy".into())
            .expect("start");
        let hold = proxy.hold();
        let frames = || proxy.status(|t| t as f64).frames;
        std::thread::sleep(Duration::from_millis(300));
        let settled = frames();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(frames(), settled, "no frame made while held");
        assert!(settled < 600, "held before the end: {settled} frames");
        drop(hold);
        let t0 = Instant::now();
        while !proxy.status(|t| t as f64).ready {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "not ready after 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(frames(), 600, "every frame once let go");
    }
}

//! The frame server: one opened video, one decoding thread, a byte-bounded
//! cache of encoded frames and read-ahead while playing.
//!
//! Threads: callers (any number, any thread) look in the cache first and
//! only wait for the worker on a miss. The worker owns the demuxer, decoder,
//! scalers and encoder. A request it cannot answer from where the decoder
//! stands (the target more than [`FORWARD_REACH_S`] ahead, or behind) seeks
//! to the previous keyframe and decodes forward; frames before the target are
//! decoded but neither scaled nor encoded. The newest request wins: older
//! ones still waiting (or being decoded for) are answered `cancelled`, as a
//! picture view only ever shows the latest.
//!
//! Read-ahead: while requests say [`FrameUse::Playing`], the worker decodes
//! on from the last served frame (fast: without deblocking, see
//! [`VideoSource::set_fast`]; a still frame is always decoded exactly, from
//! the previous keyframe if needed), scaling and encoding every frame up to
//! `read_ahead_s` past the playhead, so that playback is served from the
//! cache without seeking. When decoding cannot keep up (a slow or busy
//! machine), a playing request that misses is answered at once with the
//! latest frame prepared before it (at most [`STALE_MAX_S`] old: the frame
//! says its interval, so the caller sees it is late) rather than waiting for
//! a decode that would put playback further behind; the read-ahead seeks to
//! [`CATCH_UP_LEAD_S`] past the playhead when it has fallen more than
//! [`FORWARD_REACH_S`] behind (frames it passes are decoded, not encoded). A
//! [`FrameUse::Still`] request (a seek, a step) ends the read-ahead and
//! always gets the exact frame. Dropping the server stops the worker and
//! joins it.

use super::cache::{CachedFrame, FrameCache};
use super::picture::{output_size, PictureMaker, ScaleQuality, MAX_WIDTH, MIN_WIDTH};
use super::proxy::{Proxy, ProxyStatus};
use super::source::{DecodedFrame, PictureInfo, VideoSource};
use super::timeline::{FrameSpan, Timeline};
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

mod worker;
use worker::Worker;

/// Decoding forward beats seeking up to about one phone GOP.
const FORWARD_REACH_S: f64 = 1.0;
/// How old a frame a playing request may get when the exact one is not ready
/// (about what a catch-up seek costs on a busy 2-core machine).
const STALE_MAX_S: f64 = 2.0;
/// Where a read-ahead that fell behind resumes, past the playhead: far enough
/// to be ahead of it again once the keyframe's GOP is decoded.
const CATCH_UP_LEAD_S: f64 = 0.5;
/// How often the worker looks at the playhead when read-ahead is ahead enough.
const PLAYHEAD_POLL: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct FrameServerOptions {
    /// Cache budget for encoded frames, bytes.
    pub cache_bytes: usize,
    /// How far past the playhead frames are prepared while playing, seconds.
    pub read_ahead_s: f64,
    /// Decoder threads (0: FFmpeg's choice).
    pub decode_threads: usize,
}

impl Default for FrameServerOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 64 << 20,
            read_ahead_s: 1.0,
            decode_threads: 2,
        }
    }
}

/// What a request is for: a picture held still, or one of a playing sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameUse {
    Still,
    Playing,
}

/// An encoded frame as served.
#[derive(Debug, Clone)]
pub struct Frame {
    pub jpeg: Arc<[u8]>,
    pub width: u32,
    pub height: u32,
    /// The frame's presentation interval in recording time (s).
    pub start_s: f64,
    pub end_s: f64,
}

/// Where the worker's time went, summed since the server opened (profiling:
/// `preview-bench` and the debug log split a seek into these parts).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ServerStats {
    /// Requests the worker decoded for (cache misses), still and playing.
    pub requests_decoded: u64,
    /// Of those, how many sought to a keyframe (the rest decoded on).
    pub seeks: u64,
    /// Frames decoded for requests (read-ahead not counted).
    pub frames_decoded: u64,
    /// Seconds seeking and decoding to the asked frame.
    pub decode_s: f64,
    /// Seconds scaling and encoding the asked frame.
    pub encode_s: f64,
    /// Requests answered from the proxy (see [`FrameServer::start_proxy`]).
    pub proxy_hits: u64,
}

struct Request {
    ts: i64,
    width: u32,
    use_: FrameUse,
    reply: SyncSender<Result<CachedFrame>>,
}

enum Msg {
    Frame(Request),
    /// The worker may have read-ahead to do (the playhead moved on cache hits).
    Wake,
}

struct Shared {
    cache: Mutex<FrameCache>,
    /// Width frames are read ahead at; 0 when not playing.
    ahead_width: AtomicU32,
    /// Playhead (stream ticks) the read-ahead runs ahead of.
    playhead: AtomicI64,
    /// The worker is blocked waiting for a message.
    idle: AtomicBool,
    stop: CancelToken,
    stats: Mutex<ServerStats>,
    /// Every frame's start, once scanned (a thread starts the scan when the
    /// server opens; steps wait for it, seeks use it when it is there).
    timeline: Mutex<Option<Arc<Timeline>>>,
}

pub struct FrameServer {
    info: PictureInfo,
    tb: f64,
    shared: Arc<Shared>,
    tx: Option<Sender<Msg>>,
    worker: Option<JoinHandle<()>>,
    worker_name: String,
    /// Where the timeline scan reads from.
    stream_index: usize,
    frame_ticks: i64,
    /// The thread scanning the timeline when the server opened.
    scanner: Option<JoinHandle<()>>,
    proxy: std::sync::OnceLock<Proxy>,
    /// Width of the last frame asked (0 before any).
    last_width: AtomicU32,
}

/// Facts the worker reports once the video is open.
struct Opened {
    info: PictureInfo,
    tb: f64,
    stream_index: usize,
    frame_ticks: i64,
}

impl FrameServer {
    /// Opens `path` (a path the caller resolved; never one from the page)
    /// and decodes its first frame, so that a bad file fails here.
    pub fn open(path: &Path, opts: &FrameServerOptions) -> Result<Self> {
        crate::init();
        let origin_s = recording_origin(path)?;
        let shared = Arc::new(Shared {
            cache: Mutex::new(FrameCache::new(opts.cache_bytes.max(1 << 20))),
            ahead_width: AtomicU32::new(0),
            playhead: AtomicI64::new(0),
            idle: AtomicBool::new(false),
            stop: CancelToken::new(),
            stats: Mutex::new(ServerStats::default()),
            timeline: Mutex::new(None),
        });
        static SERVERS: AtomicU64 = AtomicU64::new(0);
        let worker_name = format!("frames-{}", SERVERS.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel();
        let (opened_tx, opened_rx) = mpsc::sync_channel(1);
        let (path_buf, opts2, shared2) = (path.to_path_buf(), opts.clone(), shared.clone());
        let worker = std::thread::Builder::new()
            .name(worker_name.clone())
            .spawn(move || {
                // FFmpeg's contexts are made, used and freed on this thread.
                match Worker::open(&path_buf, origin_s, &opts2, shared2, rx) {
                    Ok((worker, opened)) => {
                        let _ = opened_tx.send(Ok(opened));
                        worker.run();
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| EngineError::media(path, format!("cannot start a thread: {e}")))?;
        let opened = opened_rx
            .recv()
            .unwrap_or_else(|_| Err(EngineError::media(path, "the frame reader stopped")));
        let opened = match opened {
            Ok(o) => o,
            Err(e) => {
                let _ = worker.join();
                return Err(e);
            }
        };
        let scanner = start_scan(
            shared.clone(),
            &opened.info,
            opened.stream_index,
            opened.frame_ticks,
            &worker_name,
        );
        Ok(Self {
            info: opened.info,
            tb: opened.tb,
            shared,
            tx: Some(tx),
            worker: Some(worker),
            worker_name,
            stream_index: opened.stream_index,
            frame_ticks: opened.frame_ticks,
            scanner,
            proxy: std::sync::OnceLock::new(),
            last_width: AtomicU32::new(0),
        })
    }

    pub fn info(&self) -> &PictureInfo {
        &self.info
    }

    /// Name of the decoding thread (diagnostics; tests check it ends).
    pub fn worker_name(&self) -> &str {
        &self.worker_name
    }

    /// The frame shown at recording time `at_s` (the one whose presentation
    /// interval `[start, end)` holds it; the first frame before the picture
    /// starts, the last after it ends), `width` px wide (even, 16..=3840),
    /// upright, as a JPEG.
    pub fn frame(&self, at_s: f64, width: u32, use_: FrameUse) -> Result<Frame> {
        if !at_s.is_finite() {
            return Err(EngineError::InvalidRequest(format!(
                "frame time {at_s} is not a number"
            )));
        }
        if !(MIN_WIDTH..=MAX_WIDTH).contains(&width) {
            return Err(EngineError::InvalidRequest(format!(
                "frame width {width} px is outside {MIN_WIDTH}..={MAX_WIDTH}"
            )));
        }
        let width = output_size(width, 16, 9).0;
        self.last_width.store(width, Ordering::Relaxed);
        let ts = ((at_s + self.info.origin_s) / self.tb).round() as i64;
        if let Some(f) = self.proxy_frame(width, ts) {
            // Nothing to read ahead while the proxy holds the frames.
            self.shared.ahead_width.store(0, Ordering::SeqCst);
            self.shared
                .stats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .proxy_hits += 1;
            return Ok(self.to_frame(f));
        }
        match use_ {
            FrameUse::Playing => {
                self.shared.playhead.store(ts, Ordering::SeqCst);
                self.shared.ahead_width.store(width, Ordering::SeqCst);
            }
            FrameUse::Still => self.shared.ahead_width.store(0, Ordering::SeqCst),
        }
        let hit = self.cache().get(width, ts, use_ == FrameUse::Still);
        let tx = self.tx.as_ref().ok_or(EngineError::Cancelled)?;
        let hit = match (hit, use_) {
            (None, FrameUse::Playing) => {
                let max_age = (STALE_MAX_S / self.tb) as i64;
                self.cache().get_recent(width, ts, max_age)
            }
            (hit, _) => hit,
        };
        if let Some(f) = hit {
            if use_ == FrameUse::Playing && self.shared.idle.swap(false, Ordering::SeqCst) {
                let _ = tx.send(Msg::Wake);
            }
            return Ok(self.to_frame(f));
        }
        // the proxy's build waits while a frame is decoded for the view
        let _hold = self.proxy.get().map(Proxy::hold);
        let (reply, answer) = mpsc::sync_channel(1);
        tx.send(Msg::Frame(Request {
            ts,
            width,
            use_,
            reply,
        }))
        .map_err(|_| EngineError::Cancelled)?;
        let f = answer.recv().map_err(|_| EngineError::Cancelled)??;
        Ok(self.to_frame(f))
    }

    /// Starts the proxy at `width` px (see `proxy`): a low-priority thread
    /// decodes the whole video once and keeps every frame as a JPEG under
    /// `cache_dir` (or reads the proxy made before for the same file and
    /// width); from then on, a frame of that width it holds (still or
    /// playing) is read from the disk instead of decoded. Frames it does not
    /// hold yet are served as before. Once per server: a later call, for any
    /// width, does nothing. Stopped and joined when the server is dropped.
    pub fn start_proxy(&self, cache_dir: &Path, width: u32) -> Result<()> {
        if !(MIN_WIDTH..=MAX_WIDTH).contains(&width) {
            return Err(EngineError::InvalidRequest(format!(
                "proxy width {width} px is outside {MIN_WIDTH}..={MAX_WIDTH}"
            )));
        }
        if self.proxy.get().is_some() {
            return Ok(());
        }
        let width = output_size(width, 16, 9).0;
        let proxy = Proxy::start(
            &self.info.path,
            cache_dir,
            width,
            format!("{}-proxy", self.worker_name),
        )?;
        // Lost a race with another call: that one's proxy stays, this one stops.
        let _ = self.proxy.set(proxy);
        Ok(())
    }

    /// Width of the last frame asked, if any (the width a proxy is worth
    /// making at: the picture view's).
    pub fn last_width(&self) -> Option<u32> {
        Some(self.last_width.load(Ordering::Relaxed)).filter(|&w| w != 0)
    }

    /// Where the proxy stands, if one was started.
    pub fn proxy_status(&self) -> Option<ProxyStatus> {
        let (tb, origin) = (self.tb, self.info.origin_s);
        Some(self.proxy.get()?.status(|ts| ts as f64 * tb - origin))
    }

    fn proxy_frame(&self, width: u32, ts: i64) -> Option<CachedFrame> {
        let proxy = self.proxy.get()?;
        (proxy.width() == width).then(|| proxy.frame(ts)).flatten()
    }

    /// Every frame's time (reads the file's video packets once, then kept).
    pub fn timeline(&self) -> Result<Arc<Timeline>> {
        scan_into(
            &self.shared,
            &self.info,
            self.stream_index,
            self.frame_ticks,
        )
    }

    /// The frame `frames` away (negative: back) from the one shown at `at_s`.
    pub fn step(&self, at_s: f64, frames: i64) -> Result<FrameSpan> {
        if !at_s.is_finite() {
            return Err(EngineError::InvalidRequest(format!(
                "frame time {at_s} is not a number"
            )));
        }
        Ok(self.timeline()?.step(at_s, frames))
    }

    /// Where the worker's time went so far.
    pub fn stats(&self) -> ServerStats {
        *self.shared.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes of encoded frames held.
    pub fn cached_bytes(&self) -> usize {
        self.cache().bytes()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, FrameCache> {
        self.shared.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn to_frame(&self, f: CachedFrame) -> Frame {
        let s = |ts: i64| ts as f64 * self.tb - self.info.origin_s;
        Frame {
            start_s: s(f.start),
            end_s: s(f.end),
            jpeg: f.jpeg,
            width: f.width,
            height: f.height,
        }
    }
}

impl Drop for FrameServer {
    fn drop(&mut self) {
        self.shared.stop.cancel();
        if let Some(s) = self.scanner.take() {
            let _ = s.join();
        }
        // Stops and joins the proxy's builder.
        self.proxy.take();
        // Closing the channel wakes a worker waiting for a message.
        self.tx.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The timeline of `info`'s video, scanned into `shared` unless it is there.
fn scan_into(
    shared: &Shared,
    info: &PictureInfo,
    stream_index: usize,
    frame_ticks: i64,
) -> Result<Arc<Timeline>> {
    let mut slot = shared.timeline.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = slot.as_ref() {
        return Ok(t.clone());
    }
    let t = Arc::new(Timeline::scan(
        &info.path,
        stream_index,
        info.origin_s,
        frame_ticks,
        &shared.stop,
    )?);
    *slot = Some(t.clone());
    Ok(t)
}

/// Scans the timeline on a thread of its own, so that the first seeks can
/// use it (a failed scan is tried again, and reported, by the first step).
fn start_scan(
    shared: Arc<Shared>,
    info: &PictureInfo,
    stream_index: usize,
    frame_ticks: i64,
    worker_name: &str,
) -> Option<JoinHandle<()>> {
    let info = info.clone();
    std::thread::Builder::new()
        .name(format!("{worker_name}-timeline"))
        .spawn(move || {
            let _ = scan_into(&shared, &info, stream_index, frame_ticks);
        })
        .ok()
}

/// Container time of recording time 0: the first decoded audio sample, as
/// the waveform and the export count it (0 without sound).
pub(crate) fn recording_origin(path: &Path) -> Result<f64> {
    let mut recording = crate::export::source::Recording::open(path)?;
    Ok(recording.read_start()?.audio_origin_s)
}

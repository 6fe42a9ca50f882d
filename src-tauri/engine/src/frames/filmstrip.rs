//! Filmstrip: small pictures along the recording (one every few seconds), for
//! placing the trim handles by picture. Each thumbnail is the last keyframe
//! at or before its time, decoded alone without deblocking (decoding
//! keyframes alone is what makes three minutes take seconds, not a full
//! decode; on phone video a keyframe comes every 1-2 s, so a thumbnail is at
//! most that early). Thumbnails sharing a keyframe share the file. Two
//! threads share the work.
//!
//! Cached on disk by the video's fingerprint (size, modification time, hash
//! of its ends: [`crate::media::fingerprint`]) and the strip's parameters,
//! under a folder the caller chooses: `<cache>/<fingerprint>-w<W>-e<ms>/`
//! holding `NNNN.jpg` and `filmstrip.json`. The folder is built under a
//! temporary name and renamed when complete, so a cancelled or crashed run
//! leaves no half strip under the final name.
//!
//! Coarse first, then fine: a caller may ask a sparse strip (a thumbnail
//! every 8 s covers a whole recording's view in a quarter of the work) and
//! then the dense one; thumbnails of another cached strip of the same file
//! and width standing for the same time are copied, not decoded again.

use super::picture::{PictureMaker, ScaleQuality, MAX_WIDTH, MIN_WIDTH};
use super::source::{Keyframe, VideoSource};
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::media::fingerprint::fingerprint;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const MANIFEST: &str = "filmstrip.json";
/// Disk all cached filmstrips together may take (a 3-min video's 2-s strip
/// of 160-px thumbnails is about 0.5 MB): the least recently used are removed
/// beyond it when a new one is made.
const FILMSTRIPS_BUDGET_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct FilmstripOptions {
    /// Seconds between thumbnails (0.1..=600).
    pub every_s: f64,
    /// Thumbnail width in px (16..=3840; even).
    pub width: u32,
}

impl Default for FilmstripOptions {
    fn default() -> Self {
        Self {
            every_s: 2.0,
            width: 160,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thumbnail {
    pub index: usize,
    /// The time this thumbnail stands for, recording time (s).
    pub at_s: f64,
    /// The time of the keyframe shown (at or before `at_s`), recording time (s).
    pub frame_s: f64,
    /// File name inside [`Filmstrip::dir`].
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filmstrip {
    pub dir: PathBuf,
    pub every_s: f64,
    pub width: u32,
    pub height: u32,
    pub thumbnails: Vec<Thumbnail>,
    /// Whether this came from the disk cache (nothing decoded).
    #[serde(skip)]
    pub from_cache: bool,
}

impl Filmstrip {
    pub fn path_of(&self, t: &Thumbnail) -> PathBuf {
        self.dir.join(&t.file)
    }
}

/// The filmstrip of `video`, from `cache_dir` when made before, else made
/// there. `progress` gets the fraction done and each new thumbnail.
pub fn filmstrip(
    video: &Path,
    cache_dir: &Path,
    opts: &FilmstripOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64, &Thumbnail),
) -> Result<Filmstrip> {
    if !(opts.every_s.is_finite() && (0.1..=600.0).contains(&opts.every_s)) {
        return Err(EngineError::InvalidRequest(format!(
            "thumbnail spacing {} s is outside 0.1..=600 s",
            opts.every_s
        )));
    }
    if !(MIN_WIDTH..=MAX_WIDTH).contains(&opts.width) {
        return Err(EngineError::InvalidRequest(format!(
            "thumbnail width {} px is outside {MIN_WIDTH}..={MAX_WIDTH}",
            opts.width
        )));
    }
    crate::init();
    let fp = fingerprint(video)?;
    let prefix = format!(
        "{}-{}-{}-w{}-e",
        fp.head_tail_xxh3, fp.size, fp.mtime_ns, opts.width
    );
    let key = format!("{prefix}{}", (opts.every_s * 1000.0).round() as u64);
    let dir = cache_dir.join(&key);
    if let Some(cached) = read_manifest(&dir) {
        super::disk_budget::mark_used(&dir.join(MANIFEST));
        return Ok(cached);
    }
    let made_before = made_before(cache_dir, &prefix);
    std::fs::create_dir_all(cache_dir).map_err(|e| out_dir_error(cache_dir, &e))?;
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial =
        Partial::create(cache_dir.join(format!("{key}.partial-{}-{run}", std::process::id())))?;
    let mut strip = make(video, &partial.0, opts, &made_before, cancel, progress)?;
    let manifest = serde_json::to_vec_pretty(&strip).map_err(|e| EngineError::OutputWrite {
        path: partial.0.clone(),
        reason: e.to_string(),
    })?;
    std::fs::write(partial.0.join(MANIFEST), manifest).map_err(|e| write_error(&partial.0, e))?;
    match std::fs::rename(&partial.0, &dir) {
        Ok(()) => {}
        // Made meanwhile by another run: use that one.
        Err(_) if read_manifest(&dir).is_some() => {}
        Err(e) => return Err(write_error(&dir, e)),
    }
    super::disk_budget::trim(cache_dir, MANIFEST, &key, FILMSTRIPS_BUDGET_BYTES);
    strip.dir = dir;
    Ok(strip)
}

/// Thumbnails are made by this many threads, each over a contiguous part of
/// the recording with its own demuxer and decoder (2 cores on the target).
const WORKERS: usize = 2;

/// Thumbnails of the file's other cached strips at the same width, by the
/// time they stand for (whole ms): the keyframe shown, its file and the
/// strip's height.
type MadeBefore = std::collections::HashMap<i64, (f64, PathBuf, u32)>;

fn ms_key(at_s: f64) -> i64 {
    (at_s * 1000.0).round() as i64
}

fn made_before(cache_dir: &Path, prefix: &str) -> MadeBefore {
    let mut made = MadeBefore::new();
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return made;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        // Complete strips only (not another run's `.partial-…` folder).
        if !rest.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Some(strip) = read_manifest(&entry.path()) {
            for t in &strip.thumbnails {
                made.insert(ms_key(t.at_s), (t.frame_s, strip.path_of(t), strip.height));
            }
        }
    }
    made
}

fn make(
    video: &Path,
    dir: &Path,
    opts: &FilmstripOptions,
    made_before: &MadeBefore,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64, &Thumbnail),
) -> Result<Filmstrip> {
    let origin_s = super::server::recording_origin(video)?;
    let (start_s, end_s) = {
        let mut src = VideoSource::open(video, 1)?;
        let first = src
            .next()?
            .ok_or_else(|| src.damaged("no picture could be decoded"))?;
        let start = src.seconds(first.start) - origin_s;
        (start, src.seconds(src.header_end(first.start)) - origin_s)
    };
    // (Less a hair, so that 4.0 s every 0.4 s is 10 thumbnails, not 11.)
    let count = (((end_s - start_s) / opts.every_s - 1e-6).ceil() as usize).max(1);
    let part = count.div_ceil(WORKERS);
    let stop = CancelToken::new();
    let (tx, rx) = std::sync::mpsc::channel::<Result<(Thumbnail, u32)>>();
    let mut slots: Vec<Option<Thumbnail>> = vec![None; count];
    let (mut height, mut done, mut failure) = (0, 0, None);
    std::thread::scope(|scope| {
        for first in (0..count).step_by(part) {
            let (tx, stop) = (tx.clone(), &stop);
            let job = Part {
                video,
                dir,
                opts,
                made_before,
                origin_s,
                start_s,
                indices: first..(first + part).min(count),
            };
            scope.spawn(move || {
                if let Err(e) = job.run(&tx, cancel, stop) {
                    let _ = tx.send(Err(e));
                }
            });
        }
        drop(tx);
        for msg in rx {
            match msg {
                Ok((thumb, h)) if failure.is_none() && !cancel.is_cancelled() => {
                    done += 1;
                    height = height.max(h);
                    progress(done as f64 / count as f64, &thumb);
                    let i = thumb.index;
                    slots[i] = Some(thumb);
                }
                Ok(_) => {}
                Err(e) => {
                    stop.cancel();
                    failure.get_or_insert(e);
                }
            }
        }
    });
    cancel.check()?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(Filmstrip {
        dir: dir.to_path_buf(),
        every_s: opts.every_s,
        width: opts.width & !1,
        height,
        thumbnails: slots.into_iter().flatten().collect(),
        from_cache: false,
    })
}

/// One thread's share of the thumbnails.
struct Part<'a> {
    video: &'a Path,
    dir: &'a Path,
    opts: &'a FilmstripOptions,
    made_before: &'a MadeBefore,
    origin_s: f64,
    start_s: f64,
    indices: std::ops::Range<usize>,
}

impl Part<'_> {
    fn run(
        &self,
        tx: &std::sync::mpsc::Sender<Result<(Thumbnail, u32)>>,
        cancel: &CancelToken,
        stop: &CancelToken,
    ) -> Result<()> {
        let mut src = VideoSource::open(self.video, 1)?;
        // Deblocking is invisible at thumbnail size; a keyframe refers to nothing.
        src.set_fast(true);
        let mut maker = PictureMaker::new();
        // The keyframe shown by the previous thumbnail: (pts, file).
        let mut previous: Option<(i64, String)> = None;
        let mut height = 0;
        for index in self.indices.clone() {
            cancel.check()?;
            stop.check()?;
            let at_s = self.start_s + index as f64 * self.opts.every_s;
            let file = format!("{index:04}.jpg");
            let copied = self.made_before.get(&ms_key(at_s)).filter(|(_, made, _)| {
                // (Gone meanwhile: decoded again below.)
                std::fs::copy(made, self.dir.join(&file)).is_ok()
            });
            if let Some((frame_s, _, h)) = copied {
                height = height.max(*h);
                let thumb = Thumbnail {
                    index,
                    at_s,
                    frame_s: *frame_s,
                    file,
                };
                if tx.send(Ok((thumb, height))).is_err() {
                    return Ok(());
                }
                continue;
            }
            let ts = src.ticks(at_s + self.origin_s);
            let (frame_ts, file) = match src.keyframe_at(ts, previous.as_ref().map(|p| p.0))? {
                Keyframe::Same | Keyframe::None => match &previous {
                    Some(p) => p.clone(),
                    None => return Err(src.damaged("no keyframe could be decoded")),
                },
                Keyframe::Picture(pts, picture) => {
                    let jpeg = maker.jpeg(
                        self.video,
                        &picture,
                        self.opts.width,
                        src.sar,
                        src.rotation,
                        ScaleQuality::Still,
                    )?;
                    height = jpeg.height;
                    std::fs::write(self.dir.join(&file), &jpeg.bytes)
                        .map_err(|e| write_error(self.dir, e))?;
                    (pts, file)
                }
            };
            previous = Some((frame_ts, file.clone()));
            let thumb = Thumbnail {
                index,
                at_s,
                frame_s: src.seconds(frame_ts) - self.origin_s,
                file,
            };
            if tx.send(Ok((thumb, height))).is_err() {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// A complete cached strip in `dir`, if there is one.
fn read_manifest(dir: &Path) -> Option<Filmstrip> {
    let bytes = std::fs::read(dir.join(MANIFEST)).ok()?;
    let mut strip: Filmstrip = serde_json::from_slice(&bytes).ok()?;
    strip.dir = dir.to_path_buf();
    strip.from_cache = true;
    strip
        .thumbnails
        .iter()
        .all(|t| strip.path_of(t).is_file())
        .then_some(strip)
}

/// A folder being filled; removed unless renamed into place.
pub(super) struct Partial(pub(super) PathBuf);

impl Partial {
    pub(super) fn create(path: PathBuf) -> Result<Self> {
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).map_err(|e| out_dir_error(&path, &e))?;
        Ok(Self(path))
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // Gone already when it was renamed into place.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn out_dir_error(path: &Path, e: &std::io::Error) -> EngineError {
    EngineError::OutputDir {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

pub(super) fn write_error(path: &Path, e: std::io::Error) -> EngineError {
    if crate::export::output::sink::is_disk_full(&e) {
        EngineError::DiskFull {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    } else {
        EngineError::OutputWrite {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}

//! The output file. It is written as `.beatsync-<pid>-<n>-<final name>.partial`
//! in the output folder, locked while being written, flushed and
//! fsynced, probed (streams, duration as planned), renamed to the final name
//! without ever replacing an existing file (` (2)`, ` (3)`… are added), and
//! the folder is fsynced. A killed export leaves only the `.partial` file,
//! whose lock died with the process; the next export into that folder
//! removes it. Every write failure is told apart here: a full disk (or
//! quota) from any other write error.
//!
//! On Linux three calls make this faster or safer: O_DIRECT writes
//! ([`direct`]), writeback started as the file grows (`sync_file_range`),
//! and a rename that cannot replace (`renameat2`). Every other OS takes the
//! plain paths (buffered writes, fsync at the end, rename by hard link);
//! `BEATSYNC_PLAIN_IO=1` makes Linux take them too (see `plain_io`).

#[cfg(target_os = "linux")]
pub(crate) mod direct;
pub(crate) mod sink;

use super::progress::{blocking_with_ticks, Progress};
use crate::error::{EngineError, Result};
use crate::media::probe::{probe_fast, MediaInfo};
use ffmpeg_next as ffmpeg;
pub use sink::WriteFault;
use sink::{is_disk_full, OutputSink, WriteErrorSlot};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Whether the Linux-only calls are turned off so that the plain paths
/// every other OS takes run here too: `BEATSYNC_PLAIN_IO` set to anything
/// but `0`, read once per process. The tests export both ways and compare
/// the files; it is also a way out should a file system mishandle them.
#[cfg(target_os = "linux")]
pub(crate) fn plain_io() -> bool {
    static PLAIN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PLAIN.get_or_init(|| {
        std::env::var_os("BEATSYNC_PLAIN_IO").is_some_and(|v| !v.is_empty() && v != "0")
    })
}

pub(crate) const PARTIAL_PREFIX: &str = ".beatsync-";
const PARTIAL_SUFFIX: &str = ".partial";

/// The longest file name, in bytes, that the common file systems take
/// (ext4, APFS, NTFS count at most 255 bytes or UTF-16 units; 255 UTF-8
/// bytes are never more than 255 UTF-16 units).
pub(crate) const MAX_NAME_BYTES: usize = 255;
/// Room kept in a final name for the ` (9999)` that [`numbered`] may add.
const NUMBER_ROOM: usize = " (9999)".len();
/// The longest final name: numbered, it still fits in [`MAX_NAME_BYTES`].
pub(crate) const MAX_FINAL_NAME_BYTES: usize = MAX_NAME_BYTES - NUMBER_ROOM;
/// The partial name's own bytes: prefix, two u32 numbers, two dashes, suffix.
const PARTIAL_OVERHEAD: usize = PARTIAL_PREFIX.len() + 2 * 10 + 2 + PARTIAL_SUFFIX.len();

/// `stem` + `tail` in at most `max_bytes`: the stem is cut at a character
/// boundary when needed, the tail (extension, suffix) always kept whole.
/// The same inputs always give the same name.
pub(crate) fn fit_name(stem: &str, tail: &str, max_bytes: usize) -> String {
    let room = max_bytes.saturating_sub(tail.len());
    let mut end = stem.len().min(room);
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{tail}", &stem[..end])
}

/// `name` in at most `max_bytes`, its extension kept (see [`fit_name`]).
fn fit_keeping_extension(name: &str, max_bytes: usize) -> String {
    match name.rfind('.') {
        Some(i) if i > 0 => fit_name(&name[..i], &name[i..], max_bytes),
        _ => fit_name(name, "", max_bytes),
    }
}

/// The file being written, under its partial name until [`OutputFile::commit`].
pub(crate) struct OutputFile {
    dir: PathBuf,
    final_name: String,
    partial: PartialFile,
    errors: WriteErrorSlot,
    fault: Option<WriteFault>,
}

/// The partial file; removed on drop unless committed.
struct PartialFile {
    path: PathBuf,
    /// Holds the lock that tells other runs this partial is alive.
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

impl OutputFile {
    /// Creates and locks the partial file in `dir`, after removing the
    /// partial files killed exports left there and checking that about
    /// `needed` bytes are free (when given).
    pub fn create(dir: &Path, final_name: &str, needed: Option<u64>) -> Result<Self> {
        let removed = remove_stale_partials(dir);
        if removed > 0 {
            tracing::info!(
                "removed {removed} stale partial export(s) in {}",
                dir.display()
            );
        }
        if let (Some(needed), Some(free)) = (needed, free_bytes(dir)) {
            if free < needed {
                return Err(EngineError::DiskFull {
                    path: dir.to_path_buf(),
                    reason: format!(
                        "the export needs about {:.1} MB and only {:.1} MB are free",
                        needed as f64 / 1e6,
                        free as f64 / 1e6
                    ),
                });
            }
        }
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let path = dir.join(format!(
            "{PARTIAL_PREFIX}{}-{}-{}{PARTIAL_SUFFIX}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            fit_keeping_extension(final_name, MAX_NAME_BYTES - PARTIAL_OVERHEAD)
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| dir_error(dir, &e))?;
        let partial = PartialFile {
            path,
            file,
            committed: false,
        };
        if !try_lock(&partial.file) {
            // Only another run's cleanup relies on it; the export goes on.
            tracing::warn!("cannot lock {}", partial.path.display());
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            final_name: final_name.to_string(),
            partial,
            errors: WriteErrorSlot::default(),
            fault: None,
        })
    }

    /// Makes the file's writes fail as `fault` says (tests only).
    pub fn inject(mut self, fault: Option<WriteFault>) -> Self {
        self.fault = fault;
        self
    }

    /// Where the file is being written (its partial name).
    pub fn partial_path(&self) -> &Path {
        &self.partial.path
    }

    /// An MP4 muxer writing into the partial file.
    pub fn muxer(&self) -> Result<ffmpeg::format::context::Output> {
        let file = self
            .partial
            .file
            .try_clone()
            .map_err(|e| dir_error(&self.dir, &e))?;
        let sink = OutputSink::new(file, self.errors.clone(), self.fault);
        let mut io =
            ffmpeg::format::context::StreamIo::from_write_seek_with_capacity(sink, 1 << 20)
                .map_err(|e| self.write_failed(e))?;
        // The muxer flushes its buffer after every packet anyway, and the
        // sink buffers for itself.
        crate::media::ffi::write_directly(&mut io);
        ffmpeg::format::output_to_stream(io, Some("output.mp4"), Some("mp4"))
            .map_err(|e| self.write_failed(e))
    }

    /// A failed muxer call: the write error behind it when the sink saw one
    /// (a full disk is told apart), else the muxer's own.
    pub fn write_failed(&self, e: ffmpeg::Error) -> EngineError {
        match self.errors.take() {
            Some(io) => self.io_failed(&io),
            None => EngineError::OutputWrite {
                path: self.partial.path.clone(),
                reason: e.to_string(),
            },
        }
    }

    /// A failed write or sync of the output file.
    fn io_failed(&self, e: &std::io::Error) -> EngineError {
        if let Err(gone) = check_out_dir(&self.dir) {
            return gone;
        }
        if is_disk_full(e) {
            EngineError::DiskFull {
                path: self.dir.clone(),
                reason: e.to_string(),
            }
        } else {
            EngineError::OutputWrite {
                path: self.partial.path.clone(),
                reason: e.to_string(),
            }
        }
    }

    /// Closes the muxer, which flushes its last bytes into the file, and
    /// fails if any write did.
    pub fn close(&self, octx: ffmpeg::format::context::Output) -> Result<()> {
        drop(octx);
        match self.errors.take() {
            Some(io) => Err(self.io_failed(&io)),
            None => Ok(()),
        }
    }

    /// Makes the written bytes durable (fsync), reporting `finish` progress
    /// meanwhile.
    pub fn sync(&self, progress: &mut Progress) -> Result<()> {
        let file = self
            .partial
            .file
            .try_clone()
            .map_err(|e| dir_error(&self.dir, &e))?;
        blocking_with_ticks("finish", progress, move || file.sync_all())?
            .map_err(|e| self.io_failed(&e))
    }

    /// Reads the written file back: it must hold a video and an audio stream
    /// and last `duration_s` (within `tolerance`).
    pub fn verify(&self, duration_s: f64, tolerance: f64) -> Result<MediaInfo> {
        // A folder removed meanwhile takes the file with it: say so.
        check_out_dir(&self.dir)?;
        let path = &self.partial.path;
        self.partial.share_for_reading();
        let bad = |reason: String| EngineError::OutputWrite {
            path: path.clone(),
            reason,
        };
        let written = probe_fast(path)
            .map_err(|e| bad(format!("the written file does not read back: {e}")))?;
        let Some(v) = written.video().filter(|_| written.audio().is_some()) else {
            return Err(bad(
                "the written file lacks its video or audio stream".into()
            ));
        };
        let v_dur = v.duration_s.unwrap_or(written.duration_s);
        if (v_dur - duration_s).abs() > tolerance
            || (written.duration_s - duration_s).abs() > tolerance
        {
            return Err(bad(format!(
                "the written file lasts {:.3} s (video {v_dur:.3} s) instead of {duration_s:.3} s",
                written.duration_s
            )));
        }
        Ok(written)
    }

    /// Gives the file its final name (numbered when taken, never replacing
    /// a file) and makes the rename durable.
    pub fn commit(mut self) -> Result<PathBuf> {
        for n in 1..=9999 {
            let candidate = self.dir.join(numbered(&self.final_name, n));
            if candidate.exists() {
                continue;
            }
            match rename_no_replace(&self.partial.path, &candidate) {
                Ok(true) => {
                    self.partial.committed = true;
                    fsync_dir(&self.dir);
                    return Ok(candidate);
                }
                Ok(false) => continue,
                Err(e) => return Err(dir_error(&self.dir, &e)),
            }
        }
        Err(EngineError::OutputDir {
            path: self.dir.clone(),
            reason: format!("too many files named like {}", self.final_name),
        })
    }
}

impl PartialFile {
    /// Lets the read-back open the file while it stays locked. Unix locks
    /// are advisory and the exclusive one stays. A Windows exclusive lock
    /// also keeps every other handle from reading, so it becomes a shared
    /// one (still refused to another run's cleanup, which asks for an
    /// exclusive lock); between the two calls the file is unlocked for an
    /// instant, after its last write.
    fn share_for_reading(&self) {
        #[cfg(windows)]
        {
            let _ = self.file.unlock();
            if let Err(e) = self.file.try_lock_shared() {
                tracing::warn!("cannot relock {}: {e}", self.path.display());
            }
        }
    }
}

/// Takes the lock that marks a partial file as alive; it is released when
/// the file closes or the process dies. The standard library's lock: flock
/// on Unix, LockFileEx on Windows. Where the file system has no locks this
/// fails, and the cleanup then removes nothing.
fn try_lock(file: &File) -> bool {
    file.try_lock().is_ok()
}

fn dir_error(dir: &Path, e: &std::io::Error) -> EngineError {
    if is_disk_full(e) {
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

pub(crate) fn check_out_dir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(EngineError::OutputDir {
            path: dir.to_path_buf(),
            reason: "it is a file, not a folder".into(),
        }),
        Err(e) => Err(dir_error(dir, &e)),
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
    if !plain_io() {
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

#[cfg(windows)]
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::windows::ffi::OsStrExt;
    let wide: Vec<u16> = dir.as_os_str().encode_wide().chain([0]).collect();
    let mut free = 0u64;
    // SAFETY: a NUL-terminated path and a valid out pointer; the totals
    // are optional (null).
    let ok = unsafe {
        windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW(
            wide.as_ptr(),
            &mut free,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    (ok != 0).then_some(free)
}

#[cfg(not(any(unix, windows)))]
fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_name_cuts_the_stem_at_a_character_boundary_and_keeps_the_tail() {
        let stem = "舞".repeat(100); // 300 bytes
        for max in [255, 254, 253, 248, 20, 13] {
            let name = fit_name(&stem, "_beatsync.mp4", max);
            assert!(name.len() <= max, "{max}: {} bytes", name.len());
            assert!(name.len() + 2 >= max, "{max}: cut more than one character");
            assert!(name.ends_with("_beatsync.mp4"));
        }
        assert_eq!(fit_name("short", ".mp4", 255), "short.mp4");
        assert_eq!(fit_name("abc", ".mp4", 2), ".mp4", "the tail is never cut");
        assert_eq!(fit_keeping_extension("abcdef.mp4", 8), "abcd.mp4");
        assert_eq!(fit_keeping_extension("abcdef", 4), "abcd");
    }

    #[test]
    fn numbered_and_partial_names_of_the_longest_final_name_fit() {
        let final_name = fit_name(&"舞".repeat(100), "_beatsync.mp4", MAX_FINAL_NAME_BYTES);
        assert!(numbered(&final_name, 9999).len() <= MAX_NAME_BYTES);
        let dir = tempfile::tempdir().expect("tmp");
        let out = OutputFile::create(dir.path(), &final_name, None).expect("partial created");
        let partial = out.partial_path().file_name().expect("name").len();
        assert!(partial <= MAX_NAME_BYTES, "{partial} bytes");
    }
}

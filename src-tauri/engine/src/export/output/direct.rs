//! Writing the export's output file with O_DIRECT (Linux only).
//!
//! The export fsyncs its output anyway, so the page cache buys nothing for
//! the media data: copying every byte into freshly allocated cache pages and
//! writing them back later is kernel CPU that dominates a copy export.
//! Here the bytes are staged in block-aligned buffers and each full block is
//! written with O_DIRECT by a worker thread, while the muxer fills the next
//! buffer. What O_DIRECT cannot take (rewrites of bytes already handed to
//! the disk, such as the mdat size patched at the trailer, and the unaligned
//! tail) goes through the ordinary buffered descriptor; the final fsync
//! makes both durable.
//!
//! Invariant: the file's bytes `[0, flushed)` are written (or being written
//! by the worker), `[flushed, high)` are in the stage buffer only, and
//! `flushed` is a multiple of [`BLOCK`].

use std::fs::File;
use std::io::{Error, ErrorKind, Result, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;

/// Memory and file-offset alignment of O_DIRECT writes: the page size, a
/// multiple of every usual logical block size (512 or 4096).
const ALIGN: usize = 4096;
/// Bytes per O_DIRECT write: large enough for few system calls and full
/// device requests, small enough to keep memory low.
const BLOCK: usize = 4 << 20;
/// Stage buffers in all: the muxer fills one while the worker writes the
/// others.
const BUFFERS: usize = 3;

/// One [`BLOCK`] of memory starting at an [`ALIGN`]ed address (over-allocated
/// and offset, so no unsafe allocation is needed).
struct AlignedBuf {
    bytes: Box<[u8]>,
    start: usize,
}

impl AlignedBuf {
    fn new() -> Option<Self> {
        let bytes = vec![0u8; BLOCK + ALIGN].into_boxed_slice();
        let start = bytes.as_ptr().align_offset(ALIGN);
        (start < ALIGN).then_some(Self { bytes, start })
    }
    fn block(&self) -> &[u8] {
        &self.bytes[self.start..self.start + BLOCK]
    }
    fn block_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + BLOCK]
    }
}

/// A full block for the worker to write at `offset`.
struct Job {
    buf: AlignedBuf,
    offset: u64,
}

/// A written block's buffer coming back, with the write's outcome.
type Done = (AlignedBuf, Result<()>);

/// The output file written as described in the module documentation.
pub(crate) struct DirectSink {
    /// The ordinary descriptor: rewrites and the tail.
    file: File,
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    worker: Option<JoinHandle<()>>,
    free: Vec<AlignedBuf>,
    in_flight: usize,
    stage: AlignedBuf,
    flushed: u64,
    high: u64,
    pos: u64,
    /// Whether bytes were written since the last flush.
    dirty: bool,
    /// The first write error, returned again by every later call: the file
    /// is incomplete from then on.
    failed: Option<Error>,
}

impl DirectSink {
    /// For a new, empty `file` (positions are kept here, starting at 0).
    /// `None` when the file system does not take O_DIRECT (the caller then
    /// writes through the page cache), or when `file` is not empty.
    pub fn open(file: &File) -> Option<Self> {
        if file.metadata().ok()?.len() != 0 {
            return None;
        }
        // A second open file description of the same file: O_DIRECT is a
        // per-description flag, and the buffered descriptor must stay
        // buffered.
        let direct = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .ok()?;
        let plain = file.try_clone().ok()?;
        let file = file.try_clone().ok()?;
        let mut free = Vec::with_capacity(BUFFERS - 1);
        for _ in 1..BUFFERS {
            free.push(AlignedBuf::new()?);
        }
        let stage = AlignedBuf::new()?;
        let (jobs, job_rx) = channel::<Job>();
        let (done_tx, done) = channel::<Done>();
        let worker = std::thread::Builder::new()
            .name("direct-write".into())
            .spawn(move || {
                let mut direct = Some(direct);
                while let Ok(job) = job_rx.recv() {
                    let r = write_block(&mut direct, &plain, job.buf.block(), job.offset);
                    if done_tx.send((job.buf, r)).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Self {
            file,
            jobs: Some(jobs),
            done,
            worker: Some(worker),
            free,
            in_flight: 0,
            stage,
            flushed: 0,
            high: 0,
            pos: 0,
            dirty: false,
            failed: None,
        })
    }

    pub fn write(&mut self, buf: &[u8]) -> Result<usize> {
        self.check()?;
        self.collect(false)?;
        let mut data = buf;
        let mut at = self.pos;
        if at < self.flushed {
            // Bytes already handed to the disk: the block write must have
            // landed first, or it could overwrite this newer data.
            let k = usize::try_from(self.flushed - at).map_or(data.len(), |n| n.min(data.len()));
            self.collect(true)?;
            self.file
                .write_all_at(&data[..k], at)
                .map_err(|e| self.fail(e))?;
            data = &data[k..];
            at += k as u64;
        }
        while !data.is_empty() {
            let rel = at - self.flushed;
            if rel >= BLOCK as u64 {
                self.submit()?;
                continue;
            }
            let rel = rel as usize;
            let held = self.held();
            // Past the end: the skipped bytes are a hole, which reads as zeros.
            if rel > held {
                self.stage.block_mut()[held..rel].fill(0);
            }
            let k = data.len().min(BLOCK - rel);
            self.stage.block_mut()[rel..rel + k].copy_from_slice(&data[..k]);
            data = &data[k..];
            at += k as u64;
            self.high = self.high.max(at);
        }
        self.pos = at;
        self.dirty = true;
        Ok(buf.len())
    }

    /// Waits for the block writes and writes the staged tail through the
    /// page cache; everything written so far is then in the file.
    pub fn flush(&mut self) -> Result<()> {
        self.check()?;
        if !self.dirty {
            return Ok(());
        }
        self.collect(true)?;
        let held = self.held();
        self.file
            .write_all_at(&self.stage.block()[..held], self.flushed)
            .map_err(|e| self.fail(e))?;
        self.dirty = false;
        Ok(())
    }

    pub fn seek(&mut self, to: SeekFrom) -> Result<u64> {
        let at = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.high.checked_add_signed(d),
        };
        self.pos = at.ok_or_else(|| Error::new(ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }

    /// Staged bytes: from `flushed` to the end of the file.
    fn held(&self) -> usize {
        // At most BLOCK, so the cast cannot truncate.
        self.high.saturating_sub(self.flushed).min(BLOCK as u64) as usize
    }

    /// Hands the stage (full, or padded with the hole's zeros when the
    /// write goes past it) to the worker and stages into a free buffer.
    fn submit(&mut self) -> Result<()> {
        let held = self.held();
        self.stage.block_mut()[held..].fill(0);
        let next = match self.free.pop() {
            Some(b) => b,
            None => {
                self.wait_one()?;
                self.check()?;
                self.free
                    .pop()
                    .ok_or_else(|| Error::other("direct writer lost a buffer"))?
            }
        };
        let buf = std::mem::replace(&mut self.stage, next);
        let sent = self.jobs.as_ref().map(|j| {
            j.send(Job {
                buf,
                offset: self.flushed,
            })
        });
        if !matches!(sent, Some(Ok(()))) {
            return Err(self.fail(Error::other("direct writer stopped")));
        }
        self.in_flight += 1;
        self.flushed += BLOCK as u64;
        Ok(())
    }

    /// Takes back finished blocks: all of them (`wait`), or those already
    /// done. Returns the first write error.
    fn collect(&mut self, wait: bool) -> Result<()> {
        while self.in_flight > 0 {
            if wait {
                self.wait_one()?;
            } else {
                match self.done.try_recv() {
                    Ok(d) => self.returned(d),
                    Err(_) => break,
                }
            }
        }
        self.check()
    }

    fn wait_one(&mut self) -> Result<()> {
        match self.done.recv() {
            Ok(d) => {
                self.returned(d);
                Ok(())
            }
            Err(_) => Err(self.fail(Error::other("direct writer stopped"))),
        }
    }

    fn returned(&mut self, (buf, r): Done) {
        self.in_flight -= 1;
        self.free.push(buf);
        if let Err(e) = r {
            self.fail(e);
        }
    }

    /// Remembers the first error; returns a copy of `e` for the caller.
    fn fail(&mut self, e: Error) -> Error {
        let copy = copy_error(&e);
        self.failed.get_or_insert(e);
        copy
    }

    fn check(&self) -> Result<()> {
        self.failed.as_ref().map_or(Ok(()), |e| Err(copy_error(e)))
    }
}

impl Drop for DirectSink {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.worker.take() {
            let _ = t.join();
        }
    }
}

/// An equal error (`io::Error` is not `Clone`), keeping the OS error number.
fn copy_error(e: &Error) -> Error {
    match e.raw_os_error() {
        Some(code) => Error::from_raw_os_error(code),
        None => Error::new(e.kind(), e.to_string()),
    }
}

/// Writes one block at `offset` with O_DIRECT; through the page cache
/// instead when the file system refuses the alignment (EINVAL: from then on
/// `direct` is dropped) or after a short write left an unaligned rest.
fn write_block(direct: &mut Option<File>, plain: &File, block: &[u8], offset: u64) -> Result<()> {
    let mut data = block;
    let mut at = offset;
    while let Some(d) = direct.as_ref() {
        if data.is_empty() {
            return Ok(());
        }
        match d.write_at(data, at) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                data = &data[n..];
                at += n as u64;
                if n % ALIGN != 0 {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => *direct = None,
            Err(e) => return Err(e),
        }
    }
    plain.write_all_at(data, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_signal::Lcg;

    fn model_write(model: &mut Vec<u8>, at: usize, data: &[u8]) {
        if model.len() < at + data.len() {
            model.resize(at + data.len(), 0);
        }
        model[at..at + data.len()].copy_from_slice(data);
    }

    /// Sequential writes with rewrites behind (flushed and staged), seeks
    /// past the end and seeks relative to the end, checked byte for byte
    /// against a plain in-memory model.
    #[test]
    fn writes_and_rewrites_land_like_a_plain_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.bin");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .expect("create");
        let Some(mut sink) = DirectSink::open(&file) else {
            crate::test_signal::skip("O_DIRECT not available in the temp folder");
            return;
        };
        let mut model = Vec::new();
        let mut rng = Lcg(7);
        let mut pos = 0usize;
        for _ in 0..400 {
            let len = match rng.below(4) {
                0 => rng.below(16) as usize,
                1 => rng.below(5000) as usize,
                _ => rng.below(300_000) as usize,
            };
            let data: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            match rng.below(30) {
                0 => pos = rng.below(model.len() as u64 + 1) as usize,
                1 => pos = model.len() + rng.below(2 * BLOCK as u64) as usize,
                2 if !model.is_empty() => {
                    pos = sink.seek(SeekFrom::End(-1)).expect("seek") as usize;
                    assert_eq!(pos, model.len() - 1);
                }
                _ => {}
            }
            assert_eq!(
                sink.seek(SeekFrom::Start(pos as u64)).expect("seek"),
                pos as u64
            );
            assert_eq!(sink.write(&data).expect("write"), len);
            model_write(&mut model, pos, &data);
            pos += len;
        }
        // The mdat size patch: a few bytes near the start, long written.
        sink.seek(SeekFrom::Start(40)).expect("seek");
        sink.write(&[1, 2, 3, 4]).expect("write");
        model_write(&mut model, 40, &[1, 2, 3, 4]);
        sink.flush().expect("flush");
        drop(sink);
        file.sync_all().expect("fsync");
        let back = std::fs::read(&path).expect("read back");
        assert_eq!(back.len(), model.len());
        assert!(back == model, "file content differs from the model");
    }

    /// A full disk surfaces as ENOSPC from `write` or `flush` (block writes
    /// fail in the worker), and keeps failing afterwards. Needs root to
    /// mount a small tmpfs (which takes O_DIRECT on recent kernels).
    #[test]
    fn full_disk_is_reported_as_enospc() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            crate::test_signal::skip("mounting a small tmpfs needs root");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            crate::test_signal::skip("mount -t tmpfs failed");
            return;
        }
        let result = std::panic::catch_unwind(|| {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(dir.path().join("out.bin"))
                .expect("create");
            let Some(mut sink) = DirectSink::open(&file) else {
                crate::test_signal::skip("this tmpfs does not take O_DIRECT");
                return;
            };
            let chunk = vec![7u8; 100_000];
            let mut err = None;
            for _ in 0..200 {
                if let Err(e) = sink.write(&chunk) {
                    err = Some(e);
                    break;
                }
            }
            let err = err.or_else(|| sink.flush().err()).expect("an error");
            assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
            let again = sink.write(&chunk).expect_err("still failing");
            assert_eq!(again.raw_os_error(), Some(libc::ENOSPC));
        });
        let _ = std::process::Command::new("umount")
            .arg(dir.path())
            .status();
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    }
}

//! The output file as the muxer's byte sink: records the first write error
//! (so a failed mux can say "disk full" rather than "I/O error") and keeps
//! the final fsync short.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

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

/// Whether an I/O error means the disk (or quota) is full. The standard
/// library maps each OS's codes to these kinds: ENOSPC and EDQUOT on Unix,
/// ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL and ERROR_DISK_QUOTA_EXCEEDED
/// on Windows.
pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{QuotaExceeded, StorageFull};
    matches!(e.kind(), StorageFull | QuotaExceeded)
}

/// A write failure injected by tests: every write that would take the file
/// past `after_bytes` fails with the OS error `errno` (ENOSPC, EIO…), as a
/// full or failing disk would, without root or a special file system. Not a
/// user option: the request never reads it from JSON, the CLI or IPC.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteFault {
    pub after_bytes: u64,
    pub errno: i32,
}

/// The partial output file as the muxer's byte sink; records the first
/// error. On Linux the data bypasses the page cache (see
/// [`super::direct`]) when the file system allows it. Otherwise every
/// new 8 MB is handed to the kernel for writeback as soon as written, so
/// that the final fsync is short. The writeback requests are made by a
/// helper thread: starting writeback allocates blocks and submits I/O in the
/// caller's time, which would otherwise stall the muxer.
pub(crate) struct OutputSink {
    file: File,
    errors: WriteErrorSlot,
    #[cfg(target_os = "linux")]
    direct: Option<super::direct::DirectSink>,
    /// Write position, and the end of what was handed to writeback.
    pos: u64,
    high: u64,
    handed: u64,
    writeback: Option<Writeback>,
    /// The injected failure and the bytes written so far (tests only).
    fault: Option<(WriteFault, u64)>,
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
        if super::plain_io() {
            return None;
        }
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
    pub fn new(file: File, errors: WriteErrorSlot, fault: Option<WriteFault>) -> Self {
        #[cfg(target_os = "linux")]
        let direct = if super::plain_io() {
            None
        } else {
            super::direct::DirectSink::open(&file)
        };
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
            fault: fault.map(|f| (f, 0)),
        }
    }

    /// The injected failure, when this write reaches it.
    fn injected_failure(&mut self, len: usize) -> Option<std::io::Error> {
        let (fault, written) = self.fault.as_mut()?;
        *written += len as u64;
        (*written > fault.after_bytes).then(|| std::io::Error::from_raw_os_error(fault.errno))
    }
}

impl Write for OutputSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(e) = self.injected_failure(buf.len()) {
            self.errors.record(&e);
            return Err(e);
        }
        #[cfg(target_os = "linux")]
        if let Some(d) = &mut self.direct {
            return d.write(buf).inspect_err(|e| self.errors.record(e));
        }
        match self.file.write(buf) {
            Ok(n) => {
                self.pos += n as u64;
                self.high = self.high.max(self.pos);
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

#[cfg(test)]
mod tests {
    use super::is_disk_full;
    use std::io::Error;

    #[cfg(unix)]
    #[test]
    fn full_disk_and_quota_are_disk_full_on_unix() {
        assert!(is_disk_full(&Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_disk_full(&Error::from_raw_os_error(libc::EDQUOT)));
        assert!(!is_disk_full(&Error::from_raw_os_error(libc::EIO)));
        assert!(!is_disk_full(&Error::from_raw_os_error(libc::EACCES)));
    }

    #[cfg(windows)]
    #[test]
    fn full_disk_and_quota_are_disk_full_on_windows() {
        // ERROR_HANDLE_DISK_FULL, ERROR_DISK_FULL, ERROR_DISK_QUOTA_EXCEEDED
        for code in [39, 112, 1295] {
            assert!(is_disk_full(&Error::from_raw_os_error(code)), "{code}");
        }
        // ERROR_ACCESS_DENIED
        assert!(!is_disk_full(&Error::from_raw_os_error(5)));
    }
}

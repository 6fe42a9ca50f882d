//! Decoded samples of a long recording kept in a file instead of the heap
//! (issue 18 §2: an hour's take is 115 MB of samples at 8 kHz, and the
//! aligner's later stages read only a few minutes of it at a time).
//!
//! The samples are written once, as decoded, to an unlinked temporary file
//! (nothing else can open, truncate or leave it behind) and mapped read-only,
//! so every stage still reads one `&[f32]` with the same samples, bit for
//! bit. The kernel reads the pages a stage touches from the page cache;
//! [`Samples::release`] drops them from the process again between stages, so
//! what stays resident is what one stage reads, not the whole recording.
//! The page cache behind it is reclaimable (written back to the file's disk);
//! on a RAM-backed temporary directory (tmpfs) it stays in memory, only
//! outside the process.

#[cfg(unix)]
pub(crate) use file::{Mapped, SpillWriter};

use std::path::PathBuf;
use std::sync::OnceLock;

/// The folder spill files are made in, once set (see [`set_spill_dir`]).
static SPILL_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Makes spill files in `dir` (an existing folder) from now on, instead of
/// the system's temporary directory: the app sets a folder of its data
/// directory, on disk, because a RAM-backed `/tmp` (tmpfs: Debian 13's and
/// Fedora's default) would keep the samples in memory, only outside the
/// process. The first call wins.
pub fn set_spill_dir(dir: PathBuf) {
    let _ = SPILL_DIR.set(dir);
}

/// Where the next spill file goes (unix only: elsewhere nothing spills).
#[cfg(unix)]
pub(crate) fn spill_dir() -> PathBuf {
    SPILL_DIR.get().cloned().unwrap_or_else(std::env::temp_dir)
}

/// Decoded mono samples: in the heap, or (a long recording) mapped from a spill file.
pub(crate) enum Samples {
    Heap(Vec<f32>),
    #[cfg(unix)]
    Mapped(Mapped),
}

impl Samples {
    pub fn as_slice(&self) -> &[f32] {
        match self {
            Samples::Heap(v) => v,
            #[cfg(unix)]
            Samples::Mapped(m) => m.as_slice(),
        }
    }

    /// Lets the kernel drop the mapped pages from the process (read again
    /// from the page cache on the next access; same bytes). Nothing for
    /// samples in the heap.
    pub fn release(&self) {
        #[cfg(unix)]
        if let Samples::Mapped(m) = self {
            m.release();
        }
    }
}

/// The spill file and its mapping (unix: `mmap`; elsewhere samples stay in the heap).
#[cfg(unix)]
mod file {
    use crate::error::{EngineError, Result};
    use std::fs::File;
    use std::io::{BufWriter, Write};
    use std::path::{Path, PathBuf};
    use std::ptr::NonNull;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Writes samples to an unlinked file in `dir`, then maps them.
    pub(crate) struct SpillWriter {
        out: BufWriter<File>,
        written: usize,
        /// The recording (for error messages).
        source: PathBuf,
    }

    /// Distinct names for concurrent spills of one process.
    static SPILL_SERIAL: AtomicU64 = AtomicU64::new(0);

    impl SpillWriter {
        pub fn create(dir: &Path, source: &Path) -> Result<Self> {
            let serial = SPILL_SERIAL.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                ".beatsync-samples-{}-{serial}.f32",
                std::process::id()
            ));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| spill_error(source, &e))?;
            // Unlinked at once: the open handle keeps the data until it is
            // closed, and a crash leaves nothing in the temporary directory.
            std::fs::remove_file(&path).map_err(|e| spill_error(source, &e))?;
            Ok(Self {
                out: BufWriter::with_capacity(1 << 16, file),
                written: 0,
                source: source.to_path_buf(),
            })
        }

        pub fn write(&mut self, samples: &[f32]) -> Result<()> {
            for v in samples {
                self.out
                    .write_all(&v.to_ne_bytes())
                    .map_err(|e| spill_error(&self.source, &e))?;
            }
            self.written += samples.len();
            Ok(())
        }

        /// The samples written, mapped read-only.
        pub fn finish(self) -> Result<Mapped> {
            let source = self.source;
            let file = self
                .out
                .into_inner()
                .map_err(|e| spill_error(&source, e.error()))?;
            Mapped::new(file, self.written, &source)
        }
    }

    fn spill_error(source: &Path, e: &std::io::Error) -> EngineError {
        EngineError::media(source, format!("sample spill file: {e}"))
    }

    /// `len` f32 samples mapped read-only from `_file`.
    pub(crate) struct Mapped {
        ptr: NonNull<f32>,
        len: usize,
        _file: File,
    }

    // The mapping is read-only and lives as long as the value: shared reads from
    // any thread are as safe as those of a `Vec<f32>`.
    unsafe impl Send for Mapped {}
    unsafe impl Sync for Mapped {}

    impl Mapped {
        fn new(file: File, len: usize, source: &Path) -> Result<Self> {
            if len == 0 {
                return Err(EngineError::Empty(source.to_path_buf()));
            }
            let bytes = len * std::mem::size_of::<f32>();
            use std::os::unix::io::AsRawFd;
            // SAFETY: a fresh private read-only mapping of a file only this
            // process can reach (unlinked above) and never writes or truncates
            // again; checked for failure before use.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    bytes,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE,
                    file.as_raw_fd(),
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(spill_error(source, &std::io::Error::last_os_error()));
            }
            let ptr = NonNull::new(ptr.cast::<f32>())
                .ok_or_else(|| EngineError::media(source, "sample spill file: null mapping"))?;
            Ok(Self {
                ptr,
                len,
                _file: file,
            })
        }

        pub fn as_slice(&self) -> &[f32] {
            // SAFETY: `len` f32 values, mapped (page-aligned, so aligned for
            // f32) and readable until `drop`; nothing writes them.
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
        }

        pub(super) fn release(&self) {
            // SAFETY: the range is this value's own mapping. On a private
            // mapping that was never written, MADV_DONTNEED only unmaps the
            // pages: the next read maps the file's same bytes again.
            unsafe {
                libc::madvise(
                    self.ptr.as_ptr().cast(),
                    self.len * std::mem::size_of::<f32>(),
                    libc::MADV_DONTNEED,
                );
            }
        }
    }

    impl Drop for Mapped {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`, unmapped once; no slice of it
            // outlives `self` (they borrow it).
            unsafe {
                libc::munmap(
                    self.ptr.as_ptr().cast(),
                    self.len * std::mem::size_of::<f32>(),
                );
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::path::Path;

    fn written(x: &[f32], dir: &Path) -> Samples {
        let mut w = SpillWriter::create(dir, Path::new("test")).expect("create");
        for chunk in x.chunks(7777) {
            w.write(chunk).expect("write");
        }
        Samples::Mapped(w.finish().expect("map"))
    }

    fn bits(s: &[f32]) -> Vec<u32> {
        s.iter().map(|v| v.to_bits()).collect()
    }

    /// This process's resident bytes of the mapping that starts at `addr`
    /// (`/proc/self/smaps`).
    #[cfg(target_os = "linux")]
    fn resident_bytes(addr: *const f32) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let start = format!("{:x}-", addr as usize);
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
        lines
            .find_map(|l| l.strip_prefix("Rss:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
            .expect("the mapping's Rss line")
            * 1024
    }

    #[test]
    fn mapped_samples_are_the_written_ones_after_a_release() {
        let dir = tempfile::tempdir().expect("temp dir");
        let x: Vec<f32> = (0..300_000u32)
            .map(|i| ((i as f32) * 0.37).sin() + f32::from_bits(i))
            .collect();
        let samples = written(&x, dir.path());
        // nothing left behind in the directory
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
        assert_eq!(bits(samples.as_slice()), bits(&x));
        samples.release();
        assert_eq!(bits(samples.as_slice()), bits(&x));
    }

    /// The features of a long recording read from its spill file keep at
    /// most one block of it resident at a time (without the releases, the
    /// whole recording), and are the features of the samples in the heap.
    #[cfg(target_os = "linux")]
    #[test]
    fn onset_features_of_a_long_recording_keep_a_bounded_part_resident() {
        use crate::dsp::onset::{onset_envelope, onset_envelope_releasing};
        let dir = tempfile::tempdir().expect("temp dir");
        let n = 8 * 60 * 8000; // 8 minutes at 8 kHz: 15 MB
        let mut seed = 1u32;
        let x: Vec<f32> = (0..n)
            .map(|i| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5 + ((i % 400) as f32 * 1e-3)
            })
            .collect();
        let samples = written(&x, dir.path());
        let addr = samples.as_slice().as_ptr();
        let block = 1 << 18; // samples between releases (1 MB)
        let most = std::cell::Cell::new(0usize);
        let env = onset_envelope_releasing(samples.as_slice(), 8000, 80, block / 80, &|| {
            most.set(most.get().max(resident_bytes(addr)));
            samples.release();
        });
        // one block and the frame around it, in pages
        let bound = block * 4 + 64 * 1024;
        assert!(
            most.get() <= bound,
            "{} bytes resident, bound {bound}",
            most.get()
        );
        assert!(resident_bytes(addr) <= 4096);
        let heap = onset_envelope(&x, 8000, 80);
        assert_eq!(bits(&env.flux), bits(&heap.flux));
        assert_eq!(bits(&env.low_flux), bits(&heap.low_flux));
        assert_eq!(bits(&env.log_bands), bits(&heap.log_bands));
    }
}

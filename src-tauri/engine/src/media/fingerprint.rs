//! Noticing a replaced file. A job's inputs get a [`fingerprint`] (size,
//! modification time and a hash of the first and last MiB: cheap on a 2 GB
//! video, and enough to notice a replaced file, across restarts). One
//! export's inputs get a [`FileStamp`] (what `stat` says, no reading), to
//! notice a file moved or written to while the export runs.

use super::input::input_error;
use crate::error::{EngineError, Result};
use crate::jobs::model::Fingerprint;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const EDGE: u64 = 1 << 20;

pub fn fingerprint(path: &Path) -> Result<Fingerprint> {
    let io_err = |e| input_error(path, e);
    let mut f = std::fs::File::open(path).map_err(io_err)?;
    let meta = f.metadata().map_err(io_err)?;
    let size = meta.len();
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; EDGE.min(size) as usize];
    f.read_exact(&mut buf).map_err(io_err)?;
    hasher.update(&buf);
    if size > EDGE {
        let tail = EDGE.min(size - EDGE);
        f.seek(SeekFrom::Start(size - tail)).map_err(io_err)?;
        buf.resize(tail as usize, 0);
        f.read_exact(&mut buf).map_err(io_err)?;
        hasher.update(&buf);
    }
    hasher.update(&size.to_le_bytes());
    Ok(Fingerprint {
        size,
        mtime_ns,
        head_tail_xxh3: format!("{:016x}", hasher.digest()),
    })
}

/// Fails with `input_changed` when the file is no longer the one fingerprinted.
pub fn check_unchanged(path: &Path, expected: &Fingerprint) -> Result<()> {
    let now = match fingerprint(path) {
        Ok(f) => f,
        Err(EngineError::NotFound(p)) => return Err(EngineError::InputChanged(p)),
        Err(e) => return Err(e),
    };
    if &now != expected {
        return Err(EngineError::InputChanged(path.to_path_buf()));
    }
    Ok(())
}

/// What `stat` says of a file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FileStamp {
    path: PathBuf,
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    inode: u64,
}

impl FileStamp {
    pub fn of(path: &Path) -> Result<Self> {
        let m = std::fs::metadata(path).map_err(|e| input_error(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            len: m.len(),
            modified: m.modified().ok(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&m),
        })
    }

    /// Fails with `input_changed` when the file is not as stamped any more.
    pub fn check(&self) -> Result<()> {
        match Self::of(&self.path) {
            Ok(now) if now == *self => Ok(()),
            _ => Err(EngineError::InputChanged(self.path.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_edits_at_either_end_and_size_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("v.mp4");
        let mut data = vec![7u8; 3 * EDGE as usize];
        std::fs::write(&p, &data).expect("write");
        let a = fingerprint(&p).expect("fp");
        assert_eq!(a.size, data.len() as u64);
        check_unchanged(&p, &a).expect("unchanged");

        // Same size and (forced) same mtime, different last byte: the hash notices.
        let last = data.len() - 1;
        data[last] = 8;
        std::fs::write(&p, &data).expect("write");
        let b = fingerprint(&p).expect("fp");
        assert_ne!(a.head_tail_xxh3, b.head_tail_xxh3);
        let same_time = Fingerprint {
            mtime_ns: a.mtime_ns,
            ..b.clone()
        };
        assert_ne!(same_time, a);

        std::fs::remove_file(&p).expect("rm");
        assert_eq!(
            check_unchanged(&p, &a).map_err(|e| e.code()),
            Err("input_changed")
        );
    }

    #[test]
    fn small_files_hash_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.wav");
        std::fs::write(&p, b"tiny").expect("write");
        let f = fingerprint(&p).expect("fp");
        assert_eq!(f.size, 4);
        assert_eq!(f.head_tail_xxh3.len(), 16);
    }
}

//! The files the page may name, by opaque id. A path enters only through a
//! user's act the page cannot forge — a window drop, a native dialog, the
//! launch arguments, a typed path the user confirmed in a native dialog —
//! or from a stored job; the page then receives a random id for it and
//! commands take that id, never a path. An id the shell did not hand out
//! names nothing.

use crate::error::IpcError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// id → canonical path, and back (one id per file for the app's lifetime).
#[derive(Default)]
pub struct FileRegistry {
    inner: Mutex<Ids>,
}

#[derive(Default)]
struct Ids {
    paths: HashMap<String, PathBuf>,
    ids: HashMap<PathBuf, String>,
}

/// 128 random bits, hex: not guessable, not derived from the path.
fn random_id() -> Result<String, IpcError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(IpcError::internal)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Has the form of an id [`random_id`] makes: 32 lowercase hex digits.
/// Anything else (a path, `..`, an encoded slash) need not even be looked up.
pub fn is_file_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl FileRegistry {
    /// The id of `path` as given (already canonical, or a stored job's path),
    /// handing out a new one the first time.
    fn id_of(&self, path: &Path) -> Result<String, IpcError> {
        let mut ids = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = ids.ids.get(path) {
            return Ok(id.clone());
        }
        let id = random_id()?;
        ids.ids.insert(path.to_path_buf(), id.clone());
        ids.paths.insert(id.clone(), path.to_path_buf());
        Ok(id)
    }

    /// Registers a file a user act named: its canonical path (symlinks and
    /// `..` resolved) and its id. Fails when the file is not there.
    pub fn register(&self, path: &Path) -> Result<(String, PathBuf), IpcError> {
        let canonical = path
            .canonicalize()
            .map_err(|_| IpcError::from(beatsync_engine::EngineError::NotFound(path.into())))?;
        Ok((self.id_of(&canonical)?, canonical))
    }

    /// The id of a path a stored job names (it may be gone since: the job
    /// still shows, and using the id then fails with the engine's error).
    pub fn id_of_stored(&self, path: &Path) -> String {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        // Random bytes are always there on the desktops we run on; should
        // they fail, the file has no usable id (and the page can name nothing).
        self.id_of(&canonical).unwrap_or_default()
    }

    /// The path behind an id the shell handed out.
    pub fn resolve(&self, id: &str) -> Result<PathBuf, IpcError> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .paths
            .get(id)
            .cloned()
            .ok_or_else(|| {
                IpcError::invalid_argument(
                    "this file is not known to BeatSync (an unknown id); add it again by dropping it on the window or with Add files",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_stable_per_file_and_resolve_only_when_handed_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.mp4");
        std::fs::write(&f, b"x").expect("write");
        let reg = FileRegistry::default();
        let (id, canonical) = reg.register(&f).expect("registered");
        assert_eq!(id.len(), 32);
        assert!(is_file_id(&id), "{id}");
        assert!(!id.contains("a.mp4"));
        assert_eq!(canonical, f.canonicalize().expect("canonical"));
        let dotted = dir.path().join(".").join("a.mp4");
        assert_eq!(
            reg.register(&dotted).expect("again").0,
            id,
            "same file, same id"
        );
        assert_eq!(reg.resolve(&id).expect("known"), canonical);
        let other = FileRegistry::default();
        assert_ne!(
            other.register(&f).expect("other").0,
            id,
            "not derived from the path"
        );
        assert!(reg.resolve("0123456789abcdef0123456789abcdef").is_err());
        assert!(reg.register(&dir.path().join("missing.mp4")).is_err());
    }
}

//! Pictures of the recordings for the picture view, served to the page by
//! the `frame:` URI scheme (`frame://localhost/…` on Linux and macOS,
//! `http://frame.localhost/…` on Windows, as Tauri maps custom schemes):
//!
//! - `/<file id>/<time ms>?w=<px>[&play=1]`: the frame shown at that
//!   recording time, `w` px wide (16..=3840), as a JPEG; `play=1` while the
//!   preview plays (the engine reads ahead and may answer a frame a little
//!   late rather than wait);
//! - `/<file id>/strip/<index>[?e=<ms>]`: thumbnail `index` of the file's
//!   filmstrip with a thumbnail every `e` ms (default 2000), once the
//!   `filmstrip` command made it.
//!
//! The id is one the shell's registry handed out (a file the user added);
//! the page never names a path. Whatever does not fit is answered with a
//! status and an empty body (nothing of a path or an engine message leaks):
//! 400 for a malformed request, 404 for an id never handed out or a
//! thumbnail not made, 500 when the file cannot be decoded (logged).
//!
//! One engine [`FrameServer`] per recording asked for, the least recently
//! used closed beyond [`OPEN_SERVERS`]; requests are answered on the
//! blocking pool, never on the main thread.

use crate::error::IpcError;
use crate::registry::{is_file_id, FileRegistry};
use beatsync_engine::frames::{
    filmstrip, Filmstrip, FilmstripOptions, FrameServer, FrameServerOptions, FrameSpan, FrameUse,
    MAX_WIDTH, MIN_WIDTH,
};
use beatsync_engine::CancelToken;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tauri::http::{header, Method, Request, Response, StatusCode};

/// The URI scheme's name (`frame://localhost/…`; `http://frame.localhost/…` on Windows).
pub const SCHEME: &str = "frame";

/// Recordings kept open at once: the selected one and the one or two the
/// teacher just switched from.
pub const OPEN_SERVERS: usize = 3;

/// Encoded frames each open recording keeps (about 2 s of 640-px playback
/// read ahead plus the stills around the cursor).
const SERVER_CACHE_BYTES: usize = 24 << 20;
/// Width of a proxy made before the page asked any frame (the picture
/// view's usual width at a device pixel ratio of 1).
const PROXY_WIDTH: u32 = 640;

/// Longest recording time a request may name (24 h, in ms).
const MAX_TIME_MS: u64 = 86_400_000;

/// What the page asked for, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum PictureRequest {
    Frame {
        id: String,
        at_s: f64,
        width: u32,
        use_: FrameUse,
    },
    Thumbnail {
        id: String,
        /// The strip's spacing, ms.
        every_ms: u64,
        index: usize,
    },
}

/// The spacing of the filmstrip the page gets unless it asks another, ms.
pub const DEFAULT_STRIP_EVERY_MS: u64 = 2000;
/// Spacings a strip may have, ms (the engine's bounds, whole ms).
const STRIP_EVERY_MS: std::ops::RangeInclusive<u64> = 100..=600_000;

/// Decimal digits only (no sign, no exponent), at most 9 of them.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Reads a request's path and query; `None` when anything in it is not as
/// the scheme says.
pub fn parse(path: &str, query: Option<&str>) -> Option<PictureRequest> {
    let parts: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    match parts.as_slice() {
        [id, "strip", index] if is_file_id(id) => {
            let every_ms = match query.unwrap_or("") {
                "" => DEFAULT_STRIP_EVERY_MS,
                q => digits(q.strip_prefix("e=")?).filter(|e| STRIP_EVERY_MS.contains(e))?,
            };
            Some(PictureRequest::Thumbnail {
                id: id.to_string(),
                every_ms,
                index: usize::try_from(digits(index)?).ok()?,
            })
        }
        [id, ms] if is_file_id(id) => {
            let ms = digits(ms).filter(|&ms| ms <= MAX_TIME_MS)?;
            let (mut width, mut use_) = (None, FrameUse::Still);
            for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=')? {
                    ("w", w) => width = Some(digits(w)?),
                    ("play", "1") => use_ = FrameUse::Playing,
                    _ => return None,
                }
            }
            let width = u32::try_from(width?).ok()?;
            (MIN_WIDTH..=MAX_WIDTH)
                .contains(&width)
                .then(|| PictureRequest::Frame {
                    id: id.to_string(),
                    at_s: ms as f64 / 1000.0,
                    width,
                    use_,
                })
        }
        _ => None,
    }
}

/// The open frame servers and the filmstrips made, by file id.
#[derive(Default)]
pub struct Pictures {
    /// Most recently used last.
    servers: Mutex<VecDeque<(String, Arc<FrameServer>)>>,
    /// Held while a recording is being opened, so that a burst of requests
    /// for a new file opens it once.
    opening: Mutex<()>,
    /// By file id and spacing (ms).
    strips: Mutex<HashMap<(String, u64), Arc<Filmstrip>>>,
}

impl Pictures {
    /// The frame server of file `id` (at `path`), opened on first use; the
    /// least recently used beyond [`OPEN_SERVERS`] is closed.
    pub fn server(&self, id: &str, path: &Path) -> Result<Arc<FrameServer>, IpcError> {
        if let Some(s) = self.touch(id) {
            return Ok(s);
        }
        let _one = self.opening.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = self.touch(id) {
            return Ok(s);
        }
        let opts = FrameServerOptions {
            cache_bytes: SERVER_CACHE_BYTES,
            ..FrameServerOptions::default()
        };
        let server = Arc::new(FrameServer::open(path, &opts)?);
        let closed: Vec<_> = {
            let mut servers = self.lock_servers();
            servers.push_back((id.to_string(), server.clone()));
            let extra = servers.len().saturating_sub(OPEN_SERVERS);
            servers.drain(..extra).collect()
        };
        // Closing joins the decoding thread: done outside the lock.
        drop(closed);
        Ok(server)
    }

    fn touch(&self, id: &str) -> Option<Arc<FrameServer>> {
        let mut servers = self.lock_servers();
        let i = servers.iter().position(|(k, _)| k == id)?;
        let entry = servers.remove(i)?;
        let server = entry.1.clone();
        servers.push_back(entry);
        Some(server)
    }

    fn lock_servers(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, Arc<FrameServer>)>> {
        self.servers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ids of the recordings open now, least recently used first.
    pub fn open_ids(&self) -> Vec<String> {
        self.lock_servers().iter().map(|(k, _)| k.clone()).collect()
    }

    /// Closes what is open for file `id` (its frame server, whose decoding
    /// thread is joined, and its filmstrip's place in memory; the disk cache
    /// stays): the file left the list. True when something was open. A
    /// request still being answered keeps its server until it is done.
    pub fn close(&self, id: &str) -> bool {
        let server = {
            let mut servers = self.lock_servers();
            let i = servers.iter().position(|(k, _)| k == id);
            i.and_then(|i| servers.remove(i))
        };
        let strips: Vec<_> = {
            let mut all = self.strips.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<_> = all.keys().filter(|(k, _)| k == id).cloned().collect();
            keys.into_iter().filter_map(|k| all.remove(&k)).collect()
        };
        // Dropped outside the locks: the last reference joins the thread.
        let closed = server.is_some() || !strips.is_empty();
        drop(server);
        closed
    }

    /// The filmstrip of file `id` with a thumbnail every `every_ms`: from
    /// the disk cache under `cache_dir` when made before (by the file's
    /// fingerprint), else made there (reusing the thumbnails of the file's
    /// other strips that stand for the same times).
    pub fn filmstrip(
        &self,
        id: &str,
        path: &Path,
        cache_dir: &Path,
        every_ms: u64,
    ) -> Result<Arc<Filmstrip>, IpcError> {
        let opts = FilmstripOptions {
            every_s: every_ms as f64 / 1000.0,
            ..FilmstripOptions::default()
        };
        let strip = Arc::new(filmstrip(
            path,
            cache_dir,
            &opts,
            &CancelToken::new(),
            &mut |_, _| {},
        )?);
        self.strips
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((id.to_string(), every_ms), strip.clone());
        Ok(strip)
    }

    fn thumbnail(&self, id: &str, every_ms: u64, index: usize) -> Option<PathBuf> {
        let strips = self.strips.lock().unwrap_or_else(|p| p.into_inner());
        let strip = strips.get(&(id.to_string(), every_ms))?;
        strip.thumbnails.get(index).map(|t| strip.path_of(t))
    }

    /// Starts the proxy of file `id` (see the engine's
    /// `FrameServer::start_proxy`) under `cache_dir`, at the width the page
    /// last asked frames at ([`PROXY_WIDTH`] before any): from then on, a low
    /// priority thread decodes the recording once and seeks inside what it
    /// covers are reads from the disk. Once per open recording.
    pub fn start_proxy(&self, id: &str, path: &Path, cache_dir: &Path) -> Result<(), IpcError> {
        let server = self.server(id, path)?;
        let width = server.last_width().unwrap_or(PROXY_WIDTH);
        Ok(server.start_proxy(cache_dir, width)?)
    }

    /// The frame `frames` away from the one shown at `at_s` in file `id`.
    pub fn step(
        &self,
        id: &str,
        path: &Path,
        at_s: f64,
        frames: i64,
    ) -> Result<FrameSpan, IpcError> {
        Ok(self.server(id, path)?.step(at_s, frames)?)
    }
}

fn status(code: StatusCode) -> Response<Vec<u8>> {
    let mut r = Response::new(Vec::new());
    *r.status_mut() = code;
    r
}

/// The answer to a window other than the main one.
pub fn forbidden() -> Response<Vec<u8>> {
    status(StatusCode::FORBIDDEN)
}

fn jpeg(bytes: Vec<u8>) -> Response<Vec<u8>> {
    let mut r = Response::new(bytes);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("image/jpeg"),
    );
    // The engine keeps its own cache; a frame asked while playing may be a
    // stand-in for a late one, so the webview must not keep it under the URL.
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// The answer to one request of the `frame:` scheme (see the module's doc).
pub fn answer(
    files: &FileRegistry,
    pictures: &Pictures,
    request: &Request<Vec<u8>>,
) -> Response<Vec<u8>> {
    if request.method() != Method::GET {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let uri = request.uri();
    let Some(asked) = parse(uri.path(), uri.query()) else {
        return status(StatusCode::BAD_REQUEST);
    };
    let id = match &asked {
        PictureRequest::Frame { id, .. } | PictureRequest::Thumbnail { id, .. } => id,
    };
    let Ok(path) = files.resolve(id) else {
        return status(StatusCode::NOT_FOUND);
    };
    match asked {
        PictureRequest::Frame {
            id,
            at_s,
            width,
            use_,
        } => {
            let frame = pictures
                .server(&id, &path)
                .and_then(|s| Ok(s.frame(at_s, width, use_)?));
            match frame {
                Ok(f) => jpeg(f.jpeg.to_vec()),
                // A newer request took over: nothing to show for this one.
                Err(e) if e.code == beatsync_engine::ErrorCode::Cancelled => {
                    status(StatusCode::NO_CONTENT)
                }
                Err(e) => {
                    tracing::warn!("frame of {id} at {at_s} s: {}", e.message);
                    status(StatusCode::INTERNAL_SERVER_ERROR)
                }
            }
        }
        PictureRequest::Thumbnail {
            id,
            every_ms,
            index,
        } => match pictures.thumbnail(&id, every_ms, index).map(std::fs::read) {
            Some(Ok(bytes)) => jpeg(bytes),
            Some(Err(e)) => {
                tracing::warn!("thumbnail {index} of {id}: {e}");
                status(StatusCode::INTERNAL_SERVER_ERROR)
            }
            None => status(StatusCode::NOT_FOUND),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn only_ids_times_and_widths_as_the_scheme_says_are_read() {
        assert_eq!(
            parse(&format!("/{ID}/1500"), Some("w=640")),
            Some(PictureRequest::Frame {
                id: ID.into(),
                at_s: 1.5,
                width: 640,
                use_: FrameUse::Still
            })
        );
        assert!(matches!(
            parse(&format!("/{ID}/0"), Some("w=16&play=1")),
            Some(PictureRequest::Frame {
                use_: FrameUse::Playing,
                ..
            })
        ));
        assert_eq!(
            parse(&format!("/{ID}/strip/7"), None),
            Some(PictureRequest::Thumbnail {
                id: ID.into(),
                every_ms: DEFAULT_STRIP_EVERY_MS,
                index: 7
            })
        );
        assert_eq!(
            parse(&format!("/{ID}/strip/7"), Some("e=16000")),
            Some(PictureRequest::Thumbnail {
                id: ID.into(),
                every_ms: 16_000,
                index: 7
            })
        );
        for (path, query) in [
            (format!("/{ID}/1500"), None),                  // no width
            (format!("/{ID}/1500"), Some("w=15")),          // too narrow
            (format!("/{ID}/1500"), Some("w=3842")),        // too wide
            (format!("/{ID}/1500"), Some("w=640&x=1")),     // unknown parameter
            (format!("/{ID}/-1"), Some("w=640")),           // negative
            (format!("/{ID}/1e3"), Some("w=640")),          // not digits
            (format!("/{ID}/86400001"), Some("w=640")),     // past 24 h
            (format!("/{ID}/1500/x"), Some("w=640")),       // extra part
            (format!("/{}/1500", &ID[1..]), Some("w=640")), // short id
            ("/../../etc/passwd/0".into(), Some("w=640")),
            ("/%2Fetc%2Fpasswd/0".into(), Some("w=640")),
            (format!("/{}/0", ID.to_uppercase()), Some("w=640")),
            (format!("/{ID}/strip/-1"), None),
            (format!("/{ID}/strip/1"), Some("e=99")), // spacing too small
            (format!("/{ID}/strip/1"), Some("e=600001")), // too large
            (format!("/{ID}/strip/1"), Some("e=2000&w=1")), // unknown parameter
            (format!("/{ID}/strip/1"), Some("x=2000")),
            (format!("{ID}/0"), Some("w=640")),
        ] {
            assert_eq!(parse(&path, query), None, "{path} {query:?}");
        }
    }
}

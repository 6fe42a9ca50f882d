//! Pictures of the recording for the preview: the frame at a time, as a JPEG
//! of a chosen width ([`FrameServer`]), frame stepping by the stream's own
//! timestamps ([`Timeline`]) and thumbnails along the recording
//! ([`filmstrip()`]).
//!
//! Which frame: the one whose presentation interval `[start, end)` holds the
//! asked time, the end being the next frame's start. Times are recording
//! time: seconds from the recording's first decoded audio sample, the clock
//! of the waveform, the aligner and the export's trim (see `source`).
//!
//! Callers pass a path they resolved themselves (the app maps a job or file
//! id to it); nothing here takes a path from the page.

mod cache;
mod disk_budget;
pub mod filmstrip;
mod picture;
mod proxy;
mod server;
mod source;
mod timeline;

pub use filmstrip::{filmstrip, Filmstrip, FilmstripOptions, Thumbnail};
pub use picture::{MAX_WIDTH, MIN_WIDTH};
pub use proxy::ProxyStatus;
pub use server::{Frame, FrameServer, FrameServerOptions, FrameUse, ServerStats};
pub use source::PictureInfo;
pub use timeline::{FrameSpan, Timeline};

//! `stretch`: changing the song's tempo while keeping its pitch, through
//! libavfilter's `rubberband` (or `atempo` when FFmpeg lacks it), with
//! libavfilter loaded on first use.
//!
//! Why not linked like the other FFmpeg libraries: libavfilter brings 32
//! shared libraries of its own (speech synthesis voices, LAPACK, Vulkan,
//! …), and loading and relocating them cost every start of the program
//! about 25 ms of CPU — a tenth of a copy export's start-up budget — while
//! only an export at a real playback speed change ever needs it.
//!
//! The library is found by the major version that goes with the libavutil
//! the program runs with (FFmpeg releases move all majors together), and
//! refused unless its own version says the same major: the functions below
//! are called through their C signatures, which are stable within a major.

use crate::error::{EngineError, Result};
use ffmpeg_next::ffi;
use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::path::Path;
use std::sync::OnceLock;

type Graph = c_void;
type FilterCtx = c_void;

/// The libavfilter functions used here, resolved once.
struct Api {
    // The library stays loaded for the life of the program: the function
    // pointers below point into it.
    _lib: libloading::Library,
    get_by_name: unsafe extern "C" fn(*const c_char) -> *const c_void,
    graph_alloc: unsafe extern "C" fn() -> *mut Graph,
    graph_free: unsafe extern "C" fn(*mut *mut Graph),
    graph_parse2: unsafe extern "C" fn(
        *mut Graph,
        *const c_char,
        *mut *mut c_void,
        *mut *mut c_void,
    ) -> c_int,
    inout_free: unsafe extern "C" fn(*mut *mut c_void),
    graph_config: unsafe extern "C" fn(*mut Graph, *mut c_void) -> c_int,
    graph_get_filter: unsafe extern "C" fn(*mut Graph, *const c_char) -> *mut FilterCtx,
    buffersrc_write_frame: unsafe extern "C" fn(*mut FilterCtx, *const ffi::AVFrame) -> c_int,
    buffersink_get_frame: unsafe extern "C" fn(*mut FilterCtx, *mut ffi::AVFrame) -> c_int,
}

/// libavfilter's major version for the running libavutil (FFmpeg 4: 56 → 7,
/// 5: 57 → 8, 6: 58 → 9, 7: 59 → 10).
pub fn expected_major(avutil_major: u32) -> u32 {
    avutil_major.saturating_sub(49)
}

/// [`expected_major`] of the libavutil this program runs with.
fn running_major() -> u32 {
    // SAFETY: avutil_version has no preconditions.
    expected_major(unsafe { ffi::avutil_version() } >> 16)
}

/// File names to try for libavfilter of `major`, most specific first.
pub fn library_names(major: u32) -> Vec<String> {
    if cfg!(target_os = "windows") {
        vec![format!("avfilter-{major}.dll")]
    } else if cfg!(target_os = "macos") {
        vec![
            format!("libavfilter.{major}.dylib"),
            "libavfilter.dylib".to_string(),
        ]
    } else {
        vec![
            format!("libavfilter.so.{major}"),
            "libavfilter.so".to_string(),
        ]
    }
}

fn load() -> std::result::Result<Api, String> {
    let major = running_major();
    let mut tried = Vec::new();
    for name in library_names(major) {
        // SAFETY: loading FFmpeg's own library runs only its (and its
        // dependencies') initialisers, which have no preconditions.
        let lib = match unsafe { libloading::Library::new(&name) } {
            Ok(lib) => lib,
            Err(e) => {
                tried.push(format!("{name}: {e}"));
                continue;
            }
        };
        // SAFETY: the symbols are looked up with their C signatures (from
        // libavfilter's headers, unchanged across the majors above); the
        // version is checked before any other is called.
        unsafe {
            let version: libloading::Symbol<unsafe extern "C" fn() -> c_uint> = lib
                .get(b"avfilter_version\0")
                .map_err(|e| format!("{name}: {e}"))?;
            let found = version() >> 16;
            if found != major {
                tried.push(format!(
                    "{name} is version {found}, FFmpeg's other libraries need {major}"
                ));
                continue;
            }
            macro_rules! sym {
                ($n:literal) => {
                    *lib.get(concat!($n, "\0").as_bytes())
                        .map_err(|e| format!("{name}: {e}"))?
                };
            }
            return Ok(Api {
                get_by_name: sym!("avfilter_get_by_name"),
                graph_alloc: sym!("avfilter_graph_alloc"),
                graph_free: sym!("avfilter_graph_free"),
                graph_parse2: sym!("avfilter_graph_parse2"),
                inout_free: sym!("avfilter_inout_free"),
                graph_config: sym!("avfilter_graph_config"),
                graph_get_filter: sym!("avfilter_graph_get_filter"),
                buffersrc_write_frame: sym!("av_buffersrc_write_frame"),
                buffersink_get_frame: sym!("av_buffersink_get_frame"),
                _lib: lib,
            });
        }
    }
    Err(tried.join("; "))
}

fn api() -> std::result::Result<&'static Api, String> {
    static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// A filter graph `abuffer → rubberband|atempo → aformat → abuffersink`
/// over planar f32 audio.
pub struct Stretcher {
    api: &'static Api,
    graph: *mut Graph,
    src: *mut FilterCtx,
    sink: *mut FilterCtx,
}

// SAFETY: the graph is used from one thread at a time (it moves with the
// encoder to its thread); libavfilter keeps no thread-local state for it.
unsafe impl Send for Stretcher {}

impl Drop for Stretcher {
    fn drop(&mut self) {
        // SAFETY: the graph was allocated by avfilter_graph_alloc and is
        // freed once, with every filter in it.
        unsafe { (self.api.graph_free)(&mut self.graph) };
    }
}

impl Stretcher {
    /// Plays `1 / rate` times faster (`rate > 1`: more samples out), audio
    /// of `sample_rate` Hz and `layout` in and out.
    pub fn new(rate: f64, sample_rate: u32, layout_bits: u64, path: &Path) -> Result<Self> {
        let api = api().map_err(|reason| EngineError::Unsupported {
            path: path.to_path_buf(),
            reason: format!(
                "changing the song's speed while keeping its pitch needs FFmpeg's libavfilter, which could not be loaded ({reason}); install it (Debian/Ubuntu: libavfilter{}) or export with --retime resample",
                running_major()
            ),
        })?;
        let err = |what: &str, code: c_int| {
            EngineError::media(
                path,
                format!("tempo filter: {what}: {}", ffmpeg_next::Error::from(code)),
            )
        };
        // Rubber Band keeps the timing closest (a few ms on noise-like
        // material, where atempo's grains drift by ~10 ms); atempo is the
        // fallback for FFmpeg builds without it.
        // SAFETY: a NUL-terminated name.
        let has_rubberband = unsafe { !(api.get_by_name)(c"rubberband".as_ptr()).is_null() };
        let stretcher = if has_rubberband {
            format!("rubberband=tempo={:.12}", 1.0 / rate)
        } else {
            format!("atempo=tempo={:.12}", 1.0 / rate)
        };
        let spec = format!(
            "abuffer@in=time_base=1/{sr}:sample_rate={sr}:sample_fmt=fltp:channel_layout=0x{bits:x},\
             {stretcher},aformat=sample_fmts=fltp:channel_layouts=0x{bits:x},abuffersink@out",
            sr = sample_rate,
            bits = layout_bits
        );
        let spec = CString::new(spec).map_err(|_| err("spec", ffi::AVERROR(ffi::EINVAL)))?;
        // SAFETY: every pointer passed is valid or null as the API allows;
        // the graph is owned by `me` from here on (freed on every error).
        unsafe {
            let graph = (api.graph_alloc)();
            if graph.is_null() {
                return Err(err("allocation", ffi::AVERROR(ffi::ENOMEM)));
            }
            let mut me = Stretcher {
                api,
                graph,
                src: std::ptr::null_mut(),
                sink: std::ptr::null_mut(),
            };
            let mut inputs: *mut c_void = std::ptr::null_mut();
            let mut outputs: *mut c_void = std::ptr::null_mut();
            let r = (api.graph_parse2)(me.graph, spec.as_ptr(), &mut inputs, &mut outputs);
            // A closed chain leaves no open pads; free what there is anyway.
            (api.inout_free)(&mut inputs);
            (api.inout_free)(&mut outputs);
            if r < 0 {
                return Err(err("parse", r));
            }
            let r = (api.graph_config)(me.graph, std::ptr::null_mut());
            if r < 0 {
                return Err(err("configure", r));
            }
            me.src = (api.graph_get_filter)(me.graph, c"abuffer@in".as_ptr());
            me.sink = (api.graph_get_filter)(me.graph, c"abuffersink@out".as_ptr());
            if me.src.is_null() || me.sink.is_null() {
                return Err(err("its ends", ffi::AVERROR(ffi::EINVAL)));
            }
            Ok(me)
        }
    }

    /// Feeds a frame (planar f32, the graph's rate and layout); `None` ends
    /// the input.
    pub fn push(&mut self, frame: Option<&ffmpeg_next::frame::Audio>, path: &Path) -> Result<()> {
        let ptr = frame.map_or(std::ptr::null(), |f| unsafe { f.as_ptr() });
        // SAFETY: `src` is the graph's buffer source; the frame's data is
        // referenced (not taken) by av_buffersrc_write_frame; null = EOF.
        let r = unsafe { (self.api.buffersrc_write_frame)(self.src, ptr) };
        if r < 0 {
            return Err(EngineError::media(
                path,
                format!("tempo filter: {}", ffmpeg_next::Error::from(r)),
            ));
        }
        Ok(())
    }

    /// Takes the next stretched frame, if one is ready.
    pub fn pull(&mut self, frame: &mut ffmpeg_next::frame::Audio) -> bool {
        // SAFETY: `sink` is the graph's buffer sink; the frame is
        // unreferenced first by av_buffersink_get_frame's contract.
        unsafe {
            ffi::av_frame_unref(frame.as_mut_ptr());
            (self.api.buffersink_get_frame)(self.sink, frame.as_mut_ptr()) >= 0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors_follow_avutil() {
        assert_eq!(expected_major(57), 8);
        assert_eq!(expected_major(58), 9);
        assert_eq!(expected_major(59), 10);
        assert!(library_names(8)[0].contains('8'));
    }

    #[test]
    fn loads_and_stretches_a_tone_to_the_expected_length() {
        crate::init();
        // The build needs FFmpeg's development files, which bring
        // libavfilter: failing to load it here is a broken install.
        if let Err(e) = api() {
            panic!("libavfilter did not load: {e}");
        }
        let sr = 44_100u32;
        let layout = ffmpeg_next::ChannelLayout::STEREO;
        let rate = 1.05; // 5 % slower playback: 5 % more samples
        let mut s = Stretcher::new(rate, sr, layout.bits(), Path::new("test")).unwrap();
        let n_in = sr as usize * 4;
        let mut fed = 0;
        let mut out = 0usize;
        let mut frame = ffmpeg_next::frame::Audio::empty();
        while fed < n_in {
            let n = 4096.min(n_in - fed);
            let mut f = ffmpeg_next::frame::Audio::new(
                ffmpeg_next::format::Sample::F32(ffmpeg_next::format::sample::Type::Planar),
                n,
                layout,
            );
            f.set_rate(sr);
            f.set_pts(Some(fed as i64));
            for c in 0..2 {
                for (i, v) in f.plane_mut::<f32>(c)[..n].iter_mut().enumerate() {
                    let t = (fed + i) as f32 / sr as f32;
                    *v = 0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin();
                }
            }
            s.push(Some(&f), Path::new("test")).unwrap();
            fed += n;
            while s.pull(&mut frame) {
                out += frame.samples();
            }
        }
        s.push(None, Path::new("test")).unwrap();
        while s.pull(&mut frame) {
            out += frame.samples();
        }
        let expected = n_in as f64 * rate;
        assert!(
            (out as f64 - expected).abs() < 0.01 * expected,
            "{out} samples out, expected about {expected:.0}"
        );
    }
}

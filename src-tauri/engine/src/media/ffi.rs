//! `ffi`: the engine's raw FFmpeg calls, each behind a safe function.
//!
//! Everything else goes through ffmpeg-next's safe API or through these
//! wrappers, so the `unsafe` blocks (and the reasons they are sound) stand in
//! one place. libavfilter, which is loaded at run time, has its own binding
//! (`export::audio::stretch`).

use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;
use std::ffi::CStr;

// ---------------------------------------------------------------------------
// Inputs

/// The demuxers an input may be opened with: the containers phones,
/// cameras and music files come in. Playlist and reference formats (HLS,
/// DASH, ffconcat, image sequences, SDP…) are left out: they name other files
/// or URLs, which FFmpeg would then open on the file's behalf.
const DEMUXER_WHITELIST: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,dv,asf,flv,\
     wav,w64,aiff,caf,mp3,aac,ac3,eac3,flac,ogg,wv,ape,amr";

/// Opens a local file with FFmpeg: `path` is the file's name as the OS
/// spells it (bytes, not necessarily UTF-8), read through the `file`
/// protocol only and with the demuxers of [`DEMUXER_WHITELIST`] only, so a
/// file can never make FFmpeg open a URL or another file. With
/// `find_stream_info`, the streams' first packets are read to complete their
/// parameters (`avformat_find_stream_info`); without it only the container's
/// header is read.
pub(crate) fn open_local_input(
    path: &CStr,
    find_stream_info: bool,
) -> std::result::Result<ffmpeg::format::context::Input, ffmpeg::Error> {
    let mut url = b"file:".to_vec();
    url.extend_from_slice(path.to_bytes());
    let url = std::ffi::CString::new(url).map_err(|_| ffmpeg::Error::InvalidData)?;
    let mut options = ffmpeg::Dictionary::new();
    options.set("protocol_whitelist", "file");
    options.set("format_whitelist", DEMUXER_WHITELIST);
    let mut ps = std::ptr::null_mut();
    // SAFETY: the dictionary's pointer, owned here until handed back below.
    let mut opts = unsafe { options.disown() };
    // SAFETY: a valid C URL and an owned option dictionary (what FFmpeg did
    // not consume is handed back and freed below); on success `ps` is an
    // opened context that the wrapper closes on drop; on failure FFmpeg
    // frees it and leaves it null.
    let r = unsafe { ffi::avformat_open_input(&mut ps, url.as_ptr(), std::ptr::null(), &mut opts) };
    // SAFETY: the dictionary FFmpeg handed back (or null), owned here.
    drop(unsafe { ffmpeg::Dictionary::own(opts) });
    if r < 0 {
        return Err(ffmpeg::Error::from(r));
    }
    if find_stream_info {
        // SAFETY: `ps` was just opened; closed here on failure.
        let r = unsafe { ffi::avformat_find_stream_info(ps, std::ptr::null_mut()) };
        if r < 0 {
            // SAFETY: closing the context opened above.
            unsafe { ffi::avformat_close_input(&mut ps) };
            return Err(ffmpeg::Error::from(r));
        }
    }
    // SAFETY: `ps` was just opened.
    Ok(unsafe { ffmpeg::format::context::Input::wrap(ps) })
}

/// How long a stream's sample index says it lasts, in its time base: the
/// last entry's timestamp plus one average entry spacing. `None` without an
/// index of at least two entries (MP4/MOV list every packet in theirs; most
/// other containers build it while reading).
pub(crate) fn index_span(st: &ffmpeg::format::stream::Stream) -> Option<i64> {
    // SAFETY: the stream is valid while `st` lives; the entries are read
    // at once, before any other call on the context.
    unsafe {
        let p = st.as_ptr() as *mut ffi::AVStream;
        let n = ffi::avformat_index_get_entries_count(p);
        if n < 2 {
            return None;
        }
        let first = ffi::avformat_index_get_entry(p, 0);
        let last = ffi::avformat_index_get_entry(p, n - 1);
        if first.is_null() || last.is_null() {
            return None;
        }
        let (t0, t1) = ((*first).timestamp, (*last).timestamp);
        (t1 > t0).then(|| t1 + (t1 - t0) / i64::from(n - 1))
    }
}

/// Tells the demuxer to drop every stream but `keep`: the other streams'
/// packets (video, for an audio decode) are then skipped cheaply instead of
/// being read out and handed to us. `keep` itself is read again if an
/// earlier selection dropped it.
pub(crate) fn select_stream(ictx: &mut ffmpeg::format::context::Input, keep: usize) {
    select_streams(ictx, &[keep]);
}

/// [`select_stream`] for several streams.
pub(crate) fn select_streams(ictx: &mut ffmpeg::format::context::Input, keep: &[usize]) {
    // SAFETY: the format context and its streams are valid while `ictx` lives.
    unsafe {
        let fc = ictx.as_mut_ptr();
        for i in 0..(*fc).nb_streams as usize {
            (**(*fc).streams.add(i)).discard = if keep.contains(&i) {
                ffi::AVDiscard::AVDISCARD_DEFAULT
            } else {
                ffi::AVDiscard::AVDISCARD_ALL
            };
        }
    }
}

/// Seeks `ictx` to the last keyframe at or before `ts` (in the time base of
/// stream `stream_index`). The caller flushes its decoder.
pub(crate) fn seek_keyframe_before(
    ictx: &mut ffmpeg::format::context::Input,
    stream_index: usize,
    ts: i64,
) -> std::result::Result<(), ffmpeg::Error> {
    // SAFETY: a valid format context; FFmpeg checks the stream index.
    let r = unsafe {
        ffi::av_seek_frame(
            ictx.as_mut_ptr(),
            stream_index as i32,
            ts,
            ffi::AVSEEK_FLAG_BACKWARD,
        )
    };
    if r < 0 {
        Err(ffmpeg::Error::from(r))
    } else {
        Ok(())
    }
}

/// Seeks to the start of the file, for containers that cannot seek by time.
pub(crate) fn seek_file_start(
    ictx: &mut ffmpeg::format::context::Input,
) -> std::result::Result<(), ffmpeg::Error> {
    // SAFETY: a valid format context.
    let r = unsafe { ffi::avformat_seek_file(ictx.as_mut_ptr(), -1, i64::MIN, 0, 0, 0) };
    if r < 0 {
        Err(ffmpeg::Error::from(r))
    } else {
        Ok(())
    }
}

/// In an MP4/MOV with video, the audio packets (a few hundred bytes each)
/// sit between video frames tens of kB long, and the demuxer seeks to each
/// one by the index: read each packet itself instead of a 32 kB buffer
/// around it (a phone video's audio was otherwise read with half the file,
/// 141 MB of 272 on the bench's 3-min case: ~5 % of the alignment's CPU).
/// Other containers are read through, which their demuxers expect.
pub(crate) fn read_packets_directly(ictx: &mut ffmpeg::format::context::Input) {
    if !ictx.format().name().starts_with("mov,") {
        return;
    }
    // SAFETY: the context and its I/O context are valid while `ictx` lives;
    // `direct` only changes how later reads and seeks use the buffer.
    unsafe {
        let fc = ictx.as_mut_ptr();
        if (*fc).nb_streams > 1 && !(*fc).pb.is_null() {
            (*(*fc).pb).direct = 1;
        }
    }
}

// ---------------------------------------------------------------------------
// Codec parameters

/// The plain fields of codec parameters that ffmpeg-next does not expose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ParamFields {
    pub width: i32,
    pub height: i32,
    /// Pixel or sample format; negative while unknown (not yet probed).
    pub format: i32,
    pub sample_rate: i32,
    pub channels: i32,
    /// The channel mask when the layout is a native one, else 0.
    pub channel_mask: u64,
    pub has_extradata: bool,
}

pub(crate) fn param_fields(params: &ffmpeg::codec::Parameters) -> ParamFields {
    // SAFETY: reading plain fields of valid codec parameters.
    unsafe {
        let p = params.as_ptr();
        let layout = &(*p).ch_layout;
        ParamFields {
            width: (*p).width,
            height: (*p).height,
            format: (*p).format,
            sample_rate: (*p).sample_rate,
            channels: layout.nb_channels,
            channel_mask: if layout.order == ffi::AVChannelOrder::AV_CHANNEL_ORDER_NATIVE {
                layout.u.mask
            } else {
                0
            },
            has_extradata: (*p).extradata_size > 0,
        }
    }
}

/// The codec's out-of-band headers (`avcC` for H.264 in MP4), empty if none.
pub(crate) fn extradata(params: &ffmpeg::codec::Parameters) -> Vec<u8> {
    // SAFETY: reading the extradata bytes of valid codec parameters.
    unsafe {
        let p = params.as_ptr();
        if (*p).extradata.is_null() || (*p).extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*p).extradata, (*p).extradata_size as usize).to_vec()
        }
    }
}

/// Codec parameters owned apart from any context (sendable between threads),
/// e.g. a probed stream's, to describe an output stream later.
pub(crate) struct OwnedParams(*mut ffi::AVCodecParameters);

// SAFETY: the parameters are owned exclusively by this value and only read
// through `&self`.
unsafe impl Send for OwnedParams {}
unsafe impl Sync for OwnedParams {}

impl OwnedParams {
    /// A copy of `params`.
    pub fn copy_of(params: &ffmpeg::codec::Parameters) -> Option<Self> {
        // SAFETY: the pointer of valid parameters, read during the call.
        Self::copy_raw(unsafe { params.as_ptr() })
    }

    fn copy_raw(src: *const ffi::AVCodecParameters) -> Option<Self> {
        // SAFETY: allocating fresh parameters and deep-copying valid ones.
        unsafe {
            let p = ffi::avcodec_parameters_alloc();
            if p.is_null() {
                return None;
            }
            let mut owned = Self(p);
            if ffi::avcodec_parameters_copy(owned.0, src) < 0 {
                ffi::avcodec_parameters_free(&mut owned.0);
                return None;
            }
            Some(owned)
        }
    }

    /// `params` with what an opened decoder learnt from the bitstream
    /// (pixel format, profile, level, colour, chroma siting), as
    /// `avformat_find_stream_info` completes a stream's parameters.
    pub fn completed_by(
        params: &ffmpeg::codec::Parameters,
        decoder: &ffmpeg::decoder::Video,
    ) -> Option<Self> {
        let owned = Self::copy_of(params)?;
        // SAFETY: valid parameters owned here and a valid opened decoder.
        let r = unsafe { ffi::avcodec_parameters_from_context(owned.0, decoder.as_ptr()) };
        (r >= 0).then_some(owned)
    }

    /// Codec parameters (ffmpeg-next's type) holding a copy of these.
    pub fn to_parameters(&self) -> ffmpeg::codec::Parameters {
        let mut p = ffmpeg::codec::Parameters::new();
        // SAFETY: both are valid parameters; a failed copy leaves `p` empty.
        unsafe { ffi::avcodec_parameters_copy(p.as_mut_ptr(), self.0) };
        p
    }
}

impl Clone for OwnedParams {
    fn clone(&self) -> Self {
        // An allocation failure aborts, like Rust's own allocations.
        Self::copy_raw(self.0).expect("out of memory")
    }
}

impl Drop for OwnedParams {
    fn drop(&mut self) {
        // SAFETY: owned; freeing sets the pointer to null.
        unsafe { ffi::avcodec_parameters_free(&mut self.0) }
    }
}

impl std::fmt::Debug for OwnedParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: reading a plain field.
        let id = unsafe { (*self.0).codec_id };
        write!(f, "OwnedParams({id:?})")
    }
}

/// Clockwise rotation a player applies, from a stream's display matrix
/// (nine native-endian i32 values); `None` when the matrix says nothing.
pub(crate) fn display_rotation_cw(matrix: &[u8]) -> Option<i32> {
    if matrix.len() < 36 {
        return None;
    }
    let mut m = [0i32; 9];
    for (i, v) in m.iter_mut().enumerate() {
        let b = &matrix[i * 4..i * 4 + 4];
        *v = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
    }
    // SAFETY: `m` is a valid 9-element matrix as the function expects.
    let ccw = unsafe { ffi::av_display_rotation_get(m.as_ptr()) };
    (!ccw.is_nan()).then(|| ((-ccw).round() as i32).rem_euclid(360))
}

/// FFmpeg's name for a channel layout (`stereo`, `5.1`…).
pub(crate) fn layout_name(layout: ffmpeg::ChannelLayout) -> String {
    let mut buf = [0 as std::os::raw::c_char; 64];
    // SAFETY: the buffer is valid for its length; FFmpeg NUL-terminates.
    unsafe {
        ffi::av_get_channel_layout_string(
            buf.as_mut_ptr(),
            buf.len() as i32,
            layout.channels(),
            layout.bits(),
        );
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    }
}

// ---------------------------------------------------------------------------
// Outputs

/// Whether MP4 can hold this video codec.
pub(crate) fn mp4_accepts(codec_id: ffmpeg::codec::Id) -> bool {
    crate::init();
    // SAFETY: looking up a muxer by a valid C string; the query is read-only.
    unsafe {
        let of = ffi::av_guess_format(c"mp4".as_ptr(), std::ptr::null(), std::ptr::null());
        if of.is_null() {
            return false;
        }
        ffi::avformat_query_codec(of, codec_id.into(), ffi::FF_COMPLIANCE_NORMAL) == 1
    }
}

fn mktag(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from(a) | (u32::from(b) << 8) | (u32::from(c) << 16) | (u32::from(d) << 24)
}

/// Adds a stream to `octx` that receives the input stream's packets as they
/// are: the codec parameters `params`, and the input stream's time base,
/// frame rate, display matrix (phone rotation), colour metadata, language and
/// handler name. HEVC is tagged `hvc1` so Apple players open it.
pub(crate) fn add_copied_stream(
    octx: &mut ffmpeg::format::context::Output,
    ist: &ffmpeg::format::stream::Stream,
    params: &OwnedParams,
) -> std::result::Result<usize, ffmpeg::Error> {
    // SAFETY: all pointers come from live FFmpeg contexts; the new stream is
    // owned by `octx`; side data is copied byte for byte with its size.
    unsafe {
        let ost = ffi::avformat_new_stream(octx.as_mut_ptr(), std::ptr::null());
        if ost.is_null() {
            return Err(ffmpeg::Error::Other {
                errno: libc::ENOMEM,
            });
        }
        let ist_ptr = ist.as_ptr();
        let r = ffi::avcodec_parameters_copy((*ost).codecpar, params.0);
        if r < 0 {
            return Err(ffmpeg::Error::from(r));
        }
        let par = (*ost).codecpar;
        (*par).codec_tag = if (*par).codec_id == ffi::AVCodecID::AV_CODEC_ID_HEVC {
            mktag(b'h', b'v', b'c', b'1')
        } else {
            0
        };
        (*ost).time_base = (*ist_ptr).time_base;
        (*ost).avg_frame_rate = (*ist_ptr).avg_frame_rate;
        (*ost).r_frame_rate = (*ist_ptr).r_frame_rate;
        (*ost).sample_aspect_ratio = (*ist_ptr).sample_aspect_ratio;
        for i in 0..(*ist_ptr).nb_side_data as usize {
            let sd = (*ist_ptr).side_data.add(i);
            let dst = ffi::av_stream_new_side_data(ost, (*sd).type_, (*sd).size);
            if !dst.is_null() {
                std::ptr::copy_nonoverlapping((*sd).data, dst, (*sd).size);
            }
        }
        ffi::av_dict_copy(&mut (*ost).metadata, (*ist_ptr).metadata, 0);
        Ok((*ost).index as usize)
    }
}

/// Replaces an output stream's codec extradata (e.g. an `avcC` with extra
/// parameter sets).
pub(crate) fn set_extradata(
    octx: &mut ffmpeg::format::context::Output,
    index: usize,
    data: &[u8],
) -> std::result::Result<(), ffmpeg::Error> {
    // SAFETY: the stream exists; the buffer is allocated with FFmpeg's
    // allocator and the padding FFmpeg requires, and owned by the parameters.
    unsafe {
        let fc = octx.as_mut_ptr();
        if index >= (*fc).nb_streams as usize {
            return Err(ffmpeg::Error::StreamNotFound);
        }
        let par = (**(*fc).streams.add(index)).codecpar;
        let pad = ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        let buf = ffi::av_mallocz(data.len() + pad) as *mut u8;
        if buf.is_null() {
            return Err(ffmpeg::Error::Other {
                errno: libc::ENOMEM,
            });
        }
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
        ffi::av_freep(&mut (*par).extradata as *mut *mut u8 as *mut std::ffi::c_void);
        (*par).extradata = buf;
        (*par).extradata_size = data.len() as i32;
    }
    Ok(())
}

/// A zero codec tag, so the muxer picks its own (`mp4a` for AAC in MP4).
pub(crate) fn clear_codec_tag(stream: &mut ffmpeg::format::stream::StreamMut) {
    // SAFETY: the stream's codec parameters are valid.
    unsafe { (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0 };
}

/// Lets written packet data go straight to the sink instead of being copied
/// through FFmpeg's I/O buffer first (the sink buffers for itself).
pub(crate) fn write_directly(io: &mut ffmpeg::format::context::StreamIo) {
    // SAFETY: a valid write context owned by `io`, not in use yet; `direct`
    // only changes how avio_write and avio_seek reach the callbacks.
    unsafe { (*io.as_mut_ptr()).direct = 1 };
}

// ---------------------------------------------------------------------------
// Encoders

/// Gives a video encoder the colour description and pixel aspect of the
/// stream it re-encodes.
pub(crate) fn copy_colour(
    params: &ffmpeg::codec::Parameters,
    enc: &mut ffmpeg::encoder::video::Video,
) {
    // SAFETY: copying plain fields between valid parameters and a valid,
    // not yet opened, encoder context.
    unsafe {
        let e = enc.as_mut_ptr();
        let p = params.as_ptr();
        (*e).color_range = (*p).color_range;
        (*e).color_primaries = (*p).color_primaries;
        (*e).color_trc = (*p).color_trc;
        (*e).colorspace = (*p).color_space;
        (*e).chroma_sample_location = (*p).chroma_location;
        (*e).sample_aspect_ratio = (*p).sample_aspect_ratio;
    }
}

/// An opened encoder's out-of-band headers (SPS/PPS for libx264 with
/// global headers), empty if none.
pub(crate) fn encoder_extradata(enc: &ffmpeg::encoder::Video) -> Vec<u8> {
    // SAFETY: reading the extradata of an opened encoder.
    unsafe {
        let e = enc.as_ptr();
        if (*e).extradata.is_null() || (*e).extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*e).extradata, (*e).extradata_size as usize).to_vec()
        }
    }
}

// ---------------------------------------------------------------------------
// Audio samples and packets

/// A raw libswresample context that frees itself.
pub(crate) struct Swr(*mut ffi::SwrContext);

// SAFETY: the context is only used by the thread that owns the `Swr`.
unsafe impl Send for Swr {}

impl Drop for Swr {
    fn drop(&mut self) {
        // SAFETY: allocated by swr_alloc_set_opts, freed once.
        unsafe { ffi::swr_free(&mut self.0) }
    }
}

/// One side of a conversion: layout, sample format, rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SampleSpec {
    pub layout: ffmpeg::ChannelLayout,
    pub format: ffi::AVSampleFormat,
    pub rate: u32,
}

impl Swr {
    pub fn new(from: SampleSpec, to: SampleSpec) -> std::result::Result<Self, ffmpeg::Error> {
        // SAFETY: plain allocation + init; failure returns null / < 0.
        unsafe {
            let ctx = ffi::swr_alloc_set_opts(
                std::ptr::null_mut(),
                to.layout.bits() as i64,
                to.format,
                to.rate as i32,
                from.layout.bits() as i64,
                from.format,
                from.rate as i32,
                0,
                std::ptr::null_mut(),
            );
            if ctx.is_null() {
                return Err(ffmpeg::Error::Other {
                    errno: libc::ENOMEM,
                });
            }
            let swr = Swr(ctx);
            let r = ffi::swr_init(ctx);
            if r < 0 {
                return Err(ffmpeg::Error::from(r));
            }
            Ok(swr)
        }
    }

    /// Over `distance` output samples, adds `delta`: the output then runs
    /// slower or faster than the input by exactly that much.
    pub fn compensate(
        &mut self,
        delta: i32,
        distance: i32,
    ) -> std::result::Result<(), ffmpeg::Error> {
        // SAFETY: a valid, initialised context.
        let r = unsafe { ffi::swr_set_compensation(self.0, delta, distance) };
        if r < 0 {
            Err(ffmpeg::Error::from(r))
        } else {
            Ok(())
        }
    }

    /// Converts the planar f32 samples `input` (one slice per channel, all
    /// of the same length) and appends the output to `out` (one Vec per
    /// output plane).
    pub fn convert_planes(
        &mut self,
        input: &[&[f32]],
        out: &mut [Vec<f32>],
    ) -> std::result::Result<(), ffmpeg::Error> {
        let n = input.first().map_or(0, |c| c.len());
        let ptrs: Vec<*const u8> = input.iter().map(|c| c.as_ptr() as *const u8).collect();
        // SAFETY: one plane per channel, `n` samples each, alive for the call.
        unsafe { self.convert_raw(ptrs.as_ptr(), n, out) }
    }

    /// Converts a decoded frame (any format and layout the context was made
    /// for) and appends the output to `out`.
    pub fn convert_frame(
        &mut self,
        frame: &ffmpeg::frame::Audio,
        out: &mut [Vec<f32>],
    ) -> std::result::Result<(), ffmpeg::Error> {
        // SAFETY: the frame's extended_data has one plane per channel (or
        // one for packed formats), `samples()` each.
        unsafe {
            let data = (*frame.as_ptr()).extended_data as *const *const u8;
            self.convert_raw(data, frame.samples(), out)
        }
    }

    /// Appends what the context still holds, in one call (its delay).
    pub fn flush(&mut self, out: &mut [Vec<f32>]) -> std::result::Result<(), ffmpeg::Error> {
        // SAFETY: a null input flushes.
        unsafe { self.convert_raw(std::ptr::null(), 0, out) }
    }

    /// Appends everything the context still holds, asking until it gives
    /// nothing more (or fails).
    pub fn drain(&mut self, out: &mut [Vec<f32>]) {
        // SAFETY: a null input flushes; at most 4096 samples per call.
        while let Ok(n) = unsafe { self.convert_into(std::ptr::null(), 0, out, 4096) } {
            if n == 0 {
                break;
            }
        }
    }

    /// # Safety
    /// `input` must be null (flush) or point to as many planes as the input
    /// layout has channels (1 for packed formats), each holding `in_count`
    /// samples.
    unsafe fn convert_raw(
        &mut self,
        input: *const *const u8,
        in_count: usize,
        out: &mut [Vec<f32>],
    ) -> std::result::Result<(), ffmpeg::Error> {
        // SAFETY: as the caller promises; querying a valid context.
        unsafe {
            let cap = ffi::swr_get_out_samples(self.0, in_count as i32).max(0) as usize + 64;
            self.convert_into(input, in_count, out, cap).map(|_| ())
        }
    }

    /// # Safety
    /// As [`Swr::convert_raw`]; writes at most `cap` samples per plane.
    unsafe fn convert_into(
        &mut self,
        input: *const *const u8,
        in_count: usize,
        out: &mut [Vec<f32>],
        cap: usize,
    ) -> std::result::Result<usize, ffmpeg::Error> {
        // SAFETY: each output Vec has `cap` spare samples reserved here; the
        // converter writes at most `cap` into each and says how many.
        unsafe {
            let mut ptrs: Vec<*mut u8> = Vec::with_capacity(out.len());
            for ch in out.iter_mut() {
                ch.reserve(cap);
                ptrs.push(ch.as_mut_ptr().add(ch.len()) as *mut u8);
            }
            let n = ffi::swr_convert(
                self.0,
                ptrs.as_mut_ptr(),
                cap as i32,
                input as *mut *const u8,
                in_count as i32,
            );
            if n < 0 {
                return Err(ffmpeg::Error::from(n));
            }
            for ch in out.iter_mut() {
                ch.set_len(ch.len() + n as usize);
            }
            Ok(n as usize)
        }
    }
}

/// `ts` from time base `from` into `1/rate` units, rounded to nearest.
pub(crate) fn ts_to_samples(ts: i64, from: ffmpeg::Rational, rate: i32) -> i64 {
    // SAFETY: pure arithmetic.
    unsafe { ffi::av_rescale_q(ts, from.into(), ffi::AVRational { num: 1, den: rate }) }
}

/// Drops a packet's side data (e.g. the skip-samples of a song's priming,
/// which must not travel into an output whose edit list positions it).
pub(crate) fn strip_side_data(packet: &mut ffmpeg::Packet) {
    // SAFETY: a valid packet; freeing its side data leaves a plain packet.
    unsafe { ffi::av_packet_free_side_data(ffmpeg::packet::Mut::as_mut_ptr(packet)) }
}

/// The FFmpeg build in use: its version string and the libavformat and
/// libavcodec versions (major.minor.micro) loaded at run time.
pub(crate) fn version_info() -> String {
    // SAFETY: av_version_info returns a static NUL-terminated string.
    let build = unsafe { CStr::from_ptr(ffi::av_version_info()) }
        .to_string_lossy()
        .into_owned();
    let v = |n: u32| format!("{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff);
    format!(
        "{build} (libavformat {}, libavcodec {})",
        v(ffmpeg::format::version()),
        v(ffmpeg::codec::version())
    )
}

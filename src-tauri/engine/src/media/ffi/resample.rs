//! Audio samples and packets: libswresample, timestamp rescaling, side data.

use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;

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

/// A copy of a decoded audio frame whose samples are in a buffer of its own,
/// shared with nobody (in particular not with the decoder that made it).
/// Works for any channel layout, unspecified ones included (ffmpeg-next's
/// `Clone` rebuilds the frame from a channel mask and gets no buffer when
/// the layout has none).
pub(crate) fn owned_audio_copy(
    frame: &ffmpeg::frame::Audio,
) -> std::result::Result<ffmpeg::frame::Audio, ffmpeg::Error> {
    // SAFETY: av_frame_clone makes a new frame referencing the same buffers
    // (null on failure); it is then owned by `copy`, which frees it.
    // av_frame_make_writable sees those buffers shared (the caller's frame
    // still holds them) and replaces them with a fresh copy of the samples.
    unsafe {
        let cloned = ffi::av_frame_clone(frame.as_ptr());
        if cloned.is_null() {
            return Err(ffmpeg::Error::Other {
                errno: libc::ENOMEM,
            });
        }
        let mut copy = ffmpeg::frame::Audio::wrap(cloned);
        let r = ffi::av_frame_make_writable(copy.as_mut_ptr());
        if r < 0 {
            return Err(ffmpeg::Error::from(r));
        }
        Ok(copy)
    }
}

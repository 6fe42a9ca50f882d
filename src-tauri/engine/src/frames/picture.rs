//! Turning a decoded frame into a JPEG of a given width: swscale to full-range
//! YUV 4:2:0 at the display size, rotation by whole quarter turns, then
//! FFmpeg's mjpeg encoder, all in process.
//!
//! Why mjpeg: at 640 px it encoded in 4-6 ms a frame against 7-10 ms for the
//! pure-Rust `jpeg-encoder` (which also needs RGB input, a costlier scale:
//! 13 ms against 9 ms), measured on the same decoded 1080p frames (see
//! BENCHMARKS.md, picture preview). WebP encoders are slower still.
//!
//! Colour: the picture keeps its YUV values (range expanded to JPEG's full
//! range); a BT.709 source shown through JPEG's BT.601 matrix shifts hues
//! slightly, which a preview tolerates.

use crate::error::{EngineError, Result};
use ffmpeg_next as ffmpeg;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::software::scaling;
use std::path::Path;

/// Widths a caller may ask for.
pub const MIN_WIDTH: u32 = 16;
pub const MAX_WIDTH: u32 = 3840;

/// mjpeg quantiser scale (2 best .. 31 worst): 4 keeps edges clean at 640 px.
const JPEG_QSCALE: i32 = 4;

/// How much effort the scaling gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScaleQuality {
    /// Bilinear with the full filter (stills, thumbnails).
    Still,
    /// FFmpeg's fast bilinear: about 3x cheaper, slight aliasing (playback).
    Moving,
}

/// Output size for `width` (even), keeping the display aspect `dw:dh`.
pub fn output_size(width: u32, dw: u32, dh: u32) -> (u32, u32) {
    let w = width.clamp(MIN_WIDTH, MAX_WIDTH) & !1;
    let h = (f64::from(w) * f64::from(dh.max(1)) / f64::from(dw.max(1))).round() as u32;
    (w, (h.max(2) + 1) & !1)
}

/// Display size of a coded picture: pixel aspect then rotation applied.
pub fn display_size(coded_w: u32, coded_h: u32, sar: (i32, i32), rotation: i32) -> (u32, u32) {
    let w = (f64::from(coded_w) * f64::from(sar.0) / f64::from(sar.1.max(1))).round() as u32;
    if rotation == 90 || rotation == 270 {
        (coded_h, w.max(1))
    } else {
        (w.max(1), coded_h)
    }
}

/// Scalers and JPEG encoders, kept between frames (one per size in use).
pub(crate) struct PictureMaker {
    scalers: Vec<(ScalerKey, scaling::Context)>,
    encoders: Vec<((u32, u32), ffmpeg::encoder::Video)>,
    frames_encoded: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScalerKey {
    src: (Pixel, u32, u32),
    dst: (u32, u32),
    quality: ScaleQuality,
}

/// A JPEG and its size.
pub(crate) struct Jpeg {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl PictureMaker {
    pub fn new() -> Self {
        Self {
            scalers: Vec::new(),
            encoders: Vec::new(),
            frames_encoded: 0,
        }
    }

    /// `picture` as a JPEG `width` px wide, upright (`rotation` clockwise
    /// degrees applied), pixel aspect `sar` honoured.
    pub fn jpeg(
        &mut self,
        path: &Path,
        picture: &ffmpeg::frame::Video,
        width: u32,
        sar: (i32, i32),
        rotation: i32,
        quality: ScaleQuality,
    ) -> Result<Jpeg> {
        let (cw, ch) = (picture.width(), picture.height());
        if cw == 0 || ch == 0 {
            return Err(EngineError::media(path, "a decoded frame has no size"));
        }
        let (dw, dh) = display_size(cw, ch, sar, rotation);
        let (ow, oh) = output_size(width, dw, dh);
        let quarter = rotation == 90 || rotation == 270;
        let (sw, sh) = if quarter { (oh, ow) } else { (ow, oh) };
        let key = ScalerKey {
            src: (picture.format(), cw, ch),
            dst: (sw, sh),
            quality,
        };
        let scaler = self.scaler(path, key)?;
        let mut scaled = ffmpeg::frame::Video::empty();
        scaler
            .run(picture, &mut scaled)
            .map_err(|e| EngineError::media(path, format!("scaling failed: {e}")))?;
        let upright = if rotation == 0 {
            scaled
        } else {
            rotate(&scaled, rotation)
        };
        let bytes = self.encode(path, upright)?;
        Ok(Jpeg {
            bytes,
            width: ow,
            height: oh,
        })
    }

    fn scaler(&mut self, path: &Path, key: ScalerKey) -> Result<&mut scaling::Context> {
        if let Some(i) = self.scalers.iter().position(|(k, _)| *k == key) {
            return Ok(&mut self.scalers[i].1);
        }
        let flags = match key.quality {
            ScaleQuality::Still => scaling::Flags::BILINEAR,
            ScaleQuality::Moving => scaling::Flags::FAST_BILINEAR,
        };
        let ctx = scaling::Context::get(
            key.src.0,
            key.src.1,
            key.src.2,
            Pixel::YUVJ420P,
            key.dst.0,
            key.dst.1,
            flags,
        )
        .map_err(|e| EngineError::Unsupported {
            path: path.to_path_buf(),
            reason: format!("cannot scale pictures of format {:?}: {e}", key.src.0),
        })?;
        if self.scalers.len() >= 4 {
            self.scalers.remove(0);
        }
        self.scalers.push((key, ctx));
        let last = self.scalers.len() - 1;
        Ok(&mut self.scalers[last].1)
    }

    fn encode(&mut self, path: &Path, mut picture: ffmpeg::frame::Video) -> Result<Vec<u8>> {
        let size = (picture.width(), picture.height());
        let fail =
            |e: ffmpeg::Error| EngineError::media(path, format!("JPEG encoding failed: {e}"));
        let i = match self.encoders.iter().position(|(s, _)| *s == size) {
            Some(i) => i,
            None => {
                if self.encoders.len() >= 4 {
                    self.encoders.remove(0);
                }
                self.encoders
                    .push((size, open_jpeg_encoder(size).map_err(fail)?));
                self.encoders.len() - 1
            }
        };
        // The encoder wants increasing timestamps; they mean nothing here.
        self.frames_encoded += 1;
        picture.set_pts(Some(self.frames_encoded));
        // SAFETY: setting a plain field of an owned frame.
        unsafe { (*picture.as_mut_ptr()).quality = JPEG_QSCALE * ffmpeg::ffi::FF_QP2LAMBDA };
        let enc = &mut self.encoders[i].1;
        enc.send_frame(&picture).map_err(fail)?;
        let mut packet = ffmpeg::Packet::empty();
        enc.receive_packet(&mut packet).map_err(fail)?;
        Ok(packet.data().map(<[u8]>::to_vec).unwrap_or_default())
    }
}

fn open_jpeg_encoder(
    size: (u32, u32),
) -> std::result::Result<ffmpeg::encoder::Video, ffmpeg::Error> {
    let codec =
        ffmpeg::encoder::find(ffmpeg::codec::Id::MJPEG).ok_or(ffmpeg::Error::EncoderNotFound)?;
    let mut enc = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()?;
    enc.set_width(size.0);
    enc.set_height(size.1);
    enc.set_format(Pixel::YUVJ420P);
    enc.set_time_base((1, 30));
    enc.set_flags(ffmpeg::codec::Flags::QSCALE);
    enc.set_global_quality(JPEG_QSCALE * ffmpeg::ffi::FF_QP2LAMBDA);
    enc.open_as(codec)
}

/// `src` (planar YUV) turned by `rotation` degrees clockwise (90, 180, 270).
fn rotate(src: &ffmpeg::frame::Video, rotation: i32) -> ffmpeg::frame::Video {
    let quarter = rotation == 90 || rotation == 270;
    let (w, h) = if quarter {
        (src.height(), src.width())
    } else {
        (src.width(), src.height())
    };
    let mut dst = ffmpeg::frame::Video::new(src.format(), w, h);
    for plane in 0..src.planes() {
        let (sw, sh) = (
            src.plane_width(plane) as usize,
            src.plane_height(plane) as usize,
        );
        let (ss, ds) = (src.stride(plane), dst.stride(plane));
        let s = src.data(plane);
        let d = dst.data_mut(plane);
        let (dw, dh) = if quarter { (sh, sw) } else { (sw, sh) };
        for y in 0..dh {
            let row = &mut d[y * ds..y * ds + dw];
            for (x, px) in row.iter_mut().enumerate() {
                let (sx, sy) = match rotation {
                    90 => (y, sh - 1 - x),
                    180 => (sw - 1 - x, sh - 1 - y),
                    _ => (sw - 1 - y, x),
                };
                *px = s[sy * ss + sx];
            }
        }
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(w: u32, h: u32) -> ffmpeg::frame::Video {
        let mut f = ffmpeg::frame::Video::new(Pixel::YUVJ420P, w, h);
        let stride = f.stride(0);
        let d = f.data_mut(0);
        for y in 0..h as usize {
            for x in 0..w as usize {
                d[y * stride + x] = (y * w as usize + x) as u8;
            }
        }
        f
    }

    #[test]
    fn quarter_turns_move_corners_where_a_player_shows_them() {
        crate::init();
        let src = gray(4, 2); // luma rows: [0 1 2 3] [4 5 6 7]
        let at = |f: &ffmpeg::frame::Video, x: usize, y: usize| f.data(0)[y * f.stride(0) + x];
        let r90 = rotate(&src, 90);
        assert_eq!((r90.width(), r90.height()), (2, 4));
        // Clockwise: the bottom-left corner comes to the top-left.
        assert_eq!([at(&r90, 0, 0), at(&r90, 1, 0), at(&r90, 0, 3)], [4, 0, 7]);
        let r180 = rotate(&src, 180);
        assert_eq!([at(&r180, 0, 0), at(&r180, 3, 1)], [7, 0]);
        let r270 = rotate(&src, 270);
        assert_eq!((r270.width(), r270.height()), (2, 4));
        assert_eq!(
            [at(&r270, 0, 0), at(&r270, 1, 0), at(&r270, 1, 3)],
            [3, 7, 4]
        );
    }

    #[test]
    fn sizes_keep_the_display_aspect_and_stay_even() {
        assert_eq!(output_size(640, 1920, 1080), (640, 360));
        assert_eq!(output_size(641, 1920, 1080), (640, 360));
        assert_eq!(output_size(160, 1080, 1920), (160, 284));
        assert_eq!(output_size(1, 100, 100), (16, 16));
        assert_eq!(display_size(1920, 1080, (1, 1), 90), (1080, 1920));
        assert_eq!(display_size(1440, 1080, (4, 3), 0), (1920, 1080));
    }
}

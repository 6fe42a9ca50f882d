//! The demo video's picture, drawn straight into YUV 4:2:0 planes: a dark
//! drifting background, a "dancer" block that jumps to a new place on every
//! beat the recording hears, and a strip of four lamps showing the beat in
//! the bar (so the picture shows the class's timing, as a real one would).

pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 360;
pub const FPS: i32 = 30;

const DANCER_W: usize = 56;
const DANCER_H: usize = 120;
const STRIP_H: usize = 24;

/// The beats as the recording hears them, to draw the picture from.
pub struct Picture {
    /// Beat times in recording time, seconds; every fourth is a downbeat.
    pub beats_s: Vec<f64>,
}

/// The planes of a YUV 4:2:0 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    Y,
    U,
    V,
}

impl Plane {
    pub const ALL: [Plane; 3] = [Plane::Y, Plane::U, Plane::V];
}

impl Picture {
    /// The last beat at or before `t`: its index and how long ago it was.
    fn last_beat(&self, t: f64) -> Option<(usize, f64)> {
        let i = self.beats_s.partition_point(|&b| b <= t);
        i.checked_sub(1).map(|k| (k, t - self.beats_s[k]))
    }

    /// Draws one plane of the frame at recording time `t` into `data`
    /// (lines `stride` bytes apart).
    pub fn draw(&self, t: f64, plane: Plane, data: &mut [u8], stride: usize) {
        let (w, h) = (WIDTH as usize, HEIGHT as usize);
        let beat = self.last_beat(t);
        let flash = beat.map_or(0.0, |(_, ago)| (-ago * 6.0).exp());
        let (x, y) = match beat {
            Some((k, _)) => dancer_place(k),
            None => ((w - DANCER_W) / 2, h - STRIP_H - DANCER_H - 20),
        };
        let dancer = (x, y, DANCER_W, DANCER_H);
        match plane {
            Plane::Y => {
                background(t, data, stride);
                fill_rect(data, stride, dancer, (150.0 + 90.0 * flash) as u8);
                let lamp_w = w / 4;
                for lamp in 0..4 {
                    let lit = beat.is_some_and(|(k, _)| k % 4 == lamp);
                    let l = if lit {
                        (70.0 + 170.0 * flash.max(0.3)) as u8
                    } else {
                        55
                    };
                    let rect = (lamp * lamp_w + 4, h - STRIP_H, lamp_w - 8, STRIP_H - 4);
                    fill_rect(data, stride, rect, l);
                }
            }
            // A dark blue room and a warm yellow dancer.
            Plane::U | Plane::V => {
                let (room, warm) = if plane == Plane::U {
                    (150, 40)
                } else {
                    (118, 165)
                };
                fill_rect(data, stride, (0, 0, w / 2, h / 2), room);
                fill_rect(
                    data,
                    stride,
                    (x / 2, y / 2, DANCER_W / 2, DANCER_H / 2),
                    warm,
                );
            }
        }
    }
}

/// Dark luma with slow waves drifting across.
fn background(t: f64, data: &mut [u8], stride: usize) {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let across: Vec<f64> = (0..w)
        .map(|col| (col as f64 / 90.0 + t * 0.4).sin())
        .collect();
    for row in 0..h {
        let down = (row as f64 / 70.0).cos();
        for (px, a) in data[row * stride..][..w].iter_mut().zip(&across) {
            *px = (38.0 + (a + down) * 8.0) as u8;
        }
    }
}

/// Where the dancer stands after beat `k`: a fixed pseudo-random place.
fn dancer_place(k: usize) -> (usize, usize) {
    let hash = (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    let span_x = WIDTH as usize - DANCER_W - 40;
    let span_y = HEIGHT as usize - STRIP_H - DANCER_H - 30;
    // Even coordinates keep the chroma block aligned with the luma one.
    let x = (20 + hash as usize % span_x) & !1;
    let y = (10 + (hash >> 16) as usize % span_y) & !1;
    (x, y)
}

fn fill_rect(
    plane: &mut [u8],
    stride: usize,
    (x, y, w, h): (usize, usize, usize, usize),
    value: u8,
) {
    for row in y..y + h {
        plane[row * stride + x..][..w].fill(value);
    }
}

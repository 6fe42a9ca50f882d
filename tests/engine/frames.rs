//! The picture preview's engine on generated videos whose frames carry their
//! own index: a 4x4 grid of black/white blocks, block 0 always white and
//! block 3 always black (they tell the orientation), the 14 others the bits
//! of the frame number. Every frame served is decoded back from its JPEG and
//! its number read from the pixels.

mod common;

use beatsync_engine::frames::filmstrip;
use beatsync_engine::frames::{FilmstripOptions, FrameServer, FrameServerOptions, FrameUse};
use beatsync_engine::{CancelToken, EngineError};
use common::{ffmpeg, path_str, tmp};
use ffmpeg_next as ffmpeg;
use std::path::{Path, PathBuf};

const FPS: f64 = 30.0;

// The app keeps servers in shared state and calls them from protocol threads.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<FrameServer>();
};
/// Frames per GOP in the fixtures (x264 without scene-cut keyframes).
const GOP: usize = 15;

/// The frame-number code as a geq luma expression over a `w`x`h` picture.
fn code_expr(w: u32, h: u32) -> String {
    let (bw, bh) = (w / 4, h / 4);
    format!(
        "st(0,floor(X/{bw})+4*floor(Y/{bh}));\
         if(eq(ld(0),0),255,if(eq(ld(0),3),0,\
         255*mod(floor(N/pow(2,ld(0)-1-gt(ld(0),3))),2)))"
    )
}

/// A coded H.264 MP4 of `seconds` at 30 fps, GOP 15, with B-frames;
/// `extra_vf` is applied after the code (e.g. timestamps), `extra` before
/// the output name (e.g. rotation metadata).
fn coded_video(dir: &Path, name: &str, seconds: f64, extra_vf: &str, extra: &[&str]) -> PathBuf {
    let p = dir.join(name);
    let src = format!("color=c=black:s=256x192:r=30:d={seconds}");
    let vf = format!("geq=lum='{}':cb=128:cr=128{extra_vf}", code_expr(256, 192));
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        &src,
        "-vf",
        &vf,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "12",
        "-bf",
        "3",
        "-x264-params",
        "keyint=15:min-keyint=15:scenecut=0",
        "-pix_fmt",
        "yuv420p",
    ];
    args.extend_from_slice(extra);
    args.push(path_str(&p));
    ffmpeg(&args);
    p
}

/// Luma plane of a JPEG, decoded in process.
fn luma(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
    beatsync_engine::init();
    let codec = ffmpeg::decoder::find(ffmpeg::codec::Id::MJPEG).expect("mjpeg decoder");
    let mut dec = ffmpeg::codec::context::Context::new_with_codec(codec)
        .decoder()
        .video()
        .expect("open mjpeg decoder");
    dec.send_packet(&ffmpeg::Packet::copy(jpeg))
        .expect("send jpeg");
    let mut f = ffmpeg::frame::Video::empty();
    dec.receive_frame(&mut f).expect("decode jpeg");
    let (w, h, stride) = (f.width() as usize, f.height() as usize, f.stride(0));
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        out.extend_from_slice(&f.data(0)[y * stride..y * stride + w]);
    }
    (w, h, out)
}

/// The frame number coded in a picture shown turned by `rotation` degrees
/// clockwise; panics when the orientation markers are not where they belong.
fn read_code(jpeg: &[u8], rotation: i32) -> u32 {
    let (w, h, px) = luma(jpeg);
    let block = |b: u32| -> bool {
        // Centre of block b in the coded picture, as fractions (u, v).
        let u = (f64::from(b % 4) + 0.5) / 4.0;
        let v = (f64::from(b / 4) + 0.5) / 4.0;
        let (x, y) = match rotation {
            90 => (1.0 - v, u),
            180 => (1.0 - u, 1.0 - v),
            270 => (v, 1.0 - u),
            _ => (u, v),
        };
        let (cx, cy) = ((x * w as f64) as usize, (y * h as f64) as usize);
        let mut sum = 0u32;
        for dy in 0..3 {
            for dx in 0..3 {
                sum += u32::from(px[(cy + dy - 1) * w + cx + dx - 1]);
            }
        }
        sum / 9 > 128
    };
    assert!(block(0) && !block(3), "orientation markers misplaced");
    let mut n = 0;
    for b in 1..16u32 {
        if b == 3 {
            continue;
        }
        let bit = b - 1 - u32::from(b > 3);
        if block(b) {
            n |= 1 << bit;
        }
    }
    n
}

fn open(p: &Path) -> FrameServer {
    FrameServer::open(p, &FrameServerOptions::default()).expect("open the frame server")
}

fn shown(server: &FrameServer, at_s: f64, rotation: i32) -> u32 {
    let f = server.frame(at_s, 128, FrameUse::Still).expect("frame");
    read_code(&f.jpeg, rotation)
}

#[test]
fn the_frame_at_a_time_is_the_one_whose_interval_holds_it() {
    let d = tmp();
    let v = coded_video(d.path(), "cfr.mp4", 4.0, "", &[]);
    let server = open(&v);
    let info = server.info().clone();
    assert_eq!(
        (info.display_width, info.display_height, info.rotation),
        (256, 192, 0)
    );
    assert!(info.origin_s.abs() < 1e-9, "no sound: origin 0");
    // Out of order, across GOPs (each a seek), back and forth.
    for k in [0u32, 61, 7, 119, 45, 44, 15, 14, 16, 90, 3, 104] {
        let mid = (f64::from(k) + 0.5) / FPS;
        assert_eq!(shown(&server, mid, 0), k, "middle of frame {k}");
        // At the exact start of frame k (the 1/15360 s time base holds k/30
        // exactly): frame k, not k-1 (±0 at boundaries).
        assert_eq!(
            shown(&server, f64::from(k) / FPS, 0),
            k,
            "start of frame {k}"
        );
        if k > 0 {
            let before = f64::from(k) / FPS - 1e-4;
            assert_eq!(shown(&server, before, 0), k - 1, "just before frame {k}");
        }
    }
    let f = server
        .frame(61.5 / FPS, 128, FrameUse::Still)
        .expect("frame");
    assert!((f.start_s - 61.0 / FPS).abs() < 1e-6 && (f.end_s - 62.0 / FPS).abs() < 1e-6);
    assert_eq!((f.width, f.height), (128, 96));
    // Before the picture: the first frame; after it: the last.
    assert_eq!(shown(&server, -2.0, 0), 0);
    assert_eq!(shown(&server, 99.0, 0), 119);
}

/// A seek decodes from the keyframe without the frames nothing refers to
/// (B-frames here) until shortly before the target: the frame shown is the
/// same, byte for byte, as the one a full decode from the start gives.
#[test]
fn a_seek_skipping_unreferenced_frames_shows_the_fully_decoded_frame() {
    let d = tmp();
    let params = [
        "-x264-params",
        "keyint=60:min-keyint=60:scenecut=0:b-pyramid=none",
    ];
    let v = coded_video(d.path(), "gop60.mp4", 4.0, "", &params);
    let full = open(&v);
    let mut decoded = Vec::new();
    for k in 0..120u32 {
        let f = full
            .frame((f64::from(k) + 0.5) / FPS, 128, FrameUse::Still)
            .expect("frame");
        decoded.push(f.jpeg);
    }
    let sought = open(&v);
    for k in [59u32, 30, 100, 75, 119, 8, 66] {
        let f = sought
            .frame((f64::from(k) + 0.5) / FPS, 128, FrameUse::Still)
            .expect("frame");
        assert_eq!(read_code(&f.jpeg, 0), k, "frame {k}");
        assert!(
            f.jpeg == decoded[k as usize],
            "frame {k} differs from a full decode"
        );
    }
}

/// Once the timeline is scanned, a seek knows its frame's interval: it
/// skips every unreferenced frame before it and returns it as soon as it is
/// decoded. The frames are still a full decode's (B-frames used as
/// references here), their intervals are right, and decoding on from there
/// gives the next frames.
#[test]
fn a_seek_with_the_timeline_scanned_stops_at_its_frame_and_decodes_on_exactly() {
    let d = tmp();
    let params = ["-x264-params", "keyint=60:min-keyint=60:scenecut=0"];
    let v = coded_video(d.path(), "gop60-bref.mp4", 4.0, "", &params);
    let full = open(&v);
    let decoded: Vec<_> = (0..120u32)
        .map(|k| {
            full.frame((f64::from(k) + 0.5) / FPS, 128, FrameUse::Still)
                .expect("frame")
                .jpeg
        })
        .collect();
    let sought = open(&v);
    assert_eq!(sought.timeline().expect("timeline").len(), 120);
    for k in [59u32, 30, 100, 75, 8, 117] {
        for j in k..k + 3 {
            let f = sought
                .frame((f64::from(j) + 0.5) / FPS, 128, FrameUse::Still)
                .expect("frame");
            assert_eq!(read_code(&f.jpeg, 0), j, "frame {j} after a seek to {k}");
            assert!(
                f.jpeg == decoded[j as usize],
                "frame {j} differs from a full decode"
            );
            assert!(
                (f.start_s - f64::from(j) / FPS).abs() < 1e-6,
                "start of {j}"
            );
            assert!(
                (f.end_s - f64::from(j + 1) / FPS).abs() < 1e-6,
                "end of {j}"
            );
        }
    }
}

#[test]
fn stepping_moves_by_whole_frames_in_both_directions() {
    let d = tmp();
    let v = coded_video(d.path(), "step.mp4", 2.0, "", &[]);
    let server = open(&v);
    let timeline = server.timeline().expect("timeline");
    assert_eq!(timeline.len(), 60);
    let mut t = 29.5 / FPS;
    for (step, expect) in [
        (1i64, 30u32),
        (1, 31),
        (-1, 30),
        (-1, 29),
        (-1, 28),
        (14, 42),
        (-40, 2),
    ] {
        let span = server.step(t, step).expect("step");
        assert_eq!(span.index as u32, expect);
        assert!((span.start_s - f64::from(expect) / FPS).abs() < 1e-6);
        assert_eq!(
            shown(&server, span.start_s, 0),
            expect,
            "frame shown after stepping"
        );
        t = span.start_s;
    }
    // Clamped at both ends.
    assert_eq!(server.step(0.0, -5).expect("step").index, 0);
    assert_eq!(server.step(1.9, 50).expect("step").index, 59);
    assert_eq!(timeline.index_at(timeline.span(17).start_s), 17);
}

#[test]
fn playing_serves_every_frame_in_order_from_the_read_ahead() {
    let d = tmp();
    let v = coded_video(d.path(), "play.mp4", 4.0, "", &[]);
    let server = open(&v);
    let play = |from: u32, to: u32| {
        let mut k = from;
        let mut asked = 0;
        while k < to {
            let t = (f64::from(k) + 0.5) / FPS;
            let f = server.frame(t, 128, FrameUse::Playing).expect("frame");
            asked += 1;
            assert!(asked < 100_000, "playback made no progress at frame {k}");
            if f.end_s <= t {
                // An earlier frame while the read-ahead catches up.
                assert!(
                    t - f.start_s <= 0.5 + 1e-9,
                    "a stale frame is at most 0.5 s old"
                );
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            }
            assert_eq!(read_code(&f.jpeg, 0), k);
            k += 1;
        }
    };
    play(10, 50);
    // The read-ahead prepared frames past the playhead.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(server.cached_bytes() > 0);
    play(50, 60);
    // A jump while playing, then on.
    play(100, 115);
    // A still frame (a seek) stops the read-ahead and is exact: the same
    // bytes as from a server that never played (playback decodes without
    // deblocking and scales the fast way; a still is never such a frame).
    std::thread::sleep(std::time::Duration::from_millis(100));
    server
        .frame(104.5 / FPS, 128, FrameUse::Playing)
        .expect("frame");
    let still = server
        .frame(112.5 / FPS, 128, FrameUse::Still)
        .expect("still");
    let fresh = open(&v)
        .frame(112.5 / FPS, 128, FrameUse::Still)
        .expect("fresh");
    assert_eq!(read_code(&still.jpeg, 0), 112);
    assert!(still.jpeg == fresh.jpeg, "a still after playing is exact");
    assert_eq!(shown(&server, 20.5 / FPS, 0), 20);
}

#[test]
fn a_rotated_phone_video_is_shown_upright() {
    let d = tmp();
    let plain = coded_video(d.path(), "plain.mp4", 1.0, "", &[]);
    let mut rotations = Vec::new();
    for tag in ["90", "270"] {
        // A display matrix, as phones write, on the same pictures.
        let v = d.path().join(format!("rot{tag}.mp4"));
        let meta = format!("rotate={tag}");
        ffmpeg(&[
            "-i",
            path_str(&plain),
            "-c",
            "copy",
            "-metadata:s:v:0",
            &meta,
            path_str(&v),
        ]);
        let server = open(&v);
        let info = server.info().clone();
        assert!(
            [90, 270].contains(&info.rotation),
            "rotation {}",
            info.rotation
        );
        rotations.push(info.rotation);
        assert_eq!((info.display_width, info.display_height), (192, 256));
        let f = server
            .frame(12.5 / FPS, 96, FrameUse::Still)
            .expect("frame");
        assert_eq!((f.width, f.height), (96, 128));
        assert_eq!(read_code(&f.jpeg, info.rotation), 12);
        // The ffmpeg command line turns pictures by the same matrix: its
        // frame 12 has the markers where ours has them.
        let reference = d.path().join(format!("ref{tag}.jpg"));
        ffmpeg(&[
            "-i",
            path_str(&v),
            "-vf",
            "select=eq(n\\,12)",
            "-frames:v",
            "1",
            path_str(&reference),
        ]);
        let jpeg = std::fs::read(&reference).expect("reference frame");
        assert_eq!(read_code(&jpeg, info.rotation), 12);
    }
    assert_ne!(rotations[0], rotations[1]);
}

#[test]
fn variable_frame_rate_uses_the_stream_timestamps() {
    let d = tmp();
    // Frame n at n*40 + 15*(n mod 2) ms: intervals of 55 and 25 ms.
    let pts_ms = |n: u32| f64::from(n * 40 + 15 * (n % 2));
    let v = coded_video(
        d.path(),
        "vfr.mp4",
        2.0,
        ",settb=1/1000,setpts=N*40+15*mod(N\\,2)",
        &[
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "1/1000",
            "-video_track_timescale",
            "1000",
        ],
    );
    let server = open(&v);
    let timeline = server.timeline().expect("timeline");
    assert_eq!(timeline.len(), 60);
    for n in [0u32, 1, 2, 3, 17, 18, 40, 59] {
        let start = pts_ms(n) / 1000.0;
        let span = timeline.span(n as usize);
        assert!(
            (span.start_s - start).abs() < 1e-6,
            "frame {n} starts at {start}"
        );
        if n < 59 {
            let end = pts_ms(n + 1) / 1000.0;
            assert!((span.end_s - end).abs() < 1e-6);
            let mid = 0.5 * (start + end);
            assert_eq!(shown(&server, mid, 0), n);
            assert_eq!(timeline.index_at(mid), n as usize);
            // A constant-rate guess (1/30 s) would be wrong from frame 2 on.
        }
        assert_eq!(shown(&server, start, 0), n, "at the start of frame {n}");
    }
    assert_eq!(server.step(pts_ms(17) / 1000.0, 1).expect("step").index, 18);
}

#[test]
fn recording_time_starts_at_the_first_audio_sample() {
    let d = tmp();
    let v = d.path().join("late_sound.mp4");
    let src = "color=c=black:s=256x192:r=30:d=3".to_string();
    let vf = format!("geq=lum='{}':cb=128:cr=128", code_expr(256, 192));
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src,
        "-itsoffset",
        "0.5",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000:duration=2",
        "-vf",
        &vf,
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "12",
        "-x264-params",
        "keyint=15:min-keyint=15:scenecut=0",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        path_str(&v),
    ]);
    let server = open(&v);
    let origin = server.info().origin_s;
    assert!((origin - 0.5).abs() < 0.03, "origin {origin}");
    // Recording time t is container time t + origin, as for the waveform.
    let expect = (origin * FPS).floor() as u32;
    assert_eq!(shown(&server, 0.0, 0), expect);
    assert_eq!(
        shown(&server, 1.0 + 0.5 / FPS, 0),
        (origin * FPS + 30.5).floor() as u32
    );
    assert!(
        server.info().start_s < 0.0,
        "the picture starts before the sound"
    );
}

#[test]
fn filmstrip_has_one_keyframe_per_step_and_is_cached_by_fingerprint() {
    let d = tmp();
    let v = coded_video(d.path(), "strip.mp4", 4.0, "", &[]);
    let cache = d.path().join("cache");
    let opts = FilmstripOptions {
        every_s: 0.4,
        width: 64,
    };
    let mut seen = Vec::new();
    let strip = filmstrip(&v, &cache, &opts, &CancelToken::new(), &mut |f, t| {
        seen.push((f, t.index))
    })
    .expect("filmstrip");
    assert!(!strip.from_cache);
    assert_eq!(strip.thumbnails.len(), 10);
    assert_eq!(seen.len(), 10);
    assert!((seen[9].0 - 1.0).abs() < 1e-9, "progress ends at 1");
    assert_eq!((strip.width, strip.height), (64, 48));
    for t in &strip.thumbnails {
        let jpeg = std::fs::read(strip.path_of(t)).expect("thumbnail file");
        let n = read_code(&jpeg, 0);
        // The last keyframe at or before the thumbnail's time.
        let expect = ((t.at_s * FPS + 1e-6).floor() as u32) / GOP as u32 * GOP as u32;
        assert_eq!(n, expect, "thumbnail {} at {} s", t.index, t.at_s);
        assert!((t.frame_s - f64::from(n) / FPS).abs() < 1e-6);
    }
    // Second run: from the cache, nothing decoded, same strip.
    let again = filmstrip(&v, &cache, &opts, &CancelToken::new(), &mut |_, _| {}).expect("again");
    assert!(again.from_cache);
    assert_eq!(again.thumbnails, strip.thumbnails);
    // Other parameters are another strip.
    let other = FilmstripOptions {
        every_s: 1.0,
        ..opts
    };
    let third = filmstrip(&v, &cache, &other, &CancelToken::new(), &mut |_, _| {}).expect("third");
    assert!(!third.from_cache);
    assert_eq!(third.thumbnails.len(), 4);
    // A changed file is another strip.
    std::fs::copy(coded_video(d.path(), "other.mp4", 2.0, "", &[]), &v).expect("replace");
    let fourth = filmstrip(&v, &cache, &opts, &CancelToken::new(), &mut |_, _| {}).expect("fourth");
    assert!(!fourth.from_cache);
    assert_eq!(fourth.thumbnails.len(), 5);
}

#[test]
fn a_dense_filmstrip_reuses_the_sparse_ones_pictures() {
    let d = tmp();
    let v = coded_video(d.path(), "sparse.mp4", 4.0, "", &[]);
    let cache = d.path().join("cache");
    let opts = |every_s| FilmstripOptions { every_s, width: 64 };
    let sparse =
        filmstrip(&v, &cache, &opts(1.6), &CancelToken::new(), &mut |_, _| {}).expect("sparse");
    assert_eq!(sparse.thumbnails.len(), 3);
    // Mark the sparse picture for 1.6 s: the dense strip must take it as it is.
    let marked = std::fs::read(sparse.path_of(&sparse.thumbnails[0])).expect("thumbnail 0");
    std::fs::write(sparse.path_of(&sparse.thumbnails[1]), &marked).expect("mark");
    let mut order = Vec::new();
    let dense = filmstrip(&v, &cache, &opts(0.4), &CancelToken::new(), &mut |_, t| {
        order.push(t.index)
    })
    .expect("dense");
    assert!(!dense.from_cache);
    assert_eq!(dense.thumbnails.len(), 10);
    order.sort_unstable();
    assert_eq!(order, (0..10).collect::<Vec<_>>(), "each thumbnail once");
    assert_eq!((dense.width, dense.height), (64, 48));
    for t in &dense.thumbnails {
        let jpeg = std::fs::read(dense.path_of(t)).expect("thumbnail file");
        if t.index == 4 {
            assert_eq!(jpeg, marked, "1.6 s is the sparse strip's picture, copied");
            assert_eq!(t.frame_s, sparse.thumbnails[1].frame_s);
            continue;
        }
        let expect = ((t.at_s * FPS + 1e-6).floor() as u32) / GOP as u32 * GOP as u32;
        assert_eq!(
            read_code(&jpeg, 0),
            expect,
            "thumbnail {} at {} s",
            t.index,
            t.at_s
        );
    }
    // A sparse strip asked after the dense one is made of its pictures.
    let sparser =
        filmstrip(&v, &cache, &opts(3.2), &CancelToken::new(), &mut |_, _| {}).expect("sparser");
    assert_eq!(sparser.thumbnails.len(), 2);
    assert_eq!(sparser.height, 48);
}

#[test]
fn a_cancelled_filmstrip_leaves_nothing_behind() {
    let d = tmp();
    let v = coded_video(d.path(), "cancel.mp4", 3.0, "", &[]);
    let cache = d.path().join("cache");
    let cancel = CancelToken::new();
    let opts = FilmstripOptions {
        every_s: 0.2,
        width: 64,
    };
    let mut made = 0;
    let r = filmstrip(&v, &cache, &opts, &cancel, &mut |_, _| {
        made += 1;
        if made == 3 {
            cancel.cancel();
        }
    });
    assert_eq!(r.map(|_| ()).map_err(|e| e.code()), Err("cancelled"));
    assert_eq!(made, 3);
    let left: Vec<_> = std::fs::read_dir(&cache).expect("cache dir").collect();
    assert!(left.is_empty(), "nothing left in the cache: {left:?}");
    let strip = filmstrip(&v, &cache, &opts, &CancelToken::new(), &mut |_, _| {}).expect("full");
    assert_eq!(strip.thumbnails.len(), 15);
    assert!(!strip.from_cache);
}

#[test]
fn bad_files_give_typed_errors() {
    let d = tmp();
    let code = |p: &Path| {
        FrameServer::open(p, &FrameServerOptions::default())
            .map(|_| ())
            .map_err(|e| e.code())
    };
    assert_eq!(code(&d.path().join("missing.mp4")), Err("not_found"));
    let empty = d.path().join("empty.mp4");
    std::fs::write(&empty, b"").expect("write");
    assert_eq!(code(&empty), Err("empty"));
    let text = d.path().join("notes.mp4");
    std::fs::write(&text, b"these are my class notes, not a video").expect("write");
    assert_eq!(code(&text), Err("not_media"));
    let audio = d.path().join("song.m4a");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=duration=1",
        "-c:a",
        "aac",
        path_str(&audio),
    ]);
    assert_eq!(code(&audio), Err("no_video"));
    let strip = filmstrip(
        &audio,
        d.path(),
        &FilmstripOptions::default(),
        &CancelToken::new(),
        &mut |_, _| {},
    );
    assert_eq!(strip.map(|_| ()).map_err(|e| e.code()), Err("no_video"));

    // Header at the end, cut in half: the header is lost.
    let whole = coded_video(d.path(), "whole.mp4", 4.0, "", &[]);
    let bytes = std::fs::read(&whole).expect("read");
    let cut = d.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    assert_eq!(code(&cut), Err("unreadable"));

    // Header first, pictures cut: early frames still come, later ones are a typed error.
    let fast = coded_video(d.path(), "fast.mp4", 4.0, "", &["-movflags", "+faststart"]);
    let bytes = std::fs::read(&fast).expect("read");
    let cut = d.path().join("cut_fast.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).expect("write");
    let server = open(&cut);
    assert_eq!(shown(&server, 0.5 / FPS, 0), 0);
    let late = server.frame(3.9, 128, FrameUse::Still);
    assert_eq!(late.map(|_| ()).map_err(|e| e.code()), Err("unreadable"));
    // Bad requests are refused, not guessed.
    let bad = |r: Result<beatsync_engine::frames::Frame, EngineError>| {
        r.map(|_| ()).map_err(|e| e.code())
    };
    assert_eq!(
        bad(server.frame(f64::NAN, 128, FrameUse::Still)),
        Err("invalid_request")
    );
    assert_eq!(
        bad(server.frame(0.0, 8, FrameUse::Still)),
        Err("invalid_request")
    );
    assert_eq!(
        bad(server.frame(0.0, 100_000, FrameUse::Still)),
        Err("invalid_request")
    );
}

/// Threads of this process with the given name.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .count()
}

#[test]
fn dropping_a_playing_server_ends_its_thread() {
    let d = tmp();
    let v = coded_video(d.path(), "drop.mp4", 4.0, "", &[]);
    let server = open(&v);
    let name = server.worker_name().to_string();
    // The decoder's own threads, started from the worker, carry its name too.
    assert!(threads_named(&name) >= 1, "the worker runs");
    server.frame(0.5, 128, FrameUse::Playing).expect("frame");
    // Read-ahead is running now; dropping stops and joins it.
    drop(server);
    assert_eq!(threads_named(&name), 0, "no thread left behind");

    // Requests waiting on a busy worker get an answer, never a hang, when a
    // newer request replaces them: the newest wins.
    let server = std::sync::Arc::new(open(&v));
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let s = server.clone();
            std::thread::spawn(move || s.frame(0.2 + 0.6 * f64::from(i), 128, FrameUse::Still))
        })
        .collect();
    let mut served = 0;
    for h in handles {
        match h.join().expect("thread") {
            Ok(_) => served += 1,
            Err(e) => assert_eq!(e.code(), "cancelled"),
        }
    }
    assert!(served >= 1, "the newest request is served");
}

#[test]
fn the_cli_writes_a_frame_and_a_filmstrip() {
    let d = tmp();
    let v = coded_video(d.path(), "cli.mp4", 2.0, "", &[]);
    let out = d.path().join("f.jpg");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_beatsync"))
            .args(args)
            .output()
            .expect("run beatsync");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("JSON")
    };
    let j = run(&[
        "frame",
        path_str(&v),
        "--at",
        "1.0",
        "--step",
        "-2",
        "--width",
        "128",
        "--out",
        path_str(&out),
        "--json",
    ]);
    assert_eq!(j["index"], 28);
    assert_eq!(read_code(&std::fs::read(&out).expect("jpeg"), 0), 28);
    let cache = d.path().join("strip");
    // Made, then from the disk cache.
    for cached in [false, true] {
        let strip = [
            "filmstrip",
            path_str(&v),
            "--out",
            path_str(&cache),
            "--every",
            "0.5",
            "--json",
        ];
        let j = run(&strip);
        assert_eq!(j["thumbnails"].as_array().map(Vec::len), Some(4));
        assert_eq!(j["from_cache"], cached);
    }
}

/// Waits for the proxy to be built (or to fail); a bound against a hang,
/// not a speed check.
fn proxy_ready(server: &FrameServer) -> beatsync_engine::frames::ProxyStatus {
    for _ in 0..1200 {
        let s = server.proxy_status().expect("a proxy was started");
        assert_eq!(s.error, None, "the proxy failed");
        if s.ready {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the proxy was not ready after 60 s");
}

/// Every frame of `v` at 128 px, decoded in order from the start.
fn fully_decoded(v: &Path, frames: u32) -> Vec<std::sync::Arc<[u8]>> {
    let full = open(v);
    (0..frames)
        .map(|k| {
            let at = (f64::from(k) + 0.5) / FPS;
            full.frame(at, 128, FrameUse::Still).expect("frame").jpeg
        })
        .collect()
}

/// Once the proxy holds the video, a seek (or a playing frame) at its width
/// is read from it, nothing decoded, and is byte for byte the frame a full
/// decode from the start gives; other widths are decoded as before.
#[test]
fn the_proxy_serves_the_fully_decoded_frames_without_decoding() {
    let d = tmp();
    let v = coded_video(d.path(), "proxy.mp4", 4.0, "", &[]);
    let decoded = fully_decoded(&v, 120);
    let server = open(&v);
    assert_eq!(server.proxy_status(), None);
    server
        .start_proxy(&d.path().join("proxies"), 128)
        .expect("start the proxy");
    let status = proxy_ready(&server);
    assert_eq!(
        (status.frames, status.width, status.reused),
        (120, 128, false)
    );
    assert!((status.covered_until_s.expect("covered") - 4.0).abs() < 1e-6);
    let before = server.stats();
    for k in [59u32, 0, 30, 100, 75, 119, 8, 66, 14, 15, 16] {
        let f = server
            .frame((f64::from(k) + 0.5) / FPS, 128, FrameUse::Still)
            .expect("frame");
        assert_eq!(read_code(&f.jpeg, 0), k, "frame {k}");
        assert!(
            f.jpeg == decoded[k as usize],
            "frame {k} differs from a full decode"
        );
        assert_eq!((f.width, f.height), (128, 96));
        assert!((f.start_s - f64::from(k) / FPS).abs() < 1e-6);
    }
    let f = server.frame(1.0, 128, FrameUse::Playing).expect("playing");
    assert_eq!(read_code(&f.jpeg, 0), 30);
    let after = server.stats();
    assert_eq!(after.proxy_hits - before.proxy_hits, 12);
    assert_eq!(
        after.requests_decoded, before.requests_decoded,
        "nothing decoded"
    );
    // Another width is not in the proxy: decoded.
    let f = server.frame(1.0, 64, FrameUse::Still).expect("other width");
    assert_eq!(read_code(&f.jpeg, 0), 30);
    assert_eq!(server.stats().requests_decoded, before.requests_decoded + 1);
}

/// The proxy is kept on disk by the file's fingerprint: the next server of
/// the same file reads it; a changed file gets a new one, never the old frames.
#[test]
fn the_proxy_is_reused_and_made_again_when_the_file_changes() {
    let d = tmp();
    let v = coded_video(d.path(), "proxy.mp4", 2.0, "", &[]);
    let cache = d.path().join("proxies");
    let first = open(&v);
    first.start_proxy(&cache, 128).expect("start");
    assert!(!proxy_ready(&first).reused);
    drop(first);
    let second = open(&v);
    second.start_proxy(&cache, 128).expect("start");
    let s = proxy_ready(&second);
    assert!(s.reused && s.frames == 60, "{s:?}");
    let old = second.frame(0.5, 128, FrameUse::Still).expect("frame");
    drop(second);
    // Same frame numbers, other pictures (noise over the code).
    let other = coded_video(d.path(), "other.mp4", 3.0, ",noise=alls=12:allf=t", &[]);
    std::fs::copy(&other, &v).expect("replace the file");
    let decoded = fully_decoded(&v, 90);
    let third = open(&v);
    third.start_proxy(&cache, 128).expect("start");
    let s = proxy_ready(&third);
    assert!(!s.reused && s.frames == 90, "{s:?}");
    let hits = third.stats().proxy_hits;
    let f = third.frame(0.5, 128, FrameUse::Still).expect("frame");
    assert_eq!(
        third.stats().proxy_hits,
        hits + 1,
        "served from the new proxy"
    );
    assert!(f.jpeg == decoded[15], "the changed file's frame");
    assert!(f.jpeg != old.jpeg, "not the old file's frame");
    // Only complete proxies under their final names, one per file version.
    let mut names: Vec<String> = std::fs::read_dir(&cache)
        .expect("cache")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.iter().all(|n| n.ends_with("-proxy-w128")),
        "{names:?}"
    );
}

/// Dropping a server while its proxy is being built stops and joins the
/// builder and leaves no half proxy behind.
#[test]
fn dropping_a_server_stops_its_proxy_and_leaves_nothing_half_made() {
    let d = tmp();
    let v = coded_video(d.path(), "proxy.mp4", 20.0, "", &[]);
    let cache = d.path().join("proxies");
    let server = open(&v);
    // What a killed process left: removed by the next build of that proxy.
    let fp = beatsync_engine::media::fingerprint::fingerprint(&v).expect("fingerprint");
    let key = format!(
        "{}-{}-{}-proxy-w256",
        fp.head_tail_xxh3, fp.size, fp.mtime_ns
    );
    let abandoned = cache.join(format!("{key}.partial-{}-0", i32::MAX));
    std::fs::create_dir_all(&abandoned).expect("mkdir");
    std::fs::write(abandoned.join("frames.jpegs"), b"half").expect("write");
    server.start_proxy(&cache, 256).expect("start");
    let name: String = format!("{}-proxy", server.worker_name())
        .chars()
        .take(15)
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let status = server.proxy_status().expect("status");
    drop(server);
    assert_eq!(threads_named(&name), 0, "no proxy thread left behind");
    assert!(!abandoned.exists(), "an abandoned half proxy is removed");
    if !status.ready {
        let left = std::fs::read_dir(&cache).map_or(0, |r| r.count());
        assert_eq!(left, 0, "a stopped build leaves nothing");
    }
    assert!(open(&v).start_proxy(&cache, 15).is_err(), "width checked");
}

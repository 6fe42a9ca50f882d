//! `beatsync frame`, `beatsync filmstrip` and `beatsync preview-bench`: the
//! picture preview's engine from the command line (tests, bench/preview.sh).

use beatsync_engine as engine;
use clap::Args;
use engine::frames::{FrameServer, FrameServerOptions, FrameUse};
use engine::{CancelToken, EngineError};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct FrameArgs {
    /// The video.
    file: PathBuf,
    /// Recording time in seconds (from the first audio sample, as the waveform).
    #[arg(long, allow_hyphen_values = true)]
    at: f64,
    /// Then step this many frames (negative: back) by the stream's timestamps.
    #[arg(long, allow_hyphen_values = true, default_value_t = 0)]
    step: i64,
    /// Picture width in px.
    #[arg(long, default_value_t = 640)]
    width: u32,
    /// Where to write the JPEG.
    #[arg(long)]
    out: PathBuf,
    /// Print the frame's facts as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct FilmstripArgs {
    /// The video.
    file: PathBuf,
    /// Cache folder: the strip goes in a subfolder named by the file's fingerprint.
    #[arg(long)]
    out: PathBuf,
    /// Seconds between thumbnails.
    #[arg(long, default_value_t = 2.0)]
    every: f64,
    /// Thumbnail width in px.
    #[arg(long, default_value_t = 160)]
    width: u32,
    /// Print the strip as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Clone)]
pub struct PreviewBenchArgs {
    /// The video.
    file: PathBuf,
    #[arg(long, default_value_t = 640)]
    width: u32,
    /// Seconds of playback asked frame after frame, as fast as served.
    #[arg(long, default_value_t = 20.0)]
    play_s: f64,
    /// Seconds of playback paced at 1x (a frame asked every frame interval).
    #[arg(long, default_value_t = 10.0)]
    paced_s: f64,
    /// Random still frames asked (seek latency).
    #[arg(long, default_value_t = 30)]
    seeks: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Decoder threads of the frame server (0: FFmpeg's choice).
    #[arg(long, default_value_t = FrameServerOptions::default().decode_threads)]
    decode_threads: usize,
    /// Then build the proxy under this folder (at --width) and time it: seeks
    /// while it builds, the time until it is ready, seeks once it is.
    #[arg(long)]
    proxy_dir: Option<PathBuf>,
}

pub fn run_frame(a: &FrameArgs) -> engine::Result<()> {
    let server = FrameServer::open(&a.file, &FrameServerOptions::default())?;
    let at = if a.step != 0 {
        server.step(a.at, a.step)?.start_s
    } else {
        a.at
    };
    let frame = server.frame(at, a.width, FrameUse::Still)?;
    let index = server.timeline()?.index_at(frame.start_s);
    write_file(&a.out, &frame.jpeg)?;
    if a.json {
        let v = serde_json::json!({
            "file": a.out,
            "index": index,
            "start_s": frame.start_s,
            "end_s": frame.end_s,
            "width": frame.width,
            "height": frame.height,
            "bytes": frame.jpeg.len(),
            "picture": server.info(),
        });
        println!("{v}");
    } else {
        println!(
            "{}: frame {index} ({:.4}-{:.4} s), {}x{}, {} bytes",
            a.out.display(),
            frame.start_s,
            frame.end_s,
            frame.width,
            frame.height,
            frame.jpeg.len()
        );
    }
    Ok(())
}

pub fn run_filmstrip(a: &FilmstripArgs) -> engine::Result<()> {
    let opts = engine::frames::FilmstripOptions {
        every_s: a.every,
        width: a.width,
    };
    let t0 = Instant::now();
    let strip =
        engine::frames::filmstrip(&a.file, &a.out, &opts, &CancelToken::new(), &mut |_, _| {})?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if a.json {
        let mut v = serde_json::to_value(&strip).unwrap_or_default();
        v["from_cache"] = strip.from_cache.into();
        v["elapsed_ms"] = ms.into();
        println!("{v}");
    } else {
        println!(
            "{}: {} thumbnails {}x{} every {} s ({}, {ms:.0} ms)",
            strip.dir.display(),
            strip.thumbnails.len(),
            strip.width,
            strip.height,
            strip.every_s,
            if strip.from_cache {
                "from the cache"
            } else {
                "made"
            }
        );
    }
    Ok(())
}

/// Measures the frame server in process and prints one JSON object.
pub fn run_preview_bench(a: &PreviewBenchArgs) -> engine::Result<()> {
    let t0 = Instant::now();
    let opts = FrameServerOptions {
        decode_threads: a.decode_threads,
        ..FrameServerOptions::default()
    };
    let server = FrameServer::open(&a.file, &opts)?;
    let open_ms = ms(t0.elapsed());
    let info = server.info().clone();
    let step = 1.0 / info.frame_rate.clamp(1.0, 1000.0);
    let span = (info.end_s - info.start_s).max(step);
    let from = info.start_s + 0.25 * span;
    let (frames, seq_s) = sequential_run(&server, a, from, info.end_s)?;
    let (mut lags, paced_s) = paced_run(&server, a, info.start_s + 0.6 * span, info.end_s)?;
    let (stats0, cpu0) = (server.stats(), process_cpu_s());
    let (mut seeks_ms, seek_times) = seek_run(&server, a, info.start_s, span)?;
    let (stats1, cpu1) = (server.stats(), process_cpu_s());
    let n_seeks = seeks_ms.len().max(1) as f64;
    let per_seek = |v: f64| v / n_seeks;
    seeks_ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let i = ((seeks_ms.len() as f64 - 1.0) * p).round() as usize;
        seeks_ms.get(i).copied().unwrap_or(f64::NAN)
    };
    let t0 = Instant::now();
    let frames_in_file = server.timeline()?.len();
    let timeline_ms = ms(t0.elapsed());
    let v = serde_json::json!({
        "file": a.file,
        "width": a.width,
        "open_ms": open_ms,
        "sequential_frames": frames,
        "sequential_fps": f64::from(frames) / seq_s,
        "paced_s": paced_s,
        "paced_frames_shown": lags.len(),
        "paced_shown_fps": lags.len() as f64 / paced_s,
        // Shown while the playhead was within the frame or one frame past it.
        "paced_in_sync_frames": lags.iter().filter(|&&l| l < 2.0 * step).count(),
        "paced_median_lag_ms": median(&mut lags) * 1e3,
        "seeks": seeks_ms.len(),
        "seek_times_s": seek_times,
        "seek_median_ms": pct(0.5),
        "seek_p90_ms": pct(0.9),
        "seek_max_ms": seeks_ms.last().copied().unwrap_or(f64::NAN),
        // The parts of a seek, means over the seeks: the process's CPU time
        // (all threads), and the worker's time seeking+decoding and
        // scaling+encoding, with the frames it decoded.
        "seek_cpu_ms_mean": per_seek((cpu1 - cpu0) * 1e3),
        "seek_decode_ms_mean": per_seek((stats1.decode_s - stats0.decode_s) * 1e3),
        "seek_encode_ms_mean": per_seek((stats1.encode_s - stats0.encode_s) * 1e3),
        "seek_frames_decoded_mean": per_seek((stats1.frames_decoded - stats0.frames_decoded) as f64),
        "decode_threads": a.decode_threads,
        "timeline_scan_ms": timeline_ms,
        "frames_in_file": frames_in_file,
        "cached_bytes": server.cached_bytes(),
        "proxy": match &a.proxy_dir {
            Some(dir) => proxy_run(&server, a, dir, info.start_s, span)?,
            None => serde_json::Value::Null,
        },
    });
    println!("{v}");
    Ok(())
}

/// The proxy built under `dir`: seeks while it builds, the wall and CPU
/// time until it is ready, seeks once it is (each with its CPU per seek and
/// how many the proxy answered).
fn proxy_run(
    server: &FrameServer,
    a: &PreviewBenchArgs,
    dir: &std::path::Path,
    start_s: f64,
    span: f64,
) -> engine::Result<serde_json::Value> {
    let seeks = |seed: u64| -> engine::Result<serde_json::Value> {
        let (hits0, cpu0) = (server.stats().proxy_hits, process_cpu_s());
        let b = PreviewBenchArgs { seed, ..a.clone() };
        let (mut v, _) = seek_run(server, &b, start_s, span)?;
        let n = v.len().max(1) as f64;
        let (hits1, cpu1) = (server.stats().proxy_hits, process_cpu_s());
        v.sort_by(f64::total_cmp);
        Ok(serde_json::json!({
            "median_ms": median(&mut v),
            "max_ms": v.last().copied().unwrap_or(f64::NAN),
            "cpu_ms_mean": (cpu1 - cpu0) * 1e3 / n,
            "from_proxy": hits1 - hits0,
        }))
    };
    let (t0, cpu0) = (Instant::now(), process_cpu_s());
    server.start_proxy(dir, a.width)?;
    let building = seeks(a.seed + 1)?;
    let status = loop {
        match server.proxy_status() {
            Some(s) if s.ready || s.error.is_some() => break s,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let (ready_s, ready_cpu_s) = (t0.elapsed().as_secs_f64(), process_cpu_s() - cpu0);
    let ready = seeks(a.seed + 2)?;
    Ok(serde_json::json!({
        "seeks_while_building": building,
        "ready_s": ready_s,
        "ready_cpu_s": ready_cpu_s,
        "status": status,
        "seeks_when_ready": ready,
    }))
}

/// Sequential: each next frame asked as soon as the previous one came (a
/// late answer, an earlier frame, is asked again 1 ms later). Returns the
/// frames shown and the seconds taken.
fn sequential_run(
    server: &FrameServer,
    a: &PreviewBenchArgs,
    from: f64,
    end_s: f64,
) -> engine::Result<(u32, f64)> {
    let t0 = Instant::now();
    let (mut frames, mut t) = (0u32, from);
    while t < (from + a.play_s).min(end_s) {
        let f = server.frame(t, a.width, FrameUse::Playing)?;
        if f.end_s <= t {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        frames += 1;
        t = f.end_s;
    }
    Ok((frames, t0.elapsed().as_secs_f64()))
}

/// Paced at 1x, as a page would: the playhead moves with the clock; the
/// next frame is asked when the shown one ends, a late answer (an earlier
/// frame) again at the next display refresh (60 Hz). Returns, for each
/// distinct frame shown, how far the playhead was past its start, and the
/// seconds played.
fn paced_run(
    server: &FrameServer,
    a: &PreviewBenchArgs,
    from: f64,
    end_s: f64,
) -> engine::Result<(Vec<f64>, f64)> {
    let (mut lags, mut last_start) = (Vec::new(), f64::NAN);
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < a.paced_s {
        let playhead = from + t0.elapsed().as_secs_f64();
        if playhead >= end_s {
            break;
        }
        let f = server.frame(playhead, a.width, FrameUse::Playing)?;
        if f.start_s != last_start {
            last_start = f.start_s;
            lags.push(from + t0.elapsed().as_secs_f64() - f.start_s);
        }
        let next = if f.end_s > playhead {
            f.end_s - from
        } else {
            t0.elapsed().as_secs_f64() + 1.0 / 60.0
        };
        let wait = next - t0.elapsed().as_secs_f64();
        if wait > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(wait));
        }
    }
    Ok((lags, t0.elapsed().as_secs_f64()))
}

/// Seeks: still frames at seeded random times. Returns each seek's
/// milliseconds and its time.
fn seek_run(
    server: &FrameServer,
    a: &PreviewBenchArgs,
    start_s: f64,
    span: f64,
) -> engine::Result<(Vec<f64>, Vec<f64>)> {
    let mut rng = a
        .seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut seeks_ms = Vec::with_capacity(a.seeks);
    let mut seek_times = Vec::with_capacity(a.seeks);
    for _ in 0..a.seeks {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let at = start_s + (rng >> 11) as f64 / (1u64 << 53) as f64 * span;
        let t0 = Instant::now();
        server.frame(at, a.width, FrameUse::Still)?;
        seeks_ms.push(ms(t0.elapsed()));
        seek_times.push(at);
    }
    Ok((seeks_ms, seek_times))
}

/// CPU seconds (user + system) of this process so far, all threads; NaN
/// where not measured.
fn process_cpu_s() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage fills the struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } == 0 {
            let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
            return s(u.ru_utime) + s(u.ru_stime);
        }
    }
    f64::NAN
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> engine::Result<()> {
    std::fs::write(path, bytes).map_err(|e| EngineError::OutputWrite {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

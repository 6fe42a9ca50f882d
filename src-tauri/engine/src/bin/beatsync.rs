//! `beatsync`: the command-line face of the engine. Same code path as the app.

use beatsync_engine as engine;

#[path = "../cli/frames.rs"]
mod frames_cli;
#[path = "../cli/jobs.rs"]
mod jobs_cli;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "beatsync",
    version,
    about = "Put the clean song under a dance-class video, exactly in time"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a media file contains (container, duration, streams).
    Probe {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also check the file can serve as `class` (video with sound) or `song` (has sound).
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
    },
    /// Find where the song (BGM) plays in the class video: offset, speed, overlap.
    Align {
        /// The class recording (video or audio).
        #[arg(long)]
        dance: PathBuf,
        /// The clean song file.
        #[arg(long)]
        bgm: PathBuf,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Put the clean song under the class video, trimmed, without re-encoding the picture.
    Sync(SyncArgs),
    /// The background job queue (the same store the app uses).
    Jobs(jobs_cli::JobsArgs),
    /// Make a short demo class video and its song in DIR (known offset), to try the rest on.
    Demo {
        /// Folder to write `beatsync-demo-class.mp4` and `beatsync-demo-song.m4a` into.
        dir: PathBuf,
        /// Print what was written as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write the video frame shown at a time as a JPEG.
    Frame(frames_cli::FrameArgs),
    /// Thumbnails along a video (cached on disk by the file's fingerprint).
    Filmstrip(frames_cli::FilmstripArgs),
    /// Measure the picture preview on a video: playback rate, seek latency (JSON).
    PreviewBench(frames_cli::PreviewBenchArgs),
}

#[derive(clap::Args)]
struct SyncArgs {
    /// The class recording (video).
    #[arg(long)]
    dance: PathBuf,
    /// The clean song file.
    #[arg(long)]
    bgm: PathBuf,
    /// Folder to write the result into.
    #[arg(long)]
    out: PathBuf,
    /// Offset in seconds (`dance_time = bgm_time + offset`); skips the alignment.
    #[arg(long, allow_hyphen_values = true)]
    offset: Option<f64>,
    /// Recording seconds per song second (with --offset; default 1).
    #[arg(long)]
    rate: Option<f64>,
    /// Recording time (s) where --offset holds exactly when --rate is not 1
    /// (align reports the middle of the overlap); default: middle of the recording.
    #[arg(long, allow_hyphen_values = true)]
    offset_at: Option<f64>,
    /// Output file name (default `<dance name>_beatsync.mp4`); never overwrites.
    #[arg(long)]
    name: Option<String>,
    /// Seconds to keep before the song starts being heard.
    #[arg(long, default_value_t = 0.0)]
    lead_in: f64,
    /// Copy the song's AAC packets instead of encoding: at rate 1, or with
    /// clock drift within 0.1 % (the picture's timestamps then follow the
    /// song's clock; the picture is still copied).
    #[arg(long)]
    copy_audio: bool,
    /// AAC bit rate in kbit/s.
    #[arg(long, default_value_t = 192)]
    bitrate: u32,
    /// How a rate other than 1 is followed.
    #[arg(long, value_enum, default_value_t = RetimeArg::Auto)]
    retime: RetimeArg,
    /// How the frame-accurate start is made: `smart-cut` re-encodes the
    /// frames from the cut to the next keyframe (right in every player;
    /// falls back to the edit list when the video cannot be re-encoded);
    /// `edit-list` copies from the keyframe before and hides those frames
    /// with an MP4 edit list (right only where edit lists are honoured).
    #[arg(long, value_enum, default_value_t = StartCutArg::SmartCut)]
    start_cut: StartCutArg,
    /// Do not look for a black ending (phone face down).
    #[arg(long)]
    no_black_detect: bool,
    /// Mark the video to be shown mirrored (left-right) through its display
    /// matrix; the picture is not re-encoded. Not every player honours it.
    #[arg(long)]
    mirror: bool,
    /// Export even when the alignment is not sure the song is the right one
    /// (listen first: `beatsync align` says where it would go).
    #[arg(long)]
    accept_unsure: bool,
    /// The plays to export instead of aligning: a JSON file holding a list
    /// of `{dance_start_s, dance_end_s, offset_s, rate, cut_before}`, or
    /// `beatsync align --json`'s answer (its `segments`), nudged or not.
    #[arg(long)]
    plays: Option<PathBuf>,
    /// With several plays of the song in the recording (the alignment's
    /// segments): one clip per play, `<name>_play01.mp4`, `_play02`, …
    /// instead of one video. Not with --offset (one placement, one play).
    #[arg(long)]
    split: bool,
    /// With several plays in one video: what is heard between them, the
    /// recording's own sound lowered by 12 dB, or silence.
    #[arg(long, value_enum, default_value_t = BetweenArg::Recorded)]
    between: BetweenArg,
    /// Print progress lines (`stage fraction`) on stderr.
    #[arg(long)]
    progress: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BetweenArg {
    Recorded,
    Silence,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RetimeArg {
    Auto,
    Resample,
    KeepPitch,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum StartCutArg {
    EditList,
    SmartCut,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Class,
    Song,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe { file, json, role } => {
            run_probe(&file, json, role).map_err(|e| (e.code(), e.to_string()))
        }
        Command::Align { dance, bgm, json } => run_align(&dance, &bgm, json).map_err(|e| {
            report_align_error(&e, json);
            (e.code(), e.to_string())
        }),
        Command::Sync(args) => run_sync(&args).map_err(|e| (e.code(), e.to_string())),
        Command::Jobs(args) => jobs_cli::run(args).map_err(|e| (e.code(), e.to_string())),
        Command::Demo { dir, json } => run_demo(&dir, json).map_err(|e| (e.code(), e.to_string())),
        Command::Frame(args) => frames_cli::run_frame(&args).map_err(|e| (e.code(), e.to_string())),
        Command::Filmstrip(args) => {
            frames_cli::run_filmstrip(&args).map_err(|e| (e.code(), e.to_string()))
        }
        Command::PreviewBench(args) => {
            frames_cli::run_preview_bench(&args).map_err(|e| (e.code(), e.to_string()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("{code}: {message}");
            ExitCode::from(2)
        }
    }
}

fn run_probe(file: &std::path::Path, json: bool, role: Option<RoleArg>) -> engine::Result<()> {
    let info = engine::probe(file)?;
    if let Some(role) = role {
        info.check_role(match role {
            RoleArg::Class => engine::Role::Class,
            RoleArg::Song => engine::Role::Song,
        })?;
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&info).unwrap_or_default()
        );
    } else {
        println!(
            "{}: {} ({:.3} s, {} bytes)",
            info.path.display(),
            info.container,
            info.duration_s,
            info.size_bytes
        );
        for s in &info.streams {
            match s {
                engine::media::StreamInfo::Video(v) => println!(
                    "  #{} video {} {}x{} {:.3} fps rotation {}°",
                    v.index, v.codec, v.width, v.height, v.frame_rate, v.rotation
                ),
                engine::media::StreamInfo::Audio(a) => println!(
                    "  #{} audio {} {} Hz {} ch ({})",
                    a.index, a.codec, a.sample_rate, a.channels, a.layout
                ),
                engine::media::StreamInfo::Other { index, codec } => {
                    println!("  #{index} other {codec}")
                }
            }
        }
    }
    Ok(())
}

/// What `align` says besides the `code: message` line when it fails: with
/// `--json`, the error as one JSON object on stdout (`code`, `message` and,
/// for `no_match`, the `best_guess` placement when there is one); in text
/// mode, the best guess on stderr.
fn report_align_error(e: &engine::EngineError, json: bool) {
    let payload = e.to_payload();
    if json {
        match serde_json::to_string(&payload) {
            Ok(line) => println!("{line}"),
            Err(err) => eprintln!("internal: cannot write the error as JSON: {err}"),
        }
    } else if let Some(g) = &payload.best_guess {
        eprintln!(
            "best guess, if it is the right song: offset {:+.4} s, rate {:.6}, confidence {:.2}",
            g.offset_s, g.rate, g.confidence
        );
    }
}

fn run_align(dance: &std::path::Path, bgm: &std::path::Path, json: bool) -> engine::Result<()> {
    let opts = engine::AlignOptions::default();
    let cancel = engine::CancelToken::new();
    let r = engine::align_files(dance, bgm, &opts, &cancel, &mut |_, _| {})?;
    if json {
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
        return Ok(());
    }
    if r.verdict == engine::Verdict::Unsure {
        println!(
            "not sure this is the right song (confidence {:.2}): listen before exporting",
            r.confidence
        );
    }
    let sign = if r.offset_s >= 0.0 { "after" } else { "before" };
    println!(
        "offset {:+.4} s (the recording starts {:.3} s {} the song's start), confidence {:.2}",
        r.offset_s,
        r.offset_s.abs(),
        sign,
        r.confidence
    );
    if (r.rate - 1.0).abs() > 1e-6 {
        let ppm = (r.rate - 1.0) * 1e6;
        let how = if r.pitch_kept {
            "time-stretched, pitch kept"
        } else {
            "resampled"
        };
        println!("rate {:.6} ({ppm:+.0} ppm, {how})", r.rate);
    }
    println!(
        "song heard in the recording from {:.2} s to {:.2} s (song {:.2} s to {:.2} s)",
        r.overlap.dance_start_s, r.overlap.dance_end_s, r.overlap.bgm_start_s, r.overlap.bgm_end_s
    );
    if let Some(bpm) = r.bpm {
        println!(
            "tempo {bpm:.1} BPM, {} beats, {} downbeats",
            r.beats_s.len(),
            r.downbeats_s.len()
        );
    }
    for (i, c) in r.candidates.iter().enumerate().skip(1) {
        println!(
            "  alternative {i}: offset {:+.4} s (score {:.2})",
            c.offset_s, c.score
        );
    }
    println!(
        "timings: decode {:.0} ms, features {:.0} ms, search {:.0} ms, refine {:.0} ms",
        r.timings_ms.decode, r.timings_ms.features, r.timings_ms.search, r.timings_ms.refine
    );
    Ok(())
}

fn run_sync(args: &SyncArgs) -> engine::Result<()> {
    let req = export_request(args)?;
    let show = args.progress;
    let report = engine::export(&req, &engine::CancelToken::new(), &mut |stage, f| {
        if show {
            eprintln!("{stage} {f:.3}");
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print_report(&report);
    }
    Ok(())
}

/// The export `sync`'s arguments ask for, checked where they conflict.
fn export_request(args: &SyncArgs) -> engine::Result<engine::ExportRequest> {
    let placement = match (args.offset, args.rate) {
        (Some(offset_s), rate) => Some(engine::Placement {
            offset_s,
            rate: rate.unwrap_or(1.0),
            ref_dance_s: args.offset_at,
        }),
        (None, Some(_)) => {
            return Err(engine::EngineError::InvalidRequest(
                "--rate needs --offset (without both, the alignment finds them)".into(),
            ))
        }
        (None, None) => None,
    };
    if placement.is_some() && (args.split || args.plays.is_some()) {
        return Err(engine::EngineError::InvalidRequest(
            "--offset places one play: leave it out with --split or --plays".into(),
        ));
    }
    let mut req = engine::ExportRequest::new(&args.dance, &args.bgm, &args.out, placement);
    req.name = args.name.clone();
    req.lead_in_s = args.lead_in;
    req.audio = engine::export::AudioChoice {
        bitrate: args.bitrate.saturating_mul(1000),
        copy_if_possible: args.copy_audio,
    };
    req.retime = match args.retime {
        RetimeArg::Auto => engine::export::RetimeMode::Auto,
        RetimeArg::Resample => engine::export::RetimeMode::Resample,
        RetimeArg::KeepPitch => engine::export::RetimeMode::KeepPitch,
    };
    req.start_cut = match args.start_cut {
        StartCutArg::EditList => engine::export::StartCut::EditList,
        StartCutArg::SmartCut => engine::export::StartCut::SmartCut,
    };
    req.detect_black_tail = !args.no_black_detect;
    req.mirror = args.mirror;
    req.accept_unsure = args.accept_unsure;
    if args.split {
        req.layout = engine::export::PlaysLayout::Split;
    }
    if let Some(file) = &args.plays {
        req.plays = read_plays(file)?;
    }
    req.between = match args.between {
        BetweenArg::Recorded => engine::export::Between::Recorded,
        BetweenArg::Silence => engine::export::Between::Silence,
    };
    Ok(req)
}

/// What an export wrote and how, for a person reading the terminal.
fn print_report(report: &engine::ExportReport) {
    println!("{}", report.output.display());
    for clip in report.outputs.iter().skip(1) {
        println!("{}", clip.display());
    }
    if report.plays.len() > 1 {
        println!(
            "  {} plays of the song placed (the figures below: the first)",
            report.plays.len()
        );
    }
    println!(
        "  offset {:.3} s, rate {:.6}; kept {:.2}-{:.2} s of the recording ({:?} to {:?})",
        report.offset_s,
        report.rate,
        report.trim.start_s,
        report.trim.end_s,
        report.trim.start_reason,
        report.trim.end_reason
    );
    println!(
        "  video {:?} ({}), audio {} {} kbit/s {:?}",
        report.video,
        report.video_codec,
        report.audio.codec,
        report.audio.bitrate / 1000,
        report.audio.source
    );
    println!("  start {:?}", report.start_cut);
    if let Some(why) = &report.start_cut_reason {
        println!(
            "  the start is an edit list ({} frames before the cut hidden), not a smart cut: {why}",
            report.trim.hidden_frames
        );
    }
}

/// The plays in `file`: a JSON list of plays, or an object whose
/// `segments` are (`align --json`); checked as every list of plays is.
fn read_plays(file: &std::path::Path) -> engine::Result<Vec<engine::Play>> {
    let bad = |why: String| {
        engine::EngineError::InvalidRequest(format!("--plays {}: {why}", file.display()))
    };
    let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let list = match value {
        serde_json::Value::Object(mut o) => o.remove("segments").unwrap_or_default(),
        other => other,
    };
    let plays: Vec<engine::Play> = serde_json::from_value(list).map_err(|e| {
        bad(format!(
            "not a list of plays ({{dance_start_s, dance_end_s, offset_s, rate}}): {e}"
        ))
    })?;
    if plays.is_empty() {
        return Err(bad("it holds no play".into()));
    }
    engine::validate_plays(&plays).map_err(|e| bad(e.to_string()))?;
    Ok(plays)
}

fn run_demo(dir: &std::path::Path, json: bool) -> engine::Result<()> {
    let demo = engine::demo::make_demo(dir)?;
    if json {
        println!("{}", serde_json::to_string(&demo).unwrap_or_default());
    } else {
        println!("{}", demo.class_video.display());
        println!("{}", demo.song.display());
        println!(
            "  the song starts {:.4} s into the class video ({:.1} s, {} picture); try:",
            demo.offset_s, demo.class_duration_s, demo.video_codec
        );
        println!(
            "  beatsync align --dance '{}' --bgm '{}'",
            demo.class_video.display(),
            demo.song.display()
        );
    }
    Ok(())
}

//! `beatsync`: the command-line face of the engine. Same code path as the app.

use beatsync_engine as engine;
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
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Class,
    Song,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe { file, json, role } => run_probe(&file, json, role),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {}", e.code(), e);
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
                engine::StreamInfo::Video(v) => println!(
                    "  #{} video {} {}x{} {:.3} fps rotation {}°",
                    v.index, v.codec, v.width, v.height, v.frame_rate, v.rotation
                ),
                engine::StreamInfo::Audio(a) => println!(
                    "  #{} audio {} {} Hz {} ch ({})",
                    a.index, a.codec, a.sample_rate, a.channels, a.layout
                ),
                engine::StreamInfo::Other { index, codec } => println!("  #{index} other {codec}"),
            }
        }
    }
    Ok(())
}

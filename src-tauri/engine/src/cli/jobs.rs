//! `beatsync jobs …`: the job queue from the command line — the same store
//! and runner the app uses.

use beatsync_engine::export::{Between, PlaysLayout};
use beatsync_engine::jobs::validate;
use beatsync_engine::jobs::{
    AudioMode, EngineWork, Job, JobInput, JobOptions, JobState, JobsError, JobsResult, NewJob,
    Retention, Runner, RunnerConfig, Store, StoreEvent,
};
use beatsync_engine::media::fingerprint::fingerprint;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args)]
pub struct JobsArgs {
    /// Where the job store lives (default: $BEATSYNC_DATA_DIR, else the user data folder).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: JobsCommand,
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Queue a class video to be synced to a song.
    Add(AddArgs),
    /// Process the queue (Ctrl-C stops cleanly; interrupted work resumes next time).
    Run {
        /// Return when no job is waiting or running.
        #[arg(long)]
        until_empty: bool,
        /// Seconds without progress before a stage counts as stalled.
        #[arg(long, default_value_t = 120)]
        stall_after: u64,
    },
    /// List jobs, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one job in full (JSON).
    Show {
        id: String,
    },
    /// Give the go for an analysed job's export.
    Export {
        id: String,
        /// The analysis was not sure of the song and you listened: it is the
        /// right one. Without it such a job is not exported.
        #[arg(long)]
        confirm_song: bool,
    },
    Cancel {
        id: String,
    },
    Retry {
        id: String,
    },
    /// Apply the retention policy to finished jobs.
    Prune {
        #[arg(long, default_value_t = 500)]
        keep: usize,
        #[arg(long, default_value_t = 90)]
        days: u64,
    },
}

#[derive(Args)]
struct AddArgs {
    #[arg(long)]
    dance: PathBuf,
    #[arg(long)]
    bgm: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Stop after the analysis; export later (`beatsync jobs export ID`).
    #[arg(long)]
    no_auto_export: bool,
    #[arg(long)]
    name: Option<String>,
    #[arg(long, default_value_t = 0.0)]
    lead_in: f64,
    /// Copy the song's AAC packets when possible instead of encoding.
    #[arg(long)]
    copy_audio: bool,
    /// With several plays of the song (the analysis's segments): one clip
    /// per play instead of one video.
    #[arg(long)]
    split: bool,
    /// With several plays in one video: what is heard between them.
    #[arg(long, value_enum, default_value_t = BetweenArg::Recorded)]
    between: BetweenArg,
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BetweenArg {
    Recorded,
    Silence,
}

fn open(data_dir: &Option<PathBuf>) -> JobsResult<Store> {
    let dir = match data_dir {
        Some(d) => d.clone(),
        None => Store::default_dir()?,
    };
    let (store, recovery) = Store::open(&dir)?;
    if let Some(r) = recovery {
        eprintln!(
            "warning: the job database was damaged ({}); it was moved to {} and {} job(s) were recovered",
            r.reason,
            r.moved_to.display(),
            r.recovered_jobs
        );
    }
    Ok(store)
}

fn input(path: &Path) -> JobsResult<JobInput> {
    let path = std::fs::canonicalize(path)
        .map_err(|_| beatsync_engine::EngineError::NotFound(path.to_path_buf()))?;
    Ok(JobInput {
        fingerprint: fingerprint(&path)?,
        path,
    })
}

fn line(j: &Job) -> String {
    let what = match (&j.state, &j.error) {
        (JobState::Done, _) => j
            .output_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        (_, Some(e)) => format!("{}: {}", e.code, e.message),
        (s, None) if s.is_running() => format!(
            "{} {:.0}%",
            j.stage.map_or("", |s| s.as_str()),
            j.progress * 100.0
        ),
        _ if j.awaits_confirmation() => format!(
            "not sure this is the right song: listen, then `beatsync jobs export {} --confirm-song`",
            j.id
        ),
        _ => String::new(),
    };
    format!(
        "{}  {:<9}  {}  {}",
        j.id,
        j.state.as_str(),
        j.recording
            .path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        what
    )
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn run(args: JobsArgs) -> JobsResult<()> {
    let store = open(&args.data_dir)?;
    match args.command {
        JobsCommand::Add(add) => add_job(&store, add)?,
        JobsCommand::Run {
            until_empty,
            stall_after,
        } => run_queue(store, until_empty, stall_after)?,
        JobsCommand::List { json } => list(&store, json)?,
        JobsCommand::Show { id } => print_json(&store.get(&id)?),
        JobsCommand::Export { id, confirm_song } => {
            if confirm_song {
                store.confirm_song(&id)?;
            }
            let opts = store.get(&id)?.options;
            println!("{}", line(&store.request_export(&id, &opts)?));
        }
        JobsCommand::Cancel { id } => println!("{}", line(&store.cancel(&id)?)),
        JobsCommand::Retry { id } => println!("{}", line(&store.retry(&id)?)),
        JobsCommand::Prune { keep, days } => {
            let n = store.prune(Retention {
                keep_last: keep,
                max_age: Duration::from_secs(days * 86_400),
            })?;
            println!("removed {n} finished job(s)");
        }
    }
    Ok(())
}

fn add_job(store: &Store, a: AddArgs) -> JobsResult<()> {
    // Numbers first: `--lead-in inf` is refused before anything is read.
    let lead_in_s = validate::finite_in("--lead-in", a.lead_in, 0.0, validate::MAX_LEAD_IN_S)?;
    beatsync_engine::probe(&a.dance)?.check_role(beatsync_engine::Role::Class)?;
    beatsync_engine::probe(&a.bgm)?.check_role(beatsync_engine::Role::Song)?;
    std::fs::create_dir_all(&a.out).map_err(|e| JobsError::Io {
        path: a.out.clone(),
        reason: e.to_string(),
    })?;
    let out = std::fs::canonicalize(&a.out).unwrap_or(a.out);
    let job = store.add(NewJob {
        recording: input(&a.dance)?,
        song: input(&a.bgm)?,
        options: JobOptions {
            out_dir: Some(out),
            name: a.name,
            lead_in_s,
            audio_mode: if a.copy_audio {
                AudioMode::Copy
            } else {
                AudioMode::Encode
            },
            auto_export: !a.no_auto_export,
            layout: if a.split {
                PlaysLayout::Split
            } else {
                PlaysLayout::OneVideo
            },
            between: match a.between {
                BetweenArg::Recorded => Between::Recorded,
                BetweenArg::Silence => Between::Silence,
            },
            ..Default::default()
        },
        max_attempts: a.max_attempts,
    })?;
    if a.json {
        print_json(&job);
    } else {
        println!("{}", job.id);
    }
    Ok(())
}

/// Processes the queue, printing each state change, until stopped (Ctrl-C)
/// or, with `until_empty`, until nothing waits.
fn run_queue(store: Store, until_empty: bool, stall_after: u64) -> JobsResult<()> {
    let store = Arc::new(store);
    let cfg = RunnerConfig {
        stall_after: Duration::from_secs(stall_after.max(1)),
        ..RunnerConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| JobsError::Io {
            path: store.dir().to_path_buf(),
            reason: e.to_string(),
        })?;
    rt.block_on(async move {
        let runner = Runner::start(store.clone(), Arc::new(EngineWork::default()), cfg)?;
        let mut events = store.subscribe();
        let printer = tokio::spawn(async move {
            let mut last: std::collections::HashMap<String, JobState> = Default::default();
            while let Ok(ev) = events.recv().await {
                if let StoreEvent::JobChanged(j) = ev {
                    if last.insert(j.id.clone(), j.state) != Some(j.state) {
                        eprintln!("{}", line(&j));
                    }
                }
            }
        });
        let stopper = runner.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopping: running work goes back to the queue");
                stopper.stop();
            }
        });
        let r = runner.clone().run(until_empty).await;
        printer.abort();
        r
    })
}

fn list(store: &Store, json: bool) -> JobsResult<()> {
    let (jobs, unreadable) = store.list_checked(&[], 10_000)?;
    for u in &unreadable {
        eprintln!(
            "warning: job {} could not be read and is left out of this list ({})",
            u.id, u.reason
        );
    }
    if json {
        print_json(&jobs);
        return Ok(());
    }
    for j in &jobs {
        println!("{}", line(j));
    }
    let s = store.stats()?;
    if let Some(rate) = s.success_rate {
        println!(
            "history: {} done, {} failed, {} cancelled — {:.0}% success",
            s.done,
            s.failed,
            s.cancelled,
            rate * 100.0
        );
    }
    Ok(())
}

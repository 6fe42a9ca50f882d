//! What a job does, behind a trait so the runner's state handling is tested
//! with scripted work, and the real engine plugs in the same way.

use super::model::{Job, Stage};
use crate::align::AlignResult;
use crate::cancel::CancelToken;
use crate::error::Result;
use std::path::{Path, PathBuf};

/// Called by an export with its finished partial file just before the file
/// gets its final name (the runner records the file's seal then); an error
/// stops the export with nothing under the final name.
pub type BeforeCommit<'a> = &'a mut dyn FnMut(&Path) -> Result<()>;

/// The result of a successful export.
#[derive(Debug, Clone)]
pub struct ExportOutcome {
    pub output: PathBuf,
    /// The engine's export report, kept with the job.
    pub report: serde_json::Value,
}

/// The two kinds of work a job needs. Both run on a blocking thread, report
/// `(stage, overall fraction 0..1)` through `progress`, and stop promptly with
/// `EngineError::Cancelled` once `cancel` is set.
pub trait Work: Send + Sync + 'static {
    /// Finds the placement: the job's checkpoint.
    fn analyze(
        &self,
        job: &Job,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(Stage, f64),
    ) -> Result<AlignResult>;
    /// The free path the export will write to. The runner records it in the
    /// store before exporting, so a run killed after the final rename but
    /// before the store says `done` is recognised instead of exported twice.
    fn plan_output(&self, job: &Job) -> Result<PathBuf>;
    /// Checks that a file found at the planned path, and matching the seal
    /// the job's export recorded, is a complete output.
    fn adopt(&self, job: &Job, output: &Path) -> Result<serde_json::Value>;
    /// Writes the output file at `job.output_path` (the planned path; a
    /// numbered name when taken meanwhile), atomically: nothing under the
    /// final name unless complete, and `before_commit` called with the
    /// finished file before it is renamed.
    fn export(
        &self,
        job: &Job,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(Stage, f64),
        before_commit: BeforeCommit<'_>,
    ) -> Result<ExportOutcome>;
}

/// Maps an engine stage's own 0..1 fraction onto the whole job phase, so the
/// progress bar and ETA move steadily through every stage.
fn overall(stages: &[(Stage, f64, f64)], stage: Stage, f: f64) -> Option<f64> {
    stages
        .iter()
        .find(|(s, _, _)| *s == stage)
        .map(|(_, from, to)| from + (to - from) * f.clamp(0.0, 1.0))
}

const ANALYSIS_STAGES: &[(Stage, f64, f64)] = &[
    (Stage::Decode, 0.0, 0.55),
    (Stage::Features, 0.55, 0.65),
    (Stage::Search, 0.65, 0.8),
    (Stage::Refine, 0.8, 1.0),
];

/// `align` and `plan` keep the fraction reached before them.
const EXPORT_STAGES: &[(Stage, f64, f64)] = &[
    (Stage::Analyse, 0.0, 0.08),
    (Stage::Export, 0.08, 0.9),
    (Stage::Finish, 0.9, 0.95),
    (Stage::Verify, 0.95, 1.0),
    (Stage::Done, 1.0, 1.0),
];

/// Wraps a progress callback: the engine's stage names become `Stage`s and
/// stage fractions one monotonic overall fraction. A name no `Stage` has
/// (a test runs the real engine to keep that from happening) is reported as
/// the stage before it, so the runner still sees the work moving.
fn staged<'a>(
    stages: &'static [(Stage, f64, f64)],
    progress: &'a mut dyn FnMut(Stage, f64),
) -> impl FnMut(&str, f64) + 'a {
    let mut last = 0.0f64;
    let mut current: Option<Stage> = None;
    move |name: &str, f: f64| {
        let stage = match Stage::parse(name) {
            Some(s) => s,
            None => {
                tracing::warn!("the engine reported the unknown stage {name:?}");
                match current {
                    Some(s) => s,
                    None => return,
                }
            }
        };
        current = Some(stage);
        let o = overall(stages, stage, f).unwrap_or(last).max(last);
        last = o;
        progress(stage, o);
    }
}

/// The real work: the engine's aligner and exporter.
#[derive(Debug, Clone, Default)]
pub struct EngineWork {
    pub align: crate::align::AlignOptions,
    /// Tests make every export's writes fail with it (see
    /// [`crate::export::WriteFault`]); the app and the CLI never set it.
    #[doc(hidden)]
    pub write_fault: Option<crate::export::WriteFault>,
}

impl Work for EngineWork {
    fn analyze(
        &self,
        job: &Job,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(Stage, f64),
    ) -> Result<AlignResult> {
        let mut p = staged(ANALYSIS_STAGES, progress);
        crate::align::align_files(
            &job.recording.path,
            &job.song.path,
            &self.align,
            cancel,
            &mut p,
        )
    }

    fn plan_output(&self, job: &Job) -> Result<PathBuf> {
        let req = export_request(job)?;
        let name = if splits(&req) {
            crate::export::clip_name(&req, 0)?
        } else {
            crate::export::output_name(&req)?
        };
        (1..10_000)
            .map(|n| req.out_dir.join(crate::export::numbered(&name, n)))
            .find(|p| !p.exists())
            .ok_or_else(|| {
                crate::error::EngineError::InvalidRequest(format!(
                    "no free file name like {name} in {}",
                    req.out_dir.display()
                ))
            })
    }

    fn adopt(&self, job: &Job, output: &Path) -> Result<serde_json::Value> {
        let info = crate::media::probe::probe_fast(output)?;
        info.require_video()?;
        info.require_audio()?;
        let _ = job;
        Ok(
            serde_json::json!({ "output": super::os_path::json_value(output), "adopted": true, "duration_s": info.duration_s }),
        )
    }

    fn export(
        &self,
        job: &Job,
        cancel: &CancelToken,
        progress: &mut dyn FnMut(Stage, f64),
        before_commit: BeforeCommit<'_>,
    ) -> Result<ExportOutcome> {
        let mut req = export_request(job)?;
        // One file: the planned (maybe numbered) name. Clips keep theirs,
        // made from the job's name; the seals find them whatever they got.
        if let Some(name) = job.output_path.as_ref().and_then(|p| p.file_name()) {
            if !splits(&req) {
                req.name = Some(name.to_string_lossy().into_owned());
            }
        }
        req.write_fault = self.write_fault;
        crate::export::remove_stale_partials(&req.out_dir);
        let mut p = staged(EXPORT_STAGES, progress);
        let report = crate::export::export_sealed(&req, cancel, &mut p, before_commit)?;
        let json = serde_json::to_value(&report)
            .map_err(|e| crate::error::EngineError::media(&report.output, e))?;
        Ok(ExportOutcome {
            output: report.output,
            report: json,
        })
    }
}

/// Whether the export writes one clip per play.
fn splits(req: &crate::export::ExportRequest) -> bool {
    req.plays.len() >= 2 && req.layout == crate::export::PlaysLayout::Split
}

/// Builds the export request: the user's placement if they nudged it, else
/// the checkpointed analysis; the analysis also says where the song is heard.
/// The plays: the teacher's list when the options have one, else every
/// segment of the analysis (when it found two or more, and the user did not
/// nudge the one placement).
pub fn export_request(job: &Job) -> Result<crate::export::ExportRequest> {
    use crate::export::{AudioChoice, ExportRequest, SongHeard};
    use crate::timeline::Placement;
    let out_dir = job.options.out_dir.clone().ok_or_else(|| {
        crate::error::EngineError::InvalidRequest("no output folder chosen for this job".into())
    })?;
    let mut req = ExportRequest::new(&job.recording.path, &job.song.path, &out_dir, None);
    req.name = job.options.name.clone();
    req.lead_in_s = job.options.lead_in_s;
    req.mirror = job.options.mirror;
    req.trim_start_s = job.options.trim_start_s;
    req.trim_end_s = job.options.trim_end_s;
    req.audio = AudioChoice {
        copy_if_possible: job.options.audio_mode == super::model::AudioMode::Copy,
        ..AudioChoice::default()
    };
    if let Some(a) = &job.checkpoint {
        let mid = 0.5 * (a.overlap.dance_start_s + a.overlap.dance_end_s);
        req.placement = Some(Placement {
            offset_s: a.offset_s,
            rate: a.rate,
            ref_dance_s: Some(mid),
        });
        req.song_heard = Some(SongHeard {
            recording_start_s: a.overlap.dance_start_s,
        });
        req.retime = if a.pitch_kept {
            crate::export::audio::RetimeMode::KeepPitch
        } else {
            crate::export::audio::RetimeMode::Resample
        };
    }
    req.layout = job.options.layout;
    req.between = job.options.between;
    match (&job.options.plays, &job.checkpoint) {
        (Some(plays), _) if plays.is_empty() => {
            return Err(crate::error::EngineError::NothingToExport {
                reason: "every play was left out; keep at least one".into(),
            })
        }
        (Some(plays), _) => req.plays = plays.clone(),
        (None, Some(a)) if a.segments.len() >= 2 && job.options.offset_s.is_none() => {
            req.plays = a.segments.iter().map(crate::timeline::Play::from).collect();
        }
        _ => {}
    }
    if let Some(offset_s) = job.options.offset_s {
        let base = req.placement.unwrap_or(Placement {
            offset_s,
            rate: 1.0,
            ref_dance_s: None,
        });
        req.placement = Some(Placement {
            offset_s,
            rate: job.options.rate.unwrap_or(base.rate),
            ref_dance_s: base.ref_dance_s,
        });
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_fractions_become_one_steady_fraction() {
        let mut seen = Vec::new();
        {
            let mut sink = |s: Stage, f: f64| seen.push((s, f));
            let mut p = staged(ANALYSIS_STAGES, &mut sink);
            p("unknown", 0.3);
            p("decode", 0.0);
            p("decode", 1.0);
            p("features", 0.5);
            p("search", 1.0);
            p("unknown", 0.1);
            p("refine", 1.0);
        }
        use Stage::*;
        let expected = [
            (Decode, 0.0),
            (Decode, 0.55),
            (Features, 0.6),
            (Search, 0.8),
            (Search, 0.8),
            (Refine, 1.0),
        ];
        assert_eq!(seen.len(), expected.len(), "{seen:?}");
        for ((stage, got), (want_stage, want)) in seen.iter().zip(expected) {
            assert_eq!(*stage, want_stage, "{seen:?}");
            assert!((got - want).abs() < 1e-9, "{seen:?}");
        }
    }
}

//! One clip per play (`PlaysLayout::Split`): `<name>_play01.mp4`, … each
//! trimmed to its play as a single-play export is (lead-in, smart-cut or
//! edit-list start, the song at the play's own placement).
//!
//! All or nothing: every clip is written, made durable and read back under
//! its partial name first; only then are they sealed (`before_commit`, in
//! order) and renamed. A failure or a cancel before that leaves no file (the
//! partials are removed); a rename that fails takes back the clips already
//! renamed, so a retried export does not find half of them in the way.

use super::analysis::InputAnalysis;
use super::progress::Progress;
use super::report::{report, ClipReport, ExportReport, Written};
use super::request::{clip_name, ExportRequest, PlaysLayout};
use super::{write_verified, Finished};
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::timeline::Play;
use std::path::{Path, PathBuf};

/// Writes one clip per play of `req` (two or more), then commits them all.
pub(super) fn export_clips(
    req: &ExportRequest,
    a: &mut InputAnalysis,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
    before_commit: &mut dyn FnMut(&Path) -> Result<()>,
) -> Result<ExportReport> {
    let clips = clip_requests(req)?;
    let n = clips.len() as f64;
    let mut written = Vec::with_capacity(clips.len());
    for (k, (play, clip)) in clips.iter().enumerate() {
        // Each clip's writing, fsync and read-back are one share of `export`.
        let mut scaled = |stage: &str, f: f64| {
            let within = match stage {
                "export" => 0.9 * f,
                "finish" => 0.9 + 0.05 * f,
                "verify" => 0.95 + 0.05 * f,
                _ => return progress(stage, f),
            };
            progress("export", (k as f64 + within) / n);
        };
        let mut paced = Progress::new(&mut scaled);
        let finished = write_verified(clip, a, cancel, &mut paced)?;
        // The analysis is counted once, with the first clip.
        a.elapsed_ms = 0;
        written.push(clip_written(clip, a, *play, finished));
    }
    for (file, _, _) in &written {
        before_commit(file.partial_path())?;
    }
    let mut reports = Vec::with_capacity(written.len());
    let mut committed: Vec<PathBuf> = Vec::with_capacity(written.len());
    for (file, mut single, mut line) in written {
        match file.commit() {
            Ok(path) => {
                single.output = path.clone();
                line.output = path.clone();
                committed.push(path);
                reports.push((single, line));
            }
            Err(e) => {
                for path in &committed {
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
        }
    }
    progress("done", 1.0);
    Ok(combined(req, reports))
}

/// A clip written and verified: its file (partial), its report as a
/// single export, and its line in the combined report.
type ClipWritten = (super::output::OutputFile, ExportReport, ClipReport);

fn clip_written(clip: &ExportRequest, a: &InputAnalysis, play: Play, f: Finished) -> ClipWritten {
    let partial = f.file.partial_path().to_path_buf();
    let single = report(
        clip,
        &f.plan,
        Written {
            output: partial.clone(),
            video_codec: a.picture.track.codec.clone(),
            info: f.info,
            audio: f.audio,
            audio_bytes: f.audio_bytes,
        },
        f.timings,
    );
    let line = ClipReport {
        output: partial,
        play,
        trim: single.trim.clone(),
        start_cut: single.start_cut,
        duration_s: single.duration_s,
        size_bytes: single.size_bytes,
    };
    (f.file, single, line)
}

/// One request per play inside the user's trim: the play alone, under its
/// clip name; the user's start or end applies to the clip it falls in.
fn clip_requests(req: &ExportRequest) -> Result<Vec<(Play, ExportRequest)>> {
    let mut clips = Vec::new();
    for (i, play) in req.plays.iter().enumerate() {
        let outside = req.trim_end_s.is_some_and(|e| play.recording_start_s >= e)
            || req.trim_start_s.is_some_and(|s| play.recording_end_s <= s);
        if outside {
            continue;
        }
        let mut clip = req.clone();
        clip.plays = vec![*play];
        clip.layout = PlaysLayout::OneVideo;
        clip.name = Some(clip_name(req, i)?);
        clip.trim_start_s = req
            .trim_start_s
            .filter(|&s| s > play.recording_start_s - req.lead_in_s);
        clip.trim_end_s = req.trim_end_s.filter(|&e| e < play.recording_end_s);
        clips.push((*play, clip));
    }
    if clips.is_empty() {
        return Err(EngineError::NothingToExport {
            reason: "no play lies between the chosen start and end; move them or export one video"
                .into(),
        });
    }
    Ok(clips)
}

/// The export's report: the first clip's, with every file, every clip, and
/// the totals (duration, size, time per step).
fn combined(req: &ExportRequest, clips: Vec<(ExportReport, ClipReport)>) -> ExportReport {
    let mut iter = clips.into_iter();
    let Some((mut total, first)) = iter.next() else {
        unreachable!("clip_requests returns at least one clip")
    };
    total.plays = req.plays.clone();
    total.outputs = vec![first.output.clone()];
    total.clips = vec![first];
    for (single, line) in iter {
        total.outputs.push(line.output.clone());
        total.duration_s += line.duration_s;
        total.size_bytes += line.size_bytes;
        for (step, ms) in single.timings_ms {
            *total.timings_ms.entry(step).or_insert(0) += ms;
        }
        total.clips.push(line);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn play(start: f64, end: f64) -> Play {
        Play {
            recording_start_s: start,
            recording_end_s: end,
            offset_s: start,
            rate: 1.0,
            cut_before: false,
        }
    }

    #[test]
    fn each_play_gets_a_request_of_its_own_inside_the_users_trim() {
        let mut req = ExportRequest::new(
            Path::new("/v/class.mp4"),
            Path::new("/s.m4a"),
            Path::new("/o"),
            None,
        );
        req.plays = vec![play(10.0, 40.0), play(60.0, 90.0), play(100.0, 130.0)];
        req.layout = PlaysLayout::Split;
        req.lead_in_s = 2.0;
        let clips = clip_requests(&req).expect("clips");
        let names: Vec<_> = clips
            .iter()
            .map(|(_, c)| c.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            ["class_play01.mp4", "class_play02.mp4", "class_play03.mp4"]
        );
        assert!(clips
            .iter()
            .all(|(p, c)| c.plays == vec![*p] && c.layout == PlaysLayout::OneVideo));
        req.trim_start_s = Some(70.0);
        req.trim_end_s = Some(95.0);
        let clips = clip_requests(&req).expect("clips");
        assert_eq!(clips.len(), 1);
        assert_eq!(clips[0].1.name.as_deref(), Some("class_play02.mp4"));
        assert_eq!(clips[0].1.trim_start_s, Some(70.0));
        assert_eq!(clips[0].1.trim_end_s, None);
        req.trim_start_s = Some(131.0);
        req.trim_end_s = None;
        assert!(matches!(
            clip_requests(&req),
            Err(EngineError::NothingToExport { .. })
        ));
    }
}

//! `export`: the finished video — the recording's picture, copied packet for
//! packet, with the clean song placed exactly in time, trimmed to where the
//! song is heard.
//!
//! # The stages
//! [`export`] aligns when the request has no placement (beside the input
//! analysis), then: [`analysis`] (each input opened once, see [`source`]) →
//! [`plan`] (trim, black ending, cut, smart-cut head) → open the output
//! ([`output`]) → add the video ([`video`]) → start the audio ([`audio`]) →
//! interleave ([`mux`]) → finish the output (fsync, read back, rename) →
//! [`report`]. Data flows one way: each stage gets what the earlier ones
//! decided and calls nothing above it.
//!
//! # Frame-accurate start: smart cut by default
//! The cut rarely falls on a keyframe. By default ([`StartCut::SmartCut`])
//! the frames from the cut to the next keyframe (at most one GOP) are
//! decoded and re-encoded (libx264 veryfast CRF 14, libx265 ultrafast CRF 16; no B-frames) under
//! parameter-set ids of their own, added to the track's `avcC`, and
//! everything from that keyframe on is copied (see [`smartcut`]). The file
//! then starts at the cut whether or not a player honours MP4 edit lists;
//! the video track's first decode time is 0.
//! The fallback is the edit list ([`StartCut::EditList`], also available on
//! request): the packets are copied from the keyframe before the cut and an
//! edit list starts presentation at the cut. The picture stays bit-exact,
//! and QuickTime, WebKit, Chrome, VLC and ffmpeg honour it, but a player,
//! editor or upload transcoder that ignores edit lists shows up to one GOP
//! of frames before the cut with the song out of place. The export falls
//! back to it when the head cannot be re-encoded here (a codec without an
//! in-process re-encoder, no libx264, parameter sets it cannot place, an
//! encoder that refuses the frames); the report then names it
//! ([`StartCutUsed::EditList`]) with the reason.
//! # Inputs and outputs
//! MP4, MOV, MKV and AVI in (any container FFmpeg reads); MP4 out, always.
//! The video codec must fit MP4 (H.264, HEVC — tagged `hvc1` for Apple —,
//! MPEG-4, AV1, VP9…); one that does not (FFV1, ProRes, raw video…) is
//! refused with an `unsupported` error saying to convert the video first:
//! no MKV fallback, since MKV cannot start frame-accurately without an edit
//! list. The audio is the song only: AAC-LC, 192 kbit/s by default, at the
//! song's sample rate, or the song's own AAC packets ([`AudioChoice`]).
//! Crash safety: see [`output`].

pub(crate) mod analysis;
pub(crate) mod audio;
mod clips;
pub(crate) mod detect;
pub(crate) mod mux;
pub(crate) mod output;
pub(crate) mod plan;
pub(crate) mod progress;
pub(crate) mod report;
pub(crate) mod request;
pub(crate) mod smartcut;
pub(crate) mod source;
pub(crate) mod trim;
pub(crate) mod video;

pub use audio::{AudioSource, Retime, RetimeMode};
#[doc(hidden)]
pub use output::WriteFault;
pub(crate) use output::{remove_stale_partials, PARTIAL_PREFIX};
pub use report::{AudioReport, ExportReport, StartCutUsed, TrimReport, VideoMethod};
pub use request::{AudioChoice, Between, ExportRequest, PlaysLayout, SongHeard, StartCut};
pub use trim::{EndReason, StartReason};

use crate::align::{AlignOptions, AlignResult, Verdict};
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::media::fingerprint::FileStamp;
use crate::timeline::{Placement, Play};
use analysis::{analyse_inputs, InputAnalysis};
use audio::mix::{mix_pieces, Mix, MixLayout};
use audio::track::AudioTrack;
use audio::SongRender;
use mux::{aac_packets_at_most, index_space, interleave, Mux};
pub(crate) use output::numbered;
use output::{check_out_dir, OutputFile};
use plan::{plan_export, ExportPlan};
use progress::{with_ticks, Progress};
use report::{report, Timings, Written};
use request::validate;
pub(crate) use request::{clip_name, output_name};
use std::time::Instant;
use video::copy::VideoCopy;

/// Exports: runs the aligner when the request has no placement (in parallel
/// with the input analysis), then [`export_analysed`].
///
/// `progress(stage, fraction)` is called at least every ~100-250 ms with the
/// fraction of the current stage: `align` (only without a placement) or
/// `analyse`, `plan` (trim, black ending, smart-cut head), `export` (writing,
/// by output time), `finish` (fsync), `verify`, then `done` with 1.0.
/// `cancel` is checked between packets and frames: the call then returns
/// `EngineError::Cancelled` within a fraction of a second, with the partial
/// file removed.
pub fn export(
    req: &ExportRequest,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<ExportReport> {
    export_sealed(req, cancel, progress, &mut |_| Ok(()))
}

/// [`export`], calling `before_commit` with the finished, verified partial
/// file just before it gets its final name; an error from it stops the
/// export (the job runner records the file's seal there).
pub fn export_sealed(
    req: &ExportRequest,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
    before_commit: &mut dyn FnMut(&std::path::Path) -> Result<()>,
) -> Result<ExportReport> {
    let stamps = [FileStamp::of(&req.recording), FileStamp::of(&req.song)];
    export_once(req, cancel, progress, before_commit).map_err(|e| input_change_behind(e, &stamps))
}

/// A failure while an input was being moved or written to is reported as
/// that change: a class video rewritten during the export shows up first as
/// a read, mux or read-back error, which would send the user looking at the
/// output folder.
fn input_change_behind(e: EngineError, stamps: &[Result<FileStamp>]) -> EngineError {
    if matches!(e, EngineError::Cancelled | EngineError::InputChanged(_)) {
        return e;
    }
    for stamp in stamps.iter().flatten() {
        if let Err(changed) = stamp.check() {
            return changed;
        }
    }
    e
}

fn export_once(
    req: &ExportRequest,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
    before_commit: &mut dyn FnMut(&std::path::Path) -> Result<()>,
) -> Result<ExportReport> {
    validate(req)?;
    check_out_dir(&req.out_dir)?;
    if req.placement.is_some() || !req.plays.is_empty() {
        let analysis = {
            let mut paced = Progress::new(progress);
            with_ticks("analyse", &mut paced, |report| {
                analyse_inputs(&req.recording, &req.song, cancel, &mut |_, f| report(f))
            })?
        };
        return export_plays(req, analysis, cancel, progress, before_commit);
    }
    let t_align = Instant::now();
    let (aligned, mut analysis) = {
        let mut paced = Progress::new(progress);
        with_ticks("align", &mut paced, |report| {
            Ok(align_beside_analysis(req, cancel, report))
        })?
    };
    let aligned = aligned?;
    if aligned.verdict == Verdict::Unsure && !req.accept_unsure {
        return Err(EngineError::NeedsConfirmation {
            confidence: aligned.confidence,
        });
    }
    let align_ms = t_align.elapsed().as_millis() as u64;
    // The analysis ran alongside; count the wall time once.
    if let Ok(a) = analysis.as_mut() {
        a.elapsed_ms = 0;
    }
    let resolved = aligned_request(req, &aligned);
    let mut report = export_plays(&resolved, analysis?, cancel, progress, before_commit)?;
    report.confidence = Some(aligned.confidence);
    report.timings_ms.insert("align".to_string(), align_ms);
    if let Some(t) = report.timings_ms.get_mut("total") {
        *t += align_ms;
    }
    Ok(report)
}

/// One video (one play, or several placed each in its own), or one clip
/// per play. The layout matters only with two plays or more.
fn export_plays(
    req: &ExportRequest,
    mut a: InputAnalysis,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
    before_commit: &mut dyn FnMut(&std::path::Path) -> Result<()>,
) -> Result<ExportReport> {
    if req.plays.len() >= 2 && req.layout == PlaysLayout::Split {
        return clips::export_clips(req, &mut a, cancel, progress, before_commit);
    }
    export_analysed(req, &mut a, cancel, progress, before_commit)
}

/// Runs the aligner and, on a thread beside it, the input analysis.
fn align_beside_analysis(
    req: &ExportRequest,
    cancel: &CancelToken,
    report: &mut dyn FnMut(f64),
) -> (Result<AlignResult>, Result<InputAnalysis>) {
    let analysis_cancel = CancelToken::new();
    std::thread::scope(|scope| {
        let ac = analysis_cancel.clone();
        // With fewer than four cores the analysis waits until the aligner
        // leaves its two-thread stages (decoding both files, their
        // features): run beside them, it would slow them down by about
        // what it costs; beside the later stages it uses an idle core.
        // Dropping `go` starts it (at the latest when the aligner returns).
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let job = scope.spawn(move || {
            let _ = wait.recv();
            ac.check()?;
            analyse_inputs(&req.recording, &req.song, &ac, &mut |_, _| {})
        });
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut go = (cores < 4).then_some(go);
        let options = AlignOptions {
            beats: false,
            ..Default::default()
        };
        let aligned = crate::align::align_files(
            &req.recording,
            &req.song,
            &options,
            cancel,
            &mut |stage, f| {
                if go.is_some() && !matches!(stage, "decode" | "features") {
                    go = None;
                }
                report(f)
            },
        );
        if aligned.is_err() {
            analysis_cancel.cancel();
        }
        drop(go);
        let analysis = job.join().unwrap_or_else(|_| {
            Err(EngineError::media(
                &req.recording,
                "the input analysis failed",
            ))
        });
        (aligned, analysis)
    })
}

/// The request with the aligner's placement, where the song is heard, and
/// (unless asked otherwise) the aligner's way of following the rate.
fn aligned_request(req: &ExportRequest, aligned: &AlignResult) -> ExportRequest {
    let mut resolved = req.clone();
    resolved.placement = Some(Placement {
        offset_s: aligned.offset_s,
        rate: aligned.rate,
        ref_dance_s: Some(0.5 * (aligned.overlap.dance_start_s + aligned.overlap.dance_end_s)),
    });
    resolved.song_heard = Some(SongHeard {
        recording_start_s: aligned.overlap.dance_start_s,
    });
    if resolved.plays.is_empty() && aligned.segments.len() >= 2 {
        // A whole-class take: every play the aligner found, each placed.
        resolved.plays = aligned.segments.iter().map(Play::from).collect();
    }
    if resolved.retime == RetimeMode::Auto {
        // Follow the recording: a pitch-kept speed change is matched with a
        // pitch-kept stretch, a resampled one (or drift) by resampling.
        resolved.retime = if aligned.pitch_kept {
            RetimeMode::KeepPitch
        } else {
            RetimeMode::Resample
        };
    }
    resolved
}

/// Exports given an [`InputAnalysis`] of the same files.
fn export_analysed(
    req: &ExportRequest,
    a: &mut InputAnalysis,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&str, f64),
    before_commit: &mut dyn FnMut(&std::path::Path) -> Result<()>,
) -> Result<ExportReport> {
    let mut progress = Progress::new(progress);
    let finished = write_verified(req, a, cancel, &mut progress)?;
    before_commit(finished.file.partial_path())?;
    let output = finished.file.commit()?;
    progress.now("done", 1.0);
    let written = Written {
        output,
        video_codec: a.picture.track.codec.clone(),
        info: finished.info,
        audio: finished.audio,
        audio_bytes: finished.audio_bytes,
    };
    Ok(report(req, &finished.plan, written, finished.timings))
}

/// A file written, made durable and read back, still under its partial name.
struct Finished {
    file: OutputFile,
    plan: ExportPlan,
    info: crate::media::MediaInfo,
    audio: audio::track::AudioDone,
    audio_bytes: u64,
    timings: Timings,
}

/// Plans, writes, syncs and verifies one output file; the caller commits it.
fn write_verified(
    req: &ExportRequest,
    a: &mut InputAnalysis,
    cancel: &CancelToken,
    progress: &mut Progress,
) -> Result<Finished> {
    let mut timings = Timings::start(a.elapsed_ms);
    validate(req)?;
    check_out_dir(&req.out_dir)?;
    let t_plan = Instant::now();
    let mut plan = plan_export(req, a, cancel, progress)?;
    timings.record("plan", t_plan);
    cancel.check()?;

    let t_write = Instant::now();
    let file = OutputFile::create(
        &req.out_dir,
        &output_name(req)?,
        space_needed(req, a, &plan),
    )?
    .inject(req.write_fault);
    let mut mux = Mux {
        octx: file.muxer()?,
        file: &file,
    };
    let origin = a.picture.recording_origin_s;
    let (mut audio, picture_scale) = start_audio(req, origin, &plan, cancel)?;
    plan.picture_scale = picture_scale;
    let mut video = VideoCopy::add(
        &mut mux.octx,
        a.recording.video(),
        (&a.picture.track, &a.picture.params),
        (&plan.cut, plan.smart_head.as_ref(), picture_scale),
    )?;
    if req.mirror {
        crate::media::ffi::mirror_display(&mut mux.octx, video.stream.index)
            .map_err(|e| EngineError::media(std::path::Path::new("output"), e))?;
    }
    audio
        .add_stream(&mut mux.octx)
        .map_err(|e| mux.file.write_failed(e))?;
    let index_space = index_space(
        &mux.octx,
        video.packets_at_most,
        aac_packets_at_most(plan.output_duration_s(), audio.sample_rate),
    );
    mux.write_header(index_space)?;
    video.stream.header_written(&mux.octx);
    if let Some(s) = audio.stream.as_mut() {
        s.header_written(&mux.octx);
    }
    let written = interleave(
        &mut mux,
        &mut video,
        &mut audio,
        plan.output_duration_s(),
        cancel,
        progress,
    );
    // Stop the audio threads (if still running) before anything else.
    let audio = audio.stop();
    let audio_bytes = written?;
    drop(video);
    file.close(mux.octx)?;
    timings.record("write", t_write);

    let info = finish_output(&file, a, &plan, &mut timings, cancel, progress)?;
    Ok(Finished {
        file,
        plan,
        info,
        audio,
        audio_bytes,
        timings,
    })
}

/// The output's size, estimated generously, when the request wants the free
/// space checked: the copied share of the recording, the audio, 1 MB more.
fn space_needed(req: &ExportRequest, a: &InputAnalysis, plan: &ExportPlan) -> Option<u64> {
    if !req.check_free_space {
        return None;
    }
    let track = &a.picture.track;
    let duration_s = plan.duration_s();
    let video_bytes =
        a.recording.info.size_bytes as f64 * duration_s / (track.end_s - track.start_s).max(1e-3);
    Some(
        (video_bytes * 1.02) as u64
            + (f64::from(req.audio.bitrate) / 8.0 * duration_s * 1.1) as u64
            + (1 << 20),
    )
}

/// Starts the audio track (its stream is added after the video's), with
/// the picture's scale: `1 / rate` when the song's packets are copied on
/// its own clock and the picture follows it, else 1.
fn start_audio(
    req: &ExportRequest,
    recording_origin_s: f64,
    plan: &ExportPlan,
    cancel: &CancelToken,
) -> Result<(AudioTrack, f64)> {
    let mut render = SongRender::for_output(
        &req.song,
        plan.placement,
        (plan.start_recording_s, plan.duration_s()),
        req.audio.bitrate,
        req.retime,
    );
    if req.plays.len() >= 2 {
        let mix = plays_mix(req, recording_origin_s, plan);
        render.retime = mix.retime();
        render.mix = Some(std::sync::Arc::new(mix));
    } else if req.audio.copy_if_possible {
        if let Some(on_song_clock) = AudioTrack::on_song_clock(&render)? {
            return Ok(on_song_clock);
        }
    }
    Ok((
        AudioTrack::start(render, req.audio.copy_if_possible, cancel)?,
        1.0,
    ))
}

/// The one-video mix of the request's plays over the planned output.
fn plays_mix(req: &ExportRequest, recording_origin_s: f64, plan: &ExportPlan) -> Mix {
    let retime_of = |placement, duration_s| {
        SongRender::for_output(
            &req.song,
            placement,
            (0.0, duration_s),
            req.audio.bitrate,
            req.retime,
        )
        .retime
    };
    Mix {
        pieces: mix_pieces(&MixLayout {
            plays: &req.plays,
            span: (plan.start_recording_s, plan.end_recording_s),
            between: req.between,
            retime_of: &retime_of,
        }),
        recording: req.recording.clone(),
        recording_origin_s,
    }
}

/// Makes the output durable and checks it: fsync, read back (streams and
/// duration as planned), inputs unchanged.
fn finish_output(
    file: &OutputFile,
    a: &InputAnalysis,
    plan: &ExportPlan,
    timings: &mut Timings,
    cancel: &CancelToken,
    progress: &mut Progress,
) -> Result<crate::media::MediaInfo> {
    let t_sync = Instant::now();
    file.sync(progress)?;
    timings.record("fsync", t_sync);
    cancel.check()?;
    let t_verify = Instant::now();
    progress.now("verify", 0.0);
    let tolerance = 0.1 + 2.0 * a.picture.track.frame_s;
    let info = file.verify(plan.output_duration_s(), tolerance)?;
    for stamp in &a.stamps {
        stamp.check()?;
    }
    timings.record("verify", t_verify);
    cancel.check()?;
    Ok(info)
}

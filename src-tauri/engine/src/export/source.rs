//! The export's inputs, each opened once: the stages take turns reading them
//! (every reader seeks before it reads), instead of each opening the file
//! again.
//!
//! * [`Recording`]: the class video. Its first packets tell where its
//!   picture and its sound start; after that only its video stream is read
//!   (the end's extent, the black-ending check, the cut, the smart-cut head,
//!   the copy).
//! * [`Song`]: the clean song, read for where it is audible. Reading from its
//!   very start again, after a seek, takes a fresh demuxer (the first packet
//!   and its priming are then exactly those of a first read); the encoders
//!   open it for themselves, on their own threads.

use super::video::VideoReader;
use crate::error::{EngineError, Result};
use crate::media::ffi;
use crate::media::input::{open_input_fast, read_error, AudioDecoder, Input};
use crate::media::probe::{describe, MediaInfo};
use ffmpeg_next as ffmpeg;
use std::path::{Path, PathBuf};

/// The class recording, opened once.
pub(crate) struct Recording {
    pub path: PathBuf,
    pub info: MediaInfo,
    ictx: Input,
    video_index: usize,
}

/// Where the recording's picture and sound start, from its first packets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RecordingStart {
    /// The lowest pts among the video stream's first 16 packets.
    pub first_video_pts: i64,
    /// Container time of the first decoded audio sample: recording time 0 (the
    /// aligner's clock, see [`crate::media::decode`]); 0 without sound.
    pub audio_origin_s: f64,
}

/// Video packets looked at for the first presented frame (B-frames reorder).
const HEAD_VIDEO_PACKETS: usize = 16;

impl Recording {
    /// Opens the recording, from its header alone when that suffices.
    pub fn open(path: &Path) -> Result<Self> {
        let ictx = open_input_fast(path)?;
        let info = describe(path, &ictx)?;
        info.require_video()?;
        let video_index = ictx
            .streams()
            .best(ffmpeg::media::Type::Video)
            .ok_or_else(|| EngineError::NoVideo(path.to_path_buf()))?
            .index();
        Ok(Self {
            path: path.to_path_buf(),
            info,
            ictx,
            video_index,
        })
    }

    /// The video stream's packets (the only stream read from now on).
    pub fn video(&mut self) -> VideoReader<'_> {
        VideoReader {
            ictx: &mut self.ictx,
            stream_index: self.video_index,
            path: &self.path,
        }
    }

    /// One pass over the first packets, the first reading of the file: the
    /// first video packets' lowest pts, and the pts of the first frame the
    /// audio decoder gives (as [`crate::media::decode`] counts it: priming
    /// already removed by libavcodec). A read error ends the sound's search
    /// (a corrupt packet is skipped, as the aligner's decoder does), not the
    /// picture's. Only the video stream is read afterwards.
    pub fn read_start(&mut self) -> Result<RecordingStart> {
        let mut audio = match self.info.audio() {
            Some(_) => Some(AudioDecoder::open(&self.ictx, &self.path)?),
            None => None,
        };
        let mut keep = vec![self.video_index];
        keep.extend(audio.as_ref().map(|a| a.stream_index));
        ffi::select_streams(&mut self.ictx, &keep);
        let mut origin = if audio.is_none() { Some(0.0) } else { None };
        let (mut video_seen, mut video_end, mut audio_end) = (0usize, false, false);
        let mut first_pts: Option<i64> = None;
        let mut frame = ffmpeg::frame::Audio::empty();
        loop {
            if let (None, Some(a)) = (origin, audio.as_mut()) {
                if a.decoder.receive_frame(&mut frame).is_ok() {
                    origin = Some(
                        frame
                            .pts()
                            .map_or(0.0, |p| p as f64 * f64::from(a.time_base)),
                    );
                } else if audio_end {
                    origin = Some(0.0);
                }
            }
            let video_done = video_end || video_seen >= HEAD_VIDEO_PACKETS;
            if video_done && origin.is_some() {
                break;
            }
            let mut packet = ffmpeg::Packet::empty();
            let read = packet.read(&mut self.ictx);
            match (&read, audio.as_mut()) {
                (Ok(()), Some(a)) if packet.stream() == a.stream_index && origin.is_none() => {
                    let _ = a.decoder.send_packet(&packet);
                }
                (Ok(()), _) if packet.stream() == self.video_index && !video_done => {
                    video_seen += 1;
                    if let Some(t) = super::video::timing_of(&packet) {
                        first_pts = Some(first_pts.map_or(t.pts(), |f| f.min(t.pts())));
                    }
                }
                (Ok(()), _) => {}
                (Err(e), a) => {
                    if !video_done && !matches!(e, ffmpeg::Error::Eof) {
                        return Err(read_error(&self.path, *e));
                    }
                    video_end = true;
                    if let (None, Some(a)) = (origin, a) {
                        let _ = a.decoder.send_eof();
                        audio_end = true;
                    }
                }
            }
        }
        ffi::select_stream(&mut self.ictx, self.video_index);
        Ok(RecordingStart {
            first_video_pts: first_pts.ok_or_else(|| EngineError::Empty(self.path.clone()))?,
            audio_origin_s: origin.unwrap_or(0.0),
        })
    }
}

/// The clean song, opened once for its analysis.
pub(crate) struct Song {
    pub path: PathBuf,
    pub info: MediaInfo,
    ictx: Input,
    /// Whether packets were read since the opening (or the last rewind).
    read: bool,
}

impl Song {
    pub fn open(path: &Path) -> Result<Self> {
        let ictx = open_input_fast(path)?;
        let info = describe(path, &ictx)?;
        info.require_audio()?;
        Ok(Self {
            path: path.to_path_buf(),
            info,
            ictx,
            read: false,
        })
    }

    /// The demuxer and a fresh decoder of the song's audio, placed to
    /// decode from `from_s`: beyond the first second, by a seek a second
    /// early (the first frame after a seek decodes without its overlap and
    /// is not used); otherwise, or when the song cannot seek, from its start
    /// (reopened when it was read: see the module's note).
    pub fn audio_from(&mut self, from_s: f64) -> Result<(&mut Input, AudioDecoder)> {
        if from_s > 1.0 {
            self.read = true;
            let audio = AudioDecoder::open(&self.ictx, &self.path)?;
            let ts = ((from_s - 1.0) / f64::from(audio.time_base)) as i64;
            if ffi::seek_keyframe_before(&mut self.ictx, audio.stream_index, ts).is_ok() {
                return Ok((&mut self.ictx, audio));
            }
        }
        if self.read {
            self.ictx = open_input_fast(&self.path)?;
        }
        self.read = true;
        let audio = AudioDecoder::open(&self.ictx, &self.path)?;
        Ok((&mut self.ictx, audio))
    }
}

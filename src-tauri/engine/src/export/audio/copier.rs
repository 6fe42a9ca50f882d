//! Copying the song's own AAC packets instead of encoding (rate 1 only).

use super::split::AAC_FRAME;
use super::{AudioPacket, Retime, SongRender};
use crate::error::{EngineError, Result};
use crate::media::ffi;
use crate::media::input::{open_input, read_error};
use ffmpeg_next as ffmpeg;
use std::path::PathBuf;

/// Copies the song's AAC packets instead of encoding (rate 1 only): no
/// generation loss, much faster. Positioned to the sample: copying starts
/// one packet before the one holding the first output sample (the AAC
/// decoder needs it for the overlap), and the output's first packets get
/// negative timestamps, which the MP4 muxer turns into an edit list that
/// players and FFmpeg's decoder honour sample-exactly.
pub(crate) struct SongCopier {
    ictx: ffmpeg::format::context::Input,
    stream_index: usize,
    time_base: ffmpeg::Rational,
    /// Song sample (in its own rate) shown at output time 0.
    first_sample: i64,
    /// Output length in song samples.
    total: i64,
    pub sample_rate: u32,
    pub channels: u16,
    path: PathBuf,
    /// Reading state: the packet before the first needed one (it primes the
    /// decoder), whether copying started, a packet due next, the end reached.
    previous: Option<(ffmpeg::Packet, i64)>,
    started: bool,
    queued: Option<AudioPacket>,
    done: bool,
}

impl SongCopier {
    /// `Ok(Err(reason))` when the song cannot be copied (then it is encoded).
    pub fn open(job: &SongRender) -> Result<std::result::Result<Self, String>> {
        let path = job.song.clone();
        if job.retime != Retime::None {
            return Ok(Err("the song is re-timed (rate is not 1)".into()));
        }
        let mut ictx = open_input(&path)?;
        let stream = ictx
            .streams()
            .best(ffmpeg::media::Type::Audio)
            .ok_or_else(|| EngineError::NoAudio(path.clone()))?;
        let params = stream.parameters();
        if params.id() != ffmpeg::codec::Id::AAC {
            return Ok(Err(format!("the song is {:?}, not AAC", params.id())));
        }
        let f = ffi::param_fields(&params);
        let (rate, channels, has_config) = (
            f.sample_rate.max(0) as u32,
            f.channels.max(0) as u16,
            f.has_extradata,
        );
        if !has_config || rate == 0 {
            return Ok(Err(
                "the song is raw AAC without a decoder configuration (ADTS)".into(),
            ));
        }
        let b0 = job.placement.song_at(job.out_start_recording_s);
        if b0 < 0.0 {
            return Ok(Err(
                "the output starts before the song (lead-in), which needs encoded silence".into(),
            ));
        }
        let stream_index = stream.index();
        let time_base = stream.time_base();
        ffi::select_stream(&mut ictx, stream_index);
        Ok(Ok(Self {
            ictx,
            stream_index,
            time_base,
            first_sample: (b0 * f64::from(rate)).round() as i64,
            total: (job.duration_s * f64::from(rate)).round() as i64,
            sample_rate: rate,
            channels,
            path,
            previous: None,
            started: false,
            queued: None,
            done: false,
        }))
    }

    /// The song stream's codec parameters, for the output stream.
    pub fn parameters(&self) -> Option<ffmpeg::codec::Parameters> {
        self.ictx.stream(self.stream_index).map(|s| s.parameters())
    }

    /// The next packet to copy, timestamps in 1/sample_rate, output time
    /// line; `None` at the end. Demuxing only: cheap enough to be called
    /// from the muxing loop itself.
    pub fn next_packet(&mut self) -> Result<Option<AudioPacket>> {
        if let Some(p) = self.queued.take() {
            return Ok(Some(p));
        }
        if self.done {
            return Ok(None);
        }
        let rate = self.sample_rate as i32;
        let to_samples = |ts: i64, tb: ffmpeg::Rational| ffi::ts_to_samples(ts, tb, rate);
        // Packets are read from the start: seeking AAC precisely is less
        // reliable than reading past a few MB of audio.
        let end = self.first_sample + self.total;
        loop {
            let mut p = ffmpeg::Packet::empty();
            match p.read(&mut self.ictx) {
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(e) => return Err(read_error(&self.path, e)),
            }
            if p.stream() != self.stream_index {
                continue;
            }
            let Some(pts) = p.pts().or(p.dts()) else {
                continue;
            };
            let start = to_samples(pts, self.time_base);
            let dur = if p.duration() > 0 {
                to_samples(p.duration(), self.time_base)
            } else {
                AAC_FRAME as i64
            };
            if start >= end {
                self.done = true;
                return Ok(None);
            }
            if !self.started {
                if start + dur <= self.first_sample {
                    self.previous = Some((p, start));
                    continue;
                }
                self.started = true;
                // The packet before the first needed one primes the decoder.
                if let Some((prev, prev_start)) = self.previous.take() {
                    self.queued = Some(self.retime_packet(p, start, dur));
                    return Ok(Some(self.retime_packet(prev, prev_start, AAC_FRAME as i64)));
                }
            }
            return Ok(Some(self.retime_packet(p, start, dur)));
        }
    }

    fn retime_packet(&self, mut p: ffmpeg::Packet, start: i64, dur: i64) -> AudioPacket {
        let t = start - self.first_sample;
        p.set_pts(Some(t));
        p.set_dts(Some(t));
        p.set_duration(dur);
        p.set_position(-1);
        // Skip-samples side data from the source's priming must not travel:
        // the edit list positions the output.
        ffi::strip_side_data(&mut p);
        p
    }
}

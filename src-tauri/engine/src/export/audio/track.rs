//! The output's audio track: the song's packets copied, or the song encoded
//! on its own thread (two threads for long outputs at rate 1, spliced where
//! both encoders agree), delivered to the muxer in output order.

use super::copier::SongCopier;
use super::encoder::SongEncoder;
use super::feed::{spawn_audio, AudioFeed};
use super::split::split_plan;
use super::{choose_retime, AudioSource, Retime, RetimeMode, SongRender, PICTURE_DRIFT_LIMIT};
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::export::mux::OutStream;
use crate::media::ffi;
use crate::timeline::Placement;
use ffmpeg_next as ffmpeg;
use std::path::Path;
use std::thread::JoinHandle;

impl SongRender {
    /// The render of `song` for an output that starts at recording time
    /// `out_start_recording_s` and lasts `duration_s`.
    pub fn for_output(
        song: &Path,
        placement: Placement,
        (out_start_recording_s, duration_s): (f64, f64),
        bitrate: u32,
        mode: RetimeMode,
    ) -> Self {
        // A rate this close to 1 moves the song by under half a millisecond
        // over the whole export: treat it as 1 (exact sample copy, parallel
        // encoding).
        let retime = if (placement.rate - 1.0).abs() * duration_s.max(1.0) < 0.0005 {
            Retime::None
        } else {
            choose_retime(placement.rate, mode)
        };
        Self {
            song: song.to_path_buf(),
            placement,
            out_start_recording_s,
            duration_s,
            bitrate: bitrate as usize,
            retime,
            range: None,
            mix: None,
        }
    }
}

/// The audio track being produced.
pub(crate) struct AudioTrack {
    /// `None` once stopped.
    feed: Option<AudioFeed>,
    threads: Vec<JoinHandle<()>>,
    /// Codec parameters of the output stream.
    params: ffmpeg::codec::Parameters,
    /// The output stream, once added.
    pub stream: Option<OutStream>,
    pub sample_rate: u32,
    pub channels: u16,
    pub source: AudioSource,
    pub retime: Retime,
    /// Why a requested copy was not possible.
    pub note: Option<String>,
}

impl AudioTrack {
    /// Copies the song's packets when asked and possible, else starts the
    /// encoder thread(s).
    pub fn start(render: SongRender, copy_if_possible: bool, cancel: &CancelToken) -> Result<Self> {
        let mut note = None;
        if copy_if_possible && render.mix.is_some() {
            note = Some(
                "the song's packets were not copied (several plays are mixed); encoded instead"
                    .into(),
            );
        } else if copy_if_possible {
            match SongCopier::open(&render)? {
                Ok(c) => return Self::copied(c, &render),
                Err(reason) => {
                    note = Some(format!(
                        "the song's packets were not copied ({reason}); encoded instead"
                    ))
                }
            }
        }
        let mut track = Self::encoded(render, cancel)?;
        track.note = note;
        Ok(track)
    }

    /// The song's packets copied on the song's own clock, when `render`
    /// follows only a clock drift (within [`PICTURE_DRIFT_LIMIT`]) and
    /// the song can be copied: the picture is then to be scaled by the
    /// returned factor (`1 / rate`). `None`: re-time the song as usual.
    pub fn on_song_clock(render: &SongRender) -> Result<Option<(Self, f64)>> {
        let rate = render.placement.rate;
        let drift_only = render.mix.is_none()
            && render.retime == Retime::Resample
            && (rate - 1.0).abs() <= PICTURE_DRIFT_LIMIT;
        if !drift_only {
            return Ok(None);
        }
        let song_clock = SongRender {
            retime: Retime::None,
            // The output lasts the recording's span on the song's clock.
            duration_s: render.duration_s / rate,
            ..render.clone()
        };
        let Ok(copier) = SongCopier::open(&song_clock)? else {
            return Ok(None);
        };
        let mut track = Self::copied(copier, &song_clock)?;
        track.retime = Retime::Picture;
        Ok(Some((track, 1.0 / rate)))
    }

    fn copied(c: SongCopier, render: &SongRender) -> Result<Self> {
        let params = c
            .parameters()
            .ok_or_else(|| EngineError::NoAudio(render.song.clone()))?;
        Ok(Self {
            sample_rate: c.sample_rate,
            channels: c.channels,
            params,
            stream: None,
            // Copying is demuxing only: done in the muxing loop, no thread.
            feed: Some(AudioFeed::copied(c)),
            threads: Vec::new(),
            source: AudioSource::Copied,
            retime: render.retime,
            note: None,
        })
    }

    fn encoded(render: SongRender, cancel: &CancelToken) -> Result<Self> {
        let mut encoder = SongEncoder::open(render.clone(), true)?;
        let (sample_rate, channels) = (encoder.sample_rate(), encoder.channels());
        let params = encoder.parameters();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let split = if render.retime == Retime::None && cores >= 2 {
            split_plan(render.total_samples(sample_rate), sample_rate)
        } else {
            None
        };
        let (feed, threads) = match split {
            None => {
                let (rx, t) = spawn_audio(cancel.clone(), Some(256), move |c, s| encoder.run(c, s));
                (AudioFeed::single(rx), vec![t])
            }
            Some(plan) => {
                encoder.set_range((0, plan.a_end));
                let mut piece_b = render.clone();
                piece_b.range = Some((plan.b_start, usize::MAX));
                // Piece B reads the song at another place: a demuxer of its own.
                let encoder_b = SongEncoder::open(piece_b, true)?;
                let (rx_a, ta) =
                    spawn_audio(cancel.clone(), Some(256), move |c, s| encoder.run(c, s));
                // Piece B runs ahead of the muxer: unbounded (it is ~24 kB/s).
                let (rx_b, tb) = spawn_audio(cancel.clone(), None, move |c, s| encoder_b.run(c, s));
                (AudioFeed::spliced(rx_a, rx_b, plan), vec![ta, tb])
            }
        };
        Ok(Self {
            feed: Some(feed),
            threads,
            params,
            stream: None,
            sample_rate,
            channels,
            source: AudioSource::Encoded,
            retime: render.retime,
            note: None,
        })
    }

    /// The packets' time base: one sample.
    pub fn time_base(&self) -> ffmpeg::Rational {
        ffmpeg::Rational::new(1, self.sample_rate as i32)
    }

    /// Adds the audio stream to `octx`.
    pub fn add_stream(
        &mut self,
        octx: &mut ffmpeg::format::context::Output,
    ) -> std::result::Result<&mut OutStream, ffmpeg::Error> {
        let mut ost = octx.add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::AAC))?;
        ost.set_parameters(self.params.clone());
        ost.set_time_base(self.time_base());
        ffi::clear_codec_tag(&mut ost);
        Ok(self
            .stream
            .insert(OutStream::new(ost.index(), self.time_base())))
    }

    /// The packets in output order; `None` once stopped.
    pub fn feed(&mut self) -> Option<&mut AudioFeed> {
        self.feed.as_mut()
    }

    /// Stops the producer threads (if still running) and waits for them.
    pub fn stop(&mut self) -> AudioDone {
        // Dropping the receivers ends a producer at its next packet.
        self.feed = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        AudioDone {
            sample_rate: self.sample_rate,
            channels: self.channels,
            source: self.source,
            retime: self.retime,
            note: self.note.clone(),
        }
    }
}

impl Drop for AudioTrack {
    fn drop(&mut self) {
        // An export that fails midway still stops its threads first.
        self.stop();
    }
}

/// What the audio track was, once written.
#[derive(Debug, Clone)]
pub(crate) struct AudioDone {
    pub sample_rate: u32,
    pub channels: u16,
    pub source: AudioSource,
    pub retime: Retime,
    pub note: Option<String>,
}

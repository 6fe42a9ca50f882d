//! Where the song itself starts and stops being audible (its intro silence
//! and its fade into silence), from its audio, decoding as little of it as
//! that takes.

use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use crate::export::source::Song;
use crate::media::input::layout_or_default;
use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};

/// Where the song is audible in its own timeline (song seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SongAudibleRange {
    pub start_s: f64,
    /// End of the fade into silence (not its start).
    pub end_s: f64,
    pub duration_s: f64,
}

/// Level below the loudest part of the song that counts as silence. A fade
/// is followed until it is this far down: quieter than that, nobody hears it
/// over studio speakers.
const SILENCE_BELOW_PEAK_DB: f64 = 50.0;
const ENVELOPE_RATE: u32 = 8000;
const ENVELOPE_BLOCK: usize = 160; // 20 ms at 8 kHz
const BLOCK_S: f64 = ENVELOPE_BLOCK as f64 / ENVELOPE_RATE as f64;
/// The start is looked for in the first 45 s at most.
const HEAD_S: f64 = 45.0;
/// The end is looked for in the last 30 s, then the last 90 s.
const TAIL_S: [f64; 2] = [30.0, 90.0];

fn level(powers: &[f32]) -> f32 {
    powers.iter().copied().fold(0.0f32, f32::max)
}

fn threshold(peak: f32) -> f32 {
    (f64::from(peak) * 10f64.powf(-SILENCE_BELOW_PEAK_DB / 10.0)).max(1e-9) as f32
}

/// Block powers of a stretch of the song; block `i` starts at `from_s + i * 0.02`.
struct Powers {
    from_s: f64,
    blocks: Vec<f32>,
    /// Where the decoded audio ended.
    end_s: f64,
}

/// Finds where the song is audible: the first and last 20 ms block louder
/// than `SILENCE_BELOW_PEAK_DB` under its loudest block. A song longer than
/// a minute is not decoded whole: its end is found in its last 30 s (seeking
/// there; the window grows backwards, to 90 s, only while it holds nothing
/// audible), its start by decoding from the beginning in growing pieces
/// (1, 3, 9… s) up to the first audible block, at most 45 s. The loudest
/// block is then the loudest of what was decoded: a lower estimate than the
/// whole song's at worst, which keeps a little more of a fade, never less.
/// When no audible start or end is found that way, the whole song is decoded.
pub(crate) fn song_audible_range(
    song: &mut Song,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<SongAudibleRange> {
    let dur = song
        .info
        .audio()
        .and_then(|a| a.duration_s)
        .unwrap_or(song.info.duration_s);
    if dur > 60.0 {
        let tail = tail_powers(song, dur, cancel, progress)?;
        let (head, first) = first_audible(song, &tail, cancel, progress)?;
        let peak = level(&head).max(level(&tail.blocks));
        let last = tail.blocks.iter().rposition(|&p| p > threshold(peak));
        if let (Some(first), Some(last), true) = (first, last, peak > 1e-12) {
            return Ok(SongAudibleRange {
                start_s: first as f64 * BLOCK_S,
                end_s: (tail.from_s + (last + 1) as f64 * BLOCK_S).min(tail.end_s + BLOCK_S),
                duration_s: tail.end_s,
            });
        }
        // A silent head or tail: look at the whole song.
    }
    let all = block_powers(song, 0.0, f64::INFINITY, cancel, progress)?;
    let peak = level(&all.blocks);
    if peak <= 1e-12 {
        return Err(EngineError::Empty(song.path.clone()));
    }
    let t = threshold(peak);
    let first = all.blocks.iter().position(|&p| p > t);
    let last = all.blocks.iter().rposition(|&p| p > t);
    Ok(SongAudibleRange {
        start_s: first.unwrap_or(0) as f64 * BLOCK_S,
        end_s: (last.map_or(all.blocks.len(), |l| l + 1) as f64 * BLOCK_S).min(all.end_s + BLOCK_S),
        duration_s: all.end_s,
    })
}

/// The last 30 s of the song, or the last 90 s when the last 30 hold
/// nothing at all.
fn tail_powers(
    song: &mut Song,
    dur: f64,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<Powers> {
    let from = ((dur - TAIL_S[0]) / BLOCK_S).floor() * BLOCK_S;
    let mut tail = block_powers(song, from, f64::INFINITY, cancel, &mut |f| {
        progress(0.3 * f)
    })?;
    if level(&tail.blocks) <= 1e-12 {
        // Nothing in the last 30 s: the 60 s before them.
        let from = ((dur - TAIL_S[1]) / BLOCK_S).floor() * BLOCK_S;
        let mut more = block_powers(song, from, tail.from_s, cancel, &mut |f| {
            progress(0.3 + 0.3 * f)
        })?;
        more.blocks
            .resize(((tail.from_s - from) / BLOCK_S).round() as usize, 0.0);
        more.blocks.append(&mut tail.blocks);
        tail = Powers {
            from_s: from,
            blocks: more.blocks,
            end_s: tail.end_s,
        };
    }
    Ok(tail)
}

/// Decodes from the song's start in growing pieces up to the first block
/// louder than the threshold of everything decoded so far (the tail
/// included): the head's powers and that block, if found.
fn first_audible(
    song: &mut Song,
    tail: &Powers,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<(Vec<f32>, Option<usize>)> {
    let mut head: Vec<f32> = Vec::new();
    let mut head_to = 0.0;
    let mut piece = 1.0;
    let head_limit = HEAD_S.min(tail.from_s);
    loop {
        let peak = level(&head).max(level(&tail.blocks));
        if peak > 1e-12 {
            if let Some(i) = head.iter().position(|&p| p > threshold(peak)) {
                return Ok((head, Some(i)));
            }
        }
        if head_to >= head_limit {
            return Ok((head, None));
        }
        let to = (head_to + piece).min(head_limit);
        let mut more = block_powers(song, head_to, to, cancel, &mut |f| {
            progress(0.4 + 0.6 * (head_to + f * (to - head_to)) / head_limit)
        })?;
        more.blocks
            .resize(((to - head_to) / BLOCK_S).round() as usize, 0.0);
        head.append(&mut more.blocks);
        head_to = to;
        piece *= 3.0;
    }
}

/// 20-ms block powers (mono) of the song between `from_s` and `to_s` (song
/// seconds); seeks instead of decoding what lies before `from_s`.
fn block_powers(
    song: &mut Song,
    from_s: f64,
    to_s: f64,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(f64),
) -> Result<Powers> {
    let path = song.path.clone();
    let (ictx, mut audio) = song.audio_from(from_s)?;
    let mut acc = Accumulator::new(from_s, to_s);
    let mut mono = MonoFrames::default();
    let mut frame = ffmpeg::frame::Audio::empty();
    let mut next_t: Option<f64> = None;
    let (mut eof, mut n) = (false, 0usize);
    'decode: loop {
        while audio.decoder.receive_frame(&mut frame).is_ok() {
            let rate = frame.rate().max(1);
            let t0 = frame
                .pts()
                .map(|p| p as f64 * f64::from(audio.time_base))
                .or(next_t)
                .unwrap_or(0.0);
            next_t = Some(t0 + frame.samples() as f64 / f64::from(rate));
            let samples = mono
                .of(&mut frame)
                .map_err(|e| EngineError::media(&path, e))?;
            if acc.add(t0, rate, samples) {
                break 'decode;
            }
        }
        if eof {
            break;
        }
        let mut packet = ffmpeg::Packet::empty();
        match packet.read(ictx) {
            Ok(()) if packet.stream() == audio.stream_index => {
                let _ = audio.decoder.send_packet(&packet);
                n += 1;
                if n.is_multiple_of(64) {
                    cancel.check()?;
                    if let Some(f) = acc.fraction() {
                        progress(f);
                    }
                }
            }
            Ok(()) => {}
            Err(_) => {
                let _ = audio.decoder.send_eof();
                eof = true;
            }
        }
    }
    Ok(acc.finish())
}

/// Sums squared samples per block over `[from_s, to_s)`.
struct Accumulator {
    from_s: f64,
    to_s: f64,
    sums: Vec<(f64, u32)>,
    end_s: f64,
}

impl Accumulator {
    fn new(from_s: f64, to_s: f64) -> Self {
        Self {
            from_s,
            to_s,
            sums: Vec::new(),
            end_s: from_s,
        }
    }

    /// Adds samples starting at `t0` (`rate` per second); true once `to_s`
    /// is reached.
    fn add(&mut self, t0: f64, rate: u32, samples: &[f32]) -> bool {
        for (i, v) in samples.iter().enumerate() {
            let t = t0 + i as f64 / f64::from(rate);
            if t < self.from_s {
                continue;
            }
            if t >= self.to_s {
                return true;
            }
            let b = ((t - self.from_s) / BLOCK_S) as usize;
            if self.sums.len() <= b {
                self.sums.resize(b + 1, (0.0, 0));
            }
            self.sums[b].0 += f64::from(*v) * f64::from(*v);
            self.sums[b].1 += 1;
            self.end_s = t;
        }
        false
    }

    fn fraction(&self) -> Option<f64> {
        (self.to_s.is_finite() && self.to_s > self.from_s)
            .then(|| ((self.end_s - self.from_s) / (self.to_s - self.from_s)).clamp(0.0, 1.0))
    }

    fn finish(self) -> Powers {
        let blocks = self
            .sums
            .iter()
            .map(|(s, c)| {
                if *c > 0 {
                    (*s / f64::from(*c)) as f32
                } else {
                    0.0
                }
            })
            .collect();
        Powers {
            from_s: self.from_s,
            blocks,
            end_s: self.end_s,
        }
    }
}

/// Decoded frames as mono f32 at their own rate.
#[derive(Default)]
struct MonoFrames {
    resampler: Option<ffmpeg::software::resampling::Context>,
    mono: Option<ffmpeg::frame::Audio>,
}

impl MonoFrames {
    fn of(
        &mut self,
        frame: &mut ffmpeg::frame::Audio,
    ) -> std::result::Result<&[f32], ffmpeg::Error> {
        let rate = frame.rate().max(1);
        let layout = layout_or_default(frame.channel_layout(), frame.channels());
        if self
            .resampler
            .as_ref()
            .is_none_or(|r| r.input().format != frame.format() || r.input().rate != rate)
        {
            self.resampler = Some(ffmpeg::software::resampling::Context::get(
                frame.format(),
                layout,
                rate,
                ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Packed),
                ffmpeg::ChannelLayout::MONO,
                rate,
            )?);
        }
        frame.set_channel_layout(layout);
        let mono = self.mono.get_or_insert_with(ffmpeg::frame::Audio::empty);
        if let Some(r) = self.resampler.as_mut() {
            r.run(frame, mono)?;
        }
        Ok(&mono.plane::<f32>(0)[..mono.samples()])
    }
}

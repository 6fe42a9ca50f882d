//! The audio of one video holding several plays: the song placed in each
//! play with its own placement, and between plays the recording's own sound
//! ducked, or silence.
//!
//! The output is cut into pieces along the recording's time line (a play,
//! or what lies between two plays). Neighbouring pieces overlap around
//! their shared edge and are crossfaded linearly (the two weights sum to 1
//! at every sample): briefly at a cut from one play straight into the next
//! ([`CUT_FADE_S`]), a little longer where the song gives way to the room
//! ([`ROOM_FADE_S`]). Each piece is rendered by its own
//! [`SongPcm`](super::encoder::SongPcm) — the same decoding, positioning and
//! re-timing as a single play — opened when the output reaches it and
//! dropped after it: at most two are open, and only a few packets of each
//! are held (memory flat in the recording's length).

use super::encoder::{PcmSource, SeekRule, SongPcm};
use super::retime::Planar;
use super::{Retime, SongRender};
use crate::cancel::CancelToken;
use crate::error::Result;
use crate::export::request::Between;
use crate::timeline::{Placement, Play};
use ffmpeg_next as ffmpeg;
use std::path::PathBuf;

/// Length of the crossfade at a cut from one play into the next (s).
pub(crate) const CUT_FADE_S: f64 = 0.016;
/// Length of the fade between a play and the room's sound or silence (s).
pub(crate) const ROOM_FADE_S: f64 = 0.05;
/// Two plays closer than this are joined as at a cut (no room piece
/// shorter than its own fades).
const MIN_GAP_S: f64 = 2.0 * ROOM_FADE_S;

/// What a piece of the output sounds like.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PieceSound {
    /// The song at this placement, re-timed so.
    Song {
        placement: Placement,
        retime: Retime,
    },
    /// The recording's own sound at this gain (linear).
    Recorded {
        gain: f32,
    },
    Silence,
}

/// One piece, in output time (s from the output's first sample).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MixPiece {
    pub start_s: f64,
    pub end_s: f64,
    /// Length of the crossfade into the next piece (centred on `end_s`).
    pub fade_s: f64,
    pub sound: PieceSound,
}

/// The whole mix: its pieces in order (they tile the output) and the
/// recording they take the room's sound from.
#[derive(Debug, Clone)]
pub(crate) struct Mix {
    pub pieces: Vec<MixPiece>,
    pub recording: PathBuf,
    /// Container time of the recording's first decoded audio sample.
    pub recording_origin_s: f64,
}

impl Mix {
    /// The strongest re-timing any play needs (the track's report).
    pub fn retime(&self) -> Retime {
        let rank = |r: Retime| match r {
            Retime::None => 0,
            Retime::Resample => 1,
            Retime::Tempo => 2,
            // Never a piece's: the one video encodes its mix.
            Retime::Picture => 0,
        };
        self.pieces
            .iter()
            .filter_map(|p| match p.sound {
                PieceSound::Song { retime, .. } => Some(retime),
                _ => None,
            })
            .max_by_key(|r| rank(*r))
            .unwrap_or(Retime::None)
    }
}

/// How the pieces are cut, given what is heard where.
pub(crate) struct MixLayout<'a> {
    pub plays: &'a [Play],
    /// The output's first and last instant (recording time).
    pub span: (f64, f64),
    pub between: Between,
    /// The re-timing of a play of this placement lasting this long.
    pub retime_of: &'a dyn Fn(Placement, f64) -> Retime,
}

/// Cuts the output `[span.0, span.1]` into pieces: each play (clipped to
/// the span) with its song, the stretches around and between them with the
/// room's sound ducked or silence. Two plays that touch (a cut) or nearly
/// touch are joined at the middle of their gap with a short crossfade.
pub(crate) fn mix_pieces(layout: &MixLayout) -> Vec<MixPiece> {
    let (s0, s1) = layout.span;
    let room = match layout.between {
        Between::Recorded => PieceSound::Recorded {
            gain: Between::Recorded.room_gain(),
        },
        Between::Silence => PieceSound::Silence,
    };
    let plays: Vec<&Play> = layout
        .plays
        .iter()
        .filter(|p| p.recording_end_s > s0 && p.recording_start_s < s1)
        .collect();
    // Edges in recording time: (start, end, is_play).
    let mut spans: Vec<(f64, f64, Option<&Play>)> = Vec::new();
    let mut cursor = s0;
    for (i, play) in plays.iter().enumerate() {
        let start = play.recording_start_s.max(s0);
        let end = play.recording_end_s.min(s1);
        if start - cursor >= MIN_GAP_S || (i == 0 && start > cursor) {
            spans.push((cursor, start, None));
            cursor = start;
        } else if let Some(last) = spans.last_mut() {
            // Touching (or a short gap): meet in the middle.
            let mid = (0.5 * (last.1 + start)).min(end);
            last.1 = mid;
            cursor = mid;
        }
        spans.push((cursor, end.max(cursor), Some(play)));
        cursor = end.max(cursor);
    }
    if s1 > cursor || spans.is_empty() {
        spans.push((cursor, s1, None));
    }
    let mut pieces: Vec<MixPiece> = spans
        .iter()
        .map(|&(a, b, play)| MixPiece {
            start_s: a - s0,
            end_s: b - s0,
            fade_s: 0.0,
            sound: match play {
                Some(p) => PieceSound::Song {
                    placement: p.placement(),
                    retime: (layout.retime_of)(p.placement(), b - a),
                },
                None => room.clone(),
            },
        })
        .filter(|p| p.end_s > p.start_s)
        .collect();
    for i in 0..pieces.len().saturating_sub(1) {
        let both_songs = matches!(pieces[i].sound, PieceSound::Song { .. })
            && matches!(pieces[i + 1].sound, PieceSound::Song { .. });
        let nominal = if both_songs { CUT_FADE_S } else { ROOM_FADE_S };
        let room_left =
            (pieces[i].end_s - pieces[i].start_s).min(pieces[i + 1].end_s - pieces[i + 1].start_s);
        pieces[i].fade_s = nominal.min(room_left);
    }
    pieces
}

/// A piece in output samples: where it is heard fully and its fades.
#[derive(Debug, Clone, Copy)]
struct PieceSamples {
    /// Its edges (the centres of its fades).
    start: usize,
    end: usize,
    /// Half-lengths of the fade in (shared with the piece before) and out.
    half_in: usize,
    half_out: usize,
}

impl PieceSamples {
    fn first(&self) -> usize {
        self.start - self.half_in
    }
    fn last(&self) -> usize {
        self.end + self.half_out
    }
    /// The piece's weight at output sample `n`.
    fn weight(&self, n: usize) -> f32 {
        let ramp = |centre: usize, half: usize| -> f32 {
            ((n as f64 + 0.5 - (centre - half) as f64) / (2 * half) as f64) as f32
        };
        if self.half_in > 0 && n < self.start + self.half_in {
            ramp(self.start, self.half_in)
        } else if self.half_out > 0 && n >= self.end - self.half_out {
            1.0 - ramp(self.end, self.half_out)
        } else {
            1.0
        }
    }
}

/// A piece being rendered: its source, from its first sample on.
struct OpenPiece {
    index: usize,
    source: Option<SongPcm>,
    gain: f32,
}

/// The mixed output, rendered in order from output sample `from`.
pub(super) struct MixPcm {
    mix: std::sync::Arc<Mix>,
    samples: Vec<PieceSamples>,
    /// The render as a single play would be (song, bit rate, output start).
    base: SongRender,
    spec: (ffmpeg::ChannelLayout, u32),
    open: Vec<OpenPiece>,
    next: usize,
    /// Next output sample to produce.
    at: usize,
    scratch: Planar,
}

impl MixPcm {
    pub fn new(
        base: &SongRender,
        mix: std::sync::Arc<Mix>,
        spec: (ffmpeg::ChannelLayout, u32),
        (from, _to): (usize, usize),
    ) -> Result<Self> {
        let sr = f64::from(spec.1);
        let at = |s: f64| (s * sr).round().max(0.0) as usize;
        let n = mix.pieces.len();
        let mut samples: Vec<PieceSamples> = mix
            .pieces
            .iter()
            .map(|p| PieceSamples {
                start: at(p.start_s),
                end: at(p.end_s),
                half_in: 0,
                half_out: 0,
            })
            .collect();
        for i in 0..n.saturating_sub(1) {
            let half = at(mix.pieces[i].fade_s) / 2;
            let half = half
                .min((samples[i].end - samples[i].start) / 2)
                .min((samples[i + 1].end - samples[i + 1].start) / 2)
                .min(samples[i].end);
            samples[i].half_out = half;
            samples[i + 1].half_in = half;
        }
        let channels = spec.0.channels() as usize;
        let mut base = base.clone();
        base.mix = None;
        Ok(Self {
            mix,
            samples,
            base,
            spec,
            open: Vec::new(),
            next: 0,
            at: from,
            scratch: Planar::new(channels),
        })
    }

    /// Opens the pieces heard at `self.at` and drops those that ended.
    fn update_open(&mut self) -> Result<()> {
        let at = self.at;
        self.open.retain(|p| self.samples[p.index].last() > at);
        while self.next < self.samples.len() && self.samples[self.next].first() <= at {
            let i = self.next;
            self.next += 1;
            if self.samples[i].last() <= at {
                continue;
            }
            let piece = self.open_piece(i, at)?;
            self.open.push(piece);
        }
        Ok(())
    }

    /// The source of piece `i`, its first sample being output sample `at`.
    fn open_piece(&self, i: usize, at: usize) -> Result<OpenPiece> {
        let sr = f64::from(self.spec.1);
        let s = self.samples[i];
        let first = s.first();
        let mut job = self.base.clone();
        job.out_start_recording_s = self.base.out_start_recording_s + first as f64 / sr;
        job.duration_s = (s.last() - first) as f64 / sr;
        job.range = Some((at - first, s.last() - first));
        let (job, gain, seek) = match &self.mix.pieces[i].sound {
            PieceSound::Silence => {
                return Ok(OpenPiece {
                    index: i,
                    source: None,
                    gain: 0.0,
                })
            }
            PieceSound::Song { placement, retime } => {
                job.placement = *placement;
                job.retime = *retime;
                (job, 1.0, SeekRule::EXACT)
            }
            PieceSound::Recorded { gain } => {
                job.song = self.mix.recording.clone();
                job.placement = Placement {
                    offset_s: 0.0,
                    rate: 1.0,
                    ref_dance_s: Some(0.0),
                };
                job.retime = Retime::None;
                let seek = SeekRule {
                    exact_only: false,
                    origin_s: self.mix.recording_origin_s,
                };
                (job, *gain, seek)
            }
        };
        Ok(OpenPiece {
            index: i,
            source: Some(SongPcm::open(job, self.spec, seek)?),
            gain,
        })
    }
}

impl PcmSource for MixPcm {
    fn fill(&mut self, out: &mut Planar, n: usize, cancel: &CancelToken) -> Result<()> {
        let channels = self.spec.0.channels() as usize;
        let mut mixed = vec![vec![0f32; n]; channels];
        let end = self.at + n;
        while self.at < end {
            self.update_open()?;
            // Up to where the set of open pieces changes.
            let mut stop = end;
            for p in &self.open {
                stop = stop.min(self.samples[p.index].last());
            }
            if let Some(s) = self.samples.get(self.next) {
                stop = stop.min(s.first().max(self.at + 1));
            }
            let len = stop - self.at;
            let offset = self.at - (end - n);
            for p in &mut self.open {
                let Some(source) = p.source.as_mut() else {
                    continue;
                };
                source.fill(&mut self.scratch, len, cancel)?;
                let s = self.samples[p.index];
                for (c, plane) in self.scratch.0.iter_mut().enumerate() {
                    for (k, x) in plane.drain(..).enumerate() {
                        let w = s.weight(self.at + k) * p.gain;
                        mixed[c][offset + k] += w * x;
                    }
                }
            }
            self.at = stop;
        }
        for (o, m) in out.0.iter_mut().zip(mixed) {
            o.extend(m);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn play(start: f64, end: f64, cut_before: bool) -> Play {
        Play {
            recording_start_s: start,
            recording_end_s: end,
            offset_s: start,
            rate: 1.0,
            cut_before,
        }
    }

    fn pieces(plays: &[Play], span: (f64, f64), between: Between) -> Vec<MixPiece> {
        mix_pieces(&MixLayout {
            plays,
            span,
            between,
            retime_of: &|_, _| Retime::None,
        })
    }

    fn kinds(p: &[MixPiece]) -> Vec<(f64, f64, char)> {
        p.iter()
            .map(|p| {
                let k = match p.sound {
                    PieceSound::Song { .. } => 's',
                    PieceSound::Recorded { .. } => 'r',
                    PieceSound::Silence => '0',
                };
                (p.start_s, p.end_s, k)
            })
            .collect()
    }

    #[test]
    fn plays_and_the_room_between_tile_the_output() {
        let plays = [
            play(10.0, 40.0, false),
            play(60.0, 90.0, false),
            play(90.0, 120.0, true),
        ];
        let p = pieces(&plays, (8.0, 120.0), Between::Recorded);
        assert_eq!(
            kinds(&p),
            vec![
                (0.0, 2.0, 'r'),
                (2.0, 32.0, 's'),
                (32.0, 52.0, 'r'),
                (52.0, 82.0, 's'),
                (82.0, 112.0, 's')
            ]
        );
        assert!((p[0].fade_s - ROOM_FADE_S).abs() < 1e-12);
        assert!((p[3].fade_s - CUT_FADE_S).abs() < 1e-12);
        assert_eq!(p[4].fade_s, 0.0);
        let PieceSound::Recorded { gain } = p[2].sound else {
            panic!("{p:?}")
        };
        assert!((20.0 * f64::from(gain).log10() - Between::DUCK_DB).abs() < 1e-3);
        let p = pieces(&plays, (10.0, 100.0), Between::Silence);
        assert_eq!(
            kinds(&p),
            vec![
                (0.0, 30.0, 's'),
                (30.0, 50.0, '0'),
                (50.0, 80.0, 's'),
                (80.0, 90.0, 's')
            ]
        );
    }

    #[test]
    fn plays_a_few_milliseconds_apart_meet_in_the_middle() {
        let plays = [play(0.0, 30.0, false), play(30.04, 60.0, true)];
        let p = pieces(&plays, (0.0, 60.0), Between::Recorded);
        assert_eq!(kinds(&p).len(), 2, "{p:?}");
        assert!((p[0].end_s - 30.02).abs() < 1e-9 && (p[1].start_s - 30.02).abs() < 1e-9);
        assert!((p[0].fade_s - CUT_FADE_S).abs() < 1e-12);
    }

    #[test]
    fn crossfade_weights_sum_to_one() {
        let a = PieceSamples {
            start: 0,
            end: 1000,
            half_in: 0,
            half_out: 40,
        };
        let b = PieceSamples {
            start: 1000,
            end: 3000,
            half_in: 40,
            half_out: 0,
        };
        assert_eq!(a.last(), b.first() + 80);
        for n in b.first()..a.last() {
            assert!((a.weight(n) + b.weight(n) - 1.0).abs() < 1e-6, "{n}");
        }
        assert_eq!(a.weight(100), 1.0);
        assert!(b.weight(b.first()) < 0.01 && a.weight(a.last() - 1) < 0.01);
    }
}

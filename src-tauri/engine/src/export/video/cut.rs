//! The cut: which packets to copy for presenting `[start, end)` of the
//! recording, decided before anything is written ([`plan_cut`]), and the
//! reader that then streams exactly those packets ([`CutReader`]).

use super::{timing_of, PacketTiming, VideoReader, VideoTrack};
use crate::error::{EngineError, Result};
use ffmpeg_next as ffmpeg;

/// Which packets to copy, decided before writing anything.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoCut {
    /// Where the copy pass seeks to (stream time base); it then skips to `key`.
    pub(crate) seek_ts: i64,
    key: PacketTiming,
    /// pts of the first presented frame (the cut); becomes output time 0.
    pub start_pts: i64,
    /// The copy stops at the first packet (decode order) with pts >= this.
    pub stop_pts: i64,
    /// Presentation end of the copied frames.
    pub end_pts: i64,
    /// Packets from the keyframe to the cut that are decoded but not shown.
    pub hidden_frames: usize,
    /// Leave out the keyframe's leading pictures (after it in decode order,
    /// before it on screen): after a re-encoded head, which holds them.
    skip_leading: bool,
}

impl VideoCut {
    /// pts of the keyframe copying starts from.
    pub fn key_pts(&self) -> i64 {
        self.key.pts
    }
    /// The same cut with copying resuming at another keyframe (after a
    /// re-encoded head, which holds that keyframe's leading pictures).
    pub fn resume_at(&self, key_dts: i64, key_pts: i64, key_pos: isize) -> VideoCut {
        VideoCut {
            seek_ts: key_dts,
            key: PacketTiming {
                pts: key_pts,
                dts: key_dts,
                duration: 0,
                key: true,
                pos: key_pos,
            },
            hidden_frames: 0,
            skip_leading: true,
            ..self.clone()
        }
    }
    pub fn start_s(&self, track: &VideoTrack) -> f64 {
        track.to_s(self.start_pts)
    }
    pub fn end_s(&self, track: &VideoTrack) -> f64 {
        track.to_s(self.end_pts)
    }
}

/// Decides the packets to copy for presenting container times
/// `[start_s, end_s)`: the frame shown at `start_s` (nearest frame start),
/// the keyframe to begin copying from, and the exact end.
pub(crate) fn plan_cut(
    r: &mut VideoReader,
    track: &VideoTrack,
    start_s: f64,
    end_s: f64,
) -> Result<VideoCut> {
    let start = cut_start(r, track, start_s)?;
    let stop_pts = track.to_ts(end_s);
    let end_pts = cut_end(r, track, &start, (start_s, end_s), stop_pts)?;
    Ok(VideoCut {
        seek_ts: start.seek_ts,
        key: start.key,
        start_pts: start.start_pts,
        stop_pts,
        end_pts,
        hidden_frames: start.hidden_frames,
        skip_leading: false,
    })
}

/// Where a cut starts: the frame shown first and the keyframe before it.
struct CutStart {
    seek_ts: i64,
    key: PacketTiming,
    start_pts: i64,
    hidden_frames: usize,
}

fn cut_start(r: &mut VideoReader, track: &VideoTrack, start_s: f64) -> Result<CutStart> {
    let half = track.to_ts(track.frame_s * 0.5).max(1);
    let target = track.to_ts(start_s);
    let mut back = 1.5;
    loop {
        let seek_ts = track.to_ts(start_s - back);
        r.seek(seek_ts)?;
        let mut read: Vec<PacketTiming> = Vec::new();
        while let Some(p) = r.next()? {
            if let Some(t) = timing_of(&p) {
                let past = t.dts > target + track.to_ts(1.0);
                read.push(t);
                if past {
                    break;
                }
            }
        }
        // The cut frame: the first frame starting at or after the target
        // (within half a frame), else the last frame read.
        let f0 = read
            .iter()
            .enumerate()
            .filter(|(_, t)| t.pts >= target - half)
            .min_by_key(|(_, t)| t.pts)
            .map(|(i, t)| (i, t.pts));
        let Some((f0_idx, f0_pts)) = f0 else {
            return Err(EngineError::NothingToExport {
                reason: format!("no video frame at {start_s:.3} s"),
            });
        };
        // The keyframe to start copying from: the last keyframe in decode
        // order at or before the cut frame that is shown no later than it.
        let key = read[..=f0_idx]
            .iter()
            .rposition(|t| t.key && t.pts <= f0_pts)
            .map(|i| (i, read[i]));
        match key {
            Some((ki, k)) => {
                return Ok(CutStart {
                    seek_ts,
                    key: k,
                    start_pts: f0_pts,
                    hidden_frames: read[ki..].iter().filter(|t| t.pts < f0_pts).count(),
                })
            }
            None if start_s - back > track.start_s - 1.0 => back *= 3.0,
            None => {
                return Err(EngineError::Unsupported {
                    path: r.path.to_path_buf(),
                    reason: "no keyframe before the cut point; the video stream looks damaged"
                        .into(),
                })
            }
        }
    }
}

/// Presentation end of the copied frames: scans from a keyframe a little
/// before the end (or from the copy start when the export is short),
/// applying the same stop rule as the copy.
fn cut_end(
    r: &mut VideoReader,
    track: &VideoTrack,
    start: &CutStart,
    (start_s, end_s): (f64, f64),
    stop_pts: i64,
) -> Result<i64> {
    let end_scan_from = track.to_ts(end_s - 2.0);
    if end_scan_from > start.key.pts {
        r.seek(end_scan_from)?;
    } else {
        r.seek(start.seek_ts)?;
    }
    let mut end_pts = start.start_pts;
    let frame_ts = track.to_ts(track.frame_s).max(1);
    while let Some(p) = r.next()? {
        let Some(t) = timing_of(&p) else { continue };
        if t.pts >= stop_pts {
            break;
        }
        let d = if t.duration > 0 { t.duration } else { frame_ts };
        end_pts = end_pts.max(t.pts + d);
    }
    if end_pts <= start.start_pts {
        return Err(EngineError::NothingToExport {
            reason: format!("no video frames between {start_s:.3} s and {end_s:.3} s"),
        });
    }
    Ok(end_pts)
}

/// Streams the packets of a [`VideoCut`] in decode order, unchanged except
/// for missing decode timestamps, which are filled in (Matroska gives none
/// for the first packets after a keyframe when there are B-frames; MP4
/// needs them).
pub(crate) struct CutReader<'a> {
    reader: VideoReader<'a>,
    cut: VideoCut,
    started: bool,
    done: bool,
    /// Packets read ahead while looking for the first known dts.
    ahead: std::collections::VecDeque<ffmpeg::Packet>,
    last_dts: Option<i64>,
    frame_ts: i64,
}

impl<'a> CutReader<'a> {
    pub fn open(mut reader: VideoReader<'a>, track: &VideoTrack, cut: &VideoCut) -> Result<Self> {
        reader.seek(cut.seek_ts)?;
        Ok(Self {
            reader,
            cut: cut.clone(),
            started: false,
            done: false,
            ahead: std::collections::VecDeque::new(),
            last_dts: None,
            frame_ts: track.to_ts(track.frame_s).max(1),
        })
    }

    /// A global tag of the input (e.g. `creation_time`).
    pub fn tag(&self, key: &str) -> Option<String> {
        self.reader.ictx.metadata().get(key).map(str::to_string)
    }

    pub fn input_stream(&self) -> Option<ffmpeg::format::stream::Stream<'_>> {
        self.reader.ictx.stream(self.reader.stream_index)
    }

    /// Next packet of the cut as the demuxer gives it.
    fn next_raw(&mut self) -> Result<Option<ffmpeg::Packet>> {
        if self.done {
            return Ok(None);
        }
        while let Some(p) = self.reader.next()? {
            let Some(t) = timing_of(&p) else {
                if self.started {
                    return Err(EngineError::Unsupported {
                        path: self.reader.path.to_path_buf(),
                        reason: "a video packet has no timestamp; remux the file first".into(),
                    });
                }
                continue;
            };
            if !self.started {
                let k = &self.cut.key;
                let same = t.pts == k.pts && t.key && (k.pos < 0 || t.pos == k.pos);
                if !same {
                    continue;
                }
                self.started = true;
            }
            if t.pts >= self.cut.stop_pts {
                self.done = true;
                return Ok(None);
            }
            if self.cut.skip_leading && t.pts < self.cut.key.pts {
                continue;
            }
            return Ok(Some(p));
        }
        self.done = true;
        if !self.started {
            return Err(crate::media::input::damaged(
                self.reader.path,
                "the keyframe to copy from was not found again",
            ));
        }
        Ok(None)
    }

    /// Next packet to copy, original pts, dts always set and increasing.
    pub fn next(&mut self) -> Result<Option<ffmpeg::Packet>> {
        if self.ahead.is_empty() {
            let Some(p) = self.next_raw()? else {
                return Ok(None);
            };
            if p.dts().is_some() || self.last_dts.is_some() {
                return Ok(Some(self.fix_dts(p)));
            }
            // Leading packets without dts: read ahead to the first known one
            // and count back from it, one frame per packet.
            self.ahead.push_back(p);
            let mut known: Option<i64> = None;
            while self.ahead.len() < 64 {
                match self.next_raw()? {
                    Some(p) => {
                        let d = p.dts();
                        self.ahead.push_back(p);
                        if let Some(d) = d {
                            known = Some(d);
                            break;
                        }
                    }
                    None => break,
                }
            }
            let missing = self.ahead.iter().take_while(|p| p.dts().is_none()).count();
            for (i, p) in self.ahead.iter_mut().take(missing).enumerate() {
                let pts = p.pts().unwrap_or(0);
                let dts = match known {
                    Some(k) => (k - (missing - i) as i64 * self.frame_ts).min(pts),
                    None => pts,
                };
                p.set_dts(Some(dts));
            }
        }
        match self.ahead.pop_front() {
            Some(p) => Ok(Some(self.fix_dts(p))),
            None => Ok(None),
        }
    }

    fn fix_dts(&mut self, mut p: ffmpeg::Packet) -> ffmpeg::Packet {
        let pts = p.pts().or(p.dts()).unwrap_or(0);
        let mut dts = match (p.dts(), self.last_dts) {
            (Some(d), _) => d,
            (None, Some(last)) => (last + self.frame_ts).min(pts),
            (None, None) => pts,
        };
        if let Some(last) = self.last_dts {
            if dts <= last {
                dts = last + 1;
            }
        }
        p.set_pts(Some(pts.max(dts)));
        p.set_dts(Some(dts));
        self.last_dts = Some(dts);
        p
    }
}

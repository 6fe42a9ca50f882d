//! The encoded audio in output order, from the song's own packets, one
//! encoder thread, or two encoder threads spliced where they agree.

use super::copier::SongCopier;
use super::split::{aac_window, choose_splice, SplitPlan, AAC_FRAME};
use super::AudioPacket;
use crate::cancel::CancelToken;
use crate::error::{EngineError, Result};
use std::collections::BTreeMap;
use std::time::Duration;

pub(super) type PacketRx = std::sync::mpsc::Receiver<Result<AudioPacket>>;

type AudioSink<'a> = &'a mut dyn FnMut(AudioPacket) -> Result<()>;

/// Runs an audio producer (encoder or copier) on its own thread; `bound`:
/// channel capacity (None: unbounded).
pub(super) fn spawn_audio(
    cancel: CancelToken,
    bound: Option<usize>,
    run: impl FnOnce(&CancelToken, AudioSink) -> Result<()> + std::marker::Send + 'static,
) -> (PacketRx, std::thread::JoinHandle<()>) {
    type Send = Box<dyn Fn(Result<AudioPacket>) -> bool + std::marker::Send>;
    let (send, rx): (Send, PacketRx) = match bound {
        Some(n) => {
            let (tx, rx) = std::sync::mpsc::sync_channel(n);
            (Box::new(move |m| tx.send(m).is_ok()), rx)
        }
        None => {
            let (tx, rx) = std::sync::mpsc::channel();
            (Box::new(move |m| tx.send(m).is_ok()), rx)
        }
    };
    let t = std::thread::spawn(move || {
        let r = run(&cancel, &mut |pkt| {
            if send(Ok(pkt)) {
                Ok(())
            } else {
                Err(EngineError::Cancelled)
            }
        });
        if let Err(e) = r {
            send(Err(e));
        }
    });
    (rx, t)
}

pub(crate) enum Polled {
    Packet(AudioPacket),
    Waiting,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeedPhase {
    Single,
    /// Piece A before the splice window: passed straight through.
    StreamA,
    /// Piece A inside the window: kept until A ends.
    CollectA,
    /// Piece B up to the end of the window: kept, then the splice is chosen.
    CollectB,
    /// Piece B after the splice: passed through.
    StreamB,
}

/// The encoded audio in output order, from one encoder or two spliced ones.
pub(crate) struct AudioFeed {
    /// The song's own packets, read in the muxing loop (then `a` is unused).
    copier: Option<SongCopier>,
    a: PacketRx,
    b: Option<PacketRx>,
    plan: Option<SplitPlan>,
    phase: FeedPhase,
    ready: std::collections::VecDeque<AudioPacket>,
    a_win: BTreeMap<i64, AudioPacket>,
    b_win: BTreeMap<i64, AudioPacket>,
}

impl AudioFeed {
    pub fn copied(c: SongCopier) -> Self {
        let (_, a) = std::sync::mpsc::channel();
        Self {
            copier: Some(c),
            ..Self::single(a)
        }
    }
    pub fn single(a: PacketRx) -> Self {
        Self {
            copier: None,
            a,
            b: None,
            plan: None,
            phase: FeedPhase::Single,
            ready: Default::default(),
            a_win: BTreeMap::new(),
            b_win: BTreeMap::new(),
        }
    }
    pub fn spliced(a: PacketRx, b: PacketRx, plan: SplitPlan) -> Self {
        Self {
            b: Some(b),
            plan: Some(plan),
            phase: FeedPhase::StreamA,
            ..Self::single(a)
        }
    }

    fn splice(&mut self) {
        let Some(plan) = self.plan else { return };
        let windows = |m: &BTreeMap<i64, AudioPacket>| -> BTreeMap<i64, Option<(u8, u8)>> {
            m.iter()
                .map(|(k, p)| (*k, p.data().and_then(aac_window)))
                .collect()
        };
        let s = choose_splice(&plan, &windows(&self.a_win), &windows(&self.b_win)) as i64;
        tracing::debug!("audio pieces spliced at sample {s}");
        let a_win = std::mem::take(&mut self.a_win);
        let b_win = std::mem::take(&mut self.b_win);
        let tail: Vec<AudioPacket> = self.ready.drain(..).collect();
        self.ready
            .extend(a_win.into_iter().filter(|(k, _)| *k < s).map(|(_, p)| p));
        self.ready
            .extend(b_win.into_iter().filter(|(k, _)| *k >= s).map(|(_, p)| p));
        self.ready.extend(tail);
        self.phase = FeedPhase::StreamB;
    }

    pub fn poll(&mut self, wait: Duration) -> Result<Polled> {
        use std::sync::mpsc::RecvTimeoutError;
        if let Some(c) = self.copier.as_mut() {
            return Ok(match c.next_packet()? {
                Some(p) => Polled::Packet(p),
                None => Polled::Done,
            });
        }
        loop {
            if let Some(p) = self.ready.pop_front() {
                return Ok(Polled::Packet(p));
            }
            let from_b = matches!(self.phase, FeedPhase::CollectB | FeedPhase::StreamB);
            let rx = if from_b {
                match &self.b {
                    Some(b) => b,
                    None => return Ok(Polled::Done),
                }
            } else {
                &self.a
            };
            let got = rx.recv_timeout(wait);
            let (lo, hi) = self
                .plan
                .map_or((0, 0), |p| (p.lo as i64 - AAC_FRAME as i64, p.hi as i64));
            match (self.phase, got) {
                (_, Ok(Err(e))) => return Err(e),
                (_, Err(RecvTimeoutError::Timeout)) => return Ok(Polled::Waiting),
                (FeedPhase::Single | FeedPhase::StreamB, Ok(Ok(p))) => {
                    return Ok(Polled::Packet(p))
                }
                (FeedPhase::Single | FeedPhase::StreamB, Err(RecvTimeoutError::Disconnected)) => {
                    return Ok(Polled::Done)
                }
                (FeedPhase::StreamA | FeedPhase::CollectA, Ok(Ok(p))) => {
                    let pts = p.pts().unwrap_or(0);
                    if pts < lo && self.phase == FeedPhase::StreamA {
                        return Ok(Polled::Packet(p));
                    }
                    self.phase = FeedPhase::CollectA;
                    if pts <= hi {
                        self.a_win.insert(pts, p);
                    }
                    // Let the caller report progress and check for cancellation.
                    return Ok(Polled::Waiting);
                }
                (FeedPhase::StreamA | FeedPhase::CollectA, Err(RecvTimeoutError::Disconnected)) => {
                    self.phase = FeedPhase::CollectB;
                }
                (FeedPhase::CollectB, Ok(Ok(p))) => {
                    let pts = p.pts().unwrap_or(0);
                    if pts < lo {
                        return Ok(Polled::Waiting);
                    }
                    if pts <= hi {
                        self.b_win.insert(pts, p);
                        return Ok(Polled::Waiting);
                    } else {
                        self.ready.push_back(p);
                        self.splice();
                    }
                }
                (FeedPhase::CollectB, Err(RecvTimeoutError::Disconnected)) => self.splice(),
            }
        }
    }
}

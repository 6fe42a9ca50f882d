//! The frame server's worker: the thread that owns the demuxer, decoder,
//! scalers and encoder, answers requests and reads ahead while playing (the
//! behaviour is described in the parent module).

use super::*;
use std::time::Instant;

pub(super) struct Worker {
    src: VideoSource,
    maker: PictureMaker,
    shared: Arc<Shared>,
    rx: Receiver<Msg>,
    /// End (ticks) of the last frame decoded since the last seek: where the
    /// decoder stands. None right after a seek.
    pos: Option<i64>,
    /// The decoder reached the end of the stream (since the last seek).
    ended: bool,
    first_start: i64,
    reach: i64,
    ahead: i64,
    lead: i64,
}

/// Where decoding for a request ended.
enum Reached {
    /// The asked frame, decoded.
    Frame(DecodedFrame),
    /// A newer request came in while decoding: it replaces this one.
    Superseded(Request),
}

/// Counts for one request's decoding (see [`ServerStats`]).
#[derive(Default)]
struct Decoding {
    sought: bool,
    frames: u64,
}

impl Worker {
    pub(super) fn open(
        path: &Path,
        origin_s: f64,
        opts: &FrameServerOptions,
        shared: Arc<Shared>,
        rx: Receiver<Msg>,
    ) -> Result<(Self, Opened)> {
        let mut src = VideoSource::open(path, opts.decode_threads)?;
        let first = src
            .next()?
            .ok_or_else(|| src.damaged("no picture could be decoded"))?;
        let (cw, ch) = (first.picture.width(), first.picture.height());
        let (dw, dh) = crate::frames::picture::display_size(cw, ch, src.sar, src.rotation);
        let info = PictureInfo {
            path: path.to_path_buf(),
            coded_width: cw,
            coded_height: ch,
            display_width: dw,
            display_height: dh,
            rotation: src.rotation,
            frame_rate: src.frame_rate,
            origin_s,
            start_s: src.seconds(first.start) - origin_s,
            end_s: src.seconds(src.header_end(first.start)) - origin_s,
        };
        let opened = Opened {
            info,
            tb: src.tb,
            stream_index: src.stream_index(),
            frame_ticks: src.frame_ticks,
        };
        let worker = Self {
            reach: src.ticks(FORWARD_REACH_S),
            ahead: src.ticks(opts.read_ahead_s.clamp(0.0, 10.0)),
            lead: src.ticks(CATCH_UP_LEAD_S),
            pos: Some(first.end),
            ended: false,
            first_start: first.start,
            src,
            maker: PictureMaker::new(),
            shared,
            rx,
        };
        Ok((worker, opened))
    }

    pub(super) fn run(mut self) {
        let mut next: Option<Request> = None;
        loop {
            if self.shared.stop.is_cancelled() {
                return;
            }
            let msg = match next.take() {
                Some(r) => Some(Msg::Frame(r)),
                None => match self.wait_for_message() {
                    Ok(m) => m,
                    Err(()) => return,
                },
            };
            match msg {
                Some(Msg::Frame(r)) => {
                    let r = self.newest(r);
                    next = self.serve(r);
                }
                Some(Msg::Wake) => {}
                None => {
                    if self.read_ahead_one().is_err() {
                        // A damaged stretch: stop reading ahead; requests
                        // there get the error themselves.
                        self.shared.ahead_width.store(0, Ordering::SeqCst);
                    }
                }
            }
        }
    }

    /// Whether there is read-ahead to do now.
    fn reading_ahead(&self) -> bool {
        if self.shared.ahead_width.load(Ordering::SeqCst) == 0 || self.ended {
            return false;
        }
        let playhead = self.shared.playhead.load(Ordering::SeqCst);
        self.pos.is_none_or(|p| p <= playhead + self.ahead)
    }

    /// The next message; `None` when there is read-ahead to do instead.
    fn wait_for_message(&self) -> std::result::Result<Option<Msg>, ()> {
        if self.reading_ahead() {
            return match self.rx.try_recv() {
                Ok(m) => Ok(Some(m)),
                Err(TryRecvError::Empty) => Ok(None),
                Err(TryRecvError::Disconnected) => Err(()),
            };
        }
        if self.shared.ahead_width.load(Ordering::SeqCst) != 0 {
            // Playing and far enough ahead: look again at the playhead soon.
            return match self.rx.recv_timeout(PLAYHEAD_POLL) {
                Ok(m) => Ok(Some(m)),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected) => Err(()),
            };
        }
        self.shared.idle.store(true, Ordering::SeqCst);
        let m = self.rx.recv();
        self.shared.idle.store(false, Ordering::SeqCst);
        m.map(Some).map_err(|_| ())
    }

    /// `r`, or a newer request already queued (the older ones are answered).
    fn newest(&self, mut r: Request) -> Request {
        while let Ok(m) = self.rx.try_recv() {
            if let Msg::Frame(newer) = m {
                self.answer_superseded(r);
                r = newer;
            }
        }
        r
    }

    fn answer_superseded(&self, r: Request) {
        let hit = self
            .lock_cache()
            .get(r.width, r.ts, r.use_ == FrameUse::Still);
        let _ = r.reply.send(hit.ok_or(EngineError::Cancelled));
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, FrameCache> {
        self.shared.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers `r`; returns a newer request that replaced it, if any.
    fn serve(&mut self, r: Request) -> Option<Request> {
        if let Some(f) = self
            .lock_cache()
            .get(r.width, r.ts, r.use_ == FrameUse::Still)
        {
            let _ = r.reply.send(Ok(f));
            return None;
        }
        let t0 = Instant::now();
        let mut counts = Decoding::default();
        let reached = self.decode_to(r.ts, r.use_, &mut counts);
        let decoded = t0.elapsed();
        let f = match reached {
            Ok(Reached::Frame(f)) => f,
            Ok(Reached::Superseded(newer)) => {
                self.answer_superseded(r);
                return Some(newer);
            }
            Err(e) => {
                let _ = r.reply.send(Err(e));
                return None;
            }
        };
        let quality = match r.use_ {
            FrameUse::Playing => ScaleQuality::Moving,
            FrameUse::Still => ScaleQuality::Still,
        };
        let result = self.encode(f, r.width, quality);
        let encoded = t0.elapsed() - decoded;
        self.account(&counts, decoded, encoded);
        tracing::debug!(
            target: "beatsync::frames",
            use_ = ?r.use_,
            sought = counts.sought,
            frames_decoded = counts.frames,
            decode_ms = decoded.as_secs_f64() * 1e3,
            encode_ms = encoded.as_secs_f64() * 1e3,
            "frame decoded for a request"
        );
        let _ = r.reply.send(result);
        None
    }

    fn account(&self, counts: &Decoding, decoded: Duration, encoded: Duration) {
        let mut stats = self.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.requests_decoded += 1;
        stats.seeks += u64::from(counts.sought);
        stats.frames_decoded += counts.frames;
        stats.decode_s += decoded.as_secs_f64();
        stats.encode_s += encoded.as_secs_f64();
    }

    /// Seeks to the keyframe before `ts`; the frames to be shown start at
    /// `shown_from`, so unreferenced frames well before it are not decoded.
    fn seek(&mut self, ts: i64, shown_from: i64) -> Result<()> {
        self.pos = None;
        self.ended = false;
        self.src.seek(ts)?;
        match self.interval_at(shown_from) {
            Some((start, end)) => self.src.expect_frame(start, end),
            None => self.src.skip_unreferenced_before(shown_from),
        }
        Ok(())
    }

    /// The interval of the frame holding `ts` (ticks), once the timeline is
    /// scanned (never waited for: a seek does not wait for the scan).
    fn interval_at(&self, ts: i64) -> Option<(i64, i64)> {
        let slot = self.shared.timeline.try_lock().ok()?;
        slot.as_ref()?.interval_at_ticks(ts)
    }

    /// Decodes to the frame at `target`, seeking first unless the decoder
    /// stands a little before it.
    fn decode_to(&mut self, target: i64, use_: FrameUse, counts: &mut Decoding) -> Result<Reached> {
        let playing = use_ == FrameUse::Playing;
        // A still frame must be exact: from a keyframe if the decoder has
        // been decoding fast since the last one.
        let exact_enough = playing || self.src.is_exact();
        let forward =
            exact_enough && matches!(self.pos, Some(p) if p <= target && target - p <= self.reach);
        self.src.set_fast(playing);
        if !forward {
            self.seek(target, target)?;
            counts.sought = true;
        }
        let mut back = FORWARD_REACH_S;
        let mut last: Option<DecodedFrame> = None;
        loop {
            if self.shared.stop.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            if let Some(newer) = self.newer_request() {
                return Ok(Reached::Superseded(newer));
            }
            let next = self.src.next()?;
            let Some(f) = next else {
                self.ended = true;
                // The end: the target is at or after the last frame.
                if let Some(f) = last {
                    return Ok(Reached::Frame(f));
                }
                if counts.sought {
                    return Err(self.src.damaged("no frame at the asked time"));
                }
                counts.sought = true;
                self.seek(target, target)?;
                continue;
            };
            counts.frames += 1;
            self.pos = Some(f.end);
            if last.is_none() && f.start > target && f.start > self.first_start && back < 100.0 {
                // The keyframe found starts after the target (B-frame
                // reordering around it): start further back.
                let from = target - self.src.ticks(back);
                back *= 3.0;
                self.seek(from, target)?;
                continue;
            }
            if f.end > target || f.start >= target {
                return Ok(Reached::Frame(f));
            }
            last = Some(f);
        }
    }

    /// A newer frame request, if one is queued (wake-ups are dropped).
    fn newer_request(&self) -> Option<Request> {
        let mut newest = None;
        while let Ok(m) = self.rx.try_recv() {
            if let Msg::Frame(r) = m {
                if let Some(older) = newest.replace(r) {
                    self.answer_superseded(older);
                }
            }
        }
        newest
    }

    fn encode(
        &mut self,
        f: DecodedFrame,
        width: u32,
        quality: ScaleQuality,
    ) -> Result<CachedFrame> {
        let jpeg = self.maker.jpeg(
            self.src.path(),
            &f.picture,
            width,
            self.src.sar,
            self.src.rotation,
            quality,
        )?;
        let cached = CachedFrame {
            jpeg: jpeg.bytes.into(),
            width: jpeg.width,
            height: jpeg.height,
            start: f.start,
            end: f.end,
            exact: quality == ScaleQuality::Still && self.src.is_exact(),
        };
        self.lock_cache().insert(width, cached.clone());
        Ok(cached)
    }

    /// Decodes the next frame past the position and, when it is within the
    /// read-ahead window and not cached yet, encodes and caches it.
    fn read_ahead_one(&mut self) -> Result<()> {
        let width = self.shared.ahead_width.load(Ordering::SeqCst);
        let playhead = self.shared.playhead.load(Ordering::SeqCst);
        self.src.set_fast(true);
        if self.pos.is_none_or(|p| p + self.reach < playhead) {
            // Fallen behind (or lost after a failed seek): catch up by seeking.
            self.seek(playhead + self.lead, playhead)?;
        }
        let Some(f) = self.src.next()? else {
            self.ended = true;
            return Ok(());
        };
        self.pos = Some(f.end);
        if width != 0 && f.end > playhead && !self.lock_cache().contains_start(width, f.start) {
            self.encode(f, width, ScaleQuality::Moving)?;
        }
        Ok(())
    }
}

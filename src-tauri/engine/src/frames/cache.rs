//! Encoded frames kept in memory, bounded by bytes; the least recently used
//! go first. Looked up by the time a caller asks for: the frame whose
//! presentation interval contains it, at the asked width.

use std::collections::BTreeMap;
use std::sync::Arc;

/// One encoded frame as served.
#[derive(Debug, Clone)]
pub struct CachedFrame {
    pub jpeg: Arc<[u8]>,
    pub width: u32,
    pub height: u32,
    /// Presentation interval `[start, end)` in stream ticks.
    pub start: i64,
    pub end: i64,
    /// Decoded exactly and scaled with the full filter (a still frame), not
    /// prepared the fast way for playback.
    pub exact: bool,
}

pub(crate) struct FrameCache {
    /// Keyed by (asked width, start tick).
    frames: BTreeMap<(u32, i64), (CachedFrame, u64)>,
    bytes: usize,
    budget: usize,
    clock: u64,
}

impl FrameCache {
    pub fn new(budget: usize) -> Self {
        Self {
            frames: BTreeMap::new(),
            bytes: 0,
            budget,
            clock: 0,
        }
    }

    /// The frame at `ts` for `width`, if cached (an exact one if
    /// `exact_only`); marks it used.
    pub fn get(&mut self, width: u32, ts: i64, exact_only: bool) -> Option<CachedFrame> {
        self.clock += 1;
        let clock = self.clock;
        let (_, (frame, used)) = self
            .frames
            .range_mut((width, i64::MIN)..=(width, ts))
            .next_back()?;
        if ts >= frame.end || (exact_only && !frame.exact) {
            return None;
        }
        *used = clock;
        Some(frame.clone())
    }

    /// The latest frame for `width` starting at or before `ts` and no more
    /// than `max_age` ticks before it (a stale picture while playing).
    pub fn get_recent(&mut self, width: u32, ts: i64, max_age: i64) -> Option<CachedFrame> {
        let (_, (frame, _)) = self
            .frames
            .range((width, ts - max_age)..=(width, ts))
            .next_back()?;
        Some(frame.clone())
    }

    pub fn contains_start(&self, width: u32, start: i64) -> bool {
        self.frames.contains_key(&(width, start))
    }

    pub fn insert(&mut self, width: u32, frame: CachedFrame) {
        self.clock += 1;
        let size = frame.jpeg.len();
        if let Some((old, _)) = self
            .frames
            .insert((width, frame.start), (frame, self.clock))
        {
            self.bytes -= old.jpeg.len();
        }
        self.bytes += size;
        if self.bytes > self.budget {
            self.evict();
        }
    }

    /// Drops the least recently used frames down to 90 % of the budget (in
    /// one pass, so that eviction is not paid on every insertion).
    fn evict(&mut self) {
        let target = self.budget / 10 * 9;
        let mut by_age: Vec<(u64, (u32, i64), usize)> = self
            .frames
            .iter()
            .map(|(k, (f, used))| (*used, *k, f.jpeg.len()))
            .collect();
        by_age.sort_unstable();
        for (_, key, size) in by_age {
            if self.bytes <= target {
                break;
            }
            self.frames.remove(&key);
            self.bytes -= size;
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(start: i64, end: i64, size: usize) -> CachedFrame {
        CachedFrame {
            jpeg: vec![0u8; size].into(),
            width: 640,
            height: 360,
            start,
            end,
            exact: start % 20 == 0,
        }
    }

    #[test]
    fn finds_the_frame_whose_interval_holds_the_time() {
        let mut c = FrameCache::new(1 << 20);
        c.insert(640, frame(0, 512, 10));
        c.insert(640, frame(512, 1024, 10));
        assert_eq!(c.get(640, 0, false).map(|f| f.start), Some(0));
        assert_eq!(c.get(640, 511, true).map(|f| f.start), Some(0));
        assert_eq!(c.get(640, 512, false).map(|f| f.start), Some(512));
        assert!(
            c.get(640, 512, true).is_none(),
            "a playback frame is no still"
        );
        assert!(
            c.get(640, 1024, false).is_none(),
            "past the last cached interval"
        );
        assert!(c.get(640, -1, false).is_none());
        assert!(
            c.get(320, 10, false).is_none(),
            "another width is another picture"
        );
        assert_eq!(c.get_recent(640, 2000, 1500).map(|f| f.start), Some(512));
        assert!(c.get_recent(640, 2000, 1000).is_none(), "too old");
    }

    #[test]
    fn stays_within_its_byte_budget_dropping_the_least_recently_used() {
        let mut c = FrameCache::new(1000);
        for i in 0..10 {
            c.insert(640, frame(i * 10, i * 10 + 10, 100));
        }
        assert_eq!(c.bytes(), 1000);
        c.get(640, 0, false); // frame 0 used: it stays
        c.insert(640, frame(100, 110, 100));
        assert!(c.bytes() <= 900, "{}", c.bytes());
        assert!(c.get(640, 0, false).is_some());
        assert!(
            c.get(640, 10, false).is_none(),
            "the oldest unused went first"
        );
        assert!(c.get(640, 105, false).is_some());
    }
}

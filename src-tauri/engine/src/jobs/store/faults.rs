//! Store faults on demand, for tests: the next operations fail with
//! SQLITE_BUSY (another process holds the write lock) or SQLITE_FULL (the
//! disk is full), as SQLite itself would report them. No root, no full disk.

use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Default)]
pub(crate) struct Faults {
    /// Faults still to inject.
    left: AtomicU32,
    /// Inject at one operation in `every`, chosen pseudo-randomly (a fixed
    /// period would always hit the same call of a loop).
    every: AtomicU32,
    ops: AtomicU32,
    injected: AtomicU32,
}

impl Faults {
    /// Plans `count` faults, at one operation in `every` on average (seeded,
    /// so reproducible), BUSY and FULL in turn.
    pub fn plan(&self, count: u32, every: u32) {
        self.ops.store(0, Ordering::SeqCst);
        self.every.store(every.max(1), Ordering::SeqCst);
        self.left.store(count, Ordering::SeqCst);
    }

    pub fn injected(&self) -> u32 {
        self.injected.load(Ordering::SeqCst)
    }

    /// Called at the start of every store operation.
    pub fn check(&self) -> rusqlite::Result<()> {
        if self.left.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let n = u64::from(self.ops.fetch_add(1, Ordering::SeqCst));
        if !splitmix64(n).is_multiple_of(u64::from(self.every.load(Ordering::SeqCst))) {
            return Ok(());
        }
        let took = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1));
        if took.is_err() {
            return Ok(());
        }
        let i = self.injected.fetch_add(1, Ordering::SeqCst);
        let code = if i.is_multiple_of(2) {
            rusqlite::ffi::SQLITE_BUSY
        } else {
            rusqlite::ffi::SQLITE_FULL
        };
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            Some("injected by a test".into()),
        ))
    }
}

fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

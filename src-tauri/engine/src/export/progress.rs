//! Progress reporting at a steady pace: the UI wants news every 250 ms, also
//! from steps that cannot report often themselves.

use crate::error::{EngineError, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Progress reporting at a steady pace (the UI wants news every 250 ms).
pub(crate) struct Progress<'a> {
    f: &'a mut dyn FnMut(&str, f64),
    last: Instant,
}

impl<'a> Progress<'a> {
    pub fn new(f: &'a mut dyn FnMut(&str, f64)) -> Self {
        Self {
            f,
            last: Instant::now() - Duration::from_secs(1),
        }
    }
    pub fn tick(&mut self, stage: &str, fraction: f64) {
        if self.last.elapsed() >= Duration::from_millis(100) {
            self.now(stage, fraction);
        }
    }
    pub fn now(&mut self, stage: &str, fraction: f64) {
        (self.f)(stage, fraction.clamp(0.0, 1.0));
        self.last = Instant::now();
    }
}

/// Runs `work` on a helper thread while reporting progress and watching for
/// cancellation, for blocking steps (fsync) that cannot report themselves.
pub(crate) fn blocking_with_ticks<T: Send + 'static>(
    stage: &str,
    progress: &mut Progress,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    with_ticks(stage, progress, move |_| Ok(work()))
}

/// Runs `work` on a scoped helper thread; the fractions it reports, and a
/// steady repeat of the last one every 100 ms, reach `progress` on this
/// thread. Steps that cannot report often (the aligner's stages, decoding a
/// few 4K frames, fsync) thus still keep the UI informed every 250 ms.
pub(crate) fn with_ticks<T: Send>(
    stage: &str,
    progress: &mut Progress,
    work: impl FnOnce(&mut dyn FnMut(f64)) -> Result<T> + Send,
) -> Result<T> {
    enum Msg<T> {
        Fraction(f64),
        Done(Result<T>),
    }
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<Msg<T>>();
        scope.spawn(move || {
            let txf = tx.clone();
            let r = work(&mut |f| {
                let _ = txf.send(Msg::Fraction(f));
            });
            let _ = tx.send(Msg::Done(r));
        });
        let mut last = 0.0;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Msg::Fraction(f)) => {
                    last = f;
                    progress.tick(stage, f);
                }
                Ok(Msg::Done(r)) => return r,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => progress.now(stage, last),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(EngineError::Media {
                        path: PathBuf::from(stage),
                        reason: "an internal worker stopped unexpectedly".into(),
                    })
                }
            }
        }
    })
}

//! `par`: independent work items spread over a few scoped threads, results
//! returned in index order, so that a parallel stage gives exactly the
//! output of its serial loop.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads worth using for the analysis stages: the machine's cores, at most
/// four (the stages are short; more threads cost more to start than they save).
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
}

/// `f(0), f(1), .. f(n - 1)` computed on up to `threads` threads (this one
/// included), returned in index order.
pub(crate) fn par_map<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    par_map_with(n, threads, || (), |_, i| f(i))
}

/// As [`par_map`], with per-thread scratch state made by `init` (FFT plans,
/// buffers): `f(&mut state, i)`. Items are handed out one at a time, so
/// uneven items still balance.
pub(crate) fn par_map_with<S, T: Send>(
    n: usize,
    threads: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) -> T + Sync,
) -> Vec<T> {
    par_map_with_progress(n, threads, init, f, &mut |_| {})
}

/// As [`par_map_with`]; after each item the calling thread computes,
/// `progress` gets the number of items done so far on all threads (for a
/// progress bar: it is called on this thread only).
pub(crate) fn par_map_with_progress<S, T: Send>(
    n: usize,
    threads: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) -> T + Sync,
    progress: &mut dyn FnMut(usize),
) -> Vec<T> {
    let threads = threads.clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let work = |report: &mut dyn FnMut(usize)| {
        let mut state = init();
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return out;
            }
            out.push((i, f(&mut state, i)));
            report(done.fetch_add(1, Ordering::Relaxed) + 1);
        }
    };
    let mut all: Vec<(usize, T)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (1..threads)
            .map(|_| scope.spawn(|| work(&mut |_| {})))
            .collect();
        let mut all = work(progress);
        for w in workers {
            // a panic in `f` is re-raised here, as if it ran on this thread
            all.extend(w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        all
    });
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_index_order_whatever_the_thread_count() {
        let serial: Vec<u64> = (0..1000u64).map(|i| i * i % 97).collect();
        for threads in [1, 2, 3, 8] {
            assert_eq!(
                par_map(1000, threads, |i| (i as u64) * (i as u64) % 97),
                serial
            );
        }
        assert!(par_map(0, 4, |i| i).is_empty());
    }

    #[test]
    fn each_thread_gets_its_own_state() {
        // the state counts the items its own thread did: per thread, the
        // counts seen are exactly 1, 2, .. k, and the k's add up to n
        let seen = par_map_with(
            500,
            3,
            || 0usize,
            |count, _| {
                *count += 1;
                (std::thread::current().id(), *count)
            },
        );
        let mut by_thread: std::collections::HashMap<_, Vec<usize>> = Default::default();
        for (id, c) in seen {
            by_thread.entry(id).or_default().push(c);
        }
        assert!((1..=3).contains(&by_thread.len()));
        let mut total = 0;
        for counts in by_thread.values_mut() {
            counts.sort_unstable();
            assert!(counts.iter().enumerate().all(|(i, &c)| c == i + 1));
            total += counts.len();
        }
        assert_eq!(total, 500);
    }
}

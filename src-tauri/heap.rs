//! The process's heap. glibc gives each thread that allocates while the
//! others hold the lock an arena of its own, up to eight per core; memory
//! freed in an arena stays mapped for that arena's next use. The app's
//! threads (the analysis, the frame servers, the proxy and filmstrip
//! builders, the IPC pool) each kept their own, and the app stayed 161-170 MB
//! above idle after a 3-min 1080p recording was analysed and previewed; with
//! two arenas, 123-125 MB (BENCHMARKS.md, picture preview).

/// Arenas the app's threads share: one per core of the 2-core machines the
/// app is measured on; contention is low (the threads' big buffers come
/// from FFmpeg's pools and long-lived vectors, not from churn).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Caps glibc's malloc arenas (elsewhere: nothing to do). Call before any
/// thread starts; a `MALLOC_ARENA_MAX` in the environment wins, so that the
/// benchmarks can compare.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a malloc parameter; called on the main
        // thread before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

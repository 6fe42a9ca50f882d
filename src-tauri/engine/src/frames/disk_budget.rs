//! Keeping a picture cache folder (proxies, filmstrips) within a byte budget
//! across recordings: every recording a teacher opens leaves its proxy (up to
//! 2 GiB) and filmstrips behind, and nothing else would ever remove them.
//!
//! Each complete entry is a folder directly under the cache folder; its last
//! use is the modification time of its marker file (the proxy's index, the
//! strip's manifest), which [`mark_used`] moves to now when the entry is read
//! back. [`trim`] removes the least recently used entries until the folder
//! fits its budget, never the one in use and never a folder still being
//! filled (`….partial-…`, which its builder removes or renames).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What [`trim`] did.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Trimmed {
    /// Complete entries before trimming and their bytes.
    pub entries: usize,
    pub bytes: u64,
    /// Entries removed and the bytes they held.
    pub removed: usize,
    pub removed_bytes: u64,
}

struct Entry {
    dir: PathBuf,
    bytes: u64,
    last_use: SystemTime,
}

/// Notes that the entry whose marker file is `marker` was just used.
pub(crate) fn mark_used(marker: &Path) {
    // Best effort: a read-only cache keeps its order of first use.
    if let Ok(f) = std::fs::File::options().write(true).open(marker) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Removes the least recently used complete entries of `cache_dir` (folders
/// holding `marker`) until their bytes fit `budget`; `keep` (an entry's
/// folder name) is never removed and counts toward the budget.
pub(crate) fn trim(cache_dir: &Path, marker: &str, keep: &str, budget: u64) -> Trimmed {
    let mut entries = complete_entries(cache_dir, marker);
    let mut report = Trimmed {
        entries: entries.len(),
        bytes: entries.iter().map(|e| e.bytes).sum(),
        ..Trimmed::default()
    };
    // Oldest first.
    entries.sort_by_key(|e| e.last_use);
    let mut held = report.bytes;
    for e in entries {
        if held <= budget {
            break;
        }
        if e.dir.file_name().and_then(|n| n.to_str()) == Some(keep) {
            continue;
        }
        // An entry another process still reads may refuse (Windows): kept.
        if std::fs::remove_dir_all(&e.dir).is_ok() {
            held = held.saturating_sub(e.bytes);
            report.removed += 1;
            report.removed_bytes += e.bytes;
        }
    }
    if report.removed > 0 {
        tracing::info!(
            target: "beatsync::frames",
            removed = report.removed,
            removed_bytes = report.removed_bytes,
            budget,
            "cache {} trimmed to its budget", cache_dir.display()
        );
    }
    report
}

/// The complete entries of `cache_dir`: folders (not `.partial-`) holding `marker`.
fn complete_entries(cache_dir: &Path, marker: &str) -> Vec<Entry> {
    let Ok(read) = std::fs::read_dir(cache_dir) else {
        return Vec::new();
    };
    read.flatten()
        .filter(|d| d.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|d| !d.file_name().to_string_lossy().contains(".partial-"))
        .filter_map(|d| {
            let dir = d.path();
            let last_use = std::fs::metadata(dir.join(marker)).ok()?.modified().ok()?;
            Some(Entry {
                bytes: folder_bytes(&dir),
                dir,
                last_use,
            })
        })
        .collect()
}

/// Bytes of the files directly in `dir` (cache entries hold no subfolders).
fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter_map(|f| f.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(cache: &Path, name: &str, bytes: usize, age_s: u64) {
        let dir = cache.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data"), vec![0u8; bytes]).unwrap();
        let marker = dir.join("index.json");
        std::fs::write(&marker, b"{}").unwrap();
        let f = std::fs::File::options().write(true).open(&marker).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(age_s))
            .unwrap();
    }

    fn names(cache: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(cache)
            .unwrap()
            .flatten()
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn the_least_recently_used_go_first_until_the_budget_fits() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path();
        entry(cache, "a", 4000, 400);
        entry(cache, "b", 4000, 300);
        entry(cache, "c", 4000, 200);
        entry(cache, "d", 4000, 100);
        let t = trim(cache, "index.json", "d", 9000);
        assert_eq!((t.entries, t.removed), (4, 2));
        assert_eq!(names(cache), ["c", "d"]);
    }

    #[test]
    fn the_entry_in_use_a_half_made_one_and_a_foreign_folder_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path();
        entry(cache, "old-in-use", 5000, 900);
        entry(cache, "k.partial-1-0", 5000, 800);
        std::fs::create_dir(cache.join("no-marker")).unwrap();
        std::fs::write(cache.join("no-marker/x"), vec![0u8; 5000]).unwrap();
        entry(cache, "newer", 5000, 10);
        let t = trim(cache, "index.json", "old-in-use", 1000);
        assert_eq!(t.removed, 1);
        assert_eq!(names(cache), ["k.partial-1-0", "no-marker", "old-in-use"]);
    }

    #[test]
    fn a_use_moves_an_entry_to_the_back_of_the_queue() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path();
        entry(cache, "a", 4000, 400);
        entry(cache, "b", 4000, 300);
        mark_used(&cache.join("a").join("index.json"));
        trim(cache, "index.json", "", 5000);
        assert_eq!(names(cache), ["a"]);
    }

    #[test]
    fn within_the_budget_nothing_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        entry(tmp.path(), "a", 4000, 400);
        let t = trim(tmp.path(), "index.json", "", 1 << 20);
        assert_eq!((t.entries, t.removed, t.bytes), (1, 0, 4002));
        assert!(trim(&tmp.path().join("missing"), "index.json", "", 0) == Trimmed::default());
    }
}

#!/usr/bin/env bash
# Crash benchmark of the job system: 20 jobs, 100 SIGKILLs of `beatsync jobs run`
# at seeded moments (mid-analysis, mid-export, right after a transition, random),
# restarted until the queue is empty. The test itself asserts no job lost, no
# corrupt output, no duplicate, no partial file; this prints the figures.
# Usage: bench/jobs_crash.sh [JOBS] [KILLS]
set -euo pipefail
cd "$(dirname "$0")/.."
export BEATSYNC_CRASH_JOBS="${1:-20}" BEATSYNC_CRASH_KILLS="${2:-100}"
cargo test --release -p beatsync-engine --test engine_jobs_crash -- --nocapture 2>&1 | grep -E "crash-test:|test result"

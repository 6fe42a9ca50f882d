#!/usr/bin/env bash
# Crash benchmark of the job system: 20 jobs, 100 SIGKILLs of `beatsync jobs run`
# at seeded moments (mid-analysis, mid-export, right after a transition, random),
# restarted until the queue is empty. The test itself asserts no job lost, no
# corrupt output, no duplicate, no partial file, and that a crash is charged
# only to a job that ran alone; this prints the figures. Then the store-fault
# run: SQLITE_BUSY / SQLITE_FULL injected 100 times while six jobs run.
# Usage: bench/jobs_crash.sh [JOBS] [KILLS]   (PROFILE=debug to skip the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
export BEATSYNC_CRASH_JOBS="${1:-20}" BEATSYNC_CRASH_KILLS="${2:-100}"
profile=(--release)
if [ "${PROFILE:-release}" = debug ]; then profile=(); fi
cargo test "${profile[@]}" -p beatsync-engine --test engine_jobs_crash -- --nocapture 2>&1 | grep -E "crash-test:|test result"
cargo test "${profile[@]}" -p beatsync-engine --lib store_faults_never_stop_the_runner -- --nocapture 2>&1 | grep -E "store-faults:|test result"

#!/usr/bin/env bash
# Offset benchmark of `beatsync align` (issue 3): builds the release CLI, generates
# the public set and three extra draws (seeds 7, 11, 23) if missing, and scores them.
#   bench/align.sh                 # media under /tmp/bench-media
#   BENCH_MEDIA=/data/bench bench/align.sh
# Env: BENCH_DIR (default /work/shared/bench: regen.sh, score.py), BENCH_MEDIA,
#      CARGO_TARGET_DIR (honoured), OUT (JSON results dir, default $BENCH_MEDIA/results).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-/work/shared/bench}"
MEDIA="${BENCH_MEDIA:-/tmp/bench-media}"
OUT="${OUT:-$MEDIA/results}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

(cd "$ROOT" && cargo build --release -p beatsync-engine --bin beatsync)
BIN="$TARGET/release/beatsync"
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }

declare -A SEEDS=([public]="" [seed7]="--seed 7" [seed11]="--seed 11" [seed23]="--seed 23")
mkdir -p "$OUT"
for set in public seed7 seed11 seed23; do
  dir="$MEDIA/$set"
  if [ ! -f "$dir/index.json" ]; then
    echo "generating $set in $dir (a few minutes)" >&2
    # shellcheck disable=SC2086
    "$BENCH_DIR/regen.sh" public "$dir" ${SEEDS[$set]}
  fi
done
for set in public seed7 seed11 seed23; do
  echo "=== $set"
  python3 "$BENCH_DIR/score.py" "$MEDIA/$set" --name "align-$set" \
    --cmd "$BIN align --dance {dance} --bgm {bgm} --json" --json "$OUT/align-$set.json" | tail -n 6
done

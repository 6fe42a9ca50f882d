#!/usr/bin/env bash
# Wrong-song benchmark of `beatsync align` (issue 3: "another song -> no_match"):
# pairs each case's recording with the song file of the case K places further
# on, for K in 3 5 7 11, in every bench set present under $BENCH_MEDIA (the
# sets bench/align.sh generates). Pairs whose two cases use the same song are
# skipped. Prints every pair that is not `no_match` and the counts per set.
#   bench/cross_pairs.sh                 # media under /tmp/bench-media
#   SETS="public seed31" bench/cross_pairs.sh
# Env: BENCH_MEDIA (default /tmp/bench-media), SETS (default: public seed7 seed11
#      seed23), CARGO_TARGET_DIR (honoured), SKIP_BUILD=1, BIN (a binary to test instead).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MEDIA="${BENCH_MEDIA:-/tmp/bench-media}"
SETS="${SETS:-public seed7 seed11 seed23}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release -p beatsync-engine --bin beatsync)
fi
BIN="${BIN:-$TARGET/release/beatsync}"
song_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['song'])" "$1/truth.json"; }
total=0; matched=0
for set in $SETS; do
  cases=("$MEDIA/$set"/pub0*)
  n=${#cases[@]}
  set_total=0; set_matched=0
  for k in 3 5 7 11; do
    for i in $(seq 0 $((n - 1))); do
      rec="${cases[$i]}"; other="${cases[$(( (i + k) % n ))]}"
      [ "$(song_of "$rec")" = "$(song_of "$other")" ] && continue
      bgm="$(ls "$other"/bgm.* | head -1)"
      out="$("$BIN" align --dance "$rec/dance.mp4" --bgm "$bgm" --json 2>&1 || true)"
      set_total=$((set_total + 1))
      if ! grep -q "^no_match" <<< "$out"; then
        set_matched=$((set_matched + 1))
        echo "MATCHED $set $(basename "$rec") x $(basename "$other"): ${out:0:120}"
      fi
    done
  done
  echo "$set: $set_total wrong-song pairs, $((set_total - set_matched)) no_match, $set_matched matched"
  total=$((total + set_total)); matched=$((matched + set_matched))
done
echo "all: $total pairs, $((total - matched)) no_match, $matched matched"

#!/usr/bin/env bash
# Offset benchmark of `beatsync align` (issues 3 and 15): builds the release CLI,
# generates the bench sets that are missing and scores them; then summarises the
# verdicts (sure / unsure / no_match) against the truth, per set.
#   bench/align.sh                                  # every default set
#   SETS="real real5005" bench/align.sh             # chosen sets
#   BIN=/path/to/other/beatsync SKIP_BUILD=1 bench/align.sh
# Set names: public, seedN (synthesised songs, `regen.sh public --seed N`), real,
# realN (recorded music, `regen.sh real --seed N`), perf (one long 1080p case).
# Env: BENCH_DIR (default /work/shared/bench: regen.sh, score.py), BENCH_MEDIA
#      (default /tmp/bench-media), SETS (default: public seed7 seed11 seed23 real
#      real5005 real6006), CARGO_TARGET_DIR (honoured), SKIP_BUILD=1, BIN (a
#      binary to score instead), OUT (results, default $BENCH_MEDIA/results).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-/work/shared/bench}"
MEDIA="${BENCH_MEDIA:-/tmp/bench-media}"
OUT="${OUT:-$MEDIA/results}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
SETS="${SETS:-public seed7 seed11 seed23 real real5005 real6006}"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release -p beatsync-engine --bin beatsync)
fi
BIN="${BIN:-$TARGET/release/beatsync}"
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }

# regen.sh kind and extra arguments of a set name
kind_of() {
  case "$1" in
    public | seed[0-9]*) echo public ;;
    real | real[0-9]*) echo real ;;
    perf) echo perf ;;
    *) echo "unknown set name $1" >&2; return 1 ;;
  esac
}
seed_args_of() {
  case "$1" in
    seed[0-9]*) echo "--seed ${1#seed}" ;;
    real[0-9]*) echo "--seed ${1#real}" ;;
  esac
}
for set in $SETS; do
  dir="$MEDIA/$set"
  # (present: an index, or at least one case folder - perf has no index)
  if [ ! -f "$dir/index.json" ] && ! compgen -G "$dir/*/truth.json" > /dev/null; then
    echo "generating $set in $dir (a few minutes)" >&2
    # shellcheck disable=SC2046
    "$BENCH_DIR/regen.sh" "$(kind_of "$set")" "$dir" $(seed_args_of "$set")
  fi
done
mkdir -p "$OUT"
for set in $SETS; do
  echo "=== $set"
  mkdir -p "$OUT/answers-$set"
  # each answer is kept (bench/align_one.sh) for the verdict summary
  python3 "$BENCH_DIR/score.py" "$MEDIA/$set" --name "align-$set" \
    --cmd "$ROOT/bench/align_one.sh $BIN $OUT/answers-$set {dance} {bgm}" \
    --json "$OUT/align-$set.json" | tail -n 6
  python3 "$ROOT/bench/align_summary.py" "$MEDIA/$set" "$OUT/answers-$set"
done

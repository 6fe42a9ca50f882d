#!/usr/bin/env bash
# Wrong-song benchmark of `beatsync align` (issues 3 and 15): pairs each case's
# recording with the song file of the case K places further on, for K in 3 5 7 11,
# in every bench set named (case folders pub0*, real0*, ...: each one with a
# truth.json). Pairs whose two cases use the same song are skipped. Each answer is
# `no_match`, `unsure` (a placement the engine does not vouch for) or `sure`; a
# `sure` placement of another song is the failure this counts. Prints every pair
# that is not `no_match` and the counts per set.
#   bench/cross_pairs.sh                 # media under /tmp/bench-media
#   SETS="public real5005" bench/cross_pairs.sh
# Env: BENCH_MEDIA (default /tmp/bench-media), SETS (default: public seed7 seed11
#      seed23 real real5005 real6006), CARGO_TARGET_DIR (honoured), SKIP_BUILD=1,
#      BIN (a binary to test instead).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MEDIA="${BENCH_MEDIA:-/tmp/bench-media}"
SETS="${SETS:-public seed7 seed11 seed23 real real5005 real6006}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release -p beatsync-engine --bin beatsync)
fi
BIN="${BIN:-$TARGET/release/beatsync}"
song_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['song'])" "$1/truth.json"; }
# the verdict of one `align --json` answer (stdout and stderr): sure, unsure or no_match
verdict_of() {
  python3 -c '
import json, sys
lines = sys.stdin.read().strip().splitlines()
for line in reversed(lines):
    if line.startswith("{"):
        a = json.loads(line)
        print(a.get("verdict", "sure") if "offset_s" in a else a.get("code", "error"))
        break
else:
    # a binary from before the JSON error payload: the stderr line
    print(next((l.split(":")[0] for l in lines if l.startswith("no_match")), "error"))'
}
total=0; sure=0; unsure=0
for set in $SETS; do
  cases=()
  for t in "$MEDIA/$set"/*/truth.json; do cases+=("$(dirname "$t")"); done
  n=${#cases[@]}
  set_total=0; set_sure=0; set_unsure=0
  for k in 3 5 7 11; do
    for i in $(seq 0 $((n - 1))); do
      rec="${cases[$i]}"; other="${cases[$(( (i + k) % n ))]}"
      [ "$(song_of "$rec")" = "$(song_of "$other")" ] && continue
      bgm="$(ls "$other"/bgm.* | head -1)"
      out="$("$BIN" align --dance "$rec/dance.mp4" --bgm "$bgm" --json 2>&1 || true)"
      verdict="$(verdict_of <<< "$out")"
      set_total=$((set_total + 1))
      case "$verdict" in
        no_match) ;;
        unsure) set_unsure=$((set_unsure + 1))
          echo "unsure $set $(basename "$rec") x $(basename "$other"): ${out:0:100}" ;;
        *) set_sure=$((set_sure + 1))
          echo "MATCHED ($verdict) $set $(basename "$rec") x $(basename "$other"): ${out:0:100}" ;;
      esac
    done
  done
  echo "$set: $set_total wrong-song pairs, $((set_total - set_sure - set_unsure)) no_match, $set_unsure unsure, $set_sure sure"
  total=$((total + set_total)); sure=$((sure + set_sure)); unsure=$((unsure + set_unsure))
done
echo "all: $total pairs, $((total - sure - unsure)) no_match, $unsure unsure, $sure sure"

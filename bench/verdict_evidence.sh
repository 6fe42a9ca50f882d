#!/usr/bin/env bash
# The evidence behind each verdict of `beatsync align` (issue 15): runs every
# case of the named sets (true pairs), or every wrong-song pair that
# bench/cross_pairs.sh makes (CROSS=1), with BEATSYNC_ALIGN_DEBUG=1 and prints
# one line per case: label | verdict confidence offset_s rate pitch_kept |
# the engine's `final:` / `confirm:` / `evidence:` lines (presence and
# separation parts, coherence z, shape z and margins, lag margin, section
# lead) | its `integrated:` lines. Two binaries can be compared line by line.
#   bench/verdict_evidence.sh BIN real real5005 > true.txt
#   CROSS=1 bench/verdict_evidence.sh BIN real public > cross.txt
# Env: BENCH_MEDIA (default /tmp/bench-media), CROSS=1 (wrong-song pairs: each
# recording against the song of the case 3, 5, 7 and 11 places on).
set -euo pipefail
MEDIA="${BENCH_MEDIA:-/tmp/bench-media}"
BIN="$1"; shift
one() {
  local label="$1" dance="$2" bgm="$3" out
  out="$(BEATSYNC_ALIGN_DEBUG=1 "$BIN" align --dance "$dance" --bgm "$bgm" --json 2>&1 || true)"
  printf '%s | %s | %s | %s\n' "$label" \
    "$(grep '^{' <<< "$out" | tail -1 | python3 -c '
import json, sys
a = json.loads(sys.stdin.read() or "{}")
if "offset_s" in a:
    print(a.get("verdict"), round(a.get("confidence", 0), 4), round(a["offset_s"], 5),
          round(a.get("rate", 1), 6), a.get("pitch_kept"))
else:
    g = a.get("best_guess") or {}
    print(a.get("code", "error"), 0, round(g.get("offset_s", float("nan")), 5), "-", "-")')" \
    "$(grep -E '^(evidence:|final:|confirm:|tie-break:)' <<< "$out" | tr '\n' ' ')" \
    "$(grep -E '^integrated:' <<< "$out" | tr '\n' ';')"
}
song_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['song'])" "$1/truth.json"; }
for set in "$@"; do
  cases=()
  for t in "$MEDIA/$set"/*/truth.json; do cases+=("$(dirname "$t")"); done
  n=${#cases[@]}
  if [ "${CROSS:-0}" != 1 ]; then
    for c in "${cases[@]}"; do
      one "$set/$(basename "$c")" "$c/dance.mp4" "$(ls "$c"/bgm.* | head -1)"
    done
    continue
  fi
  for k in 3 5 7 11; do
    for i in $(seq 0 $((n - 1))); do
      rec="${cases[$i]}"; other="${cases[$(( (i + k) % n ))]}"
      [ "$(song_of "$rec")" = "$(song_of "$other")" ] && continue
      one "$set/$(basename "$rec")x$(basename "$other")" "$rec/dance.mp4" "$(ls "$other"/bgm.* | head -1)"
    done
  done
done

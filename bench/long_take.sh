#!/usr/bin/env bash
# A long class take (issue 18 §2): builds it once with the ffmpeg CLI (bench/long_take.py:
# PLAYS plays of SONG with talk and noise between, 1920x1080 H.264 + AAC, truth.json),
# then runs `BIN align --json` on it under /usr/bin/time -v and reports wall time, CPU
# time, peak RSS, the stage timings and, per play, whether its segment is found
# (offset within 10 ms at the play's middle).
#   bench/long_take.sh BIN SONG OUT_DIR [MINUTES [PLAYS [PLAY_S]]]
#   bench/long_take.sh target/release/beatsync /tmp/bench-media/real/real005/bgm.mp4 \
#       /tmp/bench-media/long60 60 12
#   bench/long_take.sh target/release/beatsync /tmp/bench-media/real/real005/bgm.mp4 \
#       /tmp/bench-media/long25 25 1 144
# Needs ffmpeg, espeak-ng and a python3 with numpy and scipy (PYTHON, default the offset
# benchmark's venv /tmp/bench-venv/bin/python3). SEED=N draws another layout. The take
# (~450 MB for 60 min) stays in OUT_DIR: keep it out of git work trees, delete it after.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
bin="$1"; song="$2"; out="$3"; minutes="${4:-60}"; plays="${5:-12}"; play_s="${6:-}"
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-/tmp/bench-venv/bin/python3}"
if [ ! -e "$out/truth.json" ]; then
  t0=$(date +%s)
  "$py" "$here/long_take.py" make "$song" "$out" --minutes "$minutes" --plays "$plays" \
    ${play_s:+--play-s "$play_s"} --seed "${SEED:-6060}"
  echo "made $out/dance.mp4 ($(du -h "$out/dance.mp4" | cut -f1)) in $(( $(date +%s) - t0 )) s"
fi
answer="$out/answer.$(basename "$bin").json"
/usr/bin/time -v "$bin" align --dance "$out/dance.mp4" --bgm "$song" --json \
  > "$answer" 2> "$out/time.txt" || true
grep -E 'Elapsed|User time|System time|Maximum resident' "$out/time.txt" | sed 's/^\s*//'
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("timings_ms:", {k: round(v) for k, v in d.get("timings_ms", {}).items()}); print("code:", d.get("code"), d.get("message", "")[:200]) if "code" in d else None' "$answer"
"$py" "$here/long_take.py" score "$out/truth.json" "$answer"

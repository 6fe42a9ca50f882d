#!/usr/bin/env bash
# Picture preview benchmark (issue 20): the engine's frame server and
# filmstrip on the perf case (3-min 1080p30 H.264, 12 Mbit/s, 1-s GOP), each
# against ffmpeg doing the same work in the same run:
#   sequential : beatsync preview-bench (frames asked in order through the
#                read-ahead path, 640 px JPEG)  vs  ffmpeg -ss T -t S -i F
#                -vf scale=640:-1 -c:v mjpeg -q:v 4 -f image2pipe (frames/s)
#   paced 1x   : the same server with the playhead moving with the clock
#                (distinct frames shown per second; no ffmpeg equivalent)
#   seek       : still frames at N random times in one server  vs  one
#                ffmpeg -ss T -i F -frames:v 1 -vf scale=640:-1 per time
#                (process start and file open included: see the open time)
#   filmstrip  : beatsync filmstrip --every 2 --width 160 (keyframes, cold
#                cache, then cached)  vs  ffmpeg -skip_frame nokey -i F
#                -vf scale=160:-1 -fps_mode vfr (every keyframe, one pass)
#   memory     : peak RSS of the preview-bench process (/usr/bin/time -v)
# The load average is printed before and after: the machine may be shared.
#   bench/preview.sh [VIDEO]
# Env: BENCH_MEDIA (default /tmp/bench-media), CARGO_TARGET_DIR (honoured),
#      SEEKS (default 30), PLAY_S (default 20), PACED_S (default 10), SKIP_BUILD=1.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MEDIA="${BENCH_MEDIA:-/tmp/bench-media}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
SEEKS="${SEEKS:-30}"
PLAY_S="${PLAY_S:-20}"
PACED_S="${PACED_S:-10}"
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
VIDEO="${1:-$MEDIA/perf/perf000/dance.mp4}"
if [ ! -f "$VIDEO" ]; then
  echo "no video at $VIDEO (generate the perf case: regen.sh perf $MEDIA/perf)" >&2
  exit 1
fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release -p beatsync-engine --bin beatsync)
fi
BIN="$TARGET/release/beatsync"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
now() { date +%s.%N; }

echo "load before: $(load)"
cat "$VIDEO" > /dev/null # same page-cache state for every contender

"$TIME" -v -o "$WORK/bench.time" "$BIN" preview-bench "$VIDEO" --width 640 \
  --play-s "$PLAY_S" --paced-s "$PACED_S" --seeks "$SEEKS" > "$WORK/bench.json"
RSS_KB=$(awk -F': ' '/Maximum resident/ {print $2}' "$WORK/bench.time")

# ffmpeg sequential: the same stretch (from a quarter of the video) at 640 px.
DUR=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$VIDEO")
FROM=$(python3 -c "print(0.25 * $DUR)")
t0=$(now)
FF_FRAMES=$(ffmpeg -nostdin -v error -ss "$FROM" -t "$PLAY_S" -i "$VIDEO" -an -vf scale=640:-1 \
  -c:v mjpeg -q:v 4 -f image2pipe - | python3 -c "import sys; d=sys.stdin.buffer.read(); print(d.count(b'\xff\xd9'))")
FF_SEQ_S=$(python3 -c "print($(now) - $t0)")

# ffmpeg seeks: the same times, one process each.
python3 -c "import json; print('\n'.join(str(t) for t in json.load(open('$WORK/bench.json'))['seek_times_s']))" > "$WORK/times"
: > "$WORK/ff_seeks"
while read -r t; do
  t0=$(now)
  ffmpeg -nostdin -v error -ss "$t" -i "$VIDEO" -frames:v 1 -vf scale=640:-1 -q:v 4 -f image2pipe - > /dev/null
  python3 -c "print(($(now) - $t0) * 1000)" >> "$WORK/ff_seeks"
done < "$WORK/times"

# Filmstrip: cold, then from the cache; ffmpeg decodes every keyframe in one pass.
"$TIME" -v -o "$WORK/strip.time" "$BIN" filmstrip "$VIDEO" --out "$WORK/strip" --every 2 --width 160 --json > "$WORK/strip.json"
"$BIN" filmstrip "$VIDEO" --out "$WORK/strip" --every 2 --width 160 --json > "$WORK/strip2.json"
mkdir -p "$WORK/ffstrip"
t0=$(now)
"$TIME" -v -o "$WORK/ffstrip.time" ffmpeg -nostdin -v error -skip_frame nokey -i "$VIDEO" -an \
  -vf scale=160:-1 -fps_mode vfr -q:v 4 "$WORK/ffstrip/%04d.jpg"
FF_STRIP_S=$(python3 -c "print($(now) - $t0)")
FF_STRIP_N=$(ls "$WORK/ffstrip" | wc -l)
echo "load after: $(load)"

python3 - "$WORK" "$RSS_KB" "$FF_FRAMES" "$FF_SEQ_S" "$FF_STRIP_S" "$FF_STRIP_N" <<'PY'
import json, statistics, sys
work, rss_kb, ff_frames, ff_seq_s, ff_strip_s, ff_strip_n = sys.argv[1:]
b = json.load(open(f"{work}/bench.json"))
s1 = json.load(open(f"{work}/strip.json"))
s2 = json.load(open(f"{work}/strip2.json"))
ff = sorted(float(x) for x in open(f"{work}/ff_seeks"))
def cpu(name):
    t = dict(l.strip().split(": ", 1) for l in open(f"{work}/{name}") if ": " in l)
    return float(t["User time (seconds)"]) + float(t["System time (seconds)"])
pct = lambda v, p: v[round((len(v) - 1) * p)]
ff_fps = int(ff_frames) / float(ff_seq_s)
rows = [
    ("sequential 640 px (frames/s)", f"{b['sequential_fps']:.1f}", f"{ff_fps:.1f}", f"{b['sequential_fps'] / ff_fps:.2f}"),
    ("paced 1x: frames shown/s", f"{b['paced_shown_fps']:.1f}", "-", "-"),
    ("seek median (ms)", f"{b['seek_median_ms']:.0f}", f"{pct(ff, 0.5):.0f}", f"{b['seek_median_ms'] / pct(ff, 0.5):.2f}"),
    ("seek p90 (ms)", f"{b['seek_p90_ms']:.0f}", f"{pct(ff, 0.9):.0f}", f"{b['seek_p90_ms'] / pct(ff, 0.9):.2f}"),
    ("seek max (ms)", f"{b['seek_max_ms']:.0f}", f"{ff[-1]:.0f}", f"{b['seek_max_ms'] / ff[-1]:.2f}"),
    (f"filmstrip cold (s; ours {len(s1['thumbnails'])} thumbs, ffmpeg {ff_strip_n} keyframes)",
     f"{s1['elapsed_ms'] / 1000:.2f}", f"{float(ff_strip_s):.2f}", f"{s1['elapsed_ms'] / 1000 / float(ff_strip_s):.2f}"),
    ("filmstrip cold, CPU (s, user+sys)", f"{cpu('strip.time'):.2f}", f"{cpu('ffstrip.time'):.2f}",
     f"{cpu('strip.time') / cpu('ffstrip.time'):.2f}"),
    ("filmstrip cached (s)", f"{s2['elapsed_ms'] / 1000:.3f}", "-", "-"),
    ("peak RSS of the frame server process (MB)", f"{int(rss_kb) / 1024:.0f}", "-", "-"),
    ("open (ms) / timeline scan (ms)", f"{b['open_ms']:.0f} / {b['timeline_scan_ms']:.0f}", "-", "-"),
]
print("| measure | beatsync | ffmpeg | ratio |")
print("|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
print(f"\npaced 1x: {b['paced_frames_shown']} frames shown in {b['paced_s']:.1f} s, "
      f"{b['paced_in_sync_frames']} of them while the playhead was within one frame of them, "
      f"median lag {b['paced_median_lag_ms']:.0f} ms; cache {b['cached_bytes'] / 1e6:.1f} MB at the end")
PY

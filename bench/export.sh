#!/usr/bin/env bash
# Export benchmark of `beatsync sync` (issue 4). Builds the release CLI,
# generates the perf case (3-min 1080p30 H.264 + m4a song) and a 10-min 4K
# file if missing (outside the repo), then runs, alternating, ROUNDS times:
#   ffmpeg-aac : ffmpeg -i dance.mp4 -i bgm.m4a -map 0:v -map 1:a -c:v copy -c:a aac out.mp4
#   sync       : beatsync sync --dance dance.mp4 --bgm bgm.m4a --out DIR      (align + export, AAC encoded)
#   ffmpeg-copy: ffmpeg -i dance.mp4 -i bgm.m4a -map 0:v -map 1:a -c copy out.mp4
#   ffmpeg-copy-fsync: the same, then `sync out.mp4` (context: as durable as beatsync's output)
#   sync-copy  : beatsync sync ... --copy-audio                               (align + export, song packets copied)
#   export / export-copy: the same with --offset from truth.json (the export step alone,
#                as when the app exports an already aligned, nudged offset)
#   midcut-copy / midcut-copy-editlist: export-copy with the song starting mid-GOP (9.7 s),
#                the start re-encoded to the next keyframe (default) or an edit list
# and on the 4K file (10 min, with a 10-min song): export with a given offset, encoded and
# copied audio (memory must stay flat), and ffmpeg -c copy -shortest for scale.
# Wall time, CPU time (user+sys) and peak RSS come from /usr/bin/time (with the load
# average at the end of each run: on a shared machine, compare runs of equal load);
# medians and ratios are printed as a Markdown table at the end.
#   bench/export.sh
#   ROUNDS=5 BENCH_MEDIA=/data/bench bench/export.sh
# Env: BENCH_DIR (default /work/shared/bench: regen.sh), BENCH_MEDIA (default /tmp/bench-media),
#      CARGO_TARGET_DIR (honoured), ROUNDS (default 3), SKIP_4K=1, SKIP_BUILD=1,
#      PREV_BIN (another beatsync binary: its sync and sync-copy run in the same rounds),
#      BENCH_OUT (output folder, default $BENCH_MEDIA/export-out; emptied before each run).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-/work/shared/bench}"
MEDIA="${BENCH_MEDIA:-/tmp/bench-media}"
ROUNDS="${ROUNDS:-3}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release -p beatsync-engine --bin beatsync)
fi
BIN="$TARGET/release/beatsync"
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }

PERF="$MEDIA/perf/perf000"
if [ ! -f "$PERF/dance.mp4" ]; then
  echo "generating the perf case in $MEDIA/perf (~4 min)" >&2
  "$BENCH_DIR/regen.sh" perf "$MEDIA/perf"
fi

# 10 minutes of 4K: 10 s encoded once (x264 ultrafast), then concatenated
# without re-encoding, so generation takes about a minute, not an hour.
BIG="$MEDIA/export4k/dance4k.mp4"
if [ "${SKIP_4K:-0}" != 1 ] && [ ! -f "$BIG" ]; then
  echo "generating a 10-min 3840x2160 30 fps file in $MEDIA/export4k" >&2
  mkdir -p "$MEDIA/export4k"
  piece="$MEDIA/export4k/piece.mp4"
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=3840x2160:rate=30" -f lavfi -i "sine=f=440:r=48000" \
    -t 10 -c:v libx264 -preset ultrafast -g 30 -pix_fmt yuv420p -b:v 40M -c:a aac -b:a 96k "$piece"
  list="$MEDIA/export4k/list.txt"
  : > "$list"
  for _ in $(seq 60); do echo "file '$piece'" >> "$list"; done
  ffmpeg -v error -y -f concat -safe 0 -i "$list" -c copy "$BIG.tmp.mp4"
  mv "$BIG.tmp.mp4" "$BIG"
  rm -f "$piece" "$list"
fi
# A song as long as the 4K file (the perf song three times), so the export spans all of it.
BIGSONG="$MEDIA/export4k/bgm_long.m4a"
if [ "${SKIP_4K:-0}" != 1 ] && [ ! -f "$BIGSONG" ]; then
  ffmpeg -v error -y -stream_loop 2 -i "$PERF/bgm.m4a" -c copy "$BIGSONG"
fi

OUTDIR="${BENCH_OUT:-$MEDIA/export-out}"
RESULTS="$(mktemp)"
mkdir -p "$OUTDIR"
trap 'rm -f "$RESULTS"' EXIT

# run NAME CMD...: one timed run; appends "NAME wall_s rss_kb" to $RESULTS.
run() {
  local name="$1"; shift
  rm -rf "${OUTDIR:?}"/* "$OUTDIR"/.beatsync-* 2>/dev/null || true
  local t
  t="$(mktemp)"
  if ! "$TIME" -f "%e %M %U %S" -o "$t" "$@" > /dev/null 2> "$t.err"; then
    echo "FAILED: $name: $(tail -3 "$t.err")" >&2
    rm -f "$t" "$t.err"
    return 1
  fi
  read -r wall rss user sys < <(tail -1 "$t")
  cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')"
  echo "$name $wall $rss $cpu load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$RESULTS"
  rm -f "$t" "$t.err"
}

D="$PERF/dance.mp4"; B="$PERF/bgm.m4a"
OFFSET="$(grep -o '"offset_s": *[-0-9.]*' "$PERF/truth.json" | head -1 | awk '{print $2}')"
cat "$D" "$B" > /dev/null   # warm the page cache once, for every contender alike
echo "== perf case: $D" >&2
for r in $(seq "$ROUNDS"); do
  echo "-- round $r" >&2
  run ffmpeg-aac  ffmpeg -v error -y -i "$D" -i "$B" -map 0:v -map 1:a -c:v copy -c:a aac "$OUTDIR/out.mp4"
  run sync        "$BIN" sync --dance "$D" --bgm "$B" --out "$OUTDIR" --json
  if [ -n "${PREV_BIN:-}" ]; then
    run sync-prev "$PREV_BIN" sync --dance "$D" --bgm "$B" --out "$OUTDIR" --json
  fi
  run ffmpeg-copy ffmpeg -v error -y -i "$D" -i "$B" -map 0:v -map 1:a -c copy "$OUTDIR/out.mp4"
  # context, not a target: the remux made as durable as beatsync's output
  # (which is fsynced before it gets its name); ffmpeg leaves its file in the
  # page cache, to be written to disk after it exits
  run ffmpeg-copy-fsync sh -c 'ffmpeg -v error -y -i "$1" -i "$2" -map 0:v -map 1:a -c copy "$3" && sync "$3"' \
    sh "$D" "$B" "$OUTDIR/out.mp4"
  run sync-copy   "$BIN" sync --dance "$D" --bgm "$B" --out "$OUTDIR" --json --copy-audio
  if [ -n "${PREV_BIN:-}" ]; then
    run sync-copy-prev "$PREV_BIN" sync --dance "$D" --bgm "$B" --out "$OUTDIR" --json --copy-audio
  fi
  run export      "$BIN" sync --dance "$D" --bgm "$B" --out "$OUTDIR" --json --offset "$OFFSET"
  run export-copy "$BIN" sync --dance "$D" --bgm "$B" --out "$OUTDIR" --json --offset "$OFFSET" --copy-audio
  # The song placed to start 9.7 s in, just after a keyframe (9.67 s): the cut is mid-GOP, so
  # the default start re-encodes the frames to the next keyframe (10.63 s); the same export
  # started with an edit list instead, for the head's cost.
  run midcut-copy          "$BIN" sync --dance "$D" --bgm "$B" --out "$OUTDIR" --json --offset 9.7 --copy-audio
  run midcut-copy-editlist "$BIN" sync --dance "$D" --bgm "$B" --out "$OUTDIR" --json --offset 9.7 --copy-audio --start-cut edit-list
done

if [ "${SKIP_4K:-0}" != 1 ]; then
  echo "== 10-min 4K: $BIG" >&2
  cat "$BIG" > /dev/null
  for r in $(seq "$ROUNDS"); do
    echo "-- round $r" >&2
    run 4k-ffmpeg-copy ffmpeg -v error -y -i "$BIG" -i "$BIGSONG" -map 0:v -map 1:a -c copy -shortest "$OUTDIR/out.mp4"
    run 4k-export      "$BIN" sync --dance "$BIG" --bgm "$BIGSONG" --out "$OUTDIR" --offset -10 --json
    run 4k-export-copy "$BIN" sync --dance "$BIG" --bgm "$BIGSONG" --out "$OUTDIR" --offset -10 --json --copy-audio
  done
fi
rm -rf "${OUTDIR:?}"/* 2>/dev/null || true

echo
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), machine: $(nproc) cores, $(. /etc/os-release && echo "$PRETTY_NAME"), ffmpeg $(ffmpeg -version | head -1 | awk '{print $3}')"
echo
awk '
  { wall[$1] = wall[$1] " " $2; rss[$1] = rss[$1] " " $3; cpu[$1] = cpu[$1] " " $4; if (!($1 in seen)) { order[n++] = $1; seen[$1] = 1 } }
  function median(list,   a, k, i, j, t) {
    k = split(list, a, " ")
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  END {
    print "| run | wall times (s) | median wall (s) | median CPU user+sys (s) | peak RSS median (MB) |"
    print "| --- | --- | --- | --- | --- |"
    for (i = 0; i < n; i++) {
      name = order[i]; m[name] = median(wall[name]); r = median(rss[name]) / 1024
      printf "| %s |%s | %.2f | %.2f | %.0f |\n", name, wall[name], m[name], median(cpu[name]), r
    }
    print ""
    if (m["ffmpeg-aac"] > 0)  printf "sync / ffmpeg-aac = %.2f (target <= 1.0)\n", m["sync"] / m["ffmpeg-aac"]
    if (m["ffmpeg-copy"] > 0) printf "sync-copy / ffmpeg-copy = %.2f (target <= 1.5)\n", m["sync-copy"] / m["ffmpeg-copy"]
    if (m["ffmpeg-copy-fsync"] > 0) printf "sync-copy / ffmpeg-copy-fsync = %.2f (context: equally durable output)\n", m["sync-copy"] / m["ffmpeg-copy-fsync"]
    if (m["sync-prev"] > 0) printf "sync / sync-prev (PREV_BIN) = %.2f\n", m["sync"] / m["sync-prev"]
    if (m["sync-copy-prev"] > 0) printf "sync-copy / sync-copy-prev (PREV_BIN) = %.2f\n", m["sync-copy"] / m["sync-copy-prev"]
    if (m["ffmpeg-aac"] > 0)  printf "export (offset given) / ffmpeg-aac = %.2f\n", m["export"] / m["ffmpeg-aac"]
    if (m["ffmpeg-copy"] > 0) printf "export-copy (offset given) / ffmpeg-copy = %.2f\n", m["export-copy"] / m["ffmpeg-copy"]
    if (m["midcut-copy-editlist"] > 0) printf "midcut-copy (smart cut) / midcut-copy-editlist = %.2f\n", m["midcut-copy"] / m["midcut-copy-editlist"]
    if (m["ffmpeg-copy"] > 0) printf "midcut-copy (smart cut) / ffmpeg-copy = %.2f\n", m["midcut-copy"] / m["ffmpeg-copy"]
    if (m["4k-ffmpeg-copy"] > 0) printf "4k-export / 4k-ffmpeg-copy = %.2f, 4k-export-copy / 4k-ffmpeg-copy = %.2f\n", m["4k-export"] / m["4k-ffmpeg-copy"], m["4k-export-copy"] / m["4k-ffmpeg-copy"]
  }' "$RESULTS"

#!/usr/bin/env bash
# Export of a recording with several plays of the song, against an ffmpeg
# stream copy (remux) of the same file: per run, in turn, `ffmpeg -c copy`,
# `ffmpeg -c:v copy -c:a aac -ac 2` (the same remux with the sound encoded in
# stereo at 192 kbit/s, as the export encodes the song: the
# work an export that encodes its audio cannot avoid), `beatsync sync
# --plays` (one video) and `beatsync sync --plays --split` (one clip per
# play), each timed as a whole process (/usr/bin/time: wall, CPU, peak RSS).
# Prints every run and the median ratios to the remux.
#   bench/export_plays.sh BIN CASE_DIR [RUNS]
#   bench/export_plays.sh target/release/beatsync /tmp/bench-media/long60 3
# CASE_DIR holds dance.* and truth.json with the plays (`segments` or
# `plays`: dance_start_s, dance_end_s, offset_s, [rate, cut_before]) and the
# song (`song` in truth.json when it is a file, else bgm.* in CASE_DIR). The plays are given
# (--plays), so the aligner does not run: this times the export alone.
# Env: OUT (default /tmp/bench-media/export-plays-out; emptied after each
# command), SYNC_ARGS (more arguments for both beatsync runs).
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
bin="$1"; case_dir="$2"; runs="${3:-3}"
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 2; }
dance="$(ls "$case_dir"/dance.* | head -n 1)"
out="${OUT:-/tmp/bench-media/export-plays-out}"
read -r -a extra <<< "${SYNC_ARGS:-}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work" "$out"' EXIT

python3 - "$case_dir" "$work/plays.json" "$work/song" <<'EOF'
import glob, json, os, sys
case, plays_out, song_out = sys.argv[1:4]
truth = json.load(open(os.path.join(case, "truth.json")))
plays = truth.get("segments") or truth.get("plays")
keep = ("dance_start_s", "dance_end_s", "offset_s", "rate", "cut_before")
json.dump([{k: p[k] for k in keep if k in p} for p in plays], open(plays_out, "w"))
song = truth.get("song", "")
if not os.path.isfile(song):  # a song's name (the plays sets), not its path
    song = sorted(glob.glob(os.path.join(case, "bgm.*")))[0]
open(song_out, "w").write(song)
EOF
song="$(cat "$work/song")"
n_plays=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/plays.json")
echo "case $case_dir: $(du -h "$dance" | cut -f1) $(basename "$dance"), $n_plays plays, song $song"

# timed NAME CMD...: runs CMD under /usr/bin/time, appends "NAME wall_s rss_kb" to $work/times
timed() {
  local name="$1"; shift
  /usr/bin/time -f "%e %M %U %S" -o "$work/t" "$@" > "$work/stdout" 2> "$work/stderr" || {
    echo "$name failed:" >&2; cat "$work/stderr" >&2; exit 1; }
  read -r wall rss user sys < <(tail -n 1 "$work/t")
  cpu=$(python3 -c "print($user + $sys)")
  echo "$name $wall $rss $cpu" >> "$work/times"
  printf '  %-10s %7.2f s  CPU %7.2f s  %6.0f MB  %s\n' "$name" "$wall" "$cpu" "$((rss / 1024))" \
    "$(ls "$out" | wc -l) file(s), $(du -sh "$out" | cut -f1)"
  rm -rf "$out"; mkdir -p "$out"
}

for r in $(seq 1 "$runs"); do
  echo "run $r"
  timed remux ffmpeg -nostdin -v error -y -i "$dance" -map 0 -c copy "$out/remux.mp4"
  timed remux_aac ffmpeg -nostdin -v error -y -i "$dance" -map 0:v:0 -map 0:a:0 -c:v copy \
    -c:a aac -b:a 192k -ac 2 "$out/remux.mp4"
  timed one_video "$bin" sync --dance "$dance" --bgm "$song" --out "$out" \
    --plays "$work/plays.json" ${extra[@]+"${extra[@]}"} --json
  timed clips "$bin" sync --dance "$dance" --bgm "$song" --out "$out" \
    --plays "$work/plays.json" --split ${extra[@]+"${extra[@]}"} --json
done

python3 - "$work/times" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for name, wall, rss, cpu in rows:
    by.setdefault(name, []).append((float(wall), int(rss), float(cpu)))
med = lambda name, i: statistics.median(r[i] for r in by[name])
print("median wall and CPU, each as a ratio to the remux's (-c copy) and to the remux with AAC; peak RSS:")
for name in ("remux", "remux_aac", "one_video", "clips"):
    rss = max(r[1] for r in by[name]) / 1024
    print(f"  {name:10s} wall {med(name, 0):7.2f} s x{med(name, 0) / med('remux', 0):6.2f} "
          f"x{med(name, 0) / med('remux_aac', 0):5.2f}   CPU {med(name, 2):7.2f} s "
          f"x{med(name, 2) / med('remux', 2):6.2f} x{med(name, 2) / med('remux_aac', 2):5.2f}   {rss:6.0f} MB")
EOF

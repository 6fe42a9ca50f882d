#!/usr/bin/env bash
# Behaviour check for refactors of the export: runs two `beatsync` binaries'
# `sync` (align + export) over the same bench cases, one after the other per
# case (A, B, A, B, ...), with the same arguments, and compares the md5 of the
# two output videos and their `--json` reports without `output`, `outputs` and
# `timings_ms`. Exit 1 if any output or report differs. Also prints each
# binary's summed wall time and the ratio B/A.
#   bench/sync_same.sh BIN_A BIN_B CASE_DIR|SET_DIR [...]
#   bench/sync_same.sh /tmp/base/beatsync target/release/beatsync \
#       /tmp/bench-media/perf/perf000 /tmp/bench-media/public/pub005
# A case is a folder holding dance.* and bgm.* (the layout of the offset
# benchmark's sets); a set folder stands for every case in it.
# Env: START_CUT (default smart-cut; give it explicitly when one binary's
# default differs, e.g. before smart cut became the default), SYNC_ARGS
# (more arguments for both, e.g. "--copy-audio"), KEEP=DIR keeps the outputs
# (otherwise a temporary folder, removed at the end).
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,16p' "$0" >&2; exit 2; }
bin_a="$1"; bin_b="$2"; shift 2
for b in "$bin_a" "$bin_b"; do [ -x "$b" ] || { echo "no binary at $b" >&2; exit 2; }; done
start_cut="${START_CUT:-smart-cut}"
read -r -a extra <<< "${SYNC_ARGS:-}"
work="${KEEP:-$(mktemp -d)}"
mkdir -p "$work"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT

# the report without the fields that differ by run (output path, timings)
strip() { python3 -c 'import json,sys
d = json.load(sys.stdin)
for k in ("output", "outputs", "timings_ms"):
    d.pop(k, None)
print(json.dumps(d, indent=1, sort_keys=True))'; }
now_ns() { date +%s%N; }

cases=()
for arg in "$@"; do
  if compgen -G "$arg/dance.*" > /dev/null; then
    cases+=("$arg")
  else
    for dir in "$arg"/*/; do
      compgen -G "$dir/dance.*" > /dev/null && cases+=("${dir%/}")
    done
  fi
done
[ ${#cases[@]} -gt 0 ] || { echo "no cases in $*" >&2; exit 2; }

n=0; differ=0; ns_a=0; ns_b=0
for dir in "${cases[@]}"; do
  name="$(basename "$(dirname "$dir")")-$(basename "$dir")"
  dance="$(ls "$dir"/dance.* | head -n 1)"
  bgm="$(ls "$dir"/bgm.* | head -n 1)"
  for side in a b; do
    if [ "$side" = a ]; then bin="$bin_a"; else bin="$bin_b"; fi
    out="$work/$name.$side"
    rm -rf "$out"; mkdir -p "$out"
    t0=$(now_ns)
    # a refusal (non-zero exit) is compared like any other answer
    "$bin" sync --dance "$dance" --bgm "$bgm" --out "$out" --start-cut "$start_cut" \
      ${extra[@]+"${extra[@]}"} --json > "$work/$name.$side.raw" 2> "$work/$name.$side.err" \
      && echo "exit 0" > "$work/$name.$side.exit" || echo "exit $?" > "$work/$name.$side.exit"
    t1=$(now_ns)
    if [ "$side" = a ]; then ns_a=$((ns_a + t1 - t0)); else ns_b=$((ns_b + t1 - t0)); fi
    strip < "$work/$name.$side.raw" > "$work/$name.$side.json" 2>/dev/null \
      || cp "$work/$name.$side.raw" "$work/$name.$side.json"
    sum="none"
    for video in "$out"/*.mp4; do
      [ -e "$video" ] && sum="$(md5sum < "$video" | cut -d' ' -f1)"
    done
    echo "$sum" > "$work/$name.$side.md5"
  done
  n=$((n + 1))
  a_sum="$(cat "$work/$name.a.md5")"; b_sum="$(cat "$work/$name.b.md5")"
  if [ "$a_sum" = "$b_sum" ] \
     && diff -q "$work/$name.a.json" "$work/$name.b.json" > /dev/null \
     && diff -q "$work/$name.a.exit" "$work/$name.b.exit" > /dev/null; then
    echo "same    $name  md5 $a_sum"
  else
    differ=$((differ + 1))
    echo "DIFFERS $name  md5 A $a_sum  B $b_sum  ($(cat "$work/$name.a.exit") / $(cat "$work/$name.b.exit"))"
    diff "$work/$name.a.json" "$work/$name.b.json" | head -n 20 || true
  fi
done
echo "cases: $n  identical: $((n - differ))  differing: $differ  (--start-cut $start_cut ${SYNC_ARGS:-})"
python3 -c "import sys; a, b = int(sys.argv[1]), int(sys.argv[2]); print(f'wall time: A {a/1e9:.2f} s  B {b/1e9:.2f} s  B/A {b/a if a else float(\"nan\"):.3f}')" "$ns_a" "$ns_b"
[ "$differ" -eq 0 ]

#!/usr/bin/env bash
# Behaviour check for refactors: runs two `beatsync` binaries over the same bench
# cases, one after the other per case (A, B, A, B, ...), and diffs their
# `align --json` answers with `timings_ms` removed. Exit 1 if any answer differs.
# Also prints each binary's summed wall time over the cases and the ratio B/A.
#   bench/align_same.sh BIN_A BIN_B SET_DIR [SET_DIR ...]
#   bench/align_same.sh /tmp/base/beatsync target/release/beatsync \
#       /tmp/bench-media/public /tmp/bench-media/real
# A case is a folder holding dance.mp4 (or dance.*), bgm.* and truth.json
# (the layout of the offset benchmark's sets). KEEP=DIR keeps both answers.
# DROP_SEGMENTS=1 also removes `segments` (comparing against a binary from
# before it existed) and prints how many segments B answered per case.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
bin_a="$1"; bin_b="$2"; shift 2
for b in "$bin_a" "$bin_b"; do [ -x "$b" ] || { echo "no binary at $b" >&2; exit 2; }; done
work="${KEEP:-$(mktemp -d)}"
mkdir -p "$work"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT

# the answer without its timing fields, keys in their printed order
strip() { python3 -c 'import json,sys
d = json.load(sys.stdin)
import os
if isinstance(d, dict):
    d.pop("timings_ms", None)
    if os.environ.get("DROP_SEGMENTS"):
        n = d.pop("segments", None)
        if n is not None:
            print("segments:", len(n), file=sys.stderr)
print(json.dumps(d, indent=1))'; }
now_ns() { date +%s%N; }

cases=0; differ=0; ns_a=0; ns_b=0
for set in "$@"; do
  for truth in "$set"/*/truth.json; do
    [ -e "$truth" ] || continue
    dir="$(dirname "$truth")"
    name="$(basename "$set")-$(basename "$dir")"
    dance="$(ls "$dir"/dance.* | head -n 1)"
    bgm="$(ls "$dir"/bgm.* | head -n 1)"
    for side in a b; do
      if [ "$side" = a ]; then bin="$bin_a"; else bin="$bin_b"; fi
      t0=$(now_ns)
      # an error answer (non-zero exit) is compared like any other answer
      "$bin" align --dance "$dance" --bgm "$bgm" --json > "$work/$name.$side.raw" 2> "$work/$name.$side.err" || true
      t1=$(now_ns)
      if [ "$side" = a ]; then ns_a=$((ns_a + t1 - t0)); else ns_b=$((ns_b + t1 - t0)); fi
      strip < "$work/$name.$side.raw" > "$work/$name.$side.json" 2> "$work/$name.$side.segments" \
        || cp "$work/$name.$side.raw" "$work/$name.$side.json"
    done
    cases=$((cases + 1))
    if [ -n "${DROP_SEGMENTS:-}" ]; then
      echo "$name: B $(cat "$work/$name.b.segments" 2>/dev/null || true)"
    fi
    if ! diff -q "$work/$name.a.json" "$work/$name.b.json" > /dev/null; then
      differ=$((differ + 1))
      echo "DIFFERS: $name"
      diff "$work/$name.a.json" "$work/$name.b.json" | head -n 20
    fi
  done
done
echo "cases: $cases  identical: $((cases - differ))  differing: $differ"
python3 -c "import sys; a, b = int(sys.argv[1]), int(sys.argv[2]); print(f'wall time: A {a/1e9:.2f} s  B {b/1e9:.2f} s  B/A {b/a if a else float(\"nan\"):.3f}')" "$ns_a" "$ns_b"
[ "$differ" -eq 0 ]

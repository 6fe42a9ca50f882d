#!/usr/bin/env bash
# Time and peak RSS of two `beatsync` binaries on the same cases, run in
# alternation case by case (A then B, then the next case; ROUNDS times), so a
# shared machine's load falls on both alike. Prints per set the median wall time
# per case, the median CPU time (user + system) per case, the median and max
# peak RSS of each binary and the ratios B/A.
#   bench/align_versus.sh BIN_A BIN_B                # SETS below
#   SETS="real public" ROUNDS=2 bench/align_versus.sh /path/a /path/b
# Env: BENCH_MEDIA (default /tmp/bench-media), SETS (default: real real5005
#      real6006 public), ROUNDS (default 1). Needs GNU time at /usr/bin/time.
set -euo pipefail
A="$1"; B="$2"
MEDIA="${BENCH_MEDIA:-/tmp/bench-media}"
SETS="${SETS:-real real5005 real6006 public}"
ROUNDS="${ROUNDS:-1}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# one run: "wall_s max_rss_kb user_s sys_s" appended to $3
run() {
  local bin="$1" dir="$2" out="$3" bgm
  bgm="$(ls "$dir"/bgm.* | head -1)"
  /usr/bin/time -f "%e %M %U %S" -o "$tmp/one" "$bin" align --dance "$dir/dance.mp4" --bgm "$bgm" \
    --json > /dev/null 2>&1 || true
  tail -n 1 "$tmp/one" >> "$out"
}
for set in $SETS; do
  : > "$tmp/a"; : > "$tmp/b"
  for _ in $(seq "$ROUNDS"); do
    for t in "$MEDIA/$set"/*/truth.json; do
      run "$A" "$(dirname "$t")" "$tmp/a"
      run "$B" "$(dirname "$t")" "$tmp/b"
    done
  done
  python3 - "$set" "$tmp/a" "$tmp/b" <<'EOF'
import statistics as st, sys
name, fa, fb = sys.argv[1:4]
def read(p):
    rows = [l.split() for l in open(p) if l.strip()]
    return ([float(r[0]) for r in rows], [float(r[1]) / 1024 for r in rows],
            [float(r[2]) + float(r[3]) for r in rows])
(ta, ma, ca), (tb, mb, cb) = read(fa), read(fb)
print(f"{name}: {len(ta)} runs each | median wall A {st.median(ta):.3f} s, B {st.median(tb):.3f} s,"
      f" B/A {st.median(tb) / st.median(ta):.2f} | total A {sum(ta):.1f} s, B {sum(tb):.1f} s,"
      f" B/A {sum(tb) / sum(ta):.2f} | median CPU A {st.median(ca):.3f} s, B {st.median(cb):.3f} s,"
      f" B/A {st.median(cb) / st.median(ca):.2f}, total B/A {sum(cb) / sum(ca):.2f} | peak RSS median A {st.median(ma):.0f} MB, B {st.median(mb):.0f} MB,"
      f" max A {max(ma):.0f} MB, B {max(mb):.0f} MB")
EOF
done

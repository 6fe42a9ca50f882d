#!/usr/bin/env bash
# Windows compile check from Linux: `cargo check --target x86_64-pc-windows-gnu`
# with Debian's MinGW cross compiler (C parts: SQLite, the app's resource
# file) and the system's FFmpeg headers for ffmpeg-sys-next's bindings (the
# same API on every OS; nothing is linked by a check).
#
# Every workspace crate and target is checked. Errors in code whose Windows
# port is planned are listed in scripts/check-windows.known (one
# "file:line: error[CODE]" per line, with the reason): the check fails on any
# other error, and also when a known one no longer happens (so the list is
# kept true). Writes the full compiler output to test-output/windows-check.log.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
TRIPLE=x86_64-pc-windows-gnu
OUT="${BEATSYNC_TEST_OUT:-$ROOT/test-output}"
mkdir -p "$OUT"
LOG="$OUT/windows-check.log"
KNOWN="$ROOT/scripts/check-windows.known"

command -v x86_64-w64-mingw32-gcc >/dev/null || {
  echo "check-windows: x86_64-w64-mingw32-gcc missing (Debian package gcc-mingw-w64-x86-64; scripts/setup.sh test installs it)" >&2
  exit 1
}
# The list is read whole before grep (grep -q quitting early would SIGPIPE rustup).
grep -qx "$TRIPLE" <<<"$(rustup target list --installed)" || rustup target add "$TRIPLE"

# FFMPEG_DIR/include with the system's FFmpeg headers.
ffdir="$(mktemp -d)"
trap 'rm -rf "$ffdir"' EXIT
mkdir -p "$ffdir/include" "$ffdir/lib"
for lib in libavcodec libavformat libavfilter libavdevice libswresample libswscale; do
  ln -s "$(pkg-config --variable=includedir "$lib")/$lib" "$ffdir/include/$lib"
done
# libavutil without the Direct3D/DXVA hardware-context headers: with them the
# bindings pull in <windows.h>, and bindgen turns MinGW's AMX intrinsics into a
# struct Rust rejects (packed + aligned). The engine uses no hardware contexts;
# on Windows itself (MSVC, vcpkg's FFmpeg) these headers are bound as usual.
mkdir "$ffdir/include/libavutil"
for h in "$(pkg-config --variable=includedir libavutil)"/libavutil/*.h; do
  case "$(basename "$h")" in hwcontext_d3d*|hwcontext_dxva2.h) continue ;; esac
  ln -s "$h" "$ffdir/include/libavutil/"
done

status=0
# Warnings count: they are errors here as in the Linux lint step.
FFMPEG_DIR="$ffdir" CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS="-D warnings" cargo check --workspace --all-targets --target "$TRIPLE" \
  --message-format short >"$LOG" 2>&1 || status=$?

# "path:line:col: error[E0425]: message" -> "path:line: error[E0425]"
found="$(grep -E '^[^ ]+:[0-9]+:[0-9]+: error' "$LOG" | sed -E 's/^([^:]+):([0-9]+):[0-9]+: (error(\[[A-Z0-9]+\])?).*/\1:\2: \3/' | sort -u || true)"
expected="$(grep -v -E '^\s*(#|$)' "$KNOWN" | sed -E 's/\s+#.*$//' | sort -u || true)"
new="$(comm -23 <(printf '%s\n' "$found") <(printf '%s\n' "$expected") | grep . || true)"
gone="$(comm -13 <(printf '%s\n' "$found") <(printf '%s\n' "$expected") | grep . || true)"

echo "Windows check ($TRIPLE): $(printf '%s\n' "$found" | grep -c . || true) error location(s), log in $LOG"
[ -z "$found" ] || printf '%s\n' "$found" | sed 's/^/  /'
if [ -n "$new" ]; then
  echo "check-windows: errors not in scripts/check-windows.known:" >&2
  grep -E '^[^ ]+:[0-9]+:[0-9]+: error' "$LOG" | grep -F -f <(printf '%s\n' "$new" | cut -d' ' -f1) >&2 || true
  exit 1
fi
if [ -n "$gone" ]; then
  echo "check-windows: these known errors no longer happen; remove them from scripts/check-windows.known:" >&2
  printf '  %s\n' $gone >&2
  exit 1
fi
if [ "$status" != 0 ] && [ -z "$found" ]; then
  echo "check-windows: cargo check failed without a compile error (a build script?):" >&2
  tail -n 40 "$LOG" >&2
  exit 1
fi
if [ -n "$found" ]; then
  echo "check-windows: only the known errors (scripts/check-windows.known); crates that depend on a crate with an error were not checked"
else
  echo "check-windows: every workspace crate and target checks for Windows"
fi

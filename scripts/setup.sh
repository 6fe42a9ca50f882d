#!/usr/bin/env bash
# Installs what BeatSync needs to build, run and test, only when missing:
# Debian/Ubuntu packages (WebKitGTK, FFmpeg dev libraries, ALSA, Xvfb, …),
# the Rust toolchain components, and the pinned npm test packages.
# Usage: scripts/setup.sh [run|package|test]
#   package: also Node.js and the pinned npm packages (the Tauri CLI that bundles)
#   test:    all of package, and the test-only tools
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODE="${1:-run}"

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install system packages" >&2; exit 1; }
  SUDO="sudo"
fi

BUILD_PKGS=(build-essential pkg-config file curl ca-certificates
  libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev librsvg2-dev
  libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev libavdevice-dev libswscale-dev libswresample-dev
  clang libclang-dev libasound2-dev)
PACKAGE_PKGS=(nodejs npm dpkg-dev)
# Package checks: desktop-file-validate, appstreamcli, gio (MIME handlers), rpm;
# the Windows compile check: the MinGW cross compiler; Chinese text in the E2E
# screenshots: a CJK font (the packages Recommend it too).
TEST_PKGS=(ffmpeg xvfb xauth webkit2gtk-driver dbus-x11 at-spi2-core chromium
  desktop-file-utils appstream libglib2.0-bin rpm gcc-mingw-w64-x86-64
  fonts-noto-cjk)

want=("${BUILD_PKGS[@]}")
case "$MODE" in
  run) ;;
  package) want+=("${PACKAGE_PKGS[@]}") ;;
  test) want+=("${PACKAGE_PKGS[@]}" "${TEST_PKGS[@]}") ;;
  *) echo "setup: unknown mode '$MODE' (run, package or test)" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  # node/npm may come from elsewhere (nvm, NodeSource): only install when absent.
  case "$p" in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
  esac
  grep -q "install ok installed" <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
if [ "$MODE" = test ] && command -v rustup >/dev/null; then
  for c in rustfmt clippy; do
    grep -q "^$c" <<<"$(rustup component list --installed 2>/dev/null)" || rustup component add "$c"
  done
fi

if [ "$MODE" != run ]; then
  cd "$ROOT/tests"
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "setup: installing the pinned npm test packages"
    # npm ci trips over the optional per-platform tauri-driver packages
    # (npm reports them missing from the lock); install honours the lock.
    npm install --no-audit --no-fund --loglevel=error
  fi
fi

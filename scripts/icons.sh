#!/usr/bin/env bash
# Regenerates the app icons from the one source, icons/icon.png (512×512):
# the PNG sizes the Linux packages install into the hicolor theme, icon.ico
# (Windows: the exe's resource and the installer) and icon.icns (macOS).
# Uses the pinned Tauri CLI from tests/node_modules (scripts/setup.sh package).
# The results are committed, so a build needs no image tools.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TAURI="$ROOT/tests/node_modules/.bin/tauri"
[ -x "$TAURI" ] || "$ROOT/scripts/setup.sh" package
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The window icon is the first PNG listed in tauri.conf.json's bundle.icon (128×128).
"$TAURI" icon "$ROOT/icons/icon.png" -o "$work/all" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
"$TAURI" icon "$ROOT/icons/icon.png" -o "$work/png" -p 16,24,32,48,64,128,256,512 >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
cp "$work"/png/*.png "$work/all/icon.ico" "$work/all/icon.icns" "$ROOT/icons/"
echo "icons: $(cd "$ROOT/icons" && ls | tr '\n' ' ')"

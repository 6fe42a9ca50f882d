#!/usr/bin/env bash
# Builds BeatSync's Linux packages — a .deb and an .rpm — through the Tauri
# bundler, offline once the build tools are installed (scripts/setup.sh
# package: Debian packages, and the Tauri CLI pinned in tests/package.json).
#
# The packages hold the app (/usr/bin/beatsync-app), the `beatsync` command
# line tool (/usr/bin/beatsync), the desktop entry (Open with BeatSync for
# video and audio files), the icons at every size and the AppStream metainfo.
# Their dependencies are read from the binaries just built (dpkg-shlibdeps:
# WebKitGTK, GTK, the FFmpeg libraries by soname, ALSA, …) plus libavfilter,
# which the engine loads on first use. The .deb recommends a CJK font.
#
# Usage: scripts/package.sh          packages land in dist/ (printed at the end)
#        BEATSYNC_DIST=DIR scripts/package.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/setup.sh" package
export PATH="$HOME/.cargo/bin:$PATH"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
DIST="${BEATSYNC_DIST:-$ROOT/dist}"
TAURI="$ROOT/tests/node_modules/.bin/tauri"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "==> building the command line tool and the app (release)"
cargo build --release --locked -p beatsync-engine --bin beatsync
# The Tauri CLI builds the app with the features a shipped build needs.
"$TAURI" build --no-bundle -- --locked

app="$TARGET/release/beatsync-app"
cli="$TARGET/release/beatsync"

echo "==> reading the dependencies from the binaries"
# dpkg-shlibdeps wants a source package around it; a minimal one will do.
mkdir -p "$work/src/debian"
printf 'Source: beatsync\n\nPackage: beatsync\nArchitecture: any\n' >"$work/src/debian/control"
shlibs="$(cd "$work/src" && dpkg-shlibdeps -O -e"$app" -e"$cli" 2>/dev/null)"
deb_depends="${shlibs#shlibs:Depends=}"
[ -n "$deb_depends" ] && [ "$deb_depends" != "$shlibs" ] || { echo "package: dpkg-shlibdeps gave no dependencies" >&2; exit 1; }
# libavfilter is loaded at run time (keep-pitch retiming), so no binary names
# it: depend on the package of the same FFmpeg as the libraries linked.
libdir="$(pkg-config --variable=libdir libavfilter)"
avfilter_pkg="$(dpkg -S "$(readlink -f "$libdir/libavfilter.so")" | cut -d: -f1)"
deb_depends="$deb_depends, $avfilter_pkg"
# RPM: the same libraries by soname (rpm's own capability names), so the
# package installs wherever those sonames are provided.
rpm_depends="$(for b in "$app" "$cli"; do objdump -p "$b" | awk '/NEEDED/ {print $2}'; done |
  sort -u | grep -v -E '^(ld-linux|libc\.so|libm\.so|libgcc_s|libdl|libpthread|librt)' |
  sed 's/$/()(64bit)/')"
rpm_depends="$rpm_depends
libavfilter.so.$(readlink -f "$libdir/libavfilter.so" | sed -E 's/.*\.so\.([0-9]+).*/\1/')()(64bit)"

echo "==> bundling"
# The release profile keeps debug line tables (for profiling); the packages
# get the binaries without them. The bundler takes the app from the target
# directory, so a stripped copy stands in there while bundling and the
# original is put back afterwards (same file, same time stamp: cargo sees
# no change).
objcopy --strip-debug "$cli" "$work/beatsync"
mv "$app" "$work/beatsync-app.full"
trap 'mv -f "$work/beatsync-app.full" "$app"; rm -rf "$work"' EXIT
objcopy --strip-debug "$work/beatsync-app.full" "$app"
node - "$work/overlay.json" "$deb_depends" "$rpm_depends" "$work/beatsync" <<'EOF'
// The parts of the bundle configuration known only now: the dependencies
// read above and the command line tool's stripped copy. On Linux the
// package, its files and the desktop entry are named in lower case
// (beatsync_0.1.0_amd64.deb, beatsync.desktop); the window keeps "BeatSync".
const fs = require('node:fs');
const [out, deb, rpm, cli] = process.argv.slice(2);
const files = { '/usr/bin/beatsync': cli };
const config = {
  productName: 'beatsync',
  bundle: {
    linux: {
      deb: { depends: deb.split(',').map((d) => d.trim()).filter(Boolean), files },
      rpm: { depends: rpm.split('\n').filter(Boolean), files },
    },
  },
};
fs.writeFileSync(out, JSON.stringify(config, null, 2));
EOF
rm -rf "$TARGET/release/bundle"
"$TAURI" bundle --bundles deb,rpm --config "$work/overlay.json"

mkdir -p "$DIST"
rm -f "$DIST"/*.deb "$DIST"/*.rpm
cp "$TARGET"/release/bundle/deb/*.deb "$TARGET"/release/bundle/rpm/*.rpm "$DIST/"
echo "==> packages"
ls -l "$DIST"/*.deb "$DIST"/*.rpm

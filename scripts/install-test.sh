#!/usr/bin/env bash
# Install test (part of scripts/test.sh): builds the packages with
# scripts/package.sh, checks the .deb's metadata and contents (dpkg-deb,
# desktop-file-validate, appstreamcli) and the .rpm's (rpm), then installs the
# .deb into a throw-away copy of this system — overlays over /usr, /etc and
# /var in a private mount namespace, discarded at the end — and there runs the
# installed command line tool, checks "Open with" is registered, starts the
# installed app under Xvfb with files on its command line (and a second
# launch), asserts through WebDriver that the window lists them and takes
# screenshots (test-output/install/e2e/), and removes the package again.
# Needs root (or sudo) for the mount namespace. Every check fails the run;
# nothing is skipped.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${BEATSYNC_TEST_OUT:-$ROOT/test-output}/install"

fail() { echo "install-test: $*" >&2; exit 1; }

if [ "${1:-}" = --inside ]; then
  # Runs as root in the private mount namespace: $2 = the .deb, $3 = output dir.
  deb="$2"; out="$3"
  layer="$(mktemp -d /tmp/beatsync-overlay.XXXXXX)"
  for d in usr etc var; do
    mkdir -p "$layer/upper/$d" "$layer/work/$d"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$layer/upper/$d,workdir=$layer/work/$d" "/$d"
  done
  echo "--> dpkg -i $(basename "$deb") (inside the overlay)"
  if ! dpkg -i "$deb" >"$out/dpkg-install.log" 2>&1; then
    cat "$out/dpkg-install.log" >&2
    fail "dpkg could not install the package (dependencies missing here?)"
  fi
  dpkg-query -W -f='${Status}\n' beatsync | grep -qx "install ok installed" || fail "beatsync not installed"
  for f in /usr/bin/beatsync-app /usr/bin/beatsync; do [ -x "$f" ] || fail "$f missing after install"; done

  echo "--> the installed command line tool: beatsync demo, then align"
  beatsync --version
  demo="$(mktemp -d /tmp/beatsync-demo.XXXXXX)"
  beatsync demo "$demo" --json >"$out/demo.json"
  beatsync align --dance "$demo/beatsync-demo-class.mp4" --bgm "$demo/beatsync-demo-song.m4a" --json >"$out/align.json"
  node -e '
    const d = require(process.argv[1]), a = require(process.argv[2]);
    const err = Math.abs(a.offset_s - d.offset_s);
    console.log(`demo offset ${d.offset_s.toFixed(4)} s, found ${a.offset_s.toFixed(4)} s`);
    if (!(err < 0.01)) { console.error(`off by ${err} s`); process.exit(1); }' "$out/demo.json" "$out/align.json" ||
    fail "the installed beatsync did not align its own demo"

  echo "--> Open with: the desktop entry is registered for video/mp4 and audio/mp4"
  for mime in video/mp4 audio/mp4; do
    # Read the whole answer first: `grep -q` quitting early would SIGPIPE `tee`,
    # and with pipefail a found entry then read as missing.
    answer="$(gio mime "$mime" 2>&1 || true)"
    printf '%s\n' "$answer" >>"$out/gio-mime.txt"
    grep -q "beatsync.desktop" <<<"$answer" ||
      fail "beatsync.desktop is not registered for $mime (gio mime $mime)"
  done

  echo "--> the installed app under Xvfb, started with files"
  (cd "$ROOT/tests" && BEATSYNC_APP=/usr/bin/beatsync-app BEATSYNC_TEST_OUT="$out" BEATSYNC_SHOT_PREFIX=installed- \
    xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- node --test e2e/launch.e2e.test.mjs) ||
    fail "the installed app did not list the files it was started with"

  echo "--> dpkg -r beatsync"
  dpkg -r beatsync >"$out/dpkg-remove.log" 2>&1 || { cat "$out/dpkg-remove.log" >&2; fail "dpkg -r failed"; }
  for f in /usr/bin/beatsync-app /usr/bin/beatsync /usr/share/applications/beatsync.desktop; do
    [ ! -e "$f" ] || fail "$f left behind after removal"
  done
  rm -rf "$demo"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || fail "needs root or sudo (a private mount namespace for the throw-away install)"
  SUDO="sudo -E"
fi
start=$(date +%s)
"$ROOT/scripts/package.sh"
built=$(date +%s)
DIST="${BEATSYNC_DIST:-$ROOT/dist}"
deb="$(ls "$DIST"/*.deb)"
rpm="$(ls "$DIST"/*.rpm)"
rm -rf "$OUT"
mkdir -p "$OUT"

echo "==> the .deb's metadata and contents"
dpkg-deb -I "$deb" | tee "$OUT/deb-info.txt"
dpkg-deb -c "$deb" >"$OUT/deb-contents.txt"
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = beatsync ] || fail "Package is '$(field Package)'"
depends="$(field Depends)"
for want in 'libwebkit2gtk-4\.1-0' 'libgtk-3-0' 'libavcodec[0-9]+' 'libavformat[0-9]+' 'libavutil[0-9]+' \
  'libswresample[0-9]+' 'libavfilter[0-9]+' 'libasound2'; do
  grep -qE "(^|, )$want( |,|$)" <<<"$depends" || fail "Depends lacks $want: $depends"
done
grep -q 'fonts-noto-cjk' <<<"$(field Recommends)" || fail "Recommends lacks fonts-noto-cjk"
for f in usr/bin/beatsync-app usr/bin/beatsync usr/share/applications/beatsync.desktop \
  usr/share/metainfo/io.github.beatsync.beatsync.metainfo.xml; do
  grep -qE " (\./)?$f$" "$OUT/deb-contents.txt" || fail "$f missing from the .deb"
done
for size in 16x16 24x24 32x32 48x48 64x64 128x128 256x256 512x512; do
  grep -qE " (\./)?usr/share/icons/hicolor/$size/apps/beatsync-app\.png$" "$OUT/deb-contents.txt" ||
    fail "no $size icon in the .deb"
done

echo "==> desktop entry and AppStream metainfo"
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
dpkg-deb -x "$deb" "$tree"
desktop="$tree/usr/share/applications/beatsync.desktop"
desktop-file-validate "$desktop" || fail "desktop-file-validate found errors"
grep -qx 'Exec=beatsync-app %F' "$desktop" || fail "Exec does not take files (%F)"
grep -q '^Categories=AudioVideo;' "$desktop" || fail "Categories is not AudioVideo"
for mime in video/mp4 video/quicktime video/x-matroska audio/mp4 audio/mpeg audio/x-wav audio/flac; do
  grep -q "^MimeType=.*$mime;" "$desktop" || fail "MimeType lacks $mime"
done
appstreamcli validate --no-net --pedantic "$tree/usr/share/metainfo/io.github.beatsync.beatsync.metainfo.xml" ||
  fail "appstreamcli validate found problems"
appstreamcli validate-tree --no-net "$tree" || fail "appstreamcli validate-tree found problems"

echo "==> the .rpm"
rpm -qpi "$rpm" >"$OUT/rpm-info.txt" 2>/dev/null || fail "rpm cannot read $rpm"
# Each answer is written whole before grep reads it: `grep -q` quitting at the
# first match would SIGPIPE a `tee` in between, and pipefail would read that as
# a missing entry (a failure that came and went).
rpm -qpl "$rpm" >"$OUT/rpm-contents.txt" 2>/dev/null || fail "rpm cannot list $rpm"
grep -qx /usr/bin/beatsync "$OUT/rpm-contents.txt" || fail "/usr/bin/beatsync missing from the .rpm"
rpm -qpR "$rpm" >"$OUT/rpm-requires.txt" 2>/dev/null || fail "rpm cannot list what $rpm requires"
grep -q '^libavcodec\.so\.[0-9]*()(64bit)' "$OUT/rpm-requires.txt" ||
  fail "the .rpm does not require libavcodec by soname"

echo "==> install, run and remove, in a throw-away overlay of this system"
before="$(dpkg-query -W -f='${Status}' beatsync 2>/dev/null || true)"
inside="$(mktemp -d /tmp/beatsync-install-out.XXXXXX)"
$SUDO unshare --mount --propagation private -- "$0" --inside "$deb" "$inside"
cp -r "$inside"/. "$OUT/"
rm -rf "$inside"
after="$(dpkg-query -W -f='${Status}' beatsync 2>/dev/null || true)"
[ "$before" = "$after" ] || fail "this system's package state changed ('$before' -> '$after')"
[ -f "$OUT/e2e/installed-launch-with-files.png" ] || fail "no screenshot of the installed app"
end=$(date +%s)
echo "install test: package $((built - start)) s, checks and install $((end - built)) s; screenshots in $OUT/e2e/"
printf 'package_s=%s\ninstall_checks_s=%s\n' "$((built - start))" "$((end - built))" >"$OUT/timings.txt"

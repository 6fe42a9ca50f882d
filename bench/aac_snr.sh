#!/usr/bin/env bash
# Waveform SNR and encoding CPU of FFmpeg's AAC coders at the export's bitrate:
# for each song, a 60-s 48-kHz stereo excerpt is encoded at 192k with
# `-aac_coder twoloop` (FFmpeg's default, the export's) and `-aac_coder fast`,
# decoded, and compared with the excerpt sample for sample (the decoder drops
# the encoder's priming, so they line up). SNR is not a listening test.
#   bench/aac_snr.sh SONG [SONG ...]
#   PYTHON=/tmp/bench-venv/bin/python bench/aac_snr.sh /tmp/bench-media/real/real0*/bgm.*
# Env: PYTHON (one with numpy; default python3).
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for song in "$@"; do
  ffmpeg -nostdin -v error -y -i "$song" -t 60 -ac 2 -ar 48000 -f f32le "$work/src.raw"
  ffmpeg -nostdin -v error -y -f f32le -ar 48000 -ac 2 -i "$work/src.raw" -c:a pcm_f32le "$work/src.wav"
  line="$song"
  for coder in twoloop fast; do
    /usr/bin/time -f "%U" -o "$work/t" ffmpeg -nostdin -v error -y -i "$work/src.wav" \
      -c:a aac -aac_coder "$coder" -b:a 192k "$work/$coder.m4a"
    ffmpeg -nostdin -v error -y -i "$work/$coder.m4a" -f f32le "$work/$coder.raw"
    snr=$("${PYTHON:-python3}" - "$work/src.raw" "$work/$coder.raw" <<'PY'
import sys
import numpy as np
x = np.fromfile(sys.argv[1], np.float32).astype(float)
y = np.fromfile(sys.argv[2], np.float32).astype(float)
n = min(len(x), len(y))
print("%.1f" % (10 * np.log10(np.mean(x[:n] ** 2) / np.mean((y[:n] - x[:n]) ** 2))))
PY
)
    line="$line  $coder SNR $snr dB CPU $(cat "$work/t") s"
  done
  echo "$line"
done

#!/usr/bin/env bash
# One `beatsync align --json` run for score.py that also keeps the answer (stdout,
# the JSON result or the JSON error) as ANSWERS/<case folder name>.json.
#   bench/align_one.sh BIN ANSWERS DANCE BGM
set -uo pipefail
bin="$1"; answers="$2"; dance="$3"; bgm="$4"
case_name="$(basename "$(dirname "$dance")")"
"$bin" align --dance "$dance" --bgm "$bgm" --json | tee "$answers/$case_name.json"

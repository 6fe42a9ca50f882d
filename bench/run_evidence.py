#!/usr/bin/env python3
"""The scan's runs of `beatsync align` (issue 18): each run's scan evidence beside
the coherence summed over its span, on true recordings and on wrong-song pairs.

For every case of each bench set named, aligns the recording with its own song
and with the songs of the cases 3, 5, 7 and 11 places further on (pairs of one
song skipped), with BEATSYNC_ALIGN_DEBUG=1, and keeps each debug log in OUTDIR
(a log already there is read again, not re-run). Then prints one row per run
the scan found: its span, scan evidence, the fine stage's coherence on it and
the integration's (z, lag margin), and whether it is on a true play's line
(within 0.5 s; wrong-song pairs: never). Ends with the summary that sets the
held-run bars (`HELD_RUN_EVIDENCE`, `HELD_RUN_INTEGRATED_MIN_Z` in verdict.rs).

    bench/run_evidence.py BIN OUTDIR SET [SET ...]      # e.g. plays-real-4040 public
Env: BENCH_MEDIA (default /tmp/bench-media), JOBS (default 2).
"""
import glob
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

MEDIA = os.environ.get("BENCH_MEDIA", "/tmp/bench-media")
LAG_MARGIN = 2.0
HELD_Z = 6.5
PLAIN_Z = 8.0
# the scan places a run's line up to ~0.4 s off its play's (shape smoothed, hops of 1 s)
ON_LINE_S = 0.5

RUN = re.compile(r"segments: run ([\d.]+)-([\d.]+) s intercept (-?[\d.]+) evidence ([\d.]+)")
FINE = re.compile(r"segments: run ([\d.]+)-([\d.]+) s: z (-?[\d.]+) heard (\d+)/(\d+) (.*)")
SUMMED = re.compile(r"segments: piece [\d.]+\+[\d.]+ s integrated: z (-?[\d.]+) lag margin (-?[\d.]+)")


def song_of(case):
    return json.load(open(os.path.join(case, "truth.json"))).get("song")


def pairs(sets):
    for s in sets:
        cases = sorted(os.path.dirname(t) for t in glob.glob(f"{MEDIA}/{s}/*/truth.json"))
        for i, case in enumerate(cases):
            yield s, case, case, "true"
            for k in (3, 5, 7, 11):
                other = cases[(i + k) % len(cases)]
                if song_of(other) != song_of(case):
                    yield s, case, other, f"x{k}"


def log_path(out, job):
    s, rec, other, tag = job
    return f"{out}/{s}__{os.path.basename(rec)}__{os.path.basename(other)}__{tag}.dbg"


def align(binary, out, job):
    path = log_path(out, job)
    if os.path.exists(path):
        return
    _, rec, other, _ = job
    song = glob.glob(os.path.join(other, "bgm.*"))[0]
    env = dict(os.environ, BEATSYNC_ALIGN_DEBUG="1")
    cmd = [binary, "align", "--json", "--dance", os.path.join(rec, "dance.mp4"), "--bgm", song]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    with open(path + ".partial", "w") as f:
        f.write(done.stderr)
    os.rename(path + ".partial", path)


def true_offsets(rec):
    truth = json.load(open(os.path.join(rec, "truth.json")))
    return [s["offset_s"] for s in truth.get("segments", [])] or [truth.get("offset_s")]


def runs_of(path, offsets):
    """The scan's runs in one debug log, each with what the later stages measured."""
    runs, current = [], []
    for line in open(path):
        if m := RUN.match(line):
            a, b, c, e = map(float, m.groups())
            on_true = any(abs(c - o) < ON_LINE_S for o in offsets)
            runs.append(dict(a=a, b=b, evidence=e, on_true=on_true, fine=[], summed=[]))
        elif m := FINE.match(line):
            a, b = float(m.group(1)), float(m.group(2))
            current = [r for r in runs if r["a"] == a and r["b"] == b]
            for r in current:
                r["fine"].append(float(m.group(3)))
        elif (m := SUMMED.match(line)) and current:
            for r in current:
                r["summed"].append((float(m.group(1)), float(m.group(2))))
            current = []
    return runs


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    binary, out, sets = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    jobs = list(pairs(sets))
    with ThreadPoolExecutor(int(os.environ.get("JOBS", "2"))) as ex:
        list(ex.map(lambda j: align(binary, out, j), jobs))
    # the most evidence of a run that is not a true play, by its summed z:
    # between the held and the plain bar, and at the plain bar or more
    held_false = {(k, b): 0.0 for k in ("wrong song", "off true lines") for b in ("held", "plain")}
    held_true = []
    n_runs = 0
    for job in jobs:
        s, rec, other, tag = job
        offsets = true_offsets(rec) if tag == "true" else []
        for r in runs_of(log_path(out, job), offsets):
            n_runs += 1
            # the best summed coherence among the pieces that pass the lag margin
            z = max((z for z, m in r["summed"] if m >= LAG_MARGIN), default=None)
            kind = "true" if r["on_true"] else ("wrong song" if tag != "true" else "off true lines")
            print(
                f"{kind:14} {s} {os.path.basename(rec)} x {os.path.basename(other)} "
                f"{r['a']:6.1f}-{r['b']:6.1f} s evidence {r['evidence']:6.1f} "
                f"fine z {r['fine']} summed z (margin >= {LAG_MARGIN}) {z}"
            )
            if z is None or z < HELD_Z:
                continue
            if kind == "true":
                held_true.append((r["evidence"], round(z, 2)))
            else:
                key = (kind, "held" if z < PLAIN_Z else "plain")
                held_false[key] = max(held_false[key], r["evidence"])
    wrong = sum(1 for j in jobs if j[3] != "true")
    print(f"\n{len(jobs)} alignments ({wrong} wrong-song pairs), {n_runs} runs")
    for (kind, bar), e in held_false.items():
        zs = f"{HELD_Z}-{PLAIN_Z}" if bar == "held" else f">= {PLAIN_Z}"
        print(f"runs {kind}, summed z {zs} with the margin: evidence {e:.1f} at most")
    print(f"true runs summed at >= {HELD_Z} with the margin (evidence, z): {sorted(held_true)}")

if __name__ == "__main__":
    main()

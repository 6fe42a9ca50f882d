#!/usr/bin/env python3
"""Cut placement of two answer sets side by side (issue 18: "boundary error at hard cuts").

For every true play that starts at a hard cut and that an answered segment finds (offset
within 10 ms at the play's middle, the segment covering half the play, as score_plays.py
scores it), the error of the segment's start (ms, answer minus truth) under answers A and
B, the cuts whose error moved by more than 5 ms, and per answer set the distribution:
count, median, 90th percentile, over 50 ms, over 100 ms, and the largest under 1 s (a cut
off by seconds is a play missed or merged, counted in "over 100 ms").

Answers are the caches bench/plays_detail.py leaves: for a set folder SET, the answer of
case C under prefix P is P-<basename SET>/C.json.

    bench/plays_cuts.py PREFIX_A PREFIX_B SET_DIR [SET_DIR ...]
    bench/plays_cuts.py /tmp/ans/main /tmp/ans/new /tmp/bench-media/plays-real-*

SCORER (default ../shared/bench beside the project root) is where score_plays.py is.
"""
import glob
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("SCORER", os.path.join(HERE, "..", "..", "shared", "bench")))
from score_plays import offset_at, segments_of  # noqa: E402


def cut_errors(set_dir, prefix):
    """{(case, play index): start error in ms} for the found plays after a cut."""
    out = {}
    name = os.path.basename(set_dir.rstrip("/"))
    for truth_path in sorted(glob.glob(os.path.join(set_dir, "*", "truth.json"))):
        truth = json.load(open(truth_path))
        answer_path = os.path.join(f"{prefix}-{name}", truth["case"] + ".json")
        try:
            lines = open(answer_path).read().strip().splitlines()
            answer = json.loads(lines[-1]) if lines else None
        except (OSError, json.JSONDecodeError):
            continue
        segs = segments_of(answer, truth["dance_dur_s"])
        for k, play in enumerate(truth["segments"]):
            if not play["cut_before"]:
                continue
            length = play["dance_end_s"] - play["dance_start_s"]
            for s in segs:
                cover = min(play["dance_end_s"], s["b"]) - max(play["dance_start_s"], s["a"])
                placed = abs(offset_at(s, play["ref_dance_time_s"]) - play["offset_s"]) <= 0.010
                if cover >= 0.5 * length and placed:
                    out[(f"{name} {truth['case']}", k)] = (s["a"] - play["dance_start_s"]) * 1000
                    break
    return out


def summary(errors):
    e = sorted(abs(v) for v in errors)
    if not e:
        return "no cuts found"
    p90 = e[min(len(e) - 1, int(0.9 * len(e)))]
    under_1s = [v for v in e if v < 1000]
    return (f"{len(e)} cuts: median {statistics.median(e):.1f} ms, p90 {p90:.1f} ms, "
            f"over 50 ms {sum(v > 50 for v in e)}, over 100 ms {sum(v > 100 for v in e)}, "
            f"largest under 1 s {max(under_1s, default=0):.1f} ms")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    prefix_a, prefix_b, sets = sys.argv[1], sys.argv[2], sys.argv[3:]
    a, b = {}, {}
    for s in sets:
        a.update(cut_errors(s, prefix_a))
        b.update(cut_errors(s, prefix_b))
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if x is None or y is None or abs(abs(x) - abs(y)) > 5:
            fx = "missed" if x is None else f"{x:+.1f}"
            fy = "missed" if y is None else f"{y:+.1f}"
            print(f"{key[0]} play{key[1]}: {fx} -> {fy} ms")
    both = [k for k in a if k in b]
    print(f"A ({prefix_a}): {summary([a[k] for k in both])}")
    print(f"B ({prefix_b}): {summary([b[k] for k in both])}")
    print(f"found by one only: A {len(set(a) - set(b))}, B {len(set(b) - set(a))}")


if __name__ == "__main__":
    main()

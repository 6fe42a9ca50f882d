#!/usr/bin/env python3
"""Per-play detail of `align --json` on a several-plays bench set (issue 18).

Runs BIN on every case of SET (answers cached in OUT, so two binaries can be
compared case by case afterwards), scores each answer with the offset
benchmark's own scoring (score_plays.py: segments_of, score_case, offset_at)
and prints, per case, every true play and every answered segment, then per
found play the error of its start and end (ms, answer minus truth; *** where
a start is off by more than 250 ms after a stop or 100 ms at a cut), and a
last line with the set's totals (starts at cuts and after stops, and the
ends it does not score, as score_plays.py measures them), and how far off
each found play's placement is at its two ends (0.5 s inside the part its
segment covers; score_plays.py reads it at the play's reference time only,
so a wrong shared rate is seen here alone).

    bench/plays_detail.py BIN SET OUT [--debug]
    bench/plays_detail.py target/release/beatsync /tmp/bench-media/plays-real-3003 /tmp/ans/new-plays-real-3003

--debug runs BIN with BEATSYNC_ALIGN_DEBUG=1 and keeps its stderr in OUT/CASE.err.
SCORER (default ../shared/bench beside the project root) is where score_plays.py is.
"""
import glob
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("SCORER", os.path.join(HERE, "..", "..", "shared", "bench")))
from score_plays import offset_at, score_case, segments_of  # noqa: E402


def answer(binary, case_dir, truth, out_dir, debug):
    """BIN's answer for one case, from OUT when already there."""
    path = os.path.join(out_dir, truth["case"] + ".json")
    if not os.path.exists(path):
        env = dict(os.environ)
        if debug:
            env["BEATSYNC_ALIGN_DEBUG"] = "1"
        run = subprocess.run(
            [binary, "align", "--json", "--dance", os.path.join(case_dir, "dance.mp4"),
             "--bgm", os.path.join(case_dir, truth["bgm_file"])],
            capture_output=True, text=True, env=env)
        with open(path, "w") as f:
            f.write(run.stdout)
        with open(os.path.join(out_dir, truth["case"] + ".err"), "w") as f:
            f.write(run.stderr)
    text = open(path).read().strip()
    try:
        return json.loads(text.splitlines()[-1])
    except (ValueError, IndexError):
        return None


def true_offset_at(t, when):
    """The true play `t`'s offset at recording time `when` (its rate about
    its reference time, as offset_at reads a segment's about its middle)."""
    return t["offset_s"] + (when - t["ref_dance_time_s"]) * (1 - 1 / t["rate"])


def placed_at_ends(t, s):
    """The largest placement error (ms) of segment `s` on true play `t`, at
    0.5 s inside each end of the part of the play it covers."""
    a = max(t["dance_start_s"], s["a"]) + 0.5
    b = min(t["dance_end_s"], s["b"]) - 0.5
    return max(abs(offset_at(s, w) - true_offset_at(t, w)) * 1000 for w in (a, b))


def edge_errors(truth, segs):
    """Per true play found, matched as score_case matches it (the segment
    covering half of it with the least error at its reference time, within
    10 ms): (index, cut, start error ms, end error ms, placement error at
    its ends ms), the edge errors signed."""
    out = []
    for k, t in enumerate(truth["segments"]):
        best = None
        for s in segs:
            cover = min(t["dance_end_s"], s["b"]) - max(t["dance_start_s"], s["a"])
            err = abs(offset_at(s, t["ref_dance_time_s"]) - t["offset_s"]) * 1000
            if cover >= 0.5 * (t["dance_end_s"] - t["dance_start_s"]) and err <= 10 \
                    and (best is None or err < best[0]):
                best = (err, s)
        if best is not None:
            s = best[1]
            out.append((k, t["cut_before"], (s["a"] - t["dance_start_s"]) * 1000,
                        (s["b"] - t["dance_end_s"]) * 1000, placed_at_ends(t, s)))
    return out


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    binary, set_dir, out_dir = sys.argv[1:4]
    debug = "--debug" in sys.argv
    os.makedirs(out_dir, exist_ok=True)
    total = found = false = 0
    cuts, stops, ends, at_ends = [], [], [], []
    for truth_path in sorted(glob.glob(os.path.join(set_dir, "*", "truth.json"))):
        case_dir = os.path.dirname(truth_path)
        truth = json.load(open(truth_path))
        ans = answer(binary, case_dir, truth, out_dir, debug)
        segs = segments_of(ans, truth["dance_dur_s"])
        hit, falses, _, boundaries = score_case(truth, segs)
        for b in boundaries:
            (cuts if b["cut"] else stops).append(b["start_ms"])
            ends.append(b["end_ms"])
        total += len(hit)
        found += sum(hit)
        false += len(falses)
        verdict = ans.get("verdict") if ans else None
        print(f"{truth['case']} {truth['plays_mode']} found {sum(hit)}/{len(hit)} "
              f"false {len(falses)} verdict {verdict}")
        for t, ok in zip(truth["segments"], hit):
            print(f"   T {t['dance_start_s']:7.2f}-{t['dance_end_s']:7.2f} off {t['offset_s']:9.4f} "
                  f"song@{t['song_start_s']:6.1f} cut {int(t['cut_before'])} {'OK' if ok else 'MISS'}")
        for k, s in enumerate(segs):
            err = min((abs(offset_at(s, t["ref_dance_time_s"]) - t["offset_s"]) * 1000
                       for t in truth["segments"]), default=0.0)
            print(f"   A {s['a']:7.2f}-{s['b']:7.2f} off {s['off']:9.4f} minerr {err:8.1f}ms "
                  f"{'FALSE' if k in falses else ''}")
        for k, cut, start, end, placed in edge_errors(truth, segs):
            bad = abs(start) > (100 if cut else 250)
            at_ends.append(placed)
            print(f"   play{k} {'cut ' if cut else 'stop'} start {start:+9.1f} end {end:+9.1f} "
                  f"placed at ends {placed:6.1f} {'***' if bad else ''}")

    def med(v):
        return statistics.median(v) if v else 0.0

    print(f"TOTAL found {found}/{total} false {false} cut med/max {med(cuts):.1f}/"
          f"{max(cuts, default=0.0):.1f} stop med {med(stops):.1f} "
          f"stops>250: {sum(v > 250 for v in stops)}/{len(stops)} "
          f"ends>250: {sum(v > 250 for v in ends)}/{len(ends)} "
          f"placed at ends >5 ms: {sum(v > 5 for v in at_ends)}/{len(at_ends)} "
          f"(max {max(at_ends, default=0.0):.1f})")


if __name__ == "__main__":
    main()

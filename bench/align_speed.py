#!/usr/bin/env python3
"""Align time per case, two binaries in alternation (A, B, A, B, ... per case, same run).

    bench/align_speed.py BIN_A BIN_B SET_DIR [SET_DIR ...] [--json out.json]

Per set: median and total wall time per case, median CPU time (user + system), median
and largest peak RSS (wait4), the ratio B/A of each, and how many `align --json` answers
are identical once `timings_ms` and `segments` are removed (as bench/align_same.sh with
DROP_SEGMENTS=1). Wall time on a shared machine moves with its load: compare the same-run
ratio, and CPU time beside it. Standard library only.
"""
import json
import os
import statistics
import subprocess
import sys
import time


def run(binary, dance, bgm):
    """(answer without timings/segments, wall s, cpu s, peak RSS MB)."""
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "align", "--dance", dance, "--bgm", bgm, "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read()
    _, _, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    try:
        answer = json.loads(out)
        if isinstance(answer, dict):
            answer.pop("timings_ms", None)
            answer.pop("segments", None)
            if isinstance(answer.get("best_guess"), dict):
                answer["best_guess"].pop("timings_ms", None)
    except ValueError:
        answer = out.decode(errors="replace")
    return answer, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0


def cases(set_dir):
    for name in sorted(os.listdir(set_dir)):
        d = os.path.join(set_dir, name)
        if not os.path.exists(os.path.join(d, "truth.json")):
            continue
        files = sorted(os.listdir(d))
        dance = next((f for f in files if f.startswith("dance.")), None)
        bgm = next((f for f in files if f.startswith("bgm.")), None)
        if dance and bgm:
            yield name, os.path.join(d, dance), os.path.join(d, bgm)


def main():
    args = sys.argv[1:]
    out_json = None
    if "--json" in args:
        i = args.index("--json")
        out_json = args[i + 1]
        del args[i:i + 2]
    if len(args) < 3:
        sys.exit(__doc__)
    bin_a, bin_b, sets = args[0], args[1], args[2:]
    report = {}
    print(f"{'set':10s} {'cases':>5s} {'same':>5s} | {'wall med A':>10s} {'B':>6s} {'B/A':>5s} | "
          f"{'wall sum B/A':>12s} | {'cpu med A':>9s} {'B':>6s} {'B/A':>5s} | "
          f"{'RSS med A':>9s} {'B':>6s} | {'RSS max A':>9s} {'B':>6s}")
    for set_dir in sets:
        rows = []
        for name, dance, bgm in cases(set_dir):
            a = run(bin_a, dance, bgm)
            b = run(bin_b, dance, bgm)
            rows.append((name, a, b))
            if a[0] != b[0]:
                print(f"  DIFFERS: {os.path.basename(set_dir)}/{name}", flush=True)
        if not rows:
            continue
        med = lambda k, side: statistics.median(r[side][k] for r in rows)
        tot = lambda k, side: sum(r[side][k] for r in rows)
        same = sum(r[1][0] == r[2][0] for r in rows)
        s = {
            "cases": len(rows), "identical": same,
            "wall_median_s": [med(1, 1), med(1, 2)], "wall_total_s": [tot(1, 1), tot(1, 2)],
            "cpu_median_s": [med(2, 1), med(2, 2)],
            "rss_median_mb": [med(3, 1), med(3, 2)],
            "rss_max_mb": [max(r[1][3] for r in rows), max(r[2][3] for r in rows)],
        }
        report[os.path.basename(set_dir)] = s
        w, t, c, rm, rx = (s["wall_median_s"], s["wall_total_s"], s["cpu_median_s"],
                          s["rss_median_mb"], s["rss_max_mb"])
        print(f"{os.path.basename(set_dir):10s} {len(rows):5d} {same:5d} | {w[0]:10.2f} {w[1]:6.2f} "
              f"{w[1] / w[0]:5.2f} | {t[1] / t[0]:12.2f} | {c[0]:9.2f} {c[1]:6.2f} {c[1] / c[0]:5.2f} | "
              f"{rm[0]:9.0f} {rm[1]:6.0f} | {rx[0]:9.0f} {rx[1]:6.0f}", flush=True)
    if out_json:
        with open(out_json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()

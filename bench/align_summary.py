#!/usr/bin/env python3
"""Verdict summary of `beatsync align --json` answers against a bench set's truth.

usage: align_summary.py SET_DIR ANSWERS_DIR

ANSWERS_DIR holds one <case>.json per case (bench/align_one.sh writes them): the
AlignResult, or the JSON error ({"code": "no_match", ..., "best_guess": {...}}).
A placement is right within 10 ms of the truth; in pitch-kept tempo cases
(truth `speed_method` "tempo") the truth's `tempo_map_jitter_max_ms` is added.
Prints the counts per verdict (sure / unsure / no_match), right and wrong, the
confidence range of each, and every case that is not a right `sure`.
Standard library only.
"""
import glob
import json
import os
import statistics
import sys


def tolerance_ms(truth):
    tol = 10.0
    if truth.get("speed_method") == "tempo":
        tol += float(truth.get("tempo_map_jitter_max_ms") or 0.0)
    return tol


def read_answer(path):
    try:
        text = open(path).read().strip()
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def classify(answer):
    """(verdict, placement dict or None)"""
    if answer is None:
        return "error", None
    if "offset_s" in answer:
        return answer.get("verdict", "sure"), answer
    if answer.get("code") == "no_match":
        return "no_match", answer.get("best_guess")
    return answer.get("code", "error"), None


def main():
    set_dir, answers = sys.argv[1], sys.argv[2]
    rows = []
    for tp in sorted(glob.glob(os.path.join(set_dir, "*", "truth.json"))):
        truth = json.load(open(tp))
        case = os.path.basename(os.path.dirname(tp))
        verdict, placed = classify(read_answer(os.path.join(answers, case + ".json")))
        err = None
        if placed is not None and placed.get("offset_s") is not None:
            err = (placed["offset_s"] - truth["offset_s"]) * 1e3
        right = err is not None and abs(err) <= tolerance_ms(truth)
        conf = placed.get("confidence") if placed else None
        rows.append(dict(case=case, verdict=verdict, err=err, right=right, conf=conf,
                         tags=",".join(truth.get("tags", []))))
    n = len(rows)
    name = os.path.basename(os.path.normpath(set_dir))
    print(f"verdicts ({name}, {n} cases):")
    for verdict in ("sure", "unsure", "no_match", "error"):
        sel = [r for r in rows if r["verdict"] == verdict]
        if not sel and verdict != "sure":
            continue
        good = [r for r in sel if r["right"]]
        confs = [r["conf"] for r in sel if r["conf"] is not None]
        span = f", confidence {min(confs):.2f}-{max(confs):.2f}" if confs else ""
        print(f"  {verdict:8s} {len(sel):3d}: {len(good)} placed right, {len(sel) - len(good)} not{span}")
    errs = [abs(r["err"]) for r in rows if r["err"] is not None and r["verdict"] in ("sure", "unsure")]
    right = sum(r["right"] and r["verdict"] in ("sure", "unsure") for r in rows)
    if errs:
        print(f"  answered right: {right}/{n} ({100.0 * right / n:.1f} %), "
              f"median |err| {statistics.median(errs):.2f} ms")
    for r in rows:
        if r["verdict"] != "sure" or not r["right"]:
            err = "-" if r["err"] is None else f"{r['err']:.1f} ms"
            conf = "-" if r["conf"] is None else f"{r['conf']:.2f}"
            print(f"    {r['case']}: {r['verdict']}, error {err}, confidence {conf} ({r['tags']})")


if __name__ == "__main__":
    main()

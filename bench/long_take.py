#!/usr/bin/env python3
"""Builds a long class take for bench/long_take.sh: PLAYS plays of a song with talk and
noise between them, a phone-like MP4 (1080p H.264 picture, AAC audio), and its truth.

    long_take.py make SONG OUT_DIR --minutes 60 --plays 12 [--play-s S] [--seed N]
    long_take.py score TRUTH ANSWER

The picture is a 10-s 1920x1080 30 fps testsrc2 clip (x264 ultrafast, ~1 Mbit/s, 1-s
GOP) looped by stream copy: cheap to make, and the aligner only reads past picture
packets (a real phone picture at 12 Mbit/s would make the file ~12x larger to read).
The sound is made and encoded in a stream (one play in memory at a time): each play is
an excerpt of the song through a synthetic room (direct sound first, RT60 ~0.6 s), with
pink noise over the whole take and espeak-ng talk between plays (and softly over them),
soft-clipped (tanh, no look-ahead limiter: that would delay the sound), band-limited and AAC-encoded at 48 kHz. Clock rate 1 (no drift).
Truth: for each play, `offset_s` = recording time - song time of its direct sound,
`dance_start_s` / `dance_end_s` its span in the recording. Needs numpy and scipy.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from scipy.signal import fftconvolve, lfilter

FS = 48000
PHRASES = [
    "five six seven eight",
    "okay everybody, from the top, watch the arms on the second eight",
    "one more time, slower this time, and remember to breathe",
    "group two, you are next, get ready at the back",
    "good, that was much better, now let's clean the turn",
    "water break, two minutes, then we run it again",
]


def read_pcm(path):
    """The file's sound as mono float32 at FS."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", path, "-ac", "1", "-ar", str(FS), "-f", "f32le", "-"],
        check=True, capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.float32).astype(np.float32)


def talk_bed(tmp):
    """Espeak-ng phrases with pauses between, ~1 min, at FS."""
    parts = []
    for i, text in enumerate(PHRASES):
        wav = os.path.join(tmp, f"talk{i}.wav")
        subprocess.run(["espeak-ng", "-s", "150", "-w", wav, text], check=True)
        parts.append(read_pcm(wav))
        parts.append(np.zeros(int(FS * (1.5 + i % 3)), dtype=np.float32))
    bed = np.concatenate(parts)
    return bed / (np.sqrt(np.mean(bed**2)) + 1e-9)


def pink(rng, n):
    """Pink-ish noise (Kellett's filter on white), unit RMS."""
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1.0, -2.494956002, 2.017265875, -0.522189400]
    x = lfilter(b, a, rng.standard_normal(n)).astype(np.float32)
    return x / (np.sqrt(np.mean(x**2)) + 1e-9)


def room(rng):
    """Impulse response: the direct sound at sample 0, then a decaying tail."""
    n = int(0.8 * FS)
    t = np.arange(n) / FS
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / 0.6) * 0.02  # direct/reverberant ~ -1 dB
    tail[: int(0.004 * FS)] = 0.0
    tail[0] = 1.0
    return tail.astype(np.float32)


def layout(rng, total_s, n_plays, song_s, play_s):
    """Play lengths, song starts and recording starts; gaps of talk between."""
    if play_s:
        lengths = np.full(n_plays, float(play_s))
    else:
        lengths = rng.uniform(60.0, 200.0, n_plays)
        lengths = np.minimum(lengths, 0.6 * total_s / n_plays * 1.6)
    lengths = np.minimum(lengths, song_s - 1.0)
    spare = total_s - lengths.sum()
    assert spare > 20.0 * (n_plays + 1), "the plays do not fit in the take"
    if n_plays == 1:
        gaps = np.array([spare / 2, spare / 2])
    else:
        gaps = 20.0 + rng.dirichlet(np.ones(n_plays + 1) * 3) * (spare - 20.0 * (n_plays + 1))
    plays, t = [], 0.0
    for k in range(n_plays):
        t += gaps[k]
        t = round(t * FS) / FS
        song_start = round(rng.uniform(0.0, song_s - lengths[k]) * FS) / FS
        plays.append({"dance_start_s": t, "dance_end_s": t + lengths[k],
                      "song_start_s": song_start, "offset_s": t - song_start})
        t += lengths[k]
    return plays


def make(args):
    rng = np.random.default_rng(args.seed)
    song = read_pcm(args.song)
    song_s = len(song) / FS
    total_s = args.minutes * 60.0
    plays = layout(rng, total_s, args.plays, song_s, args.play_s)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        talk = talk_bed(tmp)
        clip = os.path.join(tmp, "clip.mp4")
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
             "-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1M", "-g", "30",
             "-pix_fmt", "yuv420p", clip], check=True)
        out = os.path.join(args.out, "dance.mp4")
        enc = subprocess.Popen(
            ["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", clip,
             "-f", "f32le", "-ar", str(FS), "-ac", "1", "-i", "pipe:0",
             "-map", "0:v", "-map", "1:a", "-c:v", "copy",
             "-af", "highpass=f=150,lowpass=f=7000",
             "-c:a", "aac", "-b:a", "128k", "-ar", str(FS), "-t", f"{total_s:.3f}", out],
            stdin=subprocess.PIPE)
        music_rms = 0.1
        pos = 0  # samples written

        def write(x):
            nonlocal pos
            noise = pink(rng, len(x)) * music_rms * 10 ** (-args.snr_db / 20)
            try:
                enc.stdin.write(np.tanh(2.0 * (x + noise)).astype(np.float32).tobytes())
            except BrokenPipeError:  # ffmpeg stops reading at -t
                pass
            pos += len(x)

        def talk_until(end):
            while pos < end:
                n = min(end - pos, FS * 30)
                start = int(rng.integers(0, len(talk) - n)) if len(talk) > n else 0
                seg = np.resize(talk[start:], n) * music_rms * 1.4
                write(seg.astype(np.float32))

        for p in plays:
            talk_until(int(round(p["dance_start_s"] * FS)))
            a = int(round(p["song_start_s"] * FS))
            b = a + int(round((p["dance_end_s"] - p["dance_start_s"]) * FS))
            x = fftconvolve(song[a:b], room(rng))[: b - a].astype(np.float32)
            x *= music_rms / (np.sqrt(np.mean(x**2)) + 1e-9)
            over = np.resize(talk, len(x)) * music_rms * 0.5
            write(x + over.astype(np.float32))
        talk_until(int(round(total_s * FS)) + FS)
        try:
            enc.stdin.close()
        except BrokenPipeError:
            pass
        if enc.wait() != 0:
            sys.exit("ffmpeg failed")
    truth = {"song": os.path.abspath(args.song), "minutes": args.minutes, "seed": args.seed,
             "snr_db": args.snr_db, "plays": plays}
    with open(os.path.join(args.out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)


def score(args):
    """Each play found when a segment covers its middle with the offset within 10 ms."""
    truth = json.load(open(args.truth))
    answer = json.load(open(args.answer))
    segments = answer.get("segments") or []
    if "offset_s" in answer and not segments:
        segments = [dict(answer["overlap"], offset_s=answer["offset_s"])]
    used = set()
    found = 0
    for k, p in enumerate(truth["plays"]):
        mid = 0.5 * (p["dance_start_s"] + p["dance_end_s"])
        hit = None
        for i, s in enumerate(segments):
            if s["dance_start_s"] <= mid <= s["dance_end_s"]:
                hit = i
        if hit is None:
            print(f"play {k + 1:2d} at {p['dance_start_s']:7.1f}-{p['dance_end_s']:7.1f} s: NOT FOUND")
            continue
        used.add(hit)
        err_ms = (segments[hit]["offset_s"] - p["offset_s"]) * 1e3
        ok = abs(err_ms) <= 10.0
        found += ok
        s = segments[hit]
        print(f"play {k + 1:2d} at {p['dance_start_s']:7.1f}-{p['dance_end_s']:7.1f} s: segment "
              f"{s['dance_start_s']:7.1f}-{s['dance_end_s']:7.1f} s, error {err_ms:+.2f} ms"
              f"{'' if ok else '  WRONG'}")
    false = len(segments) - len(used)
    top = answer.get("offset_s")
    print(f"plays found: {found}/{len(truth['plays'])}  false segments: {false}  "
          f"answer: {answer.get('verdict', answer.get('code', '?'))} offset {top}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("song")
    m.add_argument("out")
    m.add_argument("--minutes", type=float, default=60.0)
    m.add_argument("--plays", type=int, default=12)
    m.add_argument("--play-s", type=float, default=None)
    m.add_argument("--seed", type=int, default=6060)
    m.add_argument("--snr-db", type=float, default=12.0)
    s = sub.add_parser("score")
    s.add_argument("truth")
    s.add_argument("answer")
    args = ap.parse_args()
    make(args) if args.cmd == "make" else score(args)


if __name__ == "__main__":
    main()

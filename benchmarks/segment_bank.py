"""The segmenters alone on the 512-bed replay's signals: per bed (one ``Segmenter.push`` per chunk) vs in rounds
(``segmentation.bank.segment_round``: the QRS envelopes of all beds in one pass), same chunks, same run.

    .venv/bin/python benchmarks/segment_bank.py [--patients 512] [--seconds 30] [--repeats 3]

Both paths must give the same beats (checked here, and in ``tests/test_bank.py``); the figure is the segmenters'
own time per round of chunks (no quality checks, lethal watches, sinks or scoring), the best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from flops import machine

from ecgmon.models.data import make_split
from ecgmon.segmentation.bank import segment_round
from ecgmon.segmentation.beats import Segmenter
from ecgmon.simulators.replay import plan_patients


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=512)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--fs", type=float, default=250.0)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    te = make_split("product").part("test")
    # passes of the test split, one after another, as the soak's looping replay plays them
    signals: list[list[np.ndarray]] = [[] for _ in range(a.patients)]
    seed = 0
    while min(sum(map(len, s)) for s in signals) < a.seconds * a.fs:
        plans = plan_patients(te.x, te.y, np.arange(len(te.x)), patients=a.patients, fs=a.fs, seed=seed)
        for s, p in zip(signals, plans, strict=True):
            s.append(p.signal)
        seed += 1
    n = int(0.25 * a.fs)
    per_bed = [[x[i:i + n] for i in range(0, int(a.seconds * a.fs), n)] for x in map(np.concatenate, signals)]
    rounds = min(len(c) for c in per_bed)
    print(f"machine: {machine()}")
    print(f"{a.patients} beds at {a.fs:g} Hz, {rounds} rounds of 0.25 s chunks")
    best: dict[str, float] = {}
    beats: dict[str, list[list[tuple[int, bytes]]]] = {}
    for _ in range(a.repeats):
        for how in ("per bed", "rounds"):
            segs = [Segmenter(f"bed{i}", a.fs) for i in range(a.patients)]
            got: list[list[tuple[int, bytes]]] = [[] for _ in segs]
            t0 = time.perf_counter()
            for r in range(rounds):
                xs = [c[r] for c in per_bed]
                if how == "per bed":
                    out = [s.push(x) for s, x in zip(segs, xs, strict=True)]
                else:
                    out = segment_round(segs, xs)
                for i, bs in enumerate(out):
                    got[i] += [(b.index, b.samples.tobytes()) for b in bs]
            t = time.perf_counter() - t0
            best[how] = min(best.get(how, t), t)
            beats[how] = got
    same = beats["per bed"] == beats["rounds"]
    n = sum(map(len, beats["rounds"]))
    for how, t in best.items():
        print(f"{how:8s}: {1000 * t / rounds:7.1f} ms per round of {a.patients} chunks, {n / t:8.0f} beats/s "
              f"({1e6 * t / (rounds * a.patients):5.1f} us per chunk)")
    print(f"rounds / per bed: {best['per bed'] / best['rounds']:.2f}x faster; the same beats: {same} ({n} beats)")


if __name__ == "__main__":
    main()

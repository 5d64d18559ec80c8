"""What the QRS detector's pacemaker-pulse check costs: the segmenters of many beds with and without it, side by side.

    .venv/bin/python benchmarks/pace_cost.py [--data ../shared/data/cinc2015-dev] [--beds 128] [--seconds 60]
        [--repeats 3]

Plays the first lead of the first ``--beds`` records of ``--data`` (WFDB, 250 Hz for CinC 2015: ICU patients, some of
them paced) as beds, 62-sample chunks, every bed's chunk of a round through ``segmentation.bank.segment_round`` (the
monitor's segmentation pass), once with the default detector and once with ``DetectorConfig(pace_min_fs=0)`` (the
check off), alternating, ``--repeats`` times.  Prints the main thread's CPU time (``time.thread_time``: other
processes on a shared machine do not count) of each pass and the ratio.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import wfdb

from ecgmon.segmentation.bank import segment_round
from ecgmon.segmentation.beats import Segmenter
from ecgmon.segmentation.peaks import DetectorConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/cinc2015-dev"))
    ap.add_argument("--beds", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    xs, fs = [], 0.0
    for hea in sorted(a.data.glob("*.hea"))[: a.beds]:
        r = wfdb.rdrecord(str(hea.with_suffix("")), channels=[0])
        fs = float(r.fs)
        xs.append(np.nan_to_num(r.p_signal[:, 0])[: int(a.seconds * fs)])
    n = min(len(x) for x in xs)
    chunk = 62

    def run(cfg: DetectorConfig) -> float:
        segs = [Segmenter(f"b{i}", fs, detector=cfg) for i in range(len(xs))]
        t = time.thread_time()
        for s in range(0, n, chunk):
            segment_round(segs, [x[s:s + chunk] for x in xs])
        return time.thread_time() - t

    print(f"{len(xs)} beds of {a.data} at {fs:g} Hz, {n / fs:.0f} s each, chunks of {chunk} samples")
    for rep in range(a.repeats):
        off = run(DetectorConfig(pace_min_fs=0))
        on = run(DetectorConfig())
        print(f"pass {rep + 1}: segmenters {off:.2f} s CPU without the pacemaker check, {on:.2f} s with it "
              f"(+{100 * (on / off - 1):.0f} %)")


if __name__ == "__main__":
    main()

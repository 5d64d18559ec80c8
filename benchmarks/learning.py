"""Per-bed learning's cost: the pipeline's beats/s with learning on and off, in the same run.

Plays the MIT-BIH excerpt in tests/data (400 s of record 205) as N beds at once, as fast as the
monitor takes them, through the full pipeline with the shipped real-ECG model: ``--learn 0``
(population threshold: plain losses) against ``--learn 60`` (each bed learns for 60 s, then every
beat is scored against its own offset, with the rhythm and noise watches), alternated ``--rounds``
times so that both see the same machine state.  Prints each run and the ratio of the medians.

    .venv/bin/python benchmarks/learning.py --beds 64 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from ecgmon.evaluation.evaluator import Evaluator
from ecgmon.models.checkpoint import load
from ecgmon.models.records import read
from ecgmon.monitor.app import build
from ecgmon.monitor.config import MonitorConfig
from ecgmon.monitor.learning import LearningConfig

EXCERPT = Path(__file__).resolve().parents[1] / "tests" / "data" / "mitdb" / "205x"


def run(beds: int, learn_s: float, threads: int | None) -> tuple[float, dict[str, object]]:
    rec = read(EXCERPT)
    recs = [dataclasses.replace(rec, name=f"bed{i:03d}") for i in range(beds)]
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as devnull:
        cfg = MonitorConfig(source="record", speed=None, ui=False, device="cpu", threads=threads,
                            journal=Path(tmp) / "j.jsonl", learn_state=None, learning=LearningConfig(learn_s=learn_s))
        b = build(cfg, ckpt=load("mitdb"), out=devnull, recordings=recs, truth=Evaluator)
        t0 = time.perf_counter()
        asyncio.run(b.monitor.run(b.source))
        wall = time.perf_counter() - t0
        b.monitor.close()
        s = b.monitor.summary()
    return b.monitor.stats.beats / wall, s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beds", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--learn", type=float, default=60.0, help="learning period of the 'on' runs, seconds")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    got: dict[str, list[float]] = {"off": [], "on": []}
    for r in range(a.rounds):
        for mode, learn in (("off", 0.0), ("on", a.learn)):
            rate, s = run(a.beds, learn, a.threads)
            got[mode].append(rate)
            lr = s.get("learning")
            learnt = lr.get("beds_learnt", "-") if isinstance(lr, dict) else "-"
            print(f"round {r + 1} learning {mode:3s}: {s['beats']} beats, {rate:7.0f} beats/s (beds learnt {learnt})",
                  flush=True)
    off, on = statistics.median(got["off"]), statistics.median(got["on"])
    print(f"\n{a.beds} beds of the 205 excerpt, median of {a.rounds}: learning off {off:.0f} beats/s, "
          f"on {on:.0f} beats/s: on/off {on / off:.3f} ({100 * (on / off - 1):+.1f} %)")


if __name__ == "__main__":
    main()

"""Scoring throughput of the shipped model: one beat per call (the classic tutorials' loop) vs batched.

    .venv/bin/python benchmarks/bench_scoring.py [--device cpu|cuda] [--beats N] [--repeats R]

Both are measured in the same run on the same beats (the product test split, tiled);
each figure is the median of ``--repeats`` timed passes after a warm-up.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from ecgmon.models.checkpoint import load
from ecgmon.models.data import make_split
from ecgmon.models.scorer import Scorer


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--beats", type=int, default=2000, help="beats scored in each batched pass")
    ap.add_argument("--single", type=int, default=200, help="beats scored one at a time in each pass")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batches", default="1,16,64,256,1024,4096")
    a = ap.parse_args()
    ckpt = load()
    scorer = Scorer(ckpt.model, device=a.device)
    x = make_split("product").part("test").x
    x = np.resize(x, (max(a.beats, 4096), x.shape[1])).astype(np.float32)
    print(f"machine: {platform.machine()} {platform.processor() or ''} | torch {torch.__version__} "
          f"threads {torch.get_num_threads()} | device {scorer.device_name} | model {ckpt.name} {ckpt.model.cfg}")
    one = torch.as_tensor(x[: a.single])
    model = ckpt.model.to(scorer.device).eval()

    def classic() -> None:  # the tutorials' loop: one beat per model call
        with torch.no_grad():
            for i in range(len(one)):
                xb = one[i:i + 1].to(scorer.device)
                float(torch.nn.functional.mse_loss(model(xb), xb))

    t1 = timed(classic, a.repeats)
    single_rate = len(one) / t1
    print(f"one at a time (classic loop) : {single_rate:9.1f} beats/s  ({t1 / len(one) * 1000:.2f} ms per beat)")
    default_batch = scorer.max_batch
    for b in (int(v) for v in a.batches.split(",")):
        n = max(b, min(a.beats, 4096) // b * b)
        scorer.max_batch = b
        t = timed(lambda n=n: scorer.score(x[:n]), a.repeats)
        print(f"model calls of {b:5d} beats  : {n / t:9.1f} beats/s  ({t / (n / b) * 1000:8.2f} ms per call)  "
              f"x{(n / t) / single_rate:5.1f} vs one at a time")
    scorer.max_batch = default_batch
    t = timed(lambda: scorer.score(x[: a.beats]), a.repeats)
    rate = a.beats / t
    print(f"Scorer as the monitor uses it (micro-batch of {a.beats}, model calls of {default_batch}): "
          f"{rate:.0f} beats/s = {rate / single_rate:.1f}x the one-at-a-time loop")


if __name__ == "__main__":
    main()

"""bfloat16 vs float32 Scorer at several call sizes and thread counts (same beats, same run; best of 3 passes).

    .venv/bin/python benchmarks/bf16_batches.py [--beats 4096] [--threads 1,2] [--batches 64,256,1024]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from flops import machine

from ecgmon.models.checkpoint import load
from ecgmon.models.data import make_split
from ecgmon.models.scorer import Scorer, bf16_supported


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beats", type=int, default=4096)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batches", default="64,256,1024")
    a = ap.parse_args()
    print(f"machine: {machine()}")
    if not bf16_supported():
        print("this CPU has no native bfloat16")
        return
    ck = load()
    x = np.resize(make_split("product").part("test").x, (a.beats, 140)).astype(np.float32)
    scorers = {p: Scorer(ck.model, device="cpu", precision=p) for p in ("float32", "bfloat16")}
    for th in (int(v) for v in a.threads.split(",")):
        torch.set_num_threads(th)
        for b in (int(v) for v in a.batches.split(",")):
            rates = {}
            for p, s in scorers.items():
                s.max_batch = b
                s.score_batch(x[:b])
                best = min(_t(s, x) for _ in range(3))
                rates[p] = a.beats / best
            print(f"{th} thread(s), calls of {b:5d}: float32 {rates['float32']:8.0f} beats/s, bfloat16 "
                  f"{rates['bfloat16']:8.0f} beats/s ({rates['bfloat16'] / rates['float32']:.2f}x)")


def _t(s: Scorer, x: np.ndarray) -> float:
    t = time.perf_counter()
    s.score_batch(x)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()

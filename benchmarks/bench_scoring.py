"""Scoring throughput of the shipped model: one beat per call (the classic tutorials' loop) vs batched, bare
model calls vs the ``Scorer``, float32 vs bfloat16, against the model's FLOP limit measured in the same run.

    .venv/bin/python benchmarks/bench_scoring.py [--device cpu|cuda] [--threads T] [--beats N] [--repeats R]

Everything is measured in the same run on the same beats (the product test split, tiled); each figure is the
median of ``--repeats`` timed passes after a warm-up.  ``--threads``: torch's CPU threads (default: the
monitor's, every core but one); the FLOP limit is the float32 GEMM peak on as many threads
(``benchmarks/flops.py``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from flops import limit_lines

from ecgmon.core.limits import default_threads
from ecgmon.models.autoencoder import reconstruction_loss
from ecgmon.models.checkpoint import load
from ecgmon.models.data import make_split
from ecgmon.models.scorer import Scorer, bf16_supported


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
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core but one)")
    a = ap.parse_args()
    threads = a.threads or default_threads()
    ckpt = load()
    scorer = Scorer(ckpt.model, device=a.device, threads=threads)
    limit, lines = limit_lines(ckpt.model.cfg, threads)
    for line in lines:
        print(line)
    x = make_split("product").part("test").x
    x = np.resize(x, (max(a.beats, 4096), x.shape[1])).astype(np.float32)
    print(f"device {scorer.device_name} | model {ckpt.name} {ckpt.model.cfg}")
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
              f"x{(n / t) / single_rate:5.1f} vs one at a time, {100 * n / t / limit:4.1f} % of the FLOP limit")
    scorer.max_batch = default_batch
    xt = torch.as_tensor(x[: a.beats]).to(scorer.device)

    @torch.inference_mode()
    def bare() -> None:  # the model alone, in the Scorer's call size: the ceiling for the Scorer's own work
        for i in range(0, len(xt), default_batch):
            model(xt[i:i + default_batch])

    @torch.inference_mode()
    def bare_loss() -> None:  # and the residual and the loss, on the device
        for i in range(0, len(xt), default_batch):
            xb = xt[i:i + default_batch]
            r = model(xb)
            _ = xb - r, reconstruction_loss(xb, r)

    rows = [("bare model calls", timed(bare, a.repeats)), ("bare calls + residual + loss", timed(bare_loss, a.repeats)),
            ("Scorer.score_batch (the monitor's)", timed(lambda: scorer.score_batch(x[: a.beats]), a.repeats))]
    if scorer.device.type == "cpu" and bf16_supported():
        s16 = Scorer(ckpt.model, device="cpu", precision="bfloat16")
        rows.append(("Scorer.score_batch, bfloat16", timed(lambda: s16.score_batch(x[: a.beats]), a.repeats)))
    for name, t in rows:
        rate = a.beats / t
        print(f"{name:36s}: {rate:9.1f} beats/s (calls of {default_batch}) = {100 * rate / limit:4.1f} % of the fp32 "
              f"FLOP limit, x{rate / single_rate:.1f} vs one at a time")


if __name__ == "__main__":
    main()

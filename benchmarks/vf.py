"""Cost of the VF detector: CPU seconds per second of signal for a ward of beds, one vectorised bank per rate.

    .venv/bin/python benchmarks/vf.py [--beds 512] [--fs 250] [--seconds 60] [--chunk-s 0.25]

Synthetic signal (seeded noise plus a 5 Hz wave: the cost does not depend on the content), pushed in
``--chunk-s`` chunks of every bed at once, as a live ward arrives; also the same beds as single-bed
:class:`VFDetector` objects (the per-bed path) over a shorter stretch.  Prints the share of one core that
real time needs.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from ecgmon.segmentation.vf import VFBank, VFDetector


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--beds", type=int, default=512)
    ap.add_argument("--fs", type=float, default=250.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--chunk-s", type=float, default=0.25)
    ap.add_argument("--single-seconds", type=float, default=10.0, help="signal for the per-bed objects")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    n = round(a.chunk_s * a.fs)
    chunks = round(a.seconds / a.chunk_s)
    t = np.arange(n * chunks) / a.fs
    base = 0.5 * np.sin(2 * np.pi * 5.0 * t)
    x = base[None, :] + 0.1 * rng.standard_normal((a.beds, len(t)))
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs; "
          f"{a.beds} beds at {a.fs:g} Hz, {a.chunk_s:g} s chunks, {a.seconds:g} s of signal")
    bank = VFBank(a.fs, a.beds)
    c0, w0 = time.process_time(), time.perf_counter()
    windows = 0
    for k in range(chunks):
        ends = bank.push(x[:, k * n:(k + 1) * n])[0]
        windows += len(ends) * a.beds
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    print(f"VFBank (all beds, one pass)    : {cpu:.3f} CPU s, {wall:.3f} s wall for {a.seconds:g} s -> "
          f"{100 * cpu / a.seconds:.2f} % of a core in real time ({windows} windows)")
    m = round(a.single_seconds / a.chunk_s)
    dets = [VFDetector(a.fs) for _ in range(a.beds)]
    c0 = time.process_time()
    for k in range(m):
        for b, d in enumerate(dets):
            d.push(x[b, k * n:(k + 1) * n])
    cpu = time.process_time() - c0
    print(f"VFDetector (one object per bed): {cpu:.3f} CPU s for {a.single_seconds:g} s -> "
          f"{100 * cpu / a.single_seconds:.2f} % of a core in real time")


if __name__ == "__main__":
    main()

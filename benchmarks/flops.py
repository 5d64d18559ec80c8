"""The machine and the model's FLOP limit, measured now: GEMM peak on this CPU and the model's FLOPs per beat.

    .venv/bin/python benchmarks/flops.py [--threads N] [--checkpoint NAME]

The limit is the beats/s a scorer would reach if every multiply-add of the model ran at the large-GEMM peak
of ``torch.mm`` (float32, and bfloat16 where the CPU has it) on ``--threads`` threads: the model's FLOPs per
beat are counted from its configuration (the LSTM gates' matrix products, the embedding and head layers;
element-wise gate arithmetic not counted).  Imported by the other benchmarks, which print it in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from ecgmon.models.autoencoder import AEConfig
from ecgmon.models.checkpoint import load


def machine() -> str:
    """One line: CPU model, cores, what torch's CPU kernels can use, torch version."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
            f.seek(0)
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        flags = []
    isa = [x for x in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8", "avx512_vnni") if x in flags]
    return (f"{name}, {os.cpu_count()} cores, {' '.join(isa) or 'no AVX'}; torch {torch.__version__} "
            f"(cpu capability {torch.backends.cpu.get_cpu_capability()}), python {platform.python_version()}")


def model_flops(cfg: AEConfig) -> float:
    """FLOPs (a multiply-add = 2) of one beat through the LSTM autoencoder."""
    h, e, c, t = cfg.hidden, cfg.embedding, cfg.channels, cfg.seq_len
    dirs = 2 if cfg.bidirectional else 1
    enc = dirs * t * 8 * h * (c + h) + (cfg.enc_layers - 1) * dirs * t * 8 * h * (dirs * h + h)
    dec = t * 8 * h * (e + h) + (cfg.dec_layers - 1) * t * 8 * h * (2 * h)
    return float(enc + 2 * dirs * h * e + dec + t * 2 * h * c)


def gemm_peak(threads: int, dtype: torch.dtype = torch.float32, n: int = 2048, seconds: float = 1.0) -> float:
    """FLOP/s of ``torch.mm`` of two n x n matrices on ``threads`` threads (the best of repeated calls)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        torch.mm(a, b)
        best, end = float("inf"), time.perf_counter() + seconds
        while time.perf_counter() < end:
            t = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t)
        return 2 * n**3 / best
    finally:
        torch.set_num_threads(before)


def limit_lines(cfg: AEConfig, threads: int) -> tuple[float, list[str]]:
    """(float32 limit in beats/s, lines to print): the machine, GEMM peaks and the model's limits."""
    fl = model_flops(cfg)
    p32 = gemm_peak(threads)
    lines = [f"machine: {machine()}",
             f"model: {fl / 1e6:.1f} MFLOP per beat; float32 GEMM peak on {threads} thread(s) {p32 / 1e9:.0f} GFLOP/s "
             f"-> FLOP limit {p32 / fl:,.0f} beats/s"]
    try:
        p16 = gemm_peak(threads, torch.bfloat16)
        lines.append(f"bfloat16 GEMM peak on {threads} thread(s) {p16 / 1e9:.0f} GFLOP/s -> {p16 / fl:,.0f} beats/s")
    except RuntimeError as e:  # pragma: no cover - a CPU build without bf16 matmul
        lines.append(f"bfloat16 GEMM: not available ({e})")
    return p32 / fl, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--checkpoint", default=None, help="checkpoint name (default: the shipped product model)")
    a = ap.parse_args()
    ck = load(a.checkpoint) if a.checkpoint else load()
    for line in limit_lines(ck.model.cfg, a.threads)[1]:
        print(line)


if __name__ == "__main__":
    main()

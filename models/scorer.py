"""Batched inference: ``Scorer.score_batch(beats[N, *shape]) -> Scored(losses[N], residuals[N, *shape])``
(``Scorer.score`` for losses alone) on a chosen device.

One model call serves a whole micro-batch of beats from every patient; the monitor
calls this from a worker thread, never from the event loop.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

import numpy as np
import torch

from ecgmon.models.autoencoder import LSTMAutoencoder, reconstruction_loss


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error the user can act on."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(device)


@torch.inference_mode()
def losses(model: LSTMAutoencoder, x: np.ndarray | torch.Tensor, *, device: torch.device | None = None,
           batch: int = 1024) -> np.ndarray:
    """Reconstruction loss of each beat in ``x`` (N, 140), in batches; float64 (N,)."""
    model.eval()
    device = device or next(model.parameters()).device
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    out = [reconstruction_loss(xb := xt[i:i + batch].to(device), model(xb)).cpu() for i in range(0, len(xt), batch)]
    return torch.cat(out).double().numpy() if out else np.zeros(0)


PRECISIONS = ("float32", "bfloat16")
# rows per model call at least (:meth:`Scorer.score_batch` pads smaller calls with flat beats): torch's CPU kernels
# take another path for calls of 1-5 rows, whose results differ from a larger call's in the last bit (a loss by
# ~1e-7), so a beat's loss depended on how many beats shared its call, that is on the machine's load; from 6 rows
# on, a row's result is the same whatever the call's size and the row's place in it (tests/test_determinism.py).
# Costs ~0.6 ms per call of 1 beat on one thread (1.3 -> 2.0 ms)
MIN_ROWS = 8


def bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 matrix products natively (AVX-512 BF16 or AMX): elsewhere torch emulates them,
    slower than float32."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


class Scorer:
    """Reconstruction loss of beats, in chunks of at most ``max_batch`` beats per model call.

    On the CPU the LSTM's throughput peaks around 64 beats per call and falls for larger
    calls (its per-step activations leave the cache; ``benchmarks/bench_scoring.py`` and
    BENCHMARKS.md have the figures), hence the CPU default of 64.  A GPU wants large calls.

    ``precision="bfloat16"`` (CPU only; ``ValueError`` where the CPU lacks native bfloat16): the model's weights
    and activations in bfloat16, inputs, residuals and losses in float32.  On an AVX-512 BF16/AMX CPU it gains
    nothing at the CPU's calls of 64 on one thread, 1.1-1.7x at calls of 256-1,024 (BENCHMARKS.md); losses move
    by up to ~3e-2 on abnormal beats (median 5e-4); the verdicts at the checkpoint's threshold equal float32's
    on >= 99.9 % of beats (``tests/test_scorer_precision.py``).  Not the monitor's default: per-bed learning
    reads the residuals, whose rounding was not validated.
    """

    def __init__(self, model: LSTMAutoencoder, *, device: str = "auto", max_batch: int | None = None,
                 threads: int | None = None, precision: str = "float32") -> None:
        self.device = resolve_device(device)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision == "bfloat16" and (self.device.type != "cpu" or not bf16_supported()):
            raise ValueError("precision bfloat16 needs a CPU with AVX-512 BF16 or AMX (torch's mkldnn bf16 support)")
        self.precision = precision
        self.dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        self.model = model.to(self.device).eval()
        if self.dtype != torch.float32:
            self.model = copy.deepcopy(self.model).to(self.dtype)  # the caller's model stays float32
        self.max_batch = max_batch or (64 if self.device.type == "cpu" else 4096)
        if threads is not None and self.device.type == "cpu":
            torch.set_num_threads(threads)
        if self.device.type == "cuda":
            # full float32 in cuDNN's LSTM and the linear layers: TF32 (torch's cuDNN default) rounds
            # the products to 10-bit mantissas and moves losses by ~1e-3, enough to flip verdicts near
            # the threshold the model was calibrated for on the CPU
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        self._lock = threading.Lock()  # one model call at a time; torch modules are not re-entrant-safe

    @property
    def device_name(self) -> str:
        if self.device.type == "cuda":
            return f"cuda:{torch.cuda.get_device_name(self.device)}"
        bf = ", bfloat16" if self.dtype == torch.bfloat16 else ""
        return f"cpu ({torch.get_num_threads()} threads{bf})"

    @property
    def shape(self) -> tuple[int, ...]:
        """One beat's shape as the model reads it: (140,) or (channels, 140)."""
        c = self.model.cfg
        return (c.seq_len,) if c.channels == 1 else (c.channels, c.seq_len)

    def _check(self, beats: np.ndarray) -> np.ndarray:
        x = np.asarray(beats, dtype=np.float32)
        if x.shape[1:] != self.shape:
            raise ValueError(f"beats must have shape (N, {', '.join(map(str, self.shape))}), got {x.shape}")
        return x

    def score(self, beats: np.ndarray) -> np.ndarray:
        """Losses (float64, shape (N,)) of ``beats`` (N, *shape)."""
        x = self._check(beats)
        if self.dtype != torch.float32:
            return self.score_batch(x).losses
        with self._lock:
            return losses(self.model, x, device=self.device, batch=self.max_batch)

    def warm_up(self) -> None:
        """One model call on a batch of flat beats, before the first real one: torch's one-time set-up (kernel
        choice, allocations) took seconds on a loaded machine, so a monitor's first verdicts were late (a live
        monitor raised 'monitor behind' at every start)."""
        self.score_batch(np.zeros((min(self.max_batch, 64), *self.shape), np.float32))

    def score_batch(self, beats: np.ndarray) -> Scored:
        """Each beat's loss and residual ``x - reconstruction`` from one model call: what every bed's model
        needs (:class:`ecgmon.monitor.bedmodel.BedModel`: the loss against the population threshold, or the
        residual against the bed's learnt offset)."""
        x = self._check(beats)
        with self._lock, torch.inference_mode():
            self.model.eval()
            xt = torch.as_tensor(x)
            res, lo = [], []
            for i in range(0, len(xt), self.max_batch):
                xb = xt[i:i + self.max_batch].to(self.device)
                n = len(xb)
                if n < MIN_ROWS:  # padded with flat beats, so that a beat's result does not depend on its call's size
                    xb = torch.cat([xb, xb.new_zeros((MIN_ROWS - n, *xb.shape[1:]))])
                recon = self.model(xb.to(self.dtype)).float()
                res.append((xb - recon)[:n])
                lo.append(reconstruction_loss(xb, recon)[:n])
        if not res:
            return Scored(np.zeros(0), np.zeros((0, *self.shape), np.float32))
        return Scored(torch.cat(lo).cpu().double().numpy(), torch.cat(res).cpu().numpy())


@dataclass(frozen=True, slots=True)
class Scored:
    """What one model call gives for N beats: ``losses`` float64 (N,), ``residuals`` float32 (N, *shape)."""

    losses: np.ndarray
    residuals: np.ndarray

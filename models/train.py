"""Mini-batch training of the LSTM autoencoder on normal beats, with early stopping.

Augmentation makes the model robust to what a live segmenter does to a beat: each end
of the cut can be a little early or late (so the beat is shifted and stretched slightly
and picks up a neighbour's samples), and the lead adds noise.  Every augmented beat is
z-normalised again, as the segmenter does.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ecgmon.models.autoencoder import AEConfig, LSTMAutoencoder, reconstruction_loss
from ecgmon.models.calibrate import Rule, calibrate
from ecgmon.models.checkpoint import Checkpoint, versions
from ecgmon.models.data import NORMAL, Split
from ecgmon.models.scorer import losses, resolve_device


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Optimisation settings.  ``max_shift``: cut jitter in samples of the 140-sample beat."""

    epochs: int = 300
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    patience: int = 40
    seed: int = 0
    max_shift: float = 2.5  # samples of the 140-sample beat, at each end independently (ECG5000 beats)
    noise: float = 0.05
    gain: float = 0.1  # window beats: relative amplitude jitter (the bed's amplitude estimate wanders)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(slots=True)
class History:
    """Per-epoch mean losses (MSE per beat) and the epoch whose weights were kept."""

    train: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0


def znorm(x: torch.Tensor) -> torch.Tensor:
    """Z-normalise each row (ECG5000's per-beat normalisation); flat rows stay zero."""
    mu = x.mean(dim=-1, keepdim=True)
    sd = x.std(dim=-1, keepdim=True, unbiased=False).clamp_min(1e-8)
    return (x - mu) / sd


def augment(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target) for denoising training that also teaches the model segmentation jitter.

    A live segmenter cuts each beat from one fiducial to the next; each fiducial can be a
    little early or late.  So the beat is placed between random neighbours from the same
    batch (their last and first ``pad`` samples), and the cut starts and ends at independent
    random offsets of up to ``max_shift`` samples (continuous; 0 disables), then is
    resampled to 140 samples and z-normalised again: that is the target.  The input is the
    target plus white noise (``noise``), so the model learns to reconstruct the clean beat.
    """
    b, n = x.shape
    if cfg.max_shift > 0:
        pad = int(np.ceil(cfg.max_shift)) + 1
        prev = x[torch.randint(0, b, (b,), generator=gen, device=x.device)]
        nxt = x[torch.randint(0, b, (b,), generator=gen, device=x.device)]
        ext = torch.cat([prev[:, -pad:], x, nxt[:, :pad]], dim=1)
        s = (torch.rand(b, 1, generator=gen, device=x.device) * 2 - 1) * cfg.max_shift
        e = (torch.rand(b, 1, generator=gen, device=x.device) * 2 - 1) * cfg.max_shift
        frac_pos = torch.arange(n, dtype=x.dtype, device=x.device).expand(b, n) / n
        pos = pad + s + frac_pos * (n + e - s)
        lo = pos.floor().long().clamp(0, ext.shape[1] - 2)
        w = pos - lo
        y = torch.gather(ext, 1, lo) * (1 - w) + torch.gather(ext, 1, lo + 1) * w
    else:
        y = x
    y = znorm(y)
    return y + torch.randn(b, n, generator=gen, device=x.device) * cfg.noise, y


def augment_window(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target) for window beats (B, 2, 140): the wave's amplitude jittered by ``gain`` (the
    target too: the bed's amplitude scale is an estimate), white noise of ``noise`` on the input."""
    y = x.clone()
    y[:, 0] *= 1 + cfg.gain * torch.randn(len(x), 1, generator=gen, device=x.device)
    return y + torch.randn(y.shape, generator=gen, device=x.device) * cfg.noise, y


def train(
    x_train: np.ndarray,
    x_val: np.ndarray,
    *,
    model_cfg: AEConfig = AEConfig(),
    cfg: TrainConfig = TrainConfig(),
    device: str = "auto",
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> tuple[LSTMAutoencoder, History]:
    """Train on ``x_train`` (normal beats, (N, 140), or window beats (N, 2, 140) when ``model_cfg.channels``
    is 2); early-stop on the validation normal beats' loss.

    Returns the model with the weights of the best validation epoch, on the CPU.
    """
    dev = resolve_device(device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    model = LSTMAutoencoder(model_cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * math.ceil(len(x_train) / cfg.batch_size)
    )
    xt = torch.as_tensor(np.asarray(x_train, dtype=np.float32), device=dev)
    aug = augment if model_cfg.channels == 1 else augment_window
    hist = History()
    best, best_state, stale = math.inf, copy.deepcopy(model.state_dict()), 0
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen, device=dev)
        total = 0.0
        for i in range(0, len(xt), cfg.batch_size):
            xin, target = aug(xt[perm[i:i + cfg.batch_size]], cfg, gen)
            loss = reconstruction_loss(target, model(xin)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item() * len(target)
        hist.train.append(total / len(xt))
        hist.val.append(float(losses(model, x_val, device=dev).mean()))
        if hist.val[-1] < best:
            best, best_state, stale, hist.best_epoch = hist.val[-1], copy.deepcopy(model.state_dict()), 0, epoch
        else:
            stale += 1
        if on_epoch:
            on_epoch(epoch, hist.train[-1], hist.val[-1])
        if stale >= cfg.patience:
            break
    hist.seconds = time.perf_counter() - t0
    model.load_state_dict(best_state)
    return model.cpu().eval(), hist


def fit(
    split: Split,
    *,
    model_cfg: AEConfig = AEConfig(),
    cfg: TrainConfig = TrainConfig(),
    rule: Rule = "max-f1",
    param: float | None = None,
    device: str = "auto",
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> Checkpoint:
    """Train on ``split``'s normal training beats and calibrate on its validation beats.

    The validation part drives early stopping (its normal beats) and calibration (all of it).  The test
    part is never touched here: the caller scores it once, after every choice is made
    (:func:`ecgmon.evaluation.product.test_report`), for the report stored in the checkpoint.
    """
    val = split.part("val")
    model, hist = train(split.train_normal, val.x[val.y == NORMAL], model_cfg=model_cfg, cfg=cfg,
                        device=device, on_epoch=on_epoch)
    cal = calibrate(losses(model, val.x), val.y, rule=rule, param=param)
    return Checkpoint(
        model=model, threshold=cal.threshold, calibration=cal.to_dict(),
        split={"protocol": split.protocol, "seed": split.seed, "sha256": split.digest(),
               "n_train_normal": len(split.train_normal), "n_val": len(split.val), "n_test": len(split.test)},
        metrics={}, versions=versions(),
        train={**cfg.to_dict(), "device": device, "epochs_run": len(hist.train), "best_epoch": hist.best_epoch,
               "seconds": round(hist.seconds, 1), "train_loss": hist.train, "val_loss": hist.val},
    )

"""Checkpoints: config, weights, threshold, calibration, split, metrics and versions in one file.

A checkpoint is a plain dict of strings, numbers, lists and tensors, so it loads with
``torch.load(..., weights_only=True)`` (no pickle code execution).  It carries a
sha256 digest over its metadata and every tensor's bytes; a file whose digest does
not match (edited, truncated, corrupted) is refused with :class:`CheckpointError`.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgmon.models.autoencoder import AEConfig, LSTMAutoencoder
from ecgmon.models.data import Split, make_split
from ecgmon.segmentation.represent import Representation

FORMAT = "ecgmon-checkpoint/1"
DEFAULT_NAME = "ecg_ae_product.pt"
#: shipped checkpoints by short name (``--checkpoint mitdb``)
SHIPPED = {"ecg5000": DEFAULT_NAME, "ucr": "ecg_ae_ucr.pt", "mitdb": "ecg_ae_mitdb.pt"}


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, tampered with, or from an incompatible version."""


@dataclass(slots=True)
class Checkpoint:
    """A trained model with the threshold it is judged against and everything needed to audit it."""

    model: LSTMAutoencoder
    threshold: float
    calibration: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    # the beat representation it was trained on (segmentation.represent); {} = ECG5000's own
    representation: dict[str, Any] = field(default_factory=dict)
    # per-bed learning it was calibrated for ({"method": "residual-median", "learn_s": ...}); {} = none
    learning: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    sha256: str = field(default="", repr=False)  # the file's digest (what a bed's learnt state belongs to)

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else "(unsaved)"

    @property
    def rep(self) -> Representation:
        return Representation.from_dict(self.representation)

    @property
    def bed_margin(self) -> float | None:
        """Added to a bed's learnt loss shift to make its threshold; None: the model has no per-bed learning."""
        m = self.calibration.get("bed_margin") if self.learning else None
        return None if m is None else float(m)
    def data_split(self, data: str | Path | None = None) -> Split:
        """The split this checkpoint was trained, calibrated and measured on, rebuilt and verified.

        Raises :class:`CheckpointError` when the data gives a different split (its sha256 differs):
        the stored threshold and metrics would not be honest on it.
        """
        split = make_split(self.split.get("protocol", "product"), seed=int(self.split.get("seed", 0)), data=data)
        if self.split.get("sha256") and split.digest() != self.split["sha256"]:
            raise CheckpointError(
                f"the data split differs from the one {self.name} was trained on (split sha256 "
                f"{split.digest()[:12]} != {self.split['sha256'][:12]}); its threshold and metrics would not be "
                "honest on it"
            )
        return split


def versions() -> dict[str, str]:
    def v(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {"ecgmon": v("ecgmon"), "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def _digest(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode())
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write ``ckpt`` to ``path`` (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "config": ckpt.model.cfg.to_dict(),
        "threshold": float(ckpt.threshold),
        "calibration": ckpt.calibration,
        "split": ckpt.split,
        "metrics": ckpt.metrics,
        "train": ckpt.train,
        "versions": ckpt.versions or versions(),
        "representation": ckpt.representation,
        "learning": ckpt.learning,
    }
    state = {k: v.detach().cpu() for k, v in ckpt.model.state_dict().items()}
    # round-trip the metadata through JSON so that only plain types reach torch.save
    payload = {"meta": json.loads(json.dumps(meta, default=float)), "state": state}
    payload["sha256"] = ckpt.sha256 = _digest(payload["meta"], state)
    torch.save(payload, path)
    ckpt.path = str(path)
    return path


def default_path(name: str = DEFAULT_NAME) -> Path:
    """A pretrained checkpoint shipped inside the package (ECG5000's product protocol by default)."""
    return Path(str(resources.files("ecgmon.models").joinpath("assets", name)))


def load(path: str | Path | None = None) -> Checkpoint:
    """Load a checkpoint (the shipped one when ``path`` is None) with ``weights_only=True``.

    Raises :class:`CheckpointError` with the file name and the problem.
    """
    if path is not None and str(path) in SHIPPED:
        path = default_path(SHIPPED[str(path)])
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe files
        # torch's own text for a file it will not unpickle advises weights_only=False, which would run whatever code
        # the file holds: its first line only, and what to do instead
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        if "weights only load failed" in first.lower():
            first = ("not a torch file, a damaged one, or one holding objects other than tensors and plain values "
                     "(never loaded: a checkpoint is read without running code)")
        raise CheckpointError(f"{path}: not a readable ecgmon checkpoint ({type(err).__name__}: {first[:300]}); "
                              "train one with `ecgmon train`, or pass a shipped name (ecg5000, mitdb)") from err
    if not isinstance(payload, dict) or not {"meta", "state", "sha256"} <= payload.keys():
        raise CheckpointError(f"{path}: not an ecgmon checkpoint (missing meta/state/sha256)")
    meta, state = payload["meta"], payload["state"]
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {meta.get('format')!r} is not supported (expected {FORMAT!r})")
    if _digest(meta, state) != payload["sha256"]:
        raise CheckpointError(f"{path}: sha256 digest mismatch: the file was modified or corrupted")
    try:
        model = LSTMAutoencoder(AEConfig(**meta["config"]))
        model.load_state_dict(state)
        Representation.from_dict(meta.get("representation"))
    except (TypeError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"{path}: weights do not match the stored model config ({err})") from err
    return Checkpoint(
        model=model.eval(), threshold=float(meta["threshold"]), calibration=meta.get("calibration", {}),
        split=meta.get("split", {}), metrics=meta.get("metrics", {}), train=meta.get("train", {}),
        versions=meta.get("versions", {}), representation=meta.get("representation") or {},
        learning=meta.get("learning") or {}, path=str(path), sha256=str(payload["sha256"]),
    )

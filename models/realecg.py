"""The real-ECG model: fitted on annotated records (the margin calibrated through the live pipeline by
:mod:`ecgmon.evaluation.crossval`, which also cross-validates it by record).

``fit(recordings)`` then ``set_bed_margin`` (``ecgmon train --protocol mitdb``, composed by
:func:`ecgmon.evaluation.crossval.fit_and_calibrate`):

1. beats are cut from every record by the live segmenter in the ``window`` representation
   (:mod:`ecgmon.segmentation.represent`), exactly as the monitor will cut them;
2. the LSTM autoencoder (two channels: the window and its RR prematurity) is trained on up to
   ``max_beats`` normal (AAMI N) beats drawn from all records, ``val_frac`` of them held for the loss
   curve;
3. the population threshold (``--learn 0``) and the per-bed margin are chosen on the same records,
   after their learning period, by one rule fixed in advance: flag ``v_target`` of their V beats.  The
   margin is measured through the live pipeline (each record a bed that learns for ``learn_s``), so it
   is calibrated on exactly what the monitor computes.

``folds_of(recordings, k)``: the record-level folds of ``ecgmon evaluate --protocol mitdb --cv K``, stratified
by database (the folder each record was read from), so DS1 and SVDB records share every fold.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ecgmon.core.limits import LEARN_S
from ecgmon.models.autoencoder import AEConfig
from ecgmon.models.checkpoint import Checkpoint, versions
from ecgmon.models.records import CutBeats, Recording, cut_beats
from ecgmon.models.scorer import losses
from ecgmon.models.train import TrainConfig, train
from ecgmon.segmentation.represent import Representation

LEARNING_METHOD = "residual-median"  # see ecgmon.monitor.learning


@dataclass(frozen=True, slots=True)
class RealConfig:
    max_beats: int = 20000  # normal training beats drawn from the records
    val_frac: float = 0.1
    epochs: int = 3
    hidden: int = 64
    embedding: int = 32
    noise: float = 0.03
    gain: float = 0.1
    seed: int = 0
    v_target: float = 0.95  # calibration: the threshold flags this share of the records' V beats
    min_v: int = 20  # fewer V beats than this: the threshold flags 1 - n_quantile of N beats instead
    n_quantile: float = 0.99
    learn_s: float = LEARN_S
    rep: Representation = Representation(kind="window")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["rep"] = self.rep.to_dict()
        return d


def choose(values: np.ndarray, classes: np.ndarray, cfg: RealConfig) -> tuple[float, str]:
    """The threshold on ``values`` that flags ``v_target`` of the V beats (or ``1 - n_quantile`` of N)."""
    v, n = values[classes == "V"], values[classes == "N"]
    if len(v) >= cfg.min_v:
        return float(np.quantile(v, 1 - cfg.v_target)), f"flags {cfg.v_target:.0%} of {len(v)} V beats"
    if not len(n):
        raise ValueError("no N or V beats after the learning period to calibrate on")
    return float(np.quantile(n, cfg.n_quantile)), f"flags {1 - cfg.n_quantile:.0%} of {len(n)} N beats ({len(v)} V)"


def fit(recordings: list[Recording], cfg: RealConfig = RealConfig(), *, device: str = "cpu",
        databases: Mapping[str, str] | None = None, cuts: Mapping[str, CutBeats] | None = None,
        threads: int | None = None, on_epoch: Callable[[int, float, float], None] | None = None,
        log: Callable[[str], None] = lambda s: None) -> Checkpoint:
    """Train the real-ECG model on ``recordings`` and choose its population threshold (see the module docstring);
    the per-bed margin is 0 until :func:`set_bed_margin`.  ``databases``: record name -> the database (data
    folder) it came from (default :func:`database_of`), written into the checkpoint's ``split`` with each
    record's lead and sampling rate.  ``cuts``: record name -> its beats already cut in ``cfg.rep`` (as
    :func:`~ecgmon.models.records.cut_beats` cuts them; cross-validation cuts each record once for all folds).
    ``threads``: torch threads for training (default: every core)."""
    t0 = time.perf_counter()
    given = dict(cuts or {})
    cut = [given[r.name] if r.name in given else cut_beats(r, rep=cfg.rep) for r in recordings]
    normal = np.concatenate([c.x[c.label == "N"] for c in cut])
    rng = np.random.default_rng(cfg.seed)
    pick = rng.permutation(len(normal))[:cfg.max_beats]
    n_val = max(1, int(len(pick) * cfg.val_frac))
    x_val, x_train = normal[pick[:n_val]], normal[pick[n_val:]]
    log(f"{len(recordings)} records, {sum(len(c.x) for c in cut)} beats cut, {len(normal)} N; "
        f"training on {len(x_train)}, validation {len(x_val)}")
    mc = AEConfig(channels=cfg.rep.channels, hidden=cfg.hidden, embedding=cfg.embedding)
    tc = TrainConfig(epochs=cfg.epochs, patience=cfg.epochs, seed=cfg.seed, noise=cfg.noise, gain=cfg.gain,
                     batch_size=128)  # window beats: no cut jitter (train.augment_window)
    before = torch.get_num_threads()
    # training takes every core unless told (``threads``: on a shared machine more threads than free cores
    # spin at each step's barrier and run many times slower)
    torch.set_num_threads(threads or os.cpu_count() or 1)
    try:
        model, hist = train(x_train, x_val, model_cfg=mc, cfg=tc, device=device, on_epoch=on_epoch)
    finally:
        torch.set_num_threads(before)
    # the population threshold, on every record's beats after its learning period
    vals, cls = [], []
    for r, c in zip(recordings, cut, strict=True):
        after = c.index >= cfg.learn_s * r.fs
        vals.append(losses(model, c.x[after]))
        cls.append(c.label[after])
    threshold, pop_rule = choose(np.concatenate(vals), np.concatenate(cls), cfg)
    ckpt = Checkpoint(
        model=model, threshold=threshold,
        calibration={"rule": f"population: {pop_rule}", "bed_margin": 0.0},
        split=fitted_on(recordings, databases),
        train={**cfg.to_dict(), "device": device, "epochs_run": len(hist.train), "best_epoch": hist.best_epoch,
               "seconds": round(hist.seconds, 1), "train_loss": hist.train, "val_loss": hist.val,
               "n_train": len(x_train), "n_val": len(x_val)},
        versions=versions(), representation=cfg.rep.to_dict(),
        learning={"method": LEARNING_METHOD, "learn_s": cfg.learn_s})
    ckpt.train["total_seconds"] = round(time.perf_counter() - t0, 1)
    log(f"population threshold {threshold:.5f} ({pop_rule})")
    return ckpt


def set_bed_margin(ckpt: Checkpoint, rel: np.ndarray, classes: np.ndarray, cfg: RealConfig = RealConfig(),
                   *, seconds: float = 0.0) -> str:
    """Choose the per-bed margin by the same rule as the population threshold, on ``rel``: each matched beat's
    loss minus its bed's shift (the loss against its bed's learnt threshold with margin 0, as the live pipeline
    computes it), ``classes`` their AAMI classes; stored in ``ckpt.calibration``.  The rule, as text."""
    margin, bed_rule = choose(rel, classes, cfg)
    pop_rule = str(ckpt.calibration["rule"]).removeprefix("population: ")
    ckpt.calibration = {"rule": f"population: {pop_rule}; per bed: {bed_rule}", "bed_margin": margin,
                        "population_threshold": ckpt.threshold, "v_target": cfg.v_target}
    ckpt.train["total_seconds"] = round(float(ckpt.train.get("total_seconds", 0.0)) + seconds, 1)
    return bed_rule


def fitted_on(recordings: list[Recording], databases: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What a model was fitted on, for its checkpoint's ``split``: the records, each one's database, lead and
    sampling rate, and per database its records and leads.  ``lead``: the one lead played, or ``"mixed"``."""
    db = {r.name: (databases or {}).get(r.name, database_of(r)) for r in recordings}
    by_db: dict[str, dict[str, Any]] = {}
    for r in recordings:
        d = by_db.setdefault(db[r.name], {"records": [], "leads": [], "fs": []})
        d["records"].append(r.name)
        d["leads"] = sorted({*d["leads"], r.lead})
        d["fs"] = sorted({*d["fs"], float(r.fs)})
    leads = sorted({r.lead for r in recordings})
    return {"protocol": "mitdb", "records": [r.name for r in recordings],
            "lead": leads[0] if len(leads) == 1 else "mixed", "databases": by_db,
            "record_database": db, "record_lead": {r.name: r.lead for r in recordings}}


def database_of(rec: Recording) -> str:
    """The database a record belongs to: the name of the folder it was read from (``mitdb-ds1``, ``svdb-dev``)."""
    return rec.path.parent.name


def folds_of(recordings: list[Recording], k: int) -> list[list[Recording]]:
    """Record-level folds, stratified by database (:func:`database_of`): records sorted by (database, name),
    record ``i`` of that order in fold ``i % k``, so each fold holds about ``1/k`` of every database's records.
    Deterministic (no seed); with one database, the records sorted by name."""
    if not 2 <= k <= len(recordings):
        raise ValueError(f"--cv {k}: need 2 <= K <= {len(recordings)} (the number of records)")
    srt = sorted(recordings, key=lambda r: (database_of(r), r.name))
    return [srt[i::k] for i in range(k)]

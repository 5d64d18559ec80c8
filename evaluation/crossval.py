"""The real-ECG model's per-bed margin, calibrated through the live pipeline, and record-level cross-validation.

``fit_and_calibrate(recordings)`` (``ecgmon train --protocol mitdb``): :func:`ecgmon.models.realecg.fit`
trains the model and chooses its population threshold; then every record is played through the live
pipeline (:func:`ecgmon.evaluation.ec57.run_records`, each record a bed that learns for ``learn_s``) with
margin 0, so each judged beat's loss minus its threshold is its loss against its bed's learnt shift, and
the margin is chosen on those by the same rule (:func:`ecgmon.models.realecg.set_bed_margin`).  The margin
is calibrated on exactly what the monitor computes.

``cross_validate(recordings, k)`` (``ecgmon evaluate --protocol mitdb --cv K``): the records, sorted by
database (the folder each was read from, e.g. ``mitdb-ds1``, ``svdb-dev``) then name, are dealt into ``k``
folds (record ``i`` in fold ``i % k``: stratified by database, no seed); for each fold a model is fitted
and calibrated on the other folds' records only, then the fold's records are played through the EC57
evaluation.  Every record
is counted once, by a model that neither fitted nor chose anything on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ecgmon.core.limits import MATCH_WINDOW_S
from ecgmon.core.matching import match
from ecgmon.evaluation import ec57
from ecgmon.models.checkpoint import Checkpoint, save
from ecgmon.models.realecg import RealConfig, database_of, fit, folds_of, set_bed_margin
from ecgmon.models.records import CutBeats, Recording, cut_beats


def fit_and_calibrate(recordings: list[Recording], cfg: RealConfig = RealConfig(), *, device: str = "cpu",
                      threads: int | None = None, on_epoch: Callable[[int, float, float], None] | None = None,
                      cuts: Mapping[str, CutBeats] | None = None,
                      log: Callable[[str], None] = lambda s: None) -> Checkpoint:
    """Train the real-ECG model on ``recordings`` and calibrate its population threshold and per-bed margin
    (``cuts``: beats already cut, by record name, as for :func:`ecgmon.models.realecg.fit`)."""
    ckpt = fit(recordings, cfg, device=device, cuts=cuts, threads=threads, on_epoch=on_epoch, log=log)
    t0 = time.perf_counter()
    # through the live pipeline: with margin 0 a beat's threshold is its bed's shift
    beds = ec57.run_records(recordings, ckpt, device=device, threads=threads, learn_s=cfg.learn_s)
    rel, rel_cls = [], []
    for b in beds:
        t = cfg.learn_s * b.fs
        ref, rc = b.ref[b.ref >= t], b.ref_class[b.ref >= t]
        judged = b.judged if b.judged is not None else np.ones(len(b.det), dtype=bool)
        det, rel_loss = b.det[judged], (b.loss - b.threshold)[judged]  # the verdicts, against each bed's shift
        m = match(ref, det, MATCH_WINDOW_S * b.fs)
        hit = m >= 0
        rel.append(rel_loss[m[hit]])
        rel_cls.append(rc[hit])
    rule = set_bed_margin(ckpt, np.concatenate(rel), np.concatenate(rel_cls), cfg, seconds=time.perf_counter() - t0)
    log(f"threshold {ckpt.threshold:.5f}; bed margin {ckpt.bed_margin:.5f} ({rule})")
    return ckpt


def cross_validate(recordings: list[Recording], k: int, cfg: RealConfig = RealConfig(), *, device: str = "cpu",
                   threads: int | None = None, save_dir: Path | None = None, only: list[int] | None = None,
                   log: Callable[[str], None] = lambda s: None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-record EC57 counts, each record counted by the model of the fold that held it out; and each
    fold's records and calibration.  Each fold's checkpoint is kept in ``save_dir`` (``foldI.pt``).
    ``only``: the folds (1-based) to run, the others skipped (fewer records judged, each still by a model
    fitted without it); default all."""
    counts, folds = [], []
    split = folds_of(recordings, k)  # checks k before the beats are cut
    if only is not None and not set(only) <= set(range(1, k + 1)):
        raise ValueError(f"--folds {' '.join(map(str, only))}: folds are numbered 1 to {k}")
    t0 = time.perf_counter()
    cuts = {r.name: cut_beats(r, rep=cfg.rep) for r in recordings}  # once: the model does not change the cut
    log(f"beats cut from {len(recordings)} records in {time.perf_counter() - t0:.0f} s")
    for i, test in enumerate(split):
        if only is not None and i + 1 not in only:
            continue
        names = {r.name for r in test}
        fit_on = [r for r in recordings if r.name not in names]
        log(f"fold {i + 1}/{k}: held out {', '.join(sorted(names))}")
        ckpt = fit_and_calibrate(
            fit_on, cfg, device=device, threads=threads, log=log, cuts=cuts,
            on_epoch=lambda e, tl, vl: log(f"  epoch {e + 1}/{cfg.epochs}: train {tl:.5f} val {vl:.5f}"))
        if save_dir is not None:
            save(ckpt, save_dir / f"fold{i + 1}.pt")
        beds = ec57.run_records(test, ckpt, device=device, threads=threads, learn_s=cfg.learn_s)
        counts += [ec57.record_counts(b, learn_s=cfg.learn_s) for b in beds]
        folds.append({"fold": i, "held_out": sorted(names), "fitted_on": sorted(r.name for r in fit_on),
                      "held_out_by_database": {d: sorted(r.name for r in test if database_of(r) == d)
                                               for d in sorted({database_of(r) for r in test})},
                      "threshold": ckpt.threshold, "calibration": ckpt.calibration,
                      "train_seconds": ckpt.train["total_seconds"]})
    return counts, folds

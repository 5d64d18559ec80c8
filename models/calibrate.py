"""Threshold rules: turn validation losses into the loss above which a beat is flagged.

- ``percentile``: the ``param``-th percentile of the validation *normal* beats' losses
  (unsupervised; ``param`` = 99 flags about 1 % of normal beats).
- ``mean+k*std``: mean + ``param`` x standard deviation (population) of the validation
  normal losses, the rule of the classic TensorFlow autoencoder tutorials.
- ``max-f1``: the threshold maximising F1 (abnormal = positive) on labelled validation beats.
- ``youden``: the threshold maximising Youden's J = sensitivity + specificity - 1.

For the label-aware rules the threshold is placed midway between the chosen loss and
the next larger one, so that the decision does not hinge on one exact value.
A beat is flagged when ``loss > threshold``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Rule = Literal["percentile", "mean+k*std", "max-f1", "youden"]
RULES: tuple[str, ...] = ("percentile", "mean+k*std", "max-f1", "youden")
DEFAULT_PARAM = {"percentile": 99.0, "mean+k*std": 3.0, "max-f1": 0.0, "youden": 0.0}


@dataclass(frozen=True, slots=True)
class Calibration:
    """A threshold and the rule that produced it (stored in the checkpoint)."""

    rule: str
    param: float
    threshold: float
    n_normal: int
    n_abnormal: int

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _sweep(losses: np.ndarray, abnormal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate thresholds (midpoints between sorted distinct losses) with TP, FP, FN at each."""
    order = np.argsort(losses, kind="stable")
    s, a = losses[order], abnormal[order]
    uniq, first = np.unique(s, return_index=True)
    # threshold just above uniq[i]: beats with loss <= uniq[i] are negative
    neg_ab = np.cumsum(a)[np.r_[first[1:] - 1, len(s) - 1]]  # abnormal beats at or below uniq[i]
    neg_n = np.r_[first[1:], len(s)] - neg_ab  # normal beats at or below uniq[i]
    thr = np.r_[(uniq[:-1] + uniq[1:]) / 2, uniq[-1] + 1e-12]
    tp = a.sum() - neg_ab
    fp = (len(a) - a.sum()) - neg_n
    fn = neg_ab
    # also the option of flagging everything: threshold below the smallest loss
    thr = np.r_[uniq[0] - 1e-12, thr]
    tp, fp, fn = np.r_[a.sum(), tp], np.r_[len(a) - a.sum(), fp], np.r_[0, fn]
    return thr, tp, fp, fn


def calibrate(losses: np.ndarray, labels: np.ndarray, *, rule: Rule = "max-f1",
              param: float | None = None) -> Calibration:
    """Threshold from validation ``losses`` and class ``labels`` (1 = normal) under ``rule``."""
    losses = np.asarray(losses, dtype=np.float64)
    abnormal = np.asarray(labels) != 1
    normal_l = losses[~abnormal]
    if rule not in RULES:
        raise ValueError(f"unknown calibration rule {rule!r}: choose from {', '.join(RULES)}")
    p = DEFAULT_PARAM[rule] if param is None else float(param)
    if rule in ("percentile", "mean+k*std") and len(normal_l) == 0:
        raise ValueError(f"rule {rule!r} needs validation normal beats; none were given")
    if rule in ("max-f1", "youden") and (abnormal.all() or not abnormal.any()):
        raise ValueError(f"rule {rule!r} needs both normal and abnormal validation beats")
    if rule == "percentile":
        thr = float(np.percentile(normal_l, p))
    elif rule == "mean+k*std":
        thr = float(normal_l.mean() + p * normal_l.std())
    else:
        t, tp, fp, fn = _sweep(losses, abnormal)
        if rule == "max-f1":
            objective = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        else:
            objective = tp / abnormal.sum() - fp / (~abnormal).sum()
        thr = float(t[int(np.argmax(objective))])
    return Calibration(rule, p, thr, int((~abnormal).sum()), int(abnormal.sum()))

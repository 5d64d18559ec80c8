"""The product and UCR protocols (ECG5000 splits): metrics at the calibrated threshold, a threshold sweep,
rich tables and PNG figures.

Abnormal (classes 2-5) is the positive class; ROC figures come from scikit-learn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table
from sklearn.metrics import roc_auc_score, roc_curve

from ecgmon.models.checkpoint import Checkpoint
from ecgmon.models.data import CLASS_NAMES, NORMAL, Split
from ecgmon.models.scorer import losses as model_losses


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the boolean ``positive`` labels (NaN with one class only)."""
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, np.asarray(scores, dtype=np.float64)))


def metrics(losses: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    """All figures at ``threshold`` (flag when ``loss > threshold``)."""
    losses, labels = np.asarray(losses, dtype=np.float64), np.asarray(labels)
    flagged = losses > threshold
    ab = labels != NORMAL
    tp, fp = int((flagged & ab).sum()), int((flagged & ~ab).sum())
    fn, tn = int((~flagged & ab).sum()), int((~flagged & ~ab).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {
        "n_beats": len(labels),
        "n_normal": int((~ab).sum()),
        "n_abnormal": int(ab.sum()),
        "threshold": float(threshold),
        "roc_auc": roc_auc(losses, ab),
        "accuracy": (tp + tn) / len(labels),
        "precision": prec,
        "recall": rec,
        "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
        "false_alarm_rate": fp / (fp + tn) if fp + tn else 0.0,
        "specificity": tn / (fp + tn) if fp + tn else 0.0,
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "flag_rate_per_class": {
            CLASS_NAMES[c]: float(flagged[labels == c].mean()) for c in sorted(CLASS_NAMES) if (labels == c).any()
        },
    }


def test_report(ckpt: Checkpoint, split: Split) -> dict[str, Any]:
    """Score ``split``'s test part once, after every choice was made, at the checkpoint's threshold; the
    figures are stored in the checkpoint (``ckpt.metrics["test"]``) and returned."""
    test = split.part("test")
    ckpt.metrics["test"] = m = metrics(model_losses(ckpt.model, test.x), test.y, ckpt.threshold)
    return m


def sweep(losses: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> list[dict[str, float]]:
    """Normal recall (specificity) and abnormal recall (sensitivity) at each threshold."""
    ab = np.asarray(labels) != NORMAL
    return [
        {"threshold": float(t), "normal_recall": float((losses[~ab] <= t).mean()),
         "abnormal_recall": float((losses[ab] > t).mean()), "accuracy": float(((losses > t) == ab).mean())}
        for t in thresholds
    ]


def sweep_thresholds(threshold: float, n: int = 9) -> np.ndarray:
    """A log-spaced range around ``threshold``: x0.5 ... x2."""
    return threshold * np.geomspace(0.5, 2.0, n)


def tables(m: dict[str, Any], sw: list[dict[str, float]], *, title: str) -> list[Table]:
    """The rich tables a person reads: summary, confusion matrix, per-class flag rates, sweep."""
    summary = Table(title=title, show_header=True)
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    for k in ("n_beats", "threshold", "roc_auc", "accuracy", "precision", "recall", "f1", "false_alarm_rate"):
        v = m[k]
        summary.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    c = m["confusion"]
    conf = Table(title="confusion matrix (rows: truth)")
    conf.add_column("")
    conf.add_column("pred normal", justify="right")
    conf.add_column("pred abnormal", justify="right")
    conf.add_row("normal", str(c["tn"]), str(c["fp"]))
    conf.add_row("abnormal", str(c["fn"]), str(c["tp"]))
    per = Table(title="flag rate per class")
    per.add_column("class")
    per.add_column("flagged", justify="right")
    for k, v in m["flag_rate_per_class"].items():
        per.add_row(k, f"{v:.3f}")
    swt = Table(title="threshold sweep")
    for col in ("threshold", "normal recall", "abnormal recall", "accuracy"):
        swt.add_column(col, justify="right")
    for r in sw:
        mark = " *" if np.isclose(r["threshold"], m["threshold"]) else ""
        swt.add_row(f"{r['threshold']:.5f}{mark}", f"{r['normal_recall']:.4f}", f"{r['abnormal_recall']:.4f}",
                    f"{r['accuracy']:.4f}")
    return [summary, conf, per, swt]


def save_png(fig: Any, path: Path) -> Path:
    """Write a matplotlib figure as a PNG (100 dpi, tight) and close it."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def figures(out: Path, losses: np.ndarray, labels: np.ndarray, threshold: float, beats: np.ndarray,
            recon: np.ndarray) -> list[Path]:
    """Loss histograms with the threshold, ROC curve, and beats overlaid with reconstructions (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    ab = labels != NORMAL
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.geomspace(max(losses.min(), 1e-4), losses.max(), 60).tolist()
    ax.hist(losses[~ab], bins=bins, alpha=0.6, label="normal")
    ax.hist(losses[ab], bins=bins, alpha=0.6, label="abnormal")
    ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.4f}")
    ax.set_xscale("log")
    ax.set_xlabel("reconstruction loss (MSE)")
    ax.set_ylabel("beats")
    ax.legend()
    paths.append(save_png(fig, out / "loss_histogram.png"))

    fpr, tpr, _ = roc_curve(ab, losses)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"AUC {roc_auc(losses, ab):.4f}")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.legend(loc="lower right")
    paths.append(save_png(fig, out / "roc.png"))

    fig, axes = plt.subplots(2, 3, figsize=(12, 5), sharey=True)
    picks = list(np.flatnonzero(~ab)[:3]) + list(np.flatnonzero(ab)[:3])
    for a, i in zip(axes.flat, picks, strict=False):
        a.plot(beats[i], label="beat")
        a.plot(recon[i], label="reconstruction")
        a.set_title(f"{CLASS_NAMES[int(labels[i])]}  loss {losses[i]:.3f}")
    axes.flat[0].legend()
    fig.tight_layout()
    paths.append(save_png(fig, out / "reconstructions.png"))
    return paths


def write_metrics(out: Path, m: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    p = out / "metrics.json"
    p.write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")
    return p

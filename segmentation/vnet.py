"""A small convolutional network that types a beat ventricular from its waveform against the bed's own template.

Inputs, per beat that has a template (:class:`~ecgmon.segmentation.vtype.VTyper`, after the bed's first
``min_template`` beats): the beat's band-passed (1-35 Hz) signal from ``pre_s`` (0.25 s) before its QRS centre to
``post_s`` (0.40 s) after it, linearly resampled to ``hz`` (100 Hz: 66 samples) and z-normalised (no amplitude:
a ventricular complex is larger than the sinus beat in MIT-BIH's modified lead II and as often smaller in the ICU's
lead II); the same window of the bed's dominant template (the medoid beat the typer's ``corr`` uses); and five of
the typer's measurements (``width``, ``prem``, ``corr``, ``dwidth``, ``share``).  Three channels (beat, template,
beat minus template) go through three 1-D convolutions (16 filters; 7, 5, 5 taps; ReLU; max-pooling by 2 after the
first two; average-pooling to 4 positions at the end), then a hidden layer of 32 with the measurements, then one
logit.  A wide window shows what a QRS window cannot: the P wave a ventricular beat lacks and the T wave that
opposes its QRS (the morphology-against-template idea of Hamilton & Tompkins 1986, learnt from labelled beats of
other patients, as inter-patient classifiers do: de Chazal P, O'Dwyer M, Reilly RB, IEEE Trans Biomed Eng
51(7):1196-1206, 2004; Kiranyaz S, Ince T, Gabbouj M, IEEE Trans Biomed Eng 63(3):664-675, 2016, adapt a small 1-D
CNN per patient; here one network for every patient, the template carrying the patient).

The typer's probability is the logistic of ``weight`` times this logit plus ``1 - weight`` times the additive
model's (:class:`~ecgmon.segmentation.vtype.VTypeModel`), shifted by ``shift`` so that the threshold chosen on the
training records maps to the typer's ``threshold`` (0.4).  Fitted and cross-validated by record with
``python -m ecgmon.evaluation.vnetfit fit`` (figures in docs/results/vnet_fit.json and docs/alarms.md).  The forward
pass is numpy (no torch in the segmentation layer): about 0.17 MFLOP per beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["ASSET", "INPUTS", "VNet", "load_vnet", "shipped", "window_grid"]

ASSET = Path(__file__).parent / "assets" / "vnet.npz"
# measurements the network reads, in this order (names of vtype.FEATURES)
INPUTS = ("width", "prem", "corr", "dwidth", "share")


PRE_S, POST_S, HZ = 0.25, 0.40, 100.0  # the window: from PRE_S before the QRS centre to POST_S after it, at HZ


def window_grid(pre_s: float = PRE_S, post_s: float = POST_S, hz: float = HZ) -> np.ndarray:
    """Offsets from the QRS centre (s) of a network window's samples: ``pre_s`` before it to ``post_s`` after it at
    ``hz``."""
    return -pre_s + np.arange(round((pre_s + post_s) * hz) + 1) / hz


@dataclass(frozen=True, eq=False)
class VNet:
    """Weights (torch's layouts: conv ``(out, in, taps)``, linear ``(out, in)``) and the window's grid."""

    convs: tuple[tuple[np.ndarray, np.ndarray], ...]
    fc1: tuple[np.ndarray, np.ndarray]
    fc2: tuple[np.ndarray, np.ndarray]
    pre_s: float = PRE_S
    post_s: float = POST_S
    hz: float = HZ
    weight: float = 0.5
    shift: float = 0.0

    @property
    def grid(self) -> np.ndarray:
        """Offsets of the window's samples from the QRS centre (s): :func:`window_grid`."""
        return window_grid(self.pre_s, self.post_s, self.hz)

    def logit(self, beat: np.ndarray, template: np.ndarray, meas: np.ndarray) -> np.ndarray:
        """``beat``, ``template`` (B, L) z-normalised windows on :attr:`grid`; ``meas`` (B, 5) the measurements of
        ``INPUTS`` -> the network's logit (B,).

        In float64 (the weights were fitted in float32): the kernels numpy and BLAS pick, and so the summation
        order, depend on how many beats share a call, and a beat's logit then differs by about 1e-16 of itself
        between batchings (in float32 by 1e-7, enough to move a decision at the threshold): a recording's alarms
        do not depend on how its beds' beats were batched."""
        x = np.stack([beat, template, beat - template], axis=2).astype(np.float64)  # (B, L, 3): channels last
        nb = len(x)
        for i, (w, b) in enumerate(self.convs):
            o, c, k = w.shape
            xp = np.pad(x, ((0, 0), (k // 2, k // 2), (0, 0)))
            # im2col: (B, L, C, K) windows as rows of C * K, one matrix product per layer
            cols = sliding_window_view(xp, k, axis=1).reshape(nb * x.shape[1], c * k)
            x = np.maximum(cols @ w.reshape(o, c * k).T + b, 0.0).reshape(nb, -1, o)
            if i < len(self.convs) - 1:  # max-pooling by 2 (a trailing odd sample dropped, as torch does)
                n = x.shape[1] // 2
                x = x[:, :2 * n].reshape(nb, n, 2, o).max(axis=2)
        bins = 4  # average-pooling to 4 positions, flattened channel-major as torch's (B, C, 4)
        x = x.reshape(nb, bins, x.shape[1] // bins, x.shape[2]).mean(axis=2).transpose(0, 2, 1).reshape(nb, -1)
        h = np.maximum(np.concatenate([x, np.asarray(meas, dtype=np.float64)], axis=1) @ self.fc1[0].T + self.fc1[1],
                       0.0)
        return (h @ self.fc2[0].T + self.fc2[1])[:, 0]

    def save(self, path: str | Path) -> None:
        arrays: dict[str, Any] = {f"conv{i}_{p}": a for i, wb in enumerate(self.convs)
                                  for p, a in zip("wb", wb, strict=True)}
        arrays |= {"fc1_w": self.fc1[0], "fc1_b": self.fc1[1], "fc2_w": self.fc2[0], "fc2_b": self.fc2[1],
                   "meta": np.array([self.pre_s, self.post_s, self.hz, self.weight, self.shift])}
        np.savez(path, allow_pickle=False, **arrays)


def load_vnet(path: str | Path = ASSET) -> VNet:
    """The network saved at ``path`` (:meth:`VNet.save`).  Raises OSError or KeyError for a missing or wrong
    file."""
    z = np.load(path)
    convs: list[tuple[np.ndarray, np.ndarray]] = []
    while f"conv{len(convs)}_w" in z:
        i = len(convs)
        convs.append((z[f"conv{i}_w"].astype(np.float64), z[f"conv{i}_b"].astype(np.float64)))
    pre, post, hz, weight, shift = (float(v) for v in z["meta"])
    f64 = np.float64
    return VNet(tuple(convs), (z["fc1_w"].astype(f64), z["fc1_b"].astype(f64)),
                (z["fc2_w"].astype(f64), z["fc2_b"].astype(f64)), pre, post, hz, weight, shift)


@cache
def shipped() -> VNet:
    """The shipped network (``segmentation/assets/vnet.npz``, package data), loaded once."""
    return load_vnet(ASSET)

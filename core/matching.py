"""Matching detections to reference beats: one rule for every protocol (ANSI/AAMI EC57 section 3.2:
a detection matches a reference beat when their fiducials are within the match window, 150 ms for
recordings; each reference beat and each detection is used at most once).

The offline statistics (:mod:`ecgmon.evaluation.ec57`, training labels in :mod:`ecgmon.models.records`)
call :func:`match` on whole arrays; the live ground-truth sink (:mod:`ecgmon.evaluation.evaluator`) calls
it with one detection at a time against the reference beats still pending.
"""

from __future__ import annotations

import numpy as np


def match(ref: np.ndarray, det: np.ndarray, tol: float) -> np.ndarray:
    """For each reference beat, the index of its matched detection (-1 none): one to one, each reference
    taking the nearest free detection within ``tol`` samples, in time order."""
    out = np.full(len(ref), -1, dtype=np.int64)
    used = np.zeros(len(det), dtype=bool)
    j = 0
    for i, r in enumerate(ref):
        while j < len(det) and det[j] < r - tol:
            j += 1
        best, best_d = -1, tol + 1
        k = j
        while k < len(det) and det[k] <= r + tol:
            if not used[k] and abs(det[k] - r) < best_d:
                best, best_d = k, abs(det[k] - r)
            k += 1
        if best >= 0:
            used[best] = True
            out[i] = best
    return out

"""Signal quality per patient: flat line (leads off), saturation, and unsegmentable noise."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Quality:
    flat: bool  # leads off / flat line: almost no variation over the last ``window_s``
    saturated: bool  # a large share of samples pinned at the window's extreme value
    noisy: bool  # signal present but no beat found for ``no_beat_s`` seconds


class QualityMonitor:
    """Rolling checks over the last ``window_s`` seconds of one patient's raw signal."""

    def __init__(self, fs: float, *, window_s: float = 2.0, flat_std: float = 1e-3, no_beat_s: float = 4.0,
                 saturation_frac: float = 0.2) -> None:
        self.fs = fs
        self.n = max(2, int(window_s * fs))
        self.buf = np.zeros(0)  # the last ``n`` samples
        self._sqrt2n = math.sqrt(2 * self.n)
        self.flat_std, self.sat_frac = flat_std, saturation_frac
        self.no_beat = int(no_beat_s * fs)
        self.since_beat = 0

    def push(self, x: np.ndarray, *, beats_found: int) -> Quality:
        x = np.asarray(x, dtype=np.float64)
        if not np.isfinite(x).all():  # lost samples (NaN) count as a flat line
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        w = self.buf = np.concatenate([self.buf, x])[-self.n:]
        self.since_beat = 0 if beats_found else self.since_beat + len(x)
        full = len(w) == self.n
        flat = saturated = False
        if full:
            hi, lo = w.max(), w.min()
            # n samples spanning hi - lo have a standard deviation of at least (hi - lo) / sqrt(2 n):
            # the (costlier) deviation is only needed when the range allows a flat line
            flat = bool(hi - lo < self.flat_std * self._sqrt2n) and float(w.std()) < self.flat_std
            if not flat:
                limit = self.sat_frac * self.n
                saturated = bool(np.count_nonzero(w == hi) > limit or np.count_nonzero(w == lo) > limit)
        noisy = not flat and self.since_beat > self.no_beat
        return Quality(flat, saturated, noisy or saturated)

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
        if not np.isfinite(x).all():  # lost samples (NaN) are signal loss (the segmenter's), not a flat line
            x = x[np.isfinite(x)]
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
                saturated = self._pinned(w == hi) or self._pinned(w == lo)
        noisy = not flat and self.since_beat > self.no_beat
        return Quality(flat, saturated, noisy or saturated)

    def _pinned(self, at: np.ndarray) -> bool:
        """Saturation: over ``saturation_frac`` of the window at its extreme value, in two or more stretches (the
        signal clipped again and again).  One stretch is a held value: a lead coming off holds its last sample
        (that is a flat line, "leads off", once it lasts ``window_s``), and it must not look clipped meanwhile."""
        if np.count_nonzero(at) <= self.sat_frac * self.n:
            return False
        return int(at[0]) + int(np.count_nonzero(at[1:] & ~at[:-1])) >= 2

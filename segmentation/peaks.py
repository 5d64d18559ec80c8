"""Streaming QRS detection: a causal energy envelope, windowed local maxima, adaptive threshold.

The envelope is the moving average (100 ms) of the squared derivative of the 5-20 Hz
band-passed signal, so it peaks on a QRS complex of either polarity.  A sample is a
QRS candidate when it is the largest envelope value within +/- ``refractory_s``; it is
decided once that many samples beyond it have arrived (the detector's look-ahead),
which uses past samples only.  Candidates below a fraction of the recent peak level
are rejected as noise or T waves.  Detected peaks carry absolute sample indices, so
overlapping windows never produce a peak twice.
"""

from __future__ import annotations

import statistics
from collections import deque

import numpy as np
from scipy.ndimage import maximum_filter1d

from ecgmon.segmentation.filters import CausalFilter, MovingAverage


class QRSDetector:
    """Push samples, get the absolute indices of newly decided QRS envelope peaks."""

    def __init__(self, fs: float, *, refractory_s: float = 0.3, warmup_s: float = 2.0,
                 threshold_frac: float = 0.1) -> None:
        self.fs = fs
        self.half = max(1, round(refractory_s * fs))
        self.warmup = round(warmup_s * fs)
        self.frac = threshold_frac
        self.bp = CausalFilter.bandpass(fs, 5.0, 20.0)
        self.ma = MovingAverage(round(0.1 * fs))
        self.env = np.zeros(0)
        self.env_start = 0  # absolute index of env[0]
        self.total = 0  # samples seen
        self.next_p = 0  # first absolute index not yet decided
        self.levels: deque[float] = deque(maxlen=8)
        self._prev_last = None  # last raw sample, for the derivative across chunks

    def push(self, x: np.ndarray) -> list[int]:
        n = len(x)
        if n == 0:
            return []
        f = self.bp(x)
        d = np.empty(n)
        d[0] = f[0] - (f[0] if self._prev_last is None else self._prev_last)
        np.subtract(f[1:], f[:-1], out=d[1:])
        self._prev_last = f[-1]
        e = self.ma(d * d)
        self.env = np.concatenate([self.env, e])
        self.total += n
        found = self._decide()
        # keep only the max filter's left half-window before the first undecided sample
        drop = self.next_p - self.half - 1 - self.env_start
        if drop > 0:
            self.env = self.env[drop:]
            self.env_start += drop
        return found

    def _decide(self) -> list[int]:
        last_decidable = self.total - self.half - 1  # needs `half` samples of look-ahead
        if self.total < self.warmup or last_decidable < self.next_p:
            return []
        if not self.levels:
            # initial level from the warm-up window: its largest envelope value
            self.levels.append(float(self.env[: self.warmup - self.env_start].max()))
        lo = max(self.env_start, self.next_p - self.half)
        seg = self.env[lo - self.env_start:]
        mx = maximum_filter1d(seg, size=2 * self.half + 1, mode="constant", cval=-np.inf)
        # a candidate is the largest value of its window and larger than the sample before it
        a, b = self.next_p - lo, last_decidable - lo + 1
        peak = seg[a:b] == mx[a:b]
        if a == 0:
            peak[1:] &= seg[1:b] > seg[: b - 1]
        else:
            peak &= seg[a:b] > seg[a - 1:b - 1]
        out = []
        for p in np.flatnonzero(peak).tolist():
            v = float(seg[a + p])
            if v > self.frac * statistics.median(self.levels):  # 8 floats: no numpy call per candidate
                out.append(lo + a + p)
                self.levels.append(v)
        self.next_p = last_decidable + 1
        return out

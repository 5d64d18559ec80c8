"""Signal quality per patient: flat line (leads off), saturation, and unsegmentable noise."""

from __future__ import annotations

from collections import deque
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
        self.buf: deque[float] = deque(maxlen=max(2, int(window_s * fs)))
        self.flat_std, self.sat_frac = flat_std, saturation_frac
        self.no_beat = int(no_beat_s * fs)
        self.since_beat = 0

    def push(self, x: np.ndarray, *, beats_found: int) -> Quality:
        self.buf.extend(np.asarray(x, dtype=np.float64).tolist())
        self.since_beat = 0 if beats_found else self.since_beat + len(x)
        w = np.asarray(self.buf)
        full = len(w) == self.buf.maxlen
        flat = full and float(w.std()) < self.flat_std
        hi, lo = w.max(), w.min()
        saturated = full and not flat and max((w == hi).mean(), (w == lo).mean()) > self.sat_frac
        noisy = not flat and self.since_beat > self.no_beat
        return Quality(flat, saturated, noisy or saturated)

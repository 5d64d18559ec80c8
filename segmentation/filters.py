"""Stateful causal filters: the state carries across chunks, so any chunking gives the same output."""

from __future__ import annotations

import functools

import numpy as np
from scipy import signal

try:  # the compiled kernel behind signal.sosfilt: the public wrapper costs ~15x the filtering of a 0.25 s chunk
    from scipy.signal._sosfilt import _sosfilt
except ImportError:  # pragma: no cover - a scipy that moved it: the public function gives the same numbers
    _sosfilt = None


class CausalFilter:
    """A second-order-sections IIR filter applied chunk by chunk (``sosfilt`` with ``zi``)."""

    def __init__(self, sos: np.ndarray, zi_unit: np.ndarray | None = None) -> None:
        self.sos = np.array(sos, dtype=np.float64, order="C")  # own, writable copy (the kernel wants one)
        # steady-state state for a unit input (``sosfilt_zi``), scaled by the first sample
        self.zi_unit = signal.sosfilt_zi(self.sos) if zi_unit is None else zi_unit
        self.zi: np.ndarray | None = None

    @classmethod
    def bandpass(cls, fs: float, low_hz: float, high_hz: float, order: int = 2) -> CausalFilter:
        """Butterworth band-pass between ``low_hz`` and ``high_hz`` for a stream sampled at ``fs`` Hz."""
        return cls(*_butter_bandpass(fs, low_hz, min(high_hz, 0.45 * fs), order))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.zi is None:
            # start in steady state for the first sample's level, so a DC offset causes no transient
            self.zi = self.zi_unit * (x[0] if len(x) else 0.0)
        if _sosfilt is None:
            y, self.zi = signal.sosfilt(self.sos, x, zi=self.zi)
            return y
        y = np.array(x, dtype=np.float64, order="C")[None]  # filtered in place, one signal
        zi = self.zi.reshape(1, *self.zi.shape)  # (signals, sections, 2), updated in place
        _sosfilt(self.sos, y, zi)
        return y[0]


class MovingAverage:
    """Causal moving average over ``n`` samples, carrying its history across chunks."""

    def __init__(self, n: int) -> None:
        self.n = max(1, int(n))
        self.tail = np.zeros(self.n - 1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        ext = np.concatenate([self.tail, np.asarray(x, dtype=np.float64)])
        # y[j] = sum(ext[j:j+n]) = c[j+n-1] - c[j-1], c the running sum (c[-1] = 0)
        c = np.cumsum(ext)
        y = c[self.n - 1:].copy()
        y[1:] -= c[: len(ext) - self.n]
        y /= self.n
        self.tail = ext[len(ext) - (self.n - 1):] if self.n > 1 else self.tail
        return y


# a ward's segmenters share a handful of designs: design each once (a new device, or a restart after a
# gap, would otherwise pay ~0.4 ms of scipy filter design)
@functools.lru_cache(maxsize=64)
def _butter_bandpass(fs: float, low_hz: float, high_hz: float, order: int) -> tuple[np.ndarray, np.ndarray]:
    """(sos, its unit steady-state zi), both read-only: shared by every filter of this design."""
    sos = signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=fs, output="sos")
    zi = signal.sosfilt_zi(sos)
    sos.flags.writeable = zi.flags.writeable = False
    return sos, zi

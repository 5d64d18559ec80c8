"""Stateful causal filters: the state carries across chunks, so any chunking gives the same output."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import cast

import numpy as np
from scipy import signal

# mains interference: 50 Hz (Europe, Asia, Africa, Australia) or 60 Hz (the Americas, parts of Asia)
MAINS_HZ = (50.0, 60.0)
# the notches' quality factor (centre / -3 dB width): Q 10 is 5 Hz wide at 50 Hz, so a mains frequency off by the
# grid's tolerance (+/-0.2 Hz) or a device clock's (+/-0.1 %) is still taken down by more than 20 dB
NOTCH_Q = 10.0
# a notch only under this share of the sampling rate: a device's anti-alias filter has its corner at 0.25-0.35 of
# its rate, so a mains frequency nearer half the rate is already taken down by it.  At 128 Hz (SVDB) notches at 50
# and 60 Hz gave 8 more false beats of 92,000 (860: 50 -> 58) and no hum to take out
NOTCH_MAX = 0.35


@functools.lru_cache(maxsize=64)
def mains_notch(fs: float, mains_hz: tuple[float, ...] = MAINS_HZ, q: float = NOTCH_Q) -> np.ndarray:
    """Second-order-sections of IIR notch filters (``scipy.signal.iirnotch``: a pair of zeros on the unit circle at
    each frequency, poles just inside) at each of ``mains_hz`` under ``NOTCH_MAX * fs``, for a stream at ``fs`` Hz:
    shape (k, 6), k = 0 where none applies (a device sampling at 100 Hz low-passed the mains away before sampling).
    Read-only, shared.

    Used after the VF detector's bands (:class:`~ecgmon.segmentation.vf.VFConfig` ``mains_hz``); the QRS detector's
    band-pass can carry them (``DetectorConfig.mains_hz``, off: the QRS floor takes hum out of its own measure
    instead, :func:`~ecgmon.segmentation.beats.qrs_span`).  Why: a monitor must not count mains interference as beats
    or fibrillation (IEC 60601-2-27 tests line-frequency rejection; monitors filter it with a notch). An unfiltered
    device's 0.05-0.5 mV of 50 or 60 Hz passes the QRS detector's 5-20 Hz band-pass of order 2 attenuated only about
    16 dB, and the first difference it squares weights it 2.5-3 times a QRS's slopes; in the VF detector's 20-40 Hz
    band it read as muscle noise (artifact, which held the asystole timer)."""
    rows = [signal.tf2sos(*signal.iirnotch(f, q, fs=fs)) for f in mains_hz if 0 < f < NOTCH_MAX * fs]
    sos = np.ascontiguousarray(np.vstack(rows)) if rows else np.zeros((0, 6))
    sos.flags.writeable = False
    return sos


class CausalFilter:
    """A second-order-sections IIR filter applied chunk by chunk (``scipy.signal.sosfilt`` with ``zi``).

    One call costs about 0.1 ms of scipy's argument handling whatever the chunk's length: many streams' chunks
    go through :func:`filter_many`, one call per design and length."""

    def __init__(self, sos: np.ndarray, zi_unit: np.ndarray | None = None) -> None:
        self.design = sos  # shared by the filters of one design (filter_many groups by it)
        self.sos = np.array(sos, dtype=np.float64, order="C")  # own, writable copy (scipy's kernel wants one)
        # steady-state state for a unit input (``sosfilt_zi``), scaled by the first sample
        self.zi_unit = signal.sosfilt_zi(self.sos) if zi_unit is None else zi_unit
        self.zi: np.ndarray | None = None

    @classmethod
    def bandpass(cls, fs: float, low_hz: float, high_hz: float, order: int = 2,
                 notch_hz: tuple[float, ...] = (), notch_q: float = NOTCH_Q) -> CausalFilter:
        """Butterworth band-pass between ``low_hz`` and ``high_hz`` for a stream sampled at ``fs`` Hz, followed by
        :func:`mains_notch` at each of ``notch_hz`` (those under ``NOTCH_MAX`` of ``fs``)."""
        return cls(*_butter_bandpass(fs, low_hz, min(high_hz, 0.45 * fs), order, tuple(notch_hz), notch_q))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if not len(x):
            return x.copy()
        self._start(x)
        y, self.zi = signal.sosfilt(self.sos, x, zi=self.zi)
        return np.asarray(y)

    def _start(self, x: np.ndarray) -> None:
        if self.zi is None:
            # start in steady state for the first sample's level, so a DC offset causes no transient
            self.zi = self.zi_unit * x[0]


def filter_many(filters: Sequence[CausalFilter], xs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``[filters[i](xs[i]) for i ...]`` (each filter at most once), the same numbers, with one ``sosfilt`` call
    over ``axis=-1`` for every group of filters that share a design (the same ``design`` array, as
    :meth:`CausalFilter.bandpass` gives them) and inputs of one length, with per-stream initial conditions."""
    out: list[np.ndarray] = [np.zeros(0)] * len(filters)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (f, x) in enumerate(zip(filters, xs, strict=True)):
        groups.setdefault((id(f.design), len(x)), []).append(i)
    for (_, n), idx in groups.items():
        if n == 0 or len(idx) == 1:
            for i in idx:
                out[i] = filters[i](xs[i])
            continue
        x = np.stack([np.asarray(xs[i], dtype=np.float64) for i in idx])
        for i, row in zip(idx, x, strict=True):
            filters[i]._start(row)
        zi = np.stack([cast(np.ndarray, filters[i].zi) for i in idx], axis=1)  # (sections, streams, 2); set above
        y, zf = signal.sosfilt(filters[idx[0]].sos, x, axis=-1, zi=zi)
        for k, i in enumerate(idx):
            filters[i].zi = zf[:, k].copy()
            out[i] = y[k]
    return out


def window_sums(ext: np.ndarray, n: int) -> np.ndarray:
    """The sums of every ``n`` consecutive samples along the last axis of ``ext`` (``(..., m)`` -> ``(..., m - n +
    1)``), each window summed on its own: the same window gives the same bits wherever a chunk starts.  A running sum's
    differences (``cumsum``) carry the rounding error of everything summed before in the chunk, so over a flat
    stretch after a QRS they differed with the chunking, and their noise made envelope peaks there (CinC 2015 v200s:
    a QRS at 33.8 s, the start of a 1.3 s push, of a line gone flat)."""
    return np.lib.stride_tricks.sliding_window_view(ext, n, axis=-1).sum(axis=-1)


class MovingAverage:
    """Causal moving average over ``n`` samples, carrying its history across chunks; any chunking gives the same
    bits (:func:`window_sums`)."""

    def __init__(self, n: int) -> None:
        self.n = max(1, int(n))
        self.tail = np.zeros(self.n - 1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        ext = np.concatenate([self.tail, np.asarray(x, dtype=np.float64)])
        y = window_sums(ext, self.n)
        y /= self.n
        self.tail = ext[len(ext) - (self.n - 1):] if self.n > 1 else self.tail
        return y


# a ward's segmenters share a handful of designs: design each once (a new device, or a restart after a
# gap, would otherwise pay ~0.4 ms of scipy filter design)
@functools.lru_cache(maxsize=64)
def _butter_bandpass(fs: float, low_hz: float, high_hz: float, order: int, notch_hz: tuple[float, ...] = (),
                     notch_q: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(sos, its unit steady-state zi), both read-only: shared by every filter of this design."""
    sos = signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=fs, output="sos")
    notch = mains_notch(fs, notch_hz, notch_q)
    if len(notch):
        sos = np.ascontiguousarray(np.vstack([sos, notch]))
    zi = signal.sosfilt_zi(sos)
    sos.flags.writeable = zi.flags.writeable = False
    return sos, zi

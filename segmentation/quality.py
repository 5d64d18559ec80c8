"""Signal quality per patient: flat line (leads off), saturation, and unsegmentable noise."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Quality", "QualityMonitor", "push_many"]

MIN_GROUP = 2  # monitors of one window and chunk length needed for the batched pass


@dataclass(frozen=True, slots=True)
class Quality:
    flat: bool  # leads off / flat line: almost no variation over the last ``window_s``
    saturated: bool  # a large share of samples pinned at the window's extreme value
    noisy: bool  # signal present but no beat found for ``no_beat_s`` seconds
    # clipped on both rails: over ``saturation_frac`` of the window at its maximum and as much at its minimum (an
    # amplifier driven past its range both ways, as large motion does).  Saturation at one extreme alone may be a
    # quantised or noise-free flat baseline at the window's minimum, which is no clipping (a reviewer, session 39)
    clipped: bool = False


_CLEAN, _NOISY = Quality(False, False, False), Quality(False, False, True)  # push_many's verdicts (frozen: shared)


class QualityMonitor:
    """Rolling checks over the last ``window_s`` seconds of one patient's raw signal.

    ``step`` (samples; None: at the end of every push): the flat-line and saturation verdicts are made at fixed
    points of the stream, every ``step`` samples from its first (each over the ``window_s`` ending there), so that
    they do not depend on how the samples were cut into chunks; :attr:`points` holds the verdicts the last push
    made (stream sample index, :class:`Quality`), and :meth:`push` returns the last of them, or the verdict in force
    when the push passed no point."""

    def __init__(self, fs: float, *, window_s: float = 2.0, flat_std: float = 1e-3, no_beat_s: float = 4.0,
                 saturation_frac: float = 0.2, step: int | None = None, offset: int = 0) -> None:
        self.fs = fs
        self.n = max(2, int(window_s * fs))
        self.buf = np.zeros(0)  # the last ``n`` samples
        self._sqrt2n = math.sqrt(2 * self.n)
        self.flat_std, self.sat_frac = flat_std, saturation_frac
        self.no_beat = int(no_beat_s * fs)
        self.since_beat = 0
        if step is not None and step < 1:
            raise ValueError(f"QualityMonitor step must be at least 1 sample, got {step}")
        self.step = step
        self.total = 0  # samples pushed (missing ones too)
        # the stream sample index of the next verdict point (with ``step``): the points lie on a grid of ``step``
        # samples counted from sample ``-offset`` of this stream (its first sample's index in a longer one: the
        # points of a stream restarted after a gap stay where the stream's before fell, whatever its packets)
        self.next = (step - offset % step) if step else 0
        self.last = _CLEAN  # the verdict in force
        self.points: list[tuple[int, Quality]] = []

    def push(self, x: np.ndarray, *, beats_found: int) -> Quality:
        x = np.asarray(x, dtype=np.float64)
        start = self.total
        self.total += len(x)
        self.since_beat = 0 if beats_found else self.since_beat + len(x)
        if self.step is None:
            if not np.isfinite(x).all():  # lost samples (NaN) are signal loss (the segmenter's), not a flat line
                x = x[np.isfinite(x)]
            w = self.buf = np.concatenate([self.buf, x])[-self.n:]
            self.last = self._judge(w)
            return self.last
        self.points = []
        # lost samples (NaN) end the window: it holds only what came after them, as a stream restarted after them would
        bad = np.flatnonzero(~np.isfinite(x))
        for at in range(self.next, self.total + 1, self.step):
            k = at - start
            b = bad[bad < k]
            w = x[b[-1] + 1:k] if len(b) else np.concatenate([self.buf, x[:k]])
            self.points.append((at, self._judge(w[-self.n:])))
            self.next = at + self.step
        if self.points:
            self.last = self.points[-1][1]
        self.buf = (x[bad[-1] + 1:] if len(bad) else np.concatenate([self.buf, x]))[-self.n:]
        return self.last

    def _judge(self, w: np.ndarray) -> Quality:
        """The verdict over window ``w`` (the last ``n`` finite samples up to a point)."""
        flat = saturated = clipped = False
        if len(w) == self.n:
            hi, lo = w.max(), w.min()
            # n samples spanning hi - lo have a standard deviation of at least (hi - lo) / sqrt(2 n):
            # the (costlier) deviation is only needed when the range allows a flat line
            flat = bool(hi - lo < self.flat_std * self._sqrt2n) and float(w.std()) < self.flat_std
            if not flat:
                at_hi, at_lo = w == hi, w == lo
                saturated = self._pinned(at_hi) or self._pinned(at_lo)
                lim = self.sat_frac * self.n
                clipped = saturated and bool(min(np.count_nonzero(at_hi), np.count_nonzero(at_lo)) > lim)
        noisy = not flat and self.since_beat > self.no_beat
        return Quality(flat, saturated, noisy or saturated, clipped)

    def _pinned(self, at: np.ndarray) -> bool:
        """Saturation: over ``saturation_frac`` of the window at its extreme value, in two or more stretches (the
        signal clipped again and again).  One stretch is a held value: a lead coming off holds its last sample
        (that is a flat line, "leads off", once it lasts ``window_s``), and it must not look clipped meanwhile."""
        if np.count_nonzero(at) <= self.sat_frac * self.n:
            return False
        return int(at[0]) + int(np.count_nonzero(at[1:] & ~at[:-1])) >= 2


def push_many(mons: Sequence[QualityMonitor], xs: Sequence[np.ndarray], beats_found: Sequence[int]) -> list[Quality]:
    """``mons[i].push(xs[i], beats_found=beats_found[i])`` for every ``i`` (each monitor at most once): the monitors
    whose window is full and whose chunk is finite and passes one verdict point or more (with ``step``; its end
    without), grouped by window and chunk length, take the windows ending at all their points as one
    ``(windows, n)`` array (the range, and the counts at the extremes, in one call each; max, min and counts are exact
    in any order): a round's chunks of a bed joined into one pass several points.  A window whose range allows a flat
    line, or whose extremes are common enough to be saturation, is judged by its own monitor as
    :meth:`QualityMonitor.push` judges it.  A finite chunk that passes no verdict point only joins the monitor's
    buffer.  The rest take the per-bed path.  The same values as the per-bed pushes."""
    if len({id(m) for m in mons}) != len(mons):
        raise ValueError("push_many() takes each monitor at most once")
    out: list[Quality | None] = [None] * len(mons)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    arrs = [np.asarray(x, dtype=np.float64) for x in xs]
    for i, (m, x) in enumerate(zip(mons, arrs, strict=True)):
        k = len(x)
        if len(m.buf) != m.n or not 0 < k <= m.n:
            continue
        if m.step is None or m.total < m.next <= m.total + k:  # a point or more in this chunk
            groups[(m.n, k)].append(i)
        elif m.next > m.total + k and np.isfinite(x.sum()):  # no verdict in this chunk
            m.buf = np.concatenate([m.buf[k:], x])
            m.total += k
            m.since_beat = 0 if beats_found[i] else m.since_beat + k
            m.points = []
            out[i] = m.last
    for (n, k), idx in groups.items():
        if len(idx) < MIN_GROUP:
            continue
        x = np.stack([arrs[i] for i in idx])
        finite = np.isfinite(x.sum(axis=1))  # a finite sum: every sample finite (else the per-bed path judges)
        if not finite.all():
            idx = [i for i, f in zip(idx, finite.tolist(), strict=True) if f]
            x = x[finite]
            if len(idx) < MIN_GROUP:
                continue
        full = np.concatenate([np.stack([mons[i].buf for i in idx]), x], axis=1)  # (rows, n + k)
        # each row's verdict points, as offsets into its chunk (1 .. k): without step its end; the window ending at
        # offset o is full[row, o:o + n]
        offs = [[k] if (m := mons[i]).step is None else list(range(m.next - m.total, k + 1, m.step)) for i in idx]
        npts = [len(o) for o in offs]
        row = np.repeat(np.arange(len(idx)), npts)
        at = np.fromiter((o for os in offs for o in os), dtype=np.intp, count=len(row))
        w = full[:, k:] if len(row) == len(idx) and (at == k).all() else full[row[:, None], at[:, None] + np.arange(n)]
        hi, lo = w.max(axis=1), w.min(axis=1)
        # windows judged by their own monitor: the range allows a flat line, or the extremes may be pinned
        own = hi - lo < np.array([mons[i].flat_std * mons[i]._sqrt2n for i in idx])[row]
        lim = np.array([mons[i].sat_frac * n for i in idx])[row]
        own |= (np.count_nonzero(w == hi[:, None], axis=1) > lim) | (np.count_nonzero(w == lo[:, None], axis=1) > lim)
        own_l = own.tolist()
        r = 0
        for j, i in enumerate(idx):
            m = mons[i]
            m.buf = full[j, k:]
            m.total += k
            m.since_beat = 0 if beats_found[i] else m.since_beat + k
            plain = _NOISY if m.since_beat > m.no_beat else _CLEAN
            qs = [m._judge(w[r + p]) if own_l[r + p] else plain for p in range(npts[j])]
            r += npts[j]
            out[i] = m.last = qs[-1]
            if m.step is not None:
                m.points = [(m.total - k + o, v) for o, v in zip(offs[j], qs, strict=True)]
                m.next = m.points[-1][0] + m.step
    return [q if q is not None else m.push(x, beats_found=b)
            for q, m, x, b in zip(out, mons, arrs, beats_found, strict=True)]

"""Beat representations: how a detected beat becomes the model's (channels, 140) input.

A checkpoint declares the representation it was trained on (:meth:`Representation.to_dict`);
the segmenter cuts beats to match it, so one monitor can run either model.

``ecg5000``
    ECG5000's own: the beat from one fiducial to the next, resampled to 140 samples and z-normalised
    per beat.  One channel.  The beat's length is the RR interval, so the shape of a beat says
    little about its width, and the per-beat normalisation hides its amplitude.
``window``
    For real ECG: a fixed window in time, ``pre_s`` before the fiducial (the centre of the QRS's slope
    energy, near the R peak) to ``post_s`` after it, resampled to 140 samples, its baseline (the median
    of the PR segment, ``pre_s`` .. ``pre_s/2`` before the fiducial) removed and divided by the bed's own
    amplitude (the median peak-to-peak of its last ``amp_beats`` beats), so that a wide or tall beat
    stays wide or tall.  The sequence starts at the fiducial and wraps round to the pre-fiducial part
    (an LSTM autoencoder did not train on the window in time order).  A second channel, constant over
    the 140 steps, carries the beat's RR prematurity: ``rr_gain * log(RR before the beat / median of
    the bed's last rr_beats RR)``, so a premature beat of normal shape still reconstructs badly.  Both
    running medians are label-free and learn from the bed itself.

A window beat carries two noise levels, each judged against the bed's own by
:class:`ecgmon.monitor.learning.NoiseWatch`:

- ``Beat.noise``: the spread of sample-to-sample steps over its PR segment, relative to the bed's amplitude (flat in
  a clean ECG; muscle noise and other high-frequency noise raise it, baseline wander barely moves it);
- ``Beat.mismatch``: how much it differs from the beats just before it outside its QRS: the root mean square of the
  difference between its amplitude-scaled window and each of the ``MISMATCH_BEATS`` (3) beats before it, over the
  samples outside its QRS (before ``QRS_PRE_S``, 50 ms, and from ``QRS_POST_S``, 80 ms, after the fiducial), the
  least of the three; not measured (nan) for a bed's first beat, for a premature beat (RR under ``EARLY``, 0.8, of
  the bed's running median RR) and at fast rates (RR under ``FAST_RR_S``, 0.45 s), where the window lies on the
  previous beat's T wave, which moves with every change of RR (the fast ventricular runs of MIT-BIH 205 otherwise
  differed from beat to beat as much as noise does).  A clean ECG repeats itself from beat to beat; how well each
  beat matches the others is a standard signal-quality index (the template-matching index of Orphanidou C et al.,
  Signal-quality indices for the electrocardiogram and photoplethysmogram: derivation and applications to wireless
  monitoring, IEEE J Biomed Health Inform 19(3):832-838, 2015, correlates each beat with the average beat of a 10 s
  stretch).  Electrode motion and muscle noise do not repeat; electrode motion is low-frequency and in-band, which
  the PR segment's steps barely see at 360 Hz.  The least of three: a ventricular beat differs from the normal beats
  before it, but in a bigeminy or trigeminy the beat two or three before is of its own kind, and the normal beat
  after an ectopic matches the normal ones before it.  Outside the QRS: the QRS is where a ventricular beat differs
  in shape, and where respiration changes a normal beat's amplitude from beat to beat.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from ecgmon.core.limits import BEAT_LEN

Kind = Literal["ecg5000", "window"]

MISMATCH_BEATS = 3  # a beat's mismatch: the least difference from each of this many beats before it ...
QRS_PRE_S = 0.05  # ... outside its QRS: the samples more than this before the fiducial ...
QRS_POST_S = 0.08  # ... and from this after it
# a premature beat (RR under EARLY of the bed's running median RR) or one at a fast rate (RR under FAST_RR_S) is not
# measured (mismatch nan): its window lies on the previous beat's T wave, which moves with every change of RR
EARLY = 0.8
FAST_RR_S = 0.45


@dataclass(frozen=True, slots=True)
class Representation:
    kind: Kind = "ecg5000"
    pre_s: float = 0.12
    post_s: float = 0.25
    amp_beats: int = 32
    rr_beats: int = 16
    rr_gain: float = 2.0
    rr_clip: float = 1.0  # |log ratio| limit: a 3 s pause is not 'more normal' than a 1.5 s one

    @property
    def channels(self) -> int:
        return 1 if self.kind == "ecg5000" else 2

    def prematurity(self, ratio: float) -> float:
        """A window beat's RR channel for ``ratio``, its RR interval over the bed's median RR: ``rr_gain`` times the
        log of it, clipped to +/- ``rr_clip``."""
        return self.rr_gain * max(-self.rr_clip, min(self.rr_clip, math.log(ratio)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Representation:
        """A checkpoint's declaration; checkpoints written before representations existed are ECG5000's."""
        if not d:
            return cls()
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if known.get("kind", "ecg5000") not in ("ecg5000", "window"):
            raise ValueError(f"unknown beat representation {known['kind']!r}")
        return cls(**known)


_ARANGE = np.arange(4096, dtype=np.float64)


def _median(values: Iterable[float]) -> float:
    """The median of a few finite values, as ``np.median`` gives it (the mean of the two middle values of an even
    count), without numpy's per-call cost."""
    s = sorted(values)
    h = len(s) // 2
    return float(s[h]) if len(s) % 2 else (s[h - 1] + s[h]) / 2


def resample_beat(x: np.ndarray, start: float, stop: float, n: int = BEAT_LEN) -> np.ndarray:
    """``n`` samples of ``x`` between fractional indices ``start`` and ``stop`` (exclusive), z-normalised."""
    pos = start + np.arange(n) * ((stop - start) / n)
    v = np.interp(pos, np.arange(len(x)), x)
    sd = v.std()
    return ((v - v.mean()) / sd if sd > 1e-12 else v - v.mean()).astype(np.float32)


class WindowCutter:
    """One bed's ``window`` beats: ``cut(buf, fid_in_buf, rr_before_s)`` -> float32 (2, 140).

    Holds the bed's running amplitude and RR medians (label-free: every beat counts, the median keeps
    a minority of ectopics from moving them)."""

    def __init__(self, rep: Representation, fs: float) -> None:
        self.rep, self.fs = rep, fs
        self.pre, self.post = rep.pre_s * fs, rep.post_s * fs
        self.amps: deque[float] = deque(maxlen=rep.amp_beats)
        self.rrs: deque[float] = deque(maxlen=rep.rr_beats)
        self.noise = 0.0  # of the last beat cut
        self.scale = 0.0  # of the last beat cut: the bed's amplitude its window was divided by
        self.mismatch = math.nan  # of the last beat cut (nan: not measured)
        self.recent: deque[np.ndarray] = deque(maxlen=MISMATCH_BEATS)  # the last beats' scaled windows outside the QRS
        n = BEAT_LEN
        # window positions in time order, then rotated so that the sequence starts at the fiducial
        self.t = -self.pre + np.arange(n) * ((self.pre + self.post) / n)  # sample offsets from the fiducial
        k = int(np.searchsorted(self.t, 0.0))
        self.base = self.t <= -self.pre / 2  # PR segment
        self.outside = (self.t <= -QRS_PRE_S * fs) | (self.t >= QRS_POST_S * fs)  # outside the QRS
        self.order = np.concatenate([np.arange(k, n), np.arange(k)])

    def _mismatch(self, outside: np.ndarray) -> float:
        """The least RMS difference from the last ``MISMATCH_BEATS`` beats outside the QRS (module docstring)."""
        if not self.recent:
            return math.nan
        d = np.asarray(self.recent) - outside
        return float(np.sqrt(np.min(np.mean(d * d, axis=1))))

    def needs_after(self) -> int:
        """Samples needed after the fiducial before the beat can be cut."""
        return math.ceil(self.post) + 2

    def needs_before(self) -> int:
        return math.ceil(self.pre) + 2

    def cut(self, buf: np.ndarray, fid: float, rr_before_s: float | None) -> np.ndarray:
        # interpolated on the window's own stretch of the buffer (the same values as over the whole buffer: the
        # shift by an integer is exact), and the medians of a few values taken in Python (as np.median: the
        # middle value, or the mean of the two middle ones): a beat costs a third of what it did
        lo = max(0, math.floor(fid - self.pre))
        hi = min(len(buf), math.ceil(fid + self.post) + 2)
        v = np.interp((fid - lo) + self.t, _ARANGE[:hi - lo] if hi - lo <= len(_ARANGE) else np.arange(hi - lo),
                      buf[lo:hi])
        v = v - _median(v[self.base].tolist())
        # noise: the spread of sample-to-sample steps over the PR segment, which is flat in a clean ECG
        # (baseline wander barely moves it; muscle noise does)
        spread = float(np.std(np.diff(v[self.base])))
        out = np.empty((2, BEAT_LEN), dtype=np.float32)
        self.finish_cut(v, float(v.max() - v.min()), spread, rr_before_s, out)
        return out

    def finish_cut(self, v: np.ndarray, amp: float, spread: float, rr_before_s: float | None,
                   out: np.ndarray) -> None:
        """The per-bed half of :meth:`cut` (and of :func:`cut_many`): ``v`` the window less its baseline, ``amp``
        its peak-to-peak, ``spread`` the spread of its PR segment's steps (before scaling); writes the (2, 140) beat
        into ``out``, sets :attr:`noise`, :attr:`mismatch` and :attr:`scale`, and moves the bed's running medians on."""
        self.amps.append(amp)
        self.scale = scale = max(_median(self.amps), 1e-3)
        scaled = v / scale
        out[0] = scaled[self.order]
        self.noise = spread / scale
        if rr_before_s is None or not self.rrs:
            prem = 0.0
            early = False
        else:
            ratio = rr_before_s / _median(self.rrs)
            prem = self.rep.prematurity(ratio)
            early = ratio < EARLY or rr_before_s < FAST_RR_S
        outside = scaled[self.outside]
        self.mismatch = math.nan if early else self._mismatch(outside)
        self.recent.append(outside)
        if rr_before_s is not None:
            self.rrs.append(rr_before_s)
        out[1] = prem


def cut_many(jobs: Sequence[tuple[WindowCutter, np.ndarray, float, float | None]],
             ) -> tuple[np.ndarray, list[float], list[float], list[float]]:
    """:meth:`WindowCutter.cut` of many beats at once: ``jobs`` are ``(cutter, buf, fid_in_buf, rr_before_s)``, a
    bed's beats in their order (each cutter's running medians move on beat by beat, as one cut after another would
    move them).  Returns the beats, float32 ``(len(jobs), 2, 140)``, and each beat's noise level, mismatch and scale
    (what :attr:`WindowCutter.noise`, :attr:`WindowCutter.mismatch` and :attr:`WindowCutter.scale` hold after its
    cut): the same values as the cuts one
    by one.  The interpolation, the
    baseline medians, the peak-to-peak amplitudes and the PR segments' step spreads are array operations over all
    beats of one window design and sampling rate (np.interp's arithmetic: ``(b1 - b0) * (x - j) + b0``)."""
    out = np.empty((len(jobs), 2, BEAT_LEN), dtype=np.float32)
    noise = [0.0] * len(jobs)
    mismatch = [math.nan] * len(jobs)
    scale = [0.0] * len(jobs)
    groups: dict[tuple[float, float, float], list[int]] = {}
    for k, (c, _, _, _) in enumerate(jobs):
        groups.setdefault((c.pre, c.post, c.fs), []).append(k)
    for idx in groups.values():
        c0 = jobs[idx[0]][0]
        t = c0.t
        los = [max(0, math.floor(jobs[k][2] - c0.pre)) for k in idx]
        his = [min(len(jobs[k][1]), math.ceil(jobs[k][2] + c0.post) + 2) for k in idx]
        width = max(h - lo for lo, h in zip(los, his, strict=True)) + 1
        seg = np.zeros((len(idx), width))
        for r, (k, lo, h) in enumerate(zip(idx, los, his, strict=True)):
            seg[r, :h - lo] = jobs[k][1][lo:h]
            seg[r, h - lo:] = jobs[k][1][h - 1]  # np.interp holds the last value past the end
        pos = np.asarray([jobs[k][2] - lo for k, lo in zip(idx, los, strict=True)])[:, None] + t
        j = np.floor(pos).astype(np.int64)
        rows = np.arange(len(idx))[:, None]
        b0 = seg[rows, j]
        v = (seg[rows, j + 1] - b0) * (pos - j) + b0
        v = v - np.median(v[:, c0.base], axis=1)[:, None]
        amp = (v.max(axis=1) - v.min(axis=1)).tolist()
        # the spread row by row: np.std along an axis sums in another order than over one row (the last bit differs)
        spread = [float(np.std(d)) for d in np.diff(v[:, c0.base], axis=1)]
        for r, k in enumerate(idx):
            c = jobs[k][0]
            c.finish_cut(v[r], amp[r], spread[r], jobs[k][3], out[k])
            noise[k], mismatch[k], scale[k] = c.noise, c.mismatch, c.scale
    return out, noise, mismatch, scale

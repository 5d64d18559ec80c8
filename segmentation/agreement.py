"""Two-lead QRS agreement: a beat the first lead found in noise, which a second lead that sees the heart does not
confirm, is no beat.

Electrode motion and muscle noise reach the leads of a bed unequally (each electrode pair moves on its own), while a
QRS shows on every lead at the same moment: multi-lead detection is how monitors keep their beat count under noise
(ANSI/AAMI EC57 reports multi-lead detectors on the MIT-BIH Noise Stress Test; signal-quality indices such as bSQI
score a lead by the agreement of detections: Li Q, Mark RG, Clifford GD, Robust heart rate estimation from multiple
asynchronous noisy sources using signal quality indices and a Kalman filter, Physiol Meas 29(1):15-32, 2008).

Rule (:class:`LeadAgreement`): a beat of the first lead whose stretch failed its signal-quality index (``Beat.noisy``)
is dropped when the second lead has no QRS within ``tolerance_s`` (150 ms, EC57's match window) of its fiducial, and
the second lead is *reliable* there: of its last ``last`` (20) QRS, at least ``precision`` (0.9) had a QRS of the
first lead within ``tolerance_s`` (the second lead finds beats the first also finds: it is not in noise itself, nor a
lead whose detector counts T waves).  Beats in clean stretches are never dropped: a second lead that misses a kind
of beat (the V1 lead of MIT-BIH 208 misses 151 of its premature ventricular complexes) costs nothing there; a beat
that the second lead cannot judge (not reliable, or no word from it within ``wait_s``) is kept.

Chosen on the MIT-BIH DS1 records and the SVDB development half (two leads each: the rule changed DS1's QRS false
negatives 120 -> 121 and false positives 515 -> 493, the SVDB development half's 63/118 -> 63/115; the same rule on
every beat, noisy or not, cost DS1 282 true beats), its effect looked at on NSTDB 118 (in-sample there: at 6 dB false
beats 288 -> 142, missed 27 -> 31; 12 dB 19 -> 17).  ``precision`` 0.8 and a 100 ms window were tried and not taken
(more true beats lost on DS1 and SVDB).  The limits are not fitted: 150 ms is EC57's, 0.9 and 20 round numbers.

Every QRS counts with the sample at which its detector decided it (``Segmenter.found_when``): a QRS of one lead
confirms one of the other only if it was decided within ``lag_s`` (0.75 s) of signal after it, and the second lead's
reliability at a beat is judged on its QRS at least ``lag_s`` before the beat, so the beats kept do not depend on the
chunks either lead came in (a monitor's joined chunks, a device's packets, evaluate's 0.25 s).

Latency: a noisy beat waits until ``lag_s`` of the second lead's signal after it has come (about 0.35 s more than
the beat itself needed), or until the second lead is off or lost (the monitor says so within a chunk), or, a safety
net, ``wait_s`` (10 s) of the first lead's signal, whichever is first; beats behind a waiting beat wait with it
(beats leave in order). A bed with one lead is not touched.
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ecgmon.core.messages import Beat


@dataclass(frozen=True, slots=True)
class AgreementConfig:
    tolerance_s: float = 0.15  # a QRS of each lead this close is the same QRS (EC57's match window)
    last: int = 20  # the second lead's last QRS its reliability is judged on
    precision: float = 0.9  # of those, the share the first lead confirmed: the second lead is reliable
    lag_s: float = 0.75  # a QRS confirms one of the other lead if decided within this much signal after it
    wait_s: float = 10.0  # the longest a beat waits for a second lead that is not off (of the first lead's signal)


class LeadAgreement:
    """Per bed: the first lead's beats, the QRS both leads decided, and which beats leave.

    ``first(fids, whens, position)``: the first lead's QRS fiducials decided since the last call (absolute sample
    indices, float), the samples at which each was decided, and the lead's position (its next sample);
    ``second(...)`` the same for the second lead; ``push(beats, second_alive=)``: the first lead's new beats
    (increasing ``index``: window beats, whose index is the QRS fiducial) and whether the second lead is still coming
    (False: off or lost, nothing waits for it): the beats that leave now, in order; ``flush()``: every waiting beat
    (the stream ended), kept.  ``dropped``: beats dropped so far."""

    def __init__(self, fs: float, cfg: AgreementConfig = AgreementConfig()) -> None:
        self.fs, self.cfg = fs, cfg
        self.tol, self.lag = cfg.tolerance_s * fs, cfg.lag_s * fs
        self._first: deque[tuple[float, float]] = deque(maxlen=4096)  # the first lead's recent (fiducial, decided)
        self._second: deque[tuple[float, float]] = deque(maxlen=4096)  # the second lead's
        self._unjudged = 0  # the second lead's last QRS not judged yet (the end of _second)
        self._judged: deque[tuple[float, bool]] = deque(maxlen=8 * cfg.last)  # (fiducial, confirmed by the first)
        self._first_at = self._second_at = -np.inf  # each lead's position
        self._waiting: deque[Beat] = deque()
        self.dropped = 0

    def first(self, fids: Iterable[float], whens: Iterable[float], position: float) -> None:
        self._first.extend(zip(fids, whens, strict=True))
        self._first_at = max(self._first_at, position)
        self._judge()

    def second(self, fids: Iterable[float], whens: Iterable[float], position: float) -> None:
        new = list(zip(fids, whens, strict=True))
        self._second.extend(new)
        self._unjudged = min(self._unjudged + len(new), len(self._second))
        self._second_at = max(self._second_at, position)
        self._judge()

    def _judge(self) -> None:
        # the second lead's QRS that the first lead has passed by lag_s: confirmed by the first lead or not
        while self._unjudged and self._second[-self._unjudged][0] + self.lag <= self._first_at:
            f = self._second[-self._unjudged][0]
            self._judged.append((f, _confirms(self._first, f, self.tol, self.lag)))
            self._unjudged -= 1
        # what neither a judgement nor a waiting beat can need any more
        upto = min(self._first_at, self._second_at) - self.lag - self.tol - self.cfg.wait_s * self.fs
        while self._first and self._first[0][0] < upto:
            self._first.popleft()
        while len(self._second) > self._unjudged and self._second[0][0] < upto:
            self._second.popleft()

    def reliable(self, at: float) -> bool:
        """The second lead's last ``last`` QRS ``lag_s`` or more before sample ``at`` were at least ``precision``
        confirmed by the first lead."""
        k = bisect.bisect_right(self._judged, at - self.lag, key=lambda j: j[0])
        n = self.cfg.last
        return k >= n and sum(ok for _, ok in itertools.islice(self._judged, k - n, k)) >= self.cfg.precision * n

    def push(self, beats: Iterable[Beat], *, second_alive: bool = True) -> list[Beat]:
        self._waiting.extend(beats)
        out: list[Beat] = []
        while self._waiting:
            b = self._waiting[0]
            if not b.noisy:
                out.append(self._waiting.popleft())
                continue
            if b.index + self.lag > self._second_at:  # the second lead has not come that far yet
                if second_alive and b.index + self.cfg.wait_s * self.fs > self._first_at:
                    break  # wait for it
                out.append(self._waiting.popleft())  # waited long enough, or it went: kept
                continue
            self._waiting.popleft()
            if self.reliable(b.index) and not _confirms(self._second, b.index, self.tol, self.lag):
                self.dropped += 1
                continue
            out.append(b)
        return out

    def flush(self) -> list[Beat]:
        out = list(self._waiting)
        self._waiting.clear()
        return out


def _confirms(qrs: deque[tuple[float, float]], at: float, tol: float, lag: float) -> bool:
    """Whether ``qrs`` (increasing fiducials, each with its decision sample) hold one within ``tol`` of ``at`` that
    was decided by ``at + lag``."""
    k = bisect.bisect_left(qrs, at - tol, key=lambda q: q[0])
    while k < len(qrs) and qrs[k][0] <= at + tol:
        if qrs[k][1] <= at + lag:
            return True
        k += 1
    return False

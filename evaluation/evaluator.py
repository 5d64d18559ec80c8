"""Ground-truth evaluation as a sink: which judged beat is which reference beat, and how the verdicts fare.

Sources that know the truth (the ECG5000 replay, annotated recordings, simulated devices with
a labels topic) put it on their chunks; the scoring path never sees it.  A judged beat matches
the oldest pending reference beat within ``tolerance_s`` of its fiducial; reference beats that
fall behind without a match are missed.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from ecgmon.core.matching import match
from ecgmon.core.messages import BeatScore, Chunk, TrueBeat
from ecgmon.monitor.sinks import NullSink


@dataclass(slots=True)
class Confusion:
    """Verdicts against the truth; abnormal is the positive class."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def add(self, abnormal: bool, flagged: bool) -> None:
        if abnormal:
            self.tp += flagged
            self.fn += not flagged
        else:
            self.fp += flagged
            self.tn += not flagged

    @property
    def sensitivity(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def specificity(self) -> float | None:
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else None

    @property
    def accuracy(self) -> float | None:
        n = self.tp + self.tn + self.fp + self.fn
        return (self.tp + self.tn) / n if n else None


@dataclass(slots=True)
class _Bed:
    fs: float
    pending: deque[TrueBeat] = field(default_factory=deque)
    last: TrueBeat | None = None  # the reference beat the last judged beat matched


class Evaluator(NullSink):
    """Matches verdicts to reference beats; counts the confusion, per-class flag rates and, for the
    ECG5000 replay, agreement with the offline model's verdict on the same dataset row."""

    def __init__(self, *, tolerance_s: float, offline_flags: dict[int, bool] | None = None) -> None:
        self.tolerance_s = tolerance_s
        self.offline_flags = offline_flags or {}
        self.beds: dict[str, _Bed] = {}
        self.expected = 0  # reference beats seen
        self.matched = 0
        self.confusion = Confusion()
        self.per_class: dict[str, Counter[str]] = {}  # label -> {"beats": n, "flagged": k}
        self.agree = 0
        self.compared = 0
        self.learning = 0  # matched beats judged while their bed was learning (no verdict)
        self.noisy = 0  # matched beats that came in noise (no verdict)

    def on_chunk(self, chunk: Chunk) -> None:
        bed = self.beds.get(chunk.patient)
        if bed is None:
            bed = self.beds[chunk.patient] = _Bed(chunk.fs)
        bed.fs = chunk.fs
        if chunk.truth:
            bed.pending.extend(chunk.truth)
            self.expected += len(chunk.truth)

    def on_beat(self, score: BeatScore) -> None:
        b = score.beat
        bed = self.beds.get(b.patient)
        if bed is None:
            return
        bed.last = t = self._match(bed, b.index)
        if t is None:
            return
        self.matched += 1
        if score.learning is not None:  # no verdict while the bed learns: matched, not scored
            self.learning += 1
            return
        self.noisy += score.noisy  # no verdict in noise either; scored as not flagged (a missed ectopic counts)
        c = self.per_class.setdefault(t.label, Counter())
        c["beats"] += 1
        c["flagged"] += score.flagged
        if t.abnormal is not None:
            self.confusion.add(t.abnormal, score.flagged)
        if t.ref in self.offline_flags:
            self.compared += 1
            self.agree += self.offline_flags[t.ref] == score.flagged

    def _match(self, bed: _Bed, index: int) -> TrueBeat | None:
        """The EC57 rule (:func:`ecgmon.core.matching.match`) for one detection: reference beats it has passed
        by more than the window are missed; of those left, the oldest within the window is its match (later
        ones lie further from it)."""
        tol = self.tolerance_s * bed.fs
        pend = bed.pending
        while pend and pend[0].start < index - tol:  # reference beats passed without a match: missed
            pend.popleft()
        if pend and match(np.array([pend[0].start]), np.array([index]), tol)[0] == 0:
            return pend.popleft()
        return None

    @property
    def sensitivity(self) -> float | None:
        return self.confusion.sensitivity

    @property
    def specificity(self) -> float | None:
        return self.confusion.specificity

    def label_of(self, score: BeatScore) -> str | None:
        """The reference class of the beat judged last for its bed (call right after ``on_beat``)."""
        bed = self.beds.get(score.beat.patient)
        return bed.last.label if bed is not None and bed.last is not None else None

    def pending(self) -> int:
        """Reference beats waiting for a judged beat (they pile up only when matching goes wrong)."""
        return sum(len(b.pending) for b in self.beds.values())

    def report(self) -> dict[str, object]:
        """Figures for the summary line; empty when the source carried no truth."""
        if not self.expected:
            return {}
        c = self.confusion
        return {
            "sensitivity": _r(c.sensitivity), "specificity": _r(c.specificity), "accuracy": _r(c.accuracy),
            "beats_expected": self.expected, "beats_matched": self.matched,
            "beats_pending": self.pending(),  # reference beats no verdict has reached yet (queued beats at a stop)
            "agreement_offline": _r(self.agree / self.compared if self.compared else None),
            "beats_compared": self.compared, "beats_learning": self.learning,
            "beats_noisy": self.noisy,
            "flagged_per_class": {k: {"beats": v["beats"], "flagged": v["flagged"],
                                      "share": round(v["flagged"] / v["beats"], 4)}
                                  for k, v in sorted(self.per_class.items())},
        }


def _r(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(v, nd)

"""One bed's model: turns a beat's reconstruction result into its verdict, and learns the bed's normal.

In the spirit of river's ``score_one`` / ``learn_one``: the scorer gives every beat's loss and residual
``x - reconstruction`` (one model call for all beds, :meth:`ecgmon.models.scorer.Scorer.score_batch`);
the driver hands each beat to its bed's :class:`BedModel`, which owns everything that makes the verdict
the bed's own:

- without per-bed learning (ECG5000 models, ``--learn 0``): the loss against the population threshold;
- with per-bed learning (:mod:`ecgmon.monitor.learning`): while the bed learns, its residuals are kept
  and no verdict is given; afterwards the loss is taken against the bed's learnt offset
  (:func:`~ecgmon.monitor.learning.bed_loss`), against its threshold ``shift + margin``; the artifact
  watch withholds verdicts on noisy beats, the rhythm watch judges beats by their shape alone while the
  rhythm has changed (atrial fibrillation or flutter), and normal beats move the offset slowly.

RR context (issue 20 item 3): the RR prematurity channel is judged against the bed's own rhythm.  A beat is
judged by its shape alone, besides while the rhythm watch is on, when the bed's rhythm is irregularly irregular
(the median absolute successive difference of its last ``RR_BEATS`` RR intervals over their median above
``IRREGULAR``: atrial fibrillation, before the watch has filled) or when the beat comes late (its RR over ``LATE``
times the bed's median: the beat after a pause of sinus arrhythmia, a block or a compensatory pause; the pause
has its own alarm, and lateness is no sign of an ectopic beat).

What the driver needs besides the verdict (the technical conditions to follow, whether learning has just
finished) comes back in one :class:`BedVerdict`.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecgmon.core.messages import Beat, BeatScore
from ecgmon.monitor.learning import BedLearner, LearningConfig, Learnt, RhythmWatch, ShapeWatch, bed_loss

RR_BEATS = 16  # the bed's rhythm: its last RR intervals
IRREGULAR = 0.1  # median |successive RR difference| over the median RR above this: irregularly irregular
LATE = 1.3  # a beat whose RR is over this times the bed's median RR comes late (after a pause)


def rr_context(rrs: Sequence[float], rr: float) -> str | None:
    """Why a beat with RR ``rr`` (s) after the bed's RR intervals ``rrs`` (s, oldest first) is judged by its shape
    alone: "irregular" (the rhythm is irregularly irregular), "late" (after a pause), or None.  Needs 8 RR.
    Successive RR differences are the usual measure of atrial fibrillation's irregularity (Tateno K, Glass L,
    Med Biol Eng Comput 39:664-671, 2001); medians, so that a few ectopic beats change neither."""
    if len(rrs) < 8:
        return None
    r = sorted(rrs)
    med = r[len(r) // 2]
    d = sorted(abs(b - a) for a, b in itertools.pairwise(rrs))
    if d[len(d) // 2] > IRREGULAR * med:
        return "irregular"
    return "late" if rr > LATE * med else None


@dataclass(frozen=True, slots=True)
class BedVerdict:
    """A beat's verdict and what its bed's technical watches say after it (None: not watched here)."""

    score: BeatScore
    learnt_now: bool = False  # the bed finished learning with this beat
    artifact: bool | None = None  # the artifact condition (too noisy to judge) is on
    rhythm_changed: bool | None = None  # the rhythm-changed condition is on
    shape_changed: bool | None = None  # most beats unlike the learnt shape (learning.ShapeWatch)


class BedModel:
    """The verdicts of one bed (see the module docstring).

    ``threshold``: the population threshold; ``margin``: the checkpoint's per-bed margin (with
    ``learning``); ``shape``: one beat's shape as the model reads it; ``learnt``: what the bed learnt in an
    earlier run (None: it learns now)."""

    def __init__(self, fs: float, *, threshold: float, shape: tuple[int, ...], learning: LearningConfig | None = None,
                 margin: float = float("nan"), learnt: Learnt | None = None) -> None:
        self.threshold, self.margin = threshold, margin
        self.learner = BedLearner(fs, learning, shape, learnt) if learning is not None else None
        self.rhythm = RhythmWatch()
        self.shape = ShapeWatch()
        self.rrs: deque[float] = deque(maxlen=RR_BEATS)

    # ------------------------------------------------------------------ state

    @property
    def learns(self) -> bool:
        """This bed has per-bed learning (learning now, or learnt)."""
        return self.learner is not None

    @property
    def learning(self) -> bool:
        """Learning now: verdicts and physiological alarms are held."""
        return self.learner is not None and self.learner.learning

    @property
    def learnt(self) -> Learnt | None:
        """What the bed has learnt (None while it learns, or without learning)."""
        lr = self.learner
        return lr.learnt if lr is not None and not lr.learning else None

    def progress(self, index: int | None) -> float | None:
        """0..1 of the learning period at sample ``index``, while learning; else None."""
        return self.learner.progress(index) if self.learner is not None and self.learner.learning else None

    def relearn(self) -> bool:
        """Learn the bed's normal again from the next beat; False when the bed has no learning."""
        if self.learner is None:
            return False
        self.learner.restart()
        self.rhythm = RhythmWatch()
        self.shape = ShapeWatch()
        self.rrs.clear()
        return True

    # ------------------------------------------------------------------ learn_one / score_one

    def judge(self, beat: Beat, loss: float, residual: np.ndarray, now: float) -> BedVerdict:
        """One beat: learn from it while learning, score it, then let a normal beat move the offset.

        ``loss``: its reconstruction loss (the scorer's, used without learning); ``residual``: its
        ``x - reconstruction``, the model's input shape; ``now``: ``time.monotonic()``."""
        learnt_now = self.learn_one(beat, residual) if self.learning else False
        v = self.score_one(beat, loss, residual, now)
        if learnt_now:
            v = BedVerdict(v.score, True, v.artifact, v.rhythm_changed, v.shape_changed)
        s = v.score
        if self.learnt is not None and not s.flagged and not s.noisy and not self.rhythm.active:
            self.learner.follow(residual)  # type: ignore[union-attr]  # learnt implies a learner
        return v

    def learn_one(self, beat: Beat, residual: np.ndarray) -> bool:
        """While learning: keep the beat's residual and noise level; True when learning has just finished.  A beat
        in a stretch that failed the signal-quality index (``Beat.noisy``) teaches the bed no shape."""
        return self.learner is not None and self.learner.learning and self.learner.add(
            beat.index, None if beat.noisy else residual, beat.noise, beat.mismatch)

    def score_one(self, beat: Beat, loss: float, residual: np.ndarray, now: float) -> BedVerdict:
        """The beat's verdict as the bed stands now (the artifact and rhythm watches see it)."""
        lr = self.learner
        if lr is None:
            return BedVerdict(BeatScore(beat, float(loss), self.threshold, now, noisy=beat.noisy))
        part = bed_loss(residual, lr.offset)  # per channel: the wave's and the RR prematurity's parts
        total = float(part.mean())
        shape, rr = (float(part[0]) / len(part), float(part[1:].sum()) / len(part)) if len(part) > 1 else (None, None)
        if lr.learning:
            return BedVerdict(BeatScore(beat, total, self.threshold, now, learning=lr.progress(beat.index),
                                        shape_loss=shape, rr_loss=rr))
        assert lr.learnt is not None
        thr = lr.learnt.shift + self.margin
        noisy = lr.noise.beat(beat.noise, beat.mismatch)
        # beats that cannot be judged get no verdict, and the alarm policy does not see them; a beat whose stretch
        # failed the signal-quality index (Beat.noisy, segmentation.sqi) neither, but leaves the artifact watch as is
        if noisy or beat.noisy:
            return BedVerdict(BeatScore(beat, total, thr, now, noisy=True, shape_loss=shape, rr_loss=rr),
                              artifact=True if noisy else None)
        if shape is None:
            return BedVerdict(BeatScore(beat, total, thr, now), artifact=False)
        # the rhythm watch counts beats flagged by their timing alone (their shape is the bed's normal);
        # while the rhythm has changed, beats are judged by their shape alone
        changed = self.rhythm.update(total > thr and shape <= thr)
        reshaped = self.shape.update(shape > thr)
        context = rr_context(self.rrs, beat.rr_prev_s)
        if 0.2 <= beat.rr_prev_s <= 3.0:
            self.rrs.append(beat.rr_prev_s)
        by_shape = changed or context is not None
        return BedVerdict(BeatScore(beat, shape if by_shape else total, thr, now, shape_loss=shape, rr_loss=rr,
                                    by_shape=by_shape), artifact=False, rhythm_changed=changed,
                          shape_changed=reshaped)

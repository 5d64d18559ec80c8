"""Per-bed learning: each bed learns its own normal in its first minutes, without labels.

A model trained on many patients reconstructs many shapes well, a wide ventricular beat included
(bundle-branch-block patients' normal beats are wide), so its loss alone does not say what is
abnormal *for this patient*.  Bedside monitors learn each patient's dominant beat in the first
minutes (ANSI/AAMI EC57 gives such algorithms a 5-minute learning period); so does ecgmon:

- during ``learn_s`` seconds of the bed's signal (counted in samples, so a replay at any speed learns
  over the same beats), every beat is scored and its reconstruction residual ``x - reconstruction``
  kept (at most ``keep`` of them, evenly thinned);
- at the end, the bed's **offset** is the per-sample median of those residuals: the part of its
  dominant beat the population model does not reconstruct.  A median, so a learning period with a
  minority of ectopic beats (25-37 % in MIT-BIH 119 and 208) still learns the dominant beat;
- from then on a beat's loss is ``mean((x - reconstruction - offset)^2)``: still the autoencoder's
  reconstruction error, with the bed's own systematic misfit taken out; its **shift** (the median of
  those losses over the learning beats) is added to the checkpoint's ``bed_margin`` to make the bed's
  threshold;
- after learning the offset follows the bed's normal beat slowly (``follow_rate`` of the way to each
  beat judged normal, not noisy, not in a changed rhythm): over half an hour a normal beat's shape
  drifts (MIT-BIH 112's R wave shrinks against its T wave) and a frozen offset flagged a fifth of its
  normal beats by the end.

While a bed learns, its verdicts and physiological alarms are held (technical alarms are not).
What a bed has learnt is kept in a state file (:class:`LearntStore`), written whole or not at all,
and read back at start-up unless the bed has been gone for ``forget_s``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ecgmon.core.limits import LEARN_S

FORMAT = "ecgmon-learnt/1"
FORGET_S = 3600.0
# a noisy beat: its PR segment's sample-to-sample steps spread NOISE_RATIO times as much as over the bed's
# learning period (and at least NOISE_FLOOR of its QRS amplitude; a P wave's end in the segment gives some
# beds 0.03 when clean, others 0.004)
NOISE_RATIO = 3.0
NOISE_FLOOR = 0.02
# a mismatched beat: it differs outside its QRS from the 3 beats before it (segmentation.represent) MISMATCH_RATIO
# times as much as the bed's learning beats did, and by at least MISMATCH_FLOOR of its QRS amplitude (the learnt
# levels of MIT-BIH DS1 and SVDB development records: 0.005-0.09); the bed's signal is too noisy to judge once
# MISMATCH_RAISE of its last MISMATCH_WINDOW beats are, judged again when MISMATCH_CLEAR or fewer are
MISMATCH_RATIO = 4.0
MISMATCH_FLOOR = 0.04
MISMATCH_WINDOW = 8
MISMATCH_RAISE = 7
MISMATCH_CLEAR = 3


def bed_loss(residual: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """A beat's loss against its bed's offset, per channel: ``mean((residual - offset)^2)`` over its samples,
    shape (channels,) for a (channels, 140) residual, (1,) for a (140,) one.  Their mean is the beat's loss:
    the reconstruction error with the bed's systematic misfit taken out (with a zero offset, the plain
    reconstruction loss)."""
    d2 = (residual - offset) ** 2
    return d2.reshape(len(d2), -1).mean(axis=1) if d2.ndim == 2 else d2.mean(keepdims=True)


def bed_losses(residuals: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """:func:`bed_loss` of a stack of residuals (N, *shape), each beat's mean over its channels: shape (N,)."""
    return ((residuals - offset) ** 2).reshape(len(residuals), -1).mean(axis=1)


@dataclass(frozen=True, slots=True)
class LearningConfig:
    """``learn_s``: seconds of signal; 0 turns per-bed learning off (population threshold)."""

    learn_s: float = LEARN_S
    min_beats: int = 60  # learning goes on past learn_s until this many beats were seen
    keep: int = 512  # residuals kept for the median (evenly thinned beyond)
    follow_rate: float = 1 / 256  # after learning: how far each normal beat moves the offset (0: frozen)
    forget_s: float = FORGET_S  # a bed absent this long (monitor stopped or device silent) learns again


@dataclass(slots=True)
class Learnt:
    """What a bed has learnt: its offset (the model's input shape), its loss shift, and when."""

    offset: np.ndarray
    shift: float
    beats: int
    learnt_at: float  # wall clock
    last_seen: float = field(default_factory=time.time)
    noise: float = 0.0  # the median noise level of its learning beats
    mismatch: float = math.nan  # the median mismatch of its learning beats (nan: not known, as in a state saved before
    # mismatch existed: no beat counts as mismatched)


class BedLearner:
    """One bed's learning state: ``learning`` until :meth:`add` has seen enough, then ``learnt``."""

    def __init__(self, fs: float, cfg: LearningConfig, shape: tuple[int, ...], learnt: Learnt | None = None) -> None:
        self.fs, self.cfg, self.shape = fs, cfg, shape
        self.learnt = learnt
        self.start: int | None = None  # sample index of the first learning beat
        self.seen = 0
        self._res: list[np.ndarray] = []
        self._noise: list[float] = []
        self._mismatch: list[float] = []
        self._stride = 1
        self.learning = learnt is None and cfg.learn_s > 0
        self.noise = NoiseWatch(learnt.noise, learnt.mismatch) if learnt is not None else NoiseWatch(0.0, math.nan)

    @property
    def zeros(self) -> np.ndarray:
        return np.zeros(self.shape, dtype=np.float32)

    @property
    def offset(self) -> np.ndarray:
        return self.learnt.offset if self.learnt is not None and not self.learning else self.zeros

    def restart(self) -> None:
        """Learn again from the next beat (a relearn request, a lead change, a long absence)."""
        self.learning = self.cfg.learn_s > 0
        self.start, self.seen, self._res, self._noise, self._stride = None, 0, [], [], 1
        self._mismatch = []
        if self.learning:
            self.learnt = None

    def progress(self, index: int | None = None) -> float:
        """0..1 of the learning period (by signal time, then by the beat minimum)."""
        if not self.learning:
            return 1.0
        if self.start is None or index is None:
            return 0.0
        by_time = (index - self.start) / (self.cfg.learn_s * self.fs)
        return max(0.0, min(0.99, by_time, self.seen / self.cfg.min_beats))

    def add(self, index: int, residual: np.ndarray | None, noise: float = 0.0, mismatch: float = math.nan) -> bool:
        """One learning beat's residual (and noise level and mismatch, ``Beat.noise`` and ``Beat.mismatch``); True
        when learning has just finished.  ``residual`` None: a beat in a stretch that failed the signal-quality index -
        its noise levels are kept, its shape is not learnt (nor counted towards ``min_beats``)."""
        if self.start is None:
            self.start = index
        if index - self.start >= self.cfg.learn_s * self.fs and self.seen >= self.cfg.min_beats:
            self._finish()
            return True
        self._noise.append(noise)
        self._mismatch.append(mismatch)
        if residual is None:
            return False
        if self.seen % self._stride == 0:
            self._res.append(np.asarray(residual, dtype=np.float32))
            if len(self._res) >= self.cfg.keep:  # thin evenly: keep every other one, sample half as often
                self._res = self._res[::2]
                self._stride *= 2
        self.seen += 1
        return False

    def follow(self, residual: np.ndarray) -> None:
        """After learning: move the offset a step of ``follow_rate`` towards a beat judged normal (and not
        noisy, and not in a changed rhythm), so that a slow drift of the bed's normal beat (posture,
        electrode contact, amplitude) is followed; ectopic beats are flagged, so they are not learnt."""
        if self.learnt is not None and self.cfg.follow_rate > 0:
            self.learnt.offset += self.cfg.follow_rate * (np.asarray(residual, dtype=np.float32) - self.learnt.offset)

    def _finish(self) -> None:
        r = np.stack(self._res)
        offset = np.median(r, axis=0).astype(np.float32)
        corrected = bed_losses(r, offset)
        noise = float(np.median(self._noise)) if self._noise else 0.0
        measured = [m for m in self._mismatch if math.isfinite(m)]
        mismatch = float(np.median(measured)) if measured else math.nan
        self.learnt = Learnt(offset, float(np.median(corrected)), self.seen, time.time(), noise=noise,
                             mismatch=mismatch)
        self.noise = NoiseWatch(noise, mismatch)
        self.learning = False
        self._res, self._noise, self._mismatch = [], [], []


class Watch:
    """A condition over the last ``window`` beats, with hysteresis: on once ``raise_k`` of them count
    (with ``full``: only once the window is full), off again when ``clear_k`` or fewer do."""

    def __init__(self, window: int, raise_k: int, clear_k: int, *, full: bool = False) -> None:
        self.recent: deque[bool] = deque(maxlen=window)
        self.raise_k, self.clear_k, self.full = raise_k, clear_k, full
        self.active = False

    def update(self, counts: bool) -> bool:
        self.recent.append(counts)
        n = sum(self.recent)
        if not self.active and n >= self.raise_k and (not self.full or len(self.recent) == self.recent.maxlen):
            self.active = True
        elif self.active and n <= self.clear_k:
            self.active = False
        return self.active


class RhythmWatch(Watch):
    """After learning: has the rhythm changed (atrial fibrillation, flutter) rather than the beats?

    The real-ECG model reconstructs a beat's shape and its RR prematurity.  In an irregular rhythm
    almost every beat is 'premature' against the learnt RR, so every beat would be flagged for its
    timing although its shape is the bed's normal.  The watch counts, over the last 32 beats, those
    flagged by timing alone (over the threshold, but not by their shape part alone): at 12 or more
    the rhythm has changed; it is over when 4 or fewer remain.  A bigeminy of ventricular beats does
    not trigger it (those beats are flagged by their shape).
    """

    def __init__(self) -> None:
        super().__init__(32, 12, 4, full=True)


class ShapeWatch(Watch):
    """After learning: do most beats differ in shape from the learnt ones (an electrode or lead moved or changed, a
    polarity reversed, a new conduction pattern)?

    Every beat is then flagged and counted "other abnormal", on the tile and in the ectopy counts, with nothing to
    say why (a newcomer's polarity reversal after learning, session 27: 41 % of normal beats flagged, "O 64/min").
    The watch counts, over the last 32 judged beats, those flagged by their shape part alone: at 28 or more (the
    window full) the shape has changed; it is over at 8 or fewer.  An isolated ventricular beat, a bigeminy (half)
    and short runs stay under it; a sustained ventricular rhythm does not (the monitor does not raise it under a VT or
    VF alarm).  On MIT-BIH DS1 (headless replay, 2026-12-03) it would have come on 108 (at 1,802 s, its noisy end),
    205 (its VT), 207 (its flutter and idioventricular rhythm) and 223 (its 578 s bidirectional VT, which the VT
    rule misses).
    """

    def __init__(self) -> None:
        super().__init__(32, 28, 8, full=True)


class NoiseWatch:
    """Is the bed's signal too noisy to judge its beats?  Two bed-relative signal-quality indices, each with its watch;
    the bed is too noisy while either watch is on.

    - High-frequency noise: a beat's PR segment noise (``Beat.noise``) over ``NOISE_RATIO`` (3) times the bed's learnt
      level and over ``NOISE_FLOOR`` (0.02 of its QRS amplitude) counts; on at 4 of the last 8 beats, off at 1 or
      none.
    - Noise that does not repeat from beat to beat, electrode motion above all: a beat's mismatch (``Beat.mismatch``,
      :class:`~ecgmon.segmentation.represent.WindowCutter`: the least RMS difference outside its QRS from each of the
      3 beats before it, relative to the bed's QRS amplitude) over ``MISMATCH_RATIO`` (4) times the bed's learnt
      level (the median over its learning period) and over ``MISMATCH_FLOOR`` (0.04) counts; on at
      ``MISMATCH_RAISE`` (7) of the last ``MISMATCH_WINDOW`` (8) beats measured, off at ``MISMATCH_CLEAR`` (3) or
      fewer.  A beat whose mismatch is not measured (a premature beat, a fast rate) leaves the watch as it is; a
      learnt level not known (nan: a state learnt before mismatch existed) counts nothing.

    Bed-relative, because absolute levels do not separate noise from clean signal across patients: on MIT-BIH
    DS1 and SVDB development records the learnt (clean) mismatch ranges 0.005-0.09, and an earlier study here
    found the same of absolute stretch indices (basSQI, the 0.5-4 and 5-15 Hz power shares, kurtosis, the QRS's
    stand-out) against NSTDB's electrode motion; against NSTDB 118's own clean level, its 18 dB electrode motion
    raises the median mismatch of 8 beats 2.3-5.8 fold (5th percentile to median).  7 of 8: an isolated
    ventricular beat, a couplet or a bigeminy (each of whose beats matches the one two before it) leaves at least
    two beats of 8 that match, so ventricular beats in a clean signal keep their verdicts.  The ratio, floor and
    counts were chosen on NSTDB 118 (the only noise record series in the development data: in-sample) against
    MIT-BIH DS1 and the SVDB development half (the share of beats called noisy on them, and the ventricular beats
    that lose their verdict); docs/alarms.md ("artifact") gives the figures.
    """

    def __init__(self, noise: float, mismatch: float = math.nan) -> None:
        self.pr = Watch(8, 4, 1)
        self.pr_limit = max(NOISE_FLOOR, NOISE_RATIO * noise)
        self.mm = Watch(MISMATCH_WINDOW, MISMATCH_RAISE, MISMATCH_CLEAR)
        self.mm_limit = max(MISMATCH_FLOOR, MISMATCH_RATIO * mismatch) if math.isfinite(mismatch) else math.inf

    @property
    def active(self) -> bool:
        return self.pr.active or self.mm.active

    def beat(self, noise: float, mismatch: float = math.nan) -> bool:
        """One beat's noise level and mismatch; True while the bed is too noisy to judge (this beat included).  A
        mismatch not measured (nan: a premature beat, a fast rate) leaves its watch as it is."""
        a = self.pr.update(noise > self.pr_limit)
        b = self.mm.update(mismatch > self.mm_limit) if math.isfinite(mismatch) else self.mm.active
        return a or b


def _mismatch(b: dict[str, Any]) -> float:
    """A saved bed's learnt mismatch; nan when not saved (a state written before it existed)."""
    v = b.get("mismatch")
    return math.nan if v is None else float(v)


def bed_to_json(fs: float, lt: Learnt) -> dict[str, Any]:
    """One bed's learnt state as the state file (and the workers' key-value bucket) keep it."""
    return {"fs": fs, "offset": np.round(lt.offset.astype(np.float64), 6).tolist(), "shift": lt.shift,
            "beats": lt.beats, "learnt_at": lt.learnt_at, "last_seen": lt.last_seen, "noise": lt.noise,
            "mismatch": lt.mismatch if math.isfinite(lt.mismatch) else None}


def bed_from_json(b: dict[str, Any]) -> tuple[float, Learnt]:
    """The inverse of :func:`bed_to_json`; KeyError, ValueError or TypeError when it is not one."""
    return float(b["fs"]), Learnt(np.asarray(b["offset"], dtype=np.float32), float(b["shift"]), int(b["beats"]),
                                  float(b["learnt_at"]), float(b["last_seen"]), float(b.get("noise", 0.0)),
                                  _mismatch(b))


class LearntStates(Protocol):
    """Where beds' learnt states are kept: a file (:class:`LearntStore`) or, for distributed workers, a JetStream
    key-value bucket (:class:`ecgmon.monitor.jetstream.KvLearntStore`).  ``save`` runs on the disk writer's thread."""

    problem: str

    @property
    def where(self) -> str: ...

    def load(self) -> dict[str, tuple[float, Learnt]]: ...

    def save(self, beds: dict[str, tuple[float, Learnt]]) -> None: ...


class LearntStore:
    """The learnt state of every bed in one JSON file, for one model (its sha256).

    Written to a temporary file, fsynced and renamed over the old one, so a crash leaves either the
    old file or the new one.  An unreadable file, or one for another model, is reported and ignored
    (the beds learn again); it is never a reason not to monitor.
    """

    def __init__(self, path: str | Path, model: str, *, forget_s: float = FORGET_S) -> None:
        self.path, self.model, self.forget_s = Path(path), model, forget_s
        self.problem = ""  # why the file was not used, for the summary

    @property
    def where(self) -> str:
        return str(self.path)

    def load(self) -> dict[str, tuple[float, Learnt]]:
        """patient -> (fs, what it learnt), for beds seen within ``forget_s``."""
        if not self.path.exists():
            return {}
        try:
            d = json.loads(self.path.read_text(encoding="utf-8"))
            if d.get("format") != FORMAT:
                raise ValueError(f"format {d.get('format')!r}")
            if d.get("model") != self.model:
                self.problem = "learnt with another model; beds learn again"
                return {}
            now, out = time.time(), {}
            for patient, b in d["beds"].items():
                if now - float(b["last_seen"]) > self.forget_s:
                    continue
                out[str(patient)] = (float(b["fs"]), Learnt(np.asarray(b["offset"], dtype=np.float32),
                                                            float(b["shift"]), int(b["beats"]),
                                                            float(b["learnt_at"]), float(b["last_seen"]),
                                                            float(b.get("noise", 0.0)), _mismatch(b)))
            return out
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
            self.problem = f"unreadable ({type(err).__name__}: {err}); beds learn again"
            return {}

    def save(self, beds: dict[str, tuple[float, Learnt]]) -> None:
        d: dict[str, Any] = {"format": FORMAT, "model": self.model, "saved": time.time(), "beds": {
            p: {"fs": fs, "offset": np.round(lt.offset.astype(np.float64), 6).tolist(), "shift": lt.shift,
                "beats": lt.beats, "learnt_at": lt.learnt_at, "last_seen": lt.last_seen, "noise": lt.noise,
            "mismatch": lt.mismatch if math.isfinite(lt.mismatch) else None}
            for p, (fs, lt) in beds.items() if math.isfinite(lt.shift)}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(d, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
        try:  # the rename itself survives a power cut only once the folder is synced
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass

"""ANSI/AAMI EC57-style evaluation of the monitor on annotated recordings, through the live pipeline.

Each record is a bed; the records play at once, as fast as the monitor takes them, through the
same code that runs live (segmenter, micro-batcher, scorer, alarm policy).  A sink collects every
verdict and alarm; the statistics are then counted against the reference annotations:

- each bed's learning period (``learn_s``, 300 s, and on until its learning has seen enough beats) is
  excluded from every figure, on both sides of the match and exactly as the monitor ran it: the
  detections it did not judge (learning), the reference beats they match, and the reference beats it
  missed while learning (their nearest detection was a learning one);
- ventricular flutter/fibrillation episodes (``[`` .. ``]`` in the reference annotations: MIT-BIH 207's 2.4 min
  of flutter) are left out of every beat-by-beat figure (QRS, flags, beat types), on both sides, as EC57 and the
  ``qrs`` protocol do: there is no QRS to match there (the detections on 207's flutter waves were 333 of its 342
  false positives; the VF alarm, not a beat count, is what such an episode calls for).  The alarm figures keep
  those episodes; a HIGH alarm raised from 2 s before such an episode to 5 s after it is not counted false;
- a detection (a judged beat) matches a reference beat within ``tolerance_s`` (150 ms), one to one;
- QRS detection: sensitivity and positive predictivity;
- verdicts: the flagged share of each AAMI class (N: false flags; V, S, F: sensitivity), the positive
  predictivity of flags (flagged detections whose reference is not N, over all flagged detections),
  ROC-AUC for N against S, V and F of the loss minus the threshold it was judged against (with per-bed
  learning every bed has its own threshold, so raw losses of different beds do not compare);
- beat types (:class:`ecgmon.core.messages.BeatKind`, the alarm policy's label-free typing): EC57 VEB and SVEB
  sensitivity and positive predictivity of the judged beats typed ventricular (against AAMI V) and
  supraventricular premature (against AAMI S).  Se counts every reference V (S) beat after learning, missed ones
  included; +P counts every detection so typed whose reference is not V (S), unmatched ones included, except
  references of class F and Q (as EC57 leaves fusion and unclassifiable beats out of VEB and SVEB false
  positives);
- alarms: reference ventricular runs (3 or more consecutive V beats) covered by a HIGH alarm
  (active at some point between the run's first beat and 5 s after its third; today's ``v_run_alarmed``), HIGH
  alarms that match no run (per bed-day), physiological alarms raised per bed-hour by priority;
- alarm burden (issue 20's definitions): physiological alarms raised per bed-day, by condition and by priority;
  audible ones (HIGH and MEDIUM) per bed-day; a V run (>= 3 consecutive reference V beats) is *alarmed within
  5 s* when a HIGH alarm is raised (an alarm already active does not count: nobody hears it again) between its
  third beat (less the 150 ms match window: an alarm carries its typed beat's fiducial) and 5 s after its last;
  *advised* likewise by any audible (HIGH or MEDIUM) alarm; a HIGH alarm is *false* when no V run overlaps the
  stretch from 2 s before to 5 s after it, and it lies in no reference VF/flutter episode (widened likewise; the
  issue's definition names V runs only, which would count the VF alarm in a ventricular flutter false), so every
  other lethal alarm, e.g. asystole or extreme bradycardia, counts false on these records unless a V run is near.
  Beside it, *false by its own definition* (``false_high_defined``): each lethal HIGH judged against the reference
  beats and rhythm annotations as the lethal protocols judge it (:func:`alarm_true`: an extreme bradycardia is true
  when the reference rate over its 5 beats is under 45 bpm, a VT when a VT episode or a run of >= 5 reference V beats
  over 100 bpm lies within 10 s, ...), any other HIGH by the issue's rule.  The two differ by the true rate and
  asystole alarms (MIT-BIH 209's supraventricular tachycardia over 140 bpm, 201's nodal rhythm under 40 bpm);
- gross statistics pool the counts of all records; average statistics are the mean of the
  per-record figures (over the records where a figure is defined).

Sources: ANSI/AAMI EC57:2012, *Testing and reporting performance results of cardiac rhythm and ST segment
measurement algorithms* (match window, learning period, paced records, AAMI classes, gross and average
statistics, Se and +P); the MIT-BIH record split into DS1 (development, ``../shared/data/mitdb-ds1``) and
DS2 (held out) is de Chazal P, O'Dwyer M, Reilly RB, *Automatic classification of heartbeats using ECG
morphology and heartbeat interval features*, IEEE Trans Biomed Eng 51(7):1196-1206, 2004.

Shapes and units: every index is a sample index at the record's own rate; ``RecordResult`` arrays are 1-D,
one entry per reference beat (``ref``, ``ref_class``) or per judged beat (``det``, ``loss``, ``flag``,
``threshold``).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgmon.core.limits import LEARN_S, MATCH_WINDOW_S
from ecgmon.core.matching import match
from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, BeatScore, Condition, Priority, TypedBeat
from ecgmon.evaluation.product import roc_auc, save_png
from ecgmon.evaluation.vfdb import Episode, read_episodes
from ecgmon.models.checkpoint import Checkpoint
from ecgmon.models.records import AAMI_CLASSES, PACED, Recording
from ecgmon.models.wfdb_io import _quiet, annotation_rate
from ecgmon.monitor.alarms import PolicyConfig
from ecgmon.monitor.learning import LearningConfig
from ecgmon.monitor.lethal import LethalConfig
from ecgmon.monitor.pipeline import Monitor
from ecgmon.monitor.sinks import NullSink
from ecgmon.monitor.sources import RecordSource

RUN_WINDOW_S = 5.0
FALSE_HIGH_BEFORE_S = 2.0  # a HIGH alarm is true when a V run lies between this before it ...
FALSE_HIGH_AFTER_S = 5.0  # ... and this after it


class Collector(NullSink):
    """Every detection (fiducial index, loss, flag, threshold, judged) and every alarm transition, per bed.
    A detection made while its bed learns is not judged (no verdict): kept, so that the counting
    excludes exactly those."""

    def __init__(self) -> None:
        self.beats: dict[str, list[tuple[int, float, bool, float, bool, bool]]] = {}
        self.alarms: dict[str, list[Alarm]] = {}
        self.kinds: dict[str, dict[int, str]] = {}  # per bed: beat index -> its type's letter (N V S O A)

    def on_typed(self, typed: TypedBeat) -> None:
        self.kinds.setdefault(typed.score.beat.patient, {})[typed.score.beat.index] = typed.kind.short

    def on_beat(self, score: BeatScore) -> None:
        self.beats.setdefault(score.beat.patient, []).append(
            (score.beat.index, score.loss, score.flagged, score.threshold, score.learning is None, score.noisy))

    def on_alarm(self, alarm: Alarm) -> None:
        self.alarms.setdefault(alarm.patient, []).append(alarm)


@dataclass(slots=True)
class RecordResult:
    """What one record gave: its reference beats and the monitor's detections and alarms (sample indices)."""

    name: str
    fs: float
    n_samples: int
    ref: np.ndarray  # reference beat sample indices
    ref_class: np.ndarray  # their AAMI classes
    det: np.ndarray  # detection (judged beat) sample indices
    loss: np.ndarray
    flag: np.ndarray
    threshold: np.ndarray  # what each detection was judged against (a bed's own threshold once it has learnt)
    alarms: list[Alarm] = field(default_factory=list)
    judged: np.ndarray | None = None  # per detection: False while the bed learnt; None: judged from learn_s on
    kind: np.ndarray | None = None  # per detection: its type's letter (N V S O A; '' untyped); None: not typed
    noisy: np.ndarray | None = None  # per detection: no verdict for noise (BeatScore.noisy); None: not recorded
    vf: tuple[tuple[int, int], ...] = ()  # ventricular flutter/fibrillation episodes (``[`` .. ``]``), sample indices
    rhythms: tuple[Episode, ...] = ()  # reference rhythm episodes (``+`` annotations: ``(VT``, ``(SVTA`` ..), seconds


def vf_spans(path: Path, fs: float) -> list[tuple[int, int]]:
    """Ventricular flutter/fibrillation episodes (``[`` .. ``]`` in the record's ``atr``), sample indices at ``fs``
    (the rate the recording is played at: a record read above 1,000 Hz is decimated, :func:`~ecgmon.models.
    recording.decimated`; the marks are placed by the annotation file's own rate, :func:`~ecgmon.models.wfdb_io.
    annotation_rate`); none where the record has no ``atr`` file (an EDF or CSV recording)."""
    import wfdb

    atr = Path(path).with_suffix(".atr")
    if not atr.is_file():
        return []
    with _quiet():  # wfdb's own pandas deprecation warnings
        ann = wfdb.rdann(str(atr.with_suffix("")), "atr")
        k = fs / annotation_rate(ann, wfdb.rdheader(str(atr.with_suffix(""))))
    out, start = [], None
    for s, sym in zip(ann.sample, ann.symbol, strict=True):
        if sym == "[":
            start = round(int(s) * k)
        elif sym == "]" and start is not None:
            out.append((start, round(int(s) * k)))
            start = None
    if start is not None:
        out.append((start, round(int(ann.sample[-1]) * k) + 1))
    return out


def in_spans(x: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Per entry of ``x`` (sample indices): whether it lies in one of ``spans`` (ends included)."""
    out = np.zeros(len(x), dtype=bool)
    for a, b in spans:
        out |= (x >= a) & (x <= b)
    return out


def _in_vf_episode(at: float, bed: RecordResult) -> bool:
    """Whether an alarm raised at sample ``at`` lies in a reference VF/flutter episode, from
    ``FALSE_HIGH_BEFORE_S`` before its start to ``FALSE_HIGH_AFTER_S`` after its end (the window a V run has)."""
    return any(a - FALSE_HIGH_BEFORE_S * bed.fs <= at <= b + FALSE_HIGH_AFTER_S * bed.fs for a, b in bed.vf)


VENTRICULAR = frozenset({Condition.VTACH, Condition.VFIB})
VF_RHYTHMS = frozenset({"VF", "VFIB", "VFL"})
VT_RHYTHMS = frozenset({"VT"})
# the conditions a reference can confirm by their own definitions (alarm_true)
DEFINED = frozenset({*VENTRICULAR, Condition.ASYSTOLE, Condition.EXTREME_BRADY, Condition.EXTREME_TACHY})


def _class_runs(classes: np.ndarray, k: str, n: int) -> list[tuple[int, int]]:
    """(first, last) reference-beat positions of every run of ``n`` or more consecutive beats of class ``k``."""
    runs, i, m = [], 0, len(classes)
    while i < m:
        if classes[i] == k:
            j = i
            while j + 1 < m and classes[j + 1] == k:
                j += 1
            if j - i + 1 >= n:
                runs.append((i, j))
            i = j + 1
        else:
            i += 1
    return runs


def reference_vt_runs(bed: RecordResult) -> list[tuple[float, float]]:
    """(start, end) seconds of every run of 5 or more reference V beats over 100 bpm (VT by its definition)."""
    t = bed.ref / bed.fs
    return [(float(t[a]), float(t[b])) for a, b in _class_runs(bed.ref_class, "V", 5)
            if 60.0 * (b - a) / max(1e-9, t[b] - t[a]) > 100]


def alarm_true(cond: Condition, at: float, bed: RecordResult, lethal: Sequence[Episode], grace_s: float = 10.0,
               watch: LethalConfig = LethalConfig()) -> bool:
    """Whether a lethal ``cond`` alarm raised at ``at`` seconds is true by the reference, by the condition's own
    definition (:mod:`ecgmon.evaluation.lethal`'s module docstring): VF/flutter and VT when it lies within
    ``grace_s`` of a ``lethal`` rhythm episode (VT, VF/flutter) or of a run of 5 or more reference V beats over
    100 bpm; asystole when no reference beat lies in the 4 s before it; extreme bradycardia (tachycardia) when the
    reference rate over the beats ``watch`` counts the alarm on is under 45 (over 130) bpm.  Without reference beats
    a rate alarm cannot be confirmed and counts false, and an asystole alarm is true only within an annotated
    asystole episode (``(ASYS``: VFDB 423)."""
    ref = bed.ref / bed.fs
    if cond in VENTRICULAR:
        spans = [(e.start, e.end) for e in lethal] + reference_vt_runs(bed)
        return any(lo - grace_s <= at <= hi + grace_s for lo, hi in spans)
    if not len(ref):  # no reference beats (VFDB): a rate alarm cannot be confirmed, so it counts false
        return cond is Condition.ASYSTOLE and any(e.rhythm == "ASYS" and e.start <= at <= e.end for e in bed.rhythms)
    before = ref[ref <= at + 0.15]
    if cond is Condition.ASYSTOLE:
        return not (before > at - 4.0).any()
    # the alarm's beats (5 or 13 by default) span one interval fewer: the reference rate over the same beats as its
    # (counting one beat more judged an alarm at the 17th beat of a record false: SVDB 848 at 150 bpm from its start)
    n = (watch.brady_beats if cond is Condition.EXTREME_BRADY else watch.tachy_beats) - 1
    if len(before) < n + 1:
        return False
    rate = 60.0 * n / (before[-1] - before[-1 - n])
    return bool(rate < 45.0 if cond is Condition.EXTREME_BRADY else rate > 130.0)


def advisory_true(cond: Condition, at: float, bed: RecordResult, *, watch: LethalConfig = LethalConfig(),
                  policy: PolicyConfig = PolicyConfig()) -> bool | None:
    """Whether an advisory (MEDIUM by default) ``cond`` raised at ``at`` seconds is true by its own definition
    against the reference beats, with an allowance for where one counts from; None for a condition the reference
    cannot judge.  A ventricular (supraventricular) run: a run of ``vrun_len`` (``svt_run_len``) or more reference V
    (S) beats from 2 s before to 5 s after it (the window issue 20 gives a V run); frequent ventricular ectopy: at
    least 0.8 ``veb_per_min`` reference V beats in the minute before it; a pause: a reference RR interval of at least
    ``pause_s`` - 0.5 s ending at most 1 s before it or still open; heart rate low (high): the reference rate over the
    12 intervals before it (the shown rate's, :class:`ecgmon.segmentation.heartrate.HeartRate`) under the low limit
    + 5 (over the high limit - 5) bpm."""
    ref, cls = bed.ref / bed.fs, bed.ref_class
    if not len(ref):
        return None
    if cond in (Condition.VENT_RUN, Condition.SVT_RUN):
        k, n = ("V", policy.vrun_len) if cond is Condition.VENT_RUN else ("S", policy.svt_run_len)
        return any(ref[a] <= at + FALSE_HIGH_AFTER_S and ref[b] >= at - FALSE_HIGH_BEFORE_S
                   for a, b in _class_runs(cls, k, n))
    if cond is Condition.FREQUENT_VEB:
        last_min = (ref > at - 60.0) & (ref <= at + 0.15)
        return int((cls[last_min] == "V").sum()) >= 0.8 * policy.veb_per_min
    if cond is Condition.PAUSE:
        i = int(np.searchsorted(ref, at + 0.15, side="right"))  # reference beats up to the alarm
        gaps = [(ref[j - 1], ref[j]) for j in range(max(1, i - 2), min(len(ref), i + 1))]
        if i == len(ref):
            gaps.append((ref[-1], math.inf))
        return any(b - a >= watch.pause_s - 0.5 and a <= at <= b + 1.0 for a, b in gaps)
    if cond in (Condition.HR_LOW, Condition.HR_HIGH):
        before = ref[ref <= at + 0.15]
        if len(before) < 13:
            return None
        rate = 60.0 * 12 / (before[-1] - before[-13])
        return bool(rate < watch.hr_low + 5 if cond is Condition.HR_LOW else rate > watch.hr_high - 5)
    return None


def ventricular_runs(classes: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) reference-beat positions of every run of 3 or more consecutive V beats."""
    return _class_runs(classes, "V", 3)


def _high_spans(alarms: list[Alarm]) -> list[tuple[float, float]]:
    """(raised at, cleared at) sample indices of every HIGH physiological alarm."""
    spans: dict[str, list[float]] = {}
    for a in alarms:
        if a.priority is not Priority.HIGH or a.kind is not AlarmKind.PHYSIOLOGICAL or a.beat_index is None:
            continue
        if a.state is AlarmState.ACTIVE:
            spans[a.id] = [float(a.beat_index), float("inf")]
        elif a.state is AlarmState.CLEARED and a.id in spans:
            spans[a.id][1] = float(a.beat_index)
    return [(lo, hi) for lo, hi in spans.values()]


def record_counts(bed: RecordResult, *, learn_s: float = LEARN_S, tolerance_s: float = MATCH_WINDOW_S,
                  watch: LethalConfig = LethalConfig(), policy: PolicyConfig = PolicyConfig()) -> dict[str, Any]:
    """The counts of one record after its learning period (see the module docstring).  With ``bed.judged``
    the learning period is the monitor's own (``learn_s`` unused); without, it is the first ``learn_s``.
    ``watch``, ``policy``: the alarm settings the record ran with (what :func:`alarm_true` and
    :func:`advisory_true` judge by)."""
    tol = tolerance_s * bed.fs
    if bed.judged is None:
        t0 = learn_s * bed.fs
        rk, dk = bed.ref >= t0, bed.det >= t0
    else:
        rk, dk = learning_excluded(bed.ref, bed.det, bed.judged, tol)
        rk, dk = ~rk, ~dk
        # learning ends at the first judged detection (none: the whole record was learning)
        t0 = float(bed.det[bed.judged][0]) if bed.judged.any() else float(bed.n_samples)
        t0 = 0.0 if bed.judged.all() else t0
    if bed.vf:  # EC57: no beat-by-beat comparison inside ventricular flutter/fibrillation (no QRS to match)
        rk &= ~in_spans(bed.ref, bed.vf)
        dk &= ~in_spans(bed.det, bed.vf)
    ref, cls = bed.ref[rk], bed.ref_class[rk]
    det, flag = bed.det[dk], bed.flag[dk]
    loss = bed.loss[dk] - bed.threshold[dk]  # above (>0) or below the threshold the beat was judged against
    m = match(ref, det, tol)
    hit = m >= 0
    det_cls = np.full(len(det), "", dtype="<U1")
    det_cls[m[hit]] = cls[hit]
    c: dict[str, Any] = {"record": bed.name, "hours": max(0.0, (bed.n_samples - t0) / bed.fs / 3600),
                         "ref_beats": len(ref), "detections": len(det), "qrs_tp": int(hit.sum())}
    for k in AAMI_CLASSES:
        sel = hit & (cls == k)
        c[f"{k}_beats"] = int(sel.sum())
        c[f"{k}_flags"] = int(flag[m[sel]].sum())
    c["flagged"] = int(flag.sum())
    if bed.noisy is not None:  # detections given no verdict for noise, and the reference beats among them per class
        nz = bed.noisy[dk]
        c["noisy"] = int(nz.sum())
        for k in AAMI_CLASSES:
            c[f"{k}_noisy"] = int(nz[m[hit & (cls == k)]].sum())
    c["flagged_not_n"] = int((flag & (det_cls != "N") & (det_cls != "")).sum())
    c["scores"] = {"loss": loss[m[hit]].tolist(), "class": cls[hit].tolist()}
    # runs of V in the whole reference sequence (a run may start in the learning period), judged
    # when its third beat falls after it
    spans = _high_spans(bed.alarms)
    runs = [(a, b) for a, b in ventricular_runs(bed.ref_class) if bed.ref[a + 2] >= t0]
    covered = 0
    for first, _ in runs:
        lo, hi = bed.ref[first] - tol, bed.ref[first + 2] + RUN_WINDOW_S * bed.fs
        covered += any(s <= hi and e >= lo for s, e in spans)
    c["v_runs"], c["v_runs_alarmed"] = len(runs), covered
    all_runs = ventricular_runs(bed.ref_class)
    false_high = 0
    raised: Counter[str] = Counter()
    for al in bed.alarms:
        if (al.kind is not AlarmKind.PHYSIOLOGICAL or al.state is not AlarmState.ACTIVE or al.beat_index is None
                or al.beat_index < t0):
            continue
        raised[al.priority.name.lower()] += 1
        if al.priority is Priority.HIGH:
            at = al.beat_index
            false_high += not (any(bed.ref[x] - tol <= at <= bed.ref[y] + RUN_WINDOW_S * bed.fs for x, y in all_runs)
                               or _in_vf_episode(at, bed))
    c["high_unmatched"] = false_high
    c["alarms_raised"] = {p: raised.get(p, 0) for p in ("high", "medium", "low")}
    c.update(_burden(bed, t0, tol, all_runs, watch, policy))
    if bed.kind is not None:
        kind = bed.kind[dk]
        det_k = np.full(len(det), "", dtype="<U1")
        det_k[:] = kind
        for beat, name in (("V", "VEB"), ("S", "SVEB")):
            typed = det_k == beat
            ref_is = cls == beat
            tp = int((hit & ref_is & (det_k[np.maximum(m, 0)] == beat)).sum())
            c[f"{name}_tp"], c[f"{name}_fn"] = tp, int(ref_is.sum()) - tp
            # typed so, and the reference is another class (F, Q left out) or none
            c[f"{name}_fp"] = int((typed & (det_cls != beat) & (det_cls != "F") & (det_cls != "Q")).sum())
        c["typed"] = {k: int((det_k == k).sum()) for k in ("N", "V", "S", "O", "A", "")}
    return c


def _burden(bed: RecordResult, t0: float, tol: float, runs: list[tuple[int, int]],
            watch: LethalConfig = LethalConfig(), policy: PolicyConfig = PolicyConfig()) -> dict[str, Any]:
    """The alarm burden after ``t0`` (module docstring): raised by condition and priority, audible, false HIGH
    (the issue's definition, and by each alarm's own definition), V runs alarmed (HIGH raised) and advised (HIGH or
    MEDIUM raised) within 5 s."""
    fs = bed.fs
    raised = [a for a in bed.alarms if a.kind is AlarmKind.PHYSIOLOGICAL and a.state is AlarmState.ACTIVE
              and a.beat_index is not None and a.beat_index >= t0]
    by_cond: Counter[str] = Counter(f"{a.condition}|{a.priority.name.lower()}" for a in raised)
    highs = [float(a.beat_index or 0) for a in raised if a.priority is Priority.HIGH]
    audible = [float(a.beat_index or 0) for a in raised if a.priority >= Priority.MEDIUM]
    spans = [(float(bed.ref[x]), float(bed.ref[y])) for x, y in runs]

    def issue_false(at: float) -> bool:  # the issue's rule: no V run from 2 s before to 5 s after, no VF episode
        return not (any(lo <= at + FALSE_HIGH_AFTER_S * fs and hi >= at - FALSE_HIGH_BEFORE_S * fs for lo, hi in spans)
                    or _in_vf_episode(at, bed))

    false_high = sum(issue_false(at) for at in highs)
    # by each alarm's own definition (the lethal protocols' judge); a HIGH of another condition by the issue's rule
    lethal = [e for e in bed.rhythms if e.rhythm in VF_RHYTHMS | VT_RHYTHMS]
    false_defined = sum(
        not alarm_true(a.condition, float(a.beat_index or 0) / fs, bed, lethal, watch=watch)
        if a.condition in DEFINED else issue_false(float(a.beat_index or 0))
        for a in raised if a.priority is Priority.HIGH)
    # every audible alarm by its own definition: HIGH as above, advisories by advisory_true (None: not judgeable)
    verdicts = [advisory_true(a.condition, float(a.beat_index or 0) / fs, bed, watch=watch, policy=policy)
                for a in raised if a.priority is Priority.MEDIUM]
    false_audible = false_defined + sum(v is False for v in verdicts)
    judged = [(x, y) for x, y in runs if bed.ref[x + 2] >= t0]
    alarmed = advised = 0
    for x, y in judged:
        lo, hi = bed.ref[x + 2] - tol, bed.ref[y] + RUN_WINDOW_S * fs
        alarmed += any(lo <= at <= hi for at in highs)
        advised += any(lo <= at <= hi for at in audible)
    return {"raised_by_condition": dict(by_cond), "audible": len(audible), "false_high": false_high,
            "false_high_defined": false_defined, "false_audible_defined": false_audible,
            "audible_unjudged": sum(v is None for v in verdicts),
            "v_runs_5s": len(judged), "v_runs_alarmed_5s": alarmed, "v_runs_advised_5s": advised}


def learning_excluded(ref: np.ndarray, det: np.ndarray, judged: np.ndarray,
                      tol: float) -> tuple[np.ndarray, np.ndarray]:
    """(reference beats, detections) left out as learning: the detections the monitor did not judge, the
    reference beats matched to them, and the reference beats missed while it learnt (the nearest
    detection not judged)."""
    m = match(ref, det, tol)
    ref_out = np.zeros(len(ref), dtype=bool)
    hit = m >= 0
    ref_out[hit] = ~judged[m[hit]]
    if len(det) and (~hit).any():
        miss = np.flatnonzero(~hit)
        pos = np.searchsorted(det, ref[miss])
        left, right = np.clip(pos - 1, 0, len(det) - 1), np.clip(pos, 0, len(det) - 1)
        nearest = np.where(np.abs(det[left] - ref[miss]) <= np.abs(det[right] - ref[miss]), left, right)
        ref_out[miss] = ~judged[nearest]
    return ref_out, ~judged


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def figures_of(c: dict[str, Any]) -> dict[str, float | None]:
    """The statistics of a set of counts (one record's, or pooled)."""
    out: dict[str, float | None] = {
        "qrs_se": _ratio(c["qrs_tp"], c["ref_beats"]), "qrs_pp": _ratio(c["qrs_tp"], c["detections"]),
        "flag_pp": _ratio(c["flagged_not_n"], c["flagged"]),
        "v_run_alarmed": _ratio(c["v_runs_alarmed"], c["v_runs"]),
        "high_unmatched_per_bed_day": _ratio(c["high_unmatched"], c["hours"] / 24),
        "audible_per_bed_day": _ratio(c["audible"], c["hours"] / 24),
        "false_high_per_bed_day": _ratio(c["false_high"], c["hours"] / 24),
        "false_high_defined_per_bed_day": _ratio(c["false_high_defined"], c["hours"] / 24),
        "false_audible_defined_per_bed_day": _ratio(c["false_audible_defined"], c["hours"] / 24),
        "v_run_alarmed_5s": _ratio(c["v_runs_alarmed_5s"], c["v_runs_5s"]),
        "v_run_advised_5s": _ratio(c["v_runs_advised_5s"], c["v_runs_5s"]),
    }
    for name in ("VEB", "SVEB"):
        if f"{name}_tp" in c:
            tp, fn, fp = c[f"{name}_tp"], c[f"{name}_fn"], c[f"{name}_fp"]
            out[f"{name}_se"], out[f"{name}_pp"] = _ratio(tp, tp + fn), _ratio(tp, tp + fp)
    for k in AAMI_CLASSES:
        out[f"{k}_flagged"] = _ratio(c[f"{k}_flags"], c[f"{k}_beats"])
        if f"{k}_noisy" in c:
            out[f"{k}_noisy_share"] = _ratio(c[f"{k}_noisy"], c[f"{k}_beats"])
    if "noisy" in c:
        out["noisy_share"] = _ratio(c["noisy"], c["detections"])
    for p in ("high", "medium", "low"):
        out[f"alarms_{p}_per_bed_hour"] = _ratio(c["alarms_raised"][p], c["hours"])
    lo = np.asarray(c["scores"]["loss"], dtype=np.float64)
    cl = np.asarray(c["scores"]["class"])
    keep = np.isin(cl, ("N", "S", "V", "F"))
    auc = roc_auc(lo[keep], cl[keep] != "N") if keep.any() else float("nan")
    out["auc_n_vs_svf"] = None if np.isnan(auc) else auc
    return out


def pooled(counts: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of all records added up (for the gross statistics)."""
    total: dict[str, Any] = {"record": "gross", "scores": {"loss": [], "class": []},
                             "alarms_raised": Counter()}
    for c in counts:
        for k, v in c.items():
            if k in ("record",):
                continue
            if k == "scores":
                total["scores"]["loss"] += v["loss"]
                total["scores"]["class"] += v["class"]
            elif k in ("alarms_raised", "raised_by_condition", "typed"):
                total.setdefault(k, Counter()).update(v)
            else:
                total[k] = total.get(k, 0) + v
    for k in ("alarms_raised", "raised_by_condition", "typed"):
        if k in total:
            total[k] = dict(total[k])
    return total


def summarise(counts: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-record figures, gross (pooled) and average (mean of per-record) statistics."""
    per = [{"record": c["record"], **figures_of(c), **{k: v for k, v in c.items() if k not in ("scores",)}}
           for c in counts]
    total = pooled(counts) if counts else {}
    gross = figures_of(total) if counts else {}
    keys = list(gross)
    average = {k: (float(np.mean(v)) if (v := [float(r[k]) for r in per if r.get(k) is not None]) else None)
               for k in keys}
    days = total.get("hours", 0.0) / 24
    burden = {k: v / days for k, v in sorted(total.get("raised_by_condition", {}).items())} if days else {}
    return {"records": per, "gross": gross, "average": average, "burden_per_bed_day": burden,
            "bed_days": days, "audible_unjudged": int(total.get("audible_unjudged", 0))}


def burden_lines(summary: dict[str, Any]) -> list[str]:
    """The alarm burden in words: raised per bed-day by condition and priority (gross), audible, false HIGH."""
    g = summary["gross"]
    out = [f"alarm burden over {summary.get('bed_days', 0.0):.2f} bed-days (after learning): "
           f"audible (HIGH+MEDIUM) {_fmt(g.get('audible_per_bed_day'), 'per_bed')}/bed-day "
           f"(false by their own definitions {_fmt(g.get('false_audible_defined_per_bed_day'), 'per_bed')}"
           + (f", {n} not judgeable" if (n := summary.get('audible_unjudged', 0)) else "") + "), "
           f"false HIGH {_fmt(g.get('false_high_per_bed_day'), 'per_bed')}/bed-day (no V run near; "
           f"false by the alarm's own definition {_fmt(g.get('false_high_defined_per_bed_day'), 'per_bed')}), "
           f"V runs alarmed (HIGH raised) "
           f"within 5 s {_fmt(g.get('v_run_alarmed_5s'), 'pct')} %, advised (HIGH or MEDIUM) "
           f"{_fmt(g.get('v_run_advised_5s'), 'pct')} %"]
    for k, v in summary.get("burden_per_bed_day", {}).items():
        cond, prio = k.split("|")
        out.append(f"  {prio.upper():6s} {cond:36s} {v:8.2f} per bed-day")
    return out


def run_records(recordings: list[Recording], ckpt: Checkpoint, *, device: str = "cpu",
                threads: int | None = None, learn_s: float = LEARN_S, policy: PolicyConfig = PolicyConfig(),
                lethal: LethalConfig = LethalConfig(), packet_s: float = 0.25) -> list[RecordResult]:
    """Play the recordings at once through the live pipeline; what each bed gave.  Beds learn for
    ``learn_s`` when the checkpoint has per-bed learning; nothing learnt is kept afterwards.  ``policy`` and
    ``lethal``: the alarm settings (the monitor's defaults unless given, as ``ecgmon evaluate``'s options do).
    ``packet_s``: each record played in chunks of this many seconds, as a device's packets (0.25 s by default)."""
    col = Collector()
    # alarms are counted from the collector: no journal, no strips, nothing learnt is kept
    mon = Monitor.for_checkpoint(ckpt, device=device, threads=threads, learning=LearningConfig(learn_s=learn_s),
                                 sinks=[col], policy=policy, lethal=lethal)
    try:
        asyncio.run(mon.run(RecordSource(recordings, speed=None, chunk_s=packet_s)))
    finally:
        mon.close()
    beds = []
    for r in recordings:
        rows = col.beats.get(r.name, [])
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
        det = arr[:, 0].astype(np.int64)
        kinds = col.kinds.get(r.name, {})
        beds.append(RecordResult(r.name, r.fs, len(r.signal), r.ann_samples, r.ann_classes, det,
                                 arr[:, 1], arr[:, 2].astype(bool), arr[:, 3], col.alarms.get(r.name, []),
                                 judged=arr[:, 4].astype(bool), noisy=arr[:, 5].astype(bool),
                                 kind=np.asarray([kinds.get(int(i), "") for i in det], dtype="<U1"),
                                 vf=tuple(vf_spans(r.path, r.fs)) if r.annotated else (),
                                 rhythms=tuple(read_episodes(Path(r.path), r.fs, len(r.signal)))
                                 if r.annotated else ()))
    return beds


def check_evaluable(recordings: list[Recording]) -> tuple[list[Recording], list[str]]:
    """The recordings EC57 counts (paced records excluded, as EC57 does), and one line per record left out
    for want of reference annotations."""
    keep, left = [], []
    for r in recordings:
        if not r.annotated:
            left.append(f"{r.path}: no reference annotations (.atr): evaluate needs them "
                        "(the monitor plays it without ground truth: ecgmon --source record)")
        elif r.name not in PACED:
            keep.append(r)
    return keep, left


def write_json(path: Path, obj: object) -> Path:
    """Whole or not at all: written to a temporary file, then renamed."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")
    tmp.replace(path)
    return path


COLUMNS = (("qrs_se", "QRS Se"), ("qrs_pp", "QRS +P"), ("N_flagged", "N flagged"), ("V_flagged", "V flagged"),
           ("S_flagged", "S flagged"), ("F_flagged", "F flagged"), ("flag_pp", "flag +P"),
           ("auc_n_vs_svf", "AUC"), ("VEB_se", "VEB Se"), ("VEB_pp", "VEB +P"), ("SVEB_se", "SVEB Se"),
           ("SVEB_pp", "SVEB +P"), ("v_run_alarmed", "V runs HIGH"), ("v_run_alarmed_5s", "V runs 5s"),
           ("v_run_advised_5s", "V runs adv 5s"), ("high_unmatched_per_bed_day", "unmatched HIGH/day"),
           ("false_high_per_bed_day", "false HIGH/day"), ("false_high_defined_per_bed_day", "false HIGH def/day"),
           ("audible_per_bed_day", "audible/day"), ("false_audible_defined_per_bed_day", "false audible def/day"),
           ("alarms_high_per_bed_hour", "HIGH/h"), ("alarms_medium_per_bed_hour", "MED/h"),
           ("alarms_low_per_bed_hour", "LOW/h"), ("noisy_share", "noisy"), ("V_noisy_share", "V noisy"))


def _fmt(v: float | None, key: str) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if "per_bed" in key else f"{100 * v:.2f}" if key != "auc_n_vs_svf" else f"{v:.3f}"


def table(summary: dict[str, Any], *, title: str) -> Any:
    """A rich table: one row per record, then gross and average (percentages except AUC and rates)."""
    from rich.table import Table

    t = Table(title=title)
    t.add_column("record")
    t.add_column("beats", justify="right")
    for _, head in COLUMNS:
        t.add_column(head, justify="right")
    for r in summary["records"]:
        t.add_row(r["record"], str(r["ref_beats"]), *[_fmt(r.get(k), k) for k, _ in COLUMNS])
    n = sum(r["ref_beats"] for r in summary["records"])
    t.add_row("gross", str(n), *[_fmt(summary["gross"].get(k), k) for k, _ in COLUMNS], style="bold")
    t.add_row("average", "", *[_fmt(summary["average"].get(k), k) for k, _ in COLUMNS], style="bold")
    for name, sm in summary.get("by_database", {}).items():  # several databases: each one's gross figures
        t.add_row(f"gross {name}", str(sum(r["ref_beats"] for r in summary["records"] if r["record"] in sm["names"])),
                  *[_fmt(sm["gross"].get(k), k) for k, _ in COLUMNS])
    return t


def write_csv(path: Path, summary: dict[str, Any]) -> Path:
    keys = ["record", "ref_beats", "detections", *[k for k, _ in COLUMNS]]
    rows = [",".join(keys)]
    tail = [{"record": "gross", **summary["gross"]}, {"record": "average", **summary["average"]},
            *({"record": f"gross {d}", **sm["gross"]} for d, sm in summary.get("by_database", {}).items())]
    for r in [*summary["records"], *tail]:
        rows.append(",".join("" if r.get(k) is None else str(r.get(k)) for k in keys))
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(rows) + "\n")
    tmp.replace(path)
    return path


def figures(out: Path, summary: dict[str, Any], counts: list[dict[str, Any]], threshold_label: str) -> list[Path]:
    """Loss by AAMI class against the threshold, ROC of N against S/V/F, flagged shares per record (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    g = pooled(counts)
    lo = np.asarray(g["scores"]["loss"], dtype=np.float64)
    cl = np.asarray(g["scores"]["class"])
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4))
    if len(lo):
        lin = max(1e-4, float(np.quantile(np.abs(lo), 0.05)))
        bins = np.sort(np.concatenate([-np.geomspace(lin, max(-lo.min(), 2 * lin), 30),
                                       np.geomspace(lin, max(lo.max(), 2 * lin), 30)])).tolist()
        for k in ("N", "S", "V", "F"):
            if (cl == k).any():
                ax.hist(lo[cl == k], bins=bins, alpha=0.5, label=f"{k} ({(cl == k).sum()})", density=True)
        ax.set_xscale("symlog", linthresh=lin)
    ax.axvline(0.0, color="k", ls="--", label=f"threshold ({threshold_label})")
    ax.set_xlabel("reconstruction loss minus the threshold the beat was judged against")
    ax.set_ylabel("density")
    ax.legend()
    paths.append(save_png(fig, out / "loss_by_class.png"))
    keep = np.isin(cl, ("N", "S", "V", "F"))
    fig, ax = plt.subplots(figsize=(5, 5))
    if keep.any() and len(set((cl[keep] != "N").tolist())) == 2:
        fpr, tpr, _ = roc_curve(cl[keep] != "N", lo[keep])
        ax.plot(fpr, tpr, label=f"AUC {summary['gross']['auc_n_vs_svf']:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
    ax.set_xlabel("N beats flagged")
    ax.set_ylabel("S, V, F beats flagged")
    ax.legend(loc="lower right")
    paths.append(save_png(fig, out / "roc_n_vs_svf.png"))
    recs = summary["records"]
    fig, ax = plt.subplots(figsize=(max(6, len(recs) * 0.5), 4))
    x = np.arange(len(recs))
    for off, k in ((-0.2, "N_flagged"), (0.2, "V_flagged")):
        ax.bar(x + off, [100 * (r[k] or 0) for r in recs], width=0.4, label=k.replace("_", " "))
    ax.set_xticks(x, [r["record"] for r in recs], rotation=90)
    ax.set_ylabel("% of beats flagged")
    ax.legend()
    paths.append(save_png(fig, out / "flagged_per_record.png"))
    return paths

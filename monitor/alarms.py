"""Alarm policy (per patient) on typed beats, technical alarms, and the JSONL alarm journal.

Every judged beat is typed, label-free (:class:`BeatTypes`), from the autoencoder's verdict, the bed's
ventricular beat typer (:class:`ecgmon.segmentation.vtype.VTyper`: width, prematurity, unlike the bed's dominant
beat) and its timing against the bed's own median RR:

- ``ventricular``: the typer calls it ventricular and the autoencoder flags it, or the typer is sure of it alone
  (``v_alone_p``); while the bed learns its normal (no verdict for 5 minutes by default) the typer alone types
  ventricular beats this way, so that ectopy is counted and advised from the first seconds;
- ``supraventricular premature``: narrow (typer's width <= ``sv_width_s``), premature (RR before it under
  ``sv_prem`` of the bed's median RR over its last ``rr_beats``), not ventricular, flagged, in a regular rhythm
  (not while the bed's rhythm has changed: atrial fibrillation or flutter has no "premature");
- ``other abnormal``: flagged, neither of those;
- ``artifact``: too noisy to judge (no verdict).

Isolated abnormal beats are counted (per minute and in total; the console tile, the summary and the headless
lines show them) but raise no alarm by default (``beat_alarm`` turns the old LOW "abnormal beat" back on).
Advisories (defaults; docs/alarms.md gives the sources and why):

- ``frequent ventricular ectopy`` (LOW: shown, not sounded; ``frequent_veb_priority``): >= ``veb_per_min`` (10)
  ventricular beats in the last minute; clears at <= ``veb_clear_per_min`` (5);
- ``ventricular run`` (MEDIUM): >= ``vrun_len`` (3) consecutive ventricular beats over ``vrun_bpm`` (100 bpm:
  non-sustained ventricular tachycardia; the lethal ventricular tachycardia alarm, HIGH, is
  :mod:`ecgmon.monitor.lethal`'s); a run no faster (a slow, idioventricular run) is the same condition at
  ``slow_vrun_priority`` (LOW: shown, not sounded), raised again at MEDIUM when a run of its episode is faster;
- ``supraventricular run`` (MEDIUM): >= ``svt_run_len`` (5) consecutive supraventricular premature beats;
- ``ventricular couplet``, ``ventricular bigeminy`` / ``trigeminy`` (LOW): 2 consecutive ventricular beats;
  ``pattern_cycles`` (4) cycles of N-V or N-N-V;
- ``abnormal run`` (LOW): >= ``run_len`` (3) consecutive abnormal beats not all of one type;
- ``frequent abnormal beats`` (LOW): >= ``other_per_min`` (12) other abnormal beats in the last minute.

Run and pattern conditions clear after ``clear_normal`` (5) beats that do not continue them, and every advisory
only once its clearing condition has held for ``clear_s`` (60 s) of the bed's signal: runs that recur within a
minute are one episode, one alarm (heard once), not one alarm each; a ventricular run's episode is held by runs
(single ventricular beats between them do not hold it), frequent ventricular ectopy's by ``veb_episode_s`` (5 min)
at or under its clearing rate.  Alarm chains (:data:`ADVISORY_CHAINS`): a ventricular run is not raised while the
lethal VT or VF alarm is on nor for ``chain_s`` (60 s) after it cleared, frequent ventricular ectopy, couplets,
bigeminy and trigeminy not while any of the three is, an abnormal run or frequent abnormal beats not while VT or VF
is (the higher alarm announced the episode).  HIGH priority is only for the lethal alarms.
Acknowledging silences an alarm but keeps it visible until its condition clears.
Every transition is one :class:`~ecgmon.core.messages.Alarm` value.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import stat
import time
from collections import Counter, deque
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, ClassVar

from ecgmon.core.messages import (
    Alarm,
    AlarmKind,
    AlarmState,
    BeatKind,
    BeatScore,
    Chunk,
    Condition,
    Priority,
    TypedBeat,
)

V, S, OT, A, N = (BeatKind.VENTRICULAR, BeatKind.SUPRAVENTRICULAR, BeatKind.OTHER, BeatKind.ARTIFACT,
                 BeatKind.NORMAL)


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Counts are in beats, rates per minute, times in seconds.  A count of 0 turns its condition off."""

    # typing
    v_alone_p: float = 0.8  # the typer alone makes a beat ventricular at this probability (else: it and the flag)
    sv_prem: float = 0.85  # premature: RR before the beat under this share of the bed's median RR
    sv_width_s: float = 0.12  # supraventricular: QRS no wider than this (typer's width)
    # premature beats the autoencoder does not flag are supraventricular premature too (EC57 SVEB Se up, more
    # 'supraventricular run' advisories; docs/alarms.md has the figures)
    sv_unflagged: bool = False
    rr_beats: int = 16  # the bed's median RR over this many beats
    # irregular rhythm (no beat is 'premature'): the median successive RR difference over the last rr_beats RR
    # intervals, relative to the median RR, above this (atrial fibrillation; sinus arrhythmia changes RR gradually)
    irregular: float = 0.1
    # alarms
    beat_alarm: bool = False  # LOW 'abnormal beat' for every flagged beat (the old behaviour)
    veb_per_min: int = 10
    veb_clear_per_min: int = 5
    vrun_len: int = 3
    # ... whose complexes are alike: median correlation of each with the one before at least this (0: off); noise
    # bursts typed ventricular are not alike (the VT rule's vt_similar, 0.6)
    vrun_similar: float = 0.6
    # ... at a rate over this (bpm, over the run's last vrun_len - 1 intervals): non-sustained ventricular
    # tachycardia is >= 3 ventricular beats over 100 bpm (ACC/AHA/ESC 2006); a slower run (accelerated
    # idioventricular rhythm, escape beats) is raised at slow_vrun_priority; 0: every run at vrun_priority
    vrun_bpm: float = 100.0
    svt_run_len: int = 5
    couplet: bool = True
    pattern_cycles: int = 4  # bigeminy / trigeminy
    run_len: int = 3  # abnormal run (mixed types)
    other_per_min: int = 12
    clear_normal: int = 5
    clear_s: float = 60.0  # ... and this long of the bed's signal (one episode of recurring runs: one alarm)
    # every new ventricular run is announced again (a new alarm) even while the run advisory of its episode is on:
    # more runs advised within 5 s, one audible alarm per run (docs/alarms.md has the cost)
    vrun_reannounce: bool = False
    veb_episode_s: float = 300.0  # frequent ventricular ectopy clears once under its clearing rate this long
    # alarm chaining: an advisory is not raised while a higher alarm of its chain (ventricular run < ventricular
    # tachycardia, ventricular fibrillation/flutter; frequent ventricular ectopy < all three) is on, nor for this
    # long after it cleared (the episode the higher alarm announced); 0: no chaining
    chain_s: float = 60.0
    # ... nor when the higher alarm was raised within this long after the advisory's beat (the same episode, already
    # escalated when the advisory is judged: a MEDIUM "ventricular run" heard after the VT alarm it led to says
    # nothing new); 0: off
    chain_ahead_s: float = 2.0
    # frequent ventricular ectopy is shown, not sounded: PVCs are the textbook non-actionable alarm (docs/alarms.md)
    frequent_veb_priority: Priority = Priority.LOW
    vrun_priority: Priority = Priority.MEDIUM
    slow_vrun_priority: Priority = Priority.LOW  # a ventricular run at vrun_bpm or slower
    svt_priority: Priority = Priority.MEDIUM
    pattern_priority: Priority = Priority.LOW  # couplet, bigeminy, trigeminy
    run_priority: Priority = Priority.LOW  # abnormal run
    frequent_priority: Priority = Priority.LOW  # frequent abnormal beats
    join_s: float = 0.15  # a scored beat and a typed QRS are the same beat within this
    wait_beats: int = 512  # scored beats held for their type at most (then judged untyped)

    def __post_init__(self) -> None:
        for name in ("veb_per_min", "veb_clear_per_min", "vrun_len", "svt_run_len", "pattern_cycles", "run_len",
                     "other_per_min", "clear_normal", "rr_beats", "wait_beats"):
            if getattr(self, name) < 0:
                raise ValueError(f"alarm policy: {name} must be >= 0, got {getattr(self, name)}")
        if self.veb_per_min and self.veb_clear_per_min >= self.veb_per_min:
            raise ValueError("alarm policy: veb_clear_per_min must be under veb_per_min")
        if not 0 <= self.vrun_bpm <= 300:
            raise ValueError(f"alarm policy: vrun_bpm must be 0-300 bpm, got {self.vrun_bpm}")
        if not 0 < self.sv_prem < 1:
            raise ValueError(f"alarm policy: sv_prem must be in (0, 1), got {self.sv_prem}")


# the lethal ventricular alarms, which announce the episodes of the ventricular advisories below
LETHAL_VENTRICULAR = frozenset({Condition.VTACH, Condition.VFIB})

# alarm chains of the advisories: each one, and the higher alarms that announce its episode (docs/alarms.md)
ADVISORY_CHAINS: dict[Condition, frozenset[Condition]] = {
    Condition.VENT_RUN: LETHAL_VENTRICULAR,
    Condition.FREQUENT_VEB: frozenset({Condition.VENT_RUN, Condition.VTACH, Condition.VFIB}),
    # the informational patterns: a VT or VF alarm (and a ventricular run) says more of the same ventricular beats
    Condition.VENT_COUPLET: frozenset({Condition.VENT_RUN, Condition.VTACH, Condition.VFIB}),
    Condition.VENT_BIGEMINY: frozenset({Condition.VENT_RUN, Condition.VTACH, Condition.VFIB}),
    Condition.VENT_TRIGEMINY: frozenset({Condition.VENT_RUN, Condition.VTACH, Condition.VFIB}),
    Condition.ABNORMAL_RUN: LETHAL_VENTRICULAR,
    Condition.FREQUENT_ABNORMAL: LETHAL_VENTRICULAR,
    # a run of beats typed supraventricular during (or just after) a VT or VF alarm is most likely VT's own beats that
    # the typer no longer calls ventricular (a sustained VT's RR becomes the bed's median, its complex the template):
    # a MEDIUM "supraventricular run" was raised over a HIGH VT (a newcomer's 30 s VT at 150 bpm, session 27)
    Condition.SVT_RUN: LETHAL_VENTRICULAR,
}

def announced(higher: Iterable[Condition], active: Container[Condition], ended: Mapping[Condition, int], index: int,
              window: float) -> bool:
    """The alarm-chain rule, for the advisories here and the rate alarms of :mod:`ecgmon.monitor.lethal`: one of
    the ``higher`` conditions is ``active``, or cleared (``ended``: the sample index of its last clearing) less than
    ``window`` samples before sample ``index`` - its alarm announced the episode, so a lower one is not raised."""
    return any(h in active or (h in ended and index - ended[h] < window) for h in higher)


def alike(corrs: Sequence[float | None], min_corr: float) -> bool:
    """Whether a run's complexes are alike, for the ventricular-run advisory here and the VT rule of
    :mod:`ecgmon.monitor.lethal`: the median of ``corrs``, each complex's QRS correlation with the one before
    (:attr:`ecgmon.segmentation.vtype.VBeat.prev_corr`; None or NaN, unknown, counts as 1), is at least
    ``min_corr``.  No correlations: alike.  Noise and motion detections typed ventricular are not alike."""
    if not corrs:
        return True
    srt = sorted(1.0 if r is None or r != r else r for r in corrs)
    return srt[len(srt) // 2] >= min_corr


# the conditions the policy raises (cleared when a bed relearns)
PHYSIOLOGICAL_ADVISORIES = (Condition.ABNORMAL_BEAT, Condition.FREQUENT_ABNORMAL, Condition.ABNORMAL_RUN,
                            Condition.FREQUENT_VEB, Condition.VENT_COUPLET, Condition.VENT_BIGEMINY,
                            Condition.VENT_TRIGEMINY, Condition.VENT_RUN, Condition.SVT_RUN)

_ids = itertools.count(1)
SPANS_KEPT = 64  # alarms of a condition whose sample-index spans a book keeps (alarm chains look back chain_s)
RESTORED_RECHECK_S = 60.0  # s of a bed's signal in which this run must confirm an alarm a previous run left open


def _new_id(patient: str, condition: Condition) -> str:
    return f"{patient}:{str(condition).replace(' ', '-')}:{int(time.time() * 1000):x}{next(_ids):04d}"


# the lethal rhythms (monitor/lethal.py), most serious first where several are on at once (an alarm system gives the
# condition of the highest priority: IEC 60601-1-8; the arrhythmia alarm chains of bedside monitors)
LETHAL_RANK: dict[Condition, int] = {Condition.VFIB: 5, Condition.ASYSTOLE: 4, Condition.VTACH: 3,
                                     Condition.EXTREME_TACHY: 2, Condition.EXTREME_BRADY: 1}


def alarm_rank(a: Alarm) -> tuple[int, bool, int]:
    """How an alarm ranks for display: priority, unacknowledged before acknowledged, the rhythm's seriousness."""
    return a.priority, a.state is AlarmState.ACTIVE, LETHAL_RANK.get(a.condition, 0)


class AlarmBook:
    """The active alarms of one patient, keyed by condition; makes transitions.

    Every transition carries the sample index at which it happened (``beat_index``: the beat's, an explicit
    ``index``, or else ``at``, how far the bed's signal has come, which the driver keeps up to date) and,
    with the bed's ``fs``, its time in the record (``record_s``, seconds from the bed's first sample)."""

    def __init__(self, patient: str, fs: float | None = None) -> None:
        self.patient, self.fs = patient, fs
        self.active: dict[Condition, Alarm] = {}
        self.at: int | None = None  # the bed's last sample index (absolute)
        self.simulated = False  # the bed's device says it sends a simulator's samples: its alarms say so
        self.ended: dict[Condition, int] = {}  # the sample index at which each condition's alarm last cleared
        # alarms a previous run left open, shown again until this run confirms them (its check raises the same
        # condition again) or has watched the bed for RESTORED_RECHECK_S without doing so: condition -> deadline
        # (sample index; None until the bed's first samples)
        self.restored: dict[Condition, int | None] = {}
        # each condition's last alarms as sample-index spans (raised at, cleared at; None: still on), so that the
        # alarm chains are judged as the bed's signal stood at a beat, whenever that beat's verdict comes
        # (:meth:`chained`); -inf: raised before this run knew the bed's position (restored, or no samples yet)
        self.spans: dict[Condition, deque[list[float | None]]] = {}

    def restore(self, alarm: Alarm) -> None:
        """Show ``alarm`` again (left open by a previous run) until this run confirms or expires it."""
        self.active[alarm.condition] = alarm
        self.restored[alarm.condition] = None
        self._span(alarm.condition).append([-math.inf, None])

    def _span(self, condition: Condition) -> deque[list[float | None]]:
        q = self.spans.get(condition)
        if q is None:
            q = self.spans[condition] = deque(maxlen=SPANS_KEPT)
        return q

    def expire_restored(self) -> list[Alarm]:
        """Clear the restored alarms this run has not confirmed within RESTORED_RECHECK_S of the bed's signal: a
        condition no check of this run raises (its state was lost with the previous run, or this version no longer
        has it) would otherwise stay on for ever."""
        if not self.restored or self.at is None or not self.fs:
            return []
        out: list[Alarm] = []
        for cond, deadline in list(self.restored.items()):
            if deadline is None:
                self.restored[cond] = self.at + round(RESTORED_RECHECK_S * self.fs)
            elif self.at >= deadline:
                out += self.clear(cond, index=self.at)
        return out

    def _where(self, index: int | None) -> tuple[int | None, float | None]:
        return index, (round(index / self.fs, 3) if index is not None and self.fs else None)

    def raise_(self, condition: Condition, kind: AlarmKind, priority: Priority, message: str, *,
               score: BeatScore | None = None, evidence: tuple[float, ...] = (),
               index: int | None = None) -> list[Alarm]:
        if condition in self.active:
            self.restored.pop(condition, None)  # a restored alarm this run's check confirms
            return []
        at, rec = self._where(index if index is not None else score.beat.index if score else self.at)
        a = Alarm(_new_id(self.patient, condition), self.patient, kind, condition, priority, AlarmState.ACTIVE,
                  time.time(), message, at, score.loss if score else None,
                  score.threshold if score else None, evidence, record_s=rec, simulated=self.simulated)
        self.active[condition] = a
        self._span(condition).append([-math.inf if at is None else float(at), None])
        return [a]

    def clear(self, condition: Condition, *, score: BeatScore | None = None, index: int | None = None,
              reason: str = "") -> list[Alarm]:
        """Clear ``condition``'s alarm (nothing when it is not on) at sample ``index`` (else the beat's of
        ``score``, else the raise's); ``reason``: why it ended, for the cleared line (its message stays the raise's)."""
        a = self.active.pop(condition, None)
        self.restored.pop(condition, None)
        if a is None:
            return []
        at, rec = self._where(index if index is not None else score.beat.index if score else a.beat_index)
        if at is not None:
            self.ended[condition] = at
        if (q := self.spans.get(condition)) and q[-1][1] is None:
            q[-1][1] = -math.inf if at is None else float(at)  # unknown: as if it never was (no chain window)
        return [replace(a, state=AlarmState.CLEARED, time=time.time(), beat_index=at, record_s=rec,
                        loss=score.loss if score else a.loss, reason=reason)]

    def chained(self, condition: Condition, higher: frozenset[Condition], index: int, window: float,
                ahead: float = 0.0) -> bool:
        """Whether one of the ``higher`` conditions of ``condition``'s chain was on at sample ``index``, or had
        cleared less than ``window`` samples before it: its alarm announced the episode, and ``condition`` is not
        raised; or (``ahead``) it was raised within ``ahead`` samples after ``index`` (the episode escalated at once,
        as far as it is known).  Judged from the alarms' sample indices (:attr:`spans`), not from what is on now: the
        beat typer, the VF detector and the scorer each report a little after the signal, by how much depends on the
        machine's load, and a verdict must not (a recording gives the same alarms however fast it is played)."""
        if window <= 0:
            return False
        return any(self.on_near(h, index, window) or (ahead > 0 and self.raised_within(h, index, ahead))
                   for h in higher)

    def update(self, condition: Condition, message: str) -> list[Alarm]:
        """``condition``'s alarm, on, says ``message`` now (one transition in its state, the new text: a bad-input
        alarm naming a second device or reason); nothing when it is not on or says that already."""
        a = self.active.get(condition)
        if a is None or a.message == message:
            return []
        self.active[condition] = replace(a, message=message, time=time.time())
        return [self.active[condition]]

    def raised_within(self, condition: Condition, index: int, ahead: float) -> bool:
        """Whether ``condition``'s alarm was raised after sample ``index`` and at most ``ahead`` samples after it."""
        return any(lo is not None and index < lo <= index + ahead for lo, _ in self.spans.get(condition, ()))

    def on_near(self, condition: Condition, index: int, window: float = 0.0) -> bool:
        """Whether ``condition``'s alarm was on at sample ``index`` (raised at or before it, not cleared by it), or
        cleared less than ``window`` samples before it."""
        return any(lo is not None and lo <= index and (hi is None or hi > index - window)
                   for lo, hi in self.spans.get(condition, ()))

    def acknowledge(self) -> list[Alarm]:
        """Every active alarm acknowledged; each acknowledgement carries where the bed's signal was when it was made
        (``at``: its sample index and record time), not where the alarm was raised."""
        out = []
        at, rec = self._where(self.at)
        for cond, a in self.active.items():
            if a.state is AlarmState.ACTIVE:
                acked = replace(a, state=AlarmState.ACKNOWLEDGED, time=time.time())
                self.active[cond] = acked if at is None else replace(acked, beat_index=at, record_s=rec)
                out.append(self.active[cond])
        return out

    def highest(self) -> Alarm | None:
        """The alarm a bed's tile shows: the highest priority, an unacknowledged one before an acknowledged one, then
        the most serious rhythm (:data:`LETHAL_RANK`: ventricular fibrillation over asystole over VT over the
        extreme rates), so that the tile's alarm line names the rhythm its banner names."""
        return max(self.active.values(), key=alarm_rank, default=None)


@dataclass(frozen=True, slots=True)
class QrsType:
    """What the bed's beat typer said of one QRS (absolute sample ``index``)."""

    index: int
    p_ventricular: float
    ventricular: bool
    width_s: float
    artifact: bool = False  # the signal around it was noise or motion (the VF detector's artifact verdict)
    prev_corr: float | None = None  # its QRS's correlation with the previous typed QRS (VBeat.prev_corr; None: unknown)
    unrated: bool = False  # in its stream's first VF window: no noise verdict on its stretch yet


class BeatJoin:
    """Joins one bed's scored beats with its typed QRS complexes by sample index, in beat order.

    The typer reports a QRS a little after its signal has arrived (once a second, and ``post_s`` after the QRS);
    the scorer judges a beat whenever its batch is scored: either may come first.  A scored beat waits until its
    QRS is typed, or until the typer's ``mark`` (every QRS before it has been typed) has passed it (then it goes
    untyped); at most ``wait_beats`` wait (the oldest goes untyped beyond).  Typed QRS complexes are kept until a
    scored beat, or a beat the policy does not judge (:meth:`skip`: it was shed), passes them: as
    many as the verdicts lag behind the typer, at most ``32 * wait_beats`` (16,384 by default: a recording's
    verdicts lag its typing by at most the monitor's beat queue and the batches in flight, 4,096 + 2 x 1,024 beats
    by default, and a type dropped for room would leave its beat untyped, as the load decided).  Memory is bounded
    either way."""

    def __init__(self, fs: float, *, tol_s: float = 0.15, wait_beats: int = 512, after_s: float = 0.0) -> None:
        self.tol = max(1, round(tol_s * fs))
        # once the typer reports its progress (a flushing caller), a beat also waits until it has passed this far
        # beyond it: the alarm chains' look-ahead (PolicyConfig.chain_ahead_s) reads the lethal alarms raised up to
        # there, which are then known whatever the scorer's lag (without it, a ventricular run just before a VT was
        # chained or not from run to run of one recording)
        self.after = round(after_s * fs)
        self.waiting: deque[BeatScore] = deque()
        self.types: deque[QrsType] = deque(maxlen=max(16, 32 * wait_beats))
        self.mark = -math.inf
        self.wait_beats = wait_beats
        self.untyped = 0  # beats released without a type

    def typed(self, t: QrsType) -> None:
        self.types.append(t)

    def progress(self, mark: float) -> None:
        """The typer has typed every QRS before sample ``mark`` (absolute)."""
        self.mark = max(self.mark, mark)

    def scored(self, s: BeatScore) -> None:
        self.waiting.append(s)

    def skip(self, index: int) -> None:
        """The bed's beat at sample ``index`` gets no verdict here (its bed learns, or it was shed): the QRS types
        before it (and before every beat still waiting) are claimed by no later beat."""
        lo = min(index, self.waiting[0].beat.index) if self.waiting else index
        while self.types and self.types[0].index < lo - self.tol:
            self.types.popleft()

    def ready(self, *, final: bool = False) -> list[tuple[BeatScore, QrsType | None]]:
        """Beats whose type is known (or will never be), in order; ``final``: all of them (the stream ended)."""
        out: list[tuple[BeatScore, QrsType | None]] = []
        while self.waiting:
            s = self.waiting[0]
            i = s.beat.index
            while self.types and self.types[0].index < i - self.tol:
                self.types.popleft()  # a QRS no scored beat claimed (learning, or not cut as a beat)
            t = self.types[0] if self.types and self.types[0].index <= i + self.tol else None
            if t is not None:
                # the nearest of the QRS complexes within the tolerance
                for u in itertools.islice(self.types, 1, 3):
                    if abs(u.index - i) < abs(t.index - i):
                        t = u
            if (not final and len(self.waiting) <= self.wait_beats and math.isfinite(self.mark)
                    and self.mark <= i + self.after):
                break  # the look-ahead's lethal alarms are not all known yet
            known = final or i + self.tol < self.mark or len(self.waiting) > self.wait_beats
            # a QRS before the beat is its match only once no nearer one can follow (one at or after the beat has
            # been typed, or the typer has passed it): the same match whether the beat's verdict or its QRS
            # complexes' types came first
            if (t is None or (t.index < i and self.types[-1].index < i)) and not known:
                break
            self.waiting.popleft()
            if t is not None:
                while self.types and self.types[0].index <= t.index:
                    self.types.popleft()
            else:
                self.untyped += 1
            out.append((s, t))
        return out


class AlarmPolicy:
    """Physiological alarms of one patient from its typed beats (see the module docstring).

    ``update(score)`` takes a scored beat (a noisy one counts as artifact; one scored while its bed learns is
    ventricular where the typer alone is sure of it, ``v_alone_p``, else it only carries the rhythm), ``typed(qrs)``
    and ``progress(mark)`` what the bed's beat typer says; each returns the alarm transitions of the beats whose
    type became known, and leaves those beats in ``done`` (:class:`TypedBeat`, for the sinks)."""

    def __init__(self, book: AlarmBook, cfg: PolicyConfig = PolicyConfig(), *, fs: float | None = None,
                 typer: bool = True) -> None:
        """``fs``: the bed's rate (Hz; default the book's); ``typer``: a beat typer reports to this policy (False:
        every beat is judged at once, untyped: no ventricular or supraventricular advisories)."""
        self.book, self.cfg = book, cfg
        self.fs = float(fs or book.fs or 250.0)
        self.join = BeatJoin(self.fs, tol_s=cfg.join_s, wait_beats=cfg.wait_beats, after_s=cfg.chain_ahead_s)
        if not typer:
            self.join.progress(math.inf)
        self.losses: deque[float] = deque(maxlen=10)
        self.rrs: deque[float] = deque(maxlen=max(1, cfg.rr_beats))
        self.all_rrs: deque[float] = deque(maxlen=max(2, cfg.rr_beats))  # every beat's RR: the rhythm's regularity
        self.kinds: deque[BeatKind] = deque(maxlen=max(3 * cfg.pattern_cycles, cfg.run_len, 1))
        self.minute: dict[BeatKind, deque[int]] = {k: deque() for k in (V, S, OT, A)}
        self.totals: Counter[BeatKind] = Counter()
        self.v_run = self.s_run = self.abn_run = 0  # consecutive ventricular / supraventricular / abnormal beats
        self.abn_mixed = False  # the abnormal run holds more than one type (or other abnormal beats)
        self.since_v = self.since_s = self.since_abn = 0  # beats since the last of each
        self.since_vrun = 0  # beats since the last beat of a ventricular run (vrun_len or more)
        self.v_alike: list[float | None] = []  # the current ventricular run's QRS correlations with the beat before
        self.v_rrs: list[float] = []  # the current ventricular run's intervals (s), each after its first beat
        self.since_flag = 0
        self.last_index: int | None = None
        self.done: list[TypedBeat] = []
        self.quiet: dict[Condition, int] = {}  # active advisories whose clearing condition holds: since which sample

    # ------------------------------------------------------------------ input

    def update(self, s: BeatScore) -> list[Alarm]:
        self.join.scored(s)
        return self._release()

    def skip(self, index: int) -> None:
        """A beat of the bed at sample ``index`` that the policy never sees (it was shed): what the typer said
        before it is let go."""
        self.join.skip(index)

    def typed(self, t: QrsType) -> list[Alarm]:
        self.join.typed(t)
        return self._release()

    def progress(self, mark: float) -> list[Alarm]:
        self.join.progress(mark)
        return self._release()

    def flush(self) -> list[Alarm]:
        """The stream has ended: every beat still waiting is judged now (untyped where its QRS was not typed)."""
        return self._release(final=True)

    def take(self) -> list[TypedBeat]:
        """The typed beats since the last call."""
        out, self.done = self.done, []
        return out

    # ------------------------------------------------------------------ counts

    def per_minute(self) -> dict[str, int]:
        """Beats of each abnormal type in the last minute of the bed's signal (V, S, O: other, A: artifact)."""
        if self.last_index is not None:
            self._expire(self.last_index)
        return {k.short: len(q) for k, q in self.minute.items()}

    def counts(self) -> dict[str, int]:
        """Beats of each abnormal type since the bed's first."""
        return {k.short: self.totals.get(k, 0) for k in (V, S, OT, A)}

    def _expire(self, index: int) -> None:
        lo = index - 60.0 * self.fs
        for q in self.minute.values():
            while q and q[0] <= lo:
                q.popleft()

    # ------------------------------------------------------------------ typing

    def kind_of(self, s: BeatScore, t: QrsType | None) -> tuple[BeatKind, float | None]:
        """The beat's type, and its RR over the bed's median RR (None: not known)."""
        c = self.cfg
        rr = s.beat.rr_prev_s
        ratio = rr / float(sorted(self.rrs)[len(self.rrs) // 2]) if rr > 0 and self.rrs else None
        if s.noisy or (t is not None and t.artifact and s.flagged):
            return A, ratio
        if t is not None and t.ventricular and not s.flagged and (t.artifact or t.unrated):
            # ventricular by the typer alone (no flag) on a stretch that is noise, or not yet rated (a stream's first
            # seconds: electrodes settling typed a couplet, case K01): no verdict
            return A, ratio
        if t is not None and t.ventricular and (s.flagged or t.p_ventricular >= c.v_alone_p):
            return V, ratio  # (a beat of a learning bed is never flagged: only the typer alone types it V)
        if s.learning is not None or (not s.flagged and not c.sv_unflagged):
            return N, ratio  # no verdict while the bed learns: nothing else abnormal
        narrow = t is None or t.width_s <= c.sv_width_s
        if (ratio is not None and ratio < c.sv_prem and narrow and not s.by_shape
                and len(self.rrs) >= min(c.rr_beats, 8) and not self.irregular()
                and not any(self.book.on_near(h, s.beat.index, 1) for h in LETHAL_VENTRICULAR)):
            return S, ratio  # (not while a VT or VF alarm is on: those beats are its, typed other where flagged)
        return (OT if s.flagged else N), ratio

    def _alike_run(self) -> bool:
        """The current ventricular run's complexes are alike (``vrun_similar``): the median correlation of each of
        its QRS after the first with the one before; noise and motion detections typed ventricular are not alike
        (as the VT rule's ``vt_similar``)."""
        return self.cfg.vrun_similar <= 0 or alike(self.v_alike[1:], self.cfg.vrun_similar)

    def _vrun_rate(self) -> float | None:
        """The current ventricular run's rate (bpm) over its last ``vrun_len - 1`` intervals; None where an interval
        is unknown (0: a bed's first beat)."""
        rrs = self.v_rrs[-max(1, self.cfg.vrun_len - 1):]
        if not rrs or min(rrs) <= 0:
            return None
        return 60.0 * len(rrs) / sum(rrs)

    def irregular(self) -> bool:
        """The bed's rhythm is irregularly irregular (atrial fibrillation): the median of the absolute successive
        differences of its last RR intervals over their median above ``cfg.irregular``.  Successive RR differences
        are the usual measure of AF's irregularity (e.g. Tateno K, Glass L, *Automatic detection of atrial
        fibrillation using the coefficient of variation and density histograms of RR and deltaRR intervals*,
        Med Biol Eng Comput 39:664-671, 2001); a median, so that a few ectopic beats do not make a rhythm
        irregular, and successive, so that sinus arrhythmia's gradual changes do not either."""
        if len(self.all_rrs) < 8:
            return False
        r = list(self.all_rrs)
        d = sorted(abs(b - a) for a, b in itertools.pairwise(r))
        return d[len(d) // 2] > self.cfg.irregular * sorted(r)[len(r) // 2]

    def _release(self, *, final: bool = False) -> list[Alarm]:
        out: list[Alarm] = []
        for s, t in self.join.ready(final=final):
            kind, ratio = self.kind_of(s, t)
            rr = s.beat.rr_prev_s
            if kind is not A and 0.2 <= rr <= 3.0:
                self.all_rrs.append(rr)
                if kind in (N, OT):
                    self.rrs.append(rr)  # the bed's own rhythm: beats that are neither ectopic nor noise
            self.done.append(TypedBeat(s, kind, t.p_ventricular if t is not None else None, ratio))
            out += self._judge(s, kind, None if t is None else t.prev_corr)
        return out

    # ------------------------------------------------------------------ conditions

    def _judge(self, s: BeatScore, kind: BeatKind, prev_corr: float | None = None) -> list[Alarm]:
        c, b = self.cfg, self.book
        i = s.beat.index
        self.last_index = i
        out: list[Alarm] = []
        if kind is not N:
            self.minute[kind].append(i)
            self.totals[kind] += 1
        self._expire(i)
        if kind is A:  # no verdict: counted, but neither continues nor breaks a run
            return out
        self.losses.append(round(s.loss, 6))
        ev = tuple(self.losses)
        P = AlarmKind.PHYSIOLOGICAL
        self.kinds.append(kind)
        abnormal = kind is not N
        self.v_run = self.v_run + 1 if kind is V else 0
        if kind is V:  # each V beat's correlation with the beat before (the run's first: with a beat not in it)
            self.v_alike = [*self.v_alike[-15:], prev_corr]
            self.v_rrs = [*self.v_rrs[-15:], s.beat.rr_prev_s] if self.v_run > 1 else []
        else:
            self.v_alike, self.v_rrs = [], []
        self.s_run = self.s_run + 1 if kind is S else 0
        if abnormal:
            self.abn_mixed = self.abn_mixed or kind is OT or (self.abn_run > 0 and self.kinds[-2] is not kind)
            self.abn_run += 1
        else:
            self.abn_run, self.abn_mixed = 0, False
        self.since_v = 0 if kind is V else self.since_v + 1
        self.since_vrun = 0 if c.vrun_len and self.v_run >= c.vrun_len else self.since_vrun + 1
        self.since_s = 0 if kind is S else self.since_s + 1
        self.since_abn = 0 if abnormal else self.since_abn + 1
        self.since_flag = 0 if s.flagged else self.since_flag + 1
        n_v, n_o = len(self.minute[V]), len(self.minute[OT])
        if c.beat_alarm and s.flagged:
            out += b.raise_(Condition.ABNORMAL_BEAT, P, Priority.LOW,
                            f"abnormal beat ({kind}; loss {s.loss:.3f} > {s.threshold:.3f})", score=s, evidence=ev)
        window = c.chain_s * self.fs
        if c.veb_per_min and n_v >= c.veb_per_min and not self._chained(Condition.FREQUENT_VEB, i, window):
            out += b.raise_(Condition.FREQUENT_VEB, P, c.frequent_veb_priority,
                            f"{n_v} ventricular beats in the minute before it was raised (the limit: "
                            f"{c.veb_per_min} or more a minute; the tile shows the count now)",
                            score=s, evidence=ev)
        if (c.vrun_len and self.v_run >= c.vrun_len and self._alike_run()
                and not self._chained(Condition.VENT_RUN, i, window)):
            rate = self._vrun_rate()
            fast = not c.vrun_bpm or rate is None or rate > c.vrun_bpm
            prio = c.vrun_priority if fast else c.slow_vrun_priority
            on = b.active.get(Condition.VENT_RUN)
            if on is not None and (on.priority < prio or (c.vrun_reannounce and fast and self.v_run == c.vrun_len)):
                # a faster run of a slow run's episode is raised again at its own priority; with vrun_reannounce
                # every new run of the episode is announced again
                self.quiet.pop(Condition.VENT_RUN, None)
                out += b.clear(Condition.VENT_RUN, score=s)
            what = "" if rate is None else f" at {rate:.0f} bpm" + ("" if fast else f" (slow: not over {c.vrun_bpm:g})")
            out += b.raise_(Condition.VENT_RUN, P, prio, f"run of {self.v_run} ventricular beats{what}", score=s,
                            evidence=ev)
        if c.svt_run_len and self.s_run >= c.svt_run_len and not self._chained(Condition.SVT_RUN, i, window):
            out += b.raise_(Condition.SVT_RUN, P, c.svt_priority,
                            f"run of {self.s_run} supraventricular premature beats", score=s, evidence=ev)
        if c.couplet and self.v_run == 2 and not self._chained(Condition.VENT_COUPLET, i, window):
            out += b.raise_(Condition.VENT_COUPLET, P, c.pattern_priority, "two consecutive ventricular beats",
                            score=s, evidence=ev)
        if c.pattern_cycles and kind is V:
            k = list(self.kinds)
            if (len(k) >= 2 * c.pattern_cycles and k[-2 * c.pattern_cycles:] == [N, V] * c.pattern_cycles
                    and not self._chained(Condition.VENT_BIGEMINY, i, window)):
                out += b.raise_(Condition.VENT_BIGEMINY, P, c.pattern_priority,
                                f"ventricular bigeminy ({c.pattern_cycles} cycles of N-V)", score=s, evidence=ev)
            if (len(k) >= 3 * c.pattern_cycles and k[-3 * c.pattern_cycles:] == [N, N, V] * c.pattern_cycles
                    and not self._chained(Condition.VENT_TRIGEMINY, i, window)):
                out += b.raise_(Condition.VENT_TRIGEMINY, P, c.pattern_priority,
                                f"ventricular trigeminy ({c.pattern_cycles} cycles of N-N-V)", score=s, evidence=ev)
        if (c.run_len and self.abn_run >= c.run_len and self.abn_mixed
                and not self._chained(Condition.ABNORMAL_RUN, i, window)):
            out += b.raise_(Condition.ABNORMAL_RUN, P, c.run_priority,
                            f"run of {self.abn_run} abnormal beats of mixed or unclassified types", score=s,
                            evidence=ev)
        if c.other_per_min and n_o >= c.other_per_min and not self._chained(Condition.FREQUENT_ABNORMAL, i, window):
            out += b.raise_(Condition.FREQUENT_ABNORMAL, P, c.frequent_priority,
                            f"{n_o} abnormal beats of no known type in the last minute", score=s, evidence=ev)
        # clearing
        n = c.clear_normal
        if self.since_flag >= n:
            out += b.clear(Condition.ABNORMAL_BEAT, score=s)
        # a ventricular run's episode lasts while runs recur (isolated ventricular beats between them do not hold
        # it: they are frequent ventricular ectopy's); couplets and patterns while ventricular beats do
        out += self._settle(Condition.VENT_RUN, self.since_vrun >= n, s)
        for cond in (Condition.VENT_COUPLET, Condition.VENT_BIGEMINY, Condition.VENT_TRIGEMINY):
            out += self._settle(cond, self.since_v >= n, s)
        out += self._settle(Condition.SVT_RUN, self.since_s >= n, s)
        out += self._settle(Condition.ABNORMAL_RUN, self.since_abn >= n, s)
        out += self._settle(Condition.FREQUENT_VEB, n_v <= c.veb_clear_per_min, s, hold_s=c.veb_episode_s)
        out += self._settle(Condition.FREQUENT_ABNORMAL, n_o <= c.other_per_min // 2, s)
        return out

    def _chained(self, cond: Condition, index: int, window: float) -> bool:
        """``cond`` is not raised: a higher alarm of its chain is on or announced its episode (``chain_s``); the
        audible advisories (a ventricular run, frequent ectopy) also when the higher one is raised within
        ``chain_ahead_s`` after (the episode escalated at once), the informational ones (LOW) not: whether that
        raise is known yet when their beat is judged depends on where the bed's rhythm blocks fall, and a LOW
        pattern before a VT is no sound to spare."""
        ahead = self.cfg.chain_ahead_s * self.fs if cond in (Condition.VENT_RUN, Condition.FREQUENT_VEB) else 0.0
        return cond not in self.book.active and self.book.chained(cond, ADVISORY_CHAINS[cond], index, window, ahead)

    def _settle(self, cond: Condition, quiet: bool, s: BeatScore, *, hold_s: float | None = None) -> list[Alarm]:
        """Clear ``cond`` once it is ``quiet`` and has been for ``hold_s`` (default ``clear_s``) of the bed's
        signal."""
        if not quiet or cond not in self.book.active:
            self.quiet.pop(cond, None)
            return []
        since = self.quiet.setdefault(cond, s.beat.index)
        if s.beat.index - since < (self.cfg.clear_s if hold_s is None else hold_s) * self.fs:
            return []
        del self.quiet[cond]
        return self.book.clear(cond, score=s)

    def counts_line(self) -> str:
        """Per-minute counts of ectopic beats for a tile: 'V 3 S 0 O 1 /min'."""
        m = self.per_minute()
        return f"V {m['V']} S {m['S']} O {m['O']}/min"


class TechnicalAlarms:
    """Technical conditions of one patient's signal (or of the monitor itself): one alarm per condition."""

    CONDITIONS: ClassVar[dict[Condition, tuple[Priority, str]]] = {
        Condition.LEADS_OFF: (Priority.MEDIUM, "flat line: leads off or disconnected"),
        Condition.SIGNAL_LOSS: (Priority.MEDIUM, "no samples or a gap in the stream"),
        Condition.NOISY_SIGNAL: (Priority.LOW, "signal cannot be segmented into beats"),
        Condition.RHYTHM_CHANGED: (Priority.MEDIUM, "rhythm changed since learning: irregular RR (atrial "
                                                    "fibrillation or flutter?); beats judged by shape alone. Review "
                                                    "the rhythm; relearn (r) if it is the patient's new normal"),
        Condition.SHAPE_CHANGED: (Priority.LOW, "most beats unlike the learnt QRS shape (an electrode or lead moved or "
                                                "changed, or a new conduction pattern): the abnormal-beat counts are "
                                                "not ectopy. Check the electrodes; relearn (r) if it is the patient's "
                                                "new normal"),
        Condition.ARTIFACT: (Priority.LOW, "noise or artifact: beats cannot be judged; ectopy advisories held (the "
                                           "lethal alarms are judged on their own)"),
        Condition.CANNOT_ANALYSE: (Priority.MEDIUM, "noise or artifact: the rhythm cannot be analysed and asystole "
                                                    "is not ruled out; check the patient and the electrodes"),
        Condition.MONITOR_OVERLOAD: (Priority.HIGH, "monitor cannot keep up; data is being shed"),
        Condition.MONITOR_BEHIND: (Priority.MEDIUM, "verdicts are late: the monitor is falling behind its input"),
        Condition.BAD_INPUT: (Priority.LOW, "input refused (malformed or out-of-range data, or a command refused)"),
        Condition.PACKET_LOSS: (Priority.LOW, "the bed's samples go missing (packets lost, or null or NaN in the "
                                              "signal): gaps bridged, beats beside them not judged; check the "
                                              "network or the device"),
        Condition.BED_UNMONITORED: (Priority.HIGH, "no worker monitors this bed"),
        Condition.DEVICE_REFUSED: (Priority.MEDIUM, "samples all refused, patient not monitored"),
        Condition.SECOND_LEAD_OFF: (Priority.LOW, "second ECG lead off or lost: the lethal alarms rest on the first "
                                                  "lead alone; check that lead's electrodes"),
        Condition.IMPLAUSIBLE_AMPLITUDE: (Priority.MEDIUM, "QRS far larger than a surface ECG's: the device's gain or "
                                                           "units (or the record header's) are likely wrong, and the "
                                                           "lethal alarms and beat types, which read millivolts, "
                                                           "cannot be trusted; check the device's gain setting"),
    }

    def __init__(self, book: AlarmBook) -> None:
        self.book = book

    def raise_(self, condition: Condition, detail: str = "", *, index: int | None = None) -> list[Alarm]:
        """Raise ``condition`` (nothing when it is already active), at sample ``index`` (default: the bed's
        current one)."""
        return self.book.raise_(condition, AlarmKind.TECHNICAL, self.CONDITIONS[condition][0],
                                self._message(condition, detail), index=index)

    def _message(self, condition: Condition, detail: str) -> str:
        msg = self.CONDITIONS[condition][1]
        return f"{msg}{': ' + detail if detail else ''}"

    def say(self, condition: Condition, detail: str) -> list[Alarm]:
        """``condition`` raised with ``detail``, or, when it is on already, its message brought up to ``detail`` (the
        console, the journal and the streams see the new text)."""
        if condition not in self.book.active:
            return self.raise_(condition, detail)
        return self.book.update(condition, self._message(condition, detail))

    def clear(self, condition: Condition, *, index: int | None = None) -> list[Alarm]:
        """Clear ``condition`` (nothing when it is not active), at sample ``index`` (default: the bed's current
        one)."""
        return self.book.clear(condition, index=self.book.at if index is None else index)

    def follow(self, condition: Condition, present: bool, *, index: int | None = None) -> list[Alarm]:
        """Raise or clear ``condition`` as a check finds it ``present`` or not, at sample ``index`` (default: the
        bed's current one; a check of a beat's verdict gives the beat's, which does not depend on how far the
        segmentation has come by the time the verdict does)."""
        return self.raise_(condition, index=index) if present else self.clear(condition, index=index)


class Journal:
    """Append-only JSONL file of alarm transitions, flushed and fsynced after each line: the first sink.

    Lines are written whole with one ``write`` call, so a crash can at worst leave a torn
    last line, which :func:`read_journal` skips and reports.  A durable sink: the monitor calls its
    ``on_alarm`` on the disk writer's thread (:mod:`ecgmon.monitor.disk`) and shows the alarm only after it.
    """

    durable: ClassVar[bool] = True

    def __init__(self, path: str | Path, *, replay: bool = False) -> None:
        self.path = Path(path)
        self.replay = replay  # lines of a replay or recording say so: no live monitor restores them
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = False
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
        self._f: IO[str] = self.path.open("a", encoding="utf-8")
        # whether it is a file: a journal that is no file (--journal /dev/null: no journal wanted) keeps nothing and
        # cannot be fsynced ("a disk write failed" at every alarm: a newcomer, session 42)
        self.kept = stat.S_ISREG(os.fstat(self._f.fileno()).st_mode)
        if torn:  # end a line torn by a crash, so the next record starts on a line of its own
            self._f.write("\n")

    def on_chunk(self, chunk: Chunk) -> None:
        pass

    def on_beat(self, score: BeatScore) -> None:
        pass

    def on_alarm(self, alarm: Alarm) -> None:
        line = {**alarm.to_json(), "replay": True} if self.replay else alarm.to_json()
        self._f.write(json.dumps(line, separators=(",", ":")) + "\n")
        self._f.flush()
        if self.kept:
            os.fsync(self._f.fileno())

    def report(self) -> dict[str, object]:
        return {}

    def close(self) -> None:
        self._f.close()


def open_alarms(path: str | Path) -> tuple[list[Alarm], int]:
    """Alarms whose last journalled transition is active or acknowledged (what a restarted monitor
    must show again), and the number of unreadable lines skipped.  Lines of a replay or recording
    (``"replay": true``) are not a patient's open alarms: left out; nor are other workers' alarms that a NATS
    central station journalled (``origin``): their workers keep them, and the station hears them again."""
    rows, bad = read_journal(path)
    last: dict[str, dict[str, object]] = {}
    for r in rows:
        if isinstance(r, dict) and "id" in r and not r.get("replay"):
            last[str(r["id"])] = r
    out = []
    for r in last.values():
        try:
            a = Alarm.from_json(r)
        except (KeyError, ValueError, TypeError):
            bad += 1
            continue
        if a.state is not AlarmState.CLEARED and a.origin is None:
            out.append(a)
    return out, bad


def read_journal(path: str | Path) -> tuple[list[dict[str, object]], int]:
    """(transitions, number of unreadable lines skipped) of a journal file."""
    out, bad = [], 0
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            bad += 1
    return out, bad

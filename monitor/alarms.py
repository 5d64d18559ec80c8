"""Alarm policy (per patient), technical alarms, and the JSONL alarm journal.

Defaults (see docs/alarms.md):

- ``abnormal beat`` (LOW advisory): any beat whose loss is above the threshold.
  Clears after ``clear_normal`` (5) consecutive normal beats.
- ``frequent abnormal beats`` (MEDIUM): >= ``frequent_k`` (3) flagged beats among the
  last ``window`` (10).  Clears when the window holds <= ``frequent_clear_k`` (1).
- ``abnormal run`` (HIGH): >= ``run_len`` (3) consecutive flagged beats (a ventricular
  run is three or more consecutive ectopics).  Clears after ``clear_normal`` normal beats.

Acknowledging silences an alarm but keeps it visible until its condition clears.
Every transition is one :class:`~ecgmon.core.messages.Alarm` value.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, ClassVar

from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, BeatScore, Chunk, Condition, Priority


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Counts are in beats."""

    window: int = 10
    frequent_k: int = 3
    frequent_clear_k: int = 1
    run_len: int = 3
    clear_normal: int = 5


_ids = itertools.count(1)


def _new_id(patient: str, condition: Condition) -> str:
    return f"{patient}:{str(condition).replace(' ', '-')}:{int(time.time() * 1000):x}{next(_ids):04d}"


class AlarmBook:
    """The active alarms of one patient, keyed by condition; makes transitions.

    Every transition carries the sample index at which it happened (``beat_index``: the beat's, an explicit
    ``index``, or else ``at``, how far the bed's signal has come, which the driver keeps up to date) and,
    with the bed's ``fs``, its time in the record (``record_s``, seconds from the bed's first sample)."""

    def __init__(self, patient: str, fs: float | None = None) -> None:
        self.patient, self.fs = patient, fs
        self.active: dict[Condition, Alarm] = {}
        self.at: int | None = None  # the bed's last sample index (absolute)

    def _where(self, index: int | None) -> tuple[int | None, float | None]:
        return index, (round(index / self.fs, 3) if index is not None and self.fs else None)

    def raise_(self, condition: Condition, kind: AlarmKind, priority: Priority, message: str, *,
               score: BeatScore | None = None, evidence: tuple[float, ...] = (),
               index: int | None = None) -> list[Alarm]:
        if condition in self.active:
            return []
        at, rec = self._where(index if index is not None else score.beat.index if score else self.at)
        a = Alarm(_new_id(self.patient, condition), self.patient, kind, condition, priority, AlarmState.ACTIVE,
                  time.time(), message, at, score.loss if score else None,
                  score.threshold if score else None, evidence, record_s=rec)
        self.active[condition] = a
        return [a]

    def clear(self, condition: Condition, *, score: BeatScore | None = None, index: int | None = None) -> list[Alarm]:
        a = self.active.pop(condition, None)
        if a is None:
            return []
        at, rec = self._where(index if index is not None else score.beat.index if score else a.beat_index)
        return [replace(a, state=AlarmState.CLEARED, time=time.time(), beat_index=at, record_s=rec,
                        loss=score.loss if score else a.loss)]

    def acknowledge(self) -> list[Alarm]:
        out = []
        for cond, a in self.active.items():
            if a.state is AlarmState.ACTIVE:
                self.active[cond] = replace(a, state=AlarmState.ACKNOWLEDGED, time=time.time())
                out.append(self.active[cond])
        return out

    def highest(self) -> Alarm | None:
        return max(self.active.values(), key=lambda a: (a.priority, a.state is AlarmState.ACTIVE), default=None)


class AlarmPolicy:
    """Physiological alarms of one patient from its beat scores: ``update(score) -> list[Alarm]``."""

    def __init__(self, book: AlarmBook, cfg: PolicyConfig = PolicyConfig()) -> None:
        self.book, self.cfg = book, cfg
        self.recent: deque[bool] = deque(maxlen=cfg.window)
        self.losses: deque[float] = deque(maxlen=cfg.window)
        self.run = 0  # consecutive flagged beats
        self.normal_run = 0  # consecutive normal beats

    def update(self, s: BeatScore) -> list[Alarm]:
        c, b = self.cfg, self.book
        flagged = s.flagged
        self.recent.append(flagged)
        self.losses.append(round(s.loss, 6))
        self.run = self.run + 1 if flagged else 0
        self.normal_run = 0 if flagged else self.normal_run + 1
        ev = tuple(self.losses)
        out: list[Alarm] = []
        n_flag = sum(self.recent)
        if flagged:
            out += b.raise_(Condition.ABNORMAL_BEAT, AlarmKind.PHYSIOLOGICAL, Priority.LOW,
                            f"abnormal beat (loss {s.loss:.3f} > {s.threshold:.3f})", score=s, evidence=ev)
        if n_flag >= c.frequent_k:
            out += b.raise_(Condition.FREQUENT_ABNORMAL, AlarmKind.PHYSIOLOGICAL, Priority.MEDIUM,
                            f"{n_flag} abnormal of last {len(self.recent)} beats", score=s, evidence=ev)
        if self.run >= c.run_len:
            out += b.raise_(Condition.ABNORMAL_RUN, AlarmKind.PHYSIOLOGICAL, Priority.HIGH,
                            f"run of {self.run} abnormal beats", score=s, evidence=ev)
        if self.normal_run >= c.clear_normal:
            out += b.clear(Condition.ABNORMAL_BEAT, score=s) + b.clear(Condition.ABNORMAL_RUN, score=s)
        if n_flag <= c.frequent_clear_k:
            out += b.clear(Condition.FREQUENT_ABNORMAL, score=s)
        return out


class TechnicalAlarms:
    """Technical conditions of one patient's signal (or of the monitor itself): one alarm per condition."""

    CONDITIONS: ClassVar[dict[Condition, tuple[Priority, str]]] = {
        Condition.LEADS_OFF: (Priority.MEDIUM, "flat line: leads off or disconnected"),
        Condition.SIGNAL_LOSS: (Priority.MEDIUM, "no samples or a gap in the stream"),
        Condition.NOISY_SIGNAL: (Priority.LOW, "signal cannot be segmented into beats"),
        Condition.RHYTHM_CHANGED: (Priority.MEDIUM, "rhythm changed since learning: irregular RR (atrial "
                                                    "fibrillation or flutter?); beats judged by shape alone. Review "
                                                    "the rhythm; relearn (r) if it is the patient's new normal"),
        Condition.ARTIFACT: (Priority.LOW, "noise or artifact: beats cannot be judged; physiological alarms held"),
        Condition.MONITOR_OVERLOAD: (Priority.HIGH, "monitor cannot keep up; data is being shed"),
        Condition.MONITOR_BEHIND: (Priority.MEDIUM, "verdicts are late: the monitor is falling behind its input"),
        Condition.BAD_INPUT: (Priority.LOW, "malformed or out-of-range data rejected"),
        Condition.BED_UNMONITORED: (Priority.HIGH, "no worker monitors this bed (its partition has no owner)"),
    }

    def __init__(self, book: AlarmBook) -> None:
        self.book = book

    def raise_(self, condition: Condition, detail: str = "") -> list[Alarm]:
        """Raise ``condition`` (nothing when it is already active)."""
        prio, msg = self.CONDITIONS[condition]
        return self.book.raise_(condition, AlarmKind.TECHNICAL, prio, f"{msg}{': ' + detail if detail else ''}")

    def clear(self, condition: Condition) -> list[Alarm]:
        """Clear ``condition`` (nothing when it is not active), at the bed's current sample index."""
        return self.book.clear(condition, index=self.book.at)

    def follow(self, condition: Condition, present: bool) -> list[Alarm]:
        """Raise or clear ``condition`` as a check finds it ``present`` or not."""
        return self.raise_(condition) if present else self.clear(condition)


class Journal:
    """Append-only JSONL file of alarm transitions, flushed and fsynced after each line: the first sink.

    Lines are written whole with one ``write`` call, so a crash can at worst leave a torn
    last line, which :func:`read_journal` skips and reports.  A durable sink: the monitor calls its
    ``on_alarm`` on the disk writer's thread (:mod:`ecgmon.monitor.disk`) and shows the alarm only after it.
    """

    durable: ClassVar[bool] = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = False
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
        self._f: IO[str] = self.path.open("a", encoding="utf-8")
        if torn:  # end a line torn by a crash, so the next record starts on a line of its own
            self._f.write("\n")

    def on_chunk(self, chunk: Chunk) -> None:
        pass

    def on_beat(self, score: BeatScore) -> None:
        pass

    def on_alarm(self, alarm: Alarm) -> None:
        self._f.write(json.dumps(alarm.to_json(), separators=(",", ":")) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def report(self) -> dict[str, object]:
        return {}

    def close(self) -> None:
        self._f.close()


def open_alarms(path: str | Path) -> tuple[list[Alarm], int]:
    """Alarms whose last journalled transition is active or acknowledged (what a restarted monitor
    must show again), and the number of unreadable lines skipped."""
    rows, bad = read_journal(path)
    last: dict[str, dict[str, object]] = {}
    for r in rows:
        if isinstance(r, dict) and "id" in r:
            last[str(r["id"])] = r
    out = []
    for r in last.values():
        try:
            a = Alarm.from_json(r)
        except (KeyError, ValueError, TypeError):
            bad += 1
            continue
        if a.state is not AlarmState.CLEARED:
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

"""Alarm strips: the ECG around each physiological alarm's onset, kept for the review after a shift.

:class:`StripRecorder` is a sink.  It keeps each bed's last seconds of signal and judged beats; when a
physiological alarm goes active it waits until ``after_s`` of signal past the alarm's beat has arrived,
then writes one JSON line: ``before_s`` + ``after_s`` of samples (mV as received), the beats in that
window with their verdicts, losses and thresholds, and the alarm.  A replay or recording writes it once a beat
past the window has been judged instead (the same strip however far the scorer lagged the signal).  Lines go
to a file beside the journal (``alarms.jsonl`` -> ``alarms.strips.jsonl``), each written whole and fsynced, like
the journal.
A strip still waiting when the monitor stops is written with what there is (``complete: false``).
``ecgmon review JOURNAL --out DIR`` renders them (:mod:`ecgmon.monitor.review`).
"""

from __future__ import annotations

import functools
import json
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np

from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, BeatScore, Chunk
from ecgmon.monitor.disk import DiskWriter
from ecgmon.monitor.sinks import NullSink

BEFORE_S = 6.0
AFTER_S = 4.0
MAX_BEHIND_S = 3600.0  # signal kept at most behind the newest sample, per bed


def strips_path(journal: str | Path) -> Path:
    """The strips file that goes with a journal: ``X.jsonl`` -> ``X.strips.jsonl``."""
    p = Path(journal)
    return p.with_name(p.stem + ".strips.jsonl")


@dataclass(slots=True)
class _Bed:
    fs: float
    chunks: deque[tuple[int, np.ndarray]] = field(default_factory=deque)  # (absolute start, samples)
    end: int = 0  # absolute index after the last sample
    judged: int | None = None  # index of the last judged beat (alarms come no earlier than that)
    beats: deque[tuple[int, str, float, float]] = field(default_factory=lambda: deque(maxlen=256))

    def window(self, lo: int, hi: int) -> tuple[int, np.ndarray]:
        """Samples [lo, hi) that are still held: (first index, samples)."""
        parts, first = [], None
        for start, x in self.chunks:
            a, b = max(lo, start), min(hi, start + len(x))
            if a < b:
                first = a if first is None else first
                parts.append(x[a - start:b - start])
        return (first if first is not None else lo), (np.concatenate(parts) if parts else np.zeros(0, np.float32))


class StripRecorder(NullSink):
    """A sink writing one strip per physiological alarm (see the module docstring).

    It only records (it neither shows nor publishes), so the monitor gives it each alarm at once, while the
    alarm's samples are still held, rather than after the journal line is fsynced; its strips go through the
    same disk writer, after that line."""

    records_only: ClassVar[bool] = True

    def __init__(self, path: str | Path, *, before_s: float = BEFORE_S, after_s: float = AFTER_S,
                 replay: bool = False, disk: DiskWriter | None = None) -> None:
        self.path = Path(path)
        self.disk = disk or DiskWriter()  # the monitor's: strips are written off the event loop, in order
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.before_s, self.after_s, self.replay = before_s, after_s, replay
        # + 2 s waiting for the last verdicts, + 4 s for an alarm raised late (its beat judged a while after it)
        self.keep_s = before_s + after_s + 6.0
        # a replay at full speed segments far ahead of the verdicts (a queue of beats): samples are kept
        # back to before_s before the last judged beat, however long ago that is in signal time, up to
        # MAX_BEHIND_S (a bed whose beats are never judged must not grow without bound)
        self.beds: dict[str, _Bed] = {}
        self.pending: dict[str, list[Alarm]] = {}  # per bed: a chunk looks at its own bed's alarms only
        self.written = 0
        self._f: IO[str] = self.path.open("a", encoding="utf-8")

    def on_chunk(self, chunk: Chunk) -> None:
        bed = self.beds.get(chunk.patient)
        if bed is None or bed.fs != chunk.fs or chunk.reset:
            bed = self.beds[chunk.patient] = _Bed(chunk.fs)
        if len(chunk.samples) == 0:
            return
        bed.chunks.append((chunk.start, chunk.samples))
        bed.end = chunk.start + len(chunk.samples)
        floor = bed.end - int(self.keep_s * chunk.fs)
        # nothing judged yet (a replay fills the beat queue before the first verdict): keep it all
        floor = min(floor, bed.judged - int((self.before_s + 1.0) * chunk.fs) if bed.judged is not None else 0)
        waiting = self.pending.get(chunk.patient)
        for a in waiting or ():  # a batch judges many beats at once: its alarms may be far behind the last one
            if a.beat_index is not None:
                floor = min(floor, a.beat_index - int((self.before_s + 1.0) * chunk.fs))
        floor = max(floor, bed.end - int(MAX_BEHIND_S * chunk.fs))
        while bed.chunks and bed.chunks[0][0] + len(bed.chunks[0][1]) <= floor:
            bed.chunks.popleft()
        if waiting:
            self._flush(chunk.patient, final=False)

    def on_beat(self, score: BeatScore) -> None:
        bed = self.beds.get(score.beat.patient)
        if bed is not None:
            bed.judged = score.beat.index
            bed.beats.append((score.beat.index, score.verdict, round(score.loss, 6), round(score.threshold, 6)))
            if self.replay and score.beat.patient in self.pending:
                self._flush(score.beat.patient, final=False)

    def on_alarm(self, alarm: Alarm) -> None:
        if alarm.origin is not None:  # another worker's bed (a station's view): its samples are that worker's
            return
        if alarm.kind is AlarmKind.PHYSIOLOGICAL and alarm.state is AlarmState.ACTIVE and alarm.beat_index is not None:
            self.pending.setdefault(alarm.patient, []).append(alarm)

    def forget(self, patient: str) -> None:
        """A discharged bed: its pending strips written with the samples there are, its samples forgotten."""
        self._flush(patient, final=True)
        self.beds.pop(patient, None)

    def _flush(self, patient: str, *, final: bool) -> None:
        keep = []
        bed = self.beds.get(patient)
        for a in self.pending.pop(patient, []):
            assert a.beat_index is not None
            if bed is None:
                continue
            hi = a.beat_index + int(self.after_s * bed.fs)
            # a replay or recording: once a beat past the window is judged (a bed's beats are judged in order, so
            # every beat in it has its verdict), so that the strip does not depend on how far the scorer lagged;
            # live: once 2 s more signal has come, so that the window's last beats have their verdicts
            ready = (bed.judged is not None and bed.judged >= hi and bed.end >= hi if self.replay
                     else bed.end >= hi + int(2.0 * bed.fs))
            if ready or final:
                self._write(a, bed, complete=bed.end >= hi)
            else:
                keep.append(a)
        if keep:
            self.pending[patient] = keep

    def _write(self, a: Alarm, bed: _Bed, *, complete: bool) -> None:
        assert a.beat_index is not None
        lo = a.beat_index - int(self.before_s * bed.fs)
        hi = a.beat_index + int(self.after_s * bed.fs)
        first, x = bed.window(lo, hi)
        line: dict[str, Any] = {
            "type": "strip", "alarm": a.to_json(), "patient": a.patient, "fs": bed.fs, "onset": a.beat_index,
            "start": first, "samples": np.round(x.astype(np.float64), 4).tolist(),
            "beats": [list(b) for b in bed.beats if first <= b[0] < first + len(x)],
            "complete": complete, "replay": self.replay}
        self.disk.submit(functools.partial(self._append, json.dumps(line, separators=(",", ":")) + "\n"))

    def _append(self, text: str) -> None:
        self._f.write(text)
        self._f.flush()
        os.fsync(self._f.fileno())
        self.written += 1

    def report(self) -> dict[str, object]:
        return {"strips_written": self.written, "strips_pending": sum(map(len, self.pending.values()))}

    def close(self) -> None:
        if self._f.closed:
            return
        for patient in list(self.pending):
            self._flush(patient, final=True)
        self._f.close()


def read_strips(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """(strips, unreadable lines skipped) of a strips file; a missing file has none."""
    p = Path(path)
    if not p.exists():
        return [], 0
    out, bad = [], 0
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            d = json.loads(line)
            if d.get("type") == "strip":
                out.append(d)
            else:
                bad += 1
        except (json.JSONDecodeError, AttributeError):
            bad += 1
    return out, bad

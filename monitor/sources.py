"""Chunk sources: async context managers that yield :class:`Chunk` values.

``async with source: async for chunk in source: ...`` - the driver never asks which source it has.
Everything it needs beyond the chunks is in the :class:`Source` protocol: whether the source can
wait for the monitor (``can_pause``), its health, its summary, the tasks and sinks it brings
(the MQTT source brings its alarm publisher), and a listener for input it rejects or sheds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

import numpy as np

from ecgmon.core.aio import check_cancelled
from ecgmon.core.limits import chunk_size
from ecgmon.core.messages import Chunk, TrueBeat, is_abnormal
from ecgmon.models.data import NORMAL
from ecgmon.models.records import Recording
from ecgmon.monitor.sinks import Sink
from ecgmon.simulators.replay import PatientPlan, RhythmConfig, chunks, plan_patients

MIN_BEATS_PER_PASS = 60  # replay: beats each bed plays per pass of the split, about (a minute or so)

Task = tuple[str, Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """A source's state at one instant.  Lag in seconds; ``waiting`` and ``capacity`` in messages."""

    state: str  # shown on the console beside the label: "playing", "finished", "connected", ...
    finished: bool = False  # no more chunks will come
    input_lag_s: float = 0.0  # the largest input lag since the previous call (live sources)
    waiting: int = 0  # input received but not yet taken by the monitor
    capacity: int = 1  # the most input held before the source sheds


class InputListener(Protocol):
    """Told about input a source could not use (the driver counts it and raises technical alarms)."""

    def rejected(self, device: str, reason: str) -> None: ...

    def shed(self, device: str) -> None: ...

    def misread(self, device: str, seconds: float) -> None:
        """The last ``seconds`` s of ``device``'s accepted samples were read at a wrong rate (its stated rate
        contradicts its clock: its packets are refused from now): what was judged on them is to be withdrawn."""
        ...

    def control(self, device: str, command: str, args: dict[str, object] | None = None) -> bool:
        """A command for ``device``'s bed from a clinician (``relearn``; ``limits`` with ``low``/``high`` bpm);
        False when it cannot be carried out."""
        ...


@dataclass(slots=True)
class Round:
    """Chunks to segment together, from input messages in order, for a source that commits its input once it is
    judged (JetStream acknowledgements; the ``--workers`` router's floor).  ``marks``: per message to commit,
    (the number of the round's chunks up to and including it, the source's token for it); ``settle(upto,
    token)`` is called for each once the monitor has segmented the round: ``upto`` beats must be settled
    (judged, shed, released) before the message may be committed."""

    chunks: list[Chunk]
    marks: list[tuple[int, Any]] = dataclasses.field(default_factory=list)
    settle: Callable[[int, Any], None] | None = None

    def segmented(self, beats: Sequence[int], before: int) -> None:
        """The monitor has segmented the chunks: ``beats[k]`` beats from chunk k, ``before`` beats before the
        round."""
        if self.settle is None:
            return
        upto = [before]
        for n in beats:
            upto.append(upto[-1] + n)
        for n, token in self.marks:
            self.settle(upto[n], token)


async def one_by_one(rounds: AsyncIterator[Round], segmented: Callable[[], int]) -> AsyncIterator[Chunk]:
    """A committing source's rounds chunk by chunk (its ``__aiter__``, the Source protocol), for a reader that
    segments each chunk before it asks for the next: each round's messages are marked with ``segmented()`` (the
    reader's count of beats cut so far) when it asks again."""
    async for rnd in rounds:
        for chunk in rnd.chunks:
            yield chunk
        rnd.segmented([0] * len(rnd.chunks), segmented())


async def commit_settled(commit: Callable[[int], Awaitable[None]], settled: Callable[[], int | None], *,
                         period_s: float = 0.05) -> None:
    """A committing source's task: every ``period_s``, commit what the monitor has settled, so that messages that
    brought no beat (labels, the middle of a beat) are committed too once those before them are judged (the ones
    that did are committed before their verdicts show)."""
    while True:
        check_cancelled()
        await asyncio.sleep(period_s)
        if (n := settled()) is not None:
            await commit(n)


class Source(Protocol):
    """What the driver reads: chunks from any number of beds."""

    label: str  # shown on every screen, e.g. "REPLAY - ECG5000 test split, not a live patient"
    replay: bool  # recorded or simulated data, never a live patient
    can_pause: bool  # True: the driver may make it wait (back-pressure); False: live input, shed when full

    def attach(self, listener: InputListener) -> None: ...

    def health(self) -> SourceHealth: ...

    def summary(self) -> dict[str, object]: ...

    def tasks(self) -> list[Task]: ...

    def sinks(self) -> list[Sink]: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def __aiter__(self) -> AsyncIterator[Chunk]: ...


class Pacer:
    """Plays a recorded or rendered signal at ``speed`` x real time (None: as fast as the monitor takes it).

    ``tick(signal_s)`` sleeps until ``signal_s`` seconds of signal are due.  Used by the replay and the
    record sources, which interleave their beds' chunks in time order.  As fast as the monitor takes it, the
    source lets the monitor run every ``block_s`` of signal (not every chunk): the monitor's rounds then hold about
    ``block_s`` of each bed, which it segments as one stretch (:meth:`ecgmon.monitor.pipeline.Monitor.segment_many`),
    for the same beats and alarms and less CPU.
    """

    def __init__(self, speed: float | None, *, block_s: float = 1.0) -> None:
        self.speed, self.block_s = speed, block_s
        self.t_start = time.monotonic()
        self._due = 0.0  # as fast as taken: the signal time of the next yield to the monitor

    async def tick(self, signal_s: float) -> None:
        if self.speed is None:
            if signal_s >= self._due:
                self._due = signal_s + self.block_s
                await asyncio.sleep(0)
        else:
            await asyncio.sleep(max(0.0, self.t_start + signal_s / self.speed - time.monotonic()))


class PausableSource:
    """Shared parts of the sources the driver may make wait: no listener, no tasks, no sinks of their own."""

    replay = True
    can_pause = True
    finished = False

    def attach(self, listener: InputListener) -> None:
        pass  # recorded data is validated when it is read

    def health(self) -> SourceHealth:
        return SourceHealth("finished" if self.finished else "playing", finished=self.finished)

    def tasks(self) -> list[Task]:
        return []

    def sinks(self) -> list[Sink]:
        return []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class ReplaySource(PausableSource):
    """ECG5000 beats rendered as ``patients`` live beds, paced at ``speed`` x real time (None = max).

    Chunks from all beds are interleaved in time order.  With ``loop`` the split is
    dealt again with the next seed when it ends (a new "pass").
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray, *, patients: int = 8, fs: float = 250.0,
                 speed: float | None = 1.0, seed: int = 0, chunk_s: float = 0.25, loop: bool = False,
                 rhythm: RhythmConfig = RhythmConfig(), split_name: str = "product test split",
                 abnormal_rate: float | None = None) -> None:
        self.x, self.y, self.rows = x, y, rows
        self.abnormal_rate = abnormal_rate
        self.patients, self.fs, self.speed, self.seed = patients, fs, speed, seed
        self.chunk_s, self.loop, self.rhythm = chunk_s, loop, rhythm
        ward = "" if abnormal_rate is None else f" as a ward ({abnormal_rate:.0%} abnormal)"
        self.label = f"REPLAY - ECG5000 {split_name}{ward}, not a live patient"
        self.passes = 0
        self.finished = False

    def summary(self) -> dict[str, object]:
        return {"passes": self.passes}

    def health(self) -> SourceHealth:
        """As every played source's, and from a loop's second pass on the pass shown: each pass deals the split to the
        beds again (other beats, so each bed's rate changes at once where a pass begins)."""
        if self.finished or not self.passes:
            return super().health()
        return SourceHealth(f"playing pass {self.passes + 1}: the split dealt again")

    def _plan(self, seed: int) -> list[PatientPlan]:
        # many beds on a small split: the split is dealt several times over, so that each bed plays about
        # MIN_BEATS_PER_PASS beats a pass or more (a bed with one beat or none would show no rhythm at all); a ward
        # plays its normal rows (and a few abnormal ones)
        played = len(self.rows) if self.abnormal_rate is None else int(np.sum(self.y[self.rows] == NORMAL))
        rows = np.tile(self.rows, max(1, math.ceil(self.patients * MIN_BEATS_PER_PASS / max(1, played))))
        return plan_patients(self.x, self.y, rows, patients=self.patients, fs=self.fs, seed=seed,
                             rhythm=self.rhythm, abnormal_rate=self.abnormal_rate)

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        # each bed's stream is continuous across passes: sample indices go on from where that bed's
        # previous pass ended
        offset: dict[str, int] = {}
        pace = Pacer(self.speed)
        elapsed_s = 0.0  # signal time of the passes already played
        wall0 = time.time()
        period = chunk_size(self.chunk_s, self.fs) / self.fs  # seconds of signal per chunk
        while True:
            plans = await asyncio.to_thread(self._plan, self.seed + self.passes)
            iters = [chunks(p, chunk_s=self.chunk_s, t0=wall0 + elapsed_s) for p in plans]
            live = list(range(len(iters)))
            n_round = 0
            while live:
                for i in list(live):
                    c = next(iters[i], None)
                    if c is None:
                        live.remove(i)
                        continue
                    off = offset.get(c.patient, 0)
                    yield Chunk(c.patient, c.fs, c.t0, c.samples, start=off + c.start, replay=True,
                                truth=tuple(TrueBeat(t.start + off, t.label, t.abnormal, t.ref) for t in c.truth))
                n_round += 1
                await pace.tick(elapsed_s + n_round * period)
            for p in plans:
                offset[p.patient] = offset.get(p.patient, 0) + len(p.signal)
            elapsed_s += n_round * period
            self.passes += 1
            if not self.loop:
                break
        self.finished = True


class RecordSource(PausableSource):
    """Recorded patients (WFDB, EDF or CSV), each one bed, played at its own sampling rate.

    ``start`` and ``duration`` (seconds) cut the same window from every record; ``speed`` as for the
    replay.  Reference beat annotations travel as ground truth (AAMI classes), so the evaluator can
    score the verdicts; a record without annotations plays without them.  NaN runs in a record are
    missing samples for its bed, as a live device's are (:meth:`ecgmon.monitor.pipeline.Monitor._dropouts`).
    ``notes`` (the readers' warnings) and ``left_out`` (records that could not be read) are in the summary.
    """

    def __init__(self, recordings: Sequence[Recording], *, speed: float | None = 1.0, chunk_s: float = 0.25,
                 start: float = 0.0, duration: float | None = None, left_out: Sequence[str] = ()) -> None:
        if not recordings:
            raise ValueError("no records to play")
        if start < 0 or (duration is not None and duration <= 0):
            raise ValueError(f"--start must be >= 0 and --duration > 0, got {start} and {duration}")
        self.recordings = list(recordings)
        self.speed, self.chunk_s, self.start, self.duration = speed, chunk_s, start, duration
        names = ", ".join(r.name for r in self.recordings[:4]) + (" ..." if len(self.recordings) > 4 else "")
        self.label = f"RECORDING - {len(self.recordings)} record(s) ({names}), not a live patient"
        self.finished = False
        self.played_s = 0.0
        self.left_out = list(left_out)
        self.lost_s = 0.0  # seconds of NaN (signal loss) played

    def summary(self) -> dict[str, object]:
        return {"records": len(self.recordings), "annotated": sum(r.annotated for r in self.recordings),
                "played_s": round(self.played_s, 3), "signal_loss_s": round(self.lost_s, 3),
                "leads": {r.name: r.lead if r.second is None else f"{r.lead} + {r.second.lead}"
                          for r in self.recordings},
                "warnings": [n for r in self.recordings for n in r.notes], "left_out": self.left_out}

    def window(self, r: Recording) -> tuple[int, int]:
        """The sample range of ``r`` that is played."""
        a = min(len(r.signal), round(self.start * r.fs))
        b = len(r.signal) if self.duration is None else min(len(r.signal), a + round(self.duration * r.fs))
        return a, b

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        pace = Pacer(self.speed)
        wall0 = time.time()
        plays = []
        for r in self.recordings:
            a, b = self.window(r)
            keep = (r.ann_samples >= a) & (r.ann_samples < b)
            # sample indices are the record's own (from its first sample, whatever --start): every beat and alarm line
            # places itself on the recording (record_s is its time in the record)
            truth = [TrueBeat(float(s), str(c), is_abnormal(str(c)))
                     for s, c in zip(r.ann_samples[keep], r.ann_classes[keep], strict=True)]
            plays.append((r, a, b, chunk_size(self.chunk_s, r.fs), truth))
        pos = [0] * len(plays)  # samples played per record (from its window's start)
        ti = [0] * len(plays)
        live = list(range(len(plays)))
        while live:
            for i in list(live):
                r, a, b, size, truth = plays[i]
                lo = pos[i]
                hi = min(lo + size, b - a)
                if lo >= hi:
                    live.remove(i)
                    continue
                k = ti[i]
                while k < len(truth) and truth[k].start < a + hi:
                    k += 1
                c = Chunk(r.name, r.fs, wall0 + lo / r.fs, r.signal[a + lo: a + hi], start=a + lo,
                          truth=tuple(truth[ti[i]:k]), replay=True)
                # NaN samples go to the monitor as a live device's missing samples do (Monitor._dropouts: a short
                # run bridged, a longer one signal loss as it comes, the bed's rate no longer shown); dropped here
                # before, a 40 s gap raised its alarm only when the samples came back (CinC a178s), or never (a279l,
                # NaN to its end; a newcomer, session 25)
                self.lost_s += float(np.count_nonzero(~np.isfinite(c.samples))) / r.fs
                yield c
                if r.second is not None:  # the bed's second lead, the same stretch
                    yield Chunk(r.name, r.fs, c.t0, r.second.signal[a + lo: a + hi], start=a + lo, replay=True, lead=1)
                pos[i], ti[i] = hi, k
            # signal time reached (whole-sample chunks: 0.25 s at 250 Hz is 62 samples, 0.248 s)
            self.played_s = max(pos[i] / plays[i][0].fs for i in range(len(plays)))
            await pace.tick(self.played_s)
        self.finished = True

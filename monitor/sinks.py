"""Sinks: where chunks, verdicts and alarm transitions go once the pipeline has made them.

A sink is anything with ``on_chunk``, ``on_beat``, ``on_alarm`` and ``close``; the driver calls
every sink in the order it was given.  Sinks run on the event loop: each call must be quick and must
not block.  A sink whose class sets ``durable = True`` (the journal) is the exception: its ``on_alarm``
runs on the disk writer's thread (:mod:`ecgmon.monitor.disk`), and the sinks that show or publish see
the alarm only once that has returned (durable before anything is shown or published).  A sink that only
records alarms (``records_only = True``: the alarm strips) gets each at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import deque
from typing import Protocol, TextIO

import numpy as np

from ecgmon.core.aio import check_cancelled
from ecgmon.core.messages import Alarm, BeatKind, BeatScore, Chunk, TypedBeat


class Sink(Protocol):
    """What the driver feeds.  ``on_chunk`` sees every first-lead chunk before it is segmented (its samples and
    any ground truth it carries), and a bed's second-lead chunks too where the sink's class sets ``second_leads =
    True`` (the console view: it draws that lead's trace while the bed's rate is counted on it); ``on_beat`` every
    verdict; ``on_alarm`` every alarm transition."""

    def on_chunk(self, chunk: Chunk) -> None: ...

    def on_beat(self, score: BeatScore) -> None: ...

    def on_alarm(self, alarm: Alarm) -> None: ...

    def report(self) -> dict[str, object]:
        """Figures this sink adds to the run's summary (most add none)."""
        ...

    def close(self) -> None: ...


class NullSink:
    """A sink that ignores everything: a base for sinks that need only some of the calls."""

    second_leads = False  # whether on_chunk gets the second leads' chunks too (Chunk.lead 1; Sink)

    def on_chunk(self, chunk: Chunk) -> None:
        pass

    def on_beat(self, score: BeatScore) -> None:
        pass

    def on_alarm(self, alarm: Alarm) -> None:
        pass

    def report(self) -> dict[str, object]:
        return {}

    def forget(self, patient: str) -> None:
        """``patient``'s bed was discharged (``Monitor.discharge``): what is kept of it goes; its device's next
        samples are a new patient's."""

    def close(self) -> None:
        pass


class AlarmOutbox(NullSink):
    """A sink that passes every alarm transition on, in order, from a bounded outbox (the MQTT alarm topic, the
    NATS workers' subjects): while the other end is away it keeps the newest ``max_outbox`` transitions and
    counts those it drops (they stay in the journal); a failed send is tried again 0.2 s later.  Subclasses
    say how one transition is sent (:meth:`_send`); :meth:`run` is their task."""

    def __init__(self, *, max_outbox: int) -> None:
        self.outbox: deque[Alarm] = deque(maxlen=max_outbox)
        self.ready = asyncio.Event()
        self.published = 0
        self.dropped = 0

    def on_alarm(self, alarm: Alarm) -> None:
        if len(self.outbox) == self.outbox.maxlen:
            self.dropped += 1  # the oldest goes; the journal has it
        self.outbox.append(alarm)
        self.ready.set()

    def report(self) -> dict[str, object]:
        return {"alarms_published": self.published, "alarms_unpublished": len(self.outbox),
                "alarms_dropped_unpublished": self.dropped}

    async def drain(self) -> None:
        """At a stop: return once the outbox is empty (the caller bounds the wait; what is left is counted as
        ``alarms_unpublished``)."""
        while self.outbox:
            await asyncio.sleep(0.02)

    async def _send(self, alarm: Alarm) -> bool:
        """Send one transition; False when it could not be sent now (it is tried again)."""
        raise NotImplementedError

    async def run(self) -> None:
        while True:
            check_cancelled()  # a stop that came while a client library's wait_for completed ends the task
            while not self.outbox:
                self.ready.clear()
                await self.ready.wait()
            a = self.outbox[0]
            if not await self._send(a):
                await asyncio.sleep(0.2)
                continue
            if self.outbox and self.outbox[0] is a:  # not pushed out by newer transitions meanwhile
                self.outbox.popleft()
            self.published += 1


class LabelLookup(Protocol):
    """Gives the ground-truth class of a judged beat, when there is one (the evaluator)."""

    def label_of(self, score: BeatScore) -> str | None: ...


class TruthSink(Sink, LabelLookup, Protocol):
    """A ground-truth sink (:class:`ecgmon.evaluation.evaluator.Evaluator`): it matches verdicts to the truth
    the chunks carry, gives each judged beat's reference class, and the live sensitivity and specificity the
    console shows.  The monitor never makes one: whoever composes the run (the CLI, a test) hands over a
    :data:`TruthFactory`, so the live path never imports evaluation code."""

    @property
    def sensitivity(self) -> float | None: ...

    @property
    def specificity(self) -> float | None: ...


class TruthFactory(Protocol):
    """Makes the ground-truth sink for a run: ``tolerance_s`` is the match window (s), ``offline_flags`` the
    offline model's verdict per ECG5000 row (for the agreement figure; empty for other sources)."""

    def __call__(self, *, tolerance_s: float, offline_flags: dict[int, bool]) -> TruthSink: ...


class HeadlessSink(NullSink):
    """Headless output: one JSON object per line for every verdict and alarm transition.

    Lines from a replayed or recorded stream carry ``"replay": true``, so no consumer can mistake
    them for a live patient; a line of a bed in ``simulated`` (the monitor's set of beds whose device says it
    sends a simulator's samples, handed over by :func:`ecgmon.monitor.app.build`) carries ``"simulated": true``.
    With ``labels`` (the evaluator), beat lines carry their reference class.
    """

    def __init__(self, out: TextIO, *, replay: bool, labels: LabelLookup | None = None) -> None:
        self.out, self.replay, self.labels = out, replay, labels
        self.simulated: set[str] = set()
        self.lost = 0  # lines that could not be written (the reader went away: a closed pipe or terminal)
        self.summary: dict[str, object] | None = None  # the run's summary, once written (monitor.app.write_summary)

    def on_beat(self, score: BeatScore) -> None:
        b = score.beat
        line: dict[str, object] = {
            "type": "beat", "patient": b.patient, "index": b.index, "time": round(time.time(), 3),
            "rr_prev_s": round(b.rr_prev_s, 4), "rr_next_s": round(b.rr_next_s, 4),
            "hr_bpm": None if b.hr_bpm is None else round(b.hr_bpm, 1),
            "loss": round(score.loss, 6), "threshold": score.threshold,
            "verdict": score.verdict, "latency_ms": round(score.latency_s * 1000, 2)}
        if score.shape_loss is not None:  # two-channel beats: the shares, and which the verdict was judged on
            line.update(shape_loss=round(score.shape_loss, 6), rr_loss=round(score.rr_loss or 0.0, 6),
                        judged_on="shape" if score.by_shape else "shape+rr")
        if b.noisy:  # its 10 s stretch failed the signal-quality index (segmentation.sqi): no verdict was given
            line["sqi_noisy"] = True
        if b.lead:  # a QRS of the bed's second lead where the first showed none (segmentation.agreement): no verdict
            line["found_on"] = "second lead"
        if self.labels is not None and (label := self.labels.label_of(score)) is not None:
            line["label"] = label
        self._write(line)

    def on_alarm(self, alarm: Alarm) -> None:
        self._write({"type": "alarm", **alarm.to_json()})

    def on_typed(self, typed: TypedBeat) -> None:
        """An abnormal beat's type, once the alarm policy knows it (normal beats: no line)."""
        if typed.kind is not BeatKind.NORMAL:
            b = typed.score.beat
            self._write({"type": "typed", "patient": b.patient, "index": b.index, "kind": str(typed.kind),
                         "p_ventricular": None if typed.p_ventricular is None else round(typed.p_ventricular, 3),
                         "rr_ratio": None if typed.rr_ratio is None else round(typed.rr_ratio, 3)})

    def write(self, line: dict[str, object]) -> None:
        """Any other line (stats, the summary), marked as replay like the rest, and flushed."""
        self._write(line, flush=True)

    def _write(self, line: dict[str, object], *, flush: bool = False) -> None:
        if self.replay:
            line["replay"] = True
        if self.simulated and line.get("patient") in self.simulated:
            line["simulated"] = True
        if self.lost and not flush:  # nobody reads any more: the monitor goes on (the journal keeps the alarms)
            self.lost += 1  # (a flushed line, a stats line or the summary, is tried all the same: the failure
            return  # may have been passing, and the summary is the run's account)
        try:
            self.out.write(json.dumps(line, default=_plain) + "\n")
            if flush:
                self.out.flush()
        except (OSError, ValueError) as err:  # a closed pipe or terminal (EPIPE, EIO), or a closed file
            if not self.lost:  # said once, where it is seen (stderr), with its cause
                with contextlib.suppress(OSError, ValueError):
                    print(f"ecgmon: output lines are lost from now on ({type(err).__name__}: {err}); the journal "
                          f"keeps every alarm", file=sys.stderr, flush=True)
            self.lost += 1

    def report(self) -> dict[str, object]:
        return {"output_lines_lost": self.lost} if self.lost else {}


def _plain(o: object) -> object:
    """JSON for what ``json`` does not know: numpy scalars and arrays as numbers and lists, anything else as its
    text (an output line is never lost, nor the monitor stopped, over a value's type)."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)

"""``ecgmon --source mqtt --workers N``: N monitor processes on one machine behind one router, one view.

One Python process judges beds on one core (the GIL): a machine with more cores, or a ward with more beds than one
core keeps up with, runs N worker processes.  The design is the NATS workers' (:mod:`ecgmon.monitor.jetstream`,
docs/workers.md) on one machine, without a server in between:

- The **router** (the ``ecgmon`` process) holds the one broker connection
  (:class:`~ecgmon.monitor.mqtt.MqttConnection`), subscribes to the samples, labels and control topics, and hands
  each message, undecoded, to the worker that owns its device: ``partition_of(device, N)``, FNV-1a of the device
  id modulo N, the function the NATS partitions use (a device keeps its worker across restarts; its messages
  keep their order).  So each worker receives and decodes only its own devices' messages, unlike ``--shard``,
  where every worker receives every message.  Messages travel in batches (every ``ROUTE_S``) through a pipe per
  worker, written by a thread, so a busy worker never stalls the broker connection.
- Each **worker** is a process (forked from a server process that has imported ecgmon once) running the
  ordinary :class:`~ecgmon.monitor.pipeline.Monitor` on a :class:`RoutedSource` (the same
  :class:`~ecgmon.monitor.ingress.Ingress` as ``--source mqtt``), with its own scorer (CPU threads: the cores
  divided among the workers; a GPU is shared), its own journal
  ``<journal stem>.worker<i>.jsonl`` (every alarm durable there before it is shown or published, as always) and
  learnt-state file.  It sends the router its alarm transitions (the router publishes them on the alarms topic),
  its headless lines (tagged ``"worker": i``), a console snapshot (:func:`~ecgmon.monitor.app.snapshot`) every
  ``SNAPSHOT_S`` and its summary at the end.
- **One view.**  The console merges the workers' snapshots: every bed's tile, one alarm log; ``a`` acknowledges
  on every worker, ``r`` relearns on the bed's worker.  ``ecgmon review`` takes the workers' journals together
  (``ecgmon review <journal stem>.worker*.jsonl``: one page; the router's own journal holds ``bed unmonitored``).
- **A worker that dies** (a crash, an out-of-memory kill): each of its beds gets the HIGH technical alarm ``bed
  unmonitored`` (journalled in ``<journal>``, the router's own), the worker is started again (at most
  ``RESTARTS`` times in ``RESTART_WINDOW_S``), ``REPLAY_S`` of what the dead process had judged is delivered to
  it as warm-up, then what it had not judged (the worker's floor, :class:`RoutedSource`), then the messages that
  came meanwhile (up to ``BACKLOG`` per worker; the oldest beyond that are shed, counted), and the alarm clears
  for each bed when the new worker has its signal again.  The new worker restores what its beds learnt from the
  learnt-state file (written when a bed finishes learning) and their open alarms from its journal; a device's
  sample indices go on from the dead process's (each worker reports its devices' sample clocks, the t0 of sample
  0 and the rate, to the router every second; a new process starts their streams from them, as a NATS takeover
  does).

Not across machines (that is ``--source nats``), and no takeover of a dead worker's state beyond those files.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Self, TextIO, cast

from rich.console import Console

from ecgmon.core.broker import BrokerConfig
from ecgmon.core.messages import Alarm, Chunk, Condition
from ecgmon.core.payload import device_from_topic
from ecgmon.monitor.alarms import AlarmBook, Journal, TechnicalAlarms
from ecgmon.monitor.app import KeyState, build, console_loop, snapshot, stats_task, stop_on_signals
from ecgmon.monitor.config import MonitorConfig
from ecgmon.monitor.console import Snapshot, Tile
from ecgmon.monitor.ingress import Ingress, Retained, by_device
from ecgmon.monitor.jetstream import partition_of
from ecgmon.monitor.mqtt import AlarmPublisher, MqttConnection
from ecgmon.monitor.sinks import NullSink, TruthFactory
from ecgmon.monitor.sources import InputListener, Round, SourceHealth, Task, commit_settled, one_by_one
from ecgmon.monitor.streams import DeviceStream

__all__ = ["RoutedSource", "Router", "run_workers", "worker_journal", "worker_of"]

ROUTE_S = 0.01  # the router sends each worker what came for it this often (seconds)
SNAPSHOT_S = 0.25  # a worker's console snapshot, this often (console mode); headless: its beds, every second
BACKLOG = 200_000  # messages kept per worker while it is down (about a minute of 800 devices at 4 packets/s)


def _merged_inputs(inputs: list[object]) -> dict[str, object]:
    """The workers' ``input`` summaries (:meth:`ecgmon.monitor.ingress.Ingress.summary`) as one: counts added,
    the ``{device: {reason: n}}`` breakdowns (``rejected_by``, ``streams_by``) merged as one worker's are
    (:func:`~ecgmon.monitor.ingress.by_device`: the 50 devices with the most), ``commands`` added, so that the run's
    summary shows every rejection without reading ``per_worker`` (they were only there: a newcomer, session 26)."""
    out: dict[str, object] = {}
    pairs: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    flat: dict[str, Counter[str]] = defaultdict(Counter)
    for inp in inputs:
        if not isinstance(inp, dict):
            continue
        for k, v in inp.items():
            if k in ("rejected_by", "streams_by"):
                pairs[k].update({(dev, reason): n for dev, sub in v.items() for reason, n in sub.items()})
            elif isinstance(v, dict):
                flat[k].update(v)
            elif isinstance(v, int | float) and not isinstance(v, bool):
                out[k] = out.get(k, 0) + v  # type: ignore[operator]
    out.update({k: by_device(c) for k, c in pairs.items()})
    out.update({k: dict(c) for k, c in flat.items()})
    return out


REPLAY_S = 8.0  # a restarted worker first gets this much of its judged input again as warm-up (its segmenters)
RESTARTS = 5  # restarts of one worker allowed within RESTART_WINDOW_S; after that it stays down (alarmed)
RESTART_WINDOW_S = 60.0
STOP_S = 30.0  # how long the router waits for each worker's summary at a stop before killing it

Batch = list[tuple[str, bytes]]


def worker_of(device: str, workers: int) -> int:
    """The worker (0..workers-1) that owns ``device``: :func:`~ecgmon.monitor.jetstream.partition_of`."""
    return partition_of(device, workers)


def worker_journal(journal: Path, index: int) -> Path:
    """Worker ``index``'s journal beside the router's: ``alarms.jsonl`` -> ``alarms.worker0.jsonl``."""
    return journal.with_name(f"{journal.stem}.worker{index}{journal.suffix or '.jsonl'}")


def _worker_state(path: Path | None, index: int) -> Path | None:
    return None if path is None else path.with_name(f"{path.stem}.worker{index}{path.suffix}")


# ---------------------------------------------------------------------------------------------- the worker side


class RoutedSource:
    """Chunks from the router's batches of MQTT messages: the worker's source (live: it cannot pause).

    The router numbers the messages it sends each worker.  This source gives the monitor its rounds itself
    (:meth:`rounds`) and commits: once every beat segmented up to a message is settled (judged, shed), the
    message's number is the worker's *floor* (``commit``, which the monitor calls before it shows a batch's
    verdicts).  The worker tells the router its floor after the verdict lines it covers (one pipe, in order).  A
    restarted worker gets from the router what is above the floor again, and ``REPLAY_S`` of what is below it as
    warm-up (:attr:`Chunk.warmup`: the segmenters rebuilt, those beats not judged again): nothing lost, nothing
    judged twice, as a NATS takeover (:mod:`ecgmon.monitor.jetstream`).  What a worker killed between its lines
    and its floor had judged is judged again (at least once, never lost)."""

    replay = False
    can_pause = False

    def __init__(self, cfg: BrokerConfig, label: str) -> None:
        self.label = label
        self.ingress = Ingress(topic=cfg.topic, labels_topic=cfg.labels_topic, reorder=cfg.reorder,
                               max_payload=cfg.max_payload, control_topic=cfg.control_topic,
                               max_devices=cfg.max_devices)
        self.inbox: asyncio.Queue[tuple[Batch, int | None] | None] = asyncio.Queue()
        self.waiting = 0  # messages in the inbox
        self.marks: deque[tuple[int, int]] = deque()  # (beats segmented up to it, message number), to commit
        self.floor = -1  # every message up to this number is judged
        self.host: object = None

    def put(self, batch: Batch | None, first: int | None = None) -> None:
        """A batch from the router, its first message's number (None: warm-up, already judged; the batch None:
        no more)."""
        self.waiting += len(batch or ())
        self.inbox.put_nowait(None if batch is None else (batch, first))

    def attach(self, listener: InputListener) -> None:
        self.ingress.listener = listener
        self.host = listener  # the Monitor: its ``settled`` count

    def health(self) -> SourceHealth:
        return SourceHealth("routed", input_lag_s=self.ingress.input_lag(), waiting=self.waiting,
                            capacity=BACKLOG)

    def summary(self) -> dict[str, object]:
        return {**self.ingress.summary(), "floor": self.floor}

    def tasks(self) -> list[Task]:
        return [("floor", commit_settled(self.commit, lambda: getattr(self.host, "settled", None)))]

    def sinks(self) -> list[Any]:
        return []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def rounds(self, limit: int) -> AsyncIterator[Round]:
        """Each batch from the router as rounds of at most ``limit`` messages, their payloads decoded together."""
        while (item := await self.inbox.get()) is not None:
            batch, first = item
            self.waiting -= len(batch)
            for i in range(0, len(batch), limit):
                part = batch[i:i + limit]
                if first is None:  # warm-up: judged by the dead process
                    chunks = self.ingress.handle_many(part)
                    yield Round([dataclasses.replace(c, warmup=True, truth=()) for c in chunks])
                    continue
                ends: list[int] = []
                chunks = self.ingress.handle_many(part, ends=ends)
                yield Round(chunks, [(n, first + i + k) for k, n in enumerate(ends)], self._settle)

    def _settle(self, upto: int, number: int) -> None:
        self.marks.append((upto, number))

    async def commit(self, settled: int) -> None:
        """The first ``settled`` beats are settled (or about to be shown): the messages up to them are judged."""
        floor = self.floor
        while self.marks and self.marks[0][0] <= settled:
            floor = self.marks.popleft()[1]
        self.floor = floor

    def __aiter__(self) -> AsyncIterator[Chunk]:
        """Chunk by chunk (the Source protocol): see :func:`~ecgmon.monitor.sources.one_by_one`."""
        return one_by_one(self.rounds(1), lambda: getattr(getattr(self.host, "stats", None), "segmented", 0))


class _Uplink:
    """The worker's side of its pipe to the router: ``send(obj)`` queues, a thread writes."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.q: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="uplink", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (obj := self.q.get()) is not None:
            try:
                self.conn.send(obj)
            except (OSError, ValueError):  # the router is gone: nothing to tell
                return

    def send(self, obj: object) -> None:
        self.q.put(obj)

    def close(self) -> None:
        self.q.put(None)
        self.thread.join(timeout=10)


class _Lines:
    """A text stream for the worker's headless sink: whole lines, tagged with the worker, sent in batches."""

    def __init__(self, uplink: _Uplink, index: int) -> None:
        self.uplink, self.tag, self.part = uplink, f'{{"worker": {index}, ', ""
        self.buf: list[str] = []

    def write(self, s: str) -> int:
        text = self.part + s
        *whole, self.part = text.split("\n")
        self.buf += [self.tag + w[1:] if w.startswith("{") else w for w in whole]
        return len(s)

    def flush(self) -> None:
        if self.buf:
            self.uplink.send(("lines", self.buf))
            self.buf = []


class _AlarmsUp(NullSink):
    """Every alarm transition to the router (which publishes it), after the worker's journal has it."""

    def __init__(self, uplink: _Uplink) -> None:
        self.uplink = uplink

    def on_alarm(self, alarm: Alarm) -> None:
        self.uplink.send(("alarm", alarm.to_json()))

    def forget(self, patient: str) -> None:
        """The bed was discharged (after its clears went up): the router forgets it too."""
        self.uplink.send(("discharged", patient))


def _worker_main(index: int, n: int, cfg: MonitorConfig, inbox: Connection, outbox: Connection,
                 truth: TruthFactory | None, origins: dict[str, tuple[float, float]] | None = None) -> None:
    """A worker process: the router stops it (SIGINT from the terminal is the router's to handle).  ``origins``:
    device -> (t0 of its sample 0, fs), as an earlier process of this worker had them (a restart)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    uplink = _Uplink(outbox)
    try:
        asyncio.run(_worker(index, n, cfg, inbox, uplink, truth, origins or {}))
    finally:
        uplink.close()


async def _worker(index: int, n: int, cfg: MonitorConfig, inbox: Connection, uplink: _Uplink,
                  truth: TruthFactory | None, origins: dict[str, tuple[float, float]]) -> None:
    assert cfg.broker is not None
    lines = _Lines(uplink, index)
    source = RoutedSource(cfg.broker, f"LIVE MQTT {cfg.broker.url} {cfg.broker.topic} worker {index}/{n}")
    # a restarted worker's devices keep their sample clocks: beat and alarm indices go on from where the dead
    # process's were (as a NATS takeover does), not from 0 again
    for dev, (t0, fs) in origins.items():
        st = source.ingress.streams[dev] = DeviceStream(dev, reorder=cfg.broker.reorder,
                                                        reorder_s=source.ingress.reorder_s)
        st.t0_first, st.fs = t0, fs
    sent: dict[str, tuple[float, float]] = dict(origins)
    # headless: verdict lines to the router; console: snapshots only (build makes no headless sink with ui on)
    b = build(cfg, out=cast(TextIO, lines), extra_sinks=[_AlarmsUp(uplink)], truth=truth, source=source)
    mon = b.monitor
    loop = asyncio.get_running_loop()
    focus: list[str | None] = [None]

    def on_message(obj: tuple[Any, ...]) -> None:
        kind = obj[0]
        if kind == "msgs":
            source.put(obj[1], obj[2])
        elif kind == "warm":
            source.put(obj[1], None)
        elif kind == "ack":
            mon.acknowledge(obj[1] if len(obj) > 1 else None)
        elif kind == "relearn":
            mon.relearn(obj[1])
        elif kind == "focus":
            focus[0] = obj[1]
        elif kind == "stop":
            mon.done.set()

    def reader() -> None:
        while True:
            try:
                obj = inbox.recv()
            except (EOFError, OSError):  # the router is gone: stop like a stop signal does
                _call(loop, mon.done.set)
                return
            if not _call(loop, on_message, obj):
                return

    async def report() -> None:
        last_beds, floor = 0.0, -1
        while True:
            await asyncio.sleep(SNAPSHOT_S if cfg.ui else 0.1)
            lines.flush()
            if source.floor != floor:  # after the verdict lines it covers: the router never loses one
                floor = source.floor
                uplink.send(("floor", floor))
            now = time.monotonic()
            if cfg.ui:
                uplink.send(("snap", _trim(snapshot(b), focus[0])))
            if now - last_beds >= 1.0:
                if not cfg.ui:
                    uplink.send(("beds", sorted(mon.beds)))
                st = mon.stats  # what this process has done so far: kept by the router should it die
                uplink.send(("progress", {"beats": st.beats, "alarms": st.alarms, "segmented": st.segmented,
                                          "shed_messages": st.shed_messages,
                                          "messages": source.ingress.handled}))
                new = {d: o for d, s in source.ingress.streams.items()
                       if s.t0_first is not None and s.fs is not None and sent.get(d) != (o := (s.t0_first, s.fs))}
                if new:  # the devices' sample clocks, for a restart of this worker
                    uplink.send(("origins", new))
                    sent.update(new)
                last_beds = now

    threading.Thread(target=reader, name="router-reader", daemon=True).start()
    uplink.send(("ready", os.getpid()))
    extra: list[Task] = [("report", report())]
    if b.headless is not None and not cfg.ui:
        extra.append(("stats", stats_task(b, b.headless)))
    try:
        await mon.run(source, extra_tasks=extra)
    finally:
        summary = mon.summary()
        mon.close()
        lines.flush()
        uplink.send(("summary", summary))


def _call(loop: asyncio.AbstractEventLoop, fn: Callable[..., object], *args: object) -> bool:
    """``fn(*args)`` on the loop, from a pipe's thread; False when the loop has closed (the run is over)."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        return False
    return True


def _trim(snap: Snapshot, focus: str | None) -> Snapshot:
    """A snapshot to send: every tile's strip cut to what a tile shows, except the bed shown alone."""
    tiles = tuple(t if t.patient == focus or not t.fs else
                  dataclasses.replace(t, strip=t.strip[-int(5.0 * t.fs):]) for t in snap.tiles)
    return dataclasses.replace(snap, tiles=tiles)


# ---------------------------------------------------------------------------------------------- the router side


@dataclass(eq=False)
class _Worker:
    index: int
    proc: BaseProcess | None = None
    tx: queue.SimpleQueue[object] = field(default_factory=queue.SimpleQueue)
    gen: int = 0  # incremented at every start: a dead process's late messages are ignored
    ready: bool = False
    pending: Batch = field(default_factory=list)  # messages not yet sent (kept while the worker is down)
    beds: set[str] = field(default_factory=set)
    snap: Snapshot | None = None
    summary: dict[str, object] | None = None
    progress: dict[str, int] = field(default_factory=dict)  # this process's counts, reported every second
    before: Counter[str] = field(default_factory=Counter)  # the counts of its earlier, dead processes
    starts: deque[float] = field(default_factory=lambda: deque(maxlen=RESTARTS + 1))
    pid: int | None = None
    given_up: bool = False
    origins: dict[str, tuple[float, float]] = field(default_factory=dict)  # device -> (t0 of sample 0, fs)
    # messages are numbered per worker as they are sent; the worker reports its floor (every message up to it
    # judged); what was sent is kept (numbered, with when) while above the floor, and REPLAY_S below it (warm-up)
    next_number: int = 0
    floor: int = -1
    sent: deque[tuple[int, float, str, bytes]] = field(default_factory=deque)


class Router:
    """The router and its N workers; the console's :class:`~ecgmon.monitor.app.Controls`."""

    def __init__(self, cfg: MonitorConfig, workers: int, *, out: TextIO | None = None,
                 truth: TruthFactory | None = None) -> None:
        if cfg.broker is None or cfg.source != "mqtt":
            raise ValueError("--workers needs --source mqtt")
        if workers < 1:
            raise ValueError("--workers must be >= 1")
        self.cfg, self.n, self.truth, self.broker = cfg, workers, truth, cfg.broker
        self.out = out if out is not None else (None if cfg.ui else sys.stdout)
        self.done = asyncio.Event()
        self.workers = [_Worker(i) for i in range(workers)]
        self.threads = max(1, (cfg.threads or (os.cpu_count() or 2)) // workers)
        self.journal = Journal(cfg.journal)
        self.books: dict[str, AlarmBook] = {}
        self.discharged = 0  # beds the workers discharged (a worker's own count is lost when it is restarted)
        self.own_alarms: deque[Alarm] = deque(maxlen=200)
        self.received = 0  # messages from the broker
        self.routed: Counter[int] = Counter()
        self.shed: Counter[int] = Counter()  # messages dropped from a down worker's full backlog
        self.resent: Counter[int] = Counter()  # sent again to a restarted worker (its dead process had not judged)
        self.warmup: Counter[int] = Counter()  # sent again as warm-up (judged, to rebuild the segmenters)
        self.restarts = 0
        self.stopping = False
        self.started = time.monotonic()
        topics = [t for t in (self.broker.topic, self.broker.labels_topic, self.broker.control_topic) if t]
        self.conn = MqttConnection(self.broker, topics, on_shed=lambda topic: self.shed.update([-1]))
        self.publisher = AlarmPublisher(self.conn, topic=self.broker.alarms_topic, max_outbox=self.broker.max_outbox)
        # workers fork from a server process that has imported ecgmon (and torch) once: a worker starts, and a dead
        # one restarts, in about the time its model takes to load, not an interpreter's start and torch's import
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(["ecgmon.monitor.workers"])
        self._loop: asyncio.AbstractEventLoop | None = None

    # ----- Controls (the console's keys)
    @property
    def beds(self) -> dict[str, int]:
        """Every bed a worker has reported, in the console's order, with its worker."""
        return dict(sorted((p, w.index) for w in self.workers for p in w.beds))

    def acknowledge(self, patient: str | None = None) -> None:
        """``patient``'s alarms acknowledged (its worker's), or every bed's and the router's own (None)."""
        if patient is not None:
            owner = self.beds.get(patient)
            if owner is not None:
                self.workers[owner].tx.put(("ack", patient))
            for a in book.acknowledge() if (book := self.books.get(patient)) is not None else ():
                self._own(a)
            return
        for w in self.workers:
            w.tx.put(("ack",))
        for book in self.books.values():
            for a in book.acknowledge():
                self._own(a)

    def relearn(self, patient: str | None = None) -> list[str]:
        owner = self.beds.get(patient) if patient is not None else None
        if owner is None:
            return []
        snap = self.workers[owner].snap
        tile = next((t for t in snap.tiles if t.patient == patient), None) if snap else None
        if tile is not None and tile.learning is None and not tile.learnt:  # no per-bed learning on this model
            return []
        self.workers[owner].tx.put(("relearn", patient))
        return [patient] if patient is not None else []

    def focus(self, patient: str | None) -> None:
        for w in self.workers:
            w.tx.put(("focus", patient))

    # ----- workers
    def _start(self, w: _Worker) -> None:
        assert self._loop is not None
        w.gen += 1
        w.ready = False
        w.starts.append(time.monotonic())
        to_child_r, to_child_w = self._ctx.Pipe(duplex=False)
        from_child_r, from_child_w = self._ctx.Pipe(duplex=False)
        cfg = dataclasses.replace(self.cfg, journal=worker_journal(self.cfg.journal, w.index),
                                  learn_state=_worker_state(self.cfg.learn_state, w.index), threads=self.threads)
        p = self._ctx.Process(target=_worker_main, name=f"ecgmon-worker{w.index}", daemon=True,
                              args=(w.index, self.n, cfg, to_child_r, from_child_w, self.truth, dict(w.origins)))
        p.start()
        to_child_r.close()
        from_child_w.close()
        w.proc, w.tx = p, queue.SimpleQueue()
        gen, loop, tx = w.gen, self._loop, w.tx

        def send() -> None:
            while (obj := tx.get()) is not None:
                try:
                    to_child_w.send(obj)
                except (OSError, ValueError):  # the worker died; the reader says so
                    break
            with contextlib.suppress(OSError):
                to_child_w.close()

        def recv() -> None:
            while True:
                try:
                    obj = from_child_r.recv()
                except (EOFError, OSError):
                    _call(loop, self._gone, w, gen)
                    return
                if not _call(loop, self._from_worker, w, gen, obj):
                    return

        threading.Thread(target=send, name=f"to-worker{w.index}", daemon=True).start()
        threading.Thread(target=recv, name=f"from-worker{w.index}", daemon=True).start()

    def _from_worker(self, w: _Worker, gen: int, obj: tuple[Any, ...]) -> None:
        if gen != w.gen:
            return
        kind = obj[0]
        if kind == "ready":
            w.ready, w.pid = True, obj[1]
            self._write_lines([json.dumps({"type": "worker", "worker": w.index, "state": "ready", "pid": w.pid,
                                           "start": len(w.starts)})])
        elif kind == "lines":
            self._write_lines(obj[1])
        elif kind == "alarm":
            self.publisher.on_alarm(Alarm.from_json(obj[1]))
        elif kind == "snap":
            w.snap = obj[1]
            self._seen(w, {t.patient for t in w.snap.tiles})
        elif kind == "beds":
            self._seen(w, set(obj[1]))
        elif kind == "discharged":
            self._discharged(w, obj[1])
        elif kind == "progress":
            w.progress = obj[1]
        elif kind == "origins":
            w.origins.update(obj[1])
        elif kind == "floor":
            w.floor = max(w.floor, int(obj[1]))
            self._trim_sent(w)
        elif kind == "summary":
            w.summary = obj[1]

    def _seen(self, w: _Worker, beds: set[str]) -> None:
        w.beds |= beds
        for p in beds:  # the bed's worker has its signal (again)
            if (book := self.books.get(p)) is not None and Condition.BED_UNMONITORED in book.active:
                for a in book.clear(Condition.BED_UNMONITORED):
                    self._own(a)

    def _discharged(self, w: _Worker, patient: str) -> None:
        """A worker discharged ``patient``'s bed: no longer one of its beds (a worker that dies later raised 'bed
        unmonitored' for the patient who had left, never cleared: a reviewer, session 41)."""
        self.discharged += 1
        w.beds.discard(patient)
        w.origins.pop(patient, None)
        if (book := self.books.pop(patient, None)) is not None:
            for cond in list(book.active):
                for a in book.clear(cond, reason="discharged"):
                    self._own(a)

    def _gone(self, w: _Worker, gen: int) -> None:
        if gen != w.gen:
            return
        w.ready = False
        if w.proc is not None:
            w.proc.join(timeout=1)
        w.tx.put(None)
        if w.summary is None:  # died without a summary: what it last reported counts (at most 1 s old)
            w.before.update(w.progress)
            w.progress = {}
        if self.stopping:
            return
        code = w.proc.exitcode if w.proc is not None else None
        for p in sorted(w.beds):
            book = self.books.setdefault(p, AlarmBook(p))
            # where in the bed's signal: its device's sample clock, as the dead process last reported it
            t0, fs = w.origins.get(p, (None, None))
            at = int((time.time() - t0) * fs) if t0 is not None and fs else None
            for a in TechnicalAlarms(book).raise_(Condition.BED_UNMONITORED, f"worker {w.index} died "
                                                  f"(exit code {code}); being restarted", index=at):
                self._own(a)
        recent = [t for t in w.starts if time.monotonic() - t < RESTART_WINDOW_S]
        if len(recent) >= RESTARTS:
            w.given_up = True
            self._write_lines([json.dumps({"type": "worker", "worker": w.index, "state": "given up",
                                           "exitcode": code, "restarts_in_window": len(recent)})])
            return
        self.restarts += 1
        # what the dead process was sent and had not judged goes to the new one first (numbered again from the
        # floor on), after REPLAY_S of what it had judged as warm-up: its segmenters rebuilt, nothing judged twice
        now = time.monotonic()
        warm = [(t, p) for n, at, t, p in w.sent if n <= w.floor and now - at <= REPLAY_S]
        again = [(t, p) for n, _, t, p in w.sent if n > w.floor]
        while w.sent and w.sent[-1][0] > w.floor:
            w.sent.pop()
        w.pending = again + w.pending
        w.next_number = w.floor + 1
        self.resent[w.index] += len(again)
        self.warmup[w.index] += len(warm)
        self._write_lines([json.dumps({"type": "worker", "worker": w.index, "state": "restarting",
                                       "exitcode": code, "resent": len(again), "warmup": len(warm)})])
        self._start(w)
        if warm:
            w.tx.put(("warm", warm))

    def _own(self, alarm: Alarm) -> None:
        """The router's own alarm transitions: journalled, then shown and published."""
        self.journal.on_alarm(alarm)
        self.own_alarms.append(alarm)
        self.publisher.on_alarm(alarm)
        self._write_lines([json.dumps({"type": "alarm", **alarm.to_json()})])

    def _write_lines(self, lines: list[str]) -> None:
        if self.out is None or not lines:
            return
        with contextlib.suppress(OSError):
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()

    # ----- routing
    def _device(self, topic: str) -> str:
        b = self.broker
        for f in (b.topic, b.labels_topic, b.control_topic):
            if f and (dev := device_from_topic(topic, f)) is not None:
                return dev
        return ""

    async def _route(self) -> None:
        n, workers = self.n, self.workers
        cache: dict[str, int] = {}
        async for msg in self.conn.messages():
            self.received += 1
            topic = msg.topic.value
            i = cache.get(topic)
            if i is None:
                i = cache[topic] = worker_of(self._device(topic), n) if len(cache) < 100_000 else 0
            payload = msg.payload
            data = payload if isinstance(payload, bytes) else bytes(payload or b"")
            # a retained command is refused by the worker (ingress.Retained)
            workers[i].pending.append((topic, Retained(data) if msg.retain else data))

    async def _flush(self) -> None:
        while True:
            await asyncio.sleep(ROUTE_S)
            for w in self.workers:
                if not w.pending:
                    continue
                if w.ready:
                    self._send_pending(w)
                elif len(w.pending) > BACKLOG:  # down: keep the newest BACKLOG
                    cut = len(w.pending) - BACKLOG
                    self.shed[w.index] += cut
                    del w.pending[:cut]

    # ----- the view
    def snapshot(self, keys: KeyState) -> Snapshot:
        snaps = [w.snap for w in self.workers if w.snap is not None]
        tiles: list[Tile] = []
        for w in self.workers:
            if w.snap is not None:
                tiles += w.snap.tiles
        down = {p for w in self.workers if not w.ready for p in w.beds}
        tiles = [t if t.patient not in down else self._down_tile(t) for t in sorted(tiles, key=lambda t: t.patient)]
        log = sorted([a for s in snaps for a in s.alarm_log] + list(self.own_alarms), key=lambda a: a.time)[-200:]
        lat50 = [s.latency_p50_ms for s in snaps if s.latency_p50_ms is not None]
        lat99 = [s.latency_p99_ms for s in snaps if s.latency_p99_ms is not None]
        mon_alarms = [s.monitor_alarm for s in snaps if s.monitor_alarm is not None]
        host, port, tls = self.broker.host_port
        up = sum(w.ready for w in self.workers)
        label = (f"LIVE MQTT {'mqtts' if tls else 'mqtt'}://{host}:{port} {self.broker.topic} "
                 f"[{self.conn.state}] workers {up}/{self.n} up")
        first = snaps[0] if snaps else None
        return Snapshot(tuple(tiles), tuple(log), label, False, sum(s.beats_per_s for s in snaps),
                        max(lat50, default=None), max(lat99, default=None), sum(s.queue_depth for s in snaps),
                        sum(s.queue_max for s in snaps), sum(s.shed for s in snaps),
                        first.device if first else "-", first.model if first else "-", None, None,
                        time.monotonic() - self.started,
                        max(mon_alarms, key=lambda a: a.priority, default=None),
                        sum(s.shed_messages for s in snaps) + sum(self.shed.values()), keys.focus, keys.notice)

    def _down_tile(self, t: Tile) -> Tile:
        """A bed whose worker is down: no rate, trace or verdict (nothing is computing them), its alarm only."""
        book = self.books.get(t.patient)
        a = book.active.get(Condition.BED_UNMONITORED) if book else None
        return dataclasses.replace(t, heart_rate=None, strip=t.strip[:0], loss=None, marks=(), alarm=a,
                                   alarms=(a,) if a else (), n_alarms=int(a is not None), learning=None)

    def summary(self) -> dict[str, object]:
        """The workers' summaries added up, with what their dead processes had counted (each process's last
        progress report, at most a second before it died: ``before_restarts``)."""
        per = [w.summary or {} for w in self.workers]
        dead: Counter[str] = Counter()
        for w in self.workers:
            dead.update(w.before)
            if w.summary is None:  # still down, or gone without a summary at the stop
                dead.update(w.progress)

        def total(key: str) -> int:
            return sum(int(s.get(key, 0) or 0) for s in per) + dead[key]  # type: ignore[call-overload]

        inputs = [s.get("input", {}) for s in per]
        handled = sum(int(i.get("messages", 0)) for i in inputs if isinstance(i, dict)) + dead["messages"]
        own = len({a.id for a in self.own_alarms})

        def worst(key: str) -> float | None:  # percentiles do not add up across workers: the worst worker's
            vals = [float(v) for s in per if isinstance(v := s.get(key), int | float)]
            return max(vals) if vals else None

        return {"type": "summary", "source": f"mqtt {self.broker.url} {self.broker.topic}", "replay": False,
                "workers": self.n, "beats": total("beats"), "alarms": total("alarms") + own,
                "patients": total("patients"), "discharged": self.discharged, "segmented": total("segmented"),
                "elapsed_s": round(time.monotonic() - self.started, 3),
                "routed": {str(k): v for k, v in sorted(self.routed.items())},
                "resent": {str(k): v for k, v in sorted(self.resent.items())},
                "warmup_messages": {str(k): v for k, v in sorted(self.warmup.items())},
                "shed_messages": total("shed_messages") + sum(self.shed.values()),
                "received": self.received,
                # handled by the workers' processes, dead ones included (their last progress report), each once: a
                # message sent again to a restarted worker (``resent``) or as its warm-up (``warmup_messages``) is
                # not counted again (it was, and the totals overcounted what arrived: a newcomer, session 26)
                "messages": handled - sum(self.resent.values()) - sum(self.warmup.values()),
                "messages_handled": handled,
                "input": _merged_inputs(inputs),
                "restarts": self.restarts, "given_up": [w.index for w in self.workers if w.given_up],
                "unmonitored_beds": sorted(p for p, b in self.books.items() if Condition.BED_UNMONITORED in b.active),
                "router_alarms": own, "before_restarts": dict(dead),
                # latency: the worst worker's percentile (an upper bound of the pooled one) and the longest seen
                "latency_p99_ms_worst_worker": worst("latency_p99_ms"), "e2e_p99_ms_worst_worker": worst("e2e_p99_ms"),
                "e2e_p99_ms_steady_worst_worker": worst("e2e_p99_ms_steady"), "e2e_max_ms": worst("e2e_max_ms"),
                "simulated": sorted({str(p) for s in per for p in s.get("simulated", ()) or ()}),  # type: ignore[attr-defined]
                "per_worker": per}

    # ----- running
    async def run(self, extra_tasks: list[Task] | None = None) -> dict[str, object]:
        """Start the workers, route until ``done`` (or a stop signal), stop the workers and collect their summaries."""
        self._loop = asyncio.get_running_loop()
        for w in self.workers:
            self._start(w)
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self._route(), name="route"), tg.create_task(self._flush(), name="flush"),
                         tg.create_task(self.publisher.run(), name="publish-alarms")]
                tasks += [tg.create_task(c, name=n) for n, c in extra_tasks or []]
                await self.done.wait()
                await self._stop()
                for t in tasks:
                    t.cancel()
        finally:
            self.stopping = True
            for w in self.workers:
                if w.proc is not None and w.proc.is_alive():
                    w.proc.kill()
            await self.conn.close()
            self.journal.close()
        return self.summary()

    async def _stop(self) -> None:
        self.stopping = True
        for w in self.workers:
            if w.pending and w.ready:
                self._send_pending(w)
        for w in self.workers:
            w.tx.put(("stop",))
        deadline = time.monotonic() + STOP_S
        while time.monotonic() < deadline and any(w.summary is None and w.proc is not None and w.proc.is_alive()
                                                  for w in self.workers):
            await asyncio.sleep(0.1)
        with contextlib.suppress(TimeoutError):  # every worker's last alarms on the alarms topic
            async with asyncio.timeout(2.0):
                await self.publisher.drain()

    def _send_pending(self, w: _Worker) -> None:
        """The messages that came for a ready worker since the last send, as one batch, numbered on."""
        self.routed[w.index] += len(w.pending)
        first, now = w.next_number, time.monotonic()
        w.tx.put(("msgs", w.pending, first))
        w.sent.extend((first + k, now, t, p) for k, (t, p) in enumerate(w.pending))
        w.next_number += len(w.pending)
        w.pending = []
        self._trim_sent(w)

    def _trim_sent(self, w: _Worker) -> None:
        """Forget what was sent, judged and older than REPLAY_S (kept: what is above the floor, up to BACKLOG)."""
        sent, cutoff = w.sent, time.monotonic() - REPLAY_S
        while sent and ((sent[0][0] <= w.floor and sent[0][1] < cutoff) or len(sent) > BACKLOG):
            sent.popleft()


def run_workers(cfg: MonitorConfig, workers: int, console: Console, *, truth: TruthFactory | None = None) -> int:
    """``ecgmon --source mqtt --workers N``: the router and N workers, with the console or headless; 0."""
    router = Router(cfg, workers, truth=truth)

    async def main() -> dict[str, object]:
        timer: list[Task] = [("duration", _after(cfg.duration, router.done))] if cfg.duration else []
        if cfg.ui:
            result: dict[str, object] = {}

            async def run(extra: list[Task]) -> None:
                result.update(await router.run(extra))

            def snap(keys: KeyState) -> Snapshot:
                if keys.focus != getattr(snap, "focus", None):
                    router.focus(keys.focus)
                    snap.focus = keys.focus  # type: ignore[attr-defined]
                return router.snapshot(keys)

            await console_loop(console, router, snap, lambda extra: run([*extra, *timer]), bell=cfg.bell)
            return result
        with stop_on_signals(router):
            return await router.run(timer)

    summary = asyncio.run(main())
    with contextlib.suppress(OSError):
        print(json.dumps(summary), flush=True)
    return 0


async def _after(seconds: float | None, done: asyncio.Event) -> None:
    if seconds is not None:
        await asyncio.sleep(seconds)
        done.set()

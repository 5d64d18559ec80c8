"""Distributed workers on NATS JetStream: partitioned input, pinned consumers, takeover that loses nothing.

Devices are unchanged: they publish MQTT 3.1.1 on ``ecg/<device>/samples`` (and ``labels``, ``control``) to the
NATS server's MQTT listener.  The server's subject mapping (``deploy/nats/``, :func:`server_mappings`) turns
``ecg.<device>.samples`` into ``ecgp.<partition>.<device>.samples``, the partition a stable hash of the device id
(FNV-1a, :func:`partition_of`), and a JetStream stream keeps everything under ``ecgp.>``.

Each partition has one durable pull consumer in a priority group with the ``pinned_client`` policy (ADR-42): of
the workers pulling it, the server delivers to one only (the pinned one, named by the ``Nats-Pin-Id`` header).
A worker that stops pulling (killed, hung, cut off) loses the pin after ``priority_timeout``; the server then
pins a standby whose pull is waiting.  nats-py has no priority-group API, so pulls are raw JetStream API requests
(``$JS.API.CONSUMER.MSG.NEXT``) carrying ``group`` and ``id``.

A :class:`NatsSource` is one worker's source.  It pulls its preferred partitions at once and, after
``standby_after_s``, every other partition as a standby.  When it becomes a partition's owner it:

1. reads the consumer's acknowledgement floor (everything at or below it was judged by the previous owner);
2. takes the partition's beds over from the key-value bucket: each device's sample origin (so sample indices,
   beat indices and alarm evidence continue), what each bed learnt (no relearning) and the open alarms (same ids:
   never raised twice, cleared by the new owner);
3. replays ``replay_s`` seconds of the partition up to the floor as *warm-up* chunks (:attr:`Chunk.warmup`): the
   segmenters' filters and detectors are rebuilt, their beats are not judged again;
4. goes on with the messages above the floor (first the ones the previous owner had not acknowledged).

A message is acknowledged only once every beat segmented up to it has been judged (``Monitor.settled``), so the
acknowledgement floor is what has been judged.  Duplicates (redeliveries) are skipped by stream sequence.
Per-device order holds because ``ack_wait`` < ``priority_timeout``: what the previous owner left unacknowledged is
due for redelivery before the new owner is pinned.  Pinning is not exclusive under every failure (ADR-42): a
worker that was only slow may judge a few messages that its successor judges too; it learns so on its next pull
(status 423) and releases the partition.

Every worker publishes its status on ``ecgmon.status.<worker>`` (MQTT ``ecgmon/status/<worker>``): the partitions
and beds it owns.  Every worker watches the others': a partition that nobody has claimed for
``unmonitored_after_s`` raises the HIGH technical alarm ``bed unmonitored`` for each of its known beds (raised
by each worker that sees it; cleared when an owner appears).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import KeyValueConfig
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

from ecgmon.core.aio import check_cancelled
from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, Chunk, Condition, Priority
from ecgmon.monitor.alarms import AlarmBook, TechnicalAlarms
from ecgmon.monitor.ingress import Ingress
from ecgmon.monitor.learning import Learnt, bed_from_json, bed_to_json
from ecgmon.monitor.pipeline import MONITOR
from ecgmon.monitor.settings import NatsSettings
from ecgmon.monitor.sinks import AlarmOutbox, Sink
from ecgmon.monitor.sources import InputListener, Round, SourceHealth, Task, commit_settled, one_by_one
from ecgmon.monitor.streams import DeviceStream

KINDS = ("samples", "labels", "control")  # the device topics mapped into partitions
ORIGIN = "Ecgmon-Worker"  # the header naming the worker that published a bed's alarm
_NS = 1_000_000_000


# ---------------------------------------------------------------------------------------------- subjects


def device_token(device: str) -> str:
    """The NATS subject token of a device id: NATS's MQTT bridge writes MQTT's '.' as '//' ('/' becomes '.')."""
    return device.replace(".", "//")


def device_of_token(token: str) -> str:
    return token.replace("//", ".")


def partition_of(device: str, partitions: int) -> int:
    """The partition the server's mapping ``{{partition(N,1)}}`` gives ``device``: FNV-1a (32 bits) of its subject
    token, modulo N - stable across restarts and servers.  Raises ValueError for N < 1."""
    if partitions < 1:
        raise ValueError("partitions must be >= 1")
    h = 0x811C9DC5
    for byte in device_token(device).encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h % partitions


def server_mappings(partitions: int, *, prefix: str = "ecgp", kinds: Sequence[str] = KINDS) -> dict[str, str]:
    """The server's subject mappings (its ``mappings {}`` block): device topics -> partitioned subjects."""
    return {f"ecg.*.{k}": f"{prefix}.{{{{partition({partitions},1)}}}}.{{{{wildcard(1)}}}}.{k}" for k in kinds}


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a JetStream message's reply subject says: ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.
    <timestamp ns>.<pending>`` (the 9-token form; newer servers may prefix a domain and account hash)."""

    stream_seq: int
    delivered: int
    timestamp: float  # seconds

    @classmethod
    def parse(cls, reply: str) -> Delivery:
        t = reply.split(".")
        if len(t) < 9 or t[0] != "$JS" or t[1] != "ACK":
            raise ValueError(f"not a JetStream reply subject: {reply!r}")
        if len(t) == 9:
            delivered, sseq, ts = t[4], t[5], t[7]
        else:  # $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>...
            delivered, sseq, ts = t[6], t[7], t[9]
        return cls(int(sseq), int(delivered), int(ts) / _NS)


class JetStreamError(RuntimeError):
    """A JetStream API request failed (the server's error description is in the message)."""


class NatsApi:
    """The raw JetStream API requests the workers need (nats-py has no priority-group API)."""

    def __init__(self, nc: NatsClient, cfg: NatsSettings) -> None:
        self.nc, self.cfg = nc, cfg

    async def request(self, subject: str, body: dict[str, Any] | None = None, *,
                      timeout: float = 5.0) -> dict[str, Any]:
        msg = await self.nc.request(f"$JS.API.{subject}", json.dumps(body).encode() if body is not None else b"",
                                    timeout=timeout)
        d = json.loads(msg.data or b"{}")
        if "error" in d:
            raise JetStreamError(f"{subject}: {d['error'].get('description', d['error'])}")
        return dict(d)

    def consumer(self, partition: int) -> str:
        return f"{self.cfg.prefix}-{partition}"

    async def ensure(self) -> None:
        """Create the stream and every partition's pinned consumer where they are missing (idempotent: every worker
        calls it at start; an existing consumer keeps its state)."""
        c = self.cfg
        stream = {"name": c.stream, "subjects": [f"{c.prefix}.>"], "storage": "file", "retention": "limits",
                  "max_age": int(c.max_age_s * _NS), "num_replicas": c.replicas, "discard": "old",
                  # the ingest bridge's retries carry a Nats-Msg-Id: a copy within this window is not stored again
                  "duplicate_window": int(c.duplicate_window_s * _NS)}
        try:
            await self.request(f"STREAM.INFO.{c.stream}")
        except JetStreamError:
            with contextlib.suppress(JetStreamError):  # another worker may have created it meanwhile
                await self.request(f"STREAM.CREATE.{c.stream}", stream)
            await self.request(f"STREAM.INFO.{c.stream}")
        for p in range(c.partitions):
            name = self.consumer(p)
            cfg = {"durable_name": name, "filter_subject": f"{c.prefix}.{p}.>", "ack_policy": "explicit",
                   "deliver_policy": "new", "ack_wait": int(c.ack_wait_s * _NS), "max_deliver": -1,
                   "max_ack_pending": c.max_ack_pending, "max_waiting": 512, "num_replicas": c.replicas,
                   "priority_groups": [c.group], "priority_policy": "pinned_client",
                   "priority_timeout": int(c.priority_timeout_s * _NS)}
            try:
                await self.request(f"CONSUMER.INFO.{c.stream}.{name}")
            except JetStreamError:
                with contextlib.suppress(JetStreamError):
                    await self.request(f"CONSUMER.CREATE.{c.stream}.{name}", {"stream_name": c.stream, "config": cfg})
                await self.request(f"CONSUMER.INFO.{c.stream}.{name}")

    async def ack_floor(self, partition: int) -> int:
        """The stream sequence up to which the partition's consumer has every message acknowledged."""
        info = await self.request(f"CONSUMER.INFO.{self.cfg.stream}.{self.consumer(partition)}")
        return int(info.get("ack_floor", {}).get("stream_seq", 0))

    async def waiting_devices(self, partition: int) -> list[str]:
        """The devices whose messages in ``partition`` wait for a worker: stored after the last one the partition's
        consumer delivered (none when nothing waits).  One request per device of the partition: for a partition
        without an owner only."""
        c = self.cfg
        info = await self.request(f"CONSUMER.INFO.{c.stream}.{self.consumer(partition)}")
        if int(info.get("num_pending", 0)) + int(info.get("num_ack_pending", 0)) == 0:
            return []
        delivered = int((info.get("delivered") or {}).get("stream_seq", 0))
        acked = int((info.get("ack_floor") or {}).get("stream_seq", 0))
        upto = min(delivered, acked) if info.get("num_ack_pending") else delivered
        out = []
        for subject in await self._sample_subjects(f"{c.prefix}.{partition}.*.samples"):
            last = await self.request(f"STREAM.MSG.GET.{c.stream}", {"last_by_subj": subject})
            if int((last.get("message") or {}).get("seq", 0)) > upto:
                out.append(device_of_token(subject.split(".")[2]))
        return sorted(out)

    async def stream_partitions(self) -> dict[int, list[str]]:
        """partition -> its devices, for every partition the stream holds device samples in (within its
        retention): a worker with fewer ``--partitions`` than the server's mapping sees devices beyond its own."""
        out: dict[int, list[str]] = {}
        for subject in await self._sample_subjects(f"{self.cfg.prefix}.*.*.samples"):
            t = subject.split(".")
            if len(t) == 4 and t[1].isdigit():
                out.setdefault(int(t[1]), []).append(device_of_token(t[2]))
        return out

    async def _sample_subjects(self, pattern: str) -> list[str]:
        """The stream's subjects matching ``pattern`` that hold messages."""
        info = await self.request(f"STREAM.INFO.{self.cfg.stream}", {"subjects_filter": pattern})
        return list((info.get("state") or {}).get("subjects") or {})

    async def pinned(self) -> dict[int, str | None]:
        """partition -> the pin id the server holds now (None: no client pinned)."""
        out: dict[int, str | None] = {}
        for p in range(self.cfg.partitions):
            info = await self.request(f"CONSUMER.INFO.{self.cfg.stream}.{self.consumer(p)}")
            groups = info.get("priority_groups") or []
            out[p] = next((g.get("pinned_client_id") for g in groups if g.get("group") == self.cfg.group), None)
        return out

    async def unpin(self, partition: int) -> None:
        await self.request(f"CONSUMER.UNPIN.{self.cfg.stream}.{self.consumer(partition)}", {"group": self.cfg.group})

    async def replay(self, partition: int, *, since: float, upto: int) -> AsyncIterator[Msg]:
        """The partition's messages stored from wall-clock time ``since`` up to stream sequence ``upto`` (inclusive),
        through an ephemeral consumer (no acknowledgements; removed after)."""
        c = self.cfg
        start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since)) + f".{int((since % 1) * 1e9):09d}Z"
        cfg = {"filter_subject": f"{c.prefix}.{partition}.>", "ack_policy": "none", "deliver_policy": "by_start_time",
               "opt_start_time": start, "inactive_threshold": 30 * _NS, "mem_storage": True, "num_replicas": 1}
        info = await self.request(f"CONSUMER.CREATE.{c.stream}", {"stream_name": c.stream, "config": cfg})
        name = info["name"]
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox)
        try:
            while True:
                await self.nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{c.stream}.{name}",
                                      json.dumps({"batch": 512, "no_wait": True}).encode(), reply=inbox)
                got = 0
                while True:
                    try:
                        msg = await sub.next_msg(timeout=2.0)
                    except nats.errors.TimeoutError:
                        return
                    if _status(msg) is not None:
                        if got == 0:
                            return  # nothing more stored
                        break
                    got += 1
                    d = Delivery.parse(msg.reply)
                    if d.stream_seq > upto:
                        return
                    yield msg
                    if d.stream_seq == upto:
                        return
                    if got == 512:
                        break
        finally:
            await sub.unsubscribe()
            with contextlib.suppress(JetStreamError, nats.errors.Error):
                await self.request(f"CONSUMER.DELETE.{c.stream}.{name}")


def _status(msg: Msg) -> str | None:
    """A pull request's status message (no data: 404, 408, 409, 423, ...), or None for a stream message."""
    h = msg.headers
    return h.get("Status") if h and not msg.data and "Status" in h else None


# ---------------------------------------------------------------------------------------------- shared state


class Bucket:
    """The workers' shared state in one JetStream key-value bucket (``cfg.bucket``); keys by partition, so a worker
    taking a partition over reads only that partition's:

    - ``origin.p<P>.<device>``: ``{"t0", "fs"}``, the device's sample clock origin (sample index 0);
    - ``learnt.p<P>.<device>``: what the bed learnt (:func:`~ecgmon.monitor.learning.bed_to_json`), per model;
    - ``alarm.p<P>.<device>.<condition>``: the bed's open alarm of that condition (deleted when it clears).
    """

    def __init__(self, kv: KeyValue, cfg: NatsSettings, js: JetStreamContext | None = None) -> None:
        self.kv, self.cfg, self.js = kv, cfg, js

    @classmethod
    async def open(cls, nc: NatsClient, cfg: NatsSettings) -> Bucket:
        js = nc.jetstream()
        try:
            kv = await js.key_value(cfg.bucket)
        except nats.js.errors.BucketNotFoundError:
            try:
                kv = await js.create_key_value(KeyValueConfig(bucket=cfg.bucket, history=1, replicas=cfg.replicas))
            except nats.js.errors.Error:  # created by another worker meanwhile
                kv = await js.key_value(cfg.bucket)
        return cls(kv, cfg, js)

    def key(self, kind: str, device: str, *rest: str) -> str:
        return ".".join((kind, f"p{partition_of(device, self.cfg.partitions)}", device, *rest))

    async def read(self, kind: str, partition: int) -> list[dict[str, Any]]:
        """Every value under ``<kind>.p<partition>.>`` (JSON objects; unreadable and deleted ones are left out).

        The keys come from the bucket's stream (its subjects under that prefix), each read by itself: a watch of the
        prefix (as before) can come back empty under load, nats-py putting its "no more" marker before entries the
        server delivered but the client had not handed over yet (a test failure beside two evaluations, session 42),
        and a worker taking a partition over then read its learnt states and open alarms as none."""
        if self.js is None:
            raise RuntimeError("Bucket.read needs the JetStream context (Bucket.open)")
        prefix = f"$KV.{self.cfg.bucket}."
        info = await self.js.stream_info(f"KV_{self.cfg.bucket}", subjects_filter=f"{prefix}{kind}.p{partition}.>")
        out = []
        for subject in sorted(info.state.subjects or {}):
            try:
                e = await self.kv.get(subject[len(prefix):])
            except nats.js.errors.KeyNotFoundError:  # deleted (KeyDeletedError) or gone meanwhile
                continue
            with contextlib.suppress(ValueError, TypeError):
                d = json.loads(e.value or b"")
                if isinstance(d, dict):
                    out.append(d)
        return out

    async def put(self, key: str, value: dict[str, Any]) -> None:
        await self.kv.put(key, json.dumps(value, separators=(",", ":")).encode())

    async def delete(self, key: str) -> None:
        with contextlib.suppress(nats.js.errors.KeyNotFoundError):
            await self.kv.delete(key)


def _cond_key(condition: Condition) -> str:
    return str(condition).replace(" ", "-")


class KvLearntStore:
    """The beds' learnt states in the workers' bucket, with :class:`~ecgmon.monitor.learning.LearntStore`'s
    ``load``/``save`` interface.  ``load`` returns nothing: a worker reads a partition's beds when it takes the
    partition over (:meth:`NatsSource` does).  ``save`` (on the disk writer's thread) writes the beds of the
    partitions this worker owns, so it never overwrites another owner's newer state."""

    def __init__(self, source: NatsSource, model: str) -> None:
        self.source, self.model = source, model
        self.problem = ""
        self.saved = 0
        self.failed = 0

    @property
    def where(self) -> str:
        return f"NATS key-value bucket {self.source.cfg.bucket!r}"

    def load(self) -> dict[str, tuple[float, Learnt]]:
        return {}

    def save(self, beds: dict[str, tuple[float, Learnt]]) -> None:
        src = self.source
        loop, bucket = src.loop, src.bucket
        if loop is None or bucket is None or not loop.is_running():
            return  # the connection is gone (after the run): the last state was saved while running
        owned = src.owned_partitions()
        writes = [(bucket.key("learnt", p), {**bed_to_json(fs, lt), "model": self.model, "device": p})
                  for p, (fs, lt) in beds.items() if partition_of(p, src.cfg.partitions) in owned]

        async def put_all() -> None:
            for key, value in writes:
                await bucket.put(key, value)

        try:
            asyncio.run_coroutine_threadsafe(put_all(), loop).result(timeout=10.0)
            self.saved += len(writes)
        except (FutureTimeout, nats.errors.Error, OSError) as err:
            self.failed += 1
            self.problem = f"last save failed: {type(err).__name__}"

    def forget(self, patient: str) -> None:
        """A discharged bed (``Monitor.discharge``): what it learnt is deleted from the bucket (on the disk writer's
        thread, as :meth:`save`), so that the device's next patient, on whatever worker, does not start from it."""
        src = self.source
        loop, bucket = src.loop, src.bucket
        if loop is None or bucket is None or not loop.is_running():
            return
        try:
            asyncio.run_coroutine_threadsafe(bucket.delete(bucket.key("learnt", patient)), loop).result(timeout=10.0)
        except (FutureTimeout, nats.errors.Error, OSError) as err:
            self.failed += 1
            self.problem = f"last delete failed: {type(err).__name__}"


class ClusterAlarms(AlarmOutbox):
    """A sink that keeps every bed's open alarms in the bucket (the next owner takes them over, same ids) and
    publishes each transition on ``ecg.<device>.alarms`` (MQTT ``ecg/<device>/alarms``), in order, from a bounded
    outbox (:class:`~ecgmon.monitor.sinks.AlarmOutbox`; what it drops stays in the journal)."""

    def __init__(self, source: NatsSource, *, max_outbox: int = 10000) -> None:
        super().__init__(max_outbox=max_outbox)
        self.source = source

    async def _send(self, alarm: Alarm) -> bool:
        try:
            await self._one(alarm)
        except (nats.errors.Error, OSError, TimeoutError):
            return False  # disconnected: tried again after the reconnection
        return True

    def on_alarm(self, alarm: Alarm) -> None:
        if alarm.origin is None:  # another worker's alarm (a station's view) is that worker's to keep and publish
            super().on_alarm(alarm)

    async def _one(self, a: Alarm) -> None:
        src = self.source
        assert src.nc is not None and src.bucket is not None
        payload = json.dumps(a.to_json()).encode()
        if a.patient == MONITOR:
            await src.nc.publish(f"ecgmon.alarms.{src.cfg.worker}", payload)
            return
        if a.condition is not Condition.BED_UNMONITORED:  # an observer's alarm, not the bed's own
            key = src.bucket.key("alarm", a.patient, _cond_key(a.condition))
            if a.state is AlarmState.CLEARED:
                await src.bucket.delete(key)
            else:
                await src.bucket.put(key, {**a.to_json(), "worker": src.cfg.worker})
        await src.nc.publish(f"ecg.{device_token(a.patient)}.alarms", payload, headers={ORIGIN: src.cfg.worker})


# ---------------------------------------------------------------------------------------------- who owns what


@dataclass(slots=True)
class Claim:
    worker: str
    seen_mono: float
    beds: tuple[str, ...]


class Ownership:
    """Who owns which partition, from the workers' status messages (and this worker's own state).  Pure: fed by
    :meth:`heard` and :meth:`mine`, asked by :meth:`unowned` and :meth:`taken`."""

    def __init__(self, partitions: int, *, after_s: float, now: float, dead_after_s: float = 2.5) -> None:
        self.partitions, self.after_s, self.started, self.dead_after_s = partitions, after_s, now, dead_after_s
        self.claims: dict[int, Claim] = {}
        self.beds: dict[int, tuple[str, ...]] = {}  # the last beds known in each partition
        self.workers: dict[str, tuple[float, frozenset[int]]] = {}  # worker -> (last heard, preferred partitions)

    def heard(self, status: dict[str, Any], now: float) -> None:
        worker = str(status.get("worker", "?"))
        owned = status.get("owned") or {}
        for p, beds in owned.items():
            self._claim(int(p), worker, tuple(beds), now)
        if status.get("state") == "offline":  # a clean exit: its partitions are free at once
            self.workers.pop(worker, None)
            for p, c in list(self.claims.items()):
                if c.worker == worker and str(p) not in owned:
                    del self.claims[p]
        else:
            self.workers[worker] = (now, frozenset(int(p) for p in status.get("prefer") or ()))

    def taken(self, partition: int, me: str, now: float) -> bool:
        """Whether another live worker owns ``partition`` or prefers it (so a standby leaves it alone)."""
        c = self.claims.get(partition)
        if c is not None and c.worker != me and now - c.seen_mono <= self.dead_after_s:
            return True
        return any(w != me and now - seen <= self.dead_after_s and partition in prefer
                   for w, (seen, prefer) in self.workers.items())

    def mine(self, worker: str, owned: dict[int, tuple[str, ...]], now: float) -> None:
        for p, beds in owned.items():
            self._claim(p, worker, beds, now)

    def _claim(self, p: int, worker: str, beds: tuple[str, ...], now: float) -> None:
        if 0 <= p < self.partitions:
            self.claims[p] = Claim(worker, now, beds)
            self.beds[p] = beds

    def owners(self, now: float) -> dict[int, str | None]:
        return {p: (c.worker if (c := self.claims.get(p)) and now - c.seen_mono <= self.after_s else None)
                for p in range(self.partitions)}

    def unowned(self, now: float) -> list[int]:
        """Partitions without an owner for ``after_s`` (none in the first ``after_s`` of watching)."""
        if now - self.started < self.after_s:
            return []
        return [p for p, w in self.owners(now).items() if w is None]


# ---------------------------------------------------------------------------------------------- the source


class WorkerHost(InputListener, Protocol):
    """What a NATS worker needs of the monitor beyond :class:`InputListener` (``ecgmon.monitor.pipeline.Monitor``)."""

    @property
    def settled(self) -> int: ...

    stats: Any

    def emit(self, alarms: list[Alarm]) -> None: ...

    def adopt(self, learnt: dict[str, tuple[float, Learnt]], alarms: Sequence[Alarm]) -> None: ...

    def release(self, patients: Sequence[str]) -> None: ...


@dataclass(slots=True)
class Partition:
    """This worker's view of one partition."""

    index: int
    pin: str | None = None  # the server's pin id while this worker is (or was last) pinned
    owned: bool = False
    floor: int = 0  # everything at or below was judged by a previous owner (its acknowledgement floor)
    seen: set[int] = field(default_factory=set)  # stream sequences taken while owning
    seen_order: deque[int] = field(default_factory=deque)
    devices: set[str] = field(default_factory=set)
    # to acknowledge: (the beats segmented up to it, reply subject, stream sequence)
    acks: deque[tuple[int, str, int]] = field(default_factory=deque)
    # stream sequences this worker judged and acknowledged: kept across its own re-pinning, because an
    # acknowledgement can be lost with a server (the new consumer leader's floor is then below it)
    committed: set[int] = field(default_factory=set)
    committed_order: deque[int] = field(default_factory=deque)
    since_mono: float = 0.0
    takeovers: int = 0
    repin_by: float | None = None  # after losing the pin to a consumer leader change: re-pinned by then, or release

    SEEN = 100_000

    def taken(self, seq: int) -> bool:
        """Whether ``seq`` was handled already (at or below the floor, or seen); else it is marked seen."""
        if seq <= self.floor or seq in self.seen:
            return True
        self.seen.add(seq)
        self.seen_order.append(seq)
        if len(self.seen_order) > self.SEEN:
            self.seen.discard(self.seen_order.popleft())
        return False

    def commit(self, seq: int) -> None:
        self.committed.add(seq)
        self.committed_order.append(seq)
        if len(self.committed_order) > self.SEEN:
            self.committed.discard(self.committed_order.popleft())


class NatsSource:
    """A live source: this worker's partitions of the devices, from JetStream (see the module docstring).

    Brings its tasks (one puller per partition, the acknowledger, the status publisher, the ownership watch)
    and its sink (:class:`ClusterAlarms`).  ``learnt_store(model)`` gives the monitor its
    :class:`KvLearntStore`."""

    replay = False
    can_pause = False

    def __init__(self, cfg: NatsSettings) -> None:
        self.cfg = cfg
        prefer = "all" if cfg.prefer is None else ",".join(map(str, cfg.prefer)) or "none"
        self.label = (f"LIVE NATS {cfg.servers[0]} worker {cfg.worker} (partitions {prefer} of {cfg.partitions}"
                      f"{', standby for the others' if cfg.standby else ''})")
        self.ingress = Ingress(topic="ecg/+/samples", labels_topic="ecg/+/labels" if cfg.labels else None,
                               reorder=cfg.reorder, max_payload=cfg.max_payload,
                               control_topic="ecg/+/control" if cfg.control else None)
        self.parts = [Partition(p) for p in range(cfg.partitions)]
        self.nc: NatsClient | None = None
        self.api: NatsApi | None = None
        self.bucket: Bucket | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.alarms = ClusterAlarms(self)
        self.host: WorkerHost | None = None
        self.inq: deque[tuple[str, Partition, Msg | None]] = deque()
        self.wake = asyncio.Event()
        self.started_mono = time.monotonic()
        self.ownership = Ownership(cfg.partitions, after_s=cfg.unmonitored_after_s, now=self.started_mono,
                                   dead_after_s=cfg.dead_after_s)
        self.unmonitored: dict[str, AlarmBook] = {}
        self.counts: Counter[str] = Counter()
        self.takeover_s: list[float] = []  # pin -> warm-up done, per takeover
        self.state = "connecting"
        self._origins_written: set[str] = set()
        self._background: set[asyncio.Future[Any]] = set()
        # --station: the other workers' beds' open alarms, per bed (id -> the alarm, ``origin`` its worker)
        self.remote: dict[str, dict[str, Alarm]] = {}
        self._closing = False

    # -- the Source protocol

    def attach(self, listener: InputListener) -> None:
        self.host = listener  # type: ignore[assignment]  # the Monitor: a WorkerHost
        self.ingress.listener = listener

    def learnt_store(self, model: str) -> KvLearntStore:
        return KvLearntStore(self, model)

    def owned_partitions(self) -> set[int]:
        return {p.index for p in self.parts if p.owned}

    def health(self) -> SourceHealth:
        owned = sorted(self.owned_partitions())
        unowned = self.ownership.unowned(time.monotonic())
        state = f"{self.state}; owns {','.join(map(str, owned)) or 'none'}"
        # without an owner: with beds known there, those beds are unmonitored (the HIGH 'bed unmonitored' alarm);
        # without any, no device has sent on it yet (nothing to pin a worker to)
        orphaned = [p for p in unowned if self.ownership.beds.get(p)]
        idle = [p for p in unowned if not self.ownership.beds.get(p)]
        if orphaned:
            state += f"; UNOWNED {','.join(map(str, orphaned))}"
        if idle:
            state += f"; no devices yet on {','.join(map(str, idle))}"
        if self.counts["partition_mismatch"]:
            state += f"; PARTITIONS MISMATCH (--partitions {self.cfg.partitions} is not the server's)"
        waiting = len(self.inq)
        return SourceHealth(state, input_lag_s=self.ingress.input_lag(), waiting=waiting,
                            capacity=self.cfg.max_ack_pending * max(1, len(owned)))

    def summary(self) -> dict[str, object]:
        now = time.monotonic()
        return {**self.ingress.summary(), "worker": self.cfg.worker,
                "owned": sorted(self.owned_partitions()),
                "owners": {str(p): w for p, w in self.ownership.owners(now).items()},
                "unowned": self.ownership.unowned(now),
                "unmonitored_beds": sorted(d for d, b in self.unmonitored.items() if b.active and d != MONITOR),
                "partition_mismatch": self.counts["partition_mismatch"],
                **({"station_alarms": self.counts["station_alarms"]} if self.cfg.station else {}),
                "takeovers": sum(p.takeovers for p in self.parts),
                "takeover_s": [round(t, 3) for t in self.takeover_s],
                **{k: v for k, v in self.counts.items()}}

    def tasks(self) -> list[Task]:
        out: list[Task] = [(f"pull-{p.index}", self._pull(p)) for p in self.parts]
        out += [("acks", commit_settled(self.commit, lambda: self.host.settled if self.host is not None else None)),
                ("status", self._status()), ("watch-owners", self._watch()),
                ("nats-alarms", self.alarms.run())]
        if self.cfg.station:
            out.append(("station", self._station()))
        return out

    def sinks(self) -> list[Sink]:
        return [self.alarms]

    async def __aenter__(self) -> Self:
        self.loop = asyncio.get_running_loop()
        self.nc = await self._connect()
        self.api = NatsApi(self.nc, self.cfg)
        deadline = time.monotonic() + 30.0
        while True:  # a cluster just started elects its JetStream leaders first
            try:
                await self.api.ensure()
                self.bucket = await Bucket.open(self.nc, self.cfg)
                break
            except (JetStreamError, nats.errors.Error) as err:
                if time.monotonic() > deadline:
                    raise JetStreamError(f"JetStream at {self.cfg.url} is not available: {err}") from err
                self.state = f"waiting for JetStream ({err})"
                await asyncio.sleep(0.5)
        self.state = "connected"
        return self

    async def __aexit__(self, *exc: object) -> None:
        nc = self.nc
        if nc is None:
            return
        self._closing = True
        with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
            async with asyncio.timeout(3):
                await self._publish_status("offline")
                # flush, not drain: nats-py's drain swallows the timeout's cancellation and then flushes for up to
                # 10 s more; the pulls' undelivered messages are redelivered to the next owner anyway
                await nc.flush(timeout=2)
        with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
            async with asyncio.timeout(3):  # a stop is bounded even when the server has gone silent
                await nc.close()

    async def _connect(self) -> NatsClient:
        """The connection to the servers; a stop (the monitor's ``done``: SIGTERM, ``--duration``) or
        ``connect_timeout_s`` without a server ends the wait with a clear error (nats-py retries for ever)."""
        async def error(err: Exception) -> None:  # counted, not nats-py's default traceback per attempt
            self.counts[f"nats_error_{type(err).__name__}"] += 1

        connect = asyncio.ensure_future(nats.connect(
            servers=self.cfg.servers, name=f"ecgmon-{self.cfg.worker}", max_reconnect_attempts=-1,
            reconnect_time_wait=0.5, disconnected_cb=self._disconnected, reconnected_cb=self._reconnected,
            error_cb=error))
        done = getattr(self.host, "done", None)
        stop = asyncio.ensure_future(done.wait()) if isinstance(done, asyncio.Event) else None
        await asyncio.wait({connect, *([stop] if stop else [])}, timeout=self.cfg.connect_timeout_s,
                           return_when=asyncio.FIRST_COMPLETED)
        if stop is not None:
            stop.cancel()
        if connect.done():
            return connect.result()
        connect.cancel()
        await asyncio.wait({connect}, timeout=3.0)  # the client's own clean-up, bounded
        why = "stopped" if done is not None and done.is_set() else f"gave up after {self.cfg.connect_timeout_s:g} s"
        raise JetStreamError(f"NATS at {self.cfg.url} was not reached ({why}; errors: "
                             f"{ {k: v for k, v in self.counts.items() if k.startswith('nats_error_')} })")

    async def _disconnected(self) -> None:
        if self.nc is not None and (self.nc.is_closed or self._closing):
            return  # this worker's own stop, not a lost connection
        self.state = "reconnecting"
        self.counts["disconnects"] += 1

    async def _reconnected(self) -> None:
        self.state = "connected"

    # -- pulling

    def _pulls(self, part: Partition) -> bool:
        """Whether this worker pulls ``part`` now: a preferred one at once, one it owns while it owns it, and, as a
        standby (after ``standby_after_s``, time to hear the others), one that no live worker owns or prefers."""
        if part.index in self.cfg.preferred() or part.owned:
            return True
        now = time.monotonic()
        return (self.cfg.standby and now - self.started_mono >= self.cfg.standby_after_s
                and not self.ownership.taken(part.index, self.cfg.worker, now))

    async def _pull(self, part: Partition) -> None:
        """Pull requests for ``part`` one after the other (a new one when the last is answered in full, expired or
        refused), the messages taken by a subscription callback (one coroutine call per message: no task, no
        timer per message as ``next_msg`` has)."""
        assert self.nc is not None and self.api is not None
        c, nc = self.cfg, self.nc
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{c.stream}.{self.api.consumer(part.index)}"
        answered = asyncio.Event()
        got = 0
        pause = False

        async def take(msg: Msg) -> None:
            nonlocal got, pause
            status = _status(msg)
            if status is not None:
                if status == "423":  # the pin moved: to another worker (this one was too slow, or unpinned),
                    # or nowhere (a new consumer leader after a server's death does not know the pin id)
                    part.pin = None
                    self.counts["pin_lost"] += 1
                    if part.owned and not self.ownership.taken(part.index, c.worker, time.monotonic()):
                        # no other live worker claims or prefers it: keep the beds and pull on; the server
                        # pins this worker again (no second takeover: nothing replayed, nothing judged twice)
                        # or, if not within the priority timeout and a pull, the partition is released
                        part.repin_by = time.monotonic() + c.priority_timeout_s + c.pull_expires_s + 1.0
                        self.counts["pin_reset"] += 1
                    else:
                        self._put("release", part)
                elif status not in ("404", "408", "409"):
                    self.counts[f"pull_status_{status}"] += 1
                    pause = True
                answered.set()
                return
            got += 1
            pin = msg.headers.get("Nats-Pin-Id") if msg.headers else None
            if pin is not None and pin != part.pin:
                part.pin = pin
                if part.repin_by is not None and part.owned:
                    part.repin_by = None  # pinned again, still the owner: go on (see the 423 above)
                    self.counts["repinned"] += 1
                else:
                    self._put("acquire", part)
            self._put("msg", part, msg)
            if got >= c.batch:
                answered.set()

        inbox = nc.new_inbox()
        await nc.subscribe(inbox, cb=take, pending_msgs_limit=4 * c.max_ack_pending)
        expires = int(c.pull_expires_s * _NS)
        while True:
            check_cancelled()  # nats-py's wait_for may have swallowed a stop (see ecgmon.core.aio)
            if not self._pulls(part):
                await asyncio.sleep(0.1)
                continue
            req: dict[str, Any] = {"batch": c.batch, "expires": expires, "group": c.group}
            if part.pin is not None:
                req["id"] = part.pin
            answered.clear()
            got = 0
            try:
                await nc.publish(subject, json.dumps(req).encode(), reply=inbox)
            except (nats.errors.Error, OSError):
                await asyncio.sleep(0.2)
                continue
            with contextlib.suppress(TimeoutError):  # no answer: the request was lost (a reconnection): ask again
                async with asyncio.timeout(c.pull_expires_s + 1.0):
                    await answered.wait()
            if pause:
                pause = False
                await asyncio.sleep(0.1)
            if part.repin_by is not None and time.monotonic() > part.repin_by:
                part.repin_by = None  # not pinned again in time: another worker may have been; let it take over
                self._put("release", part)

    def _put(self, kind: str, part: Partition, msg: Msg | None = None) -> None:
        self.inq.append((kind, part, msg))
        self.wake.set()

    # -- the chunks

    def __aiter__(self) -> AsyncIterator[Chunk]:
        """Chunk by chunk (the Source protocol): see :func:`~ecgmon.monitor.sources.one_by_one`."""
        return one_by_one(self.rounds(1), lambda: self.host.stats.segmented if self.host is not None else 0)

    async def rounds(self, limit: int) -> AsyncIterator[Round]:
        """The messages that have arrived, up to ``limit`` at a time, as one :class:`Round` of chunks (their
        sample payloads decoded together, :meth:`Ingress.handle_many`), in order.  The monitor segments a round's
        chunks and calls :meth:`Round.segmented` before it asks for the next one: that is when this worker notes,
        per message, the beats that must be judged before it is acknowledged.  A takeover or a release ends a
        round (they change which beds are here); a takeover's warm-up comes as rounds of its own."""
        while True:
            check_cancelled()
            while not self.inq:
                self.wake.clear()
                await self.wake.wait()
            taken: list[tuple[Partition, Msg, int]] = []  # (partition, message, stream sequence)
            warm: list[tuple[Partition, Msg]] = []  # judged here before (its acknowledgement lost): warm-up only
            while self.inq and len(taken) + len(warm) < limit:
                kind, part, msg = self.inq[0]
                if kind != "msg":
                    if taken or warm:
                        break  # the messages before it first
                    self.inq.popleft()
                    if kind == "acquire":
                        async for rnd in self._takeover(part, msg_ts=self._next_ts(part), limit=limit):
                            yield rnd
                    else:
                        self._release(part)
                    continue
                self.inq.popleft()
                assert msg is not None
                if not part.owned:
                    self.counts["not_owned"] += 1  # delivered while it was being released: the next owner gets it
                    continue
                seq = Delivery.parse(msg.reply).stream_seq
                if part.taken(seq):
                    self.counts["duplicates_skipped"] += 1
                    if seq <= part.floor or seq in part.committed:
                        await self._ack(msg.reply)  # judged: acknowledged (again: the first one may have been lost)
                    # else: in hand, not judged yet; its acknowledgement comes with the judgement (commit)
                    continue
                if seq in part.committed:
                    # judged and acknowledged here before this worker was pinned again, the acknowledgement lost
                    # with a server: its chunks rebuild the segmenters (warm-up), their beats are not judged twice
                    self.counts["rejudge_skipped"] += 1
                    warm.append((part, msg))
                    await self._ack(msg.reply)
                    continue
                taken.append((part, msg, seq))
            if not (taken or warm):
                continue
            chunks, ends = self._decode([(p, m) for p, m, _ in taken])
            rnd = Round(chunks, [(n, (p, m.reply, q)) for n, (p, m, q) in zip(ends, taken, strict=True)],
                        self._settle)
            if warm:
                rnd.chunks += self._decode(warm, warmup=True)[0]
            self.counts["taken"] += len(taken)
            yield rnd

    @staticmethod
    def _settle(upto: int, token: tuple[Partition, str, int]) -> None:
        """A message of a segmented round: acknowledged once the first ``upto`` beats are settled."""
        part, reply, seq = token
        part.acks.append((upto, reply, seq))

    def _next_ts(self, part: Partition) -> float:
        """The stream time of the first message queued for ``part`` (the one that brought the pin)."""
        for kind, p, m in self.inq:
            if p is part and kind == "msg" and m is not None:
                return Delivery.parse(m.reply).timestamp
        return time.time()

    def _decode(self, msgs: Sequence[tuple[Partition, Msg]], *, warmup: bool = False) -> tuple[list[Chunk], list[int]]:
        """Messages -> the chunks they release, in order, and per message the number of chunks released up to and
        including it.  Warm-up chunks rebuild the segmenters; their beats are not judged."""
        topics: list[tuple[str, object]] = []
        keep: list[int] = []  # messages with a subject of ours
        for i, (part, msg) in enumerate(msgs):
            t = msg.subject.split(".")
            if len(t) != 4 or t[0] != self.cfg.prefix or t[3] not in KINDS:
                self.counts["unknown_subject"] += 1
                continue
            device = device_of_token(t[2])
            if device not in part.devices:
                self._check_partition(device, t[1])
            part.devices.add(device)
            topics.append((f"ecg/{device}/{t[3]}", msg.data))
            keep.append(i)
        some: list[int] = []
        chunks = self.ingress.handle_many(topics, ends=some)
        ends, n, k = [], 0, 0
        for i in range(len(msgs)):
            if k < len(keep) and keep[k] == i:
                n = some[k]
                k += 1
            ends.append(n)
        streams = self.ingress.streams
        for c in chunks:
            device = c.patient
            if device not in self._origins_written and (st := streams.get(device)) is not None \
                    and st.t0_first is not None and st.fs is not None:
                self._origins_written.add(device)
                if not warmup:
                    self._spawn(self._write_origin(device, st.t0_first, st.fs))
        if warmup:
            chunks = [dataclasses.replace(c, warmup=True, truth=()) for c in chunks]
        return chunks, ends

    def _check_partition(self, device: str, token: str) -> None:
        """A device's first message here: it must come in the partition ``--partitions`` puts it in (a worker with
        more partitions than the server's mapping sees it here; one with fewer is caught by :meth:`_check_stream`)."""
        expected = partition_of(device, self.cfg.partitions)
        if token != str(expected):
            self._mismatch(f"device {device} came in partition {token}, but --partitions {self.cfg.partitions} "
                           f"puts it in {expected}")

    async def _check_stream(self) -> None:
        """Devices stored in partitions at or beyond ``--partitions``: no worker of this configuration pulls them."""
        if self.api is None:
            return
        beyond = {p: d for p, d in (await self.api.stream_partitions()).items() if p >= self.cfg.partitions}
        if beyond:
            devices = sorted(d for ds in beyond.values() for d in ds)
            self._mismatch(f"the stream holds devices in partitions {','.join(map(str, sorted(beyond)))}, beyond "
                           f"--partitions {self.cfg.partitions}: {len(devices)} bed(s) that no worker with this "
                           f"setting pulls ({', '.join(devices[:5])}{', ...' if len(devices) > 5 else ''})")

    def _mismatch(self, why: str) -> None:
        """``--partitions`` differs from the server's subject mapping: HIGH on the monitor itself (once)."""
        self.counts["partition_mismatch"] += 1
        book = self.unmonitored.setdefault(MONITOR, AlarmBook(MONITOR))
        out = book.raise_(Condition.BED_UNMONITORED, AlarmKind.TECHNICAL, Priority.HIGH,
                          f"--partitions is not the server's number of partitions: {why}. Give every worker the "
                          f"number of the servers' subject mapping (docs/workers.md); where the server has more, "
                          f"the beds of the partitions beyond are not monitored")
        if out and self.host is not None:
            self.host.emit(out)

    async def _write_origin(self, device: str, t0: float, fs: float) -> None:
        if self.bucket is not None:
            with contextlib.suppress(nats.errors.Error, OSError):
                await self.bucket.put(self.bucket.key("origin", device), {"device": device, "t0": t0, "fs": fs})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _takeover(self, part: Partition, *, msg_ts: float, limit: int) -> AsyncIterator[Round]:
        """This worker has just been pinned on ``part``: take its beds over and rebuild their segmenters."""
        assert self.api is not None and self.bucket is not None
        t0 = time.monotonic()
        if part.owned:  # pinned again without a release in between (the server re-pinned us): nothing to do
            return
        part.takeovers += 1
        self.counts["takeovers"] += 1
        try:
            floor, origins, learnt_rows, alarm_rows = await self._shared(part)
        except (JetStreamError, nats.errors.Error, TimeoutError) as err:
            # the shared state cannot be read (a cluster electing leaders): monitor the beds all the same, as new
            # ones (learning again, no warm-up), rather than not at all
            self.counts["takeover_without_state"] += 1
            self.state = f"connected (took partition {part.index} over without its shared state: {err})"
            floor, origins, learnt_rows, alarm_rows = 0, [], [], []
        now = time.time()
        learnt: dict[str, tuple[float, Learnt]] = {}
        model = getattr(getattr(self.host, "store", None), "model", None)
        for r in learnt_rows:
            try:
                fs, lt = bed_from_json(r)
            except (KeyError, ValueError, TypeError):
                self.counts["learnt_unreadable"] += 1
                continue
            if (model is None or r.get("model") == model) and now - lt.last_seen <= self.cfg.forget_s:
                learnt[str(r["device"])] = (fs, lt)
        alarms = []
        for r in alarm_rows:
            try:
                alarms.append(Alarm.from_json(r))
            except (KeyError, ValueError, TypeError):
                self.counts["alarm_unreadable"] += 1
        # a fresh start for the partition's beds here: their streams from the shared origins, their beds from
        # the shared state (anything this worker kept from an earlier ownership is stale)
        known = part.devices | {str(r.get("device")) for r in origins}
        self._forget(part, known)
        for r in origins:
            with contextlib.suppress(KeyError, ValueError, TypeError):
                dev = str(r["device"])
                st = DeviceStream(dev, reorder=self.cfg.reorder, reorder_s=self.ingress.reorder_s,
                                  stream=self.ingress.stream_gen(dev))
                st.t0_first, st.fs = float(r["t0"]), float(r["fs"])
                self.ingress.streams[dev] = st
                self._origins_written.add(dev)
                part.devices.add(dev)
        for dev in known:
            self.remote.pop(dev, None)  # this worker's own beds now: their alarms are its own
        if self.host is not None:
            self.host.adopt(learnt, alarms)
        part.floor, part.owned, part.since_mono = floor, True, time.monotonic()
        part.seen.clear()
        part.seen_order.clear()
        replayed = 0
        if floor > 0 and self.cfg.replay_s > 0:
            batch: list[tuple[Partition, Msg]] = []
            try:
                async for msg in self.api.replay(part.index, since=msg_ts - self.cfg.replay_s, upto=floor):
                    replayed += 1
                    batch.append((part, msg))
                    if len(batch) >= limit:
                        yield Round(self._decode(batch, warmup=True)[0], [])
                        batch = []
            except (JetStreamError, nats.errors.Error) as err:
                self.counts["replay_failed"] += 1
                self.state = f"connected (warm-up replay failed: {err})"
            if batch:
                yield Round(self._decode(batch, warmup=True)[0], [])
        self.counts["replayed"] += replayed
        self.takeover_s.append(time.monotonic() - t0)

    async def _shared(self, part: Partition, *, tries: int = 4) -> tuple[int, list[dict[str, Any]],
                                                                       list[dict[str, Any]], list[dict[str, Any]]]:
        """The partition's acknowledgement floor and its beds' shared state, tried ``tries`` times."""
        assert self.api is not None and self.bucket is not None
        for i in range(tries):
            try:
                return (await self.api.ack_floor(part.index), await self.bucket.read("origin", part.index),
                        await self.bucket.read("learnt", part.index), await self.bucket.read("alarm", part.index))
            except (JetStreamError, nats.errors.Error, TimeoutError):
                if i == tries - 1:
                    raise
                await asyncio.sleep(0.5)
        raise AssertionError("unreachable")

    def _forget(self, part: Partition, devices: set[str]) -> None:
        for dev in devices:
            self.ingress.streams.pop(dev, None)
            self._origins_written.discard(dev)
        if self.host is not None:
            self.host.release(sorted(devices))

    def _release(self, part: Partition) -> None:
        """Another worker owns ``part`` now: drop its beds here; what was not acknowledged goes to the new owner."""
        if not part.owned:
            return
        part.owned = False
        self.counts["released"] += 1
        self.counts["unacked_at_release"] += len(part.acks)
        part.acks.clear()
        self._forget(part, set(part.devices))

    # -- acknowledgements

    async def _ack(self, reply: str) -> None:
        assert self.nc is not None
        with contextlib.suppress(nats.errors.Error, OSError):
            await self.nc.publish(reply, b"+ACK")

    async def commit(self, settled: int, *, timeout_s: float = 1.0) -> None:
        """Acknowledge every message whose beats are all among the first ``settled`` (judged or about to be), and
        wait until the server has the acknowledgements.  The monitor calls it before it shows a batch's verdicts:
        a worker killed after this has its successor start after these messages (nothing judged twice); killed
        before it, its successor judges them (nothing lost).  A server that does not answer within ``timeout_s``
        does not hold the verdicts up (the acknowledgements are sent again by the server's redelivery logic:
        duplicates are then skipped by stream sequence)."""
        assert self.nc is not None
        n = 0
        for part in self.parts:
            while part.acks and part.acks[0][0] <= settled:
                _, reply, seq = part.acks.popleft()
                await self._ack(reply)
                part.commit(seq)
                n += 1
        if n:
            self.counts["acked"] += n
            with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
                await self.nc.flush(timeout=max(1, math.ceil(timeout_s)))

    # -- a central station's view of the other workers' beds

    async def _station(self) -> None:
        """Every other worker's bed alarms, shown and journalled here (``--station``): first the open ones the
        workers keep in the bucket, then each transition they publish on ``ecg.<device>.alarms``.  Each comes with
        ``origin`` (the worker that judged it), so this monitor never keeps, publishes or restores it as its own."""
        assert self.nc is not None

        async def heard(msg: Msg) -> None:
            worker = msg.headers.get(ORIGIN) if msg.headers else None
            if worker == self.cfg.worker:
                return
            try:
                alarm = Alarm.from_json(json.loads(msg.data))
            except (ValueError, KeyError, TypeError):
                self.counts["station_unreadable"] += 1
                return
            self._remote_alarm(alarm, worker or "another worker")

        await self.nc.subscribe("ecg.*.alarms", cb=heard)
        if self.bucket is not None:
            for p in range(self.cfg.partitions):
                with contextlib.suppress(JetStreamError, nats.errors.Error, TimeoutError):
                    for row in await self.bucket.read("alarm", p):
                        try:
                            alarm = Alarm.from_json(row)
                        except (ValueError, KeyError, TypeError):
                            self.counts["station_unreadable"] += 1
                            continue
                        self._remote_alarm(alarm, str(row.get("worker") or "another worker"))

    def _remote_alarm(self, alarm: Alarm, worker: str) -> None:
        """Another worker's alarm transition: kept in the station's view, journalled and shown (once)."""
        if alarm.condition is Condition.BED_UNMONITORED or alarm.patient == MONITOR:
            return  # each observer raises its own; a worker's own technical state is its own business
        if any(alarm.patient in p.devices for p in self.parts if p.owned):
            return  # a bed this worker judges (a takeover just happened): its alarms are this worker's own
        open_ = self.remote.setdefault(alarm.patient, {})
        known = open_.get(alarm.id)
        if known is not None and known.state is alarm.state:
            return  # heard twice (the bucket and the subject)
        alarm = dataclasses.replace(alarm, origin=worker)
        if alarm.state is AlarmState.CLEARED:
            if open_.pop(alarm.id, None) is None:
                return  # its raise was never seen here: nothing to clear on this view
        else:
            open_[alarm.id] = alarm
        self.counts["station_alarms"] += 1
        if self.host is not None:
            self.host.emit([alarm])

    def remote_beds(self) -> dict[str, tuple[str | None, tuple[Alarm, ...]]]:
        """``--station``: every bed another worker judges (from the workers' status and their alarms) -> (its
        worker, None while its partition has no owner; its open alarms, highest priority first).  Empty without
        ``--station``."""
        if not self.cfg.station:
            return {}
        mine = {d for p in self.parts if p.owned for d in p.devices}
        owners = self.ownership.owners(time.monotonic())
        out: dict[str, tuple[str | None, tuple[Alarm, ...]]] = {}
        for p, beds in self.ownership.beds.items():
            for d in beds:
                if d not in mine and owners.get(p) != self.cfg.worker:
                    out[d] = (owners.get(p), ())
        for d, open_ in self.remote.items():
            if d not in mine:  # its worker now: its partition's owner (None: none), not the worker that raised them
                worker = out[d][0] if d in out else owners.get(partition_of(d, self.cfg.partitions))
                out[d] = (worker, tuple(sorted(open_.values(), key=lambda a: -a.priority)))
        return out

    # -- status and ownership

    def _owned_beds(self) -> dict[int, tuple[str, ...]]:
        return {p.index: tuple(sorted(p.devices)) for p in self.parts if p.owned}

    async def _publish_status(self, state: str = "online") -> None:
        if self.nc is None:
            return
        owned = {} if state == "offline" else self._owned_beds()
        body = {"worker": self.cfg.worker, "state": state, "time": time.time(), "partitions": self.cfg.partitions,
                "prefer": list(self.cfg.preferred()), "standby": self.cfg.standby,
                "owned": {str(p): list(b) for p, b in owned.items()}}
        await self.nc.publish(f"ecgmon.status.{self.cfg.worker}", json.dumps(body).encode())

    async def _status(self) -> None:
        while True:
            check_cancelled()
            with contextlib.suppress(nats.errors.Error, OSError):
                await self._publish_status()
            await asyncio.sleep(self.cfg.status_every_s)

    async def _watch(self) -> None:
        """Hear the other workers' status; raise ``bed unmonitored`` for the beds of partitions nobody owns."""
        assert self.nc is not None

        async def heard(msg: Msg) -> None:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                status = json.loads(msg.data)
                if status.get("worker") != self.cfg.worker:  # its own state it knows first-hand
                    self.ownership.heard(status, time.monotonic())

        await self.nc.subscribe("ecgmon.status.*", cb=heard)
        probed: dict[int, float] = {}
        found: set[str] = set()
        stream_checked = -1e9
        while True:
            check_cancelled()
            await asyncio.sleep(self.cfg.status_every_s)
            now = time.monotonic()
            if now - stream_checked >= 10.0:
                stream_checked = now
                with contextlib.suppress(JetStreamError, nats.errors.Error, TimeoutError, ValueError):
                    await self._check_stream()
            self.ownership.mine(self.cfg.worker, self._owned_beds(), now)
            unowned = set(self.ownership.unowned(now))
            # beds nobody has named yet (no worker ever owned them, or this observer started after their worker
            # died): the devices whose messages wait in an unowned partition's stream
            for p in sorted(unowned):
                if now - probed.get(p, -1e9) >= self.cfg.unmonitored_after_s:
                    probed[p] = now
                    with contextlib.suppress(JetStreamError, nats.errors.Error, TimeoutError, ValueError):
                        if waiting := await self.api.waiting_devices(p) if self.api is not None else []:
                            self.ownership.beds[p] = tuple(sorted(set(self.ownership.beds.get(p, ())) | set(waiting)))
                            found.update(waiting)
                            self.counts["waiting_found"] = len(found)
            out: list[Alarm] = []
            for p in range(self.cfg.partitions):
                for dev in self.ownership.beds.get(p, ()):
                    book = self.unmonitored.get(dev)
                    if p in unowned:
                        if book is None:
                            book = self.unmonitored[dev] = AlarmBook(dev)
                        out += TechnicalAlarms(book).raise_(Condition.BED_UNMONITORED,
                                                                     f"its partition {p} has no owner")
                    elif book is not None:
                        out += TechnicalAlarms(book).clear(Condition.BED_UNMONITORED)
            if out and self.host is not None:
                self.host.emit(out)

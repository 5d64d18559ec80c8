"""The ingest bridge: devices' MQTT packets into the JetStream device stream, each one acknowledged by the stream
before the device's broker is told it was received.

Why (docs/workers.md, "Devices into a cluster"): NATS's own MQTT listener acknowledges a QoS 1 PUBLISH without
knowing whether the device stream stored it.  The packet reaches the stream ``ECG`` as a plain NATS publish
(fire-and-forget), so while the stream's leader is being re-elected (a server died) packets acknowledged to the
devices are dropped: 121-162 of 450 in each of 3 probe runs that killed the stream leader, none when another node
died.  The bridge makes the handover explicit:

1. devices publish MQTT 3.1.1 (QoS 1) to a broker (mosquitto), unchanged;
2. the bridge subscribes to their topics with QoS 1 in a *persistent* session and acknowledges nothing itself
   (paho's manual acknowledgements);
3. each packet is published to JetStream on its partition's subject (``ecgp.<partition>.<device>.<kind>``,
   :func:`partition_of`, the server mapping's function) with a ``Nats-Msg-Id`` header made of the device, the
   kind and a hash of the payload, and the stream's acknowledgement awaited; a failure (no stream leader, a
   timeout, a lost connection) is retried with the same id until it succeeds: the stream's duplicate window
   (2 min) makes the retries idempotent (a retry of a packet that was in fact stored is answered ``duplicate``);
4. only then is the MQTT packet acknowledged (PUBACK, in the order the packets came).

Per device, one packet at a time is in flight to JetStream (the next waits for the previous one's
acknowledgement), so a retry never reorders a device's packets in the stream; devices run concurrently.

The bridge's own death: what it had not acknowledged stays with the broker (persistent session, QoS 1) and is
redelivered to the next bridge with the same client id; whatever of it was already stored is answered as a
duplicate by the stream (within the duplicate window).  The broker must keep the session while the bridge is
away (mosquitto: ``persistent_client_expiration`` unset or long, ``max_queued_messages`` high enough).

Counted (:meth:`MqttBridge.summary`): ``received`` packets, ``stored`` (new in the stream), ``duplicates``
(already in the stream: a redelivery or a retry), ``retries`` (failed attempts, by cause in ``failures``),
``rejected`` (topic not ``ecg/<device>/<kind>`` or payload over the server's limit: acknowledged and dropped,
never retried), ``pending`` (received, not yet stored), ``mqtt_connects``, ``nats_disconnects``, ``store_max_s``
(the longest time one packet took to be stored, retries included).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import signal
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import aiomqtt
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient

from ecgmon.core.aio import check_cancelled
from ecgmon.core.broker import BrokerConfig
from ecgmon.monitor.jetstream import KINDS, JetStreamError, NatsApi, device_token, partition_of
from ecgmon.monitor.settings import NatsSettings


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    """The bridge's settings.  Times in seconds.

    ``mqtt``: the devices' broker (the bridge's client id must be stable: its persistent session holds what the
    bridge has not acknowledged); ``nats``: the stream, partitions and replicas (the workers' settings).
    ``attempt_timeout_s``: how long one publish waits for the stream's acknowledgement before it is retried;
    retries back off from ``retry_s`` to ``retry_max_s``.  ``drain_s``: at a stop, how long the packets already
    received may take to be stored (the rest are redelivered to the next bridge)."""

    mqtt: BrokerConfig = field(default_factory=lambda: BrokerConfig(client_id="ecgmon-bridge"))
    nats: NatsSettings = field(default_factory=NatsSettings)
    attempt_timeout_s: float = 2.0
    retry_s: float = 0.05
    retry_max_s: float = 1.0
    drain_s: float = 10.0
    reconnect_s: float = 0.5
    max_inflight: int = 1000  # MQTT messages from the broker not yet acknowledged (mosquitto caps it too)

    def __post_init__(self) -> None:
        if not self.mqtt.persistent:
            raise ValueError("the bridge needs a persistent MQTT session (unacknowledged packets wait in it)")

    def topics(self) -> list[str]:
        kinds = ["samples"] + (["labels"] if self.nats.labels else []) + (["control"] if self.nats.control else [])
        return [f"ecg/+/{k}" for k in kinds]


def msg_id(device: str, kind: str, payload: bytes) -> str:
    """The ``Nats-Msg-Id`` of a packet: the same for every copy of it (a device's or the broker's redelivery, the
    bridge's retry), different for any other packet (device packets carry their sequence number and time)."""
    return f"{device_token(device)}.{kind}.{hashlib.blake2b(payload, digest_size=16).hexdigest()}"


class _Entry:
    __slots__ = ("mid", "t0", "task")

    def __init__(self, mid: int, task: asyncio.Task[None]) -> None:
        self.mid, self.task, self.t0 = mid, task, time.monotonic()


class MqttBridge:
    """Devices' MQTT packets into JetStream, acknowledged only once stored (module docstring).  ``run`` until
    ``stop`` is set; ``summary()`` any time."""

    def __init__(self, cfg: BridgeSettings, *, log: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.log = log or (lambda _m: None)
        self.counts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.store_max_s = 0.0
        self.state = "starting"
        self.nc: NatsClient | None = None
        self._last: dict[str, asyncio.Task[None]] = {}  # device/kind -> its latest store task (per-device order)
        self._order: deque[_Entry] = deque()  # packets in the order they came, acknowledged in that order
        self._acked = asyncio.Event()

    def summary(self) -> dict[str, Any]:
        return {"state": self.state, **{k: self.counts[k] for k in (
                    "received", "stored", "duplicates", "retries", "rejected", "retained", "mqtt_connects",
                    "mqtt_disconnects", "nats_disconnects")},
                "pending": len(self._order), "failures": dict(self.failures),
                "store_max_s": round(self.store_max_s, 3)}

    # -- JetStream

    async def _connect_nats(self) -> NatsClient:
        async def disconnected() -> None:
            if self.state != "stopped":  # the bridge's own stop is no lost connection
                self.counts["nats_disconnects"] += 1

        async def error(err: Exception) -> None:  # one line each, not nats-py's default traceback
            self.failures[f"nats: {type(err).__name__}"] += 1
            self.state = f"connecting to NATS {self.cfg.nats.url} ({type(err).__name__}: {err})"

        nc = await nats.connect(servers=self.cfg.nats.servers, name=f"ecgmon-bridge-{self.cfg.mqtt.client_id}",
                                max_reconnect_attempts=-1, reconnect_time_wait=0.25, disconnected_cb=disconnected,
                                error_cb=error)
        api = NatsApi(nc, self.cfg.nats)
        deadline = time.monotonic() + 60.0
        while True:  # the stream and the consumers, so that nothing stored waits for a worker to create them
            try:
                await api.ensure()
                return nc
            except (JetStreamError, nats.errors.Error) as err:
                if time.monotonic() > deadline:
                    await nc.close()
                    raise JetStreamError(f"JetStream at {self.cfg.nats.url} is not available: {err}") from err
                self.state = f"waiting for JetStream ({err})"
                await asyncio.sleep(0.5)

    async def _store(self, subject: str, payload: bytes, mid: str, previous: asyncio.Task[None] | None) -> None:
        """Publish one packet until the stream acknowledges it (after the same device's previous packet)."""
        if previous is not None:
            await asyncio.wait([previous])  # done, failed or cancelled: this packet goes next (this task's own
            # cancellation still propagates)
        assert self.nc is not None
        js = self.nc.jetstream()
        wait = self.cfg.retry_s
        t0 = time.monotonic()
        while True:
            check_cancelled()  # nats-py's wait_for may have swallowed a stop (see ecgmon.core.aio)
            try:
                ack = await js.publish(subject, payload, timeout=self.cfg.attempt_timeout_s,
                                       headers={"Nats-Msg-Id": mid})
            except (nats.errors.Error, nats.js.errors.Error, OSError) as err:
                # no stream leader (503 / no responders), a timeout, a reconnection: the same packet again, the
                # same id (a first attempt that was stored after all makes this one a duplicate)
                self.counts["retries"] += 1
                self.failures[type(err).__name__] += 1
                await asyncio.sleep(wait)
                wait = min(2 * wait, self.cfg.retry_max_s)
                continue
            self.counts["duplicates" if ack.duplicate else "stored"] += 1
            self.store_max_s = max(self.store_max_s, time.monotonic() - t0)
            return

    # -- MQTT

    def _route(self, topic: str, payload: bytes) -> tuple[str, str, str] | None:
        """(subject, key, msg id) of a device packet; None for a topic that is no device's or an over-size one."""
        parts = topic.split("/")
        if len(parts) != 3 or parts[0] != "ecg" or not parts[1] or parts[2] not in KINDS:
            return None
        if len(payload) > self.cfg.nats.max_payload:
            return None
        device, kind = parts[1], parts[2]
        c = self.cfg.nats
        subject = f"{c.prefix}.{partition_of(device, c.partitions)}.{device_token(device)}.{kind}"
        return subject, f"{device}/{kind}", msg_id(device, kind, payload)

    async def _acknowledge(self, client: aiomqtt.Client) -> None:
        """PUBACK each packet once it is stored, in the order the packets came (MQTT 3.1.1, 4.6)."""
        paho = client._client  # aiomqtt 2 has no manual-ack API: paho's (public) Client.ack, under aiomqtt
        while True:
            check_cancelled()
            while self._order and self._order[0].task.done():
                e = self._order.popleft()
                if e.task.cancelled():
                    continue
                paho.ack(e.mid, 1)
            self._acked.set()
            if not self._order:
                await asyncio.sleep(0.01)
                continue
            await asyncio.wait([self._order[0].task])

    def _take(self, message: aiomqtt.Message) -> None:
        self.counts["received"] += 1
        payload = bytes(message.payload) if isinstance(message.payload, bytes | bytearray) else \
            str(message.payload).encode()
        route = self._route(str(message.topic), payload)
        if route is not None and message.retain:
            # a retained message is an old one the broker sends again at every reconnection of the bridge: stored again
            # (past JetStream's duplicate window), a retained discharge was carried out again and ended the next
            # patient's bed, a retained sample packet brought a discharged bed back (reviewers, session 41): dropped
            self.counts["retained"] += 1
            route = None
        if route is None:
            self.counts["rejected"] += 1
            task: asyncio.Task[None] = asyncio.ensure_future(asyncio.sleep(0))
        else:
            subject, key, mid = route
            task = asyncio.ensure_future(self._store(subject, payload, mid, self._last.get(key)))
            self._last[key] = task
            task.add_done_callback(functools.partial(self._done, key))
        self._order.append(_Entry(message.mid, task))

    def _done(self, key: str, task: asyncio.Task[None]) -> None:
        if self._last.get(key) is task:  # the device's latest packet is stored: nothing for the next to wait on
            del self._last[key]

    async def _session(self, stop: asyncio.Event) -> None:
        """One MQTT connection: subscribe, take packets until ``stop``, then let the pending ones finish."""
        client = self.cfg.mqtt.client(max_inflight=self.cfg.max_inflight)
        client._client.manual_ack_set(True)  # see _acknowledge
        async with client:
            self.counts["mqtt_connects"] += 1
            self.state = "running"
            await client.subscribe([(t, 1) for t in self.cfg.topics()])
            acker = asyncio.ensure_future(self._acknowledge(client))
            try:
                messages = aiter(client.messages)
                stopping = asyncio.ensure_future(stop.wait())
                try:
                    while True:
                        nxt = asyncio.ensure_future(anext(messages))
                        done, _ = await asyncio.wait({nxt, stopping}, return_when=asyncio.FIRST_COMPLETED)
                        if nxt not in done:
                            nxt.cancel()
                            break
                        self._take(nxt.result())
                finally:
                    stopping.cancel()
                # a stop: the packets already received are stored and acknowledged (within drain_s)
                self.state = "draining"
                deadline = time.monotonic() + self.cfg.drain_s
                while self._order and time.monotonic() < deadline:
                    self._acked.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._acked.wait(), 0.1)
            finally:
                acker.cancel()
                self._abandon()

    def _abandon(self) -> None:
        """The connection is gone: what was not acknowledged on it is the broker's to redeliver (the stores still
        running are cancelled; a redelivered copy of one that did reach the stream is answered 'duplicate')."""
        for e in self._order:
            e.task.cancel()
        self._order.clear()
        self._last.clear()

    async def run(self, stop: asyncio.Event) -> dict[str, Any]:
        # a stop (SIGTERM, --duration) ends the wait for NATS too: nats-py's connect retries for ever
        connect, stopped = asyncio.ensure_future(self._connect_nats()), asyncio.ensure_future(stop.wait())
        await asyncio.wait({connect, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not connect.done():
            connect.cancel()
            await asyncio.wait({connect}, timeout=3.0)  # the client's own clean-up, bounded
            self.state = "stopped before NATS was reached"
            return self.summary()
        self.nc = connect.result()
        try:
            while not stop.is_set():
                try:
                    await self._session(stop)
                except aiomqtt.MqttError as err:
                    self.counts["mqtt_disconnects"] += 1
                    self.state = f"reconnecting to {self.cfg.mqtt.url} ({err})"
                    self.log(f"bridge: MQTT connection lost ({err}); reconnecting")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.cfg.reconnect_s)
        finally:
            self.state = "stopped"
            with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
                async with asyncio.timeout(3):  # not drain(): it swallows the timeout's cancellation
                    await self.nc.close()
        return self.summary()


async def run_bridge(cfg: BridgeSettings, *, duration: float | None = None, stats_every_s: float = 0.0,
                     out: Callable[[str], None] = print) -> dict[str, Any]:
    """Run a bridge until SIGINT/SIGTERM (or ``duration`` seconds), writing a JSON ``bridge-stats`` line every
    ``stats_every_s`` (0: none) and a ``bridge-summary`` line at the end; returns the summary."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    bridge = MqttBridge(cfg, log=lambda m: out(json.dumps({"type": "bridge-log", "time": time.time(), "msg": m})))

    async def ticker() -> None:
        t_end = None if duration is None else time.monotonic() + duration
        while not stop.is_set():
            step = stats_every_s or 0.5
            if t_end is not None:
                step = min(step, max(0.0, t_end - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), step)
            if t_end is not None and time.monotonic() >= t_end:
                stop.set()
            if stats_every_s and not stop.is_set():
                out(json.dumps({"type": "bridge-stats", "time": time.time(), **bridge.summary()}))

    tick = asyncio.ensure_future(ticker())
    try:
        summary = await bridge.run(stop)
    finally:
        tick.cancel()
    out(json.dumps({"type": "bridge-summary", "time": time.time(), **summary}))
    return summary


def bridge_settings(*, mqtt: BrokerConfig, nats_cfg: NatsSettings) -> BridgeSettings:
    """The bridge's settings from the command line's broker and NATS settings (a persistent session, always)."""
    return BridgeSettings(mqtt=replace(mqtt, persistent=True), nats=nats_cfg)


__all__ = ["BridgeSettings", "MqttBridge", "bridge_settings", "msg_id", "run_bridge"]

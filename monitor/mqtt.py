"""MQTT: broker settings, the connection, the alarm publisher and the live ``MqttSource`` (aiomqtt).

``MqttSource`` = :class:`MqttConnection` (connect, back off, status with a last will, a bounded
incoming queue) + :class:`~ecgmon.monitor.ingress.Ingress` (messages -> chunks, no I/O) +
:class:`AlarmPublisher` (a sink whose bounded outbox publishes alarm transitions, QoS 1).

Credentials come only from the environment (``ECGMON_MQTT_USERNAME``,
``ECGMON_MQTT_PASSWORD``) or from a file (``--password-file``); they are never printed,
logged or journalled (``BrokerConfig``'s repr hides the password).  ``mqtts://``
verifies the broker's certificate against the system CAs or ``--ca``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Self

import aiomqtt

from ecgmon.core.aio import check_cancelled
from ecgmon.core.broker import BrokerConfig
from ecgmon.core.messages import Alarm, Chunk
from ecgmon.monitor.ingress import FairShare, Ingress, Retained
from ecgmon.monitor.sinks import AlarmOutbox, Sink
from ecgmon.monitor.sources import InputListener, SourceHealth, Task


class BrokerAuthError(RuntimeError):
    """The broker refused the connection (bad credentials or not authorised); retrying will not help."""


def _is_auth_error(err: aiomqtt.MqttError) -> bool:
    rc = getattr(err, "rc", None)
    code = getattr(rc, "value", rc)
    return code in (4, 5, 134, 135) or "not authori" in str(err).lower() or "bad user" in str(err).lower()


MAX_BATCH = 1024  # messages handed on at once


class BufferedSocket:
    """The MQTT client's socket, read ``CHUNK`` bytes at a time: paho asks for each packet's first byte, its
    length and its body separately (three or more ``recv`` calls per message) and aiomqtt reads one packet
    per readiness of the socket; through this socket it reads every packet already received, in one event-loop
    step, with one ``recv`` for many.

    aiomqtt's reader calls paho's ``loop_read`` while ``pending()`` is above zero (meant for TLS sockets, which
    hold decrypted bytes).  The work per step is bounded: once ``REFILLS`` reads from the kernel have been made
    since ``pending()`` last said 0, an empty buffer reads as "no data yet", and what the kernel still holds
    makes the socket ready again for the next step.  Everything else goes to the wrapped socket."""

    CHUNK = 65536
    REFILLS = 4

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0
        self._refills = 0

    def recv(self, n: int) -> bytes:
        if self._pos >= len(self._buf):
            inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
            if self._refills >= self.REFILLS and not inner:
                self._refills = 0  # (the next call reads again, whoever makes it: never a stall)
                raise BlockingIOError  # the rest in the next event-loop step
            data = self._sock.recv(self.CHUNK)  # BlockingIOError (ssl: SSLWantReadError) when there is none
            self._refills += 1
            if len(data) <= n:
                return data  # b"": the broker closed the connection
            self._buf, self._pos = data, 0
        out = self._buf[self._pos:self._pos + n]
        self._pos += len(out)
        return out

    def pending(self) -> int:
        """Bytes received and not yet read (here or, for TLS, in the wrapped socket)."""
        n = len(self._buf) - self._pos + (self._sock.pending() if hasattr(self._sock, "pending") else 0)
        if n == 0:
            self._refills = 0
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def buffer_reads(client: aiomqtt.Client) -> bool:
    """Give ``client`` (not yet connected) a :class:`BufferedSocket` on each connection.  False, and the client
    as it was, where this aiomqtt/paho lacks the hooks used (``Client._client``: the paho client; its
    ``on_socket_open`` callback and ``_sock``, the socket it reads)."""
    paho_client = getattr(client, "_client", None)
    inner = getattr(paho_client, "on_socket_open", None)
    if paho_client is None or inner is None or not hasattr(paho_client, "_sock"):
        return False

    def on_socket_open(c: Any, userdata: Any, sock: Any) -> None:
        buffered = BufferedSocket(sock)
        c._sock = buffered
        inner(c, userdata, buffered)

    paho_client.on_socket_open = on_socket_open
    return True


class MqttConnection:
    """One broker connection at a time, re-established with backoff; yields every incoming message.

    Publishes the monitor's retained status (``online``; the last will and a clean exit say
    ``offline``) and subscribes to ``topics``.  Incoming messages wait in a bounded queue: one that
    arrives when it is full is shed and reported through ``on_shed(topic)`` (it was already
    acknowledged to the broker), instead of memory growing without bound.
    """

    def __init__(self, cfg: BrokerConfig, topics: list[str], *, on_shed: Callable[[str], None]) -> None:
        self.cfg, self.topics, self.on_shed = cfg, topics, on_shed
        self.state = "connecting"
        self.connected = asyncio.Event()
        self.client: aiomqtt.Client | None = None
        self.connects = 0
        self._outage_told = False  # the broker's loss was said on stderr (once per outage)
        self.events: deque[tuple[float, str]] = deque(maxlen=100)  # (time.monotonic(), what) history
        self.incoming: asyncio.Queue[aiomqtt.Message] | None = None
        conn = self

        class SheddingQueue(asyncio.Queue[aiomqtt.Message]):
            def __init__(self, maxsize: int = 0) -> None:
                super().__init__(maxsize)
                conn.incoming = self

            def put_nowait(self, item: aiomqtt.Message) -> None:
                if self.full():
                    conn.on_shed(item.topic.value)
                    return
                super().put_nowait(item)

        self._queue_type = SheddingQueue

    def backlog(self) -> tuple[int, int]:
        """(messages received and waiting, the most the queue holds before shedding)."""
        q = self.incoming
        return (q.qsize(), q.maxsize) if q is not None else (0, self.cfg.max_queued)

    def _status(self, state: str) -> bytes:
        return json.dumps({"state": state, "client_id": self.cfg.client_id, "shard": self.cfg.shard,
                           "time": time.time()}).encode()

    def _event(self, what: str) -> None:
        self.state = what
        self.events.append((time.monotonic(), what))

    async def batches(self, max_batch: int = MAX_BATCH) -> AsyncIterator[list[aiomqtt.Message]]:
        """Every incoming message, in order of arrival, in lists: all that have arrived (up to ``max_batch``)
        each time the caller asks, waiting only when none has.  Reconnects with backoff."""
        backoff = 0.25
        will = aiomqtt.Will(self.cfg.status_topic, self._status("offline"), qos=1, retain=True)
        while True:
            check_cancelled()
            try:
                client = self.cfg.client(will=will, queue_type=self._queue_type)
                buffer_reads(client)
                async with client:
                    self.client = client
                    self.connects += 1
                    self._event("connected" if self.connects == 1 else f"reconnected (#{self.connects - 1})")
                    if self._outage_told:
                        print(f"ecgmon: MQTT broker {self.cfg.url}: {self.state}", file=sys.stderr, flush=True)
                        self._outage_told = False
                    await client.publish(self.cfg.status_topic, self._status("online"), qos=1, retain=True)
                    for topic in self.topics:
                        await client.subscribe(topic, qos=self.cfg.qos)
                    self.connected.set()
                    backoff = 0.25
                    queue = self.incoming
                    assert queue is not None
                    waiting = client.messages  # waits for the next message, and raises when the connection drops
                    while True:
                        check_cancelled()  # aiomqtt's wait_for may have swallowed a stop (see ecgmon.core.aio)
                        batch = [queue.get_nowait() if not queue.empty() else await anext(waiting)]
                        while len(batch) < max_batch and not queue.empty():
                            batch.append(queue.get_nowait())
                        yield batch
            except aiomqtt.MqttError as err:
                self.connected.clear()
                self.client = None
                if _is_auth_error(err):
                    raise BrokerAuthError(f"broker {self.cfg.url} refused the connection: {err} "
                                          "(check ECGMON_MQTT_USERNAME / the password file)") from err
                self._event(f"reconnecting in {backoff:.2g} s ({err})")
                if not self._outage_told:  # once per outage: a headless monitor's operator sees no console header
                    what = "unreachable" if not self.connects else "lost"
                    print(f"ecgmon: MQTT broker {self.cfg.url} {what}: {err}; retrying every 2 s at most (no device "
                          "data until it answers)", file=sys.stderr, flush=True)
                    self._outage_told = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def messages(self) -> AsyncIterator[aiomqtt.Message]:
        """Every incoming message, one at a time (see :meth:`batches`)."""
        async for batch in self.batches():
            for msg in batch:
                yield msg

    async def publish(self, topic: str, payload: bytes, *, timeout_s: float = 5.0) -> bool:
        """Publish QoS 1 on the current connection; False (and the connection marked down) when it fails."""
        client = self.client
        if client is None:
            self.connected.clear()
            return False
        try:
            async with asyncio.timeout(timeout_s):
                await client.publish(topic, payload, qos=1)
        except (aiomqtt.MqttError, TimeoutError):
            self.connected.clear()
            return False
        return True

    async def close(self) -> None:
        """Say ``offline`` (retained) before leaving; the last will says it if this cannot."""
        if self.client is not None:
            try:
                async with asyncio.timeout(2):
                    await self.client.publish(self.cfg.status_topic, self._status("offline"), qos=1, retain=True)
            except (aiomqtt.MqttError, TimeoutError):
                pass


class AlarmPublisher(AlarmOutbox):
    """A sink that publishes every alarm transition on ``ecg/<device>/alarms`` (QoS 1), in order, from its
    bounded outbox (:class:`~ecgmon.monitor.sinks.AlarmOutbox`); a failed publish is retried after
    reconnecting, so none is lost while the outbox has room."""

    def __init__(self, conn: MqttConnection, *, topic: str, max_outbox: int) -> None:
        super().__init__(max_outbox=max_outbox)
        self.conn, self.topic = conn, topic

    async def _send(self, alarm: Alarm) -> bool:
        await self.conn.connected.wait()
        return await self.conn.publish(self.topic.format(device=alarm.patient), json.dumps(alarm.to_json()).encode())


class MqttSource:
    """Chunks from bedside devices over MQTT: a live source, which cannot pause.

    Brings its alarm publisher (a sink and a task) with it; the driver starts both.
    """

    replay = False
    can_pause = False

    def __init__(self, cfg: BrokerConfig) -> None:
        self.cfg = cfg
        host, port, tls = cfg.host_port
        shard = f" shard {cfg.shard[0]}/{cfg.shard[1]}" if cfg.shard else ""
        # simulated devices replay recorded beats: labelled as such everywhere, as a replay is
        self.replay = cfg.simulated
        kind = "SIMULATED DEVICES (replayed ECG5000 beats) over" if cfg.simulated else "LIVE"
        self.label = f"{kind} MQTT {'mqtts' if tls else 'mqtt'}://{host}:{port} {cfg.topic}{shard}"
        self.ingress = Ingress(topic=cfg.topic, labels_topic=cfg.labels_topic, reorder=cfg.reorder,
                               max_payload=cfg.max_payload, owns=cfg.owns if cfg.shard else None,
                               control_topic=cfg.control_topic,
                               share=FairShare(speed=cfg.max_device_speed) if cfg.max_device_speed > 0 else None,
                               max_devices=cfg.max_devices)
        topics = [t for t in (cfg.topic, cfg.labels_topic, cfg.control_topic) if t]
        self.conn = MqttConnection(cfg, topics, on_shed=self._shed)
        self.publisher = AlarmPublisher(self.conn, topic=cfg.alarms_topic, max_outbox=cfg.max_outbox)
        self.shed: Counter[str] = Counter()  # incoming messages dropped at a full queue, per device
        self._listener: InputListener | None = None

    def attach(self, listener: InputListener) -> None:
        self._listener = listener
        self.ingress.listener = listener

    def _shed(self, topic: str) -> None:
        dev = self.ingress.device_of(topic)
        self.shed[dev] += 1
        if self._listener:
            self._listener.shed(dev)

    def health(self) -> SourceHealth:
        waiting, cap = self.conn.backlog()
        return SourceHealth(self.conn.state, input_lag_s=self.ingress.input_lag(), waiting=waiting, capacity=cap)

    def summary(self) -> dict[str, object]:
        return {**self.ingress.summary(), "shed": sum(self.shed.values()), "connects": self.conn.connects}

    def tasks(self) -> list[Task]:
        return [("publish-alarms", self.publisher.run())]

    def sinks(self) -> list[Sink]:
        return [self.publisher]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.conn.close()

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        handle_many = self.ingress.handle_many
        async for batch in self.conn.batches():
            # a retained payload marked so (a retained command is refused: ingress.Retained)
            for chunk in handle_many([(msg.topic.value, Retained(msg.payload) if msg.retain and isinstance(
                    msg.payload, bytes | bytearray) else msg.payload) for msg in batch]):
                yield chunk

"""MQTT: broker settings, the live ``MqttSource`` (aiomqtt), and the alarm/status publisher.

Credentials come only from the environment (``ECGMON_MQTT_USERNAME``,
``ECGMON_MQTT_PASSWORD``) or from a file (``--password-file``); they are never printed,
logged or journalled (``BrokerConfig``'s repr hides the password).  ``mqtts://``
verifies the broker's certificate against the system CAs or ``--ca``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import ssl
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import aiomqtt

from ecgmon.monitor.messages import Alarm, Chunk, TrueBeat
from ecgmon.monitor.payload import MAX_PAYLOAD, PayloadError, decode, device_from_topic
from ecgmon.monitor.streams import DeviceStream

MAX_TOPIC = 256  # bytes; longer topics are rejected before any parsing


class BrokerAuthError(RuntimeError):
    """The broker refused the connection (bad credentials or not authorised); retrying will not help."""


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Where and how to connect.  ``password`` never appears in ``repr``."""

    url: str = "mqtt://127.0.0.1:1883"
    topic: str = "ecg/+/samples"
    labels_topic: str | None = "ecg/+/labels"
    alarms_topic: str = "ecg/{device}/alarms"
    client_id: str = field(default_factory=lambda: f"ecgmon-{socket.gethostname()}")
    qos: int = 1
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    persistent: bool = True
    reorder: int = 8
    max_payload: int = MAX_PAYLOAD
    keepalive: int = 10
    max_queued: int = 20000  # incoming messages held before the monitor sheds (bounded memory)
    shard: tuple[int, int] | None = None  # (i, n): this worker handles the devices whose hash % n == i

    def owns(self, device: str) -> bool:
        """Stable device-to-worker assignment (sha256, not Python's per-process ``hash``)."""
        if self.shard is None:
            return True
        i, n = self.shard
        return int.from_bytes(hashlib.sha256(device.encode()).digest()[:8], "big") % n == i

    @property
    def host_port(self) -> tuple[str, int, bool]:
        u = urlsplit(self.url)
        if u.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"--broker must be mqtt://host:port or mqtts://host:port, got {self.url!r}")
        tls = u.scheme == "mqtts"
        return u.hostname or "127.0.0.1", u.port or (8883 if tls else 1883), tls

    @property
    def status_topic(self) -> str:
        return f"ecgmon/{self.client_id}/status"

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.host_port[2]:
            return None
        ctx = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)  # verifies by default
        if self.cert:
            ctx.load_cert_chain(str(self.cert), str(self.key) if self.key else None)
        return ctx

    def client(self, *, will: aiomqtt.Will | None = None, identifier: str | None = None,
               queue_type: type[asyncio.Queue] | None = None, max_inflight: int | None = None) -> aiomqtt.Client:
        host, port, _ = self.host_port
        return aiomqtt.Client(host, port, identifier=identifier or self.client_id, username=self.username,
                              password=self.password, will=will, clean_session=not self.persistent,
                              tls_context=self.tls_context(), keepalive=self.keepalive, timeout=10,
                              queue_type=queue_type,
                              max_queued_incoming_messages=self.max_queued if queue_type else None,
                              max_inflight_messages=max_inflight,
                              # no Nagle: a 100-byte packet or alarm must not wait ~40 ms for the previous ACK
                              socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),))


def credentials(*, password_file: Path | None = None, username: str | None = None) -> tuple[str | None, str | None]:
    """(username, password) from the arguments, the environment or a file - never from the command line."""
    user = username or os.environ.get("ECGMON_MQTT_USERNAME")
    pw = os.environ.get("ECGMON_MQTT_PASSWORD")
    if password_file is not None:
        try:
            pw = Path(password_file).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ValueError(f"cannot read --password-file {password_file}: {err.strerror}") from err
    return user, pw


def _is_auth_error(err: aiomqtt.MqttError) -> bool:
    rc = getattr(err, "rc", None)
    code = getattr(rc, "value", rc)
    return code in (4, 5, 134, 135) or "not authori" in str(err).lower() or "bad user" in str(err).lower()


class MqttSource:
    """Chunks from bedside devices over MQTT, with reconnection and per-device stream repair.

    Also publishes the monitor's retained status (with a last will) and, through
    :meth:`alarm_sink` and :meth:`publish_alarms`, every alarm transition on
    ``ecg/<device>/alarms`` (QoS 1), retrying across reconnections so none is lost.
    """

    replay = False
    live = True

    def __init__(self, cfg: BrokerConfig, *, on_reject: Callable[[str, str], None] | None = None,
                 on_shed: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        host, port, tls = cfg.host_port
        shard = f" shard {cfg.shard[0]}/{cfg.shard[1]}" if cfg.shard else ""
        self.label = f"LIVE MQTT {'mqtts' if tls else 'mqtt'}://{host}:{port} {cfg.topic}{shard}"
        self.state = "connecting"
        self.connected = asyncio.Event()
        self.client: aiomqtt.Client | None = None
        self.connects = 0
        self.events: deque[tuple[float, str]] = deque(maxlen=100)  # (time.monotonic(), what) connection history
        self.streams: dict[str, DeviceStream] = {}
        self.rejected: Counter[tuple[str, str]] = Counter()
        self.on_reject = on_reject
        self.pending_labels: dict[str, list[tuple[float, int, int]]] = {}  # (time of beat start s, label, ref)
        self.outbox: deque[Alarm] = deque()
        self.outbox_ready = asyncio.Event()
        self.published = 0
        self.finished = False
        self.handled = 0  # messages taken from the incoming queue (every one is used, rejected or a duplicate)
        self.other_shards = 0  # messages for devices another worker handles (--shard)
        self.shed: Counter[str] = Counter()  # incoming messages dropped at a full queue, per device
        self.on_shed = on_shed
        source = self

        class SheddingQueue(asyncio.Queue):  # type: ignore[type-arg]
            """aiomqtt's incoming queue, bounded: a message arriving when it is full is shed and counted
            (it was already acknowledged to the broker), instead of memory growing without bound."""

            def __init__(self, *args: object, **kw: object) -> None:
                super().__init__(*args, **kw)  # type: ignore[arg-type]
                source._incoming = self

            def put_nowait(self, item: aiomqtt.Message) -> None:
                if self.full():
                    source._shed(item.topic.value)
                    return
                super().put_nowait(item)

        self._queue_type = SheddingQueue
        self._incoming: asyncio.Queue | None = None  # type: ignore[type-arg]
        # input lag, robust to device clock offsets: a device's packet delay (arrival - its last sample's
        # time on the device's clock) above the smallest delay seen from that device
        self._delay_floor: dict[str, float] = {}
        self._lag_max = 0.0

    def input_lag(self) -> float:
        """The largest input lag (seconds) seen since the last call."""
        lag, self._lag_max = self._lag_max, 0.0
        return lag

    def backlog(self) -> tuple[int, int]:
        """(messages received and waiting for the monitor, the most it holds before shedding)."""
        q = self._incoming
        return (q.qsize(), q.maxsize) if q is not None else (0, self.cfg.max_queued)

    def _shed(self, topic: str) -> None:
        dev = (device_from_topic(topic, self.cfg.topic)
               or (self.cfg.labels_topic and device_from_topic(topic, self.cfg.labels_topic)) or "(unknown)")
        self.shed[dev] += 1
        if self.on_shed:
            self.on_shed(dev)

    # ------------------------------------------------------------------ connection

    def _status(self, state: str) -> bytes:
        return json.dumps({"state": state, "client_id": self.cfg.client_id, "shard": self.cfg.shard,
                           "time": time.time()}).encode()

    def _event(self, what: str) -> None:
        self.state = what
        self.events.append((time.monotonic(), what))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.client is not None:
            try:
                async with asyncio.timeout(2):
                    await self.client.publish(self.cfg.status_topic, self._status("offline"), qos=1, retain=True)
            except (aiomqtt.MqttError, TimeoutError):
                pass  # the last will says offline for us

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        backoff = 0.25
        will = aiomqtt.Will(self.cfg.status_topic, self._status("offline"), qos=1, retain=True)
        while True:
            try:
                async with self.cfg.client(will=will, queue_type=self._queue_type) as client:
                    self.client = client
                    self.connects += 1
                    self._event("connected" if self.connects == 1 else f"reconnected (#{self.connects - 1})")
                    await client.publish(self.cfg.status_topic, self._status("online"), qos=1, retain=True)
                    await client.subscribe(self.cfg.topic, qos=self.cfg.qos)
                    if self.cfg.labels_topic:
                        await client.subscribe(self.cfg.labels_topic, qos=self.cfg.qos)
                    self.connected.set()
                    backoff = 0.25
                    async for msg in client.messages:
                        for chunk in self.handle(msg.topic.value, msg.payload):
                            yield chunk
            except aiomqtt.MqttError as err:
                self.connected.clear()
                self.client = None
                if _is_auth_error(err):
                    raise BrokerAuthError(f"broker {self.cfg.url} refused the connection: {err} "
                                          "(check ECGMON_MQTT_USERNAME / the password file)") from err
                self._event(f"reconnecting in {backoff:.2g} s ({err})")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def summary(self) -> dict[str, int]:
        """What arrived and what the stream repair made of it, over all devices."""
        c: Counter[str] = Counter()
        for st in self.streams.values():
            c.update(st.counts)
        return {"messages": self.handled, "devices": len(self.streams), "chunks": c["chunks"],
                "lost_chunks": c["lost_chunks"], "gaps": c["gap"], "duplicates": c["duplicate"],
                "out_of_order": c["out_of_order"], "rejected": sum(self.rejected.values()),
                "shed": sum(self.shed.values()), "other_shards": self.other_shards, "connects": self.connects}

    # ------------------------------------------------------------------ messages

    def _reject(self, device: str, reason: str) -> None:
        self.rejected[(device, reason)] += 1
        if self.on_reject:
            self.on_reject(device, reason)

    def handle(self, topic: str, payload: object) -> list[Chunk]:
        """One MQTT message -> releasable chunks (possibly none).  Never raises on bad input."""
        self.handled += 1
        if len(topic.encode()) > MAX_TOPIC:
            self._reject("(unknown)", "topic-too-long")
            return []
        if self.cfg.labels_topic and (dev := device_from_topic(topic, self.cfg.labels_topic)) is not None:
            if self.cfg.owns(dev):
                self._labels(dev, payload)
            return []
        dev = device_from_topic(topic, self.cfg.topic)
        if dev is None:
            self._reject("(unknown)", "unknown-topic")
            return []
        if not self.cfg.owns(dev):
            self.other_shards += 1  # another worker's device
            return []
        try:
            p = decode(payload if isinstance(payload, bytes | bytearray) else b"", max_size=self.cfg.max_payload)
        except PayloadError as err:
            self._reject(dev, err.reason)
            return []
        if p.device is not None and p.device != dev:
            self._reject(dev, "device-mismatch")
            return []
        delay = time.time() - p.t0 - len(p.samples) / p.fs
        floor = self._delay_floor.get(dev)
        if floor is None or delay < floor:
            self._delay_floor[dev] = floor = delay
        self._lag_max = max(self._lag_max, delay - floor)
        stream = self.streams.get(dev)
        if stream is None:
            stream = self.streams[dev] = DeviceStream(dev, reorder=self.cfg.reorder)
        chunks = stream.push(p)
        labels = self.pending_labels.pop(dev, None)
        if labels and chunks:
            # label times -> this monitor's sample indices for the device (it may have joined late)
            c = chunks[0]
            truth = tuple(TrueBeat((t - stream.t0_first) * stream.fs, lab, ref) for t, lab, ref in labels)  # type: ignore[operator]
            chunks[0] = Chunk(c.patient, c.seq, c.fs, c.t0, c.samples, start=c.start, truth=truth, reset=c.reset)
        elif labels:
            self.pending_labels[dev] = labels
        return chunks

    def _labels(self, dev: str, payload: object) -> None:
        try:
            obj = json.loads(bytes(payload))  # type: ignore[arg-type]
            beats = [(float(t), int(lab), int(ref)) for t, lab, ref in obj["beats"]]
        except (TypeError, ValueError, KeyError):
            self._reject(dev, "bad-labels")
            return
        self.pending_labels.setdefault(dev, []).extend(beats)

    # ------------------------------------------------------------------ alarms out

    def alarm_sink(self, kind: str, item: object) -> None:
        """Monitor sink: queue every alarm transition for publishing (journalled already)."""
        if kind == "alarm":
            self.outbox.append(item)  # type: ignore[arg-type]
            self.outbox_ready.set()

    async def publish_alarms(self) -> None:
        """Publish queued alarm transitions in order, QoS 1; a failed publish is retried after reconnecting."""
        while True:
            while not self.outbox:
                self.outbox_ready.clear()
                await self.outbox_ready.wait()
            await self.connected.wait()
            a = self.outbox[0]
            client = self.client
            if client is None:
                continue
            try:
                async with asyncio.timeout(5):
                    await client.publish(self.cfg.alarms_topic.format(device=a.patient),
                                         json.dumps(a.to_json()).encode(), qos=1)
            except (aiomqtt.MqttError, TimeoutError):
                self.connected.clear()
                await asyncio.sleep(0.2)
                continue
            self.outbox.popleft()
            self.published += 1

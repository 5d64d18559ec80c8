"""MQTT broker settings shared by the monitor and the simulated devices: where and how to connect, and the
credentials (only from the environment or a file, never the command line).  The topics and payloads they
carry are the device contract in :mod:`ecgmon.core.payload`."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ecgmon.core.payload import MAX_PAYLOAD

if TYPE_CHECKING:
    import aiomqtt


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Where and how to connect.  ``password`` never appears in ``repr``."""

    url: str = "mqtt://127.0.0.1:1883"
    topic: str = "ecg/+/samples"
    labels_topic: str | None = "ecg/+/labels"
    control_topic: str | None = "ecg/+/control"  # {"cmd": "relearn"}; the broker ACL says who may write it
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
    # while the monitor is behind, devices that send faster than this many times real time (beyond a burst) are
    # refused, so that the real-time beds keep their monitoring (monitor.ingress.FairShare); 0: never
    max_device_speed: float = 2.0
    max_devices: int = 2048  # devices (beds) one monitor process takes; new ones past it refused; 0: no limit
    max_outbox: int = 10000  # alarm transitions held for publishing while the broker is away
    shard: tuple[int, int] | None = None  # (i, n): this worker handles the devices whose hash % n == i
    simulated: bool = False  # the devices are ecgmon's simulator replaying recorded beats (`ecgmon demo`): labelled so

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
               queue_type: type[asyncio.Queue[aiomqtt.Message]] | None = None,
               max_inflight: int | None = None) -> aiomqtt.Client:
        host, port, _ = self.host_port
        # aiomqtt (and paho) load here, when a connection is made, not with the settings: `ecgmon train` and
        # `--help` read the settings' defaults but never connect
        import aiomqtt

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

"""Settings of the pipeline and of a NATS worker: frozen dataclasses that import nothing heavy.

:mod:`ecgmon.monitor.config` builds the command line's defaults from them, so ``ecgmon --help`` and a wrong option
answer at once instead of after importing torch, scipy and the NATS client (about 3 s on a 2-core machine).
:mod:`ecgmon.monitor.pipeline` and :mod:`ecgmon.monitor.jetstream` re-export them.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from ecgmon.core.payload import MAX_PAYLOAD
from ecgmon.monitor.learning import FORGET_S
from ecgmon.monitor.watchdog import WatchdogConfig

__all__ = ["NatsSettings", "PipelineConfig", "shard_partitions"]


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Batching in beats and milliseconds; the beat queue in beats."""

    max_batch: int = 1024
    max_wait_ms: float = 20.0
    queue_size: int = 4096
    max_round: int = 2048  # chunks segmented together at most (what has arrived since the last round)
    max_beats: int | None = None  # stop after exactly this many verdicts
    hold_at_end: bool = False  # keep running after the source ends (the console keeps its last state)
    shed_when_full: bool | None = None  # None: shed only when the source cannot pause
    # packets lost in transit leaving at most this long a gap (s) are bridged: the bed's QRS detector goes on across
    # a line drawn over the gap, the beats near it get no verdict (Monitor._bridge); a longer gap restarts it; 0: off
    bridge_s: float = 1.0
    watchdog: WatchdogConfig = WatchdogConfig()


def _default_worker() -> str:
    # '.' is a NATS token separator (and MQTT client ids with '.' are refused): none in a worker's name
    return f"{socket.gethostname()}-{os.getpid()}".replace(".", "-")


@dataclass(frozen=True, slots=True)
class NatsSettings:
    """One worker's NATS settings.  Times in seconds.

    ``prefer``: the partitions this worker pulls at once (None: all); with ``standby`` it pulls every other one
    too after ``standby_after_s``, to take it over when its owner dies.  ``ack_wait_s`` must stay below
    ``priority_timeout_s`` (per-device order across a takeover) and ``pull_expires_s`` well below it (an owner
    keeps its pin only while it pulls).
    """

    url: str = "nats://127.0.0.1:4222"  # several: comma-separated (a cluster's servers)
    stream: str = "ECG"
    prefix: str = "ecgp"  # partitioned subjects: <prefix>.<partition>.<device>.<kind>
    partitions: int = 8
    group: str = "ecgmon"
    worker: str = field(default_factory=_default_worker)
    prefer: tuple[int, ...] | None = None
    standby: bool = True
    standby_after_s: float = 3.0
    ack_wait_s: float = 1.0
    priority_timeout_s: float = 2.0
    pull_expires_s: float = 0.5
    batch: int = 256
    max_ack_pending: int = 8192
    replay_s: float = 8.0
    bucket: str = "ecgmon"
    replicas: int = 1  # of the stream and the bucket: 3 on a 3-node cluster
    max_age_s: float = 24 * 3600.0  # how long the stream keeps device messages
    duplicate_window_s: float = 120.0  # a packet stored again within this (same Nats-Msg-Id) is a duplicate
    status_every_s: float = 1.0
    dead_after_s: float = 2.5  # a worker not heard from this long is gone: its partitions are a standby's to take
    unmonitored_after_s: float = 5.0
    connect_timeout_s: float = 60.0  # at start: no server reached in this long is an error (a restart's business)
    forget_s: float = FORGET_S
    reorder: int = 8
    max_payload: int = MAX_PAYLOAD
    labels: bool = True
    control: bool = True
    station: bool = False  # also show and journal the other workers' beds' alarms (a central station's console)

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError(f"--partitions must be >= 1, got {self.partitions}")
        if not self.ack_wait_s < self.priority_timeout_s:
            raise ValueError("ack_wait must be below the priority timeout (per-device order across a takeover)")
        if self.prefer is not None and any(not 0 <= p < self.partitions for p in self.prefer):
            raise ValueError(f"preferred partitions {self.prefer} are not all in 0..{self.partitions - 1}")
        if "." in self.worker or not self.worker:
            raise ValueError(f"worker name {self.worker!r}: non-empty, without '.'")

    @property
    def servers(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]

    def preferred(self) -> tuple[int, ...]:
        return tuple(range(self.partitions)) if self.prefer is None else self.prefer


def shard_partitions(i: int, n: int, partitions: int) -> tuple[int, ...]:
    """``--shard I/N`` for NATS workers: the partitions ``p`` with ``p % N == I`` are worker I's preferred ones."""
    return tuple(p for p in range(partitions) if p % n == i)

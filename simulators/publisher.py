"""Many bedside devices publishing over MQTT in real time (or faster): ``ecgmon simulate``.

Two kinds of device:

``ecg5000``
    the replay renderer (the product test split dealt to the devices, exactly as
    ``--source replay`` does for the same seed, fs and device count), with the true
    beats published on ``ecg/<device>/labels`` just before the chunk they start in, as
    ``{"device", "beats": [[start_time_s, label, pool_row], ...]}`` (times on the same
    clock as the chunks' ``t0``, so a monitor that joins late still aligns them).
``synthetic``
    neurokit2 ECG with noise, baseline wander and optional lead-off episodes.

Network artifacts, each with a probability per chunk: dropped, duplicated, and
reordered (swapped with the next chunk) messages, plus send jitter.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ecgmon.monitor.messages import Chunk
from ecgmon.monitor.mqtt import BrokerConfig
from ecgmon.monitor.payload import encode
from ecgmon.simulators.replay import PatientPlan, plan_patients
from ecgmon.simulators.replay import chunks as replay_chunks
from ecgmon.simulators.synthetic import ArtifactConfig, synthetic_ecg


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Times in seconds, probabilities per chunk."""

    devices: int = 8
    kind: str = "ecg5000"
    fs: float = 250.0
    chunk_s: float = 0.25
    fmt: str = "json"  # json | int16 | float32
    speed: float | None = 1.0  # None = as fast as the broker takes it
    seed: int = 0
    duration: float | None = None  # synthetic devices: seconds of signal (default 60)
    topic_prefix: str = "ecg"
    qos: int = 1
    drop: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    jitter_ms: float = 0.0
    artifacts: ArtifactConfig = field(default_factory=ArtifactConfig)


@dataclass(slots=True)
class SimStats:
    published: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    labels: int = 0
    lost: int = 0  # chunks that fell due while the broker was unreachable
    reconnects: int = 0
    seconds: float = 0.0


def device_streams(cfg: SimConfig) -> list[Iterator[Chunk]]:
    """One chunk iterator per device (chunk ``start`` is the sample index, ``truth`` its true beats)."""
    if cfg.kind == "ecg5000":
        from ecgmon.models.data import make_split

        split = make_split("product")
        plans = plan_patients(split.pool.x, split.pool.y, split.test, patients=cfg.devices, fs=cfg.fs,
                              seed=cfg.seed)
        return [replay_chunks(p, chunk_s=cfg.chunk_s) for p in plans]
    if cfg.kind == "synthetic":
        rng = np.random.default_rng(cfg.seed)
        out = []
        for d in range(cfg.devices):
            sig = synthetic_ecg(cfg.duration or 60.0, cfg.fs, heart_rate=float(rng.uniform(55, 110)),
                                seed=cfg.seed * 1000 + d, artifacts=cfg.artifacts)
            empty = np.zeros(0)
            plan = PatientPlan(f"dev{d + 1:04d}", empty.astype(np.int64), empty.astype(np.int8), empty, empty, cfg.fs,
                               sig)
            out.append(replay_chunks(plan, chunk_s=cfg.chunk_s))
        return out
    raise ValueError(f"--kind must be ecg5000 or synthetic, got {cfg.kind!r}")


async def publish(cfg: SimConfig, broker: BrokerConfig, *, stop: asyncio.Event | None = None) -> SimStats:
    """Publish every device's stream, interleaved in time, paced at ``cfg.speed`` x real time.

    When the broker goes away the publisher reconnects (like a device would) and goes on
    with the current chunks; chunks due while it was away are lost (counted in ``lost``).
    """
    import aiomqtt

    rng = np.random.default_rng(cfg.seed + 7)
    streams = await asyncio.to_thread(device_streams, cfg)
    stats = SimStats()
    t_start = time.monotonic()
    wall0 = time.time()
    held: dict[int, tuple[str, bytes]] = {}  # device -> message delayed by a reorder
    live = list(range(len(streams)))
    rnd = 0
    while live and not (stop and stop.is_set()):
        try:
            async with broker.client(identifier=f"{broker.client_id}-sim") as client:
                while live and not (stop and stop.is_set()):
                    await _round(client, cfg, streams, live, held, rng, stats, wall0)
                    rnd += 1
                    if cfg.speed is None:
                        await asyncio.sleep(0)
                    else:
                        await asyncio.sleep(max(0.0, t_start + rnd * cfg.chunk_s / cfg.speed - time.monotonic()))
        except aiomqtt.MqttError:
            stats.reconnects += 1
            await asyncio.sleep(0.25)
            # chunks that fell due while disconnected are lost, as they would be for a real device
            if cfg.speed is not None:
                due = int((time.monotonic() - t_start) * cfg.speed / cfg.chunk_s)
                for _ in range(max(0, due - rnd)):
                    for i in list(live):
                        if next(streams[i], None) is None:
                            live.remove(i)
                        else:
                            stats.lost += 1
                rnd = max(rnd, due)
    stats.seconds = time.monotonic() - t_start
    return stats


async def _round(client, cfg: SimConfig, streams, live: list[int], held: dict[int, tuple[str, bytes]],
                 rng: np.random.Generator, stats: SimStats, wall0: float) -> None:
    """One chunk from every live device."""
    for i in list(live):
        c = next(streams[i], None)
        if c is None:
            live.remove(i)
            if i in held:
                await client.publish(*held.pop(i), qos=cfg.qos)
                stats.published += 1
            continue
        topic = f"{cfg.topic_prefix}/{c.patient}/samples"
        if c.truth:
            await client.publish(f"{cfg.topic_prefix}/{c.patient}/labels", json.dumps(
                {"device": c.patient,
                 "beats": [[wall0 + t.start / c.fs, t.label, t.ref] for t in c.truth]}).encode(),
                qos=cfg.qos)
            stats.labels += 1
        if rng.random() < cfg.drop:
            stats.dropped += 1
            continue
        msg = (topic, encode(cfg.fmt, c.patient, c.seq, c.fs, wall0 + c.start / c.fs, c.samples))
        if i in held:  # send the newer one first, then the held older one: a reorder
            await client.publish(*msg, qos=cfg.qos)
            await client.publish(*held.pop(i), qos=cfg.qos)
            stats.published += 2
            stats.reordered += 1
            continue
        if rng.random() < cfg.reorder:
            held[i] = msg
            continue
        if cfg.jitter_ms:
            await asyncio.sleep(float(rng.uniform(0, cfg.jitter_ms)) / 1000 / max(1, len(live)))
        await client.publish(*msg, qos=cfg.qos)
        stats.published += 1
        if rng.random() < cfg.dup:
            await client.publish(*msg, qos=cfg.qos)
            stats.duplicated += 1

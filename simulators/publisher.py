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

``leads=2``: each device sends lead II and a second lead (``V1``,
:func:`~ecgmon.simulators.synthetic.derived_second_lead`: lead II's clean signal inverted and scaled, with
artifacts of its own and none of lead II's lead-off episodes) in one payload per packet: JSON ``leads`` or binary
version 2 (``core.payload``; docs/mqtt.md, "Two leads").

Network artifacts, each with a probability per chunk: dropped, duplicated, and
reordered (swapped with the next chunk) messages, plus send jitter.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import aiomqtt
import numpy as np

from ecgmon.core.broker import BrokerConfig
from ecgmon.core.limits import chunk_size
from ecgmon.core.messages import Chunk
from ecgmon.core.payload import encode, encode_leads
from ecgmon.models.data import make_split
from ecgmon.simulators.replay import PatientPlan, plan_patients
from ecgmon.simulators.replay import chunks as replay_chunks
from ecgmon.simulators.synthetic import SECOND_LEAD, ArtifactConfig, derived_second_lead, synthetic_leads


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Times in seconds, probabilities per chunk."""

    devices: int = 8
    kind: str = "ecg5000"
    fs: float = 250.0
    chunk_s: float = 0.25
    fmt: str = "json"  # json | int16 | float32
    leads: int = 1  # 2: lead II and a derived second lead in every packet (module docstring)
    speed: float | None = 1.0  # None = as fast as the broker takes it
    seed: int = 0
    duration: float | None = None  # seconds of signal per device (synthetic default 60; ecg5000: the split once)
    topic_prefix: str = "ecg"
    qos: int = 1
    labels: bool = True  # ecg5000: publish the true beats (a real device has none to send)
    abnormal_rate: float | None = None  # ecg5000: a ward's share of abnormal beats; None: the whole split
    device_prefix: str | None = None  # ids PREFIX01, PREFIX02...; default bed (ecg5000) / dev (synthetic)
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
    lag_p99_ms: float = 0.0  # how late rounds of packets went out vs when they were due (speed 1: the wall clock)
    lag_max_ms: float = 0.0


Stream = Iterator[tuple[Chunk, "np.ndarray | None"]]


def device_streams(cfg: SimConfig) -> list[Stream]:
    """One iterator per device of ``(chunk, second lead's samples or None)`` (chunk ``start`` is the sample index,
    ``truth`` its true beats; the second lead's samples are the same sample times, with ``cfg.leads == 2``)."""
    if cfg.leads not in (1, 2):
        raise ValueError(f"leads must be 1 or 2, got {cfg.leads!r}")
    plans: list[PatientPlan] = []
    seconds: list[np.ndarray | None] = []
    if cfg.kind == "ecg5000":
        split = make_split("product")
        rows = split.test
        if cfg.duration:
            # deal the split as often as it takes for every device, even at 110 bpm, to last the duration
            per_device = cfg.duration * 110 / 60 + 2
            rows = np.tile(rows, math.ceil(cfg.devices * per_device / len(rows)))
        plans = plan_patients(split.pool.x, split.pool.y, rows, patients=cfg.devices, fs=cfg.fs, seed=cfg.seed,
                              abnormal_rate=cfg.abnormal_rate)
        for d, p in enumerate(plans):
            p.patient = (cfg.device_prefix or "bed") + p.patient.removeprefix("bed")
            # ECG5000's beats are one lead, z-normalised: the second lead in the same units, light artifacts
            seconds.append(derived_second_lead(p.signal, cfg.fs, seed=cfg.seed * 1000 + d,
                                               artifacts=ArtifactConfig(noise_mv=0.02, wander_mv=0.05))
                           if cfg.leads == 2 else None)
    elif cfg.kind == "synthetic":
        rng = np.random.default_rng(cfg.seed)
        for d in range(cfg.devices):
            leads = synthetic_leads(cfg.duration or 60.0, cfg.fs, heart_rate=float(rng.uniform(55, 110)),
                                    seed=cfg.seed * 1000 + d, artifacts=cfg.artifacts)
            empty = np.zeros(0)
            plans.append(PatientPlan(f"{cfg.device_prefix or 'dev'}{d + 1:04d}", empty.astype(np.int64),
                                     empty.astype(np.int8), empty, empty, cfg.fs, leads["II"]))
            seconds.append(leads[SECOND_LEAD] if cfg.leads == 2 else None)
    else:
        raise ValueError(f"--kind must be ecg5000 or synthetic, got {cfg.kind!r}")
    return [_with_second(replay_chunks(p, chunk_s=cfg.chunk_s), v) for p, v in zip(plans, seconds, strict=True)]


def _with_second(chunks: Iterator[Chunk], second: np.ndarray | None) -> Stream:
    for c in chunks:
        yield c, None if second is None else second[c.start:c.start + len(c.samples)]


async def publish(cfg: SimConfig, broker: BrokerConfig, *, stop: asyncio.Event | None = None,
                  report: Callable[[str], None] | None = None) -> SimStats:
    """Publish every device's stream, interleaved in time, paced at ``cfg.speed`` x real time.

    Like a device, each packet is sent when its last sample is due (t0 + n / fs on the
    wall clock, at speed 1), so a monitor on the same clock can measure end-to-end latency.

    When the broker goes away the publisher reconnects (like a device would) and goes on
    with the current chunks; chunks due while it was away are lost (counted in ``lost``).  ``report`` is told
    of the first failed connection and of every 20th after it (a broker that cannot be reached is not silent); a
    run paced in real time (``cfg.speed``) ends at ``cfg.duration`` whether or not the broker was reached.
    """
    rng = np.random.default_rng(cfg.seed + 7)
    streams = await asyncio.to_thread(device_streams, cfg)
    stats = SimStats()
    t_start = time.monotonic()
    wall0 = time.time()
    held: dict[int, tuple[str, bytes]] = {}  # device -> message delayed by a reorder
    period = chunk_size(cfg.chunk_s, cfg.fs) / cfg.fs  # seconds of signal per packet
    # devices are not synchronised: their packet boundaries are spread over the period, in ~10 ms slots
    # (all sending at the same instant would be a burst no ward produces)
    n = len(streams)
    ticks = max(1, min(n, round(period / 0.01)))
    slot = period / ticks
    groups = [[i for i in range(n) if i * ticks // n == g] for g in range(ticks)]
    step = 0  # slot counter: round step // ticks, slot step % ticks; due at (step + ticks) * slot
    lags: list[float] = []
    while any(groups) and not (stop and stop.is_set()):
        try:
            # one connection carries every simulated device: let each have a QoS 1 message in flight
            # (paho's default of 20 would serialise a ward's packets behind 20 acknowledgements)
            async with (broker.client(identifier=f"{broker.client_id}-sim", max_inflight=max(20, 2 * n)) as client,
                        asyncio.TaskGroup() as sending):
                # per connection: at most 2 messages per device unacknowledged (bounded memory); a fresh
                # window, since sends cancelled with a dead connection may never release theirs
                out = _Sender(client, sending, asyncio.Semaphore(2 * n), cfg.qos, stats)
                while any(groups) and not (stop and stop.is_set()):
                    rnd, g = divmod(step, ticks)
                    if cfg.duration and rnd * period >= cfg.duration:
                        groups = [[] for _ in groups]
                        break
                    if cfg.speed is None:
                        await asyncio.sleep(0)
                    else:  # these packets are complete when their last samples are due
                        due = t_start + (step + ticks) * slot / cfg.speed
                        await asyncio.sleep(max(0.0, due - time.monotonic()))
                        lags.append(time.monotonic() - due)
                    # a slot's sends run on while the next slot falls due: waiting for their acknowledgements
                    # here would pace every device by the broker's round trip
                    await _round(cfg, streams, groups[g], held, rng, stats, wall0 + g * slot, out)
                    step += 1
        except* aiomqtt.MqttError as group:
            stats.reconnects += 1
            if report is not None and stats.reconnects % 20 == 1:
                report(f"simulate: broker {broker.url}: {group.exceptions[0]} (attempt {stats.reconnects}; "
                       f"retrying, as a device would)")
            await asyncio.sleep(0.25)
            # chunks that fell due while disconnected are lost, as they would be for a real device
            if cfg.speed is not None:
                due_step = int((time.monotonic() - t_start) * cfg.speed / slot) - ticks + 1
                for s in range(step, due_step):
                    for i in list(groups[s % ticks]):
                        if next(streams[i], None) is None:
                            groups[s % ticks].remove(i)
                        else:
                            stats.lost += 1
                step = max(step, due_step)
                if cfg.duration and (step // ticks) * period >= cfg.duration:
                    groups = [[] for _ in groups]  # the run's time is over, the broker reached or not
    stats.seconds = time.monotonic() - t_start
    if lags:
        stats.lag_p99_ms = round(float(np.percentile(lags, 99)) * 1000, 1)
        stats.lag_max_ms = round(max(lags) * 1000, 1)
    return stats


@dataclass(slots=True)
class _Sender:
    """Sends each device's messages in order, devices concurrently, at most ``window`` unacknowledged."""

    client: aiomqtt.Client
    tasks: asyncio.TaskGroup
    window: asyncio.Semaphore
    qos: int
    stats: SimStats

    async def send(self, delay: float, msgs: list[tuple[str, bytes, str]]) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            for topic, payload, kind in msgs:
                await self.client.publish(topic, payload, qos=self.qos)
                setattr(self.stats, kind, getattr(self.stats, kind) + 1)
        finally:
            self.window.release()

    async def submit(self, delay: float, msgs: list[tuple[str, bytes, str]]) -> None:
        await self.window.acquire()  # blocks the publisher when the broker falls far behind
        self.tasks.create_task(self.send(delay, msgs))


async def _round(cfg: SimConfig, streams, live: list[int], held: dict[int, tuple[str, bytes]],
                 rng: np.random.Generator, stats: SimStats, wall0: float, out: _Sender) -> None:
    """The next chunk of every device in ``live`` (a slot's group; exhausted devices leave it).

    The artifacts are drawn in device order (reproducible for a seed); then every device sends
    its messages concurrently, in its own order, as separate bedside devices would.  A QoS 1
    publish waits for the broker's acknowledgement, so one device's messages stay ordered.
    """
    plans: list[tuple[float, list[tuple[str, bytes, str]]]] = []  # (delay s, [(topic, payload, kind)])
    for i in list(live):
        got = next(streams[i], None)
        msgs: list[tuple[str, bytes, str]] = []
        if got is None:
            live.remove(i)
            if i in held:
                msgs.append((*held.pop(i), "published"))
                plans.append((0.0, msgs))
            continue
        c, second = got
        topic = f"{cfg.topic_prefix}/{c.patient}/samples"
        if c.truth and cfg.labels:
            msgs.append((f"{cfg.topic_prefix}/{c.patient}/labels", json.dumps(
                {"device": c.patient,
                 "beats": [[wall0 + t.start / c.fs, t.label, t.ref] for t in c.truth]}).encode(), "labels"))
        if rng.random() < cfg.drop:
            stats.dropped += 1
        else:
            seq = c.start // chunk_size(cfg.chunk_s, c.fs)  # chunks are consecutive and of one size
            # every packet says it is a simulator's (core.payload): the monitor labels the bed SIMULATED
            t0 = wall0 + c.start / c.fs
            msg = (topic, encode(cfg.fmt, c.patient, seq, c.fs, t0, c.samples, simulated=True) if second is None
                   else encode_leads(cfg.fmt, c.patient, seq, c.fs, t0, {"II": c.samples, SECOND_LEAD: second},
                                     simulated=True))
            if i in held:  # send the newer one first, then the held older one: a reorder
                msgs += [(*msg, "published"), (*held.pop(i), "published")]
                stats.reordered += 1
            elif rng.random() < cfg.reorder:
                held[i] = msg
            else:
                msgs.append((*msg, "published"))
                if rng.random() < cfg.dup:
                    msgs.append((*msg, "duplicated"))
        delay = float(rng.uniform(0, cfg.jitter_ms)) / 1000 if cfg.jitter_ms else 0.0
        if msgs:
            plans.append((delay, msgs))

    for d, m in plans:  # in the caller's TaskGroup: when the broker goes away, the others are cancelled
        await out.submit(d, m)

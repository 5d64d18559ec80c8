"""Ingestion throughput: messages/s through ``Ingress`` (no I/O) and through ``MqttSource`` from a real mosquitto.

Messages are what ``ecgmon simulate --format int16`` sends: 250 Hz devices, 0.25 s packets (62 int16 samples),
``seq`` in order per device, the devices interleaved as the broker delivers them.

- ``ingress``: ``--devices`` x ``--packets`` pre-encoded messages through ``Ingress.handle`` one at a time, and
  through ``Ingress.handle_many`` (a list of messages at once) where the checkout has it; plus the parts alone:
  ``decode`` and ``DeviceStream.push``.
- ``mqtt``: a persistent session (QoS 1) subscribes and leaves; ``--messages`` messages are published while it
  is away and the broker queues them; it comes back and the clock runs from its connecting to its last chunk:
  the MQTT client (paho's packet parsing and PUBACKs, aiomqtt), the monitor's bounded queue and ``Ingress``.
  ``aiomqtt`` and ``paho`` run the same with the bare clients (count the messages, nothing else), to show
  what the client library itself costs per message.

``--base PATH`` runs the same measurements with ``PATH/.venv/bin/python`` (another checkout: the previous
main in a worktree) in the same run, alternating with this checkout ``--rounds`` times.  ``--profile``
prints a cProfile of this checkout's ``mqtt`` run.

    .venv/bin/python benchmarks/ingest.py [--base /work/wt-ingest-base] [--rounds 2] [--messages 40000]

Needs mosquitto on the PATH or in /usr/sbin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho

from ecgmon.core.broker import BrokerConfig
from ecgmon.core.payload import decode, encode_binary
from ecgmon.monitor.ingress import Ingress
from ecgmon.monitor.mosquitto import free_port, start_mosquitto
from ecgmon.monitor.mqtt import MqttSource
from ecgmon.monitor.streams import DeviceStream

FS, N = 250.0, 62
BATCH = 64  # messages per Ingress.handle_many call in the ingress figures
BROKER_CONF = ("set_tcp_nodelay true\nmax_inflight_messages 100\nmax_queued_messages 0\n"
               "persistence false\nallow_anonymous true\n")


def messages(devices: int, packets: int, *, prefix: str = "ecg") -> list[tuple[str, bytes]]:
    """``devices`` x ``packets`` int16 packets of a 1 Hz sine with spikes, interleaved by device."""
    rng = np.random.default_rng(0)
    t_start = time.time() - packets * N / FS - 60
    sig = 0.1 * rng.standard_normal(N * packets).astype(np.float32) + np.sin(np.arange(N * packets) / FS * 6.28)
    out = []
    for k in range(packets):
        body = sig[k * N:(k + 1) * N]
        for d in range(devices):
            out.append((f"{prefix}/dev{d:04d}/samples",
                        encode_binary(k, FS, t_start + d * 0.001 + k * N / FS, body)))
    return out


def bench_ingress(devices: int, packets: int) -> dict[str, float]:
    """CPU microseconds per message (this process's CPU time: less disturbed by other processes than the wall)."""
    msgs = messages(devices, packets)
    us = 1e6 / len(msgs)
    res: dict[str, float] = {}
    t = time.process_time()
    pkts = [decode(p) for _, p in msgs]
    res["decode"] = us * (time.process_time() - t)
    streams = [DeviceStream(f"dev{d:04d}") for d in range(devices)]
    t = time.process_time()
    for i, p in enumerate(pkts):
        streams[i % devices].push(p)
    res["stream_push"] = us * (time.process_time() - t)
    ing = Ingress(topic="ecg/+/samples", labels_topic="ecg/+/labels", control_topic="ecg/+/control")
    t = time.process_time()
    chunks = 0
    for topic, payload in msgs:
        chunks += len(ing.handle(topic, payload))
    res["handle"] = us * (time.process_time() - t)
    assert chunks == len(msgs), (chunks, len(msgs))
    if hasattr(Ingress, "handle_many"):
        ing = Ingress(topic="ecg/+/samples", labels_topic="ecg/+/labels", control_topic="ecg/+/control")
        t = time.process_time()
        chunks = 0
        for i in range(0, len(msgs), BATCH):
            chunks += len(ing.handle_many(msgs[i:i + BATCH]))
        res["handle_many"] = us * (time.process_time() - t)
        assert chunks == len(msgs), (chunks, len(msgs))
    return res


def publish_all(port: int, msgs: list[tuple[str, bytes]]) -> None:
    """Publish QoS 1 with a bare paho client (its own network thread); returns when the broker has them all."""
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = [c.publish(t, p, qos=1) for t, p in msgs]
    for info in infos:
        info.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()


def subscribe_once(port: int, client_id: str, topic: str) -> None:
    """Create the persistent session (QoS 1) and leave, so the broker queues what is published next."""
    done = threading.Event()
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    c.on_subscribe = lambda *a: done.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe(topic, qos=1)
    done.wait(10)
    c.disconnect()
    c.loop_stop()


async def drain_source(port: int, client_id: str, n: int) -> tuple[tuple[float, float], dict[str, object]]:
    cfg = BrokerConfig(url=f"mqtt://127.0.0.1:{port}", client_id=client_id, persistent=True, max_queued=20000)
    src = MqttSource(cfg)
    got = 0
    t0, c0 = time.perf_counter(), time.process_time()  # from the connection: the broker sends at once
    async with src:
        async for _chunk in src:
            got += 1
            if got == n:
                break
    return (time.perf_counter() - t0, time.process_time() - c0), src.summary()


async def drain_aiomqtt(port: int, client_id: str, n: int) -> tuple[float, float]:
    cfg = BrokerConfig(url=f"mqtt://127.0.0.1:{port}", client_id=client_id, persistent=True)
    got = 0
    t0, c0 = time.perf_counter(), time.process_time()
    async with cfg.client() as client:
        async for _m in client.messages:
            got += 1
            if got == n:
                break
    return time.perf_counter() - t0, time.process_time() - c0


def drain_paho(port: int, client_id: str, n: int) -> tuple[float, float]:
    got = [0]
    t = [time.perf_counter(), 0.0, time.process_time(), 0.0]

    def on_message(_c, _u, _m) -> None:
        got[0] += 1
        if got[0] == n:
            t[1], t[3] = time.perf_counter(), time.process_time()

    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    c.on_message = on_message
    c.connect("127.0.0.1", port)
    while got[0] < n:
        c.loop(timeout=1.0)
    c.disconnect()
    return t[1] - t[0], t[3] - t[2]


def bench_mqtt(n: int, devices: int, work: Path, *, profile: bool) -> dict[str, object]:
    msgs = messages(devices, max(1, n // devices))
    n = len(msgs)
    port = free_port()
    res: dict[str, object] = {}
    with open(work / f"mosquitto-{port}.log", "wb") as log:
        broker = start_mosquitto(work / f"mosquitto-{port}.conf", port, log, BROKER_CONF)
        try:
            for what in ("paho", "aiomqtt", "mqtt"):
                cid = f"bench-{what}-{os.getpid()}"
                subscribe_once(port, cid, "ecg/+/samples")
                publish_all(port, msgs)
                if what == "paho":
                    s = drain_paho(port, cid, n)
                elif what == "aiomqtt":
                    s = asyncio.run(drain_aiomqtt(port, cid, n))
                else:
                    prof = cProfile.Profile() if profile else None
                    if prof:
                        prof.enable()
                    s, summary = asyncio.run(drain_source(port, cid, n))
                    if prof:
                        prof.disable()
                        out = io.StringIO()
                        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(30)
                        res["profile"] = out.getvalue()
                    res["mqtt_summary"] = summary
                res[what] = {"per_s": n / s[0], "cpu_us": 1e6 * s[1] / n}
        finally:
            broker.terminate()
            broker.wait(10)
    return res


def measure(a: argparse.Namespace) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="ecgmon-ingest-"))
    res: dict[str, object] = {"ingress": bench_ingress(a.devices, a.packets)}
    res.update(bench_mqtt(a.messages, a.devices, work, profile=a.profile))
    return res


def row(label: str, r: dict) -> str:
    i = r["ingress"]
    many = f"{i['handle_many']:6.1f}" if "handle_many" in i else f"{'-':>6}"
    mq = "  ".join(f"{r[k]['cpu_us']:6.1f} {r[k]['per_s']:7.0f}" for k in ("paho", "aiomqtt", "mqtt"))
    return f"{label:<16} {i['decode']:6.1f} {i['stream_push']:6.1f} {i['handle']:6.1f} {many}   {mq}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--packets", type=int, default=20, help="per device, for the ingress figures")
    ap.add_argument("--messages", type=int, default=20000, help="through the broker, for the mqtt figures (at most "
                    "BrokerConfig.max_queued: a message the queue sheds would never arrive)")
    ap.add_argument("--base", type=Path, help="another checkout with its own .venv, measured in the same run")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the measurements as one JSON line (for --base)")
    a = ap.parse_args()
    if a.json:
        print(json.dumps(measure(a)))
        return
    here = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent).stdout.strip()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.1f}; {a.devices} devices, {a.messages} messages through the broker")
    print("CPU us per message (this process's CPU time); through the broker also messages/s (wall)")
    print(f"{'':<16} {'--- Ingress (no I/O) ----------':<31}   -- from mosquitto: CPU us, msg/s ---------------")
    print(f"{'checkout':<16} {'decode':>6} {'stream':>6} {'handle':>6} {'many':>6}   "
          f"{'paho (bare)':>14}  {'aiomqtt (bare)':>14}  {'MqttSource':>14}")
    base_label = ""
    if a.base:
        base_label = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                    cwd=a.base).stdout.strip()
    for _ in range(a.rounds):
        if a.base:
            args = ["--devices", str(a.devices), "--packets", str(a.packets), "--messages", str(a.messages)]
            out = subprocess.run([str(a.base / ".venv/bin/python"), __file__, "--json", *args],
                                 capture_output=True, text=True, check=True, cwd=a.base).stdout
            print(row(f"base {base_label}", json.loads(out.splitlines()[-1])), flush=True)
        r = measure(a)
        print(row(f"this {here}", r), flush=True)
        with contextlib.suppress(KeyError):
            print("  MqttSource summary:", json.dumps(r["mqtt_summary"]))
        if "profile" in r:
            print(r["profile"])
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

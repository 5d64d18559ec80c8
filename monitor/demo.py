"""``ecgmon demo``: a first look at the MQTT path in one command.

Starts mosquitto on a free loopback port (a throw-away configuration in a temporary folder:
anonymous, loopback only, no persistence), ``ecgmon simulate`` publishing ward-like ECG5000 devices
on it, and the monitor reading them; stops all of it when the monitor ends (``q``, Ctrl-C or
``--duration``).  For a deployment, see deploy/mosquitto/ and SECURITY.md instead.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from ecgmon.core.broker import BrokerConfig
from ecgmon.monitor.app import build, run_console, run_headless
from ecgmon.monitor.config import MonitorConfig
from ecgmon.monitor.mosquitto import free_port, start_mosquitto, stop_mosquitto
from ecgmon.monitor.sinks import TruthFactory


class LocalBroker:
    """mosquitto on a free loopback port, anonymous, without persistence, for as long as the ``with`` lasts."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port = workdir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalBroker:
        with (self.workdir / "mosquitto.log").open("ab") as log:
            self.proc = start_mosquitto(self.workdir / "mosquitto.conf", self.port, log,
                                        "allow_anonymous true\npersistence false\nmax_queued_messages 0")
        return self

    def __exit__(self, *exc: object) -> None:
        stop_mosquitto(self.proc)


def run_demo(*, devices: int = 8, speed: str = "1", duration: float | None = None, ui: bool = True,
             journal: Path | None = None, console: Console | None = None, truth: TruthFactory | None = None,
             bell: bool = True) -> int:
    """``ecgmon demo``: mosquitto on a free loopback port, ``devices`` simulated ECG5000 devices (a subprocess)
    and the monitor on that broker; ``truth`` compares its verdicts with the labels the devices publish."""
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="ecgmon-demo-") as tmp, LocalBroker(Path(tmp)) as broker:
        sim_log = (Path(tmp) / "simulate.log").open("w")
        sim = subprocess.Popen(
            [sys.executable, "-m", "ecgmon.cli.main", "simulate", "--devices", str(devices), "--kind", "ecg5000",
             "--speed", speed, "--abnormal-rate", "0.03", "--broker", broker.url, "--client-id", "ecgmon-demo-sim",
             "--duration", "86400" if duration is None else str(duration + 5)],
            stdout=sim_log, stderr=subprocess.STDOUT)
        try:
            # the simulated devices publish ECG5000 beats: the ECG5000 model judges them (real devices get mitdb)
            cfg = MonitorConfig(source="mqtt", checkpoint="ecg5000", ui=ui, duration=duration,
                                journal=journal or Path(tmp) / "alarms.jsonl", learn_state=None,
                                broker=BrokerConfig(url=broker.url, client_id="ecgmon-demo-monitor", persistent=False,
                                                    simulated=True))
            b = build(cfg, truth=truth)
            try:
                if ui:
                    summary = asyncio.run(run_console(b, console, duration=duration, bell=bell))
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

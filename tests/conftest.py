"""Shared fixtures: the product split, a small trained checkpoint, seeded signals."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from ecgmon.models.autoencoder import AEConfig
from ecgmon.models.checkpoint import Checkpoint, load, save
from ecgmon.models.data import make_split
from ecgmon.models.train import TrainConfig, fit

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def split():
    return make_split("product", seed=0)


@pytest.fixture(scope="session")
def shipped() -> Checkpoint:
    """The pretrained checkpoint that ships in the package (the real model)."""
    return load()


@pytest.fixture(scope="session")
def small_ckpt_path(tmp_path_factory, split):
    """A small model trained for a few epochs: a real checkpoint file for CLI and round-trip tests."""
    ckpt = fit(split, model_cfg=AEConfig(hidden=16, embedding=8),
               cfg=TrainConfig(epochs=2, batch_size=256, patience=5), device="cpu")
    return save(ckpt, tmp_path_factory.mktemp("ckpt") / "small.pt")


@pytest.fixture()
def rng():
    return np.random.default_rng(1234)


# --------------------------------------------------------------------------- MQTT broker



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
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed; .ci/run must install the Debian package 'mosquitto'")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); MQTT tests need a real broker")
    return path


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("broker")).start()
    yield b
    b.stop()


@pytest.fixture()
def prefix() -> str:
    """A topic prefix of this test's own, so tests sharing the broker never see each other's messages."""
    return f"t{uuid.uuid4().hex[:10]}"

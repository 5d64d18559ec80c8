"""Monitor options: one frozen dataclass, built from the command line."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from ecgmon.monitor.alarms import PolicyConfig


def default_journal() -> Path:
    """``$ECGMON_JOURNAL`` or ``$XDG_STATE_HOME/ecgmon/alarms.jsonl`` (``~/.local/state/...``)."""
    if p := os.environ.get("ECGMON_JOURNAL"):
        return Path(p)
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "ecgmon" / "alarms.jsonl"


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Times in seconds unless named ``*_ms``; rates in Hz."""

    source: str = "replay"
    patients: int = 8
    fs: float = 250.0
    speed: float | None = 1.0  # None = as fast as possible
    seed: int = 0
    chunk_s: float = 0.25
    loop: bool = False
    protocol: str = "product"
    checkpoint: Path | None = None
    device: str = "auto"
    max_batch: int = 1024
    max_wait_ms: float = 20.0
    queue_size: int = 4096
    duration: float | None = None
    max_beats: int | None = None
    ui: bool = True
    journal: Path = field(default_factory=default_journal)
    policy: PolicyConfig = PolicyConfig()
    threads: int | None = None
    broker: object | None = None  # BrokerConfig for --source mqtt


def add_monitor_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("source")
    g.add_argument("--source", choices=("replay", "mqtt"), default="replay",
                   help="replay: ECG5000 test-split beats rendered as live patients (default); "
                        "mqtt: live devices publishing to a broker")
    g.add_argument("--patients", type=int, default=8, help="beds to replay (default 8)")
    g.add_argument("--fs", type=float, default=250.0, help="replay sampling rate, 100-1000 Hz (default 250)")
    g.add_argument("--speed", default="1", help="1 = real time, 10 = ten times faster, max = as fast as possible")
    g.add_argument("--seed", type=int, default=0, help="replay seed (rhythm, heart rates, beat order)")
    g.add_argument("--chunk", type=float, default=0.25, dest="chunk_s", help="chunk duration in seconds")
    g.add_argument("--loop", action="store_true", help="replay the split again when it ends")
    add_broker_arguments(p)
    g = p.add_argument_group("model")
    g.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped product checkpoint")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda")
    g.add_argument("--max-batch", type=int, default=1024, help="largest scoring micro-batch (beats)")
    g.add_argument("--max-wait-ms", type=float, default=20.0, help="longest wait to fill a micro-batch")
    g.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: all cores but one, left to the event loop)")
    g = p.add_argument_group("run")
    g.add_argument("--no-ui", action="store_true", help="headless: JSON lines on stdout instead of the console")
    g.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    g.add_argument("--max-beats", type=int, default=None, help="stop after this many scored beats")
    g.add_argument("--journal", type=Path, default=None,
                   help=f"alarm journal (JSONL); default {default_journal()}")
    g = p.add_argument_group("alarm policy")
    g.add_argument("--frequent", default="3/10", help="K/N: MEDIUM when K of the last N beats are abnormal")
    g.add_argument("--run-len", type=int, default=3, help="HIGH after this many consecutive abnormal beats")
    g.add_argument("--clear-after", type=int, default=5, help="normal beats before a LOW/HIGH alarm clears")


def add_broker_arguments(p: argparse.ArgumentParser, *, monitor: bool = True) -> None:
    g = p.add_argument_group("MQTT (credentials: ECGMON_MQTT_USERNAME and ECGMON_MQTT_PASSWORD, or --password-file)")
    g.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port or mqtts://host:port (TLS)")
    g.add_argument("--client-id", default=None, help="MQTT client id (default ecgmon-HOSTNAME)")
    g.add_argument("--qos", type=int, choices=(0, 1, 2), default=1)
    g.add_argument("--ca", type=Path, default=None, help="CA certificate to verify an mqtts:// broker")
    g.add_argument("--cert", type=Path, default=None, help="client certificate (mutual TLS)")
    g.add_argument("--key", type=Path, default=None, help="client private key (mutual TLS)")
    g.add_argument("--username", default=None, help="MQTT user name (default $ECGMON_MQTT_USERNAME)")
    g.add_argument("--password-file", type=Path, default=None, help="file holding the MQTT password")
    if monitor:
        g.add_argument("--topic", default="ecg/+/samples", help="sample topic filter; + is the device id")
        g.add_argument("--labels-topic", default="ecg/+/labels",
                       help="ground-truth labels side topic ('' to ignore)")
        g.add_argument("--no-persistent", action="store_true", help="clean session instead of a persistent one")
        g.add_argument("--reorder", type=int, default=8, help="chunks held per device to repair reordering")
        g.add_argument("--shard", default=None,
                       help="I/N: this worker handles only the devices that hash to shard I of N (scale-out; "
                            "run N workers with I = 0..N-1 on one broker)")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError as err:
        raise ValueError(f"--shard must look like I/N (e.g. 0/2), got {text!r}") from err
    if not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= I < N")
    return i, n


def broker_from_args(a: argparse.Namespace, **kw):
    from ecgmon.monitor.mqtt import BrokerConfig, credentials

    user, pw = credentials(password_file=a.password_file, username=a.username)
    extra = {} if a.client_id is None else {"client_id": a.client_id}
    shard = kw.get("shard")
    if shard and a.client_id is None:  # workers on one host need distinct client ids (persistent sessions)
        import socket

        extra["client_id"] = f"ecgmon-{socket.gethostname()}-shard{shard[0]}of{shard[1]}"
    cfg = BrokerConfig(url=a.broker, qos=a.qos, ca=a.ca, cert=a.cert, key=a.key, username=user, password=pw,
                       **extra, **kw)
    cfg.host_port  # noqa: B018 - validates the URL early, with a message the user can act on
    return cfg


def from_args(a: argparse.Namespace) -> MonitorConfig:
    speed = None if str(a.speed).lower() == "max" else float(a.speed)
    if speed is not None and speed <= 0:
        raise ValueError(f"--speed must be positive or 'max', got {a.speed!r}")
    if not 100 <= a.fs <= 1000:
        raise ValueError(f"--fs {a.fs} Hz is outside 100-1000 Hz")
    try:
        k, n = (int(v) for v in a.frequent.split("/"))
    except ValueError as err:
        raise ValueError(f"--frequent must look like K/N (e.g. 3/10), got {a.frequent!r}") from err
    if not 0 < k <= n:
        raise ValueError(f"--frequent {a.frequent}: need 0 < K <= N")
    policy = PolicyConfig(window=n, frequent_k=k, run_len=a.run_len, clear_normal=a.clear_after)
    return MonitorConfig(
        source=a.source, patients=a.patients, fs=a.fs, speed=speed, seed=a.seed, chunk_s=a.chunk_s,
        loop=a.loop or (not a.no_ui and a.duration is None and a.max_beats is None),
        checkpoint=a.checkpoint, device=a.device, max_batch=a.max_batch, max_wait_ms=a.max_wait_ms,
        duration=a.duration, max_beats=a.max_beats, ui=not a.no_ui, journal=a.journal or default_journal(),
        policy=policy, threads=a.threads,
        broker=broker_from_args(a, topic=a.topic, labels_topic=a.labels_topic or None, persistent=not a.no_persistent,
                                reorder=a.reorder, shard=parse_shard(a.shard)) if a.source == "mqtt" else None,
    )

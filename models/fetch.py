"""Downloading a PhysioNet database, every file checked against PhysioNet's published SHA256SUMS.txt.

Offline it fails at once (a short connection timeout) with a message saying so; a file whose sha256
differs is refused and nothing of it is left behind (each file is written to a temporary name and
renamed once its digest matches).
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

MITDB_URL = "https://physionet.org/files/mitdb/1.0.0/"


class FetchError(RuntimeError):
    """The download cannot be done or cannot be trusted; the message says which file and why."""


def _get(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return bytes(r.read())
    except urllib.error.HTTPError as err:
        raise FetchError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise FetchError(f"cannot reach {url} ({reason}): `ecgmon data fetch` needs the network; offline, copy "
                         "the database's files into the folder by hand") from err


def fetch(base_url: str, dest: Path, *, timeout: float = 10.0, log: Callable[[str], None] = print) -> int:
    """Every file SHA256SUMS.txt lists, into ``dest``; files already there with the right digest are kept."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    sums = _get(base + "SHA256SUMS.txt", timeout).decode("utf-8", errors="replace")
    expected: dict[str, str] = {}
    for line in sums.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 64:
            name = parts[1].lstrip("*")
            if "/" in name or name.startswith("."):
                continue  # only the database's own top-level files
            expected[name] = parts[0].lower()
    if not expected:
        raise FetchError(f"{base}SHA256SUMS.txt lists no files: not a PhysioNet database folder")
    dest.mkdir(parents=True, exist_ok=True)
    for i, (name, digest) in enumerate(sorted(expected.items()), start=1):
        path = dest / name
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
            continue
        data = _get(base + name, timeout)
        got = hashlib.sha256(data).hexdigest()
        if got != digest:
            raise FetchError(f"{base}{name}: sha256 {got[:16]}... does not match PhysioNet's {digest[:16]}...; "
                             "not saved")
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        log(f"[{i}/{len(expected)}] {name}")
    (dest / "SHA256SUMS.txt").write_text(sums)
    return len(expected)

"""``ecgmon --help`` and option errors answer without importing the heavy stack (torch, scipy.signal, nats)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "scipy.signal", "nats", "aiomqtt")


def test_the_monitor_options_import_nothing_heavy() -> None:
    # building the monitor's parser (what `ecgmon --help` and a wrong option do) must not import torch & co.
    code = (
        "import argparse, sys\n"
        "from ecgmon.monitor.config import add_monitor_arguments\n"
        "p = argparse.ArgumentParser(); add_monitor_arguments(p)\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at parser build: {out.stdout.strip()}"


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from ecgmon.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('LOADED:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage" in out.stdout.lower()
    assert out.stdout.strip().splitlines()[-1] == "LOADED:", out.stdout[-300:]

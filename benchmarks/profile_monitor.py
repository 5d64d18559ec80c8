"""``ecgmon`` under cProfile, its clock the main thread's own CPU time (``time.thread_time``: the scorer thread's
work and the time other processes take on a shared machine do not count), the stats written on exit.

    .venv/bin/python benchmarks/profile_monitor.py OUT.prof -- --source mqtt --broker mqtt://127.0.0.1:PORT \\
        --no-persistent --no-ui --journal /tmp/j.jsonl --learn-state none

Stop it with SIGINT (as ``benchmarks/live.py`` does) and read OUT.prof with ``pstats``.
"""

from __future__ import annotations

import cProfile
import sys
import time

from ecgmon.cli.main import main

if __name__ == "__main__":
    out, argv = sys.argv[1], sys.argv[3:]
    prof = cProfile.Profile(time.thread_time)
    try:
        prof.runcall(main, argv)
    finally:
        prof.dump_stats(out)

"""The scorer beside a busy event loop: what the interpreter's thread switch interval costs it.

The monitor scores on a worker thread (``asyncio.to_thread(scorer.score_batch, ...)``) while its event loop segments
beats in Python on the main thread.  Every torch op the scorer thread calls gives up the GIL and has to take it back
afterwards; while the main thread runs Python, it waits for the interpreter's switch interval
(``sys.setswitchinterval``, 5 ms by default) before the main thread is asked to hand it over.  A call of 64 beats runs
about 25 ops (the two LSTMs take nearly all the compute), so at 5 ms the waits can exceed the compute several times.

For each switch interval, alternating, ``--repeats`` times: the main thread runs a fixed pure-Python workload (the
event loop's stand-in) while a thread scores batches of ``--batch`` beats with ``Scorer.score_batch`` in a loop;
printed: the workload's time alone and beside the scorer, the scorer's beats/s beside it and alone.

    .venv/bin/python benchmarks/scorer_gil.py [--intervals-ms 5,1,0.5,0.2] [--repeats 3] [--work 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

import numpy as np
from flops import limit_lines

from ecgmon.core.limits import default_threads
from ecgmon.models.checkpoint import load
from ecgmon.models.data import make_split
from ecgmon.models.scorer import Scorer


def python_work(n: int) -> int:
    """A fixed pure-Python workload: the GIL held the whole time, as the event loop holds it."""
    s = 0
    for j in range(n):
        s += j & 7
    return s


def one_pass(scorer: Scorer, x: np.ndarray, work: int) -> tuple[float, float, float, float]:
    """The workload alone (s), beside a thread scoring ``x`` again and again (s), the scorer's beats/s beside it
    (whole batches only) and alone."""
    t0 = time.perf_counter()
    python_work(work)
    alone = time.perf_counter() - t0
    stop, beats, last = threading.Event(), [0], [0.0]

    def score() -> None:
        while not stop.is_set():
            scorer.score_batch(x)
            beats[0] += len(x)
            last[0] = time.perf_counter()

    th = threading.Thread(target=score)
    th.start()
    while beats[0] == 0:  # its first batch done: in its loop
        time.sleep(0.01)
    b0, t0 = beats[0], last[0]
    python_work(work)
    beside = time.perf_counter() - t0
    stop.set()
    th.join()
    rate = (beats[0] - b0) / (last[0] - t0) if last[0] > t0 else 0.0
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 1.0:
        scorer.score_batch(x)
        n += len(x)
    return alone, beside, rate, n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--intervals-ms", default="5,1,0.5,0.2", help="switch intervals to compare (5: Python's default)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256, help="beats per score_batch call (the monitor's: up to 1024)")
    ap.add_argument("--work", type=float, default=30.0, help="the main thread's workload, millions of loop steps")
    ap.add_argument("--calls", default="64", help="model call sizes to compare (Scorer.max_batch; the CPU's: 64)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the monitor's)")
    a = ap.parse_args()
    threads = a.threads or default_threads()
    ckpt = load()
    scorer = Scorer(ckpt.model, device="cpu", threads=threads)
    _, lines = limit_lines(ckpt.model.cfg, threads)
    for line in lines:
        print(line)
    x = make_split("product").part("test").x
    x = np.resize(x, (a.batch, x.shape[1])).astype(np.float32)
    scorer.warm_up()
    scorer.score_batch(x)
    work = int(a.work * 1e6)
    default = sys.getswitchinterval()
    rows: dict[tuple[int, float], list[tuple[float, float, float, float]]] = {}
    intervals = [float(v) for v in a.intervals_ms.split(",")]
    calls = [int(v) for v in a.calls.split(",")]
    print(f"scorer on {scorer.device_name}, batches of {a.batch}; main thread: {a.work:g}M steps of pure Python")
    try:
        for _ in range(a.repeats):
            for call, ms in ((c, m) for c in calls for m in intervals):
                scorer.max_batch = call
                sys.setswitchinterval(ms / 1000)
                rows.setdefault((call, ms), []).append(one_pass(scorer, x, work))
    finally:
        sys.setswitchinterval(default)
    print("| call size | switch interval | main workload alone / beside the scorer (s) | "
          "scorer beats/s beside the busy thread | scorer beats/s alone | beside / alone |")
    print("|---|---|---|---|---|---|")
    for (call, ms), rs in rows.items():
        alone, beside, rate, solo = (statistics.median(r[i] for r in rs) for i in range(4))
        print(f"| {call} | {ms:g} ms | {alone:.2f} / {beside:.2f} | {rate:,.0f} | {solo:,.0f} | {rate / solo:.2f} |")
    print(f"(medians of {a.repeats} alternating passes)")


if __name__ == "__main__":
    main()

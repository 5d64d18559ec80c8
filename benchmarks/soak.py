"""Soak: replay N beds at maximum speed for H hours of simulated monitoring, in process.

Prints, every window, the beats judged, RSS (MiB), verdict latency p50/p99 of the window and
beats/s; then RSS growth after warm-up and whether the counters add up exactly
(segmented = judged + shed + still queued + in the batch being scored + waiting for room in the full queue when it
stopped).

    .venv/bin/python benchmarks/soak.py --patients 64 --hours 1 [--windows 10]

At --speed max latency includes queueing behind back-pressure, so compare windows with each
other (drift), not with the real-time figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from flops import limit_lines

from ecgmon.evaluation.evaluator import Evaluator
from ecgmon.monitor.alarms import PolicyConfig
from ecgmon.monitor.app import build
from ecgmon.monitor.config import MonitorConfig
from ecgmon.monitor.settings import PipelineConfig


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def soak(patients: int, hours: float, windows: int, fs: float, device: str = "cpu", *,
               lethal: bool = True, coalesce: bool = True) -> None:
    journal = Path(tempfile.mkdtemp()) / "soak.jsonl"
    cfg = MonitorConfig(patients=patients, fs=fs, speed=None, loop=True, ui=False, journal=journal, device=device,
                        abnormal_rate=None,  # the whole test split, as the figures in BENCHMARKS.md were measured
                        pipeline=PipelineConfig(hold_at_end=True),
                        # without the lethal watch no beat is typed: judge each untyped at once, not after 512 held
                        policy=PolicyConfig() if lethal else PolicyConfig(wait_beats=0))
    b = build(cfg, out=open(os.devnull, "w"), truth=Evaluator)  # noqa: SIM115 - verdict lines are not measured
    mon, source = b.monitor, b.source
    mon.coalesce = coalesce
    if not lethal:  # what the lethal and rate alarms cost: their per-chunk watch (beat typer, VF detector) skipped
        mon._watch_rhythm = lambda *args, **kwargs: None  # type: ignore[method-assign]
    print(f"{patients} beds at {fs:g} Hz, scorer on {mon.scorer.device_name}"
          f"{'' if lethal else ', lethal and rate alarms OFF (--no-lethal: their cost measured)'}"
          f"{'' if coalesce else ', chunks segmented one by one (--no-coalesce)'}", flush=True)
    limit, lines = limit_lines(mon.scorer.model.cfg, os.cpu_count() or 1)  # the machine's: every core
    for line in lines:
        print(line, flush=True)
    # beats in H hours of N beds: the replay's mean rate is about 82 bpm (55-110 bpm uniform)
    target = int(patients * hours * 3600 * 82.5 / 60)
    step = max(1, target // windows)
    rows = []

    async def sampler() -> None:
        nxt, t_prev, b_prev = step, time.monotonic(), 0
        while True:
            await asyncio.sleep(0.2)
            s = mon.stats
            if s.beats >= nxt:
                lat = np.asarray(s.latencies) * 1000
                now = time.monotonic()
                rows.append((s.beats, rss_mib(), float(np.percentile(lat, 50)), float(np.percentile(lat, 99)),
                             (s.beats - b_prev) / (now - t_prev)))
                print(f"{s.beats:9d} beats  RSS {rows[-1][1]:7.1f} MiB  latency p50 {rows[-1][2]:7.1f} ms "
                      f"p99 {rows[-1][3]:7.1f} ms  {rows[-1][4]:7.0f} beats/s", flush=True)
                t_prev, b_prev = now, s.beats
                s.latencies.clear()
                nxt += step
            if s.beats >= target:
                mon.done.set()
                return

    t0 = time.monotonic()
    await mon.run(source, extra_tasks=[("sampler", sampler())])
    mon.close()
    s = mon.stats
    if not rows:  # the run ended before the first window (a stop, or fewer beats than one window)
        raise SystemExit(f"no window completed ({s.beats} beats of {target}): nothing to report")
    warm = rows[min(1, len(rows) - 1)][1]
    wall = time.monotonic() - t0
    passes = source.summary()["passes"]
    print(f"\n{patients} beds, {hours:g} h simulated ({s.beats} beats, {passes} passes of the test split) "
          f"in {wall:.0f} s: {s.beats / wall:.0f} beats/s end to end")
    print(f"where the time goes (of {wall:.1f} s): event loop - segmentation {s.time_segment:.1f} s "
          f"({100 * s.time_segment / wall:.0f} %), alarms {s.time_alarm:.1f} s; scorer thread busy "
          f"{s.time_score:.1f} s ({100 * s.time_score / wall:.0f} %, mean batch "
          f"{s.batch_beats / max(1, s.batches):.0f}); the two overlap on 2 cores")
    if hasattr(s, "time_rhythm"):
        print(f"of segmentation: segmenters (QRS detection, beat cutting) {s.time_segmenters:.1f} s "
              f"({100 * s.time_segmenters / wall:.0f} % of wall), quality checks {s.time_quality:.1f} s "
              f"({100 * s.time_quality / wall:.0f} %), lethal watches (beat typer, VF detector) {s.time_rhythm:.1f} s "
              f"({100 * s.time_rhythm / wall:.0f} %), the rest (sinks' on_chunk, technical alarms, routing) "
              f"{s.time_segment - s.time_segmenters - s.time_quality - s.time_rhythm:.1f} s")
    print(f"end to end {s.beats / wall:.0f} beats/s = {100 * s.beats / wall / limit:.1f} % of the model's float32 FLOP "
          f"limit on {os.cpu_count()} cores ({limit:,.0f} beats/s)")
    growth = 100 * (rows[-1][1] / warm - 1)
    print(f"RSS after warm-up {warm:.1f} MiB -> end {rows[-1][1]:.1f} MiB: growth {growth:+.2f} %")
    p99 = [r[3] for r in rows[1:]] or [rows[0][3]]  # after the warm-up window, when there is one
    print(f"latency p99 per window{'' if len(rows) > 1 else ' (one window: warm-up included)'}: first "
          f"{p99[0]:.1f} ms, last {p99[-1]:.1f} ms, max {max(p99):.1f} ms")
    queued = mon.queue.qsize()
    ok = s.segmented == s.beats + s.shed + queued + mon.in_flight + s.not_judged + mon.entering
    print(f"counters: segmented {s.segmented} = judged {s.beats} + shed {s.shed} + queued {queued} + in the "
          f"batch being scored at the stop {mon.in_flight} + waiting for room in the full queue {mon.entering}: "
          f"{'exact' if ok else 'MISMATCH'}; alarms {s.alarms}, "
          f"journal lines {sum(1 for _ in journal.open())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=64)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--windows", type=int, default=10)
    ap.add_argument("--fs", type=float, default=250.0)
    ap.add_argument("--device", default="cpu", help="cpu | cuda")
    ap.add_argument("--no-lethal", action="store_true",
                    help="skip the lethal and rate alarms' watch (beat typer, VF detector, asystole and rate timers) "
                         "to measure what they cost against a run without it; not a monitor option")
    ap.add_argument("--no-coalesce", action="store_true",
                    help="a bed's chunks in a round segmented one by one, not joined (Monitor.coalesce): what joining "
                         "saves")
    a = ap.parse_args()
    asyncio.run(soak(a.patients, a.hours, a.windows, a.fs, a.device, lethal=not a.no_lethal,
                     coalesce=not a.no_coalesce))


if __name__ == "__main__":
    main()

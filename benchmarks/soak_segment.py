"""The 512-bed replay's segmentation stage alone: ``Monitor.segment_many`` on the replay's chunks, in the rounds the
soak's ingest loop takes them (``--round`` chunks, cut into sub-rounds of one chunk per bed), without the scorer.

    .venv/bin/python benchmarks/soak_segment.py [--patients 512] [--seconds 20] [--profile OUT.prof]
        [--digest OUT.json] [--split] [--no-coalesce]

Prints the main thread's CPU time (``time.thread_time``: other processes on a shared machine do not count) per
chunk and per beat, and the monitor's own stage timers (wall clock).  ``--digest`` writes what the stage decided
(beats, QRS found, beat types, VF windows, alarm transitions) as hashes per kind, so that two checkouts can be
compared: run this file with each checkout's venv (``/path/to/other/.venv/bin/python benchmarks/soak_segment.py``
imports that checkout's ecgmon) and diff the files.  ``--profile``: cProfile of the rounds, its clock the thread's
CPU time.  ``--split``: the thread's CPU time in the stage's parts (the segmenters, the quality checks, the lethal
watches with the beat typer's and the VF pool's flushes), counted around those calls without a profiler; the names
it wraps exist in older checkouts too, so it compares with the previous main.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import ecgmon.monitor.pipeline as pipeline
from ecgmon.monitor.app import build
from ecgmon.monitor.config import MonitorConfig
from ecgmon.monitor.sinks import NullSink


class Digest(NullSink):
    """Alarm transitions, as a sink sees them."""

    def __init__(self) -> None:
        self.alarms: list[tuple[Any, ...]] = []

    def on_alarm(self, alarm: Any) -> None:
        self.alarms.append((alarm.patient, str(alarm.condition), str(alarm.state), alarm.beat_index))


def _hash(items: list[Any]) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(repr(it).encode())
    return h.hexdigest()[:16]


async def run(a: argparse.Namespace) -> None:
    journal = Path(tempfile.mkdtemp()) / "seg.jsonl"
    cfg = MonitorConfig(patients=a.patients, fs=a.fs, speed=None, loop=True, ui=False, journal=journal,
                        device="cpu", abnormal_rate=None)
    dig = Digest()
    b = build(cfg, out=open(os.devnull, "w"), extra_sinks=[dig])  # noqa: SIM115 - not measured
    if a.checkpoint not in (None, "ecg5000"):  # the replay's chunks, judged as a live device's by a real-ECG model
        b.monitor.close()
        b = build(dataclasses.replace(cfg, source="mqtt", checkpoint=a.checkpoint), source=b.source,
                  out=open(os.devnull, "w"), extra_sinks=[dig])  # noqa: SIM115 - not measured
    mon, source = b.monitor, b.source
    mon.coalesce = not a.no_coalesce
    typed: list[tuple[Any, ...]] = []
    windows: list[tuple[Any, ...]] = []
    plain_type, plain_flush = pipeline.type_staged, mon.vfpool.flush
    if a.digest:
        def type_staged(jobs: Any) -> Any:
            out = plain_type(jobs)
            for job, vbs in zip(jobs, out, strict=True):
                typed.extend((id(job.typer), *dataclasses.astuple(v)) for v in vbs)
            return out

        def flush() -> Any:
            out: list[Any] = plain_flush()
            windows.extend((k[0].patient, w.end, w.p_vf, w.p_artifact, w.vf, w.artifact, w.features) for k, w in out)
            return out

        pipeline.type_staged = type_staged
        mon.vfpool.flush = flush  # type: ignore[method-assign]
    split: dict[str, float] = {}
    if a.split:
        _count(pipeline, "segment_round", "segmenters (segmentation.bank.segment_round)", split)
        _count(pipeline, "push_many", "quality checks (segmentation.quality.push_many)", split)
        _count(pipeline.Monitor, "_watch_rhythm", "lethal watches, flushes included (Monitor._watch_rhythm)", split)
        _count(pipeline, "type_staged", "  beat typer flushes (segmentation.vtype.type_staged)", split)
        _count(mon.vfpool, "flush", "  VF pool flushes (segmentation.vf.VFPool.flush)", split)
    n_chunks = int(a.seconds / 0.25) * a.patients
    rounds: list[list[Any]] = [[]]
    async for c in source:
        if len(rounds[-1]) == a.round:
            rounds.append([])
        rounds[-1].append(c)
        n_chunks -= 1
        if n_chunks <= 0:
            break
    beats: list[tuple[Any, ...]] = []
    found: list[tuple[Any, ...]] = []
    prof = cProfile.Profile(time.thread_time) if a.profile else None
    t0 = time.thread_time()
    w0 = time.perf_counter()
    n = 0
    for rnd in rounds:
        if prof is not None:
            prof.enable()
        out = mon.segment_many(rnd)
        if prof is not None:
            prof.disable()
        for c, bs in zip(rnd, out, strict=True):
            n += len(bs)
            if a.digest:
                beats.extend((bt.patient, bt.index, bt.rr_prev_s, bt.rr_next_s, bt.hr_bpm, bt.noisy,
                              hashlib.sha1(bt.samples.tobytes()).hexdigest()) for bt in bs)
                found.extend((c.patient, *f) for f in mon.beds[c.patient].segmenter.found)
    if prof is not None:
        prof.enable()
    mon.flush_vf(final=True)
    if prof is not None:
        prof.disable()
        prof.dump_stats(a.profile)
    cpu, wall = time.thread_time() - t0, time.perf_counter() - w0
    s = mon.stats
    chunks = sum(map(len, rounds))
    print(f"{a.patients} beds at {a.fs:g} Hz, {chunks} chunks in {len(rounds)} rounds of up to {a.round}, "
          f"{n} beats")
    print(f"segmentation stage: {cpu:.2f} s CPU ({wall:.2f} s wall): {1e6 * cpu / chunks:.1f} us per chunk, "
          f"{1e3 * cpu / max(1, n):.3f} ms per beat; load average {os.getloadavg()[0]:.2f}")
    rest = s.time_segment - s.time_segmenters - s.time_quality - s.time_rhythm
    print(f"stage timers (wall): segmenters {s.time_segmenters:.2f} s, quality {s.time_quality:.2f} s, lethal "
          f"watches {s.time_rhythm:.2f} s, rest {rest:.2f} s (flush at the end not counted)")
    if a.split:
        for name, v in split.items():
            print(f"  {name}: {v:.2f} s CPU ({100 * v / cpu:.0f} %)")
    if a.digest:
        d = {"beats": [len(beats), _hash(beats)], "found": [len(found), _hash(found)],
             # typing and VF decisions as multisets: the order in which beds' work is flushed together is not a
             # decision (beds start their rhythm blocks at phases of their own: pipeline.first_block)
             # (the typer's network gives p_ventricular to the last bits of its batch's BLAS blocking: 12 decimals)
             "typed": [len(typed), _hash(sorted(repr(tuple(round(v, 12) if isinstance(v, float) else v
                                                          for v in t[1:])) for t in typed))],
             "vf_windows": [len(windows), _hash(sorted(windows, key=repr))],
             "vf_true": int(sum(bool(w[4]) for w in windows)), "ventricular": int(sum(bool(t[4]) for t in typed)),
             "alarms": [len(dig.alarms), _hash(dig.alarms)]}
        Path(a.digest).write_text(json.dumps(d, indent=1) + "\n")
        print(json.dumps(d))
    mon.close()


def _count(owner: Any, name: str, label: str, into: dict[str, float]) -> None:
    """Wrap ``owner.name`` so that the thread's CPU time inside it adds up in ``into[label]``."""
    f = getattr(owner, name)
    into[label] = 0.0

    def counted(*args: Any, **kw: Any) -> Any:
        t = time.thread_time()
        try:
            return f(*args, **kw)
        finally:
            into[label] += time.thread_time() - t

    setattr(owner, name, counted)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=512)
    ap.add_argument("--seconds", type=float, default=20.0, help="signal per bed")
    ap.add_argument("--fs", type=float, default=250.0)
    ap.add_argument("--round", type=int, default=2048, help="chunks per round (the soak's max_round)")
    ap.add_argument("--checkpoint", default=None,
                    help="the model whose beats are cut: ecg5000 (the replay's default) or mitdb (real ECG's window "
                         "beats, what live devices get)")
    ap.add_argument("--profile", default="")
    ap.add_argument("--digest", default="")
    ap.add_argument("--split", action="store_true", help="CPU time per part of the stage")
    ap.add_argument("--no-coalesce", action="store_true",
                    help="a bed's chunks in a round segmented one by one, not joined (Monitor.coalesce)")
    a = ap.parse_args()
    asyncio.run(run(a))


if __name__ == "__main__":
    main()

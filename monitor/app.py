"""Wiring for ``ecgmon --source replay``: build the monitor, then run it with the console or headless."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator

import numpy as np
from rich.console import Console
from rich.live import Live

from ecgmon.models.checkpoint import Checkpoint, load
from ecgmon.models.scorer import Scorer
from ecgmon.monitor.alarms import Journal, open_alarms
from ecgmon.monitor.config import MonitorConfig, from_args
from ecgmon.monitor.console import Snapshot, Tile, render
from ecgmon.monitor.messages import BeatScore
from ecgmon.monitor.mqtt import MqttSource
from ecgmon.monitor.pipeline import Monitor
from ecgmon.monitor.sources import ReplaySource


def build(cfg: MonitorConfig, *, ckpt: Checkpoint | None = None) -> tuple[Monitor, ReplaySource | MqttSource]:
    """The monitor and its source for ``cfg`` (the shipped checkpoint unless one is given)."""
    ckpt = ckpt or load(cfg.checkpoint)
    protocol = ckpt.split.get("protocol", "product")
    split = ckpt.data_split()
    rows = split.test  # replay streams only beats the model never trained or calibrated on
    # torch gets every core but one: the event loop (ingest, segmentation, alarms) needs a core of its own,
    # and on 2 cores a second torch thread halves the pipeline's throughput (BENCHMARKS.md)
    threads = cfg.threads or max(1, (os.cpu_count() or 2) - 1)
    scorer = Scorer(ckpt.model, device=cfg.device, threads=threads)
    offline = scorer.score(split.pool.x[rows]) > ckpt.threshold  # the offline model's verdicts, for agreement
    # alarms a previous run left open (e.g. after a crash) are shown again; a torn last line is skipped
    restored, skipped = open_alarms(cfg.journal) if cfg.journal.exists() else ([], 0)
    mon = Monitor(scorer, ckpt.threshold, policy=cfg.policy, journal=Journal(cfg.journal),
                  max_batch=cfg.max_batch, max_wait_ms=cfg.max_wait_ms, queue_size=cfg.queue_size,
                  offline_flags=dict(zip(rows.tolist(), offline.tolist(), strict=True)),
                  model_name=f"{ckpt.name} thr {ckpt.threshold:.4f}", max_beats=cfg.max_beats)
    mon.restore(restored)
    mon.stats.journal_skipped = skipped
    if cfg.source == "mqtt":
        source = MqttSource(cfg.broker, on_reject=mon.reject, on_shed=mon.shed_message)  # type: ignore[arg-type]
        mon.shed_when_full = True  # devices cannot be paused: shed, count and alarm instead
        mon.sinks.append(source.alarm_sink)
        return mon, source
    source = ReplaySource(split.pool.x, split.pool.y, rows, patients=cfg.patients, fs=cfg.fs, speed=cfg.speed,
                          seed=cfg.seed, chunk_s=cfg.chunk_s, loop=cfg.loop,
                          split_name=f"{protocol} test split")
    return mon, source


def source_tasks(mon: Monitor, source) -> list:
    """Tasks a live source needs beside the pipeline: alarm publishing and the signal-loss watchdog."""
    if not isinstance(source, MqttSource):
        return []
    return [("publish-alarms", source.publish_alarms()), ("watchdog", mon.watchdog())]


def snapshot(mon: Monitor, *, finished: bool = False) -> Snapshot:
    s = mon.stats
    tiles = tuple(
        Tile(p.patient, p.segmenter.heart_rate, np.asarray(p.strip, dtype=np.float32), p.last.loss if p.last else None,
             mon.threshold, p.beats, p.flagged, p.book.highest(), len(p.book.active))
        for p in mon.patients.values()
    )
    label = mon.source_label + (f" [{mon.source.state}]" if hasattr(mon.source, "state") else "")
    return Snapshot(tiles, tuple(mon.alarm_log), label, mon.replay, s.beats_per_s(),
                    s.latency_ms(50), s.latency_ms(99), mon.queue.qsize(), s.queue_max, s.shed,
                    mon.scorer.device_name, mon.model_name, s.sensitivity, s.specificity,
                    time.monotonic() - s.started_mono, finished, mon.monitor_book.highest(), s.shed_messages)


def json_sink(out, *, replay: bool = False) -> Callable[[str, object], None]:
    """Headless output: one JSON object per line for every beat and alarm transition.

    Lines from a replayed stream carry ``"replay": true``, so no consumer can mistake them
    for a live patient.
    """

    def sink(kind: str, item: object) -> None:
        if kind == "beat":
            s: BeatScore = item  # type: ignore[assignment]
            b = s.beat
            line = {"type": "beat", "patient": b.patient, "index": b.index, "time": round(time.time(), 3),
                    "rr_s": round(b.rr_s, 4), "loss": round(s.loss, 6), "threshold": s.threshold,
                    "verdict": "abnormal" if s.flagged else "normal",
                    "latency_ms": round(s.latency_s * 1000, 2)}
            if b.label is not None:
                line["label"] = b.label
        else:
            line = {"type": "alarm", **item.to_json()}  # type: ignore[union-attr]
        if replay:
            line["replay"] = True
        out.write(json.dumps(line) + "\n")

    return sink


async def _stats_task(mon: Monitor, out, period: float = 1.0) -> None:
    while True:
        await asyncio.sleep(period)
        s = mon.stats
        out.write(json.dumps({"type": "stats", "replay": mon.replay, "beats": s.beats,
                              "beats_per_s": round(s.beats_per_s(), 1),
                              "latency_p50_ms": s.latency_ms(50), "latency_p99_ms": s.latency_ms(99),
                              "queue": mon.queue.qsize(), "shed": s.shed, "alarms": s.alarms}) + "\n")
        out.flush()


@contextlib.contextmanager
def cbreak(fd: int) -> Iterator[bool]:
    """Single-key input without echo; restores the terminal on exit (including Ctrl-C)."""
    if not os.isatty(fd):
        yield False
        return
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


async def run_headless(mon: Monitor, source: ReplaySource | MqttSource, cfg: MonitorConfig, out=sys.stdout) -> dict:
    mon.sinks.append(json_sink(out, replay=source.replay))
    await mon.run(source, duration=cfg.duration,
                  extra_tasks=[("stats", _stats_task(mon, out)), *source_tasks(mon, source)])
    summary = mon.summary()
    out.write(json.dumps(summary) + "\n")
    out.flush()
    return summary


async def run_console(mon: Monitor, source: ReplaySource | MqttSource, cfg: MonitorConfig, console: Console) -> dict:
    quit_ev = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def refresh(live: Live) -> None:
        while True:
            live.update(render(snapshot(mon, finished=getattr(source, "finished", False)), width=console.size.width,
                               height=console.size.height), refresh=True)
            await asyncio.sleep(0.25)

    async def quitter() -> None:
        await quit_ev.wait()
        mon.done.set()

    with cbreak(sys.stdin.fileno()) as keys, Live(console=console, auto_refresh=False, screen=True) as live:
        if keys:
            def on_key() -> None:
                ch = sys.stdin.read(1)
                if ch in ("q", "Q"):
                    quit_ev.set()
                elif ch in ("a", "A"):
                    mon.acknowledge()

            loop.add_reader(sys.stdin.fileno(), on_key)
        try:
            # the console keeps showing the final state after a replay ends, until q or --duration
            mon.stop_on_source_end = False
            await mon.run(source, duration=cfg.duration,
                          extra_tasks=[("refresh", refresh(live)), ("quit", quitter()), *source_tasks(mon, source)])
        finally:
            if keys:
                loop.remove_reader(sys.stdin.fileno())
    return mon.summary()


def run_monitor(a: argparse.Namespace, console: Console) -> int:
    cfg = from_args(a)
    mon, source = build(cfg)
    try:
        if cfg.ui:
            summary = asyncio.run(run_console(mon, source, cfg, console))
            console.print(json.dumps(summary))
        else:
            asyncio.run(run_headless(mon, source, cfg))
    except KeyboardInterrupt:
        print(json.dumps(mon.summary()), file=sys.stderr)
    finally:
        mon.close()
    return 0


"""Wiring for ``ecgmon`` (the monitor): build the pipeline from one config, run it with the console or headless."""

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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.live import Live

from ecgmon.models.checkpoint import Checkpoint, load
from ecgmon.models.records import Recording, read_all
from ecgmon.models.scorer import Scorer
from ecgmon.monitor.alarms import Journal, open_alarms
from ecgmon.monitor.config import MonitorConfig, from_args
from ecgmon.monitor.console import ConsoleView, Snapshot, Tile, render
from ecgmon.monitor.evaluator import Evaluator
from ecgmon.monitor.learning import LearntStore
from ecgmon.monitor.mqtt import MqttSource
from ecgmon.monitor.pipeline import Monitor, Restored
from ecgmon.monitor.sinks import HeadlessSink, Sink
from ecgmon.monitor.sources import RecordSource, ReplaySource, Source
from ecgmon.monitor.strips import StripRecorder, strips_path

REPLAY_TOLERANCE_S = 0.020  # ECG5000 replay: a cut beat matches a rendered beat when its start is this close
EC57_TOLERANCE_S = 0.150  # recordings: a detection matches a reference beat within 150 ms (ANSI/AAMI EC57)


@dataclass(slots=True)
class Built:
    """A monitor ready to run, its source, and the sinks the caller may read."""

    monitor: Monitor
    source: Source
    evaluator: Evaluator
    view: ConsoleView
    headless: HeadlessSink | None
    notes: tuple[str, ...] = ()  # --source record: the readers' warnings
    left_out: tuple[str, ...] = ()  # --source record: records that could not be read (why)


def build(cfg: MonitorConfig, *, ckpt: Checkpoint | None = None, out: TextIO | None = None,
          extra_sinks: Sequence[Sink] = (), recordings: Sequence[Recording] | None = None) -> Built:
    """The monitor, its source and its sinks for ``cfg`` (the shipped checkpoint unless one is given).

    Headless (``cfg.ui`` False), verdicts and alarms go to ``out`` (stdout) as JSON lines.
    ``extra_sinks`` come after the built-in ones (an embedding application's own, a test's recorder).
    ``recordings``: for ``--source record``, recordings already read (else ``cfg.records`` are read).
    """
    ckpt = ckpt or load(cfg.checkpoint if cfg.checkpoint is not None else "mitdb" if cfg.source == "record" else None)
    rep = ckpt.rep
    # torch gets every core but one: the event loop (ingest, segmentation, alarms) needs a core of its own,
    # and on 2 cores a second torch thread halves the pipeline's throughput (BENCHMARKS.md)
    threads = cfg.threads or max(1, (os.cpu_count() or 2) - 1)
    scorer = Scorer(ckpt.model, device=cfg.device, threads=threads)
    source: Source
    offline: dict[int, bool] = {}
    if cfg.source == "replay" and rep.kind != "ecg5000":
        raise ValueError(f"--source replay plays ECG5000's beats; {ckpt.name} was trained on {rep.kind} beats of "
                         "real ECG (use an ECG5000 checkpoint, or --source record)")
    if cfg.source != "record" and rep.kind == "ecg5000":
        split = ckpt.data_split()
        rows = split.test  # replay streams only beats the model never trained or calibrated on
        # the offline model's verdicts on those rows: streamed verdicts on the same rows (the replay, or
        # simulated ECG5000 devices with a labels topic) are compared with them; recordings have no such rows
        flags = scorer.score(split.pool.x[rows]) > ckpt.threshold
        offline = dict(zip(rows.tolist(), flags.tolist(), strict=True))
    tolerance = REPLAY_TOLERANCE_S
    notes: tuple[str, ...] = ()
    left_out: tuple[str, ...] = ()
    if cfg.source == "mqtt":
        if cfg.broker is None:
            raise ValueError("--source mqtt needs broker settings")
        source = MqttSource(cfg.broker)
    elif cfg.source == "record":
        if recordings is not None:
            recs = list(recordings)
        else:  # a record that cannot be read is left out and reported; the others play
            got = read_all(list(cfg.records), lead=cfg.lead, fs=cfg.csv_fs, units=cfg.units)
            recs, left_out = got.recordings, tuple(got.left_out)
            if not recs:
                raise ValueError("no record could be played:\n  " + "\n  ".join(left_out))
        notes = tuple(n for r in recs for n in r.notes)
        source = RecordSource(recs, speed=cfg.speed, chunk_s=cfg.chunk_s, start=cfg.start, duration=cfg.duration,
                              left_out=left_out)
        tolerance = EC57_TOLERANCE_S
    else:
        source = ReplaySource(split.pool.x, split.pool.y, rows, patients=cfg.patients, fs=cfg.fs, speed=cfg.speed,
                              seed=cfg.seed, chunk_s=cfg.chunk_s, loop=cfg.loop,
                              split_name=f"{ckpt.split.get('protocol', 'product')} test split",
                              abnormal_rate=cfg.abnormal_rate)
    # alarms a previous run left open (e.g. after a crash) are shown again; a torn last line is skipped
    alarms, skipped = open_alarms(cfg.journal) if cfg.journal.exists() else ([], 0)
    restored = Restored(tuple(alarms), skipped)
    evaluator = Evaluator(tolerance_s=tolerance, offline_flags=offline)
    view = ConsoleView(restored=restored.alarms)
    headless = None if cfg.ui else HeadlessSink(out or sys.stdout, replay=source.replay, labels=evaluator)
    # the journal first: an alarm is durable before it is shown or published
    sinks: list[Sink] = [Journal(cfg.journal)]
    if cfg.strips:
        sinks.append(StripRecorder(strips_path(cfg.journal), replay=source.replay))
    sinks += [evaluator, view]
    if headless is not None:
        sinks.append(headless)
    sinks += extra_sinks
    margin = ckpt.bed_margin
    learning = cfg.learning if margin is not None and cfg.learning.learn_s > 0 else None
    store = (LearntStore(cfg.learn_state, ckpt.sha256, forget_s=cfg.learning.forget_s)
             if learning is not None and cfg.learn_state is not None else None)
    if learning is not None and margin is not None:
        name = f"{ckpt.name} learn {learning.learn_s:g}s margin {margin:.4f}"
    else:
        name, margin = f"{ckpt.name} thr {ckpt.threshold:.4f}", float("nan")
    mon = Monitor(scorer, ckpt.threshold, cfg=cfg.pipeline, policy=cfg.policy, sinks=sinks, restored=restored,
                  model_name=name, rep=rep, learning=learning, bed_margin=margin, store=store)
    return Built(mon, source, evaluator, view, headless, notes, left_out)


def snapshot(b: Built, *, focus: str | None = None, notice: str = "") -> Snapshot:
    mon, s = b.monitor, b.monitor.stats
    v = b.view
    tiles = tuple(
        Tile(p.patient, p.segmenter.heart_rate, v.strip(p.patient), p.last.loss if p.last else None,
             p.last.threshold if p.last else mon.threshold, p.beats, p.flagged, p.book.highest(), len(p.book.active),
             learning=p.learner.progress(p.last.beat.index if p.last else None)
             if p.learner is not None and p.learner.learning else None,
             fs=v.fs.get(p.patient, p.fs), end=v.ends.get(p.patient, 0), marks=tuple(v.marks.get(p.patient, ())),
             alarms=tuple(sorted(p.book.active.values(), key=lambda a: -a.priority)),
             learnt=p.learner is not None and not p.learner.learning)
        for p in mon.beds.values()
    )
    health = b.source.health()
    c = b.evaluator.confusion
    return Snapshot(tiles, tuple(b.view.alarm_log), f"{b.source.label} [{health.state}]", b.source.replay,
                    s.beats_per_s(), s.latency_ms(50), s.latency_ms(99), mon.queue.qsize(), s.queue_max, s.shed,
                    mon.scorer.device_name, mon.model_name, c.sensitivity, c.specificity,
                    time.monotonic() - s.started_mono, health.finished, mon.monitor_book.highest(), s.shed_messages,
                    focus, notice)


async def _stats_task(b: Built, out: HeadlessSink, period: float = 1.0) -> None:
    while True:
        await asyncio.sleep(period)
        s = b.monitor.stats
        out.write({"type": "stats", "beats": s.beats, "beats_per_s": round(s.beats_per_s(), 1),
                   "latency_p50_ms": s.latency_ms(50), "latency_p99_ms": s.latency_ms(99),
                   "queue": b.monitor.queue.qsize(), "shed": s.shed, "alarms": s.alarms})


@dataclass(slots=True)
class KeyState:
    """The console's keys: ``1``-``9`` show one bed (``0`` or Esc: every bed), ``a`` acknowledges,
    ``r`` relearns the bed shown alone, ``q`` quits.  ``notice`` answers the last key."""

    focus: str | None = None
    notice: str = ""

    def press(self, ch: str, mon: Monitor) -> bool:
        """Act on one key; True to quit."""
        beds = list(mon.beds)
        if ch in ("q", "Q"):
            return True
        if ch in ("a", "A"):
            mon.acknowledge()
            self.notice = "alarms acknowledged"
        elif ch in ("0", "\x1b"):
            self.focus, self.notice = None, ""
        elif ch.isdigit() and int(ch) <= len(beds):
            self.focus, self.notice = beds[int(ch) - 1], ""
        elif ch in ("r", "R"):
            if self.focus is None:
                self.notice = "relearn: show one bed first (1-9), then r"
            elif mon.relearn(self.focus):
                self.notice = f"{self.focus}: learning its normal again; its physiological alarms are held"
            else:
                self.notice = f"{self.focus}: this model has no per-bed learning (or --learn 0)"
        return False


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


async def run_headless(b: Built, *, duration: float | None = None) -> dict[str, object]:
    """Run to the end; every verdict and alarm is a JSON line, then the summary (the last line)."""
    if b.headless is None:
        raise ValueError("run_headless needs a monitor built with ui=False")
    try:
        await b.monitor.run(b.source, duration=duration, extra_tasks=[("stats", _stats_task(b, b.headless))])
    finally:
        summary = b.monitor.summary()  # also on Ctrl-C or cancellation: the documented last line
        b.headless.write(summary)
    return summary


async def run_console(b: Built, console: Console, *, duration: float | None = None) -> dict[str, object]:
    quit_ev = asyncio.Event()
    loop = asyncio.get_running_loop()

    keys_state = KeyState()

    async def refresh(live: Live) -> None:
        while True:
            snap = snapshot(b, focus=keys_state.focus, notice=keys_state.notice)
            live.update(render(snap, width=console.size.width, height=console.size.height), refresh=True)
            await asyncio.sleep(0.25)

    async def quitter() -> None:
        await quit_ev.wait()
        b.monitor.done.set()

    with cbreak(sys.stdin.fileno()) as keys, Live(console=console, auto_refresh=False, screen=True) as live:
        if keys:
            def on_key() -> None:
                if keys_state.press(sys.stdin.read(1), b.monitor):
                    quit_ev.set()

            loop.add_reader(sys.stdin.fileno(), on_key)
        try:
            await b.monitor.run(b.source, duration=duration, extra_tasks=[("refresh", refresh(live)),
                                                                          ("quit", quitter())])
        finally:
            if keys:
                loop.remove_reader(sys.stdin.fileno())
    return b.monitor.summary()


def run_monitor(a: argparse.Namespace, console: Console) -> int:
    """Run the monitor; 0, or 1 when records were left out (each named on stderr before the run)."""
    cfg = from_args(a)
    b = build(cfg)
    for line in b.notes:
        print(f"warning: {line}", file=sys.stderr)
    for line in b.left_out:
        print(f"error: left out: {line}", file=sys.stderr)
    try:
        if cfg.ui:
            summary = asyncio.run(run_console(b, console, duration=cfg.duration))
            print(json.dumps(summary))
        else:
            asyncio.run(run_headless(b, duration=cfg.duration))
    except KeyboardInterrupt:
        pass  # headless: the summary was written as the last line; the console: the screen is restored
    finally:
        b.monitor.close()
    if b.left_out:
        print(f"error: {len(b.left_out)} record(s) left out (see above); the others were played", file=sys.stderr)
        return 1
    return 0

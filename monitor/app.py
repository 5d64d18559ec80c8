"""Wiring for ``ecgmon`` (the monitor): build the pipeline from one config, run it with the console or headless."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import termios
import time
import tty
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

import numpy as np
from rich.console import Console
from rich.live import Live

from ecgmon.core.limits import MATCH_WINDOW_S, REPLAY_MATCH_S, default_threads
from ecgmon.core.messages import AlarmState, Priority
from ecgmon.models.checkpoint import Checkpoint, load
from ecgmon.models.records import Recording, read_all
from ecgmon.models.scorer import Scorer
from ecgmon.monitor.alarms import Journal, open_alarms
from ecgmon.monitor.config import MonitorConfig, default_checkpoint, from_args
from ecgmon.monitor.console import ConsoleView, Snapshot, Tile, render
from ecgmon.monitor.disk import DiskWriter
from ecgmon.monitor.jetstream import NatsSource
from ecgmon.monitor.mqtt import MqttSource
from ecgmon.monitor.pipeline import Monitor, Restored
from ecgmon.monitor.sinks import HeadlessSink, Sink, TruthFactory, TruthSink
from ecgmon.monitor.sources import RecordSource, ReplaySource, Source, Task
from ecgmon.monitor.strips import StripRecorder, strips_path


@dataclass(slots=True)
class Built:
    """A monitor ready to run, its source, and the sinks the caller may read."""

    monitor: Monitor
    source: Source
    truth: TruthSink | None
    view: ConsoleView
    headless: HeadlessSink | None
    notes: tuple[str, ...] = ()  # --source record: the readers' warnings
    left_out: tuple[str, ...] = ()  # --source record: records that could not be read (why)


def build(cfg: MonitorConfig, *, ckpt: Checkpoint | None = None, out: TextIO | None = None,
          extra_sinks: Sequence[Sink] = (), recordings: Sequence[Recording] | None = None,
          truth: TruthFactory | None = None, source: Source | None = None) -> Built:
    """The monitor, its source and its sinks for ``cfg`` (the shipped checkpoint unless one is given).

    Headless (``cfg.ui`` False), verdicts and alarms go to ``out`` (stdout) as JSON lines.
    ``extra_sinks`` come after the built-in ones (an embedding application's own, a test's recorder).
    ``recordings``: for ``--source record``, recordings already read (else ``cfg.records`` are read).
    ``truth``: makes the ground-truth sink (the CLI passes :class:`ecgmon.evaluation.evaluator.Evaluator`);
    None: verdicts are not compared with any truth the source carries.
    ``source``: a source built by the caller (an ``--workers`` worker's routed source, :mod:`ecgmon.monitor.workers`)
    instead of the one ``cfg.source`` names; ``cfg.source`` still chooses the model and the evaluation tolerance.
    """
    ckpt = ckpt or load(cfg.checkpoint if cfg.checkpoint is not None else default_checkpoint(cfg.source))
    rep = ckpt.rep
    scorer = Scorer(ckpt.model, device=cfg.device, threads=cfg.threads or default_threads())
    given = source
    offline: dict[int, bool] = {}
    if cfg.source == "replay" and rep.kind != "ecg5000":
        raise ValueError(f"--source replay plays ECG5000's beats; {ckpt.name} was trained on {rep.kind} beats of "
                         "real ECG (use an ECG5000 checkpoint, or --source record)")
    if cfg.source != "record" and rep.kind == "ecg5000":
        split = ckpt.data_split()
        rows = split.test  # replay streams only beats the model never trained or calibrated on
        if truth is not None:
            # the offline model's verdicts on those rows: streamed verdicts on the same rows (the replay, or
            # simulated ECG5000 devices with a labels topic) are compared with them; recordings have none
            flags = scorer.score(split.pool.x[rows]) > ckpt.threshold
            offline = dict(zip(rows.tolist(), flags.tolist(), strict=True))
    tolerance = REPLAY_MATCH_S
    notes: tuple[str, ...] = ()
    left_out: tuple[str, ...] = ()
    if given is not None:
        source = given
    elif cfg.source == "mqtt":
        if cfg.broker is None:
            raise ValueError("--source mqtt needs broker settings")
        source = MqttSource(cfg.broker)
    elif cfg.source == "nats":
        if cfg.nats is None:
            raise ValueError("--source nats needs NATS settings")
        source = NatsSource(cfg.nats)
    elif cfg.source == "record":
        if recordings is not None:
            recs = list(recordings)
        else:  # a record that cannot be read is left out and reported; the others play
            got = read_all(list(cfg.records), lead=cfg.lead, fs=cfg.csv_fs, units=cfg.units,
                           second_lead=cfg.second_lead)
            recs, left_out = got.recordings, tuple(got.left_out)
            # a --start at or past a record's end leaves nothing of it to play: left out, said
            past = [r for r in recs if round(cfg.start * r.fs) >= len(r.signal)]
            left_out += tuple(f"{r.path}: --start {cfg.start:g} s is at or past its end ({r.seconds:g} s)"
                              for r in past)
            recs = [r for r in recs if r not in past]
            if not recs:
                raise ValueError("no record could be played:\n  " + "\n  ".join(left_out))
        notes = tuple(n for r in recs for n in r.notes)
        source = RecordSource(recs, speed=cfg.speed, chunk_s=cfg.chunk_s, start=cfg.start, duration=cfg.duration,
                              left_out=left_out)
        tolerance = MATCH_WINDOW_S
    else:
        source = ReplaySource(split.pool.x, split.pool.y, rows, patients=cfg.patients, fs=cfg.fs, speed=cfg.speed,
                              seed=cfg.seed, chunk_s=cfg.chunk_s, loop=cfg.loop,
                              split_name=f"{ckpt.split.get('protocol', 'product')} test split",
                              abnormal_rate=cfg.abnormal_rate)
    # alarms a previous live run left open (e.g. after a crash) are shown again; a torn last line is skipped.  A
    # replay or recording starts its patients' time again: nothing is restored into it
    alarms, skipped = open_alarms(cfg.journal) if cfg.journal.exists() and not source.replay else ([], 0)
    restored = Restored(tuple(alarms), skipped)
    evaluator = truth(tolerance_s=tolerance, offline_flags=offline) if truth is not None else None
    view = ConsoleView(restored=restored.alarms)
    headless = None if cfg.ui else HeadlessSink(out or sys.stdout, replay=source.replay, labels=evaluator)
    # the journal first: an alarm is durable before it is shown or published; it, the strips and the
    # learnt-state file are written by one disk writer, off the event loop
    disk = DiskWriter()
    journal = Journal(cfg.journal, replay=source.replay)
    sinks: list[Sink] = [journal]
    # a journal that is no file (--journal /dev/null) is no journal: no strips beside it either (they were written to
    # /dev/null.strips.jsonl, in the machine's memory, 111 MB after a day of test runs: session 42)
    if not journal.kept:
        notes += (f"--journal {cfg.journal} is not a file: alarm transitions are not kept on disk and no alarm strips "
                  "are recorded",)
    if cfg.strips and journal.kept:
        sinks.append(StripRecorder(strips_path(cfg.journal), replay=source.replay, disk=disk))
    if evaluator is not None:
        sinks.append(evaluator)
    sinks.append(view)
    if headless is not None:
        sinks.append(headless)
    sinks += extra_sinks
    # NATS workers keep what the beds learnt in the shared bucket (a bed taken over keeps it), not in a file
    store = source.learnt_store(ckpt.sha256) if isinstance(source, NatsSource) else None
    mon = Monitor.for_checkpoint(ckpt, scorer=scorer, cfg=cfg.pipeline, policy=cfg.policy, learning=cfg.learning,
                                 learn_state=cfg.learn_state, sinks=sinks, restored=restored, disk=disk, store=store,
                                 lethal=cfg.lethal)
    if headless is not None:
        headless.simulated = mon.simulated  # the monitor's own set, kept up to date as devices say
    return Built(mon, source, evaluator, view, headless, notes, left_out)


def snapshot(b: Built, *, focus: str | None = None, notice: str = "") -> Snapshot:
    mon, s = b.monitor, b.monitor.stats
    v = b.view
    hrs = {p.patient: mon.heart_rate_lead(p) for p in mon.beds.values()}
    # the trace of the lead the rate is counted on: the second while the first is off, lost or in noise (a flat line
    # beside "68 bpm (lead 2)" told a nurse nothing of the rhythm counted; a newcomer, session 58)
    # (only with its rate: the tile says "(lead 2)" beside a rate; the beat marks below a trace are the first lead's,
    # so none under the second's)
    shown = {p: 1 if lead and hr is not None and v.has(p, 1) else 0 for p, (hr, lead) in hrs.items()}
    ends = {p: v.lead_end(p, lead) for p, lead in shown.items()}
    tiles = tuple(
        Tile(p.patient, hrs[p.patient][0], v.strip(p.patient, shown[p.patient]), p.last.loss if p.last else None,
             p.last.threshold if p.last else mon.threshold, p.beats, p.flagged, p.book.highest(), len(p.book.active),
             learning=p.model.progress(p.last.beat.index if p.last else None),
             fs=ends[p.patient][1] or p.fs, end=ends[p.patient][0],
             marks=() if shown[p.patient] else tuple(v.marks.get(p.patient, ())),
             alarms=tuple(sorted(p.book.active.values(), key=lambda a: -a.priority)),
             learnt=p.model.learnt is not None, per_min=p.policy.per_minute(), simulated=p.book.simulated,
             hr_second_lead=hrs[p.patient][1] == 1, trace_second_lead=shown[p.patient] == 1)
        for p in mon.beds.values()
    )
    # a NATS central station (--station): the beds other workers judge, with their alarms only
    remote = b.source.remote_beds() if isinstance(b.source, NatsSource) else {}
    tiles += tuple(Tile(d, None, np.zeros(0, np.float32), None, mon.threshold, 0, 0, alarms[0] if alarms else None,
                        len(alarms), alarms=alarms, remote=True, judged_by=worker)
                   for d, (worker, alarms) in sorted(remote.items()) if d not in mon.beds)
    health = b.source.health()
    se, sp = (b.truth.sensitivity, b.truth.specificity) if b.truth is not None else (None, None)
    label = f"{b.source.label} [{health.state}]"
    if mon.simulated:
        label += f" - {len(mon.simulated)} SIMULATED device(s), not patients"
    return Snapshot(tiles, tuple(b.view.alarm_log), label, b.source.replay,
                    s.beats_per_s(), s.latency_ms(50), s.latency_ms(99), mon.queue.qsize(), s.queue_max, s.shed,
                    mon.scorer.device_name, mon.model_name, se, sp,
                    time.monotonic() - s.started_mono, mon.monitor_book.highest(), s.shed_messages,
                    focus, notice)


async def stats_task(b: Built, out: HeadlessSink, period: float = 1.0) -> None:
    """A ``stats`` line every ``period`` seconds (headless)."""
    while True:
        await asyncio.sleep(period)
        s = b.monitor.stats
        out.write({"type": "stats", "beats": s.beats, "beats_per_s": round(s.beats_per_s(), 1),
                   "latency_p50_ms": s.latency_ms(50), "latency_p99_ms": s.latency_ms(99),
                   "queue": b.monitor.queue.qsize(), "shed": s.shed, "alarms": s.alarms,
                   # abnormal beats by type in the last minute, beds with any (V, S, O other, A artifact)
                   "per_min": {p: m for p, st in b.monitor.beds.items()
                               if any((m := st.policy.per_minute()).values())}})


class Controls(Protocol):
    """What the console's keys act on: a :class:`Monitor`, or the router of ``--workers`` processes."""

    done: asyncio.Event

    @property
    def beds(self) -> Mapping[str, object]: ...

    def acknowledge(self, patient: str | None = None) -> None: ...

    def relearn(self, patient: str | None = None) -> list[str]: ...


QUIT_CONFIRM_S = 3.0  # q must be pressed again within this long: one stray key must not end every bed's monitoring
# a key's answer (e.g. "alarms acknowledged") stays this long: it hides the footer's alarm line, and "acknowledged"
# stood there 100 s while new HIGH alarms nobody had acknowledged were on (a newcomer, session 25)
NOTICE_S = 5.0


@dataclass(slots=True)
class KeyState:
    """The console's keys: ``1``-``9`` show one bed (``0`` or Esc: every bed), ``n``/``p`` the next/previous bed
    (every bed, also past the ninth), ``a`` acknowledges (in the one-bed view that bed's alarms, else every bed's),
    ``r`` relearns the bed shown alone, ``q`` twice within ``QUIT_CONFIRM_S`` quits.  ``notice`` answers the last
    key."""

    focus: str | None = None
    notice: str = ""
    quit_at: float | None = None  # when q was pressed once (monotonic)
    notice_at: float | None = None  # when another key's notice was given (monotonic)

    def expire(self, now: float) -> None:
        """The quit prompt goes once its ``QUIT_CONFIRM_S`` have passed, another key's notice after ``NOTICE_S`` (a
        stray q must not hide the footer's alarms for good, nor an old "acknowledged" new alarms)."""
        if self.quit_at is not None and now - self.quit_at > QUIT_CONFIRM_S:
            self.quit_at, self.notice = None, ""
        if self.notice_at is not None and now - self.notice_at > NOTICE_S:
            self.notice_at, self.notice = None, ""

    def press(self, ch: str, mon: Controls, now: float | None = None) -> bool:
        """Act on one key; True to quit."""
        now = time.monotonic() if now is None else now
        self.expire(now)
        beds = list(mon.beds)
        if ch in ("q", "Q"):
            if self.quit_at is not None and now - self.quit_at <= QUIT_CONFIRM_S:
                return True
            self.quit_at, self.notice_at = now, None
            self.notice = f"press q again to quit: monitoring of every bed stops ({len(beds)} beds)"
            return False
        self.quit_at = None
        self.notice_at = now  # (a notice set below goes after NOTICE_S)
        if ch in ("a", "A"):
            mon.acknowledge(self.focus)
            self.notice = f"{self.focus}: alarms acknowledged" if self.focus else "every bed's alarms acknowledged"
        elif ch in ("0", "\x1b"):
            self.focus, self.notice = None, ""
        elif ch.isdigit() and int(ch) <= len(beds):
            self.focus, self.notice = beds[int(ch) - 1], ""
        elif ch in ("n", "N", "p", "P") and beds:
            step = 1 if ch in ("n", "N") else -1
            at = beds.index(self.focus) if self.focus in beds else (-1 if step > 0 else 0)
            self.focus, self.notice = beds[(at + step) % len(beds)], ""
        elif ch in ("r", "R"):
            if self.focus is None:
                self.notice = "relearn: show one bed first (1-9, n/p), then r"
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
        with contextlib.suppress(termios.error):  # a terminal that has gone (hangup) has nothing to restore
            termios.tcsetattr(fd, termios.TCSADRAIN, old)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(mon: Controls, on_signal: Callable[[int], None] | None = None) -> Iterator[list[int]]:
    """SIGTERM (a service manager), SIGHUP (the terminal was closed) and SIGINT (Ctrl-C) end the run the way
    ``q`` does: the source stops, the journal and the learnt state are complete, the summary is written.
    Yields the signals received (for the caller's exit path); ``on_signal`` is told each one."""
    loop = asyncio.get_running_loop()
    got: list[int] = []

    def handle(sig: int) -> None:
        got.append(sig)
        if on_signal is not None:
            on_signal(sig)
        mon.done.set()

    installed = []
    for sig in STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, handle, sig)
            installed.append(sig)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no such signal here
            pass
    try:
        yield got
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def run_headless(b: Built, *, duration: float | None = None) -> dict[str, object]:
    """Run to the end (or a stop signal); every verdict and alarm is a JSON line, then the summary (the last
    line)."""
    if b.headless is None:
        raise ValueError("run_headless needs a monitor built with ui=False")
    got: list[int] = []
    try:
        with stop_on_signals(b.monitor) as got:
            await b.monitor.run(b.source, duration=duration, extra_tasks=[("stats", stats_task(b, b.headless))])
    finally:
        if got:  # a service log says why the monitor stopped (stdout keeps the JSON lines alone)
            with contextlib.suppress(OSError, ValueError):
                print(f"ecgmon: stopping on {signal.Signals(got[0]).name}; the summary is the last output line",
                      file=sys.stderr, flush=True)
        summary = write_summary(b)  # also on Ctrl-C or cancellation: the documented last line
        if got:  # and that it was handed to stdout (CI saw a SIGTERM stop with exit 0 and no summary twice, never
            with contextlib.suppress(OSError, ValueError):  # reproduced here: this says which side lost it)
                print(f"ecgmon: summary written ({b.headless.lost} output lines lost)", file=sys.stderr, flush=True)
    return summary


def write_summary(b: Built) -> dict[str, object]:
    """The run's summary as the headless output's last line, written once (:func:`run_monitor` calls it again
    after the event loop has ended, for a stop that left :func:`run_headless` without its ``finally``)."""
    assert b.headless is not None
    if b.headless.summary is None:
        b.headless.summary = b.monitor.summary()
        b.headless.write(b.headless.summary)
    return b.headless.summary


async def run_console(b: Built, console: Console, *, duration: float | None = None,
                      bell: bool = True) -> dict[str, object]:
    await console_loop(console, b.monitor, lambda keys: snapshot(b, focus=keys.focus, notice=keys.notice),
                       lambda extra: b.monitor.run(b.source, duration=duration, extra_tasks=extra), bell=bell)
    return b.monitor.summary()


HIGH_BELL_S = 10.0  # the bell again this often while a HIGH alarm is on and unacknowledged


class Bell:
    """When the console's bell rings: once for every audible (HIGH or MEDIUM) alarm raised, again every
    ``HIGH_BELL_S`` while a HIGH alarm is on and unacknowledged (a HIGH alarm's sound repeats until someone
    acknowledges it: IEC 60601-1-8); LOW alarms are shown, not sounded.  ``due(snapshot, now)``: whether to ring
    now.  A terminal's bell is the console's only sound: a unit that needs IEC 60601-1-8's tone patterns must take
    them from the alarm stream (the journal, MQTT, NATS), not from this console."""

    def __init__(self) -> None:
        self.heard: set[str] = set()  # ids of the audible alarms rung for
        self.last_high: float | None = None

    def due(self, s: Snapshot, now: float) -> bool:
        on = [a for t in s.tiles for a in t.alarms] + ([s.monitor_alarm] if s.monitor_alarm is not None else [])
        audible = {a.id: a for a in on if a.priority >= Priority.MEDIUM and a.state is AlarmState.ACTIVE}
        new = audible.keys() - self.heard
        self.heard &= audible.keys()  # acknowledged or cleared: forgotten (raised again, it rings again)
        self.heard |= new
        high = any(a.priority is Priority.HIGH for a in audible.values())
        ring = bool(new) or (high and self.last_high is not None and now - self.last_high >= HIGH_BELL_S)
        if ring and high:
            self.last_high = now
        elif not high:
            self.last_high = None
        return ring


async def console_loop(console: Console, controls: Controls, snap: Callable[[KeyState], Snapshot],
                       run: Callable[[list[Task]], Awaitable[None]], *, bell: bool = True) -> None:
    """The full-screen console around ``run(extra_tasks)``: refreshed from ``snap`` 4 times a second, keys acting
    on ``controls``, stopped by ``q`` (twice), a stop signal or a closed terminal (``controls.done`` is set);
    ``bell``: the terminal's bell rings for audible alarms (:class:`Bell`)."""
    quit_ev = asyncio.Event()
    loop = asyncio.get_running_loop()

    keys_state = KeyState()
    ringer = Bell() if bell else None

    async def refresh(live: Live, gone: Callable[[], bool]) -> None:
        while not gone():
            try:
                keys_state.expire(time.monotonic())
                s = snap(keys_state)
                live.update(render(s, width=console.size.width, height=console.size.height), refresh=True)
                if ringer is not None and ringer.due(s, time.monotonic()):
                    console.bell()
            except OSError:  # the terminal went away between two refreshes
                controls.done.set()
                return
            await asyncio.sleep(0.25)

    async def quitter() -> None:
        await quit_ev.wait()
        controls.done.set()

    hung_up = False

    def on_signal(sig: int) -> None:
        nonlocal hung_up
        hung_up = hung_up or sig == signal.SIGHUP

    live = Live(console=console, auto_refresh=False, screen=True)
    with cbreak(sys.stdin.fileno()) as keys, stop_on_signals(controls, on_signal):
        live.start()
        reading = keys

        def on_key() -> None:
            nonlocal hung_up, reading
            try:
                ch = os.read(sys.stdin.fileno(), 1).decode(errors="replace")
            except OSError:
                ch = ""
            if not ch:  # end of input: the terminal is gone; stop reading it (it would be readable forever)
                loop.remove_reader(sys.stdin.fileno())
                reading, hung_up = False, True
                quit_ev.set()
            elif keys_state.press(ch, controls):
                quit_ev.set()

        if keys:
            loop.add_reader(sys.stdin.fileno(), on_key)
        try:
            await run([("refresh", refresh(live, lambda: hung_up)), ("quit", quitter())])
        finally:
            if reading:
                loop.remove_reader(sys.stdin.fileno())
            if not hung_up:  # restore the screen; a closed terminal has none to restore
                with contextlib.suppress(OSError):
                    live.stop()
    if hung_up:
        _detach_terminal()


def _detach_terminal() -> None:
    """The terminal is gone: stdout and stderr go to /dev/null from now on, so that nothing written later
    (the summary, the interpreter's last flush) fails on it."""
    fd = os.open(os.devnull, os.O_WRONLY)
    for n in (1, 2):
        os.dup2(fd, n)
    os.close(fd)


def run_monitor(a: argparse.Namespace, console: Console, *, truth: TruthFactory | None = None) -> int:
    """``ecgmon [monitor]``: build from the arguments, run with the console or headless, close; 0, or 1 when
    records were left out (each named on stderr before the run)."""
    cfg = from_args(a)
    b = build(cfg, truth=truth)
    for line in b.notes:
        print(f"warning: {line}", file=sys.stderr)
    for line in b.left_out:
        print(f"error: left out: {line}", file=sys.stderr)
    try:
        if cfg.ui:
            summary = asyncio.run(run_console(b, console, duration=cfg.duration, bell=cfg.bell))
            with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
                print(json.dumps(summary), flush=True)
        else:
            asyncio.run(run_headless(b, duration=cfg.duration))
    except KeyboardInterrupt:
        pass  # headless: the summary was written as the last line; the console: the screen is restored
    finally:
        if b.headless is not None:
            write_summary(b)
        b.monitor.close()
    if b.left_out:
        print(f"error: {len(b.left_out)} record(s) left out (see above); the others were played", file=sys.stderr)
        return 1
    return 0

"""The bedside console: ``render(snapshot) -> Renderable``, a pure function of a :class:`Snapshot`.

Colours follow IEC 60601-1-8: HIGH priority red (flashing), MEDIUM yellow, LOW cyan;
technical alarms are labelled as such.  A replayed stream is marked REPLAY on every
screen.  The layout fits the terminal: tiles shrink and the grid reflows, and at
80x24 each bed still shows its id, rate, strip, loss and alarm.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, BeatScore, Chunk, Priority
from ecgmon.monitor.sinks import NullSink

STYLE = {Priority.HIGH: "bold white on red", Priority.MEDIUM: "bold black on yellow", Priority.LOW: "black on cyan"}
BORDER = {Priority.HIGH: "red", Priority.MEDIUM: "yellow", Priority.LOW: "cyan"}
BLOCKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True, slots=True)
class Tile:
    patient: str
    heart_rate: float | None
    strip: np.ndarray  # last few seconds of samples
    loss: float | None
    threshold: float
    beats: int
    flagged: int
    alarm: Alarm | None  # highest-priority active/acknowledged alarm
    n_alarms: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the console shows, copied out of the monitor at one instant."""

    tiles: tuple[Tile, ...]
    alarm_log: tuple[Alarm, ...]
    source_label: str
    replay: bool
    beats_per_s: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    queue_depth: int
    queue_max: int
    shed: int
    device: str
    model: str
    sensitivity: float | None
    specificity: float | None
    elapsed_s: float
    finished: bool = False
    monitor_alarm: Alarm | None = None
    shed_messages: int = 0


class ConsoleView(NullSink):
    """A sink keeping what the console shows beyond the pipeline's own state: each bed's last seconds
    of signal, and the alarm log."""

    def __init__(self, *, strip_s: float = 4.0, log: int = 200, restored: tuple[Alarm, ...] = ()) -> None:
        self.strip_s = strip_s
        self.strips: dict[str, deque[float]] = {}
        self.alarm_log: deque[Alarm] = deque(sorted(restored, key=lambda a: a.time), maxlen=log)

    def on_chunk(self, chunk: Chunk) -> None:
        strip = self.strips.get(chunk.patient)
        n = int(self.strip_s * chunk.fs)
        if strip is None or strip.maxlen != n:
            strip = self.strips[chunk.patient] = deque(maxlen=n)
        strip.extend(chunk.samples.tolist())

    def on_beat(self, score: BeatScore) -> None:
        pass

    def on_alarm(self, alarm: Alarm) -> None:
        self.alarm_log.append(alarm)

    def strip(self, patient: str) -> np.ndarray:
        return np.asarray(self.strips.get(patient, ()), dtype=np.float32)


def sparkline(x: np.ndarray, width: int) -> str:
    """The signal as ``width`` block characters, one column per time slice.

    Each column shows the slice's sample farthest from the strip's median, so a QRS
    spike survives the compression instead of being averaged away.
    """
    if width <= 0:
        return ""
    if len(x) < 2:
        return " " * width
    x = np.asarray(x, dtype=np.float64)
    med = float(np.median(x))
    cols = np.array_split(x, width)
    v = np.array([c[np.argmax(np.abs(c - med))] if len(c) else np.nan for c in cols])
    lo, hi = np.nanmin(v), np.nanmax(v)
    if not math.isfinite(lo) or hi - lo < 1e-9:
        return BLOCKS[0] * width
    idx = np.clip(((v - lo) / (hi - lo) * (len(BLOCKS) - 1)).round(), 0, len(BLOCKS) - 1)
    return "".join(BLOCKS[int(i)] if math.isfinite(i) else " " for i in idx)


def _alarm_text(a: Alarm | None, now: float) -> Text:
    if a is None:
        return Text("no alarm", style="green")
    style = STYLE[a.priority]
    if a.priority is Priority.HIGH and a.state is AlarmState.ACTIVE and int(now * 2) % 2:
        style = "bold red on white"  # flashing: alternate twice a second
    tag = "TECH " if a.kind is AlarmKind.TECHNICAL else ""
    ack = " (ack)" if a.state is AlarmState.ACKNOWLEDGED else ""
    return Text(f"{tag}{a.priority.name} {a.condition}{ack}", style=style, no_wrap=True, overflow="ellipsis")


def tile(t: Tile, width: int, now: float) -> Panel:
    inner = max(10, width - 4)
    hr = f"{t.heart_rate:5.0f} bpm" if t.heart_rate else "  --- bpm"
    head = Text.assemble((f"{t.patient} ", "bold"), (hr, "bold green"))
    if t.loss is None:
        loss = Text("loss --", style="dim")
    else:
        over = t.loss > t.threshold
        loss = Text(f"loss {t.loss:.3f}/{t.threshold:.3f} {'ABN' if over else 'ok'}",
                    style="bold magenta" if over else "")
    counts = Text(f"beats {t.beats}  abn {t.flagged}", style="dim")
    border = BORDER[t.alarm.priority] if t.alarm else "green"
    body = Group(head, Text(sparkline(t.strip, inner), style="green"), loss, counts, _alarm_text(t.alarm, now))
    return Panel(body, border_style=border, padding=(0, 1), width=width)


def render(s: Snapshot, *, width: int = 120, height: int = 40, now: float | None = None) -> RenderableType:
    """The whole screen for a terminal of ``width`` x ``height`` characters."""
    now = time.time() if now is None else now
    banner_style = "bold black on bright_white" if s.replay else "bold white on blue"
    status = " (finished)" if s.finished else ""
    header = Text(f" ecgmon  |  {s.source_label}{status}  |  {s.elapsed_s:6.0f} s ", style=banner_style)
    if s.monitor_alarm is not None:
        header.append("  ")
        header.append_text(_alarm_text(s.monitor_alarm, now))
    tile_w = max(24, min(40, width // max(1, min(len(s.tiles), max(1, width // 26)))))
    cols = max(1, width // tile_w)
    tile_h = 7
    log_rows = 4 if height <= 30 else 8
    rows_fit = max(1, (height - 3 - log_rows - 3) // tile_h)
    shown = s.tiles[: cols * rows_fit]
    grid = Table.grid(padding=0)
    for _ in range(cols):
        grid.add_column(width=tile_w)
    for i in range(0, len(shown), cols):
        grid.add_row(*[tile(t, tile_w, now) for t in shown[i:i + cols]])
    hidden = len(s.tiles) - len(shown)
    log = Table.grid(padding=(0, 1))
    log.add_column(no_wrap=True, min_width=8)
    log.add_column(no_wrap=True)
    log.add_column(overflow="ellipsis", no_wrap=True)
    for a in list(s.alarm_log)[-log_rows:][::-1]:
        stamp = time.strftime("%H:%M:%S", time.localtime(a.time))
        tag = "TECH " if a.kind is AlarmKind.TECHNICAL else ""
        log.add_row(stamp, Text(f"{a.patient}", style="bold"),
                    Text(f"{a.state}: {tag}{a.priority.name} {a.condition} - {a.message}",
                         style=STYLE[a.priority] if a.state is not AlarmState.CLEARED else "dim"))
    if not s.alarm_log:
        log.add_row("", "", Text("no alarms yet", style="dim"))
    lat = (f"p50 {s.latency_p50_ms:.0f} ms p99 {s.latency_p99_ms:.0f} ms" if s.latency_p99_ms is not None
           else "p50 -- p99 --")
    truth = ""
    if s.sensitivity is not None or s.specificity is not None:
        se = f"{s.sensitivity:.3f}" if s.sensitivity is not None else "--"
        sp = f"{s.specificity:.3f}" if s.specificity is not None else "--"
        truth = f" | sens {se} spec {sp}" + (" (vs replay labels)" if width >= 120 else "")
    footer = Text(
        (f"+{hidden} beds not shown | " if hidden > 0 else "")
        + f"{s.beats_per_s:6.1f} beats/s | latency {lat} | queue {s.queue_depth} (max {s.queue_max}) | "
        f"shed {s.shed} beats/{s.shed_messages} msgs | {s.device} | "
        + (s.model if width >= 100 else s.model.split()[0]) + truth + " | a: acknowledge  q: quit",
        style="yellow" if s.shed or s.shed_messages else "dim",
    )
    return Group(header, grid, Panel(log, title="alarm log", border_style="white", padding=(0, 1)), footer)

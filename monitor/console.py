"""The bedside console: ``render(snapshot) -> Renderable``, a pure function of a :class:`Snapshot`.

Colours follow IEC 60601-1-8: HIGH priority red (flashing), MEDIUM yellow, LOW cyan;
technical alarms are labelled as such.  A replayed stream is marked REPLAY on every
screen.  The layout fits the terminal: tiles shrink and the grid reflows, and at
80x24 each bed still shows its id, rate, strip, loss and alarm.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from rich.box import HEAVY
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, BeatScore, Chunk, Priority
from ecgmon.monitor.alarms import LETHAL_RANK, alarm_rank
from ecgmon.monitor.sinks import NullSink

# the alarms that take a bed's tile over (monitor/lethal.py): the rhythms that kill
LETHAL = frozenset(LETHAL_RANK)
STYLE = {Priority.HIGH: "bold white on red", Priority.MEDIUM: "bold black on yellow", Priority.LOW: "black on cyan"}
BLOCKS = "▁▂▃▄▅▆▇█"  # the loss bars of the one-bed view
BORDER = {Priority.HIGH: "red", Priority.MEDIUM: "yellow", Priority.LOW: "cyan"}
MARK = {"normal": ("▲", "green"), "abnormal": ("▲", "bold magenta"), "learning": ("·", "blue"),
        "noisy": ("?", "yellow")}
TILE_S = 5.0  # seconds of trace on a bed's tile
FOCUS_S = 10.0  # seconds of trace in the one-bed view
# braille dot bits: BRAILLE[row][col] for the 4 x 2 dots of one character cell
BRAILLE = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


@dataclass(frozen=True, slots=True)
class Mark:
    """A judged beat on the trace: where (absolute sample index), its verdict, loss and threshold."""

    index: int
    verdict: str  # normal | abnormal | learning
    loss: float
    threshold: float


@dataclass(frozen=True, slots=True)
class Tile:
    patient: str
    heart_rate: float | None
    strip: np.ndarray  # the last seconds of samples (FOCUS_S)
    loss: float | None
    threshold: float
    beats: int
    flagged: int
    alarm: Alarm | None  # highest-priority active/acknowledged alarm
    n_alarms: int
    learning: float | None = None  # 0..1 while the bed learns its normal (no verdicts yet)
    fs: float = 0.0
    end: int = 0  # absolute sample index just after the strip's last sample
    marks: tuple[Mark, ...] = ()  # recent judged beats, oldest first
    alarms: tuple[Alarm, ...] = ()  # every active/acknowledged alarm of the bed
    learnt: bool = False  # the threshold is the bed's own (per-bed learning done)
    # abnormal beats by type in the last minute (V ventricular, S supraventricular premature, O other, A artifact)
    per_min: dict[str, int] | None = None
    simulated: bool = False  # the device says it sends a simulator's samples (core.payload), not a patient's
    hr_second_lead: bool = False  # heart_rate is the second lead's (the first cannot be read: Monitor.heart_rate)
    trace_second_lead: bool = False  # ... and so is the strip drawn (no beat marks below it: they are the first lead's)
    # another worker judges this bed (a NATS central station's view, --station): its alarms only, no trace, no
    # verdict here; judged_by is that worker (None while its partition has no owner)
    remote: bool = False
    judged_by: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the console shows, copied out of the monitor at one instant."""

    tiles: tuple[Tile, ...]
    alarm_log: tuple[Alarm, ...]
    source_label: str  # the source and its state, e.g. "RECORDING - ... [finished]" (shown as it is)
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
    monitor_alarm: Alarm | None = None
    shed_messages: int = 0
    focus: str | None = None  # the bed shown alone (number keys), None: every bed
    notice: str = ""  # a one-line answer to the last key (e.g. "bed03 learns again")


class ConsoleView(NullSink):
    """A sink keeping what the console shows beyond the pipeline's own state: each bed's last seconds
    of signal (of each lead: the second is drawn while the bed's rate is counted on it), its last judged beats,
    and the alarm log."""

    # the driver gives this sink the second leads' chunks too (Chunk.lead 1): a bed whose first lead is off, lost or
    # in noise shows the second lead's rate, and a trace beside it that is not the first lead's flat line or noise
    second_leads = True

    def __init__(self, *, strip_s: float = FOCUS_S, marks: int = 64, log: int = 200,
                 restored: tuple[Alarm, ...] = ()) -> None:
        self.strip_s = strip_s
        # by (bed, lead): 0 its first, 1 its second
        self.strips: dict[tuple[str, int], deque[float]] = {}
        self.ends: dict[tuple[str, int], int] = {}
        self.fs: dict[tuple[str, int], float] = {}
        self.marks: dict[str, deque[Mark]] = {}
        self.n_marks = marks
        self.alarm_log: deque[Alarm] = deque(sorted(restored, key=lambda a: a.time), maxlen=log)

    def on_chunk(self, chunk: Chunk) -> None:
        key = (chunk.patient, chunk.lead)
        strip = self.strips.get(key)
        n = int(self.strip_s * chunk.fs)
        if strip is None or strip.maxlen != n or chunk.reset:
            strip = self.strips[key] = deque(maxlen=n)
        strip.extend(chunk.samples.tolist())
        self.ends[key] = chunk.start + len(chunk.samples)
        self.fs[key] = chunk.fs

    def on_beat(self, score: BeatScore) -> None:
        m = self.marks.get(score.beat.patient)
        if m is None:
            m = self.marks[score.beat.patient] = deque(maxlen=self.n_marks)
        m.append(Mark(score.beat.index, score.verdict, score.loss, score.threshold))

    def on_alarm(self, alarm: Alarm) -> None:
        self.alarm_log.append(alarm)

    def forget(self, patient: str) -> None:
        self.marks.pop(patient, None)
        for per_lead in (self.strips, self.ends, self.fs):
            for lead in (0, 1):
                per_lead.pop((patient, lead), None)

    def has(self, patient: str, lead: int = 0) -> bool:
        """Whether any of ``patient``'s lead ``lead`` (0 its first, 1 its second) has come."""
        return (patient, lead) in self.strips

    def strip(self, patient: str, lead: int = 0) -> np.ndarray:
        """The last ``strip_s`` of ``patient``'s first lead (``lead`` 0) or second (1); empty where none came."""
        return np.asarray(self.strips.get((patient, lead), ()), dtype=np.float32)

    def lead_end(self, patient: str, lead: int = 0) -> tuple[int, float | None]:
        """(the absolute sample index just after the last sample of ``patient``'s lead ``lead``, its sampling rate):
        (0, None) where none came."""
        return self.ends.get((patient, lead), 0), self.fs.get((patient, lead))


def braille(x: np.ndarray, width: int, rows: int) -> list[str]:
    """The trace drawn with braille dots: ``rows`` lines of ``width`` characters (2 x 4 dots each).

    Each dot column covers a slice of samples and is filled from the slice's lowest to its highest
    value, joined to its neighbour, so a QRS spike stays one connected stroke however much the time
    axis is compressed.  The vertical scale is the strip's own 1st-99.5th percentile range (slightly
    padded), as a monitor's auto-gain does.  Missing samples (NaN: a device's nulls, a recording's gap) draw
    nothing, and the stroke starts again after them (they crashed the console: a recording's gap, session 25).
    """
    if width <= 0 or rows <= 0:
        return []
    w, h = 2 * width, 4 * rows
    if len(x) < 2:
        return [" " * width] * rows
    v = np.asarray(x, dtype=np.float64)
    ok = v[np.isfinite(v)]
    if len(ok) < 2:
        return [" " * width] * rows
    lo, hi = np.percentile(ok, 1), np.percentile(ok, 99.5)
    pad = 0.08 * (hi - lo) if hi - lo > 1e-9 else 1.0
    lo, hi = lo - pad, hi + pad
    cols = np.array_split(v, w) if len(v) >= w else [v[int(i * len(v) / w): int(i * len(v) / w) + 1] for i in range(w)]
    grid = np.zeros((h, w), dtype=bool)
    prev_last: float | None = None
    for c, seg in enumerate(cols):
        seg = seg[np.isfinite(seg)]
        if not len(seg):
            prev_last = None  # a gap: nothing drawn, nothing joined across it
            continue
        a, b = float(seg.min()), float(seg.max())
        if prev_last is not None:  # join to the previous column
            a, b = min(a, prev_last), max(b, prev_last)
        prev_last = float(seg[-1])
        ya = int(np.clip((hi - b) / (hi - lo) * (h - 1), 0, h - 1))
        yb = int(np.clip((hi - a) / (hi - lo) * (h - 1), 0, h - 1))
        grid[ya:yb + 1, c] = True
    out = []
    for r in range(rows):
        line = []
        for cc in range(width):
            code = 0x2800
            for dr in range(4):
                for dc in range(2):
                    if grid[4 * r + dr, 2 * cc + dc]:
                        code |= BRAILLE[dr][dc]
            line.append(chr(code))
        out.append("".join(line))
    return out


def mark_row(t: Tile, width: int, seconds: float) -> Text:
    """One line under the trace: each judged beat in view at its place, coloured by its verdict."""
    row = Text(" " * width)
    n = min(len(t.strip), int(seconds * t.fs)) if t.fs else 0
    if n < 2:
        return row
    first = t.end - n
    for m in t.marks:
        if first <= m.index < t.end:
            col = int((m.index - first) / n * width)
            ch, style = MARK.get(m.verdict, ("?", "white"))
            row = row[:col] + Text(ch, style=style) + row[col + 1:]
    return row


def _alarm_text(a: Alarm | None, now: float) -> Text:
    if a is None:
        return Text("no alarm", style="green")
    style = STYLE[a.priority]
    if a.priority is Priority.HIGH and a.state is AlarmState.ACTIVE and int(now * 2) % 2:
        style = "bold red on white"  # flashing: alternate twice a second
    tag = "TECH " if a.kind is AlarmKind.TECHNICAL else ""
    ack = " (ack)" if a.state is AlarmState.ACKNOWLEDGED else ""  # before the condition: a narrow tile cuts its end
    return Text(f"{tag}{a.priority.name}{ack} {a.condition}", style=style, no_wrap=True, overflow="ellipsis")


def _verdict_line(t: Tile) -> Text:
    if t.remote:
        return Text(f"judged by {t.judged_by}: no open alarm" if t.judged_by else "no worker judges this bed",
                    style="dim" if t.judged_by else "bold red", no_wrap=True, overflow="ellipsis")
    if t.learning is not None:  # no verdicts yet; ventricular beats are typed already (the typer alone)
        v = t.per_min.get("V", 0) if t.per_min else 0
        return Text.assemble((f"LEARNING {t.learning:4.0%}", "bold blue"),
                             (f"  V {v}/min" if v else "", "bold yellow"), (f"  beats {t.beats}", "bold blue"),
                             no_wrap=True, overflow="ellipsis")
    if t.loss is None:
        return Text(f"loss --  beats {t.beats}", style="dim", no_wrap=True)
    over = t.loss > t.threshold
    m = t.per_min
    counts = (f"V {m.get('V', 0)} S {m.get('S', 0)} O {m.get('O', 0)}/min", "bold yellow" if m.get("V") else "dim") \
        if m else ("", "")
    return Text.assemble((f"loss {t.loss:.3f}/{t.threshold:.3f} {'ABN' if over else 'ok'}",
                          "bold magenta" if over else ""), ("  ", ""), counts,
                         (f"  beats {t.beats} abn {t.flagged}", "dim"), no_wrap=True, overflow="ellipsis")


def _trace(t: Tile, width: int, rows: int, seconds: float) -> list[Text]:
    n = int(seconds * t.fs) if t.fs else len(t.strip)
    x = t.strip[-n:] if n else t.strip
    return [Text(line, style="green") for line in braille(x, width, rows)]


def grid_layout(n: int, width: int, rows_avail: int) -> tuple[int, int]:
    """(columns, trace rows) for ``n`` tiles: the tallest trace (4 to 2 braille rows) and the fewest columns
    (tiles 24 to 80 characters wide) with which every bed fits; when none does, as many 2-row tiles as fit."""
    most = max(1, width // 24)
    for trace_rows in (4, 3, 2):
        fit_rows = rows_avail // (5 + trace_rows)
        if fit_rows < 1:
            continue
        for cols in range(max(1, -(-width // 80)), most + 1):
            if cols * fit_rows >= n:
                return cols, trace_rows
    return most, 2


def tile(t: Tile, width: int, now: float, *, key: str = "", trace_rows: int = 2) -> Panel:
    inner = max(10, width - 4)
    hr = f"{t.heart_rate:4.0f} bpm" if t.heart_rate else " --- bpm"
    hr += " (lead 2)" if t.heart_rate and t.hr_second_lead else ""
    head = Text.assemble((f"{key}{t.patient} ", "bold"), (hr, "bold green"), no_wrap=True, overflow="ellipsis")
    if t.simulated:
        head.append(" SIM", style="bold black on bright_white")
    if t.remote:
        head.append(f" @{t.judged_by}" if t.judged_by else " NO WORKER", style="dim" if t.judged_by else "bold red")
    elif t.learning is not None:
        head.append(f" LEARN {t.learning:.0%}", style="bold blue")
    elif t.loss is not None:
        # the last beat's verdict, not the bed's state (an alarm has the tile's last line)
        head.append(f" beat {'ABN' if t.loss > t.threshold else 'ok'}",
                    style="bold magenta" if t.loss > t.threshold else "")
    head.truncate(inner, overflow="ellipsis")
    border = BORDER[t.alarm.priority] if t.alarm else ("blue" if t.learning is not None else "green")
    last = _alarm_text(t.alarm, now) if t.alarm else _verdict_line(t)  # an alarm takes the verdict line
    lethal = [a for a in t.alarms if a.condition in LETHAL and a.state is not AlarmState.CLEARED]
    if lethal:  # a lethal rhythm takes the tile over: its name in capitals above the trace, a heavy red border
        a = max(lethal, key=alarm_rank)  # the most serious (the alarm line below names the same: AlarmBook.highest)
        banner = _alarm_text(a, now)
        banner.plain = f"!! {str(a.condition).upper()} !!"
        body = Group(head, banner, *_trace(t, inner, trace_rows, TILE_S), mark_row(t, inner, TILE_S), last)
        return Panel(body, border_style="bold red", box=HEAVY, padding=(0, 1), width=width)
    body = Group(head, *_trace(t, inner, trace_rows, TILE_S), mark_row(t, inner, TILE_S), last)
    return Panel(body, border_style=border, padding=(0, 1), width=width)


def loss_chart(t: Tile, width: int, rows: int) -> list[Text]:
    """The last beats' losses as bars against the threshold (the dashed line), newest on the right."""
    marks = [m for m in t.marks if m.verdict != "learning"][-width:]
    if not marks:
        msg = "learning: no verdicts yet" if t.learning is not None else "no verdicts yet"
        return [Text(msg, style="dim")] + [Text("")] * (rows - 1)
    thr = marks[-1].threshold
    top = max(max(m.loss for m in marks), 2 * thr, 1e-9)
    levels = rows * 8
    out = []
    thr_level = min(levels - 1, int(thr / top * levels))
    for r in range(rows - 1, -1, -1):
        line = Text()
        for m in marks:
            v = int(min(m.loss, top) / top * levels)
            cell = v - 8 * r
            style = "bold magenta" if m.verdict == "abnormal" else "green"
            if cell >= 8:
                line.append("█", style=style)
            elif cell > 0:
                line.append(BLOCKS[cell - 1], style=style)
            elif thr_level // 8 == r:
                line.append("╌", style="yellow")
            else:
                line.append(" ")
        out.append(line)
    return out


def focus_view(t: Tile, width: int, height: int, now: float) -> Panel:
    """One bed: a long trace with its beats, the last beats' losses against its threshold, its alarms."""
    inner = max(20, width - 4)
    trace_rows = max(3, min(10, (height - 16) // 2))
    hr = f"{t.heart_rate:4.0f} bpm" if t.heart_rate else "--- bpm"
    hr += (f" (from the second lead{', its trace below' if t.trace_second_lead else ''}: the first cannot be read)"
           if t.heart_rate and t.hr_second_lead else "")
    head = Text.assemble((f"{t.patient}  ", "bold"), (hr, "bold green"), "  ")
    if t.simulated:
        head.append("SIMULATED DEVICE, not a patient  ", style="bold black on bright_white")
    head.append_text(_alarm_text(t.alarm, now))
    thr = f"threshold {t.threshold:.4f}" + (" (the bed's own, learnt)" if t.learnt else "")
    body: list[RenderableType] = [head, *_trace(t, inner, trace_rows, FOCUS_S), mark_row(t, inner, FOCUS_S),
                                  Text(f"last {FOCUS_S:g} s   ▲ normal  ", style="dim").append("▲ abnormal", "magenta")
                                  .append("  · learning", "blue"), _verdict_line(t),
                                  Text(f"losses of the last beats against the threshold (╌); {thr}", style="dim"),
                                  *loss_chart(t, min(inner, 64), 4)]
    for a in sorted(t.alarms, key=alarm_rank, reverse=True):
        tag = "TECH " if a.kind is AlarmKind.TECHNICAL else ""
        ack = " (ack)" if a.state is AlarmState.ACKNOWLEDGED else ""
        body.append(Text(f"{tag}{a.priority.name} {a.condition}{ack}: {a.message}", style=STYLE[a.priority],
                         no_wrap=True, overflow="ellipsis"))
    border = BORDER[t.alarm.priority] if t.alarm else ("blue" if t.learning is not None else "green")
    return Panel(Group(*body), border_style=border, padding=(0, 1), width=width,
                 title=f"{t.patient}: one-bed view (0 or Esc: every bed)")


def shown_tiles(tiles: tuple[Tile, ...], room: int) -> list[Tile]:
    """The tiles the overview shows when only ``room`` fit: beds with an alarm on (HIGH before MEDIUM before LOW, the
    most serious first) take the places of beds without one, so that no alarming bed is hidden behind quiet ones;
    the tiles keep the ward's order on screen (a bed's place moves only when it must)."""
    if len(tiles) <= room:
        return list(tiles)
    def key(k: int) -> tuple[bool, tuple[int, bool, int], int]:
        a = tiles[k].alarm
        on = a is not None and a.state is not AlarmState.CLEARED
        return on, alarm_rank(a) if a is not None else (0, False, 0), -k

    ranked = sorted(range(len(tiles)), key=key, reverse=True)
    keep = set(ranked[:room])
    return [t for k, t in enumerate(tiles) if k in keep]


def render(s: Snapshot, *, width: int = 120, height: int = 40, now: float | None = None) -> RenderableType:
    """The whole screen for a terminal of ``width`` x ``height`` characters."""
    now = time.time() if now is None else now
    banner_style = "bold black on bright_white" if s.replay else "bold white on blue"
    # the source's state ("[playing]", "[finished]", ...) is in its label: the snapshot's maker puts it there
    # a replay or recording: where in it the signal has come to (the alarm log's "+h:mm:ss" are places in it, and at
    # full speed it runs far ahead of the wall clock: a newcomer saw "55 s" above alarms at +0:03:28, session 30)
    played = max((t.end / t.fs for t in s.tiles if t.fs > 0 and not t.remote), default=0.0) if s.replay else 0.0
    # (the place in the recording, not how much was played: a replay from --start 380 is at +0:06:20 at once)
    clock = (f"at {_hms(played)} of the recording, running {s.elapsed_s:.0f} s" if played > 0
             else f"running {s.elapsed_s:.0f} s")
    label, room = s.source_label, width - len(f" ecgmon  |    |  {clock} ")
    if len(label) > room > 20:  # cut from the middle: "RECORDING"/"REPLAY" and its state ("[playing]") stay in view
        tail = room // 2
        label = label[:room - tail - 1] + "…" + label[-tail:]
    header = Text(f" ecgmon  |  {label}  |  {clock} ", style=banner_style)
    if s.monitor_alarm is not None:
        header.append("  ")
        header.append_text(_alarm_text(s.monitor_alarm, now))
    log_rows = 4 if height <= 30 else 8
    focused = next((t for t in s.tiles if t.patient == s.focus), None)
    main: RenderableType
    if focused is not None:
        main = focus_view(focused, width, height - log_rows - 5, now)
        hidden = len(s.tiles) - 1
        shown = [focused]
    else:
        cols, trace_rows = grid_layout(len(s.tiles), width, height - 3 - log_rows - 3)
        tile_w = width // cols
        rows_fit = max(1, (height - 3 - log_rows - 3) // (5 + trace_rows))
        shown = shown_tiles(s.tiles, cols * rows_fit)
        number = {t.patient: k for k, t in enumerate(s.tiles, 1)}  # the keys 1-9 (KeyState: the ward's order)
        grid = Table.grid(padding=0)
        for _ in range(cols):
            grid.add_column(width=tile_w)
        for i in range(0, len(shown), cols):
            grid.add_row(*[tile(t, tile_w, now, key=f"{number[t.patient]}:" if number[t.patient] <= 9 else "",
                                trace_rows=trace_rows) for t in shown[i:i + cols]])
        main = grid
        hidden = len(s.tiles) - len(shown)
    # beds not on the screen with an audible alarm on: the footer names them (red), highest first
    on_screen = {t.patient for t in shown}
    unseen = sorted((t for t in s.tiles if t.patient not in on_screen and t.alarm is not None
                     and t.alarm.priority >= Priority.MEDIUM and t.alarm.state is not AlarmState.CLEARED),
                    key=lambda t: alarm_rank(t.alarm), reverse=True)  # type: ignore[arg-type]
    log = Table.grid(padding=(0, 1))
    log.add_column(no_wrap=True, min_width=8)
    # the bed keeps its room on any terminal (16 characters at most) and the message gives way, cut short: a column
    # of no_wrap text is one rich cannot shrink, so it shrank the others (the bed's went to nothing under 120
    # characters, and a HIGH alarm's row named no bed: a newcomer, session 57)
    log.add_column(no_wrap=True, overflow="ellipsis", max_width=16,
                   min_width=min(16, max((len(a.patient) for a in s.alarm_log), default=5)))
    log.add_column(overflow="ellipsis")
    # newest first by when each happened: in a recording its place in it (a couplet decided after the VT it led
    # into is listed below it), live the wall clock
    rows = sorted(list(s.alarm_log)[-log_rows:],
                  key=lambda a: a.record_s if s.replay and a.record_s is not None else a.time)
    for a in rows[::-1]:
        log.add_row(_stamp(a, s.replay), Text(f"{a.patient}", style="bold", no_wrap=True, overflow="ellipsis"),
                    Text(alarm_line(a), style=STYLE[a.priority] if a.state is not AlarmState.CLEARED else "dim",
                         no_wrap=True, overflow="ellipsis"))
    if not s.alarm_log:
        log.add_row("", "", Text("no alarms yet", style="dim"))
    lat = (f"p50 {s.latency_p50_ms:.0f} ms p99 {s.latency_p99_ms:.0f} ms" if s.latency_p99_ms is not None
           else "p50 -- p99 --")
    truth = ""
    if s.sensitivity is not None or s.specificity is not None:
        se = f"{s.sensitivity:.3f}" if s.sensitivity is not None else "--"
        sp = f"{s.specificity:.3f}" if s.specificity is not None else "--"
        truth = f" | sens {se} spec {sp}" + (" (vs reference labels)" if width >= 120 else "")
    more = f"+{hidden} beds not shown (n/p) | " if hidden > 0 and focused is None else ""
    if unseen:  # how many first (a narrow footer cuts the list), then each, highest first
        names = ", ".join(f"{t.patient} {t.alarm.priority.name} {t.alarm.condition}" for t in unseen)  # type: ignore[union-attr]
        more = (f"alarms on {len(unseen)} other bed(s): {names} | " if focused is not None
                else f"+{hidden} beds not shown, {len(unseen)} with alarms (n/p): {names} | ")
    if width >= 120:
        text = (f"{more}{s.beats_per_s:6.1f} beats/s | latency {lat} | queue {s.queue_depth} (max {s.queue_max}) | "
                f"shed {s.shed} beats/{s.shed_messages} msgs | {s.device} | {s.model}{truth}")
    else:  # two lines at most on a small terminal: the keys, then the figures
        p99 = f"{s.latency_p99_ms:.0f} ms" if s.latency_p99_ms is not None else "--"
        text = (f"{more}1-9/n/p bed  0 all  a ack  r relearn  qq quit\n{s.beats_per_s:.1f} beats/s | p99 {p99} | "
                f"queue {s.queue_depth} | shed {s.shed}/{s.shed_messages} | {s.model.split()[0]}{truth}")
    footer = Text(text, style="bold red" if unseen else "yellow" if s.shed or s.shed_messages else "dim",
                  no_wrap=True, overflow="ellipsis")
    if s.notice:
        footer = Text(s.notice + "  ", style="bold", no_wrap=True, overflow="ellipsis") + footer
    header.no_wrap, header.overflow = True, "ellipsis"
    header.truncate(width, overflow="ellipsis")
    title = "alarm log (time into the recording)" if s.replay else "alarm log"
    # the keys on the alarm log's lower border (wide terminals): a long figures line can no longer cut them off
    keys = ("1-9, n/p: one bed  0: every bed  a: acknowledge (the bed shown, or every bed)  r: relearn (one-bed view)  "
            "q twice: quit" if width >= 120 else None)
    return Group(header, main, Panel(log, title=title, subtitle=keys, subtitle_align="right", border_style="white",
                                     padding=(0, 1)), footer)


def alarm_line(a: Alarm) -> str:
    """An alarm log row's text: ``"active: HIGH ventricular tachycardia - 5 or more ... (second lead)"``; a cleared
    alarm says why it ended where the monitor said (``"cleared: HIGH ventricular tachycardia (second lead) - ended:
    QRS again (3 in a row)"``: the lead it was raised from kept beside its name), else repeats its raise message."""
    tag = "TECH " if a.kind is AlarmKind.TECHNICAL else ""
    head = f"{a.state}: {tag}{a.priority.name} {a.condition}"
    if a.state is AlarmState.CLEARED and a.reason:
        lead = " (second lead)" if a.message.endswith("(second lead)") else ""
        return f"{head}{lead} - ended: {a.reason}"
    return f"{head} - {a.message}"


def _stamp(a: Alarm, replay: bool) -> str:
    """When an alarm happened as the log shows it: wall-clock time live; for a replay or recording its place in
    the recording (``+h:mm:ss``; a recording played at full speed has no meaningful wall-clock time)."""
    if replay and a.record_s is not None:
        return _hms(a.record_s)
    return time.strftime("%H:%M:%S", time.localtime(a.time))


def _hms(seconds: float) -> str:
    """A place in a recording: ``+h:mm:ss``."""
    m, sec = divmod(int(seconds), 60)
    return f"+{m // 60}:{m % 60:02d}:{sec:02d}"

"""The watchdog of a live monitor: signal loss per bed, and the monitor's own lateness.

Synchronous: ``check(now, ...)`` returns the alarm transitions; the driver calls it about once a
second.  Only sources that cannot be paused (live devices) need it: a replay or a recording waits
for the monitor instead of falling behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ecgmon.core.messages import Alarm, Condition
from ecgmon.monitor.alarms import AlarmBook, TechnicalAlarms


@dataclass(frozen=True, slots=True)
class WatchdogConfig:
    """Seconds, and shares of a queue's capacity."""

    period_s: float = 1.0
    loss_after_s: float = 3.0  # no samples from a bed for this long: signal loss
    calm_s: float = 3.0  # 'monitor behind' and 'monitor overload' clear after this long without cause
    late_s: float = 1.0  # input or verdicts this much later than usual: the monitor is behind
    input_backlog: float = 0.1  # of the source's incoming queue
    beat_backlog: float = 0.5  # of the beat queue


@dataclass(frozen=True, slots=True)
class Load:
    """What the watchdog reads at one instant."""

    input_lag_s: float  # the largest input lag since the previous check
    input_waiting: int
    input_capacity: int
    beats_waiting: int
    beats_capacity: int
    last_latency_s: float  # the last verdict's beat-closed -> verdict time
    last_shed_mono: float  # when data was last shed (0: never)


class Watchdog:
    """Raises and clears ``monitor behind`` and ``monitor overload`` on the monitor's own book, and
    ``signal loss`` on a bed whose samples stopped."""

    def __init__(self, book: AlarmBook, cfg: WatchdogConfig = WatchdogConfig(), *, now: float = 0.0) -> None:
        self.book, self.tech, self.cfg = book, TechnicalAlarms(book), cfg
        self.calm_since = now

    def check(self, now: float, load: Load, beds: Iterable[tuple[float, TechnicalAlarms, float]]) -> list[Alarm]:
        """``beds``: (monotonic time of the bed's last chunk, its technical alarms, that chunk's length in s) for
        every bed.  Signal loss is ``loss_after_s`` without samples, or, for a device whose packets are longer, its
        packet's length and half that (a device sending 5 s packets is silent for 5 s between them by design)."""
        c, out = self.cfg, []
        behind = (load.input_lag_s > c.late_s or load.input_waiting > c.input_backlog * load.input_capacity
                  or load.beats_waiting > c.beat_backlog * load.beats_capacity or load.last_latency_s > c.late_s)
        if behind:
            self.calm_since = now
            out += self.tech.raise_(
                Condition.MONITOR_BEHIND,
                f"input {load.input_lag_s:.1f} s late, {load.input_waiting} device messages and {load.beats_waiting} "
                f"beats waiting, last verdict {load.last_latency_s:.1f} s after its beat closed")
        elif now - self.calm_since > c.calm_s:
            out += self.tech.clear(Condition.MONITOR_BEHIND)
        if now - load.last_shed_mono > c.calm_s:
            out += self.tech.clear(Condition.MONITOR_OVERLOAD)
        for last_chunk, tech, chunk_s in beds:
            after = max(c.loss_after_s, chunk_s + c.loss_after_s / 2)
            if last_chunk and now - last_chunk > after:
                out += tech.raise_(Condition.SIGNAL_LOSS, f"no samples for {after:g} s")
        return out

"""Heart rate as a monitor shows it: every QRS counted once, the mean of the last ``beats`` RR intervals.

ANSI/AAMI EC13 (section 4.1.2.1) asks a cardiac monitor to count each QRS once and to disclose how
it averages.  Here: the rate is ``60 / mean(last 12 RR intervals)`` in bpm (the mean, not the median,
so repeating patterns of short and long intervals give the true rate: 12 is a multiple of 2 and 3, so
every window holds whole cycles of bigeminy (EC13 figures 3a-3c) and of the three-beat pattern of
EC13 figure 3d).  The first rate is shown from the second QRS on, over the intervals there are.
Response time: a step in rate is fully shown 12 beats after it (6 s at 120 bpm, 9 s at 80 bpm), half
of it after 6 beats.

Intervals are not filtered (an ectopic beat's short interval counts, as in EC13's bigeminy); an
interval longer than ``max_rr_s`` (a detection gap or signal loss) empties the window, so a rate is
never averaged across a gap; an interval across a short bridged stretch of lost samples
(:meth:`HeartRate.bridge`) that is over 1.5 times the mean (a QRS was lost in it) is left out, the window
keeping the intervals before it.  While no QRS comes, :meth:`HeartRate.at` lets the open interval pull the
rate down once it is longer than the mean (a pause or asystole shows as a falling rate, then ``None`` after
``max_rr_s``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["HeartRate", "HeartRateConfig"]


@dataclass(frozen=True, slots=True)
class HeartRateConfig:
    beats: int = 12  # RR intervals averaged
    max_rr_s: float = 6.0  # a longer interval is a gap (10 bpm): the average starts again after it


class HeartRate:
    """``add(index)`` for every QRS (absolute sample index, increasing) -> the rate in bpm or None."""

    def __init__(self, fs: float, cfg: HeartRateConfig = HeartRateConfig()) -> None:
        self.fs, self.cfg = fs, cfg
        self.rr: deque[float] = deque(maxlen=cfg.beats)  # samples
        self.last: float | None = None
        self.bridges: list[tuple[int, int]] = []  # bridged stretches [start, stop) not yet behind the last QRS

    def bridge(self, start: int, stop: int) -> None:
        """Samples ``[start, stop)`` were lost and bridged (filled in by the caller): an interval across them that
        is over 1.5 times the mean RR (it held a QRS the gap hid) does not count."""
        self.bridges.append((start, stop))

    def add(self, index: float) -> float | None:
        if self.last is not None:
            rr = index - self.last
            last = self.last
            # across a bridge and long enough to hold a QRS the gap hid (over 1.5 mean RR): left out.  Not every
            # interval across one: a longer interval holds a gap more often, and leaving those out would bias the
            # rate up (a bigeminy's long cycles: +13 bpm on MIT-BIH 119 with 1 packet in 10 lost)
            hid = (bool(self.rr) and rr > 1.5 * sum(self.rr) / len(self.rr)
                   and any(last < b1 and index > b0 for b0, b1 in self.bridges))
            if rr > self.cfg.max_rr_s * self.fs:
                self.rr.clear()
            elif rr > 0 and not hid:
                self.rr.append(rr)
        if self.bridges:
            self.bridges = [b for b in self.bridges if b[1] > index]
        self.last = index
        return self.bpm

    @property
    def bpm(self) -> float | None:
        """The rate at the last QRS."""
        return 60.0 * self.fs * len(self.rr) / sum(self.rr) if self.rr else None

    def at(self, index: float) -> float | None:
        """The rate shown at sample ``index`` (at or after the last QRS): the open interval since the last
        QRS replaces the oldest interval once it is longer than the mean; None after ``max_rr_s``."""
        if self.last is None or not self.rr:
            return None
        open_rr = index - self.last
        if open_rr > self.cfg.max_rr_s * self.fs:
            return None
        mean = sum(self.rr) / len(self.rr)
        if open_rr <= mean:
            return self.bpm
        rr = [*list(self.rr)[1:], open_rr] if len(self.rr) == self.rr.maxlen else [*self.rr, open_rr]
        return 60.0 * self.fs * len(rr) / sum(rr)

    def reset(self) -> None:
        self.rr.clear()
        self.last = None
        self.bridges = []

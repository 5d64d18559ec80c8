"""Per-device stream repair: order by ``seq``, drop duplicates, detect gaps, rate changes and reboots.

Synchronous and I/O-free, so it is tested without a broker.  A device's chunks are
released in ``seq`` order; a chunk that arrives early waits in a small reorder window
(``reorder`` chunks).  When the window overflows, the missing chunks are declared lost:
the next chunk is released with ``reset=True`` so the monitor restarts that patient's
segmenter and raises a signal-loss alarm.  A change of ``fs`` is also a reset.

Neither the counter nor the clock is trusted alone.  A packet whose ``seq`` was already seen (or is
behind) is a duplicate or a late packet only when its ``t0`` is the one this stream gave (or would
give) that ``seq``; otherwise the device has rebooted (its counter restarted, its clock going on, or
both restarted): the packet starts a new stream for the bed at once (``reboot`` counted, the held
packets released first, ``reset=True``), its sample index following the clock across the real gap
(or, when the clock restarted too, continuing from the last sample).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ecgmon.core.messages import Chunk
from ecgmon.core.payload import Packet


@dataclass(slots=True)
class DeviceStream:
    """Ordering state of one device."""

    device: str
    reorder: int = 8
    expected: int | None = None  # next seq to release
    fs: float | None = None
    t0_first: float | None = None
    next_start: int = 0  # sample index where the next released chunk should start
    held: dict[int, Packet] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    recent: dict[int, float] = field(default_factory=dict)  # t0 of the last RECENT released seqs
    last: tuple[int, float, float] | None = None  # the last released packet: seq, t0, duration (s)

    RECENT = 256

    def push(self, p: Packet) -> list[Chunk]:
        """Accept one packet; return the chunks now releasable, in order."""
        if self.expected is not None and (p.seq < self.expected or p.seq in self.held):
            if self._seen_before(p):
                self.counts["duplicate"] += 1
                return []
            return self._reboot(p)
        if self.expected is None:
            self.expected = p.seq
        if p.seq == self.expected and not self.held:  # the common case: in order, nothing waiting
            self.expected += 1
            return [self._release(p, reset=False)]
        if p.seq > self.expected:
            self.counts["out_of_order"] += 1
        self.held[p.seq] = p
        out: list[Chunk] = []
        while True:
            if self.expected in self.held:
                out.append(self._release(self.held.pop(self.expected), reset=False))
                self.expected += 1
            elif len(self.held) > self.reorder:
                nxt = min(self.held)
                self.counts["gap"] += 1
                self.counts["lost_chunks"] += nxt - self.expected
                self.expected = nxt
                out.append(self._release(self.held.pop(nxt), reset=True))
                self.expected += 1
            else:
                break
        return out

    def _seen_before(self, p: Packet) -> bool:
        """Whether ``p`` (a ``seq`` already released, held or behind) fits this stream's seq-to-time relation:
        the same ``t0`` as the packet of that ``seq`` (within half a chunk), or, older than the ones kept,
        the ``t0`` the stream's pace gives it."""
        dur = len(p.samples) / p.fs
        if p.seq in self.held:
            return abs(p.t0 - self.held[p.seq].t0) <= 0.5 * dur
        if p.seq in self.recent:
            return abs(p.t0 - self.recent[p.seq]) <= 0.5 * dur
        if self.last is None:
            return True
        seq, t0, last_dur = self.last
        behind = (seq - p.seq) * last_dur
        return abs(p.t0 - (t0 - behind)) <= 0.5 * dur + 0.1 * behind

    def _reboot(self, p: Packet) -> list[Chunk]:
        """``p`` starts a new stream (the device rebooted): what was held goes first, then ``p`` with a reset."""
        out: list[Chunk] = []
        assert self.expected is not None
        for seq in sorted(self.held):
            out.append(self._release(self.held.pop(seq), reset=seq != self.expected))
            self.expected = seq + 1
        self.counts["reboot"] += 1
        if self.fs is not None and self.t0_first is not None and self.last is not None \
                and p.t0 < self.last[1] + self.last[2] - 0.5 * len(p.samples) / p.fs:
            # the clock restarted too: samples continue from the last one, and the clock is rebased on it
            self.t0_first = p.t0 - self.next_start / p.fs
        self.recent.clear()
        self.expected = p.seq + 1
        out.append(self._release(p, reset=True))
        return out

    def _release(self, p: Packet, *, reset: bool) -> Chunk:
        if self.fs is not None and p.fs != self.fs:
            self.counts["fs_change"] += 1
            reset = True
        if self.t0_first is None or reset or self.last is None:
            # a new stream segment (or the first packet of a stream whose origin ``t0_first`` was given, as after a
            # takeover): sample indices continue from the packet's time
            if self.t0_first is None:
                self.t0_first = p.t0
            self.fs = p.fs
            start = max(self.next_start, round((p.t0 - self.t0_first) * p.fs))
        else:
            start = self.next_start
        self.next_start = start + len(p.samples)
        self.counts["chunks"] += 1
        self.recent[p.seq] = p.t0
        if len(self.recent) > self.RECENT:
            del self.recent[next(iter(self.recent))]
        self.last = (p.seq, p.t0, len(p.samples) / p.fs)
        return Chunk(self.device, p.fs, p.t0, p.samples, start=start, reset=reset, simulated=p.simulated)

"""Per-device stream repair: order by ``seq``, drop duplicates, detect gaps and rate changes.

Synchronous and I/O-free, so it is tested without a broker.  A device's chunks are
released in ``seq`` order; a chunk that arrives early waits in a small reorder window
(``reorder`` chunks).  When the window overflows, the missing chunks are declared lost:
the next chunk is released with ``reset=True`` so the monitor restarts that patient's
segmenter and raises a signal-loss alarm.  A change of ``fs`` is also a reset.
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

    def push(self, p: Packet) -> list[Chunk]:
        """Accept one packet; return the chunks now releasable, in order."""
        if self.expected is not None and (p.seq < self.expected or p.seq in self.held):
            self.counts["duplicate"] += 1
            return []
        if self.expected is None:
            self.expected = p.seq
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

    def _release(self, p: Packet, *, reset: bool) -> Chunk:
        if self.fs is not None and p.fs != self.fs:
            self.counts["fs_change"] += 1
            reset = True
        if self.t0_first is None or reset:
            # a new stream segment: sample indices continue from the packet's time
            if self.t0_first is None:
                self.t0_first = p.t0
            self.fs = p.fs
            start = max(self.next_start, round((p.t0 - self.t0_first) * p.fs))
        else:
            start = self.next_start
        self.next_start = start + len(p.samples)
        self.counts["chunks"] += 1
        return Chunk(self.device, p.fs, p.t0, p.samples, start=start, reset=reset)

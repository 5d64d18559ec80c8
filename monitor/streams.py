"""Per-device stream repair: order by ``seq``, drop duplicates, detect gaps, rate changes and reboots.

Synchronous and I/O-free, so it is tested without a broker.  A device's chunks are
released in ``seq`` order; a chunk that arrives early waits in a small reorder window
(``reorder`` chunks).  When the window overflows, the missing chunks are declared lost:
the next chunk is released with ``reset=True`` and ``missing`` (the samples lost, by the clock); the
monitor bridges a short run of them (``PipelineConfig.bridge_s``) and otherwise restarts that patient's
segmenter and raises a signal-loss alarm.  A change of ``fs`` is also a reset; a stated rate within ``FS_SAME``
(0.5 %) of the stream's is the same rate (a device that states its measured rate, 250.001 or 249.96 Hz, is no
new stream at every packet: ``fs_wobble`` counted), and the stream keeps its own.

Neither the counter nor the clock is trusted alone.  A packet whose ``seq`` was already seen (or is
behind) is a duplicate or a late packet only when its ``t0`` is the one this stream gave (or would
give) that ``seq`` and, where the stream still knows that ``seq``'s packet (the last ``RECENT`` released
and those held), its samples are the same (a duplicate is the same payload delivered again); otherwise
the device has rebooted (its counter restarted, its clock going on, or both restarted: a device that
stamps its packets with its own uptime gives its first packets the same ``seq`` and ``t0`` after every
reboot): the packet starts a new stream for the bed at once (``reboot`` counted, the held packets
released first, ``reset=True``), its sample index following the clock across the real gap (or, when the
clock restarted too, continuing from the last sample).

Sample indices count from the device's own counter: the first packet the monitor receives starts at ``seq``
times its sample count (a monitor that joins late or restarts numbers a device's samples as one that saw it
start), then on by the samples released and, after a reset, by the clock.

A counter of 8, 16 or 32 bits wraps round to 0: a ``seq`` that is just past the next one expected
modulo such a width, at the time the stream's pace gives it, is the stream going on (``wrap`` counted),
not a reboot.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from ecgmon.core.messages import Chunk
from ecgmon.core.payload import Packet

FS_SAME = 0.005  # stated sampling rates within this share of each other are one rate


def same_rate(a: float, b: float) -> bool:
    """Whether two stated sampling rates (Hz) are one rate: within ``FS_SAME`` (0.5 %) of each other.  Devices
    that state their measured rate send 250.001 or 249.96 Hz for a 250 Hz stream (a crystal's error is about
    0.01 %); nominal rates that differ (125, 128, 200, 250, 256, 360, 500 Hz) differ by 2 % or more."""
    return abs(a - b) <= FS_SAME * max(a, b)


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
    # t0 and a digest of the samples of the last RECENT released seqs
    recent: dict[int, tuple[float, int]] = field(default_factory=dict)
    last: tuple[int, float, float] | None = None  # the last released packet: seq, t0, duration (s)
    base: int = 0  # added to every packet's seq: the wraps of the device's counter so far
    width: int = 0  # the counter's modulus once it has wrapped (0: not yet)
    first_seq: int = 0  # the first seq released since the stream (re)started
    # a missing chunk is declared lost once ``reorder`` later ones are held or, with ``reorder_s`` and the arrival
    # times given to push, once the first of them has waited this long (s): on a lossy link a bed's analysis (its
    # alarms with it) would otherwise run ``reorder`` packets late after every lost packet (2 s at 4 packets/s)
    reorder_s: float | None = None
    held_since: float | None = None  # arrival time of the oldest packet held behind the current gap
    # the lead names of the last released packet (() for a one-lead payload, whose lead has no name), and whether
    # the stream has carried a second lead: a packet without it then makes that lead's signal loss, not silence
    leads: tuple[str, ...] | None = None
    had_second: bool = False
    stream: int = 0  # the device's stream generation (Chunk.stream: one more after each discharge of its bed)

    RECENT = 256
    # the next packet's t0 this far from where its stream's pace puts it (s), beyond half the packet's length (its
    # stamp's jitter): a clock step (counted; the device's delay floor starts again).  Under the fair share's 0.5 s
    # of lateness: at 1 s, a 0.8 s correction of every device's clock left them all 0.8 s "late" for good, the
    # monitor behind and a recording refused (a newcomer, session 39)
    CLOCK_STEP_S = 0.4
    MAX_FIRST = 2**40  # a first packet's seq x samples beyond this (not a device's sample count) numbers from 0
    WIDTHS = (2**8, 2**16, 2**32, 2**64)  # counter widths whose wrap round is recognised (uint64: the contract's)

    def push(self, p: Packet, now: float | None = None) -> list[Chunk]:
        """Accept one packet (arrived at ``now``, s, for ``reorder_s``); return the chunks now releasable, in
        order."""
        if self.fs is not None and p.fs != self.fs and same_rate(p.fs, self.fs):
            self.counts["fs_wobble"] += 1
            p = replace(p, fs=self.fs)  # the stream's rate, stated a little differently
        seq = p.seq + self.base
        if self.width and seq > (self.expected or 0) + self.width // 2:
            seq -= self.width  # a late packet from before the last wrap
        if self.expected is not None and seq < self.expected:
            for w in self.WIDTHS:  # the counter wrapped round: the stream goes on
                if 0 <= seq + w - self.expected <= self.reorder and self._on_pace(seq + w, p):
                    self.base, self.width = self.base + w, w
                    seq += w
                    self.counts["wrap"] += 1
                    break
        if seq != p.seq:
            p = replace(p, seq=seq)
        if self.expected is not None and (p.seq < self.expected or p.seq in self.held):
            if self._seen_before(p):
                # older than the stream's first packet (the packets of a stream's start arriving out of order): late,
                # dropped (its samples come before the first released), never seen before: not a duplicate
                self.counts["late" if p.seq < self.first_seq else "duplicate"] += 1
                return []
            return self._reboot(p)
        if self.expected is None:
            self.expected = self.first_seq = p.seq
        if p.seq == self.expected and not self.held:  # the common case: in order, nothing waiting
            self.expected += 1
            if self.last is not None and abs(p.t0 - self._paced_t0(p.seq)) > self.CLOCK_STEP_S + 0.5 * self.last[2]:
                self.counts["clock_step"] += 1  # the next packet, its clock stepped (set by hand, NTP, a bad RTC)
            return self._release(p, reset=False)
        if p.seq > self.expected and not self.held and self._on_pace(self.expected, p):
            # the counter jumped ahead with the clock going on: the next packet, nothing lost (re-based, counted)
            self.base -= p.seq - self.expected
            self.counts["seq_jump"] += 1
            p = replace(p, seq=self.expected)
            self.expected += 1
            return self._release(p, reset=False)
        if self.held and p.seq < max(self.held):
            self.counts["out_of_order"] += 1  # it came after a later one (a lost packet is no reordering)
        if not self.held:
            self.held_since = now
        self.held[p.seq] = p
        out: list[Chunk] = []
        while True:
            waited = (self.reorder_s is not None and now is not None and self.held_since is not None
                      and now - self.held_since >= self.reorder_s)
            if self.expected in self.held:
                out += self._release(self.held.pop(self.expected), reset=False)
                self.expected += 1
            elif len(self.held) > self.reorder or (waited and self.held):
                nxt = min(self.held)
                self.counts["gap"] += 1
                self.counts["lost_chunks"] += self._lost(nxt)
                self.expected = nxt
                out += self._release(self.held.pop(nxt), reset=True, lost=True)
                self.expected += 1
            else:
                break
        if not self.held:
            self.held_since = None
        return out

    def _lost(self, nxt: int) -> int:
        """Packets missing before ``nxt`` (held) where ``expected`` was due: by the clock where the stream's pace
        knows it (a counter that jumps ahead with its clock going on has lost nothing; its seq difference would
        count thousands), else by the seq difference."""
        assert self.expected is not None
        p = self.held[nxt]
        if self.last is None:
            return nxt - self.expected
        missing = (p.t0 - (self.last[1] + self.last[2])) / self.last[2]
        return max(0, min(nxt - self.expected, round(missing)))

    def _seen_before(self, p: Packet) -> bool:
        """Whether ``p`` (a ``seq`` already released, held or behind) fits this stream's seq-to-time relation:
        the same ``t0`` as the packet of that ``seq`` (within half a chunk), or, older than the ones kept,
        the ``t0`` the stream's pace gives it."""
        dur = len(p.samples) / p.fs
        if p.seq in self.held:
            old = self.held[p.seq]
            return abs(p.t0 - old.t0) <= 0.5 * dur and np.array_equal(p.samples, old.samples)
        if p.seq in self.recent:
            t0, dig = self.recent[p.seq]
            return abs(p.t0 - t0) <= 0.5 * dur and digest(p) == dig
        if self.last is None:
            return True
        behind = (self.last[0] - p.seq) * self.last[2]
        return abs(p.t0 - self._paced_t0(p.seq)) <= 0.5 * dur + 0.1 * behind

    def _paced_t0(self, seq: int) -> float:
        """The ``t0`` the stream's pace gives ``seq``, counted from the last released packet (there must be one)."""
        assert self.last is not None
        last_seq, t0, last_dur = self.last
        return t0 + (seq - last_seq) * last_dur

    def _on_pace(self, seq: int, p: Packet) -> bool:
        """Whether ``p`` starts at the time the stream's pace gives ``seq`` (within half a chunk)."""
        return self.last is not None and abs(p.t0 - self._paced_t0(seq)) <= 0.5 * len(p.samples) / p.fs

    def _reboot(self, p: Packet) -> list[Chunk]:
        """``p`` starts a new stream (the device rebooted): what was held goes first, then ``p`` with a reset."""
        out: list[Chunk] = []
        assert self.expected is not None
        for seq in sorted(self.held):
            out += self._release(self.held.pop(seq), reset=seq != self.expected)
            self.expected = seq + 1
        self.counts["reboot"] += 1
        if self.fs is not None and self.t0_first is not None and self.last is not None \
                and p.t0 < self.last[1] + self.last[2] - 0.5 * len(p.samples) / p.fs:
            # the clock restarted too: samples continue from the last one, and the clock is rebased on it
            self.t0_first = p.t0 - self.next_start / p.fs
        self.recent.clear()
        self.held_since = None
        self.expected = p.seq + 1
        self.first_seq = p.seq
        out += self._release(p, reset=True)
        return out

    def _release(self, p: Packet, *, reset: bool, lost: bool = False) -> list[Chunk]:
        """``p`` as the stream's next chunk, and its second lead's (``lead=1``, the same samples' indices, reset and
        missing) when the packet has one; ``lost``: packets before it were declared lost (the chunk says how many
        samples are missing, by the clock, unless the rate changed too).  A lead's NaN samples (a two-lead packet's
        lost samples of that lead) stay in its chunk: the bed's segmenter makes them that lead's signal loss."""
        if self.fs is not None and p.fs != self.fs:
            self.counts["fs_change"] += 1
            reset, lost = True, False
        second_reset = False
        if self.leads is not None and p.leads != self.leads:
            # another lead set (a lead unplugged, the device's lead selection changed): counted; a primary lead of
            # another name is another signal (the detector starts again), as is a second lead of another name
            self.counts["lead_change"] += 1
            old, new = self.leads, p.leads
            if old and new and old[0] != new[0]:
                reset, lost = True, False
            second_reset = len(old) > 1 and len(new) > 1 and old[1] != new[1]
        self.leads = p.leads
        was = self.next_start if lost and self.last is not None else None  # where the lost samples began
        if self.t0_first is None or reset or self.last is None:
            # a new stream segment (or the first packet of a stream whose origin ``t0_first`` was given, as after a
            # takeover): sample indices continue from the packet's time
            if self.t0_first is None:
                # the first packet this monitor sees of the device: its samples are numbered from the device's own
                # counter (seq x samples per packet: the device's sample index when its packets are of one length
                # from seq 0), so that a monitor joining a running device late, or started again, gives the same
                # sample the same index (beat and alarm lines, journals and reviews place it on the device's strip)
                first = p.seq * len(p.samples)
                self.t0_first = p.t0 - (first if first < self.MAX_FIRST else 0) / p.fs
            self.fs = p.fs
            start = max(self.next_start, round((p.t0 - self.t0_first) * p.fs))
        else:
            start = self.next_start
        self.next_start = start + len(p.samples)
        self.counts["chunks"] += 1
        self.recent[p.seq] = (p.t0, digest(p))
        if len(self.recent) > self.RECENT:
            del self.recent[next(iter(self.recent))]
        self.last = (p.seq, p.t0, len(p.samples) / p.fs)
        c = Chunk(self.device, p.fs, p.t0, p.samples, start=start, reset=reset, simulated=p.simulated,
                  missing=0 if was is None else start - was, stream=self.stream)
        if p.second is None:
            if not self.had_second:
                return [c]
            # the device sent a second lead before and none now: that lead's samples are lost (its watch cannot be
            # read, and leaves the bed's alarms to the first lead) rather than its last verdicts standing
            return [c, replace(c, samples=np.full(len(p.samples), np.nan, np.float32), lead=1)]
        self.had_second = True
        # a second lead of another name is another signal: never bridged to the old one's, lost packets or not
        return [c, replace(c, samples=p.second, lead=1, reset=reset or second_reset,
                           missing=0 if second_reset else c.missing)]


def digest(p: Packet) -> int:
    """A digest of a packet's samples (a duplicate delivery carries the same bytes)."""
    return hash(p.samples.tobytes())

"""MQTT ingress: one message (topic, payload) -> chunks, synchronously and without I/O.

Routing (samples, labels and control topics, shards), payload decoding, per-device stream repair
(:class:`~ecgmon.monitor.streams.DeviceStream`), ground-truth labels from a side topic, and the input
lag per device.  It never raises on bad input: a rejected message is counted per device and reason
and reported to the listener.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ecgmon.core.messages import Chunk, TrueBeat, is_abnormal
from ecgmon.core.payload import MAX_PAYLOAD, Packet, PayloadError, decode, decode_many, device_from_topic, t0_problem
from ecgmon.models.data import CLASS_NAMES
from ecgmon.monitor.sources import InputListener
from ecgmon.monitor.streams import DeviceStream, digest, same_rate

CONTROL_COMMANDS = frozenset({"relearn", "limits", "discharge"})
# the arguments each command takes; limits needs one at least (a command that would change nothing is refused, not
# counted as carried out: {"cmd": "limits", "lo": 45}, a typo, was, a fuzzer's, session 38)
CONTROL_ARGS = {"relearn": frozenset(), "limits": frozenset({"low", "high"}), "discharge": frozenset()}
MAX_TOPIC = 256  # bytes; longer topics are rejected before any parsing
MAX_ROUTES = 16384  # topics whose route is remembered (the cache starts again when full)
SAMPLES, LABELS, CONTROL, TOO_LONG, UNKNOWN = range(5)  # what a topic carries
# a device stream's counts that say its link or device is in trouble (the summary's streams_by)
STREAM_TROUBLES = ("lost_chunks", "gap", "reboot", "lead_change", "fs_change", "clock_step")


def samples_reason(reason: str) -> bool:
    """Whether a rejection's reason (:meth:`Ingress._reject`) is about a device's samples: not its labels or commands
    (``labels-...``, ``control-...``, ``bad-labels``, ``bad-control``: :meth:`Ingress._not_samples`, ``_labels``,
    ``_control``), nor a topic that names no device."""
    return not (reason.startswith(("labels-", "control-", "bad-labels", "bad-control"))
                or reason in ("unknown-topic", "topic-too-long"))


class Retained(bytes):
    """A message's payload that the broker delivered as retained (its last value kept for new subscribers, sent again
    at every (re)connection): a control command in one is refused (``control-retained``), as it would be carried out
    again at every reconnection of the monitor (a retained discharge ended the next patient's bed while it was in VF:
    a reviewer, session 41)."""

    __slots__ = ()


@dataclass(slots=True)
class _Pace:
    """One device's stated rate against its own clock (:meth:`Ingress._pace_problem`): its last packet (``seq``,
    ``fs``, ``n`` samples), the window of consecutive packets being gathered (each one's start by the
    stated rate, s from the window's first, and its ``t0``), and the last windows' clock rates (clock advance per
    stated second), and whether its packets are being refused."""

    ratios: deque[float]
    spans: deque[float]  # the stated seconds each of those windows covered
    xs: list[float] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    seq: int = 0
    fs: float = 0.0
    n: int = 0
    refusing: bool = False  # its packets are being refused
    counts: str = ""  # what its seq counts, once seen from consecutive packets: "packets" or "samples"
    size: int = 0  # the samples of its packets, while they have all had one size at this rate; -1: they vary
    bridged: bool = False  # the window bridged lost packets (their sizes assumed)
    pairs: list[float] = field(default_factory=list)  # the window's consecutive packets' own clock rates
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=8))  # the last ones, across windows


@dataclass(frozen=True, slots=True)
class FairShare:
    """Real-time beds first when the monitor cannot keep up (``--source mqtt``).

    A device's share is its signal time against the wall clock: ``speed`` s of signal per s sustained, beyond a
    ``burst_s`` s allowance (a backlog after a reconnection, or the broker's after the monitor's own stall).  The
    monitor is behind when every device that sends in real time (within its share and not spending its burst: at
    most ``slack_s`` below it) had its latest packet of the last ``hold_s`` s more than ``behind_s`` s later than its
    usual delay: the least late of them, as the monitor's input lag (one device's backlog, slow packet or clock step
    makes it late alone).  While the monitor is behind, a device past its share is refused (reason ``too-fast``), its
    packets not even decoded (each charged as long as its last decoded one), until it has slowed to within its share
    (its debt, at most ``burst_s``, paid back) or the monitor has not been behind for ``readmit_s`` s (doubled each
    time it is refused again within ``backoff_s`` s of coming back, up to ``readmit_max_s``); its bed then starts
    again.  Taken back that way, it is held to its share (what it sends beyond refused, behind or not) until it has
    kept within it for ``backoff_s`` s.  With nothing sent in real time (all devices replaying recordings, or
    catching up a backlog) nothing is refused."""

    speed: float = 2.0
    burst_s: float = 30.0
    slack_s: float = 2.0
    behind_s: float = 0.5
    hold_s: float = 2.0
    readmit_s: float = 10.0
    backoff_s: float = 60.0
    readmit_max_s: float = 300.0


@dataclass(slots=True)
class _Share:
    """One device's allowance of signal time, s (:class:`FairShare`): ``tokens`` at wall time ``wall``, whether its
    packets are being refused, how long its last decoded packet was, when it was last taken back and how long it
    waits to be taken back next time."""

    tokens: float
    wall: float
    readmit_s: float
    refusing: bool = False
    last_s: float = 0.0
    back_at: float = -math.inf
    capped_until: float = -math.inf  # taken back after a refusal: held to its share until then

    def refilled(self, now: float, cfg: FairShare) -> float:
        """Its ``tokens`` at ``now``, the allowance refilled at ``cfg.speed`` since ``wall``, up to the burst."""
        return min(cfg.burst_s, self.tokens + (now - self.wall) * cfg.speed)


def clock_rate(xs: list[float], ts: list[float]) -> float:
    """The Theil-Sen slope of ``ts`` against ``xs`` (the median of the slopes of every pair of points; Sen PK,
    *Estimates of the regression coefficient based on Kendall's tau*, J Am Stat Assoc 63:1379-1389, 1968): a
    device's clock advance per stated second over a window of its packets, which neither jitter of every stamp
    (even of half a packet) nor a single stamp off by a second moves far."""
    x, t = np.asarray(xs), np.asarray(ts)
    i, j = np.triu_indices(len(x), 1)
    return float(np.median((t[j] - t[i]) / (x[j] - x[i])))


class Ingress:
    """Turns messages into chunks.  ``owns(device)``: whether this worker handles the device (shards)."""

    def __init__(self, *, topic: str, labels_topic: str | None, reorder: int = 8, max_payload: int = MAX_PAYLOAD,
                 owns: Callable[[str], bool] | None = None, control_topic: str | None = None,
                 reorder_s: float | None = 0.5, share: FairShare | None = None,
                 clock: Callable[[], float] = time.time, max_devices: int = 0) -> None:
        """``reorder``/``reorder_s``: a device's missing packet is declared lost once ``reorder`` later packets of it
        are held or the first of them has waited ``reorder_s`` s since it arrived (:class:`DeviceStream`).
        ``share``: refuse the devices that send faster than real time while the monitor is behind (a live source
        that cannot pause; None: every packet is taken, as a source that feels back-pressure or replays a stored
        backlog needs).  ``clock``: the wall clock messages arrive by (Unix s).  ``max_devices``: the devices whose
        samples are taken at most (a bed each); a new device's packets past it are refused (``too-many-devices``);
        0: no limit."""
        self.max_devices = max_devices
        self._named: set[str] = set()  # devices without a stream whose rejections are counted by name (REJECTED_NAMED)
        self.topic, self.labels_topic, self.reorder, self.max_payload = topic, labels_topic, reorder, max_payload
        self.reorder_s = reorder_s
        self.control_topic = control_topic
        self.commands: Counter[str] = Counter()  # control commands carried out
        self._owns = owns
        self.listener: InputListener | None = None
        self.streams: dict[str, DeviceStream] = {}
        self._unknown_names: set[str] = set()
        self.rejected: Counter[tuple[str, str]] = Counter()
        self.pending_labels: dict[str, list[tuple[float, str, int]]] = {}  # (time of beat start s, label, ref)
        self.handled = 0  # messages taken (every one is used, rejected or a duplicate)
        self.other_shards = 0  # messages for devices another worker handles
        # input lag, robust to device clock offsets: a device's packet delay (arrival - its last sample's
        # time on the device's clock) above the smallest delay seen from that device; per device since the last
        # call, the monitor's lag the least of them (a monitor behind delays every device's messages, one device's
        # backlog, redelivery or clock step only its own)
        self._delay_floor: dict[str, float] = {}
        self._lag_by_dev: dict[str, float] = {}
        self._routes: dict[str, tuple[int, str]] = {}
        # per device: arrival times of its stream's recent restarts (reboots), the time until which
        # its packets are refused as an unstable stream, and the devices whose next chunk restarts the bed
        self._restarts: dict[str, list[float]] = {}
        self._unstable_until: dict[str, float] = {}
        self._resume: set[str] = set()
        self._pace: dict[str, _Pace] = {}  # per device: its stated rate against its clock (_pace_problem)
        self._refused_since: dict[str, int] = {}  # per device: packets refused (_refuse) since a loss was last counted
        self.share, self.clock = share, clock
        self._share: dict[str, _Share] = {}  # per device: its allowance of signal time (FairShare)
        # FairShare: per device sending in real time, its latest lag (delay above its usual) and when it came; whether
        # the monitor is behind (judged at most every JUDGE_S), when that was judged and when it was last behind
        self._rt_lag: dict[str, tuple[float, float]] = {}
        self._behind, self._judged, self._last_behind = False, -math.inf, -math.inf
        self._stream_gen: dict[str, int] = {}  # per device: its stream generation (one more at each discharge)
        # per discharged device: when, and its stream's last packets (seq -> t0, digest), DISCHARGED_S (_old_packet)
        self._discharged: dict[str, tuple[float, dict[int, tuple[float, int]]]] = {}
        # sample packets not taken as old ones: delivered as retained, or a discharged stream's delivered again
        self.old_packets: Counter[str] = Counter()
        self._forgotten: Counter[str] = Counter()  # the stream counts of discharged devices (summary)

    UNSTABLE_N, UNSTABLE_S = 4, 10.0  # this many stream restarts within this long: an unstable stream
    UNSTABLE = "unstable-stream"  # the rejection's reason
    # a device's stated sampling rate against its own clock: over windows of at least PACE_S s and PACE_PACKETS + 1
    # consecutive packets, the clock's advance per stated second (a Theil-Sen slope); PACE_N windows in a row outside
    # 1 / PACE_TOL .. PACE_TOL is a wrong rate (clock drift, jitter of up to half a packet, stamps rounded to a coarse
    # clock tick, a stamp off by a second and bursts of stored packets stay well inside)
    PACE_S, PACE_PACKETS, PACE_N, PACE_TOL = 2.0, 16, 2, 1.05
    # ... and a window bridges lost packets, up to PACE_GAP_S s of the stated rate at once (_pace_step)
    PACE_GAP_S = 3.0
    # ... and such a window is off only where the clock rates of its consecutive packets alone (their median, from at
    # least PACE_PAIRS of them) are off too: a lost packet of another size, bridged as one of the others, had a
    # truthful device refused (a 75-sample catch-up packet among 25-sample ones, always lost; a reviewer, session 40)
    PACE_PAIRS = 4
    # ... and a packet whose t0 comes over PACE_PAUSE_S s (and twice its step) later than its step says starts the
    # window again where the device otherwise keeps its stated pace (the median of its last consecutive packets' own
    # clock rates, PACE_PAIRS at least, within PACE_TOL): it paused its acquisition (its counter going on) or its
    # clock stepped forward; a truthful device that sent a short packet and paused 0.5 s every 5 s was refused (a
    # reviewer, session 40).  A device whose every packet is that late states a wrong rate (3 times or more its
    # own): judged as any other (a reviewer, session 40: without the pace condition, never refused)
    PACE_PAUSE_S = 0.4
    PACE = "fs-clock-mismatch"
    TOO_FAST = "too-fast"
    CLOCK_TOL_S = 1.0  # a device whose smallest packet delay is this far from 0 (s) has a clock that is not ours
    JUDGE_S = 0.1  # FairShare: how often whether the monitor is behind is judged again (s)
    # labels held for a device until its next accepted samples: at most this many per device, for this many devices
    # (10,000 and 4,096 let labels for made-up ids grow the monitor by ~5.5 GB: a newcomer, session 39)
    MAX_LABELS, MAX_LABEL_DEVICES = 1000, 256
    # a new device past max_devices: refused (a firmware that puts a boot counter or an address into its id left a bed
    # per id, ~220 KB and a signal-loss alarm each, for good: 600 ids, 130 MB; a newcomer, session 39)
    TOO_MANY = "too-many-devices"
    # rejections of devices without a stream: REJECTED_NAMED such devices at a time counted by name (a slot is freed
    # when its device gets a stream), the rest under MORE_DEVICES (made-up ids, each refused, grew the counts without
    # bound, and the summary's breakdown with them); the names in brackets (topics that name no device, _unknown) are
    # bounded on their own
    REJECTED_NAMED, MORE_DEVICES = 1000, "(more devices)"
    DISCHARGED_S = 600.0  # how long a discharged stream's last packets are recognised when they come again

    def owns(self, device: str) -> bool:
        return self._owns is None or self._owns(device)

    def device_of(self, topic: str) -> str:
        """The device a topic names (samples or labels), or ``(unknown)``."""
        return (device_from_topic(topic, self.topic)
                or (self.labels_topic and device_from_topic(topic, self.labels_topic)) or "(unknown)")

    def input_lag(self) -> float:
        """The monitor's input lag (seconds) since the last call: per device the largest lag of its packets taken
        into its stream, and of those the least (0 with no packet).  A monitor that falls behind its socket delays
        every device alike; a device that sends a backlog after a reconnection (store and forward), whose packets
        the broker delivers again (QoS 1) or whose clock steps back is late alone, and is no monitor falling
        behind."""
        lags, self._lag_by_dev = self._lag_by_dev, {}
        return min(lags.values(), default=0.0)

    def summary(self) -> dict[str, object]:
        """What arrived and what the stream repair made of it, over all devices."""
        c: Counter[str] = Counter(self._forgotten)
        for st in self.streams.values():
            c.update(st.counts)
        return {"messages": self.handled, "devices": len(self.streams), "chunks": c["chunks"],
                "lost_chunks": c["lost_chunks"], "gaps": c["gap"], "duplicates": c["duplicate"],
                "reboots": c["reboot"], "counter_wraps": c["wrap"], "late": c["late"], "fs_changes": c["fs_change"],
                "fs_wobbles": c["fs_wobble"],
                "seq_jumps": c["seq_jump"], "lead_changes": c["lead_change"], "clock_steps": c["clock_step"],
                "out_of_order": c["out_of_order"], "rejected": sum(self.rejected.values()),
                "other_shards": self.other_shards, "commands": dict(self.commands),
                "old_packets": dict(self.old_packets),
                "rejected_by": by_device(self.rejected),
                # devices whose clock is not this machine's (or whose packets always come 1 s late or more): their
                # beats have no end-to-end latency (the monitor's e2e_clock_off); the first 50
                "clock_off": sorted(d for d, f in self._delay_floor.items() if self._clock_off(f))[:50],
                # which devices' links lose packets or restart (the 50 with most): a bad link or device to fix
                "streams_by": by_device(Counter({(dev, k): st.counts[k] for dev, st in self.streams.items()
                                                  for k in STREAM_TROUBLES
                                                  if st.counts[k]}))}

    def _clock_off(self, floor: float) -> bool:
        """Whether a device whose smallest packet delay is ``floor`` (s) has a clock that is not this machine's (or
        packets that always come ``CLOCK_TOL_S`` late or more)."""
        return not -self.CLOCK_TOL_S < floor < self.CLOCK_TOL_S

    def _refuse(self, device: str, reason: str) -> None:
        """A well-formed packet refused by the monitor's own judgement (too fast, a rate its clock contradicts):
        rejected, and remembered so that the gap it leaves in the device's stream is not counted as the link's loss."""
        self._reject(device, reason)
        self._refused_since[device] = self._refused_since.get(device, 0) + 1

    def _reject(self, device: str, reason: str) -> None:
        if device not in self.streams and device not in self._named and not device.startswith("("):
            if len(self._named) < self.REJECTED_NAMED:
                self._named.add(device)
            else:
                device = self.MORE_DEVICES
        self.rejected[(device, reason)] += 1
        if self.listener:
            self.listener.rejected(device, reason)

    UNKNOWN_NAMED = 100  # topics that name no device are counted under their own name, the first this many

    def _unknown(self, topic: str) -> str:
        """What a topic that names no device is counted under: ``(topic 'ecg/dev 01/samples')`` (its first 60
        characters, escaped as Python's ascii() does), so that several misconfigured devices can be told apart in
        ``rejected_by`` and the bad-input alarm; ``(unknown)`` once ``UNKNOWN_NAMED`` of them are known (a flood
        of rogue topics stays bounded)."""
        name = f"(topic {ascii(topic[:60])[1:-1]}{'...' if len(topic) > 60 else ''})"
        if name in self._unknown_names or len(self._unknown_names) < self.UNKNOWN_NAMED:
            self._unknown_names.add(name)
            return name
        return "(unknown)"

    def _route(self, topic: str) -> tuple[int, str]:
        """(what the topic carries, its device): SAMPLES, LABELS, CONTROL, or TOO_LONG / UNKNOWN (the name it is
        counted under, :meth:`_unknown`).  Cached per topic (a ward has a few thousand)."""
        route = self._routes.get(topic)
        if route is None:
            if len(topic.encode()) > MAX_TOPIC:
                return TOO_LONG, self._unknown(topic)  # not cached: any number of them may come
            if self.labels_topic and (dev := device_from_topic(topic, self.labels_topic)) is not None:
                route = (LABELS, dev)
            elif self.control_topic and (dev := device_from_topic(topic, self.control_topic)) is not None:
                route = (CONTROL, dev)
            elif (dev := device_from_topic(topic, self.topic)) is not None:
                route = (SAMPLES, dev)
            else:
                return UNKNOWN, self._unknown(topic)
            if len(self._routes) >= MAX_ROUTES:
                self._routes.clear()
            self._routes[topic] = route
        return route

    def handle(self, topic: str, payload: object) -> list[Chunk]:
        """One MQTT message -> releasable chunks (possibly none).  Never raises on bad input."""
        self.handled += 1
        kind, dev = self._route(topic)
        out: list[Chunk] = []
        if kind == SAMPLES and (self._owns is None or self._owns(dev)):
            now = self.clock()
            if self._refused_undecoded(dev, now):
                return out
            if isinstance(payload, Retained):  # an old packet the broker sends again (handle_many)
                self.old_packets["retained"] += 1
                return out
            try:
                p = decode(_bytes(payload), max_size=self.max_payload)
            except PayloadError as err:
                self._reject(dev, err.reason)
                return out
            self._accept(dev, p, now, out)
        else:
            self._not_samples(kind, dev, payload)
        return out

    def handle_many(self, messages: Sequence[tuple[str, object]], *, ends: list[int] | None = None) -> list[Chunk]:
        """Messages (topic, payload), in their order of arrival -> the chunks they release, in order: the same
        as :meth:`handle` on each in turn, with the sample payloads decoded together
        (:func:`~ecgmon.core.payload.decode_many`).  ``ends``, if given, gets per message the number of chunks
        released up to and including it (a source that commits each message once its beats are judged).  Never
        raises on bad input."""
        self.handled += len(messages)
        routes = [self._route(topic) for topic, _ in messages]
        owns = self._owns
        now = self.clock()
        samples = [i for i, (kind, dev) in enumerate(routes) if kind == SAMPLES and (owns is None or owns(dev))]
        refused: set[int] = set()
        if self._share:  # devices refused for sending too fast: their packets are not decoded
            refused = {i for i in samples if self._refused_undecoded(routes[i][1], now)}
            samples = [i for i in samples if i not in refused]
        # a sample packet the broker kept as retained and sends at every (re)connection is an old one: not taken, and
        # no rejection (it would raise a 'bad input' at every reconnection): counted in old_packets (a device that
        # publishes retained samples had its bed back after a discharge, with a signal loss for good: a reviewer,
        # session 41)
        stale = {i for i in samples if isinstance(messages[i][1], Retained)}
        if stale:
            samples = [i for i in samples if i not in stale]
        decoded = decode_many([_bytes(messages[i][1]) for i in samples], max_size=self.max_payload)
        packets = dict(zip(samples, decoded, strict=True))
        out: list[Chunk] = []
        for i, (kind, dev) in enumerate(routes):
            p = packets.get(i)
            if i in refused:
                pass
            elif stale and i in stale:
                self.old_packets["retained"] += 1
            elif p is None:
                self._not_samples(kind, dev, messages[i][1])
            elif isinstance(p, PayloadError):
                self._reject(dev, p.reason)
            else:
                self._accept(dev, p, now, out)
            if ends is not None:
                ends.append(len(out))
        return out

    def _not_samples(self, kind: int, dev: str, payload: object) -> None:
        """A message that is not samples this worker decodes: labels, control, another worker's device's
        samples, or a rejected topic.  A labels or control message is refused whatever is wrong with it (too
        large, not JSON, nested past Python's recursion limit, fields of the wrong type, a command's listener
        failing on its arguments): counted for its device and reason, never an exception out of here."""
        if kind == SAMPLES:
            self.other_shards += 1  # another worker's device
        elif kind in (LABELS, CONTROL):
            if self.owns(dev):
                what = "labels" if kind == LABELS else "control"
                if len(_bytes(payload)) > self.max_payload:
                    self._reject(dev, f"{what}-too-large")
                    return
                try:
                    (self._labels if kind == LABELS else self._control)(dev, payload)
                except Exception:  # any payload, any failure: that message only
                    self._reject(dev, f"bad-{what}")
        else:
            self._reject(dev, "topic-too-long" if kind == TOO_LONG else "unknown-topic")

    def _accept(self, dev: str, p: Packet, now: float, out: list[Chunk]) -> None:
        """A decoded packet from ``dev`` that arrived at ``now`` (Unix s): its chunks appended to ``out``."""
        if dev in self._discharged and self._old_packet(dev, p, now):
            return
        if self.max_devices and dev not in self.streams and len(self.streams) >= self.max_devices:
            self._reject(dev, self.TOO_MANY)
            return
        if p.device is not None and p.device != dev:
            self._reject(dev, "device-mismatch")
            return
        if (problem := t0_problem(p.t0, now)) is not None:
            self._reject(dev, problem)  # never a stream's time, never a latency figure
            return
        if self._pace_problem(dev, p):
            pace = self._pace[dev]
            if not pace.refusing and self.listener is not None:
                # the samples of the windows found wrong were taken, read at the wrong rate: what was judged on them
                # is the listener's to withdraw (and one window more: the wrong rate may have begun within the window
                # before, whose rate came out right enough)
                self.listener.misread(dev, sum(pace.spans) + max(pace.spans, default=0.0) + pace.xs[-1])
            pace.refusing = True
            self._refuse(dev, self.PACE)
            self._resume.add(dev)  # accepted again (a device put right): the bed starts again
            return
        self._pace[dev].refusing = False
        if self.share is not None and self._too_fast(dev, len(p.samples) / p.fs, now):
            return
        stream = self.streams.get(dev)
        if stream is None:
            stream = self.streams[dev] = DeviceStream(dev, reorder=self.reorder, reorder_s=self.reorder_s,
                                                      stream=self.stream_gen(dev))
            self._named.discard(dev)  # its rejections are counted by name from now on, its slot free again
        counts = stream.counts
        reboots, steps, lost, gaps = counts["reboot"], counts["clock_step"], counts["lost_chunks"], counts["gap"]
        chunks = stream.push(p, now)
        if counts["lost_chunks"] > lost and (refused := self._refused_since.pop(dev, 0)):
            # the packets the monitor refused are no loss of the device's link (streams_by would blame the link)
            take = min(counts["lost_chunks"] - lost, refused)
            counts["lost_chunks"] -= take
            if counts["lost_chunks"] == lost:
                counts["gap"] = gaps
        if counts["reboot"] != reboots or counts["clock_step"] != steps:
            self._delay_floor.pop(dev, None)  # its clock may have restarted or stepped: its delay floor with it
        if counts["reboot"] != reboots or dev in self._unstable_until:
            chunks = self._stable(dev, chunks, now, counts["reboot"] - reboots)
            if not chunks:
                return
        else:
            self._resumed(dev, chunks)
        delay = now - p.t0 - len(p.samples) / p.fs
        floor = self._delay_floor.get(dev)
        if floor is None or delay < floor:
            self._delay_floor[dev] = floor = delay
        if self._clock_off(floor):
            # its clock is not this machine's: its packets' times are no measure of end-to-end latency (one device's
            # clock an hour back made the monitor's e2e p99 an hour; a fuzzer, session 38)
            chunks = [dataclasses.replace(c, clock_off=True) for c in chunks]
        if chunks and delay - floor > self._lag_by_dev.get(dev, 0.0):  # a duplicate or held packet: not a lag
            self._lag_by_dev[dev] = delay - floor
        elif chunks:
            self._lag_by_dev.setdefault(dev, 0.0)
        if self.share is not None:
            if self._share[dev].tokens < self.share.burst_s - self.share.slack_s:
                # spending its burst (catching up a backlog, its own or the broker's after the monitor stalled):
                # its lateness is its own
                self._rt_lag.pop(dev, None)
            elif chunks:
                self._rt_lag[dev] = (delay - floor, now)  # a device sending in real time: its lateness the monitor's
        if self.pending_labels and (labels := self.pending_labels.pop(dev, None)):
            if chunks and stream.t0_first is not None and stream.fs is not None:
                # label times -> this monitor's sample indices for the device (it may have joined late)
                t0, fs = stream.t0_first, stream.fs
                truth = tuple(TrueBeat((t - t0) * fs, lab, is_abnormal(lab), ref) for t, lab, ref in labels)
                c = chunks[0]
                chunks[0] = dataclasses.replace(c, truth=truth)
            else:
                self.pending_labels[dev] = labels
        out += chunks

    def _too_fast(self, dev: str, seconds: float, now: float) -> bool:
        """Charge ``dev``'s allowance (:class:`FairShare`) with a packet of ``seconds`` s that arrived at ``now``;
        whether it is refused (counted, reason ``too-fast``)."""
        cfg = self.share
        assert cfg is not None
        sh = self._share.get(dev)
        if sh is None:
            sh = self._share[dev] = _Share(cfg.burst_s, now, cfg.readmit_s)
        sh.tokens = max(sh.refilled(now, cfg) - seconds, -cfg.burst_s)
        sh.wall = now
        behind = self._behind_now(now)
        if sh.refusing and (sh.tokens >= 0 or now - self._last_behind >= sh.readmit_s):
            sh.refusing, sh.back_at = False, now  # slowed down, or the monitor keeps up again: taken again
            sh.tokens = max(sh.tokens, 0.0)
            sh.capped_until = now + cfg.backoff_s  # ... within its share
        elif not sh.refusing and sh.tokens < 0 and behind:
            sh.refusing = True
            # refused again soon after it was taken back: it waits twice as long next time
            sh.readmit_s = (min(2 * sh.readmit_s, cfg.readmit_max_s) if now - sh.back_at < cfg.backoff_s
                            else cfg.readmit_s)
            self._resume.add(dev)
        elif not sh.refusing and sh.tokens < 0 and now < sh.capped_until:
            # taken back after a refusal: held to its share (a flooder taken back whole brought the monitor behind
            # again, the real-time beds without samples for 2-3 s), this packet refused and not charged, until it
            # has kept within its share for backoff_s
            sh.tokens += seconds
            sh.capped_until = now + cfg.backoff_s
            self._refuse(dev, self.TOO_FAST)
            return True
        if sh.refusing:
            self._refuse(dev, self.TOO_FAST)
        else:
            sh.last_s = seconds
        return sh.refusing

    def _behind_now(self, now: float) -> bool:
        """Whether the monitor is behind (:class:`FairShare`): the devices sending in real time that had a packet
        in the last ``hold_s`` s were all late, by more than ``behind_s``.  Judged at most every ``JUDGE_S``."""
        cfg = self.share
        assert cfg is not None
        if now - self._judged >= self.JUDGE_S:
            self._judged = now
            lags = [lag for lag, at in self._rt_lag.values() if now - at <= cfg.hold_s]
            if len(lags) < len(self._rt_lag):
                self._rt_lag = {d: v for d, v in self._rt_lag.items() if now - v[1] <= cfg.hold_s}
            self._behind = bool(lags) and min(lags) > cfg.behind_s
        if self._behind:
            self._last_behind = now
        return self._behind

    def _refused_undecoded(self, dev: str, now: float) -> bool:
        """Whether a packet of ``dev``, a device being refused for sending too fast (charged as long as its last
        decoded packet) or held to its share past it (not charged), is refused without decoding it."""
        sh = self._share.get(dev)
        if sh is None or not (sh.refusing or now < sh.capped_until):
            return False
        assert self.share is not None
        if sh.refilled(now, self.share) >= sh.last_s or (
                sh.refusing and now - self._last_behind >= sh.readmit_s):
            return False  # to be taken again (or within its cap): decoded, and judged in _accept
        if not sh.refusing and not self._behind_now(now):  # over its cap: refused, not charged
            sh.capped_until = now + self.share.backoff_s
            self._refuse(dev, self.TOO_FAST)
            return True
        return self._too_fast(dev, sh.last_s, now)

    def _pace_problem(self, dev: str, p: Packet) -> bool:
        """Whether ``dev``'s stated sampling rate contradicts its own clock: a packet of ``n`` samples at ``fs`` lasts
        ``n / fs`` s, so the next packet's ``t0`` comes that much later.  A device that states 250 Hz and sends
        500 Hz samples (a firmware or configuration error) has its packets' ``t0`` advance half as fast as their
        samples say: every interval, heart rate and alarm of its bed would be off by that factor (MIT-BIH 119 read
        at 33 bpm, a false extreme-bradycardia alarm), so its packets are refused (reason ``fs-clock-mismatch``, the
        bed's bad-input alarm) while the last ``PACE_N`` windows of consecutive packets (at least ``PACE_S`` s and
        ``PACE_PACKETS`` + 1 packets each: about 8 s of 0.25 s packets in all) each have their clock rate
        (:func:`clock_rate`, clock advance per stated second) outside 1 / ``PACE_TOL`` .. ``PACE_TOL`` (5 %: 250 Hz
        against 300 is 20 %).  A slope over the whole window, not the pairs of neighbours: the median of neighbours'
        ratios was refused a truthful device whose stamps jitter by 50-124 ms on 0.25 s packets, or are rounded down
        to a 15.6 ms clock tick on 0.1 s packets (each neighbours' ratio 0.94 or 1.09; a newcomer, session 26).
        Consecutive: the next ``seq`` (or, for a device whose ``seq`` counts samples, the last packet's ``seq`` plus
        its samples), at one rate (:func:`~ecgmon.monitor.streams.same_rate`), lost packets bridged
        (:meth:`_pace_step`); a late or repeated packet, or a loss that cannot be bridged, starts the window again, a
        rate change the count; so does a packet stamped well over its step later (:attr:`PACE_PAUSE_S`)."""
        pace = self._pace.get(dev)
        n = len(p.samples)
        if pace is None:
            pace = self._pace[dev] = _Pace(deque(maxlen=self.PACE_N), deque(maxlen=self.PACE_N))
            pace.xs, pace.ts = [0.0], [p.t0]
        elif not same_rate(pace.fs, p.fs):  # a rate change: the count starts again
            pace.ratios.clear()
            pace.spans.clear()
            self._pace_window(pace, p.t0)
            pace.size = 0
        elif (step := self._pace_step(pace, p.seq, n)) is not None and not self._paused(pace, p, step):
            if p.seq - pace.seq in (1, pace.n):  # consecutive (_pace_step's first cases): its own clock rate
                pace.pairs.append((p.t0 - pace.ts[-1]) / step)
                pace.recent.append(pace.pairs[-1])
            else:
                pace.bridged = True
            pace.xs.append(pace.xs[-1] + step)
            pace.ts.append(p.t0)
            if pace.xs[-1] >= self.PACE_S and len(pace.xs) > self.PACE_PACKETS:
                rate = clock_rate(pace.xs, pace.ts)
                r: float | None = rate
                if pace.bridged and not self._on_pace(rate):
                    r = float(np.median(pace.pairs)) if len(pace.pairs) >= self.PACE_PAIRS else None
                if r is not None:
                    pace.ratios.append(r)
                    pace.spans.append(pace.xs[-1])
                self._pace_window(pace, p.t0)
        else:
            self._pace_window(pace, p.t0)
        if pace.size == 0:
            pace.size = n
        elif pace.size != n:
            pace.size = -1
        pace.seq, pace.fs, pace.n = p.seq, p.fs, n
        return len(pace.ratios) == self.PACE_N and not any(self._on_pace(r) for r in pace.ratios)

    def _on_pace(self, rate: float) -> bool:
        """Whether a clock rate (clock advance per stated second) agrees with the stated rate: within
        ``1 / PACE_TOL`` .. ``PACE_TOL``."""
        return 1 / self.PACE_TOL <= rate <= self.PACE_TOL

    def _paused(self, pace: _Pace, p: Packet, step: float) -> bool:
        """Whether packet ``p``, ``step`` stated seconds after the last one, is stamped over ``PACE_PAUSE_S`` s (and
        twice its step) later than that by a device that otherwise keeps its stated pace: a pause of its acquisition
        or its clock stepping forward, which starts :meth:`_pace_problem`'s window again."""
        if p.t0 - pace.ts[-1] - step <= max(self.PACE_PAUSE_S, 2.0 * step) or len(pace.recent) < self.PACE_PAIRS:
            return False
        return self._on_pace(float(np.median(pace.recent)))

    @staticmethod
    def _pace_window(pace: _Pace, t0: float) -> None:
        """A new window of :meth:`_pace_problem`'s, from a packet stamped ``t0``."""
        pace.xs, pace.ts, pace.pairs, pace.bridged = [0.0], [t0], [], False

    def _pace_step(self, pace: _Pace, seq: int, n: int) -> float | None:
        """Stated seconds from the last packet's start to this one's (``seq``, ``n`` samples), for
        :meth:`_pace_problem`'s window; None where they cannot be known.  The next packet: the last one's samples
        (and whether ``seq`` counts packets or samples is learnt).  After lost packets, up to ``PACE_GAP_S`` s of
        them: by a sample counter, exactly; by a packet counter, as that many packets of the device's one size, where
        every packet it sent at this rate had it (a device whose packets vary in size: unknown; a lost 50-sample packet
        among 25-sample ones, bridged as 25 samples, had a truthful device refused when only the window's packets
        had to be alike: a reviewer, session 40).  A window of consecutive packets alone was rarely found on a lossy
        link: 25 % of packets lost, about one in 130 s, and a device that stated 250 Hz for its 500 Hz samples kept
        its false extreme-bradycardia alarm (session 39's newcomer, P1)."""
        if pace.n <= 0:
            return None
        d = seq - pace.seq
        if d == 1 and pace.n != 1:
            pace.counts = "packets"
            return pace.n / pace.fs
        if d == pace.n:
            if pace.n != 1:
                pace.counts = "samples"
            return pace.n / pace.fs
        if d <= 1 or not pace.counts or (pace.counts == "samples" and d < pace.n):
            return None
        step = d / pace.fs if pace.counts == "samples" else d * pace.n / pace.fs
        if pace.counts == "packets" and not (pace.size == pace.n == n):
            return None
        return step if step <= self.PACE_GAP_S + pace.n / pace.fs else None

    def _stable(self, dev: str, chunks: list[Chunk], now: float, restarts: int) -> list[Chunk]:
        """``chunks`` of ``dev``, or none while its stream is unstable: ``UNSTABLE_N`` restarts (reboots: a packet
        that fits neither the stream's counter nor its clock) within ``UNSTABLE_S`` s of arrivals.  Two devices
        publishing under one id (a configuration error: two patients' ECG under one bed) interleave two counters
        and clocks, and every other packet restarts the stream; a device in a boot loop restarts it too.  Either
        way the bed's samples are no one patient's ECG: its packets are refused (reason ``unstable-stream``:
        counted, and the bed's BAD_INPUT technical alarm says so) until ``UNSTABLE_S`` s have passed without a
        restart; the bed then starts again (``reset``)."""
        times = self._restarts.setdefault(dev, [])
        times += [now] * restarts
        times[:] = [t for t in times if t > now - self.UNSTABLE_S]
        if not times:
            del self._restarts[dev]
        if len(times) >= self.UNSTABLE_N:
            self._unstable_until[dev] = now + self.UNSTABLE_S
        if now < self._unstable_until.get(dev, -math.inf):
            self._reject(dev, self.UNSTABLE)
            self._resume.add(dev)
            return []
        self._unstable_until.pop(dev, None)
        self._resumed(dev, chunks)
        return chunks

    def _resumed(self, dev: str, chunks: list[Chunk]) -> None:
        """A device whose packets were refused (an unstable stream, a rate its clock contradicts) is accepted again:
        its first chunk restarts the bed (``reset``, no bridge over what was refused)."""
        if dev in self._resume and chunks:
            self._resume.discard(dev)
            first = chunks[0].start  # its second lead's chunk too
            chunks[:] = [dataclasses.replace(c, reset=True, missing=0) if c.start == first else c for c in chunks]

    def _control(self, dev: str, payload: object) -> None:
        """``{"cmd": "relearn"}``, ``{"cmd": "limits", "low": 45, "high": 130}`` (heart-rate alarm limits, bpm) or
        ``{"cmd": "discharge"}`` (end the bed's monitoring: :meth:`forget`, ``Monitor.discharge``) on
        ``ecg/<device>/control``; a retained command is refused (:class:`Retained`): who may publish there is the
        broker ACL's business (deploy/mosquitto/ecgmon.acl lets only the station account write it)."""
        if isinstance(payload, Retained):
            self._reject(dev, "control-retained")
            return
        try:
            # a key given twice is refused, as in sample payloads ({"cmd": "relearn", "cmd": "limits"} ran limits)
            obj = json.loads(bytes(payload) if isinstance(payload, bytes | bytearray) else b"",
                             object_pairs_hook=_once)
            cmd = obj["cmd"] if isinstance(obj, dict) else None
        except (ValueError, KeyError, RecursionError):
            cmd = None
        if not isinstance(cmd, str) or cmd not in CONTROL_COMMANDS:
            self._reject(dev, "bad-control")
            return
        args = {k: v for k, v in obj.items() if k != "cmd"} if isinstance(obj, dict) else {}
        if not args.keys() <= CONTROL_ARGS[cmd] or (CONTROL_ARGS[cmd] and not args):
            self._reject(dev, "bad-control")  # an argument the command does not take, or none where it needs one
            return
        if cmd == "discharge":  # which stream is discharged, and whether the device sends (Monitor.discharge)
            args = {"stream": self.stream_gen(dev), "streaming": dev in self.streams}
        if self.listener is None or not self.listener.control(dev, cmd, args):
            self._reject(dev, f"control-{cmd}-refused")
            return
        self.commands[cmd] += 1
        if cmd == "discharge":
            self.forget(dev)

    def _old_packet(self, dev: str, p: Packet, now: float) -> bool:
        """Whether ``p`` is one of the packets ``dev`` sent before its bed was discharged, delivered again (a QoS 1
        redelivery, a persistent session's backlog, a bridged broker's retained copy sent on without its flag): the
        same counter, time and samples as one of its discharged stream's last packets.  Such a packet made a bed of
        the old patient's samples again, its signal loss on for good (a reviewer, session 41).  Remembered for
        ``DISCHARGED_S`` after the discharge."""
        when, recent = self._discharged[dev]
        if now - when > self.DISCHARGED_S:
            del self._discharged[dev]
            return False
        seen = recent.get(p.seq)
        if seen is None or seen[0] != p.t0 or seen[1] != digest(p):
            return False
        self.old_packets["discharged"] += 1
        return True

    def stream_gen(self, dev: str) -> int:
        """``dev``'s stream generation (:attr:`Chunk.stream`): how many times its bed was discharged here."""
        return self._stream_gen.get(dev, 0)

    def forget(self, dev: str) -> None:
        """Forget ``dev``'s stream (its bed was discharged): its next packet starts a new stream, of a new patient,
        and the device no longer counts towards ``max_devices`` meanwhile.  Its stream's counts stay in the summary."""
        if (st := self.streams.get(dev)) is not None:
            self._forgotten.update(st.counts)
            now = self.clock()
            self._discharged = {d: v for d, v in self._discharged.items() if now - v[0] <= self.DISCHARGED_S}
            self._discharged[dev] = (now, dict(st.recent))  # its last packets, should they come again (_old_packet)
        self._stream_gen[dev] = self._stream_gen.get(dev, 0) + 1  # its chunks still on their way are the old patient's
        for per_device in (self.streams, self._pace, self._share, self._restarts, self._unstable_until,
                           self._delay_floor, self._lag_by_dev, self._rt_lag, self._refused_since,
                           self.pending_labels):
            per_device.pop(dev, None)
        self._resume.discard(dev)

    def _labels(self, dev: str, payload: object) -> None:
        """``{"beats": [[time s, label, ref], ...]}``; a label is a class name or an ECG5000 class number."""
        try:
            obj = json.loads(bytes(payload) if isinstance(payload, bytes | bytearray) else b"")
            beats = [(float(t), _label(lab), int(ref)) for t, lab, ref in obj["beats"]]
            if not all(math.isfinite(t) for t, _, _ in beats):
                raise ValueError("a label time that is not a finite number")
        except (TypeError, ValueError, KeyError, RecursionError):
            self._reject(dev, "bad-labels")
            return
        held = self.pending_labels.get(dev)
        if (len(held or ()) + len(beats) > self.MAX_LABELS
                or (held is None and len(self.pending_labels) >= self.MAX_LABEL_DEVICES)):
            # labels waiting for samples that do not come (a device that sends labels only, or ids made up): memory
            # stays bounded (a fuzzer, session 38: labels for a device without samples waited without bound)
            self._reject(dev, "labels-overflow")
            return
        self.pending_labels.setdefault(dev, []).extend(beats)


def _once(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object whose keys each come once (``json.loads``' object_pairs_hook); ValueError otherwise."""
    d = dict(pairs)
    if len(d) != len(pairs):
        raise ValueError("a key given twice")
    return d


def by_device(counts: Counter[tuple[str, str]], most: int = 50) -> dict[str, dict[str, int]]:
    """``{device: {reason: n}}`` of the ``most`` devices with the most rejections (a flood of rogue topics stays
    a short line)."""
    per: dict[str, Counter[str]] = {}
    for (dev, reason), n in counts.items():
        per.setdefault(dev, Counter())[reason] += n
    top = sorted(per, key=lambda d: -sum(per[d].values()))[:most]
    return {d: dict(per[d]) for d in top}


def _bytes(payload: object) -> bytes:
    return bytes(payload) if isinstance(payload, bytes | bytearray) else b""


def _label(v: object) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        if v not in CLASS_NAMES:
            raise ValueError(f"ECG5000 class {v} is not 1..5")
        return CLASS_NAMES[v]
    if isinstance(v, str) and 0 < len(v) <= 32:
        return v
    raise ValueError(f"bad label {v!r}")

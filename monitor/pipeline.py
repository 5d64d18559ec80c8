"""The async driver: source -> segmenters -> micro-batcher -> scorer thread -> alarm policy -> sinks.

One ``asyncio.TaskGroup`` owns every task; shutdown is cancellation.  The beat queue is bounded:
a source that can pause (replay, recording) feels back-pressure; a live source cannot wait, so
when the queue is full its beats are shed, counted, and the ``monitor overload`` technical alarm
is raised; the watchdog clears it once nothing has been shed for ``calm_s`` seconds.

The stages are plain classes (``Segmenter``, ``QualityMonitor``, ``Scorer``, ``AlarmPolicy``,
``MicroBatcher``, ``Watchdog``); :class:`Monitor` only routes between them and counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import inspect
import math
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from ecgmon.core.aio import check_cancelled
from ecgmon.core.limits import chunk_size, default_threads
from ecgmon.core.messages import Alarm, AlarmKind, Beat, BeatScore, Chunk, Condition, TrueBeat
from ecgmon.models.checkpoint import Checkpoint
from ecgmon.models.scorer import Scored, Scorer
from ecgmon.monitor.alarms import (
    LETHAL_VENTRICULAR,
    PHYSIOLOGICAL_ADVISORIES,
    AlarmBook,
    AlarmPolicy,
    PolicyConfig,
    QrsType,
    TechnicalAlarms,
)
from ecgmon.monitor.batcher import MicroBatcher, next_batch
from ecgmon.monitor.bedmodel import BedModel
from ecgmon.monitor.disk import DiskWriter
from ecgmon.monitor.ingress import samples_reason
from ecgmon.monitor.learning import LearningConfig, Learnt, LearntStates, LearntStore
from ecgmon.monitor.lethal import PRIORITY, Change, InOrder, LeadFusion, LethalConfig, LethalWatch
from ecgmon.monitor.settings import PipelineConfig
from ecgmon.monitor.sinks import Sink
from ecgmon.monitor.sources import Source, Task
from ecgmon.monitor.watchdog import Load, Watchdog
from ecgmon.segmentation.agreement import LeadAgreement
from ecgmon.segmentation.bank import segment_round
from ecgmon.segmentation.beats import Segmenter
from ecgmon.segmentation.quality import Quality, QualityMonitor, push_many
from ecgmon.segmentation.represent import Representation
from ecgmon.segmentation.vf import VFAlarm, VFBank, VFPool
from ecgmon.segmentation.vtype import VTyper, add_many, type_staged

MONITOR = "monitor"  # the 'patient' of the monitor's own technical alarms
CLEAN_CHUNKS = 20  # chunks without a rejected payload before a bed's 'bad input' alarm clears
# ... and this long (s of the wall clock) without one: chunks accepted before a device's packets began to be refused
# (queued) cleared it 30-50 ms after it was raised, again and again (a reviewer, session 39: 15 times in 35 s)
BAD_INPUT_CALM_S = 2.0
UNATTRIBUTED_S = 60.0  # a device without a bed stays named in the monitor's 'bad input' alarm this long after its last
UNATTRIBUTED_SHOWN = 5  # ... the first this many devices named (by name), the rest counted
STORE_EVERY_S = 60.0  # how often the learnt-state file is rewritten while running
DRAIN_S = 2.0  # at a stop, how long a sink may take to pass on what it holds (the MQTT alarm outbox)
# how long a discharge is remembered: beats of the bed cut before it and judged within this long are not judged on a
# new bed of the same device (the scorer's queue holds a few seconds at most)
DISCHARGE_MEMORY_S = 120.0
_NONE = (-math.inf, -1)  # Monitor._discharged's entry for a patient never discharged
STEADY_S = 10.0  # a bed's beats this far into its stream count in the steady end-to-end latency (Stats.e2e_steady)
RHYTHM_BLOCK_S = 1.0  # signal gathered per bed before the beat typer and the VF detector see it
# the lethal watch is told how far the signal has come (its asystole and pause timers) every TICK_S of signal, at
# fixed points of the bed's stream (its first sample + k ticks), whatever the device's packets
TICK_S = 0.25
# how far before a bed's oldest untyped QRS its VF window verdicts and clipped ticks are kept (Monitor._trim_typed)
TYPED_MARGIN_S = 30.0
# the VF/flutter alarm clears early (VFAlarm's clear_windows) over windows whose QRS are this many or more and regular
ORGANISED_CLEAR_BEATS = 3
# a VF window's "organised rhythm" check (LethalWatch.organised) reads the QRS within it up to this long before its end:
# the QRS detector decides a QRS at its own look-ahead at most 0.5 s after its fiducial (its search window, 0.2 s, and
# look-ahead, 0.3 s; median 0.37 s on CinC 2015 and MIT-BIH records), so by the window's end every such QRS has reached
# the watch (one found later by search-back counts only if it has too: the same whatever the packets)
QRS_DECIDED_S = 0.5


def first_block(patient: str, fs: float) -> int:
    """Samples in a bed's first rhythm block: between a quarter of and a whole ``RHYTHM_BLOCK_S``, by a phase
    taken from the bed's name (the same on every run: a recording gives the same alarms however often it is
    played), so that beds whose streams began together hand their later blocks over in different rounds."""
    phase = zlib.crc32(patient.encode()) / 2**32
    return max(1, round(RHYTHM_BLOCK_S * fs * (0.25 + 0.75 * phase)))


@dataclass(slots=True)
class Bed:
    """What the pipeline keeps for one patient (bed)."""

    patient: str
    fs: float
    segmenter: Segmenter
    quality: QualityMonitor
    book: AlarmBook
    policy: AlarmPolicy
    technical: TechnicalAlarms
    model: BedModel  # the bed's verdicts and what it has learnt
    lethal: LethalWatch  # lethal and rate conditions, from the first seconds (never held by learning)
    vtyper: VTyper  # ventricular or not, for every QRS
    vfbank: VFBank  # this bed's VF filters and buffer (analysed in the monitor's VFPool)
    vfalarm: VFAlarm = field(default_factory=VFAlarm)
    vf_artifact: bool = False  # the last VF window was noise or motion (VFWindow.unreadable): VT is not judged on it
    stream: int = 0  # the stream generation of its device's chunks (Chunk.stream; Monitor.discharge)
    # the VF windows analysed that a beat still to be typed may need: (absolute end sample, noise); a typed beat takes
    # the noise verdict of the latest window ending at or before it (Monitor._beat_artifact; trimmed by _trim_typed)
    vf_flags: deque[tuple[int, bool]] = field(default_factory=deque)
    # the ticks (absolute samples) whose saturation verdict was on: clipped signal (Monitor._clipped; _trim_typed)
    sat_ticks: deque[int] = field(default_factory=deque)
    # samples and QRS fiducials waiting for the beat typer and the VF detector, handed over once a second
    # of signal (RHYTHM_BLOCK_S) has gathered: per-call costs once a second rather than once a chunk
    rhythm_x: list[np.ndarray] = field(default_factory=list)
    rhythm_fids: list[float] = field(default_factory=list)
    rhythm_n: int = 0
    # samples that make the next block: a second, except the bed's first block, shorter by a phase of its own
    # (first_block), so that beds whose devices started together (a ward after a power cut, the simulator) do not
    # all hand their blocks over in the same round: one flush of every bed's typing and VF windows held the event
    # loop for 110-290 ms at 200 live devices; spread, each flush holds a share of the beds
    rhythm_block: int = 0
    # absolute index of the last QRS handed to the beat typer: the QRS detector decides QRS in order (a search-back
    # finds one after the last), so every QRS before it has been handed over, and once typed the policy's beats
    # before it wait for their type no longer (a QRS found late is not passed by the typer's mark)
    typer_fid: float = -math.inf
    seg_offset: int = 0  # absolute index of the current segmenter's first sample
    last_chunk_mono: float = 0.0
    replay: bool = False  # its latest chunk was a recording's or a replay's (Chunk.replay), not a live device's
    last_chunk_s: float = 0.0  # the length of its last chunk (s): a device's packets may hold up to 10 s
    beats: int = 0
    flagged: int = 0
    last: BeatScore | None = None
    rejected: int = 0  # payloads from this device that broke the contract
    clean_since_reject: int = 0
    rejected_mono: float = -math.inf  # time.monotonic() of its last rejected payload
    bad_reasons: list[str] = field(default_factory=list)  # the reasons its bad-input alarm names (since raised)
    lead: int = 0  # 1: a bed's second lead (Monitor.aux): its QRS, types and VF windows feed the lethal alarms only
    off_since: int | None = None  # a second lead: absolute sample from which it has been off or lost (its watch held)
    on_since: int | None = None  # ... and from which it has been back while off_since stands (SECOND_LEAD_BACK_S)
    off_at: int = 0  # ... and where it last went off (a lead back for less than SECOND_LEAD_BACK_S counts as off)
    amp_over_since: int | None = None  # absolute sample from which a lead's QRS have been too large (_amplitude)
    # stretches of samples lost in transit and bridged (Monitor._bridge), absolute [start, stop), those of the last
    # PACKET_LOSS_S of signal (Monitor._packet_loss keeps the window); and how many so far
    bridges: deque[tuple[int, int]] = field(default_factory=deque)
    # every stretch lost in transit or sent as missing (bridged or not) of the last BRIDGE_WINDOW_S: [start, stop)
    lost: deque[tuple[int, int]] = field(default_factory=deque)
    bridged: int = 0
    # of ``bridges``, the stretches the device sent as missing samples (Chunk.dropped), not lost in transit
    nulls: deque[tuple[int, int]] = field(default_factory=deque)
    # the lethal watch's inputs, released in the order of the sample each was decided at (Monitor._release)
    watch_in: InOrder = field(default_factory=InOrder)
    # absolute sample up to which every input of ``watch_in`` is known (the beat typer's samples at the latest flush),
    # and the sample up to which they have been told (Monitor._release_lead)
    horizon: float = -math.inf
    released: float = -math.inf
    # the QRS handed to the beat typer and not yet typed: (fiducial, sample it was decided at), relative to seg_offset
    decided: deque[tuple[int, int]] = field(default_factory=deque)


LIMITS_WAITING = 10_000  # beds not connected yet whose heart-rate limits are kept for them (Monitor.set_limits)
PACKET_LOSS_S, PACKET_LOSS_ON, PACKET_LOSS_OFF = 60.0, 0.05, 0.02  # the packet-loss alarm (Monitor._packet_loss)
# a live bed's lead whose watch inputs are ahead of its other lead's waits for them while that lead's chunks come no
# more than this long (wall time) after its own (Monitor._release_lead)
PARTNER_WAIT_S = 1.0
SECOND_LEAD_OFF_S = 5.0  # a second lead off or lost this long (s of signal) raises "second lead off" (LOW)
# a lead's median QRS over SegmenterConfig.implausible_qrs_mv this long (s of signal) raises "implausible amplitude": a
# wrong gain stays, while the electrode motion of MIT-BIH NSTDB 118e_6 (-6 dB SNR) took the median over 12 mV for
# 1-20 s at a time (10 such raises with no hold)
AMPLITUDE_HOLD_S = 60.0
# ... and it is back once it has been read this long without a break: a lead missing from every other packet restarted
# at each one, was back at each, and never raised the alarm while it never helped (a newcomer, session 28)
SECOND_LEAD_BACK_S = 2.0
# gaps are bridged while at most this share of the bed's last BRIDGE_WINDOW_S of signal was lost in transit (bridged or
# not): a link that loses most of its packets (or whose packets are mostly refused) is signal loss, not a line drawn
# over most of the ECG
BRIDGE_MAX_SHARE, BRIDGE_WINDOW_S = 0.5, 10.0

# what a rejection's reason means, where its key alone would not tell a nurse (the BAD_INPUT alarm's detail)
REASON_TEXT = {
    "bad-control": "bad-control: a control command that is not JSON, names no known command or carries arguments "
                   "it does not take (relearn, limits with low/high, discharge)",
    "control-retained": "control-retained: a control command the broker kept as retained (it would run again at "
                        "every reconnection): publish commands without the retain flag",
    "control-discharge-refused": "control-discharge-refused: a discharge for a device with no bed here (a wrong "
                                 "device id?)",
    "control-relearn-refused": "control-relearn-refused: a relearn for a device with no bed here, or whose model "
                               "does not learn",
    "control-limits-refused": "control-limits-refused: heart-rate limits out of 20-300 bpm, low not under high, or "
                              "not inside the extreme bradycardia and tachycardia rates",
    "unstable-stream": "unstable-stream: its packets restart the stream again and again (two devices with this "
                       "id, or a device restarting); not judged until it is steady for 10 s",
    "fs-clock-mismatch": "fs-clock-mismatch: its stated sampling rate does not match its own clock (its packets' t0 "
                         "advance at another pace than their samples at that rate): every interval and rate would "
                         "be wrong; its samples are refused until they agree",
    "too-fast": "too-fast: it sends signal faster than real time while the monitor is behind; refused until it "
                "slows down or the monitor keeps up, then held to its share, so that the beds sending in real time "
                "keep being monitored",
}


@dataclass(slots=True)
class Stats:
    """Counters for the footer and the summary.  Latency: beat closed -> verdict, seconds."""

    started_mono: float = field(default_factory=time.monotonic)
    beats: int = 0  # judged
    segmented: int = 0  # cut by the segmenters (judged + shed + in flight + still queued)
    alarms: int = 0
    shed: int = 0  # beats dropped at the full beat queue (live sources)
    shed_messages: int = 0  # device messages dropped at the source's full incoming queue
    last_shed_mono: float = 0.0
    rejected: int = 0  # payloads rejected, all devices
    rejected_unknown: int = 0  # of which from topics or devices the monitor cannot attribute
    not_judged: int = 0  # beats left unjudged because --max-beats was reached
    learnt: int = 0  # beds that finished learning
    relearns: int = 0  # relearn requests carried out (beds)
    released: int = 0  # beats left unjudged because their bed was released to another worker, or discharged
    discharged: int = 0  # beds discharged (a clinician's command: Monitor.discharge)
    discharged_chunks: int = 0  # chunks of a discharged bed's stream that came after its discharge: dropped
    batches: int = 0
    batch_beats: int = 0
    scoring: int = 0  # beats in the model call now running
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=20000))
    # live sources: device packet complete -> verdict (wall clocks; broker, queues, segmentation and scoring)
    e2e: deque[float] = field(default_factory=lambda: deque(maxlen=20000))
    # the same for beats at least STEADY_S into their bed's stream (after its detector's warm-up): beds that start
    # together (a ward's devices after a restart, the live benchmark) hand their first beats in all at once
    e2e_steady: deque[float] = field(default_factory=lambda: deque(maxlen=20000))
    e2e_clock_ahead: int = 0  # beats whose device said their packet was complete after they were judged
    e2e_clock_off: int = 0  # beats of devices whose clock is not this machine's (Chunk.clock_off): no e2e figure
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=4096))  # verdict times for beats/s
    queue_max: int = 0
    time_segment: float = 0.0  # all of it: the parts below, the sinks' on_chunk, technical alarms
    coalesced: int = 0  # replayed chunks segmented joined to their bed's previous one (Monitor.segment_many)
    time_segmenters: float = 0.0  # the segmenters: QRS detection (batched envelopes, decisions) and beat cutting
    time_quality: float = 0.0  # the signal-quality checks
    time_rhythm: float = 0.0  # the lethal and rate watches: beat typer (VTyper), VF detector, LethalWatch
    flushes: int = 0  # flush_vf calls: every queued bed's typing and VF windows at once, on the event loop
    time_settle: float = 0.0  # handing each bed's flushed work to its watch and policy (end of Monitor._flush_vf), s
    round_max: float = 0.0  # the longest segmentation of one (sub-)round, flushes within it included, seconds
    flush_max: float = 0.0  # the longest of them, seconds (the event loop held that long)
    time_score: float = 0.0
    time_alarm: float = 0.0

    def beats_per_s(self, window_s: float = 5.0) -> float:
        now = time.monotonic()
        n = sum(1 for t in self.recent if now - t <= window_s)
        span = min(window_s, now - self.started_mono)
        return n / span if span > 0 else 0.0

    def latency_ms(self, q: float) -> float | None:
        return float(np.percentile(np.asarray(self.latencies), q) * 1000) if self.latencies else None

    def e2e_ms(self, q: float, *, steady: bool = False) -> float | None:
        e = self.e2e_steady if steady else self.e2e
        return float(np.percentile(np.asarray(e), q) * 1000) if e else None


@dataclass(frozen=True, slots=True)
class Restored:
    """Alarms a previous run left active or acknowledged (from its journal), and its unreadable lines."""

    alarms: tuple[Alarm, ...] = ()
    journal_skipped: int = 0


class Monitor:
    """Routes chunks, beats, verdicts and alarms between the stages and the sinks; ``run(source)`` drives it."""

    def __init__(self, scorer: Scorer, threshold: float, *, cfg: PipelineConfig = PipelineConfig(),
                 policy: PolicyConfig = PolicyConfig(), sinks: Sequence[Sink] = (),
                 restored: Restored = Restored(), model_name: str = "",
                 rep: Representation = Representation(), learning: LearningConfig | None = None,
                 bed_margin: float = float("nan"), store: LearntStates | None = None,
                 disk: DiskWriter | None = None, lethal: LethalConfig = LethalConfig()) -> None:
        """``threshold``: the population threshold (every bed, or a bed's before it has learnt);
        ``learning`` with ``bed_margin``: per-bed learning (:mod:`ecgmon.monitor.learning`), its state
        kept in ``store``; ``disk``: the writer every durable sink and the state file share (one of its own
        when None), run on a worker thread while :meth:`run` runs."""
        if rep.kind == "ecg5000":
            # ECG5000's beats are resampled and z-normalised: the ventricular typer, fitted on real ECG, reads
            # their rendered trace as ventricular far too often (a replay ward with 3 % abnormal beats had 15-27
            # beats a minute typed ventricular per bed), so there only a flagged beat can be typed ventricular
            policy = dataclasses.replace(policy, v_alone_p=math.inf)
        self.scorer, self.threshold, self.cfg, self.policy_cfg = scorer, threshold, cfg, policy
        self.rep = rep
        # a bed's consecutive replayed chunks in a round segmented as one (segment_many); off: one by one
        self.coalesce = True
        # the cyclic garbage collector leaves what exists at the start of run() alone while it runs (run())
        self.freeze_gc = True
        self.learning = learning if learning is not None and learning.learn_s > 0 else None
        self.bed_margin, self.store = bed_margin, store
        self.disk = disk or DiskWriter()
        self.lethal_cfg = lethal
        self.vfpool = VFPool()  # every bed's VF windows, analysed together
        # every bed's beats ready to type, typed together when the VF pool is analysed (or at the same bounds)
        # each bed's gathered samples and QRS for its beat typer, typed at the next flush_vf
        self._vt_jobs: list[tuple[Bed, VTyper, np.ndarray, list[float]]] = []
        self._vt_oldest: float | None = None
        self._learnt_before: dict[str, tuple[float, Learnt]] = store.load() if store and self.learning else {}
        # a bed whose saved state does not fit this model's beats (a damaged or hand-edited file) learns again; it
        # must never stop the monitoring (its offset is subtracted from every beat)
        unfit = [p for p, (_, lt) in self._learnt_before.items()
                 if lt.offset.shape != tuple(scorer.shape) or not np.isfinite(lt.offset).all()]
        for p in unfit:
            del self._learnt_before[p]
        if unfit and store is not None:
            store.problem = ((store.problem + "; ") if store.problem else "") + (
                f"{len(unfit)} bed(s) with a learnt state that does not fit the model ({', '.join(unfit[:5])}): they "
                "learn again")
        self._store_saved = time.monotonic()
        self.sinks: tuple[Sink, ...] = tuple(sinks)
        self.model_name = model_name
        self.queue: asyncio.Queue[Beat] = asyncio.Queue(maxsize=cfg.queue_size)
        self.batcher: MicroBatcher[Beat] = MicroBatcher(max_batch=cfg.max_batch, max_wait_s=cfg.max_wait_ms / 1000)
        self.beds: dict[str, Bed] = {}
        # a bed's second lead (--second-lead): its own segmenter, beat typer, VF detector and lethal watch, whose
        # conditions join the first lead's in the bed's LeadFusion; its beats are not scored, nothing of it is shown
        self.aux: dict[str, Bed] = {}
        self.fusion: dict[str, LeadFusion] = {}
        # ... and its two-lead QRS agreement: the first lead's noisy beats that a reliable second lead does not confirm
        # are no beats (segmentation.agreement); a bed's beats wait there for its second lead's QRS
        self.agree: dict[str, LeadAgreement] = {}
        self._unconfirmed: dict[str, int] = {}  # beats dropped by a bed's agreement that has since gone
        self._second_found: dict[str, int] = {}  # ... and the second lead's beats it let in (LeadAgreement.inserted)
        # a short run of missing samples that ended a bed's (lead's) last chunk, held back until the next chunk
        # tells whether the signal goes on after it (a bridge) or not: (its first absolute sample, its length, how
        # many of them the device sent as missing, the reference beats of a recording's chunks held whole)
        self._tails: dict[tuple[str, int], tuple[int, int, int, tuple[TrueBeat, ...]]] = {}
        # beds whose device says it sends a simulator's samples (core.payload): labelled so wherever shown
        self.simulated: set[str] = set()
        self.stats = Stats()
        self.monitor_book = AlarmBook(MONITOR)
        self.monitor_tech = TechnicalAlarms(self.monitor_book)
        self._unattributed: dict[str, dict[str, float]] = {}  # devices without a bed: reason -> last refused (mono)
        self._unattributed_said = ("", -math.inf)  # the devices its alarms last named, and when (monotonic s)
        self._unattributed_pending = False  # a change of their count held back (said with a later refusal)
        self.watchdog = Watchdog(self.monitor_book, cfg.watchdog, now=time.monotonic())
        self.done = asyncio.Event()
        self.restored = restored
        self._waiting_restore: dict[str, list[Alarm]] = {}
        # patient -> (time.monotonic() of its discharge, the last stream generation discharged: Chunk.stream, -1 none),
        # for DISCHARGE_MEMORY_S: what of the old patient is still on its way is not given to a new bed
        self._discharged: dict[str, tuple[float, int]] = {}
        # heart-rate limits set for beds not connected yet (set_limits): (low, high) bpm, applied at their first chunk
        self._limits_waiting: dict[str, tuple[float, float]] = {}
        for a in sorted(restored.alarms, key=lambda a: a.time):
            if a.patient == MONITOR:
                self.monitor_book.active[a.condition] = a
            else:
                self._waiting_restore.setdefault(a.patient, []).append(a)
        self.source: Source | None = None
        self._shed_when_full = False
        self.entering = 0  # beats segmented and waiting for room in the full scoring queue (_queue_beats)
        self._extra_sinks: tuple[Sink, ...] = ()
        self._commit: Callable[[int], Awaitable[None]] | None = None

    @classmethod
    def for_checkpoint(cls, ckpt: Checkpoint, *, scorer: Scorer | None = None, device: str = "auto",
                       threads: int | None = None, cfg: PipelineConfig = PipelineConfig(),
                       policy: PolicyConfig = PolicyConfig(), learning: LearningConfig = LearningConfig(),
                       learn_state: Path | None = None, sinks: Sequence[Sink] = (),
                       restored: Restored = Restored(), disk: DiskWriter | None = None,
                       store: LearntStates | None = None, lethal: LethalConfig = LethalConfig()) -> Monitor:
        """The monitor for ``ckpt``: its scorer (``device``, ``threads``: default every core but one), its beat
        representation, and per-bed learning when the checkpoint has a per-bed margin and ``learning.learn_s``
        is not 0 (what the beds learn kept in ``store``, else in the file ``learn_state``; None: kept nowhere); else
        the population threshold for every bed."""
        scorer = scorer or Scorer(ckpt.model, device=device, threads=threads or default_threads())
        margin = ckpt.bed_margin
        if margin is not None and learning.learn_s > 0:
            if store is None and learn_state is not None:
                store = LearntStore(learn_state, ckpt.sha256, forget_s=learning.forget_s)
            return cls(scorer, ckpt.threshold, cfg=cfg, policy=policy, sinks=sinks, restored=restored,
                       model_name=f"{ckpt.name} learn {learning.learn_s:g}s margin {margin:.4f}", rep=ckpt.rep,
                       learning=learning, bed_margin=margin, store=store, disk=disk,
                       lethal=lethal)
        return cls(scorer, ckpt.threshold, cfg=cfg, policy=policy, sinks=sinks, restored=restored,
                   model_name=f"{ckpt.name} thr {ckpt.threshold:.4f}", rep=ckpt.rep, disk=disk, lethal=lethal)

    def _learning_summary(self) -> dict[str, object] | None:
        if self.learning is None:
            return None
        models = [b.model for b in self.beds.values()]
        return {"learn_s": self.learning.learn_s, "bed_margin": self.bed_margin,
                "beds_learning": sum(m.learning for m in models),
                "beds_learnt": sum(m.learnt is not None for m in models),
                "learnt": self.stats.learnt, "relearns": self.stats.relearns,
                "state_file": self.store.where if self.store else None,
                "state_problem": self.store.problem if self.store else ""}

    @property
    def in_flight(self) -> int:
        """Beats out of the queue, not yet judged (being gathered into a batch, or being scored)."""
        return len(self.batcher) + self.stats.scoring

    # ------------------------------------------------------------------ synchronous stages

    def bed(self, chunk: Chunk) -> Bed:
        """The bed's state, created on its first chunk; its segmenter restarts after a discontinuity."""
        if chunk.lead:
            return self._aux_bed(chunk)
        st = self.beds.get(chunk.patient)
        if st is None:
            book = AlarmBook(chunk.patient)
            for a in self._waiting_restore.pop(chunk.patient, []):
                book.restore(a)  # shown again; cleared by the policy as usual, or unconfirmed after a minute
            fs, before = self._learnt_before.pop(chunk.patient, (chunk.fs, None))
            book.fs = chunk.fs
            if self._unattributed.pop(chunk.patient, None) is not None:  # its packets are accepted now
                self._say_unattributed()
            limits = self._limits_waiting.pop(chunk.patient, None)
            st = self.beds[chunk.patient] = Bed(
                chunk.patient, chunk.fs, Segmenter(chunk.patient, chunk.fs, rep=self.rep),
                _quality(chunk.fs, chunk.start),
                book, AlarmPolicy(book, self.policy_cfg, fs=chunk.fs), TechnicalAlarms(book),
                self._bed_model(chunk.fs, before if fs == chunk.fs else None),
                LethalWatch(chunk.fs, self.lethal_cfg), VTyper(chunk.fs), self.vfpool.bank(chunk.fs),
                seg_offset=chunk.start, rhythm_block=first_block(chunk.patient, chunk.fs), vfalarm=self._vf_alarm(),
                stream=chunk.stream)
            if limits is not None:  # set over the control topic before the bed's first samples
                st.lethal.set_limits(low=limits[0], high=limits[1])
        elif chunk.reset or st.fs != chunk.fs:
            # a gap or a rate change: the open beat and the filter state are meaningless now
            rate_changed = st.fs != chunk.fs
            why = (f"sampling rate changed ({st.fs:g} -> {chunk.fs:g} Hz)" if rate_changed
                   # judged as the chunks come, whatever length the run will have (a length here would be the part
                   # held so far, which depends on where the packets were cut)
                   else "samples missing from the signal (null or NaN)"
                   if chunk.missing > 0 and chunk.dropped >= chunk.missing
                   else f"{chunk.missing / chunk.fs:.2g} s of packets lost" if chunk.missing > 0
                   else "gap in the stream (the device restarted, or samples are missing)")
            # gone for how long: a recording's gap in its own samples (however fast it plays), a live bed's in wall time
            gone_s = ((chunk.start - st.seg_offset - st.segmenter.total) / st.fs if chunk.replay
                      else time.monotonic() - st.last_chunk_mono)
            if self.learning is not None and (rate_changed or gone_s > self.learning.forget_s):
                st.model = self._bed_model(chunk.fs)  # gone for long: learn again
            # the old stream's last samples typed and analysed (every bed's queued work with them) before its
            # typer and VF detector start again: otherwise whether its last block was typed depended on when the
            # work happened to be flushed
            self._finish_stream(st)
            if rate_changed:
                # a new watch for the new rate, holding the old one's conditions for its own judgement to clear
                # (LethalWatch.carry; left with no watch, nothing ever cleared them)
                old, st.lethal = st.lethal, LethalWatch(chunk.fs, st.lethal.cfg)
                st.lethal.carry(old, chunk.start)
            st.fs = st.book.fs = chunk.fs
            st.segmenter = Segmenter(chunk.patient, chunk.fs, rep=self.rep)
            st.quality = _quality(chunk.fs, chunk.start)
            st.vtyper, st.vfbank = VTyper(chunk.fs), self.vfpool.bank(chunk.fs)
            st.rhythm_x, st.rhythm_fids, st.rhythm_n = [], [], 0
            st.decided.clear()
            st.sat_ticks.clear()
            st.lethal.gap()  # no rate across the gap, and the asystole timer starts again after it
            st.seg_offset = chunk.start
            # a rate change numbers the samples anew (at the new rate, from the device's clock): the alarm is placed at
            # the new stream's first sample, not at the old stream's last index read at the new rate (a 250 -> 500 Hz
            # change at 19.84 s was placed at 9.92 s: a newcomer, session 26)
            self.emit(st.technical.raise_(Condition.SIGNAL_LOSS, f"{why}; QRS detection restarted",
                                          index=chunk.start if rate_changed else None))
        if chunk.simulated != st.book.simulated:  # as the device's latest packet says
            st.book.simulated = chunk.simulated
            (self.simulated.add if chunk.simulated else self.simulated.discard)(chunk.patient)
        return st

    def _vf_alarm(self) -> VFAlarm:
        """A bed's VF/flutter alarm condition, its episode held ``vf_episode_s`` (:class:`LethalConfig`)."""
        return VFAlarm(hold_windows=max(3, round(self.lethal_cfg.vf_episode_s / self.vfpool.cfg.hop_s)))

    def heart_rate(self, st: Bed) -> float | None:
        """The heart rate a bed's tile and summary show, bpm (EC13-style, :attr:`Segmenter.heart_rate`), or None
        ("---") while its signal fibrillates (the VF detector's last window was VF/flutter, or the VF/flutter
        alarm is on): VF and flutter have no QRS complexes, and the detector's 'beats' on their waves (75-120 a
        minute on VFDB) would show a plausible rate under the lethal alarm.  None too while asystole is on: the
        averaged rate only falls with the open interval (51 bpm on a paced patient 4 s into loss of capture) and
        would contradict the alarm's "no QRS" beside it.  None while "ECG cannot be analysed" is on: the rate is
        then the noise's (a bed connected in asystole under 20 uV of noise showed 167 bpm beside that alarm; a
        newcomer, session 25).  While the first lead cannot be read (off, lost or in
        noise) and the bed's second lead can, the second lead's rate (:meth:`heart_rate_lead` says which)."""
        return self.heart_rate_lead(st)[0]

    def heart_rate_lead(self, st: Bed) -> tuple[float | None, int]:
        """(:meth:`heart_rate`, the lead it was counted on: 0 the first, 1 the second)."""
        if st.lethal.fibrillating or st.book.active.keys() & {Condition.VFIB, Condition.ASYSTOLE,
                                                               Condition.CANNOT_ANALYSE}:
            return None, 0
        aux = self.aux.get(st.patient) if not st.lead else None
        if aux is not None and not _readable(st.lethal) and _readable(aux.lethal) and not aux.lethal.fibrillating:
            return aux.segmenter.heart_rate, 1
        if st.book.active.keys() & {Condition.SIGNAL_LOSS, Condition.LEADS_OFF}:
            return None, 0  # no samples to count on: not the last rate, frozen (CinC a279l showed 88 bpm to its end)
        return st.segmenter.heart_rate, 0

    def _aux_bed(self, chunk: Chunk) -> Bed:
        """A bed's second lead (:attr:`aux`): created on its first chunk, restarted after a discontinuity (its own
        book and technical conditions are never shown: the bed's first lead says those)."""
        st = self.aux.get(chunk.patient)
        if st is None or chunk.reset or st.fs != chunk.fs:
            book = AlarmBook(chunk.patient)
            book.fs = chunk.fs
            prev = st
            st = self.aux[chunk.patient] = Bed(
                chunk.patient, chunk.fs, Segmenter(chunk.patient, chunk.fs, rep=self.rep),
                _quality(chunk.fs, chunk.start),
                book, AlarmPolicy(book, self.policy_cfg, fs=chunk.fs), TechnicalAlarms(book),
                self._bed_model(chunk.fs), LethalWatch(chunk.fs, self.lethal_cfg), VTyper(chunk.fs),
                self.vfpool.bank(chunk.fs), seg_offset=chunk.start, lead=1,
                rhythm_block=first_block(chunk.patient, chunk.fs), vfalarm=self._vf_alarm())
            if prev is not None:  # the old stream's last samples typed and analysed, its watch told all
                self._finish_stream(prev)
            fusion = self.fusion.setdefault(chunk.patient, LeadFusion(vt=self.lethal_cfg.second_lead_vt,
                                                                         veto=self.lethal_cfg.second_lead_veto))
            fusion.second_p_waves = functools.partial(self._second_p_waves, chunk.patient)
            fusion.second_unlike = functools.partial(self._second_unlike, chunk.patient)
            if prev is not None and prev.fs != chunk.fs:  # a new rate, a new watch holding the old one's conditions
                st.lethal.carry(prev.lethal, chunk.start)
                st.vfalarm = prev.vfalarm  # ... and the VF alarm's episode with its VF/flutter, as the first lead's
            if prev is not None and prev.fs == chunk.fs:  # a gap: the same watch, no rate across it
                st.lethal = prev.lethal
                st.lethal.gap()
                # and the same record of lost stretches: a lead that loses most of its samples must not have them
                # bridged again after every restart (Monitor._bridge's share of the last BRIDGE_WINDOW_S)
                st.lost = prev.lost
            if prev is not None:  # the count of bridges goes on across restarts, as the first lead's does
                st.bridged = prev.bridged
            if prev is not None and prev.fs == chunk.fs:  # off, or back, since: across its restarts too
                st.off_since, st.on_since, st.off_at = prev.off_since, prev.on_since, prev.off_at
                end = prev.seg_offset + prev.segmenter.total
                if chunk.start > end:  # the samples between them lost: off from the first
                    st.watch_in.put(end, InOrder.OFF, (end, True))
        return st

    def _second_p_waves(self, patient: str, lo: int, hi: int) -> bool:
        """Whether bed ``patient``'s second lead's "QRS" in samples ``lo`` .. ``hi`` are all P waves (its two-lead
        agreement's :meth:`~ecgmon.segmentation.agreement.LeadAgreement.p_waves`; False without one)."""
        agree = self.agree.get(patient)
        return agree is not None and agree.p_waves(lo, hi)

    def _second_unlike(self, patient: str, lo: int, hi: int) -> bool:
        """Whether bed ``patient``'s second lead's "QRS" in samples ``lo`` .. ``hi`` are all unlike its QRS (its
        two-lead agreement's :meth:`~ecgmon.segmentation.agreement.LeadAgreement.unlike_qrs`; False without one)."""
        agree = self.agree.get(patient)
        return agree is not None and agree.unlike_qrs(lo, hi)

    def _bed_model(self, fs: float, learnt: Learnt | None = None) -> BedModel:
        return BedModel(fs, threshold=self.threshold, shape=self.scorer.shape, learning=self.learning,
                        margin=self.bed_margin, learnt=learnt)

    def segment(self, chunk: Chunk) -> list[Beat]:
        """Chunk -> beats for its bed, with technical alarms updated."""
        return self.segment_many([chunk])[0]

    def segment_many(self, chunks: Sequence[Chunk]) -> list[list[Beat]]:
        """A round of chunks -> each chunk's beats, as :meth:`segment` one by one would give them, the QRS
        envelopes of all beds computed together (:func:`ecgmon.segmentation.bank.segment_round`: one pass per
        sampling rate and chunk length).

        A recording or replay played faster than real time brings several chunks of a bed in a round: its
        consecutive ones are joined and segmented as one chunk (:func:`coalesce`), for the same beats, QRS, beat
        types, VF windows and alarms as one by one (the detectors, the signal-quality ratings, the flat-line checks
        and the lethal watch's inputs do not depend on the chunking:
        ``tests/test_pipeline.py::test_a_round_with_several_chunks_per_bed_gives_what_one_by_one_gives``) and less
        CPU (much of a chunk's cost is per chunk, not per sample: BENCHMARKS.md).  The joined chunk's beats are
        returned in its last chunk's place (the others get none).  Chunks that cannot be joined (live ones, whose
        beats each carry their packet's time for the end-to-end latency; a discontinuity; a warm-up replay) are
        segmented in order, in sub-rounds that hold each bed at most once.

        A lead's short dropouts (a two-lead device's ``null`` samples of one lead, up to ``bridge_s``) are bridged as
        packets lost in transit are (:func:`split_dropouts`, :meth:`_bridge`), not a restart of the lead's detector
        and a signal-loss alarm for every missing sample; one that ends a chunk is held back until the next chunk
        shows whether the signal goes on after it (:meth:`_dropouts`), so the answer does not depend on where the
        device cut its packets.

        A chunk of a discharged bed's stream (:attr:`Chunk.stream` at most the one discharged) that comes after the
        discharge is the old patient's: dropped, no beats (it made a new bed of the old patient's samples)."""
        keep = ([k for k, c in enumerate(chunks) if c.stream > self._discharged.get(c.patient, _NONE)[1]]
                if self._discharged else None)
        if keep is not None and len(keep) < len(chunks):
            self.stats.discharged_chunks += len(chunks) - len(keep)
            out: list[list[Beat]] = [[] for _ in chunks]
            for k, beats in zip(keep, self.segment_many([chunks[k] for k in keep]) if keep else [], strict=True):
                out[k] = beats
            return out
        if self.cfg.bridge_s > 0:
            owner: list[int] = []
            parts: list[Chunk] = []
            split = False
            for k, c in enumerate(chunks):
                got = [c] if c.warmup else self._dropouts(c, int(self.cfg.bridge_s * c.fs))
                parts += got
                owner += [k] * len(got)
                split = split or len(got) != 1 or got[0] is not c
            if split:
                res: list[list[Beat]] = [[] for _ in chunks]
                for k, beats in zip(owner, self._segment_many(parts), strict=True):
                    res[k] += beats
                return res
        return self._segment_many(chunks)

    def _dropouts(self, c: Chunk, max_n: int) -> list[Chunk]:
        """``c`` split at its short dropouts (:func:`split_dropouts`), with the run of at most ``max_n`` missing
        samples that ended the bed's (lead's) previous chunk, if one was held back, put before it as missing samples
        (``reset``, ``missing``, ``dropped``: bridged where the signal goes on, :meth:`_bridge`); a run that ends this
        chunk is held back in its turn, a chunk of missing samples only held whole (no parts: ``[]``) while the run
        it continues stays within ``max_n`` (a longer run, one after a discontinuity of another kind, or one before
        the bed has a sample, is left where it is: signal loss, as before)."""
        key = (c.patient, c.lead)
        held = self._tails.pop(key, None)
        if held is not None:
            at, n, dropped, truth = held
            if truth:  # a recording's reference beats in the held samples: counted with the next chunk's
                c = dataclasses.replace(c, truth=truth + c.truth)
            if not c.reset and c.start == at + n:
                c = dataclasses.replace(c, reset=True, missing=n, dropped=dropped)
            elif c.reset and c.missing > 0 and c.start - c.missing == at + n:  # packets lost after the run too
                c = dataclasses.replace(c, missing=c.missing + n, dropped=c.dropped + dropped)
            # else: a reboot, a rate change or a gap of unknown length: the bed starts again after it anyway
        parts = split_dropouts(c, max_n)
        last = parts[-1].samples
        if len(last) and not math.isfinite(float(last[-1])):
            ok = np.flatnonzero(np.isfinite(last))
            if len(ok):  # samples present, then the run
                tail = len(last) - 1 - int(ok[-1])
                if tail <= max_n:
                    end = parts[-1].start + len(last)
                    self._tails[key] = (end - tail, tail, tail, ())
                    parts[-1] = dataclasses.replace(parts[-1], samples=last[:-tail])
            elif len(parts) == 1 and (not c.reset or c.missing > 0):
                # a chunk of missing samples only, after a stretch the bed has (a recording's 0.3 s run spans a
                # 0.25 s packet): held whole while the run, with what came before it, is short enough to bridge
                before = c.missing if c.reset else 0
                st = (self.aux if c.lead else self.beds).get(c.patient)
                if (st is not None and math.isfinite(st.segmenter.last_sample) and len(last) + before <= max_n
                        and st.fs == c.fs):
                    self._tails[key] = (c.start - before, len(last) + before, len(last) + c.dropped, c.truth)
                    return []
        return parts

    def _segment_many(self, chunks: Sequence[Chunk]) -> list[list[Beat]]:
        groups = coalesce(chunks) if self.coalesce else [[k] for k in range(len(chunks))]
        if len(groups) == len(chunks):
            return self._sub_rounds(chunks)
        self.stats.coalesced += len(chunks) - len(groups)
        joined = [chunks[g[0]] if len(g) == 1 else dataclasses.replace(
            chunks[g[0]], samples=np.concatenate([chunks[k].samples for k in g]),
            truth=tuple(t for k in g for t in chunks[k].truth)) for g in groups]
        out: list[list[Beat]] = [[] for _ in chunks]
        for g, beats in zip(groups, self._sub_rounds(joined), strict=True):
            out[g[-1]] = beats
        return out

    def _sub_rounds(self, chunks: Sequence[Chunk]) -> list[list[Beat]]:
        out: list[list[Beat]] = []
        i = 0
        while i < len(chunks):
            seen: set[tuple[str, int]] = set()
            j = i
            while j < len(chunks) and (chunks[j].patient, chunks[j].lead) not in seen:
                seen.add((chunks[j].patient, chunks[j].lead))
                j += 1
            out += self._segment_round(chunks[i:j])
            i = j
        return out

    def _bridge(self, chunk: Chunk) -> Chunk:
        """A chunk after a short run of packets lost in transit (``chunk.missing`` samples, at most ``bridge_s``),
        joined to its bed's stream: the missing samples drawn as a straight line from the bed's last sample to the
        chunk's first, so that the QRS detector, the signal-quality index, the beat typer and the VF detector go on
        with their state rather than start again (a restart needs about 2 s to learn the signal: a link that loses
        1 packet in 10 at 4 packets a second restarted the detector every 2.5 s and 40 % of the beats were never
        found).  What the gap may have hidden is not made up: a beat whose window touches the bridge, or whose
        preceding RR interval spans it and is long enough to hold a hidden QRS (:meth:`_near_bridge`), gets no
        verdict (``noisy``); a typed beat within 0.5 s of it is no ventricular beat for VT; such an interval counts
        for no heart rate (:meth:`HeartRate.bridge`, :meth:`LethalWatch.bridge`); the T wave of a QRS hidden in it
        is no beat (:meth:`QRSDetector.bridge`); the pause and asystole timers run on through it.  Bridges are
        counted per bed (summary ``bridged``; the packet-loss alarm, :meth:`_packet_loss`) and per device
        (``input``'s gap counts).
        Any other chunk is returned as it is (a longer gap, a rate change or a reboot, or when gaps lost in transit
        make over ``BRIDGE_MAX_SHARE`` of the bed's last ``BRIDGE_WINDOW_S``: the bed starts again; a device that lost
        2 of every 3 packets had its asystole and pause timers run over lines drawn across most of its ECG: false
        HIGH asystole and extreme bradycardia)."""
        if not (chunk.reset and chunk.missing > 0 and self.cfg.bridge_s > 0):
            return chunk
        st = (self.aux if chunk.lead else self.beds).get(chunk.patient)
        if st is None or st.fs != chunk.fs or not len(chunk.samples) or chunk.warmup:
            return chunk
        seg = st.segmenter
        end = st.seg_offset + seg.total  # the bed's next sample
        gap = chunk.start - end
        last = seg.last_sample
        if gap == chunk.missing > 0:
            st.lost.append((end, chunk.start))
        since = chunk.start - BRIDGE_WINDOW_S * chunk.fs
        while st.lost and st.lost[0][1] <= since:
            st.lost.popleft()
        if (gap != chunk.missing or gap > self.cfg.bridge_s * chunk.fs or not math.isfinite(last)
                or not math.isfinite(float(chunk.samples[0]))):
            return chunk
        if sum(b1 - max(b0, since) for b0, b1 in st.lost) > BRIDGE_MAX_SHARE * BRIDGE_WINDOW_S * chunk.fs:
            return chunk  # most of the signal is missing: signal loss (the bed starts again), not a bridge
        line = np.linspace(last, float(chunk.samples[0]), gap + 2, dtype=np.float64)[1:-1].astype(chunk.samples.dtype)
        _trim_bridges(st, chunk.start)
        st.bridges.append((end, chunk.start))
        if chunk.dropped:
            st.nulls.append((end, end + chunk.dropped))
        st.bridged += 1
        seg.hr.bridge(seg.total, seg.total + gap)
        seg.detector.bridge(seg.total - seg.base, seg.total - seg.base + gap)
        st.watch_in.put(end, InOrder.GAP, (end, chunk.start))  # a bridged stretch
        return dataclasses.replace(chunk, samples=np.concatenate([line, chunk.samples]), start=end, reset=False,
                                   missing=0, t0=chunk.t0 - gap / chunk.fs)

    def _near_bridge(self, st: Bed, index: float, rr_prev_s: float = 0.0) -> bool:
        """Whether a QRS at absolute sample ``index`` lies near a bridged stretch: its beat window (``rep``'s
        ``pre_s`` before to ``post_s`` after) touches it, or its preceding interval ``rr_prev_s`` spans it and is
        long enough (over 1.5 times the bed's mean RR) to hold a QRS the gap hid."""
        if not st.bridges:
            return False
        before, after = round(self.rep.pre_s * st.fs), round(self.rep.post_s * st.fs)
        if any(index - before < b1 and index + after > b0 for b0, b1 in st.bridges):
            return True
        rr = st.segmenter.hr.rr
        if not rr or rr_prev_s * st.fs <= 1.5 * sum(rr) / len(rr):
            return False
        return any(index - rr_prev_s * st.fs < b1 and index > b0 for b0, b1 in st.bridges)

    def _segment_round(self, chunks: Sequence[Chunk]) -> list[list[Beat]]:
        t0 = time.perf_counter()
        chunks = [self._bridge(c) for c in chunks]
        out: list[list[Beat]] = [[] for _ in chunks]
        live: list[tuple[int, Bed]] = []
        for k, chunk in enumerate(chunks):
            st = self.bed(chunk)
            if chunk.warmup:  # replayed after a takeover: the segmenter's state only (the previous owner judged these)
                st.segmenter.push(chunk.samples)
                st.quality.push(chunk.samples, beats_found=0)
                st.last_chunk_mono = time.monotonic()
                continue
            # a second lead is not shown, nor scored: only a sink that draws it where the bed's rate is counted on it
            # (ConsoleView.second_leads) sees its chunks
            for sink in self._all_sinks:
                if not chunk.lead or getattr(sink, "second_leads", False):
                    sink.on_chunk(chunk)
            if len(chunk.samples) == 0:  # sources never send these, but an empty chunk must not count as data
                continue
            live.append((k, st))
        for _, st in live:  # a bed's two leads in this round: the agreement there before its first lead's QRS
            if st.lead and st.patient not in self.agree:  # (a first round of 60 s gave it none of them)
                self._agreement(st)
        t1 = time.perf_counter()
        found = segment_round([st.segmenter for _, st in live], [chunks[k].samples for k, _ in live])
        t2 = time.perf_counter()
        self.stats.time_segmenters += t2 - t1
        # the quality checks of every bed at once (their windows as one array); their verdicts at fixed points of
        # each stream are in each bed's QualityMonitor.points
        push_many([st.quality for _, st in live], [chunks[k].samples for k, _ in live], [len(b) for b in found])
        self.stats.time_quality += time.perf_counter() - t2
        for (k, st), beats in zip(live, found, strict=True):
            out[k] = self._segmented(st, chunks[k], beats)
        # the typing and VF work analysed once the whole round is queued: a bed's two leads' chunks together, so that
        # both leads' inputs reach the watches in the order of their samples (Monitor._release_lead)
        if live and self._rhythm_due(time.monotonic(), replay=all(chunks[k].replay for k, _ in live)):
            t3 = time.perf_counter()
            self.flush_vf()
            self.stats.time_rhythm += time.perf_counter() - t3  # (the lethal watches' work, as in _watch_rhythm)
        took = time.perf_counter() - t0
        self.stats.time_segment += took
        self.stats.round_max = max(self.stats.round_max, took)
        return out

    def _segmented(self, st: Bed, chunk: Chunk, beats: list[Beat]) -> list[Beat]:
        """What follows a chunk's segmentation and quality check: beat indices, technical alarms, the lethal
        watches."""
        st.last_chunk_mono = now = time.monotonic()
        st.last_chunk_s = len(chunk.samples) / chunk.fs
        st.replay = chunk.replay
        if st.lead:  # a second lead: its lethal watch only; no beat of it is scored, and one technical alarm shown
            self._watch_rhythm(st, chunk.samples, now=now)
            self._second_lead_off(st, chunk.samples)
            bed = self.beds.get(chunk.patient)
            if bed is None:
                return []
            self._amplitude(bed)
            agree = self._agreement(st)
            if agree is None:
                return []
            o, sg = st.seg_offset, st.segmenter
            agree.second([f + o for f, _ in sg.found], [w + o for w in sg.found_when], o + sg.total, beats=beats,
                         offset=o)
            # the first lead's beats that waited for this lead's QRS, and this lead's QRS where the first showed none
            # (returned in this chunk's place: the same bed's)
            released = agree.push((), second_alive=st.off_since is None)
            self.stats.segmented += len(released)
            return released
        st.book.at = st.seg_offset + st.segmenter.total
        if st.book.restored:
            self.emit(st.book.expire_restored())
        if beats and (st.seg_offset or not chunk.replay):
            # live: the device's packet was complete at its last sample's time; end-to-end latency starts there
            # (none where the device's clock is not this machine's: counted, Stats.e2e_clock_off)
            sent = None if chunk.replay or chunk.clock_off else chunk.t0 + len(chunk.samples) / chunk.fs
            if chunk.clock_off:
                self.stats.e2e_clock_off += len(beats)
            beats = [dataclasses.replace(b, index=b.index + st.seg_offset, sent=sent) for b in beats]
        if beats and st.bridges:  # what lost samples may have hidden is not judged (_bridge)
            beats = [dataclasses.replace(b, noisy=True) if not b.noisy and self._near_bridge(st, b.index, b.rr_prev_s)
                     else b for b in beats]
        # the flat-line and saturation verdicts made at the fixed points this chunk passed (QualityMonitor.step)
        for at, v in st.quality.points:
            self._follow(st, Condition.LEADS_OFF, v.flat, index=st.seg_offset + at)
        # NaN or a flat run: the segmenter restarted after it.  One cause, one alarm: missing samples are "signal
        # loss"; a flat run (a disconnected lead holding its last value) is the "leads off" raised above
        if st.segmenter.signal_loss and not (ok := np.isfinite(chunk.samples)).all():
            # at the first missing sample, not at the chunk's end: a run that began 0.5 s into a 10 s chunk was placed
            # 9.5 s late (at 0.25 s packets the bed restarts at the gap, placed where it began)
            first = st.seg_offset + st.segmenter.total - len(chunk.samples) + int(np.argmin(ok))
            self.emit(st.technical.raise_(Condition.SIGNAL_LOSS, "no valid samples; QRS detection restarted",
                                          index=first))
        # a signal with no QRS is asystole (HIGH, below), not a technical condition; a saturated one is noise
        for at, v in st.quality.points:
            self._follow(st, Condition.NOISY_SIGNAL, v.saturated, index=st.seg_offset + at)
        self._amplitude(st)
        t2 = time.perf_counter()
        self._watch_rhythm(st, chunk.samples, now=now)
        self.stats.time_rhythm += time.perf_counter() - t2
        # cleared at the first beat found after the loss (where it is, whatever the chunks): a beat this chunk closed
        # from before its lost samples is no sign that the signal is back
        back = (st.seg_offset + st.segmenter.restarted_at) if st.segmenter.signal_loss else -math.inf
        after = next((b for b in beats if b.index >= back), None)
        if after is not None:
            self._follow(st, Condition.SIGNAL_LOSS, False, index=after.index)
        elif (Condition.SIGNAL_LOSS in st.book.active and Condition.ASYSTOLE in st.lethal.active
              and not st.segmenter.in_loss and (asys := st.book.active.get(Condition.ASYSTOLE)) is not None):
            # the signal is back and shows no QRS: asystole says so (this lead's own watch judges it only on a signal
            # it can read; not the second lead's asystole while this one is lost); "signal loss" beside it, on until
            # a beat came, told the nurse the samples were still missing (a newcomer, session 25).  Once the samples
            # are back: an asystole raised before the loss (or carried over a change of rate, its index in the old
            # numbering) is no judgement of them, and the loss clears where they start, not at the asystole's index
            # (session 40: a NaN run at 20-21.5 s in an asystole from 4.75 s cleared at 4.75 s, before its raise; a
            # change of rate at 19.84 s at 5.95 s; and, while the NaN went on, at 21.25 s)
            loss = st.book.active[Condition.SIGNAL_LOSS]
            where = asys.beat_index
            if asys.record_s is not None and loss.record_s is not None and asys.record_s < loss.record_s:
                where = st.seg_offset + st.segmenter.restarted_at
            self._follow(st, Condition.SIGNAL_LOSS, False, index=where)
        if st.bridges or Condition.PACKET_LOSS in st.book.active:
            self._packet_loss(st)
        st.clean_since_reject += 1
        if st.clean_since_reject >= CLEAN_CHUNKS and time.monotonic() - st.rejected_mono >= BAD_INPUT_CALM_S:
            self._follow(st, Condition.BAD_INPUT, False)
        if (agree := self.agree.get(st.patient)) is not None:  # a bed with a second lead: its QRS confirm these
            aux = self.aux.get(st.patient)
            if aux is None or aux.fs != st.fs or agree.fs != st.fs:  # the second lead has gone, or another rate
                beats = agree.flush() + beats
                self._unconfirmed[st.patient] = agree.dropped
                self._second_found[st.patient] = agree.inserted
                del self.agree[st.patient]
            else:
                o, sg = st.seg_offset, st.segmenter
                agree.first([f + o for f, _ in sg.found], [w + o for w in sg.found_when], o + sg.total,
                            passed=[f + o for f in sg.passed])
                beats = agree.push(beats, second_alive=aux.off_since is None)
        self.stats.segmented += len(beats)
        return beats

    def _agreement(self, aux: Bed) -> LeadAgreement | None:
        """The two-lead QRS agreement of the bed whose second lead is ``aux`` (made for a new bed or a new rate: learnt
        again, the bed's counts going on); None while the bed's first lead is not there or at another rate."""
        bed = self.beds.get(aux.patient)
        if bed is None or bed.fs != aux.fs:
            return None
        agree = self.agree.get(aux.patient)
        if agree is None or agree.fs != aux.fs:
            dropped = agree.dropped if agree is not None else self._unconfirmed.pop(aux.patient, 0)
            found = agree.inserted if agree is not None else self._second_found.pop(aux.patient, 0)
            agree = self.agree[aux.patient] = LeadAgreement(aux.fs, rep=self.rep)
            agree.dropped, agree.inserted = dropped, found
        return agree

    def _second_lead_off(self, aux: Bed, chunk: np.ndarray) -> None:
        """The bed's "second lead off" technical alarm (LOW): raised once the second lead has been off or lost (its
        samples lost, :attr:`Segmenter.lost_runs`, a flat line among them, or missing between two of its streams; or a
        flat-line verdict at a tick, :class:`QualityMonitor`) for ``SECOND_LEAD_OFF_S`` of signal, cleared once it has
        been read again for ``SECOND_LEAD_BACK_S`` without a break (a lead lost now and then counts as off from its
        first loss).  The bed's alarms then rest on the first lead alone (:class:`LeadFusion`), and a person should
        know; noise on the second lead is not this condition.

        The chunk's samples (``chunk``) give the lead's off and back events at their samples, and the signal's progress
        at every ``TICK_S`` of absolute samples; they go to its watch's inputs (:class:`InOrder` ``OFF``) and are judged
        in the order of the samples with the first lead's (:meth:`_lead_off_input`): raised and cleared at the sample
        the condition was met, whatever the packets.  Judged once per chunk from the lead's watch (held or not, told a
        round's inputs after the round), a second lead flat from the start (CinC 2015 a306s's V) raised it at 10.2 s
        with 0.25 s packets and 30 s with 10 s ones (60 s with every record played at once), and a return shorter than
        a packet was not seen."""
        seg, off0, put = aux.segmenter, aux.seg_offset, aux.watch_in.put
        starts, points = _outside_losses(seg, aux.quality.points)
        for a in starts:
            put(off0 + a, InOrder.OFF, (off0 + a, True))
        for at, q in points:
            put(off0 + at, InOrder.OFF, (off0 + at, q.flat))
        # and the time come so far, at every TICK_S of absolute samples (the same samples whatever the packets): where
        # the alarm falls due while the first lead is off, it is judged again there
        step = chunk_size(TICK_S, aux.fs)
        end = off0 + seg.total
        for t in range((end - len(chunk) + step) // step * step, end + 1, step):
            put(t, InOrder.OFF, (t, None))

    def _lead_off_input(self, aux: Bed, a: tuple[object, ...]) -> None:
        """One ``OFF`` input of the second lead ``aux`` (:meth:`_second_lead_off`): ``(sample, off)``, ``off`` None
        where the lead's signal has only come so far."""
        bed = self.beds.get(aux.patient)
        if bed is None:
            return
        t, off = cast(int, a[0]), cast("bool | None", a[1])
        if off is None:
            self._second_lead_until(bed, aux, t)
        else:
            self._second_lead_event(bed, aux, t, off)

    def _second_lead_event(self, bed: Bed, aux: Bed, t: int, off: bool) -> None:
        """The second lead off (``off``) or read at absolute sample ``t`` (:meth:`_second_lead_off`): the alarm as it
        stood before ``t`` first (a lead back at the sample the first lead came back at raises nothing)."""
        self._second_lead_until(bed, aux, t - 1)
        if off:
            if aux.off_since is None or aux.on_since is not None:
                aux.off_at = t
            aux.off_since = t if aux.off_since is None else aux.off_since
            aux.on_since = None
        elif aux.off_since is not None and aux.on_since is None:
            aux.on_since = t

    def _second_lead_until(self, bed: Bed, aux: Bed, now: int) -> None:
        """:meth:`_second_lead_off`'s alarm as it stands at absolute sample ``now`` (every sample of the second lead
        before it told): cleared at ``SECOND_LEAD_BACK_S`` after the lead came back, raised at ``SECOND_LEAD_OFF_S``
        after it went off (or where it went off again after a shorter return).  Not raised while the first lead is off
        or lost too (its own alarm, leads off or signal loss, says the bed cannot be read): then ``SECOND_LEAD_BACK_S``
        after it came back, if the second lead has not."""
        if aux.off_since is None:
            return
        fs, active = aux.fs, Condition.SECOND_LEAD_OFF in bed.book.active
        if aux.on_since is not None:
            back = aux.on_since + round(SECOND_LEAD_BACK_S * fs)
            if back <= now:
                aux.off_since = aux.on_since = None
                if active:
                    self._follow(bed, Condition.SECOND_LEAD_OFF, False, index=back)
            return
        at = max(aux.off_since + round(SECOND_LEAD_OFF_S * fs), aux.off_at)
        first_back = bed.lethal.back_at
        if first_back is not None and first_back > aux.off_since:
            # the first lead was off too and is back: the second lead has SECOND_LEAD_BACK_S to follow it (both leads
            # of a device back within milliseconds restart at their own first samples, ticks a few samples apart:
            # raised and cleared 2 s later on CinC v200s, v381l, v505l, at other samples with other packets)
            at = max(at, first_back + round(SECOND_LEAD_BACK_S * fs))
        if at <= now and not active and not bed.lethal.held:
            # at the sample it fell due, or where it was judged after the first lead's return (its progress told every
            # TICK_S of absolute samples: the same sample whatever the packets)
            at = at if now - chunk_size(TICK_S, fs) < at else now
            self.emit(bed.technical.raise_(Condition.SECOND_LEAD_OFF, f"for {(at - aux.off_since) / fs:.0f} s",
                                           index=at))

    def _packet_loss(self, st: Bed) -> None:
        """The packet-loss technical alarm (LOW): raised while the bridged gaps (:meth:`_bridge`) hold
        ``PACKET_LOSS_ON`` (5 %) or more of the bed's last ``PACKET_LOSS_S`` (60 s) of signal, cleared under
        ``PACKET_LOSS_OFF`` (2 %): a link that loses packets costs verdicts (the beats beside each gap get none) and
        a person should know why."""
        _trim_bridges(st, st.seg_offset + st.segmenter.total)  # up to the bed's next sample
        share = sum(b1 - b0 for b0, b1 in st.bridges) / (PACKET_LOSS_S * st.fs)
        on = Condition.PACKET_LOSS in st.book.active
        present = share >= (PACKET_LOSS_OFF if on else PACKET_LOSS_ON)
        if present and not on:
            # a payload refused as malformed leaves a gap in the device's stream too: say so where it did lately
            refused = ("; the device also sent malformed packets, refused (bad input): their samples are among the "
                       "lost" if Condition.BAD_INPUT in st.book.active else "")
            # and samples the device itself sent as missing are no fault of the network: say how much of it they are
            null = sum(b1 - b0 for b0, b1 in st.nulls) / (PACKET_LOSS_S * st.fs)
            own = ("" if not null else "; all of it samples missing from the signal itself (null or NaN), not lost "
                   "in transit" if null >= share else f"; {null:.0%} of it samples missing from the signal itself "
                   "(null or NaN)")
            self.emit(st.technical.raise_(Condition.PACKET_LOSS,
                                          f"{share:.0%} of the last {PACKET_LOSS_S:g} s lost{refused}{own}"))
        elif not present:
            self._follow(st, Condition.PACKET_LOSS, False)

    def _amplitude(self, bed: Bed) -> None:
        """"implausible amplitude" (technical, MEDIUM) once either lead's median QRS peak to peak over its last
        ``amplitude_beats`` QRS (:attr:`Segmenter.qrs_amplitude`) has been over ``implausible_qrs_mv`` (mV) for
        ``AMPLITUDE_HOLD_S`` of signal: a gain 10 or 1000 times off, which the alarms cannot see for themselves (a
        newcomer's MIT-BIH records with their header gain a tenth of the true one, session 54: 138 beats of 208 typed
        artifact and 1 ventricular against 122 ventricular, a VF spliced in raised nothing, another VF's alarm stayed
        on over 140 s of sinus rhythm, and nothing said why); cleared once every lead that has a median is back under
        it.  A lead without a median yet (its first QRS, or none: ECG5000's units have no QRS floor and are never
        judged) leaves it as it is."""
        leads = [(bed, "first lead")]
        if (aux := self.aux.get(bed.patient)) is not None:
            leads.append((aux, "second lead"))
        big: list[str] = []
        known = False
        for st, name in leads:
            limit, amp = st.segmenter.cfg.implausible_qrs_mv, st.segmenter.qrs_amplitude
            if limit <= 0 or amp is None:
                continue
            known = True
            if amp > limit:
                big.append(f"{name}'s QRS {amp:.0f} mV (median of its last {len(st.segmenter.qrs_ptp)})")
        now = bed.seg_offset + bed.segmenter.total
        if big:
            if bed.amp_over_since is None:
                bed.amp_over_since = now
            if (Condition.IMPLAUSIBLE_AMPLITUDE not in bed.book.active
                    and now - bed.amp_over_since >= round(AMPLITUDE_HOLD_S * bed.fs)):
                over = bed.segmenter.cfg.implausible_qrs_mv
                self.emit(bed.technical.raise_(Condition.IMPLAUSIBLE_AMPLITUDE,
                                               f"{', '.join(big)}, over {over:g} mV for {AMPLITUDE_HOLD_S:g} s",
                                               index=now))
        elif known:
            bed.amp_over_since = None
            self._follow(bed, Condition.IMPLAUSIBLE_AMPLITUDE, False, index=now)

    def _follow(self, st: Bed, condition: Condition, present: bool, *, index: int | None = None) -> None:
        """``st.technical.follow(condition, present, index=index)``, the clearing skipped where it would do nothing
        (the condition neither active nor restored in the bed's book: ``AlarmBook.clear`` only pops those), as it is
        at almost every chunk."""
        if present or condition in st.book.active or condition in st.book.restored:
            self.emit(st.technical.follow(condition, present, index=index))

    def _watch_rhythm(self, st: Bed, samples: np.ndarray, *, now: float) -> None:
        """The lethal and rate conditions (:mod:`ecgmon.monitor.lethal`): every QRS the segmenter decided in this
        chunk, the signal's progress every ``TICK_S`` for the asystole and pause timers, and (from :meth:`_flush_vf`)
        each beat's type (:class:`VTyper`) and the bed's VF windows (analysed with every bed's in the pool).  Each goes
        into the bed's :class:`InOrder` at the sample it was decided at, and reaches the watch once the bed's typer
        and VF detector have analysed the signal up to there (:meth:`_release`): in the order of the signal, whatever
        the packets and the other beds."""
        off, seg, put = st.seg_offset, st.segmenter, st.watch_in.put
        # missing samples or a flat run in this chunk: the segmenter restarted after each; the watch is told at each
        # run's first sample (not the chunk's: with long packets the ticks before the run read as the signal back,
        # and the run's place depended on the packets), and no tick within a run says the signal is back (a lead lost
        # in every packet, a two-lead device's null samples, must not read as back between them)
        starts, points = _outside_losses(seg, st.quality.points)
        for a in starts:
            put(off + a, InOrder.GAP, ())
        for (fid, hr), at, when in zip(seg.found, seg.found_at, seg.found_when, strict=True):
            # the signal quality of the stretch rated last before the QRS was decided (none yet in a stream's first
            # seconds): as its beat's (Beat.noisy), whatever the device's packets; to the watch where the detector
            # decided it (a search-back's QRS later than its found_at)
            r = seg.quality.rating_at(at)
            f = round(fid)
            put(when + off, InOrder.QRS, (f + off, hr, r is not None and r.noisy, r is not None))
            st.decided.append((f, when))
        for at, q in points:  # every TICK_S of the stream, with the flat-line verdict there
            put(at + off, InOrder.TICK, (at + off, q.flat, q.clipped))
            if q.clipped:
                st.sat_ticks.append(at + off)
        st.rhythm_x.append(samples)
        st.rhythm_fids += [f for f, _ in seg.found]
        st.rhythm_n += len(samples)
        if st.rhythm_n >= (st.rhythm_block or RHYTHM_BLOCK_S * st.fs):
            self._type_and_vf(st, now)

    def _rhythm_due(self, now: float, *, replay: bool) -> bool:
        """Whether the queued typing and VF work is analysed now: once about a block of every bed is queued (the
        pool's batch at most); for a live source also once the oldest has waited ``max_wait_s`` of wall time.  A
        replay is judged by signal alone, so that its alarms do not depend on how fast the machine was (the
        rate holds and the typed beats' artifact flag follow the analysed windows)."""
        pool = self.vfpool
        if max(pool.pending, len(self._vt_jobs)) >= min(pool.batch, max(1, len(self.beds))):
            return True
        if replay:
            return False
        return pool.due(now) or (self._vt_oldest is not None and now - self._vt_oldest >= pool.max_wait_s)

    def _type_and_vf(self, st: Bed, now: float) -> None:
        """The bed's gathered samples to its beat typer (ventricular tachycardia) and its VF detector; both
        analyse every bed's queued work together (:meth:`flush_vf`)."""
        if not st.rhythm_n:
            return
        x = np.concatenate(st.rhythm_x) if len(st.rhythm_x) > 1 else st.rhythm_x[0]
        # the typer's samples wait for the flush too, so that every bed's are band-passed together (add_many)
        self._vt_jobs.append((st, st.vtyper, x, st.rhythm_fids))
        if self._vt_oldest is None:
            self._vt_oldest = now
        if st.rhythm_fids:
            st.typer_fid = max(st.typer_fid, st.seg_offset + max(st.rhythm_fids))
        self.vfpool.add((st, st.vfbank), st.vfbank, x, now)
        st.rhythm_x, st.rhythm_fids, st.rhythm_n = [], [], 0
        st.rhythm_block = round(RHYTHM_BLOCK_S * st.fs)

    def flush_vf(self, *, final: bool = False) -> None:
        """Type every queued beat and analyse every queued VF window now (when enough are waiting or the oldest
        has waited long enough, and at the end; with ``final`` every bed's gathered samples first)."""
        t0 = time.perf_counter()
        self._flush_vf(final=final)
        took = time.perf_counter() - t0
        self.stats.flushes += 1
        self.stats.flush_max = max(self.stats.flush_max, took)

    def _flush_vf(self, *, final: bool = False) -> None:
        if final:
            now = time.monotonic()
            for st in (*self.beds.values(), *self.aux.values()):
                self._type_and_vf(st, now)
        # each bed's typed QRS for its alarm policy, handed over once the VF windows below are analysed too: a beat
        # the policy judges then finds every lethal alarm up to its sample raised (its alarm chains), whether its
        # verdict came before its type (judged here) or after (judged in judge())
        for_policy: dict[int, tuple[Bed, list[QrsType]]] = {}
        # the VF windows first, so that each beat typed below is judged in artifact or not by the windows over its
        # own stretch (by sample index), not by whichever window the previous flush ended on: that depended on
        # where the bed's rhythm blocks fell (CinC 2015 v329l: four beats of a VT run in artifact or not by the
        # block phase alone, and the VT alarm with them)
        windows = [(cast(tuple[Bed, VFBank], key), w) for key, w in self.vfpool.flush()]
        for (st, bank), w in windows:
            if st.vfbank is bank:
                st.vf_flags.append((w.end + st.seg_offset, w.unreadable))
        # a typer's blocks queued since the last flush, joined in order (one add of their concatenation leaves the
        # typer as the adds one by one would: its filter and its fiducials run on)
        blocks: dict[int, tuple[Bed, VTyper, list[np.ndarray], list[float]]] = {}
        if self._vt_jobs:
            queued, self._vt_jobs, self._vt_oldest = self._vt_jobs, [], None
            for st, typer, x, fids in queued:
                b = blocks.setdefault(id(typer), (st, typer, [], []))
                b[2].append(x)
                b[3].extend(fids)
            add_many([typer for _, typer, _, _ in blocks.values()],
                     [np.concatenate(xs) if len(xs) > 1 else xs[0] for _, _, xs, _ in blocks.values()],
                     [fids for _, _, _, fids in blocks.values()])
            jobs = [(st, job) for st, typer, _, _ in blocks.values() if (job := typer.stage()) is not None]
            # each beat in artifact or not (the VF windows over its stretch, clipping), known before it is typed: a
            # beat in artifact does not enter the bed's template (VTyperConfig.artifact_skip)
            arts: list[list[bool]] = []
            for st, job in jobs:
                off, need = st.seg_offset, job.typer.need_after
                arts.append([self._beat_artifact(st, f + off) or self._clipped(
                    st, f + off - round(TICK_S * st.fs), f + off + need) for f in job.fids.tolist()])
                job.artifact = np.asarray(arts[-1], dtype=bool)
            for st, typer, _, _ in blocks.values():
                if st.vtyper is typer:
                    self._trim_typed(st)
            for (st, job), typed, art in zip(jobs, type_staged([j for _, j in jobs]), arts, strict=True):
                if st.vtyper is not job.typer:  # queued before the bed's segmentation restarted
                    continue
                off, need = st.seg_offset, st.vtyper.need_after
                # the alarm policy types the first lead's beats (those scored), not a second lead's
                qrs = for_policy.setdefault(id(st), (st, []))[1] if not st.lead else None
                # a QRS in the stream's first VF window (window_s) has no quality verdict of its own stretch yet: the
                # policy takes no typer-alone ventricular verdict there, as in artifact (motion as electrodes settle at
                # a recording's start was typed a ventricular couplet; shared/cases K01); the lethal watch judges it
                unrated = round(st.vfbank.cfg.window_s * st.fs)
                for vb, artifact in zip(typed, art, strict=True):
                    # decided once the typer had its look-ahead, and not before its QRS was decided
                    while st.decided and st.decided[0][0] < vb.index:
                        st.decided.popleft()
                    at = st.decided.popleft()[1] if st.decided and st.decided[0][0] == vb.index else vb.index
                    st.watch_in.put(off + max(vb.index + need, at), InOrder.TYPED,
                                    (vb.index + off, vb.ventricular, artifact, vb.p_ventricular, vb.prev_corr,
                                     vb.width_s, vb.corr, vb.prev2_corr, vb.epoch, vb.amp))
                    if qrs is not None:
                        qrs.append(QrsType(vb.index + off, vb.p_ventricular, vb.ventricular, vb.width_s,
                                           artifact, vb.prev_corr, unrated=vb.index < unrated))
        for (st, bank), w in windows:
            if st.vfbank is not bank:  # queued before the bed's segmentation restarted: another index basis
                continue
            st.vf_artifact = w.unreadable
            end = w.end + st.seg_offset
            st.watch_in.put(end, InOrder.VF, (end, w.vf, w.artifact))
        # every bed whose typer and VF detector have analysed their samples: its watch told what it can be now (its
        # lethal alarms), then its typed QRS handed to its alarm policy, whose alarm chains read those alarms
        t0 = time.perf_counter()
        ready = [(st, typer) for st, typer, _, _ in blocks.values() if st.vtyper is typer]  # (else: queued before
        for st, typer in ready:                                                # the bed's segmentation restarted)
            st.horizon = st.seg_offset + typer.total
        for st, typer in ready:
            self._release_lead(st)
            if (policy := for_policy.get(id(st))) is not None:
                for t in policy[1]:
                    self._policy(st, st.policy.typed(t))
                # every QRS before this sample has been found and typed (all the bed's staged jobs were in this flush;
                # none before its last QRS handed to the typer is still to be found), and the watch told every input
                # up to it: beats before it wait no longer
                self._policy(st, st.policy.progress(min(st.seg_offset + typer.total - typer.need_after,
                                                        st.typer_fid + 1, st.released + 1)))
        self.stats.time_settle += time.perf_counter() - t0
        if final:
            for st in (*self.beds.values(), *self.aux.values()):
                if (other := self._partner(st)) is not None and other.fs == st.fs:
                    self._release_pair(st, other, math.inf)
                else:
                    self._release(st)

    def _vf_window(self, st: Bed, end: int, vf: bool, artifact: bool) -> list[Change]:
        """A VF window ending at absolute sample ``end`` told to the bed's watch (by :meth:`_release`):
        fibrillatory (``vf``) unless the QRS over it, up to ``QRS_DECIDED_S`` before its end (all told by then), are
        an organised rhythm; and the VF alarm's step."""
        lo, hi = end - round(st.vfbank.cfg.window_s * st.fs), end - round(QRS_DECIDED_S * st.fs)
        # (a window over clipped signal stays the VF detector's to judge: as artifact it cost true VF clipped by a
        # device's range, VFDB 609, 418, 423 clipped at the 70-80th percentile, a reviewer, session 39)
        vf = vf and not st.lethal.organised(lo, hi)
        if st.vfalarm.active and Condition.VFIB not in st.lethal.active:
            st.vfalarm.end()  # the watch ended the episode (asystole took over)
        # the alarm's episode ends early over a rhythm back to order (3 QRS in the 3.5 s: about 50 bpm or faster)
        calm = not vf and st.vfalarm.active and st.lethal.organised(lo, hi, beats=ORGANISED_CLEAR_BEATS)
        return st.lethal.vf(end, st.vfalarm.step(vf, artifact, calm), vf=vf, artifact=artifact)

    def _partner(self, st: Bed) -> Bed | None:
        """The other lead of a bed with a second lead (its first lead for a second lead's, and the reverse)."""
        if st.patient not in self.fusion:
            return None
        other = self.aux.get(st.patient) if not st.lead else self.beds.get(st.patient)
        return other if other is not st else None

    def _release_lead(self, st: Bed) -> None:
        """Tell lead ``st``'s watch its inputs up to its :attr:`Bed.horizon`.  Of a bed with a second lead, the
        two leads' inputs go in the order of their samples, up to the sample both leads' are known to
        (:meth:`_release_pair`): the bed's conditions are judged from both leads as they were at that sample, whatever
        the packets' length.  Told one lead at a time, a first lead's whole packet came before the second lead's: with
        packets of 4-8 s, its asystole was raised and cleared again (the QRS back) before the second lead's watch and
        the P-wave judgement (:meth:`LeadFusion._both_want`) had come to the standstill, which read the second lead's
        QRS after it too: a 5.6 s standstill with P waves raised nothing with two leads (a reviewer, session 50).  A
        lead ahead of the other waits for it (a flush may come between a round's two leads' chunks: a stream restarting
        flushes every bed's work, and a round may hold one lead's chunk without the other's), but live not once the
        other lead's chunks have stopped coming (``PARTNER_WAIT_S`` of wall time behind this lead's): a second lead
        whose samples stop must not hold the first lead's alarms.  A recording's leads end together, whatever the
        wall time between its rounds (at full speed 254 beds' 4 s chunks took over 1 s a round)."""
        other = self._partner(st)
        if other is None or other.fs != st.fs:
            self._release(st, st.horizon)
            return
        self._release_pair(st, other, min(st.horizon, other.horizon))
        if not (st.replay and other.replay) and other.last_chunk_mono < st.last_chunk_mono - PARTNER_WAIT_S:
            self._release(st, st.horizon)
        if (agree := self.agree.get(st.patient)) is not None:  # what its P-wave judgement may still ask of it
            agree.judged_at = min(st.released, other.released)

    def _release_pair(self, a: Bed, b: Bed, horizon: float) -> None:
        """Both leads' watch inputs decided at or before ``horizon``, in the order of their samples (at one sample the
        first lead's first, as a packet's were told)."""
        due = [(at, st.lead, kind, args, st) for st in (a, b) for at, kind, args in st.watch_in.due(horizon)]
        due.sort(key=lambda d: (d[0], d[1]))  # (stable: each lead's own order kept)
        # the bed judged once both leads are told a sample's inputs (each lead's ticks fall on the same samples): a
        # first lead judged before the second lead's tick at its sample took that lead's VT as the bed's as the first
        # lead went off, and cleared it at once as the second went off too (CinC v743l's end, both leads flat)
        told: list[tuple[Bed, list[Change], int | None]] = []
        for k, (at, _, kind, args, st) in enumerate(due):
            if kind == InOrder.OFF:
                self._lead_off_input(st, args)
            else:
                told.append((st, *self._input(st, kind, args)))
            if k + 1 == len(due) or due[k + 1][0] != at:
                if len({s.lead for s, _, _ in told}) > 1:
                    # both leads told at this sample: the bed judged once, on both leads' changes (judged on the first
                    # lead's alone, the second lead's readability already read its own changes still to come)
                    first = [x for x in told if not x[0].lead]
                    wheres = [w for _, _, w in told if w is not None]
                    self._lethal(first[0][0], [c for _, chs, _ in first for c in chs], max(wheres, default=None),
                                 other=[c for s, chs, _ in told if s.lead for c in chs])
                else:
                    for s, changes, where in told:
                        self._lethal(s, changes, where)
                told = []
        for st in (a, b):
            st.released = _told(st, horizon)

    def _release(self, st: Bed, horizon: float = math.inf) -> None:
        """Tell the bed's lethal watch every input decided at or before absolute sample ``horizon`` (all: at a
        restart and at the end), in the order of the samples they were decided at (:class:`InOrder`); the caller
        knows that nothing decided up to ``horizon`` is still to come.  Their changes raise and clear the bed's
        alarms as they come."""
        for _, kind, a in st.watch_in.due(horizon):
            self._tell(st, kind, a)
        st.released = _told(st, horizon)

    def _tell(self, st: Bed, kind: int, a: tuple[object, ...]) -> None:
        """One input of the bed's lethal watch (:class:`InOrder`), its changes raising and clearing alarms."""
        if kind == InOrder.OFF:
            self._lead_off_input(st, a)
            return
        changes, at = self._input(st, kind, a)
        if changes or st.patient in self.fusion:  # (a second lead's watch is judged with the first's at every input)
            self._lethal(st, changes, at)

    def _input(self, st: Bed, kind: int, a: tuple[object, ...]) -> tuple[list[Change], int | None]:
        """One input told to the bed's lethal watch: its changes, and the sample it was decided at (None: a gap)."""
        watch = st.lethal
        changes: list[Change] = []
        if kind == InOrder.TICK:
            changes = watch.samples(a[0], leads_off=a[1], saturated=a[2])  # type: ignore[arg-type]
        elif kind == InOrder.QRS:
            changes = watch.qrs(a[0], hr_bpm=a[1], noisy=a[2], rated=a[3])  # type: ignore[arg-type]
        elif kind == InOrder.TYPED:
            changes = watch.typed(a[0], ventricular=a[1], artifact=a[2],  # type: ignore[arg-type]
                                  p_ventricular=a[3], prev_corr=a[4], width_s=a[5],  # type: ignore[arg-type]
                                  corr=a[6], prev2_corr=a[7], epoch=a[8],  # type: ignore[arg-type]
                                  amp=a[9])  # type: ignore[arg-type]
        elif kind == InOrder.VF:
            changes = self._vf_window(st, *a)  # type: ignore[arg-type]
        elif a:  # a bridged stretch
            watch.bridge(*a)  # type: ignore[arg-type]
        else:  # the signal was lost
            watch.gap()
        return changes, a[0] if kind != InOrder.GAP and a else None  # type: ignore[return-value]

    @staticmethod
    def _beat_artifact(st: Bed, index: int) -> bool:
        """Whether the QRS at absolute sample ``index`` lies in artifact: the noise verdict
        (:attr:`ecgmon.segmentation.vf.VFWindow.unreadable`, not the VF alarm's more eager artifact verdict, which
        calls 14 % of MIT-BIH DS1's clean stretches artifact) of the latest VF window that ends at or before it
        (windows end every ``hop_s``, 1 s, so it covers the 3-4 s before the beat).  Every such window has been
        analysed by the time the beat is typed (the typer looks further ahead than 0 s), so the answer depends on the
        signal alone, not on when the bed's work was flushed.  Chosen over the latest window ending by the typer's
        look-ahead (which covers the beat itself half the time) on the development data: CinC 2015 dev 71.97 against
        71.66, VFDB dev VT 15/15 against 14/15 with 38 false lethal alarms against 39 (with the artifact verdict).
        Before the bed's first window: the last verdict known (``vf_artifact``)."""
        if st.bridges and any(index - round(0.5 * st.fs) < b1 and index + round(0.5 * st.fs) > b0
                              for b0, b1 in st.bridges):
            return True  # within half a second of lost samples (Monitor._bridge): its shape may be part made up
        for end, artifact in reversed(st.vf_flags):
            if end <= index:
                return artifact
        return st.vf_artifact

    def _finish_stream(self, st: Bed) -> None:
        """A bed's stream ends here (a gap, a change of rate, samples found misread): its last samples typed and
        analysed (every bed's queued work with them), then its watch told everything, in the order of the samples
        (with the other lead's up to where that lead has come, :meth:`_release_lead`)."""
        self._type_and_vf(st, time.monotonic())
        self.flush_vf()
        if (other := self._partner(st)) is not None and other.fs == st.fs:
            self._release_pair(st, other, other.horizon)
        self._release(st)

    @staticmethod
    def _trim_typed(st: Bed) -> None:
        """The bed's VF window verdicts and clipped ticks that no beat still to be typed can need dropped: those before
        its typer's oldest untyped QRS (or its latest sample) less ``TYPED_MARGIN_S`` (a QRS the detector finds late),
        the latest window before that kept.  Kept by count, 16 windows and 64 ticks, a round that brought over 16 s of
        a bed (a recording's chunks joined) lost the windows of its first beats before they were typed, and those
        took the noise verdict of the round's last window instead: CinC 2015 t683l played with 253 other records in
        4 s packets (rounds of up to 22 s of it) raised a false VT over beats in noise that alone it calls noise."""
        typer = st.vtyper
        start = st.seg_offset + (typer.pending[0] if typer.pending else typer.total) - round(TYPED_MARGIN_S * st.fs)
        flags = st.vf_flags
        while len(flags) >= 2 and flags[1][0] <= start:
            flags.popleft()
        ticks = st.sat_ticks
        while ticks and ticks[0] < start - round(TICK_S * st.fs):
            ticks.popleft()

    def _clipped(self, st: Bed, lo: int, hi: int) -> bool:
        """Whether a tick at absolute sample ``lo`` .. ``hi`` called the bed's signal clipped on both rails
        (:attr:`~ecgmon.segmentation.quality.Quality.clipped`, over the quality check's ``window_s`` before it):
        artifact for the typed beats over it (``LethalConfig.saturated_artifact``).  The callers' ``hi`` is a sample
        the bed's signal has been checked up to whatever its packets, so that the answer depends on the signal
        alone."""
        return self.lethal_cfg.saturated_artifact and any(lo <= t <= hi for t in st.sat_ticks)

    def _lethal(self, st: Bed, changes: list[Change], at: int | None = None, *,
                other: list[Change] | None = None) -> None:
        """Lead ``st``'s watch changes (decided at sample ``at``) -> the bed's alarms; ``other``: the other lead's
        changes at the same sample (a bed with a second lead, :meth:`LeadFusion.update`)."""
        fusion = self.fusion.get(st.patient)
        if fusion is not None:  # a bed with a second lead: both leads' conditions decide the bed's
            aux = self.aux.get(st.patient)
            bed = self.beds.get(st.patient)
            # a lead cannot be read: leads off or signal loss (its watch holds its timer), or noise ("ECG cannot be
            # analysed": its asystole held by artifact, or noisy QRS for asystole_s)
            changes = fusion.update(st.lead, changes, first_readable=bed is not None and _readable(bed.lethal),
                                    first_off=bed is None or bed.lethal.off,
                                    second_readable=aux is not None and _readable(aux.lethal), at=at,
                                    watches=(bed.lethal if bed is not None else None,
                                             aux.lethal if aux is not None else None), other=other)
            if bed is None:
                return
            st = bed
        for ch in changes:
            if ch.active and ch.condition in TechnicalAlarms.CONDITIONS:  # the watch's technical condition
                self.emit(st.technical.raise_(ch.condition, ch.message, index=ch.index))
            elif ch.active:
                self.emit(st.book.raise_(ch.condition, AlarmKind.PHYSIOLOGICAL, PRIORITY[ch.condition], ch.message,
                                         index=ch.index))
            else:
                self.emit(st.book.clear(ch.condition, index=ch.index, reason=ch.message))

    def judge(self, beats: list[Beat], scored: Scored) -> list[BeatScore]:
        """The scorer's results -> each bed's verdict (its :class:`BedModel`), technical conditions, alarm
        transitions and sinks, in beat order (so a verdict never depends on which beats shared its model call)."""
        t0 = time.perf_counter()
        now, wall = time.monotonic(), time.time()
        out = []
        for b, loss, residual in zip(beats, scored.losses, scored.residuals, strict=True):
            st = self.beds.get(b.patient)
            # released (another worker took its partition over) or discharged while the beat was queued; a beat cut
            # before its bed's discharge is the old patient's, whatever bed the device has now
            if st is None or (self._discharged and b.closed_mono <= self._discharged.get(b.patient, _NONE)[0]):
                self.stats.released += 1
                continue
            v = st.model.judge(b, float(loss), residual, now)
            if v.learnt_now:
                self.stats.learnt += 1
                self.save_learnt()
            # at the beat's own sample index: how far the segmentation has come meanwhile depends on the load
            if v.artifact is not None:
                self.emit(st.technical.follow(Condition.ARTIFACT, v.artifact, index=b.index))
            if v.rhythm_changed is not None:
                self.emit(st.technical.follow(Condition.RHYTHM_CHANGED, v.rhythm_changed, index=b.index))
            if v.shape_changed is not None:
                # not under a VT or VF alarm nor within chain_s after it (judged by the alarms' sample indices, as
                # the policy's chains are: at full speed the scorer and the lethal watch are not in step): a
                # sustained ventricular rhythm's beats are all unlike the learnt shape, and the lethal alarm says why
                lethal = st.book.chained(Condition.SHAPE_CHANGED, LETHAL_VENTRICULAR, b.index,
                                         self.policy_cfg.chain_s * st.fs)
                self._follow(st, Condition.SHAPE_CHANGED, v.shape_changed and not lethal, index=b.index)
            s = v.score
            st.beats += 1
            st.flagged += s.flagged
            st.last = s
            self.stats.beats += 1
            self.stats.latencies.append(s.latency_s)
            if b.sent is not None:
                if wall >= b.sent:
                    self.stats.e2e.append(wall - b.sent)
                    if b.index - st.seg_offset >= STEADY_S * st.fs:
                        self.stats.e2e_steady.append(wall - b.sent)
                else:  # a device clock ahead of this machine's (or a simulator faster than real time): no figure
                    self.stats.e2e_clock_ahead += 1
            self.stats.recent.append(now)
            for sink in self._all_sinks:
                sink.on_beat(s)
            # while its bed learns a beat has no verdict: the policy types it ventricular only where the typer alone
            # is sure (ectopy counted and advised from the first seconds); noisy beats: counted, no alarm
            self._policy(st, st.policy.update(s))
            out.append(s)
        self.stats.time_alarm += time.perf_counter() - t0
        return out

    def _policy(self, st: Bed, alarms: list[Alarm]) -> None:
        """The alarm policy's transitions, and its newly typed beats to every sink that takes them (``on_typed``)."""
        self.emit(alarms)
        typed = st.policy.take()
        if typed:
            for sink in self._all_sinks:
                if (on_typed := getattr(sink, "on_typed", None)) is not None:
                    for tb in typed:
                        on_typed(tb)

    def flush_policies(self) -> None:
        """The source has ended: every bed's beats still waiting for their type are judged now."""
        for st in self.beds.values():
            self._policy(st, st.policy.flush())

    def emit(self, alarms: list[Alarm]) -> None:
        """Every sink, in order: sinks that only record (``records_only``: alarm strips) at once; the durable
        ones (the journal) on the disk writer's thread; then, once that has returned (fsynced), the sinks
        that show or publish (console, headless lines, MQTT) and the rest."""
        for a in alarms:
            self.stats.alarms += 1
            for sink in self._all_sinks:
                if getattr(sink, "records_only", False):
                    sink.on_alarm(a)
            durable = [s for s in self._all_sinks if getattr(s, "durable", False)]
            if durable:
                self.disk.submit(functools.partial(_record, durable, a), functools.partial(self._show, a))
            else:
                self._show(a)

    def _show(self, alarm: Alarm) -> None:
        for sink in self._all_sinks:
            if not getattr(sink, "durable", False) and not getattr(sink, "records_only", False):
                sink.on_alarm(alarm)

    def relearn(self, patient: str | None = None) -> list[str]:
        """Restart learning for ``patient`` (every bed when None); the beds that will learn again.

        Physiological alarms the bed has active are cleared: they were judged against what it had learnt."""
        out = []
        for st in self.beds.values():
            if (patient is not None and st.patient != patient) or not st.model.relearn():
                continue
            st.policy = AlarmPolicy(st.book, self.policy_cfg, fs=st.fs)
            for cond in (*PHYSIOLOGICAL_ADVISORIES, Condition.RHYTHM_CHANGED, Condition.SHAPE_CHANGED,
                         Condition.ARTIFACT):
                self.emit(st.book.clear(cond))
            out.append(st.patient)
        self.stats.relearns += len(out)
        self.save_learnt()
        return out

    def save_learnt(self) -> None:
        """Write every bed's learnt state (and what was read at start-up for beds not back yet)."""
        if self.store is None or self.learning is None:
            return
        now = time.time()
        beds = dict(self._learnt_before)
        for st in self.beds.values():
            if (learnt := st.model.learnt) is not None:
                learnt.last_seen = now
                # a copy: the offset goes on following the bed while the disk writer writes this one
                beds[st.patient] = (st.fs, dataclasses.replace(learnt, offset=learnt.offset.copy()))
        self.disk.submit(functools.partial(self.store.save, beds))
        self._store_saved = time.monotonic()

    # ------------------------------------------------------------------ beds handed between workers

    @property
    def settled(self) -> int:
        """Beats segmented whose fate is decided: judged, shed, left unjudged (``max_beats``) or released.  A source
        that commits its input (a JetStream acknowledgement) does so once this reaches what was segmented."""
        s = self.stats
        return s.beats + s.shed + s.not_judged + s.released

    def adopt(self, learnt: dict[str, tuple[float, Learnt]], alarms: Sequence[Alarm]) -> None:
        """Beds taken over from another worker: what they learnt and their open alarms (same ids), used when each
        bed's first chunk comes (a bed already here keeps its own)."""
        for patient, state in learnt.items():
            if patient not in self.beds:
                self._learnt_before[patient] = state
        for a in alarms:
            if a.patient not in self.beds:
                self._waiting_restore.setdefault(a.patient, []).append(a)

    def release(self, patients: Sequence[str]) -> None:
        """Forget these beds: another worker has taken them over (their alarms and learnt state go on there)."""
        for p in patients:
            self.beds.pop(p, None)
            self.aux.pop(p, None)  # its second lead, and the conditions the two leads had raised together
            self._tails.pop((p, 0), None)
            self._tails.pop((p, 1), None)
            self.fusion.pop(p, None)
            self.agree.pop(p, None)  # (beats still waiting for the second lead go with the bed: docs/recordings.md)
            self._unconfirmed.pop(p, None)
            self._second_found.pop(p, None)
            self._learnt_before.pop(p, None)
            self._waiting_restore.pop(p, None)

    def discharge(self, patient: str, *, stream: int | None = None, streaming: bool = False) -> bool:
        """End the monitoring of ``patient``'s bed (a clinician's command: the patient has left, or the device is
        taken to another patient); False when the monitor has no such bed.  Its alarms are cleared ("discharged"),
        its state forgotten: what it learnt (the learnt-state file too), its heart-rate limits, its second lead, its
        queued work (typer and VF results still to come for it are dropped; its beats still queued for scoring are
        counted as released, not judged).  Samples from the device afterwards are a new patient: a new bed, the
        default limits, learning from the start.  A device that stopped sending left its bed and its signal-loss
        alarm on the console until the monitor restarted (a newcomer, session 39).  A bed of a previous run that has not
        come back (its alarms restored from the journal) is discharged too: those alarms cleared, its learnt state
        forgotten.  ``stream``: the device's stream generation being discharged (:attr:`Chunk.stream`; default: the
        bed's); ``streaming``: the device has a stream whose chunks may not have made a bed yet (samples and the
        discharge read in one batch: a persistent session's backlog, a worker's warm-up), which the discharge ends too
        (refused for want of a bed, the samples after it made one, its signal loss on for good: a reviewer, session
        41)."""
        st = self.beds.get(patient)
        restored = self._waiting_restore.get(patient, [])
        if st is None and not restored and patient not in self._learnt_before and not streaming:
            return False
        # a bed of a previous run that has not come back (its device stopped before the restart): the alarms restored
        # from the journal for it are cleared here, which nothing else would do (a reviewer, session 41)
        book = st.book if st is not None else AlarmBook(patient)
        for a in restored if st is None else ():
            book.restore(a)
        for bed in (st, self.aux.get(patient)):
            if bed is not None:  # results still queued for its typer or VF detector are skipped as stale
                bed.vtyper, bed.vfbank = VTyper(bed.fs), self.vfpool.bank(bed.fs)
        for cond in list(book.active):
            self.emit(book.clear(cond, index=book.at, reason="discharged"))
        # the beats cut for it until now and still queued are the old patient's: not judged on a new bed of the device
        # and so are the chunks of its stream still on their way (a round read before the discharge)
        now = time.monotonic()
        gone = stream if stream is not None else st.stream if st is not None else -1
        self._discharged = {p: v for p, v in self._discharged.items() if now - v[0] < DISCHARGE_MEMORY_S}
        self._discharged[patient] = (now, max(self._discharged.get(patient, _NONE)[1], gone))
        self.release([patient])
        for sink in self._all_sinks:
            if (forget := getattr(sink, "forget", None)) is not None:
                forget(patient)
        self.simulated.discard(patient)
        self._limits_waiting.pop(patient, None)
        self.stats.discharged += 1
        if self.learning is not None and (forget := getattr(self.store, "forget", None)) is not None:
            self.disk.submit(functools.partial(forget, patient))  # a store that keeps beds by key (NATS workers)
        self.save_learnt()
        return True

    def acknowledge(self, patient: str | None = None) -> None:
        """Acknowledge the active alarms of ``patient``'s bed, or of every bed and the monitor's own (None)."""
        if patient is not None:
            if (st := self.beds.get(patient)) is not None:
                self.emit(st.book.acknowledge())
            return
        for st in self.beds.values():
            self.emit(st.book.acknowledge())
        self.emit(self.monitor_book.acknowledge())

    # ------------------------------------------------------------------ input the source could not use

    def rejected(self, device: str, reason: str) -> None:
        """A payload from ``device`` broke the contract: count it and raise a LOW technical alarm that names every
        reason (on the device's bed) or every device and reason (the monitor's own, for devices without a bed): a
        second device or reason brings the alarm's message up to date, so none is invisible while the first one's
        alarm is on."""
        self.stats.rejected += 1
        st = self.beds.get(device)
        if st is None:
            # no bed to show it on (no packet of the device was ever accepted, or an unknown topic): the monitor's
            # own alarm names the device, so that a device whose every packet breaks the contract is not invisible
            self.stats.rejected_unknown += 1
            now = time.monotonic()
            seen = self._unattributed.setdefault(device, {})
            new = reason not in seen
            seen[reason] = now
            if self._expire_unattributed(now) or Condition.BAD_INPUT not in self.monitor_book.active:
                self._say_unattributed()
            elif new or self._unattributed_pending:
                self._say_unattributed(now=now)
            return
        st.rejected += 1
        st.clean_since_reject = 0
        st.rejected_mono = time.monotonic()
        if Condition.BAD_INPUT not in st.book.active:
            st.bad_reasons = []
        if reason not in st.bad_reasons:
            st.bad_reasons.append(reason)
            self.emit(st.technical.say(Condition.BAD_INPUT, "; ".join(REASON_TEXT.get(r, r) for r in st.bad_reasons)))

    def _expire_unattributed(self, now: float) -> bool:
        """Forget the devices without a bed refused nothing for ``UNATTRIBUTED_S`` (they stopped sending); whether
        any was."""
        stale = [d for d, r in self._unattributed.items() if now - max(r.values()) > UNATTRIBUTED_S]
        for d in stale:
            del self._unattributed[d]
        return bool(stale)

    def _say_unattributed(self, *, now: float | None = None) -> None:
        """The monitor's bad-input alarm (LOW): the devices without a bed whose packets were refused in the last
        ``UNATTRIBUTED_S`` s, each with its reasons (the first ``UNATTRIBUTED_SHOWN`` named); and of them those whose
        refused packets were samples, in its ``device refused`` alarm (MEDIUM: a patient not monitored; a device whose
        clock was reset to 2000, or past ``--max-devices``, had only the LOW alarm, shown and not sounded: a newcomer,
        session 40).  Each cleared when none is left (each got a bed, or stopped sending).  Given ``now`` (a device
        refused; monotonic s), a change of the count alone ("and N more") is said at most once a second, the change
        held back said with the next refusal after it: every new id of a flood of them (a device whose id changes at
        every boot, past ``--max-devices``) was a journal line of its own."""
        devs = sorted(self._unattributed)
        named = ", ".join(f"{d} ({', '.join(sorted(self._unattributed[d]))})" for d in devs[:UNATTRIBUTED_SHOWN])
        refused = [d for d in devs if any(samples_reason(r) for r in self._unattributed[d])]
        refused_named = ", ".join(refused[:UNATTRIBUTED_SHOWN])
        said = f"{named}|{refused_named}|{len(devs) > UNATTRIBUTED_SHOWN}|{len(refused) > UNATTRIBUTED_SHOWN}"
        if now is not None and said == self._unattributed_said[0] and now - self._unattributed_said[1] < 1.0:
            self._unattributed_pending = True  # said with the next refusal a second on (the count stale till then)
            return
        self._unattributed_said, self._unattributed_pending = (said, time.monotonic()), False
        for condition, these, text in ((Condition.BAD_INPUT, devs, named),
                                       (Condition.DEVICE_REFUSED, refused, refused_named)):
            if not these:
                self.emit(self.monitor_tech.clear(condition))
                continue
            more = f" and {len(these) - UNATTRIBUTED_SHOWN} more" if len(these) > UNATTRIBUTED_SHOWN else ""
            # the device's name first in the line: on a 140-column console the advice ran the name off the screen
            why = ("no bed: nothing of them accepted yet" if condition is Condition.BAD_INPUT
                   else "check the device's clock and settings, or --max-devices")
            self.emit(self.monitor_tech.say(condition, f"from {text}{more} ({why})"))

    def control(self, device: str, command: str, args: dict[str, object] | None = None) -> bool:
        """A clinician's command for ``device``'s bed (from the MQTT control topic): ``relearn``, ``limits`` with
        ``low``/``high`` (bpm, numbers in 20-300, low < high) for its heart-rate alarms, or ``discharge``."""
        if command == "relearn":
            return bool(self.relearn(device))
        if command == "limits":
            return self.set_limits(device, **{k: v for k, v in (args or {}).items() if k in ("low", "high")})
        if command == "discharge":
            a = args or {}
            stream, streaming = a.get("stream"), a.get("streaming")
            return self.discharge(device, stream=stream if isinstance(stream, int) else None,
                                  streaming=streaming is True)
        return False

    def set_limits(self, patient: str, *, low: object = None, high: object = None) -> bool:
        """Set ``patient``'s heart-rate alarm limits (bpm); False when the limits are not plausible (each 20-300 bpm,
        low under high, low under the extreme tachycardia rate and high over the extreme bradycardia rate).  A bed
        not connected yet gets them when its first samples come (a station sets a patient's limits before the
        device is plugged in: they were refused, and the bed alarmed at the defaults), the latest set for up to
        ``LIMITS_WAITING`` such beds."""
        st = self.beds.get(patient)
        now = (st.lethal.cfg.hr_low, st.lethal.cfg.hr_high) if st is not None else self._limits_waiting.get(
            patient, (self.lethal_cfg.hr_low, self.lethal_cfg.hr_high))
        lo = now[0] if low is None else low
        hi = now[1] if high is None else high
        if not (isinstance(lo, int | float) and isinstance(hi, int | float) and 20 <= lo < hi <= 300):
            return False
        if not self.lethal_cfg.limits_agree(lo, hi):  # the extreme rates stay beyond the limits
            return False
        if st is None:
            if patient not in self._limits_waiting and len(self._limits_waiting) >= LIMITS_WAITING:
                del self._limits_waiting[next(iter(self._limits_waiting))]  # the oldest set (a name never connected)
            self._limits_waiting.pop(patient, None)
            self._limits_waiting[patient] = (float(lo), float(hi))
            return True
        st.lethal.set_limits(low=float(lo), high=float(hi))
        return True

    def misread(self, device: str, seconds: float) -> None:
        """The last ``seconds`` s of ``device``'s accepted samples were read at a wrong rate (its stated rate
        contradicts its clock; :meth:`Ingress._pace_problem`): the lethal and rate conditions its bed's leads raised
        on them are withdrawn (cleared, and its watch no longer holds them: raised again if the samples, once
        accepted, show them).  A device that stated 250 Hz for a 500 Hz signal raised extreme bradycardia on its
        halved rate, and the HIGH alarm stayed on over its refused packets (a fuzzer, session 38).  Conditions raised
        before those samples stay as they are."""
        why = "withdrawn: raised on samples read at a wrong rate (fs-clock-mismatch)"
        for st in (self.beds.get(device), self.aux.get(device)):
            if st is None:
                continue
            # everything decided on the samples taken, as at a restart (its packets are refused from here; taken
            # again, the bed starts again)
            self._finish_stream(st)
            end = st.seg_offset + st.segmenter.total
            lo = end - round(seconds * st.fs)
            gone = [c for c in sorted(st.lethal.active, key=lambda c: c.value) if st.lethal.raised.get(c, lo) >= lo]
            st.lethal.active.difference_update(gone)
            if gone:
                self._lethal(st, [Change(c, False, end, why) for c in gone], at=end)

    def shed(self, device: str) -> None:
        """The source dropped a message from ``device`` at its full incoming queue."""
        self.stats.shed_messages += 1
        self._overload(f"input is behind: device messages are shed (first from {device})")

    def _overload(self, what: str) -> None:
        self.stats.last_shed_mono = time.monotonic()
        self.emit(self.monitor_tech.raise_(Condition.MONITOR_OVERLOAD, what))

    # ------------------------------------------------------------------ async tasks

    async def _ingest(self, source: Source) -> None:
        """Chunks from the source in rounds: whatever has arrived since the last round (up to ``max_round``
        chunks) is segmented together (:meth:`segment_many`).  A reader task takes the source's chunks into a
        bounded queue, so a source that can pause still feels back-pressure.  A source that commits its input
        (JetStream, the ``--workers`` router) gives its rounds itself (``rounds``) and is told what each round's
        chunks brought, so it commits each message once the beats up to it are judged."""
        if self._commit is not None:
            async for rnd in source.rounds(self.cfg.max_round):  # type: ignore[attr-defined]  # checked in run()
                before = self.stats.segmented
                out = self.segment_many(rnd.chunks)
                rnd.segmented([len(b) for b in out], before)  # before the beats can be judged
                await self._queue_beats([b for beats in out for b in beats])
        else:
            await self._ingest_rounds(source)
        for agree in self.agree.values():  # the source has ended: beats that waited for a second lead go on
            await self._queue_beats(held := agree.flush(end=True))
            self.stats.segmented += len(held)
        self.flush_vf(final=True)  # the source has ended: its last beats typed, its last VF windows
        for patient, fusion in self.fusion.items():  # ... and a VT run waiting for a second lead's beats judged
            fusion.ended = True
            if (bed := self.beds.get(patient)) is not None:
                self._lethal(bed, [])
        await self.queue.join()
        self.flush_policies()  # beats whose QRS the typer will never reach (the stream's last)
        if not self.cfg.hold_at_end:
            self.done.set()

    async def _ingest_rounds(self, source: Source) -> None:
        inbox: asyncio.Queue[Chunk | Exception | None] = asyncio.Queue(maxsize=self.cfg.max_round)

        async def read() -> None:
            try:
                async for chunk in source:
                    await inbox.put(chunk)
            except Exception as e:  # raised again by the ingest task, which the TaskGroup watches
                await inbox.put(e)
                return
            await inbox.put(None)

        reader = asyncio.create_task(read(), name="read-source")
        try:
            while True:
                items = [await inbox.get()]
                while len(items) < self.cfg.max_round and not inbox.empty():
                    items.append(inbox.get_nowait())
                chunks = [c for c in items if isinstance(c, Chunk)]
                end = next((c for c in items if not isinstance(c, Chunk)), False)  # the first one: nothing follows
                await self._queue_beats([b for beats in self.segment_many(chunks) for b in beats])
                if isinstance(end, Exception):
                    raise end
                if end is None:
                    return
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _queue_beats(self, beats: list[Beat]) -> None:
        for i, b in enumerate(beats):
            if self._shed_when_full and self.queue.full():
                self.stats.shed += 1
                if (st := self.beds.get(b.patient)) is not None:
                    st.policy.skip(b.index)
                self._overload(f"scoring is behind: beats are shed (first from {b.patient})")
                continue
            self.entering = len(beats) - i  # this beat and those after it, while the put waits for room
            await self.queue.put(b)
        self.entering = 0
        self.stats.queue_max = max(self.stats.queue_max, self.queue.qsize())

    async def _score(self) -> None:
        while True:
            check_cancelled()  # a stop swallowed by the commit's flush (nats-py, Python 3.11's wait_for) ends it
            batch = await next_batch(self.queue, self.batcher)
            if self.cfg.max_beats is not None:
                keep = max(0, self.cfg.max_beats - self.stats.beats)
                self.stats.not_judged += len(batch) - min(keep, len(batch))
                for _ in batch[keep:]:
                    self.queue.task_done()
                batch = batch[:keep]
            if batch:
                self.stats.scoring = len(batch)
                t0 = time.perf_counter()
                x = np.stack([b.samples for b in batch])
                scored = await asyncio.to_thread(self.scorer.score_batch, x)
                self.stats.time_score += time.perf_counter() - t0
                self.stats.scoring = 0
                self.stats.batches += 1
                self.stats.batch_beats += len(batch)
                if self._commit is not None:  # the source commits its input (JetStream acks) before verdicts show
                    await self._commit(self.settled + len(batch))
                self.judge(batch, scored)
                if self.store is not None and time.monotonic() - self._store_saved > STORE_EVERY_S:
                    self.save_learnt()  # keeps last_seen current, so a restart soon after remembers
                for _ in batch:
                    self.queue.task_done()
            if self.cfg.max_beats is not None and self.stats.beats >= self.cfg.max_beats:
                self.done.set()

    async def _watch(self, source: Source) -> None:
        period = self.cfg.watchdog.period_s
        while True:
            await asyncio.sleep(period)
            h = source.health()
            load = Load(h.input_lag_s, h.waiting, h.capacity, self.queue.qsize(), self.queue.maxsize,
                        self.stats.latencies[-1] if self.stats.latencies else 0.0, self.stats.last_shed_mono)
            beds = [(b.last_chunk_mono, b.technical, b.last_chunk_s) for b in self.beds.values()]
            now = time.monotonic()
            self.emit(self.watchdog.check(now, load, beds))
            if self._expire_unattributed(now):
                self._say_unattributed()

    async def run(self, source: Source, *, duration: float | None = None, extra_tasks: Sequence[Task] = ()) -> None:
        """Run until the source ends (and every beat is judged), ``duration`` passes, ``max_beats``
        verdicts are given, ``done`` is set, or cancellation."""
        self.source = source
        self._shed_when_full = (not source.can_pause if self.cfg.shed_when_full is None
                                else self.cfg.shed_when_full)
        self._extra_sinks = tuple(source.sinks())
        self._commit = getattr(source, "commit", None)  # NatsSource.commit, RoutedSource.commit
        if self._commit is not None and not hasattr(source, "rounds"):
            raise TypeError(f"{type(source).__name__} commits its input but gives no rounds: the monitor could not "
                            "tell it which beats each message brought")
        source.attach(self)

        async def stopper() -> None:
            try:
                async with asyncio.timeout(duration):
                    await self.done.wait()
            except TimeoutError:
                pass
            # every alarm journalled by now reaches the sinks that show and publish while their tasks still run,
            # and a sink with a drain (the MQTT alarm publisher) gets up to DRAIN_S to pass it on
            await self.disk.drain()
            for sink in self._all_sinks:
                if (drain := getattr(sink, "drain", None)) is not None:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(DRAIN_S):
                            await drain()
            raise _Stop

        await asyncio.to_thread(self.scorer.warm_up)  # before the source opens: the first verdicts are not late
        self.disk.start(asyncio.get_running_loop())
        if self.freeze_gc:
            # what exists now (the model, the modules, the beds so far) moves out of the cyclic collector's reach for
            # the run: a full collection then walks only what the run allocates.  Without it, a full collection over
            # torch's and numpy's objects held the event loop 130 ms now and then, every beat waiting meanwhile (300
            # live devices: e2e p99 200 ms instead of 110, BENCHMARKS.md).  The standard remedy for long-running
            # servers (Python's gc.freeze documentation); reference counting still frees what the run lets go
            gc.collect()
            gc.freeze()
        try:
            try:
                async with source, asyncio.TaskGroup() as tg:
                    tg.create_task(self._ingest(source), name="ingest")
                    tg.create_task(self._score(), name="score")
                    tg.create_task(stopper(), name="stopper")
                    if not source.can_pause:
                        tg.create_task(self._watch(source), name="watchdog")
                    for name, coro in [*source.tasks(), *extra_tasks]:
                        tg.create_task(coro, name=name)
            except* _Stop:
                pass
        except ExceptionGroup as eg:
            # one task failed (e.g. the broker refused our credentials): surface that error itself,
            # so callers and users see its message rather than a group
            leaves = _leaves(eg)
            if len(leaves) == 1:
                raise leaves[0] from None
            raise
        finally:
            if self.freeze_gc:
                gc.unfreeze()  # (a process that runs monitors one after another, as the tests do, collects them again)
            self.disk.stop()  # every journal line, strip and state file written; every alarm shown
            for _, coro in extra_tasks:  # never started (the source failed to open): no "never awaited" warning
                if inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
                    coro.close()

    @property
    def _all_sinks(self) -> tuple[Sink, ...]:
        return self.sinks + self._extra_sinks

    def close(self) -> None:
        """Save what the beds learnt; close every sink (the journal: every line is already flushed and fsynced)."""
        self.save_learnt()
        for sink in self._all_sinks:
            sink.close()

    def summary(self) -> dict[str, object]:
        s = self.stats
        elapsed = time.monotonic() - s.started_mono
        src = self.source
        out: dict[str, object] = {
            "type": "summary", "source": src.label if src else "", "replay": bool(src and src.replay),
            "simulated": sorted(self.simulated),
            "beats": s.beats, "alarms": s.alarms, "elapsed_s": round(elapsed, 3),
            "beats_per_s": round(s.beats / elapsed, 1) if elapsed > 0 else 0.0,
            "latency_p50_ms": _r(s.latency_ms(50)), "latency_p99_ms": _r(s.latency_ms(99)),
            "e2e_p50_ms": _r(s.e2e_ms(50)), "e2e_p99_ms": _r(s.e2e_ms(99)), "e2e_max_ms": _r(s.e2e_ms(100)),
            "e2e_p99_ms_steady": _r(s.e2e_ms(99, steady=True)), "steady_after_s": STEADY_S,
            "e2e_clock_ahead": s.e2e_clock_ahead, "e2e_clock_off": s.e2e_clock_off,
            "segmented": s.segmented, "shed": s.shed, "shed_messages": s.shed_messages, "rejected": s.rejected,
            "not_judged": s.not_judged, "queued": self.queue.qsize(), "in_flight": self.in_flight,
            "batches": s.batches,
            "restored_alarms": len(self.restored.alarms), "journal_skipped": self.restored.journal_skipped,
            "mean_batch": round(s.batch_beats / s.batches, 1) if s.batches else 0.0,
            "queue_max": s.queue_max, "patients": len(self.beds), "discharged": s.discharged,
            # beats left unjudged because their bed was released to another worker or discharged, and chunks of a
            # discharged bed's stream dropped after its discharge (the old patient's samples)
            "released": s.released, "discharged_chunks": s.discharged_chunks,
            "threshold": self.threshold,
            "learning": self._learning_summary(), "disk": self.disk.report(),
            "hr_bpm": {p: _r(self.heart_rate(b)) for p, b in self.beds.items()},
            # short runs of packets lost in transit that were bridged, per bed (Monitor._bridge)
            "bridged": {p: b.bridged for p, b in self.beds.items() if b.bridged},
            # and in their second leads (a two-lead device's null samples of that lead, its lost packets)
            "bridged_second_lead": {p: b.bridged for p, b in self.aux.items() if b.bridged},
            # the first lead's noisy beats the second lead did not show, dropped where it was reliable or where the beat
            # split an interval of a regular rhythm: no beats (segmentation.agreement)
            "unconfirmed_by_second_lead": {p: n for p, n in sorted({**self._unconfirmed, **{
                p: a.dropped for p, a in self.agree.items()}}.items()) if n},
            # QRS of the second lead where the first showed none (a saturated or lost first lead): beats, no verdict
            "found_by_second_lead": {p: n for p, n in sorted({**self._second_found, **{
                p: a.inserted for p, a in self.agree.items()}}.items()) if n},
            # abnormal beats by type (V, S, O: other abnormal, A: artifact) per bed: in total and in the last minute
            "ectopy": {p: {"total": b.policy.counts(), "per_min": b.policy.per_minute()} for p, b in self.beds.items()},
            "time_s": {"segment": round(s.time_segment, 3), "segmenters": round(s.time_segmenters, 3),
                       "quality": round(s.time_quality, 3), "rhythm": round(s.time_rhythm, 3),
                       "settle": round(s.time_settle, 3), "score": round(s.time_score, 3),
                       "alarm": round(s.time_alarm, 3)},
            "flushes": {"count": s.flushes, "max_ms": round(s.flush_max * 1000, 1)},
            "round_max_ms": round(s.round_max * 1000, 1),
        }
        if src is not None:
            out["input"] = src.summary()
        for sink in self._all_sinks:
            out.update(sink.report())
        return out


def split_dropouts(chunk: Chunk, max_n: int) -> list[Chunk]:
    """``chunk`` split at its short dropouts: runs of at most ``max_n`` non-finite samples with a finite sample after
    them in the chunk.  Each part after one starts a stretch with ``reset=True`` and ``missing`` the run's length (and,
    for a run at the chunk's start, the samples the chunk itself says are missing before it, when it says so), so
    :meth:`Monitor._bridge` draws a line across it where the bed's last sample and the part's first are known, as for
    packets lost in transit (``dropped``: the samples of ``missing`` the device sent as missing); a longer run, or one
    that reaches the chunk's end, stays in its part (:meth:`Monitor._dropouts` holds a short one back for the next
    chunk).  A chunk without such a run comes back as it is (``[chunk]``).  Truth labels ride on the first part."""
    x = chunk.samples
    if math.isfinite(float(np.sum(x))):  # the common case: every sample present
        return [chunk]
    bad = ~np.isfinite(x)
    edges = np.diff(np.concatenate([[0], bad.astype(np.int8), [0]]))
    runs = [(int(a), int(b)) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
            if b - a <= max_n and b < len(x)]
    if not runs:
        return [chunk]
    out: list[Chunk] = []
    for i, (a, b) in enumerate(runs):
        if i == 0 and a > 0:
            out.append(_part(chunk, 0, a, first=True))
        stop = runs[i + 1][0] if i + 1 < len(runs) else len(x)
        missing = dropped = b - a
        if a == 0:  # a run at the chunk's start: what the chunk says is missing before it comes first
            if chunk.reset and not chunk.missing:  # after a discontinuity of unknown length: no bridge
                missing = dropped = 0
            else:
                missing, dropped = missing + chunk.missing, dropped + chunk.dropped
        out.append(dataclasses.replace(_part(chunk, b, stop, first=not out), reset=True, missing=missing,
                                       dropped=dropped))
    return out


def _part(chunk: Chunk, a: int, b: int, *, first: bool) -> Chunk:
    return dataclasses.replace(chunk, samples=chunk.samples[a:b], start=chunk.start + a, t0=chunk.t0 + a / chunk.fs,
                               truth=chunk.truth if first else ())


def coalesce(chunks: Sequence[Chunk]) -> list[list[int]]:
    """The chunks of a round as groups of indices, in the order of each group's first chunk: a replayed chunk joins
    the group of its bed's (and lead's) previous chunk in the round when it continues it exactly (its first sample
    follows that chunk's last, no discontinuity before it, the same rate and simulator flag, both replayed, neither
    a warm-up replay, every sample of both present); otherwise it starts a group.  Each group is one stretch of one
    bed's signal (:meth:`Monitor.segment_many`)."""
    last: dict[tuple[str, int], list[int]] = {}
    groups: list[list[int]] = []
    # a chunk that may join or be joined: replayed, no warm-up, every sample present (each checked once)
    whole = [c.replay and not c.warmup and bool(np.isfinite(c.samples).all()) for c in chunks]
    for k, c in enumerate(chunks):
        key = (c.patient, c.lead)
        g = last.get(key)
        if g is not None and whole[k] and whole[g[-1]]:
            p = chunks[g[-1]]
            if (not c.reset and c.fs == p.fs and c.simulated == p.simulated and len(p.samples)
                    and c.start == p.start + len(p.samples)):
                g.append(k)
                continue
        g = last[key] = [k]
        groups.append(g)
    return groups


def _outside_losses(seg: Segmenter, points: list[tuple[int, Quality]]) -> tuple[list[int], list[tuple[int, Quality]]]:
    """The first samples of the segmenter's last push's lost runs (:attr:`Segmenter.lost_runs`), and the flat-line
    check's verdict points (:attr:`QualityMonitor.points`) outside them, in the segmenter's count: the watch is told of
    each run at its first sample, and no point within a run says the signal is back, nor one at the push's end while
    it is still lost (a lead lost in every packet, a two-lead device's null samples, must not read as back between
    them).  For a bed's lead and its second lead alike (:meth:`Monitor._watch_rhythm`,
    :meth:`Monitor._second_lead_off`)."""
    runs = list(seg.lost_runs)
    if runs and seg.in_loss:
        runs[-1] = (runs[-1][0], runs[-1][1] + 1)
    return [a for a, _ in runs], [(at, q) for at, q in points if not any(a <= at < b for a, b in runs)]


def _quality(fs: float, start: int) -> QualityMonitor:
    """A bed's flat-line and saturation checks for its stream from absolute sample ``start``, their verdicts at the
    lethal watch's ticks: every ``TICK_S`` of absolute samples (a stream restarted after a gap ticks where the stream
    before would have: the two leads of a device back after a gap tick at the same samples, and a lead lost within a
    long packet, whose stream does not restart, at the same samples as one restarted between short ones)."""
    return QualityMonitor(fs, step=chunk_size(TICK_S, fs), offset=start)


def _told(st: Bed, horizon: float) -> float:
    """Where lead ``st``'s watch has been told up to once its inputs to ``horizon`` are released: all of them (at a
    restart or the end) is as far as its typer has come, not beyond: a first lead's stream that restarts keeps its bed
    (a gap, a new rate), and its beats after the restart must again wait for their inputs (a reviewer, session 51: the
    first lead's release stood at infinity after its first gap)."""
    return max(st.released, min(horizon, st.horizon))


def _readable(watch: LethalWatch) -> bool:
    """Whether a lead's signal can be read now (:class:`LeadFusion`): not leads off or signal loss, not noise, and
    settled (:attr:`LethalWatch.settled`: a QRS since it came back, or ``asystole_s + asystole_wait_s`` without
    one)."""
    return watch.settled and Condition.CANNOT_ANALYSE not in watch.active


def _trim_bridges(st: Bed, now: int) -> None:
    """Keep the bed's bridged stretches that end within the last ``PACKET_LOSS_S`` before sample ``now``."""
    while st.bridges and st.bridges[0][1] <= now - PACKET_LOSS_S * st.fs:
        st.bridges.popleft()
    while st.nulls and st.nulls[0][1] <= now - PACKET_LOSS_S * st.fs:
        st.nulls.popleft()


def _record(sinks: list[Sink], alarm: Alarm) -> None:
    for sink in sinks:
        sink.on_alarm(alarm)


def _leaves(eg: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for e in eg.exceptions:
        out += _leaves(e) if isinstance(e, BaseExceptionGroup) else [e]
    return out


class _Stop(Exception):
    """Raised by the stopper task to end the TaskGroup cleanly."""


def _r(v: float | None, nd: int = 1) -> float | None:
    return None if v is None else round(v, nd)

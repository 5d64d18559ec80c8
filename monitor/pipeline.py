"""The async driver: source -> segmenters -> micro-batcher -> scorer thread -> alarm policy -> sinks.

One ``asyncio.TaskGroup`` owns every task; shutdown is cancellation.  The beat queue
is bounded: a replay source feels back-pressure (it is paced by us), a live source
sheds beats when the queue is full, counts every shed beat, and raises the
``monitor overload`` technical alarm until the queue drains.

Per-patient state lives in :class:`PatientState`; :class:`Monitor` holds them all and
the figures the console and the summary show.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ecgmon.models.scorer import Scorer
from ecgmon.monitor.alarms import AlarmBook, AlarmPolicy, Journal, PolicyConfig, TechnicalAlarms
from ecgmon.monitor.messages import Alarm, Beat, BeatScore, Chunk, TrueBeat
from ecgmon.segmentation.beats import Segmenter
from ecgmon.segmentation.quality import QualityMonitor

TRUTH_TOLERANCE_S = 0.020  # a segmented beat matches a true beat when its fiducial is this close


@dataclass(slots=True)
class PatientState:
    """Everything the monitor knows about one patient (bed)."""

    patient: str
    fs: float
    segmenter: Segmenter
    quality: QualityMonitor
    book: AlarmBook
    policy: AlarmPolicy
    technical: TechnicalAlarms
    strip: deque[float]  # last few seconds of signal, for the console
    pending_truth: deque[TrueBeat] = field(default_factory=deque)
    beats: int = 0
    flagged: int = 0
    last: BeatScore | None = None
    truth_seen: int = 0
    truth_matched: int = 0
    last_chunk_mono: float = 0.0
    seg_offset: int = 0  # absolute index of the current segmenter's first sample
    rejected: int = 0  # payloads from this device that broke the contract
    clean_since_reject: int = 0


@dataclass(slots=True)
class Stats:
    """Counters for the footer and the summary.  Latency: beat closed -> verdict, seconds."""

    started_mono: float = field(default_factory=time.monotonic)
    beats: int = 0  # judged
    segmented: int = 0  # cut by the segmenters (judged + shed + still queued)
    chunks: int = 0
    alarms: int = 0
    shed: int = 0  # beats dropped at the full beat queue (live sources)
    shed_messages: int = 0  # device messages dropped at the source's full incoming queue
    last_shed_mono: float = 0.0
    rejected: int = 0  # payloads rejected, all devices
    rejected_unknown: int = 0  # of which from topics or devices the monitor cannot attribute
    journal_skipped: int = 0  # unreadable journal lines found at start (a line torn by a crash)
    restored: int = 0  # open alarms taken over from the journal at start
    batches: int = 0
    batch_beats: int = 0
    in_flight: int = 0  # beats taken from the queue (being gathered into a batch or scored), not yet judged
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=20000))
    # live sources: device packet complete -> verdict (wall clocks; broker, queues, segmentation and scoring)
    e2e: deque[float] = field(default_factory=lambda: deque(maxlen=20000))
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=4096))  # verdict times for beats/s
    tp: int = 0
    tn: int = 0
    fp: int = 0
    fn: int = 0
    agree: int = 0
    compared: int = 0
    queue_max: int = 0
    time_segment: float = 0.0
    time_score: float = 0.0
    time_alarm: float = 0.0

    def beats_per_s(self, window_s: float = 5.0) -> float:
        now = time.monotonic()
        n = sum(1 for t in self.recent if now - t <= window_s)
        span = min(window_s, now - self.started_mono)
        return n / span if span > 0 else 0.0

    def latency_ms(self, q: float) -> float | None:
        return float(np.percentile(np.asarray(self.latencies), q) * 1000) if self.latencies else None

    def e2e_ms(self, q: float) -> float | None:
        return float(np.percentile(np.asarray(self.e2e), q) * 1000) if self.e2e else None

    @property
    def sensitivity(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def specificity(self) -> float | None:
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else None


class Monitor:
    """Pipeline state and stage wiring; ``run(source)`` drives it."""

    def __init__(self, scorer: Scorer, threshold: float, *, policy: PolicyConfig = PolicyConfig(),
                 journal: Journal | None = None, max_batch: int = 1024, max_wait_ms: float = 20.0,
                 queue_size: int = 4096, shed_when_full: bool = False, strip_s: float = 4.0,
                 offline_flags: dict[int, bool] | None = None, model_name: str = "",
                 max_beats: int | None = None) -> None:
        self.scorer, self.threshold, self.policy_cfg = scorer, threshold, policy
        self.journal = journal
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self.queue: asyncio.Queue[Beat] = asyncio.Queue(maxsize=queue_size)
        self.shed_when_full = shed_when_full
        self.strip_s = strip_s
        self.patients: dict[str, PatientState] = {}
        self.stats = Stats()
        self.alarm_log: deque[Alarm] = deque(maxlen=200)
        self.offline_flags = offline_flags or {}
        self.model_name = model_name
        self.max_beats = max_beats
        self.source_label = ""
        self.source = None
        self.replay = False
        self.monitor_book = AlarmBook("monitor")
        self.monitor_tech = TechnicalAlarms(self.monitor_book)
        self.sinks: list[Callable[[str, object], None]] = []  # ("beat", BeatScore) / ("alarm", Alarm)
        self.done = asyncio.Event()
        self.stop_on_source_end = True
        self.scored_log: list[BeatScore] | None = None  # set to a list to keep every verdict (tests, audits)
        self.restored: dict[str, list[Alarm]] = {}  # open alarms from the journal, per patient not yet seen

    # ------------------------------------------------------------------ synchronous stages

    def patient(self, chunk: Chunk) -> PatientState:
        """The patient's state, created on its first chunk; its segmenter restarts after a discontinuity."""
        st = self.patients.get(chunk.patient)
        if st is None:
            st = self._new_patient(chunk.patient, chunk.fs)
            st.seg_offset = chunk.start
        elif chunk.reset or st.fs != chunk.fs:
            # a gap or a rate change: the open beat and the filter state are meaningless now
            st.fs = chunk.fs
            st.segmenter = Segmenter(chunk.patient, chunk.fs)
            st.quality = QualityMonitor(chunk.fs)
            st.strip = deque(maxlen=int(self.strip_s * chunk.fs))
            st.seg_offset = chunk.start
            self.emit(st.technical.set("signal loss", True, "gap in the stream; segmentation restarted"))
        return st

    def restore(self, alarms: list[Alarm]) -> None:
        """Show again the alarms a previous run left active or acknowledged (from its journal).

        They keep their ids and states and clear through the policy as usual once their
        patient's data shows the condition is over.
        """
        self.stats.restored += len(alarms)
        for a in sorted(alarms, key=lambda a: a.time):
            if a.patient == self.monitor_book.patient:
                self.monitor_book.active[a.condition] = a
            elif a.patient in self.patients:
                self.patients[a.patient].book.active[a.condition] = a
            else:
                self.restored.setdefault(a.patient, []).append(a)
            self.alarm_log.append(a)

    def _new_patient(self, patient: str, fs: float) -> PatientState:
        book = AlarmBook(patient)
        for a in self.restored.pop(patient, []):
            book.active[a.condition] = a
        st = PatientState(patient, fs, Segmenter(patient, fs), QualityMonitor(fs), book,
                          AlarmPolicy(book, self.policy_cfg), TechnicalAlarms(book),
                          deque(maxlen=int(self.strip_s * fs)))
        self.patients[patient] = st
        return st

    def _overload(self, what: str) -> None:
        self.stats.last_shed_mono = time.monotonic()
        self.emit(self.monitor_tech.set("monitor overload", True, what))

    def shed_message(self, device: str) -> None:
        """The source dropped a message from ``device`` at its full incoming queue."""
        self.stats.shed_messages += 1
        self._overload(f"input is behind: device messages are shed (first from {device})")

    def reject(self, device: str, reason: str) -> None:
        """A payload from ``device`` broke the contract: count it and raise a LOW technical alarm."""
        self.stats.rejected += 1
        st = self.patients.get(device)
        if st is None:
            self.stats.rejected_unknown += 1
            return
        st.rejected += 1
        st.clean_since_reject = 0
        self.emit(st.technical.set("bad input", True, reason))

    def segment(self, chunk: Chunk) -> list[Beat]:
        """Chunk -> beats for its patient, with ground truth attached and technical alarms updated."""
        t0 = time.perf_counter()
        st = self.patient(chunk)
        st.pending_truth.extend(chunk.truth)
        st.truth_seen += len(chunk.truth)
        if len(chunk.samples) == 0:  # sources never send these, but an empty chunk must not count as data
            return []
        st.last_chunk_mono = time.monotonic()
        st.strip.extend(chunk.samples.tolist())
        beats = st.segmenter.push(chunk.samples)
        if beats and (st.seg_offset or not chunk.replay):
            # live: the device's packet was complete at its last sample's time; end-to-end latency starts there
            sent = None if chunk.replay else chunk.t0 + len(chunk.samples) / chunk.fs
            beats = [dataclasses.replace(b, index=b.index + st.seg_offset, sent=sent) for b in beats]
        if st.pending_truth:
            beats = [self._match_truth(st, b) for b in beats]
        q = st.quality.push(chunk.samples, beats_found=len(beats))
        for cond, on in (("leads off", q.flat), ("noisy signal", q.noisy)):
            self.emit(st.technical.set(cond, on))
        if beats:
            self.emit(st.technical.set("signal loss", False))
        st.clean_since_reject += 1
        if st.clean_since_reject >= 20:
            self.emit(st.technical.set("bad input", False))
        self.stats.chunks += 1
        self.stats.segmented += len(beats)
        self.stats.time_segment += time.perf_counter() - t0
        return beats

    def _match_truth(self, st: PatientState, b: Beat) -> Beat:
        tol = TRUTH_TOLERANCE_S * st.fs
        pend = st.pending_truth
        while pend and pend[0].start < b.index - tol:  # true beats passed without a match: missed
            pend.popleft()
        if pend and abs(pend[0].start - b.index) <= tol:
            t = pend.popleft()
            st.truth_matched += 1
            return dataclasses.replace(b, label=t.label, ref=t.ref)
        return b

    def judge(self, beats: list[Beat], losses: np.ndarray) -> list[BeatScore]:
        """Scores -> alarm transitions, counters and sinks, in beat order."""
        t0 = time.perf_counter()
        now, wall = time.monotonic(), time.time()
        out = []
        for b, loss in zip(beats, losses, strict=True):
            s = BeatScore(b, float(loss), self.threshold, now)
            st = self.patients[b.patient]
            st.beats += 1
            st.flagged += s.flagged
            st.last = s
            self.stats.beats += 1
            self.stats.latencies.append(s.latency_s)
            if b.sent is not None:
                self.stats.e2e.append(wall - b.sent)
            self.stats.recent.append(now)
            if b.label is not None:
                ab = b.label != 1
                self.stats.tp += ab and s.flagged
                self.stats.fn += ab and not s.flagged
                self.stats.fp += (not ab) and s.flagged
                self.stats.tn += (not ab) and not s.flagged
                if b.ref is not None and b.ref in self.offline_flags:
                    self.stats.compared += 1
                    self.stats.agree += self.offline_flags[b.ref] == s.flagged
            if self.scored_log is not None:
                self.scored_log.append(s)
            for sink in self.sinks:
                sink("beat", s)
            self.emit(st.policy.update(s))
            out.append(s)
        self.stats.time_alarm += time.perf_counter() - t0
        return out

    def emit(self, alarms: list[Alarm]) -> None:
        """Journal first (durable), then show and publish."""
        for a in alarms:
            if self.journal:
                self.journal.write(a)
            self.alarm_log.append(a)
            self.stats.alarms += 1
            for sink in self.sinks:
                sink("alarm", a)

    def acknowledge(self) -> None:
        for st in self.patients.values():
            self.emit(st.book.acknowledge())
        self.emit(self.monitor_book.acknowledge())

    # ------------------------------------------------------------------ async tasks

    async def _ingest(self, source) -> None:
        async for chunk in source:
            for b in self.segment(chunk):
                if self.queue.full() and self.shed_when_full:
                    self.stats.shed += 1
                    self._overload(f"scoring is behind: beats are shed (first from {b.patient})")
                    continue
                await self.queue.put(b)
            self.stats.queue_max = max(self.stats.queue_max, self.queue.qsize())
        await self.queue.join()
        if self.stop_on_source_end:
            self.done.set()

    async def _score(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            self.stats.in_flight = 1  # out of the queue, not yet judged: counted from here on
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                if self.queue.empty():
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                        async with asyncio.timeout(timeout):
                            batch.append(await self.queue.get())
                    except TimeoutError:
                        break
                else:
                    batch.append(self.queue.get_nowait())
                self.stats.in_flight = len(batch)
            t0 = time.perf_counter()
            losses = await asyncio.to_thread(self.scorer.score, np.stack([b.samples for b in batch]))
            self.stats.in_flight = 0
            self.stats.time_score += time.perf_counter() - t0
            self.stats.batches += 1
            self.stats.batch_beats += len(batch)
            self.judge(batch, losses)
            for _ in batch:
                self.queue.task_done()
            if self.max_beats is not None and self.stats.beats >= self.max_beats:
                self.done.set()

    async def watchdog(self, *, period_s: float = 1.0, loss_after_s: float = 3.0, calm_s: float = 3.0,
                       late_s: float = 1.0) -> None:
        """Live sources: raise ``signal loss`` for a patient whose samples stopped arriving; raise
        ``monitor behind`` while packets reach the monitor over ``late_s`` later than usual for their
        device (a backlog at the broker or in the socket), input waits (over a tenth of the input
        queue, half the beat queue), or verdicts come over ``late_s`` after their beat closed - before
        anything must be shed; clear both alarms once calm for ``calm_s`` seconds."""
        calm_since = time.monotonic()
        while True:
            await asyncio.sleep(period_s)
            now = time.monotonic()
            waiting, cap = self.source.backlog() if hasattr(self.source, "backlog") else (0, 1)
            lag = self.source.input_lag() if hasattr(self.source, "input_lag") else 0.0
            late = self.stats.latencies[-1] if self.stats.latencies else 0.0
            beats_waiting = self.queue.qsize()
            if lag > late_s or waiting > 0.1 * cap or beats_waiting > 0.5 * self.queue.maxsize or late > late_s:
                calm_since = now
                self.emit(self.monitor_tech.set(
                    "monitor behind", True, f"input {lag:.1f} s late, {waiting} device messages and {beats_waiting} "
                                            f"beats waiting, last verdict {late:.1f} s after its beat closed"))
            elif "monitor behind" in self.monitor_book.active and now - calm_since > calm_s:
                self.emit(self.monitor_tech.set("monitor behind", False))
            if "monitor overload" in self.monitor_book.active and now - self.stats.last_shed_mono > calm_s:
                self.emit(self.monitor_tech.set("monitor overload", False))
            for st in self.patients.values():
                if st.last_chunk_mono and now - st.last_chunk_mono > loss_after_s:
                    self.emit(st.technical.set("signal loss", True, f"no samples for {loss_after_s:g} s"))

    async def run(self, source, *, duration: float | None = None, extra_tasks=()) -> None:
        """Run until the source ends (and every beat is judged), ``duration`` passes, or cancellation."""
        self.source, self.source_label, self.replay = source, source.label, source.replay

        async def stopper() -> None:
            try:
                async with asyncio.timeout(duration):
                    await self.done.wait()
            except TimeoutError:
                pass
            raise _Stop

        try:
            try:
                async with source, asyncio.TaskGroup() as tg:
                    tg.create_task(self._ingest(source), name="ingest")
                    tg.create_task(self._score(), name="score")
                    tg.create_task(stopper(), name="stopper")
                    for name, coro in extra_tasks:
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

    def close(self) -> None:
        """Close the journal (every line is already flushed and fsynced)."""
        if self.journal:
            self.journal.close()

    def summary(self) -> dict[str, object]:
        s = self.stats
        elapsed = time.monotonic() - s.started_mono
        out: dict[str, object] = {
            "type": "summary", "source": self.source_label, "replay": self.replay,
            "beats": s.beats, "alarms": s.alarms, "elapsed_s": round(elapsed, 3),
            "beats_per_s": round(s.beats / elapsed, 1) if elapsed > 0 else 0.0,
            "latency_p50_ms": _r(s.latency_ms(50)), "latency_p99_ms": _r(s.latency_ms(99)),
            "e2e_p50_ms": _r(s.e2e_ms(50)), "e2e_p99_ms": _r(s.e2e_ms(99)), "e2e_max_ms": _r(s.e2e_ms(100)),
            "segmented": s.segmented, "shed": s.shed, "shed_messages": s.shed_messages, "rejected": s.rejected,
            "batches": s.batches,
            "restored_alarms": s.restored, "journal_skipped": s.journal_skipped,
            "mean_batch": round(s.batch_beats / s.batches, 1) if s.batches else 0.0,
            "queue_max": s.queue_max, "patients": len(self.patients), "threshold": self.threshold,
            "time_s": {"segment": round(s.time_segment, 3), "score": round(s.time_score, 3),
                       "alarm": round(s.time_alarm, 3)},
        }
        if hasattr(self.source, "summary"):
            out["input"] = self.source.summary()
        seen = sum(p.truth_seen for p in self.patients.values())
        if seen:
            n = s.tp + s.tn + s.fp + s.fn
            out.update(
                sensitivity=_r(s.sensitivity, 4), specificity=_r(s.specificity, 4),
                accuracy=round((s.tp + s.tn) / n, 4) if n else None,
                beats_expected=seen, beats_matched=sum(p.truth_matched for p in self.patients.values()),
                agreement_offline=round(s.agree / s.compared, 4) if s.compared else None,
                beats_compared=s.compared,
            )
        return out


def _leaves(eg: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for e in eg.exceptions:
        out += _leaves(e) if isinstance(e, BaseExceptionGroup) else [e]
    return out


class _Stop(Exception):
    """Raised by the stopper task to end the TaskGroup cleanly."""


def _r(v: float | None, nd: int = 1) -> float | None:
    return None if v is None else round(v, nd)

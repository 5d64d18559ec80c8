"""Message types that flow through the pipeline: frozen, slotted dataclasses, nothing else.

Times: ``t0``/``time`` fields are seconds (wall clock, ``time.time()``) unless named
``*_mono`` (``time.monotonic()``).  Sample indices are absolute per patient stream,
counted from the first sample the monitor received (index 0).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NORMAL_LABELS = frozenset({"normal", "N"})  # ECG5000 class 1, AAMI class N
UNSCORED_LABELS = frozenset({"Q"})  # AAMI class Q (paced fusion, unclassifiable): no verdict is scored on it


def is_abnormal(label: str) -> bool | None:
    """What a verdict on a reference beat of class ``label`` is scored against (None: not scored)."""
    return None if label in UNSCORED_LABELS else label not in NORMAL_LABELS


@dataclass(frozen=True, slots=True)
class TrueBeat:
    """Ground truth travelling with a replayed or recorded stream: where a reference beat is and what it is.

    ``abnormal`` is what a verdict is scored against: False for normal beats, True for the classes an
    alarm should catch, None for beats no verdict is scored on (e.g. AAMI class Q, unclassifiable).
    """

    start: float  # absolute sample index (fractional) of the beat's fiducial (ECG5000: its first sample)
    label: str  # class name: ECG5000 "normal", "PVC", ...; AAMI "N", "S", "V", "F", "Q"
    abnormal: bool | None
    ref: int = -1  # ECG5000: row of the beat in the protocol's pool, for offline comparison; -1 none


@dataclass(frozen=True, slots=True)
class Chunk:
    """A run of samples from one patient; ``start`` is the first sample's absolute index."""

    patient: str
    fs: float  # Hz
    t0: float  # wall-clock time of the first sample, seconds
    samples: np.ndarray  # float32, mV or z units
    start: int = 0
    truth: tuple[TrueBeat, ...] = ()
    replay: bool = False
    reset: bool = False  # a discontinuity (gap, rate change) precedes this chunk
    # samples known to be missing just before this chunk because packets were lost in transit (``reset`` is True;
    # 0: not known, or another discontinuity: a reboot, a rate change); the monitor bridges a short run of them
    # (PipelineConfig.bridge_s) instead of restarting the bed's QRS detector
    missing: int = 0
    # of ``missing``, the samples the device itself sent as missing (a lead's JSON ``null``, NaN) rather than lost in
    # transit: the monitor's own split of a chunk at a short run of them (ecgmon.monitor.pipeline.split_dropouts)
    dropped: int = 0
    simulated: bool = False  # the device says its samples are a simulator's, not a patient's (core.payload)
    # replayed from a stream after a takeover, to rebuild the bed's segmenter: segmented, its beats never judged
    # (the bed's previous worker judged them; see ecgmon.monitor.jetstream)
    warmup: bool = False
    # the bed's lead: 0 its first (scored, shown), 1 its second (``--second-lead``: QRS, beat types and VF for the
    # lethal alarms only; see ecgmon.monitor.pipeline)
    lead: int = 0
    # live: the device's clock does not agree with this machine's (its packets' delay, arrival minus their time on the
    # device's clock, is at least 1 s off at its smallest): no end-to-end latency can be measured on it
    clock_off: bool = False
    # the device's stream generation: 0, one more after each discharge of its bed (a chunk of a discharged stream that
    # reaches the monitor after the discharge is the old patient's, not a new bed's)
    stream: int = 0


@dataclass(frozen=True, slots=True)
class Beat:
    """A beat in the model's representation (see ``ecgmon.segmentation.represent``): ECG5000's 140
    z-normalised samples from one fiducial to the next, or a (2, 140) window and RR prematurity."""

    patient: str
    samples: np.ndarray  # float32 (140,) or (channels, 140)
    # absolute sample index of the beat: ECG5000 beats, their first sample (the QRS's steepest slope moved by
    # SegmenterConfig.step 140ths of the beat); window beats, their fiducial (the centre of the QRS's slope energy)
    index: int
    rr_prev_s: float  # the RR interval ending at this beat's QRS: seconds from the previous QRS (0: none)
    fs: float
    closed_mono: float  # time.monotonic() when the beat was cut (ECG5000: the next QRS closed it)
    sent: float | None = None  # live: device wall-clock time at which the packet that closed the beat was complete
    noise: float = 0.0  # window beats: noise level before the QRS, relative to the bed's amplitude (0: not measured)
    hr_bpm: float | None = None  # bpm at this beat (segmentation.heartrate: mean of the last 12 RR); None: none yet
    rr_next_s: float = 0.0  # the RR interval starting at this beat's QRS (ECG5000 beats span it; 0: not known yet)
    # the signal-quality index of the stretch the beat lies in failed (segmentation.sqi: two QRS detectors disagree,
    # or the signal is not peaked): too noisy to judge; False also when not measured
    noisy: bool = False
    # window beats: how much it differs outside its QRS from the 3 beats before it, relative to the bed's amplitude
    # (segmentation.represent; nan: not measured)
    mismatch: float = float("nan")
    # window beats: the bed's amplitude its wave channel is divided by (the median peak-to-peak of its last beats,
    # segmentation.represent; in the signal's units, mV): the window times it is the signal as it was (0: not known)
    scale: float = 0.0
    # the lead whose detector found this QRS: 0 the bed's first (shown, scored); 1 its second, a QRS the first lead
    # did not show in a stretch where it showed none (segmentation.agreement: its samples are the second lead's window,
    # and it is noisy: counted and timed, no verdict)
    lead: int = 0


@dataclass(frozen=True, slots=True)
class BeatScore:
    """A beat's verdict: the loss it was judged on and the threshold it was judged against (flagged when
    ``loss > threshold``), made by its bed's model (:class:`ecgmon.monitor.bedmodel.BedModel`).

    ``loss`` is the beat's reconstruction loss (against its bed's learnt offset once the bed has learnt);
    for two-channel (window) beats it is ``shape_loss + rr_loss``, the wave channel's and the RR
    prematurity channel's shares, except while the bed's rhythm has changed (``by_shape``): then the beat
    is judged by its shape alone and ``loss`` is ``shape_loss``.
    ``learning``: the bed's learning progress (0..1) when the beat was scored while its bed learns its
    normal; ``noisy``: the beat came while its bed's signal was too noisy to judge.  Neither kind has a
    verdict (``flagged`` is False and ``verdict`` says "learning" or "noisy")."""

    beat: Beat
    loss: float
    threshold: float
    scored_mono: float
    learning: float | None = None
    noisy: bool = False
    shape_loss: float | None = None  # two-channel beats: the wave channel's share of the loss
    rr_loss: float | None = None  # two-channel beats: the RR prematurity channel's share
    by_shape: bool = False  # judged by shape_loss alone: the bed's rhythm has changed since it learnt

    @property
    def flagged(self) -> bool:
        return self.learning is None and not self.noisy and self.loss > self.threshold

    @property
    def verdict(self) -> str:
        if self.learning is not None:
            return "learning"
        return "noisy" if self.noisy else "abnormal" if self.flagged else "normal"

    @property
    def why(self) -> str:
        """The verdict in words: what was compared with what."""
        if self.learning is not None:
            return f"learning the bed's normal ({self.learning:.0%}): no verdict"
        if self.noisy:
            return "too noisy to judge (artifact): no verdict"
        what = "shape loss (rhythm changed: RR not judged)" if self.by_shape else "loss"
        return f"{what} {self.loss:.4f} {'>' if self.flagged else '<='} threshold {self.threshold:.4f}"

    @property
    def latency_s(self) -> float:
        return self.scored_mono - self.beat.closed_mono


class Priority(enum.IntEnum):
    """IEC 60601-1-8 alarm priorities (higher is more urgent)."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3


class Condition(enum.StrEnum):
    """Every alarm condition the monitor knows; the value is what the journal and the console show."""

    ASYSTOLE = "asystole"
    VFIB = "ventricular fibrillation/flutter"
    VTACH = "ventricular tachycardia"
    EXTREME_BRADY = "extreme bradycardia"
    EXTREME_TACHY = "extreme tachycardia"
    HR_HIGH = "heart rate high"
    HR_LOW = "heart rate low"
    PAUSE = "pause"
    ABNORMAL_BEAT = "abnormal beat"
    FREQUENT_ABNORMAL = "frequent abnormal beats"
    ABNORMAL_RUN = "abnormal run"  # runs of abnormal beats that are not all of one type (an advisory)
    FREQUENT_VEB = "frequent ventricular ectopy"
    VENT_COUPLET = "ventricular couplet"
    VENT_BIGEMINY = "ventricular bigeminy"
    VENT_TRIGEMINY = "ventricular trigeminy"
    VENT_RUN = "ventricular run"  # 3 or more consecutive ventricular beats short of ventricular tachycardia
    SVT_RUN = "supraventricular run"
    LEADS_OFF = "leads off"
    SIGNAL_LOSS = "signal loss"
    NOISY_SIGNAL = "noisy signal"
    RHYTHM_CHANGED = "rhythm changed"
    SHAPE_CHANGED = "QRS shape changed"  # most beats unlike the learnt shape: an electrode moved, or new conduction
    ARTIFACT = "artifact"
    CANNOT_ANALYSE = "ECG cannot be analysed"  # noise or artifact: asystole can be neither called nor ruled out
    BAD_INPUT = "bad input"
    PACKET_LOSS = "packet loss"  # a device link losing packets: its gaps bridged, the beats beside them not judged
    SECOND_LEAD_OFF = "second lead off"  # a bed's second ECG lead off or lost: its alarms rest on the first lead
    MONITOR_OVERLOAD = "monitor overload"
    MONITOR_BEHIND = "monitor behind"
    BED_UNMONITORED = "bed unmonitored"  # distributed workers: no worker owns the bed's partition
    DEVICE_REFUSED = "device refused"  # a device none of whose samples is accepted: its patient is not monitored
    # QRS far larger than a surface ECG's (SegmenterConfig.implausible_qrs_mv): a device's or a header's gain is off
    IMPLAUSIBLE_AMPLITUDE = "implausible amplitude"


class BeatKind(enum.StrEnum):
    """What an abnormal beat is, label-free (see :class:`ecgmon.monitor.alarms.AlarmPolicy`): ventricular,
    supraventricular premature, another abnormal shape, or artifact (too noisy to judge); else normal."""

    NORMAL = "normal"
    VENTRICULAR = "ventricular"
    SUPRAVENTRICULAR = "supraventricular premature"
    OTHER = "other abnormal"
    ARTIFACT = "artifact"

    @property
    def short(self) -> str:
        """One letter for tiles and counts: N, V, S, O (other abnormal), A (artifact)."""
        return _SHORT[self]


_SHORT = {BeatKind.NORMAL: "N", BeatKind.VENTRICULAR: "V", BeatKind.SUPRAVENTRICULAR: "S", BeatKind.OTHER: "O",
          BeatKind.ARTIFACT: "A"}


@dataclass(frozen=True, slots=True)
class TypedBeat:
    """A judged beat with its type: ``score`` the bed's verdict, ``kind`` the policy's type for it,
    ``p_ventricular`` the beat typer's probability (None: the typer did not type it), ``rr_ratio`` the RR before
    the beat over the bed's median RR (None: not known)."""

    score: BeatScore
    kind: BeatKind
    p_ventricular: float | None = None
    rr_ratio: float | None = None


class AlarmKind(enum.StrEnum):
    PHYSIOLOGICAL = "physiological"
    TECHNICAL = "technical"


class AlarmState(enum.StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm transition.  The same ``id`` goes active -> (acknowledged) -> cleared."""

    id: str
    patient: str
    kind: AlarmKind
    condition: Condition
    priority: Priority
    state: AlarmState
    time: float  # wall clock, seconds
    message: str = ""
    beat_index: int | None = None
    loss: float | None = None
    threshold: float | None = None
    evidence: tuple[float, ...] = field(default=())  # recent losses that led to it
    record_s: float | None = None  # beat_index in seconds from the bed's first sample (its place in a recording)
    simulated: bool = False  # the bed's device sends a simulator's samples (core.payload): no patient's alarm
    origin: str | None = None  # another worker that judged it (a central station's view): never this monitor's own
    reason: str = ""  # a cleared alarm: why it ended, as the monitor read it then ("heart rate 92 bpm over 13 beats")

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Alarm:
        """The inverse of :meth:`to_json` (a journal line)."""
        return cls(
            str(d["id"]), str(d["patient"]), AlarmKind(d["kind"]), Condition(d["condition"]),
            Priority[str(d["priority"]).upper()], AlarmState(d["state"]), float(d["time"]), str(d.get("message", "")),
            d.get("beat_index"), d.get("loss"), d.get("threshold"), tuple(d.get("evidence") or ()),
            d.get("record_s"), bool(d.get("simulated", False)), _origin(d.get("origin")), str(d.get("reason") or ""),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id, "patient": self.patient, "kind": str(self.kind), "condition": str(self.condition),
            "priority": self.priority.name.lower(), "state": str(self.state), "time": self.time,
            "message": self.message, "beat_index": self.beat_index, "loss": self.loss,
            "threshold": self.threshold, "evidence": list(self.evidence), "record_s": self.record_s,
            **({"simulated": True} if self.simulated else {}),
            **({"origin": self.origin} if self.origin is not None else {}),
            **({"reason": self.reason} if self.reason else {}),
        }


def _origin(v: object) -> str | None:
    return None if v is None else str(v)

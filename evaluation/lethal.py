"""The lethal alarms through the live pipeline: the CinC 2015 ICU alarm protocol and VT/VF episode scoring.

Both play the records at once through the same code that runs live (:func:`ecgmon.evaluation.ec57.run_records`:
segmenter, lethal and rate watches, VF pool, scorer, alarm policy), each record a bed, and read the alarm
transitions (sample indices) the monitor made.

``cinc2015`` (PhysioNet/Computing in Cardiology Challenge 2015; Clifford GD et al., Computing in Cardiology
42:273-276, 2015): each record's ICU monitor raised one alarm (asystole, extreme bradycardia, extreme
tachycardia, ventricular tachycardia, ventricular flutter/fibrillation) at ``alarm_s`` (60 s of the development
excerpts), and experts judged it true or false.  ecgmon "raises" it when its own alarm of the same type is
active at some moment between ``before_s`` (10 s) before and ``after_s`` (5 s) after that time.  Per type and
in all: TP (true alarm raised), FN, FP (false alarm raised), TN, TPR, TNR and the Challenge score
``100 (TP + TN) / (TP + TN + FP + 5 FN)``.

``vfdb`` (any records with rhythm annotations: the MIT-BIH Malignant Ventricular Ectopy Database, MIT-BIH,
SVDB): VF/flutter episodes (``(VF``, ``(VFIB``, ``(VFL``) and VT episodes (``(VT``) of >= 4 s count as alarmed
when a ventricular lethal alarm (VF/flutter or VT) is active within 10 s of their onset
(:func:`ecgmon.evaluation.vfdb.score_episodes`: delay, overlap).  A lethal alarm is judged against the
reference annotations, by its own definition: VF/flutter and VT are true when they overlap a VT or VF/flutter
episode (10 s grace after its end) or, for VT, a run of 5 or more reference V beats over 100 bpm; asystole is
true when no reference beat lies in the 4 s before it (records without beat annotations cannot confirm a rate
alarm: it counts false, and is reported apart as unconfirmed; an asystole alarm there is true within an annotated
``(ASYS`` episode, else unconfirmed); extreme bradycardia (tachycardia) is
true when the reference beats' rate over the 5 (13) beats before it (the number the alarm counts on:
``LethalConfig.brady_beats``, ``tachy_beats``) is under 45 (over 130) bpm, the definition's limit with a 5 (10)
bpm allowance for where one counts from.  False ones are counted per bed-day, by condition, and each
record's row lists them (``false_at_s``: condition, time, the reference rhythm annotation in force then).
Units: seconds from each record's first sample.

Figures and commands: docs/alarms.md ("Lethal and rate alarms").
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecgmon.core.messages import Alarm, AlarmState, Condition
from ecgmon.evaluation.ec57 import VENTRICULAR, VF_RHYTHMS, VT_RHYTHMS, RecordResult, alarm_true, run_records
from ecgmon.evaluation.vfdb import EMPTY, Episode, EpisodeScore, score_episodes
from ecgmon.models.checkpoint import Checkpoint
from ecgmon.models.records import Recording
from ecgmon.monitor.alarms import PolicyConfig
from ecgmon.monitor.lethal import LethalConfig

CINC_TYPES = {"Asystole": Condition.ASYSTOLE, "Bradycardia": Condition.EXTREME_BRADY,
              "Tachycardia": Condition.EXTREME_TACHY, "Ventricular_Tachycardia": Condition.VTACH,
              "Ventricular_Flutter_Fib": Condition.VFIB}
LETHAL = frozenset(CINC_TYPES.values())


def intervals(alarms: list[Alarm], fs: float, conditions: frozenset[Condition]) -> list[tuple[float, float]]:
    """(raised, cleared) seconds of every alarm of ``conditions`` (cleared = inf while still active)."""
    spans: dict[str, list[float]] = {}
    for a in alarms:
        if a.condition not in conditions or a.beat_index is None:
            continue
        if a.state is AlarmState.ACTIVE:
            spans[a.id] = [a.beat_index / fs, math.inf]
        elif a.state is AlarmState.CLEARED and a.id in spans:
            spans[a.id][1] = a.beat_index / fs
    return [(lo, hi) for lo, hi in spans.values()]


def read_cinc_alarms(data: Path) -> dict[str, tuple[str, bool]]:
    """record -> (alarm type, true?) from the folder's ``ALARMS`` file (``record,type,1|0`` lines)."""
    path = Path(data) / "ALARMS"
    if not path.is_file():
        raise ValueError(f"{data}: no ALARMS file (record,type,1|0 lines): not a CinC 2015 folder")
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or parts[1] not in CINC_TYPES or parts[2] not in ("0", "1"):
            raise ValueError(f"{path}:{n}: expected record,type,1|0 with a type of {sorted(CINC_TYPES)}: {line!r}")
        out[parts[0]] = (parts[1], parts[2] == "1")
    return out


@dataclass(slots=True)
class Counts:
    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0

    def add(self, true: bool, raised: bool) -> None:
        if true:
            self.tp += raised
            self.fn += not raised
        else:
            self.fp += raised
            self.tn += not raised

    def figures(self) -> dict[str, Any]:
        n = self.tp + self.tn + self.fp + 5 * self.fn
        return {"tp": self.tp, "fn": self.fn, "fp": self.fp, "tn": self.tn,
                "tpr": round(self.tp / (self.tp + self.fn), 4) if self.tp + self.fn else None,
                "tnr": round(self.tn / (self.tn + self.fp), 4) if self.tn + self.fp else None,
                "score": round(100 * (self.tp + self.tn) / n, 2) if n else None}


def cinc2015(recordings: list[Recording], labels: dict[str, tuple[str, bool]], ckpt: Checkpoint, *,
             alarm_s: float = 60.0, before_s: float = 10.0, after_s: float = 5.0, device: str = "cpu",
             threads: int | None = None, learn_s: float = 300.0, policy: PolicyConfig = PolicyConfig(),
             watch: LethalConfig = LethalConfig(), packet_s: float = 0.25) -> dict[str, Any]:
    """The Challenge's figures for ``recordings`` (see the module docstring), and each record's verdict.
    ``policy``, ``watch``: the alarm settings (default: the monitor's); ``packet_s``: as :func:`run_records`."""
    beds = run_records(recordings, ckpt, device=device, threads=threads, learn_s=learn_s, policy=policy,
                       lethal=watch, packet_s=packet_s)
    per_type: dict[str, Counts] = {t: Counts() for t in CINC_TYPES}
    total = Counts()
    rows = []
    for b in beds:
        if b.name not in labels:
            continue
        kind, true = labels[b.name]
        spans = intervals(b.alarms, b.fs, frozenset({CINC_TYPES[kind]}))
        raised = any(lo <= alarm_s + after_s and hi >= alarm_s - before_s for lo, hi in spans)
        per_type[kind].add(true, raised)
        total.add(true, raised)
        rows.append({"record": b.name, "type": kind, "true": true, "raised": raised,
                     "spans_s": [[round(lo, 2), None if math.isinf(hi) else round(hi, 2)] for lo, hi in spans]})
    return {"types": {k: v.figures() for k, v in per_type.items()}, "all": total.figures(), "records": rows}


def episodes_of(bed: RecordResult) -> tuple[list[Episode], list[Episode]]:
    """(VF/flutter episodes, VT episodes) of a record from its rhythm annotations."""
    return ([e for e in bed.rhythms if e.rhythm in VF_RHYTHMS], [e for e in bed.rhythms if e.rhythm in VT_RHYTHMS])


def _rhythm_at(episodes: list[Episode], t: float) -> str:
    """The reference rhythm annotation in force at ``t`` seconds ('' when none)."""
    return next((e.rhythm for e in episodes if e.start <= t < e.end), "")


# a lethal alarm raised this soon (s) after the same condition's alarm cleared is counted as raised again: one
# episode heard twice (vt_vf's raised_again_by_condition)
AGAIN_S = 30.0


def raised_again(spans: list[tuple[float, float]], within_s: float = AGAIN_S) -> int:
    """How many of one condition's alarms (``spans``: (raised, cleared) seconds, :func:`intervals`) were raised
    within ``within_s`` of the clearing of the one before."""
    ordered = sorted(spans)
    return sum(lo - prev_hi <= within_s for (_, prev_hi), (lo, _) in itertools.pairwise(ordered))


def vt_vf(recordings: list[Recording], ckpt: Checkpoint, *, device: str = "cpu", threads: int | None = None,
          learn_s: float = 300.0, policy: PolicyConfig = PolicyConfig(),
          watch: LethalConfig = LethalConfig(), packet_s: float = 0.25) -> dict[str, Any]:
    """VF/flutter and VT episodes alarmed within 10 s, median delays, false lethal alarms per bed-day, and every
    lethal alarm raised by condition, with those raised within :data:`AGAIN_S` of the same condition's clearing.
    ``policy``, ``watch``: the alarm settings (default: the monitor's); ``packet_s``: as :func:`run_records`."""
    beds = run_records(recordings, ckpt, device=device, threads=threads, learn_s=learn_s, policy=policy,
                       lethal=watch, packet_s=packet_s)
    return judge_lethal(beds, watch=watch)


def judge_lethal(beds: list[RecordResult], *, watch: LethalConfig = LethalConfig()) -> dict[str, Any]:
    """:func:`vt_vf`'s figures for records already played (``beds``: their alarms and reference annotations)."""
    vf_score, vt_score = EMPTY, EMPTY
    false_by: Counter[str] = Counter()
    unconfirmed_by: Counter[str] = Counter()
    raised: Counter[str] = Counter()
    again: Counter[str] = Counter()
    rows = []
    for b in beds:
        vf_eps, vt_eps = episodes_of(b)
        rhythms = list(b.rhythms)
        seconds = b.n_samples / b.fs
        vent = intervals(b.alarms, b.fs, VENTRICULAR)
        lethal = vf_eps + vt_eps
        s_vf = score_episodes(vf_eps, lethal, vent, seconds)
        s_vt = score_episodes(vt_eps, lethal, vent, seconds)
        false = 0
        false_at: list[tuple[str, float, str]] = []
        for cond in sorted(LETHAL, key=str):
            spans = intervals(b.alarms, b.fs, frozenset({cond}))
            raised[str(cond)] += len(spans)
            again[str(cond)] += raised_again(spans)
            at = [lo for lo, _ in spans if not alarm_true(cond, lo, b, lethal, watch=watch)]
            false_by[str(cond)] += len(at)
            if at and cond not in VENTRICULAR and not len(b.ref):  # no reference beats to confirm or refute it by
                unconfirmed_by[str(cond)] += len(at)
            false += len(at)
            false_at += [(str(cond), round(t, 1), _rhythm_at(rhythms, t)) for t in at]
        # the episode scores count false alarms of the ventricular conditions only: count every lethal one
        vf_score += EpisodeScore(s_vf.episodes, s_vf.alarmed, s_vf.delays, false, seconds / 3600.0, s_vf.carried)
        vt_score += EpisodeScore(s_vt.episodes, s_vt.alarmed, s_vt.delays, 0, 0.0, s_vt.carried)
        rows.append({"record": b.name, "hours": round(seconds / 3600, 3), "vf": s_vf.summary(), "vt": s_vt.summary(),
                     "false_lethal": false, "false_at_s": sorted(false_at, key=lambda c: c[1])})
    hours = vf_score.hours
    return {"vf_flutter": {k: v for k, v in vf_score.summary().items() if k not in ("false_alarms", "hours",
                                                                                  "false_per_bed_day")},
            "vt": {k: v for k, v in vt_score.summary().items() if k not in ("false_alarms", "hours",
                                                                          "false_per_bed_day")},
            "false_lethal": vf_score.false_alarms, "hours": round(hours, 2),
            "false_lethal_per_bed_day": round(24 * vf_score.false_alarms / hours, 2) if hours else None,
            "false_by_condition": dict(false_by), "raised_by_condition": dict(raised),
            # of the false ones: rate and asystole alarms on records without reference beats (VFDB has rhythm
            # annotations only), which the reference can neither confirm nor refute; counted false all the same
            "unconfirmed_by_condition": dict(unconfirmed_by),
            "false_judged_per_bed_day": (round(24 * (vf_score.false_alarms - sum(unconfirmed_by.values())) / hours, 2)
                                         if hours else None),
            "raised_again_by_condition": dict(again), "records": rows}

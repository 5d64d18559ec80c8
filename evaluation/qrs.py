"""QRS-only evaluation protocols (no model): records played through the live :class:`Segmenter`.

Each record is played from its first sample in chunks of ``chunk_s`` (0.25 s, as ``--source record``
plays it) through the same :class:`~ecgmon.segmentation.beats.Segmenter` the pipeline runs for a bed,
in the beat representation of the monitor's checkpoint (it decides where the fiducial falls).  The beats
it emits are the detections.

- ``qrs``: QRS sensitivity (Se) and positive predictivity (+P) per record (whole records) against the reference beat
  annotations, matched one to one within 150 ms (ANSI/AAMI EC57), with :func:`ecgmon.models.records.match`.
  Segments of ventricular flutter or fibrillation (``[`` .. ``]`` in the ``atr`` file) hold no
  reference beats; EC57 leaves them out of the beat-by-beat comparison: ``exclude_vf`` does the same
  (detections inside them are not counted).
- ``nstdb``: the MIT-BIH Noise Stress Test series (``118e24`` .. ``118e_6``): Se/+P per record (SNR)
  from ``start_s`` (300 s: the first 5 minutes are clean) on (Moody, Muldrow & Mark 1984).
- ``ec13``: ANSI/AAMI EC13 test waveforms (``aami3a`` .. ``aami4b``): the heart rate each beat shows
  (``Beat.hr_bpm``) against the record's true rate, per segment, passing when every one is within
  +/- ``tolerance`` (5 %).  Figures 3a-3d (bigeminy, bidirectional systoles, section 4.1.2.1 e): from
  20 s on.  Figures 4a/4b (section 4.1.2.1 g, time to alarm for tachycardia): as PhysioNet documents
  the records, 30 s of 80 bpm triangle waveforms, then ventricular tachycardia at 206 bpm (4a, 1 mV) or
  195 bpm (4b, 2 mV); the rate is checked over 20-30 s (80) and from 40 s on (the VT rate: EC13 allows
  8 s to the alarm).  Amplitude variants (``_d``, ``_h``) share their record's rates.  Measured on the records
  (maxima of the 1-6 Hz band-passed signal, 40 s to the end), the VT cycles come at 198.3 bpm in 4a (RR
  264-339 ms) and 195.2 bpm in 4b; the 12-beat mean of those cycles stays within 196.9-200.0 (4a) and
  193.8-197.5 (4b), so a detector that counts every cycle once passes the 206/195 bpm reference at +/-5 %.
  With a checkpoint, figures 4a/4b are also played through the whole monitor (lethal and rate watches
  included): the **time to alarm for tachycardia** (section 4.1.2.1 g) is the time from the tachycardia's onset
  (30 s) to the first ventricular tachycardia, VF/flutter or extreme tachycardia alarm raised, and any such
  alarm raised over the 80 bpm part is listed as false.  Reported, not judged: no limit is asserted here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgmon.core.messages import AlarmState, Condition
from ecgmon.evaluation.ec57 import in_spans, run_records, vf_spans
from ecgmon.models.checkpoint import Checkpoint
from ecgmon.models.records import RecordError, Recording, find_records, match, read, read_all
from ecgmon.segmentation.agreement import AgreementConfig, LeadAgreement
from ecgmon.segmentation.beats import Segmenter
from ecgmon.segmentation.represent import Representation
from ecgmon.simulators.replay import chunk_size

__all__ = ["EC13_RATES", "QRSCounts", "RateResult", "count", "detect", "ec13", "nstdb", "qrs", "rates_of", "total",
           "vf_spans"]

TOLERANCE_S = 0.150
# the true rates of the EC13 test waveforms: (from s, to s, bpm) segments; amplitude variants (aami4a_d, ...)
# share them.  4a/4b: https://physionet.org/content/aami-ec13/ and EC13 section 4.1.2.1 g
EC13_RATES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "aami3a": ((20.0, math.inf, 80.0),), "aami3b": ((20.0, math.inf, 60.0),), "aami3c": ((20.0, math.inf, 120.0),),
    "aami3d": ((20.0, math.inf, 90.0),), "aami4a": ((20.0, 30.0, 80.0), (40.0, math.inf, 206.0)),
    "aami4b": ((20.0, 30.0, 80.0), (40.0, math.inf, 195.0))}


@dataclass(frozen=True, slots=True)
class Detections:
    index: np.ndarray  # int64 absolute sample indices of the beats' fiducials
    hr_bpm: np.ndarray  # float64, NaN where no rate yet
    signal_losses: int
    noisy: np.ndarray | None = None  # bool per beat: Beat.noisy (its stretch failed the signal-quality index)


def detect(rec: Recording, *, rep: Representation = Representation(), chunk_s: float = 0.25,
           second: Recording | None = None, agreement: AgreementConfig = AgreementConfig()) -> Detections:
    """The beats the live segmenter emits on ``rec``, played in ``chunk_s`` chunks; with ``second`` (the record's
    second lead, the same samples), the beats the two-lead rule of :mod:`ecgmon.segmentation.agreement` leaves, as
    the monitor plays a bed with a second lead (``agreement``: that rule's settings).  The segmenter alone: a run of
    missing samples (NaN) is signal loss here, the detector starting again after it, where the monitor draws a short
    run (``--bridge-s``) as a line and its detector goes on (``Monitor._bridge``): on a record with NaN runs this can
    count a beat fewer than the monitor finds (a newcomer's MIT-BIH 208 with runs of 0.5-12 s: 486 against 487)."""
    seg = Segmenter(rec.name, rec.fs, rep=rep)
    size = chunk_size(chunk_s, rec.fs)
    if second is None:
        beats = [b for a in range(0, len(rec.signal), size) for b in seg.push(rec.signal[a:a + size])]
    else:
        if second.fs != rec.fs or len(second.signal) != len(rec.signal):
            raise ValueError(f"{rec.name}: the second lead is not sampled as the first ({second.fs:g} Hz, "
                             f"{len(second.signal)} samples against {rec.fs:g} Hz, {len(rec.signal)})")
        seg2 = Segmenter(rec.name, rec.fs, rep=rep)
        agree = LeadAgreement(rec.fs, agreement, rep=rep)
        beats = []
        for a in range(0, len(rec.signal), size):
            got = seg.push(rec.signal[a:a + size])
            agree.first([f for f, _ in seg.found], seg.found_when, seg.total, passed=seg.passed)
            got2 = seg2.push(second.signal[a:a + size])
            agree.second([f for f, _ in seg2.found], seg2.found_when, seg2.total, beats=got2)
            beats += agree.push(got)
        beats += agree.flush(end=True)
    return Detections(np.asarray([b.index for b in beats], dtype=np.int64),
                      np.asarray([np.nan if b.hr_bpm is None else b.hr_bpm for b in beats], dtype=np.float64),
                      seg.losses, np.asarray([b.noisy for b in beats], dtype=bool))


@dataclass(frozen=True, slots=True)
class QRSCounts:
    record: str
    ref_beats: int
    detections: int
    tp: int
    excluded_s: float = 0.0  # VF time left out
    noisy: int = 0  # detections marked noisy (Beat.noisy: segmentation.sqi)

    @property
    def fn(self) -> int:
        return self.ref_beats - self.tp

    @property
    def fp(self) -> int:
        return self.detections - self.tp

    @property
    def se(self) -> float | None:
        return self.tp / self.ref_beats if self.ref_beats else None

    @property
    def ppv(self) -> float | None:
        return self.tp / self.detections if self.detections else None

    @property
    def noisy_share(self) -> float | None:
        return self.noisy / self.detections if self.detections else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fn": self.fn, "fp": self.fp, "se": self.se, "ppv": self.ppv,
                "noisy_share": self.noisy_share}


def count(rec: Recording, det: np.ndarray, *, start_s: float = 0.0, exclude: list[tuple[int, int]] | None = None,
          tolerance_s: float = TOLERANCE_S, noisy: np.ndarray | None = None) -> QRSCounts:
    """Reference beats and detections from ``start_s`` on, outside ``exclude`` spans, matched within 150 ms;
    ``noisy``: per detection, whether it was marked noisy (counted among the detections kept)."""
    ref = rec.ann_samples
    t0 = start_s * rec.fs
    spans = exclude or []
    rk, dk = (ref >= t0) & ~in_spans(ref, spans), (det >= t0) & ~in_spans(det, spans)
    excluded = sum(b - a for a, b in spans)
    m = match(ref[rk], det[dk], tolerance_s * rec.fs)
    return QRSCounts(rec.name, int(rk.sum()), int(dk.sum()), int((m >= 0).sum()), excluded / rec.fs,
                     int(noisy[dk].sum()) if noisy is not None else 0)


def total(counts: list[QRSCounts]) -> QRSCounts:
    """Gross counts (pooled over records)."""
    return QRSCounts("gross", sum(c.ref_beats for c in counts), sum(c.detections for c in counts),
                     sum(c.tp for c in counts), sum(c.excluded_s for c in counts), sum(c.noisy for c in counts))


def qrs(paths: list[Path], *, lead: str = "MLII", rep: Representation = Representation(), start_s: float = 0.0,
        exclude_vf: bool = True, second_lead: bool = True) -> list[QRSCounts]:
    """QRS Se/+P of every annotated record (see the module docstring); ``second_lead``: a record's second ECG lead
    is played beside the first where it has one, as the monitor plays records by default
    (:mod:`ecgmon.segmentation.agreement`)."""
    out = []
    for p in paths:
        if second_lead:
            got = read_all([p], lead=lead, second_lead=None)
            if not got.recordings:
                raise RecordError("; ".join(got.left_out))
            rec = got.recordings[0]
        else:
            rec = read(p, lead=lead)
        det = detect(rec, rep=rep, second=rec.second)
        out.append(count(rec, det.index, start_s=start_s, exclude=vf_spans(p, rec.fs) if exclude_vf else None,
                         noisy=det.noisy))
    return out


def snr_of(name: str) -> float | None:
    """NSTDB record name -> its SNR in dB (``118e_6`` -> -6), None if not one."""
    m = re.search(r"e(_?)(\d+)$", name)
    return None if m is None else (-1.0 if m.group(1) else 1.0) * float(m.group(2))


def nstdb(data: Path, *, lead: str = "MLII", rep: Representation = Representation(),
          start_s: float = 300.0, paths: list[Path] | None = None,
          second_lead: bool = True) -> list[tuple[float | None, QRSCounts]]:
    """(SNR dB, counts) per NSTDB record in ``data`` (or of ``paths``), from ``start_s`` on, highest SNR first."""
    paths = protocol_paths(data) if paths is None else paths
    res = [(snr_of(p.name), c) for p, c in zip(paths, qrs(paths, lead=lead, rep=rep, start_s=start_s,
                                                          exclude_vf=False, second_lead=second_lead), strict=True)]
    return sorted(res, key=lambda r: -np.inf if r[0] is None else -r[0])


@dataclass(frozen=True, slots=True)
class RateResult:
    """The rate shown over one segment of an EC13 record whose true rate is ``true_bpm``."""

    record: str
    from_s: float
    to_s: float
    true_bpm: float
    shown: list[float] = field(repr=False)  # every beat's hr_bpm in the segment

    @property
    def lo(self) -> float | None:
        return min(self.shown) if self.shown else None

    @property
    def hi(self) -> float | None:
        return max(self.shown) if self.shown else None

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.shown)) if self.shown else None

    def passed(self, tolerance: float = 0.05) -> bool:
        return bool(self.shown) and all(abs(v - self.true_bpm) <= tolerance * self.true_bpm for v in self.shown)

    def to_dict(self, tolerance: float = 0.05) -> dict[str, Any]:
        return {"record": self.record, "from_s": self.from_s, "to_s": None if math.isinf(self.to_s) else self.to_s,
                "true_bpm": self.true_bpm, "beats": len(self.shown), "min": self.lo, "max": self.hi,
                "mean": self.mean, "passed": self.passed(tolerance)}


def rates_of(name: str) -> tuple[tuple[float, float, float], ...]:
    """The true-rate segments of an EC13 waveform by name (``aami4a_h`` -> those of ``aami4a``); () unknown."""
    return EC13_RATES.get(name.split("_")[0].lower(), ())


def ec13(data: Path, *, lead: str = "ECG", rep: Representation = Representation(),
         paths: list[Path] | None = None) -> list[RateResult]:
    """The rate shown per EC13 record (of ``data``, or ``paths``) and segment (see the module docstring); unknown
    records are skipped."""
    out = []
    for p in protocol_paths(data) if paths is None else paths:
        segments = rates_of(p.name)
        if not segments:
            continue
        rec = read(p, lead=lead, annotations=False)
        det = detect(rec, rep=rep)
        t = det.index / rec.fs
        for a, b, bpm in segments:
            keep = (t >= a) & (t < b) & np.isfinite(det.hr_bpm)
            out.append(RateResult(rec.name, a, b, bpm, det.hr_bpm[keep].tolist()))
    return out


EC13_TACHY_ONSET_S = 30.0  # aami4*: 30 s of triangle waveforms, then the figure 4 tachycardia (PhysioNet)
TACHY_ALARMS = frozenset({Condition.VTACH, Condition.VFIB, Condition.EXTREME_TACHY})


def ec13_time_to_alarm(data: Path, ckpt: Checkpoint, *, lead: str = "ECG",
                       paths: list[Path] | None = None) -> list[dict[str, Any]]:
    """Figures 4a/4b (and their amplitude variants) through the whole monitor: per record, the first tachycardia
    alarm raised from the onset on (condition, seconds after the onset), and those raised before it (false)."""
    recs = [read(p, lead=lead, annotations=False) for p in (protocol_paths(data) if paths is None else paths)
            if p.name.split("_")[0].lower() in ("aami4a", "aami4b")]
    if not recs:
        return []
    out = []
    for b in run_records(recs, ckpt, learn_s=0.0):
        raised = sorted((a.beat_index / b.fs, str(a.condition)) for a in b.alarms
                        if a.condition in TACHY_ALARMS and a.state is AlarmState.ACTIVE and a.beat_index is not None)
        after = [(t, c) for t, c in raised if t >= EC13_TACHY_ONSET_S]
        out.append({"record": b.name, "onset_s": EC13_TACHY_ONSET_S,
                    "alarm": after[0][1] if after else None,
                    "time_to_alarm_s": round(after[0][0] - EC13_TACHY_ONSET_S, 2) if after else None,
                    "false_before_onset": [[round(t, 2), c] for t, c in raised if t < EC13_TACHY_ONSET_S]})
    return out


def protocol_paths(data: Path, records: Sequence[str] | None = None) -> list[Path]:
    """The records of ``data`` (those named in ``records``, each looked up by name: ValueError naming those not
    there)."""
    paths = find_records([data])
    if records:
        by_name = {p.name: p for p in paths}
        if missing := [r for r in records if r not in by_name]:
            raise ValueError(f"record(s) {', '.join(missing)} not in {data} (there: "
                             f"{', '.join(sorted(by_name)) or 'none'})")
        paths = [by_name[r] for r in records]
    return paths


def run_protocol(protocol: str, data: Path, *, rep: Representation, out: Path | None = None,
                 lead: str | None = None, ckpt: Checkpoint | None = None,
                 records: Sequence[str] | None = None, second_lead: bool = True) -> tuple[list[str], dict[str, Any]]:
    """``ecgmon evaluate --protocol qrs|nstdb|ec13``: (lines to print, the figures written to ``out/metrics.json``).
    ``records``: only these (by name).  ValueError where ``data`` holds no record the protocol can count (a run that
    counted nothing is no pass)."""
    import json

    figures: dict[str, Any]
    paths = protocol_paths(data, records)
    if protocol == "qrs":
        counts = qrs(paths, lead=lead or "MLII", rep=rep, second_lead=second_lead)
        if not counts:
            raise ValueError(f"--protocol qrs: no annotated record in {data}")
        lines = [f"QRS detection ({data}), whole records, ventricular flutter/fibrillation left out (EC57), 150 ms "
                 f"window, beat representation {rep.kind}, "
                 + ("a record's second lead beside the first where it has one" if second_lead else "one lead"),
                 f"{'record':>8} {'ref':>5} {'det':>5} {'FN':>4} {'FP':>4} {'Se %':>7} {'+P %':>7} {'VF s':>5} "
                 f"{'noisy %':>7}"]
        for c in [*counts, total(counts)]:
            lines.append(f"{c.record:>8} {c.ref_beats:>5} {c.detections:>5} {c.fn:>4} {c.fp:>4} "
                         f"{100 * (c.se or 0):>7.2f} {100 * (c.ppv or 0):>7.2f} {c.excluded_s:>5.0f} "
                         f"{100 * (c.noisy_share or 0):>7.1f}")
        figures = {"records": [c.to_dict() for c in counts], "gross": total(counts).to_dict()}
    elif protocol == "nstdb":
        res = nstdb(data, lead=lead or "MLII", rep=rep, paths=paths, second_lead=second_lead)
        if not any(snr is not None for snr, _ in res):
            raise ValueError(f"--protocol nstdb: no NSTDB record (a name ending e24 .. e_6, as 118e06) in {data}")
        lines = [f"NSTDB QRS detection ({data}), first 300 s excluded, EC57 150 ms window, beat representation "
                 f"{rep.kind}, {'both leads' if second_lead else 'one lead'}; noisy %: detections marked noisy by "
                 "the signal-quality index",
                 f"{'record':>8} {'SNR dB':>6} {'ref':>5} {'FN':>4} {'FP':>4} {'Se %':>7} {'+P %':>7} {'noisy %':>7}"]
        for snr, c in res:
            lines.append(f"{c.record:>8} {snr if snr is not None else float('nan'):>6.0f} {c.ref_beats:>5} {c.fn:>4} "
                         f"{c.fp:>4} {100 * (c.se or 0):>7.2f} {100 * (c.ppv or 0):>7.2f} "
                         f"{100 * (c.noisy_share or 0):>7.1f}")
        figures = {"records": [{"snr_db": snr, **c.to_dict()} for snr, c in res]}
    elif protocol == "ec13":
        rates = ec13(data, lead=lead or "ECG", rep=rep, paths=paths)
        if not rates:
            raise ValueError(f"--protocol ec13: no EC13 waveform (aami3a .. aami4b and their variants) in {data}")
        lines = [f"EC13 heart rate shown ({data}), +/-5 % of the true rate, beat representation {rep.kind}",
                 f"{'record':>10} {'from s':>6} {'to s':>5} {'true bpm':>8} {'shown':>5} {'min':>6} {'max':>6} "
                 f"{'mean':>6}  pass   (shown: rates shown in the segment; min/max/mean of them, bpm)"]
        for r in rates:
            nan = float("nan")
            to = "end" if math.isinf(r.to_s) else f"{r.to_s:.0f}"
            lines.append(f"{r.record:>10} {r.from_s:>6.0f} {to:>5} {r.true_bpm:>8.0f} {len(r.shown):>5} "
                         f"{r.lo or nan:>6.1f} {r.hi or nan:>6.1f} {r.mean or nan:>6.1f}  "
                         f"{'PASS' if r.passed() else 'FAIL'}")
        bad = [f"{r.record} from {r.from_s:.0f} s" for r in rates if not r.passed()]
        lines.append(f"{len(rates) - len(bad)} of {len(rates)} segments within +/-5 % of the true rate"
                     + (f"; out: {', '.join(bad)} (exit 1)" if bad else ""))
        figures = {"segments": [r.to_dict() for r in rates], "tolerance": 0.05}
        if ckpt is not None and (alarms := ec13_time_to_alarm(data, ckpt, lead=lead or "ECG", paths=paths)):
            lines.append("time to alarm for tachycardia (EC13 4.1.2.1 g; onset at 30 s), the whole monitor:")
            for t in alarms:
                got = (f"{t['time_to_alarm_s']:.1f} s ({t['alarm']})" if t["alarm"] is not None
                       else "no tachycardia alarm")
                lines.append(f"{t['record']:>10} {got}" + (f"; false before the onset: {t['false_before_onset']}"
                                                             if t["false_before_onset"] else ""))
            figures["time_to_alarm"] = alarms
    else:
        raise ValueError(f"unknown QRS protocol {protocol!r} (qrs, nstdb, ec13)")
    figures.update(protocol=protocol, data=str(data), representation=rep.to_dict(), chunk_s=0.25)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(figures, indent=1))
        lines.append(f"wrote {out / 'metrics.json'}")
    return lines, figures

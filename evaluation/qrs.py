"""QRS-only evaluation protocols (no model): records played through the live :class:`Segmenter`.

Each record is played from its first sample in chunks of ``chunk_s`` (0.25 s, as ``--source record``
plays it) through the same :class:`~ecgmon.segmentation.beats.Segmenter` the pipeline runs for a bed,
in the beat representation of the monitor's checkpoint (it decides where the fiducial falls).  The beats
it emits are the detections.

- ``qrs``: QRS sensitivity (Se) and positive predictivity (+P) per record against the reference beat
  annotations, matched one to one within 150 ms (ANSI/AAMI EC57), with :func:`ecgmon.models.records.match`.
  Segments of ventricular flutter or fibrillation (``[`` .. ``]`` in the ``atr`` file) hold no
  reference beats; EC57 leaves them out of the beat-by-beat comparison: ``exclude_vf`` does the same
  (detections inside them are not counted).
- ``nstdb``: the MIT-BIH Noise Stress Test series (``118e24`` .. ``118e_6``): Se/+P per record (SNR)
  from ``start_s`` (300 s: the first 5 minutes are clean) on (Moody, Muldrow & Mark 1984).
- ``ec13``: ANSI/AAMI EC13 test waveforms (``aami3a`` .. ``aami4b``): the heart rate each beat shows
  (``Beat.hr_bpm``) from ``settle_s`` (20 s) on against the record's true rate, passing when every
  one is within +/- ``tolerance`` (5 %).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgmon.models.records import Recording, find_records, match, read
from ecgmon.segmentation.beats import Segmenter
from ecgmon.segmentation.represent import Representation
from ecgmon.simulators.replay import chunk_size

__all__ = ["EC13_RATES", "QRSCounts", "RateResult", "detect", "ec13", "nstdb", "qrs", "rate_of", "vf_spans"]

TOLERANCE_S = 0.150
# the true rates of the EC13 test waveforms (bpm); amplitude variants (aami4a_d, aami4b_h, ...) share them
EC13_RATES = {"aami3a": 80.0, "aami3b": 60.0, "aami3c": 120.0, "aami3d": 90.0, "aami4a": 80.0, "aami4b": 80.0}


@dataclass(frozen=True, slots=True)
class Detections:
    index: np.ndarray  # int64 absolute sample indices of the beats' fiducials
    hr_bpm: np.ndarray  # float64, NaN where no rate yet
    signal_losses: int


def detect(rec: Recording, *, rep: Representation = Representation(), chunk_s: float = 0.25) -> Detections:
    """The beats the live segmenter emits on ``rec``, played in ``chunk_s`` chunks."""
    seg = Segmenter(rec.name, rec.fs, rep=rep)
    size = chunk_size(chunk_s, rec.fs)
    beats = [b for a in range(0, len(rec.signal), size) for b in seg.push(rec.signal[a:a + size])]
    return Detections(np.asarray([b.index for b in beats], dtype=np.int64),
                      np.asarray([np.nan if b.hr_bpm is None else b.hr_bpm for b in beats], dtype=np.float64),
                      seg.losses)


def vf_spans(path: Path) -> list[tuple[int, int]]:
    """Ventricular flutter/fibrillation episodes (``[`` .. ``]`` in the record's ``atr``), sample indices."""
    import wfdb

    atr = Path(path).with_suffix(".atr")
    if not atr.is_file():
        return []
    ann = wfdb.rdann(str(Path(path)), "atr")
    out, start = [], None
    for s, sym in zip(ann.sample, ann.symbol, strict=True):
        if sym == "[":
            start = int(s)
        elif sym == "]" and start is not None:
            out.append((start, int(s)))
            start = None
    if start is not None:
        out.append((start, int(ann.sample[-1]) + 1))
    return out


@dataclass(frozen=True, slots=True)
class QRSCounts:
    record: str
    ref_beats: int
    detections: int
    tp: int
    excluded_s: float = 0.0  # VF time left out

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

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fn": self.fn, "fp": self.fp, "se": self.se, "ppv": self.ppv}


def count(rec: Recording, det: np.ndarray, *, start_s: float = 0.0, exclude: list[tuple[int, int]] | None = None,
          tolerance_s: float = TOLERANCE_S) -> QRSCounts:
    """Reference beats and detections from ``start_s`` on, outside ``exclude`` spans, matched within 150 ms."""
    ref = rec.ann_samples
    t0 = start_s * rec.fs
    rk, dk = ref >= t0, det >= t0
    excluded = 0
    for a, b in exclude or []:
        rk &= ~((ref >= a) & (ref <= b))
        dk &= ~((det >= a) & (det <= b))
        excluded += b - a
    m = match(ref[rk], det[dk], tolerance_s * rec.fs)
    return QRSCounts(rec.name, int(rk.sum()), int(dk.sum()), int((m >= 0).sum()), excluded / rec.fs)


def total(counts: list[QRSCounts]) -> QRSCounts:
    """Gross counts (pooled over records)."""
    return QRSCounts("gross", sum(c.ref_beats for c in counts), sum(c.detections for c in counts),
                     sum(c.tp for c in counts), sum(c.excluded_s for c in counts))


def qrs(paths: list[Path], *, lead: str = "MLII", rep: Representation = Representation(), start_s: float = 0.0,
        exclude_vf: bool = True) -> list[QRSCounts]:
    """QRS Se/+P of every annotated record (see the module docstring)."""
    out = []
    for p in paths:
        rec = read(p, lead=lead)
        det = detect(rec, rep=rep)
        out.append(count(rec, det.index, start_s=start_s, exclude=vf_spans(p) if exclude_vf else None))
    return out


def snr_of(name: str) -> float | None:
    """NSTDB record name -> its SNR in dB (``118e_6`` -> -6), None if not one."""
    m = re.search(r"e(_?)(\d+)$", name)
    return None if m is None else (-1.0 if m.group(1) else 1.0) * float(m.group(2))


def nstdb(data: Path, *, lead: str = "MLII", rep: Representation = Representation(),
          start_s: float = 300.0) -> list[tuple[float | None, QRSCounts]]:
    """(SNR dB, counts) per NSTDB record in ``data``, from ``start_s`` on, highest SNR first."""
    paths = find_records([data])
    res = [(snr_of(p.name), c) for p, c in zip(paths, qrs(paths, lead=lead, rep=rep, start_s=start_s,
                                                          exclude_vf=False), strict=True)]
    return sorted(res, key=lambda r: -np.inf if r[0] is None else -r[0])


@dataclass(frozen=True, slots=True)
class RateResult:
    record: str
    true_bpm: float | None
    shown: list[float] = field(repr=False)  # every beat's hr_bpm from settle_s on
    beats: int = 0

    @property
    def lo(self) -> float | None:
        return min(self.shown) if self.shown else None

    @property
    def hi(self) -> float | None:
        return max(self.shown) if self.shown else None

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.shown)) if self.shown else None

    def passed(self, tolerance: float = 0.05) -> bool | None:
        if self.true_bpm is None:
            return None
        return bool(self.shown) and all(abs(v - self.true_bpm) <= tolerance * self.true_bpm for v in self.shown)

    def to_dict(self, tolerance: float = 0.05) -> dict[str, Any]:
        return {"record": self.record, "true_bpm": self.true_bpm, "beats": self.beats, "min": self.lo,
                "max": self.hi, "mean": self.mean, "passed": self.passed(tolerance)}


def rate_of(name: str) -> float | None:
    """The true rate of an EC13 waveform by name (``aami4a_h`` -> that of ``aami4a``)."""
    return EC13_RATES.get(name.split("_")[0].lower())


def ec13(data: Path, *, lead: str = "ECG", rep: Representation = Representation(),
         settle_s: float = 20.0) -> list[RateResult]:
    """The rate shown per EC13 record from ``settle_s`` on (see the module docstring)."""
    out = []
    for p in find_records([data]):
        rec = read(p, lead=lead, annotations=False)
        det = detect(rec, rep=rep)
        keep = (det.index >= settle_s * rec.fs) & np.isfinite(det.hr_bpm)
        out.append(RateResult(rec.name, rate_of(rec.name), det.hr_bpm[keep].tolist(), int(keep.sum())))
    return out

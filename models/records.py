"""Recorded ECG: WFDB records (read with the ``wfdb`` package) and plain CSV, with reference beats as AAMI classes.

A :class:`Recording` holds one lead in millivolts at the record's own sampling rate, and its
reference beat annotations (sample index, MIT-BIH symbol, AAMI class).  AAMI classes follow
ANSI/AAMI EC57: N (N L R e j), S (A a J S), V (V E), F (F), Q (/ f Q); other annotation symbols
(rhythm, noise and comment marks) are not beats.

Every problem with a file raises :class:`RecordError` naming the file.
"""

from __future__ import annotations

import contextlib
import csv
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgmon.core.limits import MATCH_WINDOW_S, check_fs, chunk_size
from ecgmon.core.matching import match
from ecgmon.segmentation.beats import Segmenter
from ecgmon.segmentation.represent import Representation

AAMI = {**dict.fromkeys("NLRej", "N"), **dict.fromkeys("AaJS", "S"), **dict.fromkeys("VE", "V"), "F": "F",
        **dict.fromkeys("/fQ", "Q")}
AAMI_CLASSES = ("N", "S", "V", "F", "Q")
PACED = frozenset({"102", "104", "107", "217"})  # MIT-BIH records with paced beats, excluded by EC57


class RecordError(ValueError):
    """A recording that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Recording:
    """One lead of a record.  ``ann_*``: reference beats only (AAMI classes), sample indices at ``fs``."""

    name: str
    path: Path  # the record's path without extension (WFDB) or the CSV file
    fs: float  # Hz
    lead: str
    signal: np.ndarray = field(repr=False)  # float32, mV
    ann_samples: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))
    ann_classes: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, "<U1"))
    annotated: bool = False

    @property
    def seconds(self) -> float:
        return len(self.signal) / self.fs


def find_records(paths: list[Path] | list[str]) -> list[Path]:
    """Record paths (without extension) from records, folders (their RECORDS list, else every .hea), and
    RECORDS files; CSV files are kept as they are."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            listing = p / "RECORDS"
            names = (listing.read_text().split() if listing.is_file()
                     else sorted(h.stem for h in p.glob("*.hea")))
            if not names:
                raise RecordError(f"{p}: no RECORDS list and no .hea files: not a WFDB record folder")
            out += [p / n for n in names]
        elif p.name == "RECORDS" and p.is_file():
            out += [p.parent / n for n in p.read_text().split()]
        elif p.suffix.lower() == ".csv":
            out.append(p)
        else:
            out.append(p.with_suffix("") if p.suffix in (".hea", ".dat", ".atr") else p)
    return out


def read(path: Path | str, *, lead: str = "MLII", fs: float | None = None, annotations: bool = True) -> Recording:
    """A WFDB record (``path`` without extension) or a CSV file (needs ``fs``)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        if fs is None:
            raise RecordError(f"{path}: a CSV file needs its sampling rate (--fs)")
        return read_csv(path, fs=fs)
    return read_wfdb(path, lead=lead, annotations=annotations)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """wfdb's own use of deprecated pandas and numpy calls: not ours to fix, not the user's to see."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def read_wfdb(path: Path | str, *, lead: str = "MLII", annotations: bool = True) -> Recording:
    """One lead (by name; the first when the record has no ``lead``) in mV, and the ``atr`` beat annotations."""
    with _quiet():
        import wfdb

    path = Path(path)
    hea = path.with_suffix(".hea")
    if not hea.is_file():
        raise RecordError(f"{hea}: no such header file")
    try:
        with _quiet():
            header = wfdb.rdheader(str(path))
    except Exception as err:  # wfdb raises many types for a malformed header
        raise RecordError(f"{hea}: not a readable WFDB header ({type(err).__name__}: {err})") from err
    names = list(header.sig_name or [])
    if not names:
        raise RecordError(f"{hea}: the header lists no signals")
    chosen = lead if lead in names else names[0]
    try:
        fs = check_fs(header.fs, f"{hea}: sampling rate")
    except (TypeError, ValueError) as err:
        raise RecordError(str(err)) from err
    for f in {str(x) for x in header.file_name or []}:
        dat = path.parent / f
        if not dat.is_file():
            raise RecordError(f"{dat}: signal file missing (named by {hea.name})")
    try:
        with _quiet():
            rec = wfdb.rdrecord(str(path), channel_names=[chosen], physical=True)
    except Exception as err:
        raise RecordError(f"{path}: cannot read the signal ({type(err).__name__}: {err})") from err
    sig = rec.p_signal
    if sig is None or sig.shape[0] != header.sig_len:
        got = 0 if sig is None else sig.shape[0]
        raise RecordError(f"{path.with_suffix('.dat')}: truncated: {got} of the {header.sig_len} samples "
                          f"the header promises")
    x = np.asarray(sig[:, 0], dtype=np.float64)
    if not np.isfinite(x).all():  # WFDB marks invalid samples as NaN: hold the last valid value
        bad = ~np.isfinite(x)
        if bad.all():
            raise RecordError(f"{path}: lead {chosen} has no valid samples")
        idx = np.where(~bad, np.arange(len(x)), 0)
        np.maximum.accumulate(idx, out=idx)
        x = x[idx]
        x[: np.flatnonzero(~bad)[0]] = x[np.flatnonzero(~bad)[0]]
    samples, classes, annotated = np.zeros(0, np.int64), np.zeros(0, "<U1"), False
    if annotations and path.with_suffix(".atr").is_file():
        try:
            with _quiet():
                ann = wfdb.rdann(str(path), "atr")
        except Exception as err:
            raise RecordError(f"{path.with_suffix('.atr')}: not a readable annotation file "
                              f"({type(err).__name__}: {err})") from err
        keep = [i for i, s in enumerate(ann.symbol) if s in AAMI]
        samples = np.asarray(ann.sample, dtype=np.int64)[keep]
        classes = np.asarray([AAMI[ann.symbol[i]] for i in keep], dtype="<U1")
        annotated = True
    return Recording(path.name, path, fs, chosen, x.astype(np.float32), samples, classes, annotated)


def read_csv(path: Path | str, *, fs: float) -> Recording:
    """One column of mV, or two (time in seconds, mV); an optional header row; ``fs`` in Hz."""
    path = Path(path)
    try:
        fs = check_fs(fs, f"{path}: sampling rate")
    except ValueError as err:
        raise RecordError(str(err)) from err
    values: list[float] = []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.reader(f), start=1):
                if not row or all(not c.strip() for c in row):
                    continue
                cell = row[-1].strip()
                try:
                    v = float(cell)
                except ValueError:
                    if n == 1 and not values:
                        continue  # a header row
                    raise RecordError(f"{path}:{n}: {cell!r} is not a number (mV)") from None
                if not math.isfinite(v):
                    raise RecordError(f"{path}:{n}: {cell!r} is not a finite number")
                values.append(v)
    except OSError as err:
        raise RecordError(f"{path}: cannot read ({err.strerror})") from err
    except UnicodeDecodeError as err:
        raise RecordError(f"{path}: not a text CSV file ({err.reason})") from err
    if len(values) < 2 * fs:
        raise RecordError(f"{path}: {len(values)} samples is less than 2 s at {fs:g} Hz")
    return Recording(path.stem, path, fs, "csv", np.asarray(values, dtype=np.float32))


@dataclass(frozen=True, slots=True)
class CutBeats:
    """Beats cut from a recording by the live segmenter: ``x`` (N, 140) float32 as the monitor scores them,
    their fiducial indices, RR intervals (s), and the AAMI class of the reference beat each matches
    ("" when none within the tolerance)."""

    record: str
    x: np.ndarray
    index: np.ndarray
    rr_s: np.ndarray
    label: np.ndarray


def cut_beats(rec: Recording, *, chunk_s: float = 0.25, tolerance_s: float = MATCH_WINDOW_S,
              rep: Representation | None = None) -> CutBeats:
    """The beats the monitor would score on ``rec`` (played from its first sample in ``chunk_s`` chunks,
    as ``--source record`` plays it) in representation ``rep`` (ECG5000's by default), each labelled by
    the reference annotation it matches."""
    rep = rep or Representation()
    seg = Segmenter(rec.name, rec.fs, rep=rep)
    size = chunk_size(chunk_s, rec.fs)
    beats = [b for a in range(0, len(rec.signal), size) for b in seg.push(rec.signal[a:a + size])]
    shape = (0, 140) if rep.channels == 1 else (0, rep.channels, 140)
    x = np.stack([b.samples for b in beats]) if beats else np.zeros(shape, np.float32)
    index = np.asarray([b.index for b in beats], dtype=np.int64)
    label = np.full(len(beats), "", dtype="<U1")
    m = match(rec.ann_samples, index, tolerance_s * rec.fs)
    hit = m >= 0
    label[m[hit]] = rec.ann_classes[hit]
    return CutBeats(rec.name, x, index, np.asarray([b.rr_s for b in beats]), label)

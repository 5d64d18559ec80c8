"""Recorded ECG: finding records, reading them by kind, and cutting their beats as the monitor does.

Readers by kind, each with its own contract (module docstrings): WFDB records
(:mod:`ecgmon.models.wfdb_io`, through the ``wfdb`` package), EDF/EDF+ files
(:mod:`ecgmon.models.edf_io`, through ``edfio``) and CSV/text exports (:mod:`ecgmon.models.csv_io`,
a documented dialect detection).  :func:`read` dispatches by extension; :func:`read_all` reads many
and leaves out (and reports) the ones that cannot be played, so one bad record never stops the others.
What they return, :class:`Recording`, and the shared checks (lead names, units, amplitudes) are in
:mod:`ecgmon.models.recording`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ecgmon.core.limits import MATCH_WINDOW_S, chunk_size
from ecgmon.core.matching import match
from ecgmon.models.csv_io import read_csv
from ecgmon.models.edf_io import edf_second_lead_of, read_edf
from ecgmon.models.recording import (
    AAMI,
    AAMI_CLASSES,
    RecordError,
    Recording,
    choose_lead,
    decimated,
    finite_runs,
    lead_key,
)
from ecgmon.models.wfdb_io import header_lines, read_wfdb, second_lead_of
from ecgmon.segmentation.beats import Segmenter
from ecgmon.segmentation.represent import Representation

__all__ = ["AAMI", "AAMI_CLASSES", "PACED", "CutBeats", "ReadReport", "RecordError", "Recording", "choose_lead",
           "cut_beats", "find_records", "lead_key", "match", "read", "read_all", "read_csv", "read_edf", "read_wfdb"]

PACED = frozenset({"102", "104", "107", "217"})  # MIT-BIH records with paced beats, excluded by EC57
TEXT_SUFFIXES = frozenset({".csv", ".txt", ".tsv"})
EDF_SUFFIXES = frozenset({".edf"})
# recording formats of ECG devices and tools that no reader here takes: named, never passed over in silence
UNREAD_SUFFIXES = {".bdf": "BDF (24-bit BioSemi)", ".xls": "Excel", ".xlsx": "Excel", ".mat": "MATLAB",
                   ".scp": "SCP-ECG", ".dcm": "DICOM", ".xml": "XML (HL7 aECG, vendor)", ".gdf": "GDF"}
# ... and those refused when named, but not listed from a folder (where a JSON file is as often a sidecar of metadata):
# a wearable's JSON export (Movesense) named on the command line was taken for a WFDB record's name, "no such header
# file" (a newcomer, session 48)
NAMED_UNREAD_SUFFIXES = {".json": "JSON (a wearable's or an app's export)"}


def _segments(hea: Path) -> list[str]:
    """The segment names a multi-segment WFDB header lists (its record line is ``name/segments ...``), else []
    (also for a header that cannot be read: reading the record says why)."""
    try:
        lines = header_lines(hea)
    except RecordError:
        return []
    if not lines or "/" not in lines[0][1][0]:
        return []
    return [fields[0] for _, fields in lines[1:] if fields[0] != "~"]


def find_records(paths: list[Path] | list[str]) -> list[Path]:
    """Record paths (without extension) from records, folders (their RECORDS list, else every .hea but the
    segments of a multi-segment record, and every .edf, .csv, .tsv and .txt file), and RECORDS files; EDF and
    CSV files are kept as they are.  A folder's files of a recording format no reader takes (BDF, Excel, ...) are
    listed too, so that reading them names them (:func:`read`)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            listing = p / "RECORDS"
            if listing.is_file():
                out += [p / n for n in listing.read_text().split()]
                continue
            heads = sorted(p.glob("*.hea"))
            segs = {s for h in heads for s in _segments(h)}  # a multi-segment record's parts are not records
            found = sorted([*(h.with_suffix("") for h in heads if h.stem not in segs),
                            *(f for f in p.iterdir()
                              if f.suffix.lower() in EDF_SUFFIXES | TEXT_SUFFIXES | UNREAD_SUFFIXES.keys())])
            if not found:
                raise RecordError(f"{p}: no RECORDS list and no .hea, .edf or .csv files: not a record folder")
            out += found
        elif p.name == "RECORDS" and p.is_file():
            out += [p.parent / n for n in p.read_text().split()]
        elif p.suffix.lower() in TEXT_SUFFIXES | EDF_SUFFIXES | UNREAD_SUFFIXES.keys():
            out.append(p)
        else:
            out.append(p.with_suffix("") if p.suffix in (".hea", ".dat", ".atr") else p)
    return out


def read(path: Path | str, *, lead: str | None = None, fs: float | None = None, units: str | None = None,
         annotations: bool = True) -> Recording:
    """A WFDB record (``path`` without extension, or one of its ``.hea``, ``.dat``, ``.atr`` files, as
    :func:`find_records` takes them), an EDF file (``.edf``) or a CSV/text file (``.csv``, ``.txt``, ``.tsv``).
    ``lead``, ``fs`` and ``units`` as for each reader: where the file states them, what is given must agree.  A
    record sampled above 1,000 Hz (up to :data:`~ecgmon.core.limits.RECORD_FS_MAX`) is decimated into the monitor's
    rates (:func:`~ecgmon.models.recording.decimated`)."""
    path = Path(path)
    if path.suffix in (".hea", ".dat", ".atr"):
        path = path.with_suffix("")
    suffix = path.suffix.lower()
    if (kind := (UNREAD_SUFFIXES | NAMED_UNREAD_SUFFIXES).get(suffix)) is not None:
        raise RecordError(f"{path}: {kind} files are not read here; export the ECG as EDF/EDF+, WFDB or CSV")
    if suffix in TEXT_SUFFIXES:
        return decimated(read_csv(path, lead=lead, fs=fs, units=units))
    if suffix in EDF_SUFFIXES:
        return decimated(read_edf(path, lead=lead, fs=fs, units=units, annotations=annotations))
    return decimated(read_wfdb(path, lead=lead, fs=fs, units=units, annotations=annotations))


@dataclass(frozen=True, slots=True)
class ReadReport:
    """The recordings read, and one line per record left out (its path and why)."""

    recordings: list[Recording]
    left_out: list[str]

    @property
    def notes(self) -> list[str]:
        return [n for r in self.recordings for n in r.notes]


def read_all(paths: list[Path] | list[str], *, lead: str | None = None, fs: float | None = None,
             units: str | None = None, annotations: bool = True, second_lead: bool | None = False) -> ReadReport:
    """Every record under ``paths`` (see :func:`find_records`); one that cannot be read, or whose lead
    has no valid sample, is left out and reported, never stopping the others.  A path that names no
    record at all (a folder without records) is reported the same way.  ``second_lead``: a WFDB record's or an EDF
    file's second ECG lead (:func:`~ecgmon.models.recording.second_lead`) is read too, as the recording's
    ``second`` (played beside the first; a second lead that cannot be read is left out with a note, the record plays
    one lead).
    ``None``: the same where the record has one, without a note where it has none (or is CSV), as the
    monitor reads records by default."""
    recs: list[Recording] = []
    left: list[str] = []
    for p in map(Path, paths):
        try:
            found = find_records([p])
        except RecordError as err:
            left.append(str(err))
            continue
        for f in found:
            try:
                r = read(f, lead=lead, fs=fs, units=units, annotations=annotations)
            except RecordError as err:
                left.append(str(err))
                continue
            if second_lead is not False and f.suffix.lower() not in TEXT_SUFFIXES:
                r = _with_second(f, r, quiet=second_lead is None, units=units)
            elif second_lead:
                r = replace(r, notes=(*r.notes, f"{f}: --second-lead reads a WFDB record's or an EDF file's second "
                                                "ECG lead; a CSV file plays one lead"))
            recs.append(r)
    names = [r.name for r in recs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:  # beds are known by name: two records of one name would play as one bed
        raise RecordError(f"records named alike in different places: {', '.join(sorted(dup))}; "
                          "play them in separate runs or rename one")
    return ReadReport(recs, left)


def _with_second(path: Path, r: Recording, *, quiet: bool = False, units: str | None = None) -> Recording:
    """``r`` with its record's second ECG lead (WFDB, EDF), or with a note saying why it has none (``quiet``: no note
    when the record has no second ECG lead); ``units`` as given for the first (``--units``)."""
    edf = path.suffix.lower() in EDF_SUFFIXES
    try:
        k = edf_second_lead_of(path, r) if edf else second_lead_of(path, r)
        if k is None:
            return r if quiet else replace(r, notes=(*r.notes, f"{path}: no second ECG lead; one lead played"))
        r2 = decimated(read_edf(path, lead=k, units=units, annotations=False) if edf
                       else read_wfdb(path, lead=k, units=units, annotations=False))
    except RecordError as err:
        return replace(r, notes=(*r.notes, f"second lead left out: {err}"))
    if r2.fs != r.fs or len(r2.signal) != len(r.signal):
        return replace(r, notes=(*r.notes, f"{path}: second lead {r2.lead!r} is sampled otherwise; "
                                                       "one lead played"))
    # the second lead's notes that are not the first's (the same file's header read twice says the same twice)
    return replace(r, second=r2, notes=(*r.notes, *(n for n in r2.notes if n not in r.notes)))


@dataclass(frozen=True, slots=True)
class CutBeats:
    """Beats cut from a recording by the live segmenter: ``x`` (N, 140) float32 as the monitor scores them,
    their fiducial indices, RR intervals (s), and the AAMI class of the reference beat each matches
    ("" when none within the tolerance)."""

    record: str
    x: np.ndarray
    index: np.ndarray
    rr_prev_s: np.ndarray  # the RR interval before each beat (s; 0: none)
    label: np.ndarray


def cut_beats(rec: Recording, *, chunk_s: float = 0.25, tolerance_s: float = MATCH_WINDOW_S,
              rep: Representation | None = None) -> CutBeats:
    """The beats the monitor would score on ``rec`` (played from its first sample in ``chunk_s`` chunks,
    as ``--source record`` plays it) in representation ``rep`` (ECG5000's by default), each labelled by
    the reference annotation it matches."""
    rep = rep or Representation()
    size = chunk_size(chunk_s, rec.fs)  # as the record source chunks it
    beats = []
    for a0, b0 in finite_runs(rec.signal):  # a NaN run is signal loss: the segmenter starts again after it
        seg = Segmenter(rec.name, rec.fs, rep=rep)
        for a in range(a0 - a0 % size, b0, size):  # the record source's chunk boundaries
            part = rec.signal[max(a, a0):min(a + size, b0)]
            beats += [replace(b, index=b.index + a0) for b in seg.push(part)]
    shape = (0, 140) if rep.channels == 1 else (0, rep.channels, 140)
    x = np.stack([b.samples for b in beats]) if beats else np.zeros(shape, np.float32)
    index = np.asarray([b.index for b in beats], dtype=np.int64)
    label = np.full(len(beats), "", dtype="<U1")
    m = match(rec.ann_samples, index, tolerance_s * rec.fs)
    hit = m >= 0
    label[m[hit]] = rec.ann_classes[hit]
    return CutBeats(rec.name, x, index, np.asarray([b.rr_prev_s for b in beats]), label)

"""EDF and EDF+ (continuous) files, read with ``edfio``.

Why edfio: pure Python on NumPy alone (no compiled extension to build for each Python), typed
(``py.typed``, checked with mypy), Apache-2.0, maintained (0.4.18, 2026) and used by MNE-Python for EDF
export; it reads EDF, EDF+C and their annotations and writes them (the tests make their EDF copies with
it).  pyedflib (a C extension around EDFlib) would do as well but builds native code; MNE is a whole
neurophysiology suite for one reader.

Contract: one signal (by label, :func:`~ecgmon.models.recording.choose_lead`; the ``EDF Annotations``
signal is never a lead) at its own sampling rate, in mV from its physical dimension (uV, mV, V; an empty
dimension is allowed only with plausible mV amplitudes, with a warning, or with ``--units``).  EDF+
annotations whose text is a beat symbol (N, V, A, ...: MIT-BIH codes) are the reference beats.
EDF+D (discontinuous) files: each data record is placed at its own onset (the first time-keeping TAL of the
``EDF Annotations`` signal in it) and the gaps between records are NaN (signal loss), with a warning; records
that overlap or run backwards are refused.  An EDF+C file's onsets are read too where it has them: one whose onsets
show a gap breaks its own label and is played as EDF+D, with a warning.  Annotation onsets (as edfio gives them)
count from the first data record's onset, where the signal starts.  Reference: Kemp B, Olivan J. European data
format 'plus' (EDF+). Clin Neurophysiol 114:1755-1761 (2003); https://www.edfplus.info/specs/.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import edfio
import numpy as np

from ecgmon.core.limits import check_record_fs
from ecgmon.models.recording import (
    RecordError,
    Recording,
    beats_from_symbols,
    check_amplitude,
    check_units,
    choose_lead,
    second_lead_ref,
    unit_factor,
)

ANNOTATIONS_LABEL = "EDF Annotations"
_NAMES = {"latin-1": "Latin-1", "utf-8": "UTF-8"}  # the micro sign's encodings, as a warning names them


def read_edf(path: Path | str, *, lead: str | None = None, fs: float | None = None, units: str | None = None,
             annotations: bool = True) -> Recording:
    """One signal of an EDF/EDF+C file in mV, and its beat annotations (EDF+).

    ``fs`` (Hz) and ``units``, when given, must agree with the file.  Raises :class:`RecordError`
    naming the file and the header field.
    """
    path = Path(path)
    try:
        return _read_edf(path, lead=lead, fs=fs, units=units, annotations=annotations)
    except RecordError:
        raise
    except Exception as err:  # edfio parses header fields when they are first used: a damaged one raises here
        raise RecordError(f"{path}: not a readable EDF file ({type(err).__name__}: {err})") from err


def edf_second_lead_of(path: Path | str, rec: Recording) -> str | None:
    """``#k`` (1-based, among the file's signals other than ``EDF Annotations``) of the file's second ECG lead beside
    ``rec``'s (:func:`~ecgmon.models.recording.second_lead`: the first other signal named as an ECG lead, in a
    voltage), or None.  Raises :class:`RecordError` when the header cannot be read."""
    path = Path(path)
    try:
        head, ns = _head(path)
        encoding = _micro_sign_encoding(head, ns) or "ascii"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signals = [s for s in edfio.read_edf(path, lazy_load_data=True, header_encoding=encoding).signals
                       if s.label.strip() != ANNOTATIONS_LABEL]
    except Exception as err:
        raise RecordError(f"{path}: not a readable EDF file ({type(err).__name__}: {err})") from err
    dims = [s.physical_dimension.strip() for s in signals]
    return second_lead_ref([s.label.strip() for s in signals], rec.lead,
                           [not d or unit_factor(d) is not None for d in dims])


def _head(path: Path) -> tuple[bytes, int]:
    """The file's header (the fixed 256 bytes and 256 per signal, at most 4,096 signals) and its number of signals
    (0 where the field cannot be read).  Raises OSError where the file cannot be read."""
    with path.open("rb") as f:
        head = f.read(256)
        try:
            ns = int(head[252:256].decode("ascii", "replace").strip() or 0) if len(head) == 256 else 0
        except ValueError:
            ns = 0
        return head + f.read(256 * max(0, min(ns, 4096))), ns


def _dims_at(ns: int) -> int:
    """Where the signals' physical dimension fields (8 bytes each) start in the header: after the fixed 256 bytes,
    the labels (16 each) and transducer types (80 each)."""
    return 256 + ns * (16 + 80)


def _micro_sign_encoding(head: bytes, ns: int) -> str | None:
    """The encoding a header whose only bytes outside printable ASCII are a micro sign at the start of a signal's
    physical dimension field (``µV``) is written in: "latin-1" (0xB5) or "utf-8" (0xC2 0xB5), the one departure from
    the ASCII header that devices commonly make; None for any other header."""
    if not 0 < ns <= 4096 or len(head) < 256 * (ns + 1):
        return None
    dims = _dims_at(ns)

    def field_start(i: int) -> bool:
        return dims <= i < dims + 8 * ns and (i - dims) % 8 == 0

    odd = [i for i, c in enumerate(head) if not 32 <= c <= 126]
    if all(head[i] == 0xB5 and field_start(i) and 32 <= head[i + 1] <= 126 for i in odd):
        return "latin-1"
    firsts = odd[::2]
    if (len(odd) % 2 == 0 and all(head[i] == 0xC2 and head[i + 1] == 0xB5 and field_start(i) for i in firsts)
            and odd[1::2] == [i + 1 for i in firsts]):
        return "utf-8"
    return None


def _micro_fields(head: bytes, ns: int, encoding: str) -> str:
    """The signals whose physical dimension holds the micro sign, as a warning names them: ``'ECG II' ('µV')``."""
    dims = _dims_at(ns)
    out = []
    for i in range(ns):
        dim = head[dims + 8 * i:dims + 8 * i + 8]
        if any(c > 126 for c in dim):
            label = head[256 + 16 * i:256 + 16 * i + 16].decode("ascii", "replace").strip()
            out.append(f"{label!r} ({dim.decode(encoding, 'replace').strip()!r})")
    return ", ".join(out)


def _size_check(path: Path, head: bytes, ns: int) -> str | None:
    """A file's size against its header: the header's number of data records times a record's bytes (2 per sample,
    the samples per record of every signal) after the 256 x (signals + 1) header bytes.  Shorter is a truncated copy,
    refused (:class:`RecordError`; edfio would read the whole records there are and drop the rest without a word);
    longer by whole records is a warning returned (edfio reads them all: a header not updated when recording went
    on); a data-record count of -1 (a recording not closed) is not checked."""
    try:
        nrec = int(head[236:244].decode("ascii").strip())
        off = 256 + ns * 216
        spr = [int(head[off + 8 * i:off + 8 * i + 8].decode("ascii").strip()) for i in range(ns)]
        per_rec = sum(spr)
        size = path.stat().st_size
    except (ValueError, OSError):
        return None  # a damaged field: edfio names it
    if bad := [i for i, k in enumerate(spr) if k <= 0]:
        i = bad[0]
        label = head[256 + 16 * i:256 + 16 * i + 16].decode("ascii", "replace").strip()
        raise RecordError(f"{path}: signal {i + 1} ({label!r}) has {spr[i]} samples per data record in the header: a "
                          "damaged header (edfio raised ZeroDivisionError on it)")
    if nrec < 0 or per_rec <= 0:
        return None
    need = 256 * (ns + 1) + nrec * per_rec * 2
    have = max(0, size - 256 * (ns + 1)) // (per_rec * 2)
    if size < need:
        raise RecordError(f"{path}: truncated: {size:,} bytes, {have:,} whole of the {nrec:,} data records its header "
                          f"announces ({need:,} bytes)")
    if have > nrec:
        return (f"{path}: holds {have:,} data records, its header announces {nrec:,}: all {have:,} played (a header "
                "not updated as the recording went on?)")
    return None


TAL_ONSET = re.compile(rb"^([+-]\d+(?:\.\d*)?)\x14")  # a data record's time-keeping TAL: its onset (s)


def _record_onsets(path: Path, head: bytes, ns: int) -> np.ndarray:
    """The onset (s from the file's start) of every data record of an EDF+ file: the first TAL of the ``EDF
    Annotations`` signal in each record (EDF+ section 2.2.4).  Raises :class:`RecordError` when there is none."""
    off = 256 + ns * 216
    labels = [head[256 + 16 * i:256 + 16 * i + 16].decode("ascii").strip() for i in range(ns)]
    spr = [int(head[off + 8 * i:off + 8 * i + 8].decode("ascii").strip()) for i in range(ns)]
    if ANNOTATIONS_LABEL not in labels:
        raise RecordError(f"{path}: EDF+D without an '{ANNOTATIONS_LABEL}' signal: its data records have no onsets")
    a = labels.index(ANNOTATIONS_LABEL)
    rec_bytes, start, length = 2 * sum(spr), 2 * sum(spr[:a]), 2 * spr[a]
    # each record's annotation bytes through a memory map: the file is not copied (EDF+C files are checked too)
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=256 * (ns + 1))
    onsets = []
    for k in range(len(data) // rec_bytes):
        tal = data[k * rec_bytes + start:k * rec_bytes + start + length].tobytes()
        m = TAL_ONSET.match(tal)
        if m is None:
            raise RecordError(f"{path}: EDF+D data record {k + 1} has no time-keeping annotation (its onset)")
        onsets.append(float(m.group(1)))
    return np.asarray(onsets)


def _discontinuous(path: Path, x: np.ndarray, rate: float, duration: float, onsets: np.ndarray, *,
                   kind: str = "EDF+D") -> tuple[np.ndarray, str | None]:
    """``x`` (the data records' samples back to back) laid out at the records' ``onsets``, the gaps NaN, and a
    note saying how much was missing (None: no gap).  ``kind`` names the file's kind in the messages."""
    spr = round(duration * rate)
    if len(onsets) * spr != len(x):
        raise RecordError(f"{path}: {kind}: {len(onsets)} data records of {spr} samples, {len(x)} samples read")
    step = np.diff(onsets)
    if len(step) and float(step.min()) < duration - 0.5 / rate:
        k = int(np.argmin(step)) + 1
        raise RecordError(f"{path}: {kind} data record {k + 1} starts at {onsets[k]:g} s, before the one before it "
                          f"ends ({onsets[k - 1] + duration:g} s): overlapping or out-of-order records")
    at = np.round((onsets - onsets[0]) * rate).astype(np.int64)
    y = np.full(int(at[-1]) + spr, np.nan)
    for k, i in enumerate(at.tolist()):
        y[i:i + spr] = x[k * spr:(k + 1) * spr]
    gaps = np.flatnonzero(step > duration + 0.5 / rate)
    if not len(gaps):
        return y, None
    lost = float(np.sum(step[gaps] - duration))
    return y, (f"{path}: {kind}: {len(gaps)} gap(s) between data records ({lost:g} s in all, the first at "
               f"{onsets[gaps[0]] + duration:g} s) played as missing samples (signal loss past --bridge-s)")


def _read_edf(path: Path, *, lead: str | None, fs: float | None, units: str | None,
              annotations: bool) -> Recording:
    try:
        head, ns = _head(path)
    except (OSError, ValueError) as err:
        raise RecordError(f"{path}: not a readable EDF file ({err})") from err
    encoding, notes = "ascii", []
    bad = next((i for i, c in enumerate(head) if not 32 <= c <= 126), None)
    if bad is not None and (micro := _micro_sign_encoding(head, ns)) is not None:
        # a micro sign ('µV') in the physical dimensions alone, as many devices write it: unambiguous
        encoding, bad = micro, None
        notes.append(f"{path}: the physical dimension of {_micro_fields(head, ns, micro)} is written with the "
                     f"{_NAMES[micro]} micro sign (EDF headers are ASCII): read as 'u' ('µV': microvolts, 'uV')")
    if bad is not None:  # EDF header fields are printable ASCII: anything else is a damaged header
        hint = " ('µ' in Latin-1? EDF headers are ASCII: write uV)" if head[bad] == 0xB5 else ""
        raise RecordError(f"{path}: header byte {bad} is {head[bad]:#04x}, not printable ASCII: a damaged EDF header"
                          f"{hint}")
    size_note = _size_check(path, head, ns)
    try:
        duration = float(head[244:252].decode("ascii").strip())
    except ValueError:
        duration = math.nan
    if not duration > 0 and ns and head[256:256 + 16].decode("ascii").strip() != ANNOTATIONS_LABEL:
        raise RecordError(f"{path}: header field 'duration of a data record' is {head[244:252].decode().strip()!r}: "
                          "no sampling rate follows from it (a damaged header)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            edf = edfio.read_edf(path, lazy_load_data=False, header_encoding=encoding)
            reserved = edf.reserved
            signals = list(edf.signals)
    except FileNotFoundError as err:
        raise RecordError(f"{path}: no such file") from err
    except Exception as err:  # edfio raises ValueError and others for a malformed header or data
        raise RecordError(f"{path}: not a readable EDF file ({type(err).__name__}: {err})") from err
    onsets, kind = None, "EDF+D"
    if reserved.startswith("EDF+D"):
        onsets = _record_onsets(path, head, ns)
    elif reserved.startswith("EDF+C"):
        # continuous, the header says: its time-keeping onsets are checked all the same (EDF+ 2.2.4), and a gap in
        # them is played as EDF+D would be, with a warning (a file whose records 20-24 s were missing was played back
        # to back, every sample after 20 s 5 s early: a newcomer, session 27); none to check: as the header says
        try:
            onsets = _record_onsets(path, head, ns)
        except (RecordError, ValueError):
            onsets = None
        kind = "EDF+C, but its data records' onsets have gaps (played as EDF+D)"
    signals = [s for s in signals if s.label.strip() != ANNOTATIONS_LABEL]
    names = [s.label.strip() for s in signals]
    dims = [s.physical_dimension.strip() for s in signals]
    volt = [not d or unit_factor(d) is not None for d in dims]
    if size_note:
        notes.insert(0, size_note)
    ch, note = choose_lead(names, lead, where=str(path), usable=volt)
    if note:
        notes.append(note)
    sig = signals[ch]
    where = f"{path}: signal {names[ch]!r}"
    try:
        rate = check_record_fs(sig.sampling_frequency, f"{where}: sampling rate")
    except (TypeError, ValueError, ZeroDivisionError) as err:
        raise RecordError(f"{where}: sampling rate not usable ({err})") from err
    if fs is not None and abs(float(fs) - rate) > 1e-6 * rate:
        raise RecordError(f"{where}: the header says {rate:g} Hz, --fs says {float(fs):g} Hz; "
                          "drop --fs or fix the file")
    factor, unit = check_units(dims[ch] or None, units, where=f"{where}: physical dimension")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = np.asarray(sig.data, dtype=np.float64) * factor
    except Exception as err:
        raise RecordError(f"{where}: cannot read the samples ({type(err).__name__}: {err})") from err
    if onsets is not None:  # EDF+D: each record at its onset, the gaps signal loss
        x, gap_note = _discontinuous(path, x, rate, duration, onsets, kind=kind)
        if gap_note:
            notes.append(gap_note)
    lo, hi = sorted((sig.physical_min, sig.physical_max))
    step = (hi - lo) / max(1, abs(sig.digital_max - sig.digital_min))
    fin = x[np.isfinite(x)] / factor
    if len(fin) and (fin.min() < lo - step or fin.max() > hi + step):
        raise RecordError(f"{where}: samples outside the header's physical/digital range ({lo:g} to {hi:g} "
                          f"{dims[ch]}): a damaged header or data")
    if len(x) < 2 * rate:
        raise RecordError(f"{where}: {len(x)} samples is less than 2 s at {rate:g} Hz")
    if note := check_amplitude(x, where=where, unit_known=unit is not None):
        notes.append(note)
    samples, classes, annotated = np.zeros(0, np.int64), np.zeros(0, "<U1"), False
    if annotations and reserved.startswith("EDF+"):
        try:
            anns = list(edf.annotations)
        except Exception as err:
            raise RecordError(f"{path}: EDF+ annotations not readable ({type(err).__name__}: {err})") from err
        texts = [a.text.strip() for a in anns]
        # edfio gives each onset from the first data record's (its time-keeping TAL), where the signal starts, EDF+C
        # or EDF+D alike (moved back by that onset once more, an EDF+D file whose first record starts 2 s into it had
        # every reference beat 2 s early: a newcomer, session 27)
        samples, classes = beats_from_symbols([round(a.onset * rate) for a in anns], texts)
        annotated = len(samples) > 0
    # a label that several signals share is told apart by its position (as WFDB's are): "ECG (#2)"
    name = names[ch] if names.count(names[ch]) == 1 else f"{names[ch]} (#{ch + 1})"
    return Recording(path.stem, path, rate, name, x.astype(np.float32), samples, classes, annotated,
                     tuple(notes))

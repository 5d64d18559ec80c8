"""WFDB records, read with the ``wfdb`` package (PhysioNet's reference Python implementation).

Every form ``wfdb`` reads is played: headers without a sample count (the length follows from the
signal file's size), multi-segment records with a fixed or variable layout (a lead missing from a
segment is NaN there: signal loss), every signal format it decodes (8, 16, 24, 32, 61, 80, 160, 212,
310, 311, FLAC 5xx), multi-frequency records (the lead at its own rate; annotation times in frames, or in the
annotation file's own stated resolution: a high-resolution file, annot(5)), lower-case or unusual lead
names (:func:`~ecgmon.models.recording.choose_lead`), records without annotations.  Samples the format
marks invalid are NaN (signal loss).  ``wfdb`` decides what is valid WFDB; this module adds only what
the monitor needs: a sampling rate of 100-10,000 Hz (one above 1,000 Hz is decimated into the monitor's rates by
:func:`ecgmon.models.records.read`), a voltage unit, plausible amplitudes, the samples the header promises.

Reference: WFDB header and signal formats, https://physionet.org/physiotools/wag/header-5.htm and
signal-5.htm (Moody GB, PhysioToolkit).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ecgmon.core.limits import check_record_fs
from ecgmon.models.recording import (
    RecordError,
    Recording,
    beats_from_symbols,
    check_amplitude,
    check_units,
    choose_lead,
    second_lead,
    second_lead_ref,
    unit_factor,
)

with warnings.catch_warnings():  # wfdb's own use of deprecated pandas and numpy calls
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    import wfdb


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """wfdb's own warnings (deprecated pandas and numpy calls, numeric noise): not the user's to see;
    what wfdb finds wrong with a record it raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _layout(path: Path, header: Any) -> tuple[list[str], list[str], list[int]]:
    """Signal names, units and samples per frame; for a multi-segment record, from its layout segment
    (variable layout) or its first segment (fixed layout)."""
    if isinstance(header, wfdb.MultiRecord):
        seg = next((n for n in header.seg_name or [] if n != "~"), None)
        if seg is None:
            raise RecordError(f"{path.with_suffix('.hea')}: a multi-segment record without segments")
        with _quiet():
            header = wfdb.rdheader(str(path.parent / seg))
    # the record line's signal count and the signal lines must agree (WFDB header(5)); wfdb reads the lines there
    # are and fails later, on the signal, with an IndexError (a newcomer, session 57)
    lines = len(header.sig_name or [])
    if header.n_sig is not None and int(header.n_sig) != lines:
        raise RecordError(f"{path.with_suffix('.hea')}: the record line says {int(header.n_sig)} signal(s) but "
                          f"{lines} signal line(s) follow (WFDB header(5)): fix the count or the lines")
    # a header line may end without a description: wfdb names that signal None; call it by its position
    names = [f"signal {i + 1}" if n in (None, "") else str(n) for i, n in enumerate(header.sig_name or [])]
    units = [str(u) if u else "" for u in (header.units or [""] * len(names))]
    spf = [int(s or 1) for s in (header.samps_per_frame or [1] * len(names))]
    return names, units, spf


def header_lines(hea: Path) -> list[tuple[int, list[str]]]:
    """A WFDB header's lines as ``wfdb`` does not give them: (line number, fields) of each line but blank and
    comment ones, from its bytes (UTF-8, else Latin-1: a unit ``µV`` written either way).  The first is the record
    line (``name[/segments] signals [fs[/counter frequency[(base counter)]] [samples ...]]``, WFDB's
    ``header(5)``), then one per signal, or per segment of a multi-segment record.  Raises :class:`RecordError`
    when the file cannot be read."""
    try:
        raw = hea.read_bytes()
    except OSError as err:
        raise RecordError(f"{hea}: cannot read ({err.strerror})") from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return [(n, ln.split()) for n, ln in enumerate(text.splitlines(), start=1)
            if ln.strip() and not ln.lstrip().startswith("#")]


def _record_fs(hea: Path, lines: list[tuple[int, list[str]]], header: Any, notes: list[str]) -> None:
    """Check the header's sampling-rate field (``lines``: :func:`header_lines`) against what ``wfdb`` parsed from
    it: a rate that is absent means 250 Hz by the format (a warning says so); one that is not a positive number is
    refused (``wfdb`` reads ``-360`` or ``abc`` as absent, and a record would play at 250 Hz without a word)."""
    n, fields = lines[0] if lines else (0, [])
    line = " ".join(fields)
    if len(fields) < 3:
        notes.append(f"{hea}:{n}: the record line gives no sampling rate: the WFDB format's default, 250 Hz, is "
                     "played (give the rate in the header if it is not 250 Hz)")
        return
    m = re.match(r"\d+(?:\.\d*)?|\.\d+", fields[2])  # the number wfdb reads ("360Hz": 360, as wfdb reads it)
    value = float(m.group()) if m else math.nan
    if not value > 0 or abs(value - float(header.fs)) > 1e-9 * value:
        raise RecordError(f"{hea}:{n}: sampling rate field {fields[2]!r} is not a positive number of Hz (record line "
                          f"{line.strip()[:60]!r}); fix the header")


def _raw_unit(lines: list[tuple[int, list[str]]], ch: int) -> str | None:
    """The unit of signal ``ch`` as the header's bytes write it (``gain(baseline)/unit``; ``lines``:
    :func:`header_lines`), for what ``wfdb``'s ASCII reading loses; None where it cannot be told (a multi-segment
    record, no unit)."""
    if len(lines) <= ch + 1 or "/" in lines[0][1][0]:
        return None
    fields = lines[ch + 1][1]
    return fields[2].split("/", 1)[1] if len(fields) >= 3 and "/" in fields[2] else None


def _uncalibrated(lines: list[tuple[int, list[str]]], ch: int) -> bool:
    """Whether the header's line for signal ``ch`` (``lines``: :func:`header_lines`) gives no ADC gain, or 0: an
    uncalibrated signal (WFDB header(5)), which ``wfdb`` reads at the default 200 adu per physical unit without a
    word.  False where it cannot be told (a multi-segment record: its segments' headers)."""
    if len(lines) <= ch + 1 or "/" in lines[0][1][0]:
        return False
    fields = lines[ch + 1][1]
    if len(fields) < 3:
        return True
    m = re.match(r"^([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)", fields[2])
    return m is not None and float(m.group(1)) == 0.0


def _fixed_with_gaps(path: Path, header: Any, ch: int) -> Any:
    """A fixed-layout multi-segment record with gap segments (``~``: no signal for that many samples), which
    ``wfdb`` cannot read as one (it reads a variable layout's gaps, not a fixed one's): its segments read one by one,
    the gaps as NaN (signal loss).  None where ``header`` is not such a record."""
    if not isinstance(header, wfdb.MultiRecord) or "~" not in (header.seg_name or []):
        return None
    parts, units = [], None
    with _quiet():
        for name, n in zip(header.seg_name, header.seg_len, strict=True):
            if name == "~":
                parts.append(np.full(int(n), np.nan))
                continue
            seg = wfdb.rdrecord(str(path.parent / name), channels=[ch], physical=True)
            parts.append(np.asarray(seg.p_signal[:, 0], np.float64))
            units = units or seg.units
    return SimpleNamespace(p_signal=np.concatenate(parts)[:, None], units=units)


def annotation_rate(ann: Any, header: Any) -> float:
    """Annotation times per second of a record's annotation file ``ann`` (``wfdb.rdann``): the file's own resolution
    where it states one (a high-resolution file, WFDB annot(5): a multi-frequency record's beats at the lead's own rate
    were taken for frames and doubled, half of them past the record's end: a newcomer, session 27), else the frame rate
    of the record (``header``: ``wfdb.rdheader``).  Sample ``s`` of the annotation file is ``s / annotation_rate``
    seconds into the record, whatever rate the recording is played at (a decimated one included)."""
    return float(ann.fs) if ann.fs else float(header.fs)


def second_lead_of(path: Path | str, rec: Recording) -> str | None:
    """``#k`` (1-based position) of the record's second ECG lead beside ``rec``'s (:func:`second_lead`), or None."""
    path = Path(path)
    with _quiet():
        header = wfdb.rdheader(str(path))
    names, sig_units, _ = _layout(path, header)
    return second_lead_ref(names, rec.lead, [unit_factor(u or "mV") is not None for u in sig_units])


# bytes per sample of the WFDB signal formats (the packed ones on average: 212 holds 2 samples in 3 bytes, 310/311
# 3 samples in 4 bytes)
_BYTES = {"8": 1.0, "16": 2.0, "24": 3.0, "32": 4.0, "61": 2.0, "80": 1.0, "160": 2.0, "212": 1.5, "310": 4 / 3,
          "311": 4 / 3}


# the signal formats the WFDB library decodes (wfdb.io._signal.DAT_FMTS, as of wfdb 4.x), and 0: a null signal (a
# variable-layout record's layout segment)
FORMATS = frozenset({"0", "8", "16", "24", "32", "61", "80", "160", "212", "310", "311", "508", "516", "524"})


def _segments(path: Path, header: object) -> list[tuple[Path, object]]:
    """(the record's path, its header), or for a multi-segment record each readable segment's (gap segments ``~``
    and unreadable headers left out: what cannot be read says so elsewhere)."""
    names = getattr(header, "seg_name", None)
    if not names:
        return [(path, header)]
    out = []
    for name in names:
        if not name or name == "~":
            continue
        try:
            with _quiet():
                out.append((path.parent / name, wfdb.rdheader(str(path.parent / name))))
        except Exception:
            continue
    return out


def _unreadable(path: Path, header: object, spf: list[int]) -> str | None:
    """Why a record's signal could not be read, where the header says so: a signal format the WFDB library does not
    decode (a KeyError of its own before: session 27), or a signal file shorter than its header's length
    (:func:`_truncated`), a multi-segment record's segments each checked; None where it cannot be told."""
    for seg, head in _segments(path, header):
        bad = sorted({str(f) for f in (getattr(head, "fmt", None) or []) if str(f) not in FORMATS})
        if bad:
            return (f"{seg.name}: signal format {', '.join(bad)} is not one the WFDB library decodes "
                    f"({', '.join(sorted(FORMATS, key=int))})")
        short = _truncated(seg, head, spf if seg == path else _layout(seg, head)[2])
        if short:
            return short
    return None


def _truncated(path: Path, header: object, spf: list[int]) -> str | None:
    """Why a record's signal could not be read, where its signal files are shorter than the header's length (a
    truncated copy, an interrupted download): "truncated: ..." naming the file and how much it holds; None where
    that is not it (or cannot be told: a FLAC-compressed format, a header without a length).  ``spf``: samples per
    frame of each signal (:func:`_layout`)."""
    n = getattr(header, "sig_len", None)
    files, fmts = getattr(header, "file_name", None) or [], getattr(header, "fmt", None) or []
    if not n or not files or len(fmts) != len(files):
        return None
    need: dict[str, float] = {}
    for f, fmt, k in zip(files, fmts, spf, strict=False):
        b = _BYTES.get(str(fmt))
        if b is None:
            return None
        need[f] = need.get(f, 0.0) + b * k
    for f, per_frame in need.items():
        dat = path.parent / f
        if not dat.is_file():
            continue
        size = dat.stat().st_size
        if size + 1 < per_frame * n:
            return (f"truncated: {dat.name} holds {size:,} bytes, about {int(size / per_frame):,} of the "
                    f"{int(n):,} samples its header announces")
    return None


def _checksum_note(path: Path, header: Any, ch: int, spf: int, where: str) -> str | None:
    """A warning when the header's checksum of signal ``ch`` (the 16-bit sum of its samples, WFDB's check of the
    data) does not match the samples read: a damaged or hand-edited file, or a header that belongs to another one.
    The samples are played as read; None when they match, or when the header gives no checksum."""
    sums = getattr(header, "checksum", None)
    if spf != 1 or not sums or ch >= len(sums) or sums[ch] is None:
        return None
    try:
        with _quiet():
            got = wfdb.rdrecord(str(path), channels=[ch], physical=False, m2s=True).calc_checksum()[0]
    except Exception:  # the samples were read already: a second read that fails says nothing more
        return None
    if (int(got) - int(sums[ch])) % 65536 == 0:
        return None
    return (f"{where}: the samples' checksum ({int(got)}) is not the header's ({int(sums[ch])}): the signal file may "
            "be damaged or not the one the header was written for; played as read")


def read_wfdb(path: Path | str, *, lead: str | None = None, fs: float | None = None, units: str | None = None,
              annotations: bool = True) -> Recording:
    """One lead of a WFDB record (``path`` without extension) in mV, and its ``atr`` beat annotations.

    ``lead``: see :func:`~ecgmon.models.recording.choose_lead` (None: lead II or an alias, else the
    first voltage signal).  ``fs`` (Hz) and ``units``, when given, must agree with the header.
    Raises :class:`RecordError` naming the file.
    """
    path = Path(path)
    hea = path.with_suffix(".hea")
    if not hea.is_file():
        raise RecordError(f"{hea}: no such header file")
    try:
        with _quiet():
            header = wfdb.rdheader(str(path))
    except Exception as err:  # wfdb raises many types for a malformed header
        raise RecordError(f"{hea}: not a readable WFDB header ({type(err).__name__}: {err})") from err
    names, sig_units, spf = _layout(path, header)
    notes: list[str] = []
    raw_lines = header_lines(hea)
    _record_fs(hea, raw_lines, header, notes)
    volt = [unit_factor(u or "mV") is not None for u in sig_units]
    ch, note = choose_lead(names, lead, where=str(hea), usable=volt)
    if note:
        notes.append(note)
    # the lead as reports name it: its position too when another signal of the file has the same name
    chosen = names[ch] if names.count(names[ch]) == 1 else f"{names[ch]} (#{ch + 1})"
    try:
        rate = check_record_fs(float(header.fs) * spf[ch], f"{hea}: sampling rate")
    except (TypeError, ValueError) as err:
        raise RecordError(str(err)) from err
    if fs is not None and abs(float(fs) - rate) > 1e-6 * rate:
        raise RecordError(f"{hea}: the header says {rate:g} Hz, --fs says {float(fs):g} Hz; "
                          "drop --fs or fix the header")
    try:
        with _quiet():
            rec = wfdb.rdrecord(str(path), channels=[ch], physical=True, m2s=True,  # by position: names repeat
                                smooth_frames=spf[ch] == 1)
    except FileNotFoundError as err:
        raise RecordError(f"{path.parent / Path(err.filename or '?').name}: signal file missing "
                          f"(named by {hea.name})") from err
    except Exception as err:
        short = _unreadable(path, header, spf)
        if short:
            raise RecordError(f"{path}: {short}") from err
        try:
            rec = _fixed_with_gaps(path, header, ch) if spf[ch] == 1 else None
        except Exception:  # a segment wfdb cannot read either: the first error says why
            rec = None
        if rec is None:
            raise RecordError(f"{path}: cannot read the signal ({type(err).__name__}: {err})") from err
    if spf[ch] == 1:
        sig = rec.p_signal
        x = np.zeros(0) if sig is None or sig.ndim != 2 or sig.shape[1] != 1 else np.asarray(sig[:, 0], np.float64)
    else:
        e = rec.e_p_signal
        x = np.asarray(e[0], np.float64) if e else np.zeros(0)
    promised = None if header.sig_len is None else int(header.sig_len) * spf[ch]
    if promised is not None and len(x) != promised:
        raise RecordError(f"{path.with_suffix('.dat')}: truncated: {len(x)} of the {promised} samples the header "
                          "promises")
    where = f"{hea}: lead {chosen!r}"
    if note := _checksum_note(path, header, ch, spf[ch], where):
        notes.append(note)
    if _uncalibrated(raw_lines, ch):  # (a newcomer, session 32: 5x the true amplitude, silently)
        notes.append(f"{where}: the header gives no ADC gain (or 0): an uncalibrated signal (WFDB header(5)), read "
                     "at the default 200 units per mV; its amplitude may be wrong, and the monitor's limits in mV "
                     "with it (a QRS under 0.1 mV, flat-line leads off)")
    if len(x) < 2 * rate:
        raise RecordError(f"{where}: {len(x)} samples is less than 2 s at {rate:g} Hz")
    unit = (rec.units or [sig_units[ch]])[0] or "mV"  # WFDB: no unit in the header means mV
    if unit == "V" and _raw_unit(raw_lines, ch) in ("µV", "μV"):
        unit = "uV"  # 'µV' in Latin-1 or UTF-8: wfdb drops the byte it cannot decode and reads volts
    factor, _ = check_units(unit, units, where=where)
    x = x * factor
    fin = x[np.isfinite(x)]
    if fin.size == 0 or (lead is None and fin.min() == fin.max()):
        # all NaN, or (the default lead) one value throughout: the lead was never connected
        why = (f"{where}: no valid samples (all NaN: the lead was never connected)" if fin.size == 0 else
               f"{where}: one value throughout (the lead was never connected)")
        alt = second_lead(names, ch, volt) if lead is None else None
        if alt is None and fin.size == 0:
            raise RecordError(why)
        if alt is not None:
            # the default lead was never connected: the record's other ECG lead is played (a bed refused for a lead
            # nobody asked for, its good second lead unused: a newcomer, session 26); a lead asked for is refused (all
            # NaN) or played as it is; a flat default lead stays where the other is flat too (CinC 2015 a391l, v400s)
            other = read_wfdb(path, lead=f"#{alt + 1}", fs=fs, units=units, annotations=annotations)
            o = other.signal[np.isfinite(other.signal)]
            if fin.size == 0 or (o.size and o.min() != o.max()):
                return dataclasses.replace(other, notes=(f"{why}; playing {other.lead!r} (choose with --lead)",
                                                         *other.notes))
    if note := check_amplitude(x, where=where, unit_known=True):
        notes.append(note)
    samples, classes, annotated = np.zeros(0, np.int64), np.zeros(0, "<U1"), False
    if annotations and path.with_suffix(".atr").is_file():
        try:
            with _quiet():
                ann = wfdb.rdann(str(path), "atr")
            at = np.asarray(ann.sample, dtype=np.float64) * (rate / annotation_rate(ann, header))
            samples, classes = beats_from_symbols(np.round(at).astype(np.int64), list(ann.symbol))
            annotated = True
        except Exception as err:
            notes.append(f"{path.with_suffix('.atr')}: not a readable annotation file ({type(err).__name__}: {err}); "
                         "played without reference beats")
    return Recording(path.name, path, rate, chosen, x.astype(np.float32), samples, classes, annotated, tuple(notes))

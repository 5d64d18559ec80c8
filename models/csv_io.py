"""CSV and text exports of ECG devices, with a small, documented dialect detection.

What is recognised (anything else, or anything ambiguous, is a :class:`RecordError` naming the file,
the line and the fix; what is decided on clear evidence is a warning in ``Recording.notes``):

- **Encoding**: UTF-8 (a byte-order mark is allowed); UTF-16 with its byte-order mark (Excel's "Unicode text")
  and, where UTF-8 fails, Windows-1252 (Excel's CSV on Windows writes ``µV`` as one byte), each with a warning.
- **Preamble**: lines before the first line that starts with a number (a date alone on a line is preamble,
  skipped).  ``#`` starts a comment at a line's start, and ends a data row's samples (``0.1,0.2 # note``); a
  name may hold one (``Sample #``).
  A preamble line ``key: value`` or ``key = value`` (or ``key<delimiter>value``, or ``key,value`` in a
  one-column file: a watch's ``Sample Rate,512 hertz``) is metadata: a sampling rate (``fs``, ``sampling
  rate``, ``sample rate [Hz]``, ``sampling frequency``, ``frequency``; a number with ``Hz``, ``hertz``,
  ``kHz``, ``sps`` or ``samples/s`` allowed; a ``rate`` in ``bpm`` is a heart rate, not used, with a warning) or
  a sampling interval (``sampling interval: 2 ms``), a ``unit``/``units`` (mV, uV, V), a ``lead`` (the name of a
  one-column file's lead).  A scale the reader would have to apply (``gain``, ``resolution``, ``offset``, ...,
  other than 1 or 0) is refused: read as they are, ADC counts would be 5x or 10x off.  Other keys are warned as
  not used.  The last preamble line that has as many fields as the data rows is the **header** (column names,
  though one holds a colon); a line of units under it (``s,mV``; PhysioNet's ``'hh:mm:ss.mmm','mV'``) gives the
  columns' units.  Other preamble lines are skipped, with a warning.
- **Trailing delimiter**: a delimiter that ends every row (spreadsheet exports) is an empty last column, left
  out (warning).
- **Delimiter**: ``;``, a tab or ``|`` when every data row has one; whitespace between numbers with decimal
  commas (``0,002 1,0675``); else ``,``; else whitespace.  A quoted field may hold the delimiter.
- **Decimal comma** (``-0,750``): with a ``;``/tab/whitespace delimiter, commas inside numbers; with a
  ``,`` delimiter, in quoted fields (``"0,002","1,0675"``), or when a header names one column and every row is
  ``digits,digits`` (warning).
  Without a header such rows are refused (one column with decimal commas, or two integer columns?).
- **Columns**: named by the header: a time column (``time``, ``t``, ``timestamp``, ``elapsed``,
  ``seconds``, ``Zeit``, ``temps``, ``tiempo``, ``tempo``, ``tijd``; unit from the name: ``time_ms``,
  ``time (s)``, ``t [us]``; or clock times, whatever the column's name: ``h:mm:ss.mmm``/``m:ss.mmm``
  (PhysioNet's elapsed time, a decimal comma allowed; times of day across midnight go on) or an ISO date and
  time, read as seconds, or a date in another order and a time (``06/12/2026 10:00:00.004``: the time of day); a
  column of dates alone is no lead), a sample-number column (``sample``, ``Sample #``, ``index``, ``n``, ``#``:
  counting up by one; a jump is samples missing, a step back or a repeat refused at its line), the rest are leads
  (``--lead`` chooses among them by name; a unit in a name: ``ECG (uV)``, ``ecg_mV``; a column named ``V`` is lead
  V, not volts; by default lead II, but where that column holds one value throughout, the next lead named as an ECG lead
  that has a signal, with a warning).
  Without a header: one column is the lead; two are a time column (strictly increasing; seconds or milliseconds
  told apart by its step, with a warning) and the lead; more are refused.
- **Rate**: from ``--fs``, a metadata line and the time column (its rows over its span: times rounded to whole
  ms step unevenly, and their median step would be another rate; a whole number of Hz where one lies within the
  column's printed resolution); all that are given must agree within 1 %.  A time column's jump of a whole number
  k of sampling steps (within 25 % of one step plus its printed resolution) is k - 1 samples missing (a device's
  dropped packets: signal loss in their place, warned; over ``MAX_GAP_S``, 10 minutes, refused), a step going
  backwards or one off the sampling step and no whole number of them (irregular sampling) is refused at its line.
- **Unit**: from ``--units``, a metadata line and the lead's column name; all that are given must
  agree.  None given: mV when the amplitudes are plausible for mV (warning), else refused.
- **Thousands separators** (``1,234`` or ``1.234`` beside integers such as ``523`` in one column) are refused
  at the first such line: read as decimals they would be a thousand times too small.
- **Line ends**: ``\\n``, ``\\r\\n``, ``\\r``; ``\\r\\r\\n`` (Python's csv.writer on a file opened in text mode on
  Windows) is one line end, with a warning, not a line and an empty one.
- **Empty lines**: in a one-column file an empty line after the header is an empty cell (a missing sample, signal
  loss, in its place: what a spreadsheet exports); with several columns a line of delimiters alone among the samples
  is skipped, with a warning (the samples after it follow without a gap).  A line of ``NaN`` (``NA``, ...) alone is a
  missing sample, also before the first number.
- **Offset**: samples beyond :data:`~ecgmon.models.recording.SAMPLE_MAX_MV` that are an ECG on a constant offset
  (a DC-coupled export; median over half that, every sample within it of the median) have the median taken out
  (warning).
- **Cells**: an empty cell, ``nan``, ``NaN`` or ``NA`` in the lead is signal loss (NaN, warning), and so is a cell of
  exactly -32768 or 32767 (a 16-bit device's lead-off or overflow code; warning naming the first line);
  text elsewhere, infinities, a row with another number of fields, or a sample beyond
  :data:`~ecgmon.models.recording.SAMPLE_MAX_MV` are refused at their line.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, cast

import numpy as np

from ecgmon.core.limits import FS_RANGE, check_record_fs
from ecgmon.models.recording import (
    ECG_KEYS,
    SAMPLE_MAX_MV,
    RecordError,
    Recording,
    check_amplitude,
    check_units,
    choose_lead,
    is_ecg_name,
    lead_key,
    unit_factor,
)

MISSING = frozenset({"", "nan", "na", "n/a", "null", "-"})
RATE_KEYS = ("fs", "samplingrate", "samplerate", "samplingfrequency", "frequency", "rate", "samplefrequency",
             "sfreq", "hz")  # looked up by _meta_key: "Sampling rate (Hz)" is "samplingrate"
INTERVAL_KEYS = ("samplinginterval", "sampleinterval", "samplingperiod", "sampleperiod", "interval", "dt")
LOOSE_RATE_KEYS = frozenset({"rate", "frequency", "hz"})  # may name a heart rate ("Rate: 72 bpm")
# keys of a scale the reader would have to apply to the samples: refused rather than ignored
SCALE_KEYS = frozenset({"gain", "adcgain", "resolution", "adcresolution", "lsb", "scalefactor", "calibration",
                        "factor", "multiplier", "offset", "baseline", "adczero"})
# metadata keys a "key,value" line may carry before the samples (an export's preamble: "Sample Rate,512 hertz")
META_KEYS = frozenset(RATE_KEYS) | frozenset(INTERVAL_KEYS) | {"unit", "units", "scale", "lead"}
TIME_NAMES = ("time", "t", "timestamp", "elapsed", "seconds", "sec", "secs", "elapsedtime", "ms", "millis",
              "sampletime", "min", "mins", "minutes",  # AcqKnowledge's text export names its time column by its unit
              "zeit", "temps", "tiempo", "tempo", "tijd", "tid")  # German, French, Spanish, Italian, Dutch, Nordic
INDEX_NAMES = ("sample", "samples", "index", "idx", "n", "#", "no", "sampleno", "samplenumber", "nr", "sample#",
               "samplenr", "samplenum", "sampleindex", "nseq", "seq")
TIME_UNITS = {"s": 1.0, "sec": 1.0, "secs": 1.0, "seconds": 1.0, "ms": 1e-3, "msec": 1e-3, "millis": 1e-3,
              "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9, "min": 60.0, "mins": 60.0, "minutes": 60.0}
HEART_RATE_MAX = 300.0  # bpm: a bare "rate" over this is no heart rate
RATE_TOLERANCE = 0.01  # rates from two sources agree within 1 %
JUMP_TOLERANCE = 0.25  # a time step this far off the median is a gap
MAX_GAP_S = 600.0  # a longer gap in a time or sample-number column is refused (two sessions in one file?)
SPACED_COMMA_NUMBERS = re.compile(r"^\s*[+-]?\d+(?:,\d+)?(?:\s+[+-]?\d+(?:,\d+)?)+\s*$")
DATE_LINE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}(?:[ T][\d:.]+)?\s*$")  # a date (and time) alone on its line
NUMBER_START = re.compile(r"^\s*[\"']?[+-]?(\d|[.,]\d)")
INT_COMMA_DIGITS = re.compile(r"^\s*[+-]?\d+,\d+\s*$")
# a number written with thousands separators (1,234 / 12.345.678): a first group without a leading zero, then
# groups of exactly three digits
THOUSANDS = re.compile(r"^[+-]?[1-9]\d{0,2}(?:[.,]\d{3})+$")
PLAIN_INT = re.compile(r"^[+-]?\d+$")
# a unit in a column name: in brackets ("ECG (uV)", "t [ms]"), or after '_' or a space, but not a bare V
# there ("ECG V" is lead V): "ecg_mV", "time_ms"
UNIT_IN_NAME = re.compile(r"[\(\[]\s*([^\)\]]+?)\s*[\)\]]\s*$|[\s_]((?:[mµμu]v|millivolts?|microvolts?|m?sec|"
                          r"ms|us|µs|s))\s*$", re.IGNORECASE)


@dataclass(slots=True)
class _Text:
    """The file split into its parts, with 1-based line numbers."""

    meta: dict[str, tuple[int, str]] = field(default_factory=dict)  # key -> (line, value)
    skipped: list[int] = field(default_factory=list)
    header: tuple[int, list[str]] | None = None
    rows: list[tuple[int, str]] = field(default_factory=list)
    blank: list[int] = field(default_factory=list)  # empty lines among the samples
    lead_blank: list[int] = field(default_factory=list)  # empty lines before the first sample


def _key(s: str) -> str:
    return re.sub(r"[\s_\-.]+", "", s.strip().lower())


def _name_unit(name: str) -> tuple[str, str | None]:
    """``"ECG (uV)"`` -> ``("ECG", "uV")``; ``"ecg_mV"`` -> ``("ecg", "mV")``; a name without a unit as is."""
    if unit_factor(name) is not None and _key(name) != "v":  # a column named by its unit alone ("mV"; "V" is lead V)
        return "ECG", name.strip()
    m = UNIT_IN_NAME.search(name)
    if m:
        unit = (m.group(1) or m.group(2)).strip()
        if unit_factor(unit) is not None or _time_scale(unit) is not None:
            return name[: m.start()].strip(" _-") or name, unit
    return name.strip(), None


def _split(line: str, delim: str | None) -> list[str]:
    if delim is not None and '"' in line:  # quoted fields may hold the delimiter ("0,000","1,0797")
        cells = next(csv.reader([line], delimiter=delim, skipinitialspace=True))
    else:
        cells = (line.split(delim) if delim is not None else line.split()) or [""]  # an empty line: one empty cell
    return [c.strip().strip("\"'").strip() for c in cells]


def _decode(path: Path, notes: list[str]) -> list[str]:
    """The file's lines: UTF-8 (a byte-order mark allowed), UTF-16 with its byte-order mark (Excel's 'Unicode
    text'), else Windows-1252 (Excel's 'CSV' on Windows writes 'µV' as one byte 0xB5), with a warning."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise RecordError(f"{path}: cannot read ({err.strerror})") from err
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as err:
            raise RecordError(f"{path}: starts with a UTF-16 byte-order mark but is not UTF-16 text ({err.reason}); "
                              "save the file as UTF-8 CSV") from err
        notes.append(f"{path}: read as UTF-16 (its byte-order mark)")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            if b"\x00" in data:
                raise RecordError(f"{path}:{line}: not UTF-8 text (byte {err.start}) and NUL bytes: a binary file, not "
                                  "CSV text") from err
            text = data.decode("cp1252", errors="replace")
            notes.append(f"{path}:{line}: not UTF-8 (byte {err.start}, {data[err.start]:#04x}): read as Windows-1252; "
                         "save the file as UTF-8 CSV to be sure of its text")
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise RecordError(f"{path}:{line}: a NUL byte: a binary file, not CSV text")
    crcrlf = text.count("\r\r\n")
    if crcrlf:
        # Python's csv.writer on a file opened in text mode on Windows (without newline=''): each row ends '\r\r\n',
        # which splitlines() reads as a row and an empty line; a one-column file's empty lines are missing samples,
        # so such a file played at twice its length, half of it signal loss (a newcomer, session 27: 71 bpm shown as
        # 35, a false extreme bradycardia)
        notes.append(f"{path}: {crcrlf} line end(s) written as '\\r\\r\\n' (a CSV written in text mode on Windows): "
                     "each read as one line end")
        text = text.replace("\r\r\n", "\n")
    return text.splitlines()


def _sections(path: Path, lines: list[str]) -> tuple[_Text, list[tuple[int, str]]]:
    t = _Text()
    pre: list[tuple[int, str]] = []
    for n, raw in enumerate(lines, start=1):
        if raw.lstrip().startswith(("#", "%")):
            body = raw.lstrip()[1:].strip()
            if not t.rows and body:
                pre.append((n, body))  # '# fs: 250' carries metadata too, as OpenBCI's '%Sample Rate = 250.0 Hz' does
            continue
        # '#' ends a data row's samples ("0.1,0.2 # note"); a name may hold one ("Sample #")
        line = raw.split("#", 1)[0].strip() if NUMBER_START.match(raw) else raw.strip()
        if not line.strip(",;\t "):  # empty, or delimiters alone (a spreadsheet's empty rows)
            if not raw.strip(",;\t "):
                if t.rows:
                    t.blank.append(n)
                elif pre:
                    t.lead_blank.append(n)  # before the first sample: after the header, empty cells (_blank_cells)
            continue
        if not t.rows and all(c.strip().lower() in MISSING for c in re.split(r"[,;\t]", line)):
            t.rows.append((n, line))  # 'NaN' (or 'NA', ...) alone: a missing sample, not a column's name
            continue
        if not t.rows and (not NUMBER_START.match(line) or DATE_LINE.match(line)):
            pre.append((n, line))  # names, metadata, or a date line before them
            continue
        t.rows.append((n, line))
    if not t.rows:
        raise RecordError(f"{path}: no line starts with a number: no samples found")
    t.blank = [n for n in t.blank if n < t.rows[-1][0]]  # trailing empty lines are nothing
    return t, pre


def _blank_cells(t: _Text, ncols: int) -> None:
    """In a one-column file an empty line is an empty cell (what a spreadsheet exports for one): a missing sample,
    signal loss like a ``NaN`` cell, in its place, so that the samples after it keep their time (a file whose first 10 s
    were empty lines was played 10 s early, with no word); before the first sample only after the column's name (empty
    lines after metadata separate it from the samples).  With several columns a line of delimiters alone is skipped,
    with a warning (a time column places the samples)."""
    if ncols != 1:
        return
    cells = t.blank + ([n for n in t.lead_blank if n > t.header[0]] if t.header is not None else [])
    if cells:
        t.rows = sorted(t.rows + [(n, "") for n in cells])
        t.blank = []


def _delimiter(rows: list[tuple[int, str]]) -> str | None:
    sample = [s for _, s in rows[:500]]
    for d in (";", "\t", "|"):
        if all(d in s for s in sample):
            return d
    if all(SPACED_COMMA_NUMBERS.match(s) for s in sample):
        return None  # "0,002 1,0675": whitespace between numbers with decimal commas
    if any("," in s for s in sample):
        return ","
    return None


def _metadata(t: _Text, pre: list[tuple[int, str]], delim: str | None, ncols: int) -> None:
    """Sort the preamble into metadata (``key: value``, ``key = value``, ``key<delim>value``), the header
    (the last preamble line: one name, or as many names as the rows have fields, none of them a number)
    and skipped lines.  A row that says only whether each column is calibrated (Shimmer's ``CAL``/``RAW`` row
    between its names and units: it was taken for the names, every lead called 'CAL') is skipped."""
    if ncols > 1:
        cal = [(n, line) for n, line in pre
               if (cells := [c.strip().strip("\"'").upper() for c in _split(line, delim)])
               and all(c in ("CAL", "RAW", "UNCAL", "") for c in cells) and any(cells)]
        t.skipped += [n for n, _ in cal]
        pre = [x for x in pre if x not in cal]
    units_row = None
    if ncols > 1 and len(pre) >= 2:
        last = _split(pre[-1][1], delim)
        if len(last) == ncols and all(_unit_cell(c) for c in last) and any(
                c.strip().strip("\"'") and _unit_cell(c, other=False) for c in last):
            units_row, pre = (pre[-1][0], last), pre[:-1]
    for i, (n, line) in enumerate(pre):
        cells = _split(line, delim) if ncols > 1 else [line.strip().strip("\"'")]  # one column: the whole line
        pair = _split(line, ",") if ncols == 1 and line.count(",") == 1 else cells  # "Sample Rate,512 hertz"
        m = re.match(r"^([^:=]{1,40}?)\s*[:=]\s*(.+)$", line)
        names_ok = not any(NUMBER_START.match(c) for c in cells)
        if i == len(pre) - 1 and names_ok and ncols > 1 and len(cells) == ncols:
            t.header = (n, cells)  # the names, though one holds a colon ("Time (hh:mm:ss.mmm)")
        elif DATE_LINE.match(line):
            t.skipped.append(n)  # a date (and time) alone: the recording's, not metadata
        elif m:
            t.meta.setdefault(_meta_key(m.group(1)), (n, _keyed_value(m.group(1), m.group(2).strip())))
        elif len(pair) == 2 and _meta_key(pair[0]) in META_KEYS:
            t.meta.setdefault(_meta_key(pair[0]), (n, _keyed_value(pair[0], pair[1])))
        elif i == len(pre) - 1 and names_ok and len(cells) in (1, ncols):
            t.header = (n, cells)
        elif len(pair) == 2 and not NUMBER_START.match(pair[0]):
            t.meta.setdefault(_meta_key(pair[0]), (n, _keyed_value(pair[0], pair[1])))
        else:
            t.skipped.append(n)
    if units_row is not None:
        if t.header is None or len(t.header[1]) != ncols:
            t.skipped.append(units_row[0])
            return
        # the units under their names, as a name would carry them: "MLII" over "mV" is "MLII (mV)"; a time format
        # ("hh:mm:ss.mmm") is the clock's, read from the cells themselves
        t.header = (t.header[0], [f"{name} ({u})" if u and _name_unit(name)[1] is None and not _clock_format(u)
                                  else name for name, u in zip(t.header[1], units_row[1], strict=True)])


def _meta_rate(value: str, *, interval: bool) -> float | None:
    """Hz from a metadata value: a rate ("500", "500 Hz", "512 hertz", "500 samples/s", "500 sps", "0.5 kHz") or,
    with ``interval``, a sampling interval ("2 ms", "0.002 s", "2000 us"); None when it is neither."""
    v = value.strip().lower().replace(",", ".")
    if interval:
        m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(s|sec|ms|msec|us|µs|μs)?", v)
        if not m or float(m.group(1)) <= 0:
            return None
        return 1.0 / (float(m.group(1)) * TIME_UNITS.get(m.group(2) or "s", 1.0))
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*(hz|hertz|khz|sps|samples?\s*(?:/|per)\s*s(?:ec(?:ond)?)?|s/s)?", v)
    if not m:
        return None
    return float(m.group(1)) * (1000.0 if m.group(2) == "khz" else 1.0)


def _identity(key: str, value: str) -> bool:
    """Whether a scale line changes nothing: an offset of 0, a gain or factor of 1."""
    m = re.match(r"^\s*([+-]?[0-9]*\.?[0-9]+)", value.replace(",", "."))
    return m is not None and float(m.group(1)) == (0.0 if key in ("offset", "baseline", "adczero") else 1.0)


KEY_UNIT = re.compile(r"[\(\[]\s*([^\)\]]*?)\s*[\)\]]\s*$")  # a metadata key's unit in brackets: "Sample rate [Hz]"


def _keyed_value(key: str, value: str) -> str:
    """A metadata value with the unit its key gives in brackets where the value itself gives none: "Rate (Hz): 500"
    is "500 Hz" (the key is looked up without it, :func:`_meta_key`)."""
    m = KEY_UNIT.search(key.strip())
    if m and m.group(1) and re.fullmatch(r"\s*[+-]?[0-9]*[.,]?[0-9]+\s*", value):
        return f"{value.strip()} {m.group(1)}"
    return value


# metadata keys in other words and languages, as the keys they mean: an Apple Watch export in German ("Abtastrate,512
# Hertz", "Einheit,µV", "Ableitung,Ableitung I") was refused for want of a rate (a newcomer, session 48); devices'
# "Signal unit" and "ECG unit"
META_ALIASES = {"abtastrate": "samplingrate", "abtastfrequenz": "samplingrate", "frecuenciademuestreo": "samplingrate",
                "frequenzadicampionamento": "samplingrate", "frequenciadeamostragem": "samplingrate",
                "bemonsteringsfrequentie": "samplingrate", "einheit": "unit", "unidad": "unit", "unita": "unit",
                "unità": "unit", "unité": "unit", "unite": "unit", "unidade": "unit", "eenheid": "unit",
                "signalunit": "unit", "ecgunit": "unit", "ableitung": "lead", "derivación": "lead",
                "derivacion": "lead", "dérivation": "lead", "derivation": "lead", "derivazione": "lead",
                "derivação": "lead", "afleiding": "lead"}


def _meta_key(key: str) -> str:
    """A metadata key as looked up: without a unit in brackets ("Sample rate [Hz]"), and without spaces or case; a
    key in other words or languages as the key it means (:data:`META_ALIASES`)."""
    k = _key(KEY_UNIT.sub("", key.strip()) or key)
    return META_ALIASES.get(k, k)


# units of a device's other channels, as a units row under the names writes them (Shimmer's "no units" under its ExG
# status channels: the row was not read as units but as the names, every lead renamed, a reviewer, session 48)
OTHER_UNITS = frozenset({"no units", "no_units", "nounits", "n/a", "na", "-", "%", "bpm", "1/min", "mmhg", "kpa",
                         "a.u.", "au", "counts", "count", "g", "m/s^2", "m/s2", "m/(s^2)", "deg", "°", "°c", "degc",
                         "ohm", "ohms", "kohm", "kohms", "rpm", "breaths/min", "celsius", "deg/s", "ms^-2"})


def _unit_cell(cell: str, *, other: bool = True) -> bool:
    """Whether a cell of a line under the header is a unit: empty, a voltage unit, a time unit, a clock format
    (PhysioNet's ``rdsamp -v`` writes ``'hh:mm:ss.mmm','mV','mV'`` under the names) or, with ``other``, a unit of
    another channel (:data:`OTHER_UNITS`; a units row needs a voltage or time unit among its cells too,
    :func:`_metadata`)."""
    c = cell.strip().strip("\"'")
    return (not c or unit_factor(c) is not None or _time_scale(c) is not None or _clock_format(c)
            or (other and c.lower() in OTHER_UNITS))


def _time_scale(unit: str) -> float | None:
    """Seconds per unit of a time column's unit: s, ms, us, ns, min, or a fraction of a second ``s/N`` (Hexoskin's
    ``time [s/256]``: it was dropped, the step of 1 read as ms, the record played at 1,000 Hz, a reviewer, session
    48); None for anything else."""
    u = unit.strip().lower()
    if (m := re.fullmatch(r"s\s*/\s*(\d+)", u)) and int(m.group(1)) > 0:
        return 1.0 / int(m.group(1))
    return TIME_UNITS.get(u)


def _clock_format(cell: str) -> bool:
    return re.fullmatch(r"[hms]+(?::[hms]+)+(?:\.m+)?|(?:yyyy|yy)[-/]mm[-/]dd.*", cell.strip().lower()) is not None


CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d+)?)$")


# a date in another order before a time of day: day or month first (06/12/2026, 12-06-2026, 06.12.2026), or year first
# with slashes (2026/12/06): which of day and month comes first cannot be told, and need not be (below)
OTHER_DATE_TIME = re.compile(r"^(?:\d{1,2}[./-]\d{1,2}[./-]\d{4}|\d{4}/\d{1,2}/\d{1,2})[ T]+(\S+)$")
DOTTED_DATE = re.compile(r"\b\d{1,2}\.\d{1,2}\.\d{4}\b")
DATE_ONLY = re.compile(r"^(?:\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{4}|\d{4}/\d{1,2}/\d{1,2})$")


def _clock(cell: str) -> float | None:
    """Seconds from a clock time (``h:mm:ss.mmm``, ``m:ss.mmm``: PhysioNet's elapsed time) or an ISO date and
    time (``2024-01-01 10:00:00.003``, as seconds since 1970, UTC where no zone is given); from a date in another
    order and a time (``06/12/2026 10:00:00.004``, ``06.12.2026 10:00:00,004``: a European device's or a spreadsheet's
    export) the time of day alone, its date left out (day-first and month-first cannot be told apart; the times of
    day go on across midnight as a clock column's do); None for anything else."""
    m = CLOCK.match(cell.strip())
    if m is None and (d := OTHER_DATE_TIME.match(cell.strip())):
        m = CLOCK.match(d.group(1))
    if m:
        return int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3).replace(",", "."))
    if re.match(r"^\d{4}-\d{2}-\d{2}[ T]\d", cell.strip()):
        try:
            when = datetime.fromisoformat(cell.strip())
        except ValueError:
            return None
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    return None


def _number(cell: str, decimal_comma: bool) -> float:
    return float(cell.replace(",", ".") if decimal_comma else cell)


def _thousands(path: Path, plain: list[tuple[int, str] | None], grouped: list[tuple[int, str] | None],
               all_grouped: list[bool]) -> None:
    """Refuse a column written with thousands separators: integers such as ``523`` beside numbers such as
    ``1,234`` or ``1.234`` (every number with a separator a 1-3 digit group without a leading zero, then groups of
    three digits).  Read as decimals, those would be a thousand times too small (a microvolt export's R waves over
    1 mV read as 0.001 mV) while the integers stay right; a decimal export writes ``0,750``, or decimals
    throughout, and passes."""
    for c, (p, g, every) in enumerate(zip(plain, grouped, all_grouped, strict=True)):
        if every and p is not None and g is not None:
            raise RecordError(f"{path}:{g[0]}: field {c + 1} {g[1]!r} looks like a number with a thousands separator "
                              f"(line {p[0]} has the integer {p[1]!r}); export numbers without thousands "
                              "separators")


BULK_BYTES = 16 * 2**20  # a file this large is read in bulk where it can be (_read's ``head``)
HEAD_BYTES = 2**20  # ... after its dialect is decided on this much of its start


def read_csv(path: Path | str, *, lead: str | None = None, fs: float | None = None,
             units: str | None = None) -> Recording:
    """One lead of a CSV/text export in mV (see the module docstring for the dialect).

    ``fs`` (Hz) and ``units`` (mV, uV, V) are needed only where the file does not say them; where it
    does, they must agree.  Raises :class:`RecordError` naming the file, line and fix.

    A file of :data:`BULK_BYTES` or more (a day's Holter export at 500 Hz is about 1 GB) has its dialect decided on
    its first :data:`HEAD_BYTES` and its rows parsed in bulk by numpy's C reader (``numpy.loadtxt``): a 1 h,
    500 Hz, two-column file (29 MB) took 4.9 s and 450 MB read line by line (a day's, by extrapolation, about 2 min
    and 10 GB), in bulk 0.9 s and 150 MB; a day's (750 MB) 16 s and 2.6 GB at most.
    Only a file whose start is plain numbers (no decimal commas, quotes, clock times, empty cells or empty lines)
    is read so; anything the bulk read does not accept exactly (a field it cannot convert, a row of another length,
    an empty or comment line, an infinity, a non-integer in a column of integers: a thousands separator?) sends the
    file through the line-by-line read, which names the line.  Both give the same recording.
    """
    path = Path(path)
    try:
        big = path.stat().st_size >= BULK_BYTES
    except OSError:
        big = False
    if big and (rec := _read(path, lead, fs, units, head=True)) is not None:
        return rec
    rec = _read(path, lead, fs, units, head=False)
    assert rec is not None
    return rec


def _head_lines(path: Path) -> list[str] | None:
    """The whole lines of a file's first :data:`HEAD_BYTES` (UTF-8), or None (another encoding: read it all)."""
    try:
        with open(path, "rb") as f:
            data = f.read(HEAD_BYTES)
    except OSError:
        return None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\n" not in data or b"\r\r\n" in data:
        return None  # (line ends of '\r\r\n': the whole read says so, _decode)
    try:
        text = data[: data.rindex(b"\n")].decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text.splitlines()


def _bulk(path: Path, first: int, delim: str | None, ncols: int, ints: list[int]) -> np.ndarray | None:
    """Every data row of ``path`` from its line ``first`` (1-based) on, ``ncols`` numbers each, by numpy's C reader;
    None where that is not exactly what the line-by-line read would give (see :func:`read_csv`): the caller reads
    the file line by line then.  ``ints``: columns of plain integers in the file's start."""
    try:
        table = np.loadtxt(path, delimiter=delim, skiprows=first - 1, comments="#", dtype=np.float64,
                           encoding="utf-8", ndmin=2)  # every row's fields: a row with more is refused there
    except (ValueError, UnicodeDecodeError, OSError):
        return None
    # the lines from ``first`` on, one row each: loadtxt skips a blank or comment line, which the other read says
    rows, last = 0, b""
    with open(path, "rb") as f:
        while block := f.read(2**24):
            rows += block.count(b"\n")
            last = block
    rows += (0 if last.endswith(b"\n") else 1) - (first - 1)
    if table.shape != (rows, ncols) or np.isinf(table).any():
        return None
    for c in ints:
        col = table[:, c]
        if not np.array_equal(col[np.isfinite(col)], np.round(col[np.isfinite(col)])):
            return None
    return table


def _read(path: Path, lead: str | None, fs: float | None, units: str | None, *, head: bool) -> Recording | None:
    """:func:`read_csv`; with ``head``, the dialect from the file's start and the rows in bulk, or None where that
    cannot be done exactly."""
    notes: list[str] = []
    if head:
        head_lines = _head_lines(path)
        if head_lines is None:
            return None
        try:
            return _read_lines(path, head_lines, notes, lead, fs, units, bulk=True)
        except RecordError:
            return None  # said by the line-by-line read, with the whole file's line numbers
    return _read_lines(path, _decode(path, notes), notes, lead, fs, units, bulk=False)


def _read_lines(path: Path, lines: list[str], notes: list[str], lead: str | None, fs: float | None,
                units: str | None, *, bulk: bool) -> Recording | None:
    """:func:`read_csv` from the file's ``lines``; with ``bulk`` they are its first lines only, the rows parsed by
    :func:`_bulk` (None where it cannot be done exactly)."""
    t, pre = _sections(path, lines)
    delim = _delimiter(t.rows)
    trailing = delim is not None and all(s.rstrip().endswith(delim) for _, s in t.rows[:500])
    if trailing:
        # every row ends with the delimiter (spreadsheet exports): an empty last column, not a column of data
        t.rows = [(n, s.rstrip()[:-1]) for n, s in t.rows]
        pre = [(n, s.rstrip()[:-1] if s.rstrip().endswith(cast(str, delim)) else s) for n, s in pre]
        notes.append(f"{path}: every row ends with {delim!r}: the empty last column left out")
    counts = Counter(len(_split(s, delim)) for _, s in t.rows[:500])
    ncols = counts.most_common(1)[0][0]
    _metadata(t, pre, delim, ncols)
    _blank_cells(t, ncols)
    for key, (n, value) in t.meta.items():
        if key in SCALE_KEYS and not _identity(key, value):
            raise RecordError(f"{path}:{n}: {key} {value!r}: a scale this reader does not apply (the samples are read "
                              "as they are, in the unit stated); convert the samples to mV or uV, or remove the line")
    unused = [f"line {n}" for key, (n, _) in t.meta.items() if key not in META_KEYS]
    if unused:
        notes.append(f"{path}: metadata not used ({', '.join(unused[:5])}): neither a sampling rate, a unit nor a "
                     "lead")
    # a one-column header with comma-separated rows: decimal commas (or a header/data mismatch)
    decimal_comma = False
    if delim in (";", "\t", None):
        decimal_comma = any("," in s for _, s in t.rows[:500])
    elif delim == "," and any(re.fullmatch(r"[+-]?\d+,\d+", c) for _, s in t.rows[:50] if '"' in s
                              for c in _split(s, delim)):
        decimal_comma = True  # quoted fields with decimal commas: "0,002","1,0675"
    elif delim == ",":
        all_int_comma = all(INT_COMMA_DIGITS.match(s) for _, s in t.rows[:500])
        if t.header is not None and len(t.header[1]) == 1 and ncols == 2 and not all_int_comma:
            t.skipped.append(t.header[0])  # a title line, not the names of two columns
            t.header = None
        if t.header is not None and len(t.header[1]) == 1 and ncols == 2:
            decimal_comma, delim, ncols = True, None, 1
            notes.append(f"{path}: decimal commas ('{t.rows[0][1].strip()}' read as "
                         f"{_number(t.rows[0][1].strip(), True):g}): one column named by line {t.header[0]}")
        elif t.header is None and ncols == 2 and all_int_comma:
            n, s = t.rows[0]
            raise RecordError(f"{path}:{n}: {s.strip()!r} is either one number with a decimal comma or two integer "
                              "columns; add a header line naming the column(s) (e.g. 'ecg_mV'), or use ';' between "
                              "columns")
    # (a date written with dots, 06.12.2026, beside decimal commas is no mixing: a German export's times)
    if decimal_comma and any("." in DOTTED_DATE.sub("", s) for _, s in t.rows[:500]):
        n, s = next((n, s) for n, s in t.rows if "." in DOTTED_DATE.sub("", s))
        raise RecordError(f"{path}:{n}: {s.strip()!r} mixes decimal commas and points (thousands separators?); "
                          "export numbers without thousands separators")
    names = t.header[1] if t.header is not None else None
    if names is not None and len(names) != ncols:
        raise RecordError(f"{path}:{t.header[0] if t.header else 0}: the header names {len(names)} columns but the "
                          f"rows hold {ncols}; fix the header")
    # parse every row
    table = np.full((len(t.rows), ncols), np.nan)
    missing = np.zeros((len(t.rows), ncols), dtype=bool)
    # per column: the first line with a plain integer, the first with a separator ("." or ","), and whether every
    # cell with a separator looks like thousands grouping (see _thousands)
    plain: list[tuple[int, str] | None] = [None] * ncols
    grouped: list[tuple[int, str] | None] = [None] * ncols
    all_grouped = [True] * ncols
    clocks: set[int] = set()  # columns of clock times (h:mm:ss.mmm, ISO date and time): seconds
    dates: set[int] = set()  # columns of dates alone (a date column beside a time column): no lead, not read
    numeric: set[int] = set()
    for r, (n, s) in enumerate(t.rows):
        cells = _split(s, delim) if not decimal_comma or delim is not None or ncols > 1 else [s.strip()]
        if len(cells) != ncols:
            if ncols == 1 and THOUSANDS.match(s.strip().strip("\"'")):
                raise RecordError(f"{path}:{n}: {s.strip()!r} looks like a number with a thousands separator (other "
                                  "lines hold one number); export numbers without thousands separators")
            raise RecordError(f"{path}:{n}: {len(cells)} field(s) where the rows hold {ncols} ({s.strip()[:60]!r}); "
                              "a truncated or mixed line: fix or remove it")
        for c, cell in enumerate(cells):
            if cell.lower() in MISSING:
                missing[r, c] = True
                continue
            if all_grouped[c]:
                if "," in cell or "." in cell:
                    if THOUSANDS.match(cell):
                        grouped[c] = grouped[c] or (n, cell)
                    else:
                        all_grouped[c] = False
                elif plain[c] is None and PLAIN_INT.match(cell):
                    plain[c] = (n, cell)
            try:
                v = _number(cell, decimal_comma)
            except ValueError:
                clock = _clock(cell) if c not in numeric and c not in dates else None
                if clock is None and c not in numeric | clocks and DATE_ONLY.match(cell.strip()):
                    dates.add(c)  # a date column (its times in another column): read as no lead, left NaN
                    continue
                if clock is None:
                    if re.search(r"\d[:/.-]\d", cell) and (":" in cell or "/" in cell or cell.count("-") >= 2):
                        raise RecordError(f"{path}:{n}: field {c + 1} {cell[:40]!r} is a date or time in a form not "
                                          "read here (read: seconds, h:mm:ss.fff, ISO 8601 '2026-12-06 10:00:00.004', "
                                          "'06/12/2026 10:00:00.004'); export the times in one of those") from None
                    raise RecordError(f"{path}:{n}: field {c + 1} {cell[:40]!r} is not a number; fix or remove the "
                                      "line") from None
                clocks.add(c)
                v = clock
            else:
                if c in clocks or c in dates:
                    raise RecordError(f"{path}:{n}: field {c + 1} {cell[:40]!r} is a number where the lines before "
                                      f"hold {'clock times' if c in clocks else 'dates'}; fix or remove the line")
                numeric.add(c)
            if not math.isfinite(v):
                raise RecordError(f"{path}:{n}: field {c + 1} {cell[:40]!r} is not a finite number")
            table[r, c] = v
    _thousands(path, plain, grouped, all_grouped)
    line_of = np.asarray([n for n, _ in t.rows])
    if bulk:
        if (decimal_comma or trailing or clocks or dates or missing.any() or t.blank
                or any('"' in s or "'" in s for _, s in t.rows)):
            return None
        ints = [c for c in range(ncols) if all_grouped[c] and grouped[c] is None]  # no separator seen in it
        whole = _bulk(path, t.rows[0][0], delim, ncols, ints)
        if whole is None or len(whole) < len(table) or not np.array_equal(whole[: len(table)], table):
            return None
        table = whole
        missing = np.isnan(table)
        line_of = np.arange(t.rows[0][0], t.rows[0][0] + len(table))
    # column roles
    steps_of: list[np.ndarray] = []  # a time column left out for --fs: its steps in samples (_gaps)
    time_col, index_col, time_unit, leads = _roles(path, names, table, line_of, fs, notes, clocks, steps_of)
    if dates:
        leads = [c for c in leads if c not in dates]
        label = [f"column {c + 1}" for c in range(table.shape[1])] if names is None else names
        which = ", ".join(repr(label[c]) for c in sorted(dates))
        notes.append(f"{path}: column(s) {which} hold dates: not a lead, not read (the times of day go on across "
                     "midnight)")
    axes = _axes(names, table, leads)
    if axes and lead is None:  # (one asked for by name is refused below, once choose_lead has found it)
        leads = [c for c in leads if c not in axes] or _refuse_axis(path, names, axes)
    if not leads:
        raise RecordError(f"{path}: no lead column (columns: {names}); name one, e.g. 'ecg_mV'")
    # a file without a header: its one lead is "ECG" ("Lead: II" names it), several are "column k"
    unnamed = [t.meta.get("lead", (0, "ECG"))[1]] if len(leads) == 1 else [f"column {c + 1}" for c in leads]
    lead_names = [names[c] for c in leads] if names is not None else unnamed
    pick, note = choose_lead([_name_unit(n)[0] for n in lead_names], lead, where=str(path))
    if lead is None and len(leads) > 1 and _flat(table[:, leads[pick]]):
        # the default lead holds one value throughout (never connected, or a device's "off" value): the file's next
        # lead that has a signal is played, an ECG lead by its name first (a file whose lead II was all 0 played the
        # flat line, leads off to its end, beside a good lead I: a newcomer, session 41); a lead asked for is played
        names_ = [_name_unit(n)[0] for n in lead_names]
        # only a column named as an ECG lead: a respiration, pressure or SpO2 column has a signal too (a reviewer,
        # session 41: a flat II gave way to RESP, a false asystole, and to ABP in mmHg read as mV)
        # (a lead's name first: Shimmer's 'ECG_RESP' says ECG, and its respiration played, a false asystole: a
        # reviewer, session 48)
        live = next((k for ok in (lambda n: lead_key(n) in ECG_KEYS, is_ecg_name) for k in range(len(leads))
                     if k != pick and ok(names_[k]) and not _flat(table[:, leads[k]])), None)
        if live is not None:
            notes.append(f"{path}: column {lead_names[pick]!r} holds one value throughout (a lead not connected): "
                         f"playing {lead_names[live]!r} (choose with --lead)")
            pick, note = live, None
    if note:
        notes.append(note)
    col = leads[pick]
    if col in axes:
        _refuse_axis(path, names, [col])
    if axes:
        label = [f"column {c + 1}" for c in range(table.shape[1])] if names is None else names
        notes.append(f"{path}: column(s) {', '.join(repr(label[c]) for c in axes)} rise on every row (or count and "
                     "wrap): a time or sample axis, not an ECG lead: not played")
    for c_opt in (time_col, index_col):
        if c_opt is not None and missing[:, c_opt].any():
            n = int(line_of[np.flatnonzero(missing[:, c_opt])[0]])
            raise RecordError(f"{path}:{n}: the {'time' if c_opt == time_col else 'sample'} column is empty")
    index_steps: np.ndarray | None = None
    index_span = 0  # a k-bit counter's modulus (0: no counter that wraps)
    if index_col is not None:
        # sample numbers count up by one: a jump of k is k - 1 samples missing (a device's dropped packets: played
        # back to back they would shift every beat after it; refused before session 49), a step back or a repeat a
        # mixed file; a k-bit counter wraps from its largest value to its least (OpenBCI's 'Sample Index' 0-255: every
        # OpenBCI export was refused, a newcomer, session 48) and goes on counting, also across a gap
        ix = table[:, index_col]
        d = np.diff(ix)
        # ... only a k-bit counter's wrap: a counter 0..17499 that starts again at 0 is a second session appended, its
        # break unknown (it was played back to back: a reviewer, session 48)
        span = int(ix.max() - ix.min()) + 1
        modular = span >= 4 and span & (span - 1) == 0 and bool(np.any(d < 0))
        per = np.mod(d, span) if modular else d
        bad = np.flatnonzero((per < 1) | (per != np.round(per)))
        if len(bad):
            i = int(bad[0])
            raise RecordError(f"{path}:{int(line_of[i + 1])}: sample numbers go from {table[i, index_col]:g} to "
                              f"{table[i + 1, index_col]:g}: out of order or repeated; cut the file there, or "
                              "leave the sample column out")
        index_steps = per.astype(np.int64)
        index_span = span if modular else 0
    if time_col is not None and time_col in clocks:
        # clock times of day across midnight (23:59:59.998 then 0:00:00.000): a day on
        clock_t = table[:, time_col]  # a view: the table's column is unwrapped
        for k in np.flatnonzero(np.diff(clock_t) < -43200).tolist():
            clock_t[k + 1:] += 86400.0
    # the rate: every source that says one must agree
    rates: list[tuple[str, float]] = []
    unsure = ""  # a rate line not used because a heart rate could be meant: the refusal below names it
    if fs is not None:
        rates.append(("--fs", float(fs)))
    for key in RATE_KEYS + INTERVAL_KEYS:
        if key in t.meta:
            n, value = t.meta[key]
            hz = _meta_rate(value, interval=key in INTERVAL_KEYS)
            if hz is None and key in LOOSE_RATE_KEYS and re.search(r"bpm|/\s*min|per\s+min", value.lower()):
                notes.append(f"{path}:{n}: {value!r} is a heart rate, not the sampling rate: not used")
                continue
            if (key in LOOSE_RATE_KEYS - {"hz"} and hz is not None and hz <= HEART_RATE_MAX
                    and re.fullmatch(r"[0-9]*[.,]?[0-9]+", value.strip())):
                # a bare "Rate: 120" or "Frequency: 120" may name a heart rate (a newcomer, session 32: a 500 Hz
                # file played at 120 Hz, 16 bpm shown, HIGH alarms): without a unit, a value a heart rate can have
                # is not used; over 300 it can only be the sampling rate
                unsure = f" (line {n}, {value!r}, gives no unit: a heart rate, or the sampling rate?)"
                notes.append(f"{path}:{n}: {key!r} {value!r} gives no unit (a heart rate, or the sampling rate?): "
                             "not used; write 'Sampling rate: ... Hz' or give --fs")
                continue
            if hz is None:
                raise RecordError(f"{path}:{n}: sampling {'interval' if key in INTERVAL_KEYS else 'rate'} {value!r} is "
                                  f"not a number of {'s, ms or us' if key in INTERVAL_KEYS else 'Hz'}")
            rates.append((f"line {n}", hz))
            break
    # the steps in samples of the time column that gave the rate (where the rows lie: its gaps samples missing)
    placed: tuple[np.ndarray, str] | None = None
    if time_col is not None:
        tname = names[time_col] if names is not None else f"column {time_col + 1}"
        try:
            what, hz, by_time = _time_rate(path, table[:, time_col], line_of, time_unit or 1.0, name=tname)
            rates.append((what, hz))
            placed = by_time, f"time column {tname!r}"
        except _StampsRepeat:
            # a stamp per packet (a phone app's beside its sensor's own per-sample stamps) or times printed too
            # coarsely for the rate: another time column, else --fs, gives the rate (a newcomer, session 32: the
            # error said to leave the column out, and neither --fs nor the file's other time column helped)
            alt = _other_time(path, names, table, line_of, time_col) if names is not None else None
            if alt is not None:
                rates.append(alt[:2])
                placed = alt[2], alt[0]
                notes.append(f"{path}: time column {tname!r} repeats its value on most rows: not used; the rate "
                             f"from {alt[0]}")
            elif rates:
                notes.append(f"{path}: time column {tname!r} repeats its value on most rows: not used; the rate "
                             f"from {rates[0][0]}")
            else:
                raise
    if not rates:
        raise RecordError(f"{path}: needs its sampling rate{unsure}: give --fs, a line 'sampling rate: 250 Hz' before "
                          "the samples, or a time column")
    for what, other in rates[1:]:
        if abs(other - rates[0][1]) > RATE_TOLERANCE * rates[0][1]:
            raise RecordError(f"{path}: {rates[0][0]} says {rates[0][1]:g} Hz but {what} says {other:g} Hz; "
                              "make them agree")
    try:
        rate = check_record_fs(rates[0][1], f"{path}: sampling rate ({rates[0][0]})")
    except ValueError as err:
        raise RecordError(str(err)) from err
    # where each row lies: a time column's or the sample numbers' gaps of whole samples are samples missing
    steps: np.ndarray | None = None
    steps_from = ""
    if placed is not None:
        steps, steps_from = placed
    elif steps_of:
        steps, steps_from = steps_of[0], "the time column (left out for --fs)"
    if steps is not None and index_steps is not None and index_col is not None:
        # both place the rows: they must agree (a host that stamped the rows anew at the nominal rate hides the
        # counter's skips; it played with no warning, every beat after a skip early: a reviewer, session 49)
        differ = np.flatnonzero((np.mod(steps, index_span) if index_span else steps) != index_steps)
        if len(differ):
            i = int(differ[0])
            raise RecordError(f"{path}:{int(line_of[i + 1])}: {steps_from} steps {int(steps[i])} sample(s) there but "
                              f"the sample numbers {int(index_steps[i])} ({table[i, index_col]:g} to "
                              f"{table[i + 1, index_col]:g}): which is right? leave the other column out")
    elif index_steps is not None and index_col is not None:
        if index_span and (skips := np.flatnonzero(index_steps > 1)).size:
            # a counter that starts again every index_span samples cannot tell a loss from one a multiple of
            # index_span longer (a 2 s dropout under OpenBCI's 0-255 index was read as 244 samples: every beat after
            # it early, a reviewer, session 49)
            i = int(skips[0])
            raise RecordError(f"{path}:{int(line_of[i + 1])}: sample numbers go from {table[i, index_col]:g} to "
                              f"{table[i + 1, index_col]:g}: samples missing (or rows repeated), but a counter that "
                              f"starts again every {index_span} samples cannot tell how many "
                              f"({int(index_steps[i]) - 1}, or {index_span} more, or ...); a time column stamping each "
                              "sample can: export one, or cut the file there")
        steps, steps_from = index_steps, "the sample numbers"
    gaps = np.flatnonzero(steps > 1) if steps is not None else np.array([], dtype=np.int64)
    if steps is not None and len(gaps):
        longest = int(gaps[np.argmax(steps[gaps])])
        if (steps[longest] - 1) / rate > MAX_GAP_S:
            gap_s = (steps[longest] - 1) / rate
            raise RecordError(f"{path}:{int(line_of[longest + 1])}: a gap of {gap_s:.1f} s in {steps_from} (over "
                              f"{MAX_GAP_S:g} s: two recordings in one file?); cut the file there")
    # the unit: every source that says one must agree
    name_unit = _name_unit(lead_names[pick])[1] if names is not None else None
    meta_unit = next((t.meta[k] for k in ("unit", "units", "scale") if k in t.meta), None)
    declared = name_unit
    if meta_unit is not None:
        if name_unit is not None and unit_factor(meta_unit[1]) != unit_factor(name_unit):
            raise RecordError(f"{path}:{meta_unit[0]}: unit {meta_unit[1]!r} contradicts the column name "
                              f"{lead_names[pick]!r}")
        declared = declared or meta_unit[1]
    factor, unit = check_units(declared, units, where=f"{path}: column {lead_names[pick]!r}")
    x = table[:, col] * factor
    where = f"{path}: column {lead_names[pick]!r}"
    codes = np.isin(table[:, col], INT16_CODES)
    if codes.any() and not codes.all():
        # a 16-bit device's lead-off or overflow codes in its export: missing samples (signal loss), not +-32.8 mV of
        # signal played with no word (a newcomer, session 41: 2 s blocks of -32768 in a uV export every 20 s)
        first = int(line_of[np.flatnonzero(codes)[0]])
        x[codes] = np.nan
        notes.append(f"{where}: {int(codes.sum())} sample(s) of exactly -32768 or 32767 (a 16-bit device's lead-off "
                     f"or overflow code) from line {first}: played as missing samples (signal loss)")
    if len(x) < 2 * rate:
        raise RecordError(f"{path}: {len(x)} samples is less than 2 s at {rate:g} Hz")
    fin = x[np.isfinite(x)]
    if unit is None and len(fin) and bool(np.all(fin == np.round(fin))) and float(np.ptp(fin)) >= 5:
        # whole numbers and no unit: no ECG is written in whole millivolts (it would show nothing), so these are a
        # converter's counts (a 12-bit one's around 2,048) or whole uV; a 12-bit export was played as mV, 10-20 times
        # too large, its midscale "taken out" as a DC offset with a routine note (a newcomer, session 48)
        raise RecordError(f"{where}: whole numbers only ({fin.min():g} to {fin.max():g}) and no unit: not millivolts "
                          "(an ECG in whole mV would show nothing). Whole microvolts? state the unit (--units uV, or a "
                          "unit in the file's header). A converter's raw counts? export in mV or uV, its gain applied")
    note = check_amplitude(x, where=where, unit_known=unit is not None)
    big = np.flatnonzero(np.abs(np.nan_to_num(x)) > SAMPLE_MAX_MV)
    if len(big):
        # an ECG's spread on a large constant offset (a DC-coupled export: the electrodes' half-cell potential, some
        # 100-300 mV) is the ECG: the offset is taken out, with a warning (refused as "not possible", no way forward:
        # a newcomer, session 41); a sample beyond SAMPLE_MAX_MV around it is refused as before
        offset = float(np.nanmedian(x))
        if abs(offset) > SAMPLE_MAX_MV / 2:
            big = np.flatnonzero(np.abs(np.nan_to_num(x - offset)) > SAMPLE_MAX_MV)  # refused: the first of these
            if not len(big):
                x = x - offset
                notes.append(f"{where}: a constant offset of {offset:.4g} mV (a DC-coupled export) taken out")
    if len(big):
        n = int(line_of[big[0]])
        raise RecordError(f"{path}:{n}: {table[big[0], col]:g} {unit or 'mV'} is not possible for a surface ECG "
                          f"(beyond {SAMPLE_MAX_MV:g} mV); check the unit (--units) or the line")
    if note:
        notes.append(note)
    n_missing = int(missing[:, col].sum())
    if n_missing:
        notes.append(f"{where}: {n_missing} empty or NaN cell(s) from line {int(line_of[missing[:, col]][0])}: "
                     "played as missing samples (a run up to --bridge-s bridged, a longer one signal loss)")
    if t.blank:
        notes.append(f"{path}: {len(t.blank)} empty line(s) among the samples (from line {t.blank[0]}) skipped: the "
                     "samples after them follow without a gap (if they stand for missing samples, write an empty "
                     "cell or NaN there: signal loss)")
    if t.skipped:
        notes.append(f"{path}: line(s) {', '.join(map(str, t.skipped[:5]))} before the samples skipped "
                     "(neither metadata nor the header)")
    if len(gaps) and steps is not None:
        # a device's dropped packets: missing samples where they were (signal loss, or a short run bridged)
        pos = np.concatenate([[0], np.cumsum(steps)])
        full = np.full(int(pos[-1]) + 1, np.nan)
        full[pos] = x
        x = full
        lost = int((steps[gaps] - 1).sum())
        notes.append(f"{path}: {len(gaps)} gap(s) in {steps_from} from line {int(line_of[gaps[0] + 1])}: {lost} "
                     f"sample(s) missing ({lost / rate:.3g} s in all; a device's dropped packets?), played as missing "
                     "samples (a run up to --bridge-s bridged, a longer one signal loss)")
    name = _name_unit(lead_names[pick])[0] if names is not None else lead_names[pick]
    return Recording(path.stem, path, rate, name, x.astype(np.float32), notes=tuple(notes))


def _roles(path: Path, names: list[str] | None, table: np.ndarray, line_of: np.ndarray, fs: float | None,
           notes: list[str], clocks: set[int], steps_of: list[np.ndarray] | None = None,
           ) -> tuple[int | None, int | None, float | None, list[int]]:
    """(time column, sample-number column, seconds per time unit, lead columns).  ``clocks``: the columns of clock
    times (read as seconds): the first is the time column, whatever its name; another is refused.  A time column
    left out for ``--fs`` (its unit unknown) still places the rows: its steps in samples go into ``steps_of``."""
    ncols = table.shape[1]
    if clocks:
        first = min(clocks)
        if len(clocks) > 1:
            raise RecordError(f"{path}: columns {', '.join(str(c + 1) for c in sorted(clocks))} hold clock times; one "
                              "time column, please")
        leads = [c for c in range(ncols) if c != first and not (names is not None and _key(_name_unit(names[c])[0])
                                                                   in INDEX_NAMES)]
        index_col = next((c for c in range(ncols) if c != first and c not in leads), None)
        return first, index_col, 1.0, leads
    if names is not None:
        time_col = index_col = None
        time_unit: float | None = None
        leads = []
        # the time column: the first named as one whose unit is told (Shimmer's CAL+RAW export has its raw clock
        # ticks, no unit, before its Unix time in ms: the ticks were taken and the file refused, a reviewer, session
        # 48), else the first named as one
        named = [c for c, raw in enumerate(names) if _is_time_name(_key(_name_unit(raw)[0]))]
        told = [c for c in named if _time_scale(_name_unit(names[c])[1] or "") is not None]
        pref = told[0] if told else named[0] if named else None
        for c, raw in enumerate(names):
            k = _key(_name_unit(raw)[0])
            if c == pref:
                time_col = c
                unit = _time_name_unit(raw)
                time_unit = _time_scale(unit) if unit else None
                if unit and time_unit is None:
                    raise RecordError(f"{path}: time column {raw!r}: unit {unit!r} is not s, ms or us")
            elif index_col is None and k in INDEX_NAMES:
                index_col = c
            else:
                leads.append(c)
        if time_col is not None and time_unit is None:
            time_unit = _time_unit_from_step(path, table[:, time_col], names[time_col], notes, fs=fs)
            if time_unit is None:  # no unit tells its step a rate, and --fs gives it: the column gives no rate ...
                st = _gaps(path, table[:, time_col], line_of, names[time_col])
                if st is not None and steps_of is not None:
                    steps_of.append(st)
                time_col = None
        # a column in another channel's unit (Shimmer's raw counts 'no units' beside its calibrated mV, a heart rate in
        # bpm, SpO2 in %) is no lead where another is (the raw and calibrated LL-RA both read as lead II: ambiguous,
        # a reviewer, session 48)
        other = [c for c in leads if (m := UNIT_IN_NAME.search(names[c]))
                 and (m.group(1) or m.group(2)).strip().strip("\"'").lower() in OTHER_UNITS]
        if other and len(other) < len(leads):
            leads = [c for c in leads if c not in other]
        return time_col, index_col, time_unit, leads
    if ncols == 1:
        return None, None, None, [0]
    if ncols == 2:
        col0 = table[:, 0]
        d = np.diff(col0)
        if len(d) and np.all(d > 0):
            if np.allclose(d, 1.0) and np.allclose(col0, np.round(col0)):
                if fs is None:
                    raise RecordError(f"{path}:{int(line_of[0])}: the first column counts 0, 1, 2...: sample numbers "
                                      "or milliseconds? add a header line (e.g. 'sample,ecg_mV' or 'time_ms,ecg_mV') "
                                      "or give --fs")
                notes.append(f"{path}: first column read as sample numbers (steps of 1), rate from --fs")
                return None, 0, None, [1]
            unit0 = _time_unit_from_step(path, col0, "column 1", notes, fs=fs)
            if unit0 is None and (st := _gaps(path, col0, line_of, "column 1")) is not None and steps_of is not None:
                steps_of.append(st)
            return (0 if unit0 is not None else None), None, unit0, [1]
        raise RecordError(f"{path}:{int(line_of[0])}: two columns and no header: which is the ECG? add a header line "
                          "naming them (e.g. 'time_s,ecg_mV')")
    raise RecordError(f"{path}:{int(line_of[0])}: {ncols} columns and no header; add a header line naming them "
                      "(e.g. 'time_s,II,V5' in mV) and choose one with --lead")


def _time_name_unit(raw: str) -> str | None:
    """The unit a time column's name gives: in brackets or after it (``time (s)``, ``time_ms``), or the name itself
    (``ms``, ``min``: AcqKnowledge's), or its ending (``timeus``); None where it gives none."""
    base, unit = _name_unit(raw)
    k = _key(base)
    if unit is None and k in ("ms", "millis", "min", "mins", "minutes"):
        unit = k if k.startswith("min") else "ms"
    if unit is None and (m := re.search(r"(ms|us|µs|sec|s)$", k)) and k != m.group(1):
        unit = m.group(1)
    return unit


def _gaps(path: Path, col: np.ndarray, line_of: np.ndarray, name: str) -> np.ndarray | None:
    """... but still shows where samples are missing: the steps of a time column left out for ``--fs`` (its unit
    unknown, its steps in its own units) in samples (:func:`_steps`: a gap of whole samples is that many samples
    missing; a device's clock ticks with a 2 s dropout were played back to back, every beat after it 2 s early: a
    reviewer, session 48), a step back or an irregular one refused at its line.  None for a column whose stamps
    repeat (one per packet): it shows nothing."""
    d = np.diff(col)
    med = float(np.median(d)) if len(d) else 0.0
    if med <= 0:
        return None  # stamps that repeat (one per packet): they show nothing
    # (whole-ms stamps at 1,024 Hz step 0 or 1: no gap, the resolution)
    steps, bad, med, _ = _steps(d, med, short_ok=True)
    if bad is not None:
        raise RecordError(f"{path}:{int(line_of[bad + 1])}: time column {name!r} goes from {col[bad]:g} to "
                          f"{col[bad + 1]:g} (median step {med:g}, its unit unknown): a step back or irregular "
                          "sampling; cut the file there, or leave the time column out")
    return steps


def _base_step(d: np.ndarray, med: float) -> float:
    """The sampling step of a time column's steps ``d`` where most of them are gaps (over half the samples lost):
    the median of its shortest steps (up to 1.5 times the shortest), where they are at least a fifth of the steps and
    under two thirds of the median step ``med``; else ``med``.  (With 55 % of a 500 Hz file's samples lost at random
    the median step was two samples', and the file read at 331 Hz: a reviewer, session 49.)"""
    pos = d[d > 0]
    if not len(pos):
        return med
    short = pos[pos <= 1.5 * float(pos.min())]
    base = float(np.median(short))
    return base if len(short) >= 0.2 * len(d) and base < med / 1.5 else med


def _steps(d: np.ndarray, med: float, *, short_ok: bool = False) -> tuple[np.ndarray, int | None, float, float]:
    """Each step ``d`` of a time column in samples, the first step that is none (or None), the median step it was
    judged against (``med``, or :func:`_base_step`'s where most steps are gaps) and the printed resolution
    (:func:`_resolution`): a step within ``JUMP_TOLERANCE`` of the sampling step plus that resolution is one sample;
    a longer one that lies as near a whole number k of sampling steps (and 0.1 % of itself: clocks drift) is k:
    k - 1 samples missing (a device's dropped packets); a step back, or one between 1 and 1.5 steps off by more, is none
    (irregular sampling).  The sampling step is the mean of the one-sample steps (times printed to whole ms at 360 Hz
    step 2 or 3 ms: 2.78).  ``short_ok``: a step shorter than the sampling step (not back) is one sample too (a
    column whose unit is unknown, left out for ``--fs``: whole-ms stamps at 1,024 Hz step 0 or 1)."""
    med = _base_step(d, med)
    res = _resolution(d, med)
    tol = JUMP_TOLERANCE * med + res * (1 + 1e-6)
    one = np.abs(d - med) <= tol
    step = float(np.mean(d[one])) if one.any() else med
    k = np.maximum(np.rint(d / step), 1.0)
    ok = (d >= 0) & (np.abs(d - k * step) <= JUMP_TOLERANCE * step + res * (1 + 1e-6) + 1e-3 * np.abs(d))
    if short_ok:
        ok |= (d >= 0) & (d <= step)
    bad = np.flatnonzero(~ok)
    return k.astype(np.int64), (int(bad[0]) if len(bad) else None), med, res


def _is_time_name(k: str) -> bool:
    """Whether a column's name (its :func:`_key`, without a unit) names a time column: a time name, one starting with
    "time", or one holding "timestamp" (Shimmer's ``Shimmer_8A7E_Timestamp_Unix_CAL``, Polar's ``Phone timestamp``:
    the first was not read as time and the file refused as having no rate, a newcomer, session 48)."""
    return k in TIME_NAMES or k.startswith("time") or "timestamp" in k


class _StampsRepeat(RecordError):
    """A time column whose value repeats on most rows: it gives no rate (:func:`_time_rate`)."""


def _other_time(path: Path, names: list[str], table: np.ndarray, line_of: np.ndarray,
                skip: int) -> tuple[str, float, np.ndarray] | None:
    """The rate (:func:`_time_rate`) from the first column other than ``skip`` named as a time column that gives
    one, with that column's steps in samples, or None."""
    for c, raw in enumerate(names):
        base, unit = _name_unit(raw)
        k = _key(base)
        if c == skip or not _is_time_name(k):
            continue
        scale = _time_scale(unit) if unit else None
        try:
            if scale is None:
                if unit:
                    continue
                scale = _time_unit_from_step(path, table[:, c], raw, [])
                if scale is None:
                    continue
            what, rate, steps = _time_rate(path, table[:, c], line_of, scale, name=raw)
            return f"column {raw!r} {what.removeprefix('the time column ')}", rate, steps
        except RecordError:
            continue
    return None


AXIS_MIN_ROWS = 100  # a column that rises on every one of at least this many rows is no ECG


def _axes(names: list[str] | None, table: np.ndarray, leads: list[int]) -> list[int]:
    """The columns among ``leads`` that rise on every row, not named as an ECG lead: a time or sample axis under a
    name the reader does not know ("min", "Sample Time" before session 32, "counter"), never an ECG, whose samples go
    up and down within every beat (a lead coming off may decay steadily: falling is not enough).  Played, it showed
    no beat and raised asystole (a newcomer, session 32).  And, with a header or without, a packet counter: whole
    numbers that step up by one on every row but where they wrap to their least value (OpenBCI's sample index 0-255,
    BITalino's nSeq 0-15): an OpenBCI export played its counter as the lead, 58.6 bpm shown for 71.7 (a newcomer,
    session 48).  None under ``AXIS_MIN_ROWS`` rows."""
    if len(table) < AXIS_MIN_ROWS:
        return []
    axes = []
    for c in leads:
        v = table[:, c][np.isfinite(table[:, c])]
        d = np.diff(v)
        if len(d) < AXIS_MIN_ROWS - 1:
            continue
        if _counter(v, d) or (names is not None and bool(np.all(d > 0))
                              and not is_ecg_name(_name_unit(names[c])[0])):
            axes.append(c)
    return axes


def _counter(v: np.ndarray, d: np.ndarray) -> bool:
    """Whether ``v`` (``d``: its steps) is a wrapping counter: whole numbers, each step +1 or a wrap back to the least
    value, nine in ten steps +1 at least, and it wraps (a plain rising column is :func:`_axes`' other case)."""
    up = d == 1
    wrap = (d < 0) & (v[1:] == v.min())
    return bool(np.all(v == np.round(v)) and np.all(up | wrap) and wrap.any() and up.mean() >= 0.9)


# the extremes of a 16-bit converter: devices write them for a lead off or an overflow (CSV cells in the file's units)
INT16_CODES = (-32768.0, 32767.0)


def _flat(v: np.ndarray) -> bool:
    """Whether a column holds one value throughout (its empty cells and 16-bit lead-off codes aside), or none."""
    f = v[np.isfinite(v) & ~np.isin(v, INT16_CODES)]
    return f.size == 0 or bool(f.min() == f.max())


def _refuse_axis(path: Path, names: list[str] | None, axes: list[int]) -> NoReturn:
    """The refusal of a time or sample axis as the lead (the file's only column, or one asked for by name)."""
    said = ", ".join(repr(names[c]) if names is not None else f"'column {c + 1}'" for c in axes)
    raise RecordError(f"{path}: column(s) {said} rise on every row: a time or sample axis, not an ECG "
                      "lead; name the ECG column with --lead (a time column is read as such when named 'time_s', "
                      "'time_ms' or 'min')")


def _resolution(d: np.ndarray, med: float) -> float:
    """The printed resolution of a time column from its steps ``d`` (any unit): the smallest difference between
    two of its distinct steps (a column of whole milliseconds at 360 Hz steps by 2 and 3 ms: 1), 0 when every step
    is the same.  Rounded times make the steps differ by this much, whatever the sampling.  ``med``: the steps'
    median."""
    d = d[np.isfinite(d)]
    if med <= 0:
        return 0.0
    # steps to 1 % of the median (a finer print resolution is within the jump tolerance anyway; float noise of
    # clock times as seconds since 1970 is 1e-6 s), a gap's step is no rounding
    q = 0.01 * med
    k = np.unique(np.round(d[np.abs(d - med) <= 0.5 * med] / q))
    groups = np.split(k, np.flatnonzero(np.diff(k) > 2) + 1)  # a value's float noise may round either way
    centres = np.array([g.mean() for g in groups if len(g)])
    return float(np.min(np.diff(centres))) * q if len(centres) > 1 else 0.0


def _mean_step(col: np.ndarray) -> float:
    """The mean step of a time column: its span over its steps (the median step of times rounded to whole ms at
    128 Hz is 8 ms, 125 Hz; the span gives 7.8125 ms)."""
    t = col[np.isfinite(col)]
    return float((t[-1] - t[0]) / (len(t) - 1)) if len(t) > 1 else 0.0


def _time_unit_from_step(path: Path, col: np.ndarray, name: str, notes: list[str], *,
                         fs: float | None = None) -> float | None:
    """Seconds per unit of a time column without a stated unit, from its mean step: the steps of
    100-1000 Hz in s (1-10 ms) and in ms (1-10) do not overlap.  Only the bedside range: a device's clock ticks (a
    32,768 Hz counter stepping 128 at 256 Hz) read as us would be 7,812.5 Hz, and the record played 30 times too fast
    with a plausible heart rate (a newcomer, session 48, once recordings could state up to 10,000 Hz); a file above
    1,000 Hz names its time column's unit.  No unit fits: refused, naming the fix; or, with ``fs`` (``--fs``) given,
    None (a note: the column is not used, the rate is ``--fs``'s)."""
    step = _mean_step(col)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if step > 0 and FS_RANGE[0] <= 1 / (step * scale) <= FS_RANGE[1]:
            notes.append(f"{path}: time column {name!r} has no unit; read as {unit} (mean step {step:.6g}: "
                         f"about {1 / (step * scale):.4g} Hz)")
            return scale
    if fs is not None:
        notes.append(f"{path}: time column {name!r} has no unit and its mean step {step:g} is no sampling rate of "
                     f"{FS_RANGE[0]:g}-{FS_RANGE[1]:g} Hz in s, ms or us (a device's clock ticks?): not used; the "
                     "rate from --fs")
        return None
    raise RecordError(f"{path}: time column {name!r}: mean step {step:g} is no sampling rate of "
                      f"{FS_RANGE[0]:g}-{FS_RANGE[1]:g} Hz in s, ms or us; name its unit (e.g. 'time_ms'), or give "
                      "--fs (the column is then not used)")


def _time_rate(path: Path, col: np.ndarray, line_of: np.ndarray, scale: float, *,
               name: str) -> tuple[str, float, np.ndarray]:
    """The rate a time column gives, and its steps in samples (:func:`_steps`: where its rows lie): its samples over
    its span (not the median step: times printed to whole ms or to 0.1 ms step unevenly, 2 and 3 ms at 360 Hz, and
    the median would give 333 or 357 Hz); a whole number of Hz where one lies within the column's printed
    resolution.  A step backwards or one of no whole number of samples is refused at its line."""
    d = np.diff(col) * scale
    if not len(d):
        raise RecordError(f"{path}: a single row: no rate from the time column")
    step = _mean_step(col) * scale
    if step <= 0:
        raise RecordError(f"{path}: the time column does not increase (mean step {step:g} s)")
    med = float(np.median(d))
    if med == 0:
        # most rows repeat the stamp before them: a stamp per packet of samples (a phone app's 'Phone timestamp'
        # beside its sensor's own), not one per sample (a newcomer, session 27: "median step 0", no column named)
        raise _StampsRepeat(f"{path}: time column {name!r} repeats its value on most rows (one stamp per packet of "
                            "samples, or times printed too coarsely for the rate): it gives no sampling rate; give "
                            "--fs (the column is then not used)")
    steps, bad, med, res = _steps(d, med)
    if bad is not None:
        i = bad
        raise RecordError(f"{path}:{int(line_of[i + 1])}: time goes from {col[i]:g} to {col[i + 1]:g} (median step "
                          f"{med / scale:.6g}): a step back or irregular sampling; cut the file there, or leave the "
                          "time column out and give --fs")
    # gaps of whole samples (a device's dropped packets) are samples missing: the rate over the samples there were
    span = step * len(d)
    step = span / int(steps.sum())
    rate = 1.0 / step
    # the span is known to within the printed resolution (each end rounded by half of it), the rate as well
    if abs(rate - round(rate)) <= rate * max(res, 1e-9 * span) / span:
        rate = float(round(rate))
    # 6 significant digits: a time column printed to 0.1 ms gives 249.99999999999977 Hz for 250 Hz
    return f"the time column (lines {int(line_of[0])}-{int(line_of[-1])})", float(f"{rate:.6g}"), steps

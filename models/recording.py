"""What every reader returns, and the checks they share: :class:`Recording`, lead names, units, amplitudes.

A :class:`Recording` holds one lead in millivolts at the record's own sampling rate, its reference beat
annotations as AAMI classes, and the reader's ``notes`` (warnings: what it decided on clear evidence,
shown on stderr and in the run's summary).  AAMI classes follow ANSI/AAMI EC57: N (N L R e j),
S (A a J S), V (V E), F (F), Q (/ f Q); other annotation symbols (rhythm, noise and comment marks) are
not beats.  NaN samples are signal loss (a lead-off, a dropout, a segment without the lead).

Every problem with a file raises :class:`RecordError`, whose message names the file (and the line or
field where there is one) and what would fix it.

Lead names (:func:`choose_lead`) match exactly, then case-insensitively, then through the usual
aliases: MLII = II = ECG II = ML2 = Lead II = ECG Lead II (modified limb leads are taken for the limb lead), V1-V6
with or without an ``ECG``/``Lead`` prefix, ECG1 = ECG 1 = ECG_1 (a channel number, not lead I).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from ecgmon.core.limits import FS_RANGE

AAMI = {**dict.fromkeys("NLRej", "N"), **dict.fromkeys("AaJS", "S"), **dict.fromkeys("VE", "V"), "F": "F",
        **dict.fromkeys("/fQ", "Q")}
AAMI_CLASSES = ("N", "S", "V", "F", "Q")
DEFAULT_LEAD = "II"  # played when no lead is asked for and the record has it (MLII, ECG II, ...)

# plausibility of a surface ECG in mV: the spread between the 1st and 99th percentiles of its samples
# (robust to spikes) is 0.05-5 mV on any lead; beyond these bounds the unit (or the gain) is wrong
SPREAD_MAX_MV = 40.0  # 1 mV written in uV spreads ~1000; a stated unit: warned beyond this (artefact, gain)
SPREAD_IMPOSSIBLE_MV = 200.0  # a stated unit: refused beyond this (uV written as mV)
SPREAD_MIN_MV = 0.01  # 1 mV written in V spreads ~0.001 (refused without a unit, warned with one)
SAMPLE_MAX_MV = 100.0  # a single sample beyond this is not a surface ECG in mV (CSV cells)

UNITS_TO_MV = {"mv": 1.0, "millivolt": 1.0, "millivolts": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3,
               "microvolt": 1e-3, "microvolts": 1e-3, "v": 1e3, "volt": 1e3, "volts": 1e3, "nv": 1e-6}


class RecordError(ValueError):
    """A recording that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Recording:
    """One lead of a record.  ``ann_*``: reference beats only (AAMI classes), sample indices at ``fs``."""

    name: str
    path: Path  # the record's path without extension (WFDB), or the EDF/CSV file
    fs: float  # Hz
    lead: str  # the lead played, as the file names it
    signal: np.ndarray = field(repr=False)  # float32, mV; NaN = signal loss
    ann_samples: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))
    ann_classes: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, "<U1"))
    annotated: bool = False
    notes: tuple[str, ...] = ()  # warnings: what the reader decided on clear evidence
    second: Recording | None = field(default=None, repr=False)  # a second ECG lead of the bed (``--second-lead``)

    @property
    def seconds(self) -> float:
        return len(self.signal) / self.fs


# Einthoven's limb leads by their electrode pairs, as devices name their channels (Shimmer's ``ECG_LL-RA_24BIT``):
# lead I = LA - RA, II = LL - RA, III = LL - LA
ELECTRODE_PAIRS = {("la", "ra"): "i", ("ll", "ra"): "ii", ("ll", "la"): "iii"}


def lead_key(name: str) -> str:
    """The alias key of a lead name: ``"MLII"``, ``"ECG II"``, ``"ml2"`` -> ``"ii"``; ``"ECG 1"`` -> ``"ecg1"``; a
    limb lead by its electrode pair (``"LL-RA"``, ``"Shimmer_8A7E_ECG_LL-RA_24BIT_CAL"`` -> ``"ii"``: such a file's
    lead II was not found and its lead I played, a newcomer, session 48)."""
    m = re.search(r"(?<![a-z0-9])(la|ll)\s*-\s*(ra|la)(?![a-z0-9])", name.lower())
    if m and (pair := ELECTRODE_PAIRS.get((m.group(1), m.group(2)))) is not None:
        return pair
    s = re.sub(r"[\s_\-.:/]+", "", name.strip().lower())
    if m := re.fullmatch(r"(?:ecg|ekg)0*(\d+)", s):
        return f"ecg{m.group(1)}"
    # "ECG Lead II", "EKG lead II", and "lead" in other languages ("Ableitung I", "Derivación II", "Dérivation II")
    s = re.sub(r"^(?:(?:ecg|ekg|lead|ableitung|derivaci[oó]n|d[ée]rivation|derivazione|deriva[cç][aã]o|afleiding)"
               r"(?=.))+", "", s)
    s = re.sub(r"(?<=.)(?:ecg|ekg)$", "", s)  # "II-ECG"
    # MIT-BIH's modified limb leads (ML2), and the D names of Einthoven's leads in French, Spanish, Portuguese and
    # Italian use (DI, DII, DIII; not D1-D3, a digital channel's names)
    if m := re.fullmatch(r"ml(i{1,3}|[123])|d(i{1,3})", s):
        g = m.group(1) or m.group(2)
        s = {"1": "i", "2": "ii", "3": "iii"}.get(g, g)
    return s


# lead names (their :func:`lead_key`) that are ECG: a record's other signals (blood pressure, pleth, respiration)
# are never a second lead
# Holter and stress-test bipolar chest leads (CM5, CC5, CS2, MV1, ModV5) and right-sided and posterior chest
# leads (V4R, V7-V9) too: a Holter record whose respiration channel came first played it (a newcomer, session 32)
ECG_KEYS = frozenset({"i", "ii", "iii", "avr", "avl", "avf", "v", "ml5", "mcl", "ecg",
                      *(f"v{k}" for k in range(1, 10)), *(f"v{k}r" for k in range(1, 7)),
                      *(f"{p}{k}" for p in ("mcl", "cm", "cc", "cs", "mv", "modv") for k in range(1, 7))}) \
    | frozenset(f"ecg{k}" for k in range(1, 13))


def is_ecg_name(name: str) -> bool:
    """Whether a signal's name is an ECG lead's: a lead name (:data:`ECG_KEYS`, by :func:`lead_key`), or one that
    says ECG or EKG ("ECG", "ECG Lead II", "EKG-V2") and no other quantity measured through the ECG electrodes
    (Shimmer's ``ECG_RESP``: respiration by impedance; a status or impedance channel)."""
    if lead_key(name) in ECG_KEYS:
        return True
    return (re.search(r"ecg|ekg", name, re.IGNORECASE) is not None
            and re.search(r"resp|status|imped|temp", name, re.IGNORECASE) is None)


def second_lead(names: Sequence[str], first: int, usable: Sequence[bool] | None = None) -> int | None:
    """The index of a bed's second ECG lead among ``names``, the lead at ``first`` being played: the first other
    signal whose name is an ECG lead's (:data:`ECG_KEYS`, by :func:`lead_key`) and ``usable`` (a voltage), else
    None (a record of one ECG lead)."""
    ok = list(usable) if usable is not None else [True] * len(names)
    return next((i for i, n in enumerate(names) if i != first and ok[i] and lead_key(n) in ECG_KEYS), None)


def second_lead_ref(names: Sequence[str], played: str, usable: Sequence[bool] | None = None) -> str | None:
    """``#k`` (1-based position among ``names``) of the second ECG lead (:func:`second_lead`) beside the lead a
    recording plays (``played``: its name, or ``name (#k)`` where several signals share it), or None."""
    first = next((i for i, n in enumerate(names) if n == played or f"{n} (#{i + 1})" == played), None)
    if first is None:
        return None
    k = second_lead(names, first, usable)
    return None if k is None else f"#{k + 1}"


def choose_lead(names: Sequence[str], wanted: str | None, *, where: str,
                usable: Sequence[bool] | None = None) -> tuple[int, str | None]:
    """The index of the lead to play among ``names``, and a warning when it was not asked for by name.

    ``wanted``: a lead name (matched exactly, case-insensitively, then by :func:`lead_key`), or ``#k``, the
    k-th signal of the file (1-based: for files whose leads share a name, as the two ``ECG`` signals of the
    MIT-BIH Malignant Ventricular Ectopy Database); absent, it is an error listing the leads.  None: lead II (or
    an alias) when present, else the first ``usable`` lead (a voltage signal) named as an ECG lead
    (:func:`is_ecg_name`), else the first ``usable`` one, with a warning naming it.
    """
    if not names:
        raise RecordError(f"{where}: no signals")
    listing = ", ".join(repr(n) for n in names)
    ok = list(usable) if usable is not None else [True] * len(names)
    if wanted is not None and wanted.startswith("#"):
        k = wanted[1:]
        if not k.isdigit() or not 1 <= int(k) <= len(names):
            raise RecordError(f"{where}: no signal {wanted!r} (leads: {listing}); #k is the k-th signal, 1-based")
        return int(k) - 1, None
    target = wanted if wanted is not None else DEFAULT_LEAD
    for same in (lambda n: n == target, lambda n: n.casefold() == target.casefold(),
                 lambda n: lead_key(n) == lead_key(target)):
        # lead II by default only among the voltage signals (a digital or TTL channel is no lead, whatever its name)
        hits = [i for i, n in enumerate(names) if same(n) and (wanted is not None or ok[i])]
        if len(hits) == 1:
            return hits[0], None
        if len(hits) > 1:
            raise RecordError(f"{where}: lead {target!r} is ambiguous: {', '.join(f'#{i + 1}' for i in hits)} "
                              f"all match (leads: {listing}); ask for one by its exact name or its position "
                              f"(--lead '#{hits[0] + 1}')")
    if wanted is not None:
        raise RecordError(f"{where}: no lead {wanted!r} (leads: {listing}); choose one of these with --lead")
    # an ECG lead by its name before any other voltage signal (EEG, EMG, EOG, respiration in mV)
    first = next((i for i, u in enumerate(ok) if u and is_ecg_name(names[i])), None)
    if first is None:
        first = next((i for i, u in enumerate(ok) if u), None)
    if first is None:
        raise RecordError(f"{where}: no ECG lead among {listing} (no signal in V, mV or uV)")
    if len(names) == 1:
        return first, None
    return first, f"{where}: no lead II (leads: {listing}): playing {names[first]!r} (choose with --lead)"


def unit_factor(unit: str) -> float | None:
    """mV per ``unit`` (``"uV"`` -> 0.001), or None when ``unit`` is not a voltage."""
    return UNITS_TO_MV.get(unit.strip().lower().replace(" ", ""))


def check_units(declared: str | None, given: str | None, *, where: str) -> tuple[float, str | None]:
    """mV per sample unit, from the file's ``declared`` unit and the user's ``given`` one (``--units``),
    which must agree; (1.0, None) when neither is known (the caller checks the amplitude)."""
    fd = unit_factor(declared) if declared else None
    fg = unit_factor(given) if given else None
    if given and fg is None:
        raise RecordError(f"--units {given!r} is not a voltage unit (use mV, uV or V)")
    if declared and fd is None:
        raise RecordError(f"{where}: unit {declared!r} is not a voltage: not an ECG lead (choose another with --lead)")
    if fd is not None and fg is not None and fd != fg:
        raise RecordError(f"{where}: the file says {declared}, --units says {given}; drop --units or fix the file")
    f = fd if fd is not None else fg
    return (1.0, None) if f is None else (f, declared or given)


def check_amplitude(x_mv: np.ndarray, *, where: str, unit_known: bool) -> str | None:
    """Refuse samples impossible for a surface ECG in mV; a warning where they are implausible or the
    unit was not stated.

    The 1st-99th percentile spread of the finite samples: with no unit stated, it must lie between
    :data:`SPREAD_MIN_MV` (else volts) and :data:`SPREAD_MAX_MV` (else microvolts), and mV is read with
    a warning; with a unit stated (a WFDB or EDF header), beyond :data:`SPREAD_IMPOSSIBLE_MV` is refused
    (the gain or unit is wrong), beyond :data:`SPREAD_MAX_MV` warned (an ICU lead full of artefact), and under
    :data:`SPREAD_MIN_MV` but not flat warned (1 mV samples under a header's uV are 0.001 mV: the monitor would
    call the lead off and play on; a lead off the whole time looks the same, so it is not refused).
    """
    fin = x_mv[np.isfinite(x_mv)]
    if not len(fin):
        raise RecordError(f"{where}: no valid samples (all NaN: the lead was never connected)")
    lo, hi = np.percentile(fin, [1, 99])
    spread = float(hi - lo)
    fix = "state the unit (--units, or a unit in the file's header)" if not unit_known else \
        "check the file's gain and unit"
    if unit_known and SPREAD_MAX_MV < spread <= SPREAD_IMPOSSIBLE_MV:
        return (f"{where}: samples spread {spread:.4g} mV (1st-99th percentile), implausible for a surface ECG "
                "(artefact, or a wrong gain in the header?); played as the file says")
    if spread > (SPREAD_IMPOSSIBLE_MV if unit_known else SPREAD_MAX_MV):
        raise RecordError(f"{where}: samples spread {spread:.4g} mV (1st-99th percentile): not a surface ECG in mV"
                          f"{' (microvolts?)' if spread < 40000 else ''}; {fix}")
    if unit_known and 0 < spread < SPREAD_MIN_MV:
        return (f"{where}: samples spread {spread:.3g} mV (1st-99th percentile), implausibly small for a surface ECG "
                "(a lead off the whole time, or samples in mV under a unit of uV?); played as the file says")
    if not unit_known:
        if spread < SPREAD_MIN_MV:
            raise RecordError(f"{where}: samples spread {spread:.3g} mV (1st-99th percentile): too small for mV "
                              f"(volts?); {fix}")
        return f"{where}: no unit stated; read as mV (samples spread {spread:.3g} mV, plausible for mV)"
    return None


def finite_runs(x: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: the runs of finite samples in ``x``, in order (NaN runs are signal loss)."""
    ok = np.isfinite(x)
    if ok.all():
        return [(0, len(x))] if len(x) else []
    edges = np.flatnonzero(np.diff(np.concatenate([[False], ok, [False]]).astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def beats_from_symbols(samples: Sequence[int] | np.ndarray, symbols: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Reference beats (sample indices, AAMI classes) from annotation symbols; non-beat symbols dropped."""
    keep = [i for i, s in enumerate(symbols) if s in AAMI]
    idx = np.asarray(samples, dtype=np.int64)[keep] if keep else np.zeros(0, np.int64)
    return idx, np.asarray([AAMI[symbols[i]] for i in keep], dtype="<U1")


def decimation_factor(fs: float) -> int:
    """The integer ``q`` by which a recording sampled at ``fs`` Hz is decimated into the monitor's rates: the smallest
    that brings it to ``FS_RANGE[1]`` (1,000 Hz) or less, so that the new rate stays over 500 Hz and its Nyquist
    frequency over 250 Hz (2,048 Hz: 3, to 682.67 Hz; a fractional rate plays as a whole one does); 1 for a rate within
    the range."""
    return max(1, math.ceil(fs / FS_RANGE[1] - 1e-9))


def decimated(rec: Recording) -> Recording:
    """``rec`` at a rate the monitor takes: a recording sampled above ``FS_RANGE[1]`` (1,000 Hz: a Holter's or a
    sleep recorder's 1,024 or 2,048 Hz, a research amplifier's 2-10 kHz) decimated by :func:`decimation_factor`
    ``q``, with a note saying so; ``rec`` itself otherwise.  Its second lead likewise.

    Output sample ``j`` stands for input samples ``j q`` to ``j q + q - 1``: it is signal loss (NaN) where any of
    them is (a gap shorter than ``q`` samples stays a gap), and each run of valid output samples is filtered and
    decimated on its own from its input samples (``scipy.signal.resample_poly(x, 1, q)``: a zero-phase polyphase FIR,
    Kaiser window, cutoff at the new Nyquist frequency; its ends padded by the line through them), so no filter rings
    across a gap.  The filter's transition band lets a tone within about a tenth of the new Nyquist frequency above it
    fold back, attenuated, to within that much below it: over 225 Hz, above the ECG's band.  Reference beats map to
    ``round(index / q)``.  Nothing checks that the stated rate is the signal's own (as for rates within the range: a
    header's wrong rate plays the record too fast or too slow); the note names both rates."""
    q = decimation_factor(rec.fs)
    if q == 1:
        return rec
    x = np.asarray(rec.signal, dtype=np.float64)
    m = -(-len(x) // q)
    bad = ~np.isfinite(x)
    # output j lost where any of its q input samples is
    lost = np.pad(bad, (0, m * q - len(x))).reshape(m, q).any(axis=1) if bad.any() else np.zeros(m, dtype=bool)
    out = np.full(m, np.nan)
    for a, b in finite_runs(np.where(lost, np.nan, 0.0)):
        seg = x[a * q:min(b * q, len(x))]
        out[a:b] = seg[:1] if len(seg) == 1 else resample_poly(seg, 1, q, padtype="line")
    fs = rec.fs / q
    second = decimated(rec.second) if rec.second is not None else None
    ann = np.minimum(np.round(rec.ann_samples / q).astype(np.int64), max(0, m - 1)) if len(rec.ann_samples) \
        else rec.ann_samples
    note = (f"{rec.path}: lead {rec.lead!r} sampled at {rec.fs:g} Hz, above the monitor's {FS_RANGE[1]:g} Hz: "
            f"decimated by {q} to {fs:.6g} Hz as it was read (anti-aliased)")
    return replace(rec, fs=fs, signal=out.astype(np.float32), ann_samples=ann, second=second,
                   notes=(*rec.notes, note) if note not in rec.notes else rec.notes)

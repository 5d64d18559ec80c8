"""The device payload contract: JSON or compact binary, told apart by their first bytes.

JSON (UTF-8)::

    {"device": "bed01", "seq": 17, "fs": 250, "t0": 1764000000.25, "samples": [0.12, 0.15, ...]}

``device`` is optional (the topic names the device; when present it must match), ``seq``
counts chunks from 0 per device, ``fs`` is in Hz (100-1000), ``t0`` is the first
sample's time in seconds (Unix time, or any clock that is continuous per device), and
``samples`` are millivolts.  ``"simulated": true`` (optional, a boolean) says the samples come from a
simulator or a device in demonstration mode, not from a patient: the monitor labels that bed SIMULATED
everywhere it shows or writes it (as bedside monitors mark their demonstration mode, so that nobody takes the
waveforms for a patient's).

``t0`` must be plausible as seconds (:func:`t0_problem`, checked on arrival, each rejection counted
per device and reason, never entering the latency figures): at or above 1e11 it is milliseconds or
microseconds (``t0-not-seconds``); from 2000-01-01 (946684800) on it is Unix time and must lie within
a day ahead (``t0-future``) and a week behind (``t0-past``) the monitor's clock; below that it is the
device's own clock (seconds since it started) and is taken as it is.

A device that reboots may restart ``seq`` at 0 (its clock going on, or restarting too): the monitor
tells a reboot from a duplicate by ``t0`` (see :mod:`ecgmon.monitor.streams`) and starts a new stream
for the bed at once, with a signal-loss alarm for the real gap only.

Binary (little-endian), a 36-byte header then the samples::

    offset size  field
    0      4     magic  b"ECGB"
    4      1     version (1)
    5      1     dtype: 1 = int16 (value = count * scale mV), 2 = float32 (mV)
    6      2     flags  uint16: bit 0 = simulated (as in JSON); other bits reserved (0, ignored)
    8      8     seq    uint64
    16     4     fs     float32, Hz
    20     4     scale  float32, mV per int16 count (ignored for float32)
    24     8     t0     float64, seconds
    32     4     n      uint32, number of samples
    36     ...   n samples (int16 or float32)

Two leads (a bedside device records several; the monitor reads a second lead for its lethal alarms:
:class:`ecgmon.monitor.lethal.LeadFusion`).  JSON: ``"leads": {"II": [...], "V": [...]}`` instead of
``samples``, one array per lead, of equal lengths (the leads of a packet are sampled together), ``null`` where
that lead has no sample (its electrode off, its amplifier saturated: that lead's signal loss, not the packet's).
Binary: version 2, the same 36-byte header (``n`` samples per lead), then::

    36     1     channels C (1-12)
    37     1     L, the length of the lead names
    38     L     the C lead names, UTF-8, separated by ","
    38+L   ...   n x C samples, interleaved per sample (s0 lead 0, s0 lead 1, s1 lead 0, ...); int16 -32768 or a
                 float32 NaN where that lead has no sample

The packet's primary lead (scored, shown) is its lead named II or MLII, else its first; its second lead the first
other one; further leads are read and checked but not used.  A version-1 payload or ``samples`` is one lead, whose
samples must all be finite, as before.  Lead names are 1-16 characters of ``A-Z a-z 0-9 + - _``.

A payload that breaks the contract raises :class:`PayloadError` (and nothing else), whose
``reason`` is a short stable code used to count rejections per device.
"""

from __future__ import annotations

import functools
import json
import math
import re
import struct
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecgmon.core.limits import FS_RANGE

MAGIC = b"ECGB"
HEADER = struct.Struct("<4sBBHQffdI")
DTYPE_INT16, DTYPE_FLOAT32 = 1, 2
FLAG_SIMULATED = 1  # binary header flags, bit 0
MAX_PAYLOAD = 64 * 1024  # bytes
MAX_SECONDS = 10.0  # longest chunk accepted, seconds of signal
MAX_ABS_MV = 20.0  # a surface ECG never reaches this; larger values are corrupt

# \Z, not $ (which lets one trailing newline through: "bed01\n" was a device); a letter or digit at least ("." and
# ".." were devices, names that read as folders; a fuzzer, session 38)
DEVICE_RE = re.compile(r"^(?=.*[A-Za-z0-9])[A-Za-z0-9_.-]{1,64}\Z")
LEAD_RE = re.compile(r"^[A-Za-z0-9+_-]{1,16}\Z")
MAX_LEADS = 12
PRIMARY_LEADS = ("II", "MLII")  # the lead the real-ECG model was fitted on (MIT-BIH's MLII is a lead II)
INT16_MISSING = -32768  # binary version 2, int16: this lead has no sample here
T0_NOT_SECONDS = 1e11  # s (the year 5138): a t0 this large is in milliseconds (1.7e12) or microseconds
T0_UNIX_FROM = 946_684_800.0  # 2000-01-01 in Unix seconds: below, t0 is the device's own clock
T0_MAX_AHEAD_S = 86_400.0  # a Unix t0 more than a day ahead of the monitor's clock is wrong
T0_MAX_BEHIND_S = 7 * 86_400.0  # ... or more than a week behind


def t0_problem(t0: float, now: float) -> str | None:
    """The rejection reason when ``t0`` is not plausible as seconds at the monitor's time ``now``
    (Unix seconds), else None (see the module docstring)."""
    if t0 >= T0_NOT_SECONDS:
        return "t0-not-seconds"
    if t0 >= T0_UNIX_FROM:
        if t0 > now + T0_MAX_AHEAD_S:
            return "t0-future"
        if t0 < now - T0_MAX_BEHIND_S:
            return "t0-past"
    return None


class PayloadError(ValueError):
    """A rejected payload.  ``reason`` is a short code (e.g. ``bad-json``, ``non-finite``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Packet:
    """A decoded, validated payload."""

    device: str | None
    seq: int
    fs: float
    t0: float
    samples: np.ndarray  # float32, mV; the primary lead's (NaN only in a two-lead packet: that lead's lost samples)
    simulated: bool = False  # a simulator's (or demonstration mode's) samples, not a patient's
    second: np.ndarray | None = None  # float32 mV, the second lead's (NaN: lost samples); None: one lead
    leads: tuple[str, ...] = ()  # the names of the primary and second lead; () for a one-lead payload


def _finite(v: int | float) -> bool:
    """Whether ``v`` is a finite number a float holds: a JSON integer of 309 digits or more is not (``math.isfinite``
    raises ``OverflowError`` on it: one such ``fs`` or ``t0`` stopped the whole monitor, a fuzzer's, session 38)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _short(v: object) -> str:
    """``repr(v)``, at most 40 characters (a bad value is named in the alarm, not copied into it)."""
    r = repr(v)
    return r if len(r) <= 40 else f"{r[:37]}..."


def _check_meta(device: str | None, seq: object, fs: object, t0: object, n: int) -> tuple[int, float, float]:
    """The checks of :func:`_validate` that do not look at the samples' values (``n``: how many there are);
    (seq, fs, t0) as int and floats."""
    if device is not None and (not isinstance(device, str) or not DEVICE_RE.match(device)):
        raise PayloadError("bad-device", "device must be 1-64 characters of A-Z a-z 0-9 _ . -")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0 or seq >= 2**64:
        raise PayloadError("bad-seq", f"seq must be an integer 0 .. 2**64 - 1 (uint64), got {_short(seq)}")
    if isinstance(fs, bool) or not isinstance(fs, int | float) or not _finite(fs):
        raise PayloadError("bad-fs", f"fs must be a number, got {_short(fs)}")
    if not FS_RANGE[0] <= fs <= FS_RANGE[1]:
        raise PayloadError("bad-fs", f"fs {fs} Hz is outside {FS_RANGE[0]:g}-{FS_RANGE[1]:g} Hz")
    if isinstance(t0, bool) or not isinstance(t0, int | float) or not _finite(t0) or t0 < 0:
        raise PayloadError("bad-t0", f"t0 must be a finite non-negative number of seconds, got {_short(t0)}")
    if n == 0:
        raise PayloadError("empty", "no samples")
    if n > MAX_SECONDS * fs:
        raise PayloadError("too-many-samples", f"{n} samples is more than {MAX_SECONDS:g} s at {fs} Hz")
    return int(seq), float(fs), float(t0)


MIN_INT16_RANGE_MV = 1.0  # an int16 scale whose 32,767 counts reach less than this cannot carry an ECG
_SCALE_RULE = f"int16 scale must be {MIN_INT16_RANGE_MV / 32767:.3g}-{MAX_ABS_MV:g} mV per count"


def _scale_ok(scale: float) -> bool:
    """An int16 scale (mV per count) that can be right: no more than the sample range (a scale of 1e38 made count
    times scale overflow to infinity: 'non-finite' from decode, 'out-of-range' from decode_many), and large enough
    for 32,767 counts to reach ``MIN_INT16_RANGE_MV`` (1.4e-45, an integer written into the float field, or 1e-6
    played as "leads off" rather than refused: a newcomer, session 39)."""
    return math.isfinite(scale) and MIN_INT16_RANGE_MV / 32767 <= scale <= MAX_ABS_MV


def _non_finite() -> PayloadError:
    return PayloadError("non-finite", "NaN or infinite sample")


def _out_of_range() -> PayloadError:
    return PayloadError("out-of-range", f"sample beyond +/-{MAX_ABS_MV:g} mV")


def _validate(device: str | None, seq: object, fs: object, t0: object, samples: np.ndarray, *,
              simulated: bool = False) -> Packet:
    iseq, ffs, ft0 = _check_meta(device, seq, fs, t0, samples.size)
    if not np.isfinite(samples).all():
        raise _non_finite()
    if np.abs(samples).max() > MAX_ABS_MV:
        raise _out_of_range()
    return Packet(device, iseq, ffs, ft0, samples.astype(np.float32, copy=False), simulated)


def _validate_leads(device: str | None, seq: object, fs: object, t0: object, names: Sequence[object],
                    x: np.ndarray, *, simulated: bool = False) -> Packet:
    """A multi-lead payload: ``x`` (n, C) float, NaN where a lead has no sample, ``names`` its C lead names."""
    if not 1 <= len(names) <= MAX_LEADS:
        raise PayloadError("bad-leads", f"1-{MAX_LEADS} leads, got {len(names)}")
    if not all(isinstance(n, str) and LEAD_RE.match(n) for n in names) or len(set(names)) != len(names):
        raise PayloadError("bad-leads", "lead names must be distinct, 1-16 characters of A-Z a-z 0-9 + - _")
    iseq, ffs, ft0 = _check_meta(device, seq, fs, t0, x.shape[0])
    if np.isinf(x).any():
        raise _non_finite()
    with np.errstate(invalid="ignore"):
        if (np.abs(x) > MAX_ABS_MV).any():
            raise _out_of_range()
    lead_names = [str(n) for n in names]
    first = next((k for k, n in enumerate(lead_names) if n.upper() in PRIMARY_LEADS), 0)
    other = next((k for k in range(len(lead_names)) if k != first), None)
    samples = np.ascontiguousarray(x[:, first], dtype=np.float32)
    if other is None:
        return Packet(device, iseq, ffs, ft0, samples, simulated, None, (lead_names[first],))
    return Packet(device, iseq, ffs, ft0, samples, simulated, np.ascontiguousarray(x[:, other], dtype=np.float32),
                  (lead_names[first], lead_names[other]))


def decode(data: bytes, *, max_size: int = MAX_PAYLOAD) -> Packet:
    """Decode and validate one payload (JSON or binary).  Raises only :class:`PayloadError`."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PayloadError("bad-type", f"payload must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_size:
        raise PayloadError("too-large", f"{len(data)} bytes exceeds the {max_size}-byte limit")
    try:
        if data[:4] == MAGIC:
            return _decode_binary(data)
        if data.lstrip()[:1] == b"{":
            return _decode_json(data)
    except PayloadError:
        raise
    except Exception as err:  # a check this module lacks: still one bad payload, never an error of the monitor's
        raise PayloadError("malformed", f"{type(err).__name__}: {str(err)[:120]}") from err
    raise PayloadError("unknown-format", "neither JSON (starts with '{') nor binary (starts with ECGB)")


def _binary_header(data: bytes) -> tuple[int, int, float, float, float, int, bool]:
    """A version-1 binary payload's header, checked: (dtype, seq, fs Hz, scale, t0 s, n samples, simulated).  The
    samples' values are not looked at."""
    if len(data) < HEADER.size:
        raise PayloadError("truncated", f"{len(data)} bytes is shorter than the {HEADER.size}-byte header")
    _, version, dtype, flags, seq, fs, scale, t0, n = HEADER.unpack_from(data)
    if version != 1:
        raise PayloadError("bad-version", f"binary version {version} is not supported (expected 1 or 2)")
    width = 2 if dtype == DTYPE_INT16 else 4 if dtype == DTYPE_FLOAT32 else 0
    if not width:
        raise PayloadError("bad-dtype", f"dtype {dtype} is not 1 (int16) or 2 (float32)")
    if len(data) != HEADER.size + n * width:
        raise PayloadError("truncated", f"header says {n} samples but {len(data) - HEADER.size} bytes follow")
    if dtype == DTYPE_INT16 and not _scale_ok(scale):
        raise PayloadError("bad-scale", _SCALE_RULE + f", got {scale}")
    seq, fs, t0 = _check_meta(None, seq, float(fs), t0, n)
    return dtype, seq, fs, scale, t0, n, bool(flags & FLAG_SIMULATED)


def _decode_binary(data: bytes) -> Packet:
    if len(data) > 4 and data[4] == 2:
        return _decode_binary2(data)
    dtype, seq, fs, scale, t0, n, simulated = _binary_header(data)
    if dtype == DTYPE_INT16:
        samples = np.frombuffer(data, "<i2", n, HEADER.size).astype(np.float32) * np.float32(scale)
    else:
        samples = np.frombuffer(data, "<f4", n, HEADER.size).astype(np.float32)
    return _validate(None, seq, fs, t0, samples, simulated=simulated)


def _decode_binary2(data: bytes) -> Packet:
    """Binary version 2: several leads (module docstring)."""
    if len(data) < HEADER.size + 2:
        raise PayloadError("truncated", f"{len(data)} bytes is shorter than the version-2 header")
    _, _, dtype, flags, seq, fs, scale, t0, n = HEADER.unpack_from(data)
    width = 2 if dtype == DTYPE_INT16 else 4 if dtype == DTYPE_FLOAT32 else 0
    if not width:
        raise PayloadError("bad-dtype", f"dtype {dtype} is not 1 (int16) or 2 (float32)")
    channels, name_len = data[HEADER.size], data[HEADER.size + 1]
    body = HEADER.size + 2 + name_len
    if not 1 <= channels <= MAX_LEADS:
        raise PayloadError("bad-leads", f"1-{MAX_LEADS} channels, got {channels}")
    if len(data) != body + n * channels * width:
        raise PayloadError("truncated", f"header says {n} samples x {channels} leads but {len(data) - body} bytes "
                                        "follow the lead names")
    try:
        names = data[HEADER.size + 2: body].decode("utf-8").split(",")
    except UnicodeDecodeError as err:
        raise PayloadError("bad-leads", "lead names are not UTF-8") from err
    if len(names) != channels:
        raise PayloadError("bad-leads", f"{len(names)} lead names for {channels} channels")
    if dtype == DTYPE_INT16:
        if not _scale_ok(scale):
            raise PayloadError("bad-scale", _SCALE_RULE + f", got {scale}")
        raw = np.frombuffer(data, "<i2", n * channels, body)
        x = raw.astype(np.float32) * np.float32(scale)
        x[raw == INT16_MISSING] = np.nan
    else:
        x = np.frombuffer(data, "<f4", n * channels, body).astype(np.float32)
    return _validate_leads(None, seq, float(fs), t0, names, x.reshape(n, channels),
                           simulated=bool(flags & FLAG_SIMULATED))


def decode_many(payloads: Sequence[bytes], *, max_size: int = MAX_PAYLOAD) -> list[Packet | PayloadError]:
    """:func:`decode` for many payloads at once: for each, the packet or the :class:`PayloadError` that
    :func:`decode` raises for it (the same reason).  Binary payloads' samples are converted and checked
    (finite, within +/-``MAX_ABS_MV``) for all of them together, with no Python per sample or per packet
    beyond reading its header; JSON payloads are decoded one by one.  Each packet's samples are its own array."""
    if len(payloads) < 4:  # the batch's fixed cost is not worth it
        return [_decode_or_error(d, max_size) for d in payloads]
    out: list[Packet | PayloadError] = []
    # per dtype: (index in out, header fields, payload) of the binary payloads whose header is good
    groups: dict[int, list[tuple[int, int, float, float, float, int, bytes, bool]]] = {DTYPE_INT16: [],
                                                                                        DTYPE_FLOAT32: []}
    for i, data in enumerate(payloads):
        try:
            if isinstance(data, bytes) and data[:4] == MAGIC and len(data) <= max_size and data[4:5] != b"\x02":
                dtype, seq, fs, scale, t0, n, simulated = _binary_header(data)
                groups[dtype].append((i, seq, fs, scale, t0, n, data, simulated))
                out.append(_PENDING)
            else:
                out.append(decode(data, max_size=max_size))
        except PayloadError as err:
            out.append(err)
    for dtype, group in groups.items():
        if not group:
            continue
        ns = np.fromiter((g[5] for g in group), np.int64, len(group))
        ends = np.cumsum(ns)
        starts = ends - ns
        if dtype == DTYPE_INT16:
            raw = np.frombuffer(b"".join([memoryview(g[6])[HEADER.size:] for g in group]), "<i2")
            scales = np.fromiter((g[3] for g in group), np.float32, len(group))
            x = raw.astype(np.float32) * np.repeat(scales, ns)
            bad_finite = np.zeros(len(group), bool)  # int16 counts times a finite positive scale
        else:
            x = np.frombuffer(b"".join([memoryview(g[6])[HEADER.size:] for g in group]), "<f4").astype(np.float32)
            bad_finite = np.logical_or.reduceat(~np.isfinite(x), starts)
        with np.errstate(invalid="ignore"):
            peak = np.maximum.reduceat(np.abs(x), starts)
        for k, (i, seq, fs, _, t0, _, _, simulated) in enumerate(group):
            if bad_finite[k]:
                out[i] = _non_finite()
            elif peak[k] > MAX_ABS_MV:
                out[i] = _out_of_range()
            else:
                out[i] = Packet(None, seq, fs, t0, x[starts[k]:ends[k]].copy(), simulated)
    return out


_PENDING = PayloadError("pending", "decoded with its group")


def _decode_or_error(data: bytes, max_size: int) -> Packet | PayloadError:
    try:
        return decode(data, max_size=max_size)
    except PayloadError as err:
        return err


class _Twice(dict[str, object]):
    """A JSON object that gave a key more than once (``twice``: those keys); json keeps the last value silently."""

    twice: list[str]


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    out = _Twice(d)
    out.twice = sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)  # linear: 6,000 keys in 2 ms
    return out


def _decode_json(data: bytes) -> Packet:
    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_pairs)
    except PayloadError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise PayloadError("bad-json", str(err)[:120]) from err
    if not isinstance(obj, dict):
        raise PayloadError("bad-json", "top level must be an object")
    if isinstance(obj, _Twice):
        raise PayloadError("bad-json", f"{', '.join(map(repr, obj.twice))} given twice: which one is meant?")
    if "leads" in obj:
        return _decode_json_leads(obj)
    missing = {"seq", "fs", "t0", "samples"} - obj.keys()
    if missing:
        raise PayloadError("missing-field", ", ".join(sorted(missing)))
    s = obj["samples"]
    if not isinstance(s, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in s):
        raise PayloadError("bad-samples", "samples must be a list of numbers")
    try:
        arr = np.asarray(s, dtype=np.float64)
    except (OverflowError, ValueError) as err:
        raise PayloadError("bad-samples", str(err)[:120]) from err
    simulated = obj.get("simulated", False)
    if not isinstance(simulated, bool):
        raise PayloadError("bad-simulated", f"simulated must be true or false, got {simulated!r}")
    return _validate(obj.get("device"), obj["seq"], obj["fs"], obj["t0"], arr, simulated=simulated)


def _decode_json_leads(obj: dict[str, object]) -> Packet:
    """A JSON payload with ``leads`` (module docstring)."""
    if "samples" in obj:
        raise PayloadError("bad-leads", "samples and leads together: one lead is samples, several are leads")
    missing = {"seq", "fs", "t0"} - obj.keys()
    if missing:
        raise PayloadError("missing-field", ", ".join(sorted(missing)))
    leads = obj["leads"]
    if not isinstance(leads, dict) or not leads:
        raise PayloadError("bad-leads", "leads must be an object of lead name: samples")
    if isinstance(leads, _Twice):
        raise PayloadError("bad-leads", f"lead {', '.join(map(repr, leads.twice))} given twice")
    arrays = list(leads.values())
    if not all(isinstance(a, list) and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool))
                                           for v in a) for a in arrays):
        raise PayloadError("bad-samples", "each lead's samples must be a list of numbers or null")
    if len({len(a) for a in arrays}) != 1:
        raise PayloadError("bad-leads", "the leads of a packet must have the same number of samples")
    try:
        x = np.array([[math.nan if v is None else v for v in a] for a in arrays], dtype=np.float64).T
    except (OverflowError, ValueError) as err:
        raise PayloadError("bad-samples", str(err)[:120]) from err
    simulated = obj.get("simulated", False)
    if not isinstance(simulated, bool):
        raise PayloadError("bad-simulated", f"simulated must be true or false, got {simulated!r}")
    return _validate_leads(obj.get("device"), obj["seq"], obj["fs"], obj["t0"], list(leads), x,  # type: ignore[arg-type]
                           simulated=simulated)


def _reject_constant(name: str) -> float:
    raise PayloadError("non-finite", f"{name} is not allowed in JSON payloads")


def encode_json(device: str, seq: int, fs: float, t0: float, samples: np.ndarray, *, simulated: bool = False,
                ) -> bytes:
    obj: dict[str, object] = {"device": device, "seq": seq, "fs": fs, "t0": t0}
    if simulated:
        obj["simulated"] = True
    obj["samples"] = [round(float(v), 5) for v in samples]
    return json.dumps(obj, separators=(",", ":")).encode()


def encode_binary(seq: int, fs: float, t0: float, samples: np.ndarray, *, dtype: str = "int16",
                  scale: float = 0.001, simulated: bool = False) -> bytes:
    """Binary payload; int16 stores ``round(mV / scale)`` (default 1 uV resolution, +/-32 mV range)."""
    x = np.asarray(samples, dtype=np.float64)
    if dtype == "int16":
        body = np.clip(np.round(x / scale), -32768, 32767).astype("<i2").tobytes()
        code = DTYPE_INT16
    elif dtype == "float32":
        body, code, scale = x.astype("<f4").tobytes(), DTYPE_FLOAT32, 1.0
    else:
        raise ValueError(f"dtype must be 'int16' or 'float32', got {dtype!r}")
    flags = FLAG_SIMULATED if simulated else 0
    return HEADER.pack(MAGIC, 1, code, flags, seq, fs, scale, t0, len(x)) + body


def encode_leads(fmt: str, device: str, seq: int, fs: float, t0: float, leads: dict[str, np.ndarray], *,
                 scale: float = 0.001, simulated: bool = False) -> bytes:
    """A multi-lead payload (JSON ``leads`` or binary version 2): ``leads`` maps lead names to equal-length
    arrays in mV, NaN where that lead has no sample.  ``fmt``: json | int16 | float32."""
    names = list(leads)
    x = np.column_stack([np.asarray(v, dtype=np.float64) for v in leads.values()])
    if fmt == "json":
        obj: dict[str, object] = {"device": device, "seq": seq, "fs": fs, "t0": t0}
        if simulated:
            obj["simulated"] = True
        obj["leads"] = {k: [None if not math.isfinite(v) else round(float(v), 5) for v in x[:, i]]
                        for i, k in enumerate(names)}
        return json.dumps(obj, separators=(",", ":")).encode()
    if fmt == "int16":
        missing = ~np.isfinite(x)
        counts = np.clip(np.round(np.where(missing, 0.0, x) / scale), -32767, 32767)
        body = np.where(missing, INT16_MISSING, counts).astype("<i2").tobytes()
        code = DTYPE_INT16
    elif fmt == "float32":
        body, code, scale = x.astype("<f4").tobytes(), DTYPE_FLOAT32, 1.0
    else:
        raise ValueError(f"format must be json, int16 or float32, got {fmt!r}")
    table = ",".join(names).encode()
    flags = FLAG_SIMULATED if simulated else 0
    return (HEADER.pack(MAGIC, 2, code, flags, seq, fs, scale, t0, x.shape[0]) + bytes((len(names), len(table)))
            + table + body)


def encode(fmt: str, device: str, seq: int, fs: float, t0: float, samples: np.ndarray, *,
           simulated: bool = False) -> bytes:
    """``fmt``: json | int16 | float32; ``simulated``: mark the payload as a simulator's (module docstring)."""
    if fmt == "json":
        return encode_json(device, seq, fs, t0, samples, simulated=simulated)
    return encode_binary(seq, fs, t0, samples, dtype=fmt, simulated=simulated)


@functools.lru_cache(maxsize=16384)  # every message asks, for a ward's few thousand topics
def device_from_topic(topic: str, topic_filter: str) -> str | None:
    """The device id: the topic level matched by the filter's first ``+``; None when the topic does not match."""
    t, f = topic.split("/"), topic_filter.split("/")
    dev = None
    for i, lev in enumerate(f):
        if lev == "#":
            break
        if i >= len(t):
            return None
        if lev == "+":
            if dev is None:
                dev = t[i]
        elif lev != t[i]:
            return None
    else:
        if len(t) != len(f):
            return None
    return dev if dev is not None and DEVICE_RE.match(dev) else None

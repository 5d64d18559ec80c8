"""Render ECG5000 beats into continuous per-patient ECG signals with a realistic rhythm.

Each patient (bed) gets a share of the chosen beats (by default the product protocol's
test split, never training beats), ordered into a rhythm: stretches of normal beats
broken by abnormal episodes - isolated ectopics, couplets and runs (the mix is
configurable).  Each beat is stretched over its own RR interval, drawn around the
patient's heart rate (55-110 bpm) with beat-to-beat variability and a respiratory
modulation.  The renderer is deterministic for a seed.

A beat occupies samples ``[start, start + rr * fs)``; sample ``n`` reads the beat at
position ``u = (n - start) / (rr * fs) * 140`` by linear interpolation, with the next
beat's first sample closing the interval so the signal is continuous.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ecgmon.core.limits import BEAT_LEN, check_fs, chunk_size
from ecgmon.core.messages import Chunk, TrueBeat
from ecgmon.models.data import CLASS_NAMES, NORMAL


@dataclass(frozen=True, slots=True)
class RhythmConfig:
    """Rhythm model.  Heart rate in bpm; variability as a fraction of RR; episode mix as probabilities."""

    hr_range: tuple[float, float] = (55.0, 110.0)
    rr_jitter: float = 0.03  # beat-to-beat standard deviation, fraction of RR
    resp_mod: float = 0.03  # respiratory sinus arrhythmia amplitude, fraction of RR
    resp_period_s: float = 4.0
    mix: tuple[float, float, float] = (0.6, 0.25, 0.15)  # isolated, couplet, run (3-6 beats)
    gain_mv: float = 1.0  # signal = gain * z-units + offset
    noise_mv: float = 0.0  # white noise standard deviation added to the signal


@dataclass(slots=True)
class PatientPlan:
    """One patient's rendered stream: the beat sequence with its timing and the signal."""

    patient: str
    refs: np.ndarray  # pool rows in playing order
    labels: np.ndarray
    starts: np.ndarray  # absolute sample index (float) of each beat's start
    rr_s: np.ndarray
    fs: float
    signal: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))

    def truth(self) -> list[TrueBeat]:
        return [TrueBeat(float(s), CLASS_NAMES[int(lab)], int(lab) != NORMAL, int(r))
                for s, lab, r in zip(self.starts, self.labels, self.refs, strict=True)]


def _episodes(normal: list[int], abnormal: list[int], mix: tuple[float, float, float],
              rng: np.random.Generator) -> list[int]:
    """Interleave normal and abnormal rows as a rhythm, consuming both lists entirely."""
    out: list[int] = []
    # the mean episode length sets how many episodes the abnormal beats form
    probs = np.asarray(mix, dtype=float) / sum(mix)
    sizes = []
    remaining = len(abnormal)
    while remaining > 0:
        kind = rng.choice(3, p=probs)
        n = 1 if kind == 0 else 2 if kind == 1 else int(rng.integers(3, 7))
        n = min(n, remaining)
        sizes.append(n)
        remaining -= n
    gaps = len(sizes) + 1
    # split the normal beats into gaps of random lengths, each gap >= 1 where possible
    if normal:
        cuts = np.sort(rng.choice(np.arange(1, len(normal)), size=min(gaps - 1, max(len(normal) - 1, 0)),
                                  replace=False)) if len(normal) > 1 else np.array([], int)
        stretches = np.split(np.asarray(normal), cuts)
    else:
        stretches = []
    ai = 0
    for g in range(gaps):
        if g < len(stretches):
            out.extend(int(v) for v in stretches[g])
        if g < len(sizes):
            out.extend(abnormal[ai:ai + sizes[g]])
            ai += sizes[g]
    out.extend(int(v) for s in stretches[gaps:] for v in s)
    return out


WARD_MIX = (0.8, 0.15, 0.05)  # a telemetry ward's ectopy: mostly isolated beats, some couplets, rare runs


def ward_shares(n_abnormal: int, patients: int, rng: np.random.Generator) -> np.ndarray:
    """How many abnormal beats each bed gets on a ward: uneven (gamma-distributed weights, shape 0.5),
    so most beds are quiet and a few carry most of the ectopy."""
    w = rng.gamma(0.5, size=patients)
    return rng.multinomial(n_abnormal, w / w.sum()) if w.sum() > 0 else np.zeros(patients, np.int64)


def plan_patients(x: np.ndarray, y: np.ndarray, rows: np.ndarray, *, patients: int = 8, fs: float = 250.0,
                  seed: int = 0, rhythm: RhythmConfig = RhythmConfig(),
                  abnormal_rate: float | None = None) -> list[PatientPlan]:
    """Deal ``rows`` of the pool (``x``, ``y``) to ``patients`` beds and render each one's signal.

    ``abnormal_rate`` None: every row is played (ECG5000's test split is 42 % abnormal: every bed in
    alarm, which is what the figures need).  A rate (e.g. 0.03): a ward - every normal row is played,
    abnormal rows only as many as make that share of all beats, dealt unevenly to the beds
    (:func:`ward_shares`) in episodes of :data:`WARD_MIX`; the other abnormal rows are not played.
    """
    check_fs(fs)
    if abnormal_rate is not None and not 0 <= abnormal_rate < 1:
        raise ValueError(f"abnormal rate must be in [0, 1), got {abnormal_rate}")
    rng = np.random.default_rng(seed)
    rows = rng.permutation(np.asarray(rows))
    ward = None
    if abnormal_rate is not None:
        ab = [int(r) for r in rows if y[r] != NORMAL]
        n_normal = len(rows) - len(ab)
        keep = min(len(ab), round(abnormal_rate / (1 - abnormal_rate) * n_normal))
        shares = np.cumsum(np.r_[0, ward_shares(keep, patients, rng)])
        ward = [ab[shares[p]:shares[p + 1]] for p in range(patients)]
    plans = []
    for p in range(patients):
        mine = rows[p::patients]
        normal = [int(r) for r in mine if y[r] == NORMAL]
        abnormal = [int(r) for r in mine if y[r] != NORMAL] if ward is None else ward[p]
        mix = rhythm.mix if ward is None else WARD_MIX
        order = np.asarray(_episodes(normal, abnormal, mix, rng), dtype=np.int64)
        hr = rng.uniform(*rhythm.hr_range)
        n = len(order)
        t_beats = np.arange(n) * 60.0 / hr
        rr = 60.0 / hr * (1 + rhythm.rr_jitter * rng.standard_normal(n)
                          + rhythm.resp_mod * np.sin(2 * np.pi * t_beats / rhythm.resp_period_s
                                                     + rng.uniform(0, 2 * np.pi)))
        rr = np.clip(rr, 60.0 / 180, 60.0 / 35)
        starts = np.cumsum(np.r_[0.0, rr * fs])[:n] + 0.5 * fs  # half a second of lead-in (none for no beat)
        plan = PatientPlan(f"bed{p + 1:02d}", order, y[order].astype(np.int8), starts, rr, fs)
        # a closing beat (the patient's first beat again, not counted as truth) lets the monitor
        # close the last real beat, which ends at the next fiducial
        closing = np.r_[starts, starts[-1] + rr[-1] * fs] if n else starts
        plan.signal = render(x[np.r_[order, order[:1]]] if n else x[order], closing, np.r_[rr, rr[-1:]] * fs,
                             rhythm=rhythm, rng=rng)
        plans.append(plan)
    return plans


def render(beats: np.ndarray, starts: np.ndarray, lengths: np.ndarray, *, rhythm: RhythmConfig = RhythmConfig(),
           rng: np.random.Generator | None = None) -> np.ndarray:
    """The continuous signal (float32) of ``beats`` placed at ``starts`` over ``lengths`` samples."""
    if len(beats) == 0:
        return np.zeros(0, np.float32)
    total = int(np.ceil(starts[-1] + lengths[-1])) + round(0.5 * lengths[-1])
    n = np.arange(total, dtype=np.float64)
    i = np.clip(np.searchsorted(starts, n, side="right") - 1, 0, len(beats) - 1)
    u = (n - starts[i]) / lengths[i] * BEAT_LEN
    before = u < 0  # lead-in: hold the first sample
    after = u >= BEAT_LEN  # tail after the last beat: hold its last sample
    u = np.clip(u, 0, BEAT_LEN)
    k = np.minimum(np.floor(u).astype(np.int64), BEAT_LEN - 1)
    frac = u - k
    nxt_first = np.r_[beats[1:, 0], beats[-1, -1]]
    right = np.where(k + 1 < BEAT_LEN, beats[i, np.minimum(k + 1, BEAT_LEN - 1)], nxt_first[i])
    sig = beats[i, k] * (1 - frac) + right * frac
    sig[before] = beats[0, 0]
    sig[after] = beats[-1, -1]
    sig = sig * rhythm.gain_mv
    if rhythm.noise_mv > 0:
        sig = sig + (rng or np.random.default_rng()).normal(0, rhythm.noise_mv, total)
    return sig.astype(np.float32)


def chunks(plan: PatientPlan, *, chunk_s: float = 0.25, t0: float = 0.0) -> Iterator[Chunk]:
    """The plan's signal as consecutive chunks, each carrying the true beats that start inside it."""
    size = chunk_size(chunk_s, plan.fs)
    truth = plan.truth()
    ti = 0
    for a in range(0, len(plan.signal), size):
        b = min(a + size, len(plan.signal))
        tb = []
        while ti < len(truth) and truth[ti].start < b:
            tb.append(truth[ti])
            ti += 1
        yield Chunk(plan.patient, plan.fs, t0 + a / plan.fs, plan.signal[a:b], start=a, truth=tuple(tb),
                    replay=True)

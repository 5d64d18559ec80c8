"""``Segmenter``: a patient's chunks in, fixed-length beats out, causally, in the model's representation.

The cut depends on the checkpoint's :class:`~ecgmon.segmentation.represent.Representation`:
``ecg5000`` (described below) or ``window`` (a fixed window around the fiducial, emitted as soon as
``post_s`` of signal after it has arrived; see :mod:`ecgmon.segmentation.represent`).

For each QRS found by :class:`~ecgmon.segmentation.peaks.QRSDetector` the fiducial is
refined on the raw signal to the steepest slope of the QRS's initial deflection, which is
where ECG5000's beats begin (within +/- 2 of its 140 samples for about 90-99 % of beat
pairs, measured on the dataset).  A beat is cut from one
fiducial to the next (so it is emitted when the next fiducial closes it), linearly
resampled to 140 samples and z-normalised, as ECG5000 was made.  The raw signal is
used unfiltered for the cut: filtering would change the beat's shape away from the
training data.
"""

from __future__ import annotations

import functools
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import signal

from ecgmon.core.limits import BEAT_LEN, check_fs
from ecgmon.core.messages import Beat
from ecgmon.segmentation.heartrate import HeartRate, HeartRateConfig
from ecgmon.segmentation.peaks import DetectorConfig, QRSDetector
from ecgmon.segmentation.represent import Representation, WindowCutter, resample_beat
from ecgmon.segmentation.sqi import SignalQuality

__all__ = ["Segmenter", "SegmenterConfig", "onsets_many", "resample_beat", "resample_many", "spans_many"]


def onsets_many(jobs: Sequence[tuple[Segmenter, int]]) -> list[float]:
    """``seg._onset(peak)`` for every ``(seg, peak)`` (ECG5000 segmenters after :meth:`Segmenter.begin`), the
    same values: the steepest slope, the last deflection at least ``last_frac`` as steep, its steepest sample and
    the parabola through it, as array operations over all peaks of one search window and configuration
    (``tests/test_fastpaths.py``)."""
    out = [0.0] * len(jobs)
    groups: dict[tuple[int, int, float], list[int]] = {}
    segs: list[np.ndarray] = []
    los: list[int] = []
    for q, (sg, peak) in enumerate(jobs):
        lo = max(sg.buf_start, peak - sg.search)
        seg = sg.buf[lo - sg.buf_start: min(peak, sg.total - 1) - sg.buf_start + 1]
        segs.append(seg)
        los.append(lo)
        if len(seg) < 3:
            out[q] = float(peak)
        else:
            groups.setdefault((sg.search, max(1, int(0.03 * sg.fs)), sg.cfg.last_frac), []).append(q)
    for (search, w, frac), idx in groups.items():
        p = len(idx)
        width = search  # differences of at most search + 1 samples
        n_d = np.array([len(segs[q]) - 1 for q in idx])
        x = np.zeros((p, width + 1))  # each peak's stretch, left-aligned (past its end: ignored below)
        for r, q in enumerate(idx):
            x[r, :len(segs[q])] = segs[q]
        d = np.diff(x, axis=1)
        cols = np.arange(width)
        valid = cols < n_d[:, None]
        ad = np.abs(d)
        m = np.argmax(np.where(valid, ad, -1.0), axis=1)
        dm = d[np.arange(p), m]
        steep = (d * np.sign(dm)[:, None] >= frac * np.abs(dm)[:, None]) & valid
        run = steep & ~np.concatenate([np.zeros((p, 1), dtype=bool), steep[:, :-1]], axis=1)
        k = width - 1 - np.argmax(run[:, ::-1], axis=1)  # the start of the last run of steep slopes
        win = k[:, None] + np.arange(w)
        inside = win < n_d[:, None]
        j = k + np.argmax(np.where(inside, np.take_along_axis(ad, np.minimum(win, width - 1), axis=1), -1.0), axis=1)
        par = (j > 0) & (j < n_d - 1)
        rows = np.arange(p)
        a = ad[rows, np.maximum(j - 1, 0)]
        b = ad[rows, j]
        c = ad[rows, np.minimum(j + 1, width - 1)]
        den = a - 2 * b + c
        with np.errstate(divide="ignore", invalid="ignore"):
            off = np.where(par & (den < 0), np.clip(0.5 * (a - c) / den, -0.5, 0.5), 0.0)
        fid = (np.array([los[q] for q in idx]) + j) + 0.5 + off
        for q, f in zip(idx, fid.tolist(), strict=True):
            out[q] = f
    return out


def resample_many(cuts: Sequence[tuple[np.ndarray, float, float]], n: int = BEAT_LEN) -> np.ndarray:
    """:func:`resample_beat` of many beats at once: ``cuts`` ``(x, start, stop)`` -> float32 ``(len(cuts), n)``, row
    ``i`` bit for bit ``resample_beat(*cuts[i], n)`` (``tests/test_fastpaths.py``).  The positions, ``np.interp``'s
    arithmetic on a unit grid (``x[j] + (x[j + 1] - x[j]) * (pos - j)``; a position on a sample, or at or past the
    last one, takes that sample) and the z-normalisation (each row's mean and standard deviation, numpy's pairwise
    sums over one row) as array operations over all beats; only the stretch each beat spans is copied."""
    m = len(cuts)
    if m == 0:
        return np.zeros((0, n), dtype=np.float32)
    start = np.array([c[1] for c in cuts], dtype=np.float64)
    stop = np.array([c[2] for c in cuts], dtype=np.float64)
    pos = start[:, None] + np.arange(n) * ((stop - start) / n)[:, None]  # as resample_beat: start + k * step
    # each beat's stretch [i0, i1) of its x (i1: the sample after its last position's, or x's end), end to end
    i0 = np.floor(pos[:, 0]).astype(np.int64)
    top = np.floor(pos[:, -1]).astype(np.int64) + 2
    parts, offs, ends = [], np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64)
    at = 0
    for k, (x, _, _) in enumerate(cuts):
        a, b = int(i0[k]), min(len(x), int(top[k]))
        parts.append(x[a:b])
        offs[k] = at - a  # flat index of x[0]
        ends[k] = len(x) - 1  # x's last index
        at += b - a
    flat = np.concatenate(parts).astype(np.float64, copy=False)  # np.interp works in float64
    j = np.floor(pos).astype(np.int64)
    last = ends[:, None]
    on = (j >= last) | (pos == j)  # on a sample, or at or past the last: that sample (np.interp's special cases)
    jj = np.minimum(j, last) + offs[:, None]
    y0 = flat[jj]
    y1 = flat[np.where(on, jj, jj + 1)]
    v = np.where(on, y0, (y1 - y0) * (pos - j) + y0)  # y0: x[min(j, last)]
    sd = v.std(axis=1)
    mu = v.mean(axis=1)
    z = v - mu[:, None]
    ok = sd > 1e-12
    z[ok] /= sd[ok, None]
    return z.astype(np.float32)


# qrs_span: the band that takes mains interference and baseline wander out of a QRS's peak to peak, and the signal
# before the window it settles on (the 1 Hz high-pass's time constant is about 0.2 s)
SPAN_BAND_HZ = (1.0, 25.0)
SPAN_SETTLE_S = 1.0


# a QRS whose stretch is not rated this long after it (its rating lost) counts for no amplitude (qrs_amplitude)
AMPLITUDE_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class SegmenterConfig:
    """Times in seconds.  ``last_frac``: how steep (fraction of the steepest slope) a later deflection
    must be to be taken as the beat's onset instead of an earlier one.  ``flat_s``: a run of identical
    samples this long is signal loss (leads off, a device that holds its last value)."""

    last_frac: float = 0.9
    # beat start = steepest-slope centre - step/140 of the beat; -0.25 was chosen on the replayed
    # validation split (median fiducial error 0.2 ms there; 0 gives -0.6 ms, 0.5 gives -3.8 ms)
    step: float = -0.25
    search_s: float = 0.2
    min_rr_s: float = 0.18  # ECG5000 beats: RR outside [min, max] is not cut (333 .. 24 bpm)
    max_rr_s: float = 2.5
    flat_s: float = 3.0  # longer than any RR the detector follows (synthetic test signals have flat baselines)
    # a detection whose samples within +-qrs_half_s of its fiducial span less than min_qrs (peak to peak, the
    # signal's units: mV for real ECG) is no QRS: a detector that has never seen a QRS (a bed connected, or taken
    # over, in asystole) adapts its thresholds down to the isoelectric line's noise and takes it for beats, which
    # held the asystole alarm (a 30 s line of 5-30 uV noise: "ECG cannot be analysed" at 10 s, never asystole).
    # 0.1 mV is a fifth of the lowest QRS amplitude monitors declare they detect (0.5-5 mV, e.g. GE B20's
    # specification, after ANSI/AAMI EC13); ECG5000's z-normalised beats span several units. 0: no floor.
    # The floor holds only until the detector (since its start or last restart) has found min_qrs_beats QRS over
    # it: a lead whose complexes are that small at times (MIT-BIH 101's V1: half its QRS under 0.1 mV) keeps them
    # once it has shown it has complexes (held throughout, extreme bradycardia from 101's V1 was raised 7 times)
    # A detection whose raw peak to peak passes the floor is still no QRS when, with mains hum and baseline wander
    # taken out (:func:`qrs_span`, a band-pass at ``span_band_hz``), it is under the floor and its raw peak to peak is
    # at least ``interference_ratio`` times that: what the detector saw there was hum or wander (session 33: a patient
    # connected in asystole under 0.05-0.5 mV of 50/60 Hz hum or 0.5 mV of 0.3 Hz wander was read as a rhythm near 200
    # bpm, no asystole alarm).  After those 5 QRS the same holds for hum at any time, measured under
    # ``span_band_hz[1]`` only (wander left in: small slow complexes keep their size; a patient gone into asystole
    # under 0.3-0.5 mV of hum had 80-93 "beats" at 190-200 bpm and no asystole alarm)
    min_qrs: float = 0.1
    qrs_half_s: float = 0.06
    min_qrs_beats: int = 5
    span_band_hz: tuple[float, float] = SPAN_BAND_HZ
    # 5: a small real QRS under hum measures up to 3.3 times under 25 Hz what it does raw (MIT-BIH 208's and 101's
    # V1, 60 Hz hum; 2 took 4 % of 101's V1 beats, a false extreme bradycardia on that lead); a detection of hum
    # alone on an isoelectric line, 5-25 times
    interference_ratio: float = 5.0
    # the median raw peak to peak (+-qrs_half_s, the signal's units: mV) of the last amplitude_beats QRS over
    # implausible_qrs_mv is no surface ECG: a device's or a header's gain 10 or 1000 times off (Segmenter.qrs_amplitude;
    # the monitor raises "implausible amplitude" once it has held for AMPLITUDE_HOLD_S).  A surface ECG's QRS rarely
    # spans 5 mV in one lead (the Sokolow-Lyon criterion of left ventricular hypertrophy is 3.5 mV over two leads); at
    # the monitor's detections the largest 32-beat median of CinC 2015's development records is 7.1 mV (a377l's lead
    # II with its artefact), at the reference beats of MIT-BIH DS1 and SVDB's development half 4.5 mV (16 beats).
    # 0: no check
    implausible_qrs_mv: float = 12.0
    amplitude_beats: int = 32


def qrs_span(x: np.ndarray, lo: int, hi: int, fs: float, band_hz: tuple[float, float] = SPAN_BAND_HZ) -> float:
    """Peak to peak of ``x[lo:hi]`` (a QRS's window; the signal's units) with mains interference and baseline wander
    taken out, for :attr:`SegmenterConfig.min_qrs`: the window and up to ``SPAN_SETTLE_S`` before it go through a
    causal Butterworth band-pass, order 2 above ``band_hz[0]`` and order 4 under ``band_hz[1]`` (at most 0.4 ``fs``;
    started in steady state for the first sample).  A QRS's peak to peak, a wide ventricular complex's too, lies mostly
    within 1-25 Hz; mains hum at 50 or 60 Hz, a hertz or more off, and its harmonics are taken down by 45 dB or more
    (notches at 50 and 60 Hz alone let 49 Hz, 61 Hz and a 100 Hz harmonic through, session 33), and 0.1-0.3 Hz wander
    by 20-40 dB (the straight line between the window's ends, tried first, also took away a wide complex measured on
    its slope: EC13 4a's ventricular tachycardia lost 4 complexes).  Measured on the raw samples, 0.05 mV of 50 Hz
    (0.1 mV peak to peak) or 0.5 mV of 0.3 Hz wander (0.11 mV across 120 ms) made an isoelectric line pass the floor,
    and a patient connected in asystole was read as a rhythm of 170-210 bpm (no asystole alarm).  ``x`` 1-D;
    ``0 <= lo < hi <= len(x)``."""
    a = max(0, lo - round(SPAN_SETTLE_S * fs))
    return _band_ptp(np.asarray(x[a:hi], dtype=np.float64)[None], fs, band_hz, lo - a)[0]


def _band_ptp(w: np.ndarray, fs: float, band_hz: tuple[float, float], skip: int) -> list[float]:
    """Peak to peak of each row of ``w`` (rows, n; float64) through :func:`qrs_span`'s band-pass, started in steady
    state on the row's first sample, past its first ``skip`` samples: :func:`qrs_span`'s one window and
    :func:`spans_many`'s rows alike (one call filters each row as it would alone)."""
    sos, zi = _span_band(fs, band_hz)
    y = signal.sosfilt(sos, w, axis=-1, zi=zi[:, None, :] * w[None, :, :1])[0][:, skip:]
    return (y.max(axis=1) - y.min(axis=1)).tolist()


def spans_many(jobs: Sequence[tuple[Segmenter, Sequence[float]]]) -> None:
    """:func:`qrs_span` of the QRS windows that each segmenter's :meth:`Segmenter.finish` is about to measure, for
    many segmenters after :meth:`Segmenter.begin` (``jobs``: each segmenter with the fiducials, in samples, of the
    peaks it will finish), in one band-pass call per sampling rate and band instead of one per QRS (a call's own cost,
    about 0.3 ms, was a tenth of the 512-bed replay's event loop, session 37).  The same values, to the bit
    (``tests/test_fastpaths.py``): each window is a row of one 2-D filter call, started in steady state on its own
    first sample.  Each segmenter keeps them for its next finish; the windows it would measure otherwise (a detector
    still in its first ``min_qrs_beats`` QRS, a window at the buffer's start) are left to it."""
    groups: dict[tuple[float, tuple[float, float], int, int], list[tuple[Segmenter, int, int]]] = {}
    for sg, fids in jobs:
        if sg.cfg.min_qrs <= 0 or sg.big_qrs < sg.cfg.min_qrs_beats or not fids:
            continue  # a detector's first QRS: the band depends on how many pass (Segmenter._push_rest)
        half, settle = round(sg.cfg.qrs_half_s * sg.fs), round(SPAN_SETTLE_S * sg.fs)
        band = (0.0, sg.cfg.span_band_hz[1])
        for fid in fids:
            lo = int(fid) - half - sg.buf_start
            hi = int(fid) + half + 1 - sg.buf_start
            if lo - settle >= 0 and hi <= len(sg.buf):
                groups.setdefault((sg.fs, band, settle, hi - lo + settle), []).append((sg, lo - settle, int(fid)))
    for (fs, band, settle, n), rows in groups.items():
        w = np.stack([sg.buf[a:a + n] for sg, a, _ in rows]).astype(np.float64, copy=False)
        for (sg, _, key), span in zip(rows, _band_ptp(w, fs, band, settle), strict=True):
            sg.spans[key] = span


@functools.lru_cache(maxsize=64)
def _span_band(fs: float, band_hz: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The band-pass of :func:`qrs_span` and its unit steady-state ``zi`` (shared, never written)."""
    lo, hi = band_hz
    sos = signal.butter(4, min(hi, 0.4 * fs), btype="lowpass", fs=fs, output="sos")
    if lo > 0:
        sos = np.vstack([signal.butter(2, lo, btype="highpass", fs=fs, output="sos"), sos])
    return sos, signal.sosfilt_zi(sos)


class Segmenter:
    """Per-patient streaming segmentation.  ``push(samples) -> list[Beat]``; sample indices are absolute.

    Non-finite samples (NaN runs where a device lost the signal) and flat stretches of ``flat_s`` are
    signal loss: the detector, the open beat and the heart rate start again after them, and
    ``signal_loss`` is True after a ``push`` that held any (``losses`` counts them).  Never raises on
    sample values.  Each beat carries ``hr_bpm`` (:mod:`ecgmon.segmentation.heartrate`), counted from
    every QRS the detector reports, and ``noisy``: the stretch rated by ``quality``
    (:class:`~ecgmon.segmentation.sqi.SignalQuality`, restarted with the detector) last before its QRS was decided
    (:attr:`found_at`) failed its signal-quality index, whatever the chunks the samples came in."""

    def __init__(self, patient: str, fs: float, cfg: SegmenterConfig = SegmenterConfig(),
                 rep: Representation = Representation(), *, detector: DetectorConfig = DetectorConfig(),
                 hr: HeartRateConfig = HeartRateConfig()) -> None:
        self.patient, self.fs, self.cfg = patient, check_fs(fs, f"{patient}: sampling rate"), cfg
        self.rep, self.det_cfg = rep, detector
        self.search = round(cfg.search_s * fs)
        self.flat_n = max(2, round(cfg.flat_s * fs))
        self.hr = HeartRate(self.fs, hr)
        self.total = 0
        self.signal_loss = False
        self.found: list[tuple[float, float | None]] = []  # (fiducial, hr_bpm) of every QRS the last push decided
        # ... and the sample at which each was decided (its envelope peak and the detector's look-ahead, whatever the
        # chunks: a search-back or re-acquisition decides later); its signal quality is the rating in force there
        self.found_at: list[int] = []
        # ... and the sample at which the detector actually decided it: found_at, or later for a QRS found by
        # search-back or re-acquisition (when the candidate that led to it was decided); the lethal watch takes each
        # QRS in the order of these (ecgmon.monitor.lethal.InOrder)
        self.found_when: list[int] = []
        # the fiducials of the candidates the detector passed over in the last push (QRSDetector.passed): where a
        # second lead shows a QRS, a beat this lead missed (ecgmon.segmentation.agreement)
        self.passed: list[float] = []
        self._when: list[int] = []  # found_when of the peaks of the last _push_peaks
        self.losses = 0
        # a push with defer_cuts: its ECG5000 beats to resample, each [x, start, stop, index, rr_prev, now, hr,
        # rr_next, decided, noisy]
        self.cuts: list[list[Any]] | None = None
        # window beats whose cut the caller makes (every bed's at once: :func:`ecgmon.segmentation.bank.segment_round`
        # after :meth:`begin`): [buf, fid in buf, RR before, fiducial, rate, time, decided, noisy]; None: cut here
        self.wcuts: list[list[Any]] | None = None
        self.defer_quality = False  # the next push leaves a signal-quality rating that falls due to the caller
        # qrs_span of the QRS windows of the next finish, by int(fiducial), measured with other beds' (spans_many)
        self.spans: dict[int, float] = {}
        self._in_loss = False
        self._flat_run = 0  # identical samples ending at the last one
        self.lost_runs: list[tuple[int, int]] = []  # the last push's runs of lost samples [start, stop) (its count)
        self._last = np.nan  # the last sample pushed
        # the raw peak to peak of the last QRS in stretches rated clean (SegmenterConfig.implausible_qrs_mv), kept over
        # restarts (a gain stays); those waiting for their stretch's rating in _ptp_wait (detector sample, peak to peak)
        self.qrs_ptp: deque[float] = deque(maxlen=max(1, self.cfg.amplitude_beats))
        self._restart()

    def _restart(self) -> None:
        """A fresh detector and open beat from sample ``total`` on (the stream start, or after signal loss)."""
        self.window = WindowCutter(self.rep, self.fs) if self.rep.kind == "window" else None
        # window: (fiducial, RR before, hr, decided) awaiting post_s
        self.pending: deque[tuple[float, float | None, float | None, int]] = deque()
        self.detector = QRSDetector(self.fs, self.det_cfg)
        self.base = self.total  # absolute index of the detector's sample 0
        self.buf = np.zeros(0)
        self._store: np.ndarray | None = None  # buf is _store[_end - len(buf):_end], room after it for the next chunks
        self._end = 0
        self.buf_start = self.total
        self.last_fid: float | None = None
        self.rr_prev: float | None = None  # ECG5000 beats: the interval before the open beat's QRS
        self.hr.reset()
        self.quality = SignalQuality(self.fs, start=self.total)  # per-stretch signal quality (Beat.noisy)
        # the detector sets no re-acquisition floor from QRS whose beats are marked noisy (relearn_floor_noisy)
        self.detector.artefact = self._noisy_qrs
        self.big_qrs = 0  # QRS over SegmenterConfig.min_qrs since the detector started (the floor's hold)
        self._ptp_wait: deque[tuple[int, float]] = deque()  # (ratings of a stretch before a restart are not kept)

    def _noisy_qrs(self, p: int) -> bool | None:
        """Whether a QRS the detector found at its sample ``p`` is a beat marked noisy: the stretch rated last before it
        was decided (``p`` plus the detector's look-ahead) is; None while that rating is not made yet."""
        return self.quality.settled_noisy_at(p + self.detector.dom + self.base)

    @property
    def qrs_amplitude(self) -> float | None:
        """The median raw peak to peak (signal units: mV) over +-``qrs_half_s`` of the last ``amplitude_beats`` QRS in
        stretches the signal-quality index rated clean (artefact taken for QRS, electrode motion or chest compressions,
        says nothing of the gain); None until that many have been measured (a signal with no QRS floor, ECG5000's
        z-normalised units, never)."""
        wait = self._ptp_wait
        while wait:
            p, raw = wait[0]
            noisy = self._noisy_qrs(p)
            if noisy is None and p + self.base >= self.total - round(AMPLITUDE_WAIT_S * self.fs):
                break  # not rated yet
            wait.popleft()
            if noisy is False:
                self.qrs_ptp.append(raw)
        if len(self.qrs_ptp) < self.qrs_ptp.maxlen:  # type: ignore[operator]
            return None
        return float(np.median(self.qrs_ptp))

    @property
    def last_sample(self) -> float:
        """The last sample pushed (nan before any, or when it was not finite)."""
        return self._last

    @property
    def in_loss(self) -> bool:
        """The last sample pushed was lost (non-finite, or past ``flat_s`` of a flat run): the signal is not back."""
        return self._in_loss

    @property
    def restarted_at(self) -> int:
        """The sample (this segmenter's count) from which its detector runs: the stream's start, or the end of the
        last lost run (:attr:`signal_loss`)."""
        return self.base

    @property
    def heart_rate(self) -> float | None:
        """bpm now (:meth:`HeartRate.at` the last sample the detector has decided on)."""
        return self.hr.at(self.base + self.detector.next_p - self.search)

    def _onset(self, peak: int) -> float:
        """The fiducial of the QRS whose envelope peaks at ``peak``: within the ``search_s`` before it,
        the steepest sample of the last deflection at least ``last_frac`` as steep as the steepest one
        (of the same sign).  A deflection at the end of the previous beat (an R-on-T complex) comes
        before the new beat's own onset, so the last one wins."""
        lo = max(self.buf_start, peak - self.search)
        seg = self.buf[lo - self.buf_start: min(peak, self.total - 1) - self.buf_start + 1]
        if len(seg) < 3:
            return float(peak)
        d = np.diff(seg)
        m = int(np.argmax(np.abs(d)))
        steep = d * np.sign(d[m]) >= self.cfg.last_frac * abs(d[m])
        k = int(np.flatnonzero(steep)[-1])
        while k > 0 and steep[k - 1]:
            k -= 1
        j = k + int(np.argmax(np.abs(d[k:k + max(1, int(0.03 * self.fs))])))
        # sub-sample position of the steepest slope: d[j] sits between samples j and j+1; a parabola
        # through |d| at j-1, j, j+1 refines it
        off = 0.0
        if 0 < j < len(d) - 1:
            a, b, c = abs(d[j - 1]), abs(d[j]), abs(d[j + 1])
            den = a - 2 * b + c
            if den < 0:
                off = float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
        return lo + j + 0.5 + off

    def fiducials(self, peaks: Sequence[int]) -> list[float]:
        """The fiducial of each of ``peaks`` (absolute QRS envelope peaks in the buffer, as :meth:`begin` returns
        them): the fractional sample index of the QRS's steepest slope (:meth:`_onset`, ECG5000 beats) or of its
        slope-energy centre (:meth:`_centroid`, window beats)."""
        return [self._onset(p) if self.window is None else self._centroid(p) for p in peaks]

    def _centroid(self, peak: int) -> float:
        """The window representation's fiducial: the centre of the QRS's slope energy, the mean position
        of the squared first differences over the ``search_s`` before ``peak`` where the slope is at least
        a third of the steepest.  A QRS with two deflections of similar steepness (rSR', RBBB) makes the
        steepest-slope onset jump between them from beat to beat (40 ms in MIT-BIH 124, enough to put a
        normal beat's window 40 ms off and flag it); the centroid moves only as much as the
        deflections' sizes change."""
        lo = max(self.buf_start, peak - self.search)
        seg = self.buf[lo - self.buf_start: min(peak, self.total - 1) - self.buf_start + 1]
        if len(seg) < 3:
            return float(peak)
        d2 = np.diff(seg) ** 2
        w = np.where(d2 >= d2.max() / 9.0, d2, 0.0)
        return lo + 0.5 + float(np.dot(np.arange(len(w)), w) / w.sum()) if w.sum() > 0 else float(peak)

    def push(self, samples: np.ndarray) -> list[Beat]:
        return self.push_parts(*self.split(samples))

    def split(self, samples: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, bool]]]:
        """The first half of :meth:`push`: the samples as float64 and their ``(start, stop, lost)`` runs (one
        ``(0, n, False)`` run for a clean chunk).  :meth:`push_parts` must follow, with what this returns."""
        x = np.asarray(samples, dtype=np.float64)
        self.signal_loss = False
        self.found = []
        self.found_at = []
        self.found_when = []
        self.passed = []
        return x, (self._parts(x) if len(x) else [])

    def push_parts(self, x: np.ndarray, parts: list[tuple[int, int, bool]], *,
                   envelope: tuple[np.ndarray, np.ndarray] | None = None, decided: list[int] | None = None,
                   defer_cuts: bool = False) -> list[Beat]:
        """The second half of :meth:`push`.  ``envelope``: the detector's envelope and slope of a clean chunk
        (one run), computed with the detector's state by :func:`ecgmon.segmentation.bank.envelopes`; ``decided``:
        instead, the detector has been pushed that envelope already and decided these QRS (detector sample indices;
        :func:`ecgmon.segmentation.bank.decide_many`).
        ``defer_cuts`` (ECG5000 beats): the beats are not resampled here but left in :attr:`cuts` (what
        :func:`resample_beat` would take, and the beat's other fields) for the caller, which resamples every bed's
        at once (:func:`resample_many`) and makes them with :meth:`make_beats`; this returns no beat then."""
        self.cuts = [] if defer_cuts and self.window is None else None
        self.wcuts = None
        self.lost_runs = []
        beats: list[Beat] = []
        for a, b, lost in parts:
            if lost:
                self.lost_runs.append((self.total, self.total + b - a))
                self.losses += not self._in_loss  # one per episode of loss, however many chunks it spans
                self._in_loss = self.signal_loss = True
                self.total += b - a
                self._restart()
            else:
                self._in_loss = False
                one = len(parts) == 1
                beats += self._push(x[a:b], envelope if one else None, decided if one else None)
        return beats

    def make_beats(self, samples: np.ndarray) -> list[Beat]:
        """The beats of :attr:`cuts` (a push with ``defer_cuts``), with ``samples`` their resampled rows."""
        cuts, self.cuts = self.cuts or [], None
        return [Beat(self.patient, samples[i], index, rr_prev, self.fs, now, hr_bpm=hr, rr_next_s=rr, noisy=noisy)
                for i, (_, _, _, index, rr_prev, now, hr, rr, _, noisy) in enumerate(cuts)]

    def make_window_beats(self, samples: np.ndarray, noise: Sequence[float], mismatch: Sequence[float],
                          scale: Sequence[float]) -> list[Beat]:
        """The beats of :attr:`wcuts` (after :meth:`begin`), ``samples`` their cut rows, ``noise``, ``mismatch`` and
        ``scale`` as :func:`~ecgmon.segmentation.represent.cut_many` returns them."""
        cuts, self.wcuts = self.wcuts or [], None
        return [Beat(self.patient, samples[i], round(fid), rr_before if rr_before is not None else 0.0, self.fs,
                     now, noise=noise[i], hr_bpm=hr, noisy=noisy, mismatch=mismatch[i], scale=scale[i])
                for i, (_, _, rr_before, fid, hr, now, _, noisy) in enumerate(cuts)]

    def _parts(self, x: np.ndarray) -> list[tuple[int, int, bool]]:
        """``x`` split into (start, stop, lost) runs: non-finite samples, and the part of a flat run past
        ``flat_n`` identical samples, are lost."""
        n = len(x)
        prev, self._last = self._last, float(x[-1])
        if n < self.flat_n and math.isfinite(float(np.sum(x))):
            # fast path (a chunk shorter than flat_s, all finite): only the runs at its two ends can be long
            changes = np.flatnonzero(x[1:] != x[:-1])
            lead = (int(changes[0]) + 1 if len(changes) else n) + (self._flat_run if x[0] == prev else 0)
            if lead <= self.flat_n:
                self._flat_run = lead if not len(changes) else n - 1 - int(changes[-1])
                return [(0, n, False)]
        bad = ~np.isfinite(x)
        same = np.empty(n, dtype=bool)
        same[0] = x[0] == prev
        np.equal(x[1:], x[:-1], out=same[1:])
        same &= ~bad
        # run length of identical samples ending at each sample, carried across chunks
        run = np.zeros(n, dtype=np.int64)
        k = self._flat_run
        if same.all():
            run = k + np.arange(1, n + 1)
        else:
            idx = np.arange(n)
            starts = np.where(~same, idx, 0)
            np.maximum.accumulate(starts, out=starts)
            run = idx - starts + 1
            first = int(np.argmin(same))  # first sample that differs from its predecessor
            run[:first] += k
        self._flat_run = int(run[-1]) if not bad[-1] else 0
        lost = bad | (run > self.flat_n)
        if not lost.any():
            return [(0, n, False)]
        edges = np.flatnonzero(np.diff(lost.astype(np.int8))) + 1
        bounds = [0, *edges.tolist(), n]
        return [(bounds[i], bounds[i + 1], bool(lost[bounds[i]])) for i in range(len(bounds) - 1)]

    def begin(self, x: np.ndarray, envelope: tuple[np.ndarray, np.ndarray] | None = None, *,
              decided: list[int] | None = None, defer_quality: bool = False) -> list[int]:
        """:meth:`push_parts` of a clean chunk (``split`` gave one run) in two halves, for a caller that finds the
        fiducials of many beds at once: the buffer and the detector (``envelope`` and ``decided`` as for
        :meth:`push_parts`) -> the QRS envelope peaks decided (absolute indices).  :meth:`finish` follows with their
        fiducials (:func:`onsets_many`; ECG5000 beats only), the beats deferred as with ``defer_cuts``.
        ``defer_quality``: a signal-quality rating that falls due in :meth:`finish` is left to the caller
        (``quality.due``; :func:`ecgmon.segmentation.sqi.rate_many`), which then marks the deferred beats noisy
        (the last element of each of :attr:`cuts`) where the new rating is.  A window-beat bed's beats are not cut
        here either: they wait in :attr:`wcuts` for the caller, which cuts every bed's at once
        (:func:`ecgmon.segmentation.represent.cut_many`) and makes them with :meth:`make_window_beats`."""
        self.cuts = [] if self.window is None else None
        self.wcuts = [] if self.window is not None else None
        self.spans.clear()
        self._in_loss = False
        self.lost_runs = []
        self.defer_quality = defer_quality
        return self._push_peaks(x, envelope, decided)

    def finish(self, x: np.ndarray, peaks: list[int], fids: list[float] | None) -> list[Beat]:
        """The second half of :meth:`begin`: ``fids`` the fiducial of each of ``peaks`` (as :meth:`_onset`; None: found
        here, as a window-beat bed's are)."""
        return self._push_rest(x, peaks, fids)

    def _push(self, x: np.ndarray, envelope: tuple[np.ndarray, np.ndarray] | None = None,
              decided: list[int] | None = None) -> list[Beat]:
        return self._push_rest(x, self._push_peaks(x, envelope, decided), None)

    def _push_peaks(self, x: np.ndarray, envelope: tuple[np.ndarray, np.ndarray] | None,
                    decided: list[int] | None = None) -> list[int]:
        # self.buf = np.concatenate([self.buf, x]), written into room kept after the buffer (views taken of the buffer
        # before, as the deferred cuts hold, never see a sample change: only the room past their end is written)
        n, m = len(x), len(self.buf)
        st = self._store
        if st is None or self._end + n > len(st):
            st = self._store = np.empty(max(2 * (m + n), 1024))
            st[:m] = self.buf
            self._end = m
        st[self._end:self._end + n] = x
        self._end += n
        self.buf = st[self._end - m - n:self._end]
        self.total += n
        if decided is not None:
            peaks = decided
        else:
            peaks = self.detector.push(x) if envelope is None else self.detector.push_envelope(*envelope)
        if self.detector.passed:  # (taken once: a batched round may not call the detector's decide() again)
            self.passed += self.fiducials([p + self.base for p in self.detector.passed])
            self.detector.passed = []
        if not peaks:
            return []
        self._when = [a + self.base for a in self.detector.decided_at]
        return [p + self.base for p in peaks]

    def _push_rest(self, x: np.ndarray, peaks: list[int], fids: list[float] | None) -> list[Beat]:
        if not peaks and self.window is None:
            return self._push_quiet(x)
        beats: list[Beat] = []
        now = time.monotonic()
        n_found = len(self.found)
        n_cuts = len(self.cuts) if self.cuts is not None else 0
        n_wcuts = len(self.wcuts) if self.wcuts is not None else 0
        if fids is None:
            fids = self.fiducials(peaks)
        ds: list[int] = []  # the decision sample of each beat made here (its stretch's rating: noisy_at below)
        dom = self.detector.dom
        floor, half = self.cfg.min_qrs, round(self.cfg.qrs_half_s * self.fs)
        for p, fid, when in zip(peaks, fids, self._when if peaks else (), strict=True):
            if self.last_fid is not None and fid <= self.last_fid + 1:
                continue
            if floor > 0:
                # too small to be a QRS (SegmenterConfig.min_qrs) while none has shown the lead has complexes (the
                # detector adapting to an isoelectric line's noise, hum or wander), or at any time where it was hum
                lo = max(0, int(fid) - half - self.buf_start)
                hi = max(lo + 1, int(fid) + half + 1 - self.buf_start)
                if hi <= len(self.buf):
                    first = self.big_qrs < self.cfg.min_qrs_beats
                    raw = float(np.ptp(self.buf[lo:hi]))
                    if first or raw >= floor:
                        band = self.cfg.span_band_hz if first else (0.0, self.cfg.span_band_hz[1])
                        span = self.spans.get(int(fid)) if not first else None  # spans_many's, where it measured
                        if span is None:
                            span = qrs_span(self.buf, lo, hi, self.fs, band)
                        if span < floor and (raw < floor or raw >= self.cfg.interference_ratio * span):
                            continue
                    if math.isfinite(raw) and self.cfg.implausible_qrs_mv > 0:
                        self._ptp_wait.append((p, raw))
                if self.big_qrs < self.cfg.min_qrs_beats:
                    self.big_qrs += 1
            hr = self.hr.add(fid)
            self.found.append((fid, hr))
            self.found_at.append(p + dom)
            self.found_when.append(when)
            if self.window is not None:
                rr_before = (fid - self.last_fid) / self.fs if self.last_fid is not None else None
                self.pending.append((fid, rr_before, hr, p + dom))
            elif self.last_fid is not None:
                n = fid - self.last_fid
                rr = n / self.fs
                # ECG5000 beats start ``step`` 140ths of the beat before that slope's centre
                h = self.cfg.step * n / BEAT_LEN
                start = self.last_fid - h
                if self.cfg.min_rr_s <= rr <= self.cfg.max_rr_s and start - self.buf_start >= 0:
                    a = start - self.buf_start
                    if self.cuts is not None:  # the caller resamples (every bed's beats at once)
                        self.cuts.append([self.buf, a, a + n, round(start), self.rr_prev or 0.0, now, hr, rr, p + dom,
                                          False])
                    else:
                        beats.append(Beat(self.patient, resample_beat(self.buf, a, a + n), round(start),
                                          self.rr_prev or 0.0, self.fs, now, hr_bpm=hr, rr_next_s=rr))
                        ds.append(p + dom)
                self.rr_prev = rr
            self.last_fid = fid
        if self.window is not None:
            cut, cut_ds = self._cut_windows(now)
            beats += cut
            ds += cut_ds
        self.spans.clear()
        defer, self.defer_quality = self.defer_quality, False
        self.quality.push(x, [f for f, _ in self.found[n_found:]] if fids else (), defer=defer)
        if not self.quality.due:  # else the caller rates (rate_many), then flags (flag_deferred)
            beats = [replace(b, noisy=True) if self.quality.noisy_at(d) else b for b, d in zip(beats, ds, strict=True)]
            self.flag_deferred(n_cuts, n_wcuts)
        # keep from the last fiducial (the open beat) or the detector's search window, whichever is earlier
        # (a QRS still to be reported needs the search window before it, and a window beat its pre_s)
        margin = self.search + 1 + (self.window.needs_before() if self.window is not None else 0)
        keep_from = min(int(self.last_fid) - 2 if self.last_fid is not None else self.total,
                        self.base + self.detector.keep_from - margin)
        keep_from = max(keep_from, self.total - int((self.cfg.max_rr_s + 1) * self.fs))
        if self.window is not None and self.pending:
            keep_from = min(keep_from, int(self.pending[0][0]) - self.window.needs_before())
        drop = keep_from - self.buf_start
        if drop > 0:
            self.buf = self.buf[drop:]
            self.buf_start += drop
        return beats

    def _push_quiet(self, x: np.ndarray) -> list[Beat]:
        """:meth:`_push_rest` of a push that decided no QRS (ECG5000 beats): no beat, no cut; the signal quality and
        the buffer move on as there."""
        defer, self.defer_quality = self.defer_quality, False
        self.quality.push(x, (), defer=defer)
        if not self.quality.due:
            self.detector.settle_verdicts()
        det = self.detector
        k = det.next_p - det.dom  # det.keep_from, inline
        if det.noise and det.noise[0].p < k:
            k = det.noise[0].p
        if det.recent and det.recent[0].p < k:
            k = det.recent[0].p
        keep_from = self.base + k - (self.search + 1)
        if self.last_fid is not None:
            keep_from = min(int(self.last_fid) - 2, keep_from)
        elif self.total < keep_from:
            keep_from = self.total
        keep_from = max(keep_from, self.total - int((self.cfg.max_rr_s + 1) * self.fs))
        drop = keep_from - self.buf_start
        if drop > 0:
            self.buf = self.buf[drop:]
            self.buf_start += drop
        return []

    def flag_deferred(self, n_cuts: int = 0, n_wcuts: int = 0) -> None:
        """Mark the deferred beats (:attr:`cuts` from ``n_cuts`` on, :attr:`wcuts` from ``n_wcuts`` on) noisy where
        the stretch rated last before their QRS was decided is (:meth:`SignalQuality.noisy_at`)."""
        q = self.quality
        for c in self.cuts[n_cuts:] if self.cuts is not None else ():
            c[-1] = q.noisy_at(c[-2])
        for c in self.wcuts[n_wcuts:] if self.wcuts is not None else ():
            c[-1] = q.noisy_at(c[-2])
        self.detector.settle_verdicts()  # the detector's re-acquisition floor keeps its QRS' verdicts

    def _cut_windows(self, now: float) -> tuple[list[Beat], list[int]]:
        """Window beats whose ``post_s`` has arrived, and the sample at which each one's QRS was decided; a fiducial
        too close to the stream's start is dropped."""
        assert self.window is not None
        out, ds = [], []
        while self.pending and self.pending[0][0] + self.window.needs_after() <= self.total:
            fid, rr_before, hr, d = self.pending.popleft()
            a = fid - self.buf_start
            if a - self.window.needs_before() < 0:
                continue
            if self.wcuts is not None:  # the caller cuts it, with every bed's (cut_many)
                self.wcuts.append([self.buf, a, rr_before, fid, hr, now, d, False])
                continue
            x = self.window.cut(self.buf, a, rr_before)
            out.append(Beat(self.patient, x, round(fid), rr_before if rr_before is not None else 0.0, self.fs, now,
                            noise=self.window.noise, hr_bpm=hr, mismatch=self.window.mismatch,
                            scale=self.window.scale))
            ds.append(d)
        return out, ds

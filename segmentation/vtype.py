"""Ventricular beat typing, label-free, streaming, per bed; and the ventricular tachycardia rule.

A ventricular ectopic beat (VEB) is wide (QRS >= 120 ms), usually premature, and unlike the bed's dominant
(supraventricular) morphology.  :class:`VTyper` measures each beat the :class:`~ecgmon.segmentation.beats.Segmenter`
finds on a causally band-passed (1-35 Hz) copy of the bed's signal, once ``post_s`` of signal after its
fiducial has arrived:

``width``  QRS width from the slope energy (squared first difference, 20 ms moving average): the time in
           which the middle 80 % of the slope energy within +/- 150 ms of the QRS falls (s).
``prem``   RR prematurity ``log(RR before / median of the bed's last 16 RR)`` (Hamilton & Tompkins 1986
           use the same median RR to judge prematurity).
``corr``   the largest correlation (lags +/- 20 ms) of the QRS (-100..+150 ms) with the bed's dominant
           template: the medoid of its last 48 beats (the beat that correlates best, by median, with the
           others), whatever they were typed, so a bed whose own rhythm is wide (bundle branch block) gets its
           wide beat as its template (the running-template idea of Hamilton & Tompkins 1986; here the template
           is the bed's own and needs no labels).  Beats the monitor reads in artifact stay out of it
           (:attr:`VTyperConfig.artifact_skip`, :attr:`Staged.artifact`).
``share``  the share of the bed's last 48 beats that correlate >= 0.9 with this one: the dominant beat is
           common, an ectopic one rare.
``dwidth`` the width minus the template's width (s).
``amp``    log ratio of the QRS peak-to-peak amplitude to the template's.
``prev_corr`` the QRS window's correlation (lag 0) with the previous typed beat's: the complexes of a VT run are
           alike, noise and motion detections are not (used by the VT rule, not by the model).
``prev2_corr`` the same with the typed beat before that: a VT's beat after one odd complex (a capture or fusion
           beat, a beat in a burst of noise) is alike the run's beat before the odd one (the VT rule's chain).
``epoch``  the template's morphology: a count that goes up each time the template (the medoid) turns to a complex
           correlating under ``epoch_corr`` (0.8) with the one its epoch began with (0 before the bed has one).  The
           VT rule's chain reads "like the template" as "like the run's complex" only within the epoch in which the
           run's beats were like it.

Until the bed has ``min_template`` beats (the first few seconds) only ``width`` and ``prem`` (population knowledge)
type a beat; then the bed's own features join them, and a small convolutional network on the beat's and the
template's waveforms (-0.25 to +0.40 s around the QRS centre: the P wave a ventricular beat lacks, the T wave that
opposes its QRS) joins the additive model below (:mod:`ecgmon.segmentation.vnet`; 5-fold CV by record on DS1 and the
SVDB development half: VEB Se/+P 72.9/78.8 -> 83.1/83.4 % on DS1, 77.4/73.9 -> 85.8/77.8 % on SVDB, ``python -m
ecgmon.evaluation.vnetfit``). With the network a beat is typed once about 0.5 s of signal after its fiducial has
arrived (0.40 s, the centre search and the interpolation's sample), 0.2 s later than without it. One additive
logistic model (:class:`VTypeModel`: a generalised additive model with piecewise-linear shape functions, Hastie &
Tibshirani 1986) does both: each input's shape function is held monotone in the direction physiology gives it
(wider, more premature, less like the template, wider than the template, rarer: more ventricular) and constant
beyond the fitting data, so a complex more extreme than any in the fitting data is never typed 'less ventricular'.
The QRS amplitude (absolute, or relative to the template: ``logamp``, ``amp``) is measured but is no input: in
MIT-BIH's modified lead II a ventricular complex is mostly larger than the sinus beat, in the ICU's lead II (CinC
2015) as often smaller, and the model that used it typed ICU VT complexes at p < 0.1. Fitted on MIT-BIH DS1 and the
SVDB development half (AAMI V = V, E against every other beat; ``python -m ecgmon.evaluation.veb fit``, 5-fold
cross-validation by record; figures there). The VT rule the live monitor uses is
:class:`ecgmon.monitor.lethal.LethalWatch` (tolerates one misread beat, needs alike complexes);
:class:`VTRule` is the plain definition (``run`` (5) consecutive ventricular beats at a rate above ``rate_bpm``
(100), as the PhysioNet/CinC 2015 Challenge and bedside monitors define it), kept for offline scoring.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ecgmon.core.limits import check_fs
from ecgmon.segmentation.filters import CausalFilter, filter_many
from ecgmon.segmentation.vnet import INPUTS, VNet, shipped

__all__ = ["BED", "DIRECTIONS", "FEATURES", "Staged", "VBeat", "VTRule", "VTypeModel", "VTyper", "VTyperConfig",
           "add_many", "features", "hold_missing", "type_staged"]

# a beat's measurements; the bed's (corr .. share) are 0 and ``template`` 0 until the template has formed
FEATURES = ("width", "prem", "logamp", "template", "corr", "dwidth", "amp", "share")
# the bed's own measurements: they count only once the bed has a template
BED = frozenset({"corr", "dwidth", "amp", "share"})


@dataclass(frozen=True, slots=True)
class VTypeModel:
    """Additive logistic model with piecewise-linear shape functions (a generalised additive model: Hastie T,
    Tibshirani R, "Generalized additive models", Statistical Science 1(3):297-310, 1986)::

        z = bias + template_w * template + sum_f interp(x_f, knots[f], values[f])   (the bed's f times template)
        p = 1 / (1 + exp(-z))

    over the base features of :func:`features` named in ``inputs``.  Each shape function is linear between its
    knots and constant outside them (no extrapolation beyond the fitting data), and is fitted monotone where the
    physiology says which way a feature points (wider, more premature, less like the template, rarer: more
    ventricular; :data:`DIRECTIONS`), so that a beat more extreme than any in the fitting data is never typed
    'less ventricular' (the quadratic model this replaced typed a QRS of 130 ms correlating -0.7 with the bed's
    template at p = 0.04)."""

    inputs: tuple[str, ...]
    knots: tuple[tuple[float, ...], ...]
    values: tuple[tuple[float, ...], ...]
    template_w: float
    bias: float

    def logit(self, x: np.ndarray) -> np.ndarray:
        """``x`` (..., 8): base features (:func:`features`) -> the logit (...)."""
        x = np.asarray(x, dtype=np.float64)
        t = x[..., FEATURES.index("template")]
        z = self.bias + self.template_w * t
        for name, k, v in zip(self.inputs, self.knots, self.values, strict=True):
            g = np.interp(x[..., FEATURES.index(name)], k, v)
            z = z + (g * t if name in BED else g)
        return z

    def prob(self, x: np.ndarray) -> np.ndarray:
        """``x`` (..., 8): base features -> P(ventricular) (...)."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.logit(x), -40.0, 40.0)))


# the sign each shape function is held to (+1 increasing, -1 decreasing in P(ventricular)); the absolute and
# relative QRS amplitudes are not inputs: in the ICU's lead II a ventricular complex is as often smaller than the
# dominant beat as larger (CinC 2015), while in MIT-BIH's modified lead II it is mostly larger
DIRECTIONS = {"width": 1, "prem": -1, "corr": -1, "dwidth": 1, "share": -1}

# Fitted by `python -m ecgmon.evaluation.veb fit build/veb/beats.npz` on MIT-BIH DS1 and the SVDB development half
# (in-sample; the record-level cross-validated figures are in that module's docstring).
MODEL = VTypeModel(
    inputs=("width", "prem", "corr", "dwidth", "share"),
    knots=(
        (0.02344, 0.03125, 0.03906, 0.04688, 0.05469, 0.07031, 0.14898),
        (-0.69315, -0.05137, -0.01575, 0.0, 0.01482, 0.0474, 0.53151),
        (-0.21201, 0.94804, 0.97927, 0.99034, 0.99497, 0.99768, 0.99978),
        (-0.03906, -0.00556, 0.0, 0.00781, 0.1),
        (0.0, 0.45833, 0.72917, 0.89583, 0.97917, 1.0),
    ),
    values=(
        (0.0, 0.0, 1.1631, 2.11656, 2.81145, 3.96657, 4.91513),
        (0.0, -2.82028, -5.61475, -5.61475, -5.61475, -5.61475, -5.61475),
        (0.0, -1.31485, -2.47501, -3.01271, -3.01271, -3.01271, -3.95529),
        (0.0, 0.1561, 0.1561, 0.72381, 0.72381),
        (0.0, 0.0, -1.42269, -1.42269, -1.42269, -1.71608),
    ),
    template_w=2.06352,
    bias=-2.0262,
)


@dataclass(frozen=True, slots=True)
class VTyperConfig:
    """Times in seconds."""

    band_hz: tuple[float, float] = (1.0, 35.0)
    search_s: float = 0.08  # the QRS centre is sought within this of the given fiducial
    half_s: float = 0.15  # the slope energy that makes the width: +/- this around the QRS centre
    pre_s: float = 0.10  # the template window: pre_s before the QRS centre ...
    post_s: float = 0.15  # ... to post_s after it
    lag_s: float = 0.02
    template_beats: int = 48
    min_template: int = 4
    epoch_corr: float = 0.8  # VBeat.epoch: a template correlating under this with its epoch's first is a new epoch
    # a beat the monitor reads in artifact (Staged.artifact) does not enter the bed's template ring once the ring
    # holds artifact_after beats, until artifact_skip in a row were left out (a rhythm under lasting noise is still
    # learnt); artifact_skip 0: every beat enters.  A VT whose onset lay in 8-16 s of electrode motion made its own
    # template under the noise, was typed the bed's own once the noise ended, and raised no VT in 60 s (a reviewer's
    # VTs under NSTDB's real motion noise, 16 s after a bed's start, session 45).  A bed that started in noise and
    # left its first beats out had no template to speak of when a VT began under 0.6 mV of respiratory wander (read
    # as noise throughout): the VT's beats became the template at once and no VT was raised (a reviewer's synthetic
    # VT, session 45); so the first artifact_after beats enter whatever they lie in
    artifact_skip: int = 48
    artifact_after: int = 16
    rr_beats: int = 16
    keep_s: float = 3.0  # signal kept back for fiducials that arrive late (an ECG5000 beat closes at the next QRS)
    # P(ventricular) at which a beat is typed ventricular: 0.4, the typer's best VEB F1 in every cross-validation fold
    # (0.35-0.4; `python -m ecgmon.evaluation.veb fit`), an out-of-sample choice.  The live EC57 VEB F1 (the monitor
    # counts a beat V where this and the autoencoder's flag agree) was best at 0.2 of 0.2/0.3/0.4, in-sample, at 18
    # more audible advisories per bed-day on DS1 and SVDB dev: not shipped (docs/alarms.md).  The VT rule has its own
    # (LethalConfig.vt_p, 0.3).
    threshold: float = 0.4
    model: VTypeModel = field(default=MODEL)
    # the waveform network joined with the additive model once the bed has a template (None: the additive model
    # alone, as before it)
    net: VNet | None = field(default_factory=shipped)


@dataclass(frozen=True, slots=True)
class VBeat:
    """A typed beat.  ``index``: the fiducial as given (absolute sample index); ``centre``: the QRS's slope-energy
    peak found near it; ``template``: typed by the bed model (False: the population model); features as named
    in the module's docstring (``corr``, ``dwidth``, ``amp`` NaN without a template)."""

    index: int
    centre: int
    p_ventricular: float
    ventricular: bool
    template: bool
    width_s: float
    prem: float
    corr: float
    dwidth_s: float
    amp: float
    share: float
    rr_s: float  # RR before the beat (NaN for the first)
    logamp: float  # log of the QRS's peak-to-peak amplitude (mV)
    prev_corr: float = math.nan  # correlation (lag 0) of the QRS window with the previous typed beat's
    prev2_corr: float = math.nan  # ... with the typed beat before the previous one
    epoch: int = 0  # the template's morphology epoch at this beat (module docstring)


def features(width: float | np.ndarray, prem: float | np.ndarray, logamp: float | np.ndarray,
             template: bool | np.ndarray, corr: float | np.ndarray, dwidth: float | np.ndarray,
             amp: float | np.ndarray, share: float | np.ndarray) -> np.ndarray:
    """The model's base inputs (..., 8) from a beat's measurements (:data:`FEATURES`; the bed's four are 0
    without a template, a missing correlation 1).  The model's shape functions are constant beyond their knots,
    so nothing needs clipping here."""
    t = np.asarray(template, dtype=np.float64)
    raw = [np.nan_to_num(np.asarray(v, dtype=np.float64), nan=1.0 if i == 0 else 0.0)
           for i, v in enumerate((corr, dwidth, amp, share))]
    bed = [np.where(t > 0, v, 0.0) for v in raw]
    return np.stack(np.broadcast_arrays(np.asarray(width, np.float64), np.asarray(prem, np.float64),
                                        np.asarray(logamp, np.float64), t, *bed), axis=-1)


class VTyper:
    """One bed's beat typer: ``push(samples, fiducials) -> list[VBeat]``.

    ``samples``: the bed's next raw samples (mV, at ``fs`` Hz; NaN = missing); ``fiducials``: absolute sample
    indices of QRS complexes found so far (e.g. every ``Beat.index`` the bed's Segmenter emitted for these
    samples), in increasing order; each is typed once ``post`` samples after it have arrived.  Raises
    ValueError for a sampling rate outside 100-1000 Hz.

    Many beds: :meth:`add` then :meth:`stage` per bed, and :func:`type_staged` over every bed's staged beats
    at once (the live pipeline does so with the VF pool); the values are those of :meth:`push`.  The
    measurements are array operations over all staged beats (QRS centre from the slope energy's moving
    average, width from its cumulative sum, the lagged correlations with the template as one product); only
    the bed's running state (RR median, template ring and its medoid) is updated beat by beat.
    """

    def __init__(self, fs: float, cfg: VTyperConfig = VTyperConfig()) -> None:
        self.fs, self.cfg = check_fs(fs, "beat typer sampling rate"), cfg
        self.bp = CausalFilter.bandpass(self.fs, *cfg.band_hz)
        s = self.fs
        self.search, self.half = round(cfg.search_s * s), round(cfg.half_s * s)
        self.pre, self.post, self.lag = round(cfg.pre_s * s), round(cfg.post_s * s), max(1, round(cfg.lag_s * s))
        self.smooth = max(1, round(0.02 * s))
        self.keep = round(cfg.keep_s * s)
        self.need_after = max(self.search + self.half, self.search + self.post + self.lag) + self.smooth + 2
        self.need_before = max(self.search + self.half, self.search + self.pre + self.lag) + self.smooth + 2
        # a beat's measurements need the signal within this of its fiducial
        self.reach = self.search + max(self.half + self.smooth, self.pre + self.lag, self.post + self.lag)
        if cfg.net is not None:  # the network's window around the QRS centre (interpolated: a sample beyond)
            self.reach = max(self.reach, self.search + math.ceil(max(cfg.net.pre_s, cfg.net.post_s) * s) + 1)
        self.need_before = max(self.need_before, self.reach + 1)
        self.need_after = max(self.need_after, self.reach + 1)
        self.buf = np.zeros(0)
        self.buf_start = 0
        self.total = 0
        self.last = 0.0
        self.pending: deque[int] = deque()
        self.last_fid: int | None = None
        self.rrs: deque[float] = deque(maxlen=cfg.rr_beats)
        # the bed's last beats: z-normalised QRS windows (at lag 0), widths, amplitudes
        # the bed's last beats in a ring: z-normalised QRS windows (at lag 0), widths, amplitudes, and their
        # correlation matrix, kept up to date one row per beat (the medoid costs O(K^2), not O(K^2 L))
        k, n = cfg.template_beats, self.pre + self.post + 1
        self.ring = np.zeros((k, n))
        self.ring_wide = np.zeros((k, len(cfg.net.grid) if cfg.net is not None else 0))  # the network's windows
        self.ring_w = np.zeros(k)
        self.ring_a = np.zeros(k)
        self.cc = np.zeros((k, k))
        self.filled = 0
        self.slot = 0
        self.skipped = 0  # beats in artifact left out of the ring in a row (VTyperConfig.artifact_skip)
        self.prev_z: np.ndarray | None = None  # the previous typed beat's QRS window, where it was left out
        self.prev2_z: np.ndarray | None = None  # the QRS window of the typed beat before the previous one
        self.epoch = 0  # the template's morphology epoch (VBeat.epoch), and the template it began with
        self.epoch_z: np.ndarray | None = None
        self.last_z: np.ndarray | None = None  # the previous typed beat's QRS window (a copy)

    def push(self, samples: np.ndarray, fiducials: Sequence[float] = ()) -> list[VBeat]:
        self.add(samples, fiducials)
        job = self.stage()
        return type_staged([job])[0] if job is not None else []

    def add(self, samples: np.ndarray, fiducials: Sequence[float] = ()) -> None:
        """The bed's next samples and fiducials, kept until their beats are ready (:meth:`stage`).  Many beds:
        :func:`add_many`."""
        x = self._held(samples)
        self._append(self.bp(x) if len(x) else x, fiducials)

    def _held(self, samples: np.ndarray) -> np.ndarray:
        """The samples as float64, a missing one holding the last valid value (:func:`hold_missing`)."""
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"VTyper.push wants a 1-D array of samples, got shape {x.shape}")
        if len(x):
            x = hold_missing(x, self.last)
            self.last = float(x[-1])
        return x

    def _append(self, filtered: np.ndarray, fiducials: Sequence[float]) -> None:
        if len(filtered):
            self.buf = np.concatenate([self.buf, filtered])
            self.total += len(filtered)
        for f in fiducials:
            fi = round(f)
            if self.pending and fi <= self.pending[-1]:
                continue
            self.pending.append(fi)

    def stage(self) -> Staged | None:
        """The beats now ready (after :meth:`add`), each with
        the stretch of band-passed signal around it that its measurements need, taken out of the bed's buffer
        (which is then trimmed).  :func:`type_staged` types the staged beats of many beds at once."""
        ready: list[int] = []  # fiducials to type; a negative one: too early (no history), only its RR counts
        while self.pending and self.pending[0] + self.need_after <= self.total:
            fid = self.pending.popleft()
            ready.append(fid if fid - self.need_before >= self.buf_start else -1 - fid)
        job = None
        if ready:
            fids = np.asarray([f for f in ready if f >= 0], dtype=np.int64)
            r = self.reach
            segs = self.buf[(fids - r - self.buf_start)[:, None] + np.arange(2 * r + 1)]
            job = Staged(self, ready, fids, segs)
        keep = min(self.pending[0] if self.pending else self.total, self.total - self.keep) - self.need_before - 1
        drop = keep - self.buf_start
        if drop > 0:
            self.buf = self.buf[drop:]
            self.buf_start += drop
        return job

    def _state(self, ready: list[int], width: np.ndarray, pp: np.ndarray, z: np.ndarray, wide: np.ndarray,
               artifact: np.ndarray | None = None,
               ) -> tuple[list[tuple[float, float, bool, float, float, float, float, float, int]], list[np.ndarray],
                          list[np.ndarray]]:
        """The bed's running state (RR median, template ring), beat by beat: per typed beat (rr, prem, template,
        dwidth, amp, share, prev_corr, prev2_corr), and the template of each beat that had one (its QRS window and its
        network window, ``wide``'s).  ``artifact`` (per typed beat, or None): beats left out of the template ring
        (:attr:`VTyperConfig.artifact_skip`)."""
        cfg, fs = self.cfg, self.fs
        skip = artifact.tolist() if artifact is not None and cfg.artifact_skip > 0 else None
        rows: list[tuple[float, float, bool, float, float, float, float, float, int]] = []
        temps: list[np.ndarray] = []
        temps_wide: list[np.ndarray] = []
        widths, pps = width.tolist(), pp.tolist()
        i = 0
        for f in ready:
            fid = f if f >= 0 else -1 - f
            rr = (fid - self.last_fid) / fs if self.last_fid is not None else float("nan")
            if f < 0:  # no signal before it: not typed, but it ends the next beat's RR
                self.last_fid = fid
                continue
            if self.rrs and rr == rr and rr > 0:
                srt = sorted(self.rrs)
                q = len(srt)
                med = srt[q // 2] if q % 2 else (srt[q // 2 - 1] + srt[q // 2]) / 2
                prem = math.log(rr / med)
            else:
                prem = 0.0
            if rr == rr and 0.2 <= rr <= 3.0:
                self.rrs.append(rr)
            self.last_fid = fid
            k = self.filled
            templ = k >= cfg.min_template
            r = self.ring[:k] @ z[i] / z.shape[1]  # correlation of this beat with each stored one
            dwidth = amp = share = math.nan
            if templ:
                mi = self._medoid(k)
                if self.epoch_z is None or float(self.ring[mi] @ self.epoch_z) / z.shape[1] < cfg.epoch_corr:
                    self.epoch += 1  # the template turned to another complex
                    self.epoch_z = self.ring[mi].copy()
                temps.append(self.ring[mi].copy())
                temps_wide.append(self.ring_wide[mi].copy())
                share = int(np.count_nonzero(r >= 0.9)) / k  # the mean of the 0/1 values, exactly
                dwidth = widths[i] - float(self.ring_w[mi])
                amp = math.log((pps[i] + 1e-3) / (float(self.ring_a[mi]) + 1e-3))
            # the QRS window's correlation with the previous typed beat's (lag 0): the beats of a VT run are alike,
            # noise and motion 'beats' are not
            if self.prev_z is not None:  # the previous typed beat was left out of the ring
                prev = float(self.prev_z @ z[i] / z.shape[1])
            else:
                prev = float(r[(self.slot - 1) % len(self.ring)]) if k else math.nan
            prev2 = float(self.prev2_z @ z[i] / z.shape[1]) if self.prev2_z is not None else math.nan
            self.prev2_z, self.last_z = self.last_z, z[i].copy()  # copies: not views that hold the round's array
            rows.append((rr, prem, templ, dwidth, amp, share, prev, prev2, self.epoch))
            if skip is not None and skip[i] and self.filled >= cfg.artifact_after:
                # left out (once the ring holds artifact_after beats: a bed that starts in noise learns its first
                # beats as before); once artifact_skip in a row were, the rest enter
                if self.skipped < cfg.artifact_skip:
                    self.skipped += 1
                    self.prev_z = z[i].copy()  # not a view that holds the round's array
                    i += 1
                    continue
            else:
                self.skipped = 0
            self.prev_z = None
            j = self.slot
            self.ring[j], self.ring_w[j], self.ring_a[j] = z[i], width[i], pp[i]
            self.ring_wide[j] = wide[i]
            row = self.cc[j]  # this beat's correlations with the stored ones, itself 1; the matrix symmetric
            row[:k] = r
            row[k:] = 0.0
            row[j] = 1.0
            self.cc[:, j] = row
            self.slot = (j + 1) % len(self.ring)
            self.filled = min(self.filled + 1, len(self.ring))
            i += 1
        return rows, temps, temps_wide

    def _medoid(self, k: int) -> int:
        """The stored beat whose median correlation with the stored beats (itself included) is highest."""
        c = self.cc[:k, :k]
        q = k // 2
        if k % 2:
            med = np.partition(c, q, axis=1)[:, q]
        else:
            part = np.partition(c, (q - 1, q), axis=1)
            med = (part[:, q - 1] + part[:, q]) / 2
        return int(np.argmax(med))


def hold_missing(x: np.ndarray, last: float = 0.0) -> np.ndarray:
    """``x`` (1-D float64) with each missing sample (NaN, inf) holding the last valid value before it, ``last``
    before the first: the typer's filter needs numbers (the segmenter reports the signal loss).  ``x`` itself where
    nothing is missing."""
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    x = x.copy()
    idx = np.maximum.accumulate(np.where(~bad, np.arange(len(x)), -1))
    x[bad] = np.where(idx[bad] >= 0, x[np.maximum(idx[bad], 0)], last)
    return x


def add_many(typers: Sequence[VTyper], samples: Sequence[np.ndarray], fiducials: Sequence[Sequence[float]]) -> None:
    """``typers[i].add(samples[i], fiducials[i])`` for every ``i`` (each typer at most once), the same state after,
    the band-pass of all beds in one call per sampling rate and length (:func:`~ecgmon.segmentation.filters.
    filter_many`)."""
    xs = [t._held(x) for t, x in zip(typers, samples, strict=True)]
    for t, y, f in zip(typers, filter_many([t.bp for t in typers], xs), fiducials, strict=True):
        t._append(y, f)


@dataclass(slots=True)
class Staged:
    """One bed's beats ready to type (:meth:`VTyper.stage`): ``ready`` fiducials in order (a negative one,
    ``-1 - fid``, ends an RR but is not typed), ``fids`` (B,) those typed, ``segs`` (B, 2 reach + 1) the
    band-passed signal centred on each."""

    typer: VTyper
    ready: list[int]
    fids: np.ndarray
    segs: np.ndarray
    # (B,) whether each beat lies in artifact (the monitor's noise verdict): it does not enter the template ring
    # (VTyperConfig.artifact_skip); None: none does
    artifact: np.ndarray | None = None


def type_staged(jobs: Sequence[Staged]) -> list[list[VBeat]]:
    """Type the staged beats of many beds (:class:`VTyper` s of one sampling rate and configuration in one
    set of array operations; mixed ones group by rate): each beat's measurements over all beats at once (they
    depend on the signal alone), then each bed's running state beat by beat, in order, then the template
    correlations and the model over all beats.  Returns each job's :class:`VBeat` list, the values a per-bed
    :meth:`VTyper.push` gives."""
    out: list[list[VBeat]] = [[] for _ in jobs]
    groups: dict[tuple[float, VTyperConfig], list[int]] = {}
    for q, job in enumerate(jobs):
        groups.setdefault((job.typer.fs, job.typer.cfg), []).append(q)
    for idx in groups.values():
        _type_group([jobs[q] for q in idx], [out[q] for q in idx])
    return out


def _type_group(jobs: Sequence[Staged], outs: Sequence[list[VBeat]]) -> None:
    t0 = jobs[0].typer
    cfg, fs = t0.cfg, t0.fs
    s, h, m, r = t0.search, t0.half, t0.smooth, t0.reach
    pre, post, lag = t0.pre, t0.post, t0.lag
    segs = np.concatenate([j.segs for j in jobs]) if len(jobs) > 1 else jobs[0].segs
    nb = len(segs)
    fids = np.concatenate([j.fids for j in jobs]) if len(jobs) > 1 else jobs[0].fids
    if nb:
        span = s + h + m
        d2 = np.diff(segs[:, r - span: r + span + 1], axis=1) ** 2
        # the slope energy's 20 ms moving average ('same' convolution) where the QRS centre is sought
        c0 = h + m
        pos = c0 + np.arange(2 * s + 1)
        e = d2[:, pos[:, None] - m // 2 + np.arange(m)].sum(axis=2) / m  # (B, 2 s + 1)
        c = c0 + np.argmax(e, axis=1)
        cpos = r + c - span  # the QRS centre's position in segs (the fiducial is at r)
        rows_b = np.arange(nb)[:, None]
        around = d2[rows_b, c[:, None] + np.arange(-h, h + 1)]
        cum = np.cumsum(around, axis=1)
        tot = cum[:, -1:]
        width = np.where(tot[:, 0] > 0, ((cum < 0.9 * tot).sum(axis=1) - (cum < 0.1 * tot).sum(axis=1)) / fs, 0.0)
        n = pre + post + 1
        w = segs[rows_b, (cpos - pre)[:, None] + np.arange(n)]  # (B, n)
        pp = w.max(axis=1) - w.min(axis=1)
        wz = w - w.mean(axis=1, keepdims=True)
        z = wz / (wz.std(axis=1, keepdims=True) + 1e-9)
        wide = _wide(cfg.net, segs, cpos, fs) if cfg.net is not None else np.zeros((nb, 0))
    else:
        width = pp = np.zeros(0)
        z = np.zeros((0, pre + post + 1))
        wide = np.zeros((0, len(cfg.net.grid) if cfg.net is not None else 0))
        cpos = np.zeros(0, np.int64)
    # each bed's running state, beat by beat
    rows: list[tuple[float, float, bool, float, float, float, float, float, int]] = []
    temps: list[np.ndarray] = []
    temps_wide: list[np.ndarray] = []
    a = 0
    for job in jobs:
        k = len(job.fids)
        rw, tp, tw = job.typer._state(job.ready, width[a:a + k], pp[a:a + k], z[a:a + k], wide[a:a + k],
                                      job.artifact)
        rows += rw
        temps += tp
        temps_wide += tw
        a += k
    if not nb:
        return
    tm = np.array([x[2] for x in rows], dtype=bool)
    corr = np.full(nb, np.nan)
    if temps:
        # the largest Pearson correlation of the QRS window with the template over lags of +/- lag
        t = np.stack(temps)
        t = t - t.mean(axis=1, keepdims=True)
        tn = np.sqrt((t * t).sum(axis=1)) + 1e-12
        lo = cpos[tm] - pre - lag
        win = segs[np.flatnonzero(tm)[:, None, None],
                   lo[:, None, None] + np.arange(2 * lag + 1)[None, :, None] + np.arange(n)[None, None, :]]
        wc = win - win.mean(axis=2, keepdims=True)
        rc = np.einsum("bln,bn->bl", wc, t) / (np.sqrt((wc * wc).sum(axis=2)) * tn[:, None] + 1e-12)
        corr[tm] = rc.max(axis=1)
    rr_a, prem_a, _, dw_a, amp_a, share_a, prev_a, prev2_a = (np.array(v, dtype=np.float64)
                                                               for v in list(zip(*rows, strict=True))[:8])
    epochs = [x[8] for x in rows]
    logamp = np.log(pp + 1e-3)
    # features() in fewer array operations; the bed's four are 0 without a template
    x = np.zeros((nb, len(FEATURES)))
    x[:, 0], x[:, 1], x[:, 2] = width, prem_a, logamp
    x[:, 3] = tm
    if temps:
        x[tm, 4] = corr[tm]
        x[tm, 5] = dw_a[tm]
        x[tm, 6] = amp_a[tm]
        x[tm, 7] = share_a[tm]
    zz = cfg.model.logit(x)
    if cfg.net is not None and temps:
        # with a template: the network's logit and the additive model's, weighed (vnet's docstring)
        net = cfg.net
        meas = x[tm][:, [FEATURES.index(f) for f in INPUTS]]
        zz[tm] = net.weight * net.logit(wide[tm], np.stack(temps_wide), meas) + (1 - net.weight) * zz[tm] + net.shift
    p = 1.0 / (1.0 + np.exp(-np.clip(zz, -40.0, 40.0)))
    centre = fids + (cpos - r)
    # the beats' fields as Python numbers, one tolist() per field (the values float(x[i]) gives)
    cols = list(zip(fids.tolist(), centre.tolist(), p.tolist(), (p >= cfg.threshold).tolist(), tm.tolist(),
                    width.tolist(), prem_a.tolist(), corr.tolist(), dw_a.tolist(), amp_a.tolist(), share_a.tolist(),
                    rr_a.tolist(), logamp.tolist(), prev_a.tolist(), prev2_a.tolist(), epochs, strict=True))
    a = 0
    for job, o in zip(jobs, outs, strict=True):
        o += [VBeat(*c) for c in cols[a:a + len(job.fids)]]
        a += len(job.fids)


def _wide(net: VNet, segs: np.ndarray, cpos: np.ndarray, fs: float) -> np.ndarray:
    """The network's window of each beat: ``segs`` (B, n) band-passed signal, ``cpos`` (B,) the QRS centre's
    position in each row -> (B, L) the signal at ``cpos + grid * fs`` (linear interpolation, as ``np.interp``),
    z-normalised."""
    pos = cpos[:, None] + net.grid[None, :] * fs
    i0 = np.floor(pos).astype(np.int64)
    fr = pos - i0
    rows = np.arange(len(segs))[:, None]
    w = segs[rows, i0] * (1.0 - fr) + segs[rows, i0 + 1] * fr
    w = w - w.mean(axis=1, keepdims=True)
    return w / (w.std(axis=1, keepdims=True) + 1e-9)


class VTRule:
    """Ventricular tachycardia: ``run`` or more consecutive ventricular beats at a rate above ``rate_bpm`` (the
    run's mean RR).  ``update(beat) -> "raise" | "clear" | None``; clears at the first supraventricular beat."""

    def __init__(self, *, run: int = 5, rate_bpm: float = 100.0) -> None:
        if run < 2:
            raise ValueError("a VT run needs at least 2 beats")
        self.n, self.rate = run, rate_bpm
        self.rr: deque[float] = deque(maxlen=run - 1)
        self.count = 0
        self.active = False

    def update(self, beat: VBeat) -> str | None:
        if not beat.ventricular:
            self.count = 0
            self.rr.clear()
            if self.active:
                self.active = False
                return "clear"
            return None
        if self.count and beat.rr_s == beat.rr_s:
            self.rr.append(beat.rr_s)
        self.count += 1
        if (not self.active and self.count >= self.n and len(self.rr) == self.n - 1
                and 60.0 / float(np.mean(self.rr)) > self.rate):
            self.active = True
            return "raise"
        return None

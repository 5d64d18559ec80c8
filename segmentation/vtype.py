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
           is the bed's own and needs no labels).
``share``  the share of the bed's last 48 beats that correlate >= 0.9 with this one: the dominant beat is
           common, an ectopic one rare.
``dwidth`` the width minus the template's width (s).
``amp``    log ratio of the QRS peak-to-peak amplitude to the template's.

Until the bed has ``min_template`` beats (the first few seconds) only ``width``, ``prem`` and the QRS's
absolute amplitude (population knowledge) type a beat; then the bed's own features join them.  One quadratic
logistic regression (:func:`features`) does both, fitted on MIT-BIH DS1 (AAMI V = V, E against every other
beat) with leave-one-record-out cross-validation (``python -m ecgmon.evaluation.veb``; figures there).
:class:`VTRule` calls ventricular tachycardia on ``run`` (5) consecutive ventricular beats at a rate above
``rate_bpm`` (100), as the PhysioNet/CinC 2015 Challenge and bedside monitors define it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ecgmon.core.limits import check_fs
from ecgmon.segmentation.filters import CausalFilter

__all__ = ["FEATURES", "Staged", "VBeat", "VTRule", "VTypeModel", "VTyper", "VTyperConfig", "base_features",
           "features", "quadratic_form", "type_staged"]

# a beat's measurements; the bed's (corr .. share) are 0 and ``template`` 0 until the template has formed
FEATURES = ("width", "prem", "logamp", "template", "corr", "dwidth", "amp", "share")


@dataclass(frozen=True, slots=True)
class VTypeModel:
    """Binary logistic model: ``p = 1 / (1 + exp(-(bias + weights . (f - mean) / scale)))``."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def prob(self, f: np.ndarray) -> np.ndarray:
        z = ((np.asarray(f) - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


# Fitted by `python -m ecgmon.evaluation.veb fit build/veb/ds1.npz --c 0.05` on MIT-BIH DS1 (in-sample; the
# leave-one-record-out figures are in that module's docstring).
MODEL = VTypeModel(
    mean=(
        0.0473074, -0.00495566, 0.647481, 0.499132, 1.27473, 0.00154968, -0.00457772, 0.403986, 0.0026665, -0.000971181,
        0.0301729, 0.0236121, 0.0575617, 0.000166732, -0.000231583, 0.0183173, 0.0246664, -0.00513839, -0.00248364,
        0.0119487, -0.000379143, -0.000910207, 0.00287331, 0.598842, 0.323217, 0.856969, 0.0010018, 0.00783904,
        0.273227, 0.499132, 1.27473, 0.00154968, -0.00457772, 0.403986, 3.52112, 0.00152733, -0.0113281, 1.11135,
        0.000117074, 1.83035e-05, 0.000519621, 0.0155366, -0.00389579, 0.365404
    ),
    scale=(
        0.0207004, 0.156977, 0.423805, 0.499999, 1.37702, 0.0107085, 0.124562, 0.449665, 0.00265443, 0.00975432,
        0.0263631, 0.0278094, 0.0694598, 0.00103326, 0.00805736, 0.0227305, 0.0684081, 0.121893, 0.110932, 0.230237,
        0.00322277, 0.0359757, 0.068937, 0.509693, 0.440948, 1.20448, 0.00876137, 0.0897935, 0.39113, 0.499999, 1.37702,
        0.0107085, 0.124562, 0.449665, 4.01761, 0.0129117, 0.222023, 1.29243, 0.000632992, 0.003612, 0.00444307,
        0.0635479, 0.0742666, 0.437774
    ),
    weights=(
        2.26007, -0.891968, 0.122395, 0.469486, -0.317919, 0.983115, -0.0106042, -0.0769655, -0.842662, 0.204471,
        0.294089, -0.798947, 1.11154, -1.40669, 0.115653, 0.659311, 0.130583, -0.688625, 0.292073, 0.239992, 0.0817757,
        0.0432081, -0.269077, -0.390107, 1.54495, -0.294094, -0.308029, -0.0253134, -1.04963, 0.469486, -0.317919,
        0.983115, -0.0106042, -0.0769655, -0.303843, -0.681418, -0.119133, -1.17385, 0.157064, -0.0418231, 0.36166,
        0.167046, 0.159828, -1.48038
    ),
    bias=-5.717,
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
    rr_beats: int = 16
    keep_s: float = 3.0  # signal kept back for fiducials that arrive late (an ECG5000 beat closes at the next QRS)
    threshold: float = 0.45
    model: VTypeModel = field(default=MODEL)


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


# (width s, prem, logamp, dwidth s, amp): lower and upper limits
_CLIP = ((0.02, -0.65, -0.7, -0.05, -0.8), (0.14, 0.65, 1.5, 0.08, 0.7))
_LO, _HI = np.asarray(_CLIP[0]), np.asarray(_CLIP[1])


def base_features(width: float | np.ndarray, prem: float | np.ndarray, logamp: float | np.ndarray,
                  template: bool | np.ndarray, corr: float | np.ndarray, dwidth: float | np.ndarray,
                  amp: float | np.ndarray, share: float | np.ndarray) -> np.ndarray:
    """The model's eight linear inputs (..., 8) from a beat's measurements (:data:`FEATURES`; the bed's four are
    0 without a template): the correlation as Fisher's z (its scale is far from linear near 1), every value
    clipped to the range of the fitting data (DS1's 0.5-99.5th percentiles: a quadratic model must not
    extrapolate; a VT beat wider than any in DS1 would otherwise come out 'less ventricular')."""
    t = np.asarray(template, dtype=np.float64)
    cz = np.where(t > 0, np.arctanh(np.clip(np.nan_to_num(corr, nan=1.0), -0.95, 0.995)), 0.0)
    lo, hi = _CLIP
    raw = [width, prem, logamp, np.nan_to_num(dwidth), np.nan_to_num(amp)]
    width, prem, logamp, dw, am = (np.clip(v, a, b) for v, a, b in zip(raw, lo, hi, strict=True))
    bed = [np.where(t > 0, v, 0.0) for v in (dw, am, np.nan_to_num(share))]
    return np.stack(np.broadcast_arrays(width, prem, logamp, t, cz, *bed), axis=-1).astype(np.float64)


def features(width: float | np.ndarray, prem: float | np.ndarray, logamp: float | np.ndarray,
             template: bool | np.ndarray, corr: float | np.ndarray, dwidth: float | np.ndarray,
             amp: float | np.ndarray, share: float | np.ndarray) -> np.ndarray:
    """The model's inputs (..., 44) from a beat's measurements: the eight of :func:`base_features`, then every
    product of two of them (a quadratic logistic model: the bed's features matter only with a template, width
    more when the beat is premature, ...)."""
    x = base_features(width, prem, logamp, template, corr, dwidth, amp, share)
    i, j = np.triu_indices(x.shape[-1])
    return np.concatenate([x, x[..., i] * x[..., j]], axis=-1)


def quadratic_form(model: VTypeModel, d: int = len(FEATURES)) -> tuple[np.ndarray, np.ndarray, float]:
    """``model`` over :func:`features` rewritten on the eight base features ``x``: ``z = b + x @ lin +
    sum((x @ quad) * x)``, ``(lin (d,), quad (d, d), b)`` - the same logit in three array operations."""
    a = np.asarray(model.weights) / np.asarray(model.scale)
    b = float(model.bias - np.asarray(model.mean) @ a)
    i, j = np.triu_indices(d)
    quad = np.zeros((d, d))
    quad[i, j] = a[d:]
    return a[:d].copy(), quad, b


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
        self.ring_w = np.zeros(k)
        self.ring_a = np.zeros(k)
        self.cc = np.zeros((k, k))
        self.filled = 0
        self.slot = 0
        self.lin, self.quad, self.b = quadratic_form(cfg.model)

    def push(self, samples: np.ndarray, fiducials: Sequence[float] = ()) -> list[VBeat]:
        self.add(samples, fiducials)
        job = self.stage()
        return type_staged([job])[0] if job is not None else []

    def add(self, samples: np.ndarray, fiducials: Sequence[float] = ()) -> None:
        """The bed's next samples and fiducials, kept until their beats are ready (:meth:`stage`)."""
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"VTyper.push wants a 1-D array of samples, got shape {x.shape}")
        if len(x):
            bad = ~np.isfinite(x)
            if bad.any():
                x = x.copy()
                idx = np.maximum.accumulate(np.where(~bad, np.arange(len(x)), -1))
                x[bad] = np.where(idx[bad] >= 0, x[np.maximum(idx[bad], 0)], self.last)
            self.last = float(x[-1])
            self.buf = np.concatenate([self.buf, self.bp(x)])
            self.total += len(x)
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

    def _state(self, ready: list[int], width: np.ndarray, pp: np.ndarray, z: np.ndarray,
               ) -> tuple[list[tuple[float, float, bool, float, float, float]], list[np.ndarray]]:
        """The bed's running state (RR median, template ring), beat by beat: per typed beat (rr, prem, template,
        dwidth, amp, share), and the template of each beat that had one."""
        cfg, fs = self.cfg, self.fs
        rows: list[tuple[float, float, bool, float, float, float]] = []
        temps: list[np.ndarray] = []
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
                temps.append(self.ring[mi].copy())
                share = int(np.count_nonzero(r >= 0.9)) / k  # the mean of the 0/1 values, exactly
                dwidth = widths[i] - float(self.ring_w[mi])
                amp = math.log((pps[i] + 1e-3) / (float(self.ring_a[mi]) + 1e-3))
            rows.append((rr, prem, templ, dwidth, amp, share))
            j = self.slot
            self.ring[j], self.ring_w[j], self.ring_a[j] = z[i], width[i], pp[i]
            row = self.cc[j]  # this beat's correlations with the stored ones, itself 1; the matrix symmetric
            row[:k] = r
            row[k:] = 0.0
            row[j] = 1.0
            self.cc[:, j] = row
            self.slot = (j + 1) % len(self.ring)
            self.filled = min(self.filled + 1, len(self.ring))
            i += 1
        return rows, temps

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

@dataclass(slots=True)
class Staged:
    """One bed's beats ready to type (:meth:`VTyper.stage`): ``ready`` fiducials in order (a negative one,
    ``-1 - fid``, ends an RR but is not typed), ``fids`` (B,) those typed, ``segs`` (B, 2 reach + 1) the
    band-passed signal centred on each."""

    typer: VTyper
    ready: list[int]
    fids: np.ndarray
    segs: np.ndarray


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
    else:
        width = pp = np.zeros(0)
        z = np.zeros((0, pre + post + 1))
        cpos = np.zeros(0, np.int64)
    # each bed's running state, beat by beat
    rows: list[tuple[float, float, bool, float, float, float]] = []
    temps: list[np.ndarray] = []
    a = 0
    for job in jobs:
        k = len(job.fids)
        rw, tp = job.typer._state(job.ready, width[a:a + k], pp[a:a + k], z[a:a + k])
        rows += rw
        temps += tp
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
    rr_a, prem_a, _, dw_a, amp_a, share_a = (np.array(v, dtype=np.float64) for v in zip(*rows, strict=True))
    logamp = np.log(pp + 1e-3)
    # base_features in fewer array operations; the bed's four are 0 without a template
    x = np.zeros((nb, len(FEATURES)))
    x[:, 0], x[:, 1], x[:, 2] = width, prem_a, logamp
    x[:, :3] = np.clip(x[:, :3], _LO[:3], _HI[:3])
    x[:, 3] = tm
    if temps:
        x[tm, 4] = np.arctanh(np.clip(corr[tm], -0.95, 0.995))
        x[tm, 5] = np.clip(dw_a[tm], _LO[3], _HI[3])
        x[tm, 6] = np.clip(amp_a[tm], _LO[4], _HI[4])
        x[tm, 7] = share_a[tm]
    zz = t0.b + x @ t0.lin + ((x @ t0.quad) * x).sum(axis=1)
    p = 1.0 / (1.0 + np.exp(-np.clip(zz, -40.0, 40.0)))
    centre = fids + (cpos - r)
    # the beats' fields as Python numbers, one tolist() per field (the values float(x[i]) gives)
    cols = list(zip(fids.tolist(), centre.tolist(), p.tolist(), (p >= cfg.threshold).tolist(), tm.tolist(),
                    width.tolist(), prem_a.tolist(), corr.tolist(), dw_a.tolist(), amp_a.tolist(), share_a.tolist(),
                    rr_a.tolist(), logamp.tolist(), strict=True))
    a = 0
    for job, o in zip(jobs, outs, strict=True):
        o += [VBeat(*c) for c in cols[a:a + len(job.fids)]]
        a += len(job.fids)


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

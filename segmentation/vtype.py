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
           template: the element-wise median of its last 16 beats typed supraventricular (the running-
           template approach of Hamilton & Tompkins 1986 and of de Chazal, O'Dwyer & Reilly 2004's
           morphology features; here the template is the bed's own, so nothing needs labels).
``dwidth`` the width minus the template beats' median width (s).
``amp``    log ratio of the QRS peak-to-peak amplitude to the template's.

Until the template holds ``min_template`` beats (the first few seconds), a population model on ``width``,
``prem`` and the QRS's absolute amplitude types the beat; then a bed model on all the features.  Both are
logistic regressions fitted on MIT-BIH DS1 (AAMI V = V, E against every other beat) with record-level folds
(``python -m ecgmon.evaluation.veb``; figures there).  :class:`VTRule` calls ventricular tachycardia on
``run`` (5) consecutive ventricular beats at a rate above ``rate_bpm`` (100), as the PhysioNet/CinC 2015
Challenge and bedside monitors define it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ecgmon.core.limits import check_fs
from ecgmon.segmentation.filters import CausalFilter

__all__ = ["BED_FEATURES", "POP_FEATURES", "VBeat", "VTRule", "VTypeModel", "VTyper", "VTyperConfig"]

POP_FEATURES = ("width", "prem", "logamp")
BED_FEATURES = ("width", "prem", "corr", "dwidth", "amp")


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


# Fitted by `python -m ecgmon.evaluation.veb fit` on MIT-BIH DS1 (placeholders until then: wide or premature).
POP_MODEL = VTypeModel((0.1, 0.0, 0.0), (0.03, 0.2, 1.0), (3.0, -1.0, 0.0), -1.0)
BED_MODEL = VTypeModel((0.1, 0.0, 0.9, 0.0, 0.0), (0.03, 0.2, 0.1, 0.03, 0.3), (1.0, -1.0, -2.0, 2.0, 0.5), -2.0)


@dataclass(frozen=True, slots=True)
class VTyperConfig:
    """Times in seconds."""

    band_hz: tuple[float, float] = (1.0, 35.0)
    search_s: float = 0.08  # the QRS centre is sought within this of the given fiducial
    half_s: float = 0.15  # the slope energy that makes the width: +/- this around the QRS centre
    pre_s: float = 0.10  # the template window: pre_s before the QRS centre ...
    post_s: float = 0.15  # ... to post_s after it
    lag_s: float = 0.02
    template_beats: int = 16
    min_template: int = 4
    rr_beats: int = 16
    keep_s: float = 3.0  # signal kept back for fiducials that arrive late (an ECG5000 beat closes at the next QRS)
    threshold: float = 0.5
    pop_model: VTypeModel = field(default=POP_MODEL)
    bed_model: VTypeModel = field(default=BED_MODEL)


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
    rr_s: float  # RR before the beat (NaN for the first)
    logamp: float  # log of the QRS's peak-to-peak amplitude (mV)


class VTyper:
    """One bed's beat typer: ``push(samples, fiducials) -> list[VBeat]``.

    ``samples``: the bed's next raw samples (mV, at ``fs`` Hz; NaN = missing); ``fiducials``: absolute sample
    indices of QRS complexes found so far (e.g. every ``Beat.index`` the bed's Segmenter emitted for these
    samples), in increasing order; each is typed once ``post`` samples after it have arrived.  Raises
    ValueError for a sampling rate outside 100-1000 Hz.
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
        self.buf = np.zeros(0)
        self.buf_start = 0
        self.total = 0
        self.last = 0.0
        self.pending: deque[int] = deque()
        self.last_fid: int | None = None
        self.rrs: deque[float] = deque(maxlen=cfg.rr_beats)
        self.templ: deque[np.ndarray] = deque(maxlen=cfg.template_beats)
        self.templ_w: deque[float] = deque(maxlen=cfg.template_beats)
        self.templ_a: deque[float] = deque(maxlen=cfg.template_beats)
        self._template: np.ndarray | None = None

    def push(self, samples: np.ndarray, fiducials: Sequence[float] = ()) -> list[VBeat]:
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
        out = []
        while self.pending and self.pending[0] + self.need_after <= self.total:
            fid = self.pending.popleft()
            if fid - self.need_before < self.buf_start:
                self.last_fid = fid
                continue
            out.append(self._type(fid))
        keep = min(self.pending[0] if self.pending else self.total, self.total - self.keep) - self.need_before - 1
        drop = keep - self.buf_start
        if drop > 0:
            self.buf = self.buf[drop:]
            self.buf_start += drop
        return out

    def _type(self, fid: int) -> VBeat:
        cfg = self.cfg
        b0 = self.buf_start
        a = fid - self.search - self.half - self.smooth - b0
        seg = self.buf[a: fid + self.search + self.half + self.smooth + 1 - b0]
        d2 = np.diff(seg) ** 2
        e = np.convolve(d2, np.ones(self.smooth) / self.smooth, mode="same")
        c0 = self.half + self.smooth  # position of fid - search in e
        c = c0 + int(np.argmax(e[c0: c0 + 2 * self.search + 1]))
        centre = fid - b0 + (c - (self.search + self.half + self.smooth))  # buf position of the QRS centre
        around = d2[c - self.half: c + self.half + 1]
        cum = np.cumsum(around)
        tot = float(cum[-1]) if len(cum) else 0.0
        width = float(np.searchsorted(cum, 0.9 * tot) - np.searchsorted(cum, 0.1 * tot)) / self.fs if tot > 0 else 0.0
        w = self.buf[centre - self.pre: centre + self.post + 1]
        pp = float(w.max() - w.min())
        rr = (fid - self.last_fid) / self.fs if self.last_fid is not None else float("nan")
        prem = float(np.log(rr / np.median(self.rrs))) if self.rrs and rr == rr and rr > 0 else 0.0
        if rr == rr and 0.2 <= rr <= 3.0:
            self.rrs.append(rr)
        self.last_fid = fid
        corr = dwidth = amp = float("nan")
        templ = self._template is not None and len(self.templ) >= cfg.min_template
        if templ:
            assert self._template is not None
            corr = self._corr(centre)
            dwidth = width - float(np.median(self.templ_w))
            amp = float(np.log((pp + 1e-3) / (float(np.median(self.templ_a)) + 1e-3)))
            p = float(cfg.bed_model.prob(np.array([width, prem, corr, dwidth, amp])))
        else:
            p = float(cfg.pop_model.prob(np.array([width, prem, np.log(pp + 1e-3)])))
        v = p >= cfg.threshold
        if not v:
            self.templ.append(w - w.mean())
            self.templ_w.append(width)
            self.templ_a.append(pp)
            self._template = np.median(np.stack(self.templ), axis=0) if len(self.templ) >= cfg.min_template else None
        return VBeat(fid, centre + b0, p, v, templ, width, prem, corr, dwidth, amp, rr, float(np.log(pp + 1e-3)))

    def _corr(self, centre: int) -> float:
        """Largest Pearson correlation of the beat's QRS window with the template over lags of +/- lag."""
        assert self._template is not None
        t = self._template - self._template.mean()
        tn = float(np.sqrt((t * t).sum())) + 1e-12
        n = len(t)
        lo = centre - self.pre - self.lag
        seg = self.buf[lo: lo + n + 2 * self.lag]
        win = np.lib.stride_tricks.sliding_window_view(seg, n)  # (2 lag + 1, n)
        wc = win - win.mean(axis=1, keepdims=True)
        r = (wc @ t) / (np.sqrt((wc * wc).sum(axis=1)) * tn + 1e-12)
        return float(r.max())


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

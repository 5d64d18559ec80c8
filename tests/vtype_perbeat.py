"""The beat typer's per-beat implementation as it was before it was vectorised over a block's beats (commit
f5d7974, segmentation/vtype.py): the reference that tests/test_vtype.py checks the vectorised VTyper against."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from ecgmon.core.limits import check_fs
from ecgmon.segmentation.filters import CausalFilter
from ecgmon.segmentation.vtype import VBeat, VTyperConfig, features


class PerBeatVTyper:
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
        corr = dwidth = amp = share = float("nan")
        templ = self.filled >= cfg.min_template
        z = self._znorm(w)
        k = self.filled
        r = self.ring[:k] @ z / len(z)  # correlation of this beat with each stored one
        if templ:
            # the medoid: the stored beat with the highest median correlation to the others
            m = int(np.argmax(np.median(self.cc[:k, :k], axis=1)))
            corr = self._corr(centre, self.ring[m])
            share = float(np.mean(r >= 0.9))
            dwidth = width - float(self.ring_w[m])
            amp = float(np.log((pp + 1e-3) / (float(self.ring_a[m]) + 1e-3)))
        logamp = float(np.log(pp + 1e-3))
        p = float(cfg.model.prob(features(width, prem, logamp, templ, corr, dwidth, amp, share)))
        v = p >= cfg.threshold
        j = self.slot
        self.ring[j], self.ring_w[j], self.ring_a[j] = z, width, pp
        rr_full = np.zeros(len(self.ring))
        rr_full[:k] = r
        rr_full[j] = 1.0
        self.cc[j, :], self.cc[:, j] = rr_full, rr_full
        self.slot = (j + 1) % len(self.ring)
        self.filled = min(self.filled + 1, len(self.ring))
        return VBeat(fid, centre + b0, p, v, templ, width, prem, corr, dwidth, amp, share, rr, logamp)

    @staticmethod
    def _znorm(w: np.ndarray) -> np.ndarray:
        c = w - w.mean()
        return c / (float(c.std()) + 1e-9)


    def _corr(self, centre: int, template: np.ndarray) -> float:
        """Largest Pearson correlation of the beat's QRS window with the template over lags of +/- lag."""
        t = template - template.mean()
        tn = float(np.sqrt((t * t).sum())) + 1e-12
        n = len(t)
        lo = centre - self.pre - self.lag
        seg = self.buf[lo: lo + n + 2 * self.lag]
        win = np.lib.stride_tricks.sliding_window_view(seg, n)  # (2 lag + 1, n)
        wc = win - win.mean(axis=1, keepdims=True)
        r = (wc @ t) / (np.sqrt((wc * wc).sum(axis=1)) * tn + 1e-12)
        return float(r.max())

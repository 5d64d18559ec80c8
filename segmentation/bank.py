"""Segmentation of many beds in one vectorised pass: the QRS detector's envelope over a ``(beds, samples)`` array.

The per-sample work of :class:`~ecgmon.segmentation.peaks.QRSDetector` (Pan & Tompkins 1985: band-pass,
first difference, squaring, moving-window integration) is the same arithmetic for every bed of one sampling
rate; only the filter state differs.  :func:`envelopes` runs it for a group of beds whose chunks have the same
sampling rate and length as one ``scipy.signal.sosfilt`` call over ``axis=-1`` with per-bed initial conditions
(``zi`` of shape ``(sections, beds, 2)``), one first difference and one running sum, and hands each bed's
state back to its detector.  Each row sees exactly the operations a per-bed :meth:`QRSDetector.push` would
do, in the same order, so the envelope, the detections and the beats are the same, bit for bit
(``tests/test_bank.py``).  The candidate search runs over the group too (:func:`decide_many`); the decision rules stay
per candidate, for the beds that have one (:meth:`QRSDetector.decide`).

:func:`segment_round` is the whole round for the segmenters: the signal-loss check of every chunk of one length
at once, the envelopes, the candidate search, then the decisions of the beds with a candidate; the QRS fiducials of
every bed's new QRS in one pass (:func:`~ecgmon.segmentation.beats.onsets_many`), the signal-quality ratings that
fall due (:func:`~ecgmon.segmentation.sqi.rate_many`) and every bed's ECG5000 beats resampled in one pass
(:func:`~ecgmon.segmentation.beats.resample_many`), each bit for bit what the per-bed code gives
(``tests/test_fastpaths.py``).  Chunks with signal loss (NaN, flat runs), empty chunks and groups of one take the
per-bed path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from scipy import signal
from scipy.ndimage import maximum_filter1d

from ecgmon.core.messages import Beat
from ecgmon.segmentation.beats import Segmenter, onsets_many, resample_many, spans_many
from ecgmon.segmentation.filters import window_sums
from ecgmon.segmentation.peaks import QRSDetector, reversals
from ecgmon.segmentation.represent import cut_many
from ecgmon.segmentation.sqi import rate_many

__all__ = ["decide_many", "envelopes", "segment_round"]

MIN_GROUP = 2  # beds of one (rate, length) needed for the batched pass; fewer take the per-bed path
_NONE = np.zeros(0, dtype=np.int64)


def envelopes(dets: Sequence[QRSDetector], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Envelope and ``|band-passed difference|`` of ``x`` (float64, ``(len(dets), n)``, row ``i`` the next
    ``n`` samples of ``dets[i]``'s stream), each ``(len(dets), n)``; every detector's filter state (band-pass
    ``zi``, the last filtered sample, the moving average's tail) advanced as its own ``push`` would.

    The detectors must share one design (sampling rate and configuration): ``ValueError`` otherwise."""
    b, n = x.shape
    if b != len(dets):
        raise ValueError(f"{len(dets)} detectors for {b} rows of samples")
    if n == 0:
        return np.zeros((b, 0)), np.zeros((b, 0))
    d0 = dets[0]
    sos, m = d0.bp.sos, d0.ma.n
    for d in dets:
        if d.cfg is d0.cfg and d.fs == d0.fs:  # one configuration and rate: one design (the common case, at once)
            continue
        if d.ma.n != m or d.bp.sos.shape != sos.shape or not np.array_equal(d.bp.sos, sos):
            raise ValueError("envelopes() needs detectors of one design (sampling rate and band)")
    # band-pass with each bed's state; a fresh detector starts in steady state for its first sample's level
    zis = [d.bp.zi for d in dets]
    have = [z for z in zis if z is not None]
    if len(have) == b:
        zi = np.stack(have, axis=1)
    else:
        zi = np.empty((sos.shape[0], b, 2))
        for i, d in enumerate(dets):
            zi[:, i] = d.bp.zi if d.bp.zi is not None else d.bp.zi_unit * x[i, 0]
    f, zf = signal.sosfilt(sos, x, axis=-1, zi=zi)
    # first difference, the first sample against the previous chunk's last (0 for a fresh detector)
    prev = np.array([f[i, 0] if d._prev_last is None else d._prev_last for i, d in enumerate(dets)])
    dd = np.empty((b, n))
    dd[:, 0] = f[:, 0] - prev
    np.subtract(f[:, 1:], f[:, :-1], out=dd[:, 1:])
    # causal moving average of d^2 over m samples, carrying each bed's last m - 1 squared differences
    sq = dd * dd
    ext = np.concatenate([np.stack([d.ma.tail for d in dets]), sq], axis=1) if m > 1 else sq
    e = window_sums(ext, m)
    e /= m
    last = f[:, -1].tolist()
    zs = np.ascontiguousarray(zf.transpose(1, 0, 2))  # each bed's state a C-contiguous (sections, 2) block
    paced = [i for i, d in enumerate(dets) if d.pace]
    if paced:  # the raw samples for the candidates' pacemaker-pulse check, and where they are steep (all at once)
        xp = x[paced] if len(paced) < b else x
        tails = np.stack([dets[i].raw_tail(xp[k, 0]) for k, i in enumerate(paced)])
        steep = reversals(tails, xp, np.array([dets[i].pace_thr for i in paced]), d0.pace_m,
                          np.array([dets[i].pace_swing for i in paced]))
        rows = [bool(v) for v in np.atleast_1d(steep.any(axis=1))]
        for k, i in enumerate(paced):
            dets[i].keep_raw(x[i], np.flatnonzero(steep[k]) if rows[k] else _NONE)
    for i, d in enumerate(dets):
        d.bp.zi = zs[i]
        d._prev_last = last[i]
        if m > 1:
            d.ma.tail = ext[i, ext.shape[1] - (m - 1):]
        if d.keeps_raw and not d.pace:  # the raw samples of the others, for their edge check (_Cand.edge)
            d.keep_raw(x[i], _NONE)
    return e, np.abs(dd)


def decide_many(dets: Sequence[QRSDetector], e: np.ndarray, s: np.ndarray) -> list[list[int]]:
    """``dets[i].push_envelope(e[i], s[i])`` for every ``i`` (detectors of one design, as :func:`envelopes` returns
    their envelopes; ``e`` and ``s`` ``(len(dets), n)``) -> each detector's QRS decided, the same, with the same
    state after.

    The candidate search of beds whose held envelope stands alike (the same length and search position in it: every
    bed in steady state) runs over their envelopes as one array: the local maxima, and for a bed outside a
    tachycardia (:meth:`QRSDetector._windows` then gives the fixed half-window and look-ahead) the first two
    candidate tests (the largest within its half-window, not dwarfed within the look-ahead).  A bed with a local
    maximum that passes both (or in a tachycardia, whose windows follow each decision, or over 100 bpm, where the
    look-ahead's rising edge dwarfs nothing: :meth:`QRSDetector._edge_trim`, or whose half-window is shorter after a
    wide complex's other edge, at any rate: a reviewer's wide rhythm at 65 bpm, 213 QRS alone and 180 with other beds,
    session 52) is decided by its detector's own rules
    from those maxima; a bed with none has no candidate (the tests and their windows are the detector's,
    which no decision changes before a first candidate), so only its buffers move on: most beds at most chunks."""
    b, n = e.shape
    if b != len(dets) or s.shape != e.shape:
        raise ValueError(f"{len(dets)} detectors for envelopes of shape {e.shape} and {s.shape}")
    out: list[list[int]] = [[] for _ in dets]
    if n == 0:
        return out
    d0 = dets[0]
    dom, half, half_lo = d0.dom, d0.half, d0.half_lo
    dom2 = d0.cfg.dominance ** 2
    alike: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, d in enumerate(dets):
        alike[(d.total - d.env_start, d.next_p - d.env_start)].append(i)
    for (held, off), idx in alike.items():
        if held:
            env = np.concatenate([np.stack([dets[i].env for i in idx]), e[idx]], axis=1)
            slope = np.concatenate([np.stack([dets[i].slope for i in idx]), s[idx]], axis=1)
        else:
            env, slope = e[idx], s[idx]
        last = held + n - dom - 1  # relative to env_start, as below
        if last < off:  # too little look-ahead yet: nothing searched
            for k, i in enumerate(idx):
                d = dets[i]
                d.env, d.slope, d.total = env[k], slope[k], d.total + n
                d.trim()
            continue
        lo = max(0, off - dom)
        seg = env[:, lo:]
        a, bb = off - lo, last - lo + 1
        peak = seg[:, a:bb] == _max_around(seg, a, bb, half_lo, half_lo)
        if a == 0:
            peak[:, 0] = False
            peak[:, 1:] &= seg[:, 1:bb] > seg[:, : bb - 1]
        else:
            peak &= seg[:, a:bb] > seg[:, a - 1:bb - 1]
        has = peak.any(axis=1)
        if has.any():
            wide = _max_around(seg, a, bb, half, half)
            ahead = _max_around(seg, a, bb, 0, dom)
            v = seg[:, a:bb]
            passed = (peak & ~(v < wide) & ~(v < dom2 * ahead)).any(axis=1).tolist()
        has_l = has.tolist()
        drop = last + 1 - d0.keep_back  # what trim() drops once next_p is last + 1 (relative)
        for k, i in enumerate(idx):
            d = dets[i]
            if has_l[k] and (passed[k] or d._fast_rr() is not None or d._edge_trim() or d._windows()[0] < half):
                d.env, d.slope, d.total = env[k], slope[k], d.total + n
                out[i] = d.decide((np.flatnonzero(peak[k]) + a).tolist())
            elif drop > 0:
                d.env, d.slope = env[k, drop:], slope[k, drop:]
                d.total += n
                d.next_p = d.env_start + last + 1
                d.env_start += drop
            else:
                d.env, d.slope, d.total = env[k], slope[k], d.total + n
                d.next_p = d.env_start + last + 1
    return out


def _max_around(seg: np.ndarray, a: int, b: int, left: int, right: int) -> np.ndarray:
    """``seg[:, max(0, i - left):i + right + 1].max(axis=1)`` for every ``i`` in ``[a, b)`` (``i + right`` inside
    ``seg``): one max filter over the columns those windows span."""
    s0 = max(0, a - left)
    size = left + right + 1
    m = maximum_filter1d(seg[:, s0:b + right], size=size, axis=1, origin=left - size // 2, mode="constant",
                         cval=-np.inf)
    return m[:, a - s0:b - s0]


def segment_round(segs: Sequence[Segmenter], chunks: Sequence[np.ndarray]) -> list[list[Beat]]:
    """``segs[i].push(chunks[i])`` for every ``i`` (each segmenter at most once), the QRS envelopes of the
    clean chunks computed in one pass per group of one sampling rate, detector design and chunk length.
    Returns each segmenter's beats; ``signal_loss`` and ``found`` are set on each as ``push`` sets them."""
    if len({id(s) for s in segs}) != len(segs):
        raise ValueError("segment_round() takes each segmenter at most once")
    prepared = _split(segs, chunks)
    groups: dict[tuple[float, int, object], list[int]] = defaultdict(list)
    for i, (x, parts) in enumerate(prepared):
        if len(parts) == 1 and not parts[0][2]:
            groups[(segs[i].fs, len(x), segs[i].det_cfg)].append(i)
    decided: dict[int, list[int]] = {}  # each grouped bed's QRS (detector sample indices), decided with its group
    for idx in groups.values():
        if len(idx) < MIN_GROUP:
            continue
        dets = [segs[i].detector for i in idx]
        e, s = envelopes(dets, np.stack([prepared[i][0] for i in idx]))
        for i, peaks in zip(idx, decide_many(dets, e, s), strict=True):
            decided[i] = peaks
    out: list[list[Beat]] = [[] for _ in segs]
    halves: list[tuple[int, np.ndarray, list[int]]] = []  # clean ECG5000 chunks: (bed, samples, peaks)
    begun: list[tuple[int, np.ndarray, list[int]]] = []  # clean chunks of window-beat beds (real ECG)
    for i, (x, parts) in enumerate(prepared):
        sg = segs[i]
        if len(parts) == 1 and not parts[0][2]:
            peaks = sg.begin(x, decided=decided.get(i), defer_quality=True)
            (halves if sg.window is None else begun).append((i, x, peaks))
        else:
            out[i] = sg.push_parts(x, parts, decided=decided.get(i), defer_cuts=True)
    # every bed's QRS fiducials at once (ECG5000 beds; a window bed's each), their QRS' spans at once, then each bed's
    # beats
    onsets = onsets_many([(segs[i], p) for i, _, peaks in halves for p in peaks])
    fids: list[list[float]] = []
    at = 0
    for _, _, peaks in halves:
        fids.append(onsets[at:at + len(peaks)])
        at += len(peaks)
    fids += [segs[i].fiducials(peaks) for i, _, peaks in begun]
    spans_many([(segs[i], f) for (i, _, _), f in zip((*halves, *begun), fids, strict=True)])
    for (i, x, peaks), f in zip((*halves, *begun), fids, strict=True):
        out[i] = segs[i].finish(x, peaks, f)
    windowed = [i for i, _, _ in begun]  # their quality rating deferred too
    # every bed's signal-quality rating that fell due, at once; a noisy one marks the bed's beats of this push
    # (the ECG5000 beds' deferred cuts, the window beds' beats), as the rating in its own push would have
    due = [i for i in (*(i for i, _, _ in halves), *windowed) if segs[i].quality.due]
    if due:
        rate_many([segs[i].quality for i in due])
        for i in due:
            segs[i].flag_deferred()
    # every window-beat bed's beats cut at once (real ECG)
    jobs = [(segs[i].window, c[0], c[1], c[2]) for i in windowed for c in segs[i].wcuts or ()]
    rows, noise, mismatch, scale = cut_many(jobs)  # type: ignore[arg-type]  # window beds have a cutter
    at = 0
    for i in windowed:
        k = len(segs[i].wcuts or ())
        out[i] = segs[i].make_window_beats(rows[at:at + k], noise[at:at + k], mismatch[at:at + k], scale[at:at + k])
        at += k
    # every bed's ECG5000 beats resampled at once
    cutting = [i for i, sg in enumerate(segs) if sg.cuts is not None]
    cuts = [(c[0], c[1], c[2]) for i in cutting for c in segs[i].cuts or ()]
    if cuts:
        rows = resample_many(cuts)
        at = 0
        for i in cutting:
            k = len(segs[i].cuts or ())
            if k:
                out[i] = segs[i].make_beats(rows[at:at + k])
                at += k
            else:
                segs[i].cuts = None
    else:
        for i in cutting:
            segs[i].cuts = None
    return out


Parts = list[tuple[int, int, bool]]


def _split(segs: Sequence[Segmenter], chunks: Sequence[np.ndarray]) -> list[tuple[np.ndarray, Parts]]:
    """``Segmenter.split`` of every chunk; the signal-loss check (:meth:`Segmenter._parts`' fast path: all finite, no
    run of identical samples longer than ``flat_n`` across the chunk's ends) for each group of one length at once.
    A chunk that fails it is split by its own segmenter, from the state it had."""
    out: list[tuple[np.ndarray, Parts] | None] = [None] * len(segs)
    by_len: dict[int, list[int]] = defaultdict(list)
    xs = [np.asarray(c, dtype=np.float64) for c in chunks]
    for i, x in enumerate(xs):
        if 1 < len(x) < segs[i].flat_n:
            by_len[len(x)].append(i)
    for n, idx in by_len.items():
        if len(idx) < MIN_GROUP:
            continue
        x = np.stack([xs[i] for i in idx])
        prev = np.array([segs[i]._last for i in idx])
        run = np.array([segs[i]._flat_run for i in idx])
        flat_n = np.array([segs[i].flat_n for i in idx])
        ch = x[:, 1:] != x[:, :-1]
        has = ch.any(axis=1)
        first = np.where(has, ch.argmax(axis=1) + 1, n)
        last = n - 2 - ch[:, ::-1].argmax(axis=1)  # the last change (where ``has``)
        lead = first + np.where(x[:, 0] == prev, run, 0)  # NaN == NaN is False, as in _parts
        ok = np.isfinite(x.sum(axis=1)) & (lead <= flat_n)
        new_run = np.where(has, n - 1 - last, lead).tolist()
        ends = x[:, -1].tolist()
        for k in np.flatnonzero(ok).tolist():
            seg = segs[idx[k]]
            seg.signal_loss, seg.found, seg.found_at, seg.found_when, seg.passed = False, [], [], [], []
            seg._last, seg._flat_run = ends[k], new_run[k]
            out[idx[k]] = (x[k], [(0, n, False)])
    return [o if o is not None else s.split(x) for o, s, x in zip(out, segs, xs, strict=True)]

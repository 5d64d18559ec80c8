"""The segmentation stage's faster paths give the values of the plain code they replaced, bit for bit.

Each reference below is the plain implementation as it was before the fast path (kept here, not in the package),
run on seeded synthetic ECG: the signal-quality indices, the beat typer's bed state, the VF pool, and the whole
segmentation stage of a monitor (``Monitor.segment_many`` over a ward of beds with ectopy, VT, VF, noise and
dropouts) against the same monitor fed chunk by chunk (each bed alone: groups of one take the per-bed paths).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from ecgmon.segmentation import sqi as S

# ---------------------------------------------------------------------------------------------- references


def _ref_moving_mean(x: np.ndarray, n: int) -> np.ndarray:
    c = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(len(x))
    lo, hi = np.maximum(0, i - n // 2), np.minimum(len(x), i - n // 2 + n)
    return (c[hi] - c[lo]) / (hi - lo)


def _ref_curve_length_qrs(x: np.ndarray, fs: float, *, frac: float = S.THR_FRAC, refractory_s: float = 0.25,
                          hp_s: float | None = None) -> np.ndarray:
    w = max(2, round(0.13 * fs))
    if len(x) < max(3 * w, round(0.5 * fs)):
        return np.zeros(0, dtype=np.int64)
    y = _ref_moving_mean(x, max(1, round(fs / 30.0)))
    for mains in (50.0, 60.0):  # one mains period's moving mean each (session 26)
        if fs > 2 * mains and round(fs / mains) >= 2:
            y = _ref_moving_mean(y, round(fs / mains))
    if hp_s is not None:
        y = y - _ref_moving_mean(x, max(2, round(hp_s * fs)))
    c = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(y)))])
    length = np.zeros(len(c))
    length[w:] = c[w:] - c[:-w]
    thr = float(np.percentile(length, 98)) * frac
    if thr <= 0:
        return np.zeros(0, dtype=np.int64)
    above = length > thr
    ups = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    out: list[int] = []
    refr, t_wave, ahead = round(refractory_s * fs), round(0.36 * fs), round(0.2 * fs)
    last, last_peak = -t_wave, 0.0
    for u in ups.tolist():
        if u - last < refr:
            continue
        k = u + int(np.argmax(length[u:u + ahead]))
        if u - last < t_wave and length[k] < 0.5 * last_peak:
            continue
        last, last_peak = u, float(length[k])
        out.append(k - w // 2)
    return np.asarray(out, dtype=np.int64)


def _ref_bsqi(a: np.ndarray, b: np.ndarray, tol: float, *, lo: float = -np.inf, hi: float = np.inf) -> float:
    pairs = []
    i = j = 0
    while i < len(a) and j < len(b):
        d = a[i] - b[j]
        if abs(d) <= tol:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif d < 0:
            i += 1
        else:
            j += 1
    in_a = (a >= lo) & (a < hi)
    in_b = (b >= lo) & (b < hi)
    for i, j in pairs:
        in_b[j] = in_a[i]
    m = sum(1 for i, _ in pairs if in_a[i])
    den = int(in_a.sum()) + int(in_b.sum()) - m
    return 1.0 if den == 0 else m / den


def _ref_power_sqi(y: np.ndarray, fs: float) -> float:
    p = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    f = np.fft.rfftfreq(len(y), 1.0 / fs)
    den = float(p[(f >= 5) & (f <= min(40.0, fs / 2))].sum())
    return float(p[(f >= 5) & (f <= 15)].sum()) / den if den > 0 else float("nan")


def _ecg(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """A spiky periodic wave (QRS-like) with noise of a random level, sometimes rounded (ties) or flat."""
    t = np.arange(n) / fs
    x = np.sin(2 * np.pi * rng.uniform(0.5, 3.5) * t) ** 31 + rng.normal(0, rng.uniform(0, 0.5), n)
    if rng.random() < 0.2:
        x = np.round(x, 1)
    if rng.random() < 0.05:
        x[:] = 0.7
    return x


# ---------------------------------------------------------------------------------------------- SQI


def test_sqi_helpers_equal_the_plain_ones() -> None:
    rng = np.random.default_rng(11)
    for _ in range(400):
        fs = float(rng.choice([100.0, 128.0, 250.0, 360.0, 500.0, 1000.0]))
        x = _ecg(rng, int(rng.integers(20, 4000)), fs)
        assert S._percentile98(x) == np.percentile(x, 98)
        for n in (1, 2, 7, 25, 50):
            np.testing.assert_array_equal(S._moving_mean(x, n), _ref_moving_mean(x, n))
        r = float(rng.uniform(0.15, 0.25))
        np.testing.assert_array_equal(S.curve_length_qrs(x, fs, refractory_s=r, hp_s=0.1),
                                      _ref_curve_length_qrs(x, fs, refractory_s=r, hp_s=0.1))
        a, b = S.power_sqi(x, fs), _ref_power_sqi(x, fs)
        assert a == b or (math.isnan(a) and math.isnan(b))
        d = rng.normal(200, 30, int(rng.integers(1, 20)))
        assert S._median(d.tolist()) == float(np.median(d))


@pytest.mark.parametrize("fs", [128.0, 250.0, 360.0])
def test_sqi_ratings_equal_the_plain_rating(fs: float) -> None:
    """A bed's stretches over a minute of ECG with noise bursts: every rating as the plain code rates it."""
    rng = np.random.default_rng(int(fs))
    n = int(60 * fs)
    qrs = np.arange(0.3 * fs, n, 0.8 * fs)
    i = np.arange(n)
    x = np.exp(-0.5 * ((i[:, None] - qrs[None, :]) / (0.012 * fs)) ** 2).sum(axis=1) + rng.normal(0, 0.02, n)
    x[int(20 * fs):int(30 * fs)] += rng.normal(0, 0.8, int(10 * fs))  # a noise burst: noisy stretches
    q = S.SignalQuality(fs)
    cfg = q.cfg
    got, want = [], []
    chunk = int(0.25 * fs)
    for a in range(0, n, chunk):
        st = q.push(x[a:a + chunk], [float(v) for v in qrs[(qrs >= a) & (qrs < a + chunk)]])
        if st is not None and (not got or st is not got[-1]):
            got.append(st)
            # the plain rating of the same window
            start, stop = st.start, st.stop
            mine = qrs[(qrs >= start - q.tol) & (qrs < stop)] - start
            refr = min(0.25, 0.8 * float(np.median(np.diff(mine))) / fs) if len(mine) > 2 else 0.25

            def plain(a: int, mine: np.ndarray = mine, refr: float = refr, start: int = start,
                      stop: int = stop) -> S.Stretch:  # the window from start + a to stop
                w = x[start + a:stop]
                m = mine[mine >= a - q.tol] - a
                theirs = _ref_curve_length_qrs(w, fs, refractory_s=max(0.15, refr), hp_s=cfg.length_hp_s)
                b = S.bsqi(m, theirs.astype(np.float64), q.tol, lo=q.tol, hi=len(w) - q.tol) \
                    if max(len(m), len(theirs)) >= cfg.min_beats else None
                y = w - _ref_moving_mean(w, round(cfg.kurtosis_hp_s * fs))
                k = S.kurtosis_sqi(y)
                return S.Stretch(start + a, stop, b, k, _ref_power_sqi(y, fs),
                                 (b is not None and b < cfg.bsqi_min) or k < cfg.ksqi_min)

            whole = plain(0)
            # a noisy window whose last recent_s are clean by a margin is clean (the noise has ended)
            if whole.noisy and stop - start > q.recent_n:
                recent = plain(stop - start - q.recent_n)
                if not recent.noisy and recent.bsqi is not None and recent.bsqi >= cfg.recent_bsqi:
                    whole = S.Stretch(start, stop, whole.bsqi, whole.ksqi, whole.psqi, False, ended=True)
            want.append(whole)
    assert len(got) >= 20
    assert got == want
    assert any(s.noisy for s in got) and not all(s.noisy for s in got)
    assert any(s.ended for s in got)  # the burst's last windows: noisy as a whole, their last 5 s clean


def _sqi_bed(rng: np.random.Generator, fs: float, n: int, kind: int) -> np.ndarray:
    """A bed's signal for the batched ratings: ECG at 40-240 bpm with noise bursts, pure noise, a zero line, or
    ECG over a large slow wave."""
    i = np.arange(n)
    if kind == 0:
        return np.zeros(n)  # no power: kurtosis 0, psqi nan, no crossings
    if kind == 1:
        return rng.normal(0, 1.0, n)
    rr = fs * 60.0 / rng.uniform(40, 240)
    qrs = np.arange(rng.uniform(0, rr), n, rr)
    x = rng.uniform(0.3, 3) * np.exp(-0.5 * ((i[:, None] - qrs[None, :]) / (0.012 * fs)) ** 2).sum(axis=1)
    x += rng.normal(0, 0.02, n)
    if kind == 2:
        a = int(rng.uniform(0, n - 6 * fs))
        x[a:a + int(5 * fs)] += rng.normal(0, rng.uniform(0.2, 2), int(5 * fs))
    if kind == 3:
        x += 2 * np.sin(2 * np.pi * 0.3 * i / fs)
    return x


def test_bsqi_equals_the_plain_one() -> None:
    """Beat lists that match, miss, drift past the tolerance and straddle the counted range: the same index."""
    rng = np.random.default_rng(5)
    seen = set()
    for trial in range(400):
        a = np.sort(rng.uniform(0, 2500, int(rng.integers(0, 20))))
        kept = a[rng.random(len(a)) < 0.8]  # detector 2 misses some beats, finds some others, and is off by 0-60 ms
        b = np.concatenate([kept, rng.uniform(0, 2500, int(rng.integers(0, 4)))])
        b = np.sort(b + rng.normal(0, 25, len(b)))
        kw = {} if trial % 3 == 0 else {"lo": 37.5, "hi": 2500 - 37.5}
        want = _ref_bsqi(a, b, 37.5, **kw)
        assert S.bsqi(a, b, 37.5, **kw) == want
        seen.add(round(want, 1))
    assert len(seen) >= 5 and 1.0 in seen


def test_rate_many_equals_each_bed_rating(monkeypatch) -> None:
    """Beds of three sampling rates pushed chunk by chunk: the deferred ratings, made together by ``rate_many`` (in
    blocks, the last of one bed), equal each bed's own rating at every push, and the plain curve-length detector's
    positions."""
    monkeypatch.setattr(S, "RATE_BLOCK", 5)
    rng = np.random.default_rng(7)
    beds = []
    for b in range(27):
        fs = (128.0, 250.0, 360.0)[b % 3]
        n = int(40 * fs)
        x = _sqi_bed(rng, fs, n, b % 5)
        qrs = np.flatnonzero((x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:]) & (x[1:-1] > 0.25)) + 1.0
        beds.append((fs, x, qrs, S.SignalQuality(fs), S.SignalQuality(fs)))
    rated = 0
    for t in np.arange(0, 40, 0.25):
        for fs, x, qrs, fast, plain in beds:
            a, b = int(t * fs), int((t + 0.25) * fs)
            q = [float(v) for v in qrs[(qrs >= a) & (qrs < b)]]
            plain.push(x[a:b], q)
            fast.push(x[a:b], q, defer=True)
        rated += sum(f.due for _, _, _, f, _ in beds)
        S.rate_many([f for _, _, _, f, _ in beds])
        for _, _, _, fast, plain in beds:
            assert not fast.due
            assert repr(fast.last) == repr(plain.last)
    assert rated >= 27 * 15
    kinds = {(s.last.bsqi is None, s.last.noisy) for *_, s, _ in beds if s.last is not None}
    assert len(kinds) >= 3  # rated by kurtosis alone, clean and noisy stretches
    # the rows' detector equals the plain one on each window
    for fs in (128.0, 250.0, 360.0):
        w = np.stack([_sqi_bed(rng, fs, int(10 * fs), k % 5) for k in range(11)])
        refr = [0.25, 0.15, 0.2] * 4
        got = S._curve_length_rows(w, fs, refr[:11], hp_s=0.1)
        for r in range(11):
            want = _ref_curve_length_qrs(w[r], fs, refractory_s=refr[r], hp_s=0.1)
            assert np.array_equal(got[r], want)


# ---------------------------------------------------------------------------------------------- quality checks


@pytest.mark.parametrize("step,joined", [(None, False), (62, False), (62, True)])
def test_quality_checks_in_one_pass_equal_each_bed_alone(step: int | None, joined: bool,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``push_many`` over beds with clean ECG, flat lines (leads off), clipping (saturation), NaN chunks, no beats
    for a while (noisy), odd chunk lengths and a bed alone in its group: each bed's Quality and state as its own
    ``push`` gives them; with verdicts at fixed points (``step``) the points too.  ``joined``: chunks of 1-5 packets
    (a round's chunks of a bed joined: several verdict points in one chunk)."""
    from ecgmon.segmentation.quality import QualityMonitor, push_many

    rng = np.random.default_rng(5)
    fs = 250.0
    beds = 12
    n = int(30 * fs)
    sig = np.stack([_ecg(rng, n, fs) for _ in range(beds)])
    sig[1, int(5 * fs):int(12 * fs)] = 0.3  # a held value: flat line
    sig[2, int(8 * fs):] = 1e-4 * rng.standard_normal(n - int(8 * fs))  # leads off: noise under the flat level
    sig[3] = np.clip(3 * sig[3], -0.5, 0.5)  # clipped again and again: saturated
    sig[4, int(10 * fs):int(10.5 * fs)] = np.nan  # lost samples
    plain = [QualityMonitor(fs, step=step) for _ in range(beds)]
    batched = [QualityMonitor(fs, step=step) for _ in range(beds)]
    alone = {id(m) for m in batched}
    per_bed = [0]  # pushes of the batched monitors that took the per-bed path
    push = QualityMonitor.push

    def counted(self: QualityMonitor, x: np.ndarray, *, beats_found: int) -> object:
        per_bed[0] += id(self) in alone
        return push(self, x, beats_found=beats_found)

    monkeypatch.setattr(QualityMonitor, "push", counted)
    seen = {"flat": 0, "saturated": 0, "noisy": 0}
    a = 0
    r = 0
    while a < n:
        k = 62 if r % 9 else 63  # the replay's chunks: 62 or 63 samples at 250 Hz
        if joined:
            k *= 1 + r % 5
        xs = [sig[b, a:a + k] for b in range(beds)]
        xs[5] = sig[5, a:a + k + 3] if r % 5 == 0 else xs[5]  # a bed alone in its group now and then
        found = [int(rng.random() < 0.25) if b != 6 or a < 10 * fs else 0 for b in range(beds)]  # bed 6: no beats
        want = [m.push(x, beats_found=f) for m, x, f in zip(plain, xs, found, strict=True)]
        got = push_many(batched, xs, found)
        assert got == want, r
        assert [m.points for m in batched] == [m.points for m in plain], r
        for q in want:
            seen["flat"] += q.flat
            seen["saturated"] += q.saturated
            seen["noisy"] += q.noisy
        a += k
        r += 1
    for p, b in zip(plain, batched, strict=True):
        np.testing.assert_array_equal(p.buf, b.buf)
        assert p.since_beat == b.since_beat and p.total == b.total and p.next == b.next
    assert all(v > 0 for v in seen.values()), seen
    assert per_bed[0] < 0.25 * r * beds, (per_bed[0], r * beds)  # most pushes in the batched pass
    with pytest.raises(ValueError, match="at most once"):
        push_many([plain[0], plain[0]], [sig[0, :62], sig[0, 62:124]], [0, 0])


# ---------------------------------------------------------------------------------------------- beat cutting


def test_resample_many_equals_resample_beat() -> None:
    """Every row of ``resample_many`` is ``resample_beat`` of its cut, bit for bit: fractional and whole-sample
    bounds, beats that reach the buffer's last sample or pass it, flat stretches (no z-normalisation), ties."""
    from ecgmon.segmentation.beats import resample_beat, resample_many

    rng = np.random.default_rng(3)
    cuts = []
    for t in range(3000):
        n_x = int(rng.integers(10, 900))
        x = rng.normal(size=n_x) * rng.uniform(1e-3, 10)
        if t % 11 == 0:
            x = np.round(x, 1)
        if t % 37 == 0:
            x[:] = 0.5
        n = float(rng.uniform(2, n_x))
        a = float(rng.uniform(0, n_x - n))
        if t % 5 == 0:
            a = float(int(a))
        if t % 13 == 0:
            n = float(int(n))
        stop = a + n
        if t % 17 == 0:
            stop = float(n_x)
        if t % 19 == 0:
            stop = n_x + float(rng.uniform(0, 2))
        cuts.append((x, a, stop))
    for lo in range(0, len(cuts), 250):  # batches of a round's size
        got = resample_many(cuts[lo:lo + 250])
        assert got.dtype == np.float32 and got.shape == (len(cuts[lo:lo + 250]), 140)
        for row, c in zip(got, cuts[lo:lo + 250], strict=True):
            assert row.tobytes() == resample_beat(*c).tobytes()
    assert resample_many([]).shape == (0, 140)


# ---------------------------------------------------------------------------------------------- VF pool


def _ref_pool():  # the pool as it was: each bank's block held and gathered by itself, windows built one by one
    from ecgmon.segmentation.vf import VFBank, VFPool, VFWindow, decide, noise_of, vf_features

    class RefPool(VFPool):
        def _filter_raw(self) -> None:
            rounds: dict[int, list] = {}
            seen: dict[int, int] = {}
            for item in self._raw:
                k = seen.get(id(item[1]), 0)
                seen[id(item[1])] = k + 1
                rounds.setdefault(k, []).append(item)
            self._raw = []
            for k in sorted(rounds):
                groups: dict[tuple[float, int], list] = {}
                for key, bank, x in rounds[k]:
                    groups.setdefault((bank.fs, len(x)), []).append((key, bank, x))
                for items in groups.values():
                    held = [bank._hold(x[None, :]) for _, bank, x in items]
                    xs = np.concatenate([h[0] for h in held])
                    y, hf = VFBank.filter_many([bank for _, bank, _ in items], xs)
                    for i, (key, bank, _) in enumerate(items):
                        ends, xw, hw, bw = bank._gather(y[i:i + 1], hf[i:i + 1], held[i][1])
                        q = self._queue.setdefault((bank.fs_int, bank.win), [])
                        for j in range(len(ends)):
                            q.append((key, int(ends[j]), xw[0, j], hw[0, j], bool(bw[0, j])))

        def flush(self) -> list:
            self._filter_raw()
            out = []
            for (fs_int, _), q in self._queue.items():
                if not q:
                    continue
                feats = vf_features(np.stack([w[2] for w in q]), np.stack([w[3] for w in q]), fs_int)
                p_vf, p_art, vf, art = decide(feats, self.cfg)
                noise = noise_of(feats, p_art, self.cfg)
                for i, (key, end, _, _, bad) in enumerate(q):
                    out.append((key, VFWindow(end, float(p_vf[i]), float(p_art[i]), bool(vf[i]) and not bad,
                                              bool(art[i]) or bad, tuple(float(v) for v in feats[i]),
                                              bool(noise[i]) or bad)))
            self._queue, self._n, self._oldest = {}, 0, None
            return out

    return RefPool()


def test_vf_pool_gathers_beds_together_as_each_alone(monkeypatch) -> None:
    """A ward of 40 beds at two rates (beds in step, beds that join late or send an odd block, missing samples, VF
    waves and sinus rhythm): every window, feature and decision the pool gives equals the plain pool's, bit for bit
    (its features in blocks of 7 windows, the plain pool's in one call)."""
    from ecgmon.segmentation import vf as vfmod
    from ecgmon.segmentation.vf import VFPool

    monkeypatch.setattr(vfmod, "FEATURE_BLOCK", 7)

    rng = np.random.default_rng(9)
    beds = []
    for b in range(40):
        fs = 250.0 if b % 4 else 360.0
        n = int(30 * fs)
        t = np.arange(n) / fs
        if b % 5 == 0:  # VF: a 4-6 Hz wave of drifting amplitude
            x = (0.5 + 0.3 * np.sin(2 * np.pi * 0.2 * t)) * np.sin(2 * np.pi * rng.uniform(4, 6) * t)
        else:
            x = _ecg(rng, n, fs)
        x = x + rng.normal(0, 0.02, n)
        if b % 7 == 3:
            x[int(rng.integers(0, n - 200)):][:int(rng.integers(5, 200))] = np.nan
        beds.append((f"b{b}", fs, x, 3 if b % 9 == 4 else 0))  # (name, fs, signal, blocks late)
    new, ref = VFPool(), _ref_pool()
    banks = {p: (new.bank(fs), ref.bank(fs)) for p, fs, _, _ in beds}
    got, want = [], []
    for r in range(32):
        for p, fs, x, late in beds:
            if r < late:
                continue
            blk = int(fs)
            a = (r - late) * blk
            size = blk + (17 if (r + len(p)) % 11 == 0 else 0)  # now and then an odd block
            seg = x[a:a + size]
            if not len(seg):
                continue
            new.add(p, banks[p][0], seg, now=0.0)
            ref.add(p, banks[p][1], seg, now=0.0)
        if r % 3 != 1:  # sometimes two blocks a bed between flushes
            got += [(k, w) for k, w in new.flush()]
            want += [(k, w) for k, w in ref.flush()]
    got += new.flush()
    want += ref.flush()
    assert got == want
    assert len(got) > 500
    assert any(w.vf for _, w in got) and any(w.artifact for _, w in got)


# ---------------------------------------------------------------------------------------------- a synthetic ward


def _wave(t: np.ndarray, mu: float, sd: float, a: float) -> np.ndarray:
    return a * np.exp(-0.5 * ((t - mu) / sd) ** 2)


def _bed_signal(fs: float, seconds: float, seed: int) -> np.ndarray:
    """A bed's ECG (mV): sinus rhythm with premature wide (ventricular) beats, then by the seed's choice a run of
    VT (wide beats at 150-180 bpm), a VF episode (a 4-6 Hz wave), a burst of noise and electrode motion, a dropout
    (NaN) and a flat run (a held value); baseline wander and measurement noise throughout."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    tt = np.arange(n) / fs
    x = np.zeros(n)
    rr = 60.0 / rng.uniform(55, 100)
    vt = (12.0, 18.0) if seed % 3 == 0 else (-1.0, -1.0)
    vf = (30.0, 40.0) if seed % 4 == 1 else (-1.0, -1.0)
    t = 0.6
    while t < seconds - 0.5:
        if vf[0] <= t < vf[1]:
            t = vf[1]
            continue
        wide = vt[0] <= t < vt[1] or rng.random() < 0.12
        lo, hi = max(0, int((t - 0.6) * fs)), min(n, int((t + 0.8) * fs))
        s = tt[lo:hi]
        if wide:
            x[lo:hi] += _wave(s, t, 0.035, 1.4) + _wave(s, t + 0.075, 0.03, -0.7) + _wave(s, t + 0.33, 0.07, -0.4)
        else:
            x[lo:hi] += (_wave(s, t - 0.16, 0.025, 0.15) + _wave(s, t, 0.01, 1.0) + _wave(s, t + 0.025, 0.008, -0.25)
                         + _wave(s, t + 0.28, 0.05, 0.3))
        t += 60.0 / rng.uniform(150, 180) if vt[0] <= t < vt[1] else rr * (1 + 0.03 * rng.standard_normal())
    if vf[0] >= 0:
        a, b = int(vf[0] * fs), int(vf[1] * fs)
        ph = 2 * np.pi * np.cumsum(rng.uniform(4.0, 6.0) + 0.5 * np.sin(2 * np.pi * 0.3 * tt[a:b])) / fs
        x[a:b] = 0.6 * (np.sin(ph) + 0.2 * np.sin(2 * ph + 1.0))
    x += 0.01 * rng.standard_normal(n) + 0.05 * np.sin(2 * np.pi * 0.25 * tt)
    if seed % 5 == 2 and seconds >= 27:  # noise and electrode motion
        a, b = int(22 * fs), int(27 * fs)
        x[a:b] += 0.5 * rng.standard_normal(b - a) + 1.5 * np.sin(2 * np.pi * 0.7 * tt[a:b])
    if seed % 6 == 4 and seconds >= 27:  # a dropout
        x[int(25 * fs):int(26.3 * fs)] = np.nan
    if seed % 7 == 5 and seconds >= 38:  # leads off: a held value for 4 s
        x[int(33 * fs):int(37 * fs)] = x[int(33 * fs)]
    return x


def _round12(v):
    if isinstance(v, float):
        return round(v, 12)
    if isinstance(v, tuple):
        return tuple(_round12(x) for x in v)
    return v


def _ward(beds: int, seconds: float) -> list[tuple[str, float, np.ndarray]]:
    return [(f"w{i:02d}", 360.0 if i % 5 == 3 else 250.0, _bed_signal(360.0 if i % 5 == 3 else 250.0, seconds, i))
            for i in range(beds)]


def test_monitor_segmentation_in_rounds_equals_bed_by_bed(tmp_path, shipped, monkeypatch) -> None:
    """The whole segmentation stage of a monitor (``Monitor.segment_many`` in rounds: envelopes, signal-loss
    check, quality checks and beat cutting of all beds at once) gives a synthetic ward of 24 beds (ectopy, VT, VF,
    noise, dropouts, leads off; two rates) the beats, QRS, beat types, VF windows and alarm transitions that
    ``Monitor.segment`` chunk by chunk gives (each bed alone: every batched step takes its per-bed path)."""
    from helpers import Recorder

    import ecgmon.monitor.pipeline as pipeline
    from ecgmon.core.messages import Chunk
    from ecgmon.monitor.app import build
    from ecgmon.monitor.config import MonitorConfig

    ward = _ward(24, 45.0)
    plain_type = pipeline.type_staged
    runs = []
    for how in ("bed by bed", "rounds"):
        typed: list[tuple] = []

        def type_staged(jobs, typed=typed):
            out = plain_type(jobs)
            for job, vbs in zip(jobs, out, strict=True):
                # (floats to 12 digits: the typer's network, float64, differs by about 1e-16 of itself with how
                # many beats share a call, which a bed's joined chunks change: segmentation.vnet.VNet.logit)
                typed.extend(repr((job.typer.fs, *(round(v, 12) if isinstance(v, float) else v
                                                   for v in dataclasses.astuple(vb)))) for vb in vbs)
            return out

        monkeypatch.setattr(pipeline, "type_staged", type_staged)
        rec = Recorder()
        cfg = MonitorConfig(speed=None, ui=False, journal=tmp_path / f"{how}.jsonl", device="cpu", abnormal_rate=None)
        b = build(cfg, ckpt=shipped, extra_sinks=[rec])
        windows: list[str] = []
        flush = b.monitor.vfpool.flush

        def vf_flush(flush=flush, windows=windows):
            out = flush()
            # (floats to 12 digits, as the types above: the VF model's call over the pool's windows differs by about
            # 1e-16 with how many windows share it, which a lead's dropouts split into parts change)
            windows.extend(repr((k[0].patient, _round12(dataclasses.astuple(w)))) for k, w in out)
            return out

        b.monitor.vfpool.flush = vf_flush
        beats: dict[str, list] = {p: [] for p, _, _ in ward}
        try:
            step = {p: int(0.25 * fs) for p, fs, _ in ward}
            per_bed = {p: [Chunk(p, fs, i / fs, x[i:i + step[p]], start=i, replay=True)
                           for i in range(0, len(x), step[p])] for p, fs, x in ward}
            n = max(map(len, per_bed.values()))
            for r in range(0, n, 3):  # each round: every bed's next three chunks (three sub-rounds)
                rnd = [c[k] for k in (r, r + 1, r + 2) for c in per_bed.values() if k < len(c)]
                outs = b.monitor.segment_many(rnd) if how == "rounds" else [b.monitor.segment(c) for c in rnd]
                for c, out in zip(rnd, outs, strict=True):
                    beats[c.patient] += [(bt.index, bt.rr_prev_s, bt.rr_next_s, bt.hr_bpm, bt.noisy,
                                          bt.samples.tobytes()) for bt in out]
            b.monitor.flush_vf(final=True)
            runs.append((beats, typed, windows, [(a.patient, a.condition, a.state, a.beat_index, a.message)
                                                 for a in rec.alarms]))
        finally:
            b.monitor.close()
    (beats_a, typed_a, win_a, alarms_a), (beats_b, typed_b, win_b, alarms_b) = runs
    assert beats_a == beats_b
    assert sorted(typed_a) == sorted(typed_b) and len(typed_a) > 1000
    assert sorted(win_a) == sorted(win_b) and len(win_a) > 500
    for p, _, _ in ward:  # alarm transitions per bed, in order (beds interleave differently across a round)
        assert [a for a in alarms_a if a[0] == p] == [a for a in alarms_b if a[0] == p], p
    # the ward holds what it was made of: beats, noisy stretches, ventricular beats, VF, signal loss
    assert sum(map(len, beats_a.values())) > 1500
    assert any(bt[4] for v in beats_a.values() for bt in v)
    conditions = {str(a[1]) for a in alarms_a}
    assert any("fibrillation" in c for c in conditions), conditions
    assert any("loss" in c for c in conditions), conditions
    assert any("ventricular tachycardia" in c for c in conditions), conditions
    assert any("leads off" in c for c in conditions), conditions


# ---------------------------------------------------------------------------------------------- beat typer state


def _ref_typer_class():  # the bed state as it was: per-beat conversions, np.mean share, a fresh correlation row
    from ecgmon.segmentation.vtype import VTyper

    class RefTyper(VTyper):
        def _state(self, ready, width, pp, z, wide, artifact=None):  # no network windows (net=None), no artifact
            cfg, fs = self.cfg, self.fs
            rows, temps = [], []
            i = 0
            for f in ready:
                fid = f if f >= 0 else -1 - f
                rr = (fid - self.last_fid) / fs if self.last_fid is not None else float("nan")
                if f < 0:
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
                r = self.ring[:k] @ z[i] / z.shape[1]
                dwidth = amp = share = math.nan
                if templ:
                    mi = self._medoid(k)
                    if self.epoch_z is None or float(self.ring[mi] @ self.epoch_z) / z.shape[1] < cfg.epoch_corr:
                        self.epoch += 1
                        self.epoch_z = self.ring[mi].copy()
                    temps.append(self.ring[mi].copy())
                    share = float(np.mean(r >= 0.9))
                    dwidth = float(width[i]) - float(self.ring_w[mi])
                    amp = math.log((float(pp[i]) + 1e-3) / (float(self.ring_a[mi]) + 1e-3))
                prev = float(r[(self.slot - 1) % len(self.ring)]) if k else math.nan
                prev2 = float(self.prev2_z @ z[i] / z.shape[1]) if self.prev2_z is not None else math.nan
                self.prev2_z, self.last_z = self.last_z, z[i].copy()
                rows.append((rr, prem, templ, dwidth, amp, share, prev, prev2, self.epoch))
                j = self.slot
                self.ring[j], self.ring_w[j], self.ring_a[j] = z[i], width[i], pp[i]
                rr_full = np.zeros(len(self.ring))
                rr_full[:k] = r
                rr_full[j] = 1.0
                self.cc[j, :], self.cc[:, j] = rr_full, rr_full
                self.slot = (j + 1) % len(self.ring)
                self.filled = min(self.filled + 1, len(self.ring))
                i += 1
            return rows, temps, []

    return RefTyper


def test_beat_typer_state_equals_the_plain_one() -> None:
    """Beds of the synthetic ward typed together (``type_staged``, 1 s blocks as the monitor feeds them): every
    VBeat field as the plain bed state gives it, bit for bit (NaN where the plain one has NaN)."""
    from ecgmon.segmentation.beats import Segmenter
    from ecgmon.segmentation.vtype import VTyper, VTyperConfig, type_staged

    ref_cls = _ref_typer_class()
    ward = _ward(10, 45.0)
    cfg = VTyperConfig(net=None)  # the bed state (the network's part: tests/test_vnet.py)
    new = [VTyper(fs, cfg) for _, fs, _ in ward]
    ref = [ref_cls(fs, cfg) for _, fs, _ in ward]
    fids = []
    for _, fs, x in ward:
        seg = Segmenter("t", fs)
        blocks = []
        for a in range(0, len(x), int(fs)):
            ch = x[a:a + int(fs)]
            seg.push(ch)
            blocks.append((ch, [f for f, _ in seg.found]))
        fids.append(blocks)
    got, want = [], []
    for k in range(max(map(len, fids))):
        for typers, out in ((new, got), (ref, want)):
            jobs = []
            for t, blocks in zip(typers, fids, strict=True):
                if k < len(blocks):
                    t.add(*blocks[k])
                    job = t.stage()
                    if job is not None:
                        jobs.append(job)
            out += [repr(dataclasses.astuple(v)) for vbs in type_staged(jobs) for v in vbs]
    assert got == want
    assert len(got) > 500 and sum(", True, True," in g for g in got) > 50  # beats typed V with a template


def test_onsets_many_equal_each_onset() -> None:
    """The fiducials of every QRS the segmenters of the synthetic ward find (two rates, VT, VF waves, noise, the
    start of a stream where the search window is cut short), found together by ``onsets_many``, equal each
    segmenter's ``_onset``."""
    from ecgmon.segmentation.beats import Segmenter, onsets_many

    ward = _ward(12, 40.0)
    segs = [Segmenter(p, fs) for p, fs, _ in ward]
    n = 0
    for a in range(0, 40 * 360, 90):
        jobs = []
        for sg, (_, fs, x) in zip(segs, ward, strict=True):
            ch = x[a * int(fs) // 360:(a + 90) * int(fs) // 360]
            if not len(ch) or not np.isfinite(ch).all():
                sg.push(np.nan_to_num(ch))
                continue
            peaks = sg.begin(ch)
            jobs += [(sg, p) for p in peaks]
            want = [sg._onset(p) for p in peaks]
            got = onsets_many([(sg, p) for p in peaks])
            assert got == want
            sg.finish(ch, peaks, got)
        got = onsets_many(jobs)
        assert got == [sg._onset(p) for sg, p in jobs]
        n += len(jobs)
    assert n > 300
    # a peak at the very start of a stream: a stretch shorter than 3 samples gives the peak itself
    sg = Segmenter("s", 250.0)
    sg.begin(np.zeros(2))
    assert onsets_many([(sg, 1)]) == [sg._onset(1)] == [1.0]


def test_spans_many_equal_each_qrs_span() -> None:
    """The QRS spans (``qrs_span``, the floor's band-passed peak to peak) of every QRS the segmenters of the synthetic
    ward find, ECG5000 and window beds, measured together by ``spans_many``, equal each one measured alone to the bit,
    and each bed keeps the QRS it keeps measuring its own."""
    from ecgmon.segmentation.beats import SPAN_SETTLE_S, Segmenter, qrs_span, spans_many
    from ecgmon.segmentation.represent import Representation

    ward = _ward(12, 40.0)

    def beds() -> list[Segmenter]:
        return [Segmenter(p, fs, rep=Representation(kind="window") if k % 2 else Representation())
                for k, (p, fs, _) in enumerate(ward)]

    segs, alone = beds(), beds()
    n = 0
    for a in range(0, 40 * 360, 90):
        jobs = []
        for sg, lone, (_, fs, x) in zip(segs, alone, ward, strict=True):
            ch = x[a * int(fs) // 360:(a + 90) * int(fs) // 360]
            xs, parts = sg.split(ch)
            if len(parts) != 1 or parts[0][2]:  # signal loss (NaN, a flat run): as segment_round, bed by bed
                sg.push_parts(xs, parts)
                lone.push(ch)
                continue
            peaks = sg.begin(ch)
            jobs.append((sg, lone, ch, peaks, sg.fiducials(peaks)))
        spans_many([(sg, f) for sg, _, _, _, f in jobs])
        for sg, lone, ch, peaks, fids in jobs:
            half, settle = round(sg.cfg.qrs_half_s * sg.fs), round(SPAN_SETTLE_S * sg.fs)
            for f in fids:
                if int(f) in sg.spans:
                    lo = int(f) - half - sg.buf_start
                    assert sg.spans[int(f)] == qrs_span(sg.buf, lo, lo + 2 * half + 1, sg.fs, (0.0, 25.0))
                    assert lo >= settle
                    n += 1
            sg.finish(ch, peaks, fids)
            lone.push(ch)
            assert not sg.spans
            assert (sg.found, sg.found_at) == (lone.found, lone.found_at)  # the QRS the floor let through
    assert n > 300


# ---------------------------------------------------------------------------------------------- QRS decisions


def test_decide_many_equals_each_detector_alone() -> None:
    """A ward of 30 detectors of one design (250 Hz): rhythms of 30-300 bpm (the tachycardia windows), atrial
    fibrillation with smaller beats just before larger ones (the look-ahead's edge rule over 100 bpm), tall P waves,
    an amplitude drop to a fifth (re-acquisition), noise bursts, beds that start late (held envelopes that stand
    apart), chunks of changing length (1 sample to 1 s).  ``decide_many`` over the group gives every detector's QRS
    and leaves every detector's state as its own ``push_envelope`` does, bit for bit."""
    from ecgmon.segmentation.bank import decide_many, envelopes
    from ecgmon.segmentation.peaks import QRSDetector

    fs = 250.0
    rng = np.random.default_rng(11)
    n = int(40 * fs)
    i = np.arange(n)
    xs = []
    for b in range(30):
        bpm = (30, 48, 60, 75, 90, 120, 150, 180, 220, 260, 300)[b % 11]
        rr = fs * 60.0 / bpm
        qrs = np.arange(rng.uniform(0, rr), n, rr * rng.uniform(0.97, 1.03))
        amp = np.ones(len(qrs))
        if b in (4, 22):  # atrial fibrillation at about 125 bpm, a beat half the size when the next comes within 0.36 s
            qrs = np.cumsum(rng.uniform(0.30, 0.68, int(n / fs / 0.3))) * fs
            qrs = qrs[qrs < n]
            amp = np.where(np.diff(qrs, append=np.inf) < 0.36 * fs, 0.5, 1.0)
        if b % 6 == 1:  # an artefact burst, then a fifth of the amplitude: re-acquisition
            amp[qrs > n / 2] = 0.2
            x_art = np.zeros(n)
            x_art[n // 2:n // 2 + int(fs)] = rng.normal(0, 3.0, int(fs))
        else:
            x_art = np.zeros(n)
        x = (amp[None, :] * np.exp(-0.5 * ((i[:, None] - qrs[None, :]) / (0.01 * fs)) ** 2)).sum(axis=1)
        if b % 4 == 2:  # tall P waves 160 ms before each QRS
            x += 0.6 * np.exp(-0.5 * ((i[:, None] - (qrs[None, :] - 0.16 * fs)) / (0.025 * fs)) ** 2).sum(axis=1)
        x += rng.normal(0, 0.01, n) + x_art
        if b % 5 == 3:
            a = int(rng.uniform(2 * fs, n - 6 * fs))
            x[a:a + int(4 * fs)] += rng.normal(0, 0.7, int(4 * fs))
        xs.append(x)
    late = [0 if b % 7 else int(rng.integers(1, 9)) for b in range(30)]  # rounds a bed starts after the rest
    plain = [QRSDetector(fs) for _ in xs]
    fast = [QRSDetector(fs) for _ in xs]
    at = [0] * 30
    sizes = [62, 63, 62, 1, 63, 250, 5, 62, 90]
    got, want = [0, 0], [0, 0]
    r = 0
    while min(at) < n:
        size = sizes[r % len(sizes)]
        idx = [b for b in range(30) if r >= late[b] and at[b] + size <= n]
        if len(idx) < 2:
            break
        chunk = np.stack([xs[b][at[b]:at[b] + size] for b in idx])
        for k, b in enumerate(idx):
            want_q = plain[b].push(chunk[k])
            want[0] += len(want_q)
            want.append(want_q)
        e, s = envelopes([fast[b] for b in idx], chunk)
        for q in decide_many([fast[b] for b in idx], e, s):
            got[0] += len(q)
            got.append(q)
        for b in idx:
            at[b] += size
        r += 1
    assert got == want
    assert want[0] > 30 * 40  # most beds' QRS found
    for p, f in zip(plain, fast, strict=True):
        for attr in ("total", "next_p", "env_start", "spk", "npk", "learnt", "last_qrs", "last_slope", "learnt_at",
                     "relearns"):
            assert getattr(p, attr) == getattr(f, attr), attr
        assert list(p.rr) == list(f.rr) and p.noise == f.noise and list(p.recent) == list(f.recent)
        assert np.array_equal(p.env, f.env) and np.array_equal(p.slope, f.slope)
    assert any(f._fast_rr() is not None for f in fast) and any(f.relearns for f in fast)


def test_cut_many_equals_each_window_cut() -> None:
    """Window beats (real ECG) of several beds cut together by ``cut_many`` equal the cuts one by one, bit for bit
    (samples and noise levels), each bed's running amplitude and RR medians moving on beat by beat; three rates."""
    from ecgmon.segmentation.represent import Representation, WindowCutter, cut_many

    rng = np.random.default_rng(1)
    rep = Representation(kind="window")
    for fs in (250.0, 128.0, 360.0):
        plain = [WindowCutter(rep, fs), WindowCutter(rep, fs)]
        batched = [WindowCutter(rep, fs), WindowCutter(rep, fs)]
        jobs, want = [], []
        for i in range(120):
            buf = rng.normal(size=int(rng.integers(200, 900)))
            fid = float(rng.uniform(plain[0].needs_before(), len(buf) - plain[0].needs_after()))
            rr = None if i % 17 == 0 else float(rng.uniform(0.3, 1.5))
            bed = int(i % 3 == 0)
            want.append((plain[bed].cut(buf, fid, rr), plain[bed].noise, plain[bed].mismatch, plain[bed].scale))
            jobs.append((batched[bed], buf, fid, rr))
        got, noise, mismatch, scale = cut_many(jobs)
        assert got.shape == (120, 2, 140)
        assert all(np.array_equal(g, w) for g, (w, _, _, _) in zip(got, want, strict=True)), fs
        assert noise == [n for _, n, _, _ in want], fs
        assert np.array_equal(mismatch, [m for _, _, m, _ in want], equal_nan=True), fs
        assert scale == [s for _, _, _, s in want] and all(s > 0 for s in scale), fs
        assert any(m == m for m in mismatch), fs  # measured for some (not premature, not fast)
        assert list(batched[0].amps) == list(plain[0].amps) and list(batched[1].rrs) == list(plain[1].rrs)

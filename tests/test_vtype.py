"""Ventricular beat typing and the VT rule (segmentation/vtype.py) on synthetic beat trains."""

from __future__ import annotations

import dataclasses
import warnings

import neurokit2 as nk
import numpy as np
import pytest

from ecgmon.segmentation.beats import Segmenter
from ecgmon.segmentation.represent import Representation
from ecgmon.segmentation.vtype import VBeat, VTRule, VTyper, VTyperConfig, add_many, type_staged


def _g(t: np.ndarray, mu: float, sd: float, a: float) -> np.ndarray:
    return a * np.exp(-0.5 * ((t - mu) / sd) ** 2)


def beat_train(fs: float, kinds: str, *, rr: float = 0.8, prem: float = 0.65, seed: int = 0,
               v_rr: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic ECG (mV): ``kinds`` is one letter per beat, ``N`` a narrow supraventricular beat (P, QRS of
    ~80 ms, T) or ``V`` a wide ventricular one (no P, QRS of ~160 ms, discordant T), premature by ``prem`` of the
    RR unless ``v_rr`` (s) sets the RR before every V beat (a run).  Returns (signal, R-peak sample indices, is_V)."""
    rng = np.random.default_rng(seed)
    times, is_v = [], []
    t = 1.0
    for i, k in enumerate(kinds):
        if i:
            if k == "V":
                t += v_rr if v_rr is not None else prem * rr
            elif kinds[i - 1] == "V" and v_rr is None:
                t += (2 - prem) * rr  # the compensatory pause
            else:
                t += rr * (1 + 0.02 * rng.standard_normal())
        times.append(t)
        is_v.append(k == "V")
    n = round((times[-1] + 1.5) * fs)
    tt = np.arange(n) / fs
    x = np.zeros(n)
    for c, v in zip(times, is_v, strict=True):
        if v:
            x += _g(tt, c, 0.035, 1.4) + _g(tt, c + 0.075, 0.03, -0.7) + _g(tt, c + 0.33, 0.07, -0.4)
        else:
            x += (_g(tt, c - 0.16, 0.025, 0.15) + _g(tt, c - 0.025, 0.008, -0.1) + _g(tt, c, 0.01, 1.0)
                  + _g(tt, c + 0.025, 0.008, -0.25) + _g(tt, c + 0.28, 0.05, 0.3))
    x += 0.01 * rng.standard_normal(n) + 0.05 * np.sin(2 * np.pi * 0.25 * tt)
    return x, np.round(np.asarray(times) * fs).astype(int), np.asarray(is_v)


def typed(x: np.ndarray, fs: float, chunk_s: float = 0.25) -> list[VBeat]:
    seg = Segmenter("t", fs, rep=Representation(kind="window"))
    typer = VTyper(fs)
    out: list[VBeat] = []
    step = round(chunk_s * fs)
    for a in range(0, len(x), step):
        beats = seg.push(x[a:a + step])
        out += typer.push(x[a:a + step], [b.index for b in beats])
    return out


def _match(beats: list[VBeat], peaks: np.ndarray, fs: float) -> list[tuple[VBeat, int]]:
    out = []
    for b in beats:
        j = int(np.argmin(np.abs(peaks - b.centre)))
        if abs(peaks[j] - b.centre) <= 0.15 * fs:
            out.append((b, j))
    return out


@pytest.mark.parametrize("fs", [128.0, 250.0, 360.0, 500.0])
def test_wide_premature_beats_are_ventricular_and_narrow_ones_are_not(fs):
    kinds = ("NNNNV" * 14) + "NNVNNNNNVNNN"
    x, peaks, is_v = beat_train(fs, kinds, seed=int(fs))
    got = _match(typed(x, fs), peaks, fs)
    assert len(got) >= len(peaks) - 4  # the Segmenter's 2 s warm-up
    tp = sum(b.ventricular and is_v[j] for b, j in got)
    fp = sum(b.ventricular and not is_v[j] for b, j in got)
    n_v = sum(is_v[j] for _, j in got)
    assert tp >= 0.95 * n_v and fp <= 0.02 * len(got), (tp, n_v, fp)
    # widths as the slope energy measures them: narrow beats well under 100 ms, wide ones more
    wn = np.median([b.width_s for b, j in got if not is_v[j]])
    wv = np.median([b.width_s for b, j in got if is_v[j]])
    assert wn < 0.06 and wv > wn + 0.03, (wn, wv)
    # the bed's template forms within the first beats and the dominant beats match it
    assert got[8][0].template
    assert np.median([b.corr for b, j in got if b.template and not is_v[j]]) > 0.95


def test_typing_works_from_the_first_beats_by_the_population_rule():
    fs = 250.0
    # (the second beat of a bed has no prematurity yet: no RR before the one before it)
    x, peaks, is_v = beat_train(fs, "NNVNVNNNNNNN", seed=3)
    got = _match(typed(x, fs), peaks, fs)
    early = [(b, j) for b, j in got if not b.template]
    assert early, "the first beats come before any template"
    assert all(b.ventricular == bool(is_v[j]) for b, j in early), [(b.p_ventricular, is_v[j]) for b, j in early]


@pytest.mark.parametrize(("fs", "hr"), [(250.0, 60), (360.0, 90), (500.0, 120)])
def test_neurokit_sinus_rhythm_has_no_ventricular_beats(fs, hr):
    x = np.asarray(nk.ecg_simulate(duration=40, sampling_rate=int(fs), heart_rate=hr, noise=0.01, random_state=hr))
    got = typed(x, fs)
    assert len(got) >= 40 * hr / 60 - 6
    assert sum(b.ventricular for b in got) <= 1


def _rule(beats: list[VBeat]) -> list[str | None]:
    rule = VTRule()
    return [rule.update(b) for b in beats]


def test_vt_rule_on_synthetic_runs():
    fs = 250.0
    # 8 ventricular beats at 150 bpm after a sinus rhythm: VT, raised at the 5th
    x, peaks, is_v = beat_train(fs, "NNNNNNNN" + "V" * 8 + "NNNNNN", v_rr=0.4, seed=1)
    beats = typed(x, fs)
    ev = _rule(beats)
    assert ev.count("raise") == 1 and ev.count("clear") == 1
    raised = beats[ev.index("raise")].centre
    first_v = peaks[np.flatnonzero(is_v)[0]]
    assert abs(raised - peaks[np.flatnonzero(is_v)[4]]) <= 0.15 * fs  # at the 5th ventricular beat
    assert (raised - first_v) / fs == pytest.approx(4 * 0.4, abs=0.2)
    # a triplet is not VT; nor are 6 ventricular beats at 60 bpm (an idioventricular rhythm)
    x, *_ = beat_train(fs, "NNNNNNNNVVVNNNNN", v_rr=0.4, seed=2)
    assert "raise" not in _rule(typed(x, fs))
    x, *_ = beat_train(fs, "NNNNNNNN" + "V" * 6 + "NNNN", v_rr=1.0, seed=3)
    assert "raise" not in _rule(typed(x, fs))


def _vb(v: bool, rr: float) -> VBeat:
    return VBeat(0, 0, float(v), v, True, 0.1, 0.0, 0.5, 0.0, 0.0, 0.1, rr, 0.0)


def test_vt_rule_counts_consecutive_ventricular_beats_and_their_rate():
    rule = VTRule(run=5, rate_bpm=100.0)
    seq = [_vb(True, 0.5)] * 4 + [_vb(False, 0.8)] + [_vb(True, 0.5)] * 5 + [_vb(True, 0.5), _vb(False, 0.8)]
    assert [rule.update(b) for b in seq] == [None] * 9 + ["raise", None, "clear"]
    slow = VTRule()
    assert not any(slow.update(_vb(True, 0.7)) for _ in range(10))  # 86 bpm
    with pytest.raises(ValueError):
        VTRule(run=1)


def test_typer_bad_input_and_missing_samples():
    with pytest.raises(ValueError, match="outside 100-1000 Hz"):
        VTyper(2000.0)
    with pytest.raises(ValueError, match="1-D"):
        VTyper(250.0).push(np.zeros((2, 3)))
    fs = 250.0
    x, peaks, is_v = beat_train(fs, "NNNNV" * 8, seed=4)
    x[round(10 * fs):round(11 * fs)] = np.nan
    seg = Segmenter("t", fs, rep=Representation(kind="window"))
    typer = VTyper(fs)
    out = []
    for a in range(0, len(x), 62):
        chunk = x[a:a + 62]
        beats = seg.push(np.nan_to_num(chunk))
        out += typer.push(chunk, [b.index for b in beats])
    assert all(np.isfinite(b.p_ventricular) for b in out)
    late = [(b, j) for b, j in _match(out, peaks, fs) if b.centre > 14 * fs]
    assert late and all(b.ventricular == bool(is_v[j]) for b, j in late)


def test_vectorised_typer_equals_the_per_beat_one_on_a_record_excerpt():
    """The block-vectorised VTyper gives every beat the values the per-beat implementation gave (MIT-BIH 205's
    first 400 s, 360 Hz, ventricular runs and two forms of PVC; 1 s blocks as the pipeline feeds it and 0.1 s
    chunks)."""
    import sys
    from pathlib import Path

    import wfdb

    sys.path.insert(0, str(Path(__file__).parent))
    from vtype_perbeat import PerBeatVTyper

    rec = wfdb.rdrecord(str(Path(__file__).parent / "data" / "mitdb" / "205x"), physical=True)
    x, fs = rec.p_signal[:, 0].astype(np.float64), float(rec.fs)
    x[40_000:40_400] = np.nan  # a dropout: held over by both
    for chunk_s in (1.0, 0.1):
        seg = Segmenter("r", fs, rep=Representation(kind="window"))
        # the additive model alone, as the per-beat implementation has it (the network: test_vnet.py)
        new, old = VTyper(fs, VTyperConfig(net=None)), PerBeatVTyper(fs, VTyperConfig(net=None))
        a_out: list[VBeat] = []
        b_out: list[VBeat] = []
        step = round(chunk_s * fs)
        for a in range(0, len(x), step):
            ch = x[a:a + step]
            fids = [b.index for b in seg.push(np.nan_to_num(ch))]
            a_out += new.push(ch, fids)
            b_out += old.push(ch, fids)
        assert len(a_out) == len(b_out) > 400
        # the excerpt's 21 reference V beats (PVCs and runs): at least 18 typed V, and hardly any other beat
        with warnings.catch_warnings():  # wfdb's annotation reader trips a pandas deprecation warning
            warnings.simplefilter("ignore")
            ref = wfdb.rdann(str(Path(__file__).parent / "data" / "mitdb" / "205x"), "atr")
        ref_v = np.asarray([i for i, sym in zip(ref.sample, ref.symbol, strict=True) if sym == "V"])
        near_v = [b.ventricular for b in b_out if np.min(np.abs(ref_v - b.index)) <= 0.15 * fs]
        assert len(ref_v) == 21 and sum(near_v) >= 18
        assert sum(b.ventricular for b in b_out) - sum(near_v) <= 2
        for u, v in zip(a_out, b_out, strict=True):
            assert (u.index, u.centre, u.ventricular, u.template) == (v.index, v.centre, v.ventricular, v.template)
            np.testing.assert_allclose([u.p_ventricular, u.width_s, u.prem, u.corr, u.dwidth_s, u.amp, u.share,
                                        u.rr_s, u.logamp],
                                       [v.p_ventricular, v.width_s, v.prem, v.corr, v.dwidth_s, v.amp, v.share,
                                        v.rr_s, v.logamp], rtol=1e-9, atol=1e-12, equal_nan=True)


def test_beds_typed_together_get_what_each_bed_alone_gets():
    """add_many and type_staged over the staged beats of several beds (two rates, out of step) give every bed the
    beats its own push gives."""
    beds = [(250.0, "NNNNNNVNNNNVVVVVVNNNNNNVNN", 0), (250.0, "NNNNNNNNNNNNNNNNNN", 1), (360.0, "NNNNNVNNNNNVNNNN", 2)]
    alone = []
    streams = []
    for fs, kinds, seed in beds:
        x, _, _ = beat_train(fs, kinds, seed=seed, v_rr=0.45 if "VVVV" in kinds else None)
        seg = Segmenter("t", fs, rep=Representation(kind="window"))
        # the two 250 Hz beds in blocks of one length (band-passed in one call), the 360 Hz one out of step
        step = round(0.7 * fs) + (17 if seed == 2 else 0)
        blocks = [(x[a:a + step], [b.index for b in seg.push(x[a:a + step])]) for a in range(0, len(x), step)]
        streams.append((fs, blocks))
        t = VTyper(fs)
        alone.append([vb for ch, f in blocks for vb in t.push(ch, f)])
    typers = [VTyper(fs) for fs, _ in streams]
    got: list[list[VBeat]] = [[] for _ in streams]
    for k in range(max(len(b) for _, b in streams)):
        jobs, who = [], []
        now = [i for i, (_, blocks) in enumerate(streams) if k < len(blocks)]
        add_many([typers[i] for i in now], [streams[i][1][k][0] for i in now], [streams[i][1][k][1] for i in now])
        for i in now:
            job = typers[i].stage()
            if job is not None:
                jobs.append(job)
                who.append(i)
        for i, vbs in zip(who, type_staged(jobs), strict=True):
            got[i] += vbs
    for a, b in zip(alone, got, strict=True):
        assert len(a) == len(b) > 10
        assert [(u.index, u.centre, u.ventricular, u.template) for u in a] == [
            (u.index, u.centre, u.ventricular, u.template) for u in b]
        np.testing.assert_allclose([dataclasses.astuple(u) for u in a], [dataclasses.astuple(u) for u in b],
                                   rtol=1e-12, atol=1e-15, equal_nan=True)
    assert sum(vb.ventricular for vb in alone[0]) >= 6  # the run and the PVCs


def test_beats_in_artifact_stay_out_of_the_template_and_keep_their_prev_corr():
    """Thirty sinus beats, then a run of 50 wide complexes whose first 30 the monitor reads in artifact
    (Staged.artifact): they do not enter the bed's template ring (VTyperConfig.artifact_skip), so the run's next
    beats are still unlike the template (the sinus beat) and typed ventricular; with every beat in the ring (no
    artifact told) the template is the wide complex by then and the same beats are typed the bed's own. A beat left
    out still gives the next its correlation with the previous typed beat (prev_corr as without the flags). Once
    artifact_skip beats in a row were left out, the next enter (a rhythm under lasting noise is still learnt); a bed
    read in artifact from its start learns its first artifact_after beats."""
    fs = 250.0
    x, _, _ = beat_train(fs, "N" * 30 + "V" * 50, v_rr=0.4, seed=5)
    seg = Segmenter("t", fs, rep=Representation(kind="window"))
    step = round(0.25 * fs)
    blocks = [(x[a:a + step], [b.index for b in seg.push(x[a:a + step])]) for a in range(0, len(x), step)]
    run_at = round((1.0 + 29 * 0.8 + 0.2) * fs)  # between the last sinus beat and the run's first
    noisy_to = round((1.0 + 29 * 0.8 + 30 * 0.4 - 0.2) * fs)  # the run's first 30 complexes

    def run(cfg: VTyperConfig, tell: bool) -> list[VBeat]:
        t, out = VTyper(fs, cfg), []
        for chunk, fids in blocks:
            t.add(chunk, fids)
            job = t.stage()
            if job is None:
                continue
            if tell:
                job.artifact = (job.fids >= run_at) & (job.fids <= noisy_to)
            out += type_staged([job])[0]
        return out

    told, untold = run(VTyperConfig(), True), run(VTyperConfig(), False)
    capped = run(VTyperConfig(artifact_skip=10), True)
    after = [k for k, b in enumerate(told) if b.index > noisy_to + 0.3 * fs]  # the run's last 20 (and no more)
    assert len(after) == 20, len(after)
    assert all(told[k].ventricular and told[k].corr < 0.8 for k in after), [(told[k].p_ventricular, told[k].corr)
                                                                           for k in after]
    assert not any(untold[k].ventricular for k in after) and all(untold[k].corr > 0.9 for k in after)
    # 10 left out, then the rest enter: the template turns within the run, as without the flags 10 beats sooner
    assert not any(capped[k].ventricular for k in after[-5:]) and capped[after[0]].ventricular
    np.testing.assert_allclose([b.prev_corr for b in told], [b.prev_corr for b in untold], rtol=1e-9, atol=1e-12)
    # a bed read in artifact from its start still learns its first artifact_after beats: a template from the 5th beat
    t, first = VTyper(fs), []
    for chunk, fids in blocks:
        t.add(chunk, fids)
        job = t.stage()
        if job is not None:
            job.artifact = np.ones(len(job.fids), dtype=bool)
            first += type_staged([job])[0]
    assert [b.template for b in first[:30]] == [False] * 4 + [True] * 26

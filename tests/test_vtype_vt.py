"""Ventricular tachycardia from typed beats: the monotone typing model, the VT rule's tolerance of one misread beat
(monitor/lethal.py), and seeded synthetic ECG through the live classes (a VT run with one beat misread still
alarms; a noise burst on sinus rhythm does not)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ecgmon.core.messages import AlarmState, Condition
from ecgmon.monitor.lethal import LethalConfig, LethalWatch
from ecgmon.segmentation.beats import Segmenter
from ecgmon.segmentation.represent import Representation
from ecgmon.segmentation.vtype import DIRECTIONS, FEATURES, MODEL, VTyper, VTyperConfig, features

FS = 250.0


def _g(t: np.ndarray, mu: float, sd: float, a: float) -> np.ndarray:
    return a * np.exp(-0.5 * ((t - mu) / sd) ** 2)


def ecg(fs: float, beats: list[tuple[float, str]], seconds: float, *, seed: int = 0) -> np.ndarray:
    """Synthetic ECG (mV): ``beats`` (time s, ``N`` narrow supraventricular beat with P and T | ``V`` wide
    ventricular complex of ~160 ms with a discordant T), baseline wander and 10 uV noise."""
    rng = np.random.default_rng(seed)
    tt = np.arange(round(seconds * fs)) / fs
    x = 0.01 * rng.standard_normal(len(tt)) + 0.05 * np.sin(2 * np.pi * 0.25 * tt)
    for c, k in beats:
        if k == "V":
            x += _g(tt, c, 0.035, 1.4) + _g(tt, c + 0.075, 0.03, -0.7) + _g(tt, c + 0.33, 0.07, -0.4)
        else:
            x += (_g(tt, c - 0.16, 0.025, 0.15) + _g(tt, c - 0.025, 0.008, -0.1) + _g(tt, c, 0.01, 1.0)
                  + _g(tt, c + 0.025, 0.008, -0.25) + _g(tt, c + 0.28, 0.05, 0.3))
    return x


def _sinus_then_run(run: str, *, rr: float = 0.8, vt_rr: float = 0.4, n_before: int = 25,
                    n_after: int = 10) -> tuple[list[tuple[float, str]], float, float]:
    """Sinus beats, then ``run`` (one letter per beat) at ``vt_rr``, then sinus again: beats, run start, run end."""
    out, t = [], 1.0
    for _ in range(n_before):
        out.append((t, "N"))
        t += rr
    start = t
    for k in run:
        out.append((t, k))
        t += vt_rr
    end = t
    t += rr
    for _ in range(n_after):
        out.append((t, "N"))
        t += rr
    return out, start, end


def _watch(x: np.ndarray, fs: float, cfg: LethalConfig = LethalConfig(), chunk_s: float = 0.25) -> list:
    """Segmenter -> VTyper -> LethalWatch, as the pipeline feeds them (without the VF detector): the changes."""
    seg = Segmenter("t", fs, rep=Representation(kind="window"))
    typer, watch = VTyper(fs), LethalWatch(fs, cfg)
    out = []
    step = round(chunk_s * fs)
    for a in range(0, len(x), step):
        beats = seg.push(x[a:a + step])
        for b in beats:
            out += watch.qrs(b.index)
        for vb in typer.push(x[a:a + step], [b.index for b in beats]):
            out += watch.typed(vb.index, ventricular=vb.ventricular, p_ventricular=vb.p_ventricular)
        out += watch.samples(a + len(x[a:a + step]))
    return out


def test_the_typing_model_is_monotone_where_physiology_says_which_way():
    """Wider, more premature, less like the bed's template, wider than the template, rarer: never less ventricular,
    however far beyond the fitting data (the quadratic model this replaced typed a QRS of 130 ms correlating -0.7
    with the template at p = 0.04)."""
    rng = np.random.default_rng(7)
    n = 2000
    base = features(rng.uniform(0.01, 0.3, n), rng.uniform(-1, 1, n), rng.uniform(-1.5, 2, n), np.ones(n),
                    rng.uniform(-1, 1, n), rng.uniform(-0.1, 0.25, n), rng.uniform(-1, 1, n), rng.uniform(0, 1, n))
    p0 = MODEL.prob(base)
    for name, sign in DIRECTIONS.items():
        moved = base.copy()
        moved[:, FEATURES.index(name)] += sign * rng.uniform(0.0, 0.5, n)
        assert (MODEL.prob(moved) >= p0 - 1e-12).all(), name
    # a wide, premature complex unlike the bed's beats is ventricular, the bed's own narrow beat is not
    vt = features(0.16, -0.5, 0.0, True, -0.7, 0.09, -0.4, 0.0)
    sinus = features(0.04, 0.0, 0.0, True, 0.99, 0.0, 0.0, 0.95)
    assert MODEL.prob(vt) > 0.9 and MODEL.prob(sinus) < 0.02
    # the VT rule counts a beat ventricular at a lower probability than VEB counting does (a VT run's complexes are
    # read more leniently; an isolated beat's advisory is not lethal)
    assert LethalConfig().vt_p is not None and LethalConfig().vt_p < VTyperConfig().threshold


def _typed_run(w: LethalWatch, ps: list[float], rrs: list[float], *, t0: float = 10.0,
               artifact: bool = False, alike: float | None = None) -> list:
    out, t = [], t0
    for p, rr in zip(ps, rrs, strict=True):
        t += rr
        out += w.typed(round(t * FS), ventricular=p >= 0.4, p_ventricular=p, artifact=artifact, prev_corr=alike)
    return out


def _sinus(w: LethalWatch) -> None:
    _typed_run(w, [0.01] * 10, [0.8] * 10, t0=0.0)


@pytest.mark.parametrize("misread_at", [1, 2, 3, 4])
def test_a_vt_run_with_one_misread_beat_still_alarms(misread_at):
    ps = [0.9] * 6
    ps[misread_at] = 0.05  # one beat of the run typed supraventricular, at the run's cadence
    w = LethalWatch(FS)
    _sinus(w)
    ch = _typed_run(w, ps, [0.4] * 6)
    assert [c.condition for c in ch if c.active] == [Condition.VTACH]
    strict = LethalWatch(FS, LethalConfig(vt_misread=0))  # strictly in a row: the misread beat breaks the run
    _sinus(strict)
    assert not _typed_run(strict, ps, [0.4] * 6)


def test_no_vt_from_bigeminy_from_a_misread_beat_off_the_cadence_or_beats_in_artifact():
    w = LethalWatch(FS)
    _sinus(w)
    # ventricular bigeminy at 150 bpm: never 5 ventricular beats among 6
    assert not _typed_run(w, [0.9, 0.05] * 8, [0.4] * 16)
    w = LethalWatch(FS)
    _sinus(w)
    # a sinus beat after a pause of more than twice the run's cadence inside it: not a misread VT beat
    assert not _typed_run(w, [0.9, 0.9, 0.9, 0.05, 0.9, 0.9], [0.4, 0.4, 0.4, 0.4, 0.85, 0.4])
    w = LethalWatch(FS)
    _sinus(w)
    assert not _typed_run(w, [0.9] * 8, [0.4] * 8, artifact=True)
    # 5 ventricular beats at 90 bpm: an idioventricular rhythm, no tachycardia
    w = LethalWatch(FS)
    _sinus(w)
    assert not _typed_run(w, [0.9] * 8, [60 / 90] * 8)


def test_a_run_of_unlike_complexes_is_no_vt():
    """Noise and motion detections typed ventricular are not alike (median correlation with the complex before
    under ``vt_similar``, 0.6): no VT; the beats of a monomorphic run are alike (0.9): VT."""
    w = LethalWatch(FS)
    _sinus(w)
    assert not _typed_run(w, [0.9] * 8, [0.4] * 8, alike=0.2)
    w = LethalWatch(FS)
    _sinus(w)
    assert [c.condition for c in _typed_run(w, [0.9] * 6, [0.4] * 6, alike=0.9) if c.active] == [Condition.VTACH]


def test_vt_p_counts_beats_of_lower_probability_for_the_vt_rule():
    ps = [0.35] * 6  # over the VT rule's vt_p (0.3); the watch is told the beats are not ventricular (p < 0.4)
    w = LethalWatch(FS)
    _sinus(w)
    assert [c.condition for c in _typed_run(w, ps, [0.4] * 6) if c.active] == [Condition.VTACH]
    w = LethalWatch(FS, LethalConfig(vt_p=None))  # the decision the watch is given
    _sinus(w)
    assert not _typed_run(w, ps, [0.4] * 6)


def test_synthetic_vt_with_one_narrow_beat_inside_raises_vt_through_segmenter_and_typer():
    """Sinus at 75 bpm, then 8 wide complexes at 150 bpm of which the fourth is a narrow (supraventricular-looking)
    complex at the run's cadence, then sinus again: VT is raised during the run (within its last beats, typed
    ``post_s`` after each QRS); strictly 5 in a row would have missed it.  With ``vt_p`` 0.5 the narrow complex
    counts as not ventricular (the typer gives it p ~ 0.4: its QRS window holds the wide complex's T wave before
    it), and so does the run's first complex (at the sinus cadence, not premature: p ~ 0.3)."""
    beats, start, end = _sinus_then_run("VVVNVVVV")
    x = ecg(FS, beats, end + 10.0, seed=3)
    ch = _watch(x, FS, LethalConfig(vt_p=0.5))
    vt = [c for c in ch if c.condition is Condition.VTACH and c.active]
    assert len(vt) == 1 and start * FS < vt[0].index <= (end + 0.5) * FS, [(c.index / FS) for c in vt]
    assert not [c for c in _watch(x, FS, LethalConfig(vt_p=0.5, vt_misread=0)) if c.condition is Condition.VTACH]
    # sinus alone raises nothing
    beats, _, end = _sinus_then_run("NNNNNNNN", vt_rr=0.8)
    assert not [c for c in _watch(ecg(FS, beats, end + 10.0, seed=4), FS) if c.condition is Condition.VTACH]


@pytest.mark.slow
def test_a_noise_burst_on_sinus_rhythm_raises_no_vt_through_the_live_pipeline():
    """Two beds through the live pipeline (segmenter, typer, VF/artifact detector, lethal watch): sinus rhythm at 75
    bpm with 6 s of electrode-motion-like noise (band-limited, 1.5 mV) raises no VT alarm; the same sinus rhythm
    with 10 wide complexes at 150 bpm raises one, during the run."""
    from ecgmon.evaluation import ec57
    from ecgmon.models.checkpoint import load
    from ecgmon.models.recording import Recording

    rng = np.random.default_rng(11)
    beats, _, _ = _sinus_then_run("", n_before=75, n_after=0)
    clean = ecg(FS, beats, 62.0, seed=5)
    noisy = clean.copy()
    a, b = round(30 * FS), round(36 * FS)
    burst = np.convolve(rng.standard_normal(b - a), np.ones(5) / 5, mode="same")
    noisy[a:b] += 1.5 * burst / burst.std()
    run_beats, start, end = _sinus_then_run("V" * 10, n_before=35, n_after=30)
    vt = ecg(FS, run_beats, 62.0, seed=6)
    recs = [Recording(name, Path(name), FS, "II", sig.astype(np.float32))
            for name, sig in (("noise", noisy), ("vt", vt))]
    beds = {b.name: b for b in ec57.run_records(recs, load("mitdb"), threads=1, learn_s=0)}
    raised = {n: [a.beat_index / FS for a in bd.alarms if a.condition is Condition.VTACH
                  and a.state is AlarmState.ACTIVE] for n, bd in beds.items()}
    assert raised["noise"] == []
    assert len(raised["vt"]) == 1 and start <= raised["vt"][0] <= end + 0.5, raised


@pytest.mark.slow
def test_a_vt_whose_onset_lies_in_electrode_motion_keeps_its_alarm_through_the_live_pipeline():
    """Sinus rhythm at 75 bpm, then 30 s of wide complexes at 150 bpm whose first 11 s lie under 12 s of real
    electrode-motion noise (NSTDB's, tests/data/nstdb-em, 1 mV RMS), then sinus again, through the live pipeline: the VT
    is raised (9.6 s after its onset, as the noise wanes) and held to the VT's end. The beats in artifact do not enter
    the typer's template (VTyperConfig.artifact_skip); with them (0, as before session 45) the template became the VT
    complex under the noise, the VT's beats were typed the bed's own, and it cleared 5 s after it was raised, 15 s
    before the VT's end (a reviewer's VTs under NSTDB motion noise, session 45: some raised no VT at all)."""
    from ecgmon.evaluation import ec57
    from ecgmon.models.checkpoint import load
    from ecgmon.models.recording import Recording
    from ecgmon.models.records import read

    fs = 360.0
    em = read(Path(__file__).parent / "data" / "nstdb-em" / "em300", lead="MLII").signal.astype(np.float64)
    em = np.concatenate([em, em[::-1]])  # 16 s, continuous at the join
    em = (em - em.mean()) / em.std()
    beats, start, end = _sinus_then_run("V" * 75, n_before=30, n_after=20)
    x = ecg(fs, beats, end + 20 * 0.8 + 2.0, seed=7)
    a = round((start - 1.0) * fs)
    x[a:a + round(12 * fs)] += em[:round(12 * fs)]

    def vt(skip: int) -> list[tuple[bool, float]]:
        orig = VTyper.__init__

        def init(self: VTyper, fs: float, cfg: VTyperConfig = VTyperConfig()) -> None:
            orig(self, fs, dataclasses.replace(cfg, artifact_skip=skip))

        VTyper.__init__ = init  # type: ignore[method-assign]
        try:
            rec = Recording("em", Path("em"), fs, "II", x.astype(np.float32))
            bed = ec57.run_records([rec], load("mitdb"), threads=1, learn_s=0)[0]
        finally:
            VTyper.__init__ = orig  # type: ignore[method-assign]
        return [(al.state is AlarmState.ACTIVE, al.beat_index / fs) for al in bed.alarms
                if al.condition is Condition.VTACH and al.state in (AlarmState.ACTIVE, AlarmState.CLEARED)]

    got = vt(VTyperConfig().artifact_skip)
    assert [on for on, _ in got] == [True, False], got
    assert start <= got[0][1] <= start + 15.0 and end <= got[1][1] <= end + 10.0, (start, end, got)
    before = vt(0)
    assert before[1][1] < end - 10.0, (start, end, before)


def test_lethal_config_vt_options_are_frozen_with_their_defaults():
    c = LethalConfig()
    assert (c.vt_beats, c.vt_bpm, c.vt_misread, c.vt_misread_rr, c.vt_p, c.vt_similar, c.vt_noisy, c.vt_clear_bpm) == (
        5, 100.0, 1, 1.0, 0.3, 0.6, False, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.vt_misread = 2  # type: ignore[misc]


def test_vt_regular_refuses_an_irregular_run_when_asked():
    """``vt_regular`` (off by default): wide beats at atrial fibrillation's irregular cycle (0.3-0.6 s) are no VT
    with it at 0.3; a regular run (0.4 s +/- 5 %) still is, and without it both are."""
    irregular = [0.32, 0.55, 0.36, 0.6, 0.3, 0.5]
    regular = [0.4, 0.42, 0.39, 0.41, 0.4, 0.38]
    for rrs, with_rule, without in ((irregular, False, True), (regular, True, True)):
        for cfg, want in ((LethalConfig(vt_regular=0.3), with_rule), (LethalConfig(), without)):
            w = LethalWatch(FS, cfg)
            _sinus(w)
            got = [c.condition for c in _typed_run(w, [0.9] * 6, rrs) if c.active] == [Condition.VTACH]
            assert got == want, (rrs, cfg.vt_regular)

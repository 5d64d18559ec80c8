"""The per-bed model (monitor/bedmodel.py): learning, the artifact and rhythm-changed conditions, offset following."""

from __future__ import annotations

import numpy as np
import pytest

from ecgmon.core.messages import Beat
from ecgmon.monitor.bedmodel import BedModel, rr_context
from ecgmon.monitor.learning import (
    MISMATCH_FLOOR,
    MISMATCH_RATIO,
    NOISE_FLOOR,
    LearningConfig,
    LearntStore,
    bed_from_json,
    bed_to_json,
)

FS = 100.0
SHAPE = (2, 140)
MARGIN = 0.01


def _beat(i: int, noise: float = 0.005, mismatch: float = 0.02) -> Beat:
    return Beat("bed", np.zeros(SHAPE, np.float32), index=i * 100, rr_prev_s=1.0, fs=FS, closed_mono=0.0, noise=noise,
                mismatch=mismatch)


def _learnt(rng: np.random.Generator, *, follow_rate: float = 0.0, beats: int = 20) -> tuple[BedModel, np.ndarray]:
    """A bed that has learnt on ``beats`` residuals scattered around a fixed offset."""
    cfg = LearningConfig(learn_s=10.0, min_beats=beats, follow_rate=follow_rate)
    m = BedModel(FS, threshold=1.0, shape=SHAPE, learning=cfg, margin=MARGIN)
    offset = rng.normal(0, 0.3, SHAPE).astype(np.float32)
    done = []
    for i in range(beats + 11):
        v = m.judge(_beat(i), 0.0, offset + rng.normal(0, 0.01, SHAPE).astype(np.float32), now=0.0)
        assert (v.score.verdict == "learning") != (m.learnt is not None) or v.learnt_now
        done.append(v.learnt_now)
    assert done.count(True) == 1 and m.learnt is not None and not m.learning
    return m, offset


def test_without_learning_the_loss_is_judged_against_the_population_threshold():
    m = BedModel(FS, threshold=0.5, shape=(140,))
    res = np.zeros(140, np.float32)
    assert m.judge(_beat(0), 0.6, res, 0.0).score.flagged
    v = m.judge(_beat(1), 0.4, res, 0.0)
    assert not v.score.flagged and v.score.verdict == "normal" and v.artifact is None and v.rhythm_changed is None
    assert not m.learns and m.progress(100) is None and not m.relearn()


def test_learning_takes_the_median_offset_and_sets_the_bed_threshold():
    rng = np.random.default_rng(0)
    m, offset = _learnt(rng)
    assert m.learnt is not None
    np.testing.assert_allclose(m.learnt.offset, offset, atol=0.01)
    # the shift: the median loss of the learning beats against the offset, ~ the residual noise's variance
    assert m.learnt.shift == pytest.approx(1e-4, rel=0.3)
    v = m.judge(_beat(100), 0.0, offset, 0.0)
    assert v.score.threshold == pytest.approx(m.learnt.shift + MARGIN)
    assert v.score.verdict == "normal" and v.score.loss < 0.2 * m.learnt.shift  # the median is close to the offset
    wide = offset.copy()
    wide[0, 20:60] += 0.5  # a different shape: flagged against the bed's own normal
    assert m.judge(_beat(101), 0.0, wide, 0.0).score.flagged


def test_artifact_withholds_verdicts_on_noisy_beats_and_clears():
    rng = np.random.default_rng(1)
    m, offset = _learnt(rng)
    noisy = max(NOISE_FLOOR, 0.005 * 3) * 2
    bad = offset.copy()
    bad[0] += 1.0  # would be flagged if it were judged
    # noisy beats: the artifact condition comes on at 4 of the last 8; from then on no verdict, not flagged
    seen = [m.judge(_beat(200 + i, noise=noisy), 0.0, bad, 0.0) for i in range(6)]
    assert [v.artifact for v in seen] == [False, False, False, True, True, True]
    assert all(v.score.flagged for v in seen[:3])
    assert all(v.score.verdict == "noisy" and not v.score.flagged for v in seen[3:])
    clean = [m.judge(_beat(300 + i), 0.0, offset, 0.0) for i in range(8)]
    assert clean[-1].artifact is False and clean[-1].score.verdict == "normal"


def test_mismatched_beats_get_no_verdict_at_7_of_8_and_clear_at_3():
    """Beats that differ from the ones before them outside their QRS (electrode motion): judged against the bed's own
    learnt mismatch (0.02 here, so the limit is MISMATCH_RATIO times it), 7 of the last 8 raise the artifact."""
    rng = np.random.default_rng(3)
    m, offset = _learnt(rng)
    assert m.learnt is not None and m.learnt.mismatch == pytest.approx(0.02)
    limit = max(MISMATCH_FLOOR, 0.02 * MISMATCH_RATIO)
    bad = offset.copy()
    bad[0] += 1.0  # would be flagged if it were judged
    seen = [m.judge(_beat(200 + i, mismatch=1.5 * limit), 0.0, bad, 0.0) for i in range(9)]
    assert [v.artifact for v in seen] == [False] * 6 + [True] * 3
    assert all(v.score.flagged for v in seen[:6])
    assert all(v.score.verdict == "noisy" and not v.score.flagged for v in seen[6:])
    clean = [m.judge(_beat(300 + i), 0.0, offset, 0.0) for i in range(8)]
    assert [v.artifact for v in clean] == [True] * 4 + [False] * 4  # 3 or fewer of 8: off
    assert clean[-1].score.verdict == "normal"
    # just under the limit, or one beat in 4 matching (6 of 8 mismatched at most): judged
    under = [m.judge(_beat(400 + i, mismatch=0.99 * limit), 0.0, offset, 0.0) for i in range(10)]
    assert all(v.artifact is False and v.score.verdict == "normal" for v in under)
    mixed = [m.judge(_beat(500 + i, mismatch=1.5 * limit if i % 4 else 0.02), 0.0, bad, 0.0) for i in range(16)]
    assert all(v.artifact is False and v.score.flagged for v in mixed)


def test_a_bed_restored_without_a_learnt_mismatch_counts_no_beat_mismatched(tmp_path):
    """A state saved before mismatch existed (no "mismatch" key) has no level: only the PR segment's noise counts."""
    rng = np.random.default_rng(6)
    m, offset = _learnt(rng)
    assert m.learnt is not None
    d = bed_to_json(FS, m.learnt)
    assert d["mismatch"] == pytest.approx(0.02) and bed_from_json(d)[1].mismatch == pytest.approx(0.02)
    store = LearntStore(tmp_path / "learnt.json", "sha")
    store.save({"bed": (FS, m.learnt)})
    assert store.load()["bed"][1].mismatch == pytest.approx(0.02)
    fs, lt = bed_from_json({k: v for k, v in d.items() if k != "mismatch"})
    assert np.isnan(lt.mismatch) and lt.noise == pytest.approx(0.005)
    restored = BedModel(fs, threshold=1.0, shape=SHAPE, learning=LearningConfig(learn_s=10.0), margin=MARGIN,
                        learnt=lt)
    vs = [restored.judge(_beat(200 + i, mismatch=10.0), 0.0, offset, 0.0) for i in range(10)]
    assert all(v.artifact is False and v.score.verdict == "normal" for v in vs)


def test_rhythm_changed_judges_beats_by_their_shape_alone():
    rng = np.random.default_rng(2)
    m, offset = _learnt(rng)
    early = offset.copy()
    early[1] += 0.5  # the RR prematurity channel only: an irregular rhythm, the bed's normal shape
    vs = [m.judge(_beat(100 + i), 0.0, early, 0.0) for i in range(32)]
    flagged_before = [v.score.flagged for v in vs]
    assert all(flagged_before[:11])  # by timing, until the watch has seen 12 of a full window of 32
    last = vs[-1]
    assert last.rhythm_changed is True and last.score.by_shape and not last.score.flagged
    assert last.score.loss == last.score.shape_loss and last.score.rr_loss is not None
    assert "rhythm changed" in last.score.why
    # in the changed rhythm a beat of another shape is still flagged, by its shape
    wide = early.copy()
    wide[0, 20:60] += 0.5
    v = m.judge(_beat(200), 0.0, wide, 0.0)
    assert v.score.flagged and v.score.by_shape
    # back to the learnt rhythm: the condition clears once 4 or fewer of 32 are flagged by timing
    back = [m.judge(_beat(300 + i), 0.0, offset, 0.0) for i in range(32)]
    assert back[-1].rhythm_changed is False and not back[-1].score.by_shape
    # relearning starts over: verdicts held, the rhythm watch empty
    assert m.relearn() and m.learning and m.judge(_beat(400), 0.0, offset, 0.0).score.verdict == "learning"


def test_shape_changed_comes_on_when_most_beats_differ_in_shape_and_not_for_a_bigeminy():
    """A polarity reversal (an electrode moved) after learning flags every beat by its shape: 28 of a full window of
    32 raise the QRS-shape-changed condition, 8 or fewer clear it; ventricular bigeminy (half the beats) never."""
    rng = np.random.default_rng(4)
    m, offset = _learnt(rng)
    other = offset.copy()
    other[0] = -other[0]  # the wave channel reversed, the rhythm the learnt one
    other[0, 20:60] += 0.5
    bigeminy = [m.judge(_beat(100 + i), 0.0, other if i % 2 else offset, 0.0) for i in range(64)]
    assert not any(v.shape_changed for v in bigeminy) and sum(v.score.flagged for v in bigeminy) == 32
    vs = [m.judge(_beat(200 + i), 0.0, other, 0.0) for i in range(32)]
    assert [v.shape_changed for v in vs].index(True) > 0 and vs[-1].shape_changed
    back = [m.judge(_beat(300 + i), 0.0, offset, 0.0) for i in range(32)]
    assert back[-1].shape_changed is False
    assert m.relearn() and m.judge(_beat(400), 0.0, other, 0.0).shape_changed is None  # learning again


def test_offset_follows_normal_beats_but_not_flagged_ones():
    rng = np.random.default_rng(3)
    rate = 1 / 16
    m, _ = _learnt(rng, follow_rate=rate)
    assert m.learnt is not None
    start = m.learnt.offset.copy()
    drift = start + 0.02  # a slow drift, within the bed's threshold: judged normal
    for i in range(16):
        assert m.judge(_beat(100 + i), 0.0, drift, 0.0).score.verdict == "normal"
    moved = 1 - (1 - rate) ** 16  # each normal beat moves the offset `rate` of the way
    np.testing.assert_allclose(m.learnt.offset, start + 0.02 * moved, atol=1e-5)
    before = m.learnt.offset.copy()
    ectopic = before.copy()
    ectopic[0, 20:60] += 1.0
    assert m.judge(_beat(200), 0.0, ectopic, 0.0).score.flagged
    np.testing.assert_array_equal(m.learnt.offset, before)  # a flagged beat is not learnt


def test_rr_context_irregular_rhythm_and_late_beats_are_judged_by_shape():
    assert rr_context([1.0] * 7, 2.0) is None  # too few RR to know the bed's rhythm
    assert rr_context([1.0] * 16, 1.0) is None
    assert rr_context([1.0] * 16, 1.5) == "late"  # after a pause: lateness is no sign of an ectopic beat
    # sinus arrhythmia: RR changes gradually (successive differences small), a beat at the slow end is not late
    sinus = [0.8 + 0.2 * np.sin(i / 2.5) for i in range(16)]
    assert rr_context(sinus, 1.0) is None
    rng = np.random.default_rng(0)
    af = rng.uniform(0.4, 1.2, 16).tolist()  # atrial fibrillation: irregularly irregular
    assert rr_context(af, 0.5) == "irregular"
    # a few ectopic beats in a regular rhythm do not make it irregular
    assert rr_context([1.0] * 6 + [0.6, 1.4] + [1.0] * 8, 1.0) is None


def test_a_late_beat_is_judged_by_its_shape_alone():
    rng = np.random.default_rng(2)
    m, offset = _learnt(rng)
    for i in range(10):  # the bed's rhythm: RR 1 s
        m.judge(_beat(100 + i), 0.0, offset, 0.0)
    late = offset.copy()
    late[1] -= 0.5  # the RR channel says 'late', the shape is the bed's normal
    pause = Beat("bed", np.zeros(SHAPE, np.float32), index=20000, rr_prev_s=2.5, fs=FS, closed_mono=0.0, noise=0.005)
    v = m.judge(pause, 0.0, late, 0.0)
    assert v.score.by_shape and not v.score.flagged and v.score.loss == v.score.shape_loss
    assert v.rhythm_changed is False  # not a changed rhythm: one beat after a pause
    v = m.judge(_beat(300), 0.0, late, 0.0)  # the same residual at the bed's own RR: judged on both, flagged
    assert v.score.flagged and not v.score.by_shape

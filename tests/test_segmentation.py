import neurokit2 as nk
import numpy as np
import pytest

from ecgmon.segmentation.beats import Segmenter, resample_beat
from ecgmon.segmentation.filters import CausalFilter, MovingAverage, filter_many
from ecgmon.segmentation.quality import QualityMonitor
from ecgmon.simulators.replay import chunks, plan_patients


def _segment(signal, fs, sizes):
    seg = Segmenter("p", fs)
    beats, i, k = [], 0, 0
    while i < len(signal):
        n = sizes[k % len(sizes)]
        beats += seg.push(signal[i:i + n])
        i, k = i + n, k + 1
    return seg, beats


def test_causal_filters_do_not_depend_on_chunking(rng):
    x = rng.standard_normal(3000)
    whole = CausalFilter.bandpass(250, 5, 20)(x)
    f = CausalFilter.bandpass(250, 5, 20)
    parts = np.concatenate([f(x[a:a + 37]) for a in range(0, len(x), 37)])
    np.testing.assert_allclose(parts, whole, atol=1e-12)
    ma = MovingAverage(25)
    np.testing.assert_allclose(np.concatenate([ma(x[a:a + 11]) for a in range(0, 3000, 11)]),
                               MovingAverage(25)(x), atol=1e-12)


def test_filter_many_gives_each_stream_what_its_own_filter_gives(rng):
    """Streams of two designs and several lengths, one fresh, filtered together chunk after chunk: each stream's
    output and state equal those of its own filter called alone (the same scipy kernel, one call per group)."""
    designs = [(250, 5, 20), (250, 5, 20), (250, 5, 20), (360, 1, 35), (250, 1, 35)]
    alone = [CausalFilter.bandpass(*d) for d in designs]
    together = [CausalFilter.bandpass(*d) for d in designs]
    for r in range(6):
        xs = [rng.standard_normal(60 + (17 if i == 2 and r % 2 else 0)) + i for i in range(len(designs))]
        if r == 0:
            xs[1] = xs[1][:0]  # an empty chunk before the first samples
        got = filter_many(together, xs)
        for f, g, x in zip(alone, got, xs, strict=True):
            np.testing.assert_array_equal(g, f(x))
    for f, g in zip(alone, together, strict=True):
        np.testing.assert_array_equal(f.zi, g.zi)


@pytest.mark.parametrize("fs", [250.0, 500.0])
def test_replayed_beats_are_found_at_their_true_starts(split, fs):
    plans = plan_patients(split.pool.x, split.pool.y, split.test, patients=8, fs=fs, seed=0)
    true_n = found = matched = 0
    for pl in plans:
        _, beats = _segment(pl.signal, fs, [int(0.25 * fs)])
        f = np.asarray([b.index for b in beats])
        near = np.min(np.abs(f[None, :] - pl.starts[:, None]), axis=1)
        true_n += len(pl.starts)
        found += len(f)
        matched += int((near <= 0.020 * fs).sum())
    sens, ppv = matched / true_n, matched / found
    # measured 0.963/0.953 at 250 Hz and 0.978/0.967 at 500 Hz (the 0.995 is not yet reached)
    assert sens >= 0.95 and ppv >= 0.94, (sens, ppv)


@pytest.mark.parametrize(("fs", "hr"), [(100, 60), (250, 72), (500, 95), (1000, 110)])
def test_r_peaks_and_heart_rate_against_neurokit_on_synthetic_ecg(fs, hr):
    ecg = nk.ecg_simulate(duration=30, sampling_rate=fs, heart_rate=hr, noise=0.01, random_state=7)
    _, info = nk.ecg_peaks(ecg, sampling_rate=fs)
    ref = np.asarray(info["ECG_R_Peaks"])
    seg, beats = _segment(ecg, fs, [int(0.2 * fs), int(0.33 * fs)])
    f = np.asarray([b.index for b in beats])
    # the fiducial is the QRS's steepest slope (where ECG5000 beats begin); it lies on the R upstroke
    # or downstroke, within 50 ms of neurokit's offline R peak
    # after the 2 s warm-up; the last beats of the record are never closed by a next fiducial
    settled = ref[ref > 2.5 * fs][:-2]
    near = np.min(np.abs(f[None, :] - settled[:, None]), axis=1) / fs
    assert np.mean(near <= 0.05) >= 0.98
    assert seg.heart_rate == pytest.approx(hr, abs=2)
    assert all(b.samples.shape == (140,) for b in beats)


def test_same_beats_for_any_chunking(split):
    pl = plan_patients(split.pool.x, split.pool.y, split.test[:60], patients=1, fs=250.0, seed=3)[0]
    _, a = _segment(pl.signal, 250.0, [62])
    _, b = _segment(pl.signal, 250.0, [1, 7, 300, 13, 64])
    assert [x.index for x in a] == [x.index for x in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.samples, y.samples, atol=1e-5)


def test_resampled_beats_are_z_normalised_140_samples():
    v = resample_beat(np.sin(np.linspace(0, 6, 500)) * 3 + 2, 10.0, 210.5)
    assert v.shape == (140,)
    assert abs(v.mean()) < 1e-5 and abs(v.std() - 1) < 1e-4


def test_replay_chunks_carry_truth_and_are_marked_replay(split):
    pl = plan_patients(split.pool.x, split.pool.y, split.test[:40], patients=2, fs=250.0, seed=1)[0]
    cs = list(chunks(pl, chunk_s=0.5))
    assert all(c.replay for c in cs)
    assert sum(len(c.truth) for c in cs) == len(pl.starts)
    assert np.array_equal(np.concatenate([c.samples for c in cs]), pl.signal)
    hr = 60 / pl.rr_s.mean()
    assert 50 <= hr <= 115


def test_quality_flags_flat_line_and_noise(rng):
    q = QualityMonitor(250)
    assert q.push(np.zeros(600), beats_found=0).flat
    q = QualityMonitor(250)
    r = None
    for _ in range(6):
        r = q.push(rng.standard_normal(250), beats_found=0)
    assert r is not None and r.noisy and not r.flat


def test_quality_tells_a_clipped_signal_from_a_held_value_and_from_missing_samples():
    fs = 250
    t = np.arange(4 * fs) / fs
    wave = np.sin(2 * np.pi * 1.2 * t)
    q = QualityMonitor(fs)  # an amplifier at its rail: every crest pinned at the same value, again and again
    clipped = [q.push(c, beats_found=1) for c in np.split(np.clip(wave, -2, 0.3), 4)]
    assert clipped[-1].saturated and not clipped[-1].flat
    q = QualityMonitor(fs)  # a lead coming off holds its last value: not clipping; a flat line once it lasts 2 s
    held = np.concatenate([wave[:fs], np.full(3 * fs, wave[fs - 1])])
    got = [q.push(c, beats_found=0) for c in np.split(held, 8)]
    assert not any(g.saturated for g in got) and got[-1].flat
    q = QualityMonitor(fs)  # NaN is signal loss (the segmenter's alarm), neither a flat line nor noise
    got = [q.push(c, beats_found=1 if i < 2 else 0) for i, c in
           enumerate(np.split(np.concatenate([wave[:2 * fs], np.full(2 * fs, np.nan)]), 8))]
    assert not any(g.flat or g.saturated for g in got)


def test_quality_verdicts_at_fixed_points_do_not_depend_on_the_chunks(rng):
    """With ``step``, the flat-line and saturation verdicts are made every ``step`` samples of the stream, each over
    the window ending there, whatever the chunks: a 2.5 s flat stretch (a lead off for a moment) is found in 0.1 s,
    0.25 s and 1 s chunks alike, and at the same points."""
    fs, step = 250, 62
    x = 0.5 * np.sin(2 * np.pi * 1.2 * np.arange(12 * fs) / fs) + 0.01 * rng.standard_normal(12 * fs)
    x[5 * fs:5 * fs + round(2.5 * fs)] = 0.2
    x[9 * fs:9 * fs + 30] = np.nan
    got = {}
    for n in (25, 62, 250, 12 * fs):
        q = QualityMonitor(fs, step=step)
        points = []
        for a in range(0, len(x), n):
            last = q.push(x[a:a + n], beats_found=1)
            points += q.points
            assert last == (q.points[-1][1] if q.points else last)
        got[n] = points
    assert got[25] == got[62] == got[250] == got[12 * fs]
    assert [p for p, _ in got[62]] == list(range(step, 12 * fs + 1, step))
    flat = [p for p, v in got[62] if v.flat]
    assert flat and 7 * fs <= flat[0] <= 7 * fs + round(0.1 * fs) + step


def test_ward_replay_keeps_every_normal_beat_and_a_few_percent_of_ectopy_unevenly(split):
    rows = split.test
    full = plan_patients(split.pool.x, split.pool.y, rows, patients=16, fs=250.0, seed=0)
    ward = plan_patients(split.pool.x, split.pool.y, rows, patients=16, fs=250.0, seed=0, abnormal_rate=0.03)
    normal_rows = {int(r) for r in rows if split.pool.y[r] == 1}
    played = [int(r) for p in ward for r in p.refs]
    assert {r for r in played if split.pool.y[r] == 1} == normal_rows  # every normal beat is played
    assert len(played) == len(set(played))  # none twice
    share = np.mean([split.pool.y[r] != 1 for r in played])
    assert 0.025 <= share <= 0.035  # ECG5000's test split itself is 42 % abnormal
    full_share = np.mean([lab != 1 for p in full for lab in p.labels])
    assert full_share > 0.35
    per_bed = sorted(float(np.mean(p.labels != 1)) for p in ward)
    assert per_bed[len(per_bed) // 2] < 0.03 and per_bed[-1] > 0.05  # most beds quiet, a few carry the ectopy
    again = plan_patients(split.pool.x, split.pool.y, rows, patients=16, fs=250.0, seed=0, abnormal_rate=0.03)
    assert all((a.refs == b.refs).all() for a, b in zip(ward, again, strict=True))
    with pytest.raises(ValueError):
        plan_patients(split.pool.x, split.pool.y, rows, abnormal_rate=1.5)


def test_a_ward_of_more_beds_than_the_split_fills_plays_every_bed(split):
    """256 beds on ECG5000's 1,000 test rows as a ward (3 % abnormal): beds left without a beat used to crash the
    replay (a lead-in start with no beat); the replay deals the split over again so that every bed plays beats."""
    import asyncio

    from ecgmon.monitor.sources import MIN_BEATS_PER_PASS, ReplaySource

    empty = plan_patients(split.pool.x, split.pool.y, split.test[:10], patients=12, fs=250.0, abnormal_rate=0.03)
    assert any(len(p.refs) == 0 for p in empty)
    assert all(len(p.starts) == len(p.refs) == len(p.truth()) for p in empty)

    src = ReplaySource(split.pool.x, split.pool.y, split.test, patients=256, speed=None, abnormal_rate=0.03)
    beats: dict[str, int] = {}

    async def one_pass() -> None:
        async for c in src:
            beats[c.patient] = beats.get(c.patient, 0) + len(c.truth)
            if src.passes:
                return

    asyncio.run(one_pass())
    assert len(beats) == 256 and min(beats.values()) >= 0.7 * MIN_BEATS_PER_PASS  # about that many each


def test_quality_points_after_lost_samples_are_those_of_a_stream_restarted_after_them():
    """A stream of 20 s at 250 Hz: flat from 7 s, NaN from 9.1 s to 11.3 s, flat to 12.5 s, flat again from 16 s.  One
    monitor fed the NaN run within its pushes (a long packet) gives, after the run, the same verdict points (at the
    same absolute samples) and verdicts as a monitor started after the run with its offset (short packets: the bed's
    stream restarts there), whatever the push lengths: the points lie on the absolute grid, and the window holds
    nothing from before the lost samples.  Before (session 53) a restarted stream's points followed its first
    sample, and a window over a NaN run joined the samples on both sides of it."""
    fs, step = 250, 62
    rng = np.random.default_rng(53)
    x = np.sin(np.arange(20 * fs) / fs * 2 * np.pi * 1.2) + 0.01 * rng.standard_normal(20 * fs)
    x[7 * fs:round(12.5 * fs)] = 0.0
    x[16 * fs:] = 0.3
    lo, hi = round(9.1 * fs), round(11.3 * fs)
    x[lo:hi] = np.nan

    def points(mon, xs, pushes, first=0):
        got = []
        for a in range(0, len(xs), pushes):
            mon.push(xs[a:a + pushes], beats_found=0)
            got += [(first + at, q.flat, q.saturated) for at, q in mon.points]
        return got

    whole = {}
    for pushes in (62, 250, 2500, 5000):
        got = points(QualityMonitor(fs, step=step), x, pushes)
        whole[pushes] = [p for p in got if p[0] >= hi]
        assert all(at % step == 0 for at, _, _ in got)
    restarted = points(QualityMonitor(fs, step=step, offset=hi), x[hi:], 62, first=hi)
    assert restarted[0][0] == (hi // step + 1) * step
    assert all(w == restarted for w in whole.values()), {k: len(v) for k, v in whole.items()}
    # flat from 18 s on (2 s into the last flat stretch); none in the first 2 s after the NaN run, though the samples
    # on both sides of it are flat (a window joined across the run called them a flat line at once)
    assert any(flat for _, flat, _ in restarted) and not any(f for at, f, _ in restarted if at < hi + 2 * fs)

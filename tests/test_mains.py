"""Mains interference (50 or 60 Hz hum) and baseline wander on the leads: not beats, not fibrillation, not artifact.

Found by a newcomer (session 33): an unfiltered device's hum of 0.05-0.5 mV on a patient in asystole was read as a
rhythm of 185-213 bpm with no asystole alarm (the QRS detector's band-pass and first difference let it through, and
the 0.1 mV "is it a QRS" floor measured it on the raw samples, and held only until 5 QRS had passed it), 0.5 mV of
0.3 Hz wander passed that floor too (a false VT HIGH, no asystole), and at 500 Hz 0.5 mV of 50 Hz was called
VF/flutter.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import add_beats, play_records
from scipy import signal
from test_qrs import run, se_pp, synth

from ecgmon.core.messages import Condition
from ecgmon.segmentation.beats import qrs_span
from ecgmon.segmentation.filters import MAINS_HZ, CausalFilter, mains_notch
from ecgmon.segmentation.vf import VFDetector

LINE_S = 20.0


def _line(fs: float, seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(round(seconds * fs)) / fs
    return t, 0.005 * np.random.default_rng(seed).standard_normal(len(t))  # an isoelectric line, 5 uV of noise


def _write(path, x: np.ndarray, fs: float):
    path.write_text(f"sampling rate: {fs:g}\n" + "".join(f"{v:.5f}\n" for v in x))
    return path


def _first_raised(got) -> dict:
    first: dict = {}
    for a in got.alarms:
        if a.state.value == "active":
            first.setdefault((a.patient, a.condition), a.record_s)
    return first


def test_the_notches_sit_at_the_mains_frequencies_the_rate_can_hold_and_leave_the_qrs_band_alone():
    # at 100 Hz 50 Hz is Nyquist, 60 Hz beyond; at 128 Hz both lie where a device's anti-alias filter took them down
    assert mains_notch(100.0).shape == (0, 6) and mains_notch(128.0).shape == (0, 6)
    assert mains_notch(150.0).shape == (1, 6) and mains_notch(250.0).shape == (2, 6)
    assert mains_notch(250.0, ()).shape == (0, 6)
    for fs in (200.0, 250.0, 360.0, 1000.0):
        sos = mains_notch(fs)
        f = np.array([5.0, 10.0, 15.0, 20.0, 49.8, 50.0, 50.2, 59.8, 60.0, 60.2])
        _, h = signal.sosfreqz(sos, worN=f, fs=fs)
        gain = 20 * np.log10(np.abs(h) + 1e-12)
        assert np.all(gain[:4] > -0.25), (fs, gain)  # the QRS band
        assert np.all(gain[4:] < -20.0), (fs, gain)  # the mains, off by the grid's tolerance too
    # a band-pass can carry them (DetectorConfig.mains_hz, off by default); without notch_hz it is the band-pass alone
    assert CausalFilter.bandpass(250.0, 5.0, 20.0, notch_hz=MAINS_HZ).sos.shape[0] == 2 + 2
    assert CausalFilter.bandpass(250.0, 5.0, 20.0).sos.shape[0] == 2


def test_the_qrs_floor_measures_the_complex_not_the_hum_or_the_wander():
    fs = 500.0
    t, x = _line(fs, 2.0, 1)
    lo, hi = 700, 761  # +-60 ms
    hum = x + 0.05 * np.sin(2 * np.pi * 50 * t)  # 0.1 mV peak to peak
    wander = x + 0.5 * np.sin(2 * np.pi * 0.3 * t)  # 0.11 mV across the window's 120 ms at its steepest
    assert np.ptp(hum[lo:hi]) >= 0.1 and qrs_span(hum, lo, hi, fs) < 0.05
    for hz in (49.0, 61.0, 100.0, 150.0):  # off the mains frequency, and harmonics
        assert qrs_span(x + 0.3 * np.sin(2 * np.pi * hz * t), lo, hi, fs) < 0.05, hz
    w0 = round(fs / 0.6) - 30  # +-60 ms around the wander's steepest point (its zero crossing at 1.67 s)
    assert np.ptp(wander[w0:w0 + 61]) >= 0.1 and qrs_span(wander, w0, w0 + 61, fs) < 0.05
    qrs = hum.copy()
    add_beats(qrs, t, [1.4])  # a 1 mV complex inside the window
    assert qrs_span(qrs, lo, hi, fs) > 0.8


@pytest.mark.parametrize("fs", [250.0, 500.0])
def test_a_bed_connected_in_asystole_under_mains_hum_or_wander_raises_asystole_not_beats(tmp_path, fs):
    """An isoelectric line under 50 or 60 Hz hum (0.1-0.5 mV), hum a hertz off the mains frequency or its 100 Hz
    harmonic alone (a newcomer's check: notches at 50 and 60 Hz let those through), or 0.3 Hz wander (0.5-1 mV):
    asystole within 5.5 s, no beat, no VF/flutter, no VT."""
    recs = []
    for name, hz, mv in (("h50a", 50, 0.1), ("h50b", 50, 0.5), ("h60", 60, 0.5), ("h49", 49, 0.3), ("h61", 61, 0.3),
                         ("h100", 100, 0.3), ("w05", 0.3, 0.5), ("w10", 0.3, 1.0)):
        t, x = _line(fs, LINE_S, 2)
        recs.append(_write(tmp_path / f"{name}.csv", x + mv * np.sin(2 * np.pi * hz * t), fs))
    (tmp_path / "run").mkdir()
    _, got = play_records(tmp_path / "run", recs)
    first = _first_raised(got)
    for rec in recs:
        p = rec.stem
        assert first.get((p, Condition.ASYSTOLE), 99.0) <= 5.5, (p, first)
        assert (p, Condition.VFIB) not in first and (p, Condition.VTACH) not in first, (p, first)
    # no beat, but for one in the first second of 1 mV of wander (the 1 Hz high-pass has no second before it to settle)
    beats = [(s.beat.patient, s.beat.index / fs) for s in got.scores]
    assert all(p == "w10" and t < 1.5 for p, t in beats) and len(beats) <= 1, beats


def test_asystole_after_sinus_rhythm_under_mains_hum(tmp_path):
    """30 s of sinus rhythm at 75 bpm, then an isoelectric line, under 0.5 mV of hum throughout: once the detector
    had found 5 QRS the 0.1 mV floor no longer applied, and the detector took the hum for QRS (80-93 false beats,
    false VT HIGHs at 37-40 s, no asystole).  A detection under the floor with the hum taken out, whose raw peak to
    peak is 5 times that or more, is no QRS at any time (``SegmenterConfig.interference_ratio``)."""
    recs = []
    for fs, hz in ((500.0, 50.0), (360.0, 60.0)):
        t, x = _line(fs, 45.0, 3)
        add_beats(x, t, np.arange(0.5, 30.0, 0.8))
        recs.append(_write(tmp_path / f"s{int(fs)}.csv", x + 0.5 * np.sin(2 * np.pi * hz * t), fs))
    (tmp_path / "run").mkdir()
    _, got = play_records(tmp_path / "run", recs)
    first = _first_raised(got)
    last_qrs = 29.7
    for rec in recs:
        p = rec.stem
        assert last_qrs + 4.0 <= first.get((p, Condition.ASYSTOLE), 99.0) <= last_qrs + 5.5, (p, first)
        assert not {c for q, c in first if q == p} & {Condition.VFIB, Condition.VTACH, Condition.EXTREME_TACHY}
        fs = float(rec.stem[1:])
        assert not [s for s in got.scores if s.beat.patient == p and s.beat.index > (last_qrs + 0.3) * fs]


@pytest.mark.parametrize(("fs", "hz"), [(250.0, 50.0), (360.0, 60.0), (500.0, 50.0), (200.0, 60.0)])
def test_every_beat_under_mains_hum(fs, hz):
    """0.3 mV of hum on a 1 mV ECG at 75 bpm: every QRS found, no other (7-8 false beats on a real record before)."""
    x, r = synth(fs, np.full(80, 0.8), seed=4)
    t = np.arange(len(x)) / fs
    _, beats = run(x + 0.3 * np.sin(2 * np.pi * hz * t), fs)
    se, pp = se_pp(beats, r, fs, lo=round(5 * fs))
    assert se == 1.0 and pp == 1.0, (se, pp)


@pytest.mark.parametrize("fs", [250.0, 500.0, 1000.0])
def test_a_flat_line_under_mains_hum_is_neither_fibrillation_nor_artifact(fs):
    t, x = _line(fs, 20.0, 5)
    det = VFDetector(fs)
    n = round(0.25 * fs)
    for hz in MAINS_HZ:
        y = x + 0.5 * np.sin(2 * np.pi * hz * t)
        det = VFDetector(fs)
        windows = [w for a in range(0, len(y), n) for w in det.push(y[a:a + n])]
        assert windows and not any(w.vf or w.artifact for w in windows), (hz, [(w.p_vf, w.p_artifact)
                                                                               for w in windows])


def test_small_complexes_without_interference_are_still_beats_after_the_first_five():
    """The floor holds for a lead's first 5 QRS only, as before: a lead whose complexes shrink from 0.15 to 0.08 mV
    later (MIT-BIH 101's V1 has half its QRS under 0.1 mV) keeps them; the interference rule leaves a clean lead
    alone."""
    fs = 360.0
    amp = np.concatenate([np.full(20, 0.15), np.full(60, 0.08)])
    x, r = synth(fs, np.full(79, 0.8), seed=6, noise_mv=0.002, amp=amp)
    _, beats = run(x, fs)
    se, pp = se_pp(beats, r, fs, lo=round(20 * fs))
    assert se >= 0.98 and pp == 1.0, (se, pp)

"""The lethal-alarm protocols' scoring (evaluation/lethal.py) on alarm transitions and references made here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, Condition, Priority
from ecgmon.evaluation import lethal
from ecgmon.evaluation.ec57 import RecordResult, alarm_true
from ecgmon.evaluation.vfdb import Episode
from ecgmon.monitor.lethal import LethalConfig

FS = 250.0


def _alarm(cond: Condition, state: AlarmState, at_s: float, i: int = 1) -> Alarm:
    return Alarm(f"r:{cond}:{i}", "r", AlarmKind.PHYSIOLOGICAL, cond, Priority.HIGH, state, 0.0, "",
                 beat_index=round(at_s * FS))


def _bed(ref_s: list[float], cls: list[str], alarms: list[Alarm], seconds: float = 120.0) -> RecordResult:
    ref = np.round(np.asarray(ref_s) * FS).astype(np.int64)
    z = np.zeros(0)
    return RecordResult("r", FS, int(seconds * FS), ref, np.asarray(cls, dtype="<U1"), z.astype(np.int64), z,
                        z.astype(bool), z, alarms)


def test_intervals_pair_raise_and_clear_and_leave_open_ones_infinite():
    al = [_alarm(Condition.ASYSTOLE, AlarmState.ACTIVE, 10.0), _alarm(Condition.ASYSTOLE, AlarmState.CLEARED, 14.0),
          _alarm(Condition.VTACH, AlarmState.ACTIVE, 50.0, 2)]
    assert lethal.intervals(al, FS, frozenset({Condition.ASYSTOLE})) == [(10.0, 14.0)]
    assert lethal.intervals(al, FS, lethal.LETHAL) == [(10.0, 14.0), (50.0, math.inf)]


def test_rate_and_asystole_alarms_are_judged_against_the_reference_beats():
    beats = [i * 1.0 for i in range(30)] + [30 + 2.0 * i for i in range(10)]  # 60 bpm, then 30 bpm
    bed = _bed(beats, ["N"] * len(beats), [])
    assert alarm_true(Condition.EXTREME_BRADY, 49.0, bed, [])  # 5 beats at 30 bpm before it
    assert not alarm_true(Condition.EXTREME_BRADY, 20.0, bed, [])  # 60 bpm there
    assert not alarm_true(Condition.ASYSTOLE, 20.0, bed, [])  # a reference beat in the 4 s before
    gap = _bed([1.0, 2.0, 3.0, 10.0], ["N"] * 4, [])
    assert alarm_true(Condition.ASYSTOLE, 7.5, gap, [])  # no reference beat for 4.5 s
    fast = _bed([i * 0.4 for i in range(60)], ["N"] * 60, [])  # 150 bpm
    assert alarm_true(Condition.EXTREME_TACHY, 20.0, fast, [])
    assert not alarm_true(Condition.EXTREME_TACHY, 20.0, bed, [])
    assert not alarm_true(Condition.ASYSTOLE, 7.5, _bed([], [], []), [])  # nothing to confirm it with
    # ... but an annotated asystole episode (VFDB's rhythm annotations, no beats: 423 at 1,360-1,370 s) confirms it
    import dataclasses
    asys = dataclasses.replace(_bed([], [], []), rhythms=(Episode("ASYS", 5.0, 12.0),))
    assert alarm_true(Condition.ASYSTOLE, 7.5, asys, []) and not alarm_true(Condition.ASYSTOLE, 14.0, asys, [])
    assert not alarm_true(Condition.EXTREME_BRADY, 7.5, asys, [])
    # the alarm's own beats: the 13th reference beat of a record at 150 bpm (12 intervals) makes a true tachycardia
    # (SVDB 848 from its start was counted false when the reference needed one beat more), the 12th does not
    start = _bed([i * 0.4 for i in range(17)], ["N"] * 17, [])
    assert alarm_true(Condition.EXTREME_TACHY, 4.8, start, [])
    assert not alarm_true(Condition.EXTREME_TACHY, 4.4, start, [])
    # ... and over the beats the alarm was set to count (--tachy-beats 17: the 17th beat)
    seventeen = LethalConfig(tachy_beats=17)
    assert alarm_true(Condition.EXTREME_TACHY, 6.4, start, [], watch=seventeen)
    assert not alarm_true(Condition.EXTREME_TACHY, 6.0, start, [], watch=seventeen)
    assert alarm_true(Condition.EXTREME_BRADY, 8.0, _bed([i * 2.0 for i in range(5)], ["N"] * 5, []), [])


def test_vt_alarms_are_true_over_an_episode_or_a_run_of_reference_v_beats():
    cls = ["N"] * 10 + ["V"] * 6 + ["N"] * 10
    t = [i * 0.8 for i in range(10)] + [8 + 0.5 * i for i in range(6)] + [11 + 0.8 * i for i in range(10)]
    bed = _bed(t, cls, [])
    assert alarm_true(Condition.VTACH, 10.0, bed, [])  # 6 V beats at 120 bpm from 8 s
    assert not alarm_true(Condition.VTACH, 40.0, bed, [])
    assert alarm_true(Condition.VFIB, 40.0, bed, [Episode("VF", 35.0, 45.0)])


def test_cinc_alarms_file_is_read_or_refused_with_the_line(tmp_path):
    (tmp_path / "ALARMS").write_text("a1,Asystole,1\nv2,Ventricular_Tachycardia,0\n")
    assert lethal.read_cinc_alarms(tmp_path) == {"a1": ("Asystole", True), "v2": ("Ventricular_Tachycardia", False)}
    (tmp_path / "ALARMS").write_text("a1,Asystole,yes\n")
    with pytest.raises(ValueError, match="ALARMS:1"):
        lethal.read_cinc_alarms(tmp_path)


def test_challenge_score_weighs_a_missed_true_alarm_five_times():
    c = lethal.Counts()
    for true, raised in ((True, True), (True, False), (False, True), (False, False), (False, False)):
        c.add(true, raised)
    f = c.figures()
    assert (f["tp"], f["fn"], f["fp"], f["tn"]) == (1, 1, 1, 2)
    assert f["score"] == pytest.approx(100 * 3 / (3 + 1 + 5), abs=0.01)


def test_raised_again_counts_alarms_that_follow_their_own_clearing_within_30_s():
    from ecgmon.evaluation.lethal import raised_again

    # raised at 10, cleared 14; again at 16 (2 s later: counted); cleared 20; again at 60 (40 s later: not)
    assert raised_again([(60.0, math.inf), (10.0, 14.0), (16.0, 20.0)]) == 1
    assert raised_again([(10.0, 14.0), (16.0, 20.0)], within_s=1.0) == 0
    assert raised_again([]) == 0


def test_rate_alarms_without_reference_beats_count_false_and_are_reported_unconfirmed():
    """A record with rhythm annotations only (VFDB) cannot confirm an extreme bradycardia: it counts false, and the
    report says how many of the false ones are such (session 25: VFDB dev's 23 rate alarms were all 'false' this
    way, beside 17 VT and VF alarms judged false against its episodes)."""
    brady = [_alarm(Condition.EXTREME_BRADY, AlarmState.ACTIVE, 49.0),
             _alarm(Condition.VTACH, AlarmState.ACTIVE, 90.0, 2)]
    annotated = _bed([i * 1.0 for i in range(30)] + [30 + 2.0 * i for i in range(10)], ["N"] * 40, brady)
    rhythm_only = _bed([], [], brady)
    rhythm_only.rhythms = (Episode("VT", 85.0, 95.0),)  # the VT alarm is true by the episode
    res = lethal.judge_lethal([annotated, rhythm_only])
    assert {c: n for c, n in res["false_by_condition"].items() if n} == {"extreme bradycardia": 1,
                                                                         "ventricular tachycardia": 1}
    assert res["unconfirmed_by_condition"] == {"extreme bradycardia": 1}
    assert res["false_lethal"] == 2 and res["false_judged_per_bed_day"] == round(24 * 1 / (240 / 3600), 2)


from dataclasses import replace

import numpy as np
import pytest

from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, Beat, BeatKind, BeatScore, Condition, Priority
from ecgmon.monitor.alarms import (
    AlarmBook,
    AlarmPolicy,
    BeatJoin,
    Journal,
    PolicyConfig,
    QrsType,
    TechnicalAlarms,
    read_journal,
)

FS = 250.0
STEP = 200  # samples between beats: 0.8 s, 75 bpm


def _score(i: int, loss: float, thr: float = 1.0, *, rr: float = 0.8, index: int | None = None,
           noisy: bool = False, by_shape: bool = False) -> BeatScore:
    beat = Beat("bed1", np.zeros(140, np.float32), i * STEP if index is None else index, rr, FS, 0.0)
    return BeatScore(beat, loss, thr, 0.0, noisy=noisy, by_shape=by_shape)


def _feed(policy, flags):
    """Untyped beats (the policy built with typer=False): 1 flagged, 0 normal."""
    return [policy.update(_score(i, 2.0 if f else 0.5)) for i, f in enumerate(flags)]


def _typed(policy, kinds, *, start=0, alike=None, v_rr=0.5):
    """Beats with the typer's word on each: 'V' flagged and ventricular (RR ``v_rr``: 0.5 s, 120 bpm in a run),
    'N' normal, 'O' flagged, not ventricular, 'S' flagged, narrow and premature (RR 0.5 s against the bed's 0.8 s).
    The type comes before the score for even beats and after it for odd ones (the pipeline sees both orders).  Alarm
    transitions per beat."""
    out = []
    index = start * STEP
    for j, k in enumerate(kinds):
        rr = 0.5 if k == "S" else v_rr if k == "V" else 0.8
        index += round(rr * FS)
        s = _score(0, 0.5 if k == "N" else 2.0, rr=rr, index=index)
        q = QrsType(index, 0.95 if k == "V" else 0.05, k == "V", 0.14 if k == "V" else 0.08, prev_corr=alike)
        got = policy.update(s) + policy.typed(q) if j % 2 else policy.typed(q) + policy.update(s)
        out.append(got)
    return out


def _conds(out, state=AlarmState.ACTIVE):
    return [(a.condition, a.priority) for o in out for a in o if a.state is state]


def test_isolated_abnormal_beats_are_counted_not_alarmed_unless_asked():
    p = AlarmPolicy(AlarmBook("bed1"), typer=False)
    out = _feed(p, [0, 1, 0, 0, 0, 0, 0, 1, 0])
    assert out == [[]] * 9  # no alarm for isolated abnormal beats by default
    assert p.per_minute() == {"V": 0, "S": 0, "O": 2, "A": 0} and p.counts()["O"] == 2
    assert [t.kind for t in p.take()].count(BeatKind.OTHER) == 2
    p = AlarmPolicy(AlarmBook("bed1"), PolicyConfig(beat_alarm=True), typer=False)
    out = _feed(p, [0, 1, 0, 0, 0, 0, 0])
    assert [(a.condition, a.priority, a.state) for a in out[1]] == [
        ("abnormal beat", Priority.LOW, AlarmState.ACTIVE)]
    assert out[2:6] == [[], [], [], []]  # hysteresis: still active after 4 normal beats
    assert [(a.condition, a.state) for a in out[6]] == [("abnormal beat", AlarmState.CLEARED)]
    assert out[6][0].id == out[1][0].id


def test_ventricular_couplet_and_run_are_advisories_never_high():
    p = AlarmPolicy(AlarmBook("bed1"), PolicyConfig(clear_s=0), fs=FS)
    out = _typed(p, "NNNNNNNNNNVVVVNNNNNN")
    raised = _conds(out)
    assert raised == [("ventricular couplet", Priority.LOW), ("ventricular run", Priority.MEDIUM)]
    assert out[11][0].condition == "ventricular couplet" and out[12][0].condition == "ventricular run"
    assert "run of 3 ventricular beats" in out[12][0].message
    assert all(a.priority < Priority.HIGH for o in out for a in o)
    cleared = [c for c, _ in _conds(out, AlarmState.CLEARED)]
    assert sorted(cleared) == ["ventricular couplet", "ventricular run"]  # after 5 beats that are not ventricular
    assert p.counts()["V"] == 4


def test_runs_recurring_within_a_minute_are_one_alarm():
    p = AlarmPolicy(AlarmBook("bed1"), fs=FS)  # clear_s 60: the run advisory stays on between runs
    out = _typed(p, "NNNNNNNNNN" + ("VVV" + "N" * 20) * 3)  # a run every ~18 s
    assert _conds(out).count(("ventricular run", Priority.MEDIUM)) == 1
    assert _conds(out, AlarmState.CLEARED) == []
    out = _typed(p, "N" * 80, start=100)  # 64 s without a ventricular beat: clears
    assert ("ventricular run", Priority.MEDIUM) in _conds(out, AlarmState.CLEARED)
    p = AlarmPolicy(AlarmBook("bed2"), PolicyConfig(clear_s=0), fs=FS)  # without: one alarm per run
    out = _typed(p, "NNNNNNNNNN" + ("VVV" + "N" * 20) * 3)
    assert _conds(out).count(("ventricular run", Priority.MEDIUM)) == 3


def test_frequent_ventricular_ectopy_per_minute_with_hysteresis():
    # shown, not sounded, by default (PVCs are non-actionable: docs/alarms.md); audible when the unit asks for it
    quiet = AlarmPolicy(AlarmBook("bed0"), fs=FS)
    assert _conds(_typed(quiet, "NNNNNNNN" + "NNNV" * 12)) == [("frequent ventricular ectopy", Priority.LOW)]
    p = AlarmPolicy(AlarmBook("bed1"), PolicyConfig(frequent_veb_priority=Priority.MEDIUM), fs=FS)
    out = _typed(p, "NNNNNNNN" + "NNNV" * 12)  # quadrigeminy: 12 VEB in ~38 s, no bigeminy or trigeminy
    raised = _conds(out)
    assert raised == [("frequent ventricular ectopy", Priority.MEDIUM)]
    first = next(i for i, o in enumerate(out) if o)
    assert "".join("NNNNNNNN" + "NNNV" * 12)[: first + 1].count("V") == 10  # raised at the 10th in a minute
    # normal beats: the count falls to 5 or fewer and stays there for veb_episode_s (5 min: ectopy that comes and
    # goes around the limit is one episode, MIT-BIH 223's bigeminy), and it clears, once
    out = _typed(p, "N" * 350, start=len(out))
    assert _conds(out, AlarmState.CLEARED) == []  # 280 s of normal beats
    out += _typed(p, "N" * 60, start=len(out) + 400)
    assert _conds(out, AlarmState.CLEARED) == [("frequent ventricular ectopy", Priority.MEDIUM)]
    assert p.per_minute()["V"] == 0
    again = _typed(p, "NNNV" * 12, start=1000)  # after the episode: a new one, heard again
    assert _conds(again) == [("frequent ventricular ectopy", Priority.MEDIUM)]
    short = AlarmPolicy(AlarmBook("bed2"), PolicyConfig(veb_episode_s=60, frequent_veb_priority=Priority.MEDIUM),
                        fs=FS)
    _typed(short, "NNNNNNNN" + "NNNV" * 12)
    assert _conds(_typed(short, "N" * 150, start=56), AlarmState.CLEARED) == [
        ("frequent ventricular ectopy", Priority.MEDIUM)]


def test_bigeminy_and_trigeminy():
    p = AlarmPolicy(AlarmBook("bed1"), fs=FS)
    assert _conds(_typed(p, "NNNNNNNN" + "NV" * 4)) == [("ventricular bigeminy", Priority.LOW)]
    p = AlarmPolicy(AlarmBook("bed2"), fs=FS)
    assert _conds(_typed(p, "NNNNNNNN" + "NNV" * 4)) == [("ventricular trigeminy", Priority.LOW)]
    p = AlarmPolicy(AlarmBook("bed3"), PolicyConfig(pattern_cycles=0), fs=FS)
    assert _conds(_typed(p, "NNNNNNNN" + "NV" * 4)) == []


def test_supraventricular_premature_beats_and_their_run():
    p = AlarmPolicy(AlarmBook("bed1"), fs=FS)
    out = _typed(p, "NNNNNNNNNN" + "SSSSS" + "NNNNNN")
    kinds = [t.kind for t in p.take()]
    assert kinds[10:15] == [BeatKind.SUPRAVENTRICULAR] * 5 and set(kinds[:10] + kinds[15:]) == {BeatKind.NORMAL}
    assert _conds(out) == [("supraventricular run", Priority.MEDIUM)]
    assert out[14][0].condition == "supraventricular run"  # at the 5th
    # the same beats while the bed's rhythm has changed (atrial fibrillation: by shape alone) are not premature
    p = AlarmPolicy(AlarmBook("bed2"), fs=FS)
    for i in range(10):
        p.typed(QrsType((i + 1) * STEP, 0.05, False, 0.08))
        p.update(_score(i + 1, 0.5))
    p.typed(QrsType(11 * STEP, 0.05, False, 0.08))
    p.update(_score(11, 2.0, rr=0.5, by_shape=True))
    assert p.take()[-1].kind is BeatKind.OTHER


def test_a_mixed_abnormal_run_is_a_low_advisory():
    p = AlarmPolicy(AlarmBook("bed1"), fs=FS)
    out = _typed(p, "NNNNNNNNNN" + "VOV" + "NNNNN")
    assert _conds(out) == [("abnormal run", Priority.LOW)]


def test_noisy_beats_are_artifact_without_alarms():
    p = AlarmPolicy(AlarmBook("bed1"), PolicyConfig(beat_alarm=True), typer=False)
    out = [p.update(_score(i, 5.0, noisy=True)) for i in range(10)]
    assert out == [[]] * 10
    assert p.counts() == {"V": 0, "S": 0, "O": 0, "A": 10}


def test_join_by_sample_index_in_either_order_bounded():
    j = BeatJoin(FS, tol_s=0.15, wait_beats=4)
    s1, s2 = _score(1, 2.0), _score(2, 2.0)
    j.scored(s1)
    assert j.ready() == []  # waits for its type
    j.typed(QrsType(STEP + 3, 0.9, True, 0.14))  # the typer's fiducial a few samples away
    j.typed(QrsType(2 * STEP, 0.1, False, 0.08))  # typed before its beat was scored
    got = j.ready()
    assert [(s.beat.index, t.index) for s, t in got] == [(STEP, STEP + 3)]
    j.scored(s2)
    assert [(s.beat.index, t.index) for s, t in j.ready()] == [(2 * STEP, 2 * STEP)]
    # a beat the typer never typed goes untyped once the typer has passed it
    j.scored(_score(3, 2.0))
    assert j.ready() == []
    j.progress(4 * STEP)
    assert [(s.beat.index, t) for s, t in j.ready()] == [(3 * STEP, None)] and j.untyped == 1
    # at most wait_beats wait
    for i in range(10, 20):
        j.scored(_score(i, 2.0))
    assert len(j.ready()) == 6 and len(j.waiting) == 4
    assert len(j.ready(final=True)) == 4 and not j.waiting
    for i in range(200):  # typed QRS no scored beat claims: at most 32 * wait_beats kept
        j.typed(QrsType(10_000 + i, 0.1, False, 0.08))
    assert len(j.types) == 32 * 4
    j.skip(10_150)  # a beat that gets no verdict (learning): the types before it are let go
    assert j.types[0].index >= 10_150 - j.tol


def test_policy_options_are_checked():
    with pytest.raises(ValueError, match="veb_clear_per_min"):
        PolicyConfig(veb_per_min=4, veb_clear_per_min=5)
    with pytest.raises(ValueError, match="sv_prem"):
        PolicyConfig(sv_prem=1.2)


def test_acknowledge_keeps_the_alarm_visible_until_it_clears():
    book = AlarmBook("bed1")
    p = AlarmPolicy(book, fs=FS)
    _typed(p, "NNNNNNNNNNVVV")
    acks = book.acknowledge()
    assert {a.state for a in acks} == {AlarmState.ACKNOWLEDGED} and len(acks) == 2  # couplet LOW, run MEDIUM
    assert book.highest().state is AlarmState.ACKNOWLEDGED and book.highest().priority is Priority.MEDIUM
    assert book.acknowledge() == []


def test_technical_alarms_are_distinct(tmp_path):
    book = AlarmBook("bed1")
    t = TechnicalAlarms(book)
    on = t.raise_(Condition.LEADS_OFF)
    assert on[0].kind is AlarmKind.TECHNICAL and on[0].priority is Priority.MEDIUM
    assert t.raise_(Condition.LEADS_OFF) == []
    assert t.clear(Condition.LEADS_OFF)[0].state is AlarmState.CLEARED
    assert t.clear(Condition.LEADS_OFF) == []
    assert t.follow(Condition.NOISY_SIGNAL, True)[0].condition is Condition.NOISY_SIGNAL


def test_journal_lines_are_complete(tmp_path):
    path = tmp_path / "j.jsonl"
    j = Journal(path)
    book = AlarmBook("bed1")
    for a in AlarmPolicy(book, PolicyConfig(beat_alarm=True), typer=False).update(_score(7, 3.0)):
        j.on_alarm(a)
    j.close()
    rows, bad = read_journal(path)
    assert bad == 0 and len(rows) == 1  # one flagged beat: the LOW advisory
    r = rows[0]
    assert {"id", "patient", "kind", "priority", "state", "time", "beat_index", "loss", "threshold"} <= r.keys()
    assert r["beat_index"] == 1400 and r["loss"] == 3.0 and r["threshold"] == 1.0
    assert r["condition"] == "abnormal beat" and Alarm.from_json(r).to_json() == r  # a line reads back whole


def test_no_premature_beats_in_an_irregularly_irregular_rhythm():
    rng = np.random.default_rng(3)
    p = AlarmPolicy(AlarmBook("bed1"), fs=FS)
    index, kinds = 0, []
    for i in range(60):  # atrial fibrillation: RR 0.4-1.2 s at random, every beat flagged by its timing
        rr = float(rng.uniform(0.4, 1.2))
        index += round(rr * FS)
        p.typed(QrsType(index, 0.05, False, 0.08))
        p.update(_score(i, 2.0, rr=rr, index=index))
    kinds = [t.kind for t in p.take()]
    assert p.irregular()
    assert kinds[20:].count(BeatKind.SUPRAVENTRICULAR) == 0 and kinds[20:].count(BeatKind.OTHER) == 40


def test_unflagged_premature_beats_are_supraventricular_only_when_asked():
    for unflagged, want in ((False, BeatKind.NORMAL), (True, BeatKind.SUPRAVENTRICULAR)):
        p = AlarmPolicy(AlarmBook("bed1"), PolicyConfig(sv_unflagged=unflagged), fs=FS)
        for i in range(10):
            p.typed(QrsType((i + 1) * STEP, 0.05, False, 0.08))
            p.update(_score(i + 1, 0.5))
        index = 10 * STEP + round(0.5 * FS)
        p.typed(QrsType(index, 0.05, False, 0.08))
        p.update(_score(0, 0.5, rr=0.5, index=index))  # premature, narrow, not flagged
        assert p.take()[-1].kind is want


def test_an_alarm_a_previous_run_left_open_clears_unless_this_run_confirms_it_within_a_minute():
    from ecgmon.monitor.alarms import RESTORED_RECHECK_S

    old = AlarmBook("bed")
    old.at = 100
    (high,) = old.raise_(Condition.ABNORMAL_RUN, AlarmKind.PHYSIOLOGICAL, Priority.HIGH, "left open")
    (vf,) = old.raise_(Condition.VFIB, AlarmKind.PHYSIOLOGICAL, Priority.HIGH, "left open")
    book = AlarmBook("bed", fs=250.0)  # the next run
    book.restore(high)
    book.restore(vf)
    assert set(book.active) == {Condition.ABNORMAL_RUN, Condition.VFIB}
    book.at = 1000  # its first samples: the minute starts
    assert book.expire_restored() == []
    book.at = 1000 + 250 * 30
    assert book.raise_(Condition.VFIB, AlarmKind.PHYSIOLOGICAL, Priority.HIGH, "again") == []  # confirmed: same id
    book.at = 1000 + round(250 * RESTORED_RECHECK_S) - 1
    assert book.expire_restored() == []
    book.at += 1
    (cleared,) = book.expire_restored()
    assert cleared.id == high.id and cleared.state is AlarmState.CLEARED and cleared.beat_index == book.at
    assert set(book.active) == {Condition.VFIB} and book.active[Condition.VFIB].id == vf.id
    assert book.expire_restored() == []


def test_a_ventricular_run_is_not_announced_again_as_frequent_ectopy():
    """Alarm chain (docs/alarms.md): frequent ventricular ectopy is not raised while a ventricular run's advisory
    (or a lethal ventricular alarm) is on: the nurse has heard of this patient's ventricular ectopy (MIT-BIH 205:
    'frequent ventricular ectopy' 1.5 s after 'ventricular run'); without chaining both sound."""
    beats = "N" * 10 + "VVV" + "NNNV" * 12
    loud = PolicyConfig(frequent_veb_priority=Priority.MEDIUM)  # chaining matters where both are audible
    out = _typed(AlarmPolicy(AlarmBook("bed1"), loud, fs=FS), beats)
    assert [c for c, p in _conds(out) if p >= Priority.MEDIUM] == ["ventricular run"]
    out = _typed(AlarmPolicy(AlarmBook("bed2"), replace(loud, chain_s=0), fs=FS), beats)
    assert [c for c, p in _conds(out) if p >= Priority.MEDIUM] == ["ventricular run", "frequent ventricular ectopy"]


def test_no_ventricular_run_advisory_under_a_lethal_ventricular_alarm_or_a_minute_after_it():
    book = AlarmBook("bed1", FS)
    p = AlarmPolicy(book, fs=FS)
    _typed(p, "N" * 10)
    book.raise_(Condition.VTACH, AlarmKind.PHYSIOLOGICAL, Priority.HIGH, "VT", index=10 * STEP)
    out = _typed(p, "VVVVV" + "N" * 10, start=10)
    assert "ventricular run" not in [c for c, _ in _conds(out)]
    book.clear(Condition.VTACH, index=30 * STEP)
    out = _typed(p, "VVV" + "N" * 10, start=30)  # within chain_s (60 s) of its end: the same episode
    assert "ventricular run" not in [c for c, _ in _conds(out)]
    out = _typed(p, "N" * 80 + "VVV", start=45)  # over a minute later: a new episode
    assert "ventricular run" in [c for c, _ in _conds(out)]


def test_beats_typed_supraventricular_under_a_vt_alarm_are_other_and_raise_no_supraventricular_run():
    """A sustained VT's beats stop looking ventricular to the typer (its RR becomes the bed's median, its complex the
    template); flagged and early against the sinus RR they were typed supraventricular and a MEDIUM supraventricular
    run was raised over the HIGH VT (a newcomer, session 27).  Under a VT alarm they are other abnormal beats, and a
    supraventricular run is not raised then nor within chain_s after it (the VT announced the episode)."""
    book = AlarmBook("bed1", FS)
    p = AlarmPolicy(book, fs=FS)
    _typed(p, "N" * 10)
    p.take()
    book.raise_(Condition.VTACH, AlarmKind.PHYSIOLOGICAL, Priority.HIGH, "VT", index=10 * STEP)
    out = _typed(p, "SSSSSS", start=10)
    assert [t.kind for t in p.take()] == [BeatKind.OTHER] * 6
    assert "supraventricular run" not in [c for c, _ in _conds(out)]
    book.clear(Condition.VTACH, index=15 * STEP)
    out = _typed(p, "N" * 3 + "SSSSS" + "N" * 3, start=16)  # typed S again, but within chain_s of the VT's end
    assert BeatKind.SUPRAVENTRICULAR in [t.kind for t in p.take()]
    assert "supraventricular run" not in [c for c, _ in _conds(out)]


def test_isolated_ventricular_beats_between_runs_do_not_hold_the_run_advisory():
    """A ventricular run's episode lasts while runs recur (within clear_s); isolated ventricular beats between runs
    are frequent ectopy's, not the run's: a run 90 s after the last one, with single VEBs every fourth beat in
    between, is announced again (MIT-BIH 203: the advisory raised at 302 s stayed on to the end of the record).
    Before, any ventricular beat within 5 beats held it."""
    p = AlarmPolicy(AlarmBook("bed1"), PolicyConfig(veb_per_min=0), fs=FS)
    out = _typed(p, "N" * 10 + "VVV" + "NNNV" * 28 + "VVV" + "N" * 10)  # the second run ~92 s after the first
    assert _conds(out).count(("ventricular run", Priority.MEDIUM)) == 2
    p = AlarmPolicy(AlarmBook("bed1"), PolicyConfig(veb_per_min=0), fs=FS)
    out = _typed(p, "N" * 10 + "VVV" + "NNNV" * 10 + "VVV" + "N" * 10)  # ~32 s later: the same episode
    assert _conds(out).count(("ventricular run", Priority.MEDIUM)) == 1


def test_vrun_reannounce_announces_every_run_of_an_episode():
    """--vrun-reannounce: each new run is a new alarm (heard again) although the episode's advisory is on."""
    beats = "N" * 10 + ("VVV" + "N" * 20) * 3
    p = AlarmPolicy(AlarmBook("bed1"), PolicyConfig(vrun_reannounce=True), fs=FS)
    out = _typed(p, beats)
    assert _conds(out).count(("ventricular run", Priority.MEDIUM)) == 3
    assert _conds(out, AlarmState.CLEARED).count(("ventricular run", Priority.MEDIUM)) == 2
    assert len({a.id for o in out for a in o if a.condition == "ventricular run"}) == 3


def test_a_slow_ventricular_run_is_shown_not_sounded_and_a_faster_one_of_its_episode_is_sounded():
    """Non-sustained VT is >= 3 ventricular beats over 100 bpm (ACC/AHA/ESC 2006): a run of 3 at 75 bpm (an
    accelerated idioventricular run, MIT-BIH 124's and 207's) is the 'ventricular run' at LOW, its rate in the
    message; a run at 120 bpm in the same episode raises it again at MEDIUM (heard); ``vrun_bpm=0`` sounds every
    run, as before."""
    slow = "N" * 10 + "VVV" + "N" * 6
    out = _typed(AlarmPolicy(AlarmBook("bed1"), fs=FS), slow, v_rr=0.8)
    runs = [a for o in out for a in o if a.condition == "ventricular run"]
    assert [(a.priority, a.state) for a in runs] == [(Priority.LOW, AlarmState.ACTIVE)]
    assert "run of 3 ventricular beats at 75 bpm (slow: not over 100)" in runs[0].message
    out = _typed(AlarmPolicy(AlarmBook("bed1"), PolicyConfig(vrun_bpm=0), fs=FS), slow, v_rr=0.8)
    assert _conds(out).count(("ventricular run", Priority.MEDIUM)) == 1
    # a slow run, then a fast one 6 beats later (the slow run's advisory still on: clear_s 60 s)
    p = AlarmPolicy(AlarmBook("bed1"), fs=FS)
    out = _typed(p, slow, v_rr=0.8) + _typed(p, "VVVV" + "N" * 4, start=30, v_rr=0.5)
    runs = [(a.priority, a.state) for o in out for a in o if a.condition == "ventricular run"]
    assert runs == [(Priority.LOW, AlarmState.ACTIVE), (Priority.LOW, AlarmState.CLEARED),
                    (Priority.MEDIUM, AlarmState.ACTIVE)]
    assert "at 120 bpm" in next(a for o in out for a in o if a.priority is Priority.MEDIUM).message
    # a slow run while the fast run's advisory is on changes nothing
    assert not [a for o in _typed(p, "VVV" + "N" * 3, start=60, v_rr=0.8) for a in o
                if a.condition == "ventricular run"]


def test_a_ventricular_run_of_unlike_complexes_is_no_advisory():
    """``vrun_similar`` (0.6): a run of complexes typed ventricular that are not alike (each correlating 0.2 with the
    one before: noise or motion, NSTDB 118's bursts raised 'ventricular run' at 67 per bed-day) raises no
    advisory; a monomorphic run (0.9) does, and so does the unlike one with the check off (0)."""
    kinds = "N" * 10 + "VVVV" + "N" * 6
    runs = {}
    for alike, cfg in ((0.2, PolicyConfig()), (0.9, PolicyConfig()), (0.2, PolicyConfig(vrun_similar=0.0))):
        out = _typed(AlarmPolicy(AlarmBook("bed1"), cfg), kinds, alike=alike)
        runs[(alike, cfg.vrun_similar)] = _conds(out).count(("ventricular run", Priority.MEDIUM))
    assert runs == {(0.2, 0.6): 0, (0.9, 0.6): 1, (0.2, 0.0): 1}


def test_while_its_bed_learns_a_beat_is_ventricular_only_where_the_typer_alone_is_sure():
    # no verdict while learning (nothing flagged): a ventricular beat is counted and advised from the first seconds
    # when the typer's P(ventricular) reaches v_alone_p (0.8); below it, and for every other beat, nothing abnormal
    p = AlarmPolicy(AlarmBook("bed1"), fs=FS)
    out = []
    for j in range(12):
        index = (j + 1) * STEP
        s = BeatScore(Beat("bed1", np.zeros(140, np.float32), index, 0.8, FS, 0.0), 5.0, 1.0, 0.0, learning=0.1)
        pv = (0.95, 0.6)[j % 2] if j >= 4 else 0.05  # from the 5th beat: sure V, unsure V, sure V, ...
        out.append(p.typed(QrsType(index, pv, pv >= 0.4, 0.14 if pv >= 0.4 else 0.08)) + p.update(s))
    kinds = [t.kind for t in p.take()]
    assert kinds == [BeatKind.NORMAL] * 4 + [BeatKind.VENTRICULAR, BeatKind.NORMAL] * 4
    assert p.per_minute()["V"] == 4 and p.per_minute()["O"] == 0  # the loss over threshold flags nothing
    assert (Condition.VENT_BIGEMINY, Priority.LOW) in _conds(out)  # N-V for 4 cycles
    # with --sv-unflagged a premature narrow beat is typed S without a flag, but never while its bed learns
    p = AlarmPolicy(AlarmBook("bed1"), PolicyConfig(sv_unflagged=True), fs=FS)
    index = 0
    for j in range(20):
        rr = 0.5 if j == 19 else 0.8
        index += round(rr * FS)
        s = BeatScore(Beat("bed1", np.zeros(140, np.float32), index, rr, FS, 0.0), 0.5, 1.0, 0.0, learning=0.1)
        p.typed(QrsType(index, 0.05, False, 0.08))
        p.update(s)
    assert [t.kind for t in p.take()][-1] is BeatKind.NORMAL


def test_a_ventricular_beat_in_artifact_gets_no_verdict_whether_flagged_or_typed_by_the_typer_alone():
    """Noise and motion typed ventricular (the VF detector's noise verdict over the beat, or a stream's first window,
    before any: shared/cases K01, a couplet raised on motion as electrodes settle) are artifact: counted, no
    advisory; the same beats on readable signal make a couplet and a run."""
    for learning in (None, 0.1):  # flagged by the bed's verdict, or (learning) ventricular by the typer alone
        for where in ("artifact", "unrated", "clean"):
            p = AlarmPolicy(AlarmBook("bed1"), fs=FS)
            out, index = [], 0
            for j in range(10):
                v = 4 <= j < 7
                index += round((0.5 if v else 0.8) * FS)
                beat = Beat("bed1", np.zeros(140, np.float32), index, 0.5 if v else 0.8, FS, 0.0)
                s = BeatScore(beat, 5.0 if v else 0.5, 1.0, 0.0, learning=learning)
                q = QrsType(index, 0.95 if v else 0.05, v, 0.14 if v else 0.08, artifact=where == "artifact" and v,
                            unrated=where == "unrated" and v)
                out.append(p.typed(q) + p.update(s))
            raised = {c for c, _ in _conds(out)}
            # a stretch not yet rated holds only the typer's word alone: a flagged beat keeps its verdict there
            if where == "artifact" or (where == "unrated" and learning is not None):
                assert raised == set() and p.counts()["A"] == 3 and p.counts()["V"] == 0
            else:
                assert {Condition.VENT_COUPLET, Condition.VENT_RUN} <= raised and p.counts()["V"] == 3


def test_an_acknowledgement_carries_where_the_bed_was_when_it_was_made():
    """Every alarm line places itself on the recording: an acknowledgement made 40 s after the raise says so (its
    sample index and record time are the bed's then, not the raise's)."""
    book = AlarmBook("bed1", FS)
    book.raise_(Condition.ASYSTOLE, AlarmKind.PHYSIOLOGICAL, Priority.HIGH, "no QRS for 4 s", index=2500)
    book.at = 12500
    (ack,) = book.acknowledge()
    assert ack.state is AlarmState.ACKNOWLEDGED and ack.beat_index == 12500 and ack.record_s == 50.0


def test_couplets_and_patterns_are_not_raised_while_vt_announces_the_episode():
    """A VT alarm on (and for chain_s after it): its ventricular beats raise no LOW couplet or bigeminy beside it (the
    higher alarm said it); without it they are raised."""
    for vt_on, expect in ((False, {"ventricular couplet", "ventricular bigeminy"}), (True, set())):
        book = AlarmBook("bed1", FS)
        if vt_on:
            book.raise_(Condition.VTACH, AlarmKind.PHYSIOLOGICAL, Priority.HIGH, "VT", index=0)
        p = AlarmPolicy(book, fs=FS)
        raised = {a.condition for o in _typed(p, "NNNNNNNNVVNVNVNVNVNV") for a in o if a.state is AlarmState.ACTIVE}
        assert raised == expect, raised

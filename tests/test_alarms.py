
import numpy as np

from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, Beat, BeatScore, Condition, Priority
from ecgmon.monitor.alarms import AlarmBook, AlarmPolicy, Journal, PolicyConfig, TechnicalAlarms, read_journal


def _score(i: int, loss: float, thr: float = 1.0) -> BeatScore:
    return BeatScore(Beat("bed1", np.zeros(140, np.float32), i * 200, 0.8, 250.0, 0.0), loss, thr, 0.0)


def _feed(policy, flags):
    out = []
    for i, f in enumerate(flags):
        out.append(policy.update(_score(i, 2.0 if f else 0.5)))
    return out


def test_single_flagged_beat_is_a_low_advisory_that_clears_after_five_normal_beats():
    p = AlarmPolicy(AlarmBook("bed1"))
    out = _feed(p, [0, 1, 0, 0, 0, 0, 0])
    assert [(a.condition, a.priority, a.state) for a in out[1]] == [
        ("abnormal beat", Priority.LOW, AlarmState.ACTIVE)]
    assert out[2:6] == [[], [], [], []]  # hysteresis: still active after 4 normal beats
    assert [(a.condition, a.state) for a in out[6]] == [("abnormal beat", AlarmState.CLEARED)]
    assert out[6][0].id == out[1][0].id


def test_three_of_ten_raise_medium_and_a_run_raises_high():
    p = AlarmPolicy(AlarmBook("bed1"))
    out = _feed(p, [1, 0, 0, 1, 0, 1])
    assert [(a.condition, a.priority) for a in out[5]] == [("frequent abnormal beats", Priority.MEDIUM)]
    p = AlarmPolicy(AlarmBook("bed2"))
    out = _feed(p, [1, 1, 1])
    conds = [a.condition for a in out[2]]
    assert "abnormal run" in conds and p.book.highest().priority is Priority.HIGH
    assert all(a.kind is AlarmKind.PHYSIOLOGICAL for a in out[2])


def test_medium_clears_when_the_window_empties_and_policy_is_configurable():
    p = AlarmPolicy(AlarmBook("bed1"), PolicyConfig(window=4, frequent_k=2, frequent_clear_k=0, run_len=5))
    out = _feed(p, [1, 1, 0, 0, 0, 0])
    assert [a.condition for a in out[1] if a.state is AlarmState.ACTIVE] == ["frequent abnormal beats"]
    cleared = [a.condition for o in out for a in o if a.state is AlarmState.CLEARED]
    assert cleared == ["frequent abnormal beats"]
    assert "abnormal run" not in [a.condition for o in out for a in o]


def test_acknowledge_keeps_the_alarm_visible_until_it_clears():
    book = AlarmBook("bed1")
    p = AlarmPolicy(book)
    _feed(p, [1, 1, 1])
    acks = book.acknowledge()
    assert {a.state for a in acks} == {AlarmState.ACKNOWLEDGED} and len(acks) == 3  # LOW, MEDIUM, HIGH
    assert book.highest().state is AlarmState.ACKNOWLEDGED
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
    for a in AlarmPolicy(book).update(_score(7, 3.0)):
        j.on_alarm(a)
    j.close()
    rows, bad = read_journal(path)
    assert bad == 0 and len(rows) == 1  # one flagged beat: the LOW advisory
    r = rows[0]
    assert {"id", "patient", "kind", "priority", "state", "time", "beat_index", "loss", "threshold"} <= r.keys()
    assert r["beat_index"] == 1400 and r["loss"] == 3.0 and r["threshold"] == 1.0
    assert r["condition"] == "abnormal beat" and Alarm.from_json(r).to_json() == r  # a line reads back whole

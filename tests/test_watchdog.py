"""The watchdog's decisions on a fake clock."""

from ecgmon.core.messages import AlarmState, Condition
from ecgmon.monitor.alarms import AlarmBook, TechnicalAlarms
from ecgmon.monitor.watchdog import Load, Watchdog, WatchdogConfig


def _load(**kw):
    base = dict(input_lag_s=0.0, input_waiting=0, input_capacity=1000, beats_waiting=0, beats_capacity=100,
                last_latency_s=0.05, last_shed_mono=0.0)
    base.update(kw)
    return Load(**base)


def test_behind_is_raised_on_any_cause_and_clears_after_calm():
    book = AlarmBook("monitor")
    w = Watchdog(book, WatchdogConfig(calm_s=3.0), now=0.0)
    assert w.check(1.0, _load(), []) == []
    for cause in (dict(input_lag_s=2.0), dict(input_waiting=200), dict(beats_waiting=60), dict(last_latency_s=1.5)):
        got = w.check(2.0, _load(**cause), [])
        assert [(a.condition, a.state) for a in got] in ([(Condition.MONITOR_BEHIND, AlarmState.ACTIVE)], [])
        assert Condition.MONITOR_BEHIND in book.active
    assert w.check(4.0, _load(), []) == []  # calm for 2 s only
    got = w.check(5.5, _load(), [])
    assert [(a.condition, a.state) for a in got] == [(Condition.MONITOR_BEHIND, AlarmState.CLEARED)]


def test_overload_clears_only_when_nothing_was_shed_for_calm_s():
    book = AlarmBook("monitor")
    TechnicalAlarms(book).raise_(Condition.MONITOR_OVERLOAD)
    w = Watchdog(book, WatchdogConfig(calm_s=3.0), now=0.0)
    assert w.check(10.0, _load(last_shed_mono=8.0), []) == []
    got = w.check(11.5, _load(last_shed_mono=8.0), [])
    assert [a.condition for a in got] == [Condition.MONITOR_OVERLOAD]


def test_signal_loss_per_bed():
    bed = TechnicalAlarms(AlarmBook("bed01"))
    quiet = TechnicalAlarms(AlarmBook("bed02"))
    w = Watchdog(AlarmBook("monitor"), WatchdogConfig(loss_after_s=3.0), now=0.0)
    got = w.check(10.0, _load(), [(6.5, bed, 0.25), (9.5, quiet, 0.25), (0.0, TechnicalAlarms(AlarmBook("new")), 0)])
    assert [(a.patient, a.condition) for a in got] == [("bed01", Condition.SIGNAL_LOSS)]
    # a device whose packets hold 5 s is silent for 5 s between them by design: no loss until 6.5 s without one
    long = TechnicalAlarms(AlarmBook("bed03"))
    assert w.check(16.0, _load(), [(10.0, long, 5.0)]) == []
    got = w.check(17.0, _load(), [(10.0, long, 5.0)])
    assert [(a.patient, a.condition) for a in got] == [("bed03", Condition.SIGNAL_LOSS)] and "6.5 s" in got[0].message

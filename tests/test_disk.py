"""Disk writes off the event loop (monitor/disk.py): in order, never stalling the loop, journalled before shown."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time

from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, Condition, Priority
from ecgmon.monitor.alarms import Journal
from ecgmon.monitor.disk import DiskWriter
from ecgmon.monitor.pipeline import Monitor
from ecgmon.monitor.sinks import NullSink


def _alarm(i: int) -> Alarm:
    return Alarm(f"bed01:abnormal-run:{i}", "bed01", AlarmKind.PHYSIOLOGICAL, Condition.ABNORMAL_RUN, Priority.HIGH,
                 AlarmState.ACTIVE, time.time(), "run", beat_index=i)


class SlowJournal(Journal):
    """A journal on a slow disk: each line takes 30 ms, and says on which thread it was written."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.threads: list[str] = []

    def on_alarm(self, alarm: Alarm) -> None:
        time.sleep(0.03)
        self.threads.append(threading.current_thread().name)
        super().on_alarm(alarm)


class Shown(NullSink):
    """What a person would see: each alarm, and whether its journal line was on disk when it was shown."""

    def __init__(self, journal_path) -> None:
        self.path, self.ids, self.journalled = journal_path, [], []

    def on_alarm(self, alarm: Alarm) -> None:
        on_disk = {json.loads(line)["id"] for line in self.path.read_text().splitlines()}
        self.ids.append(alarm.id)
        self.journalled.append(alarm.id in on_disk)


def test_a_slow_journal_never_stalls_the_loop_and_every_alarm_is_journalled_before_it_is_shown(tmp_path, shipped):
    path = tmp_path / "alarms.jsonl"
    journal, shown = SlowJournal(path), Shown(path)
    mon = Monitor.for_checkpoint(shipped, device="cpu", sinks=[journal, shown])
    ticks: list[float] = []

    async def main() -> None:
        mon.disk.start(asyncio.get_running_loop())

        async def ticker() -> None:
            for _ in range(40):
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.005)

        t = asyncio.create_task(ticker())
        t0 = time.perf_counter()
        mon.emit([_alarm(i) for i in range(10)])  # an alarm storm: 10 x 30 ms of fsync
        emit_s = time.perf_counter() - t0
        await t
        mon.disk.stop()
        assert emit_s < 0.02, f"emit blocked the loop for {emit_s:.3f} s"

    asyncio.run(main())
    mon.close()
    # the loop kept ticking while the disk worked (no gap near the 300 ms the writes took)
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.1
    assert set(journal.threads) == {"ecgmon-disk"}
    assert shown.ids == [f"bed01:abnormal-run:{i}" for i in range(10)]  # in order
    assert all(shown.journalled)  # each was fsynced before any other sink saw it


def test_without_a_running_loop_writes_happen_at_once_and_failures_are_counted(tmp_path, capsys):
    d = DiskWriter()
    order: list[str] = []
    d.submit(lambda: order.append("write"), lambda: order.append("then"))
    assert order == ["write", "then"]

    def broken() -> None:
        raise OSError(28, "No space left on device")

    d.submit(broken, lambda: order.append("shown anyway"))
    assert order[-1] == "shown anyway" and d.failed == 1 and d.written == 1
    assert "disk write failed" in capsys.readouterr().err

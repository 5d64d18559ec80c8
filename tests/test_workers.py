"""``ecgmon --source mqtt --workers N``: a router and N worker processes on one machine, a real broker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ecgmon.cli.main import main
from ecgmon.core.broker import BrokerConfig
from ecgmon.monitor.workers import _Lines, worker_journal, worker_of
from ecgmon.simulators.publisher import SimConfig, publish

ECGMON = str(Path(sys.executable).with_name("ecgmon"))


class Router:
    """``ecgmon --workers N --no-ui`` as a subprocess; its stdout lines gathered by a thread."""

    def __init__(self, tmp_path: Path, url: str, prefix: str, workers: int, *extra: str) -> None:
        self.journal = tmp_path / "alarms.jsonl"
        self.proc = subprocess.Popen(
            [ECGMON, "--source", "mqtt", "--broker", url, "--topic", f"{prefix}/+/samples",
             "--labels-topic", f"{prefix}/+/labels",
             "--control-topic", f"{prefix}/+/control", "--client-id", f"{prefix}-router", "--workers", str(workers),
             "--no-ui", "--journal", str(self.journal), "--learn-state", str(tmp_path / "learnt.json"),
             "--checkpoint", "ecg5000", "--device", "cpu", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[dict] = []
        self.bad: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.append(json.loads(line))
            except json.JSONDecodeError:
                self.bad.append(line)

    def of(self, kind: str) -> list[dict]:
        return [r for r in list(self.lines) if r.get("type") == kind]

    async def wait_for(self, what, timeout: float, label: str) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            if self.proc.poll() is not None:
                raise AssertionError(f"router exited ({self.proc.returncode}) waiting for {label}: "
                                     f"{self.proc.stderr.read() if self.proc.stderr else ''}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {label}; last lines {self.lines[-5:]}")
            await asyncio.sleep(0.2)

    async def wait_quiet(self, seconds: float = 3.0, timeout: float = 120.0) -> None:
        """Until no beat line has come for ``seconds``."""
        deadline = time.monotonic() + timeout
        last = -1
        while (n := len(self.of("beat"))) != last and time.monotonic() < deadline:
            last = n
            await asyncio.sleep(seconds)

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        time.sleep(0.2)
        summary = self.of("summary")
        assert summary, (self.lines[-5:], self.proc.stderr.read() if self.proc.stderr else "")
        return summary[-1]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=10)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


def test_devices_are_spread_over_workers_stably_and_lines_are_tagged():
    devices = [f"bed{i:02d}" for i in range(1, 101)]
    counts = Counter(worker_of(d, 4) for d in devices)
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) >= 15  # every worker gets a fair share
    assert [worker_of(d, 4) for d in devices] == [worker_of(d, 4) for d in devices]
    assert worker_journal(Path("/x/alarms.jsonl"), 2) == Path("/x/alarms.worker2.jsonl")

    class Up:
        def __init__(self):
            self.sent = []

        def send(self, obj):
            self.sent.append(obj)

    up = Up()
    out = _Lines(up, 3)  # type: ignore[arg-type]
    out.write('{"type": "beat", "patient": "a"}\n{"type": ')
    out.write('"stats"}\n')
    out.flush()
    assert [json.loads(x) for x in up.sent[0][1]] == [{"worker": 3, "type": "beat", "patient": "a"},
                                                      {"worker": 3, "type": "stats"}]


@pytest.mark.parametrize("argv", [["--source", "replay", "--shard", "0/2"],
                                  ["--source", "nats", "--shard", "0/2", "--prefer", "0"]])
def test_shard_is_refused_where_it_would_be_ignored(argv, capsys):
    assert main([*argv, "--no-ui", "--duration", "1"]) == 2
    assert "--shard" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--source", "replay", "--workers", "2"],
                                  ["--source", "mqtt", "--workers", "0"],
                                  ["--source", "mqtt", "--workers", "2", "--shard", "0/2"]])
def test_workers_need_mqtt_and_exclude_shard(argv, capsys):
    assert main([*argv, "--no-ui", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "--workers" in err
    assert ("--shard on --source mqtt is deprecated" in err) == ("--shard" in argv)  # retired (issue 23)


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.asyncio
async def test_two_workers_judge_each_device_once_and_account_for_every_message(tmp_path, broker, prefix):
    r = Router(tmp_path, broker.url, prefix, 2)
    try:
        await r.wait_for(lambda: len(r.of("worker")) >= 2, 120, "both workers ready")
        await asyncio.sleep(1.0)  # the router's subscription (it connected while the workers started)
        stats = await publish(SimConfig(devices=8, speed=None, topic_prefix=prefix),
                              BrokerConfig(url=broker.url, client_id=f"{prefix}-dev"))
        await r.wait_quiet()
        summary = r.stop()
    finally:
        r.kill()
    assert not r.bad
    beats = r.of("beat")
    by_worker: dict[int, set[str]] = {0: set(), 1: set()}
    for b in beats:
        by_worker[b["worker"]].add(b["patient"])
        assert b["worker"] == worker_of(b["patient"], 2)  # the owner the hash names, and no other
    assert by_worker[0] and by_worker[1] and not by_worker[0] & by_worker[1]
    assert by_worker[0] | by_worker[1] == {f"bed{i:02d}" for i in range(1, 9)}
    per = summary["per_worker"]
    assert summary["workers"] == 2 and len(per) == 2 and all(p.get("type") == "summary" for p in per)
    # every message published reached exactly one worker, none lost, shed or rejected
    assert summary["messages"] == stats.published + stats.labels
    assert sum(summary["routed"].values()) == stats.published + stats.labels
    # the workers' input summaries as one (counts added, breakdowns merged)
    assert summary["input"]["messages"] == summary["messages"] and summary["input"]["rejected"] == 0
    for p in per:
        inp = p["input"]
        assert inp["lost_chunks"] == inp["gaps"] == inp["rejected"] == 0
    assert summary["shed_messages"] == 0 and summary["restarts"] == 0
    assert summary["beats"] == len(beats) == sum(p["beats"] for p in per) > 900
    # latency at the top: the worst worker's p99 (percentiles do not pool), and the simulator's devices labelled
    assert summary["latency_p99_ms_worst_worker"] == max(p["latency_p99_ms"] for p in per) > 0
    assert summary["simulated"] == [f"bed{i:02d}" for i in range(1, 9)]
    # every alarm transition a worker journalled was shown, tagged with its worker
    for i in range(2):
        journal = [json.loads(x) for x in worker_journal(r.journal, i).read_text().splitlines()]
        shown = [a for a in r.of("alarm") if a["worker"] == i]
        assert [(a["id"], a["state"]) for a in journal] == [(a["id"], a["state"]) for a in shown]


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.asyncio
async def test_failover_a_killed_worker_is_alarmed_restarted_and_its_beds_judged_again(tmp_path, broker, prefix):
    r = Router(tmp_path, broker.url, prefix, 2)
    devices = None
    try:
        await r.wait_for(lambda: len(r.of("worker")) >= 2, 120, "both workers ready")
        await asyncio.sleep(1.0)
        sim = SimConfig(devices=6, speed=1.0, duration=60.0, topic_prefix=prefix, fmt="int16", labels=False,
                        kind="synthetic")
        devices = asyncio.ensure_future(publish(sim, BrokerConfig(url=broker.url, client_id=f"{prefix}-dev")))
        await r.wait_for(lambda: {b["worker"] for b in r.of("beat")} == {0, 1}, 60, "beats from both workers")
        await asyncio.sleep(2.0)  # every bed seen by the router
        victim = next(w for w in r.of("worker") if w["worker"] == 1 and w["state"] == "ready")
        beds1 = {b["patient"] for b in r.of("beat") if b["worker"] == 1}
        os.kill(victim["pid"], signal.SIGKILL)
        killed = len(r.of("beat"))
        unmonitored = lambda state: {a["patient"] for a in r.of("alarm")  # noqa: E731
                                     if a["condition"] == "bed unmonitored" and a["state"] == state}
        await r.wait_for(lambda: unmonitored("active") == beds1, 20, "bed unmonitored for every bed of worker 1")
        await r.wait_for(lambda: unmonitored("cleared") == beds1, 120, "worker 1 restarted, its beds seen again")
        await r.wait_for(lambda: {b["patient"] for b in r.of("beat")[killed:] if b["worker"] == 1} == beds1, 60,
                         "the restarted worker judges its beds")
        summary = r.stop()
    finally:
        r.kill()
        if devices is not None:
            devices.cancel()
            await asyncio.gather(devices, return_exceptions=True)
    assert summary["restarts"] == 1 and summary["unmonitored_beds"] == []
    # the killed process's beats stay in the totals: its last progress report (<= ~1 s before the kill)
    restart = next(i for i, x in enumerate(r.lines) if x.get("type") == "worker" and x["worker"] == 1
                   and x["state"] == "restarting")  # the router wrote it after the dead process's last line
    first_life = sum(1 for x in r.lines[:restart] if x.get("type") == "beat" and x["worker"] == 1)
    # the new process's beat indices go on from the dead one's (each device's sample clock handed over), and
    # nothing is lost across the kill: what the dead process had not judged was sent again to the new one,
    # after a warm-up of what it had (its segmenters rebuilt): no gap in any bed's beats, none judged twice
    restarting = r.lines[restart]
    assert restarting["warmup"] > 0 and restarting["resent"] >= 0, restarting  # resent: what was in flight, often 0
    assert summary["resent"] == {"1": restarting["resent"]}
    assert summary["warmup_messages"] == {"1": restarting["warmup"]}
    # every message handled, the dead process's too (its last progress report), each once: the resent ones and the
    # warm-up not again (within what the dead process handled after its last report)
    assert summary["received"] - 50 <= summary["messages"] <= summary["received"], (summary["messages"],
                                                                                   summary["received"])
    assert summary["messages_handled"] >= summary["messages"] + restarting["warmup"] + restarting["resent"]
    for p in beds1:
        old = [x["index"] for x in r.lines[:restart] if x.get("type") == "beat" and x["patient"] == p]
        new = [x["index"] for x in r.lines[restart:] if x.get("type") == "beat" and x["patient"] == p]
        assert old and new and min(new) > max(old), (p, max(old), min(new))
        rr = np.diff(sorted(old + new))
        assert rr.max() < 1.6 * np.median(rr), (p, max(old), min(new), rr.tolist())
    assert 0 <= first_life - summary["before_restarts"]["beats"] <= 10, (first_life, summary["before_restarts"])
    assert 0 <= len(r.of("beat")) - summary["beats"] <= 10
    states = [w["state"] for w in r.of("worker") if w["worker"] == 1]
    assert states == ["ready", "restarting", "ready"]
    # the router journalled its own alarms: raised and cleared once per bed
    journal = [json.loads(x) for x in r.journal.read_text().splitlines()]
    assert Counter(a["state"] for a in journal) == {"active": len(beds1), "cleared": len(beds1)}
    for a in (a for a in journal if a["state"] == "active"):  # raised where the bed's signal was (newcomer 10)
        last = max(x["index"] for x in r.lines[:restart] if x.get("type") == "beat" and x["patient"] == a["patient"])
        assert last < a["beat_index"] < last + 10 * 250, (a, last)
    # worker 0 never stopped judging its beds
    beds0 = {b["patient"] for b in r.of("beat")[killed:] if b["worker"] == 0}
    assert beds0 and not beds0 & beds1


def test_a_discharged_bed_is_forgotten_by_the_router_and_never_alarmed_unmonitored(tmp_path):
    """A worker discharges a bed and later dies: 'bed unmonitored' for its other beds, not for the patient who left
    (it was raised, and never cleared: a reviewer, session 41); the router counts the discharge."""
    import time

    from ecgmon.core.messages import Condition
    from ecgmon.monitor.config import MonitorConfig
    from ecgmon.monitor.workers import RESTARTS, Router

    r = Router(MonitorConfig(source="mqtt", broker=BrokerConfig(), journal=tmp_path / "a.jsonl", ui=False), 2)
    w = r.workers[0]
    r._from_worker(w, w.gen, ("beds", ["stays", "gone"]))
    r._from_worker(w, w.gen, ("discharged", "gone"))
    w.starts = [time.monotonic()] * RESTARTS  # dies once too often: alarmed, not restarted
    r._gone(w, w.gen)
    unmonitored = {p for p, b in r.books.items() if Condition.BED_UNMONITORED in b.active}
    assert unmonitored == {"stays"} and r.discharged == 1 and w.beds == {"stays"}
    r.journal.close()


def test_a_down_workers_beds_show_no_rate_trace_or_verdict_only_the_alarm(tmp_path):
    import numpy as np
    from rich.console import Console

    from ecgmon.core.messages import Condition
    from ecgmon.monitor.alarms import AlarmBook, TechnicalAlarms
    from ecgmon.monitor.app import KeyState
    from ecgmon.monitor.config import MonitorConfig
    from ecgmon.monitor.console import Snapshot, Tile, render
    from ecgmon.monitor.workers import Router

    r = Router(MonitorConfig(source="mqtt", broker=BrokerConfig(), journal=tmp_path / "a.jsonl", ui=False), 2)
    strip = np.sin(np.linspace(0, 60, 1250))

    def snap(patient: str, hr: float) -> Snapshot:
        tile = Tile(patient, hr, strip, 0.01, 0.1, 40, 0, None, 0, fs=250.0, end=1250)
        return Snapshot((tile,), (), "x", False, 5.0, 10.0, 20.0, 0, 0, 0, "cpu", "m", None, None, 1.0)

    for w, (p, hr) in zip(r.workers, [("bedA", 71.0), ("bedB", 133.0)], strict=True):
        w.snap, w.beds, w.ready = snap(p, hr), {p}, True
    r.workers[1].ready = False  # worker 1 died
    r.books["bedB"] = AlarmBook("bedB")
    TechnicalAlarms(r.books["bedB"]).raise_(Condition.BED_UNMONITORED, "worker 1 died")
    merged = r.snapshot(KeyState())
    assert list(r.beds) == ["bedA", "bedB"] and [t.patient for t in merged.tiles] == ["bedA", "bedB"]
    a, b = merged.tiles
    assert a.heart_rate == 71.0 and len(a.strip) == 1250
    assert b.heart_rate is None and len(b.strip) == 0 and b.loss is None and not b.marks
    assert b.alarm is not None and b.alarm.condition is Condition.BED_UNMONITORED
    con = Console(width=120, height=30, record=True)
    con.print(render(merged, width=120, height=30))
    text = con.export_text()
    assert "bed unmonitored" in text and "133" not in text and "71" in text
    r.journal.close()

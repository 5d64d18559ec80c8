"""Crash safety of the alarm journal and restoring open alarms; chunking and reordering invariance."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, Beat, BeatScore, Condition, Priority
from ecgmon.core.payload import decode, encode
from ecgmon.monitor.alarms import AlarmBook, AlarmPolicy, Journal, PolicyConfig, open_alarms, read_journal
from ecgmon.monitor.streams import DeviceStream
from ecgmon.segmentation.beats import Segmenter
from ecgmon.simulators.replay import plan_patients

ECGMON = str(Path(sys.executable).with_name("ecgmon"))


def _score(i: int, loss: float) -> BeatScore:
    return BeatScore(Beat("bed1", np.zeros(140, np.float32), i, 0.8, 250.0, 0.0), loss, 1.0, 0.0)


def _policy(book: AlarmBook) -> AlarmPolicy:
    """Every flagged beat a LOW alarm (--beat-alarm), beats judged at once (no beat typer)."""
    return AlarmPolicy(book, PolicyConfig(beat_alarm=True), typer=False)


def test_a_torn_last_line_is_skipped_and_the_next_record_starts_on_its_own_line(tmp_path):
    path = tmp_path / "j.jsonl"
    j = Journal(path)
    for a in _policy(AlarmBook("bed1")).update(_score(1, 3.0)):
        j.on_alarm(a)
    j.close()
    with path.open("a") as f:
        f.write('{"id": "bed1:torn", "pat')  # a crash in the middle of a write
    j = Journal(path)
    for a in _policy(AlarmBook("bed2")).update(_score(2, 3.0)):
        j.on_alarm(a)
    j.close()
    rows, bad = read_journal(path)
    assert bad == 1
    assert [r["patient"] for r in rows] == ["bed1", "bed2"]


def test_open_alarms_are_those_whose_last_transition_is_not_cleared(tmp_path):
    book = AlarmBook("bed1")
    p = _policy(book)
    j = Journal(tmp_path / "j.jsonl")
    out = []
    for i, loss in enumerate([3, 3, 3]):  # abnormal beat, then abnormal run (both LOW)
        out += p.update(_score(i, loss))
    out += book.acknowledge()
    for i in range(3, 9):  # five normal beats clear the beat's alarm; the run's waits for a minute of quiet
        out += p.update(_score(i, 0.1))
    for a in out:
        j.on_alarm(a)
    j.close()
    alarms, bad = open_alarms(tmp_path / "j.jsonl")
    assert bad == 0
    assert [(a.condition, a.state) for a in alarms] == [("abnormal run", AlarmState.ACKNOWLEDGED)]
    assert alarms[0] == Alarm.from_json(json.loads(json.dumps(alarms[0].to_json())))


def test_a_station_does_not_restore_other_workers_alarms_as_its_own(tmp_path):
    """A NATS central station journals other workers' alarms with their ``origin``; a restart of the station must
    not take them as its own open alarms (their workers keep and clear them)."""
    mine = Alarm("bed1:a", "bed1", AlarmKind.PHYSIOLOGICAL, Condition.ABNORMAL_RUN, Priority.HIGH, AlarmState.ACTIVE,
                 1.0e9, "run", 10)
    theirs = dataclasses.replace(mine, id="bed7:a", patient="bed7", origin="ward-b")
    assert Alarm.from_json(json.loads(json.dumps(theirs.to_json()))) == theirs
    assert "origin" not in mine.to_json()
    j = Journal(tmp_path / "j.jsonl")
    for a in (mine, theirs):
        j.on_alarm(a)
    j.close()
    alarms, _ = open_alarms(tmp_path / "j.jsonl")
    assert [a.id for a in alarms] == ["bed1:a"]


@pytest.mark.slow
def test_kill_9_at_random_moments_never_corrupts_the_journal_and_restarts_restore_open_alarms(tmp_path):
    journal = tmp_path / "alarms.jsonl"
    rng = random.Random(7)
    cmd = [ECGMON, "--source", "replay", "--speed", "20", "--no-ui", "--loop", "--journal", str(journal),
           "--device", "cpu", "--seed"]
    restored_seen = []
    for k in range(5):
        expected, _ = open_alarms(journal) if journal.exists() else ([], 0)
        p = subprocess.Popen([*cmd, str(k)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        # wait for the first alarm line (shown only once journalled), then kill it at a random moment
        assert p.stdout is not None
        deadline = time.monotonic() + 120  # start-up (torch, the model) on a loaded machine
        while time.monotonic() < deadline and '"type": "alarm"' not in (p.stdout.readline() or ""):
            pass
        time.sleep(rng.uniform(0.2, 2.5))
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        p.stdout.close()
        rows, bad = read_journal(journal)
        assert bad <= k + 1  # at most one torn line per kill (in practice none: one write per line)
        assert rows, "the monitor journalled alarms before it was killed"
        restored_seen.append(len(expected))
    # every line says it came from a replay, so nothing of it is restored: not into a live monitor (the same bed
    # names would get a replay's alarms), nor into the next replay (it starts its patients' time again)
    rows, _ = read_journal(journal)
    assert rows and all(r.get("replay") is True for r in rows)
    assert restored_seen == [0] * 5 and open_alarms(journal)[0] == []
    left_open = {r["id"] for r in rows} - {r["id"] for r in rows if r["state"] == "cleared"}
    assert left_open, "the kills left alarms open"
    r = subprocess.run([ECGMON, "--source", "replay", "--speed", "max", "--no-ui", "--max-beats", "1",
                        "--journal", str(journal), "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["restored_alarms"] == 0
    assert summary["journal_skipped"] == 0


def test_a_live_monitor_restores_its_open_alarms_and_never_a_replays(tmp_path):
    """A live monitor restarted after a crash shows the alarms its journal left open (its own lines); lines a
    replay or recording wrote into the same journal (``"replay": true``, bed names like bed01 alike) are not
    restored, and a replay restores nothing (it starts its patients' time again)."""
    from ecgmon.core.broker import BrokerConfig
    from ecgmon.monitor.app import build
    from ecgmon.monitor.config import MonitorConfig

    journal = tmp_path / "alarms.jsonl"
    live, replay = Journal(journal), Journal(journal, replay=True)
    book, rbook = AlarmBook("bed01"), AlarmBook("bed01")
    for a in book.raise_(Condition.ASYSTOLE, AlarmKind.PHYSIOLOGICAL, Priority.HIGH, "no QRS for 4 s", index=10):
        live.on_alarm(a)
    for a in rbook.raise_(Condition.VTACH, AlarmKind.PHYSIOLOGICAL, Priority.HIGH, "5 V beats", index=20):
        replay.on_alarm(a)
    live.close()
    replay.close()
    opened, bad = open_alarms(journal)
    assert [a.condition for a in opened] == [Condition.ASYSTOLE] and bad == 0
    cfg = MonitorConfig(source="mqtt", broker=BrokerConfig(), journal=journal, ui=False, device="cpu")
    b = build(cfg, out=io.StringIO())
    try:
        assert [a.condition for a in b.monitor.restored.alarms] == [Condition.ASYSTOLE]
    finally:
        b.monitor.close()
    b = build(MonitorConfig(source="replay", journal=journal, ui=False, device="cpu"), out=io.StringIO())
    try:
        assert b.monitor.restored.alarms == ()
    finally:
        b.monitor.close()


def _beats(signal_: np.ndarray, sizes: list[int]) -> list[tuple[int, bytes]]:
    seg = Segmenter("p", 250.0)
    out, i, k = [], 0, 0
    while i < len(signal_):
        n = sizes[k % len(sizes)]
        out += [(b.index, b.samples.tobytes()) for b in seg.push(signal_[i:i + n])]
        i, k = i + n, k + 1
    return out


SIGNAL = None


def _signal() -> np.ndarray:
    global SIGNAL
    if SIGNAL is None:
        from ecgmon.models.data import make_split

        sp = make_split("product")
        SIGNAL = plan_patients(sp.pool.x, sp.pool.y, sp.test[:40], patients=1, fs=250.0, seed=5)[0].signal
    return SIGNAL


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=12))
def test_any_chunking_yields_the_same_beats(sizes):
    x = _signal()
    ref = _beats(x, [len(x)])
    got = _beats(x, sizes)
    assert [i for i, _ in got] == [i for i, _ in ref]
    for (_, a), (_, b) in zip(got, ref, strict=True):
        np.testing.assert_allclose(np.frombuffer(a, np.float32), np.frombuffer(b, np.float32), atol=1e-4)


@settings(max_examples=50, deadline=None)
@given(st.permutations(list(range(8))), st.integers(min_value=1, max_value=4))
def test_reordering_within_the_window_yields_the_same_chunks(perm_tail, start):
    # the stream starts at the first packet seen, so at least one packet arrives before the reordering
    sig = (np.arange(62, dtype=np.float32) % 7) * 0.1
    seqs = list(range(start)) + [start + p for p in perm_tail]
    ds = DeviceStream("d", reorder=8)
    out = [c for s in seqs for c in ds.push(decode(encode("float32", "d", s, 250.0, 10.0 + s * 62 / 250, sig)))]
    assert [round((c.t0 - 10.0) * 250 / 62) for c in out] == list(range(start + 8))  # released in seq order
    assert [c.start for c in out] == [62 * s for s in range(start + 8)]
    assert not any(c.reset for c in out)


def test_headless_lines_with_numpy_values_are_written_not_lost():
    """A numpy scalar or array in a stats or summary line is written as a number or list: json alone would raise
    TypeError and the summary, the documented last line, would be lost with the run's exit."""
    import io

    from ecgmon.monitor.sinks import HeadlessSink

    out = io.StringIO()
    sink = HeadlessSink(out, replay=True)
    sink.write({"type": "summary", "threshold": np.float32(0.25), "beats": np.int64(3), "hr": np.array([60.0])})
    line = json.loads(out.getvalue())
    assert line == {"type": "summary", "threshold": 0.25, "beats": 3, "hr": [60.0], "replay": True}
    assert sink.report() == {}


def test_lost_output_is_said_on_stderr_and_the_summary_is_still_tried(capsys):
    """A headless monitor whose stdout cannot take a line (here a full non-blocking pipe: EAGAIN) drops the
    following verdict lines, says so once on stderr with the cause, and still writes the summary once the pipe
    can take it (the summary was lost with the rest: a SIGTERM test saw exit 0 and no line after the signal)."""
    import os

    from ecgmon.monitor.sinks import HeadlessSink

    r, w = os.pipe()
    os.set_blocking(w, False)
    out = os.fdopen(w, "w")  # as sys.stdout is: text over a buffered writer
    sink = HeadlessSink(out, replay=True)
    pad = "x" * 4000
    for i in range(200):  # 800 kB into a 64 kB pipe: it fills
        sink.write({"type": "stats", "i": i, "pad": pad})
    assert sink.lost > 0
    err = capsys.readouterr().err
    assert err.count("output lines are lost") == 1 and "BlockingIOError" in err
    with os.fdopen(r, "rb") as reader:
        os.set_blocking(r, False)
        while True:
            try:
                if not reader.read(65536):
                    break
            except BlockingIOError:
                break
            except TypeError:  # read() of a non-blocking empty pipe gives None
                break
        sink.write({"type": "summary", "beats": 1})
        os.set_blocking(r, True)
        with contextlib.suppress(OSError):
            out.close()
        tail = reader.read().decode(errors="replace")
    assert '"type": "summary"' in tail
    assert sink.report() == {"output_lines_lost": sink.lost}

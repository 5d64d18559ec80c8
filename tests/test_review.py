"""Alarm strips and the shift review (issue 13): what a strip holds, the HTML page, and both from a real run."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, Beat, BeatScore, Chunk, Condition, Priority
from ecgmon.monitor.alarms import Journal
from ecgmon.monitor.review import render
from ecgmon.monitor.strips import StripRecorder, read_strips, strips_path

ECGMON = str(Path(sys.executable).with_name("ecgmon"))
EXCERPT = Path(__file__).parent / "data" / "mitdb" / "205x"


def _alarm(index, aid="bed01:run", kind=AlarmKind.PHYSIOLOGICAL, state=AlarmState.ACTIVE, patient="bed01"):
    return Alarm(aid, patient, kind, Condition.ABNORMAL_RUN, Priority.HIGH, state, time.time(), "run of 3",
                 index, 0.5, 0.1)


def _feed(rec, fs, seconds, start=0, chunk=25):
    x = np.sin(np.arange(int(seconds * fs)) / fs * 2 * np.pi).astype(np.float32)
    for i in range(0, len(x), chunk):
        rec.on_chunk(Chunk("bed01", fs, 0.0, x[i:i + chunk], start=start + i))


def _score(index, verdict_loss, thr=0.1):
    return BeatScore(Beat("bed01", np.zeros(140, np.float32), index, 0.8, 100.0, 0.0), verdict_loss, thr, 0.0)


def test_a_strip_holds_6_s_before_and_4_s_after_the_alarm_with_the_beats_verdicts(tmp_path):
    fs = 100.0
    rec = StripRecorder(tmp_path / "a.strips.jsonl", replay=True)
    _feed(rec, fs, 13)  # samples 0..1299: the alarm comes 1 s after its beat
    for i in range(0, 1300, 80):
        rec.on_beat(_score(i, 0.5 if 1000 <= i < 1300 else 0.01))
    rec.on_alarm(_alarm(1200))
    rec.on_alarm(_alarm(1200, "tech", kind=AlarmKind.TECHNICAL))  # technical alarms keep no strip
    rec.on_alarm(_alarm(1200, state=AlarmState.CLEARED))  # nor do other transitions
    assert rec.written == 0 and len(rec.pending) == 1  # waits for 4 s after, plus 2 s for the verdicts
    _feed(rec, fs, 4, start=1300)
    assert rec.written == 0
    for i in range(1360, 1700, 80):
        rec.on_beat(_score(i, 0.01))
    _feed(rec, fs, 8, start=1700)
    assert rec.written == 1 and not rec.pending
    rec.close()
    (s,), bad = read_strips(tmp_path / "a.strips.jsonl")
    assert bad == 0 and s["complete"] and s["replay"] and s["onset"] == 1200
    assert s["start"] == 600 and len(s["samples"]) == 1000  # 6 s before, 4 s after, at 100 Hz
    assert [b[0] for b in s["beats"]] == list(range(640, 1600, 80))
    assert {tuple(b[1:2]) for b in s["beats"] if 1000 <= b[0] < 1300} == {("abnormal",)}
    assert s["alarm"]["id"] == "bed01:run"


def test_a_strip_pending_at_shutdown_is_written_with_what_there_is(tmp_path):
    rec = StripRecorder(tmp_path / "b.strips.jsonl")
    _feed(rec, 100.0, 13)
    rec.on_alarm(_alarm(1200))
    rec.close()
    rec.close()  # twice is harmless
    (s,), _ = read_strips(tmp_path / "b.strips.jsonl")
    assert not s["complete"] and s["start"] == 600 and len(s["samples"]) == 700


def _journal_with_strips(tmp_path, *alarms):
    """A journal and its strips file with ``alarms`` raised 10 s into a bed's signal (the journal and the recorder
    open: the caller goes on, then feeds and closes them)."""
    journal = tmp_path / "alarms.jsonl"
    j = Journal(journal)
    rec = StripRecorder(strips_path(journal))
    _feed(rec, 100.0, 10)
    for a in alarms:
        j.on_alarm(a)
        rec.on_alarm(a)
    return journal, j, rec


def test_review_page_lists_alarms_newest_first_with_strips_and_survives_torn_lines(tmp_path):
    journal, j, rec = _journal_with_strips(tmp_path, _alarm(300, "bed01:a"), _alarm(700, "bed01:b"))
    j.on_alarm(_alarm(700, "bed01:c"))  # journalled, but its strip was never written
    j.on_alarm(_alarm(300, "bed01:a", state=AlarmState.CLEARED))
    _feed(rec, 100.0, 10, start=1000)
    rec.close()
    j.close()
    with journal.open("a") as f:
        f.write('{"id": "torn", "sta')
    page, counts = render(journal, tmp_path / "out")
    text = page.read_text()
    assert counts == {"alarms": 3, "strips": 2, "journal_skipped": 1, "strips_skipped": 0}
    assert text.count("<svg") == 2 and "no strip was kept" in text and "1 unreadable journal lines" in text
    assert "polyline" in text and "0.2 s / 0.5 mV" in text and "HIGH" in text
    assert "cleared -" not in text.split("<section>")[-1]  # the first alarm (last section) shows when it cleared
    # and where each transition lies on the bed's strip, as its line says (a newcomer, session 25: only the wall
    # clock of the playback, which nobody can match to a recording's alarm log)
    assert "sample 300" in text.split("<section>")[-1] and "sample 700" in text, text
    with pytest.raises(FileNotFoundError):
        render(tmp_path / "missing.jsonl", tmp_path / "out")


def test_review_skips_damaged_lines_and_strips_and_says_so(tmp_path):
    """A journal line whose time is 1e300 (an OverflowError in the date) or text ("yesterday": the page failed with
    "could not convert string to float"), a strips line with fs 0 or samples as text (ZeroDivisionError, a failed
    page), a line of JSON that is no alarm: the page is written, every other alarm on it, the damage counted."""
    journal, j, rec = _journal_with_strips(tmp_path, _alarm(300, "bed01:good"), _alarm(500, "bed01:strip"))
    _feed(rec, 100.0, 10, start=1000)
    rec.close()
    j.close()
    lines = journal.read_text().splitlines()
    row = json.loads(lines[0])
    with journal.open("a") as f:
        for t in (1e300, "yesterday"):
            f.write(json.dumps({**row, "id": f"bed01:odd-{t}", "time": t}) + "\n")
        f.write("[1, 2, 3]\n")
    sp = strips_path(journal)
    strips = [json.loads(x) for x in sp.read_text().splitlines()]
    for st in strips:
        if st["alarm"]["id"] == "bed01:strip":
            st["fs"] = 0
    sp.write_text("".join(json.dumps(st) + "\n" for st in strips))
    page, counts = render(journal, tmp_path / "out")
    text = page.read_text()
    assert counts["alarms"] == 4 and counts["journal_skipped"] == 1 and counts["strips_skipped"] == 1, counts
    assert "(time out of range)" in text and "the strip of this alarm is unreadable" in text
    assert text.count("<svg") == 1  # the good alarm's strip


def test_review_of_several_journals_is_one_view_of_every_bed(tmp_path):
    """NATS workers each journal their own beds; a takeover continues an alarm's id in the next worker's journal
    (raised in A's, cleared in B's), and a central station journals the others' alarms with their origin.  One
    page of them all: each alarm once, when it cleared, who judged it and where it is held."""
    a_path, b_path, station = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "station.jsonl"
    a, b, s = Journal(a_path), Journal(b_path), Journal(station)
    rec = StripRecorder(strips_path(a_path))
    _feed(rec, 100.0, 10)
    taken_over = _alarm(300, "bed01:run")
    a.on_alarm(taken_over)
    rec.on_alarm(taken_over)
    _feed(rec, 100.0, 10, start=1000)
    rec.close()
    b.on_alarm(_alarm(300, "bed01:run", state=AlarmState.CLEARED))
    b.on_alarm(_alarm(700, "bed02:run", patient="bed02"))
    s.on_alarm(dataclasses.replace(_alarm(700, "bed02:run", patient="bed02"), origin="ward-b"))
    for j in (a, b, s):
        j.close()
    page, counts = render([a_path, b_path, station], tmp_path / "out")
    text = page.read_text()
    assert counts["alarms"] == 2 and counts["strips"] == 1
    sections = text.split("<section>")[1:]
    assert len(sections) == 2
    bed01 = next(x for x in sections if "bed01" in x)
    assert "cleared -" not in bed01 and "in a.jsonl, b.jsonl" in bed01 and "<svg" in bed01
    bed02 = next(x for x in sections if "bed02" in x)
    assert "in b.jsonl, station.jsonl" in bed02 or "in station.jsonl, b.jsonl" in bed02
    assert "judged by ward-b" in bed02  # the station's copy names it, though b.jsonl came first


@pytest.mark.slow
def test_review_of_a_real_run_on_the_mitdb_excerpt(tmp_path):
    journal = tmp_path / "shift.jsonl"
    r = subprocess.run([ECGMON, "--source", "record", str(EXCERPT), "--speed", "max", "--no-ui", "--learn", "60",
                        "--journal", str(journal), "--learn-state", str(tmp_path / "learnt.json")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])
    strips, _ = read_strips(strips_path(journal))
    assert summary["strips_written"] + summary["strips_pending"] == len(strips) > 0
    assert all(s["replay"] for s in strips)
    r = subprocess.run([ECGMON, "review", str(journal), "--out", str(tmp_path / "review")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "review" / "review.html").read_text()
    assert html.count("<svg") == len(strips) and "REPLAY / RECORDING" in html and "205x" in html


def test_a_strip_is_kept_when_verdicts_lag_far_behind_the_signal(tmp_path):
    """At full replay speed the beats of minutes of signal wait in the queue before the first verdict,
    and one batch judges hundreds of beats at once: the strip must still hold its samples."""
    rec = StripRecorder(tmp_path / "c.strips.jsonl")
    _feed(rec, 100.0, 120)  # 2 minutes segmented, nothing judged yet
    for i in range(0, 9000, 80):  # one batch: beats up to 90 s, an alarm at 12 s among them
        rec.on_beat(_score(i, 0.5 if i == 1200 else 0.01))
        if i == 1200:
            rec.on_alarm(_alarm(1200))
    _feed(rec, 100.0, 5, start=12000)
    rec.close()
    (s,), _ = read_strips(tmp_path / "c.strips.jsonl")
    assert s["complete"] and s["start"] == 600 and len(s["samples"]) == 1000


def test_a_strip_with_missing_samples_is_drawn_with_a_gap_not_called_unreadable():
    """A strip whose middle is NaN (a device's nulls, a recording's gap: they reach the monitor as missing samples
    since session 25) is drawn as two runs of trace; a strip with no sample present says so."""
    from ecgmon.monitor.review import svg

    x = np.sin(np.arange(1000) / 20.0)
    x[400:600] = np.nan
    strip = {"fs": 100.0, "samples": x.tolist(), "start": 0, "onset": 500, "beats": []}
    page = svg(strip)
    assert page.count("<polyline") == 2 and "nan" not in page.lower()
    assert "signal was missing" in svg({**strip, "samples": [float("nan")] * 1000})

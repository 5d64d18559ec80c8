
import dataclasses
import time

import numpy as np
from rich.console import Console

from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, Priority
from ecgmon.monitor.console import Snapshot, Tile, render


def _alarm(p, prio, cond="abnormal run", kind=AlarmKind.PHYSIOLOGICAL, state=AlarmState.ACTIVE):
    return Alarm(f"{p}:{cond}", p, kind, cond, prio, state, 1_700_000_000.0, "msg")


def _snap(n=8, alarms=True):
    strip = np.sin(np.linspace(0, 30, 1000)).astype(np.float32)
    tiles = tuple(
        Tile(f"bed{i + 1:02d}", 60.0 + i, strip, 0.1 * (i + 1), 0.35, 100 + i, i,
             _alarm(f"bed{i + 1:02d}", Priority.HIGH) if alarms and i == 0 else
             _alarm(f"bed{i + 1:02d}", Priority.MEDIUM, "frequent abnormal beats") if alarms and i == 1 else None, 1)
        for i in range(n)
    )
    log = (_alarm("bed01", Priority.HIGH), _alarm("bed03", Priority.LOW, "leads off", AlarmKind.TECHNICAL))
    return Snapshot(tiles, log, "REPLAY - ECG5000 product test split, not a live patient", True, 123.4, 12.0,
                    48.0, 3, 17, 0, "cpu (2 threads)", "ecg_ae_product.pt thr 0.3500", 0.987, 0.991, 42.0)


def _screen(snap, w, h, now=1_700_000_000.0):
    c = Console(width=w, height=h, record=True, force_terminal=True, color_system="truecolor")
    c.print(render(snap, width=w, height=h, now=now))
    return c


def test_tiles_footer_and_replay_banner_are_visible():
    c = _screen(_snap(), 160, 48)
    text = c.export_text(styles=False)
    assert "REPLAY" in text
    for i in range(1, 9):
        assert f"bed{i:02d}" in text
    assert "60 bpm" in text and "67 bpm" in text
    assert "123.4 beats/s" in text and "p50 12 ms p99 48 ms" in text
    assert "queue 3 (max 17)" in text and "cpu (2 threads)" in text
    assert "sens 0.987 spec 0.991" in text
    assert "HIGH abnormal run" in text and "MEDIUM frequent" in text and "TECH LOW leads off" in text
    assert "loss 0.400/0.350 ABN" in text and "loss 0.300/0.350 ok" in text  # beds without an alarm
    assert "1:bed01   60 bpm beat ok" in text and "4:bed04   63 bpm beat ABN" in text  # every bed's last verdict
    # the keys stay visible however long the figures line is (a recording's was cut with an ellipsis at 160 columns)
    long = dataclasses.replace(_snap(), model="ecg_ae_mitdb.pt learn 300s margin 0.0072 " + "x" * 40)
    text = _screen(long, 160, 48).export_text(styles=False)
    assert "a: acknowledge" in text and "q twice: quit" in text


def test_alarm_colours_follow_iec_60601_1_8():
    c = _screen(_snap(), 160, 48, now=1_700_000_000.0)
    html = c.export_html(inline_styles=True)
    assert "#800000" in html or "#ff0000" in html  # HIGH red
    assert "#808000" in html or "#ffff00" in html  # MEDIUM yellow
    assert "#008080" in html or "#00ffff" in html  # LOW cyan


def _styles_of(snap, text: str, now: float) -> set[str]:
    """The styles of every piece of the screen that shows ``text`` (e.g. an alarm's name) at time ``now``."""
    c = Console(width=160, height=48, force_terminal=True, color_system="truecolor")
    return {str(seg.style) for seg in c.render(render(snap, width=160, height=48, now=now)) if text in seg.text}


def test_active_high_alarms_flash_twice_a_second_and_acknowledged_ones_stop():
    """IEC 60601-1-8: a HIGH alarm's visual signal flashes; once acknowledged (silenced) it stays, steady."""
    snap = dataclasses.replace(_snap(), alarm_log=())  # the tiles only (the alarm log's lines do not flash)
    steady, flash = _styles_of(snap, "HIGH abnormal run", 1_700_000_000.0), _styles_of(snap, "HIGH abnormal run",
                                                                                          1_700_000_000.5)
    assert steady == {"bold white on red"} and flash == {"bold red on white"}
    bed1 = dataclasses.replace(snap.tiles[0], alarm=_alarm("bed01", Priority.HIGH, state=AlarmState.ACKNOWLEDGED))
    ack = dataclasses.replace(snap, tiles=(bed1, *snap.tiles[1:]))
    assert _styles_of(ack, "HIGH (ack) abnormal run", 1_700_000_000.0) == _styles_of(
        ack, "HIGH (ack) abnormal run", 1_700_000_000.5) == {"bold white on red"}
    # a MEDIUM alarm never flashes
    assert _styles_of(snap, "MEDIUM frequent", 1_700_000_000.5) == {"bold black on yellow"}


def test_readable_at_80x24():
    c = _screen(_snap(), 80, 24)
    lines = c.export_text(styles=False).splitlines()
    assert max(len(line) for line in lines) <= 80
    assert len(lines) <= 24
    text = "\n".join(lines)
    assert "bed01" in text and "bpm" in text and "REPLAY" in text and "beds not shown" in text


def test_braille_trace_draws_a_spike_as_one_connected_stroke():
    from ecgmon.monitor.console import braille

    x = np.zeros(400)
    x[200:204] = [3.0, 6.0, 3.0, 0.0]  # one narrow spike, far narrower than a dot column
    rows = braille(x, 20, 3)
    assert len(rows) == 3 and all(len(r) == 20 for r in rows)
    cols = [c for c in range(20) if any(r[c] != chr(0x2800) for r in rows[:2])]  # above the baseline row
    assert cols and max(cols) - min(cols) <= 1  # the spike is in one place
    assert all(r[cols[0]] != chr(0x2800) for r in rows)  # drawn from the top row down to the baseline
    assert braille(np.zeros(1), 5, 2) == [" " * 5] * 2


def test_one_bed_view_shows_a_long_trace_the_losses_and_the_alarms():
    from ecgmon.monitor.console import Mark

    fs = 250.0
    strip = np.sin(np.linspace(0, 60, int(10 * fs))).astype(np.float32)
    marks = tuple(Mark(i * 200, "abnormal" if i == 5 else "normal", 0.5 if i == 5 else 0.05, 0.2)
                  for i in range(12))
    t = Tile("bed01", 72.0, strip, 0.05, 0.2, 12, 1, _alarm("bed01", Priority.HIGH), 1, fs=fs, end=len(strip),
             marks=marks, alarms=(_alarm("bed01", Priority.HIGH),), learnt=True)
    snap = dataclasses.replace(_snap(), tiles=(t, *_snap().tiles[1:]), focus="bed01")
    text = _screen(snap, 120, 40).export_text(styles=False)
    assert "bed01: one-bed view" in text and "bed02" not in text.split("alarm log")[0]
    assert "threshold 0.2000 (the bed's own, learnt)" in text and "HIGH abnormal run" in text
    assert "last 10 s" in text and "█" in text  # the abnormal beat's loss bar reaches over the threshold


def test_a_lethal_rhythm_takes_the_bed_tile_over():
    """Asystole on bed 3: its name in capitals on that tile, which a person cannot miss; other beds as before."""
    snap = _snap()
    asy = Alarm("bed03:asystole", "bed03", AlarmKind.PHYSIOLOGICAL, "asystole", Priority.HIGH, AlarmState.ACTIVE,
                1_700_000_000.0, "no QRS for 4 s", beat_index=2500, record_s=10.0)
    bed3 = dataclasses.replace(snap.tiles[2], alarm=asy, alarms=(asy,))
    snap = dataclasses.replace(snap, tiles=(*snap.tiles[:2], bed3, *snap.tiles[3:]))
    text = _screen(snap, 160, 48).export_text(styles=False)
    assert text.count("!! ASYSTOLE !!") == 1
    assert "┏" in text  # the heavy border of the tile taken over
    assert "VENTRICULAR" not in text


def test_every_alarm_log_row_names_its_bed_on_a_small_terminal():
    long = "5 or more ventricular beats at over 100 bpm, their complexes alike, and a message longer than any screen"
    log = (dataclasses.replace(_alarm("207", Priority.HIGH, "ventricular tachycardia"), message=long, record_s=42.0),
           dataclasses.replace(_alarm("a-bed-with-a-very-long-name", Priority.LOW, "ventricular couplet"),
                               record_s=40.0))
    snap = dataclasses.replace(_snap(2), alarm_log=log)
    for w in (80, 100, 119, 160):
        lines = _screen(snap, w, 40).export_text(styles=False).splitlines()
        vt = next(line for line in lines if "ventricular tachycardia" in line)
        couplet = next(line for line in lines if "ventricular couplet" in line)
        assert "+0:00:42 207 " in vt and "…" in vt, (w, vt)
        assert "+0:00:40 a-bed-with-a-ve… active: LOW" in couplet, (w, couplet)
        assert max(len(line) for line in lines) <= w


def test_the_alarm_log_of_a_recording_says_where_in_the_recording_live_the_clock_time():
    snap = _snap()
    rec = dataclasses.replace(snap, alarm_log=(dataclasses.replace(_alarm("bed01", Priority.HIGH), record_s=754.6),))
    text = _screen(rec, 160, 48).export_text(styles=False)
    assert "alarm log (time into the recording)" in text and "+0:12:34" in text
    live = dataclasses.replace(rec, replay=False, source_label="LIVE - mqtt")
    a = live.alarm_log[0]
    text = _screen(live, 160, 48).export_text(styles=False)
    assert time.strftime("%H:%M:%S", time.localtime(a.time)) in text and "+0:12:34" not in text


def test_a_simulated_devices_bed_is_marked_on_its_tile_and_in_its_one_bed_view():
    snap = _snap()
    tiles = (dataclasses.replace(snap.tiles[0], simulated=True), *snap.tiles[1:])
    text = _screen(dataclasses.replace(snap, tiles=tiles), 160, 48).export_text(styles=False)
    assert text.count(" SIM") == 1  # bed01's tile only
    one = dataclasses.replace(snap, tiles=tiles, focus="bed01")
    assert "SIMULATED DEVICE, not a patient" in _screen(one, 160, 48).export_text(styles=False)


def test_a_station_shows_other_workers_beds_with_their_alarms_only():
    """A NATS central station (--station) shows beds another worker judges: who judges each, its alarms, no trace
    or verdict of its own; a bed whose partition has no owner says so in red."""
    snap = _snap(2, alarms=False)
    empty = np.zeros(0, np.float32)
    remote = (Tile("bed07", None, empty, None, 0.35, 0, 0, _alarm("bed07", Priority.HIGH), 1,
                   alarms=(_alarm("bed07", Priority.HIGH),), remote=True, judged_by="ward-b"),
              Tile("bed08", None, empty, None, 0.35, 0, 0, None, 0, remote=True, judged_by="ward-b"),
              Tile("bed09", None, empty, None, 0.35, 0, 0, None, 0, remote=True, judged_by=None))
    snap = dataclasses.replace(snap, tiles=snap.tiles + remote)
    text = _screen(snap, 160, 48).export_text(styles=False)
    assert "bed07" in text and "@ward-b" in text and "HIGH" in text
    assert "judged by ward-b: no open alarm" in text
    assert "NO WORKER" in text and "no worker judges this bed" in text
    assert "bed07   --- bpm beat ok" not in text and "ABN" not in text.split("bed07")[1][:40]  # no verdict of its own


def test_a_learning_bed_shows_its_ventricular_beats_per_minute_without_a_verdict():
    t = _snap(2, alarms=False).tiles
    learning = dataclasses.replace(t[0], learning=0.46, per_min={"V": 7, "S": 0, "O": 0, "A": 0})
    quiet = dataclasses.replace(t[1], learning=0.46, per_min={"V": 0, "S": 0, "O": 0, "A": 0})
    snap = dataclasses.replace(_snap(2, alarms=False), tiles=(learning, quiet))
    text = _screen(snap, 160, 30).export_text(styles=False)
    assert "LEARNING  46%  V 7/min  beats 100" in text
    assert "LEARNING  46%  beats 101" in text  # no ventricular beat: no count
    assert "ABN" not in text and "loss" not in text  # no verdict shown while learning


def test_a_recordings_alarm_log_is_in_the_order_things_happened_in_it():
    """A couplet decided after the VT it led into (the beat typer lags the VT watch) was listed above the VT with an
    earlier time: the log of a recording is ordered by each alarm's place in it, newest first."""
    vt = dataclasses.replace(_alarm("v131l", Priority.HIGH, "ventricular tachycardia"), record_s=58.0, time=2.0)
    couplet = dataclasses.replace(_alarm("v131l", Priority.LOW, "ventricular couplet"), record_s=57.0, time=3.0)
    snap = dataclasses.replace(_snap(), alarm_log=(vt, couplet))
    text = _screen(snap, 160, 48).export_text(styles=False)
    assert text.index("+0:00:58") < text.index("+0:00:57")


def _lethal(p, cond, t=1_700_000_000.0, state=AlarmState.ACTIVE):
    return Alarm(f"{p}:{cond}", p, AlarmKind.PHYSIOLOGICAL, cond, Priority.HIGH, state, t, "msg")


def test_a_bed_in_a_lethal_rhythm_is_never_hidden_behind_quiet_beds():
    """12 beds on 80x24, where 6 fit: bed 10's asystole and bed 11's VT are shown (they take the places of quiet beds,
    the ward's order kept), and a hidden bed's audible alarm is named in the footer."""
    base = _snap(12, alarms=False)
    tiles = list(base.tiles)
    for k, cond in ((9, "asystole"), (10, "ventricular tachycardia")):
        a = _lethal(tiles[k].patient, cond)
        tiles[k] = dataclasses.replace(tiles[k], alarm=a, alarms=(a,))
    text = _screen(dataclasses.replace(base, tiles=tuple(tiles)), 80, 24).export_text(styles=False)
    assert "!! ASYSTOLE !!" in text and "!! VENTRICULAR TACHYC" in text
    assert "bed10" in text and "bed11" in text and "bed12" not in text
    assert text.index("bed10") < text.index("bed11")  # the ward's order
    assert "bed10" in text and "10:" not in text  # beds past the ninth have no digit key (n/p reach them)
    # every bed shown has an alarm or comes first in the ward; one more HIGH than there is room for is named below
    many = [dataclasses.replace(t, alarm=(a := _lethal(t.patient, "asystole")), alarms=(a,)) for t in base.tiles]
    text = _screen(dataclasses.replace(base, tiles=tuple(many)), 80, 24).export_text(styles=False)
    assert "with alarms (n/p): bed" in text and "HIGH asystole" in text.split("with alarms")[1]


def test_the_banner_and_the_alarm_line_name_the_same_most_serious_rhythm():
    """VT raised first, VF later, both on: the tile's banner and its alarm line both say VF (not the latest one and
    the other); asystole outranks an extreme bradycardia raised after it."""
    from ecgmon.monitor.alarms import AlarmBook

    for first, second, top in (("ventricular tachycardia", "ventricular fibrillation/flutter",
                                "VENTRICULAR FIBRILLATION/FLUTTER"),
                               ("asystole", "extreme bradycardia", "ASYSTOLE")):
        book = AlarmBook("bed01")
        a1 = _lethal("bed01", first, t=1_700_000_000.0)
        a2 = _lethal("bed01", second, t=1_700_000_010.0)
        book.active.update({a1.condition: a1, a2.condition: a2})
        bed = dataclasses.replace(_snap(1).tiles[0], alarm=book.highest(), alarms=(a1, a2))
        text = _screen(dataclasses.replace(_snap(1), tiles=(bed,)), 120, 30).export_text(styles=False)
        assert f"!! {top} !!" in text and f"HIGH {top.lower()}" in text


def test_the_header_keeps_the_source_state_and_clock_on_a_small_terminal():
    snap = dataclasses.replace(_snap(), source_label="RECORDING - 6 record(s) (a142s, f450s, b124s, t106s ...), "
                                                     "not a live patient [finished]")
    first = _screen(snap, 80, 24).export_text(styles=False).splitlines()[0]
    assert "RECORDING" in first and "[finished]" in first and "42 s" in first and "…" in first


def test_a_replays_header_says_how_far_into_the_recording_it_has_come():
    """The alarm log of a replay or recording is timed by places in it (+h:mm:ss) and at full speed the recording runs
    far ahead of the wall clock: the header said "55 s" above alarms at +0:03:28 (a newcomer, session 30).  It now says
    both, each with its word (a second newcomer read "+0:07:20 played" as how much had been played); a live source
    keeps the running time alone."""
    snap = _snap(n=2)
    snap = dataclasses.replace(snap, tiles=tuple(dataclasses.replace(t, fs=250.0, end=250 * (208 - k))
                                                 for k, t in enumerate(snap.tiles)))
    first = _screen(snap, 160, 48).export_text(styles=False).splitlines()[0]
    assert "at +0:03:28 of the recording, running 42 s" in first, first
    live = _screen(dataclasses.replace(snap, replay=False), 160, 48).export_text(styles=False).splitlines()[0]
    assert "recording" not in live and live.rstrip().endswith("running 42 s"), live


def test_the_bell_rings_for_each_audible_alarm_and_repeats_while_a_high_one_is_unacknowledged():
    from ecgmon.monitor.app import HIGH_BELL_S, Bell

    quiet = _snap(alarms=False)
    bell = Bell()
    assert not bell.due(quiet, 0.0)
    low = dataclasses.replace(quiet, tiles=(dataclasses.replace(quiet.tiles[0], alarms=(
        _alarm("bed01", Priority.LOW, "ventricular couplet"),)), *quiet.tiles[1:]))
    assert not bell.due(low, 1.0)  # LOW: shown, not sounded
    high = _lethal("bed01", "asystole")
    on = dataclasses.replace(quiet, tiles=(dataclasses.replace(quiet.tiles[0], alarms=(high,)), *quiet.tiles[1:]))
    assert bell.due(on, 2.0)  # raised: rings
    assert not bell.due(on, 3.0)
    assert bell.due(on, 2.0 + HIGH_BELL_S)  # still unacknowledged: again
    acked = dataclasses.replace(quiet, tiles=(dataclasses.replace(quiet.tiles[0], alarms=(
        dataclasses.replace(high, state=AlarmState.ACKNOWLEDGED),)), *quiet.tiles[1:]))
    assert not bell.due(acked, 2.0 + 3 * HIGH_BELL_S)
    medium = _alarm("bed02", Priority.MEDIUM, "pause")
    two = dataclasses.replace(acked, tiles=(acked.tiles[0], dataclasses.replace(quiet.tiles[1], alarms=(medium,)),
                                            *quiet.tiles[2:]))
    assert bell.due(two, 100.0) and not bell.due(two, 100.0 + 2 * HIGH_BELL_S)  # MEDIUM: once


def test_keys_acknowledge_the_bed_shown_reach_every_bed_and_quit_only_on_a_second_q():
    from ecgmon.monitor.app import NOTICE_S, QUIT_CONFIRM_S, KeyState

    class Ward:  # what the keys act on (the Controls protocol): the calls recorded
        def __init__(self, n):
            self.beds = {f"bed{i:02d}": None for i in range(1, n + 1)}
            self.acked: list[str | None] = []

        def acknowledge(self, patient=None):
            self.acked.append(patient)

        def relearn(self, patient=None):
            return []

    ward, keys = Ward(12), KeyState()
    assert not keys.press("a", ward, now=0.0) and ward.acked == [None]  # overview: every bed's
    keys.press("3", ward, now=1.0)
    keys.press("a", ward, now=2.0)
    assert keys.focus == "bed03" and ward.acked[-1] == "bed03" and "bed03" in keys.notice
    keys.expire(2.0 + NOTICE_S - 0.5)
    assert "acknowledged" in keys.notice
    keys.expire(2.0 + NOTICE_S + 0.5)  # gone: an old "acknowledged" must not stand over alarms raised since
    assert keys.notice == ""
    for _ in range(8):
        keys.press("n", ward, now=3.0)
    assert keys.focus == "bed11"  # past the ninth bed
    keys.press("p", ward, now=3.0)
    assert keys.focus == "bed10"
    assert not keys.press("q", ward, now=10.0) and "q again" in keys.notice
    keys.expire(10.0 + QUIT_CONFIRM_S + 0.5)
    assert keys.notice == ""  # the prompt goes: the footer's alarms come back
    assert not keys.press("q", ward, now=10.0 + QUIT_CONFIRM_S + 1)  # too late: asks again
    assert keys.press("q", ward, now=10.0 + QUIT_CONFIRM_S + 2)
    keys.press("0", ward, now=20.0)
    assert not keys.press("q", ward, now=21.0) and not keys.press("x", ward, now=21.5)
    assert not keys.press("q", ward, now=22.0)  # another key in between: asks again


def test_a_rate_from_the_second_lead_says_so_on_the_tile_and_in_the_one_bed_view():
    """While a bed's first lead cannot be read its tile shows the second lead's rate (Monitor.heart_rate_lead), and
    says which: a number alone would pass for lead II's."""
    snap = _snap()
    second = dataclasses.replace(snap.tiles[3], heart_rate=88.0, hr_second_lead=True)
    snap = dataclasses.replace(snap, tiles=(*snap.tiles[:3], second, *snap.tiles[4:]))
    text = _screen(snap, 160, 48).export_text(styles=False)
    assert text.count("(lead 2)") == 1 and "88 bpm (lead 2)" in text
    focus = _screen(dataclasses.replace(snap, focus=second.patient), 160, 48).export_text(styles=False)
    assert "88 bpm (from the second lead: the first cannot be read)" in focus


def test_a_trace_with_missing_samples_is_drawn_with_a_gap():
    """NaN samples in a bed's strip (a device's nulls, a recording's gap) draw nothing there; the console crashed on
    them ('cannot convert float NaN to integer', CinC a279l under tmux, session 25). All missing: a blank trace."""
    from ecgmon.monitor.console import braille

    x = np.sin(np.arange(1000) / 20.0)
    x[500:] = np.nan
    lines = braille(x, 40, 3)
    assert len(lines) == 3 and all(len(line) == 40 for line in lines)
    right = "".join(line[22:] for line in lines)
    assert set(right) <= {chr(0x2800)} and any(c != chr(0x2800) for line in lines for c in line[:18])
    assert braille(np.full(1000, np.nan), 40, 3) == [" " * 40] * 3

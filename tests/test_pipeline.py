"""End to end in process: replay -> segmentation -> batched scoring with the shipped model -> alarms."""

import asyncio
import dataclasses
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import Lines, Recorder, add_beats, play_records

from ecgmon.core.messages import AlarmState, Condition, Priority
from ecgmon.evaluation.evaluator import Evaluator
from ecgmon.models.scorer import losses
from ecgmon.monitor.alarms import PHYSIOLOGICAL_ADVISORIES, read_journal
from ecgmon.monitor.app import build, run_headless
from ecgmon.monitor.config import MonitorConfig
from ecgmon.monitor.settings import PipelineConfig

pytestmark = pytest.mark.slow


def _cfg(tmp_path, **kw):
    pipeline = PipelineConfig(**{k: kw.pop(k) for k in ("max_beats", "queue_size", "max_batch", "shed_when_full")
                                 if k in kw})
    return dataclasses.replace(MonitorConfig(speed=None, ui=False, journal=tmp_path / "alarms.jsonl",
                                             device="cpu", pipeline=pipeline, abnormal_rate=None), **kw)


@pytest.fixture()
def monitors():
    made = []
    yield made
    for b in made:
        b.monitor.close()


def _build(monitors, cfg, ckpt, **kw):
    b = build(cfg, ckpt=ckpt, **kw, truth=Evaluator)
    monitors.append(b)
    return b


@pytest.mark.asyncio
async def test_whole_test_split_streams_with_verdicts_matching_the_offline_model(tmp_path, monitors, shipped, split):
    out = Lines()
    b = _build(monitors, _cfg(tmp_path), shipped, out=out)
    summary = await asyncio.wait_for(run_headless(b), 300)
    assert summary["beats_expected"] == len(split.test)
    assert summary["beats_matched"] >= 0.95 * len(split.test)
    assert summary["agreement_offline"] >= 0.95
    # streaming accuracy close to the offline model's on the same split
    test = split.part("test")
    offline_acc = float(np.mean((losses(shipped.model, test.x) > shipped.threshold) == (test.y != 1)))
    assert abs(summary["accuracy"] - offline_acc) <= 0.03
    assert summary["latency_p99_ms"] is not None and summary["beats_per_s"] > 0
    rows = out.rows()
    beats = [r for r in rows if r["type"] == "beat"]
    assert len(beats) == summary["beats"]
    assert {"patient", "time", "loss", "threshold", "verdict"} <= beats[0].keys()
    assert rows[-1]["type"] == "summary"
    journal, bad = read_journal(tmp_path / "alarms.jsonl")
    assert bad == 0 and len(journal) == summary["alarms"] > 0
    # every journalled alarm transition was also written to the output, in the same order
    assert [r["id"] + r["state"] for r in rows if r["type"] == "alarm"] == [j["id"] + j["state"] for j in journal]


@pytest.mark.asyncio
async def test_injected_abnormal_runs_raise_run_advisories_never_high(tmp_path, monitors, shipped):
    rec = Recorder()
    b = _build(monitors, _cfg(tmp_path, patients=4), shipped, extra_sinks=[rec])
    await asyncio.wait_for(b.monitor.run(b.source), 300)
    runs = [a for a in rec.alarms if a.condition in (Condition.ABNORMAL_RUN, Condition.VENT_RUN, Condition.SVT_RUN)]
    assert runs, "the replay contains runs of abnormal beats; at least one run advisory must be raised"
    # HIGH is for the lethal alarms only: no advisory of the abnormal-beat policy is HIGH
    assert all(a.priority < Priority.HIGH for a in rec.alarms if a.condition in PHYSIOLOGICAL_ADVISORIES)
    # every judged beat was typed, and the bed's counts add up to the typed abnormal beats
    assert len(rec.typed) == sum(1 for s in rec.scores if s.learning is None)
    counts = b.monitor.summary()["ectopy"]
    assert sum(sum(c["total"].values()) for c in counts.values()) == sum(t.kind.short != "N" for t in rec.typed)


@pytest.mark.asyncio
async def test_cancellation_shuts_down_cleanly_and_leaves_a_complete_journal(tmp_path, monitors, shipped):
    cfg = _cfg(tmp_path, speed=5.0, loop=True)
    rec = Recorder()
    b = _build(monitors, cfg, shipped, extra_sinks=[rec])
    mon = b.monitor
    task = asyncio.create_task(mon.run(b.source))
    while len(rec.scores) < 100:  # running, and alarms are being journalled
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    _rows, bad = read_journal(tmp_path / "alarms.jsonl")
    assert bad == 0
    assert mon.stats.beats > 0


@pytest.mark.asyncio
async def test_max_beats_and_duration_stop_a_run(tmp_path, monitors, shipped):
    cfg = _cfg(tmp_path, max_beats=50)
    b = _build(monitors, cfg, shipped)
    await asyncio.wait_for(b.monitor.run(b.source), 120)
    assert b.monitor.stats.beats == 50  # exactly: beats beyond it in the last batch are not judged
    cfg = _cfg(tmp_path, speed=1.0, loop=True)
    b = _build(monitors, cfg, shipped)
    mon = b.monitor
    t0 = asyncio.get_running_loop().time()
    await asyncio.wait_for(mon.run(b.source, duration=5.0), 30)
    assert 4.9 <= asyncio.get_running_loop().time() - t0 < 10
    assert 0 < mon.stats.beats < 200  # real-time pace: 8 beds for 5 s


@pytest.mark.asyncio
async def test_overload_sheds_counts_and_alarms(tmp_path, monitors, shipped):
    cfg = _cfg(tmp_path, queue_size=4, max_batch=2, shed_when_full=True)
    rec = Recorder()
    b = _build(monitors, cfg, shipped, extra_sinks=[rec])
    mon = b.monitor
    await asyncio.wait_for(mon.run(b.source), 300)
    s = mon.summary()
    assert s["shed"] > 0
    assert s["beats"] + s["shed"] == s["segmented"]  # every segmented beat is judged or counted as shed
    conds = [(a.condition, str(a.state)) for a in rec.alarms if a.patient == "monitor"]
    assert ("monitor overload", "active") in conds


@pytest.mark.asyncio
async def test_looped_replay_keeps_each_bed_continuous_and_matched(tmp_path, monitors, shipped):
    b = _build(monitors, _cfg(tmp_path, loop=True, max_beats=2600), shipped)
    await asyncio.wait_for(b.monitor.run(b.source), 300)
    s = b.monitor.summary()
    assert s["input"]["passes"] >= 2
    # the console says a new pass began (each bed's beats, and its rate, change there: it must not look like a
    # rhythm change of the 'patient')
    assert b.source.health().state.startswith(f"playing pass {s['input']['passes'] + 1}")
    # ground truth stays aligned after the first pass: nearly every true beat seen is matched
    reached = s["beats_expected"] - s["beats_pending"]
    assert reached > 2400 and s["beats_matched"] >= 0.93 * reached
    # nothing piles up: what is pending is what was still queued when the run stopped
    assert s["beats_pending"] <= s["queued"] + s["in_flight"] + s["not_judged"] + 50
    assert s["agreement_offline"] >= 0.98


def test_a_device_clock_ahead_gives_no_end_to_end_figure_but_is_counted(tmp_path, monitors, shipped):
    """End-to-end latency is the verdict's wall time minus the device's packet end (its t0): a device whose clock
    runs ahead (or a simulator faster than real time) would give negative latencies, which are no figure: counted
    in ``e2e_clock_ahead`` instead (newcomer: negative e2e with simulated clocks 5x fast)."""
    from test_qrs import synth

    from ecgmon.core.messages import Chunk

    b = _build(monitors, _cfg(tmp_path), shipped)
    mon = b.monitor
    fs, n = 250.0, 62
    x, _ = synth(fs, np.full(30, 0.8), seed=4)
    now = time.time()
    beats = {"sync": [], "ahead": []}
    for i in range(0, len(x) - n, n):
        for bed, t0 in (("sync", now - len(x) / fs), ("ahead", now + 600.0)):
            beats[bed] += mon.segment(Chunk(bed, fs, t0 + i / fs, x[i:i + n].astype(np.float32), start=i))
    assert beats["sync"] and beats["ahead"]
    all_beats = beats["sync"] + beats["ahead"]
    mon.judge(all_beats, mon.scorer.score_batch(np.stack([bt.samples for bt in all_beats])))
    s = mon.summary()
    assert s["e2e_clock_ahead"] == len(beats["ahead"])
    assert len(mon.stats.e2e) == len(beats["sync"]) and min(mon.stats.e2e) >= 0
    assert s["e2e_p50_ms"] > 0


def test_no_heart_rate_is_shown_while_the_signal_fibrillates(tmp_path):
    """Sinus rhythm, then ventricular fibrillation to the end of a recording: the detector goes on counting the
    fibrillatory waves as 'beats', but the tile and the summary show no rate ('---') under the VF/flutter alarm,
    and the sinus part showed its rate."""
    import wfdb
    from helpers import play_records
    from test_vf import sinus, vf_wave

    from ecgmon.monitor.app import snapshot

    fs = 250.0
    x = np.concatenate([sinus(fs, 20.0, 75, seed=1), vf_wave(fs, 20.0, seed=2)])
    with warnings.catch_warnings():  # wfdb's own use of deprecated pandas calls
        warnings.simplefilter("ignore")
        for name, sig in (("vfrec", x), ("sinus", sinus(fs, 20.0, 75, seed=1))):
            wfdb.wrsamp(name, fs=fs, units=["mV"], sig_name=["MLII"], p_signal=sig[:, None], fmt=["16"],
                        adc_gain=[1000.0], baseline=[0], write_dir=str(tmp_path))
    b, rec = play_records(tmp_path, [tmp_path / "vfrec", tmp_path / "sinus"])
    assert any(a.condition is Condition.VFIB and a.state.value == "active" for a in rec.alarms)
    st = b.monitor.beds["vfrec"]
    assert st.segmenter.heart_rate is not None  # the waves are still counted by the QRS detector ...
    tiles = {t.patient: t for t in snapshot(b).tiles}
    assert tiles["vfrec"].heart_rate is None  # ... but no rate is shown under VF
    assert b.monitor.summary()["hr_bpm"]["vfrec"] is None
    assert 70 <= tiles["sinus"].heart_rate <= 80 and 70 <= b.monitor.summary()["hr_bpm"]["sinus"] <= 80


def test_malformed_side_topic_messages_and_devices_without_a_bed_are_refused_counted_and_visible(
        tmp_path, monitors, shipped):
    """Control and labels topics take any bytes: a command that is a list, JSON nested past Python's recursion
    limit, a payload over the size limit, limits of the wrong type, labels with a NaN time are refused and counted
    per device and reason; none stops the monitor (a list command and deep nesting crashed it, every bed with it).
    A device whose every packet is refused has no bed: the monitor's own 'bad input' alarm names it, and the
    summary's input breaks rejections down by device and reason."""
    import json

    from ecgmon.core.payload import encode
    from ecgmon.monitor.ingress import Ingress

    b = _build(monitors, _cfg(tmp_path), shipped)
    mon = b.monitor
    ing = Ingress(topic="ecg/+/samples", labels_topic="ecg/+/labels", control_topic="ecg/+/control")
    ing.listener = mon
    x = (0.1 * np.sin(np.arange(62) / 5)).astype(np.float32)
    for c in ing.handle("ecg/d1/samples", encode("json", "d1", 0, 250.0, time.time() - 0.3, x)):
        mon.segment(c)
    deep = ("[" * 30000 + "]" * 30000).encode()
    bad = [("ecg/d1/control", json.dumps({"cmd": ["relearn"]}).encode(), "bad-control"),
           ("ecg/d1/control", deep, "bad-control"),
           ("ecg/d1/control", b"[" * 70000, "control-too-large"),
           ("ecg/d1/control", json.dumps({"cmd": "limits", "low": "x", "high": [1]}).encode(),
            "control-limits-refused"),
           ("ecg/d1/labels", deep, "bad-labels"),
           ("ecg/d1/labels", b'{"beats": [[NaN, "N", 0]]}', "bad-labels"),
           ("ecg/d1/labels", json.dumps({"beats": [[1.0, {"a": 1}, 0]]}).encode(), "bad-labels")]
    for topic, payload, _ in bad:
        assert ing.handle(topic, payload) == []
    want: dict[tuple[str, str], int] = {}
    for _, _, reason in bad:
        want[("d1", reason)] = want.get(("d1", reason), 0) + 1
    assert dict(ing.rejected) == want
    assert Condition.BAD_INPUT in mon.beds["d1"].book.active
    # a device none of whose packets is accepted (fs as a string): no bed, but named on the monitor's alarm
    ghost = json.dumps({"device": "ghost", "seq": 0, "fs": "250", "t0": time.time(), "samples": [0.1] * 62})
    assert ing.handle("ecg/ghost/samples", ghost.encode()) == []
    assert "ghost" not in mon.beds
    alarm = mon.monitor_book.active[Condition.BAD_INPUT]
    assert "from ghost" in alarm.message and "bad-fs" in alarm.message
    # its samples refused, its patient is not monitored: MEDIUM, not only the LOW bad input (a newcomer, session 40);
    # a device that sent only bad labels or commands is no such patient
    refused = mon.monitor_book.active[Condition.DEVICE_REFUSED]
    assert refused.priority is Priority.MEDIUM and "from ghost" in refused.message
    assert ing.handle("ecg/talker/control", b"[1]") == []
    assert "talker" in mon.monitor_book.active[Condition.BAD_INPUT].message
    assert "talker" not in mon.monitor_book.active[Condition.DEVICE_REFUSED].message
    s = ing.summary()  # a source's summary is the monitor's "input"
    assert s["rejected_by"]["ghost"] == {"bad-fs": 1} and s["rejected_by"]["d1"]["bad-control"] == 2
    # every reason on the bed's alarm, not only the first (a second one brings its message up to date)
    msg = mon.beds["d1"].book.active[Condition.BAD_INPUT].message
    assert all(r in msg for r in ("bad-control", "control-too-large", "control-limits-refused", "bad-labels"))
    # a refused command is said as one, not as malformed data (session 41's left item)
    assert "a command refused" in msg and "20-300 bpm" in msg and "not JSON" in msg
    # a second device without a bed is named too (the alarm said only the first one's name before); one that gets a
    # bed is no longer named, and the alarm clears when none is left
    t0 = json.dumps({"device": "ghost2", "seq": 0, "fs": 250.0, "t0": time.time() * 1000, "samples": [0.1] * 62})
    assert ing.handle("ecg/ghost2/samples", t0.encode()) == []
    alarm = mon.monitor_book.active[Condition.BAD_INPUT]
    assert "ghost (bad-fs)" in alarm.message and "ghost2 (t0-not-seconds)" in alarm.message
    for name in ("ghost", "ghost2", "talker"):
        for c in ing.handle(f"ecg/{name}/samples", encode("json", name, 0, 250.0, time.time() - 0.3, x)):
            mon.segment(c)
    assert Condition.BAD_INPUT not in mon.monitor_book.active
    assert Condition.DEVICE_REFUSED not in mon.monitor_book.active


def test_a_flood_of_new_device_ids_past_the_limit_is_refused_named_and_said_once_a_second(tmp_path, monitors, shipped):
    """A device whose id changes at every boot, past --max-devices: its packets are refused (too-many-devices), the
    beds taken go on, and the monitor's bad-input alarm names the first devices and counts the rest; a new id that
    changes only the count is said at most once a second (each was a journal line: 600 ids, 600 lines)."""
    from ecgmon.core.payload import encode
    from ecgmon.monitor.ingress import Ingress

    seen = Recorder()
    b = _build(monitors, _cfg(tmp_path), shipped, extra_sinks=[seen])
    mon = b.monitor
    ing = Ingress(topic="ecg/+/samples", labels_topic=None, max_devices=2)
    ing.listener = mon
    x = (0.1 * np.sin(np.arange(62) / 5)).astype(np.float32)
    for name in ("bed1", "bed2", *(f"boot{k:04d}" for k in range(300))):
        for c in ing.handle(f"ecg/{name}/samples", encode("float32", name, 0, 250.0, time.time() - 0.3, x)):
            mon.segment(c)
    assert set(mon.beds) == {"bed1", "bed2"}
    alarm = mon.monitor_book.active[Condition.BAD_INPUT]
    assert "boot0000 (too-many-devices)" in alarm.message and "more" in alarm.message, alarm.message
    said = [a for a in seen.alarms if a.patient == "monitor" and a.condition is Condition.BAD_INPUT]
    assert 5 <= len(said) <= 10, len(said)  # the first five names, then once a second at most
    # the count held back is said with a refusal a second on, whatever its reason (a reviewer, session 40: it was
    # said only with a new device or reason, and stayed stale)
    time.sleep(1.05)
    ing.handle("ecg/boot0299/samples", encode("float32", "boot0299", 1, 250.0, time.time() - 0.3, x))
    assert "and 295 more" in mon.monitor_book.active[Condition.BAD_INPUT].message
    refused = mon.monitor_book.active[Condition.DEVICE_REFUSED]  # patients not monitored: MEDIUM
    assert refused.priority is Priority.MEDIUM and "boot0000" in refused.message and "more" in refused.message


def test_a_refused_device_is_said_at_once_behind_five_devices_with_bad_commands(tmp_path, monitors, shipped):
    """Five devices without a bed sent bad commands (named first in the LOW bad input); a sixth, sorting after them,
    has its samples refused: its MEDIUM 'device refused' comes at once (the count of the LOW alarm alone is said at
    most once a second, and with it this one was held back until another new reason came)."""
    import json

    from ecgmon.monitor.ingress import Ingress

    b = _build(monitors, _cfg(tmp_path), shipped)
    mon = b.monitor
    ing = Ingress(topic="ecg/+/samples", labels_topic=None, control_topic="ecg/+/control")
    ing.listener = mon
    for k in range(5):
        assert ing.handle(f"ecg/a{k}/control", b"[1]") == []
    assert Condition.DEVICE_REFUSED not in mon.monitor_book.active
    bad = json.dumps({"device": "z9", "seq": 0, "fs": "250", "t0": time.time(), "samples": [0.1] * 62})
    assert ing.handle("ecg/z9/samples", bad.encode()) == []
    assert "z9" in mon.monitor_book.active[Condition.DEVICE_REFUSED].message


def test_a_packet_loss_alarm_says_when_the_device_also_sent_malformed_packets(tmp_path, monitors, shipped):
    """A device whose every eighth packet is malformed: the refused packets leave gaps in its stream, bridged, and the
    packet-loss alarm says that malformed packets are among the lost (newcomer, session 24: it said only 'check the
    network'); a device that loses packets in transit alone gets no such words."""
    from test_vf import sinus

    from ecgmon.core.payload import encode
    from ecgmon.monitor.ingress import Ingress

    b = _build(monitors, _cfg(tmp_path), shipped)
    mon = b.monitor
    ing = Ingress(topic="ecg/+/samples", labels_topic=None)
    ing.listener = mon
    fs, n = 250.0, 62
    x = sinus(fs, 40.0, 70, seed=2).astype(np.float32)
    t0 = time.time() - 40.0
    for seq, i in enumerate(range(0, len(x) - n + 1, n)):
        for dev in ("bad", "lossy"):
            if seq % 8 == 7:
                if dev == "bad":
                    assert ing.handle("ecg/bad/samples", b'{"seq": ' + str(seq).encode() + b', "fs": 250') == []
                continue  # "lossy": the packet never arrives
            for c in ing.handle(f"ecg/{dev}/samples", encode("json", dev, seq, fs, t0 + i / fs, x[i:i + n])):
                mon.segment(c)
    loss = {p: st.book.active.get(Condition.PACKET_LOSS) for p, st in mon.beds.items()}
    assert loss["bad"] is not None and "malformed packets" in loss["bad"].message
    assert loss["lossy"] is not None and "malformed" not in loss["lossy"].message
    assert Condition.BAD_INPUT in mon.beds["bad"].book.active


def _lossy_link(tmp_path, monitors, *, bridge_s: float, lost_s: float = 0.25, drop: float = 0.1, seconds=240.0,
                until_s: float = float("inf")):
    """MIT-BIH 205x (shipped) as a live device: 0.25 s packets, a share of them lost in transit (seeded), each chunk
    after a loss carrying reset and the samples missing, as DeviceStream releases them. The bed's beats, the
    reference QRS in the samples that arrived (none within 0.1 s of a lost one), the monitor, the alarms it raised
    and how many gaps were longer than ``bridge_s``."""
    import wfdb

    from ecgmon.core.messages import Chunk

    rec = Path(__file__).parent / "data" / "mitdb" / "205x"
    cfg = dataclasses.replace(_cfg(tmp_path), source="record", records=(rec,),
                              pipeline=PipelineConfig(bridge_s=bridge_s))
    seen = Recorder()
    b = _build(monitors, cfg, None, out=Lines(), extra_sinks=[seen])
    mon = b.monitor
    with warnings.catch_warnings():  # wfdb's own use of deprecated pandas calls
        warnings.simplefilter("ignore")
        r, ann = wfdb.rdrecord(str(rec)), wfdb.rdann(str(rec), "atr")
    fs = float(r.fs)
    x = r.p_signal[: int(seconds * fs), 0].astype(np.float32)
    n, per_loss = int(0.25 * fs), max(1, round(lost_s / 0.25))
    rng = np.random.default_rng(3)
    kept = np.zeros(len(x), bool)
    beats, missing, i = [], 0, 0
    long_gaps = 0  # gaps longer than bridge_s: the bed starts again there
    t0 = time.time() - len(x) / fs
    while i + n <= len(x):
        if 10 * fs < i < until_s * fs and rng.random() < drop:  # a loss of per_loss packets in a row
            missing += per_loss * n
            i += per_loss * n
            continue
        kept[i:i + n] = True
        long_gaps += missing > bridge_s * fs
        beats += mon.segment(Chunk("bed", fs, t0 + i / fs, x[i:i + n], start=i, reset=missing > 0, missing=missing))
        missing, i = 0, i + n
    w = int(0.1 * fs)
    ref = np.array([s for s, sym in zip(ann.sample, ann.symbol, strict=True)
                    if sym in "NLRBAaJSVrFejnE/fQ" and w <= s < len(x) - w and kept[s - w:s + w].all()])
    return beats, ref, mon, seen, long_gaps


def test_packets_lost_in_transit_are_bridged_and_the_detector_keeps_the_heart(tmp_path, monitors):
    """A link that loses 1 packet in 10 (0.25 s each): the gaps are bridged, the QRS detector goes on, no
    signal-loss alarm sounds; beats next to a gap get no verdict, and no rate is taken across one. Before, every
    gap restarted the detector (2 s to learn the signal again) and raised signal loss: a third of the beats lost."""
    fs = 360.0
    tol = round(0.15 * fs)

    def found(beats, ref):
        idx = np.sort([bt.index for bt in beats])
        j = np.clip(np.searchsorted(idx, ref), 1, len(idx) - 1)
        return float(np.mean(np.minimum(abs(idx[j] - ref), abs(idx[j - 1] - ref)) <= tol))

    beats, ref, mon, seen, long_gaps = _lossy_link(tmp_path, monitors, bridge_s=0.5)
    st = mon.beds["bed"]
    assert st.bridged > 50 and len(ref) > 250
    assert found(beats, ref) >= 0.98, found(beats, ref)
    # signal loss only where more than bridge_s was lost at once (a few runs of 3 lost packets)
    raised = [a for a in seen.alarms if a.condition is Condition.SIGNAL_LOSS and a.state.value == "active"]
    assert len(raised) == long_gaps < 10
    assert mon.summary()["bridged"] == {"bed": st.bridged}
    near = [bt for bt in beats if mon._near_bridge(st, bt.index, bt.rr_prev_s)]
    assert near and all(bt.noisy for bt in near)  # what a gap may have hidden is not judged
    assert sum(bt.noisy for bt in beats) < 0.4 * len(beats)
    hr = [bt.hr_bpm for bt in beats[len(beats) // 2:] if bt.hr_bpm is not None]
    assert 80 <= np.median(hr) <= 95  # 205's sinus rate (about 88 bpm): no interval across a gap pulls it down
    assert not {a.condition for a in seen.alarms} & {Condition.EXTREME_BRADY, Condition.PAUSE, Condition.ASYSTOLE}
    # the link's state is visible: a LOW technical alarm says packets are lost (and verdicts with them)
    loss = [a for a in seen.alarms if a.condition is Condition.PACKET_LOSS]
    assert loss and loss[0].priority is Priority.LOW and "of the last 60 s lost" in loss[0].message
    _, _, _, seen_ok, _ = _lossy_link(tmp_path / "ok", monitors, bridge_s=0.5, until_s=80)  # then a clean link
    assert [a.state.value for a in seen_ok.alarms if a.condition is Condition.PACKET_LOSS] == ["active", "cleared"]

    old, ref_old, _, seen_old, _ = _lossy_link(tmp_path / "old", monitors, bridge_s=0.0)  # every gap restarts the bed
    assert found(old, ref_old) < 0.85
    assert [a for a in seen_old.alarms if a.condition is Condition.SIGNAL_LOSS]
    # a second lost at once: longer than bridge_s, the bed starts again and says so
    _, _, mon_long, seen_long, _ = _lossy_link(tmp_path / "long", monitors, bridge_s=0.5, lost_s=1.0, drop=0.03)
    assert mon_long.beds["bed"].bridged == 0
    assert [a for a in seen_long.alarms if a.condition is Condition.SIGNAL_LOSS]


def test_the_t_wave_of_a_qrs_lost_in_a_gap_is_no_beat(tmp_path, monitors):
    """A packet that held a QRS is lost; the T wave after it, in the next packet, has no QRS before it for the
    T-wave rule: it was counted as a beat (a false beat at every such loss, the shown rate too high). Now the
    detector judges it against the QRS that was due in the gap (QRSDetector.bridge)."""
    from ecgmon.core.messages import Chunk

    fs, n = 250.0, 62  # 0.248 s packets
    rng = np.random.default_rng(5)
    r_t = 0.6 + np.arange(90) * 1.0  # 60 bpm
    t = np.arange(int(92 * fs)) / fs
    x = 0.02 * rng.standard_normal(len(t))
    for rt in r_t:  # a QRS and a sharp T wave 0.32 s after it (after the packet that holds the QRS)
        u = t - rt
        x += np.exp(-0.5 * (u / 0.012) ** 2) - 0.25 * np.exp(-0.5 * ((u - 0.027) / 0.009) ** 2) \
            + 0.4 * np.exp(-0.5 * ((u - 0.32) / 0.03) ** 2)
    rec = Path(__file__).parent / "data" / "mitdb" / "205x"  # (the monitor's build needs a record; not played)
    b = _build(monitors, dataclasses.replace(_cfg(tmp_path), source="record", records=(rec,)), None, out=Lines())
    mon = b.monitor
    lost = {int(rt * fs) // n for k, rt in enumerate(r_t) if k > 15 and k % 4 == 0}  # every 4th QRS's packet
    beats, missing, t0 = [], 0, time.time() - len(x) / fs
    for p in range(len(x) // n):
        if p in lost:
            missing += n
            continue
        beats += mon.segment(Chunk("syn", fs, t0 + p * n / fs, x[p * n:(p + 1) * n].astype(np.float32),
                                   start=p * n, reset=missing > 0, missing=missing))
        missing = 0
    idx = np.array([bt.index for bt in beats])
    truth = np.round(r_t * fs)
    false = [v for v in idx if np.min(np.abs(truth - v)) > 0.15 * fs]
    arrived = [r for r in truth[16:-2] if int(r) // n not in lost]
    assert mon.beds["syn"].bridged == len(lost) > 15
    assert not false, [round(v / fs, 2) for v in false]  # no T wave after a lost QRS counted
    assert all(np.min(np.abs(idx - r)) <= 0.15 * fs for r in arrived)  # every QRS that arrived found


def test_acknowledging_one_bed_leaves_the_other_beds_alarms_active(tmp_path, monitors, shipped):
    """The one-bed view's acknowledge (KeyState: a) acknowledges that bed's alarms only; the overview's every bed's."""
    from ecgmon.core.messages import Chunk

    b = _build(monitors, _cfg(tmp_path), shipped)
    mon = b.monitor
    for bed in ("b1", "b2"):  # a flat line for 3 s: leads off (technical MEDIUM) on both beds
        for i in range(0, 750, 62):
            mon.segment(Chunk(bed, 250.0, i / 250.0, np.zeros(62, np.float32), start=i, replay=True))
    states = {p: {a.state for a in st.book.active.values()} for p, st in mon.beds.items()}
    assert states == {"b1": {AlarmState.ACTIVE}, "b2": {AlarmState.ACTIVE}}
    mon.acknowledge("b1")
    states = {p: {a.state for a in st.book.active.values()} for p, st in mon.beds.items()}
    assert states == {"b1": {AlarmState.ACKNOWLEDGED}, "b2": {AlarmState.ACTIVE}}
    mon.acknowledge()
    assert {a.state for st in mon.beds.values() for a in st.book.active.values()} == {AlarmState.ACKNOWLEDGED}


def test_a_link_that_loses_most_of_its_packets_is_signal_loss_not_a_bridged_asystole(tmp_path, monitors):
    """Bridging is for a lossy link that still brings most of the ECG: a device that lost 2 packets of every 3 (or
    whose packets were mostly refused) had lines drawn over most of its signal, its asystole and pause timers ran on
    through them, and HIGH asystole and extreme bradycardia were raised over a sinus rhythm.  While over half of the
    last 10 s was lost in transit a gap is signal loss (the bed starts again), and no lethal alarm is raised."""
    _, _, mon, seen, _ = _lossy_link(tmp_path, monitors, bridge_s=1.0, drop=0.67, seconds=90.0)
    raised = {a.condition for a in seen.alarms if a.state is AlarmState.ACTIVE}
    assert Condition.SIGNAL_LOSS in raised
    assert not raised & {Condition.ASYSTOLE, Condition.EXTREME_BRADY, Condition.VFIB, Condition.VTACH}, raised
    _, _, mon, seen, _ = _lossy_link(tmp_path, monitors, bridge_s=1.0, drop=0.1, seconds=90.0)  # 1 in 10: bridged
    assert mon.beds and next(iter(mon.beds.values())).bridged > 10


def test_lethal_alarms_do_not_depend_on_packet_length_or_the_beds_beside(tmp_path):
    """A bed's lethal and rate alarms are a function of its signal alone: the same transitions at the same samples
    whether its device sends 0.1, 0.25 or 1 s packets and whether other beds play beside it (the watch's inputs go
    in the order of the samples they were decided at, LethalWatch's InOrder).  Before, a QRS reached the watch at
    its chunk and the beats' types and VF windows at the next flush of every bed's work: CinC 2015 a345l's pause
    came alone but not with two other beds, t762s's extreme tachycardia with 0.25 s packets but not with 1 s ones.
    A paced patient's loss of capture (asystole, CinC 2015 a670) and sinus rhythm that turns to VF."""
    import wfdb
    from helpers import play_records
    from test_vf import sinus, vf_wave

    from ecgmon.monitor.lethal import PRIORITY

    fs = 250.0
    paced = Path(__file__).parent / "data" / "cinc-paced" / "a670x"
    with warnings.catch_warnings():  # wfdb's own use of deprecated pandas calls
        warnings.simplefilter("ignore")
        wfdb.wrsamp("vfrec", fs=fs, units=["mV"], sig_name=["MLII"], fmt=["16"], adc_gain=[1000.0], baseline=[0],
                    p_signal=np.concatenate([sinus(fs, 20.0, 75, seed=1), vf_wave(fs, 16.0, seed=2),
                                             sinus(fs, 14.0, 150, seed=4)])[:, None], write_dir=str(tmp_path))
    runs = {}
    for name, records, chunk_s in (("alone", [paced], 0.25), ("p0.1", [paced, tmp_path / "vfrec"], 0.1),
                                   ("p0.25", [tmp_path / "vfrec", paced], 0.25),
                                   ("p1", [paced, tmp_path / "vfrec"], 1.0)):
        (tmp_path / name).mkdir()
        _, rec = play_records(tmp_path / name, records, chunk_s=chunk_s)
        runs[name] = sorted((a.patient, a.condition.value, a.state.value, a.beat_index) for a in rec.alarms
                            if a.condition in PRIORITY)
    got = runs["p0.25"]
    assert ("a670x", "asystole", "active") in {g[:3] for g in got}
    assert ("vfrec", "ventricular fibrillation/flutter", "active") in {g[:3] for g in got}
    assert runs["p0.1"] == got and runs["p1"] == got
    assert runs["alone"] == [g for g in got if g[0] == "a670x"]


def test_one_vf_episode_is_one_alarm_until_an_organised_rhythm_returns(tmp_path):
    """Ventricular fibrillation, 6 s of an irregular rhythm the VF detector does not call VF, VF again, then sinus
    rhythm: one VF/flutter alarm, held over the irregular interlude (``vf_episode_s``, 10 s), cleared once the sinus
    rhythm's QRS are clean and regular.  With the episode at 3 s (the alarm's clearing before the hold), the
    interlude clears it and the second stretch of VF raises a second HIGH alarm: VFDB's coarse VF and flutter
    raised 104 alarms for 31 episodes that way.  A VF that turns to asystole (a flat line with noise): the held
    alarm does not hold asystole, which comes when it came without the hold and ends the VF alarm there."""
    import wfdb
    from helpers import play_records
    from test_vf import sinus, vf_wave

    from ecgmon.monitor.lethal import LethalConfig

    fs = 250.0
    irregular = np.concatenate([sinus(fs, 1.0, hr, seed=10 + i) for i, hr in enumerate((60, 110, 75, 130, 65, 120))])
    x = np.concatenate([sinus(fs, 20.0, 75, seed=1), vf_wave(fs, 12.0, seed=2), irregular, vf_wave(fs, 12.0, seed=3),
                        sinus(fs, 20.0, 80, seed=4)])
    flat = 0.02 * np.random.default_rng(3).standard_normal(round(12 * fs))
    y = np.concatenate([sinus(fs, 20.0, 75, seed=1), vf_wave(fs, 12.0, seed=2), flat, sinus(fs, 10.0, 70, seed=5)])
    with warnings.catch_warnings():  # wfdb's own use of deprecated pandas calls
        warnings.simplefilter("ignore")
        for name, sig in (("vfhold", x), ("vfasys", y)):
            wfdb.wrsamp(name, fs=fs, units=["mV"], sig_name=["MLII"], fmt=["16"], adc_gain=[1000.0], baseline=[0],
                        p_signal=sig[:, None], write_dir=str(tmp_path))
    got = {}
    for episode_s in (10.0, 3.0):
        (tmp_path / str(episode_s)).mkdir()
        _, rec = play_records(tmp_path / str(episode_s), [tmp_path / "vfhold", tmp_path / "vfasys"],
                              lethal=LethalConfig(vf_episode_s=episode_s))
        got[episode_s] = [(a.patient, a.condition, a.state.value, a.beat_index / fs) for a in rec.alarms
                          if a.condition in (Condition.VFIB, Condition.ASYSTOLE)]

    def of(episode_s: float, patient: str, cond: Condition) -> list[tuple[str, float]]:
        return [(s, t) for p, c, s, t in got[episode_s] if p == patient and c is cond]

    held, plain = of(10.0, "vfhold", Condition.VFIB), of(3.0, "vfhold", Condition.VFIB)
    assert [s for s, _ in held] == ["active", "cleared"], held
    assert 20.0 < held[0][1] < 26.0 and 50.0 < held[1][1] < 66.0, held  # cleared in the sinus rhythm at the end
    assert [s for s, _ in plain] == ["active", "cleared", "active", "cleared"], plain
    assert 32.0 < plain[1][1] < 38.0, plain  # cleared in the interlude
    asys, asys_plain = of(10.0, "vfasys", Condition.ASYSTOLE), of(3.0, "vfasys", Condition.ASYSTOLE)
    assert asys == asys_plain and asys[0][0] == "active" and 35.0 < asys[0][1] < 39.0, (asys, asys_plain)
    assert of(10.0, "vfasys", Condition.VFIB)[-1] == ("cleared", asys[0][1])  # asystole took over


def test_a_round_with_several_chunks_per_bed_gives_what_one_by_one_gives(tmp_path, monkeypatch):
    """Recordings played at full speed bring several chunks of a bed in a round; joined and segmented as one
    (Monitor.coalesce) they give the same beats, verdicts, beat types and alarm transitions at the same samples as
    one by one: MIT-BIH excerpts with ventricular ectopy and noise, a paced patient's asystole, sinus rhythm that
    turns to VF, and a record with a flat stretch (leads off) and lost samples (signal loss, never joined)."""
    import wfdb
    from helpers import play_records
    from test_vf import sinus, vf_wave

    fs = 250.0
    x = np.concatenate([sinus(fs, 20.0, 75, seed=1), vf_wave(fs, 16.0, seed=2), sinus(fs, 14.0, 150, seed=4)])
    y = sinus(fs, 40.0, 70, seed=5)
    y[round(12 * fs):round(15 * fs)] = y[round(12 * fs)]  # a lead off for 3 s: held value
    y[round(25 * fs):round(27 * fs)] = np.nan  # lost samples (2 s: longer than --bridge-s)
    with warnings.catch_warnings():  # wfdb's own use of deprecated pandas calls
        warnings.simplefilter("ignore")
        for name, sig in (("vfrec", x), ("off", y)):
            wfdb.wrsamp(name, fs=fs, units=["mV"], sig_name=["MLII"], fmt=["16"], adc_gain=[1000.0], baseline=[0],
                        p_signal=sig[:, None], write_dir=str(tmp_path))
    data = Path(__file__).parent / "data"
    records = [data / "mitdb" / "205x", data / "mitdb-hard" / "203x", data / "cinc-paced" / "a670x",
               tmp_path / "vfrec", tmp_path / "off"]
    got = {}
    for coalesce in (True, False):
        (tmp_path / str(coalesce)).mkdir()
        # each run learns afresh (the second would otherwise start from what the first learnt)
        monkeypatch.setenv("ECGMON_LEARN_STATE", str(tmp_path / str(coalesce) / "learnt.json"))
        b, rec = play_records(tmp_path / str(coalesce), records, coalesce=coalesce)
        got[coalesce] = (
            sorted((s.beat.patient, s.beat.index, round(s.loss, 5), s.flagged, s.noisy) for s in rec.scores),
            sorted((t.score.beat.patient, t.score.beat.index, t.kind.value, round(t.p_ventricular or 0, 6))
                   for t in rec.typed),
            sorted((a.patient, a.condition.value, a.state.value, a.beat_index) for a in rec.alarms),
            b.monitor.stats.coalesced)
    joined, plain = got[True], got[False]
    assert joined[3] > 0 and plain[3] == 0  # chunks were joined in one run, not in the other
    assert len(joined[0]) > 1000 and joined[0] == plain[0]
    assert joined[1] == plain[1]
    conditions = {a[1] for a in joined[2]}
    assert {"asystole", "ventricular fibrillation/flutter", "leads off", "signal loss"} <= conditions, conditions
    assert joined[2] == plain[2]


def test_heart_rate_limits_sent_before_a_beds_first_samples_are_kept_for_it(tmp_path, monitors, shipped):
    """A station sets a patient's limits over the control topic before the device is plugged in (a newcomer, session
    25: refused as 'control-limits-refused', and the bed alarmed at the defaults): kept, and the bed has them from
    its first samples; implausible limits are refused as before, for a known bed or not."""
    import json

    from ecgmon.core.payload import encode
    from ecgmon.monitor.ingress import Ingress

    mon = _build(monitors, _cfg(tmp_path), shipped).monitor
    ing = Ingress(topic="ecg/+/samples", labels_topic="ecg/+/labels", control_topic="ecg/+/control")
    ing.listener = mon
    assert ing.handle("ecg/early/control", json.dumps({"cmd": "limits", "low": 45, "high": 140}).encode()) == []
    assert ing.handle("ecg/early/control", json.dumps({"cmd": "limits", "low": 150}).encode()) == []  # over high
    assert dict(ing.rejected) == {("early", "control-limits-refused"): 1} and ing.commands["limits"] == 1
    assert "early" not in mon.beds
    x = (0.1 * np.sin(np.arange(62) / 5)).astype(np.float32)
    for c in ing.handle("ecg/early/samples", encode("json", "early", 0, 250.0, time.time() - 0.3, x)):
        mon.segment(c)
    cfg = mon.beds["early"].lethal.cfg
    assert (cfg.hr_low, cfg.hr_high) == (45.0, 140.0)
    for c in ing.handle("ecg/other/samples", encode("json", "other", 0, 250.0, time.time() - 0.3, x)):
        mon.segment(c)
    assert (mon.beds["other"].lethal.cfg.hr_low, mon.beds["other"].lethal.cfg.hr_high) == (50.0, 120.0)
    # limits that contradict the extreme rates (a low limit at or over --tachy-bpm, 140; a high one at or under
    # --brady-bpm, 40) are refused as the options are (a reviewer, session 25: extreme tachycardia beside 'heart
    # rate low')
    assert not mon.set_limits("early", low=150, high=250) and not mon.set_limits("later", low=30, high=40)
    assert (cfg.hr_low, cfg.hr_high) == (45.0, 140.0) and "later" not in mon._limits_waiting


def test_a_discharge_ends_the_bed_clears_its_alarms_and_frees_its_device(tmp_path, monitors, shipped):
    """``{"cmd": "discharge"}`` on a device's control topic: its alarms cleared ("discharged"), its bed, limits and
    stream forgotten, its place under --max-devices freed; the device's next samples are a new patient's bed (the
    default limits), but chunks of the old stream that reach the monitor after the discharge (read before it) are the
    old patient's, dropped; a discharge of a device without a bed, or one delivered as retained, is refused, and a
    retained sample packet (the broker's old one, sent again at every connection) is not taken (reviewers, session
    41).  Before, a device that stopped left its bed and its alarms until the monitor restarted (a newcomer, session
    39)."""
    import json

    from ecgmon.core.payload import encode
    from ecgmon.monitor.ingress import Ingress, Retained

    rec = Recorder()
    mon = _build(monitors, _cfg(tmp_path), shipped, extra_sinks=[rec]).monitor
    ing = Ingress(topic="ecg/+/samples", labels_topic=None, control_topic="ecg/+/control", max_devices=1)
    ing.listener = mon
    t0 = time.time() - 40.0
    flat = np.full(250, 0.2, np.float32)  # a flat line: leads off (a technical alarm of the bed)

    def packet(dev: str, seq: int) -> bytes:
        return encode("json", dev, seq, 250.0, t0 + seq, flat)

    def send(dev: str, seq: int) -> None:
        for c in ing.handle(f"ecg/{dev}/samples", packet(dev, seq)):
            mon.segment(c)

    for seq in range(8):
        send("bed1", seq)
        send("bed2", seq)  # past --max-devices 1: refused
    assert ing.handle("ecg/bed1/control", json.dumps({"cmd": "limits", "low": 45, "high": 140}).encode()) == []
    assert set(mon.beds) == {"bed1"} and ("bed2", "too-many-devices") in ing.rejected
    late = ing.handle("ecg/bed1/samples", packet("bed1", 8))  # read, not yet segmented when the discharge comes
    ing.handle("ecg/bed1/control", Retained(b'{"cmd": "discharge"}'))  # a retained command: refused
    assert "bed1" in mon.beds and ing.rejected[("bed1", "control-retained")] == 1
    on = set(mon.beds["bed1"].book.active)  # the refusal's 'bad input' beside the leads off
    assert Condition.LEADS_OFF in on
    ing.handle("ecg/bed1/control", b'{"cmd": "discharge"}')
    ing.handle("ecg/nobody/control", b'{"cmd": "discharge"}')
    assert "bed1" not in mon.beds and "bed1" not in ing.streams
    cleared = [a for a in rec.alarms if a.patient == "bed1" and a.state.value == "cleared"]
    assert {a.condition for a in cleared} == on and all(a.reason == "discharged" for a in cleared)
    assert ing.commands["discharge"] == 1 and ing.rejected[("nobody", "control-discharge-refused")] == 1
    assert mon.summary()["discharged"] == 1
    assert late and all(mon.segment(c) == [] for c in late) and "bed1" not in mon.beds  # the old patient's: dropped
    assert mon.summary()["discharged_chunks"] == len(late)  # counted, in the summary
    assert ing.handle("ecg/bed1/samples", Retained(packet("bed1", 9))) == [] and "bed1" not in ing.streams
    assert ing.old_packets["retained"] == 1 and ("bed1", "retained-samples") not in ing.rejected
    # the discharged stream's last packet delivered again (a QoS 1 redelivery, a bridged broker's retained copy sent
    # on without its flag): not taken (a reviewer, session 41: a bed of the old patient's samples, its signal loss on)
    assert ing.handle("ecg/bed1/samples", packet("bed1", 7)) == [] and ing.old_packets["discharged"] == 1
    send("bed2", 20)  # its place is free now
    send("bed1", 21)  # and the first device's samples are a new patient's: refused now, the limit taken by bed2
    assert set(mon.beds) == {"bed2"}
    ing.handle("ecg/bed2/control", b'{"cmd": "discharge"}')
    send("bed1", 22)
    assert set(mon.beds) == {"bed1"}
    assert (mon.beds["bed1"].lethal.cfg.hr_low, mon.beds["bed1"].lethal.cfg.hr_high) == (50.0, 120.0)


def test_samples_and_a_discharge_read_in_one_batch_make_no_bed(tmp_path, monitors, shipped):
    """A persistent session's backlog (or a worker's warm-up) brings a device's last packets and its discharge in one
    batch, read before any of them is segmented: the discharge is carried out and the packets make no bed (it was
    refused for want of a bed, and they made one, its signal loss on for good: a reviewer, session 41); the
    device's next packets do."""
    from ecgmon.core.payload import encode
    from ecgmon.monitor.ingress import Ingress

    mon = _build(monitors, _cfg(tmp_path), shipped).monitor
    ing = Ingress(topic="ecg/+/samples", labels_topic=None, control_topic="ecg/+/control")
    ing.listener = mon
    t0 = time.time() - 40.0
    x = (0.3 * np.sin(np.arange(250) / 7)).astype(np.float32)
    batch = [("ecg/pA/samples", encode("json", "pA", seq, 250.0, t0 + seq, x)) for seq in range(6)]
    chunks = ing.handle_many([*batch, ("ecg/pA/control", b'{"cmd": "discharge"}')])
    assert chunks and ing.commands["discharge"] == 1
    for c in chunks:
        mon.segment(c)
    assert "pA" not in mon.beds and mon.summary()["discharged"] == 1
    for c in ing.handle("ecg/pA/samples", encode("json", "pA", 0, 250.0, time.time() - 1.0, x)):
        mon.segment(c)
    assert "pA" in mon.beds  # the next patient


def test_a_discharge_clears_the_alarms_a_restart_restored_for_a_bed_that_did_not_come_back(tmp_path, monitors,
                                                                                           shipped):
    """After a restart the journal's open alarms of a device that stopped before it are shown again, with no bed: a
    discharge clears them (it was refused, and they stayed open at every restart: a reviewer, session 41)."""
    from ecgmon.core.messages import AlarmKind
    from ecgmon.monitor.alarms import AlarmBook

    rec = Recorder()
    mon = _build(monitors, _cfg(tmp_path), shipped, extra_sinks=[rec]).monitor
    old = AlarmBook("gone", fs=250.0).raise_(Condition.SIGNAL_LOSS, AlarmKind.TECHNICAL, Priority.MEDIUM,
                                             "no samples for 3 s", index=1000)
    mon.adopt({}, old)  # as a restart restores them (Monitor.adopt: shown again when the bed's first samples come)
    assert mon.control("gone", "discharge") and not mon.control("gone", "discharge")
    cleared = [a for a in rec.alarms if a.patient == "gone"]
    assert [(a.condition, a.state.value, a.reason) for a in cleared] == [
        (Condition.SIGNAL_LOSS, "cleared", "discharged")]
    assert cleared[0].id == old[0].id and "gone" not in mon._waiting_restore


def test_beats_queued_at_a_discharge_are_not_judged_on_the_devices_next_bed(tmp_path, monitors):
    """Beats of the discharged patient still waiting for the scorer are released, not judged: once the device's next
    packet had made a new bed, they were judged there (its beat count, its learning and alarm policy: a reviewer,
    session 41)."""
    from ecgmon.core.payload import encode
    from ecgmon.models.checkpoint import load
    from ecgmon.models.records import read
    from ecgmon.monitor.ingress import Ingress

    rec_ecg = read(Path(__file__).parent / "data" / "mitdb" / "205x")
    fs, n = rec_ecg.fs, int(0.25 * rec_ecg.fs)
    from ecgmon.core.broker import BrokerConfig

    mon = _build(monitors, _cfg(tmp_path, source="mqtt", broker=BrokerConfig()), load("mitdb")).monitor
    now = [time.time()]
    ing = Ingress(topic="ecg/+/samples", labels_topic=None, control_topic="ecg/+/control", clock=lambda: now[0])
    ing.listener = mon
    t0 = now[0] - 60.0
    queued = []
    for seq in range(120):
        for c in ing.handle("ecg/d/samples", encode("int16", "d", seq, fs, t0 + seq * 0.25,
                                                     rec_ecg.signal[seq * n:(seq + 1) * n])):
            queued += mon.segment(c)
    now[0] += 5.0
    ing.handle("ecg/d/control", b'{"cmd": "discharge"}')
    assert "d" not in mon.beds and len(queued) > 20
    for c in ing.handle("ecg/d/samples", encode("int16", "d", 0, fs, now[0] - 0.25, rec_ecg.signal[:n])):
        mon.segment(c)  # the device again: a new patient's bed
    mon.judge(queued, mon.scorer.score_batch(np.stack([b.samples for b in queued])))
    assert mon.beds["d"].beats == 0 and mon.stats.released == len(queued) and mon.stats.beats == 0
    assert mon.summary()["released"] == len(queued)  # counted, in the summary


def test_limits_waiting_for_beds_are_bounded_by_forgetting_the_oldest(tmp_path, monitors, shipped, monkeypatch):
    """Limits for names that never connect (typos, retired beds) must neither grow without bound nor block the
    limits of a bed set later (a reviewer, session 25): past LIMITS_WAITING the oldest set is forgotten."""
    import ecgmon.monitor.pipeline as pipeline

    monkeypatch.setattr(pipeline, "LIMITS_WAITING", 3)
    mon = _build(monitors, _cfg(tmp_path), shipped).monitor
    for name in ("a", "b", "c", "a", "d"):
        assert mon.set_limits(name, low=45, high=130)
    assert list(mon._limits_waiting) == ["c", "a", "d"]


def test_a_rate_change_is_placed_where_the_new_rate_starts(tmp_path, monitors, shipped):
    """A device that changes from 250 to 500 Hz at 19.84 s: its samples are numbered anew at the new rate, and the
    signal-loss alarm the change raises was placed at the old stream's last index read at the new rate (9.92 s; a
    newcomer, session 26).  It is placed at the new stream's first sample: 19.84 s, and cleared there by the
    asystole the bed was in (not at the asystole's index in the old numbering, session 40)."""
    from ecgmon.core.messages import Chunk

    seen = Recorder()
    b = _build(monitors, _cfg(tmp_path), shipped, extra_sinks=[seen])
    rng = np.random.default_rng(0)
    for k in range(80):  # 250 Hz packets of 62 samples, 0.248 s each
        b.monitor.segment(Chunk("d", 250.0, 1000.0 + k * 0.248, rng.standard_normal(62).astype(np.float32) * 0.005,
                                start=k * 62))
    start = round(80 * 0.248 * 500)  # the new numbering: the device's clock at the new rate
    b.monitor.segment(Chunk("d", 500.0, 1000.0 + 80 * 0.248, np.zeros(124, np.float32), start=start, reset=True))
    loss = [a for a in seen.alarms if a.condition is Condition.SIGNAL_LOSS and "sampling rate changed" in a.message]
    assert loss[0].state.value == "active" and loss[0].beat_index == start
    assert loss[0].record_s == pytest.approx(19.84)
    # 5 uV of noise, no QRS: asystole from 4.96 s, carried over the change; the signal back clears the loss where its
    # samples start, not at the asystole's index in the old numbering (2.48 s at 500 Hz, before it was raised)
    assert [(a.state.value, a.record_s) for a in loss[1:]] == [("cleared", pytest.approx(19.84))], loss


def test_a_drop_out_during_asystole_is_one_signal_loss_cleared_where_the_samples_come_back(tmp_path):
    """NaN at 20-21.5 s of an isoelectric line (asystole from 4.75 s): signal loss raised at 20.0 s and cleared at
    21.5 s, where the samples come back.  It was cleared at the asystole's index (4.75 s, before its raise), and a
    first fix cleared it at 21.25 s, inside the NaN run, then raised and cleared it again at 21.5 s (a reviewer,
    session 40)."""
    fs = 360
    x = np.random.default_rng(3).normal(0, 0.005, 30 * fs)
    x[20 * fs:round(21.5 * fs)] = np.nan
    rec = tmp_path / "drop.csv"
    rec.write_text("sampling rate: 360\n" + "".join(("nan" if np.isnan(v) else f"{v:.5f}") + "\n" for v in x))
    _, got = play_records(tmp_path, [rec])
    loss = [(a.state.value, a.beat_index) for a in got.alarms if a.condition is Condition.SIGNAL_LOSS]
    asys = [a for a in got.alarms if a.condition is Condition.ASYSTOLE]
    assert asys and asys[0].state.value == "active" and asys[0].beat_index < 20 * fs
    assert loss == [("active", 20 * fs), ("cleared", round(21.5 * fs))], loss


def test_a_polarity_reversal_after_learning_says_the_qrs_shape_changed(tmp_path):
    """An electrode moved after the bed learnt: every beat is flagged by its shape and counted "other abnormal"; the
    LOW technical "QRS shape changed" says why (a newcomer, session 27: nothing did), and relearning clears it."""
    from ecgmon.monitor.learning import LearningConfig

    fs, seconds, flip = 250.0, 90.0, 45.0
    t = np.arange(round(seconds * fs)) / fs
    x = 0.01 * np.random.default_rng(6).standard_normal(len(t))
    beats = np.arange(0.5, seconds - 0.5, 0.8)
    add_beats(x, t, beats[beats < flip])
    add_beats(x, t, beats[beats >= flip], gain=-1.0)
    rec = tmp_path / "flip.csv"
    rec.write_text("sampling rate: 250\n" + "".join(f"{v:.5f}\n" for v in x))
    _, got = play_records(tmp_path, [rec], learning=LearningConfig(learn_s=20.0), learn_state=None)
    shape = [a for a in got.alarms if a.condition is Condition.SHAPE_CHANGED and a.state.value == "active"]
    assert len(shape) == 1 and shape[0].priority is Priority.LOW
    assert flip < shape[0].record_s < flip + 40.0


def test_a_condition_goes_on_across_a_change_of_rate_and_the_new_rate_clears_it(tmp_path, monitors, shipped):
    """A new sampling rate gives the bed a new lethal watch, which takes over the old one's conditions: an extreme
    bradycardia that goes on stays on (no clear and raise again: ending them at the change cost a true VF 5-6 s of
    alarm, a reviewer in session 39), and the new watch clears it once the rate is back.  Before session 39 nothing
    cleared them: a device that stated 250 Hz for a 500 Hz signal raised extreme bradycardia, and once put right (500
    Hz, 72 bpm) the HIGH alarm stayed on for good."""
    from ecgmon.core.messages import Chunk

    b = _build(monitors, _cfg(tmp_path), shipped)
    mon = b.monitor
    t0 = time.time() - 120.0

    def play(fs: float, bpm: float, seconds: float, start: int, at: float) -> int:
        t = np.arange(round(seconds * fs)) / fs
        x = 0.01 * np.random.default_rng(int(fs + bpm)).standard_normal(len(t))
        add_beats(x, t, np.arange(0.5, seconds - 0.5, 60.0 / bpm))
        n = round(0.25 * fs)
        for k in range(0, len(x) - n + 1, n):
            mon.segment(Chunk("d", fs, at + k / fs, x[k:k + n].astype(np.float32), start=start + k))
            mon.flush_vf()
        return start + len(x)

    def brady() -> list[str]:
        return [str(a["state"]) for a in read_journal(tmp_path / "alarms.jsonl")[0]
                if a["condition"] == Condition.EXTREME_BRADY.value]

    play(250.0, 35.0, 30.0, 0, t0)
    assert brady() == [AlarmState.ACTIVE.value]
    end = play(500.0, 35.0, 15.0, 0, t0 + 30.0)  # the same bradycardia at the new rate: the alarm goes on
    assert brady() == [AlarmState.ACTIVE.value] and Condition.EXTREME_BRADY in mon.beds["d"].book.active
    play(500.0, 72.0, 30.0, end, t0 + 45.0)  # back to 72 bpm: cleared by the new rate's watch
    assert brady() == [AlarmState.ACTIVE.value, AlarmState.CLEARED.value]
    assert Condition.EXTREME_BRADY not in mon.beds["d"].book.active


def test_alarms_raised_on_samples_read_at_a_wrong_rate_are_withdrawn_when_the_rate_is_found_wrong(
        tmp_path, monitors, shipped):
    """A device that states 250 Hz but sends a 500 Hz signal: read at 250 Hz its 72 bpm are 36, and extreme
    bradycardia was raised; once its packets are refused (fs-clock-mismatch, after about 8 s of them), the HIGH alarm
    stayed on, a verdict on samples the monitor itself had found misread (a fuzzer, session 38).  It is withdrawn
    there."""
    from ecgmon.core.payload import encode
    from ecgmon.monitor.ingress import Ingress

    b = _build(monitors, _cfg(tmp_path), shipped)
    mon = b.monitor
    ing = Ingress(topic="ecg/+/samples", labels_topic=None)
    ing.listener = mon
    fs_true, seconds = 500.0, 60.0
    t = np.arange(round(seconds * fs_true)) / fs_true
    x = 0.01 * np.random.default_rng(5).standard_normal(len(t))
    add_beats(x, t, np.arange(0.5, seconds - 0.5, 60.0 / 72))
    t0, n, refused_at = time.time() - 120.0, 124, None
    for k in range(len(x) // n):
        for c in ing.handle("ecg/d/samples", encode("float32", "d", k, 250.0, t0 + k * n / fs_true,
                                                    x[k * n:(k + 1) * n].astype(np.float32))):
            mon.segment(c)
            mon.flush_vf()
        if refused_at is None and ing.rejected[("d", Ingress.PACE)]:
            refused_at = k
            assert Condition.EXTREME_BRADY not in mon.beds["d"].book.active
    assert refused_at is not None
    journal = read_journal(tmp_path / "alarms.jsonl")[0]
    brady = [a for a in journal if a["condition"] == Condition.EXTREME_BRADY.value]
    assert [a["state"] for a in brady] == [AlarmState.ACTIVE.value, AlarmState.CLEARED.value]  # raised, withdrawn
    assert "wrong rate" in str(brady[1]["reason"])


def test_beats_of_a_device_whose_clock_is_not_ours_have_no_end_to_end_latency(tmp_path, monitors, shipped):
    """A chunk marked ``clock_off`` (its device's clock an hour back: Ingress) gives its beats no time of sending,
    so no end-to-end latency figure, and they are counted instead (``e2e_clock_off``); a device on this machine's
    clock has them."""
    from ecgmon.core.messages import Chunk

    b = _build(monitors, _cfg(tmp_path), shipped)
    mon = b.monitor
    fs, seconds = 250.0, 20.0
    t = np.arange(round(seconds * fs)) / fs
    x = 0.01 * np.random.default_rng(2).standard_normal(len(t))
    add_beats(x, t, np.arange(0.5, seconds - 0.5, 0.8))
    t0 = time.time() - seconds
    got: dict[str, list] = {"ours": [], "back": []}
    for k in range(0, len(x) - 61, 62):
        for dev, off in (("ours", False), ("back", True)):
            got[dev] += mon.segment(Chunk(dev, fs, t0 - (3600.0 if off else 0.0) + k / fs,
                                          x[k:k + 62].astype(np.float32), start=k, clock_off=off))
    assert got["ours"] and all(bt.sent is not None for bt in got["ours"])
    assert got["back"] and all(bt.sent is None for bt in got["back"])
    assert mon.stats.e2e_clock_off == len(got["back"])


def test_an_asystole_in_noise_goes_on_across_a_change_of_rate(tmp_path, monitors, shipped):
    """An asystole under 20-50 uV of noise, the device switching 250 -> 500 Hz 20 s into it: ended at the change
    (session 39's first try) it was never raised again, and carried over, the restarted detector's first detections
    in the noise cleared it 3.5 s on (a reviewer, session 39).  It goes on: a carried asystole ends at clean QRS
    only."""
    from scipy.signal import resample_poly

    from ecgmon.core.messages import Chunk

    b = _build(monitors, _cfg(tmp_path), shipped)
    mon = b.monitor
    for sd in (0.02, 0.05):
        fs, seconds = 250.0, 75.0
        t = np.arange(round(seconds * fs)) / fs
        x = sd * np.random.default_rng(1).standard_normal(len(t))
        add_beats(x, t, np.arange(0.3, 20.0, 0.8))
        dev, t0 = f"a{sd:g}", time.time() - 200.0
        for k in range(0, round(40 * fs), 62):
            mon.segment(Chunk(dev, fs, t0 + k / fs, x[k:k + 62].astype(np.float32), start=k))
            mon.flush_vf()
        assert Condition.ASYSTOLE in mon.beds[dev].book.active
        y = resample_poly(x[round(40 * fs):], 2, 1)  # the same signal at 500 Hz from 40 s
        for k in range(0, len(y) - 124, 124):
            mon.segment(Chunk(dev, 500.0, t0 + 40.0 + k / 500.0, y[k:k + 124].astype(np.float32),
                              start=round(40.0 * 500) + k))
            mon.flush_vf()
        states = [a["state"] for a in read_journal(tmp_path / "alarms.jsonl")[0]
                  if a["patient"] == dev and a["condition"] == Condition.ASYSTOLE.value]
        assert states == [AlarmState.ACTIVE.value], (sd, states)


def test_a_beds_beats_take_the_noise_verdict_of_their_own_stretch_whatever_the_chunk(tmp_path, shipped, monkeypatch):
    """A 40 s stretch of one bed segmented as one chunk (a round of a recording's joined chunks: 254 CinC 2015 records
    in 4 s packets brought up to 22 s of a bed at once) or in 0.25 s chunks: every typed beat in artifact or not alike
    (the noise verdict of the VF windows over its own stretch).  The windows were kept by count (16): typed after
    over 16 s of windows were analysed, a round's first beats took the last window's verdict instead, and electrode
    motion over 8-24 s left 1 beat in artifact against 18 (CinC t683l with 253 other records: a false VT)."""
    import wfdb
    from scipy.signal import resample_poly
    from test_vf import sinus

    from ecgmon.core.messages import Chunk
    from ecgmon.monitor.lethal import LethalWatch

    fs = 250.0
    x = sinus(fs, 40.0, 75, seed=3)
    em = resample_poly(wfdb.rdrecord(str(Path(__file__).parent / "data" / "nstdb-em" / "em300")).p_signal[:, 0], 25, 36)
    noise = np.concatenate([em, em[::-1]])  # 16 s of electrode motion (the 8 s excerpt, then backwards)
    x[round(8 * fs):round(8 * fs) + len(noise)] += noise
    typed = LethalWatch.typed
    got: dict[int, list[tuple[int, bool]]] = {}
    for step in (len(x), round(0.25 * fs)):
        seen = got.setdefault(step, [])

        def spy(self, index, *, ventricular, artifact=False, seen=seen, **kw):
            seen.append((index, artifact))
            return typed(self, index, ventricular=ventricular, artifact=artifact, **kw)

        monkeypatch.setattr(LethalWatch, "typed", spy)
        b = build(MonitorConfig(speed=None, ui=False, journal=tmp_path / f"{step}.jsonl", device="cpu",
                                abnormal_rate=None), ckpt=shipped, extra_sinks=[Recorder()], out=Lines())
        try:
            for i in range(0, len(x), step):
                b.monitor.segment_many([Chunk("bed", fs, i / fs, x[i:i + step].astype(np.float32), start=i,
                                              replay=True)])
            b.monitor.flush_vf(final=True)
        finally:
            b.monitor.close()
    whole, small = got[len(x)], got[round(0.25 * fs)]
    assert len(whole) > 50 and whole == small
    in_noise = [a for i, a in whole if 8 * fs < i < 24 * fs]
    assert sum(in_noise) >= len(in_noise) // 2 and not any(a for i, a in whole if i < 8 * fs)

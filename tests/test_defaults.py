"""The model a source gets by default (issue 20 item 4): real ECG sources get the real-ECG model."""

import re

from ecgmon.core.broker import BrokerConfig
from ecgmon.models.checkpoint import load
from ecgmon.monitor.app import build
from ecgmon.monitor.config import MonitorConfig, default_checkpoint


def test_the_source_kind_decides_the_default_model():
    assert default_checkpoint("replay") == "ecg5000"
    assert {default_checkpoint(s) for s in ("mqtt", "nats", "record")} == {"mitdb"}


def test_real_devices_over_mqtt_get_the_real_ecg_model_without_a_checkpoint(tmp_path):
    cfg = MonitorConfig(source="mqtt", broker=BrokerConfig(url="mqtt://127.0.0.1:1"), ui=False, device="cpu",
                        threads=1, journal=tmp_path / "j.jsonl", learn_state=None)
    b = build(cfg)  # no connection is made until the monitor runs
    mitdb = load("mitdb")
    assert b.monitor.rep == mitdb.rep and b.monitor.rep.kind != "ecg5000"
    assert b.monitor.model_name.startswith(mitdb.name)
    b.monitor.close()
    # asked for, the simulator's ECG5000 devices get the ECG5000 model (what `ecgmon demo` does)
    b = build(MonitorConfig(source="mqtt", checkpoint="ecg5000", broker=BrokerConfig(url="mqtt://127.0.0.1:1"),
                            ui=False, device="cpu", threads=1, journal=tmp_path / "j.jsonl", learn_state=None))
    assert b.monitor.rep.kind == "ecg5000"
    b.monitor.close()


def test_advisory_options_reach_the_policy_and_are_checked():
    import argparse

    import pytest

    from ecgmon.core.messages import Priority
    from ecgmon.monitor.config import add_monitor_arguments, from_args

    p = argparse.ArgumentParser()
    add_monitor_arguments(p)
    cfg = from_args(p.parse_args(["--veb-per-min", "6", "--vrun-len", "4", "--priority", "vrun=low", "--no-couplet",
                                  "--beat-alarm", "--sv-unflagged", "--no-ui"]))
    pol = cfg.policy
    assert (pol.veb_per_min, pol.veb_clear_per_min, pol.vrun_len, pol.vrun_priority) == (6, 3, 4, Priority.LOW)
    assert not pol.couplet and pol.beat_alarm and pol.sv_unflagged
    with pytest.raises(ValueError, match="--priority"):
        from_args(p.parse_args(["--priority", "vrun=high", "--no-ui"]))  # HIGH is for the lethal alarms
    with pytest.raises(ValueError, match="vrun_len"):
        from_args(p.parse_args(["--vrun-len", "-1", "--no-ui"]))
    # the run's numbers are named when no run can have them (--duration inf overflowed in the record source,
    # --chunk 0 ran 15x slower, --patients 0 and --duration -5 judged nothing in silence)
    for args, says in ((["--duration", "inf"], "--duration inf: needs a finite"),
                       (["--duration", "-5"], "--duration -5.0: needs a finite"),
                       (["--start", "nan"], "--start nan"), (["--chunk", "0"], "--chunk 0.0: needs 0.01-10 s"),
                       (["--patients", "0"], "--patients 0"), (["--threads", "-2"], "--threads -2"),
                       (["--max-beats", "0"], "--max-beats 0")):
        with pytest.raises(ValueError, match=re.escape(says)):
            from_args(p.parse_args([*args, "--no-ui"]))


def test_what_beds_learnt_is_kept_in_the_default_file_unless_told_otherwise(tmp_path, monkeypatch):
    """Without ``--learn-state`` the beds' learning is kept in the default file (a restarted monitor does not make
    every bed learn again); ``none`` keeps nothing; a path is used as given.  The unset option once read as 'none'
    (``str(None).lower() == "none"``), so nothing was ever kept by default."""
    import argparse

    from ecgmon.monitor.config import add_monitor_arguments, from_args

    monkeypatch.setenv("ECGMON_LEARN_STATE", str(tmp_path / "kept.json"))
    p = argparse.ArgumentParser()
    add_monitor_arguments(p)
    assert from_args(p.parse_args(["--no-ui"])).learn_state == tmp_path / "kept.json"
    assert from_args(p.parse_args(["--no-ui", "--learn-state", "NONE"])).learn_state is None
    given = tmp_path / "b.json"
    assert from_args(p.parse_args(["--no-ui", "--learn-state", str(given)])).learn_state == given


def test_the_ecg5000_replay_types_ventricular_only_beats_the_model_flags(capsys, tmp_path, monkeypatch):
    # the ventricular typer is fitted on real ECG; on ECG5000's rendered beats it called most normal beats
    # ventricular (a 3 % ward had every bed in "frequent ventricular ectopy"): there only flagged beats can be V
    import json

    from ecgmon.cli.main import main

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert main(["--source", "replay", "--speed", "max", "--no-ui", "--max-beats", "640", "--device", "cpu"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    summary = rows[-1]
    assert summary["type"] == "summary" and summary["beats"] > 500
    abnormal = sum(r["verdict"] == "abnormal" for r in rows if r.get("type") == "beat")
    typed_v = sum(b["total"]["V"] for b in summary["ectopy"].values())
    assert typed_v <= abnormal < 0.15 * summary["beats"]
    assert not [r for r in rows if r.get("type") == "alarm" and r["condition"] == "frequent ventricular ectopy"]


def test_run_options_a_run_cannot_have_are_named_before_it_starts(tmp_path, capsys):
    """--learn -1 ran (nothing learnt, in silence), --journal a folder gave an errno, simulate --devices -2 published
    nothing with exit 0, --drop 2 connected first, evaluate --folds without --cv ran a different evaluation."""
    import argparse

    import pytest

    from ecgmon.cli.main import main
    from ecgmon.monitor.config import add_monitor_arguments, from_args

    p = argparse.ArgumentParser()
    add_monitor_arguments(p)
    for args, said in ((["--learn", "-1"], "--learn -1"), (["--journal", str(tmp_path)], "is a folder"),
                       (["--bridge-s", "3"], "--bridge-s 3")):
        with pytest.raises(ValueError, match=re.escape(said)):
            from_args(p.parse_args([*args, "--no-ui"]))
    assert from_args(p.parse_args(["--bridge-s", "0", "--no-ui"])).pipeline.bridge_s == 0  # off: every gap restarts
    for argv, said in ((["simulate", "--devices", "-2"], "--devices -2"), (["simulate", "--drop", "2"], "--drop 2"),
                       (["evaluate", "--protocol", "mitdb", "--folds", "1"], "give --cv"),
                       (["evaluate", "--protocol", "cinc2015", "--cv", "3", "--data", str(tmp_path)], "--cv is for"),
                       (["evaluate", "--protocol", "cinc2015", "--packet-s", "0", "--data", str(tmp_path)],
                        "--packet-s 0"),
                       (["evaluate", "--protocol", "qrs", "--packet-s", "1", "--data", str(tmp_path)],
                        "--packet-s is for"),
                       (["--no-ui", "--vt-episode-s", "2"], "--vt-episode-s must be")):
        assert main(argv) == 2
        assert said in capsys.readouterr().err


def test_recordings_keep_nothing_learnt_unless_a_file_is_named(tmp_path, monkeypatch):
    """Two patients' recordings may share a name (pA/ecg.csv, pB/ecg.csv): played in two runs, the second judged
    every beat against the first patient's learnt normal.  --source record keeps and reads nothing learnt by default;
    a live source keeps its default file; --learn-state FILE is honoured for recordings."""
    import argparse

    from ecgmon.monitor.config import add_monitor_arguments, from_args

    monkeypatch.setenv("ECGMON_LEARN_STATE", str(tmp_path / "kept.json"))
    p = argparse.ArgumentParser()
    add_monitor_arguments(p)
    assert from_args(p.parse_args(["--source", "record", "x.csv", "--no-ui"])).learn_state is None
    assert from_args(p.parse_args(["--source", "mqtt", "--no-ui"])).learn_state == tmp_path / "kept.json"
    named = from_args(p.parse_args(["--source", "record", "x.csv", "--no-ui", "--learn-state", str(tmp_path / "f")]))
    assert named.learn_state == tmp_path / "f"

"""CLI smoke runs as a user runs them: real processes, real files."""

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecgmon.models.checkpoint import load
from ecgmon.monitor.alarms import read_journal

ECGMON = str(Path(sys.executable).with_name("ecgmon"))


def run(*args, timeout=300, **kw):
    return subprocess.run([ECGMON, *args], capture_output=True, text=True, timeout=timeout, **kw)


def test_help_lists_subcommands_and_options():
    r = run("--help")
    assert r.returncode == 0
    for word in ("--source", "--patients", "--speed", "--no-ui", "--journal", "train", "evaluate", "calibrate"):
        assert word in r.stdout
    for sub in ("train", "calibrate", "evaluate"):
        assert run(sub, "--help").returncode == 0


def test_headless_replay_prints_beats_and_a_summary(tmp_path):
    r = run("--source", "replay", "--speed", "max", "--no-ui", "--max-beats", "200", "--patients", "4",
            "--journal", str(tmp_path / "j.jsonl"), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    summary = rows[-1]
    assert summary["type"] == "summary" and summary["beats"] >= 200
    for k in ("beats", "alarms", "beats_per_s", "latency_p50_ms", "latency_p99_ms", "sensitivity",
              "specificity", "accuracy", "beats_expected", "beats_matched", "agreement_offline"):
        assert k in summary
    beat = next(r for r in rows if r["type"] == "beat")
    assert beat["verdict"] in ("normal", "abnormal") and beat["patient"].startswith("bed")
    journal, bad = read_journal(tmp_path / "j.jsonl")
    assert bad == 0 and len(journal) == summary["alarms"]


def test_evaluate_writes_metrics_and_figures(tmp_path):
    r = run("evaluate", "--protocol", "product", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "metrics.json").read_text())
    for k in ("roc_auc", "accuracy", "precision", "recall", "f1", "false_alarm_rate", "threshold", "n_beats",
              "flag_rate_per_class"):
        assert k in m
    assert m["n_beats"] == 1000
    assert m["threshold"] == load().threshold
    for png in ("loss_histogram.png", "roc.png", "reconstructions.png"):
        assert (tmp_path / png).stat().st_size > 5000
    assert "confusion matrix" in r.stdout and "threshold sweep" in r.stdout


def test_train_and_calibrate_smoke(tmp_path):
    out = tmp_path / "m.pt"
    r = run("train", "--epochs", "1", "--hidden", "8", "--embedding", "4", "--out", str(out), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert load(out).train["epochs_run"] == 1
    r = run("calibrate", "--checkpoint", str(out), "--rule", "percentile", "--param", "95", "--out",
            str(tmp_path / "c.pt"))
    assert r.returncode == 0, r.stderr
    c = load(tmp_path / "c.pt")
    assert c.calibration["rule"] == "percentile" and c.calibration["param"] == 95


def test_bad_checkpoint_and_bad_options_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    r = run("--no-ui", "--checkpoint", str(bad), "--max-beats", "5")
    assert r.returncode == 2 and "not a readable ecgmon checkpoint" in r.stderr and str(bad) in r.stderr
    r = run("--no-ui", "--fs", "50", "--max-beats", "5")
    assert r.returncode == 2 and "100-1000 Hz" in r.stderr
    r = run("evaluate", "--protocol", "ucr", "--checkpoint", str(Path(load().path)), "--out", str(tmp_path))
    assert r.returncode != 0 and "protocol" in r.stderr


def _read_until(fd, needle: bytes, timeout: float) -> bytes:
    buf, end = b"", time.monotonic() + timeout
    while needle not in buf and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                buf += os.read(fd, 65536)
            except OSError:
                break
    return buf


def test_console_in_a_terminal_acknowledges_and_quits_cleanly(tmp_path):
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color"}
    p = subprocess.Popen([ECGMON, "--source", "replay", "--speed", "20", "--journal", str(tmp_path / "j.jsonl"),
                          "--device", "cpu"], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    try:
        screen = _read_until(master, b"beats/s", 60)
        assert b"REPLAY" in screen and b"bed01" in screen
        _read_until(master, b"HIGH", 60)  # wait for an alarm to acknowledge
        os.write(master, b"a")
        time.sleep(1.0)
        os.write(master, b"q")
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    rows, bad = read_journal(tmp_path / "j.jsonl")
    assert bad == 0
    assert any(r["state"] == "acknowledged" for r in rows)


@pytest.mark.skipif(sys.platform != "linux", reason="terminal restore check uses stty")
def test_terminal_is_restored_after_quit(tmp_path):
    master, slave = pty.openpty()
    before = subprocess.run(["stty", "-g"], stdin=slave, capture_output=True, text=True).stdout
    p = subprocess.Popen([ECGMON, "--source", "replay", "--speed", "20", "--journal", str(tmp_path / "j.jsonl")],
                         stdin=slave,
                         stdout=slave, stderr=slave, close_fds=True)
    _read_until(master, b"beats/s", 60)
    os.write(master, b"q")
    assert p.wait(timeout=30) == 0
    after = subprocess.run(["stty", "-g"], stdin=slave, capture_output=True, text=True).stdout
    os.close(slave)
    os.close(master)
    assert before == after

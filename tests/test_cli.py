"""CLI smoke runs as a user runs them: real processes, real files."""

import collections
import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

from ecgmon.models.checkpoint import load
from ecgmon.monitor.alarms import read_journal

pytestmark = pytest.mark.slow

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
    assert all(r["replay"] is True for r in rows)  # every line says the data is replayed
    assert summary["source"].startswith("REPLAY")
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
    # --start past a record's end: nothing of it to play, said (it played 0 s and exited 0)
    rec = Path(__file__).parent / "data" / "mitdb" / "205x"
    r = run("--source", "record", str(rec), "--start", "3600", "--no-ui", "--speed", "max", "--learn-state", "none",
            "--journal", str(tmp_path / "j.jsonl"))
    assert r.returncode == 2 and "--start 3600 s is at or past its end" in r.stderr, r.stderr


class PtyApp:
    """The console in a pseudo-terminal, its output drained continuously (a full pty would block it)."""

    def __init__(self, args, env=None):
        self.master, slave = pty.openpty()
        self.slave = slave
        self.tty_before = subprocess.run(["stty", "-g"], stdin=slave, capture_output=True, text=True).stdout
        self.p = subprocess.Popen([ECGMON, *args], stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                                  env={**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color",
                                       **(env or {})})
        self.out = bytearray()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        while True:
            r, _, _ = select.select([self.master], [], [], 0.2)
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.out += data
            elif self.p.poll() is not None:
                return

    def wait_for(self, needle: bytes, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while needle not in self.out and time.monotonic() < end:
            time.sleep(0.1)
        return needle in self.out

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        tty_after = subprocess.run(["stty", "-g"], stdin=self.slave, capture_output=True, text=True).stdout
        os.close(self.slave)
        os.close(self.master)
        return tty_after


def _open_files(pid: int) -> dict[str, str]:
    """What each of a process's file descriptors points to (Linux /proc; empty where it cannot be read)."""
    out = {}
    with contextlib.suppress(OSError):
        for n in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                out[n] = os.readlink(f"/proc/{pid}/fd/{n}")
    return out


def test_the_monitor_piped_or_redirected_runs_headless_and_says_so(tmp_path):
    """`make run | tee log`: the console draws on a terminal only, and piped it drew nothing and said nothing until
    the summary (a newcomer, session 57).  Standard output not a terminal: JSON lines there, a note on stderr."""
    r = run("--source", "replay", "--speed", "max", "--max-beats", "100", "--journal", str(tmp_path / "j.jsonl"),
            timeout=120)
    assert r.returncode == 0, r.stderr
    assert "standard output is not a terminal" in r.stderr and "running headless" in r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert sum(x["type"] == "beat" for x in lines) >= 100 and lines[-1]["type"] == "summary"
    assert lines[-1]["replay"] is True


def test_console_in_a_terminal_acknowledges_and_quits_cleanly(tmp_path):
    # --loop: on a loaded machine the split could end (and its alarms clear) before a key press finds one active
    app = PtyApp(["--source", "replay", "--loop", "--speed", "20", "--abnormal-rate", "all", "--journal",
                  str(tmp_path / "j.jsonl"), "--device", "cpu"])
    try:
        assert app.wait_for(b"bed08", 60)
        assert b"REPLAY" in app.out and b"beats/s" in app.out
        os.write(app.master, b"3")  # one bed alone
        assert app.wait_for(b"bed03: one-bed view", 20)
        os.write(app.master, b"r")  # the ECG5000 model has no per-bed learning: the console says so
        assert app.wait_for(b"no per-bed learning", 20)
        os.write(app.master, b"0")
        # audible alarms are coming in (ventricular runs and ectopy advisories; a VT HIGH only where the beat typer
        # calls five replayed abnormal beats in a row ventricular)
        assert app.wait_for(b"MEDIUM", 60) or b"HIGH" in app.out
        journal = tmp_path / "j.jsonl"
        fds_alarm = _open_files(app.p.pid)  # for the failure message: a flake (twice in sessions 38-39, loaded machine)
        # read an empty journal back while journal lines appeared in the terminal; not reproduced in 25 loaded runs
        deadline = time.monotonic() + 90  # a loaded CI machine once found nothing to acknowledge in 30 s
        while time.monotonic() < deadline and '"acknowledged"' not in journal.read_text():
            if '"active"' in journal.read_text():
                os.write(app.master, b"a")  # acknowledges whatever is active at that moment
            time.sleep(1.0)
        fds_quit = _open_files(app.p.pid)
        os.write(app.master, b"q")  # once: the console asks again (one stray key must not end every bed's monitoring)
        assert app.wait_for(b"press q again", 20)
        assert app.p.poll() is None
        os.write(app.master, b"q")
        assert app.p.wait(timeout=30) == 0
    finally:
        tty_after = app.close()
    # read back until it shows what the run wrote (at most 5 s): once, at the end of a loaded `make test` (session 41),
    # this read found no line in a journal of 26 KB that the run had just shown "acknowledged" in (the size taken a
    # moment later); the cause is not found
    deadline, reads = time.monotonic() + 5.0, 0
    while True:
        rows, bad = read_journal(tmp_path / "j.jsonl")
        reads += 1
        states = collections.Counter(r["state"] for r in rows)
        if states["acknowledged"] > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert bad == 0
    assert states["acknowledged"] > 0, (states, reads, (tmp_path / "j.jsonl").stat().st_size, fds_alarm, fds_quit,
                                        bytes(app.out[-3000:]).decode(errors="replace"))
    assert tty_after == app.tty_before  # cbreak mode undone: the terminal is restored


def _run_until_signal(journal: Path, sig: int) -> tuple[int, str, str, list[str]]:
    """``ecgmon --loop`` headless until 3 alarms and a beat are out, then ``sig``: (exit code, stdout after the
    signal, stderr, the lines before it)."""
    p = subprocess.Popen([ECGMON, "--source", "replay", "--no-ui", "--loop", "--speed", "20", "--abnormal-rate", "all",
                          "--journal", str(journal), "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout is not None
        lines = []
        # running: beats judged, and alarms journalled
        while len([x for x in lines if '"alarm"' in x]) < 3 or not any('"type": "beat"' in x for x in lines):
            line = p.stdout.readline()
            assert line, p.stderr.read() if p.stderr else ""
            lines.append(line)
        assert p.poll() is None, f"the --loop run ended by itself (exit {p.returncode}) before the signal"
        p.send_signal(sig)
        # the rest through the same text buffer that readline used (communicate() would skip what it holds)
        killer = threading.Timer(30, p.kill)
        killer.start()
        try:
            out = p.stdout.read()
            err = p.stderr.read() if p.stderr else ""
            p.wait()
        finally:
            killer.cancel()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in (p.stdout, p.stderr):
            if f is not None:
                f.close()
    return p.returncode, out, err, lines


@pytest.mark.slow
@pytest.mark.filterwarnings("default::UserWarning")  # a first try's loss is listed in the warnings summary
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_headless_run_ends_cleanly_on_a_stop_signal(tmp_path, sig):
    """A service manager's SIGTERM, a closed terminal's SIGHUP and Ctrl-C end a run that would go on forever
    (--loop) with exit 0, the summary as the last line and a complete journal."""
    journal = tmp_path / "j.jsonl"
    rc, out, err, lines = _run_until_signal(journal, sig)
    if rc == 0 and not out.strip():
        # CI saw this twice in ~20 full runs (SIGTERM, exit 0, the stop line on stderr, nothing on stdout after the
        # signal), never reproduced here (90 runs, loaded and not). Said where CI shows it, then tried once more:
        # a second loss still fails. stderr's "summary written" line tells which side lost it.
        warnings.warn(f"no stdout after {signal.Signals(sig).name} (exit 0); stderr: {err[-1500:]!r}", stacklevel=1)
        journal = tmp_path / "j2.jsonl"
        rc, out, err, lines = _run_until_signal(journal, sig)
    tail = "".join(lines[-3:]) + out[-2000:]
    assert rc == 0, (rc, err[-3000:], tail)
    assert out.strip(), (f"no output after signal {sig}", rc, err[-3000:], tail)
    rest = out.strip().splitlines()
    last = json.loads(rest[-1])
    assert last["type"] == "summary" and last["beats"] > 0, (  # what came instead, for a flake seen under load
        [json.loads(x).get("type") for x in rest[-5:]], sum('"summary"' in x for x in rest), err[-2000:])
    assert f"stopping on {signal.Signals(sig).name}" in err, err[-2000:]  # the service log says why it stopped
    assert "summary written (0 output lines lost)" in err, err[-2000:]
    rows, bad = read_journal(journal)
    assert bad == 0 and len(rows) == last["alarms"] - last["disk"]["disk_failed"] >= 3  # every alarm journalled


@pytest.mark.slow
@pytest.mark.parametrize("how", ["hangup", "close"])
def test_console_ends_when_its_terminal_is_closed(tmp_path, how):
    """`make run` in a terminal that is then closed: SIGHUP, or the terminal's input gone, ends the monitor
    (it used to go on, orphaned, reading an input at end of file at 64-98 % of a core)."""
    app = PtyApp(["--source", "replay", "--speed", "1", "--journal", str(tmp_path / "j.jsonl"), "--device", "cpu"])
    try:
        assert app.wait_for(b"bed08", 60)
        if how == "hangup":
            app.p.send_signal(signal.SIGHUP)
        else:  # the terminal emulator went away: the monitor's side reads end of file / EIO
            os.close(app.master)
            app.master = os.open(os.devnull, os.O_RDONLY)  # for close()
        assert app.p.wait(timeout=30) == 0
    finally:
        app.close()


def test_a_journal_that_is_no_file_keeps_nothing_and_says_so():
    """``--journal /dev/null`` (no journal wanted): every alarm said "a disk write failed" (fsync of /dev/null), and
    the alarm strips went to /dev/null.strips.jsonl, a file in the machine's memory (111 MB after a day of runs: a
    newcomer, session 42).  Now it is said once that nothing is kept, and no strips file is made."""
    strips = Path(os.devnull + ".strips.jsonl")
    before = strips.stat().st_mtime_ns if strips.exists() else None
    record = Path(__file__).parent / "data" / "vfdb-vt" / "611v"  # a VT: HIGH alarms, each with a strip
    p = run("--source", "record", str(record), "--speed", "max", "--no-ui", "--learn-state", "none",
            "--journal", os.devnull)
    after = strips.stat().st_mtime_ns if strips.exists() else None
    if after is not None and after != before:
        strips.unlink()  # leave no file in /dev behind a failure
    assert p.returncode == 0, p.stderr
    assert '"condition": "ventricular tachycardia"' in p.stdout  # alarms were raised
    assert "is not a file: alarm transitions are not kept" in p.stderr and "disk write failed" not in p.stderr
    assert after == before, "a strips file was written beside /dev/null"

"""Overload: drive the live monitor at twice the device count it sustains, then drop the load.

A baseline ward (``--base`` devices, prefix ``icu``) streams for the whole run; a surge
(``--surge`` devices, prefix ``bed``) joins it for ``--surge-s`` seconds, so the load is
base + surge devices during the surge and base alone after it.  Prints, every 5 s, the
monitor's RSS and CPU; then

- when ``monitor behind`` (input waiting, verdicts late) and ``monitor overload`` (data shed)
  were raised (seconds after the surge began) and what they name, and when they cleared
  (seconds after the surge ended);
- the accounting of every message: sent by the simulators = handled by the monitor + shed
  at its full input queue + missing (dropped before the monitor: the broker's queue limit),
  the last seen by the monitor as sequence gaps (``lost_chunks``);
- beats shed at the full beat queue, and whether the monitor's counters add up;
- RSS: the peak in each third of the run (a plateau, not a climb, is what bounded memory means).

    .venv/bin/python benchmarks/overload.py [--base 500 --surge 1500 --surge-s 40 --after-s 30]

Uses benchmarks/live.py's broker (``start_broker``) and settings (the example deployment's queue limits).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from live import Usage, start_broker


def _read(p: subprocess.Popen[bytes]) -> str:
    return p.stdout.read().decode() if p.stdout else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=int, default=500)
    ap.add_argument("--surge", type=int, default=1500)
    ap.add_argument("--surge-s", type=float, default=40.0)
    ap.add_argument("--after-s", type=float, default=30.0)
    a = ap.parse_args()
    exe = Path(sys.executable).parent / "ecgmon"
    work = Path(tempfile.mkdtemp(prefix="ecgmon-overload-"))
    journal = work / "alarms.jsonl"
    total_s = a.surge_s + a.after_s
    print(f"{a.base} devices for {total_s:g} s + {a.surge} more for the first {a.surge_s:g} s "
          f"({a.base + a.surge} during the surge); logs in {work}", flush=True)
    with contextlib.ExitStack() as files:
        log = {n: files.enter_context(open(work / f"{n}.log", "wb")) for n in ("broker", "monitor", "base", "surge")}
        mon_out = files.enter_context(open(work / "monitor.jsonl", "wb"))
        broker, url = start_broker(work / "mosquitto.conf", log["broker"])
        mon = subprocess.Popen([str(exe), "--source", "mqtt", "--broker", url, "--no-ui", "--no-persistent",
                                "--client-id", "overload", "--journal", str(journal), "--duration", str(total_s + 15)],
                               stdout=mon_out, stderr=log["monitor"])
        time.sleep(5)

        def sim(n: int, prefix: str, seconds: float, role: str) -> subprocess.Popen:
            return subprocess.Popen([str(exe), "simulate", "--devices", str(n), "--duration", str(seconds),
                                     "--format", "int16", "--broker", url, "--no-labels", "--device-prefix", prefix,
                                     "--client-id", f"sim-{prefix}"], stdout=subprocess.PIPE, stderr=log[role])

        t0_wall = time.time()
        t0 = time.monotonic()
        sims = {"base": sim(a.base, "icu", total_s, "base"), "surge": sim(a.surge, "bed", a.surge_s, "surge")}
        use = Usage(mon.pid)
        rss: list[tuple[float, float]] = []
        surge_end_wall = None
        last_print = -5.0
        while any(p.poll() is None for p in sims.values()):
            use.read()
            el = time.monotonic() - t0
            rss.append((el, use.samples[-1] if use.samples else 0.0))
            if surge_end_wall is None and sims["surge"].poll() is not None:
                surge_end_wall = time.time()
            if el - last_print >= 5:
                last_print = el
                cpu = 100 * (use.cpu - use.cpu0) / el
                print(f"  t={el:5.1f} s  monitor RSS {rss[-1][1]:6.1f} MiB  CPU {cpu:5.1f} %",
                      flush=True)
            time.sleep(1.0)
        outs = {k: json.loads(next(ln for ln in _read(p).splitlines() if ln.startswith("{"))) for k, p in sims.items()}
        mon.wait(timeout=total_s + 60)
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=10)
    summary = json.loads((work / "monitor.jsonl").read_text().splitlines()[-1])
    inp = summary["input"]
    sent = sum(o["published"] for o in outs.values())
    missing = sent - inp["messages"] - inp["shed"]
    print(f"\nsent {sent} messages ({sent / total_s:.0f}/s over the run); simulator lag p99 "
          f"base {outs['base']['lag_p99_ms']} ms, surge {outs['surge']['lag_p99_ms']} ms")
    print(f"monitor: handled {inp['messages']} + shed at its input queue {inp['shed']} + missing {missing} = {sent}; "
          f"sequence gaps seen {inp['gaps']} ({inp['lost_chunks']} chunks); beats shed {summary['shed']}")
    ok = summary["segmented"] == summary["beats"] + summary["shed"]
    print(f"beats: segmented {summary['segmented']} = judged {summary['beats']} + shed {summary['shed']}: "
          f"{'exact' if ok else 'MISMATCH (beats still queued or in flight at the stop)'}; "
          f"e2e latency p50 {summary['e2e_p50_ms']} ms, p99 {summary['e2e_p99_ms']} ms")
    events = [e for e in map(json.loads, journal.read_text().splitlines())
              if e["condition"] in ("monitor behind", "monitor overload")]
    for e in events:
        ref = t0_wall if e["state"] == "active" else (surge_end_wall or t0_wall + a.surge_s)
        what = "after the surge began" if e["state"] == "active" else "after the surge ended"
        print(f"{e['condition']:16s} {e['priority']:6s} {e['state']:8s} {e['time'] - ref:+7.2f} s {what}: "
              f"{e['message']}")
    if not events:
        print("no monitor behind / overload alarm was raised")
    thirds = [max((r for t, r in rss if k * total_s / 3 <= t < (k + 1) * total_s / 3), default=0.0) for k in range(3)]
    print(f"monitor RSS peak per third of the run: {' / '.join(f'{v:.1f}' for v in thirds)} MiB "
          f"(max {use.rss_max:.1f} MiB)")


if __name__ == "__main__":
    main()

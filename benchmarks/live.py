"""Live capacity: ``ecgmon simulate`` -> mosquitto -> ``ecgmon --source mqtt --no-ui``, all on this machine.

For each device count (250 Hz ECG5000 devices, 0.25 s int16 packets, QoS 1, real-time pace; ``--leads 2``: two
leads per packet, binary version 2) a
fresh broker, monitor and simulator run for ``--seconds``; then the sweep reports, per count:

- end-to-end verdict latency p50/p99/max: from the moment a device's packet was complete (its
  last sample's wall-clock time) to the verdict on the beat that packet closed - broker,
  queues, segmentation, batching and scoring included (one machine, one clock); ``steady p99``: the
  same over the beats at least 10 s into their bed's stream (the monitor's ``e2e_p99_ms_steady``).
  Every device starts in the same second here, so every bed's detector hands in its first beats in the
  same second too: a burst of a few beats per bed that the whole-run p99 includes.  A count is judged
  sustained on the whole run; the steady figure says what the burst cost;
- messages lost: published by the simulator but never handled by the monitor, plus chunks the
  monitor's stream repair found missing, plus messages or beats the monitor shed;
- how late the simulator itself sent (its pacing lag), so a saturated publisher is not
  mistaken for a slow monitor;
- CPU (% of one core, averaged over the run) and peak RSS of each process.

Devices send samples only, as real ones do (``--labels`` adds the simulator's ground-truth
topic, one more message per beat, and the agreement with the offline verdicts).

With ``--workers N`` one ``ecgmon --workers N`` (a router and N worker processes, each receiving only its
own devices' messages) judges the devices; ``--shard`` instead runs N separate monitors sharing them with
``--shard i/N`` (each receives every message).  CPU is the sum of the monitor's processes, latency the worst
worker's; ``cpu ms/msg`` and ``ms/beat`` divide the monitor processes' CPU time by the messages sent and the
beats judged (the capacity measure where the cores for N workers are not there).

``--server nats`` (or ``both``: each count on mosquitto, then on NATS) publishes the devices' MQTT to
nats-server's MQTT listener and runs one ``ecgmon --source nats`` worker on its JetStream partitions (4), for the
one-worker-on-NATS against one-on-mosquitto comparison of docs/workers.md; with ``--workers N`` N NATS workers,
worker I preferring the partitions p with p % N == I (``--shard I/N``), each receiving only its partitions'
messages.

A count is *sustained* when e2e p99 <= 250 ms and nothing is lost.  The sweep stops after the
first count that is not sustained (``--keep-going`` runs them all).

    .venv/bin/python benchmarks/live.py [--devices 100,200,400,600,800,1000] [--seconds 30]

Needs mosquitto on the PATH or in /usr/sbin.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ecgmon.monitor.mosquitto import free_port, start_mosquitto
from ecgmon.monitor.natsserver import server_config, start_nats

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
# the example deployment's queue settings (deploy/mosquitto/mosquitto.conf), on a plain loopback listener
BROKER_CONF = ("set_tcp_nodelay true\nmax_inflight_messages 100\nmax_queued_messages 10000\n"
               "persistence false\nallow_anonymous true\n")


def start_broker(conf: Path, log) -> tuple[subprocess.Popen, str]:
    """mosquitto on a free loopback port with BROKER_CONF; returns (process, url) once it listens."""
    port = free_port()
    try:
        return start_mosquitto(conf, port, log, BROKER_CONF), f"mqtt://127.0.0.1:{port}"
    except RuntimeError as err:
        sys.exit(str(err))


@dataclass
class Usage:
    """CPU seconds and peak RSS of one process, sampled from /proc."""

    pid: int
    cpu0: float = 0.0
    cpu: float = 0.0
    rss_max: float = 0.0
    samples: list[float] = field(default_factory=list)

    def read(self) -> None:
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{self.pid}/statm") as f:
                rss = int(f.read().split()[1]) * PAGE / 2**20
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return
        cpu = (int(parts[11]) + int(parts[12])) / TICK  # utime + stime
        if not self.samples:
            self.cpu0 = cpu
        self.cpu = cpu
        self.rss_max = max(self.rss_max, rss)
        self.samples.append(rss)


def descendants(pid: int) -> list[int]:
    """A process's children, theirs, and so on (``ecgmon --workers N``: its fork server and the workers)."""
    try:
        kids = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return []
    return kids + [d for k in kids for d in descendants(k)]


def start_nats_server(work: Path, tag: str, log, partitions: int) -> tuple[subprocess.Popen, str, str]:
    """nats-server (JetStream, the MQTT listener, the partition mappings) on free loopback ports; returns
    (process, nats url, the MQTT url the devices publish to)."""
    port, mqtt_port = free_port(), free_port()
    (work / f"nats-{tag}").mkdir(exist_ok=True)
    text = server_config(name=f"bench-{tag}", port=port, mqtt_port=mqtt_port, store_dir=work / f"nats-{tag}",
                         partitions=partitions)
    proc = start_nats(work / f"nats-{tag}.conf", text, (port, mqtt_port), log)
    return proc, f"nats://127.0.0.1:{port}", f"mqtt://127.0.0.1:{mqtt_port}"


def run_one(devices: int, seconds: float, work: Path, exe: Path, labels: bool = False, workers: int = 1,
            shard: bool = False, server: str = "mosquitto", profile: Path | None = None, leads: int = 1,
            extra: Sequence[str] = (), run: int = 0) -> dict:
    tag = f"{devices}x{workers}{'s' if shard else ''}{server[0]}{run}"
    # monitor processes started here: --shard's N monitors, or N NATS workers (each preferring its share of the
    # partitions: --shard I/N), or one (ecgmon --workers N forks its own)
    separate = workers if shard or server == "nats" else 1
    outs = [work / f"monitor-{tag}-{w}.jsonl" for w in range(separate)]
    with contextlib.ExitStack() as files:
        logs = {name: files.enter_context(open(work / f"{name}-{tag}.log", "wb"))
                for name in ("broker", "monitor", "simulate")}
        if server == "nats":  # devices publish MQTT to the NATS server's listener; one ecgmon --source nats worker
            broker, nats_url, url = start_nats_server(work, tag, logs["broker"], partitions=4)
            source = ["--source", "nats", "--nats", nats_url, "--partitions", "4", "--worker", f"bench-{tag}-{{w}}"]
        else:
            broker, url = start_broker(work / f"mosquitto-{tag}.conf", logs["broker"])
            source = ["--source", "mqtt", "--broker", url, "--no-persistent", "--client-id", f"bench-{tag}-{{w}}"]
        mons = []
        for w in range(separate):
            split = ((["--shard", f"{w}/{workers}"] if shard or server == "nats" else ["--workers", str(workers)])
                     if workers > 1 else [])
            # --profile: the monitor under cProfile (main thread CPU clock), as benchmarks/profile_monitor.py runs it
            cmd = ([sys.executable, str(Path(__file__).with_name("profile_monitor.py")), f"{profile}.{tag}.{w}", "--"]
                   if profile is not None else [str(exe)])
            mons.append(subprocess.Popen(
                [*cmd, *(a.format(w=w) for a in source), "--no-ui",
                 "--journal", str(work / f"alarms-{tag}-{w}.jsonl"), "--duration",
                 str(seconds + 300), "--learn-state", "none", *split, *extra],
                stdout=files.enter_context(open(outs[w], "wb")), stderr=logs["monitor"]))
        time.sleep(5)  # models loaded, connected and subscribed
        if separate < workers:  # ecgmon --workers N: until every worker says it is ready
            deadline = time.monotonic() + 120
            while outs[0].read_text().count('"state": "ready"') < workers and time.monotonic() < deadline:
                time.sleep(0.5)
        t_sim = time.monotonic()
        sim = subprocess.Popen([str(exe), "simulate", "--devices", str(devices), "--duration", str(seconds),
                                "--format", "int16", "--leads", str(leads), "--broker", url, "--speed", "1",
                                "--client-id", f"sim-{tag}",
                                *([] if labels else ["--no-labels"])],
                               stdout=subprocess.PIPE, stderr=logs["simulate"])
        usage = {"simulate": Usage(sim.pid), "broker": Usage(broker.pid)}
        usage.update({f"monitor{w}": Usage(m.pid) for w, m in enumerate(mons)})
        usage.update({f"monitor-child{c}": Usage(c) for m in mons for c in descendants(m.pid)})
        while sim.poll() is None:
            for u in usage.values():
                u.read()
            time.sleep(1.0)
        span = time.monotonic() - t_sim
        sim_out = sim.stdout.read().decode() if sim.stdout else ""
        sim_summary: dict[str, int] = next(
            (json.loads(line) for line in sim_out.splitlines() if line.startswith("{")), {})
        time.sleep(6)  # the last packets judged; then stopped as a user would (SIGINT: the summary is written)
        for m in mons:
            m.send_signal(signal.SIGINT)
        for m in mons:
            m.wait(timeout=60)
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=20)
    sent = sim_summary.get("published", 0) + sim_summary.get("labels", 0)
    sums = []
    router_shed = 0
    for w, out in enumerate(outs):
        lines = out.read_text().splitlines()
        summary = json.loads(lines[-1]) if lines else {}
        if summary.get("type") != "summary":
            raise RuntimeError(f"monitor {w} gave no summary; see {work}/monitor-{tag}.log")
        # ecgmon --workers N: the router's summary holds each worker's; the router's own shed counts too
        per = summary.get("per_worker", [summary])
        sums += per
        router_shed += summary["shed_messages"] - sum(p["shed_messages"] for p in per)
    handled = [s["input"]["messages"] for s in sums]
    # --shard: every worker receives every message (it discards other shards' devices before decoding);
    # otherwise each message reaches one worker
    missing = sum(max(0, sent - h) for h in handled) if shard and server != "nats" else max(0, sent - sum(handled))
    lost = missing + router_shed + sum(s["input"]["lost_chunks"] + s["shed"] + s["shed_messages"] for s in sums)
    cpu_s = sum(u.cpu - u.cpu0 for k, u in usage.items() if k.startswith("monitor"))
    beats = sum(s["beats"] for s in sums)
    cpu = {k: round(100 * (u.cpu - u.cpu0) / span, 1) for k, u in usage.items()}
    cpu["monitor"] = round(sum(v for k, v in cpu.items() if k.startswith("monitor")), 1)
    rss = {k: round(u.rss_max, 1) for k, u in usage.items()}
    rss["monitor"] = max(v for k, v in rss.items() if k.startswith("monitor"))
    return {
        "devices": devices, "workers": workers, "server": server,
        "mode": ("nats-partitions" if server == "nats" else "shard" if shard else "router") if workers > 1 else "one",
        "sent": sent, "handled": handled, "devices_per_worker": [s["input"]["devices"] for s in sums], "lost": lost,
        "beats": beats, "cpu_ms_per_msg": round(1000 * cpu_s / max(sent, 1), 3),
        "cpu_ms_per_beat": round(1000 * cpu_s / max(beats, 1), 3),
        # several workers: the worst worker's figure (percentiles of separate runs do not add up)
        "e2e_p50_ms": max(s["e2e_p50_ms"] or 0 for s in sums), "e2e_p99_ms": max(s["e2e_p99_ms"] or 0 for s in sums),
        "e2e_max_ms": max(s["e2e_max_ms"] or 0 for s in sums),
        # beats at least steady_after_s into their bed's stream: without the first beats of every bed at once
        # (None: a checkout whose monitor does not report it)
        "e2e_p99_ms_steady": (max(s["e2e_p99_ms_steady"] or 0 for s in sums)
                              if all("e2e_p99_ms_steady" in s for s in sums) else None),
        "sim_lag_p99_ms": sim_summary.get("lag_p99_ms"), "cpu": cpu, "rss_mib": rss,
        "agreement_offline": [s.get("agreement_offline") for s in sums],
        # the longest the event loop was held by one flush of the beds' typing and VF work (the worst worker's)
        "flush_max_ms": max((s.get("flushes") or {}).get("max_ms") or 0 for s in sums),
        "flushes": sum((s.get("flushes") or {}).get("count") or 0 for s in sums),
        "round_max_ms": max(s.get("round_max_ms") or 0 for s in sums),
        "time_s": [s.get("time_s") for s in sums],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", default="100,200,400,600,800,1000")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--keep-going", action="store_true")
    ap.add_argument("--workers", type=int, default=1, help="worker processes: ecgmon --workers N (or, with --shard, "
                                                           "N monitors with --shard i/N)")
    ap.add_argument("--shard", action="store_true", help="N separate monitors with --shard i/N instead of --workers N")
    ap.add_argument("--server", choices=("mosquitto", "nats", "both"), default="mosquitto",
                    help="the devices' MQTT server: mosquitto and ecgmon --source mqtt, or nats-server's MQTT listener "
                         "and one ecgmon --source nats worker (JetStream partitions); both: each count on each")
    ap.add_argument("--profile", type=Path, help="run each monitor under cProfile (main thread CPU clock); the stats "
                    "go to PROFILE.<count tag>.<worker> (read with pstats); its figures are not capacity figures")
    ap.add_argument("--labels", action="store_true",
                    help="devices also publish the true beats (one more message per beat; real devices send none)")
    ap.add_argument("--leads", type=int, choices=(1, 2), default=1,
                    help="2: two-lead devices (lead II and V1 in every packet, binary version 2: ecgmon simulate "
                         "--leads 2); the monitor segments both, the second for the lethal alarms")
    ap.add_argument("--monitor-args", action="append", default=None, metavar="ARGS",
                    help="options for the monitor (e.g. '--switch-interval-ms 5'); given more than once, each count "
                         "runs once with each, alternating, in this run (settings compared side by side)")
    a = ap.parse_args()
    exe = Path(sys.executable).parent / "ecgmon"
    work = Path(tempfile.mkdtemp(prefix="ecgmon-live-"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{a.seconds:g} s per count; {a.leads} lead(s) per device; {a.workers} monitor worker(s)"
          f"{' (--shard)' if a.shard else ''}; logs in {work}",
          flush=True)
    print(f"{'devices':>7} {'sent':>8} {'lost':>5} {'beats':>7} {'e2e p50':>8} {'p99':>7} {'max':>7} "
          f"{'steady p99':>10} {'sim lag p99':>11}  CPU % monitor/broker/simulator   peak RSS MiB   "
          "monitor CPU ms/msg ms/beat",
          flush=True)
    best = None
    for n in (int(v) for v in a.devices.split(",")):
        oks = []
        variants = [v.split() for v in a.monitor_args] if a.monitor_args else [[]]
        servers = ("mosquitto", "nats") if a.server == "both" else (a.server,)
        for server, (run, extra) in ((s, v) for s in servers for v in enumerate(variants)):
            r = run_one(n, a.seconds, work, exe, a.labels, a.workers, a.shard, server, a.profile, a.leads,
                        extra, run)
            ok = r["lost"] == 0 and r["e2e_p99_ms"] is not None and r["e2e_p99_ms"] <= 250
            oks.append(ok)
            c, m, steady = r["cpu"], r["rss_mib"], r["e2e_p99_ms_steady"]
            print(f"{n:7d} {r['sent']:8d} {r['lost']:5d} {r['beats']:7d} {r['e2e_p50_ms']:8.1f} "
                  f"{r['e2e_p99_ms']:7.1f} {r['e2e_max_ms']:7.1f} "
                  f"{'-' if steady is None else f'{steady:.1f}':>10} "
                  f"{r['sim_lag_p99_ms'] or 0:11.1f}  "
                  f"{c['monitor']:5.1f} / {c['broker']:5.1f} / {c['simulate']:5.1f}   "
                  f"{m['monitor']:.0f} / {m['broker']:.0f} / {m['simulate']:.0f}   "
                  f"{r['cpu_ms_per_msg']:.3f} {r['cpu_ms_per_beat']:.3f}  {server}"
                  f"{'  ' + ' '.join(extra) if extra else ''}"
                  f"  {'sustained' if ok else 'NOT sustained'}"
                  f"{'' if ok or r['lost'] or steady is None or steady > 250 else ' (steady p99 within 250 ms)'}",
                  flush=True)
            print("  " + json.dumps(r), flush=True)
        if all(oks):
            best = n
        elif not a.keep_going:
            break
    print(f"largest device count sustained (p99 <= 250 ms, nothing lost): {best}")


if __name__ == "__main__":
    main()

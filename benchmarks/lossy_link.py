"""Beats found on a lossy device link, bridged (``--bridge-s``) and not, side by side in one run.

Each MIT-BIH record (lead MLII) is streamed through the monitor's segmentation stage as a live device's 0.25 s
packets, a share of them lost at random after the first 10 s (seeded), each packet after a loss carrying ``reset``
and the samples missing, as ``DeviceStream`` releases them.  Printed per record and setting: the reference beats
(any class) in the samples that arrived (none within 0.1 s of a lost sample), those found within 150 ms, detections
near no reference beat at all (false), beats given no verdict, bridges, and whether ``signal loss`` is on at the end.

    .venv/bin/python benchmarks/lossy_link.py --records 119 101 208 203 --drop 0.1 --seconds 600
"""

from __future__ import annotations

import argparse
import io
import time
import warnings
from pathlib import Path

import numpy as np
import wfdb

from ecgmon.core.messages import Beat, Chunk, Condition
from ecgmon.monitor.app import build
from ecgmon.monitor.config import MonitorConfig
from ecgmon.monitor.settings import PipelineConfig

BEATS = set("NLRBAaJSVrFejnE/fQ?")


def play(path: Path, *, drop: float, seconds: float, bridge_s: float, seed: int) -> dict[str, object]:
    """One record as a lossy device: the figures of the module docstring."""
    with warnings.catch_warnings():  # wfdb's own use of deprecated pandas calls
        warnings.simplefilter("ignore")
        rec = wfdb.rdrecord(str(path), channel_names=["MLII"])
        ann = wfdb.rdann(str(path), "atr")
    fs = float(rec.fs)
    x = rec.p_signal[: int(seconds * fs), 0].astype(np.float32)
    cfg = MonitorConfig(source="record", records=(path,), speed=None, ui=False, device="cpu",
                        journal=Path("/tmp/ecgmon-lossy-link.jsonl"), learn_state=None,
                        pipeline=PipelineConfig(bridge_s=bridge_s))
    b = build(cfg, out=io.StringIO())
    mon = b.monitor
    try:
        rng = np.random.default_rng(seed)
        n = int(0.25 * fs)
        kept = np.zeros(len(x), bool)
        beats: list[Beat] = []
        missing, t0 = 0, time.time() - len(x) / fs
        for i in range(0, len(x) - n + 1, n):
            if i > 10 * fs and rng.random() < drop:
                missing += n
                continue
            kept[i:i + n] = True
            beats += mon.segment(Chunk(path.name, fs, t0 + i / fs, x[i:i + n], start=i, reset=missing > 0,
                                       missing=missing))
            missing = 0
        w, tol = int(0.1 * fs), int(0.15 * fs)
        ref = np.array([s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in BEATS and s < len(x)])
        arrived = [s for s in ref if w <= s < len(x) - w and kept[s - w:s + w].all()]
        idx = np.sort([bt.index for bt in beats])
        found = sum(1 for s in arrived if len(idx) and np.min(np.abs(idx - s)) <= tol)
        false = sum(1 for v in idx if not len(ref) or np.min(np.abs(ref - v)) > tol)
        st = mon.beds[path.name]
        return {"arrived": len(arrived), "found": found, "false": false, "no_verdict": sum(bt.noisy for bt in beats),
                "bridged": st.bridged, "signal_loss_on": Condition.SIGNAL_LOSS in st.book.active}
    finally:
        mon.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/mitdb-ds1"))
    ap.add_argument("--records", nargs="+", default=["119", "101", "208", "203"])
    ap.add_argument("--drop", type=float, default=0.1, help="share of packets lost")
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bridge-s", type=float, nargs="+", default=[1.0, 0.0], help="settings compared")
    a = ap.parse_args()
    print(f"{len(a.records)} records, {a.seconds:g} s each, 0.25 s packets, {a.drop:.0%} lost after 10 s (seed "
          f"{a.seed})")
    print(f"{'record':>7} {'bridge_s':>8} {'arrived':>7} {'found':>6} {'Se %':>6} {'false':>5} {'no verdict':>10} "
          f"{'bridged':>7}  signal loss at the end")
    for name in a.records:
        for bridge in a.bridge_s:
            r = play(a.data / name, drop=a.drop, seconds=a.seconds, bridge_s=bridge, seed=a.seed)
            arrived, found = int(r["arrived"]), int(r["found"])  # type: ignore[call-overload]
            print(f"{name:>7} {bridge:>8g} {arrived:>7} {found:>6} {100 * found / max(1, arrived):>6.1f} "
                  f"{r['false']:>5} {r['no_verdict']:>10} {r['bridged']:>7}  {r['signal_loss_on']}")


if __name__ == "__main__":
    main()

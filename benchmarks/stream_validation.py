"""Model selection through the streaming path, on validation data only.

Replays the protocol's *validation* split (never the test split) through the causal
segmenter at the given rates, and reports for a checkpoint: validation ROC-AUC and accuracy
at its calibrated threshold, segmentation (true beats matched within 20 ms), agreement of the
verdicts on segmented beats with the verdicts on the same dataset beats, and streaming accuracy.

    .venv/bin/python benchmarks/stream_validation.py [CHECKPOINT ...] [--fs 250 500]
"""

from __future__ import annotations

import argparse

import numpy as np

from ecgmon.evaluation.product import roc_auc
from ecgmon.models.checkpoint import load
from ecgmon.models.train import losses
from ecgmon.segmentation.beats import Segmenter
from ecgmon.simulators.replay import chunks, plan_patients


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="*", default=[None], help="default: the shipped product checkpoint")
    ap.add_argument("--fs", type=float, nargs="+", default=[250.0, 500.0])
    ap.add_argument("--patients", type=int, default=8)
    a = ap.parse_args()
    for path in a.checkpoints:
        ck = load(path)
        split = ck.data_split()
        val = split.part("val")
        lv = losses(ck.model, val.x)
        ab = val.y != 1
        print(f"{ck.name}: validation AUC {roc_auc(lv, ab):.4f}, accuracy {np.mean((lv > ck.threshold) == ab):.4f} "
              f"at threshold {ck.threshold:.4f}")
        for fs in a.fs:
            plans = plan_patients(split.pool.x, split.pool.y, split.val, patients=a.patients, fs=fs, seed=0)
            xs, refs, n_true, n_found = [], [], 0, 0
            for pl in plans:
                seg = Segmenter(pl.patient, fs)
                beats = [b for c in chunks(pl) for b in seg.push(c.samples)]
                n_true += len(pl.starts)
                n_found += len(beats)
                for b in beats:
                    k = int(np.argmin(np.abs(pl.starts - b.index)))
                    if abs(pl.starts[k] - b.index) <= 0.020 * fs:
                        xs.append(b.samples)
                        refs.append(pl.refs[k])
            r = np.asarray(refs)
            stream = losses(ck.model, np.asarray(xs)) > ck.threshold
            offline = losses(ck.model, split.pool.x[r]) > ck.threshold
            truth = split.pool.y[r] != 1
            print(f"  {fs:g} Hz: {len(r)}/{n_true} true beats matched (sens {len(r) / n_true:.4f}, "
                  f"PPV {len(r) / n_found:.4f}); agreement {np.mean(stream == offline):.4f}; "
                  f"accuracy streaming {np.mean(stream == truth):.4f} vs offline {np.mean(offline == truth):.4f}")


if __name__ == "__main__":
    main()

"""Fitting the V typer's waveform network (:mod:`ecgmon.segmentation.vnet`), with record-level cross-validation.

``waves``: for every beat the live typer measured in a ``python -m ecgmon.evaluation.veb beats`` run (MIT-BIH DS1
and the SVDB development half, the records with beat labels), the network's inputs as the live typer makes them:
the beat's window (the first lead band-passed 1-35 Hz by the typer's causal filter, from 0.25 s before the QRS
centre to 0.40 s after it, interpolated at 100 Hz, z-normalised), its template's window (the medoid, by median
correlation of the QRS windows, of the bed's previous 48 typed beats; from the bed's 5th beat on) and the typer's
measurements.  ``fit``: 5 folds by record (:func:`ecgmon.evaluation.veb.fold_of`); in each, the additive model, the
network (Adam, 6 epochs, batches of 256, +/- 2-sample shifts, positive class weighted by the square root of the
class ratio, seed 0) and the threshold (best VEB F1 on the training records) come from the other folds' records,
and the held-out records are typed by them; then all records fit the shipped network
(``segmentation/assets/vnet.npz``).  VEB Se/+P as :func:`ecgmon.evaluation.veb.veb_stats` counts them (a beat typed
V that matches no reference beat counts against +P).

Command line (development data; not used by the tests)::

    python -m ecgmon.evaluation.veb beats --out build/veb/beats.npz --only mitdb-ds1,svdb-dev
    python -m ecgmon.evaluation.vnetfit waves build/veb/beats.npz --out build/veb/waves.npz
    python -m ecgmon.evaluation.vnetfit fit build/veb/waves.npz build/veb/beats.npz --report docs/results/vnet_fit.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ecgmon.evaluation.veb import LEARN_S, _Bed, _x, choose_threshold, decide, fit_model, fold_of, load_beats, veb_stats
from ecgmon.evaluation.vfdb import read_lead
from ecgmon.segmentation.filters import CausalFilter
from ecgmon.segmentation.vnet import ASSET, INPUTS, VNet, window_grid
from ecgmon.segmentation.vtype import FEATURES, MODEL, VTypeModel, VTyperConfig, hold_missing

DBS = ("mitdb-ds1", "svdb-dev")
GRID = window_grid()  # the shipped network's (VNet's defaults)


def windows(b: _Bed, cfg: VTyperConfig = VTyperConfig(net=None)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bed's beats' network windows (n, L), their templates' (n, L) and whether each had a template (n,)."""
    x, fs = read_lead(b.path)
    f = CausalFilter.bandpass(fs, *cfg.band_hz)(hold_missing(x))  # missing samples held, as the typer holds them
    c = b.rows[:, 1]
    wide = np.interp((c[:, None] + GRID[None, :] * fs).ravel(), np.arange(len(f)), f).reshape(len(c), -1)
    pre, post = round(cfg.pre_s * fs), round(cfg.post_s * fs)
    ci = np.clip(c.astype(np.int64), pre, len(f) - post - 1)
    q = f[ci[:, None] + np.arange(-pre, post + 1)]
    q = q - q.mean(axis=1, keepdims=True)
    q /= q.std(axis=1, keepdims=True) + 1e-9
    w = wide - wide.mean(axis=1, keepdims=True)
    w /= w.std(axis=1, keepdims=True) + 1e-9
    tw, has = np.zeros_like(w), np.zeros(len(c), bool)
    k = cfg.template_beats
    for i in range(cfg.min_template, len(c)):
        a = max(0, i - k)
        cc = q[a:i] @ q[a:i].T / q.shape[1]
        tw[i], has[i] = w[a + int(np.argmax(np.median(cc, axis=1)))], True
    return w.astype(np.float32), tw.astype(np.float32), has


def cmd_waves(args: argparse.Namespace) -> None:
    beds = [b for b in load_beats(args.beats, DBS) if len(b.rows)]
    out: dict[str, Any] = {}
    for k, b in enumerate(beds):
        out[f"w{k}"], out[f"t{k}"], out[f"h{k}"] = windows(b)
        out[f"n{k}"] = np.array(f"{b.db}/{b.path.name}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"{len(beds)} records -> {args.out}")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class _Data:
    def __init__(self, waves: str, beats: str) -> None:
        self.z = np.load(waves)
        self.beds = [b for b in load_beats(beats, DBS) if len(b.rows)]
        for k, b in enumerate(self.beds):
            if str(self.z[f"n{k}"]) != f"{b.db}/{b.path.name}":
                raise ValueError(f"{waves} does not match {beats} at record {k}")
        self.cols = [FEATURES.index(f) for f in INPUTS]

    def inputs(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (self.z[f"w{k}"], self.z[f"t{k}"], _x(self.beds[k])[:, self.cols].astype(np.float32), self.z[f"h{k}"])


def _torch_net() -> Any:
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Sequential(nn.Conv1d(3, 16, 7, padding=3), nn.ReLU(), nn.MaxPool1d(2),
                                      nn.Conv1d(16, 16, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
                                      nn.Conv1d(16, 16, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool1d(4))
            self.head = nn.Sequential(nn.Linear(64 + len(INPUTS), 32), nn.ReLU(), nn.Linear(32, 1))

        def forward(self, w: Any, t: Any, f: Any) -> Any:
            import torch
            h = self.conv(torch.stack([w, t, w - t], 1)).flatten(1)
            return self.head(torch.cat([h, f], 1)).squeeze(1)

    return Net()


def train(d: _Data, ks: list[int], *, epochs: int = 6, seed: int = 0) -> VNet:
    """The network fitted on the template beats of records ``ks`` that match a reference beat (V against the rest)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    parts = []
    for k in ks:
        w, t, f, h = d.inputs(k)
        y = d.beds[k].label
        m = h & (y >= 0)
        parts.append((w[m], t[m], f[m], (y[m] == 1).astype(np.float32)))
    wt, tt, ft, yt = (torch.from_numpy(np.concatenate([p[i] for p in parts])) for i in range(4))
    net = _torch_net()
    opt = torch.optim.Adam(net.parameters(), 2e-3, weight_decay=1e-4)
    share = float(yt.mean())
    lossf = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(math.sqrt((1 - share) / share)))
    for _ in range(epochs):
        perm = torch.randperm(len(yt))
        for i in range(0, len(yt), 256):
            j = perm[i:i + 256]
            s = int(rng.integers(-2, 3))  # the same small shift of beat and template
            loss = lossf(net(torch.roll(wt[j], s, 1), torch.roll(tt[j], s, 1), ft[j]), yt[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in net.state_dict().items()}
    convs = tuple((sd[f"conv.{i}.weight"], sd[f"conv.{i}.bias"]) for i in (0, 3, 6))
    return VNet(convs, (sd["head.0.weight"], sd["head.0.bias"]), (sd["head.2.weight"], sd["head.2.bias"]))


def joint(d: _Data, net: VNet, gam: VTypeModel, k: int, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """(the joined logit of each beat with a template, without ``shift``; which beats had one)."""
    w, t, f, h = d.inputs(k)
    return weight * net.logit(w, t, f) + (1 - weight) * gam.logit(_x(d.beds[k])), h


def flags(d: _Data, net: VNet, gam: VTypeModel, gthr: float, k: int, weight: float, thr: float) -> np.ndarray:
    z, h = joint(d, net, gam, k, weight)
    return np.where(h, z >= _logit(np.array(thr)), decide(d.beds[k], gam, gthr))


def choose(d: _Data, net: VNet, gam: VTypeModel, gthr: float, ks: list[int], weight: float) -> float:
    """The joined model's threshold with the best VEB F1 on records ``ks``."""
    best = (-1.0, 0.5)
    for thr in np.arange(0.2, 0.96, 0.05):
        s = veb_stats([d.beds[k] for k in ks], [flags(d, net, gam, gthr, k, weight, float(thr)) for k in ks])
        best = max(best, (2 * s["Se"] * s["+P"] / max(1e-9, s["Se"] + s["+P"]), round(float(thr), 2)))
    return best[1]


def cmd_fit(args: argparse.Namespace) -> None:
    d = _Data(args.waves, args.beats)
    n = len(d.beds)
    fold = [fold_of(f"{b.db}/{b.path.name}", args.folds) for b in d.beds]
    cv: list[np.ndarray] = [np.zeros(0, bool)] * n
    gam_cv: list[np.ndarray] = [np.zeros(0, bool)] * n
    thrs = []
    for i in range(args.folds):
        tr = [k for k in range(n) if fold[k] != i]
        gam = fit_model([d.beds[k] for k in tr])
        gthr = choose_threshold([d.beds[k] for k in tr], gam)
        net = train(d, tr, epochs=args.epochs)
        thr = choose(d, net, gam, gthr, tr, args.weight)
        thrs.append(thr)
        for k in range(n):
            if fold[k] == i:
                cv[k], gam_cv[k] = flags(d, net, gam, gthr, k, args.weight, thr), decide(d.beds[k], gam, gthr)
        print(f"fold {i + 1}/{args.folds}: threshold {thr}", flush=True)

    def by_db(fl: list[np.ndarray], **kw: float) -> dict[str, Any]:
        return {db: veb_stats([d.beds[k] for k in range(n) if d.beds[k].db == db],
                              [fl[k] for k in range(n) if d.beds[k].db == db], **kw) for db in DBS}

    net = train(d, list(range(n)), epochs=args.epochs)
    thr = choose(d, net, MODEL, VTyperConfig(net=None).threshold, list(range(n)), args.weight)
    shipped = VNet(net.convs, net.fc1, net.fc2, weight=args.weight,
                   shift=float(_logit(np.array(VTyperConfig(net=None).threshold)) - _logit(np.array(thr))))
    report = {
        "records": {db: sum(b.db == db for b in d.beds) for db in DBS},
        "weight": args.weight, "epochs": args.epochs,
        f"cv_{args.folds}_fold_by_record": {"network_joined": {"all": by_db(cv),
                                                               "after_5_min": by_db(cv, after_s=LEARN_S)},
                                            "additive_model_alone": {"all": by_db(gam_cv),
                                                                     "after_5_min": by_db(gam_cv, after_s=LEARN_S)},
                                            "thresholds": thrs},
        "shipped": {"threshold": thr, "shift": shipped.shift},
        "per_record_cv": {f"{b.db}/{b.path.name}": {"joined": veb_stats([b], [cv[k]]),
                                                    "additive": veb_stats([b], [gam_cv[k]])}
                          for k, b in enumerate(d.beds)},
    }
    print(json.dumps({k: v for k, v in report.items() if k != "per_record_cv"}, indent=1))
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=1))
    if args.out:
        shipped.save(args.out)
        print(f"network -> {args.out}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ecgmon.evaluation.vnetfit", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("waves", help="the network's inputs of every labelled development beat")
    w.add_argument("beats")
    w.add_argument("--out", default="build/veb/waves.npz")
    f = sub.add_parser("fit", help="5-fold CV by record, then the shipped network")
    f.add_argument("waves")
    f.add_argument("beats")
    f.add_argument("--folds", type=int, default=5)
    f.add_argument("--epochs", type=int, default=6)
    f.add_argument("--weight", type=float, default=0.5, help="the network's share of the joined logit")
    f.add_argument("--report", default="")
    f.add_argument("--out", default=str(ASSET))
    args = ap.parse_args(argv)
    {"waves": cmd_waves, "fit": cmd_fit}[args.cmd](args)


if __name__ == "__main__":
    main()

"""The ``ecgmon`` command: the top layer, which composes the monitor, fitting and evaluation.

``ecgmon [monitor options]`` runs the monitor (``ecgmon --source replay``); the
subcommands ``train``, ``calibrate`` and ``evaluate`` do the rest.
Run ``ecgmon --help`` or ``ecgmon SUBCOMMAND --help``.

Each subcommand imports what it uses when it runs (nothing imports this module, so there is no cycle to
dodge): ``ecgmon --help`` starts without torch, and ``ecgmon train`` never loads the console or aiomqtt.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.measure import Measurement

from ecgmon.core.limits import LEARN_S, MATCH_WINDOW_S, default_threads

if TYPE_CHECKING:
    from ecgmon.models.records import Recording

SUBCOMMANDS = ("monitor", "train", "calibrate", "evaluate", "simulate", "data", "review", "demo", "bridge")
EPILOG = """\
subcommands (each has --help):
  ecgmon [monitor] --source replay   run the monitor (the default when no subcommand is given)
  ecgmon train                       train the LSTM autoencoder, calibrate, save a checkpoint
  ecgmon calibrate                   re-derive a checkpoint's threshold with another rule
  ecgmon evaluate                    metrics, tables and figures of a checkpoint on a protocol's test split
  ecgmon simulate                    bedside devices publishing ECG over MQTT
  ecgmon data fetch mitdb            download the MIT-BIH Arrhythmia Database from PhysioNet (checked)
  ecgmon review JOURNAL --out DIR    one HTML page of a shift's alarms, each with its ECG strip
  ecgmon demo                        a broker, simulated bedside devices and the monitor, in one command

examples:
  ecgmon --source replay --patients 8 --speed 1
  ecgmon --source replay --speed max --no-ui --duration 60
  ecgmon evaluate --protocol product --out runs/eval
  ecgmon --source record ../shared/data/mitdb-ds1/119 --speed 10
  ecgmon evaluate --protocol mitdb --data ../shared/data/mitdb-ds1 --out runs/mitdb
"""


def _add_common_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--data", type=Path, action="append", default=None,
                   help="product/ucr: folder with ECG5000_TRAIN/TEST as .txt/.tsv/.arff (default: the bundled copy). "
                        "Other protocols: a folder of records (required); mitdb: may be given more than once (e.g. "
                        "MIT-BIH DS1 and SVDB): their records are pooled, each known by its folder name as its "
                        "database")


LEAD_HELP = ("mitdb: lead, by name (case-insensitive; MLII = II = ECG II) or '#k', the k-th signal (leads that "
             "share a name, as VFDB's two 'ECG'); a record without it is left out. "
             "Once: for every --data; or once per --data, in the same order. Default: II, else the first lead "
             "(MLII on MIT-BIH, ECG1 on SVDB)")


def _one_data(a: argparse.Namespace) -> None:
    """Protocols other than mitdb take one --data folder and one --lead: a list of them becomes that one."""
    for key in ("data", "lead"):
        v = getattr(a, key, None)
        if isinstance(v, list):
            if len(v) > 1:
                raise ValueError(f"--{key} is given {len(v)} times; --protocol {a.protocol} takes it once")
            setattr(a, key, v[0])


def _add_real_settings(p: argparse.ArgumentParser) -> None:
    """The real-ECG model's training settings (RealConfig), for ``evaluate --cv`` (``train`` has its own)."""
    g = p.add_argument_group("mitdb --cv: training settings of each fold's model (as for `ecgmon train`)")
    g.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    g.add_argument("--hidden", type=int, default=None, help="LSTM units (default from RealConfig)")
    g.add_argument("--embedding", type=int, default=None, help="embedding size (default from RealConfig)")
    g.add_argument("--epochs", type=int, default=None, help="epochs (default from RealConfig)")
    g.add_argument("--noise", type=float, default=None, help="denoising input noise (z units); 0 = off")


def _real_config(a: argparse.Namespace) -> Any:
    """The RealConfig of --seed, --epochs, --hidden, --embedding, --noise and --learn (window beats have no cut
    jitter: --max-shift does not apply to the real-ECG model)."""
    from ecgmon.models.realecg import RealConfig

    return dataclasses.replace(RealConfig(seed=a.seed), **{k: v for k, v in (
        ("epochs", a.epochs), ("hidden", a.hidden), ("embedding", a.embedding), ("noise", a.noise)) if v is not None},
        learn_s=a.learn)


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train, calibrate and save a checkpoint",
                       description="Train the LSTM autoencoder on a protocol's normal training beats, early-stop "
                                   "on validation loss, calibrate the threshold on validation beats, report the "
                                   "test split, and save a checkpoint.")
    p.add_argument("--protocol", choices=("product", "ucr", "mitdb"), default="product",
                   help="mitdb: the real-ECG model, on annotated records in --data (window beats, per-bed "
                        "learning; see docs/recordings.md)")
    p.add_argument("--records", nargs="*", default=None,
                   help="mitdb: record names, each looked up in the --data folders (default: all)")
    p.add_argument("--lead", action="append", default=None, help=LEAD_HELP)
    p.add_argument("--chosen-by", default=None,
                   help="mitdb: how the training settings were chosen (text stored in the checkpoint's metadata)")
    p.add_argument("--learn", type=float, default=LEARN_S,
                   help="mitdb: each bed's learning period (s) the per-bed margin is calibrated after")
    p.add_argument("--seed", type=int, default=0, help="split and training seed (default 0)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint path to write (.pt)")
    p.add_argument("--hidden", type=int, default=None, help="LSTM units (default from AEConfig)")
    p.add_argument("--embedding", type=int, default=None, help="embedding size (default from AEConfig)")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (default from TrainConfig)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs")
    p.add_argument("--max-shift", type=float, default=None,
                   help="product/ucr: segmentation-jitter augmentation: samples (of 140) each cut end may move; "
                        "0 = off (window beats of the real-ECG model have none)")
    p.add_argument("--noise", type=float, default=None, help="denoising input noise (z units); 0 = off")
    p.add_argument("--rule", default="max-f1", help="calibration rule (see `ecgmon calibrate --help`)")
    p.add_argument("--param", type=float, default=None, help="calibration rule parameter")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    _add_common_model(p)


def _calibrate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="set a checkpoint's threshold with a rule",
                       description="Compute the threshold from the checkpoint's validation split and store the "
                                   "rule and value in the checkpoint. Rules: percentile (PARAM-th percentile of "
                                   "validation-normal losses, default 99), mean+k*std (default k=3), max-f1, "
                                   "youden (label-aware, on validation beats).")
    p.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped checkpoint")
    p.add_argument("--rule", choices=("percentile", "mean+k*std", "max-f1", "youden"), default="max-f1")
    p.add_argument("--param", type=float, default=None)
    p.add_argument("--out", type=Path, default=None, help="write here instead of overwriting --checkpoint")
    _add_common_model(p)


def _evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="metrics and figures on a protocol's test split",
                       description="product/ucr: score the protocol's ECG5000 test split with the checkpoint at its "
                                   "calibrated threshold. mitdb: play annotated records (--data) through the live "
                                   "pipeline and count EC57 statistics (5-minute learning period, 150 ms window, "
                                   "paced records excluded) and the alarm burden. qrs / nstdb / ec13: QRS detection "
                                   "and heart rate only (no model). cinc2015: the CinC 2015 ICU alarms, per type TP, "
                                   "FN, FP, TN and the Challenge score. vfdb: VT and VF/flutter episodes alarmed "
                                   "within 10 s, delays, false lethal alarms per bed-day. Every protocol but "
                                   "product/ucr needs --data. Prints tables; writes DIR/metrics.json and PNG figures.")
    p.add_argument("--protocol", choices=("product", "ucr", "mitdb", "qrs", "nstdb", "ec13", "cinc2015", "vfdb"),
                   default="product",
                   help="qrs / nstdb / ec13: QRS detection and heart rate only (no model), records in --data")
    p.add_argument("--records", nargs="*", default=None,
                   help="record names, each looked up in the --data folders (default: all)")
    p.add_argument("--lead", action="append", default=None,
                   help=LEAD_HELP.replace("mitdb: lead,", "lead to play (every record protocol),"))
    p.add_argument("--second-lead", action=argparse.BooleanOptionalAction, default=None,
                   help="mitdb / cinc2015 / vfdb: each record's second ECG lead is played beside the first, and the "
                        "lethal alarms are decided on both (docs/alarms.md, 'A second lead'); qrs / nstdb: it "
                        "confirms the beats found in noise (docs/recordings.md). Default: as the monitor, where a "
                        "WFDB record or an EDF file has one; --no-second-lead plays one lead")
    p.add_argument("--learn", type=float, default=LEARN_S,
                   help=f"mitdb: each bed's learning period, seconds (excluded from every figure; default {LEARN_S:g})")
    p.add_argument("--cv", type=int, default=None, metavar="K",
                   help="mitdb: record-level K-fold cross-validation: fit the real-ECG model on K-1 folds' records, "
                        "evaluate the held-out fold, every record once (trains K models). Folds: the records of "
                        "all --data folders sorted by (folder, name), record i in fold i mod K (stratified by "
                        "database, no seed); figures pooled and per database")
    p.add_argument("--folds", type=int, nargs="+", default=None, metavar="I",
                   help="mitdb --cv K: run only these folds (1..K), judging fewer records (default: all K)")
    p.add_argument("--packet-s", type=float, default=0.25,
                   help="mitdb / cinc2015 / vfdb: each record played in chunks of this many seconds, as a device's "
                        "packets (default 0.25; 0.01-10): how much the alarms depend on a device's packet length")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="default: the shipped checkpoint of that protocol")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default runs/eval/PROTOCOL: one protocol's metrics.json does not overwrite "
                        "another's)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (the protocols that play records through the monitor)")
    _add_real_settings(p)
    _add_common_model(p)
    from ecgmon.monitor.config import add_alarm_arguments

    add_alarm_arguments(p)  # mitdb, cinc2015, vfdb: the alarm settings to measure (default: the monitor's)


def _alarm_settings(a: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """The alarm settings of the command line (PolicyConfig, LethalConfig) and, for metrics.json, the options that
    differ from the monitor's defaults (empty: the defaults a user gets)."""
    from ecgmon.monitor.alarms import PolicyConfig
    from ecgmon.monitor.config import lethal_from_args, policy_from_args
    from ecgmon.monitor.lethal import LethalConfig

    policy, lethal = policy_from_args(a), lethal_from_args(a)
    changed = {}
    for name, got, default in (("policy", policy, PolicyConfig()), ("lethal", lethal, LethalConfig())):
        changed.update({f"{name}.{k}": v for k, v in dataclasses.asdict(got).items() if v != getattr(default, k)})
    return policy, lethal, changed


def _read_records(a: argparse.Namespace, *, second_lead: bool | None = False) -> tuple[list[Recording], list[str]]:
    """The evaluable records of --data, and one line per record left out (unreadable, no lead, no
    annotations), each also printed on stderr; every file checked before any output. ``second_lead``
    as `read_all`: False (training: the model is fitted on the first lead only), None (where a record
    has one), True."""
    from ecgmon.evaluation import ec57
    from ecgmon.models.records import read_all

    if not a.data:
        raise ValueError("--protocol mitdb needs --data DIR (the records; `ecgmon data fetch mitdb` downloads them)")
    dirs: list[Path] = list(a.data)
    leads: list[str | None] = list(a.lead or [None])
    if len(leads) == 1:
        leads *= len(dirs)
    if len(leads) != len(dirs):
        raise ValueError(f"--lead is given {len(leads)} times for {len(dirs)} --data folders: give it once "
                         "(every folder) or once per --data, in the same order")
    paths: list[list[Path]] = [[d] for d in dirs]
    if a.records:  # each name in the folder that has it
        paths = [[] for _ in dirs]
        for r in a.records:
            where = [i for i, d in enumerate(dirs) if any((d / r).with_suffix(s).exists() for s in ("", ".hea"))
                     or (d / r).exists()]
            if not where:
                raise ValueError(f"record {r!r} is in none of the --data folders ({', '.join(map(str, dirs))})")
            paths[where[0]].append(dirs[where[0]] / r)
    got_recs: list[Recording] = []
    left: list[str] = []
    for ps, lead in zip(paths, leads, strict=True):
        if ps:
            got = read_all(ps, lead=lead, second_lead=second_lead)
            got_recs += got.recordings
            left += got.left_out
    names = [r.name for r in got_recs]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"records named alike in different --data folders: {', '.join(dup)}; "
                         "beds are known by name: evaluate them in separate runs")
    recs, not_evaluable = ec57.check_evaluable(got_recs)
    left += not_evaluable
    for line in (n for r in got_recs for n in r.notes):
        print(f"warning: {line}", file=sys.stderr)
    for line in left:
        print(f"error: left out: {line}", file=sys.stderr)
    if not recs:
        raise ValueError(f"{_data_label(a)}: no record can be evaluated ({len(left)} left out, see above)")
    return recs, left


def _data_label(a: argparse.Namespace) -> str:
    return " + ".join(str(d) for d in a.data) if isinstance(a.data, list) else str(a.data)


def _left_out_status(left: list[str]) -> int:
    if left:
        print(f"error: {len(left)} record(s) left out (see above); the others were counted", file=sys.stderr)
        return 1
    return 0


def cmd_train_records(a: argparse.Namespace, console: Console) -> int:
    import torch

    from ecgmon.evaluation.crossval import fit_and_calibrate
    from ecgmon.models.checkpoint import save

    if a.threads:
        torch.set_num_threads(a.threads)
    recs, left = _read_records(a)
    cfg = _real_config(a)
    console.print(f"[bold]train[/] protocol=mitdb records={len(recs)} ({_data_label(a)}) {cfg}")

    def on_epoch(epoch: int, tl: float, vl: float) -> None:
        console.print(f"epoch {epoch + 1}/{cfg.epochs}: train {tl:.5f} val {vl:.5f}")

    ckpt = fit_and_calibrate(recs, cfg, device=a.device, threads=a.threads, on_epoch=on_epoch, log=console.print)
    ckpt.split["data"] = [str(d) for d in a.data]
    if a.chosen_by:
        ckpt.train["settings_chosen_by"] = a.chosen_by
    path = save(ckpt, a.out)
    console.print(f"{ckpt.train['total_seconds']:.0f} s; saved {path} (sha256 {ckpt.sha256[:12]})")
    return _left_out_status(left)


def cmd_train(a: argparse.Namespace, console: Console) -> int:
    import dataclasses

    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ecgmon.evaluation.product import tables, test_report
    from ecgmon.models.autoencoder import AEConfig
    from ecgmon.models.checkpoint import save
    from ecgmon.models.data import make_split
    from ecgmon.models.train import TrainConfig, fit

    if a.protocol == "mitdb":
        return cmd_train_records(a, console)
    _one_data(a)
    if a.threads:
        torch.set_num_threads(a.threads)
    mc = AEConfig(**{k: v for k, v in (("hidden", a.hidden), ("embedding", a.embedding)) if v is not None})
    tc = dataclasses.replace(TrainConfig(seed=a.seed), **{k: v for k, v in (
        ("epochs", a.epochs), ("batch_size", a.batch_size), ("patience", a.patience), ("max_shift", a.max_shift),
        ("noise", a.noise)) if v is not None})
    split = make_split(a.protocol, seed=a.seed, data=a.data)
    console.print(f"[bold]train[/] protocol={a.protocol} seed={a.seed} normal train beats={len(split.train_normal)} "
                  f"val={len(split.val)} test={len(split.test)} model={mc} device={a.device}")
    with Progress(TextColumn("epoch {task.completed:>3.0f}/{task.total:.0f}"), BarColumn(),
                  TextColumn("train {task.fields[tl]:.4f}  val {task.fields[vl]:.4f}  best {task.fields[best]:.4f}"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                  transient=False) as prog:
        task = prog.add_task("train", total=tc.epochs, tl=float("nan"), vl=float("nan"), best=float("inf"))
        best = [float("inf")]

        def on_epoch(epoch: int, tl: float, vl: float) -> None:
            best[0] = min(best[0], vl)
            prog.update(task, completed=epoch + 1, tl=tl, vl=vl, best=best[0])

        ckpt = fit(split, model_cfg=mc, cfg=tc, rule=a.rule, param=a.param, device=a.device, on_epoch=on_epoch)
    test_report(ckpt, split)  # the test split, scored once after every choice
    path = save(ckpt, a.out)
    t = ckpt.train
    console.print(f"stopped after {t['epochs_run']} epochs (best {t['best_epoch'] + 1}) in {t['seconds']:.0f} s; "
                  f"threshold {ckpt.threshold:.5f} ({ckpt.calibration['rule']})")
    m = ckpt.metrics["test"]
    console.print(tables(m, [], title=f"{a.protocol} test split (reported once, after every choice)")[0])
    console.print(f"saved {path}")
    return 0


def cmd_calibrate(a: argparse.Namespace, console: Console) -> int:
    from ecgmon.evaluation.product import test_report
    from ecgmon.models.calibrate import calibrate
    from ecgmon.models.checkpoint import load, save
    from ecgmon.models.train import losses

    _one_data(a)
    ckpt = load(a.checkpoint)
    split = ckpt.data_split(a.data)
    val = split.part("val")
    cal = calibrate(losses(ckpt.model, val.x), val.y, rule=a.rule, param=a.param)
    old = ckpt.threshold
    ckpt.threshold, ckpt.calibration = cal.threshold, cal.to_dict()
    test_report(ckpt, split)
    out = save(ckpt, a.out or ckpt.path)
    console.print(f"rule {cal.rule} (param {cal.param:g}) on {cal.n_normal} normal + {cal.n_abnormal} abnormal "
                  f"validation beats: threshold {old:.5f} -> {cal.threshold:.5f}; saved {out}")
    return 0


def cmd_evaluate_records(a: argparse.Namespace, console: Console) -> int:
    from ecgmon.evaluation import crossval, ec57
    from ecgmon.models.checkpoint import load
    from ecgmon.models.realecg import database_of

    recs, left = _read_records(a, second_lead=a.second_lead)
    threads = a.threads or default_threads()
    policy, lethal, changed = _alarm_settings(a)
    if a.cv:
        if changed:
            raise ValueError("--cv evaluates with the default alarm settings: leave the alarm options out "
                             f"(given: {', '.join(sorted(changed))})")
        cfg = _real_config(a)
        a.out.mkdir(parents=True, exist_ok=True)  # each fold's checkpoint is saved there as it is made
        counts, folds = crossval.cross_validate(recs, a.cv, cfg, device=a.device, threads=threads, save_dir=a.out,
                                               only=a.folds, log=console.print)
        what = f"{a.cv}-fold record-level cross-validation (each record scored by a model not fitted on it)"
        if a.folds:
            what += f", folds {' '.join(map(str, a.folds))} only"
            judged = {n for f in folds for n in f["held_out"]}
            recs = [r for r in recs if r.name in judged]
        meta: dict[str, Any] = {"cv": a.cv, "cv_folds_run": a.folds, "folds": folds, "config": cfg.to_dict()}
        label = "each bed's own threshold"
    else:
        ckpt = load(a.checkpoint if a.checkpoint is not None else "mitdb")
        beds = ec57.run_records(recs, ckpt, device=a.device, threads=threads, learn_s=a.learn, policy=policy,
                                lethal=lethal, packet_s=a.packet_s)
        counts = [ec57.record_counts(b, learn_s=a.learn, watch=lethal, policy=policy) for b in beds]
        what = ckpt.name
        meta = {"checkpoint": ckpt.path, "threshold": ckpt.threshold, "calibration": ckpt.calibration,
                "learning": ckpt.learning}
        label = "each bed's own threshold" if ckpt.bed_margin is not None and a.learn > 0 else f"{ckpt.threshold:.4f}"
    if changed:
        print(f"alarm settings other than the defaults: {changed}")
    summary = ec57.summarise(counts)
    from ecgmon.monitor.learning import LearningConfig

    min_beats = LearningConfig().min_beats
    for c in counts:  # a record shorter than its bed's learning has no figure: say so, not an empty row alone
        if c["detections"] == 0 and a.learn > 0:
            print(f"warning: {c['record']}: no beat judged: its bed learnt for the whole record "
                  f"(--learn {a.learn:g} s, and on until it has seen {min_beats} beats); its figures are empty "
                  "(--learn 0: no per-bed learning)", file=sys.stderr)
    db = {r.name: database_of(r) for r in recs}
    by_db = {d: ec57.summarise([c for c in counts if db[c["record"]] == d]) for d in sorted(set(db.values()))}
    if len(by_db) > 1:  # gross rows per database under the pooled one
        summary["by_database"] = {d: {"names": [r["record"] for r in sm["records"]],
                                      **{k: v for k, v in sm.items() if k != "records"}} for d, sm in by_db.items()}
    tbl = ec57.table(summary, title=f"EC57 on {len(recs)} records ({_data_label(a)}), {what}, "
                                    f"learning period {a.learn:g} s excluded"
                                    + (f" (and on until {min_beats} beats)" if a.learn > 0 else ""))
    # as wide as the table needs (23 columns): a narrow terminal or a file must get whole figures, not "99.…"
    need = Measurement.get(console, console.options.update(max_width=100_000), tbl).maximum
    Console(width=max(console.width, need), soft_wrap=False).print(tbl)
    for line in ec57.burden_lines(summary):
        print(line)
    for d, sm in by_db.items() if len(by_db) > 1 else ():
        print(f"{d}:")
        for line in ec57.burden_lines(sm):
            print(f"  {line}")
    a.out.mkdir(parents=True, exist_ok=True)
    one = len(a.data) == 1  # one folder, one lead: written as before (a string), else lists in --data's order
    meta.update({"protocol": "mitdb", "data": str(a.data[0]) if one else [str(d) for d in a.data], "databases": db,
                 "records": [r.name for r in recs], "learn_s": a.learn, "tolerance_s": MATCH_WINDOW_S,
                 "lead_asked": a.lead[0] if a.lead and len(a.lead) == 1 else a.lead,
                 # the lead actually played: one name when every record played the same, else "mixed"
                 "lead": played[0] if len(played := sorted({r.lead for r in recs})) == 1 else "mixed",
                 "leads": {r.name: r.lead if r.second is None else f"{r.lead} + {r.second.lead}" for r in recs},
                 "left_out": left, "alarm_settings": changed, "packet_s": a.packet_s})
    written = [ec57.write_json(a.out / "metrics.json", {**meta, **summary}),
               ec57.write_csv(a.out / "records.csv", summary)]
    if not a.no_figures:
        written += ec57.figures(a.out, summary, counts, label)
    console.print("wrote " + ", ".join(str(p) for p in written))
    return _left_out_status(left)


def cmd_evaluate_lethal(a: argparse.Namespace, console: Console) -> int:
    """cinc2015 / vfdb: the lethal alarms through the live pipeline (ecgmon.evaluation.lethal)."""
    from ecgmon.evaluation import ec57, lethal
    from ecgmon.models.checkpoint import load
    from ecgmon.models.records import read_all

    if a.data is None:
        raise ValueError(f"--protocol {a.protocol} needs --data DIR (the records)")
    got = read_all([a.data] if not a.records else [Path(a.data) / r for r in a.records], lead=a.lead,
                   second_lead=a.second_lead)
    for line in got.notes:
        print(f"warning: {line}", file=sys.stderr)
    for line in got.left_out:
        print(f"error: left out: {line}", file=sys.stderr)
    if not got.recordings:
        raise ValueError(f"{a.data}: no record could be read ({len(got.left_out)} left out, see above)")
    ckpt = load(a.checkpoint if a.checkpoint is not None else "mitdb")
    threads = a.threads or default_threads()
    policy, watch, changed = _alarm_settings(a)
    if changed:
        print(f"alarm settings other than the defaults: {changed}")
    if a.protocol == "cinc2015":
        res = lethal.cinc2015(got.recordings, lethal.read_cinc_alarms(a.data), ckpt, device=a.device,
                              threads=threads, learn_s=a.learn, policy=policy, watch=watch, packet_s=a.packet_s)
        print(f"CinC 2015 alarms, {len(res['records'])} records ({a.data}), ECG alone; raised = ecgmon's alarm "
                      "of the type active from 10 s before to 5 s after the ICU monitor's")
        for kind, f in [*res["types"].items(), ("all", res["all"])]:
            print(f"  {kind:24s} TP {f['tp']:3d} FN {f['fn']:3d} FP {f['fp']:3d} TN {f['tn']:3d}  "
                          f"TPR {f['tpr']}  TNR {f['tnr']}  score {f['score']}")
    else:
        res = lethal.vt_vf(got.recordings, ckpt, device=a.device, threads=threads, learn_s=a.learn, policy=policy,
                           watch=watch, packet_s=a.packet_s)
        print(f"VT and VF/flutter episodes >= 4 s, {len(res['records'])} records ({a.data}), "
                      f"{res['hours']} h")
        print(f"  VF/flutter: {res['vf_flutter']}\n  VT: {res['vt']}\n  false lethal alarms "
                      f"{res['false_lethal']} ({res['false_lethal_per_bed_day']} per bed-day): "
                      f"{res['false_by_condition']}")
        if res["unconfirmed_by_condition"]:
            n = sum(res["unconfirmed_by_condition"].values())
            print(f"  of them {n} on records without reference beats, which can neither confirm nor refute a rate or "
                  f"asystole alarm: {res['unconfirmed_by_condition']}; the others "
                  f"{res['false_judged_per_bed_day']} per bed-day")
        print(f"  lethal alarms raised {sum(res['raised_by_condition'].values())} (within {lethal.AGAIN_S:g} s of "
              f"the same alarm's clearing {sum(res['raised_again_by_condition'].values())}): "
              + ", ".join(f"{c} {n} ({res['raised_again_by_condition'].get(c, 0)})"
                          for c, n in sorted(res['raised_by_condition'].items()) if n))
    a.out.mkdir(parents=True, exist_ok=True)
    played = sorted({r.lead for r in got.recordings})
    path = ec57.write_json(a.out / "metrics.json", {"protocol": a.protocol, "data": str(a.data),
                                                    "lead": played[0] if len(played) == 1 else "mixed",
                                                    "second_lead": "auto" if a.second_lead is None else a.second_lead,
                                                    "packet_s": a.packet_s,
                                                    "left_out": got.left_out, "checkpoint": ckpt.path,
                                                    "alarm_settings": changed, **res})
    console.print(f"wrote {path}")
    return 1 if got.left_out else 0


def cmd_evaluate(a: argparse.Namespace, console: Console) -> int:
    if a.out is None:  # per protocol: evaluate --protocol qrs wrote runs/eval/metrics.json over mitdb's (a newcomer)
        a.out = Path("runs/eval") / a.protocol
    if a.folds and not a.cv:  # they would be ignored: the run would not be the one asked for
        raise ValueError("--folds chooses folds of a cross-validation: give --cv K as well")
    if a.cv and a.protocol != "mitdb":
        raise ValueError(f"--cv is for --protocol mitdb, not {a.protocol}")
    if not (math.isfinite(a.packet_s) and 0.01 <= a.packet_s <= 10):
        raise ValueError(f"--packet-s {a.packet_s:g}: needs 0.01-10 s")
    if a.packet_s != 0.25 and (a.cv or a.protocol not in ("mitdb", "cinc2015", "vfdb")):
        raise ValueError("--packet-s is for --protocol mitdb, cinc2015 and vfdb (without --cv)")
    if a.protocol == "mitdb":
        return cmd_evaluate_records(a, console)
    _one_data(a)
    if a.protocol in ("cinc2015", "vfdb"):
        return cmd_evaluate_lethal(a, console)
    if a.protocol in ("qrs", "nstdb", "ec13"):
        from ecgmon.evaluation import qrs
        from ecgmon.models.checkpoint import load

        if a.data is None:
            raise ValueError(f"--protocol {a.protocol} needs --data DIR (the records)")
        ckpt = load(a.checkpoint if a.checkpoint is not None else "mitdb")
        # the checkpoint's representation decides where the fiducials fall; EC13 also plays 4a/4b through it
        lines, _ = qrs.run_protocol(a.protocol, a.data, rep=ckpt.rep, out=a.out, lead=a.lead, ckpt=ckpt,
                                    records=a.records, second_lead=a.second_lead is not False)
        for line in lines:
            print(line)  # plain: the tables are wider than a pipe's 80 columns
        # EC13: a record whose shown rate misses the true one by more than 5 % fails the run (exit 1)
        return 1 if a.protocol == "ec13" and any(line.rstrip().endswith("FAIL") for line in lines) else 0
    from ecgmon.evaluation.product import figures, metrics, sweep, sweep_thresholds, tables, write_metrics
    from ecgmon.models.checkpoint import default_path, load
    from ecgmon.models.train import losses

    path = a.checkpoint or (default_path() if a.protocol == "product" else default_path().with_name(
        "ecg_ae_ucr.pt"))
    ckpt = load(path)
    if ckpt.split.get("protocol") != a.protocol:
        raise SystemExit(f"error: {ckpt.name} was trained under protocol {ckpt.split.get('protocol')!r}; "
                         f"evaluating it on {a.protocol!r} would score beats it was trained or calibrated on")
    split = ckpt.data_split(a.data)
    test = split.part("test")
    lo = losses(ckpt.model, test.x)
    m = metrics(lo, test.y, ckpt.threshold)
    m.update(protocol=a.protocol, checkpoint=str(path), calibration=ckpt.calibration)
    sw = sweep(lo, test.y, sweep_thresholds(ckpt.threshold))
    m["sweep"] = sw
    for tbl in tables(m, sw, title=f"{a.protocol} protocol, test split ({len(test)} beats), {ckpt.name}"):
        console.print(tbl)
    written = [write_metrics(a.out, m)]
    if not a.no_figures:
        import torch

        with torch.inference_mode():
            recon = ckpt.model(torch.as_tensor(test.x, dtype=torch.float32)).numpy()
        written += figures(a.out, lo, test.y, ckpt.threshold, test.x, recon)
    console.print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _simulate_parser(sub: argparse._SubParsersAction) -> None:
    from ecgmon.monitor.config import add_broker_arguments

    p = sub.add_parser("simulate", help="publish simulated bedside devices over MQTT",
                       description="Publish N devices' ECG to ecg/<device>/samples in real time or faster. "
                                   "ecg5000: the replay renderer (labels on ecg/<device>/labels); synthetic: "
                                   "neurokit2 ECG with noise, baseline wander and lead-off.")
    p.add_argument("--devices", type=int, default=8)
    p.add_argument("--kind", choices=("ecg5000", "synthetic"), default="ecg5000")
    p.add_argument("--fs", type=float, default=250.0, help="sampling rate, Hz")
    p.add_argument("--chunk", type=float, default=0.25, dest="chunk_s", help="chunk duration, seconds")
    p.add_argument("--format", choices=("json", "int16", "float32"), default="json", dest="fmt")
    p.add_argument("--leads", type=int, choices=(1, 2), default=1,
                   help="2: every packet carries lead II and a second lead, V1 (JSON 'leads' or binary version 2; "
                        "docs/mqtt.md, 'Two leads'), derived from the same clean signal with artifacts of its own and "
                        "none of lead II's lead-off episodes (default 1: lead II alone)")
    p.add_argument("--speed", default="1", help="1 = real time, N = N times faster, max")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=float, default=None,
                   help="seconds of signal per device (ecg5000: the test split is dealt again as often as needed)")
    p.add_argument("--drop", type=float, default=0.0, help="probability a chunk is not sent")
    p.add_argument("--dup", type=float, default=0.0, help="probability a chunk is sent twice")
    p.add_argument("--reorder", type=float, default=0.0, help="probability a chunk is swapped with the next")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="random send delay")
    p.add_argument("--noise", type=float, default=0.02, help="synthetic: white noise, mV")
    p.add_argument("--wander", type=float, default=0.15, help="synthetic: baseline wander, mV")
    p.add_argument("--leadoff-every", type=float, default=0.0, help="synthetic: a lead-off episode every S s")
    p.add_argument("--topic-prefix", default="ecg", help="publish on PREFIX/<device>/samples and .../labels")
    p.add_argument("--device-prefix", default=None,
                   help="device ids PREFIX01, PREFIX02, ... (default: bed for ecg5000, dev for synthetic); "
                        "two simulators on one broker need two prefixes")
    p.add_argument("--abnormal-rate", default="all",
                   help="ecg5000: share of abnormal beats as on a ward (e.g. 0.03), or 'all' (default): the whole "
                        "test split")
    p.add_argument("--no-labels", action="store_false", dest="labels",
                   help="ecg5000: do not publish the true beats (devices send samples only, as real ones do)")
    add_broker_arguments(p, monitor=False)


def cmd_simulate(a: argparse.Namespace, console: Console) -> int:
    import asyncio

    from ecgmon.core.limits import check_fs, parse_speed
    from ecgmon.monitor.config import broker_from_args, parse_rate
    from ecgmon.simulators.publisher import SimConfig, publish
    from ecgmon.simulators.synthetic import ArtifactConfig

    speed = parse_speed(a.speed)
    if a.devices < 1:
        raise ValueError(f"--devices {a.devices}: needs 1 or more devices")
    for name in ("drop", "dup", "reorder"):
        if not 0 <= getattr(a, name) <= 1:
            raise ValueError(f"--{name} {getattr(a, name):g}: a probability, 0-1")
    if not (math.isfinite(a.chunk_s) and 0.01 <= a.chunk_s <= 10):
        raise ValueError(f"--chunk {a.chunk_s:g}: needs 0.01-10 s")
    if not (math.isfinite(a.jitter_ms) and a.jitter_ms >= 0):
        raise ValueError(f"--jitter-ms {a.jitter_ms:g}: needs 0 or more")
    if a.duration is not None and not (math.isfinite(a.duration) and a.duration > 0):
        raise ValueError(f"--duration {a.duration:g}: needs a finite number of seconds over 0")
    cfg = SimConfig(devices=a.devices, kind=a.kind, fs=check_fs(a.fs, "--fs"), chunk_s=a.chunk_s, fmt=a.fmt,
                    leads=a.leads, speed=speed, seed=a.seed,
                    duration=a.duration, qos=a.qos, topic_prefix=a.topic_prefix, labels=a.labels,
                    device_prefix=a.device_prefix, abnormal_rate=parse_rate(a.abnormal_rate),
                    drop=a.drop, dup=a.dup, reorder=a.reorder, jitter_ms=a.jitter_ms,
                    artifacts=ArtifactConfig(noise_mv=a.noise, wander_mv=a.wander, leadoff_every_s=a.leadoff_every))
    broker = broker_from_args(a)
    hint = (" (judge them with `ecgmon --source mqtt --checkpoint ecg5000`; into a NATS server's MQTT listener: "
            "`ecgmon --source nats --checkpoint ecg5000`)" if cfg.kind == "ecg5000" else "")
    console.print(f"simulate: {cfg.devices} {cfg.kind} devices at {cfg.fs:g} Hz, {cfg.fmt}"
                  f"{', two leads (II, V1)' if cfg.leads == 2 else ''}, speed {a.speed} -> "
                  f"{broker.url}{hint}", highlight=False)
    stats = asyncio.run(publish(cfg, broker, report=lambda line: print(line, file=sys.stderr, flush=True)))
    print(json.dumps({"type": "simulate-summary", **dataclasses.asdict(stats)}))
    if stats.published == 0 and stats.reconnects:
        print(f"error: nothing was published: the broker {broker.url} was not reached", file=sys.stderr)
        return 1
    return 0


def _data_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="datasets: fetch from PhysioNet",
                       description="ecgmon data fetch mitdb [--dest DIR]: download the MIT-BIH Arrhythmia Database "
                                   "from PhysioNet and check every file against PhysioNet's published SHA256SUMS.")
    p.add_argument("action", choices=("fetch",))
    p.add_argument("dataset", choices=("mitdb",))
    p.add_argument("--dest", type=Path, default=Path("data/mitdb"), help="folder to fill (default data/mitdb)")
    p.add_argument("--url", default=None, help="a PhysioNet mirror (default https://physionet.org/files/mitdb/1.0.0/)")


def cmd_data(a: argparse.Namespace, console: Console) -> int:
    from ecgmon.models.fetch import MITDB_URL, fetch

    n = fetch(a.url or MITDB_URL, a.dest, log=lambda m: console.print(m, highlight=False))
    console.print(f"{n} files in {a.dest}, every one matching PhysioNet's SHA256SUMS")
    return 0


def _review_parser(sub: argparse._SubParsersAction) -> None:
    from ecgmon.monitor.config import default_journal

    p = sub.add_parser("review", help="render journals' alarms and their ECG strips as one HTML page",
                       description="Read alarm journals and the strips kept beside them (X.jsonl -> X.strips.jsonl) "
                                   "and write DIR/review.html: every physiological alarm, newest first, with when it "
                                   "was raised, acknowledged and cleared, and the ECG 6 s before to 4 s after it. "
                                   "Several journals (NATS workers', a station's) make one view of every bed: an "
                                   "alarm taken over by another worker is one entry.")
    p.add_argument("journal", type=Path, nargs="*", default=[default_journal()],
                   help=f"alarm journals (default {default_journal()})")
    p.add_argument("--out", type=Path, default=Path("runs/review"), help="output folder (default runs/review)")


def cmd_review(a: argparse.Namespace, console: Console) -> int:
    from ecgmon.monitor.review import render

    path, counts = render(a.journal, a.out)
    console.print(f"{counts['alarms']} alarms, {counts['strips']} with strips -> {path}", highlight=False)
    return 0


def _demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="a broker, simulated devices and the monitor, in one command",
                       description="Start mosquitto on a free loopback port, 8 simulated ECG5000 devices publishing "
                                   "over MQTT (as a ward: a few percent abnormal beats), and the monitor's console "
                                   "on that broker. Quit with q; everything started is stopped.")
    p.add_argument("--devices", type=int, default=8)
    p.add_argument("--speed", default="1", help="device speed: 1 = real time")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--no-ui", action="store_true", help="headless monitor (JSON lines) instead of the console")
    p.add_argument("--no-bell", action="store_true",
                   help="the console stays silent (by default it rings the terminal's bell when a HIGH or MEDIUM "
                        "alarm is raised, and every 10 s while a HIGH one is unacknowledged)")
    p.add_argument("--journal", type=Path, default=None, help="alarm journal (default: a temporary folder)")


def cmd_demo(a: argparse.Namespace, console: Console) -> int:
    from ecgmon.core.limits import parse_speed
    from ecgmon.evaluation.evaluator import Evaluator
    from ecgmon.monitor.config import check_duration
    from ecgmon.monitor.demo import run_demo

    # checked here: the simulated devices run in a subprocess whose refusal would only reach its log (the demo
    # then ran with no device, in silence)
    parse_speed(a.speed)
    if not 1 <= a.devices <= 10000:
        raise ValueError(f"--devices {a.devices}: needs 1-10000")
    check_duration(a.duration)

    return run_demo(devices=a.devices, speed=a.speed, duration=a.duration, ui=not a.no_ui, journal=a.journal,
                    console=console, truth=Evaluator, bell=not a.no_bell)


def _bridge_parser(sub: argparse._SubParsersAction) -> None:
    from ecgmon.monitor.config import add_broker_arguments
    from ecgmon.monitor.settings import NatsSettings

    n = NatsSettings()
    p = sub.add_parser("bridge", help="devices' MQTT packets into the NATS JetStream stream, none lost",
                       description="Subscribe to the devices' topics on an MQTT broker (QoS 1, a persistent session) "
                                   "and publish each packet to the JetStream device stream, acknowledging it to the "
                                   "broker only once the stream has stored it (retried across a cluster's leader "
                                   "elections; Nats-Msg-Id makes retries idempotent). docs/workers.md.")
    p.add_argument("--nats", default=n.url, help="nats://host:port of the NATS servers (comma-separated)")
    p.add_argument("--partitions", type=int, default=n.partitions,
                   help=f"partitions of the devices (default {n.partitions}; the workers' --partitions)")
    p.add_argument("--replicas", type=int, default=n.replicas,
                   help="replicas of the stream when the bridge creates it (3 on a 3-node cluster)")
    p.add_argument("--no-labels", action="store_true", help="do not carry ecg/+/labels")
    p.add_argument("--no-control", action="store_true", help="do not carry ecg/+/control")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--stats-every", type=float, default=10.0, help="a JSON stats line every S seconds (0: none)")
    add_broker_arguments(p, monitor=False, qos_choices=(1,),  # the bridge's acknowledgement means 'stored'
                         client_id_help="MQTT client id (default ecgmon-bridge): the bridge's persistent session, "
                                        "which a restarted bridge resumes; one bridge per id (deploy/nats/README.md)")


def cmd_bridge(a: argparse.Namespace, console: Console) -> int:
    import asyncio

    from ecgmon.monitor.bridge import bridge_settings, run_bridge
    from ecgmon.monitor.config import broker_from_args
    from ecgmon.monitor.settings import NatsSettings

    broker = broker_from_args(a)
    if a.client_id is None:
        broker = dataclasses.replace(broker, client_id="ecgmon-bridge")
    cfg = bridge_settings(mqtt=broker, nats_cfg=NatsSettings(url=a.nats, partitions=a.partitions, replicas=a.replicas,
                                                             labels=not a.no_labels, control=not a.no_control))
    summary = asyncio.run(run_bridge(cfg, duration=a.duration, stats_every_s=a.stats_every,
                                     out=lambda line: print(line, flush=True)))
    # 1: packets left unstored (the broker redelivers them to the next bridge), or NATS never reached
    return 0 if summary["pending"] == 0 and summary["state"] == "stopped" else 1


def build_parser() -> argparse.ArgumentParser:
    from ecgmon.monitor.config import add_monitor_arguments

    p = argparse.ArgumentParser(prog="ecgmon", description="Streaming ECG monitor with LSTM-autoencoder alarms.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_monitor_arguments(p)
    return p


def build_subparsers() -> argparse.ArgumentParser:
    from ecgmon.monitor.config import add_monitor_arguments

    p = argparse.ArgumentParser(prog="ecgmon")
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("monitor", help="run the monitor (same as no subcommand)")
    add_monitor_arguments(m)
    _train_parser(sub)
    _calibrate_parser(sub)
    _evaluate_parser(sub)
    _simulate_parser(sub)
    _data_parser(sub)
    _review_parser(sub)
    _demo_parser(sub)
    _bridge_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=False)
    if argv and argv[0] in SUBCOMMANDS:
        a = build_subparsers().parse_args(argv)
    else:
        a = build_parser().parse_args(argv)
        a.command = "monitor"
    if a.command in ("monitor", "demo") and not a.no_ui and not sys.stdout.isatty():
        # the console draws on a terminal only: piped (`make run | tee log`) or redirected it drew nothing and said
        # nothing until the summary (a newcomer, session 57)
        print("note: standard output is not a terminal (a pipe or a file), where the console cannot be drawn: "
              "running headless as with --no-ui (JSON lines on standard output, the summary last). Run it in a "
              "terminal for the console, or give --no-ui to run headless without this note.", file=sys.stderr)
        a.no_ui = True
    try:
        if a.command == "train":
            return cmd_train(a, console)
        if a.command == "calibrate":
            return cmd_calibrate(a, console)
        if a.command == "evaluate":
            return cmd_evaluate(a, console)
        if a.command == "simulate":
            return cmd_simulate(a, console)
        if a.command == "data":
            return cmd_data(a, console)
        if a.command == "review":
            return cmd_review(a, console)
        if a.command == "demo":
            return cmd_demo(a, console)
        if a.command == "bridge":
            return cmd_bridge(a, console)
        from ecgmon.evaluation.evaluator import Evaluator
        from ecgmon.monitor.app import run_monitor

        if a.source == "mqtt" and a.shard:  # retired: kept working for deployments that use it, with a notice
            print("note: --shard on --source mqtt is deprecated: every shard still receives every device's "
                  "messages. One machine: --workers N; many machines: --source nats workers (docs/workers.md).",
                  file=sys.stderr)
        if a.workers > 1:  # --source mqtt --workers N: a router and N worker processes
            from ecgmon.monitor.config import from_args
            from ecgmon.monitor.workers import run_workers

            cfg = from_args(a)
            return run_workers(cfg, cfg.workers, console, truth=Evaluator)
        return run_monitor(a, console, truth=Evaluator)
    except (OSError, ValueError, RuntimeError) as err:
        # data, checkpoint and configuration errors carry actionable messages; no traceback for users
        print(f"error: {err}", file=sys.stderr)  # plain: no wrapping, greppable in logs
        return 2


if __name__ == "__main__":
    sys.exit(main())

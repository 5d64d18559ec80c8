"""Ventricular fibrillation/flutter detection: episode-level scoring, and the fit of the VF detector's models.

Reference episodes come from WFDB rhythm annotations (``+`` marks whose aux note opens a rhythm that lasts
until the next one): ``(VF``, ``(VFIB`` and ``(VFL`` are VF/flutter, ``(VT`` ventricular tachycardia,
``(NOISE`` noise.  The scorer (:func:`score_episodes`) takes a bed's alarm intervals (raise, clear) and:

- an episode of >= ``min_episode_s`` (4 s) counts as **alarmed** when an alarm is active at some time in
  ``[onset, onset + within_s]`` (10 s); its **delay** is the time from onset to the first such moment
  (0 when an alarm raised earlier is still active);
- an alarm is **false** when it (raise to clear) overlaps no reference lethal episode (VF/flutter or VT,
  extended by ``grace_s`` after its end), as EC57 scores episode positive predictivity by overlap; false
  alarms are counted per bed-day of signal.

Everything here drives the same streaming classes as the live path (:class:`~ecgmon.segmentation.vf.VFBank`,
:class:`~ecgmon.segmentation.vf.VFAlarm`), fed in 1 s chunks.

Fitting (``fit``): one multinomial logistic regression (other / VF / artifact) over every 4 s window of the
development data: VF/flutter windows (fully inside a ``(VF``/``(VFIB``/``(VFL`` episode) of vfdb-dev and
mitdb-ds1 (207); artifact windows inside VFDB ``(NOISE`` episodes and NSTDB 118's noise segments at 6, 0 and
-6 dB SNR; every other window not touching VT (of mitdb-ds1, svdb-dev, nstdb-118, vfdb-dev and the Challenge
records whose alarm was false) as "other".  Then the VF threshold, the artifact threshold and the number of
consecutive VF windows that raise the alarm are chosen on the same records: the fewest false alarms per bed-day
among the choices that alarm >= 95 % of the VF/flutter episodes within 10 s.  Cross-validation: 5 record-level
folds (a patient's records in one fold: NSTDB's 118 series with MIT-BIH 118; records with VF dealt first so
that every fold has some); in each, the model is fitted and the thresholds chosen on the other four folds only.

Figures (2026-11-30; ``fit build/vf/features.npz``; JSON in docs/results/vf_fit.json). The shipped constants are
the in-sample fit; ``evaluate`` runs the shipped detector's own decisions and gives the in-sample figures again
(docs/results/vf_evaluate.json):

=====================================  ==========================  ==========================
VF/flutter episodes >= 4 s              cross-validated             in-sample (shipped)
=====================================  ==========================  ==========================
vfdb-dev: alarmed within 10 s           30/31 (96.8 %)              30/31 (96.8 %)
vfdb-dev: median delay                  3.8 s                       2.8 s
mitdb-ds1 (207's flutter)               6/6, median 4.4 s           6/6, median 3.9 s
false VF alarms, mitdb-ds1 (11.0 h)     0                           0
false VF alarms, svdb-dev (19.5 h)      0                           0
false VF alarms, nstdb-118 (3.0 h)      0                           0
false VF alarms, vfdb-dev (6.4 h)       8 (29.9 per bed-day)        7 (26.2 per bed-day)
CinC 2015 VF alarms (2 true, 18 false)  TP 2 FN 0 FP 1 TN 17: 95.0  TP 2 FN 0 FP 1 TN 17: 95.0
VF windows called artifact              95/1359                     34/1359
=====================================  ==========================  ==========================

Most false VF alarms on vfdb-dev are in record 418, whose ``(N`` stretches between its many flutter episodes
are a wide-complex rhythm at 150-200 bpm that looks like flutter; the others are in 426's noise after VF
(resuscitation) and a run of fast ventricular beats in 609.  Delays count 0 when an alarm raised for an
earlier episode was still active (418's episodes follow each other closely).

Command line (development data; nothing here is used by the tests)::

    python -m ecgmon.evaluation.vfdb features --out build/vf/features.npz   # every window through VFBank (~3 min)
    python -m ecgmon.evaluation.vfdb fit build/vf/features.npz               # CV and in-sample models, report
    python -m ecgmon.evaluation.vfdb evaluate build/vf/features.npz          # the shipped detector's own decisions
    python -m ecgmon.evaluation.vfdb noise build/vf/features.npz             # clean and noise windows per threshold
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from sklearn.linear_model import LogisticRegression

from ecgmon.models.wfdb_io import annotation_rate
from ecgmon.segmentation.vf import INPUTS, VFAlarm, VFBank, VFConfig, VFModel, decide

VF_RHYTHMS = frozenset({"VF", "VFIB", "VFL"})
VT_RHYTHMS = frozenset({"VT"})
DATA = Path("/work/shared/data")  # default development data root (the command line only)


@dataclass(frozen=True, slots=True)
class Episode:
    """A reference rhythm episode, seconds from the record's start."""

    rhythm: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class EpisodeScore:
    """Episodes >= min_episode_s: how many, how many alarmed within ``within_s``, the delays (s) of those alarmed
    by a raise at or after onset, false alarms; ``carried``: alarmed by an alarm already on at onset that stayed
    on (no delay: it was sounding; not in ``delays``)."""

    episodes: int
    alarmed: int
    delays: tuple[float, ...]
    false_alarms: int
    hours: float
    carried: int = 0

    @property
    def sensitivity(self) -> float:
        return self.alarmed / self.episodes if self.episodes else math.nan

    @property
    def median_delay(self) -> float:
        return float(np.median(self.delays)) if self.delays else math.nan

    @property
    def false_per_day(self) -> float:
        return 24.0 * self.false_alarms / self.hours if self.hours else math.nan

    def __add__(self, other: EpisodeScore) -> EpisodeScore:
        return EpisodeScore(self.episodes + other.episodes, self.alarmed + other.alarmed,
                            self.delays + other.delays, self.false_alarms + other.false_alarms,
                            self.hours + other.hours, self.carried + other.carried)

    def summary(self) -> dict[str, float | int]:
        return {"episodes": self.episodes, "alarmed": self.alarmed, "sensitivity": round(self.sensitivity, 4),
                "median_delay_s": round(self.median_delay, 2), "carried": self.carried,
                "false_alarms": self.false_alarms,
                "hours": round(self.hours, 2), "false_per_bed_day": round(self.false_per_day, 2)}


EMPTY = EpisodeScore(0, 0, (), 0, 0.0)


def score_episodes(targets: Sequence[Episode], lethal: Sequence[Episode], alarms: Sequence[tuple[float, float]],
                   seconds: float, *, min_episode_s: float = 4.0, within_s: float = 10.0,
                   grace_s: float = 10.0) -> EpisodeScore:
    """Score one bed.  ``targets``: the episodes the alarm should catch; ``lethal``: every episode during which
    a raise is not false (targets and, e.g., VT); ``alarms``: (raise, clear) times in seconds (clear = inf
    while still active); ``seconds``: the bed's signal length.  An episode is alarmed by a raise within
    ``within_s`` of its onset (its delay counted), or by an alarm already on at onset that stays on for the
    first ``within_s`` of it, or all of it when shorter (``carried``, no delay); one that clears during the
    episode's first seconds and is not raised again in time does not count."""
    eps = [e for e in targets if e.seconds >= min_episode_s]
    delays = []
    carried = 0
    for e in eps:
        raised = [r for r, _ in alarms if e.start <= r <= e.start + within_s]
        if raised:
            delays.append(min(raised) - e.start)
        elif any(r < e.start and c >= e.start + min(within_s, e.seconds) for r, c in alarms):
            carried += 1
    false = sum(1 for r, c in alarms if not any(r <= e.end + grace_s and c >= e.start for e in lethal))
    return EpisodeScore(len(eps), len(delays) + carried, tuple(delays), false, seconds / 3600.0, carried)


def alarm_intervals(ends_s: np.ndarray, vf: np.ndarray, artifact: np.ndarray, *, raise_windows: int,
                    clear_windows: int) -> list[tuple[float, float]]:
    """Run one bed's windows through :class:`VFAlarm`: (raise, clear) times (clear = inf if still active)."""
    alarm = VFAlarm(raise_windows=raise_windows, clear_windows=clear_windows)
    out: list[tuple[float, float]] = []
    for t, v, a in zip(ends_s.tolist(), vf.tolist(), artifact.tolist(), strict=True):
        ev = alarm.step(bool(v), bool(a))
        if ev == "raise":
            out.append((t, math.inf))
        elif ev == "clear":
            out[-1] = (out[-1][0], t)
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def read_episodes(path: Path, fs: float, n: int) -> list[Episode]:
    """Rhythm episodes from a record's ``atr`` annotations (none when it has no such file), in seconds: each mark's
    time from the annotation file's own rate (:func:`~ecgmon.models.wfdb_io.annotation_rate`), the last episode ending
    at the recording's end, its ``n`` samples at ``fs`` (a record read above 1,000 Hz is played decimated: its marks
    were placed at its rate over the decimation factor, and its VT, VF and atrial fibrillation episodes 2-10 times too
    late: a reviewer, session 48)."""
    if not path.with_suffix(".atr").is_file():
        return []
    with _quiet():
        import wfdb

        ann = wfdb.rdann(str(path), "atr")
        res = annotation_rate(ann, wfdb.rdheader(str(path)))
    marks = [(int(s) / res, str(a).strip("\x00 ").lstrip("(")) for s, sym, a in zip(ann.sample, ann.symbol,
                                                                                  ann.aux_note, strict=True)
             if sym == "+"]
    out = []
    for i, (t, r) in enumerate(marks):
        e = marks[i + 1][0] if i + 1 < len(marks) else n / fs
        out.append(Episode(r, t, e))
    return out


def read_lead(path: Path) -> tuple[np.ndarray, float]:
    """The first lead in mV (NaN kept: missing samples) and the sampling rate."""
    with _quiet():
        import wfdb
        rec = wfdb.rdrecord(str(path), channels=[0], physical=True)
    return np.asarray(rec.p_signal[:, 0], dtype=np.float64), float(rec.fs)


def record_list(root: Path = DATA) -> list[tuple[str, str, Path]]:
    """(database, group, path) of every development record.  ``group``: the patient, for record-level folds
    (NSTDB's 118 series and MIT-BIH 118 are one patient)."""
    out = []
    for db in ("vfdb-dev", "cinc2015-dev", "mitdb-ds1", "nstdb-118", "svdb-dev"):
        d = root / db
        names = (d / "RECORDS").read_text().split() if (d / "RECORDS").is_file() else sorted(
            h.stem for h in d.glob("*.hea"))
        for name in names:
            group = "mitdb-118" if db == "nstdb-118" or (db == "mitdb-ds1" and name == "118") else f"{db}-{name}"
            out.append((db, group, d / name))
    return out


def nstdb_noise(seconds: float) -> list[Episode]:
    """NSTDB's noise segments: two minutes on, two off, from 5:00 (Moody, Muldrow and Mark 1984)."""
    return [Episode("NOISE", float(a), float(min(a + 120, seconds))) for a in range(300, int(seconds), 240)]


def cinc_label(path: Path) -> tuple[str, bool]:
    """A Challenge record's alarm type and verdict (from its header comments)."""
    lines = [ln.strip("# \n") for ln in path.with_suffix(".hea").read_text().splitlines() if ln.startswith("#")]
    return lines[0], lines[1].lower().startswith("true")


def record_features(path: Path, cfg: VFConfig = VFConfig(), chunk_s: float = 1.0) -> dict[str, np.ndarray]:
    """Every window of a record through a one-bed :class:`VFBank` fed ``chunk_s`` chunks: end times (s), features,
    and the bank's decisions (``vf``, ``artifact``)."""
    x, fs = read_lead(path)
    bank = VFBank(fs, 1, cfg)
    step = max(1, round(chunk_s * fs))
    ends, feats, vfs, arts = [], [], [], []
    for a in range(0, len(x), step):
        e, _, _, vf, art, f = bank.push(x[None, a:a + step])
        ends.append(e)
        feats.append(f[0])
        vfs.append(vf[0])
        arts.append(art[0])
    return {"end_s": np.concatenate(ends) / fs, "features": np.concatenate(feats), "seconds": np.array(len(x) / fs),
            "vf": np.concatenate(vfs), "artifact": np.concatenate(arts)}


def _features_job(item: tuple[str, str, Path]) -> tuple[str, str, str, dict[str, np.ndarray]]:
    db, group, path = item
    return db, group, str(path), record_features(path)


def window_labels(end_s: np.ndarray, episodes: Sequence[Episode], rhythms: frozenset[str], window_s: float,
                  ) -> np.ndarray:
    """Share of each window (ending at ``end_s``) covered by episodes of ``rhythms``."""
    cover = np.zeros(len(end_s))
    for e in episodes:
        if e.rhythm in rhythms:
            lo = np.maximum(end_s - window_s, e.start)
            hi = np.minimum(end_s, e.end)
            cover += np.clip(hi - lo, 0, None)
    return cover / window_s


def cmd_features(args: argparse.Namespace) -> None:
    items = record_list(Path(args.data))
    out: dict[str, np.ndarray] = {}
    meta = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for i, (db, group, path, r) in enumerate(pool.map(_features_job, items, chunksize=4)):
            out[f"f{i}"], out[f"t{i}"] = r["features"], r["end_s"]
            out[f"v{i}"], out[f"a{i}"] = r["vf"], r["artifact"]
            meta.append({"db": db, "group": group, "path": path, "seconds": float(r["seconds"])})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(args.out, **cast("dict[str, Any]", out))
    print(f"{len(meta)} records -> {args.out}")


# ---------------------------------------------------------------------------------------------------- fitting


@dataclass
class _Rec:
    db: str
    group: str
    path: str
    seconds: float
    end_s: np.ndarray
    feats: np.ndarray
    episodes: list[Episode]
    cinc: tuple[str, bool] | None
    decided: tuple[np.ndarray, np.ndarray] | None = None  # (vf, artifact) as the live VFBank decided them


def load_features(path: str | Path) -> list[_Rec]:
    """The records of a ``features`` run with their reference episodes."""
    z = np.load(path)
    meta = json.loads(str(z["meta"]))
    recs = []
    for i, m in enumerate(meta):
        p = Path(m["path"])
        t, f = z[f"t{i}"], z[f"f{i}"]
        cinc = cinc_label(p) if m["db"] == "cinc2015-dev" else None
        if m["db"] == "nstdb-118":
            # noise of 6 dB SNR or worse is an artifact to suppress; 12 and 24 dB leave the ECG readable
            eps = nstdb_noise(m["seconds"]) if p.name[-2:] in ("06", "00", "_6") else []
        elif cinc is not None:
            eps = []
        else:
            fs = 250.0 if m["db"] == "vfdb-dev" else 360.0 if m["db"] == "mitdb-ds1" else 128.0
            eps = read_episodes(p, fs, round(m["seconds"] * fs))
        decided = (z[f"v{i}"], z[f"a{i}"]) if f"v{i}" in z else None
        recs.append(_Rec(m["db"], m["group"], m["path"], m["seconds"], t, f, eps, cinc, decided))
    return recs


def _labels(r: _Rec, window_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per window: VF/flutter cover, VT cover, noise cover (shares of the window)."""
    return (window_labels(r.end_s, r.episodes, VF_RHYTHMS, window_s),
            window_labels(r.end_s, r.episodes, VT_RHYTHMS, window_s),
            window_labels(r.end_s, r.episodes, frozenset({"NOISE"}), window_s))


def _training_set(recs: Sequence[_Rec], window_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows usable for fitting: (features, vf label, artifact label); -1 = not used for that model.
    VF: positive when fully inside a VF/flutter episode, negative when it touches none and no VT (fast VT
    and flutter are one continuum; a VF alarm during VT is not false); Challenge records only when the alarm
    was false (where the truth is unknown otherwise).  Artifact: positive inside a noise episode (VFDB NOISE,
    NSTDB <= 6 dB) away from VF; negative in clean windows."""
    xs, yv, ya = [], [], []
    for r in recs:
        vf, vt, noise = _labels(r, window_s)
        ok = np.isfinite(r.feats).all(axis=1)
        y1 = np.full(len(vf), -1)
        if r.cinc is None or not r.cinc[1]:
            y1[(vf == 0) & (vt == 0)] = 0
            y1[vf >= 0.999] = 1
        y2 = np.full(len(vf), -1)
        if r.cinc is None:
            y2[(noise == 0)] = 0
            y2[(noise >= 0.999) & (vf == 0)] = 1
        xs.append(r.feats[ok])
        yv.append(y1[ok])
        ya.append(y2[ok])
    return np.concatenate(xs), np.concatenate(yv), np.concatenate(ya)


def fit_models(recs: Sequence[_Rec], window_s: float, *, c: float = 1.0) -> VFModel:
    """A multinomial logistic regression (scikit-learn, balanced class weights) for other / VF / artifact."""
    x, yv, ya = _training_set(recs, window_s)
    x = x[:, :len(INPUTS)]  # the models' inputs (the slow-rhythm veto's feature is none)
    y = np.where(yv == 1, 1, np.where(ya == 1, 2, np.where((yv == 0) | (ya == 0), 0, -1)))
    m = y >= 0
    mean, scale = x[m].mean(axis=0), x[m].std(axis=0) + 1e-9
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=3000)
    lr.fit((x[m] - mean) / scale, y[m])
    return VFModel(tuple(mean.tolist()), tuple(scale.tolist()), tuple(tuple(w) for w in lr.coef_.tolist()),
                   tuple(lr.intercept_.tolist()))


@dataclass(frozen=True, slots=True)
class Choice:
    vf_threshold: float
    artifact_threshold: float
    raise_windows: int


def apply(recs: Sequence[_Rec], model: VFModel, ch: Choice, *, live: bool = False) -> dict[str, object]:
    """Score records with the given model and choices, by the rules :class:`VFBank` decides with
    (:func:`~ecgmon.segmentation.vf.decide`), or (``live``) with the decisions the bank itself made."""
    per_db: dict[str, EpisodeScore] = {}
    cinc: dict[str, float] = {"TP": 0, "FN": 0, "FP": 0, "TN": 0, "vf_alarm_on_other_types": 0, "other_records": 0}
    vf_art = vf_n = 0
    cfg = VFConfig(vf_threshold=ch.vf_threshold, artifact_threshold=ch.artifact_threshold, model=model)
    for r in recs:
        if live:
            assert r.decided is not None, "features file without the bank's decisions"
            vf, art = r.decided
        else:
            _, _, vf, art = decide(r.feats, cfg)
        alarms = alarm_intervals(r.end_s, vf, art, raise_windows=ch.raise_windows, clear_windows=3)
        if r.cinc is not None:
            on = any(a <= 65.0 and c >= 50.0 for a, c in alarms)
            if r.cinc[0] == "Ventricular_Flutter_Fib":
                cinc[("TP" if on else "FN") if r.cinc[1] else ("FP" if on else "TN")] += 1
            else:
                cinc["other_records"] += 1
                cinc["vf_alarm_on_other_types"] += int(on)
            continue
        vfc = window_labels(r.end_s, r.episodes, VF_RHYTHMS, cfg.window_s)
        vf_n += int((vfc >= 0.999).sum())
        vf_art += int(((vfc >= 0.999) & art).sum())
        targets = [e for e in r.episodes if e.rhythm in VF_RHYTHMS]
        lethal = [e for e in r.episodes if e.rhythm in VF_RHYTHMS | VT_RHYTHMS]
        s = score_episodes(targets, lethal, alarms, r.seconds)
        per_db[r.db] = per_db.get(r.db, EMPTY) + s
    tp, fn, fp, tn = cinc["TP"], cinc["FN"], cinc["FP"], cinc["TN"]
    cinc["score"] = round(100 * (tp + tn) / max(1, tp + tn + fp + 5 * fn), 1)
    return {"choice": asdict(ch), **{db: s.summary() for db, s in sorted(per_db.items())},
            "cinc2015_vf": cinc, "vf_windows_called_artifact": f"{vf_art}/{vf_n}", "_scores": per_db}


def choose(recs: Sequence[_Rec], model: VFModel) -> Choice:
    """Thresholds and debounce on these records: the fewest false alarms per bed-day (VFDB, DS1, SVDB, NSTDB
    pooled) among the choices that alarm >= 95 % of the VF/flutter episodes within 10 s (else the most
    sensitive)."""
    best: tuple[tuple[float, float], Choice] | None = None
    for thr in (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99):
        for at in (0.5, 0.7, 0.9, 0.97):
            for rw in (1, 2, 3):
                ch = Choice(thr, at, rw)
                res = apply(recs, model, ch)
                tot = EMPTY
                for db in ("vfdb-dev", "mitdb-ds1", "svdb-dev", "nstdb-118"):
                    d = res.get(db)
                    if isinstance(d, dict):
                        tot = tot + EpisodeScore(int(d["episodes"]), int(d["alarmed"]), (), int(d["false_alarms"]),
                                                 float(d["hours"]))
                sens = tot.sensitivity if tot.episodes else 1.0
                key = (0.0 if sens >= 0.95 else 1.0 - sens, tot.false_per_day)
                if best is None or key < best[0]:
                    best = (key, ch)
    assert best is not None
    return best[1]


def folds(recs: Sequence[_Rec], k: int, window_s: float) -> list[int]:
    """Record-level folds: groups with VF/flutter dealt round-robin first (so every fold has some), then the
    rest by a seeded shuffle."""
    groups = sorted({r.group for r in recs})
    pos = {g: 0.0 for g in groups}
    for r in recs:
        pos[r.group] += float((window_labels(r.end_s, r.episodes, VF_RHYTHMS, window_s) >= 0.999).sum())
        if r.cinc is not None and r.cinc[0] == "Ventricular_Flutter_Fib" and r.cinc[1]:
            pos[r.group] += 1
    with_vf = sorted((g for g in groups if pos[g] > 0), key=lambda g: -pos[g])
    rest = [g for g in groups if pos[g] == 0]
    np.random.default_rng(0).shuffle(rest)
    fold = {g: i % k for i, g in enumerate(with_vf)}
    fold.update({g: i % k for i, g in enumerate(rest)})
    return [fold[r.group] for r in recs]


def cmd_fit(args: argparse.Namespace) -> None:
    recs = load_features(args.features)
    cfg = VFConfig()
    fold = folds(recs, args.folds, cfg.window_s)
    report: dict[str, object] = {}
    cv_parts = []
    for k in range(args.folds):
        train = [r for r, f in zip(recs, fold, strict=True) if f != k]
        test = [r for r, f in zip(recs, fold, strict=True) if f == k]
        model = fit_models(train, cfg.window_s, c=args.c)
        ch = choose(train, model)
        cv_parts.append((test, model, ch))
        print(f"fold {k}: {len(test)} records, choice {ch}", flush=True)
    # cross-validated: each record scored by the models and choices of the folds that did not see it
    cv: dict[str, list[Any]] = {}
    for test, model, ch in cv_parts:
        res = apply(test, model, ch)
        for key, v in res.items():
            if key == "choice" or (key not in ("_scores", "cinc2015_vf", "vf_windows_called_artifact")):
                continue
            cv.setdefault(key, []).append(v)
    report["cv"] = _pool(cv)
    model = fit_models(recs, cfg.window_s, c=args.c)
    ch = choose(recs, model)
    report["in_sample"] = {k: v for k, v in apply(recs, model, ch).items() if k != "_scores"}
    report["model"] = {**asdict(model), "choice": asdict(ch)}
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


def _pool(parts: dict[str, list[Any]]) -> dict[str, object]:
    """Sum per-fold results (episode counts, alarms, hours; CinC counts)."""
    out: dict[str, object] = {}
    for key, vals in parts.items():
        assert isinstance(vals, list)
        if key == "cinc2015_vf":
            c = {k: sum(v[k] for v in vals) for k in ("TP", "FN", "FP", "TN", "vf_alarm_on_other_types",
                                                      "other_records")}
            c["score"] = round(100 * (c["TP"] + c["TN"]) / max(1, c["TP"] + c["TN"] + c["FP"] + 5 * c["FN"]), 1)
            out[key] = c
        elif key == "vf_windows_called_artifact":
            a = [tuple(map(int, str(v).split("/"))) for v in vals]
            out[key] = f"{sum(x for x, _ in a)}/{sum(y for _, y in a)}"
        elif key == "_scores":
            tot: dict[str, EpisodeScore] = {}
            for v in vals:
                for db, sc in v.items():
                    tot[db] = tot.get(db, EMPTY) + sc
            out.update({db: sc.summary() for db, sc in sorted(tot.items())})
    return out


def cmd_evaluate(args: argparse.Namespace) -> None:
    """The shipped detector (``VFConfig()``) as the live bank decides, from a ``features`` run made with it."""
    recs = load_features(args.features)
    cfg = VFConfig()
    ch = Choice(cfg.vf_threshold, cfg.artifact_threshold, VFAlarm().raise_n)
    res = {k: v for k, v in apply(recs, cfg.model, ch, live=True).items() if k != "_scores"}
    print(json.dumps(res, indent=1))


def cmd_noise(args: argparse.Namespace) -> None:
    """Share of the windows the artifact model's probability puts at or over each threshold: clean windows (no noise,
    VF or VT annotated; a Challenge record's are left out: their truth is not annotated) and noise windows (inside
    VFDB ``(NOISE`` or NSTDB 118's noise at 6 dB SNR and worse), per database, and the clean records most affected."""
    recs = load_features(args.features)
    cfg = VFConfig()
    by_db: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for r in recs:
        if r.cinc is not None:
            continue
        vf, vt, noise = _labels(r, cfg.window_s)
        _, p_art, _, _ = decide(r.feats, cfg)
        ok = np.isfinite(r.feats).all(axis=1)
        by_db.setdefault(r.db, []).append((Path(r.path).name, p_art[ok & (vf == 0) & (vt == 0) & (noise == 0)],
                                           p_art[ok & (noise >= 0.999) & (vf == 0)]))
    for thr in args.thresholds:
        parts = []
        for db, rows in by_db.items():
            clean = np.concatenate([c for _, c, _ in rows])
            noisy = np.concatenate([n for _, _, n in rows])
            part = f"{db}: clean {100 * np.mean(clean >= thr):5.1f} % of {len(clean)}"
            if len(noisy):
                part += f", noise {100 * np.mean(noisy >= thr):5.1f} % of {len(noisy)}"
            parts.append(part)
        print(f"p_artifact >= {thr:g}: " + " | ".join(parts))
    for db in ("mitdb-ds1", "svdb-dev"):
        clean_rows = [(name, c) for name, c, _ in by_db.get(db, []) if len(c)]
        worst = sorted(clean_rows, key=lambda nc: -float(np.mean(nc[1] >= args.thresholds[0])))[:5]
        shares = ", ".join(f"{name} " + "/".join(f"{100 * np.mean(c >= t):.0f}" for t in args.thresholds) + " %"
                           for name, c in worst)
        print(f"{db}, the clean records most often over " + " / ".join(f"{t:g}" for t in args.thresholds)
              + f": {shares}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ecgmon.evaluation.vfdb", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("features", help="every development window's features")
    f.add_argument("--data", default=str(DATA))
    f.add_argument("--out", default="build/vf/features.npz")
    f.add_argument("--jobs", type=int, default=2)
    g = sub.add_parser("fit", help="record-level CV and in-sample fit of the VF and artifact models")
    g.add_argument("features")
    g.add_argument("--folds", type=int, default=5)
    g.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the logistic regressions")
    g.add_argument("--out", default="")
    e = sub.add_parser("evaluate", help="score the shipped detector's own decisions (from a features run)")
    e.add_argument("features", nargs="?", default="build/vf/features.npz")
    n = sub.add_parser("noise", help="share of clean and noise windows at or over artifact-probability thresholds")
    n.add_argument("features", nargs="?", default="build/vf/features.npz")
    n.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9])
    args = ap.parse_args(argv)
    if args.cmd == "evaluate":
        cmd_evaluate(args)
    elif args.cmd == "features":
        cmd_features(args)
    elif args.cmd == "fit":
        cmd_fit(args)
    elif args.cmd == "noise":
        cmd_noise(args)


if __name__ == "__main__":
    main()

__all__ = ["EMPTY", "Episode", "EpisodeScore", "alarm_intervals", "asdict", "record_features", "score_episodes"]

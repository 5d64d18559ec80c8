"""Record-level cross-validation over several databases (issue 20 item 5): the folds (stratified by the
folder each record was read from), what a checkpoint says it was fitted on, `--data` given more than once
with a lead per folder, and `ecgmon evaluate --protocol mitdb --cv 2` end to end on a 360 Hz MIT-BIH
excerpt and a 128 Hz two-lead copy of another (SVDB-like: leads ECG1 and ECG2)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from ecgmon.cli.main import _read_records, main
from ecgmon.evaluation.crossval import cross_validate
from ecgmon.models.realecg import database_of, fitted_on, folds_of
from ecgmon.models.records import Recording, read

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import wfdb

DATA = Path(__file__).parent / "data"
ECGMON = str(Path(sys.executable).with_name("ecgmon"))


def _rec(folder: str, name: str, lead: str = "MLII", fs: float = 360.0) -> Recording:
    return Recording(name=name, path=Path("/nowhere") / folder / name, fs=fs, lead=lead,
                     signal=np.zeros(10, np.float32))


def test_folds_are_stratified_by_database_and_hold_every_record_once():
    ds1 = [_rec("mitdb-ds1", n) for n in ("230", "101", "106", "108", "109", "112", "114")]
    svdb = [_rec("svdb-dev", n, "ECG1", 128.0) for n in ("801", "802", "805", "807", "808", "810", "811", "812")]
    folds = folds_of([*svdb, *ds1], 3)
    names = [r.name for f in folds for r in f]
    assert sorted(names) == sorted(r.name for r in [*ds1, *svdb]) and len(set(names)) == 15  # each once
    for f in folds:  # every fold holds 2-3 of the 7 DS1 records and 2-3 of the 8 SVDB records
        by_db = [sum(database_of(r) == d for r in f) for d in ("mitdb-ds1", "svdb-dev")]
        assert 2 <= by_db[0] <= 3 and 2 <= by_db[1] <= 3, by_db
    # deterministic, and independent of the order the records came in
    assert [[r.name for r in f] for f in folds] == [[r.name for r in f] for f in folds_of([*ds1, *svdb], 3)]
    # one database: as before, sorted by name, record i in fold i mod k
    assert [[r.name for r in f] for f in folds_of(ds1, 2)] == [["101", "108", "112", "230"], ["106", "109", "114"]]
    with pytest.raises(ValueError, match="2 <= K <= 7"):
        folds_of(ds1, 8)
    with pytest.raises(ValueError, match="folds are numbered 1 to 3"):  # --folds: checked before any work
        cross_validate(ds1, 3, only=[2, 4])


def test_fitted_on_names_each_database_its_records_leads_and_rates():
    recs = [_rec("mitdb-ds1", "101"), _rec("mitdb-ds1", "106"), _rec("svdb-dev", "801", "ECG1", 128.0)]
    s = fitted_on(recs)
    assert s["records"] == ["101", "106", "801"] and s["lead"] == "mixed"
    assert s["databases"] == {"mitdb-ds1": {"records": ["101", "106"], "leads": ["MLII"], "fs": [360.0]},
                              "svdb-dev": {"records": ["801"], "leads": ["ECG1"], "fs": [128.0]}}
    assert s["record_lead"]["801"] == "ECG1" and s["record_database"]["106"] == "mitdb-ds1"
    assert fitted_on(recs[:2])["lead"] == "MLII"


def _svdb_like(folder: Path, src: Path, name: str) -> Path:
    """``src`` (a 360 Hz MLII record) resampled to 128 Hz as a two-lead record named ECG1 (the signal) and
    ECG2 (the signal inverted and halved), with its reference beats moved to 128 Hz."""
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # wfdb's own use of deprecated pandas calls
        warnings.simplefilter("ignore")
        rec = wfdb.rdrecord(str(src))
        ann = wfdb.rdann(str(src), "atr")
        x = resample_poly(rec.p_signal[:, 0], 16, 45)  # 360 -> 128 Hz
        sig = np.column_stack([x, -0.5 * x])
        wfdb.wrsamp(name, fs=128, units=["mV", "mV"], sig_name=["ECG1", "ECG2"], p_signal=sig, fmt=["212", "212"],
                    adc_gain=[200.0, 200.0], baseline=[0, 0], write_dir=str(folder))
        samples = np.round(ann.sample * 128 / 360).astype(np.int64)
        keep = samples < len(x)
        wfdb.wrann(name, "atr", samples[keep], symbol=list(np.asarray(ann.symbol)[keep]), write_dir=str(folder))
    return folder


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"records": None, "lead": None, **kw})


def test_data_given_twice_pools_records_with_a_lead_per_folder(tmp_path):
    svdb = _svdb_like(tmp_path / "svdb128", DATA / "mitdb-hard" / "116x", "816")
    ds1 = DATA / "mitdb-hard"
    # the default rule: lead II where there is one (MLII), else the first (ECG1)
    recs, left = _read_records(_args(data=[ds1, svdb]))
    assert left == [] and {r.name: r.lead for r in recs} == {"116x": "MLII", "201x": "MLII", "203x": "MLII",
                                                             "816": "ECG1"}
    assert {r.name: r.fs for r in recs}["816"] == 128.0 and database_of(recs[-1]) == "svdb128"
    # one --lead per --data, in order
    recs, _ = _read_records(_args(data=[ds1, svdb], lead=["MLII", "ECG2"]))
    assert {r.name: r.lead for r in recs}["816"] == "ECG2"
    two = read(svdb / "816", lead="ECG2").signal
    assert np.allclose(two, -0.5 * read(svdb / "816", lead="ECG1").signal, atol=0.01)  # the lead asked for
    # --records looked up in the folder that has each
    recs, _ = _read_records(_args(data=[ds1, svdb], records=["816", "201x"]))
    assert sorted(r.name for r in recs) == ["201x", "816"]
    with pytest.raises(ValueError, match="none of the --data folders"):
        _read_records(_args(data=[ds1, svdb], records=["999"]))
    with pytest.raises(ValueError, match="--lead is given 3 times for 2 --data folders"):
        _read_records(_args(data=[ds1, svdb], lead=["MLII", "ECG1", "ECG2"]))
    # a single --lead applies to every folder: a folder without it has its records left out, reported
    recs, left = _read_records(_args(data=[ds1, svdb], lead=["ECG1"]))
    assert [r.name for r in recs] == ["816"] and len(left) == 3 and all("no lead 'ECG1'" in x for x in left)


def test_other_protocols_take_data_once(tmp_path, capsys):
    rc = main(["evaluate", "--protocol", "qrs", "--data", str(DATA / "mitdb"), "--data", str(DATA / "mitdb-hard"),
               "--out", str(tmp_path / "q")])
    assert rc == 2 and "--data is given 2 times; --protocol qrs takes it once" in capsys.readouterr().err


def test_each_protocol_writes_its_own_folder_by_default(tmp_path, monkeypatch, capsys):
    """Without --out each protocol writes runs/eval/PROTOCOL: all wrote runs/eval, so --protocol qrs replaced the
    mitdb run's metrics.json (a newcomer, session 57)."""
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--protocol", "qrs", "--data", str(DATA / "mitdb"), "--no-figures"]) == 0
    written = json.loads((tmp_path / "runs" / "eval" / "qrs" / "metrics.json").read_text())
    assert written["protocol"] == "qrs" and not (tmp_path / "runs" / "eval" / "metrics.json").exists()


@pytest.mark.slow
def test_cv_over_two_databases_holds_each_record_out_once_and_counts_each_database(tmp_path):
    svdb = _svdb_like(tmp_path / "svdb128", DATA / "mitdb" / "205x", "805x")
    out = tmp_path / "cv"
    r = subprocess.run([ECGMON, "evaluate", "--protocol", "mitdb", "--data", str(DATA / "mitdb"), "--data", str(svdb),
                        "--cv", "2", "--epochs", "1", "--learn", "60", "--threads", "1", "--no-figures",
                        "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    # 805x has a second lead (ECG2), played beside the first by default; 205x here has one lead
    assert m["leads"] == {"205x": "MLII", "805x": "ECG1 + ECG2"}
    assert m["databases"] == {"205x": "mitdb", "805x": "svdb128"}
    assert [f["held_out_by_database"] for f in m["folds"]] == [{"mitdb": ["205x"]}, {"svdb128": ["805x"]}]
    assert [f["fitted_on"] for f in m["folds"]] == [["805x"], ["205x"]]  # never fitted on what it judges
    assert set(m["by_database"]) == {"mitdb", "svdb128"}
    for db in ("mitdb", "svdb128"):  # each database's own figures: the detector finds its beats at 360 and 128 Hz
        g = m["by_database"][db]["gross"]
        assert g["qrs_se"] > 0.98 and g["qrs_pp"] > 0.98, (db, g)
    # the pooled counts are the sum of the two
    per = {x["record"]: x for x in m["records"]}
    assert per["205x"]["ref_beats"] + per["805x"]["ref_beats"] == sum(x["ref_beats"] for x in m["records"])
    assert (out / "fold1.pt").exists() and (out / "fold2.pt").exists()
    assert "svdb128:" in r.stdout and "mitdb:" in r.stdout  # each database's alarm burden, printed

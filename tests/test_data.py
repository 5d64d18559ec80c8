import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ecgmon.models import data as d

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ecg5000"


def test_bundle_regenerates_the_original_text_files_byte_for_byte():
    train, test = d.load_bundled()
    assert train.x.shape == (500, 140) and test.x.shape == (4500, 140)
    assert hashlib.sha256(d.to_ucr_text(train)).hexdigest() == d.SHA256_TXT["TRAIN"]
    assert hashlib.sha256(d.to_ucr_text(test)).hexdigest() == d.SHA256_TXT["TEST"]
    assert np.bincount(train.y).tolist() == [0, 292, 177, 10, 19, 2]
    assert np.bincount(test.y).tolist() == [0, 2627, 1590, 86, 175, 22]
    assert train.x[0, :3].tolist() == [-0.11252183, -2.8272038, -3.7738969]


@pytest.mark.skipif(not SHARED.exists(), reason="the shared source files are not beside this checkout")
def test_bundle_equals_numpy_loadtxt_of_the_sources():
    train, _ = d.load_bundled()
    ref = np.loadtxt(SHARED / "ECG5000_TRAIN.txt")
    assert np.array_equal(ref[:, 1:], train.x) and np.array_equal(ref[:, 0].astype(int), train.y)
    arff = d.load_file(SHARED / "ECG5000_TRAIN.arff")
    assert np.array_equal(arff.x, train.x) and np.array_equal(arff.y, train.y)


def _write_forms(tmp_path: Path, beats: d.Beats) -> dict[str, Path]:
    txt = tmp_path / "b.txt"
    txt.write_bytes(d.to_ucr_text(beats))
    tsv = tmp_path / "b.tsv"
    tsv.write_text("".join(f"{lab}\t" + "\t".join(map(repr, row.tolist())) + "\n"
                           for lab, row in zip(beats.y, beats.x, strict=True)))
    arff = tmp_path / "b.arff"
    head = "@relation ECG5000\n" + "".join(f"@attribute att{i} numeric\n" for i in range(140))
    arff.write_text(head + "@attribute target {1,2,3,4,5}\n@data\n" + "".join(
        ",".join(f"{v:.8E}" for v in row) + f",{lab}\n" for lab, row in zip(beats.y, beats.x, strict=False)))
    return {"txt": txt, "tsv": tsv, "arff": arff}


def test_every_format_loads_the_same_beats(tmp_path):
    train, _ = d.load_bundled()
    sub = d.Beats(train.x[:20], train.y[:20])
    for form, path in _write_forms(tmp_path, sub).items():
        got = d.load_file(path)
        assert got.x.shape == (20, 140), form
        assert np.array_equal(got.y, sub.y), form
        np.testing.assert_allclose(got.x, sub.x, rtol=1e-8, err_msg=form)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("1.0 " + " ".join(["0.5"] * 139) + "\n", "expected 141 fields"),
        ("1.0 " + " ".join(["abc"] * 140) + "\n", "non-numeric"),
        ("7.0 " + " ".join(["0.5"] * 140) + "\n", "not a class"),
        ("1.0 " + " ".join(["nan"] * 140) + "\n", "NaN"),
        ("", "no beats"),
    ],
)
def test_bad_files_get_a_clear_error_naming_file_and_problem(tmp_path, content, problem):
    p = tmp_path / "ECG5000_TRAIN.txt"
    p.write_text(content)
    with pytest.raises(d.DataFormatError, match=problem) as e:
        d.load_file(p)
    assert str(p) in str(e.value)


def test_binary_garbage_is_a_data_error(tmp_path):
    p = tmp_path / "x.tsv"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(d.DataFormatError, match=str(p)):
        d.load_file(p)


def test_product_split_is_deterministic_stratified_and_disjoint():
    a, b = d.make_split("product", seed=0), d.make_split("product", seed=0)
    assert a.digest() == b.digest()
    assert len(a.train) + len(a.val) + len(a.test) == 5000
    assert not (set(a.train) & set(a.val) or set(a.train) & set(a.test) or set(a.val) & set(a.test))
    for part, frac in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        y = a.part(part).y
        for c in range(1, 6):
            assert abs((y == c).sum() - frac * (a.pool.y == c).sum()) <= 1
    assert d.make_split("product", seed=1).digest() != a.digest()


def test_ucr_split_reports_on_the_official_test_set():
    s = d.make_split("ucr")
    assert len(s.test) == 4500 and s.test.min() == 500
    assert len(s.train) + len(s.val) == 500
    assert (s.pool.y[s.train] == 1).sum() == len(s.train_normal)


def _zip_url(tmp_path: Path, beats_train: d.Beats, beats_test: d.Beats) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ECG5000/ECG5000_TRAIN.txt", d.to_ucr_text(beats_train))
        zf.writestr("ECG5000/ECG5000_TEST.txt", d.to_ucr_text(beats_test))
    p = tmp_path / "ECG5000.zip"
    p.write_bytes(buf.getvalue())
    return p.as_uri()


def test_download_verifies_the_content_checksum(tmp_path):
    train, test = d.load_bundled()
    _got_train, got_test = d.download_ucr(tmp_path / "ok", url=_zip_url(tmp_path, train, test))
    assert np.array_equal(got_test.x, test.x)
    bad = d.Beats(test.x.copy(), test.y)
    bad.x[0, 0] += 1e-6
    with pytest.raises(d.DataFormatError, match="content sha256"):
        d.download_ucr(tmp_path / "bad", url=_zip_url(tmp_path, train, bad))

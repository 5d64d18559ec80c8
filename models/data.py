"""ECG5000 loading: the bundled lossless copy, user files (UCR text, TSV, ARFF) and the two protocols.

The bundled copy (``data/ecg5000.npz``) stores every sample as its exact decimal
mantissa (int32) and decimal exponent (int8), exactly as written in the UCR files.
Decoding divides the mantissa by an exactly representable power of ten, which IEEE
754 rounds correctly, so each value is bit-identical to ``float(text)`` of the
original decimal string.  ``tests/test_data.py`` proves it by regenerating the
original text files byte for byte and checking their published sha256 sums.

Protocols (both deterministic):

``product``
    all 5,000 beats pooled, stratified 60/20/20 train/validation/test split with a
    fixed seed; train on train's normal beats, calibrate on validation, report on test.
``ucr``
    the official split; train on TRAIN's normal beats minus a stratified 20 % hold-out
    (all classes) used for calibration; report on the 4,500 TEST beats.
"""

from __future__ import annotations

import hashlib
import io
import urllib.request
import zipfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from ecgmon.core.limits import BEAT_LEN

N_CLASSES = 5
NORMAL = 1
CLASS_NAMES = {1: "normal", 2: "R-on-T PVC", 3: "PVC", 4: "SP/EB", 5: "UB"}
BUNDLE_NAME = "ecg5000.npz"

#: sha256 of the original UCR-derived text files (see data/SOURCES.md).
SHA256_TXT = {
    "TRAIN": "99d1319afcdff61650b67468598ebf1d47f03921f67719012f347dd4f4ac428b",
    "TEST": "d2636c99ffc06b506884113b6f4bfae9cee2fb4cd0461c23bbe4a0bea7c80d08",
}
#: content hash (labels + float64 values, see :func:`content_hash`) of TRAIN then TEST.
CONTENT_SHA256 = "6feda73c93212171d9c172bfeca5425f6c3a297951e775c379175a00a83a3f62"
UCR_URL = "https://www.timeseriesclassification.com/aeon-toolkit/ECG5000.zip"

Protocol = Literal["product", "ucr"]
_POW10 = np.array([float(10**k) for k in range(23)])


class DataFormatError(ValueError):
    """A data file that cannot be read as ECG5000-shaped beats; the message names file and problem."""


@dataclass(frozen=True, slots=True)
class Beats:
    """Labelled beats: ``x`` float64 (N, 140) z-normalised samples, ``y`` int8 class labels 1..5."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True, slots=True)
class Split:
    """A protocol's split of a pool of beats into train/validation/test index arrays."""

    protocol: str
    seed: int
    pool: Beats
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def part(self, name: Literal["train", "val", "test"]) -> Beats:
        idx = getattr(self, name)
        return Beats(self.pool.x[idx], self.pool.y[idx])

    @property
    def train_normal(self) -> np.ndarray:
        return self.pool.x[self.train[self.pool.y[self.train] == NORMAL]]

    def digest(self) -> str:
        """sha256 over the pool's content and the three index arrays: names one split exactly."""
        h = hashlib.sha256(content_hash(self.pool).encode())
        for idx in (self.train, self.val, self.test):
            h.update(np.ascontiguousarray(idx, dtype=np.int64).tobytes())
        return h.hexdigest()


def content_hash(beats: Beats) -> str:
    """sha256 of labels (int8) and values (float64, little-endian): format-independent identity."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(beats.y, dtype="<i1").tobytes())
    h.update(np.ascontiguousarray(beats.x, dtype="<f8").tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- bundled copy


def _encode_decimal(tokens: list[str], where: str) -> tuple[list[int], list[int]]:
    mant, exp = [], []
    for s in tokens:
        try:
            sign, digits, e = Decimal(s).as_tuple()
        except InvalidOperation as err:
            raise DataFormatError(f"{where}: {s!r} is not a number") from err
        m = int("".join(map(str, digits)) or "0")
        if not isinstance(e, int):  # 'n', 'N' or 'F': NaN or infinity
            raise DataFormatError(f"{where}: {s!r} is not a finite number")
        if len(digits) > 9 or not -22 <= e <= 22:
            raise DataFormatError(f"{where}: {s!r} does not fit the bundle encoding")
        mant.append(-m if sign else m)
        exp.append(e)
    return mant, exp


def _decode(mant: np.ndarray, exp: np.ndarray) -> np.ndarray:
    m = mant.astype(np.float64)
    neg = exp < 0
    out = np.empty_like(m)
    out[neg] = m[neg] / _POW10[-exp[neg]]  # correctly rounded: exact mantissa / exact power of ten
    out[~neg] = m[~neg] * _POW10[exp[~neg]]
    return out


def build_bundle(src_dir: Path, out: Path) -> Path:
    """Encode ``ECG5000_{TRAIN,TEST}.txt`` from ``src_dir`` into the lossless bundle at ``out``.

    The source files are checked against their published sha256 sums first.
    """
    arrays: dict[str, np.ndarray] = {}
    for part in ("TRAIN", "TEST"):
        path = Path(src_dir) / f"ECG5000_{part}.txt"
        raw = path.read_bytes()
        got = hashlib.sha256(raw).hexdigest()
        if got != SHA256_TXT[part]:
            raise DataFormatError(f"{path}: sha256 {got} does not match the published {SHA256_TXT[part]}")
        labels, mants, exps = [], [], []
        for n, line in enumerate(raw.decode("ascii").splitlines(), 1):
            tok = line.split()
            labels.append(int(float(tok[0])))
            m, e = _encode_decimal(tok[1:], f"{path}:{n}")
            mants.append(m)
            exps.append(e)
        arrays[f"{part}_y"] = np.array(labels, dtype=np.int8)
        arrays[f"{part}_mant"] = np.array(mants, dtype=np.int32)
        arrays[f"{part}_exp"] = np.array(exps, dtype=np.int8)
    np.savez_compressed(out, allow_pickle=False, **arrays)
    return out


def load_bundled() -> tuple[Beats, Beats]:
    """The official (TRAIN, TEST) split from the copy shipped inside the package."""
    with resources.files("ecgmon.models").joinpath("assets", BUNDLE_NAME).open("rb") as f:
        z = np.load(io.BytesIO(f.read()))
        train, test = (Beats(_decode(z[f"{p}_mant"], z[f"{p}_exp"]), z[f"{p}_y"].astype(np.int8))
                       for p in ("TRAIN", "TEST"))
        return train, test


def to_ucr_text(beats: Beats) -> bytes:
    """Render beats in the SOURCES.md text form (float label, ``repr`` values): the inverse of loading."""
    lines = [
        " ".join([repr(float(lab)), *map(repr, row.tolist())]) for lab, row in zip(beats.y, beats.x, strict=True)
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


# --------------------------------------------------------------------------- user files


def load_file(path: str | Path) -> Beats:
    """Read ECG5000-shaped beats from a UCR ``.txt`` (whitespace), ``.tsv`` or ``.arff`` file.

    Text and TSV files carry the label first; ARFF files (with or without a header)
    carry it last.  Raises :class:`DataFormatError` naming the file, line and problem.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: cannot read as text ({err})") from err
    suffix = path.suffix.lower()
    label_last = suffix == ".arff"
    rows: list[list[float]] = []
    labels: list[int] = []
    in_data = not label_last or "@data" not in text.lower()
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("%"):
            continue
        if label_last and s.startswith("@"):
            in_data = in_data or s.lower().startswith("@data")
            continue
        if not in_data:
            continue
        tok = s.replace(",", " ").split() if label_last else (s.split("\t") if suffix == ".tsv" else s.split())
        if len(tok) != BEAT_LEN + 1:
            raise DataFormatError(
                f"{path}:{n}: expected {BEAT_LEN + 1} fields (label + {BEAT_LEN} samples), found {len(tok)}"
            )
        lab_s, vals = (tok[-1], tok[:-1]) if label_last else (tok[0], tok[1:])
        try:
            lab_f = float(lab_s)
            vals_f = [float(v) for v in vals]
        except ValueError as err:
            raise DataFormatError(f"{path}:{n}: non-numeric field ({err})") from err
        if lab_f != int(lab_f) or not 1 <= lab_f <= N_CLASSES:
            raise DataFormatError(f"{path}:{n}: label {lab_s!r} is not a class 1..{N_CLASSES}")
        if not all(np.isfinite(vals_f)):
            raise DataFormatError(f"{path}:{n}: NaN or infinite sample")
        labels.append(int(lab_f))
        rows.append(vals_f)
    if not rows:
        raise DataFormatError(f"{path}: no beats found")
    return Beats(np.array(rows, dtype=np.float64), np.array(labels, dtype=np.int8))


def load_dir(directory: str | Path) -> tuple[Beats, Beats]:
    """(TRAIN, TEST) from a folder holding ``ECG5000_TRAIN.*`` and ``ECG5000_TEST.*`` in any supported form."""
    directory = Path(directory)
    out = []
    for part in ("TRAIN", "TEST"):
        for ext in (".txt", ".tsv", ".arff"):
            p = directory / f"ECG5000_{part}{ext}"
            if p.exists():
                out.append(load_file(p))
                break
        else:
            raise DataFormatError(f"{directory}: no ECG5000_{part}.txt/.tsv/.arff")
    return out[0], out[1]


def download_ucr(dest: str | Path, *, url: str = UCR_URL, expected: str = CONTENT_SHA256) -> tuple[Beats, Beats]:
    """Download ECG5000 from the UCR/UEA archive into ``dest`` and verify its content hash.

    The archive's files differ in text form from the bundled ones, so the check is on
    content (labels and float64 values), which must equal the bundled copy's.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=60) as r:
        blob = r.read()
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        for name in zf.namelist():
            base = Path(name).name
            if base.startswith("ECG5000_") and Path(base).suffix.lower() in (".txt", ".tsv", ".arff"):
                (dest / base).write_bytes(zf.read(name))
    train, test = load_dir(dest)
    got = content_hash(Beats(np.concatenate([train.x, test.x]), np.concatenate([train.y, test.y])))
    if got != expected:
        raise DataFormatError(f"{url}: content sha256 {got} does not match the expected {expected}")
    return train, test


def load(data: str | Path | None = None) -> tuple[Beats, Beats]:
    """(TRAIN, TEST): the bundled copy, or the files in ``data`` (a folder) when given."""
    return load_bundled() if data is None else load_dir(data)


# --------------------------------------------------------------------------- protocols


def _stratified(y: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator) -> list[np.ndarray]:
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        cuts = np.round(np.cumsum(fractions)[:-1] * len(idx)).astype(int)
        for k, chunk in enumerate(np.split(idx, cuts)):
            parts[k].append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def make_split(protocol: Protocol = "product", *, seed: int = 0, data: str | Path | None = None) -> Split:
    """The deterministic split for ``protocol`` (see the module docstring)."""
    train, test = load(data)
    rng = np.random.default_rng(seed)
    if protocol == "product":
        pool = Beats(np.concatenate([train.x, test.x]), np.concatenate([train.y, test.y]))
        tr, va, te = _stratified(pool.y, (0.6, 0.2, 0.2), rng)
    elif protocol == "ucr":
        pool = Beats(np.concatenate([train.x, test.x]), np.concatenate([train.y, test.y]))
        tr, va = _stratified(train.y, (0.8, 0.2), rng)
        te = np.arange(len(train), len(pool))
    else:
        raise ValueError(f"unknown protocol {protocol!r}: use 'product' or 'ucr'")
    return Split(protocol, seed, pool, tr, va, te)


if __name__ == "__main__":  # python -m ecgmon.models.data SRC_DIR  (re)builds the bundle
    import sys

    out = Path(__file__).with_name("assets") / BUNDLE_NAME
    print(build_bundle(Path(sys.argv[1]), out), out.stat().st_size, "bytes")

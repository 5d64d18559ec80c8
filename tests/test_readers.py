"""Readers by kind (WFDB, EDF, CSV), lead choice, NaN as signal loss, bad records left out: on files made
here from the shipped MIT-BIH excerpt (tests/data/mitdb/205x) or from synthetic signals."""

from __future__ import annotations

import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import edfio
import numpy as np
import pytest
import wfdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecgmon.evaluation import ec57
from ecgmon.models.recording import choose_lead, lead_key
from ecgmon.models.records import RecordError, cut_beats, read, read_all, read_csv, read_edf

DATA = Path(__file__).parent / "data" / "mitdb"
EXCERPT = DATA / "205x"
SECONDS = 60  # the excerpt's first minute: 78 reference beats


@pytest.fixture(autouse=True, params=["lines", "bulk"])
def csv_read(request, monkeypatch):
    """Every test twice: CSV files read line by line, and as a large file is (its dialect from its first 2 kB, its
    rows in bulk by numpy, csv_io.read_csv): both must give the same recordings, notes and errors."""
    from ecgmon.models import csv_io

    if request.param == "bulk":
        monkeypatch.setattr(csv_io, "BULK_BYTES", 0)
        monkeypatch.setattr(csv_io, "HEAD_BYTES", 2048)
    return request.param


@pytest.fixture(scope="module")
def excerpt():
    r = read(EXCERPT)
    n = int(SECONDS * r.fs)
    keep = r.ann_samples < n
    return r.signal[:n].astype(np.float64), r.fs, r.ann_samples[keep], r.ann_classes[keep]


def _wfdb(tmp: Path, name: str, x: np.ndarray, fs: float, *, fmt: str = "16", names=("MLII",), gain: float = 200.0,
          units: str = "mV") -> Path:
    sig = x.reshape(len(x), -1)
    with warnings.catch_warnings():  # wfdb's own use of deprecated pandas calls
        warnings.simplefilter("ignore")
        wfdb.wrsamp(name, fs=fs, units=[units] * sig.shape[1], sig_name=list(names), p_signal=sig,
                fmt=[fmt] * sig.shape[1], adc_gain=[gain] * sig.shape[1], baseline=[0] * sig.shape[1],
                    write_dir=str(tmp))
    return tmp / name


# --------------------------------------------------------------------------- lead names


def test_lead_aliases_and_an_absent_lead_lists_the_leads():
    assert {lead_key(n) for n in ("MLII", "II", "ii", "ECG II", "ML2", "ecg_ii", "Lead II", "ECG Lead II",
                                  "EKG lead II")} == {"ii"}
    assert lead_key("ECG1") == lead_key("ECG 1") == lead_key("ecg_01") == "ecg1" != lead_key("I")
    assert lead_key("V5") == lead_key("ECG V5") == lead_key("v5")
    assert choose_lead(["i", "ii"], "II", where="f") == (1, None)
    assert choose_lead(["I", "MLII", "V1"], None, where="f") == (1, None)  # II by default
    assert choose_lead(["ECG 1", "ECG 2"], "ECG1", where="f") == (0, None)
    with pytest.raises(RecordError, match=r"f: no lead 'V5' \(leads: 'i', 'ii'\); choose one of these with --lead"):
        choose_lead(["i", "ii"], "V5", where="f")
    i, note = choose_lead(["V", "aVF"], None, where="f")
    assert i == 0 and note is not None and "playing 'V'" in note  # never a silent choice
    with pytest.raises(RecordError, match="ambiguous"):
        choose_lead(["MLII", "ECG II"], "II", where="f")
    # no lead II: a signal named as an ECG lead before other voltage signals (a sleep study's EEG in uV, a
    # respiration belt in mV at 25 Hz), with the warning naming it
    for names, k in ((["EEG Fp1", "EKG2"], 1), (["SpO2", "Resp", "ECG"], 2), (["EMG chin", "V1", "ECG"], 1)):
        i, note = choose_lead(names, None, where="f")
        assert i == k and note is not None and f"playing {names[k]!r}" in note
    # leads that share a name (VFDB's two "ECG" signals): the error says how to pick one, by position
    with pytest.raises(RecordError, match=r"ambiguous: #1, #2 all match .*--lead '#1'"):
        choose_lead(["ECG", "ECG"], "ECG", where="f")
    assert choose_lead(["ECG", "ECG"], "#2", where="f") == (1, None)
    for bad in ("#0", "#3", "#x"):
        with pytest.raises(RecordError, match=rf"no signal '{bad}' .*1-based"):
            choose_lead(["ECG", "ECG"], bad, where="f")


def test_leads_that_share_a_name_are_read_by_position(tmp_path, excerpt):
    """VFDB's two signals are both named ECG: '#2' must play the second (wfdb's channel_names picks the first)."""
    x, fs, _, _ = excerpt
    sig = np.column_stack([x, -0.5 * x])
    p = _wfdb(tmp_path, "twin", sig, fs, names=("ECGA", "ECGB"))  # wfdb writes unique names only
    hea = p.with_suffix(".hea")
    hea.write_text(hea.read_text().replace(" ECGA", " ECG").replace(" ECGB", " ECG"))
    one, two = read(p, lead="#1", annotations=False), read(p, lead="#2", annotations=False)
    np.testing.assert_allclose(one.signal[:500], x[:500], atol=0.01)
    np.testing.assert_allclose(two.signal[:500], -0.5 * x[:500], atol=0.01)
    assert (one.lead, two.lead) == ("ECG (#1)", "ECG (#2)")  # reports say which signal was played


# --------------------------------------------------------------------------- WFDB


def test_wfdb_header_without_sample_count_reads_the_whole_signal(tmp_path, excerpt):
    x, fs, _, _ = excerpt
    p = _wfdb(tmp_path, "nolen", x, fs)
    hea = p.with_suffix(".hea")
    first, *rest = hea.read_text().splitlines()
    hea.write_text(" ".join(first.split()[:3]) + "\n" + "\n".join(rest) + "\n")  # "nolen 1 360": no length
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert wfdb.rdheader(str(p)).sig_len is None
    r = read(p)
    assert len(r.signal) == len(x) and r.fs == fs
    np.testing.assert_allclose(r.signal, x, atol=0.5 / 200 + 1e-6)  # half an ADC step at 200/mV


@pytest.mark.parametrize("fmt", ["16", "212", "80"])
def test_wfdb_formats_written_by_wfdb(tmp_path, excerpt, fmt):
    x, fs, _, _ = excerpt
    gain = 50.0 if fmt == "80" else 200.0  # format 80 holds 8 bits
    r = read(_wfdb(tmp_path, f"f{fmt}", np.clip(x, -2.5, 2.5), fs, fmt=fmt, gain=gain, names=("ECG II",)))
    assert r.lead == "ECG II" and len(r.signal) == len(x)
    np.testing.assert_allclose(r.signal, np.clip(x, -2.5, 2.5), atol=0.5 / gain + 1e-6)


def _pack_10bit(d: np.ndarray, fmt: str) -> bytes:
    """Three 10-bit two's-complement samples in four bytes (WFDB signal(5), formats 310 and 311)."""
    u = (np.asarray(d, np.int64) & 0x3FF).reshape(-1, 3)
    if fmt == "311":  # one little-endian 32-bit word: bits 0-9, 10-19, 20-29
        return (u[:, 0] | u[:, 1] << 10 | u[:, 2] << 20).astype("<u4").tobytes()
    # 310: two little-endian 16-bit words; samples 1 and 2 in bits 1-10 of each word, sample 3's low five
    # bits in bits 11-15 of the first word, its high five bits in bits 11-15 of the second
    w1 = (u[:, 0] << 1) | ((u[:, 2] & 0x1F) << 11)
    w2 = (u[:, 1] << 1) | ((u[:, 2] >> 5) << 11)
    return np.stack([w1, w2], axis=1).astype("<u2").tobytes()


@pytest.mark.parametrize("fmt", ["310", "311"])
def test_wfdb_10_bit_formats(tmp_path, excerpt, fmt):
    x, fs, _, _ = excerpt
    n = len(x) - len(x) % 3
    d = np.clip(np.round(x[:n] * 200), -512, 511).astype(np.int64)
    (tmp_path / f"p{fmt}.dat").write_bytes(_pack_10bit(d, fmt))
    (tmp_path / f"p{fmt}.hea").write_text(f"p{fmt} 1 {fs:g} {n}\np{fmt}.dat {fmt} 200/mV 10 0 0 0 0 MLII\n")
    r = read(tmp_path / f"p{fmt}")
    np.testing.assert_allclose(r.signal, d / 200.0, atol=1e-6)


def test_wfdb_multi_segment_variable_layout_has_nan_where_the_lead_is_missing(tmp_path):
    fs, n = 250.0, 2500
    t = np.arange(n) / fs
    x = np.stack([np.sin(2 * np.pi * 1.2 * t), 0.5 * np.cos(2 * np.pi * 1.2 * t)], axis=1)
    _wfdb(tmp_path, "s1", x[:1000], fs, names=("II", "V5"))
    _wfdb(tmp_path, "s2", x[1000:1500, 1], fs, names=("V5",))
    _wfdb(tmp_path, "s3", x[1500:], fs, names=("II", "V5"))
    (tmp_path / "ms_layout.hea").write_text("ms_layout 2 250 0\nms_layout.dat 16 200/mV 16 0 0 0 0 II\n"
                                            "ms_layout.dat 16 200/mV 16 0 0 0 0 V5\n")
    (tmp_path / "ms.hea").write_text("ms/4 2 250 2500\nms_layout 0\ns1 1000\ns2 500\ns3 1000\n")
    r = read(tmp_path / "ms", lead="mlii")
    assert r.lead == "II" and len(r.signal) == n
    assert np.isnan(r.signal[1000:1500]).all()  # signal loss where the segment lacks lead II
    np.testing.assert_allclose(r.signal[:1000], x[:1000, 0], atol=0.003)
    np.testing.assert_allclose(r.signal[1500:], x[1500:, 0], atol=0.003)
    assert not np.isnan(read(tmp_path / "ms", lead="V5").signal).any()


def test_unreadable_signals_are_refused_saying_why(tmp_path):
    """A multi-segment record with a segment cut short, a format the WFDB library does not decode and an EDF signal
    of 0 samples a record were refused with the library's own exception ("could not broadcast input array from
    shape (375,) into shape (500,)", "KeyError: '999'", "ZeroDivisionError"): each names the file and what is
    wrong (a newcomer, session 27)."""
    fs, n = 250.0, 2500
    x = np.sin(2 * np.pi * 1.2 * np.arange(n) / fs)
    _wfdb(tmp_path, "s1", x[:1000], fs, names=("II",))
    _wfdb(tmp_path, "s2", x[1000:], fs, names=("II",))
    (tmp_path / "ms.hea").write_text("ms/2 1 250 2500\ns1 1000\ns2 1500\n")
    assert len(read(tmp_path / "ms").signal) == n
    dat = tmp_path / "s2.dat"
    dat.write_bytes(dat.read_bytes()[: 2 * 1100])
    with pytest.raises(RecordError, match=r"truncated: s2\.dat holds 2,200 bytes, about 1,100 of the 1,500 samples"):
        read(tmp_path / "ms")
    _wfdb(tmp_path, "f", x, fs)
    hea = tmp_path / "f.hea"
    hea.write_text(hea.read_text().replace("f.dat 16 ", "f.dat 999 "))
    with pytest.raises(RecordError, match="signal format 999 is not one the WFDB library decodes"):
        read(tmp_path / "f")
    e = _edf(tmp_path / "z.edf", x, fs)
    raw = bytearray(e.read_bytes())
    ns = int(raw[252:256].decode().strip())
    off = 256 + ns * 216
    raw[off:off + 8] = b"0".ljust(8)  # the first signal's samples per data record
    e.write_bytes(bytes(raw))
    with pytest.raises(RecordError, match=r"signal 1 \('ECG II'\) has 0 samples per data record"):
        read(e)


def test_a_folder_plays_each_record_once_and_names_what_it_cannot_read(tmp_path):
    """A folder without a RECORDS list: a fixed-layout multi-segment record (with a gap segment, '~', which wfdb
    cannot read as one: NaN there) plays once, not once more per segment; .tsv and .txt exports play; a BDF file is
    named as not read, never passed over."""
    from ecgmon.models.records import read_all

    fs, n = 250.0, 2500
    x = np.sin(2 * np.pi * 1.2 * np.arange(n) / fs)
    _wfdb(tmp_path, "ms_1", x[:1000], fs, names=("II",))
    _wfdb(tmp_path, "ms_2", x[1500:], fs, names=("II",))
    (tmp_path / "ms.hea").write_text("ms/3 1 250 2500\nms_1 1000\n~ 500\nms_2 1000\n")
    (tmp_path / "t.tsv").write_text("time\tECG (mV)\n" + "".join(f"{i / fs:.3f}\t{v}\n" for i, v in enumerate(x)))
    (tmp_path / "u.txt").write_text("time ECG(mV)\n" + "".join(f"{i / fs:.3f} {v}\n" for i, v in enumerate(x)))
    (tmp_path / "b.bdf").write_bytes(b"\xff" + b"BIOSEMI" + b" " * 248)
    (tmp_path / "dataset.json").write_text('{"Name": "a sidecar of metadata"}')  # not listed from a folder ...
    with pytest.raises(RecordError, match=r"movesense\.json: JSON \(a wearable's or an app's export\) files are not "
                                          "read here"):  # ... but named, refused as what it is (was: 'no .hea')
        read(tmp_path / "movesense.json")
    got = read_all([tmp_path])
    assert sorted(r.name for r in got.recordings) == ["ms", "t", "u"]
    ms = next(r for r in got.recordings if r.name == "ms")
    assert len(ms.signal) == n and np.isnan(ms.signal[1000:1500]).all()
    np.testing.assert_allclose(ms.signal[1500:], x[1500:], atol=0.003)
    assert len(got.left_out) == 1 and "b.bdf: BDF (24-bit BioSemi) files are not read here" in got.left_out[0]


def test_a_wfdb_unit_of_micro_volts_written_with_a_mu_is_microvolts(tmp_path):
    """'µV' in a header (Latin-1 or UTF-8): wfdb drops the byte it cannot decode and reads 'V', volts, a million
    times off (the file was refused, or worse); read as microvolts."""
    x = _sig(3600, 360.0)
    rec = _wfdb(tmp_path, "mu", x * 1000, 360.0, units="uV", gain=1.0)
    hea = rec.with_suffix(".hea")
    text = hea.read_text()
    assert "/uV" in text
    for enc in ("latin-1", "utf-8"):
        hea.write_bytes(text.replace("/uV", "/µV").encode(enc))
        np.testing.assert_allclose(read(rec).signal, x, atol=0.002, err_msg=enc)


def test_an_edf_whose_record_duration_is_zero_is_named_damaged(tmp_path):
    p = _edf(tmp_path / "d.edf", _sig(3600, 360.0), 360.0)
    data = p.read_bytes()
    p.write_bytes(data[:244] + b"0".ljust(8) + data[252:])
    with pytest.raises(RecordError, match=r"d\.edf: header field 'duration of a data record' is '0'"):
        read(p)


def test_wfdb_lower_case_leads_missing_annotations_and_units(tmp_path, excerpt):
    x, fs, _, _ = excerpt
    two = np.stack([-x, x], axis=1)
    p = _wfdb(tmp_path, "ptb", two, fs, names=("i", "ii"))
    r = read(p, lead="II")
    assert r.lead == "ii" and not r.annotated  # no .atr: played without reference beats
    np.testing.assert_allclose(r.signal, x, atol=0.003)
    with pytest.raises(RecordError, match=r"ptb\.hea: no lead 'V5' \(leads: 'i', 'ii'\)"):
        read(p, lead="V5")
    uv = read(_wfdb(tmp_path, "uv", x * 1000, fs, units="uV", gain=0.2))  # microvolts, converted
    np.testing.assert_allclose(uv.signal, x, atol=0.003)
    with pytest.raises(RecordError, match=r"bp\.hea: lead 'ABP': unit 'mmHg' is not a voltage"):
        read(_wfdb(tmp_path, "bp", x * 10 + 80, fs, units="mmHg", names=("ABP",)), lead="ABP")
    with pytest.raises(RecordError, match="the header says 360 Hz, --fs says 250 Hz"):
        read(p, fs=250)


# --------------------------------------------------------------------------- EDF


def _edf(path: Path, x: np.ndarray, fs: float, *, label: str = "ECG II", dim: str = "uV", scale: float = 1000.0,
         beats: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    sig = edfio.EdfSignal(x * scale, fs, label=label, physical_dimension=dim)
    anns = ([edfio.EdfAnnotation(float(s) / fs, None, str(c)) for s, c in zip(*beats, strict=True)]
            if beats is not None else None)
    edfio.Edf([sig], annotations=anns).write(path)
    return path


def test_edf_plus_reads_the_lead_in_mv_and_its_beat_annotations(tmp_path, excerpt):
    x, fs, ann, cls = excerpt
    r = read(_edf(tmp_path / "x.edf", x, fs, beats=(ann, cls)), lead="MLII")
    assert (r.fs, r.lead, len(r.signal)) == (fs, "ECG II", len(x))
    np.testing.assert_allclose(r.signal, x, atol=0.002)  # 16-bit over the excerpt's physical range, in uV
    assert r.annotated and r.ann_samples.tolist() == ann.tolist() and r.ann_classes.tolist() == cls.tolist()
    assert r.notes == ()


def test_edf_unit_rules(tmp_path, excerpt):
    x, fs, _, _ = excerpt
    r = read(_edf(tmp_path / "nodim.edf", x, fs, dim="", scale=1.0))
    assert any("no unit stated; read as mV" in n for n in r.notes)  # a warning, never silent
    with pytest.raises(RecordError, match=r"microvolts\?"):
        read(_edf(tmp_path / "uv_nodim.edf", x, fs, dim="", scale=1000.0))
    assert read(tmp_path / "uv_nodim.edf", units="uV").signal.max() == pytest.approx(x.max(), abs=0.002)
    with pytest.raises(RecordError, match="the file says uV, --units says mV"):
        read(_edf(tmp_path / "uv.edf", x, fs), units="mV")



def test_an_edf_dimension_written_with_the_latin1_micro_sign_is_microvolts(tmp_path, excerpt):
    """'µV' with the Latin-1 micro sign (byte 0xB5) in a physical dimension, as many devices write it (EDF headers are
    ASCII): read as microvolts, warned, the second lead too; it was refused as a damaged header (session 41's newcomer,
    F12). A non-ASCII byte anywhere else is still a damaged header."""
    x, fs, _, _ = excerpt
    p = tmp_path / "mu.edf"
    edfio.Edf([edfio.EdfSignal(x * 1000, fs, label="ECG II", physical_dimension="uV"),
               edfio.EdfSignal(-x * 1000, fs, label="ECG V1", physical_dimension="uV")]).write(p)
    raw = bytearray(p.read_bytes())
    dims = 256 + 2 * (16 + 80)
    assert raw[dims:dims + 2] == raw[dims + 8:dims + 10] == b"uV"
    raw[dims] = raw[dims + 8] = 0xB5
    p.write_bytes(bytes(raw))
    got = read_all([p], second_lead=True)
    assert not got.left_out, got.left_out
    r = got.recordings[0]
    np.testing.assert_allclose(r.signal, x, atol=0.002)
    assert r.second is not None and r.second.lead == "ECG V1"
    np.testing.assert_allclose(r.second.signal, -x, atol=0.002)
    # said once, naming the signals (a reviewer: said twice with two leads, and 'microvolts' for any unit)
    said = [n for n in r.notes if "Latin-1 micro sign" in n]
    assert len(said) == 1 and "'ECG II' ('µV'), 'ECG V1' ('µV')" in said[0], r.notes
    utf8 = bytearray(raw)
    utf8[dims:dims + 3] = utf8[dims + 8:dims + 11] = "µV".encode()  # UTF-8: 0xC2 0xB5 'V'
    (tmp_path / "mu8.edf").write_bytes(bytes(utf8))
    r8 = read(tmp_path / "mu8.edf")
    np.testing.assert_allclose(r8.signal, x, atol=0.002)
    assert any("UTF-8 micro sign" in n for n in r8.notes)
    raw[20] = 0xB5  # in the patient field: not a unit
    p.write_bytes(bytes(raw))
    with pytest.raises(RecordError, match=r"header byte 20 is 0xb5, not printable ASCII"):
        read(p)


def _edf_d(path: Path, x: np.ndarray, fs: float, shift: dict[int, int], beat_s: float = 12.5,
           kind: bytes = b"EDF+D") -> Path:
    """An EDF+D (or ``kind``) copy of ``x`` (1 s data records, an N beat at ``beat_s``): data record k's time-keeping
    onset moved to ``shift[k]`` s (of as many digits: the bytes are replaced in place)."""
    p = _edf(path, x, fs, beats=(np.array([int(beat_s * fs)]), np.array(["N"])))
    raw = bytearray(p.read_bytes())
    raw[192:197] = kind  # the 'reserved' header field
    for k in sorted(shift, reverse=True):
        old, new = b"+%d\x14\x14" % k, b"+%d\x14\x14" % shift[k]
        at = raw.find(old)
        raw[at:at + len(old)] = new
    p.write_bytes(bytes(raw))
    return p


def test_edf_plus_d_records_are_placed_at_their_onsets_and_gaps_are_signal_loss(tmp_path, excerpt):
    """An EDF+D file (a discontinuous recording, as ambulatory recorders write) was refused; its data records are
    now placed at their onsets, the gaps NaN (signal loss, warned); annotations keep their times; records that
    overlap are refused."""
    x, fs, _, _ = excerpt
    x = x[: int(20 * fs)]
    same = read(_edf_d(tmp_path / "c.edf", x, fs, {}))  # EDF+D whose records follow on: as EDF+C
    assert len(same.signal) == len(x) and same.notes == ()
    r = read(_edf_d(tmp_path / "d.edf", x, fs, {k: k + 3 for k in range(10, 20)}))  # 3 s missing after 10 s
    n10 = int(10 * fs)
    assert len(r.signal) == len(x) + 3 * int(fs) and np.isnan(r.signal[n10:n10 + 3 * int(fs)]).all()
    np.testing.assert_allclose(r.signal[:n10], x[:n10], atol=0.002)
    np.testing.assert_allclose(r.signal[n10 + 3 * int(fs):], x[n10:], atol=0.002)
    assert r.ann_samples.tolist() == [int(12.5 * fs)]  # an annotation's onset is its time, gap or not
    assert any("EDF+D: 1 gap(s) between data records (3 s in all, the first at 10 s)" in n for n in r.notes)
    with pytest.raises(RecordError, match="overlapping or out-of-order records"):
        read(_edf_d(tmp_path / "o.edf", x, fs, {5: 3}))
    # the first data record 2 s after the file's start: the annotation at 6.5 s of the file is 4.5 s into the
    # signal (edfio gives onsets from the first data record; they were moved back by its onset a second time, and
    # every reference beat of such a file was 2 s early: a newcomer, session 27)
    late = read(_edf_d(tmp_path / "late.edf", x[: int(8 * fs)], fs, {k: k + 2 for k in range(8)}, beat_s=6.5))
    assert len(late.signal) == int(8 * fs) and late.ann_samples.tolist() == [int(4.5 * fs)]
    # an EDF+C file whose time-keeping onsets show a gap (records 10-19 3 s later) breaks its own label: played as
    # EDF+D with a warning, not back to back (every sample after the gap was early, without a word)
    c = read(_edf_d(tmp_path / "cgap.edf", x, fs, {k: k + 3 for k in range(10, 20)}, kind=b"EDF+C"))
    assert len(c.signal) == len(x) + 3 * int(fs) and np.isnan(c.signal[n10:n10 + 3 * int(fs)]).all()
    assert any("EDF+C, but its data records' onsets have gaps (played as EDF+D): 1 gap(s)" in n for n in c.notes)


# --------------------------------------------------------------------------- CSV


def _sig(n=2500, fs=250.0):
    t = np.arange(n) / fs
    return np.round(np.sin(2 * np.pi * 1.1 * t) + 0.3 * np.sin(2 * np.pi * 7 * t), 3)


def test_csv_semicolons_decimal_commas_metadata_and_microvolts(tmp_path):
    x = _sig()
    p = tmp_path / "dev.csv"
    p.write_text("Device: Acme ECG 3\nSampling rate: 250 Hz\nUnit: uV\nTime;ECG II\n"
                 + "".join(f"{i / 250:.3f};{v * 1000:.1f}\n".replace(".", ",") for i, v in enumerate(x)))
    r = read_csv(p, lead="II")
    assert r.fs == 250.0 and r.lead == "ECG II"
    np.testing.assert_allclose(r.signal, x, atol=1e-4)
    with pytest.raises(RecordError, match=r"dev\.csv: --fs says 500 Hz but line 2 says 250 Hz"):
        read_csv(p, fs=500)
    with pytest.raises(RecordError, match="the file says uV, --units says mV"):
        read_csv(p, units="mV")


def test_csv_time_column_gives_the_rate_and_a_gap_is_named(tmp_path):
    x = _sig()
    p = tmp_path / "t.csv"
    p.write_text("time_ms,ecg (mV)\n" + "".join(f"{i * 4},{v}\n" for i, v in enumerate(x)))
    r = read_csv(p)
    assert r.fs == 250.0 and r.notes == () and np.allclose(r.signal, x)
    # 400 ms skipped (a device's dropped packets): 100 samples missing where they were, said; it was refused
    rows = [f"{i * 4 + (400 if i >= 1000 else 0)},{v}\n" for i, v in enumerate(x)]
    p.write_text("time_ms,ecg (mV)\n" + "".join(rows))
    r = read_csv(p)
    assert r.fs == 250.0 and len(r.signal) == len(x) + 100 and np.isnan(r.signal[1000:1100]).all()
    assert np.allclose(r.signal[:1000], x[:1000]) and np.allclose(r.signal[1100:], x[1000:])
    assert any("1 gap(s) in time column 'time_ms' from line 1002: 100 sample(s) missing (0.4 s in all" in n
               for n in r.notes), r.notes
    rows = [f"{i * 4 - (6 if i >= 1000 else 0)},{v}\n" for i, v in enumerate(x)]  # a step back: refused
    p.write_text("time_ms,ecg (mV)\n" + "".join(rows))
    with pytest.raises(RecordError, match=r"t\.csv:1002: time goes from 3996 to 3994 .* a step back or irregular"):
        read_csv(p)
    q = tmp_path / "nohead.csv"  # no header: a time column in seconds, told by its step (warned)
    q.write_text("".join(f"{i / 250:.4f},{v}\n" for i, v in enumerate(x)))
    r = read_csv(q)
    assert r.fs == 250.0 and any("read as s" in n for n in r.notes)


@pytest.mark.parametrize(("fs", "unit", "fmt"), [(128, "ms", "{:.0f}"), (256, "ms", "{:.0f}"), (360, "ms", "{:.0f}"),
                                             (300, "ms", "{:.0f}"), (128, "s", "{:.3f}"), (360, "s", "{:.3f}"),
                                             (360, "s", "{:.4f}")])
def test_csv_time_columns_printed_rounded_give_the_true_rate(tmp_path, fs, unit, fmt):
    """Devices and spreadsheets print times to whole ms or a few decimals: at 128 Hz whole-ms times step 7 or 8 ms,
    at 360 Hz 2 or 3 ms, and the median step gave 125 or 333 Hz (a heart rate 2-8 % off, no warning) or refused the
    file as irregular.  The rate is the rows over the span, a whole number of Hz within the printed resolution; a
    sample missing from such a column is still a gap, named at its line."""
    n = 20 * fs
    x = _sig(n, fs)
    k = 1e3 if unit == "ms" else 1.0
    times = [fmt.format(i / fs * k) for i in range(n)]
    p = tmp_path / "r.csv"
    p.write_text(f"time_{unit},ecg (mV)\n" + "".join(f"{t},{v}\n" for t, v in zip(times, x, strict=True)))
    r = read_csv(p)
    assert r.fs == fs and len(r.signal) == n
    gap = 3 * fs  # one sample left out: missing where it was (it was refused), the rate as before
    p.write_text(f"time_{unit},ecg (mV)\n" + "".join(f"{t},{v}\n" for i, (t, v) in enumerate(zip(times, x, strict=True))
                                                       if i != gap))
    r = read_csv(p)
    assert r.fs == fs and len(r.signal) == n and np.isnan(r.signal[gap]) and np.isfinite(np.delete(r.signal, gap)).all()
    assert any(f"from line {gap + 2}: 1 sample(s) missing" in m for m in r.notes), r.notes


def test_a_wfdb_sampling_rate_field_wfdb_cannot_read_is_refused_not_played_at_250_hz(tmp_path):
    """``wfdb`` reads a record line's rate field of ``-360`` or ``abc`` as absent, and the format's default (250 Hz)
    then played a 360 Hz record at 250 Hz (the heart rate 30 % low) without a word.  Such a field is refused, naming
    the line; an absent one is the format's 250 Hz, said in a warning; a record under 2 s is refused (as EDF and
    CSV are)."""
    rec = _wfdb(tmp_path, "r", _sig(3600, 360.0), 360.0)
    hea = rec.with_suffix(".hea")
    lines = hea.read_text().splitlines()
    for field in ("-360", "abc"):
        hea.write_text("\n".join([f"r 1 {field} 3600", *lines[1:]]) + "\n")
        with pytest.raises(RecordError, match=rf"r\.hea:1: sampling rate field '{field}' is not a positive number"):
            read(rec)
    hea.write_text("\n".join(["r 1", *lines[1:]]) + "\n")
    r = read(rec)
    assert r.fs == 250.0 and any("gives no sampling rate" in n and "250 Hz" in n for n in r.notes)
    hea.write_text("\n".join(lines) + "\n")
    assert read(rec).fs == 360.0 and read(rec).notes == ()
    short = _wfdb(tmp_path, "s", _sig(300, 360.0), 360.0)
    with pytest.raises(RecordError, match=r"less than 2 s at 360 Hz"):
        read(short)


def test_an_edf_shorter_than_its_header_says_is_refused_as_truncated(tmp_path):
    """edfio reads the whole data records a file holds and drops the rest: a copy cut short (or a header that
    announces more records than were written) played short without a word.  Refused, with the records there are."""
    x = _sig(40 * 360, 360.0)
    p = _edf(tmp_path / "t.edf", x, 360.0)
    data = p.read_bytes()
    assert read(p).seconds == 40.0
    p.write_bytes(data[:-1001])
    with pytest.raises(RecordError, match=r"t\.edf: truncated: .* 38 whole of the 40 data records its header"):
        read(p)
    p.write_bytes(data[:236] + b"80".ljust(8) + data[244:])
    with pytest.raises(RecordError, match=r"truncated: .* 40 whole of the 80 data records"):
        read(p)


def test_samples_in_mv_under_a_stated_unit_of_uv_are_warned(tmp_path):
    """1 mV samples written under a header's uV are 0.001 mV: the monitor would call the lead off and play on with
    nothing said.  A stated unit with a spread under 0.01 mV (and not flat) is warned, in every format."""
    x = _sig(20 * 360, 360.0)
    wf = _wfdb(tmp_path, "u", x, 360.0, gain=1000.0, units="uV")
    ed = _edf(tmp_path / "u.edf", x, 360.0, dim="uV", scale=1.0)
    cs = tmp_path / "u.csv"
    cs.write_text("time_s,ECG (uV)\n" + "".join(f"{i / 360:.6f},{v}\n" for i, v in enumerate(x)))
    for p in (wf, ed, cs):
        r = read(p)
        assert any("implausibly small for a surface ECG" in n and "uV" in n for n in r.notes), (p, r.notes)
    assert read(_wfdb(tmp_path, "m", x, 360.0)).notes == ()


def test_csv_exports_of_devices_and_tools_are_read(tmp_path):
    """Exports seen in the wild, each read at the true rate, lead and scale: a trailing delimiter on every row
    (spreadsheets), a units row under the names, a German header with decimal commas, a watch's one-column export
    with a 'key,value' preamble (rate in 'hertz', samples in uV), PhysioNet's ``rdsamp -c -H -v`` (elapsed time as
    m:ss.mmm, a units row) and ISO date-and-time stamps rounded to the millisecond."""
    fs = 360
    x = _sig(20 * fs, fs)
    t = np.arange(len(x)) / fs
    files = {
        "trailing.csv": "time,ECG\n" + "".join(f"{a:.6f},{v},\n" for a, v in zip(t, x, strict=True)),
        "unitsrow.csv": "time,ECG\ns,mV\n" + "".join(f"{a:.6f},{v}\n" for a, v in zip(t, x, strict=True)),
        "german.csv": "Zeit [s];EKG II [mV]\n" + "".join(f"{a:.6f};{v}\n".replace(".", ",")
                                                         for a, v in zip(t, x, strict=True)),
        "physionet.csv": "'Elapsed time','MLII','V5'\n'hh:mm:ss.mmm','mV','mV'\n" + "".join(
            f"'{int(a // 60)}:{a % 60:06.3f}',{v},{-v}\n" for a, v in zip(t, x, strict=True)),
        "iso.csv": "timestamp,ECG\n" + "".join(f"2024-01-01 10:{int(a // 60):02d}:{a % 60:06.3f},{v}\n"
                                                for a, v in zip(t, x, strict=True)),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        r = read(tmp_path / name)
        assert r.fs == fs and len(r.signal) == len(x), name
        np.testing.assert_allclose(r.signal, x, atol=1e-6, err_msg=name)
    assert read(tmp_path / "physionet.csv").lead == "MLII" and read(tmp_path / "german.csv").lead == "EKG II"
    watch = tmp_path / "watch.csv"
    y = _sig(20 * 512, 512)
    watch.write_text("Name,Jane Doe\nSample Rate,512 hertz\n\nLead,Lead I\nUnit,µV\n\n\n"
                     + "".join(f"{v * 1000:.3f}\n" for v in y))
    r = read(watch)
    assert (r.fs, r.lead, len(r.signal)) == (512, "Lead I", len(y))
    np.testing.assert_allclose(r.signal, y, atol=1e-6)


def test_an_edf_with_more_data_records_than_its_header_announces_is_played_whole_and_warned(tmp_path):
    x = _sig(40 * 360, 360.0)
    p = _edf(tmp_path / "m.edf", x, 360.0)
    data = p.read_bytes()
    p.write_bytes(data[:236] + b"20".ljust(8) + data[244:])
    r = read(p)
    assert r.seconds == 40.0 and any("holds 40 data records, its header announces 20" in n for n in r.notes)


def test_csv_exports_round_two_read_right_or_refused_at_their_line(tmp_path):
    """A second round of real-world exports: each is read at the true rate, lead and scale, or refused at its line
    (never read wrong in silence)."""
    fs = 500
    x = _sig(20 * fs, fs)
    t = np.arange(len(x)) / fs
    rows = "".join(f"{a:.3f},{v}\n" for a, v in zip(t, x, strict=True))
    one = "".join(f"{v}\n" for v in x)
    good = {
        "colon_names.csv": ("Time (hh:mm:ss.mmm),II (mV),V1 (mV)\n" + "".join(
            f"0:00:{a:06.3f},{v},{-v}\n" for a, v in zip(t, x, strict=True)), {}, "II"),
        "lead_v.csv": ("time,V\n" + rows, {}, "V"),  # lead V, not volts
        "empty_rows.csv": ("time,ECG\n" + rows + ",\n" * 5, {}, "ECG"),
        "lead_meta.csv": ("Sampling rate: 500\nLead: II\n" + one, {"lead": "II"}, "II"),
        "sample_hash.csv": ("Sample #,Time (ms),ECG (mV)\n" + "".join(
            f"{i + 1},{a * 1000:.0f},{v}\n" for i, (a, v) in enumerate(zip(t, x, strict=True))), {}, "ECG"),
        "date_line.csv": ("2024-01-15 10:00:00\ntime,ECG (mV)\n" + rows, {}, "ECG"),
        "interval.csv": ("Sampling interval: 2 ms\nECG (mV)\n" + one, {}, "ECG"),
        "sps.csv": ("Sample rate: 500 samples/s\nECG (mV)\n" + one, {}, "ECG"),
        "khz.csv": ("Sampling frequency: 0.5 kHz\nECG (mV)\n" + one, {}, "ECG"),
        "bracket_key.csv": ("Sample rate [Hz]: 500\nECG (mV)\n" + one, {}, "ECG"),
        "bpm.csv": ("Rate: 72 bpm\nECG (mV)\n" + one, {"fs": 500}, "ECG"),  # a heart rate, not the rate
        "spaces_commas.txt": ("time ECG\n" + rows.replace(",", " ").replace(".", ","), {}, "ECG"),
        "quoted_commas.csv": ('"time","ECG"\n' + "".join(f'"{a:.3f}","{v}"\n'.replace(".", ",")
                                                         for a, v in zip(t, x, strict=True)), {}, "ECG"),
        "midnight.csv": ("", {}, None),  # made below
        "clock_comma.csv": ("Zeit;EKG\n" + "".join(f"10:00:{a:06.3f};{v}\n".replace(".", ",")
                                                    for a, v in zip(t, x, strict=True)), {}, "EKG"),
        "pipes.csv": ("time|ECG\n" + rows.replace(",", "|"), {}, "ECG"),
    }
    for name, (text, kw, lead) in good.items():
        if name == "midnight.csv":  # 10 s before midnight, 10 s after, as clock times of day
            text = "time,ECG\n" + "".join(
                f"{int(c // 3600):02d}:{int(c % 3600 // 60):02d}:{c % 60:06.3f},{v}\n"
                for c, v in zip((86390.0 + t) % 86400, x, strict=True))
        (tmp_path / name).write_text(text)
        r = read(tmp_path / name, **kw)
        assert r.fs == fs and len(r.signal) == len(x), name
        np.testing.assert_allclose(r.signal, x, atol=1e-6, err_msg=name)
        assert lead is None or r.lead == lead, (name, r.lead)
    assert any("heart rate, not the sampling rate" in n for n in read(tmp_path / "bpm.csv", fs=500).notes)
    # encodings: Windows-1252 (Excel's CSV on Windows: 'µV' one byte) and UTF-16 with its byte-order mark, warned
    text = "time,ECG (µV)\n" + "".join(f"{a:.3f},{v * 1000:.1f}\n" for a, v in zip(t, x, strict=True))
    (tmp_path / "cp1252.csv").write_bytes(text.encode("cp1252"))
    (tmp_path / "utf16.csv").write_bytes(text.encode("utf-16"))
    for name, says in (("cp1252.csv", "read as Windows-1252"), ("utf16.csv", "read as UTF-16")):
        r = read(tmp_path / name)
        np.testing.assert_allclose(r.signal, x, atol=1e-4, err_msg=name)
        assert any(says in n for n in r.notes), r.notes
    # refused at their line: a scale the reader would have to apply, a sample-number column with a gap
    refused = {
        "gain.csv": ("fs = 500\nUnit: mV\nGain: 10\nECG\n" + one, r"gain.csv:3: gain '10': a scale"),
        "resolution.csv": ("Sampling rate: 500 Hz\nUnits: uV\nResolution: 5\nECG\n" + one,
                           r"resolution.csv:3: resolution '5'"),
        "back.csv": ("sample,ECG\n" + "".join(f"{i - (500 if i >= 5000 else 0)},{v}\n" for i, v in enumerate(x)),
                     r"back.csv:5002: sample numbers go from 4999 to 4500: out of order or repeated"),
    }
    for name, (text, match) in refused.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(RecordError, match=match):
            read(tmp_path / name, fs=500 if name == "back.csv" else None)
    # sample numbers that jump: samples missing (a device's dropped packets), where they were
    (tmp_path / "jump.csv").write_text("sample,ECG\n" + "".join(f"{i + (500 if i >= 5000 else 0)},{v}\n"
                                                                for i, v in enumerate(x)))
    r = read(tmp_path / "jump.csv", fs=500)
    assert len(r.signal) == len(x) + 500 and np.isnan(r.signal[5000:5500]).all() and np.isfinite(r.signal[5500:]).all()
    assert any("1 gap(s) in the sample numbers from line 5002: 500 sample(s) missing (1 s in all" in n
               for n in r.notes), r.notes
    (tmp_path / "unknown.csv").write_text("Sampling rate: 500\nPatient: anonymous\nECG (mV)\n" + one)
    assert any("metadata not used (line 2)" in n for n in read(tmp_path / "unknown.csv").notes)


def test_csv_ambiguities_are_refused_with_the_line_and_the_fix(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("".join(f"{int(v)},{abs(round(v * 1000)) % 1000:03d}\n" for v in _sig() * 3))
    with pytest.raises(RecordError, match=r"a\.csv:1: .* either one number with a decimal comma or two integer "
                                          "columns; add a header line"):
        read_csv(p, fs=250)
    p.write_text("".join(f"{v},{v},{v}\n" for v in _sig()))
    with pytest.raises(RecordError, match=r"a\.csv:1: 3 columns and no header"):
        read_csv(p, fs=250)
    p.write_text("".join(f"{v * 1000:.0f}\n" for v in _sig()))  # microvolts without a unit
    with pytest.raises(RecordError, match=r"microvolts\?.*--units"):
        read_csv(p, fs=250)
    assert np.allclose(read_csv(p, fs=250, units="uV").signal, _sig(), atol=6e-4)


@pytest.mark.parametrize("sep,delim", [(",", "\t"), (".", ";"), (".", None)])
def test_csv_thousands_separators_are_refused_never_read_a_thousand_times_too_small(tmp_path, sep, delim):
    """Microvolts with thousands separators (``1,234`` beside ``523``): refused at the first grouped number."""
    uv = np.round(_sig() * 1500).astype(int)  # R waves over 1 mV: 4-digit microvolts among 1-3 digit ones
    assert (np.abs(uv) >= 1000).any() and (np.abs(uv) < 1000).any()

    def grouped(v):
        return f"{v:,}".replace(",", sep)

    first = 2 + int(np.flatnonzero(np.abs(uv) >= 1000)[0])  # its line (line 1 is the header)
    p = tmp_path / "t.csv"
    if delim is None:
        p.write_text("ecg_uV\n" + "".join(f"{grouped(v)}\n" for v in uv))
    else:
        p.write_text(f"sample{delim}ecg_uV\n" + "".join(f"{i}{delim}{grouped(v)}\n" for i, v in enumerate(uv)))
    with pytest.raises(RecordError, match=rf"t\.csv:{first}: field \d '-?\d[.,]\d{{3}}' looks like a number with a "
                                          "thousands separator .* export numbers without thousands separators"):
        read_csv(p, fs=250)
    # one column with "," separators splits into two fields on those lines: named as thousands separators too
    p.write_text("ecg_uV\n" + "".join(f"{v:,}\n" for v in uv))
    with pytest.raises(RecordError, match=rf"t\.csv:{first}: .* looks like a number with a thousands separator"):
        read_csv(p, fs=250)
    # the same microvolts without separators, and millivolts with a decimal comma, are read right
    p.write_text("sample;ecg_uV\n" + "".join(f"{i};{v}\n" for i, v in enumerate(uv)))
    assert np.allclose(read_csv(p, fs=250).signal, uv / 1000, atol=1e-6)
    p.write_text("ecg_mV\n" + "".join(f"{v / 1000:.3f}\n".replace(".", ",") for v in uv))
    assert np.allclose(read_csv(p, fs=250).signal, uv / 1000, atol=1e-6)


def test_csv_empty_lines_are_missing_samples_in_one_column_and_skipped_beside_a_time_column(tmp_path):
    """In a one-column file an empty line is an empty cell (what a spreadsheet exports): a missing sample in its place,
    so the samples after it keep their time, also before the first number (a file whose first 10 s were empty lines,
    or 'NaN' lines, was read 10 s early, without a word, and a 'NaN' line was taken for the column's name).  With a
    time column a line of delimiters alone is skipped, with a warning."""
    x = _sig()
    rows = [f"{v:.4f}" for v in x]
    p = tmp_path / "b.csv"
    p.write_text("ecg_mV\n" + "\n".join(rows[:100]) + "\n\n\n" + "\n".join(rows[100:]) + "\n\n\n")
    r = read_csv(p, fs=250)
    assert len(r.signal) == len(x) + 2 and np.isnan(r.signal[100:102]).all()
    assert np.allclose(np.delete(r.signal, [100, 101]), x, atol=1e-4)
    assert any("2 empty or NaN cell(s) from line 102" in n and "signal loss" in n for n in r.notes), r.notes
    for lead_in in ("\n" * 250, "NaN\n" * 250):  # the first second empty: still the first second, with its unit
        p.write_text("ECG (uV)\n" + lead_in + "\n".join(f"{1000 * v:.1f}" for v in x) + "\n")
        r = read_csv(p, fs=250)
        assert r.lead == "ECG" and len(r.signal) == len(x) + 250 and np.isnan(r.signal[:250]).all()
        assert np.allclose(r.signal[250:], x, atol=1e-3)  # uV read as uV
    t = np.arange(len(x)) / 250
    p.write_text("t_s,ecg_mV\n" + "\n".join(f"{a:.4f},{v:.4f}" for a, v in zip(t[:100], x[:100], strict=True))
                 + "\n,\n" + "\n".join(f"{a:.4f},{v:.4f}" for a, v in zip(t[100:], x[100:], strict=True)) + "\n")
    r = read_csv(p)
    assert np.allclose(r.signal, x, atol=1e-4)
    assert any("1 empty line(s) among the samples (from line 102) skipped" in n for n in r.notes), r.notes


def test_csv_rows_ending_cr_cr_lf_are_one_line_each(tmp_path):
    """Python's csv.writer on a file opened in text mode on Windows ends every row with '\\r\\r\\n'; read as a row and
    an empty line, a one-column file (whose empty lines are missing samples) played at twice its length, half of it
    signal loss: 71 bpm shown as 35 and a false extreme bradycardia (a newcomer, session 27).  Each is one line end,
    with a warning; the samples and the rate are the file's."""
    x = _sig()
    for head in ("Sampling rate: 250 Hz\r\r\necg_mV\r\r\n", "ecg_mV\r\r\n"):
        p = tmp_path / "w.csv"
        p.write_bytes((head + "".join(f"{v:.4f}\r\r\n" for v in x)).encode())
        r = read_csv(p, fs=None if head.startswith("Sampling") else 250)
        assert r.fs == 250 and len(r.signal) == len(x) and np.allclose(r.signal, x, atol=1e-4)
        assert any("written as '\\r\\r\\n'" in n for n in r.notes), r.notes


def test_a_multi_frequency_records_annotations_count_in_their_own_resolution(tmp_path):
    """A multi-frequency WFDB record (frames at 125 Hz, the lead 2 samples a frame: 250 Hz): annotation times count in
    frames, or in the annotation file's stated resolution (a high-resolution annotation file, WFDB annot(5)), which
    was taken for frames too and doubled, half of the beats past the record's end (a newcomer, session 27)."""
    fs, n = 250.0, 2500
    x = np.round(_sig(n, fs) * 200).astype(np.int64)
    np.column_stack([x[0::2], x[1::2]]).astype("<i2").tofile(tmp_path / "m.dat")  # 2 samples a frame, one signal
    header = f"m 1 125 {n // 2}\nm.dat 16x2 200 16 0 0 0 0 ECG\n"
    beats = np.array([100, 700, 1300, 1900])  # at the lead's 250 Hz
    for name, resolution in (("frames", None), ("hires", fs)):
        (tmp_path / f"{name}.hea").write_text(header.replace("m ", f"{name} ", 1))
        at = beats if resolution else beats // 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # wfdb's use of pandas warns
            wfdb.wrann(name, "atr", at, symbol=["N"] * len(at), fs=resolution, write_dir=str(tmp_path))
        r = read(tmp_path / name)
        assert r.fs == fs and len(r.signal) == n and r.ann_samples.tolist() == beats.tolist(), name


def test_a_time_column_stamped_per_packet_gives_way_to_the_files_other_time_column_or_to_fs(tmp_path):
    """A phone app's export (Polar Sensor Logger style) stamps its first time column once per packet of samples: it
    gives no rate.  The file's own per-sample time column gives it (session 32: the refusal said to leave the column
    out, and neither the other column nor --fs helped); without one, --fs does, and without --fs the refusal names
    the column and says why.  Times printed too coarsely for the rate (to 0.01 s at 250 Hz) are the same case."""
    x = _sig(1300, 130.0)
    stamps = [f"2024-03-01T10:00:{int(i // 73) * 0.56:06.3f}" for i in range(len(x))]
    p = tmp_path / "polar.csv"
    rows = [f"{t};{round(i * 1000 / 130)};{1000 * v:.0f}" for i, (t, v) in enumerate(zip(stamps, x, strict=True))]
    p.write_text("Phone timestamp;timestamp [ms];ecg [uV]\n" + "\n".join(rows) + "\n")
    r = read_csv(p)
    assert r.lead == "ecg" and abs(r.fs - 130.0) < 0.5 and np.allclose(r.signal, x, atol=1e-3)
    assert any("'Phone timestamp' repeats its value" in n and "'timestamp [ms]'" in n for n in r.notes)
    q = tmp_path / "phone_only.csv"
    phone = [f"{t};{1000 * v:.0f}" for t, v in zip(stamps, x, strict=True)]
    q.write_text("Phone timestamp;ecg [uV]\n" + "\n".join(phone) + "\n")
    with pytest.raises(RecordError, match=r"time column 'Phone timestamp' repeats its value on most rows.*give --fs"):
        read_csv(q)
    r = read_csv(q, fs=130.0)
    assert r.fs == 130.0 and any("not used; the rate from --fs" in n for n in r.notes)
    y = _sig(2500, 250.0)
    c = tmp_path / "coarse.csv"
    c.write_text("time (s),ECG (mV)\n" + "\n".join(f"{i / 250:.2f},{v:.4f}" for i, v in enumerate(y)) + "\n")
    with pytest.raises(RecordError, match="printed too coarsely"):
        read_csv(c)
    assert read_csv(c, fs=250.0).fs == 250.0


def test_a_wfdb_signal_without_a_description_is_named_by_its_position(tmp_path):
    """The header format lets a signal line end without a description (wfdb then names it None)."""
    (np.round(_sig() * 200).astype("<i2")).tofile(tmp_path / "r.dat")
    (tmp_path / "r.hea").write_text(f"r 1 250 {len(_sig())}\nr.dat 16 200 16 0 0 0 0\n")
    r = read(tmp_path / "r")
    assert r.lead == "signal 1" and np.allclose(r.signal, _sig(), atol=3e-3)
    assert read(tmp_path / "r", lead="signal 1").lead == "signal 1"


# --------------------------------------------------------------------------- the same beats from every kind


def test_edf_wfdb_and_csv_copies_of_one_excerpt_give_the_same_beats(tmp_path, excerpt):
    x, fs, ann, _ = excerpt
    q = np.round(x * 200) / 200  # the excerpt's own ADC steps (200/mV): every copy holds them exactly
    w = _wfdb(tmp_path, "w", q, fs, names=("MLII",))
    e = _edf(tmp_path / "e.edf", q, fs, scale=1.0, dim="mV")
    c = tmp_path / "c.csv"
    c.write_text("# sampling rate: 360\nMLII (mV)\n" + "".join(f"{v:.3f}\n" for v in q))
    recs = [read(w), read(e), read(c)]
    cuts = [cut_beats(r) for r in recs]
    assert len(cuts[0].index) >= 70  # 78 reference beats in the minute; the first 2 s are warm-up
    assert cuts[0].index.tolist() == cuts[1].index.tolist() == cuts[2].index.tolist()
    m = ec57.match(ann, cuts[0].index, 0.15 * fs)
    assert (m >= 0).mean() > 0.95


# --------------------------------------------------------------------------- NaN and bad records


def test_nan_runs_are_signal_loss_chunks_and_an_all_nan_record_is_left_out(tmp_path, excerpt):
    x, fs, _, _ = excerpt
    y = x.copy()
    y[3600:4000] = np.nan
    r = read(_wfdb(tmp_path, "drop", y, fs))
    assert np.isnan(r.signal[3600:4000]).all() and np.isfinite(r.signal[:3600]).all()
    beats = cut_beats(r)
    assert (beats.index < 3600).any() and (beats.index > 4100).any()  # beats found again after the dropout
    empty = _wfdb(tmp_path, "empty", np.full(len(x), np.nan), fs)
    got = read_all([tmp_path / "drop", empty, tmp_path / "missing"])
    assert [g.name for g in got.recordings] == ["drop"]
    assert len(got.left_out) == 2 and "no valid samples" in got.left_out[0] and "missing" in got.left_out[1]


def test_a_default_lead_never_connected_gives_way_to_the_records_other_ecg_lead(tmp_path, excerpt):
    """Lead II all NaN beside a good V5: the record was refused ('no valid samples') although nobody asked for II
    (a newcomer, session 26).  The default lead gives way to the other ECG lead, with a warning; a lead asked for
    (--lead II) is still refused, and so is a record whose every ECG lead is empty."""
    x, fs, _, _ = excerpt
    two = np.stack([np.full(len(x), np.nan), x], axis=1)
    path = _wfdb(tmp_path, "iinan", two, fs, names=("II", "V5"))
    r = read(path)
    assert r.lead == "V5" and np.isfinite(r.signal).all()
    assert any("lead 'II': no valid samples" in n and "playing 'V5'" in n for n in r.notes)
    with pytest.raises(RecordError, match="no valid samples"):
        read(path, lead="II")
    got = read_all([path], second_lead=None)  # the second lead (the empty II) is left out with a note
    assert [g.lead for g in got.recordings] == ["V5"] and got.recordings[0].second is None
    both = _wfdb(tmp_path, "bothnan", np.full((len(x), 2), np.nan), fs, names=("II", "V5"))
    assert "no valid samples" in read_all([both]).left_out[0]


def test_ec57_excludes_exactly_the_beats_the_monitor_did_not_judge():
    fs = 100.0
    ref = np.arange(100, 6000, 100)
    det = ref[ref != 3000].copy()  # one miss after learning; one miss while learning below
    det = det[det != 500]
    judged = det >= 2000  # the monitor learnt until its 19th detection (sample 1900), not until a fixed time
    bed = ec57.RecordResult("r", fs, 6000, ref, np.full(len(ref), "N"), det, np.zeros(len(det)),
                            np.zeros(len(det), bool), np.full(len(det), 0.5), [], judged=judged)
    c = ec57.record_counts(bed, learn_s=10.0)  # learn_s unused: the monitor's own learning period counts
    assert c["detections"] == judged.sum() == 39
    assert c["ref_beats"] == 40 and c["qrs_tp"] == 39  # the miss at 500 (learning) is not counted, 3000 is


# --------------------------------------------------------------------------- fuzz


def _csv_text(x: np.ndarray, *, delim: str, comma: bool, header: bool, unit: str, time: bool) -> str:
    scale = 1000.0 if unit == "uV" else 1.0
    lines = ["sampling rate = 250"]
    if header:
        lines.append(delim.join((["time_s"] if time else []) + [f"ECG ({unit})"]))
    for i, v in enumerate(x):
        val = f"{v * scale:.3f}"
        t = f"{i / 250:.3f}"
        if comma:
            val, t = val.replace(".", ","), t.replace(".", ",")
        lines.append(delim.join(([t] if time else []) + [val]))
    return "\n".join(lines) + "\n"


MUTATIONS = ("none", "truncate", "text", "huge", "header", "fields")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delim=st.sampled_from([";", "\t", ","]), comma=st.booleans(), header=st.booleans(),
       unit=st.sampled_from(["mV", "uV"]), time=st.booleans(), mutation=st.sampled_from(MUTATIONS),
       where=st.floats(0.05, 0.95), seed=st.integers(0, 2**16))
def test_fuzz_csv_never_crashes_and_never_plays_misread_data(tmp_path, delim, comma, header, unit, time, mutation,
                                                             where, seed):
    if delim == "," and comma:
        delim = ";"  # a comma-delimited file cannot hold decimal commas in more than one column
    x = np.round(np.random.default_rng(seed).normal(0, 0.4, 700), 3)
    text = _csv_text(x, delim=delim, comma=comma, header=header, unit=unit, time=time)
    lines = text.splitlines(keepends=True)
    k = 2 + int(where * (len(lines) - 3))  # a data line
    if mutation == "truncate":
        text = text[: len("".join(lines[:k])) + 3]
    elif mutation == "text":
        lines[k] = lines[k].rstrip("\n") + "x\n" if not time else "abc" + delim + "1\n"
        text = "".join(lines)
    elif mutation == "huge":
        lines[k] = delim.join((["0"] if time else []) + ["1e9"]) + "\n" if not time else lines[k].replace(
            lines[k].split(delim)[-1], "123456789\n")
        text = "".join(lines)
    elif mutation == "header":
        text = text.replace("ECG (", "ECG (k", 1) if header else "garbage;;;\n" + text
    elif mutation == "fields":
        lines[k] = lines[k].rstrip("\n") + delim + "7\n"
        text = "".join(lines)
    p = tmp_path / "f.csv"
    p.write_text(text)
    units = None if header else unit
    try:
        r = read_csv(p, units=units)
    except RecordError as err:
        assert str(p) in str(err)  # every refusal names the file
        # one column of decimal commas without a header: '0,050' may be two integer columns, refused
        ambiguous = comma and not header and not time and "either one number with a decimal comma" in str(err)
        assert mutation != "none" or ambiguous, err
        return
    n = len(r.signal)
    assert r.fs == 250.0
    if mutation == "truncate":  # the cut last cell cannot be told from a shorter number; every other is exact
        np.testing.assert_allclose(r.signal[: n - 1], x[: n - 1], atol=1e-6)
    else:
        assert mutation in ("none", "header"), mutation  # text, huge values and extra fields are refused
        np.testing.assert_allclose(r.signal, x, atol=1e-6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["truncate", "header-number", "header-bytes", "none"]), at=st.floats(0.0, 1.0),
       junk=st.binary(min_size=1, max_size=8).filter(lambda b: any(c not in b"0123456789.+-eE " for c in b)))
def test_fuzz_edf_never_crashes_and_never_plays_misread_data(tmp_path, kind, at, junk):
    fs = 250.0
    x = np.round(np.sin(np.arange(1500) / fs * 2 * np.pi * 1.2), 3)
    src = tmp_path / "src.edf"
    if not src.exists():
        _edf(src, x, fs, dim="mV", scale=1.0)
    raw = bytearray(src.read_bytes())
    hdr = 256 * 2  # one signal: 256 bytes of record header and 256 of signal header
    if kind == "truncate":
        raw = raw[: int(at * len(raw))]
    elif kind == "header-number":  # a numeric field (data records, duration, ranges, samples) made non-numeric
        # (a field changed to another number is another valid file: EDF headers carry no checksum)
        off = [236, 244, 256 + 104, 256 + 112, 256 + 120, 256 + 128, 256 + 136, 256 + 216][int(at * 7.99)]
        raw[off: off + len(junk)] = junk
    elif kind == "header-bytes":
        off = int(at * (hdr - len(junk)))
        raw[off: off + len(junk)] = junk
    p = tmp_path / "f.edf"
    p.write_bytes(bytes(raw))
    try:
        r = read_edf(p)
    except RecordError as err:
        assert str(p) in str(err)
        assert kind != "none", err
        return
    # accepted: exactly the samples written (a changed label or patient field does not matter), else refused
    np.testing.assert_allclose(r.signal[: len(x)], x[: len(r.signal)], atol=2e-3)
    assert len(r.signal) == len(x) or (kind == "truncate" and len(r.signal) < len(x))


def test_a_wfdb_signal_whose_checksum_is_not_the_headers_is_played_with_a_warning(tmp_path):
    """WFDB headers carry each signal's checksum (the 16-bit sum of its samples): a signal file damaged after it was
    written, or not the one the header was written for, was played without a word; now it is said (and played)."""
    src = DATA / "205x"
    for suffix in (".hea", ".dat"):
        shutil.copy(src.with_suffix(suffix), tmp_path / f"r{suffix}")
    (tmp_path / "r.hea").write_text((tmp_path / "r.hea").read_text().replace("205x", "r"))
    assert not any("checksum" in n for n in read(tmp_path / "r").notes)
    raw = bytearray((tmp_path / "r.dat").read_bytes())
    for k in range(3000, 3600, 3):  # format 212: every third byte holds the low bits of the first signal's samples
        raw[k] ^= 0x10
    (tmp_path / "r.dat").write_bytes(bytes(raw))
    r = read(tmp_path / "r")
    assert any("checksum" in n and "damaged" in n for n in r.notes), r.notes
    assert len(r.signal) > 0


# --------------------------------------------------------------------------- a newcomer's device files (session 32)


def test_a_time_axis_under_a_name_the_reader_does_not_know_is_never_played_as_the_ecg(tmp_path):
    """AcqKnowledge names its time column by its unit ('min'); other exports 'Sample Time' or a bare counter.  Played
    as the lead (the first column), they showed no beat and raised asystole (session 32).  A known name is a time
    column (its rate checked); any column that rises on every row is no lead."""
    x = _sig(2500, 250.0)
    acq = tmp_path / "acq.csv"
    acq.write_text("min,CH1,CH2\n" + "\n".join(f"{i / 250 / 60:.8f},{v:.4f},{-v:.4f}" for i, v in enumerate(x)) + "\n")
    r = read_csv(acq)
    assert r.lead == "CH1" and r.fs == 250.0 and np.allclose(r.signal, x, atol=1e-4)
    st_ = tmp_path / "sample_time.csv"
    st_.write_text("Sample Time,Channel 1\n" + "\n".join(f"{i / 250:.4f},{v:.4f}" for i, v in enumerate(x)) + "\n")
    r = read_csv(st_)
    assert r.lead == "Channel 1" and r.fs == 250.0
    qt = tmp_path / "qt_time.csv"  # a measurement named '... time' is no time axis (a newcomer's check)
    qt.write_text("Sampling rate: 250 Hz\nECG,QT time\n" + "\n".join(f"{v:.4f},0.40" for v in x) + "\n")
    assert read_csv(qt).lead == "ECG"
    off = tmp_path / "lead_off.csv"  # a lead coming off decays steadily: still a lead, asked for by name
    off.write_text("II,V5\n" + "\n".join(f"{2 - i / 1000:.4f},{v:.4f}" for i, v in enumerate(x)) + "\n")
    assert read_csv(off, fs=250.0).lead == "II"
    ctr = tmp_path / "counter.csv"
    ctr.write_text("counter,ECG\n" + "\n".join(f"{3 * i + 7},{v:.4f}" for i, v in enumerate(x)) + "\n")
    r = read_csv(ctr, fs=250.0)
    assert r.lead == "ECG" and np.allclose(r.signal, x, atol=1e-4)
    assert any("'counter' rise on every row" in n for n in r.notes)
    with pytest.raises(RecordError, match="rise on every row: a time or sample axis, not an ECG lead"):
        read_csv(ctr, fs=250.0, lead="counter")


@pytest.mark.parametrize("line, fs", [("Rate: 120", None), ("Frequency: 120", None), ("Rate: 250", 500.0),
                                      ("Rate (Hz): 250", None), ("Rate: 500", None)])
def test_a_bare_rate_line_that_a_heart_rate_could_be_is_no_sampling_rate(tmp_path, line, fs):
    """'Rate: 120' names a heart rate as often as a sampling rate: a 500 Hz file was played at 120 Hz, 16 bpm and
    HIGH alarms shown (session 32).  A bare value of 300 or less under 'rate' or 'frequency' is not used (--fs decides,
    without a contradiction); with a unit (in the value or the key's brackets), or over 300, it is the rate."""
    x = _sig(2500, 250.0)
    p = tmp_path / "r.csv"
    p.write_text(f"Patient: Doe\n{line}\nECG (mV)\n" + "\n".join(f"{v:.4f}" for v in x) + "\n")
    if line.startswith("Rate (Hz)"):
        assert read_csv(p).fs == 250.0
        return
    if line == "Rate: 500":
        assert read_csv(p).fs == 500.0
        return
    with pytest.raises(RecordError, match="needs its sampling rate"):
        read_csv(p)
    r = read_csv(p, fs=fs or 250.0)
    assert r.fs == (fs or 250.0) and any("gives no unit (a heart rate, or the sampling rate?)" in n for n in r.notes)


def test_holter_chest_leads_and_einthovens_d_names_are_ecg_leads(tmp_path):
    """A Holter record whose respiration channel comes first played the respiration (CM5, CM1 were no ECG names),
    and DI/DII/DIII (D1-D3), II-ECG were not lead II (session 32)."""
    for n in ("DII", "dii", "II-ECG", "ECG II"):
        assert lead_key(n) == "ii", n
    assert lead_key("DI") == "i" and lead_key("DIII") == "iii" and lead_key("D2") != "ii"  # D1-D3: digital channels
    x = _sig(2500, 250.0)
    resp = 0.5 * np.sin(2 * np.pi * 0.25 * np.arange(len(x)) / 250)
    _wfdb(tmp_path, "holter", np.stack([resp, x, -x], axis=1), 250.0, names=("RESP", "CM5", "CM1"))
    (r,) = read_all([tmp_path / "holter"], second_lead=True).recordings
    assert r.lead == "CM5" and r.second is not None and r.second.lead == "CM1"
    _wfdb(tmp_path, "dnames", np.stack([-x, x], axis=1), 250.0, names=("DI", "DII"))
    r = read(tmp_path / "dnames")
    assert r.lead == "DII" and not any("no lead II" in n for n in r.notes)
    # a digital channel named like lead II is no lead by default: the ECG plays
    (np.round(np.stack([x, (x > 0).astype(float)], axis=1) * 200).astype("<i2")).tofile(tmp_path / "dig.dat")
    (tmp_path / "dig.hea").write_text(f"dig 2 250 {len(x)}\ndig.dat 16 200/mV 16 0 0 0 0 ECG\n"
                                      f"dig.dat 16 1/NU 16 0 0 0 0 DII\n")
    assert read(tmp_path / "dig").lead == "ECG"


@pytest.mark.parametrize("gain_field", ["0", "", "200"])
def test_an_uncalibrated_wfdb_signal_is_said(tmp_path, gain_field):
    """A header without an ADC gain, or 0, is an uncalibrated signal (WFDB header(5)); wfdb reads it at 200 units
    per mV without a word: 5x the amplitude of a 1000-unit recorder, silently (session 32).  Now said."""
    x = _sig(2500, 250.0)
    (np.round(x * 1000).astype("<i2")).tofile(tmp_path / "u.dat")
    fields = f" {gain_field}" + (" 16 0 0 0 0 ECG" if gain_field else "")
    (tmp_path / "u.hea").write_text(f"u 1 250 {len(x)}\nu.dat 16{fields}\n")
    r = read(tmp_path / "u")
    said = any("uncalibrated signal" in n for n in r.notes)
    assert said == (gain_field != "200")


def _ecg_uv(seconds: float = 12.0, fs: float = 250.0) -> np.ndarray:
    """A sinus-like rhythm in whole microvolts: 1 mV spikes at 75 bpm over a little noise."""
    t = np.arange(round(seconds * fs)) / fs
    x = 1000.0 * np.exp(-0.5 * (((t % 0.8) - 0.4) / 0.012) ** 2) + 20.0 * np.sin(2 * np.pi * 1.3 * t)
    return np.round(x)


def test_sixteen_bit_lead_off_codes_in_a_csv_are_missing_samples(tmp_path):
    """2 s of -32768 (and of 32767) in a microvolt export, a 16-bit device's lead-off or overflow codes: missing samples
    (signal loss) with a warning naming the line; they were played as +-32.8 mV of signal, without a word (a
    newcomer, session 41)."""
    for code in (-32768, 32767):
        x = _ecg_uv()
        x[1000:1500] = code
        f = tmp_path / f"codes{code}.csv"
        f.write_text("ECG II (uV)\n" + "\n".join(f"{v:.0f}" for v in x) + "\n")
        r = read_csv(f, fs=250.0)
        assert np.isnan(r.signal[1000:1500]).all() and np.isfinite(r.signal[:1000]).all()
        assert np.nanmax(np.abs(r.signal)) < 1.1
        assert any("500 sample(s) of exactly -32768 or 32767" in n and "line 1002" in n for n in r.notes), r.notes


def test_a_csvs_flat_default_lead_gives_way_to_a_lead_with_a_signal(tmp_path):
    """A two-lead export whose lead II is all 0 (never connected): lead I is played, with a warning (the flat line was
    played, leads off to the end, beside a good lead I: a newcomer, session 41); a lead asked for by name is played
    as it is; where every lead is flat, lead II is."""
    x = _ecg_uv() / 1000.0
    f = tmp_path / "two.csv"
    f.write_text("I (mV),II (mV)\n" + "\n".join(f"{v:.3f},0" for v in x) + "\n")
    r = read_csv(f, fs=250.0)
    assert r.lead == "I" and np.allclose(r.signal, x, atol=1e-3)
    assert any("'II (mV)' holds one value throughout" in n for n in r.notes), r.notes
    assert read_csv(f, fs=250.0, lead="II").lead == "II"
    g = tmp_path / "flat.csv"
    g.write_text("I (mV),II (mV)\n" + "\n".join("0.1,0" for _ in x) + "\n")
    assert read_csv(g, fs=250.0).lead == "II"
    # never a column that is no ECG lead (a reviewer: RESP played as the ECG, a false asystole)
    h = tmp_path / "resp.csv"
    h.write_text("RESP (mV),II (mV)\n" + "\n".join(f"{v:.3f},0" for v in x) + "\n")
    assert read_csv(h, fs=250.0).lead == "II"
    # a lead II of lead-off codes alone is flat too (a reviewer: a +-32.8 mV square wave beside a good lead I)
    c = tmp_path / "codes.csv"
    c.write_text("I (uV),II (uV)\n" + "\n".join(f"{v * 1000:.0f},{-32768 if k % 500 < 250 else 32767}"
                                                 for k, v in enumerate(x)) + "\n")
    assert read_csv(c, fs=250.0).lead == "I"


def test_a_wfdb_records_flat_default_lead_gives_way_to_its_other_ecg_lead(tmp_path):
    """A record whose lead II is exactly flat (never connected) and whose V1 has a signal plays V1, as an all-NaN lead
    II did (session 26); where both are flat (CinC 2015 a391l, v400s), lead II is played as before."""
    x = _ecg_uv() / 1000.0
    for name, v1 in (("live", x), ("dead", np.zeros_like(x))):
        _wfdb(tmp_path, name, np.column_stack([0 * x, v1]), 250.0, names=("II", "V1"))
    r = read(tmp_path / "live")
    assert r.lead == "V1" and any("one value throughout" in n for n in r.notes), r.notes
    assert read(tmp_path / "dead").lead == "II"
    assert read(tmp_path / "live", lead="II").lead == "II"  # a lead asked for is played as it is


def test_an_ecg_on_a_large_dc_offset_has_the_offset_taken_out(tmp_path):
    """A DC-coupled export, the ECG on +300 mV of electrode offset: the offset is taken out, with a warning (it was
    refused as 'not possible for a surface ECG', no way forward: a newcomer, session 41); a spike beyond 100 mV around
    the offset is still refused at its line."""
    x = _ecg_uv() / 1000.0
    f = tmp_path / "dc.csv"
    f.write_text("ECG (mV)\n" + "\n".join(f"{v + 300.0:.4f}" for v in x) + "\n")
    r = read_csv(f, fs=250.0)
    assert abs(float(np.median(r.signal)) - float(np.median(x))) < 0.01 and np.nanmax(r.signal) < 1.5
    assert any("constant offset of 300" in n for n in r.notes), r.notes
    y = x + 300.0
    y[700] = 500.0
    g = tmp_path / "spike.csv"
    g.write_text("ECG (mV)\n" + "\n".join(f"{v:.4f}" for v in y) + "\n")
    with pytest.raises(RecordError, match=r"spike.csv:702: 500 mV is not possible"):
        read_csv(g, fs=250.0)


# --------------------------------------------------------------------------- recordings sampled above 1,000 Hz


def _up(x: np.ndarray, fs: float, to: int) -> np.ndarray:
    from scipy.signal import resample_poly

    return resample_poly(x, to, round(fs))


def test_a_recording_above_1000_hz_is_decimated_anti_aliased_with_its_beats(tmp_path, excerpt):
    """A Holter's or a sleep recorder's 2,048 Hz WFDB record (they were refused: 'outside 100-1000 Hz') is decimated
    as it is read, by 3 to 682.67 Hz (the smallest factor: the new Nyquist frequency stays over 250 Hz), said in a
    note.  The decimation filters first: a 0.3 mV tone at 500 Hz, which every 3rd sample alone would fold onto 183 Hz,
    is gone.  The reference beats map to the new rate; a NaN run stays signal loss over the output samples whose input
    samples it touches, and the QRS detector finds the excerpt's beats at 682.67 Hz as at its own 360 Hz."""
    from ecgmon.core.matching import match
    from ecgmon.evaluation.qrs import detect

    x, fs, ann, cls = excerpt
    hi = 2048
    y = _up(x, fs, hi)
    n = len(y)
    t = np.arange(n) / hi
    ref = read(_wfdb(tmp_path, "clean", y, hi, gain=2000.0))
    y_hum = y + 0.3 * np.sin(2 * np.pi * 500.0 * t)
    y_hum[40_000:44_000] = np.nan  # 1.95 s of signal loss
    _wfdb(tmp_path, "hi", y_hum, hi, gain=2000.0)
    with warnings.catch_warnings():  # wfdb's own use of deprecated pandas calls
        warnings.simplefilter("ignore")
        wfdb.wrann("hi", "atr", np.round(ann * hi / fs).astype(np.int64), cls.tolist(), write_dir=str(tmp_path))
    r = read(tmp_path / "hi")
    assert r.fs == hi / 3 and len(r.signal) == -(-n // 3)
    assert any("sampled at 2048 Hz" in note and "decimated by 3 to 682.667 Hz" in note for note in r.notes)
    lost = np.isnan(r.signal)
    assert np.flatnonzero(lost).tolist() == list(range(40_000 // 3, -(-44_000 // 3)))  # output j: input 3 j .. 3 j + 2
    # the tone filtered out: what is left of it beside the clean record's decimation, away from the loss's edges
    ok = ~lost
    ok[13_200:14_800] = False
    ok[:100] = ok[-100:] = False
    assert float(np.max(np.abs(r.signal[ok] - ref.signal[ok]))) < 0.01
    assert r.annotated and r.ann_classes.tolist() == cls.tolist()
    assert np.abs(r.ann_samples - ann * r.fs / fs).max() <= 1.0
    # every reference beat found at 682.67 Hz as at 360 Hz: all but those within a second before the loss (the
    # detector's look-ahead), in its first 2 s after it (the detector learns again) and in the record's last second
    found = match(r.ann_samples, detect(r).index, 0.15 * r.fs) >= 0
    t_ann = r.ann_samples / r.fs
    away = ((t_ann < 18.5) | (t_ann > 23.7)) & (t_ann < len(r.signal) / r.fs - 1.0)
    native = read(EXCERPT)
    n360 = match(ann, detect(replace(native, signal=native.signal[:len(x)])).index, 0.15 * fs) >= 0
    assert away.sum() > 60 and found[away].all() and n360[ann < len(x) - fs].all()


def test_a_decimated_records_vf_and_rhythm_episodes_stay_where_they_are(tmp_path, excerpt):
    """The evaluation reads a record's VF/flutter marks ([ .. ]) and rhythm episodes ('+' marks) from its annotation
    file again: at the rate the recording is played at, not the file's (a reviewer, session 48: MIT-BIH 207 at 2,048
    Hz had its VF episodes and rhythm marks placed 3-4 times too late, QRS +P 61 % for 99.6 % and 576 false HIGH
    alarms per bed-day counted in the mitdb protocol)."""
    from ecgmon.evaluation.ec57 import vf_spans
    from ecgmon.evaluation.vfdb import read_episodes

    x, fs, _, _ = excerpt
    hi = 2048
    _wfdb(tmp_path, "ep", _up(x, fs, hi), hi, gain=2000.0)
    at = np.array([10, 20, 30, 40]) * hi
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wfdb.wrann("ep", "atr", at, ["+", "[", "]", "+"], aux_note=["(N", "", "", "(VT"], write_dir=str(tmp_path))
    r = read(tmp_path / "ep")
    assert r.fs == hi / 3
    assert vf_spans(tmp_path / "ep", r.fs) == [(round(20 * r.fs), round(30 * r.fs))]
    eps = read_episodes(tmp_path / "ep", r.fs, len(r.signal))
    assert [(e.rhythm, e.start, round(e.end, 3)) for e in eps] == [("N", 10.0, 40.0),
                                                                     ("VT", 40.0, round(len(r.signal) / r.fs, 3))]


def test_edf_and_csv_above_1000_hz_are_decimated_and_a_rate_beyond_10_khz_is_refused(tmp_path, excerpt):
    """An EDF file at 2,048 Hz with a second ECG lead: both leads decimated alike (one note for each lead); a CSV
    export at 2,000 Hz whose time column names its unit, by 2 to 1,000 Hz (one without a unit is refused, naming the
    fix: a unitless step is told only within 100-1000 Hz); --fs for a CSV without a rate likewise; 20 kHz is refused,
    naming the range and what to do."""
    x, fs, _, _ = excerpt
    y = _up(x[: int(20 * fs)], fs, 2048)
    p = tmp_path / "two.edf"
    edfio.Edf([edfio.EdfSignal(y * 1000, 2048, label="ECG II", physical_dimension="uV"),
               edfio.EdfSignal(-y * 1000, 2048, label="ECG V1", physical_dimension="uV")]).write(p)
    got = read_all([p], second_lead=True)
    r = got.recordings[0]
    assert r.fs == 2048 / 3 and r.second is not None and r.second.fs == r.fs
    assert len(r.second.signal) == len(r.signal) and np.allclose(r.second.signal, -r.signal, atol=2e-3)
    assert [n.split(": ", 1)[1][:24] for n in r.notes if "decimated by 3" in n] == ["lead 'ECG II' sampled at",
                                                                                 "lead 'ECG V1' sampled at"]
    z = _up(x[: int(20 * fs)], fs, 2000)
    q = tmp_path / "fast.csv"
    q.write_text("time,ECG II (mV)\n" + "".join(f"{i / 2000:.4f},{v:.4f}\n" for i, v in enumerate(z)))
    with pytest.raises(RecordError, match=r"mean step 0\.0005 is no sampling rate of 100-1000 Hz in s, ms or us; name "
                                          "its unit"):  # a unitless step is told within 100-1000 Hz only
        read(q)
    q.write_text("time (s),ECG II (mV)\n" + "".join(f"{i / 2000:.4f},{v:.4f}\n" for i, v in enumerate(z)))
    c = read(q)
    assert c.fs == 1000.0 and len(c.signal) == len(z) // 2
    bare = tmp_path / "bare.csv"
    bare.write_text("".join(f"{v:.4f}\n" for v in z))
    assert read(bare, fs=2000).fs == 1000.0
    with pytest.raises(RecordError, match=r"20000 Hz is outside 100-10000 Hz \(resample it to 1000 Hz or less"):
        read(_wfdb(tmp_path, "ultra", _up(x[: int(5 * fs)], fs, 20_000), 20_000, gain=2000.0))


@pytest.mark.parametrize("fs", [1005.0, 1024.0, 2048.0, 3000.0, 10_000.0])
def test_decimation_keeps_signal_loss_and_short_runs_of_valid_samples(fs):
    """Gaps and runs of valid samples of every length (1-30 samples) at every offset: output sample j (input samples
    j q .. j q + q - 1) is signal loss exactly where one of its input samples is (a gap shorter than q samples between
    output samples was lost: a reviewer, session 48), and a constant run keeps its value (a run of one sample had no
    line to pad its filter with: resample_poly gave NaN)."""
    from ecgmon.models.recording import Recording, decimated, decimation_factor

    q = decimation_factor(fs)
    assert 500 < fs / q <= 1000
    for length in range(1, 31):
        for off in range(11):
            x = np.full(400, 0.5)
            x[50 + off:50 + off + length] = np.nan  # a gap of `length`
            x[150:] = np.nan  # ... and a valid run of `length` alone in signal loss
            x[200 + off:200 + off + length] = 0.25
            r = decimated(Recording("t", Path("t"), fs, "II", x.astype(np.float32)))
            assert r.fs == fs / q and len(r.signal) == -(-400 // q)
            pad = np.pad(x, (0, len(r.signal) * q - 400), constant_values=np.nan).reshape(-1, q)
            valid = np.isfinite(pad).all(axis=1)
            assert (np.isfinite(r.signal) == valid).all(), (length, off)
            first = valid & (np.arange(len(valid)) * q < 50)
            np.testing.assert_allclose(r.signal[first], 0.5, atol=1e-5)
            np.testing.assert_allclose(r.signal[valid & (np.arange(len(valid)) * q >= 200)], 0.25, atol=1e-5)


# --------------------------------------------------------------------------- a newcomer's device files (session 48)


def test_a_time_column_of_device_clock_ticks_is_refused_and_plays_with_fs(tmp_path):
    """A 'Timestamp' column counting a 32,768 Hz device clock (128 ticks a sample at 256 Hz, as Shimmer's raw stamps
    do), no unit: once a recording could state up to 10,000 Hz its step was read as us, 7,812.5 Hz, and the record
    played 30 times too fast, 125.7 bpm shown for 71.7 (a newcomer, session 48).  A unitless step is told as s, ms or
    us only within 100-1000 Hz: refused, naming the fix; with --fs the column is not used (a note) and the file plays
    at --fs (it was refused as contradicting the column)."""
    x = _sig(2560, 256.0)
    p = tmp_path / "ticks.csv"
    p.write_text("Timestamp,ECG (mV)\n" + "".join(f"{1_000_000 + 128 * i},{v:.4f}\n" for i, v in enumerate(x)))
    with pytest.raises(RecordError, match=r"mean step 128 is no sampling rate of 100-1000 Hz in s, ms or us; name its "
                                          r"unit \(e\.g\. 'time_ms'\), or give --fs"):
        read_csv(p)
    r = read_csv(p, fs=256.0)
    assert r.fs == 256.0 and np.allclose(r.signal, x, atol=1e-4)
    assert any("(a device's clock ticks?): not used; the rate from --fs" in n for n in r.notes)
    named = tmp_path / "named.csv"  # a rate over 1,000 Hz by a named unit still plays (decimated: test above)
    z = _sig(6000, 2000.0)
    named.write_text("time_us,ECG (mV)\n" + "".join(f"{500 * i},{v:.4f}\n" for i, v in enumerate(z)))
    assert read(named).fs == 1000.0


def test_an_openbci_export_reads_its_rate_line_and_leaves_its_wrapping_sample_counter_out(tmp_path, excerpt):
    """OpenBCI GUI's text export: '%' metadata lines (its '%Sample Rate = 250.0 Hz' was not read: the file was refused
    for want of a rate), no header, a first column counting samples 0-255 and wrapping, then the channels in uV.  With
    the fixes the refusals named (--fs 250 --units uV) the counter was played as the lead: 58.6 bpm shown for 71.7 (a
    newcomer, session 48).  Now the rate line is read and a column that counts up by one and wraps is no lead, with a
    header or without (BITalino's nSeq too)."""
    x, fs, _, _ = excerpt
    y = _up(x[: int(30 * fs)], fs, 250)
    p = tmp_path / "OpenBCI-RAW.txt"
    # its clock column stamps each packet of 10 samples (it gives no rate: the rate line does)
    p.write_text("%OpenBCI Raw EEG Data\n%Number of channels = 4\n%Sample Rate = 250.0 Hz\n"
                 "%First Column = SampleIndex\n"
                 + "".join(f"{i % 256}, {v * 1000:.2f}, 0.00, 0.00, 0.00, 10:00:{(i // 10) * 0.04:06.3f}\n"
                           for i, v in enumerate(y)))
    with pytest.raises(RecordError, match="microvolts"):
        read_csv(p)
    r = read_csv(p, units="uV")
    assert r.fs == 250.0 and r.lead == "column 2" and np.allclose(r.signal, y, atol=1e-4)
    assert any("'column 1' rise on every row (or count and wrap)" in n for n in r.notes)
    v5 = tmp_path / "OpenBCI-v5.txt"  # the GUI's v5 export names its columns: its 'Sample Index' wraps too
    v5.write_text("%OpenBCI Raw EXG Data\n%Sample Rate = 250 Hz\nSample Index, EXG Channel 0, EXG Channel 1\n"
                  + "".join(f"{i % 256}.0, {v * 1000:.2f}, 0.00\n" for i, v in enumerate(y)))
    r5 = read_csv(v5, units="uV")  # it was refused: 'sample numbers go from 255 to 0: samples missing'
    assert (r5.fs, r5.lead) == (250.0, "EXG Channel 0") and np.allclose(r5.signal, y, atol=1e-4)
    # a wrapping counter that skips cannot tell how many samples went (1, or 257, ...): refused, naming the fix
    # (session 49's first form read such skips modulo 256: a 2 s dropout as 244 samples, a reviewer)
    lost = (300, 510, 511, 512)
    gap = tmp_path / "gap.txt"
    gap.write_text("Sample Index, ECG (mV)\n" + "".join(f"{i % 256}, {v:.4f}\n" for i, v in enumerate(y)
                                                         if i not in lost))
    with pytest.raises(RecordError, match=r"gap\.txt:302: sample numbers go from 43 to 45: samples missing \(or rows "
                                          r"repeated\), but a counter that starts again every 256 samples cannot tell"):
        read_csv(gap, fs=250.0)
    swap = tmp_path / "swap.txt"  # two rows swapped (a step back modulo 256): refused, not 'samples missing'
    rows = [f"{i % 256}, {v:.4f}\n" for i, v in enumerate(y)]
    rows[100], rows[101] = rows[101], rows[100]
    swap.write_text("Sample Index, ECG (mV)\n" + "".join(rows))
    with pytest.raises(RecordError, match=r"swap\.txt:102: sample numbers go from 99 to 101: samples missing \(or"):
        read_csv(swap, fs=250.0)
    # ... with a time column stamping each sample, the skips are read from it, the counter agreeing modulo 256
    stamped = tmp_path / "stamped.txt"
    stamped.write_text("Sample Index, ECG (mV), Timestamp (s)\n" + "".join(
        f"{i % 256}, {v:.4f}, {1700000000 + i / 250:.4f}\n" for i, v in enumerate(y) if i not in lost))
    g = read_csv(stamped)
    assert g.fs == 250.0 and len(g.signal) == len(y) and np.isnan(g.signal[list(lost)]).all()
    np.testing.assert_allclose(np.delete(g.signal, lost), np.delete(y, lost), atol=1e-4)
    # ... and where they disagree (the host stamped the rows anew at the nominal rate, hiding the counter's skips)
    restamped = tmp_path / "restamped.txt"
    restamped.write_text("Sample Index, ECG (mV), Timestamp (s)\n" + "".join(
        f"{i % 256}, {v:.4f}, {1700000000 + k / 250:.4f}\n"
        for k, (i, v) in enumerate((i, v) for i, v in enumerate(y) if i not in lost)))
    with pytest.raises(RecordError, match=r"restamped\.txt:302: time column 'Timestamp \(s\)' steps 1 sample\(s\) "
                                          r"there but the sample numbers 2 \(43 to 45\): which is right"):
        read_csv(restamped)
    b = tmp_path / "bitalino.csv"  # a named counter that wraps (0-15) comes first
    b.write_text("Sampling rate: 250 Hz\nnSeq,ECG (mV)\n" + "".join(f"{i % 16},{v:.4f}\n" for i, v in enumerate(y)))
    assert read_csv(b).lead == "ECG"
    # ... its nSeq is a sample counter: one that skips is refused (its skip was spliced back to back, unsaid: a
    # reviewer, session 49)
    b.write_text("Sampling rate: 250 Hz\nnSeq,ECG (mV)\n" + "".join(f"{i % 16},{v:.4f}\n" for i, v in enumerate(y)
                                                                    if i not in range(1000, 1010)))
    with pytest.raises(RecordError, match=r"bitalino\.csv:1003: sample numbers go from 7 to 2: samples missing"):
        read_csv(b)


def test_a_shimmer_export_plays_lead_ii_named_by_its_electrode_pair(tmp_path, excerpt):
    """Shimmer Consensys: an Excel 'sep=' line, names like 'Shimmer_8A7E_ECG_LL-RA_24BIT_CAL', a CAL row (tab
    separated) and a units row; the time in a 'Shimmer_8A7E_Timestamp_Unix_CAL' column (ms).  The file was refused for
    want of a rate (the time column's name not read as time); with --fs its lead I (LA-RA) was played, 'no lead II',
    144 beats for 140 and false alarms, and in the tab-separated file every lead was named 'CAL' (a newcomer, session
    48).  Limb leads by electrode pair: I = LA-RA, II = LL-RA, III = LL-LA."""
    x, fs, _, _ = excerpt
    y = _up(x[: int(20 * fs)], fs, 512)
    pre = "Shimmer_8A7E_"
    names = [f"{pre}Timestamp_Unix_CAL", f"{pre}ECG_LA-RA_24BIT_CAL", f"{pre}ECG_LL-RA_24BIT_CAL",
             f"{pre}ECG_LL-LA_24BIT_CAL"]
    for sep, cal in ((",", False), ("\t", True)):
        p = tmp_path / f"shimmer{'_tab' if cal else ''}.csv"
        rows = [f'"sep={sep}"', sep.join(names) + sep]
        if cal:
            rows.append(sep.join(["CAL"] * 4) + sep)
        rows.append(sep.join(["ms", "mV", "mV", "mV"]) + sep)
        rows += [sep.join([f"{1682935200000 + i * 1000 / 512:.3f}", f"{0.4 * v:.5f}", f"{v:.5f}", f"{0.6 * v:.5f}"])
                 + sep for i, v in enumerate(y)]
        p.write_text("\n".join(rows) + "\n")
        r = read_csv(p)
        assert (r.fs, r.lead) == (512.0, f"{pre}ECG_LL-RA_24BIT_CAL") and np.allclose(r.signal, y, atol=1e-4), p
        assert read_csv(p, lead="I").lead == f"{pre}ECG_LA-RA_24BIT_CAL"
        assert read_csv(p, lead="III").lead == f"{pre}ECG_LL-LA_24BIT_CAL"


def test_whole_numbers_without_a_unit_are_no_millivolts(tmp_path, excerpt):
    """A 12-bit converter's counts (2,048 + mV / 0.05), no unit: read as mV, 20 times too large, the converter's
    midscale 'taken out' as a DC offset with a routine note (a newcomer, session 48).  No ECG is written in whole
    millivolts: whole numbers without a unit are refused, naming both readings (whole uV, raw counts) and the fix; whole
    microvolts with --units uV play."""
    x, fs, _, _ = excerpt
    y = x[: int(20 * fs)]
    adc = tmp_path / "adc.csv"
    adc.write_text("Sampling rate: 360 Hz\nECG\n" + "".join(f"{2048 + round(v / 0.05)}\n" for v in y))
    with pytest.raises(RecordError, match=r"whole numbers only \(\d+ to \d+\) and no unit: not millivolts.*Whole "
                                          r"microvolts\? state the unit \(--units uV"):
        read_csv(adc)
    uv = tmp_path / "uv.csv"
    uv.write_text("Sampling rate: 360 Hz\nECG\n" + "".join(f"{round(v * 1000)}\n" for v in y))
    r = read_csv(uv, units="uV")
    assert np.allclose(r.signal, np.round(y * 1000) / 1000, atol=1e-6)
    mv = tmp_path / "mv.csv"  # a coarse but real mV export (0.1 mV steps) still plays as mV
    mv.write_text("Sampling rate: 360 Hz\nECG\n" + "".join(f"{round(v, 1):.1f}\n" for v in y))
    assert read_csv(mv).fs == 360.0


def test_what_a_reviewer_broke_in_the_device_file_rules(tmp_path, excerpt):
    """Session 48's reviewer of the device-file rules (helper 103), each case failing on its first form:
    a unitless clock-tick column left out for --fs still shows a 2 s dropout (it was spliced back to back, every beat
    after it 2 s early); a sample counter 0..17,499 that starts again at 0 is a second session appended, not a k-bit
    counter's wrap (played back to back); whole-ms stamps at 1,024 Hz repeat (0, 0, 1, ...) and are no gap; a units
    row with another channel's units ('no units', bpm) is a units row, not the names; the calibrated Shimmer lead in mV
    beside its raw counts ('no units'), and its Unix time in ms rather than its raw ticks; Hexoskin's 'time [s/256]'
    (the step of 1 read as ms: played at 1,000 Hz); a flat lead II gives way to lead I, not to 'ECG_RESP'."""
    x, fs, _, _ = excerpt
    y = _up(x[: int(60 * fs)], fs, 256)
    ticks = tmp_path / "ticks_gap.csv"
    t = 1_000_000 + 128 * np.arange(len(y))
    t[5000:] += 2 * 32768  # 2 s of Bluetooth dropout
    ticks.write_text("Timestamp,ECG (mV)\n" + "".join(f"{a},{v:.4f}\n" for a, v in zip(t, y, strict=True)))
    tg = read_csv(ticks, fs=256.0)  # the 2 s are 512 samples missing where they were (it was refused before)
    assert len(tg.signal) == len(y) + 512 and np.isnan(tg.signal[5000:5512]).all()
    np.testing.assert_allclose(tg.signal[5512:], y[5000:], atol=1e-4)
    t[6000:] -= 200  # a step back is still refused
    ticks.write_text("Timestamp,ECG (mV)\n" + "".join(f"{a},{v:.4f}\n" for a, v in zip(t, y, strict=True)))
    with pytest.raises(RecordError, match=r"ticks_gap\.csv:6002: time column 'Timestamp' goes from .* \(median step "
                                          r"128, its unit unknown\): a step back"):
        read_csv(ticks, fs=256.0)
    restart = tmp_path / "restart.csv"
    restart.write_text("Sampling rate: 256 Hz\nSample,ECG (mV)\n"
                       + "".join(f"{i if i < 7000 else i - 7000},{v:.4f}\n" for i, v in enumerate(y)))
    with pytest.raises(RecordError, match="sample numbers go from 6999 to 0"):
        read_csv(restart)
    z = _up(x[: int(20 * fs)], fs, 1024)
    whole_ms = tmp_path / "whole_ms.csv"
    whole_ms.write_text("Time,ECG (mV)\n" + "".join(f"{int(i * 1000 / 1024)},{v:.4f}\n" for i, v in enumerate(z)))
    assert read(whole_ms, fs=1024.0).fs == 512.0
    bpm = tmp_path / "units_bpm.csv"
    bpm.write_text("Time,ECG,HR\ns,uV,bpm\n" + "".join(f"{i / 256:.5f},{v * 1000:.1f},72\n" for i, v in enumerate(y)))
    r = read_csv(bpm)
    assert (r.fs, r.lead) == (256.0, "ECG") and np.allclose(r.signal, y, atol=1e-3)
    pre = "Shimmer_8A7E_"
    shim = tmp_path / "shimmer_calraw.csv"
    rows = ['"sep=,"', ",".join([f"{pre}Timestamp_RAW", f"{pre}Timestamp_Unix_CAL", f"{pre}ECG_LL-RA_24BIT_RAW",
                                 f"{pre}ECG_LL-RA_24BIT_CAL"]) + ",", "no units,ms,no units,mV,"]
    rows += [f"{1_000_000 + 64 * i},{1682935200000 + i * 1000 / 512:.3f},{round(v * 30000)},{v:.5f},"
             for i, v in enumerate(_up(x[: int(20 * fs)], fs, 512))]
    shim.write_text("\n".join(rows) + "\n")
    r = read_csv(shim)
    assert (r.fs, r.lead) == (512.0, f"{pre}ECG_LL-RA_24BIT_CAL")
    hexo = tmp_path / "hexoskin.csv"
    hexo.write_text("time [s/256],ECG_I (mV)\n" + "".join(f"{i},{v:.4f}\n" for i, v in enumerate(y)))
    assert read_csv(hexo).fs == 256.0
    resp = tmp_path / "resp.csv"
    resp.write_text("Sampling rate: 256 Hz\n" + f"{pre}ECG_RESP (mV),{pre}ECG_LL-RA (mV),{pre}ECG_LA-RA (mV)\n"
                    + "".join(f"{0.5 * np.sin(i / 300):.4f},0,{v:.4f}\n" for i, v in enumerate(y)))
    assert read_csv(resp).lead == f"{pre}ECG_LA-RA"


def test_an_apple_watch_export_in_german_reads_its_rate_unit_and_lead(tmp_path):
    """An Apple Watch ECG export with a German interface ("Abtastrate,512 Hertz", "Einheit,µV", "Ableitung,Ableitung
    I") was refused for want of a rate, and with --fs asked for the unit (a newcomer, session 48): metadata keys in
    other languages and devices' "Signal unit" / "ECG unit" mean what the English keys do, and "lead" in other languages
    prefixes a lead name as "Lead" does."""
    x = _sig(20 * 512, 512.0)
    p = tmp_path / "ekg.csv"
    p.write_text("Name,Jane Appleseed\nAufnahmedatum,2023-05-01 10:00:00 +0200\nKlassifizierung,Sinusrhythmus\n"
                 "Abtastrate,512 Hertz\nAbleitung,Ableitung I\nEinheit,µV\n\n"
                 + "".join(f"{v * 1000:.3f}\n" for v in x))
    r = read_csv(p)
    assert (r.fs, r.lead) == (512.0, "Ableitung I") and np.allclose(r.signal, x, atol=1e-5)
    assert read_csv(p, lead="I").lead == "Ableitung I"
    q = tmp_path / "dev.csv"
    q.write_text("Sampling rate: 250 Hz\nSignal unit: uV\nECG\n" + "".join(f"{v * 1000:.1f}\n" for v in _sig()))
    assert np.allclose(read_csv(q).signal, _sig(), atol=1e-4)


def test_dates_written_day_first_and_a_date_column_read_as_times_of_day(tmp_path):
    """A European device's or spreadsheet's export writes its times as ``06/12/2026 10:00:00.004`` or
    ``06.12.2026 23:59:59,998``, or a date column beside a time column: each was refused at its first line with "is not
    a number; fix or remove the line", though every line holds the same (a newcomer, session 48).  The time of day is
    read (day first or month first cannot be told and need not be), across midnight too; a date column is no lead.  A
    form still not read is refused naming the forms that are."""
    import datetime as dt

    x = _sig(2500, 250.0)
    t0 = dt.datetime(2026, 12, 6, 23, 59, 55)
    when = [t0 + dt.timedelta(seconds=i / 250) for i in range(len(x))]
    files = {
        "dayfirst.csv": "Time,ECG (mV)\n" + "".join(f"{w.strftime('%d/%m/%Y %H:%M:%S.%f')[:-3]},{v:.4f}\n"
                                                    for w, v in zip(when, x, strict=True)),
        "dots.csv": "Zeit;EKG (mV)\n" + "".join(f"{w.strftime('%d.%m.%Y %H:%M:%S,%f')[:-3]};{v:.4f}\n".replace(".", ",")
                                                .replace(",", ".", 2) for w, v in zip(when, x, strict=True)),
        "datecol.csv": "Date,Time,ECG (mV)\n" + "".join(f"{w:%Y-%m-%d},{w.strftime('%H:%M:%S.%f')[:-3]},{v:.4f}\n"
                                                       for w, v in zip(when, x, strict=True)),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        r = read_csv(tmp_path / name)
        assert r.fs == 250.0 and len(r.signal) == len(x) and np.allclose(r.signal, x, atol=1e-4), name
        assert r.lead in ("ECG", "EKG"), (name, r.lead)
    assert any("column(s) 'Date' hold dates: not a lead" in n for n in read_csv(tmp_path / "datecol.csv").notes)
    (tmp_path / "ampm.csv").write_text("Time,ECG (mV)\n" + "".join(
        f"{w.strftime('%m/%d/%Y %I:%M:%S %p')},{v:.4f}\n" for w, v in zip(when, x, strict=True)))
    with pytest.raises(RecordError, match=r"ampm\.csv:2: field 1 '12/06/2026 11:59:55 PM' is a date or time in a form "
                                          r"not read here"):
        read_csv(tmp_path / "ampm.csv")

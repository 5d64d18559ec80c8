"""The payload contract, the bad-input corpus, and per-device stream repair (no broker needed)."""

import contextlib
import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgmon.monitor.mqtt import BrokerConfig, MqttSource
from ecgmon.monitor.payload import HEADER, MAGIC, PayloadError, decode, device_from_topic, encode
from ecgmon.monitor.streams import DeviceStream

SIG = (np.sin(np.linspace(0, 6, 62)) * 1.5).astype(np.float32)


@pytest.mark.parametrize("fmt", ["json", "int16", "float32"])
def test_round_trip_every_format(fmt):
    p = decode(encode(fmt, "bed01", 17, 250.0, 1_700_000_000.25, SIG))
    assert (p.seq, p.fs, p.t0) == (17, 250.0, 1_700_000_000.25)
    np.testing.assert_allclose(p.samples, SIG, atol=1e-3 if fmt == "int16" else 1e-5)
    assert p.device == ("bed01" if fmt == "json" else None)


def _json(**kw):
    base = {"device": "bed01", "seq": 1, "fs": 250, "t0": 10.0, "samples": [0.1, 0.2, 0.3]}
    base.update(kw)
    return json.dumps(base).encode()


def _bin(n=3, dtype=1, version=1, fs=250.0, scale=0.001, body=None):
    head = HEADER.pack(MAGIC, version, dtype, 0, 1, fs, scale, 10.0, n)
    return head + (body if body is not None else b"\x00\x01" * n if dtype == 1 else b"\x00" * 4 * n)


#: (payload, reason): at least 20 kinds of bad input
CORPUS = [
    (b"{not json", "bad-json"),
    (b'{"seq": 1}', "missing-field"),
    (b"[1, 2, 3]", "unknown-format"),
    (b'  ["a"]', "unknown-format"),
    (_json(seq="1"), "bad-seq"),
    (_json(seq=-1), "bad-seq"),
    (_json(seq=1.5), "bad-seq"),
    (_json(seq=True), "bad-seq"),
    (_json(fs=20), "bad-fs"),
    (_json(fs="250"), "bad-fs"),
    (_json(t0=None), "bad-t0"),
    (_json(samples="0.1,0.2"), "bad-samples"),
    (_json(samples=[0.1, "x"]), "bad-samples"),
    (_json(samples=[]), "empty"),
    (_json(samples=[0.1] * 2600), "too-many-samples"),
    (_json(samples=[1e6]), "out-of-range"),
    (_json().replace(b"0.2", b"NaN"), "non-finite"),
    (_json().replace(b"0.2", b"Infinity"), "non-finite"),
    (_json(device="../etc"), "bad-device"),
    (b"\xff\xfe garbage \x00\x01", "unknown-format"),
    (MAGIC + b"\x01", "truncated"),
    (_bin(version=9), "bad-version"),
    (_bin(dtype=7), "bad-dtype"),
    (_bin(body=b"\x00"), "truncated"),
    (_bin(scale=-1.0), "bad-scale"),
    (_bin(dtype=2, body=struct.pack("<3f", 0.1, float("nan"), 0.2)), "non-finite"),
    (_bin(fs=5000.0), "bad-fs"),
    (b"{" + b" " * 70_000 + b"}", "too-large"),
    ("not bytes", "bad-type"),
    (b'{"seq": 1, "fs": 250, "t0": 1, "samples": ' + b"[" * 5000 + b"]" * 5000 + b"}", "bad-json"),
]


@pytest.mark.parametrize(("payload", "reason"), CORPUS, ids=[r for _, r in CORPUS])
def test_bad_input_corpus_is_rejected_with_its_reason(payload, reason):
    with pytest.raises(PayloadError) as e:
        decode(payload)  # type: ignore[arg-type]
    assert e.value.reason == reason


def test_corpus_covers_at_least_twenty_kinds_of_bad_input():
    assert len(CORPUS) >= 20 and len({r for _, r in CORPUS}) >= 15


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_decoder_raises_only_its_own_error_on_arbitrary_bytes(data):
    with contextlib.suppress(PayloadError):
        decode(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_decoder_on_arbitrary_bytes_after_a_valid_header(data):
    for blob in (MAGIC + data, b'{"seq":' + data, HEADER.pack(MAGIC, 1, 1, 0, 0, 250.0, 0.001, 1.0, 4) + data):
        with contextlib.suppress(PayloadError):
            decode(blob)


def test_device_from_topic():
    assert device_from_topic("ecg/bed01/samples", "ecg/+/samples") == "bed01"
    assert device_from_topic("ecg/bed01/labels", "ecg/+/samples") is None
    assert device_from_topic("ecg/bed01/samples/x", "ecg/+/samples") is None
    assert device_from_topic("site/ward3/ecg/dev9/samples", "site/+/ecg/+/samples") == "ward3"
    assert device_from_topic("ecg/bad id/samples", "ecg/+/samples") is None


def _pkts(seqs, fs=250.0):
    return [decode(encode("float32", "d", s, fs, 100.0 + s * 62 / fs, SIG)) for s in seqs]


def test_stream_orders_drops_duplicates_and_repairs_reordering():
    ds = DeviceStream("d", reorder=4)
    out = [c for p in _pkts([0, 2, 1, 1, 3, 0, 4]) for c in ds.push(p)]
    assert [c.seq for c in out] == [0, 1, 2, 3, 4]
    assert [c.start for c in out] == [0, 62, 124, 186, 248]
    assert not any(c.reset for c in out)
    assert ds.counts["duplicate"] == 2 and ds.counts["out_of_order"] == 1


def test_a_gap_beyond_the_reorder_window_resets_and_keeps_time():
    ds = DeviceStream("d", reorder=2)
    out = [c for p in _pkts([0, 1, 5, 6, 7, 8]) for c in ds.push(p)]
    assert [c.seq for c in out] == [0, 1, 5, 6, 7, 8]
    assert [c.reset for c in out] == [False, False, True, False, False, False]
    assert out[2].start == 5 * 62  # sample index follows the packet time across the gap
    assert ds.counts["gap"] == 1 and ds.counts["lost_chunks"] == 3


def test_a_change_of_rate_resets_the_stream():
    ds = DeviceStream("d")
    a = ds.push(_pkts([0])[0])
    b = ds.push(decode(encode("float32", "d", 1, 500.0, 100.25, SIG)))
    assert not a[0].reset and b[0].reset and b[0].fs == 500.0
    assert ds.counts["fs_change"] == 1


def test_source_counts_rejections_per_device_and_never_raises():
    seen = []
    src = MqttSource(BrokerConfig(), on_reject=lambda d, r: seen.append((d, r)))
    for payload, _ in CORPUS:
        assert src.handle("ecg/bed07/samples", payload) == []
    assert src.handle("other/topic", _json()) == []
    assert src.handle("ecg/" + "x" * 300 + "/samples", _json()) == []
    assert src.handle("ecg/bed08/samples", _json(device="bed09")) == []
    assert src.handle("ecg/bed07/labels", b"garbage") == []
    assert len(seen) == len(CORPUS) + 4
    assert sum(src.rejected.values()) == len(seen)
    assert src.rejected[("bed07", "bad-json")] == 2
    assert src.rejected[("(unknown)", "unknown-topic")] == 1
    assert src.handle("ecg/bed07/samples", _json(seq=0, device="bed07"))[0].patient == "bed07"

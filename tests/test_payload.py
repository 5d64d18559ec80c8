"""The payload contract, the bad-input corpus, and per-device stream repair (no broker needed)."""

import collections
import contextlib
import time

import numpy as np
import pytest
from helpers import CORPUS, payload_json
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgmon.core.payload import (
    HEADER,
    MAGIC,
    PayloadError,
    decode,
    decode_many,
    device_from_topic,
    encode,
    encode_leads,
)
from ecgmon.monitor.ingress import FairShare, Ingress
from ecgmon.monitor.mqtt import BrokerConfig, MqttSource
from ecgmon.monitor.streams import DeviceStream

SIG = (np.sin(np.linspace(0, 6, 62)) * 1.5).astype(np.float32)


@pytest.mark.parametrize("fmt", ["json", "int16", "float32"])
def test_round_trip_every_format(fmt):
    p = decode(encode(fmt, "bed01", 17, 250.0, 1_700_000_000.25, SIG))
    assert (p.seq, p.fs, p.t0) == (17, 250.0, 1_700_000_000.25)
    np.testing.assert_allclose(p.samples, SIG, atol=1e-3 if fmt == "int16" else 1e-5)
    assert p.device == ("bed01" if fmt == "json" else None)




@pytest.mark.parametrize("fmt", ["json", "int16", "float32"])
def test_two_leads_round_trip_every_format_lead_ii_first_and_a_lost_stretch_as_nan(fmt):
    v = (-0.5 * SIG).copy()
    v[10:20] = np.nan  # lead V has no samples there (its electrode off): null in JSON, -32768 / NaN in binary
    blob = encode_leads(fmt, "bed01", 17, 250.0, 1_700_000_000.25, {"V": v, "II": SIG, "aVR": SIG}, simulated=True)
    for p in (decode(blob), decode_many([blob] * 5)[4]):
        assert not isinstance(p, PayloadError)
        assert (p.seq, p.fs, p.t0, p.leads, p.simulated) == (17, 250.0, 1_700_000_000.25, ("II", "V"), True)
        np.testing.assert_allclose(p.samples, SIG, atol=1e-3 if fmt == "int16" else 1e-5)
        assert p.second is not None and np.isnan(p.second).sum() == 10
        np.testing.assert_allclose(p.second[20:], v[20:], atol=1e-3 if fmt == "int16" else 1e-5)
    # no lead II: the first listed is the primary; one lead is a packet without a second lead
    p = decode(encode_leads(fmt, "bed01", 1, 250.0, 10.0, {"V1": SIG, "V5": v}))
    assert p.leads == ("V1", "V5")
    p = decode(encode_leads(fmt, "bed01", 1, 250.0, 10.0, {"MLII": SIG}))
    assert p.leads == ("MLII",) and p.second is None


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"seq": 1, "fs": 250, "t0": 1, "leads": {"II": [0.1, 0.2], "V": [0.1]}}', "bad-leads"),  # unequal lengths
    (b'{"seq": 1, "fs": 250, "t0": 1, "leads": {"II": [0.1], "a b": [0.1]}}', "bad-leads"),  # not a lead name
    (b'{"seq": 1, "fs": 250, "t0": 1, "leads": []}', "bad-leads"),
    # a lead given twice (json keeps the last silently: a V lead would have been played as lead II)
    (b'{"seq": 1, "fs": 250, "t0": 1, "leads": {"II": [0.1], "II": [-0.1]}}', "bad-leads"),
    (b'{"seq": 1, "seq": 2, "fs": 250, "t0": 1, "samples": [0.1]}', "bad-json"),  # which packet is it?
    (b'{"seq": 1, "fs": 250, "t0": 1, "leads": {"II": [0.1]}, "samples": [0.1]}', "bad-leads"),
    (b'{"seq": 1, "fs": 250, "t0": 1, "leads": {"II": [0.1, "x"]}}', "bad-samples"),
    (b'{"seq": 1, "fs": 250, "leads": {"II": [0.1]}}', "missing-field"),
    (b'{"seq": 1, "fs": 250, "t0": 1, "leads": {"II": [0.1, 99.0], "V": [0.1, 0.1]}}', "out-of-range"),
    (b'{"seq": 1, "fs": 250, "t0": 1, "leads": {"II": [], "V": []}}', "empty"),
    (encode_leads("int16", "d", 1, 250.0, 1.0, {"II": SIG, "V": SIG})[:-1], "truncated"),
    (encode_leads("int16", "d", 1, 250.0, 1.0, {"II": SIG, "V": SIG}).replace(b"II,V", b"II;V"), "bad-leads"),
    (encode_leads("float32", "d", 1, 250.0, 1.0, {"II": np.full(4, np.inf), "V": SIG[:4]}), "non-finite"),
])
def test_a_malformed_two_lead_payload_is_rejected_with_its_reason(payload, reason):
    with pytest.raises(PayloadError) as e:
        decode(payload)
    assert e.value.reason == reason


def test_a_two_lead_packet_is_two_chunks_of_the_same_samples_in_every_repair():
    """The second lead rides with the first through reordering, duplicates and gaps: the same start, reset and
    missing, ``lead=1``."""
    ds = DeviceStream("d", reorder=2)
    pk = [decode(encode_leads("int16", "d", s, 250.0, 100.0 + s * 62 / 250, {"II": SIG, "V": -SIG}))
          for s in (0, 2, 1, 1, 6, 7, 8, 9)]
    out = [c for p in pk for c in ds.push(p)]
    first, second = [c for c in out if c.lead == 0], [c for c in out if c.lead == 1]
    assert [(c.start, c.reset, c.missing) for c in first] == [(c.start, c.reset, c.missing) for c in second]
    assert [c.start for c in first] == [0, 62, 124, 372, 434, 496, 558]
    assert [c.missing for c in first] == [0, 0, 0, 3 * 62, 0, 0, 0]
    np.testing.assert_allclose(second[0].samples, -first[0].samples)


def test_a_device_that_changes_its_leads_is_counted_and_a_second_lead_it_stops_sending_is_lost():
    """A second lead the device stops sending is that lead's signal loss (NaN chunks, ``lead=1``), not its last
    verdicts standing (they would hold the first lead's asystole); a primary lead of another name restarts the bed's
    detector (``reset``), a second lead of another name the second lead's; every change of the lead set is counted
    (``lead_change``; the monitor's summary: ``lead_changes`` and ``streams_by``)."""
    ds = DeviceStream("d")
    sets = [{"II": SIG, "V": -SIG}, {"II": SIG}, {"II": SIG}, {"V1": SIG}, {"II": SIG, "V5": SIG},
            {"II": SIG, "V": SIG}]
    out = [ds.push(decode(encode_leads("int16", "d", s, 250.0, 100.0 + s * 62 / 250, leads)))
           for s, leads in enumerate(sets)]
    assert [[c.lead for c in cs] for cs in out] == [[0, 1]] * 6
    assert all(np.isnan(cs[1].samples).all() for cs in out[1:4])  # II alone, then V1 alone: the second lead lost
    assert not np.isnan(out[4][1].samples).any()
    assert [cs[0].reset for cs in out] == [False, False, False, True, True, False]  # II -> V1 -> II: restarts
    assert [cs[1].reset for cs in out] == [False, False, False, True, True, True]  # ... and V5 -> V
    assert ds.counts["lead_change"] == 4  # II+V -> II, II -> V1, V1 -> II+V5, II+V5 -> II+V
    assert [c.start for cs in out for c in cs if c.lead == 0] == [62 * s for s in range(6)]  # no sample lost
    one = DeviceStream("e")  # a device that never sent a second lead gets none made up
    assert [c.lead for c in one.push(decode(encode_leads("int16", "e", 0, 250.0, 100.0, {"II": SIG})))] == [0]


@pytest.mark.parametrize("fmt", ["json", "int16", "float32"])
def test_a_device_can_say_its_samples_are_simulated_in_every_format(fmt):
    assert not decode(encode(fmt, "bed01", 1, 250.0, 10.0, SIG)).simulated  # a patient's, unless it says so
    assert decode(encode(fmt, "bed01", 1, 250.0, 10.0, SIG, simulated=True)).simulated
    blobs = [encode(fmt, "bed01", i, 250.0, 10.0 + i, SIG, simulated=i % 2 == 1) for i in range(6)]
    got = decode_many(blobs)  # the batched decoder reads the flag too
    assert [p.simulated for p in got if not isinstance(p, PayloadError)] == [False, True] * 3


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
    for bad in ("bed01\n", ".", "..", "-_."):  # a trailing newline; no letter or digit
        assert device_from_topic(f"ecg/{bad}/samples", "ecg/+/samples") is None, bad
    assert device_from_topic("ecg/bed.01-a_b/samples", "ecg/+/samples") == "bed.01-a_b"


def _pkts(seqs, fs=250.0):
    return [decode(encode("float32", "d", s, fs, 100.0 + s * 62 / fs, SIG)) for s in seqs]


def test_stream_orders_drops_duplicates_and_repairs_reordering():
    ds = DeviceStream("d", reorder=4)
    out = [c for p in _pkts([0, 2, 1, 1, 3, 0, 4]) for c in ds.push(p)]
    assert [round((c.t0 - 100.0) * 250 / 62) for c in out] == [0, 1, 2, 3, 4]  # in seq order
    assert [c.start for c in out] == [0, 62, 124, 186, 248]
    assert not any(c.reset for c in out)
    assert ds.counts["duplicate"] == 2 and ds.counts["out_of_order"] == 1


def test_a_gap_beyond_the_reorder_window_resets_and_keeps_time():
    ds = DeviceStream("d", reorder=2)
    out = [c for p in _pkts([0, 1, 5, 6, 7, 8]) for c in ds.push(p)]
    assert [round((c.t0 - 100.0) * 250 / 62) for c in out] == [0, 1, 5, 6, 7, 8]
    assert [c.reset for c in out] == [False, False, True, False, False, False]
    assert out[2].start == 5 * 62  # sample index follows the packet time across the gap
    assert ds.counts["gap"] == 1 and ds.counts["lost_chunks"] == 3
    # the chunk after the gap says how many samples were lost (the monitor bridges a short run of them)
    assert [c.missing for c in out] == [0, 0, 3 * 62, 0, 0, 0]


def test_a_lost_packet_is_declared_lost_after_reorder_s_of_arrivals_not_only_after_reorder_packets():
    """On a lossy link a device's analysis must not run ``reorder`` packets late after every lost one (2 s at 8 x
    0.25 s): once the first packet held behind the gap has waited ``reorder_s`` (arrival time), the gap is
    declared; a packet that comes in that time still repairs the order."""
    ds = DeviceStream("d", reorder=8, reorder_s=0.5)
    arrivals = {0: 0.0, 1: 0.25, 3: 0.75, 4: 1.0, 5: 1.25, 6: 1.5}
    released = {seq: [c.start // 62 for c in ds.push(p, arrivals[seq])] for seq, p in
                zip(arrivals, _pkts(list(arrivals)), strict=True)}
    assert released == {0: [0], 1: [1], 3: [], 4: [], 5: [3, 4, 5], 6: [6]}  # declared 0.5 s after 3 arrived
    assert ds.counts["lost_chunks"] == 1 and ds.counts["out_of_order"] == 0  # a loss is no reordering
    late = DeviceStream("d", reorder=8, reorder_s=0.5)  # the missing packet comes 0.25 s late: order repaired
    got = [c for seq, t in ((0, 0.0), (2, 0.5), (1, 0.75), (3, 0.8)) for c in late.push(_pkts([seq])[0], t)]
    assert [c.start // 62 for c in got] == [0, 1, 2, 3] and not any(c.reset for c in got)
    assert late.counts["out_of_order"] == 1
    counted = DeviceStream("d", reorder=8)  # no arrival times: by count alone, as before
    assert [c for p in _pkts([0, 1, 3, 4, 5]) for c in counted.push(p, 9.0)][2:] == []


def test_a_change_of_rate_resets_the_stream():
    ds = DeviceStream("d")
    a = ds.push(_pkts([0])[0])
    b = ds.push(decode(encode("float32", "d", 1, 500.0, 100.25, SIG)))
    assert not a[0].reset and b[0].reset and b[0].fs == 500.0 and b[0].missing == 0  # nothing lost: not bridged
    assert ds.counts["fs_change"] == 1


class _Listener:
    def __init__(self):
        self.seen = []

    def rejected(self, device, reason):
        self.seen.append((device, reason))

    def shed(self, device):
        raise AssertionError("nothing is shed here")

    def misread(self, device, seconds):
        self.seen.append((device, f"misread:{seconds:.1f}"))

    def control(self, device, command, args=None):
        self.seen.append((device, f"control:{command}" + (f":{sorted(args.items())}" if args else "")))
        return device == "bed07"  # the only bed that can learn again here


def test_control_topic_carries_relearn_to_the_monitor_and_rejects_anything_else():
    listener = _Listener()
    src = MqttSource(BrokerConfig())
    src.attach(listener)
    ing = src.ingress
    assert ing.handle("ecg/bed07/control", b'{"cmd": "relearn"}') == []
    assert listener.seen == [("bed07", "control:relearn")] and ing.commands["relearn"] == 1
    for bad in (b"relearn", b'{"cmd": "reboot"}', b'["relearn"]', b"\xff"):
        assert ing.handle("ecg/bed07/control", bad) == []
    assert ing.rejected[("bed07", "bad-control")] == 4
    ing.handle("ecg/bed08/control", b'{"cmd": "relearn"}')  # the monitor could not carry it out
    assert ing.rejected[("bed08", "control-relearn-refused")] == 1 and ing.commands["relearn"] == 1
    assert ing.summary()["commands"] == {"relearn": 1}
    # heart-rate limits for one bed, with their arguments
    ing.handle("ecg/bed07/control", b'{"cmd": "limits", "low": 45, "high": 130}')
    assert listener.seen[-1] == ("bed07", "control:limits:[('high', 130), ('low', 45)]")
    # a command that would change nothing, or that says two things, is refused, not counted as carried out (a
    # fuzzer's, session 38: a typo 'lo' and a limits without limits were counted; a key given twice ran the last)
    n = sum(w.startswith("control:") for _, w in listener.seen)
    for bad in (b'{"cmd": "limits", "lo": 45}', b'{"cmd": "limits"}', b'{"cmd": "relearn", "cmd": "limits"}',
                b'{"cmd": "relearn", "low": 45}', b'{"cmd": "limits", "low": 45, "low": 50}'):
        assert ing.handle("ecg/bed07/control", bad) == []
    assert sum(w.startswith("control:") for _, w in listener.seen) == n
    assert ing.rejected[("bed07", "bad-control")] == 9
    assert ing.commands["limits"] == 1
    off = MqttSource(BrokerConfig(control_topic=None))
    off.attach(listener)
    assert off.ingress.handle("ecg/bed07/control", b'{"cmd": "relearn"}') == []
    assert off.ingress.rejected[("(topic ecg/bed07/control)", "unknown-topic")] == 1  # commands turned off


def test_ingress_counts_rejections_per_device_and_never_raises():
    listener = _Listener()
    src = MqttSource(BrokerConfig())
    src.attach(listener)
    src = src.ingress
    seen = listener.seen
    for payload, _ in CORPUS:
        assert src.handle("ecg/bed07/samples", payload) == []
    assert src.handle("other/topic", payload_json()) == []
    assert src.handle("ecg/" + "x" * 300 + "/samples", payload_json()) == []
    assert src.handle("ecg/bed08/samples", payload_json(device="bed09")) == []
    assert src.handle("ecg/bed07/labels", b"garbage") == []
    assert src.handle("ecg/bed07/labels", b'{"beats": [[1.0, 9, 0]]}') == []  # ECG5000 classes are 1..5
    assert len(seen) == len(CORPUS) + 5
    assert sum(src.rejected.values()) == len(seen)
    assert src.rejected[("bed07", "bad-json")] == 2
    assert src.rejected[("(topic other/topic)", "unknown-topic")] == 1
    assert src.rejected[("(topic ecg/" + "x" * 56 + "...)", "topic-too-long")] == 1
    assert src.handle("ecg/bed07/samples", payload_json(seq=0, device="bed07"))[0].patient == "bed07"


def test_topics_that_name_no_device_are_told_apart_by_their_topic():
    """Six devices configured with topics that name no device ('ecg/dev 01/samples', 'ecg/d\u00e9v/samples', ...) were
    all counted as one '(unknown)': nobody could tell which to fix (a newcomer, session 26).  Each is counted under
    its own topic (escaped, its first 60 characters), the first 100 of them; beyond that under '(unknown)'."""
    src = MqttSource(BrokerConfig()).ingress
    for topic in ("ecg/dev 01/samples", "ecg/d\u00e9v/samples", "ecg//samples", "ecg/a\u202eb/samples"):
        assert src.handle(topic, payload_json()) == []
    by = src.summary()["rejected_by"]
    assert set(by) == {"(topic ecg/dev 01/samples)", "(topic ecg/d\\xe9v/samples)", "(topic ecg//samples)",
                       "(topic ecg/a\\u202eb/samples)"}
    for k in range(150):
        src.handle(f"rogue/{k}", payload_json())
    assert src.rejected[("(unknown)", "unknown-topic")] == 54 and len(src._unknown_names) == 100


# --------------------------------------------------------------------------- device reboots and implausible t0


def _pkt(seq, t0, fs=250.0):
    return decode(encode("float32", "d", seq, fs, t0, SIG))


def test_a_reboot_with_the_clock_going_on_is_a_new_stream_at_once():
    ds = DeviceStream("d", reorder=8)
    dur = 62 / 250
    before = [c for k in range(120) for c in ds.push(_pkt(k, 1000.0 + k * dur))]
    # silent for 8 chunks (about 2 s), then the counter starts again at 0 while the clock carries on
    after = [c for k in range(128, 140) for c in ds.push(_pkt(k - 128, 1000.0 + k * dur))]
    assert len(before) == 120 and len(after) == 12  # every packet after the reboot released at once
    assert after[0].reset and not any(c.reset for c in after[1:])
    assert after[0].start == 128 * 62  # the sample index follows the clock across the real gap
    assert [c.start for c in after] == [62 * k for k in range(128, 140)]
    assert ds.counts["reboot"] == 1 and ds.counts["duplicate"] == 0
    # a true duplicate (same seq, same t0) and a late old packet are still dropped
    assert ds.push(_pkt(5, 1000.0 + 133 * dur)) == [] and ds.push(_pkt(3, 1000.0 + 131 * dur)) == []
    assert ds.counts["duplicate"] == 2 and ds.counts["reboot"] == 1


def test_a_reboot_with_counter_and_clock_both_restarted_continues_the_samples():
    ds = DeviceStream("d", reorder=8)
    dur = 62 / 250
    for k in range(50):
        ds.push(_pkt(k, 5000.0 + k * dur))
    after = [c for k in range(10) for c in ds.push(_pkt(k, 3.0 + k * dur))]  # uptime clock from 3 s again
    assert len(after) == 10 and after[0].reset and ds.counts["reboot"] == 1
    assert [c.start for c in after] == [62 * (50 + k) for k in range(10)]  # no negative or overlapping indices


def test_a_reboot_onto_the_same_uptime_clock_is_told_from_duplicates_by_its_samples():
    """A device stamping its packets with its uptime gives them the same seq and t0 after a reboot (K10's kind)."""
    ds = DeviceStream("d", reorder=8)
    dur = 62 / 250
    rng = np.random.default_rng(3)
    sig = [rng.normal(size=62).astype(np.float32) for _ in range(200)]

    def pkt(seq, k):  # the k-th 0.25 s of signal, sent as seq at the uptime clock of seq
        return decode(encode("float32", "d", seq, 250.0, 5.0 + seq * dur, sig[k]))

    before = [c for k in range(120) for c in ds.push(pkt(k, k))]
    assert ds.push(pkt(7, 7)) == [] and ds.counts["duplicate"] == 1  # the same payload again: a duplicate
    after = [c for k in range(120, 160) for c in ds.push(pkt(k - 120, k))]  # rebooted, no gap
    assert len(before) == 120 and len(after) == 40  # every packet after the reboot released at once
    assert after[0].reset and not any(c.reset for c in after[1:]) and ds.counts["reboot"] == 1
    assert [c.start for c in after] == [62 * k for k in range(120, 160)]  # the samples continue
    assert ds.push(pkt(3, 123)) == [] and ds.counts["duplicate"] == 2  # the new stream's own duplicate


def test_a_monitor_joining_a_running_device_numbers_its_samples_as_the_device_does():
    """The monitor starts (or restarts) while a device has been sending for 10 s (packets of 62 samples from seq
    0): its first packet is seq 40, so its samples start at 40 x 62, the index one monitor that saw the device
    start gives them; after a reboot (silent for 2 s, seq from 0 again, the clock going on) the index follows the
    device's clock across the real gap.  Beat and alarm lines of two monitors thus agree on a sample's index."""
    dur = 62 / 250
    late, early = DeviceStream("d", reorder=8), DeviceStream("d", reorder=8)
    got = {id(late): [], id(early): []}
    for k in range(200):
        if 120 <= k < 128:
            continue  # rebooting
        seq = k if k < 120 else k - 128
        for ds in (early, late) if k >= 40 else (early,):
            got[id(ds)] += ds.push(_pkt(seq, 1000.0 + k * dur))
    a, b = got[id(late)], got[id(early)]
    assert a[0].start == 40 * 62 and not a[0].reset
    assert [c.start for c in a] == [c.start for c in b[40:]]
    assert [c.start for c in a if c.reset] == [128 * 62] and late.counts["reboot"] == 1


def test_counters_say_what_happened_late_start_packets_a_counter_jump_and_lost_packets():
    """A stream's first packets arriving out of order (blocks of 8 reversed): the ones older than the first released
    are late, not duplicates (they were never seen).  A counter that jumps ahead by 1000 with the clock going on
    loses nothing: no gap, no reset (it counted 1000 lost chunks and restarted the segmenter).  Two packets missing
    are two lost chunks."""
    dur = 62 / 250
    ds = DeviceStream("d", reorder=8)
    order = [7, 6, 5, 4, 3, 2, 1, 0, *range(8, 20)]
    out = [c for k in order for c in ds.push(_pkt(k, 100.0 + k * dur))]
    assert ds.counts["late"] == 7 and ds.counts["duplicate"] == 0 and [c.start for c in out] == [62 * k
                                                                                                 for k in range(7, 20)]
    jump = DeviceStream("d", reorder=8)
    out = [c for k in range(40) for c in jump.push(_pkt(k + (1000 if k >= 20 else 0), 100.0 + k * dur))]
    assert len(out) == 40 and not any(c.reset for c in out) and jump.counts["seq_jump"] == 1
    assert jump.counts["lost_chunks"] == 0 and [c.start for c in out] == [62 * k for k in range(40)]
    lossy = DeviceStream("d", reorder=8)
    out = [c for k in range(40) if k not in (20, 21) for c in lossy.push(_pkt(k, 100.0 + k * dur))]
    assert lossy.counts["lost_chunks"] == 2 and lossy.counts["gap"] == 1 and sum(c.reset for c in out) == 1


@pytest.mark.parametrize("width", [2**8, 2**16, 2**32, 2**64])  # 2**64: the binary contract's uint64 (session 26)
def test_a_counter_that_wraps_round_goes_on_without_a_reset(width):
    ds = DeviceStream("d", reorder=8)
    dur = 62 / 250
    seqs = [(width - 30 + k) % width for k in range(60)]
    # one packet late across the wrap (the last before it arrives after the first after it)
    order = list(range(60))
    order[29], order[30] = order[30], order[29]
    out = [c for k in order for c in ds.push(_pkt(seqs[k], 1000.0 + k * dur))]
    # numbered from the device's counter at the first packet (seq x samples; from 0 beyond MAX_FIRST), on across
    # the wrap
    first = 62 * (width - 30) if 62 * (width - 30) < DeviceStream.MAX_FIRST else 0
    assert [c.start for c in out] == [first + 62 * k for k in range(60)]
    assert not any(c.reset for c in out)
    assert ds.counts["wrap"] == 1 and ds.counts["reboot"] == 0 and ds.counts["duplicate"] == 0
    # a reboot after the wrap is still one (the clock going on, the counter from 0 again past a silent gap)
    after = [c for k in range(70, 75) for c in ds.push(_pkt(k - 70, 1000.0 + k * dur))]
    assert after[0].reset and ds.counts["reboot"] == 1


def test_t0_not_plausible_as_seconds_is_rejected_per_packet_and_kept_out_of_latency():
    ing = Ingress(topic="ecg/+/samples", labels_topic=None)
    now = time.time()
    ok = encode("json", "d", 0, 250.0, now - 0.5, SIG)
    assert len(ing.handle("ecg/d/samples", ok)) == 1
    for seq, t0 in ((1, now * 1000), (2, now * 1e6), (3, now + 10 * 86400), (4, now - 30 * 86400)):
        assert ing.handle("ecg/d/samples", encode("json", "d", seq, 250.0, t0, SIG)) == []
    assert dict(ing.rejected) == {("d", "t0-not-seconds"): 2, ("d", "t0-future"): 1, ("d", "t0-past"): 1}
    assert ing.input_lag() < 1.0  # the rejected packets never reach the latency figures
    dev = Ingress(topic="ecg/+/samples", labels_topic=None)  # a device's own clock (seconds since it started)
    assert len(dev.handle("ecg/d/samples", encode("json", "d", 0, 250.0, 12.5, SIG))) == 1 and not dev.rejected


def test_two_devices_under_one_id_are_refused_as_an_unstable_stream_until_one_is_left():
    """Two devices configured with the same id (two patients under one bed) interleave their counters and clocks:
    every other packet restarts the stream (a 'reboot'), and the bed's samples alternate between two people.
    After UNSTABLE_N restarts within UNSTABLE_S s every packet of the id is refused (counted, reason named) until
    UNSTABLE_S s pass without one; the bed then starts again. A device that reboots once is never refused."""
    fs, n = 250.0, 62
    ing = Ingress(topic="ecg/+/samples", labels_topic=None)
    ing.UNSTABLE_S = 1.0  # (seconds of arrivals: the test's packets arrive in a few ms)
    now = time.time() - 20.0
    out = []
    for k in range(40):
        t = now + k * n / fs
        out += ing.handle("ecg/d/samples", encode("float32", "d", 5000 + k, fs, t, np.zeros(n, np.float32)))
        out += ing.handle("ecg/d/samples", encode("float32", "d", 10 + k, fs, t + 0.01, np.ones(n, np.float32)))
    assert ing.rejected[("d", Ingress.UNSTABLE)] >= 70  # all but the first few packets
    assert ing.summary()["streams_by"]["d"]["reboot"] >= 39  # which device, and why
    assert len(out) <= 2 * Ingress.UNSTABLE_N
    time.sleep(1.1)  # the second device is switched off: one stream, stable again
    later = [c for k in range(40, 48) for c in ing.handle(
        "ecg/d/samples", encode("float32", "d", 5000 + k, fs, now + k * n / fs, np.zeros(n, np.float32)))]
    assert later and later[0].reset and not any(c.reset for c in later[1:]) and not later[0].samples.any()
    once = Ingress(topic="ecg/+/samples", labels_topic=None)  # one reboot: a new stream at once, nothing refused
    got = [c for k in range(8) for c in once.handle("ecg/e/samples", encode(
        "float32", "e", (k if k < 4 else k - 4), fs, now + k * n / fs, np.ones(n, np.float32)))]
    assert len(got) == 8 and sum(c.reset for c in got) == 1 and not once.rejected


def test_a_device_whose_stated_rate_contradicts_its_clock_is_refused_and_a_true_one_never():
    """A device that states 250 Hz but sends 500 Hz samples (124 samples a packet, its clock advancing 0.248 s): read
    at 250 Hz its heart rate would be half the true one (MIT-BIH 119 at 33 bpm, a false extreme bradycardia).  Its
    packets are refused (fs-clock-mismatch) once two windows of 17 consecutive packets disagree; so are 300 Hz stated
    as 250 and a device whose seq counts samples; put right, the device is accepted again and its bed starts again.
    Clock jitter of +-20 ms (also on 40 ms packets) and of half a packet (+-124 ms on 0.248 s packets: the median of
    neighbours' ratios refused a third of such a device's packets, a newcomer in session 26), stamps rounded down to a
    15.625 ms clock tick on 0.1 s packets (all refused before), 0.5 % drift, an NTP step of 1 s and a rate change the
    clock agrees with are never refused."""
    rng = np.random.default_rng(0)
    now = time.time() - 60.0

    def play(dev, fs, n, period, k0=0, k1=40, *, seq_step=1, ing=None):
        ing = ing or Ingress(topic="ecg/+/samples", labels_topic=None)
        out = [c for k in range(k0, k1) for c in ing.handle(f"ecg/{dev}/samples", encode(
            "float32", dev, k * seq_step, fs, now + k * period, np.full(n, k % 2, np.float32)))]
        return ing, out

    for dev, fs, n, period, step in (("w", 250.0, 124, 0.248, 1), ("x", 250.0, 75, 0.25, 1),  # 500 / 300 Hz
                                     ("s", 250.0, 124, 0.248, 124)):  # a seq that counts samples
        ing, got = play(dev, fs, n, period, k1=80, seq_step=step)
        assert ing.rejected[(dev, Ingress.PACE)] >= 40, (dev, ing.rejected)  # from about 8 s of its clock on
        assert len(got) <= 35
    ing, _ = play("w", 250.0, 124, 0.248, k1=80)
    _, fixed = play("w", 500.0, 124, 0.248, 80, 100, ing=ing)  # put right
    assert fixed and fixed[0].reset and len(fixed) == 20
    for n, jitter in ((62, 0.02), (10, 0.02), (62, 0.124)):  # +-20 ms on 0.25 s and on 40 ms packets; half a packet
        ok = Ingress(topic="ecg/+/samples", labels_topic=None)
        t, out = now, []
        for k in range(400):
            fs = 250.0 if k < 200 else 360.0  # a rate change the clock agrees with
            m = n if k < 200 else round(n * 1.44)
            step = 1.0 if k == 100 else 0.0  # one stamp off by a second
            if k == 300:
                t += 1.0  # an NTP step
            out += ok.handle("ecg/g/samples", encode("float32", "g", k, fs, t + rng.uniform(-jitter, jitter) + step,
                                                     np.zeros(m, np.float32)))
            t += m / fs * 1.005  # 0.5 % drift
        assert not ok.rejected, (n, jitter, ok.rejected)
    tick = Ingress(topic="ecg/+/samples", labels_topic=None)  # 0.1 s packets stamped by a 15.625 ms clock tick
    got = [c for k in range(300) for c in tick.handle("ecg/q/samples", encode(
        "float32", "q", k, 250.0, np.floor((now + k * 0.1) / 0.015625) * 0.015625, np.zeros(25, np.float32)))]
    assert not tick.rejected and len(got) == 300


def test_a_wrong_stated_rate_is_found_over_a_link_that_loses_packets_and_a_true_one_is_never_refused():
    """The rate check's windows bridge lost packets (a sample counter exactly, a packet counter as packets of the
    window's one size): a device stating 250 Hz for 500 Hz samples over a link losing 25 % of its packets was never
    refused in 36 s (windows of 17 consecutive packets came about once in 130 s) and kept its false extreme
    bradycardia (session 39's newcomer).  A truthful device over the same link, with +-60 ms of jitter, or whose
    packets vary in size (a lost one of another size among them, too), or that pauses its acquisition, is never
    refused."""
    rng = np.random.default_rng(3)
    now = time.time() - 120.0

    def play(dev, fs, sizes, period_of, *, seq_of, keep, jitter=0.0):
        ing = Ingress(topic="ecg/+/samples", labels_topic=None)
        t, got, first = now, 0, None
        for k, n in enumerate(sizes):
            if keep[k]:
                stamp = t + rng.uniform(-jitter, jitter)
                out = ing.handle(f"ecg/{dev}/samples", encode("float32", dev, seq_of(k), fs, stamp,
                                                              np.zeros(n, np.float32)))
                got += len(out)
                if first is None and ing.rejected[(dev, Ingress.PACE)]:
                    first = k
            t += period_of(n)
        return ing, got, first

    lossy = rng.random(160) >= 0.25  # 25 % lost, at random
    lossy[:2] = True
    for dev, count in (("p", lambda k: k), ("s", lambda k: k * 124)):  # seq counts packets / samples
        ing, _, first = play(dev, 250.0, [124] * 160, lambda n: n / 500.0, seq_of=count, keep=lossy)
        # found within about 12 s of its clock (two windows of 17 packets received, the losses bridged)
        assert first is not None and first * 0.248 <= 14.0, (dev, first, ing.rejected)
        assert ing.rejected[(dev, Ingress.PACE)] >= 60, ing.rejected
    # stating twice its rate (500 Hz for 250 Hz samples: t0 a step late per packet, not a pause): found too; and four
    # times (500 for 125: every packet 0.75 s late, which a pause rule without the device's pace took for pauses,
    # never refused: a reviewer, session 40)
    ing, _, first = play("h", 500.0, [62] * 160, lambda n: n / 250.0, seq_of=lambda k: k, keep=lossy)
    assert first is not None and ing.rejected[("h", Ingress.PACE)] >= 60, ing.rejected
    ing, _, first = play("q", 500.0, [125] * 120, lambda n: n / 125.0, seq_of=lambda k: k, keep=[True] * 120)
    assert first is not None and ing.rejected[("q", Ingress.PACE)] >= 60, ing.rejected
    truthful = play("t", 250.0, [62] * 400, lambda n: n / 250.0, seq_of=lambda k: k, keep=rng.random(400) >= 0.25,
                    jitter=0.06)
    assert not truthful[0].rejected, truthful[0].rejected
    sizes = rng.integers(40, 90, 400).tolist()  # packets of varying size, seq counting packets: a loss is not bridged
    varying = play("v", 250.0, sizes, lambda n: n / 250.0, seq_of=lambda k: k, keep=rng.random(400) >= 0.25)
    assert not varying[0].rejected, varying[0].rejected
    # a packet of another size lost: bridged as one of the others, the window is off; its consecutive packets are not
    # (a reviewer, session 40: a 75-sample catch-up packet among 25-sample ones, always lost, was refused)
    sizes2 = [75 if k % 10 == 9 else 25 for k in range(2000)]
    catchup = play("k", 250.0, sizes2, lambda n: n / 250.0, seq_of=lambda k: k, keep=[n != 75 for n in sizes2])
    assert not catchup[0].rejected, catchup[0].rejected
    sizes3 = [50 if k % 10 == 9 else 25 for k in range(2000)]  # ... and 50 among 25, a quarter of all lost
    mixed = play("m", 250.0, sizes3, lambda n: n / 250.0, seq_of=lambda k: k, keep=rng.random(2000) >= 0.25)
    assert not mixed[0].rejected, mixed[0].rejected
    # a device that sends a short packet and pauses its acquisition 0.5 s every 20 packets, its counter going on
    # (a reviewer, session 40: refused in 1 seed of 5 before the change, 4 with the first bridging)
    for seed in range(5):
        r = np.random.default_rng(seed)
        sizes4 = [10 if k % 20 == 19 else 50 for k in range(1500)]
        paused = play("z", 250.0, sizes4, lambda n: n / 250.0 + (0.5 if n == 10 else 0.0), seq_of=lambda k: k,
                      keep=r.random(1500) > 0.2)
        assert not paused[0].rejected, (seed, paused[0].rejected)
    starts = np.cumsum([0, *sizes[:-1]])  # ... and by a sample counter, exactly
    counted = play("c", 250.0, sizes, lambda n: n / 250.0, seq_of=lambda k: int(starts[k]),
                   keep=rng.random(400) >= 0.25, jitter=0.06)
    assert not counted[0].rejected, counted[0].rejected


def test_new_devices_past_the_limit_are_refused_and_named_within_bounds():
    """A firmware that puts a boot counter into its id left a bed (~220 KB, a signal-loss alarm) per id for good (a
    newcomer, session 39: 600 ids, 130 MB).  Past ``max_devices`` a new device's packets are refused
    (too-many-devices) and counted, by name for the first REJECTED_NAMED of them and under one name after; the
    devices already taken go on.  Made-up ids with malformed payloads are counted within the same bound (each was a
    count of its own, without bound), a slot freed when its device gets a stream."""
    now = time.time()
    ing = Ingress(topic="ecg/+/samples", labels_topic=None, max_devices=3)
    got: collections.Counter[str] = collections.Counter()
    for k in range(4):
        for d in range(3 + Ingress.REJECTED_NAMED + 50 if k == 0 else 3):
            dev = f"boot{d:05d}"
            got.update(c.patient for c in ing.handle(f"ecg/{dev}/samples", encode(
                "float32", dev, k, 250.0, now + k * 0.248, np.zeros(62, np.float32))))
    assert set(got) == {"boot00000", "boot00001", "boot00002"} and all(v == 4 for v in got.values()), got
    assert len(ing.streams) == 3
    over = {d: n for (d, r), n in ing.rejected.items() if r == Ingress.TOO_MANY}
    assert len(over) == Ingress.REJECTED_NAMED + 1 and over[Ingress.MORE_DEVICES] == 50, len(over)
    assert ing.summary()["rejected"] == Ingress.REJECTED_NAMED + 50
    junk = Ingress(topic="ecg/+/samples", labels_topic=None)
    for d in range(Ingress.REJECTED_NAMED + 400):
        assert junk.handle(f"ecg/x{d}/samples", b"{not json") == []
    assert len({dev for dev, _ in junk.rejected}) == Ingress.REJECTED_NAMED + 1
    assert junk.summary()["rejected"] == Ingress.REJECTED_NAMED + 400
    assert junk.rejected[(Ingress.MORE_DEVICES, "bad-json")] == 400
    # a slot is freed when its device gets a stream: 3 beds that each began with a malformed packet, then a device
    # whose clock was reset to 2000 is still named (a reviewer, session 40: the slots were never freed, and such a
    # device was counted, and told to the monitor's alarms, as "(more devices)")
    few = Ingress(topic="ecg/+/samples", labels_topic=None)
    few.REJECTED_NAMED = 3
    for d in range(3):
        few.handle(f"ecg/bed{d}/samples", b"{not json")
        assert few.handle(f"ecg/bed{d}/samples", encode("float32", f"bed{d}", 0, 250.0, now, np.zeros(62, np.float32)))
    few.handle("ecg/icu7/samples", encode("float32", "icu7", 0, 250.0, 946_684_900.0, np.zeros(62, np.float32)))
    assert few.rejected[("icu7", "t0-past")] == 1 and (Ingress.MORE_DEVICES, "t0-past") not in few.rejected
    unlimited = Ingress(topic="ecg/+/samples", labels_topic=None)  # 0: no limit (the class's default)
    for d in range(300):
        unlimited.handle(f"ecg/d{d}/samples", encode("float32", f"d{d}", 0, 250.0, now, np.zeros(62, np.float32)))
    assert len(unlimited.streams) == 300 and not unlimited.rejected


def test_a_device_that_states_its_measured_rate_is_one_stream():
    """A device that states its measured sampling rate (250.001, then 250, or 250 +- 0.05 Hz from packet to packet)
    was a new stream at every change: its bed restarted its QRS detection at every packet, found no beat and showed
    signal loss for ever (a newcomer, session 26).  Rates within 0.5 % are one rate (``fs_wobbles`` counted); a real
    change (250 -> 256 Hz) still restarts the stream."""
    rng = np.random.default_rng(1)
    now = time.time() - 60.0
    ing = Ingress(topic="ecg/+/samples", labels_topic=None)
    out = []
    for k in range(200):
        fs = (250.0 + rng.uniform(-0.05, 0.05)) if k % 3 else 250.001
        out += ing.handle("ecg/m/samples", encode("float32", "m", k, fs, now + k * 0.248, np.zeros(62, np.float32)))
    assert len(out) == 200 and not any(c.reset for c in out[1:]) and not ing.rejected
    assert {c.fs for c in out} == {out[0].fs} and out[-1].start == 199 * 62
    summ = ing.summary()
    assert summ["fs_changes"] == 0 and summ["fs_wobbles"] == 133  # those not stated as the first, 250.001
    more = ing.handle("ecg/m/samples", encode("float32", "m", 200, 256.0, now + 200 * 0.248, np.zeros(62, np.float32)))
    assert more[0].reset and more[0].fs == 256.0 and ing.summary()["fs_changes"] == 1


def test_a_second_lead_renamed_after_lost_packets_is_not_bridged_to_the_old_one():
    """Packet 1 lost, and from packet 2 the second lead is V5, not V: the first lead's chunk after the gap says how
    many samples are missing (bridged), the second lead's says none (another signal: restarted, not a line drawn
    from V's last sample to V5's first; a reviewer, session 25)."""
    ds = DeviceStream("d")
    out = []
    for s in [0, *range(2, 12)]:
        leads = {"II": SIG, "V": -SIG} if s == 0 else {"II": SIG, "V5": SIG}
        out += ds.push(decode(encode_leads("int16", "d", s, 250.0, 100.0 + s * 62 / 250, leads)))
    after = [c for c in out if c.start == 124]
    assert [(c.lead, c.reset, c.missing) for c in after] == [(0, True, 62), (1, True, 0)], after


def test_a_device_sending_faster_than_real_time_is_refused_only_while_the_real_time_beds_are_late():
    """Fair share (``FairShare``; a fuzzer in session 38: one device publishing 15,000 packets a second took 20 s of
    monitoring from every other bed, the broker dropping their packets, and nothing named it).  A device far past
    real time is taken while the monitor keeps up (a recording streamed at full speed is a legitimate input).  One
    real-time device late alone (its clock stepped, a slow packet) or a device catching up a backlog is no monitor
    behind (a reviewer, session 39: either got innocent recordings refused for the rest of their streams).  Once every
    real-time device is late, the fast one is refused (``too-fast``, counted for it), its packets no longer decoded,
    until the monitor has kept up for ``readmit_s`` (doubled when it is refused again soon after); its bed then
    starts again, and it is held to its share (taken back whole, a flooder brought the monitor behind again and the
    real-time beds lost their samples for 2-3 s).  The real-time devices are never refused."""
    wall = [time.time() - 600.0]
    cfg = FairShare()
    ing = Ingress(topic="ecg/+/samples", labels_topic=None, share=cfg, clock=lambda: wall[0])
    sig = np.zeros(62, np.float32)
    fast = {"t0": wall[0], "seq": 0}
    start_wall, real = wall[0], {"g1": 0, "g2": 0}  # the real-time devices' clocks start here; their next packet
    got: dict[str, list] = {"g1": [], "g2": [], "f": [], "b": []}

    def tick(lag1: float = 0.0, lag2: float = 0.0, fast_packets: int = 40, payload: bytes | None = None,
             backlog: list[float] = ()) -> None:
        wall[0] += 0.248
        for _ in range(fast_packets):
            got["f"] += ing.handle("ecg/f/samples", payload or encode("float32", "f", fast["seq"], 250.0, fast["t0"],
                                                                      sig))
            fast["t0"] += 0.248
            fast["seq"] += 1
        for dev, lag in (("g1", lag1), ("g2", lag2)):
            # its packets on its own clock, each arriving once complete and ``lag`` more: a late one is held back,
            # and those held come together at the next tick (the monitor catching up)
            while real[dev] * 0.248 + 0.248 <= wall[0] - start_wall - lag + 1e-9:
                got[dev] += ing.handle(f"ecg/{dev}/samples", encode("float32", dev, real[dev], 250.0,
                                                                    start_wall + real[dev] * 0.248, sig))
                real[dev] += 1
        for t0 in backlog:  # a device sending what it stored during an outage, then in real time
            k = len(got["b"])
            got["b"] += ing.handle("ecg/b/samples", encode("float32", "b", k, 250.0, t0, sig))

    def refused() -> int:
        return ing.rejected[("f", Ingress.TOO_FAST)]

    for _ in range(40):  # 10 s: the fast device sends 40 times real time, the real-time devices are on time
        tick()
    assert len(got["f"]) == 1600 and not ing.rejected  # far past its share, but nobody is late: taken
    for _ in range(8):  # one real-time device late alone (its clock stepped back): the monitor is not behind
        tick(lag1=cfg.behind_s + 0.3)
    start = wall[0] - 0.248 * 240  # the backlog device: 60 s stored, sent at once, then in real time
    tick(backlog=[start + 0.248 * k for k in range(240)])
    for _ in range(8):
        tick(backlog=[wall[0] - 0.248])
    assert not ing.rejected and len(got["b"]) == 248  # its backlog taken, its lateness nobody else's
    before = len(got["f"])
    for _ in range(5):  # every real-time device's packets 0.8 s late: the monitor is behind
        tick(lag1=cfg.behind_s + 0.3, lag2=cfg.behind_s + 0.3)
    behind_at, r0 = wall[0], refused()
    assert r0 and len(got["f"]) == before + 5 * 40 - r0  # refused from its first packet after the late ones
    tick()
    tick(payload=b"not a packet")  # not even decoded while refused
    before = len(got["f"])
    assert refused() == r0 + 80 and not ing.rejected[("f", "bad-json")]
    while wall[0] - behind_at < cfg.readmit_s - 0.3:  # the monitor keeps up again: refused for readmit_s
        tick()
    assert len(got["f"]) == before and refused() > 40 * 38
    def taken() -> int:  # its packets taken: released as chunks, or held by the stream for the ones between
        return ing.streams["f"].counts["chunks"] + len(ing.streams["f"].held)

    was = taken()
    for _ in range(8):
        tick()
    back = got["f"][before:]
    assert back and back[0].reset  # taken back: its bed starts again
    # ... held to its share, nobody late: about 2 s of signal a second (2 of its 40 packets a tick), the rest refused
    assert 8 <= taken() - was <= 2 * 8 + 2
    for _ in range(5):  # behind again soon after: refused twice as long
        tick(lag1=cfg.behind_s + 0.3, lag2=cfg.behind_s + 0.3)
    behind_at, before = wall[0], len(got["f"])
    while wall[0] - behind_at < 2 * cfg.readmit_s - 0.3:
        tick()
    assert len(got["f"]) == before
    for _ in range(8):
        tick()
    assert len(got["f"]) > before
    for dev in ("g1", "g2", "b"):
        assert (dev, Ingress.TOO_FAST) not in ing.rejected
    assert set(ing.summary()["rejected_by"]) == {"f"}
    # the packets the monitor refused are not counted as lost by the device's link (streams_by blamed the link)
    assert ing.summary()["lost_chunks"] == 0 and not ing.summary()["streams_by"]
    plain = Ingress(topic="ecg/+/samples", labels_topic=None, clock=lambda: wall[0])  # a source that can pause
    assert len([c for k in range(400) for c in plain.handle(
        "ecg/f/samples", encode("float32", "f", k, 250.0, wall[0] + k * 0.248, sig))]) == 400


def test_labels_waiting_for_samples_that_never_come_stay_bounded():
    """Labels wait for their device's next samples; for a device that sends none (or ids made up on the labels
    topic) they waited without bound (a fuzzer, session 38).  Past MAX_LABELS for a device, or MAX_LABEL_DEVICES
    devices, they are refused (labels-overflow, counted); labels of a device with samples are used as before."""
    import json

    ing = Ingress(topic="ecg/+/samples", labels_topic="ecg/+/labels")
    ing.MAX_LABELS, ing.MAX_LABEL_DEVICES = 50, 3
    batch = json.dumps({"beats": [[float(k), "N", k] for k in range(20)]}).encode()
    for _ in range(4):
        ing.handle("ecg/ghost/labels", batch)
    assert len(ing.pending_labels["ghost"]) == 40 and ing.rejected[("ghost", "labels-overflow")] == 2
    for dev in ("a", "b", "c"):
        ing.handle(f"ecg/{dev}/labels", batch)
    assert "c" not in ing.pending_labels and ing.rejected[("c", "labels-overflow")] == 1
    now = time.time() - 10.0
    got = ing.handle("ecg/a/samples", encode("float32", "a", 0, 250.0, now, np.zeros(62, np.float32)))
    assert got and len(got[0].truth) == 20 and "a" not in ing.pending_labels


def test_a_device_whose_clock_is_not_ours_or_steps_is_counted_and_kept_out_of_latency():
    """A device's clock an hour back, or stepping back an hour and forward twelve, made the monitor-wide end-to-end
    latency an hour (a fuzzer, session 38) and the step went unseen.  A step (the next packet's t0 over 1 s from
    where its stream's pace puts it) is counted (``clock_steps``, ``streams_by``) and the device's delay floor starts
    again; chunks of a device whose smallest packet delay is over 1 s from 0 are marked ``clock_off`` (no e2e
    figure).  With the fair share on, the monitor's input lag is still the least late device's."""
    wall = [time.time() - 60.0]
    start = wall[0]
    ing = Ingress(topic="ecg/+/samples", labels_topic=None, share=FairShare(), clock=lambda: wall[0])
    sig = np.zeros(62, np.float32)
    got: dict[str, list] = {"ok": [], "back": [], "step": [], "late": []}
    for k in range(40):
        wall[0] += 0.248
        t = wall[0] - 0.25  # on time: each packet just complete
        if k < 30:  # its last packets come 2 s late (below)
            got["late"] += ing.handle("ecg/late/samples", encode("float32", "late", k, 250.0, t, sig))
        got["ok"] += ing.handle("ecg/ok/samples", encode("float32", "ok", k, 250.0, t, sig))
        got["back"] += ing.handle("ecg/back/samples", encode("float32", "back", k, 250.0, t - 3600.0, sig))
        off = -3600.0 if 10 <= k < 20 else 43200.0 if k >= 20 else 0.0
        got["step"] += ing.handle("ecg/step/samples", encode("float32", "step", k, 250.0, t + off, sig))
    ing.input_lag()
    for k in range(30, 40):  # late alone: its packets 2 s late (held by its link), the other device's on time
        wall[0] += 0.248
        got["late"] += ing.handle("ecg/late/samples", encode("float32", "late", k, 250.0,
                                                             start + (k + 1) * 0.248 - 0.25, sig))
        got["ok"] += ing.handle("ecg/ok/samples", encode("float32", "ok", k + 10, 250.0, wall[0] - 0.25, sig))
    assert max(ing._lag_by_dev.values()) > 1.5 and ing.input_lag() < 0.1  # the least late device's
    assert not any(c.clock_off for c in got["ok"]) and all(c.clock_off for c in got["back"])
    assert not any(c.clock_off for c in got["step"][:10]) and all(c.clock_off for c in got["step"][10:])
    s = ing.summary()
    assert s["clock_steps"] == 2 and s["streams_by"]["step"] == {"clock_step": 2} and not ing.rejected
    assert s["clock_off"] == ["back", "step"]  # named


def test_a_clock_correction_of_every_real_time_device_is_no_monitor_behind():
    """Every bedside device's clock corrected by 0.8 s (NTP after a drift): each packet after it 0.8 s "later" than
    its stream's usual delay, for good.  Below the 1 s clock-step rule then, the monitor counted as behind for good
    and a 4x recording beside the beds was refused while the monitor kept up (a newcomer, session 39).  A step of
    0.4 s beyond half a packet is a clock step: the floors start again, nothing is refused."""
    wall = [time.time() - 120.0]
    ing = Ingress(topic="ecg/+/samples", labels_topic=None, share=FairShare(), clock=lambda: wall[0])
    sig = np.zeros(62, np.float32)
    start, rec = wall[0], 0
    for k in range(240):  # 60 s; the beds' clocks set back 0.8 s at 20 s
        wall[0] += 0.248
        back = 0.8 if k >= 80 else 0.0
        for dev in ("g1", "g2"):
            ing.handle(f"ecg/{dev}/samples", encode("float32", dev, k, 250.0, start + k * 0.248 - back, sig))
        for _ in range(4):  # a recording at 4x
            ing.handle("ecg/r/samples", encode("float32", "r", rec, 250.0, start + rec * 0.248, sig))
            rec += 1
    assert not ing.rejected and ing.summary()["clock_steps"] == 2 and ing.input_lag() < 0.1

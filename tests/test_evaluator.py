"""Ground-truth matching as a sink: tolerance, missed beats, per-class counts and offline agreement."""

import numpy as np

from ecgmon.core.messages import Beat, BeatScore, Chunk, TrueBeat
from ecgmon.evaluation.evaluator import Evaluator


def _score(index: int, loss: float, patient: str = "bed01") -> BeatScore:
    return BeatScore(Beat(patient, np.zeros(140, np.float32), index, 0.8, 250.0, 0.0), loss, 1.0, 0.0)


def test_matching_within_tolerance_counts_misses_and_classes():
    ev = Evaluator(tolerance_s=0.020, offline_flags={7: True})  # 5 samples at 250 Hz
    truth = (TrueBeat(100, "normal", False, 1), TrueBeat(300, "PVC", True, 7), TrueBeat(500, "normal", False, 2),
             TrueBeat(700, "Q", None))
    ev.on_chunk(Chunk("bed01", 250.0, 0.0, np.zeros(1000, np.float32), truth=truth))
    ev.on_beat(_score(103, 0.5))  # matches 100 (3 samples off)
    assert ev.label_of(_score(103, 0.5)) == "normal"
    ev.on_beat(_score(306, 2.0))  # 6 samples off 300: no match (300 stays pending until passed)
    assert ev.label_of(_score(306, 2.0)) is None
    ev.on_beat(_score(498, 2.0))  # passes 300 (missed), matches 500: a false flag
    ev.on_beat(_score(700, 2.0))  # Q: matched, counted per class, not in the confusion
    r = ev.report()
    assert r["beats_expected"] == 4 and r["beats_matched"] == 3
    c = ev.confusion
    assert (c.tp, c.fp, c.tn, c.fn) == (0, 1, 1, 0)
    assert r["flagged_per_class"]["Q"] == {"beats": 1, "flagged": 1, "share": 1.0}
    assert r["agreement_offline"] is None  # the PVC (ref 7) was never matched
    assert ev.pending() == 0


def test_no_truth_no_report():
    ev = Evaluator(tolerance_s=0.15)
    ev.on_chunk(Chunk("bed01", 360.0, 0.0, np.zeros(10, np.float32)))
    ev.on_beat(_score(5, 0.1))
    assert ev.report() == {}

import numpy as np
import pytest
import torch

from ecgmon.evaluation.product import metrics, roc_auc
from ecgmon.models import checkpoint as ck
from ecgmon.models.autoencoder import AEConfig, LSTMAutoencoder, reconstruction_loss
from ecgmon.models.calibrate import calibrate
from ecgmon.models.scorer import Scorer
from ecgmon.models.train import TrainConfig, augment, losses, train


@pytest.mark.parametrize("bidirectional", [True, False])
def test_shapes(bidirectional):
    m = LSTMAutoencoder(AEConfig(hidden=8, embedding=4, bidirectional=bidirectional))
    x = torch.randn(5, 140)
    assert m.encode(x).shape == (5, 4)
    assert m(x).shape == (5, 140)
    assert reconstruction_loss(x, m(x)).shape == (5,)


def test_augment_keeps_beats_z_normalised_and_returns_clean_targets():
    x = torch.as_tensor(np.random.default_rng(0).standard_normal((16, 140)), dtype=torch.float32)
    inp, target = augment(x, TrainConfig(noise=0.05), torch.Generator().manual_seed(0))
    assert torch.allclose(target.mean(1), torch.zeros(16), atol=1e-5)
    assert torch.allclose(target.std(1, unbiased=False), torch.ones(16), atol=1e-4)
    assert 0.03 < (inp - target).std() < 0.07


def test_short_training_lowers_the_loss_and_is_reproducible(split):
    xn = split.train_normal[:256]
    val = split.part("val").x[:64]
    cfg = TrainConfig(epochs=4, batch_size=32, patience=10, seed=3)
    m1, h1 = train(xn, val, model_cfg=AEConfig(hidden=16, embedding=8), cfg=cfg, device="cpu")
    assert h1.val[-1] < h1.val[0] and h1.train[-1] < h1.train[0]
    m2, h2 = train(xn, val, model_cfg=AEConfig(hidden=16, embedding=8), cfg=cfg, device="cpu")
    assert h1.train == h2.train
    assert np.array_equal(losses(m1, val), losses(m2, val))


def test_calibration_rules_against_hand_computed_values():
    lo = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 1.0, 0.35])
    y = np.array([1, 1, 1, 1, 1, 2, 3, 4])
    normal = lo[:5]
    assert calibrate(lo, y, rule="percentile", param=50).threshold == pytest.approx(0.3)
    assert calibrate(lo, y, rule="mean+k*std", param=2).threshold == pytest.approx(
        0.3 + 2 * np.sqrt(((normal - 0.3) ** 2).mean()))
    # sorted: .1 .2 .3 [.35] .4 .5 [.9] [1.0]   ([] abnormal)
    # flag > 0.325: TP 3 FP 2 FN 0 -> F1 6/8 = 0.75, J = 1 - 2/5 = 0.6
    # flag > 0.7  : TP 2 FP 0 FN 1 -> F1 4/5 = 0.80, J = 2/3 - 0 = 0.667  (best for both)
    assert calibrate(lo, y, rule="max-f1").threshold == pytest.approx(0.7)
    assert calibrate(lo, y, rule="youden").threshold == pytest.approx(0.7)
    with pytest.raises(ValueError, match="unknown calibration rule"):
        calibrate(lo, y, rule="median")  # type: ignore[arg-type]


def test_label_aware_rules_match_brute_force(rng):
    lo = rng.random(60)
    y = np.where(rng.random(60) < 0.3, 2, 1)
    lo[y == 2] += 0.25
    ab = y != 1
    cands = np.unique(lo)

    def f1(t):
        tp, fp, fn = ((lo > t) & ab).sum(), ((lo > t) & ~ab).sum(), ((lo <= t) & ab).sum()
        return 2 * tp / (2 * tp + fp + fn)

    def j(t):
        return ((lo > t) & ab).sum() / ab.sum() - ((lo > t) & ~ab).sum() / (~ab).sum()

    for rule, obj in (("max-f1", f1), ("youden", j)):
        t = calibrate(lo, y, rule=rule).threshold
        assert obj(t) == pytest.approx(max(obj(c) for c in np.r_[cands, cands[0] - 1]))


def test_metrics_against_an_independent_computation(rng):
    lo = rng.random(200)
    y = np.where(rng.random(200) < 0.4, rng.integers(2, 6, 200), 1)
    lo[y != 1] += 0.3
    thr = 0.6
    m = metrics(lo, y, thr)
    ab = y != 1
    pairs = [(a > b) + 0.5 * (a == b) for a in lo[ab] for b in lo[~ab]]
    assert m["roc_auc"] == pytest.approx(np.mean(pairs))
    tp = sum(1 for v, a in zip(lo, ab, strict=False) if v > thr and a)
    fp = sum(1 for v, a in zip(lo, ab, strict=False) if v > thr and not a)
    assert m["confusion"]["tp"] == tp and m["confusion"]["fp"] == fp
    assert m["accuracy"] == pytest.approx(np.mean((lo > thr) == ab))
    assert m["false_alarm_rate"] == pytest.approx(fp / (~ab).sum())
    assert m["recall"] == pytest.approx(tp / ab.sum())
    assert m["flag_rate_per_class"]["PVC"] == pytest.approx(np.mean(lo[y == 3] > thr))
    assert roc_auc(np.array([1.0, 2.0]), np.array([False, True])) == 1.0


def test_scorer_batched_equals_one_at_a_time(split):
    m = LSTMAutoencoder(AEConfig(hidden=16, embedding=8)).eval()
    s = Scorer(m, device="cpu", max_batch=7)
    x = split.part("test").x[:20]
    batched = s.score(x)
    single = np.array([s.score(x[i:i + 1])[0] for i in range(20)])
    np.testing.assert_allclose(batched, single, rtol=1e-5)
    s.warm_up()  # the monitor's call before its first beats: it changes no later score
    np.testing.assert_array_equal(s.score(x), batched)
    with pytest.raises(ValueError, match=r"shape \(N, 140\)"):
        s.score(np.zeros((3, 100)))


def test_checkpoint_round_trip(small_ckpt_path, split, tmp_path):
    a = ck.load(small_ckpt_path)
    b = ck.load(ck.save(a, tmp_path / "again.pt"))
    x = split.part("test").x[:10]
    assert np.array_equal(losses(a.model, x), losses(b.model, x))
    assert b.threshold == a.threshold and b.split["sha256"] == split.digest()
    assert {"roc_auc", "accuracy", "false_alarm_rate"} <= b.metrics["test"].keys()
    assert b.versions["torch"] == torch.__version__


def test_tampered_or_foreign_checkpoints_are_rejected(small_ckpt_path, tmp_path):
    payload = torch.load(small_ckpt_path, weights_only=True)
    payload["state"]["head.bias"] += 0.01  # edited weights
    p = tmp_path / "edited.pt"
    torch.save(payload, p)
    with pytest.raises(ck.CheckpointError, match="digest mismatch"):
        ck.load(p)
    blob = bytearray(small_ckpt_path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (tmp_path / "flipped.pt").write_bytes(bytes(blob))
    with pytest.raises(ck.CheckpointError):
        ck.load(tmp_path / "flipped.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"meta": Evil(), "state": {}, "sha256": ""}, tmp_path / "evil.pt")
    with pytest.raises(ck.CheckpointError, match="not a readable") as err:
        ck.load(tmp_path / "evil.pt")
    assert "weights_only" not in str(err.value)  # torch's advice to load it unsafely is not passed on
    with pytest.raises(ck.CheckpointError, match="no such"):
        ck.load(tmp_path / "missing.pt")
    payload = torch.load(small_ckpt_path, weights_only=True)
    payload["meta"]["format"] = "ecgmon-checkpoint/0"
    torch.save(payload, tmp_path / "old.pt")
    with pytest.raises(ck.CheckpointError, match="not supported"):
        ck.load(tmp_path / "old.pt")

"""The V typer's waveform network: numpy forward pass against torch's, its windows as the fitting code makes them,
and the shipped typer on a record it was not fitted on."""

import warnings
from pathlib import Path

import numpy as np
import torch

from ecgmon.evaluation.vnetfit import GRID, _torch_net
from ecgmon.segmentation.beats import Segmenter
from ecgmon.segmentation.represent import Representation
from ecgmon.segmentation.vnet import INPUTS, VNet, load_vnet, shipped
from ecgmon.segmentation.vtype import VTyper, VTyperConfig, _wide

DATA = Path(__file__).parent / "data" / "mitdb"


def _from_torch(net: torch.nn.Module) -> VNet:
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    convs = tuple((sd[f"conv.{i}.weight"], sd[f"conv.{i}.bias"]) for i in (0, 3, 6))
    return VNet(convs, (sd["head.0.weight"], sd["head.0.bias"]), (sd["head.2.weight"], sd["head.2.bias"]))


def test_numpy_forward_pass_equals_torch(rng, tmp_path):
    torch.manual_seed(1)
    net = _torch_net()
    w, t = rng.standard_normal((2, 9, len(GRID))).astype(np.float32)
    f = rng.standard_normal((9, len(INPUTS))).astype(np.float32)
    with torch.no_grad():
        want = net(*(torch.from_numpy(a) for a in (w, t, f))).numpy()
    ours = _from_torch(net)
    np.testing.assert_allclose(ours.logit(w, t, f), want, rtol=1e-4, atol=1e-5)
    ours.save(tmp_path / "n.npz")
    np.testing.assert_allclose(load_vnet(tmp_path / "n.npz").logit(w, t, f), want, rtol=1e-4, atol=1e-5)


def test_live_window_is_the_interpolated_window_the_network_was_fitted_on(rng):
    net = shipped()
    fs = 360.0
    segs = rng.standard_normal((4, 400))
    cpos = np.array([150, 160, 170, 180])
    got = _wide(net, segs, cpos, fs)
    for row, c, g in zip(segs, cpos, got, strict=True):
        w = np.interp(c + GRID * fs, np.arange(len(row)), row)
        w = w - w.mean()
        np.testing.assert_allclose(g, w / (w.std() + 1e-9), atol=1e-9)


def test_shipped_typer_on_a_record_outside_its_fitting_data():
    """MIT-BIH 205 (DS2: neither the network nor the additive model saw it), its first 400 s: 21 reference V beats
    (PVCs and runs); the joined typer types at least as many of them V as the additive model alone, and hardly any
    other beat."""
    import wfdb

    rec = wfdb.rdrecord(str(DATA / "205x"), physical=True)
    x, fs = rec.p_signal[:, 0].astype(np.float64), float(rec.fs)
    with warnings.catch_warnings():  # wfdb's annotation reader trips a pandas deprecation warning
        warnings.simplefilter("ignore")
        ref = wfdb.rdann(str(DATA / "205x"), "atr")
    ref_v = np.asarray([i for i, s in zip(ref.sample, ref.symbol, strict=True) if s == "V"])
    counts = []
    for cfg in (VTyperConfig(), VTyperConfig(net=None)):
        seg, typer = Segmenter("r", fs, rep=Representation(kind="window")), VTyper(fs, cfg)
        out = []
        for a in range(0, len(x), round(fs)):
            out += typer.push(x[a:a + round(fs)], [b.index for b in seg.push(x[a:a + round(fs)])])
        near = [b.ventricular for b in out if np.min(np.abs(ref_v - b.index)) <= 0.15 * fs]
        counts.append((sum(near), sum(b.ventricular for b in out) - sum(near)))
    (joined_v, joined_other), (additive_v, _) = counts
    assert len(ref_v) == 21 and joined_v >= max(18, additive_v) and joined_other <= 2

"""The bfloat16 scorer: verdicts equal float32's on >= 99.9 % of beats (issue 22), where the CPU has bfloat16."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from ecgmon.models.scorer import Scorer, bf16_supported


@pytest.mark.skipif(not bf16_supported(), reason="this CPU has no native bfloat16 (AVX-512 BF16 or AMX)")
def test_bf16_verdicts_equal_float32(shipped, split):
    x = np.concatenate([split.part(p).x for p in ("val", "test")])  # 2,001 ECG5000 beats, 40 % abnormal
    f32 = Scorer(copy.deepcopy(shipped.model), device="cpu").score_batch(x)
    bf = Scorer(copy.deepcopy(shipped.model), device="cpu", precision="bfloat16").score_batch(x)
    thr = shipped.threshold
    agree = np.mean((f32.losses > thr) == (bf.losses > thr))
    assert agree >= 0.999, agree
    # the rounding is bfloat16's (8-bit mantissa), not a broken model: losses within a few hundredths, most far closer
    d = np.abs(bf.losses - f32.losses)
    assert d.max() < 0.05 and np.median(d) < 2e-3, (d.max(), np.median(d))
    r = np.abs(bf.residuals - f32.residuals)
    assert r.mean() < 0.02 and r.max() < 1.0, (r.mean(), r.max())
    assert bf.residuals.dtype == np.float32 and bf.losses.dtype == np.float64
    # the caller's model is left in float32
    assert str(next(shipped.model.parameters()).dtype) == "torch.float32"


def test_precision_is_checked(shipped):
    with pytest.raises(ValueError, match="precision must be"):
        Scorer(copy.deepcopy(shipped.model), device="cpu", precision="int8")

"""The CUDA path: the same verdicts as the CPU, in the scorer and in the whole pipeline.

Skipped where torch sees no GPU (CI has none); run on a GPU machine with
``pytest tests/test_cuda.py``.
"""

import asyncio
import copy
import dataclasses

import numpy as np
import pytest
import torch
from helpers import Recorder

from ecgmon.evaluation.evaluator import Evaluator
from ecgmon.models.scorer import Scorer
from ecgmon.monitor.app import build
from ecgmon.monitor.config import MonitorConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


def test_cuda_scorer_matches_cpu(shipped, split):
    x = split.part("test").x
    cpu = Scorer(copy.deepcopy(shipped.model), device="cpu").score(x)
    gpu = Scorer(copy.deepcopy(shipped.model), device="cuda").score(x)  # the Scorer moves its model
    assert gpu.shape == cpu.shape
    # float32 on both; cuDNN sums in another order, and TF32 is off in the scorer
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-6)
    thr = shipped.threshold
    differ = (gpu > thr) != (cpu > thr)
    # a verdict may differ only for a beat whose loss sits on the threshold
    assert np.all(np.abs(cpu[differ] - thr) < 1e-4 * thr)


def test_cuda_pipeline_same_verdicts_as_cpu(tmp_path, shipped):
    def run(device):
        cfg = MonitorConfig(patients=8, fs=250, speed=None, ui=False, journal=tmp_path / f"{device}.jsonl",
                            device=device)
        rec = Recorder()
        b = build(cfg, ckpt=dataclasses.replace(shipped, model=copy.deepcopy(shipped.model)), extra_sinks=[rec],
                  truth=Evaluator)
        asyncio.run(b.monitor.run(b.source))
        b.monitor.close()
        assert b.monitor.scorer.device.type == device
        return {(s.beat.patient, s.beat.index): s.flagged for s in rec.scores}

    cpu, gpu = run("cpu"), run("cuda")
    assert len(cpu) > 900 and cpu.keys() == gpu.keys()
    assert sum(cpu[k] != gpu[k] for k in cpu) <= 1

"""Shared fixtures: the product split, a small trained checkpoint, seeded signals."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import torch
from helpers import Broker

from ecgmon.evaluation.product import test_report
from ecgmon.models.autoencoder import AEConfig
from ecgmon.models.checkpoint import Checkpoint, load, save
from ecgmon.models.data import make_split
from ecgmon.models.train import TrainConfig, fit

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _state_in_tmp(tmp_path, monkeypatch):
    """No test (nor a monitor it starts) writes the user's own journal or learnt-state file."""
    monkeypatch.setenv("ECGMON_JOURNAL", str(tmp_path / "state" / "alarms.jsonl"))
    monkeypatch.setenv("ECGMON_LEARN_STATE", str(tmp_path / "state" / "learnt.json"))


@pytest.fixture(scope="session")
def split():
    return make_split("product", seed=0)


@pytest.fixture(scope="session")
def shipped() -> Checkpoint:
    """The pretrained checkpoint that ships in the package (the real model)."""
    return load()


@pytest.fixture(scope="session")
def small_ckpt_path(tmp_path_factory, split):
    """A small model trained for a few epochs: a real checkpoint file for CLI and round-trip tests."""
    ckpt = fit(split, model_cfg=AEConfig(hidden=16, embedding=8),
               cfg=TrainConfig(epochs=2, batch_size=256, patience=5), device="cpu")
    test_report(ckpt, split)
    return save(ckpt, tmp_path_factory.mktemp("ckpt") / "small.pt")


@pytest.fixture()
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("broker")).start()
    yield b
    b.stop()


@pytest.fixture()
def prefix() -> str:
    """A topic prefix of this test's own, so tests sharing the broker never see each other's messages."""
    return f"t{uuid.uuid4().hex[:10]}"

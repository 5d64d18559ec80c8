"""Synthetic bedside ECG from neurokit2 with realistic artifacts.

``nk.ecg_simulate`` gives a clean ECG (mV) at a heart rate; on top of it this adds white
noise, baseline wander (respiration, 0.15-0.3 Hz), mains hum, and lead-off episodes
(the signal drops to a flat line).  Deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class ArtifactConfig:
    """Amplitudes in mV; ``leadoff_every_s`` 0 disables lead-off episodes."""

    noise_mv: float = 0.02
    wander_mv: float = 0.15
    mains_mv: float = 0.0
    mains_hz: float = 50.0
    leadoff_every_s: float = 0.0
    leadoff_s: float = 5.0


def synthetic_ecg(duration_s: float, fs: float, *, heart_rate: float, seed: int,
                  artifacts: ArtifactConfig = ArtifactConfig()) -> np.ndarray:
    """A synthetic ECG in mV (float32) of ``duration_s`` seconds at ``fs`` Hz."""
    import neurokit2 as nk

    rng = np.random.default_rng(seed)
    x = nk.ecg_simulate(duration=int(np.ceil(duration_s)), sampling_rate=int(fs), heart_rate=heart_rate,
                        heart_rate_std=2, random_state=seed, method="ecgsyn" if fs >= 250 else "simple")
    x = np.asarray(x, dtype=np.float64)[: int(duration_s * fs)]
    t = np.arange(len(x)) / fs
    x = x + artifacts.wander_mv * np.sin(2 * np.pi * rng.uniform(0.15, 0.3) * t + rng.uniform(0, 2 * np.pi))
    x = x + rng.normal(0, artifacts.noise_mv, len(x))
    if artifacts.mains_mv:
        x = x + artifacts.mains_mv * np.sin(2 * np.pi * artifacts.mains_hz * t)
    if artifacts.leadoff_every_s > 0:
        period = int(artifacts.leadoff_every_s * fs)
        for a in range(period, len(x), period):
            x[a:a + int(artifacts.leadoff_s * fs)] = 0.0
    return x.astype(np.float32)

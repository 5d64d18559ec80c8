"""Synthetic bedside ECG from neurokit2 with realistic artifacts.

``nk.ecg_simulate`` gives a clean ECG (mV) at a heart rate; on top of it this adds white
noise, baseline wander (respiration, 0.15-0.3 Hz), mains hum, and lead-off episodes
(the signal drops to a flat line).  Deterministic for a seed.  A two-lead device
(:func:`synthetic_leads`) adds a second lead derived from the same clean ECG, with its own
artifacts and no lead-off.
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


def _clean(duration_s: float, fs: float, heart_rate: float, seed: int) -> np.ndarray:
    """neurokit2's ECG, mV, float64, ``duration_s * fs`` samples."""
    import neurokit2 as nk

    x = nk.ecg_simulate(duration=int(np.ceil(duration_s)), sampling_rate=int(fs), heart_rate=heart_rate,
                        heart_rate_std=2, random_state=seed, method="ecgsyn" if fs >= 250 else "simple")
    return np.asarray(x, dtype=np.float64)[: int(duration_s * fs)]


def _artifacts(x: np.ndarray, fs: float, rng: np.random.Generator, artifacts: ArtifactConfig, *,
               leadoff: bool = True) -> np.ndarray:
    """``x`` with baseline wander, white noise, mains hum and (``leadoff``) lead-off episodes, float32."""
    t = np.arange(len(x)) / fs
    x = x + artifacts.wander_mv * np.sin(2 * np.pi * rng.uniform(0.15, 0.3) * t + rng.uniform(0, 2 * np.pi))
    x = x + rng.normal(0, artifacts.noise_mv, len(x))
    if artifacts.mains_mv:
        x = x + artifacts.mains_mv * np.sin(2 * np.pi * artifacts.mains_hz * t)
    if leadoff and artifacts.leadoff_every_s > 0:
        period = int(artifacts.leadoff_every_s * fs)
        for a in range(period, len(x), period):
            x[a:a + int(artifacts.leadoff_s * fs)] = 0.0
    return x.astype(np.float32)


def synthetic_ecg(duration_s: float, fs: float, *, heart_rate: float, seed: int,
                  artifacts: ArtifactConfig = ArtifactConfig()) -> np.ndarray:
    """A synthetic ECG in mV (float32) of ``duration_s`` seconds at ``fs`` Hz."""
    return _artifacts(_clean(duration_s, fs, heart_rate, seed), fs, np.random.default_rng(seed), artifacts)


# the second lead of a two-lead device: lead II's clean ECG scaled and inverted (V1's QRS is mostly negative where
# lead II's is positive), with artifacts of its own
SECOND_LEAD = "V1"
SECOND_GAIN = -0.6


def derived_second_lead(clean: np.ndarray, fs: float, *, seed: int,
                        artifacts: ArtifactConfig = ArtifactConfig()) -> np.ndarray:
    """A second lead (float32, mV or the input's units) for a simulated two-lead device: ``SECOND_GAIN`` x ``clean``
    with its own baseline wander and noise (drawn from ``seed``), and no lead-off episodes: those of
    :func:`synthetic_ecg` are lead II's electrode coming off, while this lead goes on.  A test signal for the
    two-lead path (the same beats in both leads, as on a patient), not a physiological projection of the heart's
    vector: its shape is lead II's, inverted."""
    rng = np.random.default_rng(seed + 1_000_003)
    return _artifacts(SECOND_GAIN * np.asarray(clean, dtype=np.float64), fs, rng, artifacts, leadoff=False)


def synthetic_leads(duration_s: float, fs: float, *, heart_rate: float, seed: int,
                    artifacts: ArtifactConfig = ArtifactConfig()) -> dict[str, np.ndarray]:
    """Two leads of one synthetic ECG: ``{"II": synthetic_ecg(...) (the same samples for the same arguments),
    SECOND_LEAD: derived_second_lead(...)}``."""
    clean = _clean(duration_s, fs, heart_rate, seed)
    return {"II": _artifacts(clean, fs, np.random.default_rng(seed), artifacts),
            SECOND_LEAD: derived_second_lead(clean, fs, seed=seed, artifacts=artifacts)}

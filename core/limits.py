"""Limits, constants and parsers shared by every layer, so each has exactly one home."""

from __future__ import annotations

import os

FS_RANGE = (100.0, 1000.0)  # Hz: the sampling rates a bedside ECG uses; anything else is a data error
# Hz: the highest rate a recording may state.  A recording above FS_RANGE (a Holter's or a sleep recorder's 1,024 or
# 2,048 Hz, a research amplifier's 2-10 kHz) is decimated into FS_RANGE as it is read (models.recording.decimated);
# live devices must send at a rate within FS_RANGE
RECORD_FS_MAX = 10_000.0
BEAT_LEN = 140  # samples per beat in the model's representation (ECG5000's length; window beats are resampled to it)
# ANSI/AAMI EC57: a bed's first 5 minutes are its learning period (excluded from the statistics), and the
# monitor's per-bed learning uses the same 300 s of signal
LEARN_S = 300.0
MATCH_WINDOW_S = 0.150  # EC57: a detection matches a reference beat within 150 ms of its fiducial
REPLAY_MATCH_S = 0.020  # ECG5000 replay: a cut beat matches a rendered beat when its start is this close
CHUNK_S = 0.25  # seconds per chunk that replays, recordings and the simulated devices send


def chunk_size(chunk_s: float, fs: float) -> int:
    """Samples per chunk: ``chunk_s`` rounded to whole samples (0.25 s at 250 Hz is 62 samples, 0.248 s).
    Pace chunks by ``chunk_size / fs``, not ``chunk_s``, or the stream drifts behind real time."""
    return max(1, round(chunk_s * fs))


def default_threads() -> int:
    """torch threads for the monitor's scorer: every core but one.  The event loop (ingest, segmentation,
    alarms) needs a core of its own, and on 2 cores a second torch thread halves the pipeline's throughput
    (BENCHMARKS.md)."""
    return max(1, (os.cpu_count() or 2) - 1)


def check_fs(fs: float, what: str = "sampling rate") -> float:
    """``fs`` as a float, or ValueError naming ``what`` when it is outside :data:`FS_RANGE`."""
    fs = float(fs)
    if not FS_RANGE[0] <= fs <= FS_RANGE[1]:
        raise ValueError(f"{what} {fs:g} Hz is outside {FS_RANGE[0]:g}-{FS_RANGE[1]:g} Hz")
    return fs


def check_record_fs(fs: float, what: str = "sampling rate") -> float:
    """``fs`` as a float, or ValueError naming ``what`` when it is outside ``FS_RANGE[0]`` to :data:`RECORD_FS_MAX`:
    the rates a recording may state (one above :data:`FS_RANGE` is decimated into it as it is read)."""
    fs = float(fs)
    if not FS_RANGE[0] <= fs <= RECORD_FS_MAX:
        raise ValueError(f"{what} {fs:g} Hz is outside {FS_RANGE[0]:g}-{RECORD_FS_MAX:g} Hz"
                         + (f" (resample it to {FS_RANGE[1]:g} Hz or less first)" if fs > RECORD_FS_MAX else ""))
    return fs


def parse_speed(text: str | float | None) -> float | None:
    """``"1"`` real time, ``"10"`` ten times faster, ``"max"`` (None) as fast as possible."""
    if text is None or str(text).strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError as err:
        raise ValueError(f"--speed must be a positive number or 'max', got {text!r}") from err
    if not speed > 0:
        raise ValueError(f"--speed must be a positive number or 'max', got {text!r}")
    return speed

"""Limits and parsers shared by every entry point, so each has exactly one home."""

from __future__ import annotations

FS_RANGE = (100.0, 1000.0)  # Hz: the sampling rates a bedside ECG uses; anything else is a data error


def check_fs(fs: float, what: str = "sampling rate") -> float:
    """``fs`` as a float, or ValueError naming ``what`` when it is outside :data:`FS_RANGE`."""
    fs = float(fs)
    if not FS_RANGE[0] <= fs <= FS_RANGE[1]:
        raise ValueError(f"{what} {fs:g} Hz is outside {FS_RANGE[0]:g}-{FS_RANGE[1]:g} Hz")
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

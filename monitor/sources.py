"""Chunk sources: async context managers that yield :class:`Chunk` values.

``async with source: async for chunk in source: ...`` - the pipeline never knows which
source it reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Protocol, Self, runtime_checkable

import numpy as np

from ecgmon.monitor.messages import Chunk, TrueBeat
from ecgmon.simulators.replay import PatientPlan, RhythmConfig, chunk_size, chunks, plan_patients


@runtime_checkable
class Source(Protocol):
    """What the pipeline reads: chunks from any number of patients."""

    label: str  # shown on the console, e.g. "REPLAY ECG5000 test split"
    replay: bool

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def __aiter__(self) -> AsyncIterator[Chunk]: ...


class ReplaySource:
    """ECG5000 beats rendered as ``patients`` live beds, paced at ``speed`` x real time (None = max).

    Chunks from all beds are interleaved in time order.  With ``loop`` the split is
    dealt again with the next seed when it ends (a new "pass").
    """

    replay = True

    def __init__(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray, *, patients: int = 8, fs: float = 250.0,
                 speed: float | None = 1.0, seed: int = 0, chunk_s: float = 0.25, loop: bool = False,
                 rhythm: RhythmConfig = RhythmConfig(), split_name: str = "product test split") -> None:
        self.x, self.y, self.rows = x, y, rows
        self.patients, self.fs, self.speed, self.seed = patients, fs, speed, seed
        self.chunk_s, self.loop, self.rhythm = chunk_s, loop, rhythm
        self.label = f"REPLAY - ECG5000 {split_name}, not a live patient"
        self.plans: list[PatientPlan] = []
        self.passes = 0
        self.finished = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def _plan(self, seed: int) -> list[PatientPlan]:
        return plan_patients(self.x, self.y, self.rows, patients=self.patients, fs=self.fs, seed=seed,
                             rhythm=self.rhythm)

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        # each bed's stream is continuous across passes: sample indices and seq numbers go on from
        # where that bed's previous pass ended
        offset: dict[str, int] = {}
        seq: dict[str, int] = {}
        t_start = time.monotonic()
        elapsed_s = 0.0  # signal time of the passes already played
        wall0 = time.time()
        while True:
            plans = await asyncio.to_thread(self._plan, self.seed + self.passes)
            self.plans = plans
            iters = [chunks(p, chunk_s=self.chunk_s, t0=wall0 + elapsed_s) for p in plans]
            live = list(range(len(iters)))
            n_round = 0
            period = chunk_size(self.chunk_s, self.fs) / self.fs  # seconds of signal per chunk
            while live:
                for i in list(live):
                    c = next(iters[i], None)
                    if c is None:
                        live.remove(i)
                        continue
                    off = offset.get(c.patient, 0)
                    yield Chunk(c.patient, seq.get(c.patient, 0) + c.seq, c.fs, c.t0, c.samples, start=off + c.start,
                                truth=tuple(TrueBeat(t.start + off, t.label, t.ref) for t in c.truth), replay=True)
                n_round += 1
                if self.speed is None:
                    await asyncio.sleep(0)
                else:
                    due = t_start + (elapsed_s + n_round * period) / self.speed
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
            for p in plans:
                offset[p.patient] = offset.get(p.patient, 0) + len(p.signal)
                seq[p.patient] = seq.get(p.patient, 0) + -(-len(p.signal) // chunk_size(self.chunk_s, p.fs))
            elapsed_s += n_round * period
            self.passes += 1
            if not self.loop:
                break
        self.finished = True

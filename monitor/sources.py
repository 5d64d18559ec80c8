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

from ecgmon.monitor.messages import Chunk
from ecgmon.simulators.replay import PatientPlan, RhythmConfig, chunks, plan_patients


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
        offset = 0  # sample offset of the current pass, so indices keep growing across passes
        seq_base = 0
        t_start = time.monotonic()
        wall0 = time.time()
        while True:
            plans = await asyncio.to_thread(self._plan, self.seed + self.passes)
            self.plans = plans
            iters = [chunks(p, chunk_s=self.chunk_s, t0=wall0 + offset / self.fs) for p in plans]
            live = list(range(len(iters)))
            n_round = 0
            longest = 0
            while live:
                for i in list(live):
                    c = next(iters[i], None)
                    if c is None:
                        live.remove(i)
                        continue
                    longest = max(longest, c.start + len(c.samples))
                    yield Chunk(c.patient, seq_base + c.seq, c.fs, c.t0, c.samples, start=offset + c.start,
                                truth=tuple(type(t)(t.start + offset, t.label, t.ref) for t in c.truth),
                                replay=True)
                n_round += 1
                if self.speed is None:
                    await asyncio.sleep(0)
                else:
                    due = t_start + (offset / self.fs + n_round * self.chunk_s) / self.speed
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
            self.passes += 1
            if not self.loop:
                break
            offset += longest
            seq_base += n_round
        self.finished = True

"""Micro-batching: beats from every bed gathered into one scoring call.

:class:`MicroBatcher` is the decision, on an explicit clock: a batch is ready when it holds
``max_batch`` beats, or when ``max_wait_s`` has passed since its first beat and no other beat is
waiting.  :func:`next_batch` drives it from an asyncio queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class MicroBatcher(Generic[T]):
    """Collects items; ``now`` is any monotonic clock in seconds."""

    def __init__(self, *, max_batch: int, max_wait_s: float) -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(f"need max_batch >= 1 and max_wait_s >= 0, got {max_batch} and {max_wait_s}")
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.items: list[T] = []
        self.deadline = 0.0  # when the batch must go, even if not full

    def __len__(self) -> int:
        return len(self.items)

    @property
    def full(self) -> bool:
        return len(self.items) >= self.max_batch

    def add(self, item: T, now: float) -> None:
        if not self.items:
            self.deadline = now + self.max_wait_s
        self.items.append(item)

    def wait_s(self, now: float) -> float:
        """How long to wait for one more item (0: send now)."""
        if not self.items or self.full:
            return 0.0 if self.items else float("inf")
        return max(0.0, self.deadline - now)

    def take(self) -> list[T]:
        batch, self.items = self.items, []
        return batch


async def next_batch(queue: asyncio.Queue[T], batcher: MicroBatcher[T], *,
                     clock: Callable[[], float] | None = None) -> list[T]:
    """The next batch from ``queue``: waits for a first item, then takes what is waiting, and waits for more
    only until the batcher's deadline."""
    clock = clock or asyncio.get_running_loop().time
    batcher.add(await queue.get(), clock())
    while not batcher.full:
        if not queue.empty():
            batcher.add(queue.get_nowait(), clock())
            continue
        wait = batcher.wait_s(clock())
        if wait <= 0:
            break
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            async with asyncio.timeout(wait):
                item = await queue.get()
        except TimeoutError:
            break
        batcher.add(item, clock())
    return batcher.take()

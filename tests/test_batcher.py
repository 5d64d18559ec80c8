"""The micro-batcher on a fake clock, and the async gathering from a queue."""

import asyncio

import pytest

from ecgmon.monitor.batcher import MicroBatcher, next_batch


def test_a_batch_is_ready_when_full():
    b = MicroBatcher(max_batch=3, max_wait_s=0.020)
    b.add("a", now=10.0)
    b.add("b", now=10.001)
    assert not b.full and b.wait_s(10.001) == pytest.approx(0.019)
    b.add("c", now=10.002)
    assert b.full and b.wait_s(10.002) == 0.0
    assert b.take() == ["a", "b", "c"] and len(b) == 0


def test_the_wait_counts_from_the_first_item_and_never_goes_negative():
    b = MicroBatcher(max_batch=100, max_wait_s=0.020)
    assert b.wait_s(0.0) == float("inf")  # nothing to send: wait for a first item
    b.add(1, now=5.000)
    b.add(2, now=5.015)  # a later item does not extend the deadline
    assert b.wait_s(5.015) == pytest.approx(0.005)
    assert b.wait_s(5.030) == 0.0
    b.take()
    b.add(3, now=7.0)  # a new batch: a new deadline
    assert b.wait_s(7.0) == pytest.approx(0.020)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        MicroBatcher(max_batch=0, max_wait_s=0.02)
    with pytest.raises(ValueError):
        MicroBatcher(max_batch=8, max_wait_s=-1)


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.mark.asyncio
async def test_next_batch_takes_what_is_waiting_up_to_max_batch():
    q: asyncio.Queue[int] = asyncio.Queue()
    for i in range(10):
        q.put_nowait(i)
    clock = FakeClock()
    b = MicroBatcher(max_batch=4, max_wait_s=1.0)
    assert await next_batch(q, b, clock=clock) == [0, 1, 2, 3]
    assert await next_batch(q, b, clock=clock) == [4, 5, 6, 7]


@pytest.mark.asyncio
async def test_next_batch_sends_a_partial_batch_once_the_deadline_passes():
    q: asyncio.Queue[int] = asyncio.Queue()
    q.put_nowait(1)
    clock = FakeClock()
    b = MicroBatcher(max_batch=64, max_wait_s=0.0)  # the deadline is the first item's time
    assert await asyncio.wait_for(next_batch(q, b, clock=clock), 1.0) == [1]


@pytest.mark.asyncio
async def test_next_batch_waits_for_late_items_until_the_deadline():
    q: asyncio.Queue[int] = asyncio.Queue()
    b = MicroBatcher(max_batch=64, max_wait_s=0.5)

    async def later():
        await asyncio.sleep(0.01)
        q.put_nowait(2)

    q.put_nowait(1)
    task = asyncio.create_task(later())
    got = await asyncio.wait_for(next_batch(q, b), 2.0)  # the loop's clock: 0.5 s is plenty for 2
    await task
    assert got == [1, 2]

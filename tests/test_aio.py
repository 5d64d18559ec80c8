"""A stop must end every long-running task, even when a client library's ``wait_for`` swallows it."""

import asyncio

import pytest

from ecgmon.core.aio import check_cancelled
from ecgmon.core.messages import Alarm, AlarmKind, AlarmState, Condition, Priority
from ecgmon.monitor.sinks import AlarmOutbox


def _race(task: asyncio.Task, fut: asyncio.Future) -> None:
    """The awaited future completes and the task is cancelled in the same loop turn (what nats-py's flush or a
    JetStream publish hits at a stop): Python 3.11's wait_for then returns the result and drops the cancel."""
    loop = asyncio.get_running_loop()
    loop.call_soon(fut.set_result, True)
    loop.call_soon(task.cancel)


@pytest.mark.asyncio
async def test_check_cancelled_ends_a_loop_whose_cancellation_wait_for_swallowed():
    turns = 0

    async def loop_with_check() -> None:
        nonlocal turns
        while True:
            check_cancelled()
            turns += 1
            fut = asyncio.get_running_loop().create_future()
            if turns == 1:
                _race(asyncio.current_task(), fut)
            else:
                fut.set_result(True)
            await asyncio.wait_for(fut, 5)
            await asyncio.sleep(0)

    t = asyncio.ensure_future(loop_with_check())
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(t, 2)  # no hang: the loop ends at its next turn (3.11) or at once (3.12+)
    assert turns <= 2


@pytest.mark.asyncio
async def test_an_alarm_outbox_stops_when_its_send_swallowed_the_stop():
    """The NATS alarm publisher put an alarm in the key-value bucket as the monitor stopped: the put's wait_for
    completed with the cancel, and the task then waited for the next alarm for ever (the stop hung)."""

    class Outbox(AlarmOutbox):
        async def _send(self, alarm: Alarm) -> bool:
            fut = asyncio.get_running_loop().create_future()
            _race(asyncio.current_task(), fut)
            return await asyncio.wait_for(fut, 5)

    box = Outbox(max_outbox=10)
    box.on_alarm(Alarm("b:x", "b", AlarmKind.TECHNICAL, Condition.LEADS_OFF, Priority.MEDIUM, AlarmState.ACTIVE,
                       1.0, "x"))
    t = asyncio.ensure_future(box.run())
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(t, 2)

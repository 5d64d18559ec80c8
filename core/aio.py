"""asyncio helpers the monitor's long-running tasks share."""

from __future__ import annotations

import asyncio


def check_cancelled() -> None:
    """Raise :class:`asyncio.CancelledError` when the current task has a cancellation request that an await
    swallowed, so that a task's loop ends when it is told to instead of waiting for ever.

    Python 3.11's :func:`asyncio.wait_for` loses a cancellation that arrives as the awaited future completes: it
    returns the result and the task goes on (CPython issue gh-86296, fixed in 3.12 by building ``wait_for`` on
    ``asyncio.timeout``).  nats-py awaits ``wait_for`` in ``flush``, requests and JetStream publishes, so a
    monitor task that called one at its stop could carry on and wait for work that never comes, and the stop
    hung (seen: the scorer task after a JetStream commit's flush, the NATS alarm publisher after a key-value put).
    The request count stays raised (``Task.cancelling()``) because nothing called ``uncancel``: that is what
    this checks.  Loops call it once per turn, after the awaits of other libraries.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError

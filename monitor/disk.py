"""Every blocking write of the monitor, off the event loop, in order.

The journal fsyncs each alarm transition, alarm strips are fsynced beside it, and the learnt-state file
is written whole and fsynced; on a slow disk one fsync takes tens of milliseconds, and during an alarm
storm they would stall every bed's segmentation and scoring.  :class:`DiskWriter` runs those writes on one
worker thread, fed by a bounded queue, in the order they were submitted.  Each write may carry a ``then``
callback that runs on the event loop once the write has returned: the monitor shows, prints and publishes
an alarm only in the ``then`` of its journal line, so whatever is shown was fsynced first.

Outside a running event loop (before :meth:`DiskWriter.start`, after :meth:`DiskWriter.stop`, or in code
that drives the stages synchronously) a write and its ``then`` run at once on the caller's thread.

A write that fails (disk full, file removed) is counted and reported on stderr; its ``then`` still runs:
an alarm that could not be journalled is still an alarm, and a person must see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Write = Callable[[], None]


@dataclass(slots=True)
class _Job:
    write: Write
    then: Write | None


_STOP = object()


class DiskWriter:
    """One worker thread doing ``write`` jobs in submission order (see the module docstring).

    ``maxsize``: jobs waiting at most; a full queue makes :meth:`submit` wait (the disk sets the pace then,
    and ``waits`` counts it) rather than grow without bound."""

    def __init__(self, *, maxsize: int = 4096) -> None:
        self._q: queue.Queue[_Job | object] = queue.Queue(maxsize=maxsize)
        self._done: deque[Write] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failed = 0
        self.waits = 0  # submissions that found the queue full
        self.max_pending = 0

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def pending(self) -> int:
        return self._q.qsize()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write on a worker thread from now on; ``then`` callbacks run on ``loop``."""
        if self._thread is not None:
            return
        self._loop = loop
        self._thread = threading.Thread(target=self._work, name="ecgmon-disk", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish every submitted write, run every ``then`` (on the calling thread), and write inline from now on."""
        t = self._thread
        if t is None:
            return
        self._q.put(_STOP)
        t.join()
        self._thread, self._loop = None, None
        self._deliver()

    async def drain(self) -> None:
        """Wait (without blocking the loop) until every write submitted so far is done and its ``then`` has run:
        at a stop, while the sinks' tasks (the MQTT alarm publisher) are still alive to pass the alarms on."""
        if self._thread is None:
            return
        await asyncio.to_thread(self._q.join)
        self._deliver()

    def submit(self, write: Write, then: Write | None = None) -> None:
        """Do ``write`` on the worker thread, then ``then`` on the event loop (both at once when not running)."""
        if self._thread is None:
            self._run(write)
            if then is not None:
                then()
            return
        job = _Job(write, then)
        try:
            self._q.put_nowait(job)
        except queue.Full:
            self.waits += 1
            self._q.put(job)
        self.max_pending = max(self.max_pending, self._q.qsize())

    def report(self) -> dict[str, int]:
        return {"disk_writes": self.written, "disk_failed": self.failed, "disk_waits": self.waits,
                "disk_max_pending": self.max_pending}

    # ------------------------------------------------------------------ worker side

    def _run(self, write: Write) -> None:
        try:
            write()
            self.written += 1
        except Exception as err:  # the monitor must go on: counted, reported, never silent
            self.failed += 1
            print(f"ecgmon: a disk write failed ({type(err).__name__}: {err}); monitoring goes on", file=sys.stderr)

    def _work(self) -> None:
        while True:
            job = self._q.get()
            if job is _STOP:
                self._q.task_done()
                return
            assert isinstance(job, _Job)
            self._run(job.write)
            if job.then is not None:
                self._done.append(job.then)
                loop = self._loop
                if loop is not None:
                    with contextlib.suppress(RuntimeError):  # the loop has closed: stop() delivers what is left
                        loop.call_soon_threadsafe(self._deliver)
            self._q.task_done()

    def _deliver(self) -> None:
        while self._done:
            self._done.popleft()()

"""Time for the daemon.

The daemon reads monotonic time from its asyncio loop (``loop.time()``) and wall time
from a :class:`WallClock`. In simulation the loop is a :class:`VirtualClockLoop`: when
nothing is ready it jumps to the next timer instead of sleeping, so a scenario runs
faster than real time through exactly the daemon's code.
"""

from __future__ import annotations

import asyncio
import selectors
import time


def wall_now(clock):
    """The wall-clock function of ``clock``: its ``now`` method, or ``clock`` itself."""
    return clock.now if hasattr(clock, "now") else clock


def wall_at(now: float, loop: asyncio.AbstractEventLoop, loop_time: float) -> float:
    """The wall time of ``loop_time``: wall time ``now`` less how long ago it was on the
    loop's monotonic clock (a wall clock stepped by NTP or GPS moves only ``now``)."""
    return now - (loop.time() - loop_time)


class WallClock:
    """UTC wall time, as epoch seconds."""

    def now(self) -> float:
        return time.time()


class SimulatedWallClock(WallClock):
    """Wall time that follows a loop's (possibly virtual) monotonic time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, start_epoch: float):
        self._loop = loop
        self._offset = start_epoch - loop.time()

    def now(self) -> float:
        return self._offset + self._loop.time()


class _VirtualSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualClockLoop | None = None

    def select(self, timeout: float | None = None):
        loop = self.loop
        # One epoll per loop turn. Pending work is read before polling: work that ended
        # before this read has already written its wake-up byte, so the poll sees it.
        if timeout == 0 or timeout is None or loop is None or loop.pending_work:
            # Something outside the loop (a worker thread, a socket) will wake us:
            # wait for it in real time, without moving the virtual clock.
            return super().select(timeout)
        ready = super().select(0)
        if not ready:
            loop.advance(timeout)
        return ready


class WorkHold:
    """Work on one other thread that holds a :class:`VirtualClockLoop`'s clock still:
    ``begin`` on the loop thread as a job is handed over, ``end`` on the worker thread as
    it finishes (the last one wakes the loop). Each count is written by one thread only."""

    def __init__(self, loop: VirtualClockLoop) -> None:
        self._loop = loop
        self.begun = 0  # the loop thread's
        self.ended = 0  # the worker thread's
        self.finished = False  # the worker thread has stopped: no job will begin again

    def begin(self) -> None:
        self.begun += 1

    def end(self) -> None:
        self.ended += 1
        if self.ended == self.begun:
            self._loop.wake()


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when nothing is ready to run.

    Work handed to threads through :meth:`run_in_executor`, or counted by a
    :class:`WorkHold` (:meth:`hold`), holds the clock still until it completes, so slow
    real work (encoding, fsync) never makes virtual timers fire out of order.
    """

    def __init__(self, start: float = 0.0) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._now = start
        self._executor_work = 0
        self._holds: list[WorkHold] = []

    @property
    def pending_work(self) -> int:
        pending = self._executor_work
        for hold in self._holds:
            pending += hold.begun - hold.ended
        return pending

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)

    def hold(self) -> WorkHold:
        """A new count of work another thread does for this loop (see WorkHold)."""
        hold = WorkHold(self)
        self._holds = [*(h for h in self._holds if not h.finished), hold]  # those of stopped workers go
        return hold

    def wake(self) -> None:
        """From any thread: end the loop's wait for outside work (a closed loop: nothing)."""
        self._write_to_self()

    def run_in_executor(self, executor, func, *args):
        self._executor_work += 1
        future = super().run_in_executor(executor, func, *args)

        def _done(_f: asyncio.Future) -> None:
            self._executor_work -= 1

        future.add_done_callback(_done)
        return future


def work_hold(loop: asyncio.AbstractEventLoop) -> WorkHold | None:
    """What a worker thread counts its jobs with so that ``loop``'s clock waits for them:
    None on a real-time loop, where nothing needs to wait."""
    return loop.hold() if isinstance(loop, VirtualClockLoop) else None

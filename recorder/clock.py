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
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        loop = self.loop
        if timeout is None or loop is None or loop.pending_work:
            # Something outside the loop (a worker thread, a socket) will wake us:
            # wait for it in real time, without moving the virtual clock.
            return super().select(timeout)
        loop.advance(timeout)
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when nothing is ready to run.

    Work handed to threads through :meth:`run_in_executor` holds the clock still until
    it completes, so slow real work (encoding, fsync) never makes virtual timers fire
    out of order.
    """

    def __init__(self, start: float = 0.0) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._now = start
        self.pending_work = 0

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)

    def run_in_executor(self, executor, func, *args):
        self.pending_work += 1
        future = super().run_in_executor(executor, func, *args)

        def _done(_f: asyncio.Future) -> None:
            self.pending_work -= 1

        future.add_done_callback(_done)
        return future

"""A GPS backend run on an event loop of its own until the test has the fixes it waits for,
for the tests of the backends that read real sources (gpsd, a serial line)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from drivers.gps import Fix, Gps


def run_gps(gps: Gps, until: Callable[[list[Fix]], bool], *, timeout: float,
            during: Callable[[float], None] | None = None,
            alongside: Callable[[], None] | None = None) -> list[Fix]:
    """Start ``gps`` on a new loop and collect its fixes until ``until(fixes)`` holds or
    ``timeout`` seconds (the loop's monotonic clock) have passed; then close it.
    ``during(now)`` is called on every turn of the wait; ``alongside()`` runs in a worker
    thread from the start (a writer at the far end of the line) and is waited for."""
    loop = asyncio.new_event_loop()
    fixes: list[Fix] = []

    async def main():
        gps.start(loop, fixes.append)
        job = loop.run_in_executor(None, alongside) if alongside is not None else None
        deadline = loop.time() + timeout
        while not until(fixes) and loop.time() < deadline:
            if during is not None:
                during(loop.time())
            await asyncio.sleep(0.02)
        if job is not None:
            await job

    try:
        loop.run_until_complete(main())
    finally:
        gps.close()
        loop.close()
    return fixes

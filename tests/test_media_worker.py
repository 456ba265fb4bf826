"""The media worker's hand-over: one thread, jobs in order, faults reported on the loop,
the virtual clock held while it works, and a power cut that drops what is queued."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from conftest import write_config

from recorder.clock import VirtualClockLoop, WallClock
from recorder.config import load_config
from recorder.media.pipeline import MediaPipeline


@pytest.fixture
def made(tmp_path):
    """A pipeline without devices on a virtual-clock loop: its worker is the real one."""
    config = load_config(write_config(tmp_path, {"audio": {"enabled": False}}))
    loop = VirtualClockLoop(start=0.0)
    faults: list[str] = []
    pipeline = MediaPipeline(config, None, None, None, loop=loop, wall_clock=WallClock(), on_fault=faults.append)
    yield loop, pipeline.worker, faults
    pipeline.worker.shutdown(now=True)
    pipeline.router.close()
    loop.close()


def test_jobs_run_in_order_on_one_thread_and_a_failure_is_a_fault_on_the_loop(made):
    loop, worker, faults = made
    ran: list[tuple[int, str]] = []

    def job(n):
        ran.append((n, threading.current_thread().name))
        return n * 10

    def broken():
        raise ValueError("the sealer fell over")

    async def main():
        first = worker.submit(job, 1)
        failing = worker.submit(broken)
        last = worker.submit(job, 2)
        assert await last == 20 and await first == 10
        with pytest.raises(ValueError, match="fell over"):
            await failing
        await worker.drain()

    loop.run_until_complete(main())
    assert [n for n, _ in ran] == [1, 2] and all(name.startswith("pieton-media") for _, name in ran)
    assert faults == ["media: media worker failed: the sealer fell over"]


def test_the_virtual_clock_holds_still_while_the_worker_works(made):
    """A timer due 10 ms (virtual) after a slow job is handed over fires only once the job
    is done, and virtual time has not moved meanwhile."""
    loop, worker, _ = made
    seen: list[tuple[str, float]] = []

    def slow():
        time.sleep(0.2)  # real time: the virtual clock must not run on meanwhile
        seen.append(("job done", loop.time()))

    async def main():
        start = loop.time()
        job = worker.submit(slow)
        loop.call_later(0.01, lambda: seen.append(("timer", loop.time())))
        await asyncio.sleep(0.05)
        await job
        return start

    start = loop.run_until_complete(main())
    assert seen == [("job done", start), ("timer", start + 0.01)]
    assert loop.pending_work == 0


def test_a_power_cut_drops_what_is_queued_and_lets_the_clock_run_on(made):
    loop, worker, _ = made
    ran: list[int] = []
    started = threading.Event()

    def stall():
        started.set()
        time.sleep(0.2)

    async def main():
        worker.submit(stall)
        queued = [worker.submit(ran.append, n) for n in range(3)]
        await loop.run_in_executor(None, started.wait)
        worker.shutdown(now=True)           # the power cut: nothing waits for the worker
        before = loop.time()
        await asyncio.sleep(1.0)            # the clock is not held by the dropped jobs
        done = await asyncio.gather(*queued, return_exceptions=True)
        return before, done

    before, done = loop.run_until_complete(main())
    assert loop.time() >= before + 1.0
    assert ran == [] and all(isinstance(d, asyncio.CancelledError) for d in done)
    assert loop.pending_work == 0
    with pytest.raises(RuntimeError, match="shut ?down"):
        worker.submit(ran.append, 9)

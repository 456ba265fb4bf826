"""The hand-over from the loop thread to the one media worker thread.

The camera and microphone call back on the loop thread; what they deliver is handed to a
single worker (``loop.run_in_executor``) in arrival order, so the button, LED and notice
path never waits for an encoder, and in a simulation the virtual clock holds still while
a frame is encoded. Frames that would wait longer than ``MAX_BACKLOG_S`` are dropped
(and counted); sound blocks ride with the next frame (one hand-over instead of two).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from drivers.camera import EncodedFrame, RawFrame
from drivers.microphone import AudioBlock
from recorder.media.encode import Encode
from recorder.media.health import Health

log = logging.getLogger("pieton.media")


class MediaWorker:
    MAX_BACKLOG_S = 0.5  # frames waiting longer than this for the worker are dropped, and counted
    SOUND_BATCH = 5      # blocks (about 100 ms) that go on their own when no frame takes them

    def __init__(self, loop, encode: Encode, health: Health, *, fps: int, executor=None):
        self.loop = loop
        self.encode = encode
        self.health = health
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix="pieton-media")
        self._own_executor = executor is None
        self.queued = 0
        self._max_queue = max(2, round(fps * self.MAX_BACKLOG_S))
        self._jobs: set[asyncio.Future] = set()
        self._sound: list[AudioBlock] = []

    def submit(self, fn, *args) -> asyncio.Future:
        """Run ``fn(*args)`` in the worker after everything submitted before it."""
        future = self.loop.run_in_executor(self.executor, fn, *args)
        self._jobs.add(future)
        future.add_done_callback(self._job_done)
        return future

    def _job_done(self, future: asyncio.Future) -> None:
        self._jobs.discard(future)
        if not future.cancelled() and future.exception() is not None:
            exc = future.exception()
            log.error("media worker job failed: %s", exc)
            self.health.fault("media", f"media worker failed: {exc}")

    def frame(self, frame: RawFrame | EncodedFrame, wall_time: float, regained: bool) -> None:
        if self.queued >= self._max_queue:
            self.health.count("dropped")
            return
        self.queued += 1
        blocks, self._sound = self._sound, []
        self.submit(self._video, frame, wall_time, regained, blocks)

    def sound(self, block: AudioBlock, *, alone: bool) -> None:
        """A sound block; ``alone`` when no frame is coming to take it along."""
        self._sound.append(block)
        if alone or len(self._sound) >= self.SOUND_BATCH:
            self.flush_sound()

    def flush_sound(self) -> None:
        if self._sound:
            blocks, self._sound = self._sound, []
            self.submit(self.encode.sound, blocks)

    def _video(self, frame, wall_time: float, regained: bool, blocks: list[AudioBlock]) -> None:
        if blocks:
            self.encode.sound(blocks)
        try:
            self.encode.video(frame, wall_time, regained)
        finally:
            self.queued -= 1

    async def drain(self) -> None:
        if self._jobs:
            await asyncio.gather(*list(self._jobs), return_exceptions=True)

    def shutdown(self, *, now: bool = False) -> None:
        """Stop the worker (``now``: without waiting, dropping what is queued: a power cut)."""
        if self._own_executor:
            if now:
                self.executor.shutdown(wait=False, cancel_futures=True)
            else:
                self.executor.shutdown(wait=True)

    def __repr__(self) -> str:
        return f"<MediaWorker queued={self.queued} jobs={len(self._jobs)}>"

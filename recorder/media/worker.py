"""The hand-over from the loop thread to the one media worker thread.

The camera and microphone call back on the loop thread; what they deliver is handed to a
single worker thread in arrival order, so the button, LED and notice path never waits for
an encoder. Raw frames that would wait longer than ``MAX_BACKLOG_S`` are dropped (and
counted); frames a hardware encoder already made wait up to ``MAX_ENCODED_BACKLOG_S``;
sound blocks ride with the next frame (one hand-over instead of two).

A frame costs one queue put on the loop thread and nothing on the way back: no future, no
callback, no loop wake-up on a real-time loop. Only the jobs whose result someone awaits
(``submit``: the press, the stop, a note) come back through the loop, and a job that fails
reports its fault there. In a simulation the worker counts its jobs on the loop's
``WorkHold``, so the virtual clock holds still while a frame is encoded and the loop is
woken once, when the worker has caught up.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading

from drivers.camera import EncodedFrame, RawFrame
from drivers.microphone import AudioBlock
from recorder.clock import work_hold
from recorder.media.encode import Encode
from recorder.media.health import Health

log = logging.getLogger("pieton.media")

_STOP = object()  # the last job: the worker thread ends after it


class MediaWorker:
    MAX_BACKLOG_S = 0.5  # raw frames waiting longer than this for the worker are dropped, and counted
    # An encoding camera's frames (picamera2's H.264: ~17 kB each at 4 Mb/s, 5 MB in 10 s)
    # wait longer: the worker writes and fsyncs, and an SD card's own housekeeping stalls an
    # fsync for a second or more now and then; that must cost no evidence. A raw 720p frame
    # is 1.4 MB: 0.5 s of them is already 21 MB.
    MAX_ENCODED_BACKLOG_S = 10.0
    SOUND_BATCH = 5      # blocks (about 100 ms) that go on their own when no frame takes them

    def __init__(self, loop, encode: Encode, health: Health, *, fps: int, executor=None):
        """``executor``: a one-thread executor the worker runs on (it keeps that thread
        until ``shutdown``); by default the worker starts its own thread at its first job."""
        self.loop = loop
        self.encode = encode
        self.health = health
        self.executor = executor
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._hold = work_hold(loop)
        self._thread: threading.Thread | None = None
        self._serving = None  # the executor's future while the worker runs on it
        self._shut = False    # no job is taken any more (loop thread)
        self._cut = False     # power cut: queued jobs are dropped, not run
        self._frames_in = 0   # frames handed over (loop thread)
        self._frames_out = 0  # frames done with (worker thread)
        self._max_queue = max(2, round(fps * self.MAX_BACKLOG_S))
        self._max_encoded = max(2, round(fps * self.MAX_ENCODED_BACKLOG_S))
        self._sound: list[AudioBlock] = []

    @property
    def queued(self) -> int:
        """Frames handed over and not yet done with."""
        return self._frames_in - self._frames_out

    # -- loop thread ---------------------------------------------------------------------------
    def submit(self, fn, *args) -> asyncio.Future:
        """Run ``fn(*args)`` in the worker after everything handed over before it; the
        future (on the loop) has its result."""
        future = self.loop.create_future()
        self._post(fn, args, future)
        return future

    def frame(self, frame: RawFrame | EncodedFrame, wall_time: float, regained: bool) -> None:
        if self.queued >= (self._max_encoded if isinstance(frame, EncodedFrame) else self._max_queue):
            self.health.count("dropped")
            return
        blocks, self._sound = self._sound, []
        self._frames_in += 1
        self._post(self._video, (frame, wall_time, regained, blocks), None)

    def sound(self, block: AudioBlock, *, alone: bool) -> None:
        """A sound block; ``alone`` when no frame is coming to take it along."""
        self._sound.append(block)
        if alone or len(self._sound) >= self.SOUND_BATCH:
            self.flush_sound()

    def flush_sound(self) -> None:
        if self._sound:
            blocks, self._sound = self._sound, []
            self._post(self.encode.sound, (blocks,), None)

    async def drain(self) -> None:
        """Wait until everything handed over so far is done with."""
        if not self._shut and (self._thread is not None or self._serving is not None):
            await self.submit(_nothing)

    def shutdown(self, *, now: bool = False) -> None:
        """Stop the worker (``now``: without waiting, dropping what is queued: a power cut)."""
        if self._shut:
            return
        self._shut = True
        self._cut = now
        self._jobs.put((_STOP, (), None))
        if self._thread is None and self._serving is None and self._hold is not None:
            self._hold.finished = True  # never started: nothing will take the stop
        if now:
            return
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        elif self._serving is not None:
            self._serving.result()

    def _post(self, fn, args: tuple, future: asyncio.Future | None) -> None:
        if self._shut:
            raise RuntimeError("the media worker is shut down")
        if self._thread is None and self._serving is None:
            self._start()
        if self._hold is not None:
            self._hold.begin()
        self._jobs.put((fn, args, future))

    def _start(self) -> None:
        if self.executor is not None:
            self._serving = self.executor.submit(self._serve)
        else:
            self._thread = threading.Thread(target=self._serve, name="pieton-media", daemon=True)
            self._thread.start()

    def _failed(self, exc: BaseException) -> None:
        log.error("media worker job failed: %s", exc)
        self.health.fault("media", f"media worker failed: {exc}")

    # -- worker thread -------------------------------------------------------------------------
    def _serve(self) -> None:
        jobs, hold = self._jobs, self._hold
        while True:
            fn, args, future = jobs.get()
            if fn is _STOP:
                if hold is not None:
                    hold.finished = True
                return
            try:
                if self._cut:
                    if future is not None:
                        self._to_loop(_cancel, future)
                    continue
                try:
                    result = fn(*args)
                except Exception as exc:  # noqa: BLE001 - reported on the loop, never swallowed
                    self._to_loop(self._failed, exc)
                    if future is not None:
                        self._to_loop(_settle, future, None, exc)
                else:
                    if future is not None:
                        self._to_loop(_settle, future, result, None)
            finally:
                if hold is not None:  # after any result is on its way: the clock sees both at once
                    hold.end()

    def _to_loop(self, fn, *args) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            pass

    def _video(self, frame, wall_time: float, regained: bool, blocks: list[AudioBlock]) -> None:
        try:
            if blocks:
                self.encode.sound(blocks)
            self.encode.video(frame, wall_time, regained)
        finally:
            self._frames_out += 1

    def __repr__(self) -> str:
        return f"<MediaWorker queued={self.queued}{' shut down' if self._shut else ''}>"


def _nothing() -> None:
    return None


def _settle(future: asyncio.Future, result, exc: BaseException | None) -> None:
    if future.done():  # cancelled meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _cancel(future: asyncio.Future) -> None:
    future.cancel()

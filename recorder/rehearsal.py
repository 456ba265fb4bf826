"""A dry run of a configuration: everything the daemon builds from it, built, without
opening any hardware.

A configuration can pass its schema and still be one the camera cannot run (a frame size
libx264 refuses, a notice it cannot load, a boundary it cannot read). Accepting such a
bundle used to make the camera fail at every start, before its serial link opened, so it
could not even be re-flashed. Before a bundle is accepted, the device builds the state
machine, the position tracker and boundary, the media pipeline with stand-in sensors of
the configured size (one frame and one block of sound encoded) and its storage judge, and
refuses the bundle, naming the part, when any of them fails.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from drivers.acoustics import Room
from drivers.camera import Camera, RawFrame
from drivers.microphone import open_microphone
from recorder.clock import SimulatedWallClock
from recorder.errors import ConfigError, DriverUnavailable
from recorder.evidence.storage import Storage
from recorder.feedback import Feedback
from recorder.media.pipeline import MediaPipeline
from recorder.notice import Notice
from recorder.position import Position
from recorder.state import Machine

REHEARSAL_EPOCH = 1_767_225_600.0   # any plausible UTC time: the overlay draws it


class _StandInCamera(Camera):
    """A camera of the configured size that is never started: the frame size checks and
    the encoder are the real ones, without the simulated scene's cost (seconds at 12 MP)."""

    backend = "rehearsal"

    def start(self, loop, callback) -> None:
        raise DriverUnavailable("a rehearsal opens no camera")

    def still(self) -> np.ndarray:
        """A mid-grey I420 frame."""
        return np.full((self.height * 3 // 2, self.width), 128, np.uint8)


class _NoSessions:
    """The state machine is built, never started: nothing is recorded."""

    def check_start(self):
        raise AssertionError("a rehearsal never starts a recording")

    def open(self, started_mono, flags):
        raise AssertionError("a rehearsal never starts a recording")


def rehearse(config, storage_dir=None) -> None:
    """Build what the daemon builds from ``config``; ConfigError naming the part that
    cannot be built (and why) otherwise. Opens no hardware and records nothing."""
    loop = asyncio.new_event_loop()
    worker = ThreadPoolExecutor(1, thread_name_prefix="pieton-rehearsal")
    opened = []
    part = "configuration"
    try:
        wall = SimulatedWallClock(loop, REHEARSAL_EPOCH)
        part = "storage"
        if storage_dir is not None:
            unusable = Storage.from_config(storage_dir, config.storage).unusable()
            if unusable:
                raise ConfigError([unusable])
        part = "notice"
        notice = Notice(config, None)
        part = "gestures"
        Machine(config, loop, Feedback(None, None, loop), notice, _NoSessions())
        part = "position"
        position = Position(config, loop, None, wall_clock=wall, clock_probe=None)
        if position.geofence_error:
            raise ConfigError([position.geofence_error])
        part = "camera"
        camera = _StandInCamera(config.video.width, config.video.height, config.video.fps)
        opened.append(camera)
        microphone = None
        if config.audio.enabled:
            part = "microphone"
            microphone = open_microphone("simulated", config, room=Room())
            opened.append(microphone)
        part = "media pipeline"
        pipeline = MediaPipeline(config, camera, microphone, None, loop=loop, wall_clock=wall, executor=worker)
        part = "video encoder"
        image = camera.still()
        frame = RawFrame(0, loop.time(), camera.width, camera.height, lambda: image)
        if not pipeline.source.process(frame, wall.now()):
            raise ConfigError(["the encoder gave no packet for a frame"])
        if pipeline.audio is not None:
            part = "audio encoder"
            block = np.zeros(config.audio.sample_rate // 10, np.float32)
            pipeline.audio.push(block, loop.time())
            pipeline.audio.push(block, loop.time() + 0.1)
    except Exception as exc:  # noqa: BLE001 - whatever fails, the camera could not run it
        problems = exc.problems if isinstance(exc, ConfigError) else [f"{type(exc).__name__}: {exc}"]
        raise ConfigError([f"{config.source}: the camera cannot run this configuration: {part}: {p}"
                           for p in problems]) from None
    finally:
        for device in opened:
            device.close()
        worker.shutdown(wait=True)
        loop.close()

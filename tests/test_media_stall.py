"""A storage stall (an SD card's housekeeping holds an fsync for a second or more) on a
camera that encodes H.264 itself, as picamera2's does on a Pi: its frames wait for the
media worker instead of being dropped, since each is small. Raw frames (1.4 MB each at
720p) are still dropped past half a second (tests/test_media_units.py)."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import av
import numpy as np
from conftest import write_config

from drivers.camera import Camera, EncodedFrame, SimulatedCamera
from drivers.gpio import reset_simulated_pins
from recorder.clock import WallClock
from recorder.config import load_config
from recorder.media.pipeline import MediaPipeline

FPS = 20


def access_units(count: int = FPS) -> list[tuple[bytes, bool]]:
    """One group of pictures from libx264 (Annex B, parameter sets on the keyframe): what a
    hardware encoder hands over, frame by frame."""
    camera = SimulatedCamera(320, 240, FPS)
    context = av.CodecContext.create("libx264", "w")
    context.width, context.height, context.pix_fmt = 320, 240, "yuv420p"
    context.time_base, context.framerate = Fraction(1, FPS), Fraction(FPS, 1)
    context.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(count), "bf": "0"}
    units = []
    for i in range(count):
        frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(camera.render_still(i)), "yuv420p")
        frame.pts = i
        units += [(bytes(p), bool(p.is_keyframe)) for p in context.encode(frame)]
    units += [(bytes(p), bool(p.is_keyframe)) for p in context.encode(None)]
    assert len(units) == count and units[0][1]
    return units


class EncodingCamera(Camera):
    """A camera with its own encoder: access units at its rate on the loop's clock."""

    encodes = True
    backend = "test-encoding"

    def __init__(self, units):
        super().__init__(320, 240, FPS)
        self.units = units

    def start(self, loop, callback):
        self._loop, self._callback, self._t0, self._i = loop, callback, loop.time(), 0
        self._started = True
        loop.call_soon(self._tick)

    def _tick(self):
        if self._closed:
            return
        i, self._i = self._i, self._i + 1
        data, keyframe = self.units[i % len(self.units)]
        self._callback(EncodedFrame(data, keyframe, self._t0 + i / FPS, i))
        self._loop.call_at(self._t0 + self._i / FPS, self._tick)


def status_after_stall(pipeline: MediaPipeline, loop, stall_s: float, after_s: float) -> dict:
    """Arm, then hold the media worker ``stall_s`` (a slow fsync); the status ``after_s`` later."""
    async def main():
        pipeline.arm()
        await asyncio.sleep(0.3)
        await pipeline.worker.submit(time.sleep, 0.0)  # warm
        stall = pipeline.worker.submit(time.sleep, stall_s)
        await asyncio.sleep(stall_s + 0.2)
        await stall
        await asyncio.sleep(after_s)
        status = pipeline.status()
        await pipeline.close()
        return status

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def test_an_encoding_cameras_frames_wait_through_a_storage_stall_and_none_is_dropped(tmp_path):
    reset_simulated_pins()
    config = load_config(write_config(tmp_path, {"video": {"width": 320, "height": 240, "fps": FPS},
                                                 "audio": {"enabled": False}}))
    loop = asyncio.new_event_loop()
    pipeline = MediaPipeline(config, EncodingCamera(access_units()), None, None, loop=loop, wall_clock=WallClock())
    frames = status_after_stall(pipeline, loop, 1.5, 0.5)["frames_total"]  # the worker held by a 1.5 s fsync
    assert frames["late"] >= 10            # they waited through the stall...
    assert frames["dropped"] == 0, frames  # ...and none was lost (before: 20 of them, past 0.5 s)
    assert frames["encoded"] == frames["captured"] >= 40

"""Shared helpers of the evidence tests (no tests here): a provisioned device, the chief's
identity, small real MPEG-TS made with PyAV, and a spool that records them."""

from __future__ import annotations

import functools
import io
import time
from fractions import Fraction

import av
import numpy as np

from drivers.signer import FileSigner
from recorder.evidence.age import generate_identity
from recorder.evidence.spool import Spool

START = 1_790_000_000.0  # 2026-09-21, a fixed wall time for stable recording ids


@functools.lru_cache(maxsize=4)
def mpegts(seconds: float = 2.0, seed: int = 0) -> bytes:
    """H.264 320x240 + AAC in MPEG-TS, a moving pattern so frames differ."""
    out = io.BytesIO()
    with av.open(out, "w", format="mpegts") as container:
        video = container.add_stream("libx264", rate=15)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        video.options = {"preset": "ultrafast", "g": "15"}
        audio = container.add_stream("aac", rate=48000)
        audio.layout = "mono"
        frames = int(seconds * 15)
        for i in range(frames):
            img = np.full((240, 320, 3), (seed * 40) % 256, dtype=np.uint8)
            img[:, (i * 8) % 320:(i * 8) % 320 + 16] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, 15)
            for packet in video.encode(frame):
                container.mux(packet)
        samples = np.zeros((1, int(seconds * 48000)), dtype=np.float32)
        samples[0] = 0.1 * np.sin(np.arange(samples.shape[1]) * 2 * np.pi * 440 / 48000)
        for start in range(0, samples.shape[1], 1024):
            chunk = samples[:, start:start + 1024]
            if chunk.shape[1] < 1024:
                break
            aframe = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
            aframe.sample_rate = 48000
            aframe.pts = start
            aframe.time_base = Fraction(1, 48000)
            for packet in audio.encode(aframe):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)
    return out.getvalue()


class Device:
    """A provisioned camera: its signing key outside the spool, the chief's identity off it."""

    def __init__(self, root, camera_id="CAM-T-001"):
        self.root = root
        self.signer = FileSigner.create(root / "state" / "device-signing.key")
        self.identity, self.recipient = generate_identity()
        self.identity_file = root / "chief.txt"  # off-device: the chief's
        self.identity_file.write_text(self.identity + "\n")
        self.spool_dir = root / "spool"
        self.camera_id = camera_id
        self.clock = FakeWall()

    def spool(self, **kw) -> Spool:
        kw.setdefault("wall_clock", self.clock)
        kw.setdefault("reserve_bytes", 256 * 1024)
        kw.setdefault("min_free_bytes", 0)
        return Spool(self.spool_dir, self.signer, [self.recipient], self.camera_id,
                     "d" * 64, True, **kw)

    def record(self, spool: Spool, segments=2, seconds=1.0, reason="agent", static=None, notes=()):
        rec = spool.open_recording(self.clock.now(), reason, {"clock_source": "gps"})
        rec.static.update(static or {})
        for event in notes:
            rec.note(event)
        for i in range(segments):
            seg = rec.open_segment()
            seg.write(mpegts(seconds, i % 4))
            self.clock.advance(seconds)
            seg.seal({"duration_s": seconds})
        rec.close("stop gesture")
        self.clock.advance(10)
        return rec


class FakeWall:
    """A wall clock the test moves (recording ids need distinct start seconds)."""

    def __init__(self, start=START):
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def slow_clock():
    """A monotonic clock for AgeWriter that makes every write cross the sync interval."""
    state = {"t": time.monotonic()}

    def clock():
        state["t"] += 1.0
        return state["t"]
    return clock

"""Short MP4 clips for the training extraction's tests, written with PyAV and libx264 as the
vault's remux writes them (H.264, a keyframe a second, AAC mono when there is sound)."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FPS = 30
TONE_RATE = 48000


def write_clip(path: Path, frames: int, picture: Callable[[int], np.ndarray], *, fps: int = FPS,
               tone_hz: float | None = None) -> None:
    """An MP4 of ``frames`` frames at ``fps``, frame i being ``picture(i)`` (BGR, every one
    the same size); with ``tone_hz``, a mono tone of that pitch for as long as the video."""
    first = picture(0)
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        video.options = {"preset": "ultrafast", "g": str(fps)}
        sound = out.add_stream("aac", rate=TONE_RATE) if tone_hz is not None else None
        if sound is not None:
            sound.codec_context.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(first if i == 0 else picture(i), format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for p in video.encode(frame):
                out.mux(p)
        if sound is not None:
            for j in range(frames * TONE_RATE // fps // 1024):
                t = (j * 1024 + np.arange(1024)) / TONE_RATE
                samples = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)[None]
                frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = TONE_RATE, j * 1024, Fraction(1, TONE_RATE)
                for p in sound.encode(frame):
                    out.mux(p)
            for p in sound.encode(None):
                out.mux(p)
        for p in video.encode(None):
            out.mux(p)

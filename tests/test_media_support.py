"""Shared helpers of the media tests (no tests here): a simulated camera, microphone and
IR on a virtual clock, a real evidence spool, and readers that decrypt and decode what the
pipeline wrote."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from test_evidence_support import START, Device

from drivers.acoustics import Room
from drivers.camera import SimulatedCamera, read_counter
from drivers.gpio import reset_simulated_pins
from drivers.ir import open_ir
from drivers.microphone import SimulatedMicrophone
from recorder.clock import SimulatedWallClock, VirtualClockLoop
from recorder.config import load_config
from recorder.evidence.age import decrypt, load_identities
from recorder.evidence.metadata import decrypt_metadata
from recorder.media.pipeline import MediaPipeline

SMALL = {"video": {"width": 320, "height": 240, "fps": 10, "bitrate_kbps": 600},
         "prebuffer": {"seconds": 2.0}}


def merge(base: dict, extra: dict | None) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for section, values in (extra or {}).items():
        out.setdefault(section, {}).update(values)
    return out


@dataclass
class Rig:
    """Everything a media test drives: the pipeline on a virtual clock and its hardware."""

    root: Path
    overrides: dict | None = None
    faults: list = field(default_factory=list)

    def __post_init__(self):
        from conftest import write_config
        reset_simulated_pins()
        self.config = load_config(write_config(self.root / "cfg", merge(SMALL, self.overrides)))
        self.loop = VirtualClockLoop(start=1000.0)
        self.wall = SimulatedWallClock(self.loop, START)
        self.device = Device(self.root, camera_id="CAM-T-001")
        self.device.clock = self.wall
        self.spool = self.device.spool(sync_interval=0.5, monotonic=self.loop.time)
        video = self.config.video
        self.camera = SimulatedCamera(video.width, video.height, video.fps, lux=400.0)
        self.room = Room(seed=3, events_per_minute=0.0)
        self.microphone = SimulatedMicrophone(self.config.audio.sample_rate, room=self.room)
        self.ir = open_ir("simulated", self.config)
        self.pipeline = MediaPipeline(self.config, self.camera, self.microphone, self.ir, loop=self.loop,
                                      wall_clock=self.wall,
                                      on_fault=lambda what: self.faults.append(tuple(what.split(": ", 1))))

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    async def record(self, seconds: float, reason: str = "agent", during=None):
        """One recording of ``seconds``; ``during(rig, rec)`` is awaited right after the start.
        Returns the recording, the pre-event span its metadata states and the pipeline's summary."""
        rec = self.spool.open_recording(self.wall.now(), reason, {"clock_source": "gps"})
        self.pipeline.start_recording(rec)
        if during is not None:
            await during(self, rec)
        await asyncio.sleep(seconds)
        summary = await self.pipeline.stop_recording()
        rec.close("stop")
        return rec, rec.static["pre_event_s"], summary

    def close(self):
        self.run(self.pipeline.close())
        self.ir.close()
        self.spool.close()
        self.loop.close()


@dataclass
class Segment:
    name: str
    plaintext: bytes
    frames: list  # (pts seconds, counter)
    audio: np.ndarray
    audio_start: float | None
    width: int
    height: int
    meta: dict


def counters(segments: list[Segment]) -> list:
    """The burnt-in frame counters of every decoded frame, across the segments in order."""
    return [c for s in segments for _, c in s.frames]


def read_recording(rec_path: Path, identity_file: Path) -> list[Segment]:
    """Decrypt and decode every sealed segment of a recording, in order."""
    identities = load_identities(identity_file)
    segments = []
    for path in sorted(rec_path.glob("seg-*.ts.age")):
        result = decrypt(path, identities)
        assert result.complete, (path, result.reason)
        meta = decrypt_metadata(path.with_name(path.name.replace(".ts.age", ".meta.age")), identities)
        segments.append(decode_ts(path.name, result.plaintext, meta))
    return segments


def decode_ts(name: str, data: bytes, meta: dict | None = None) -> Segment:
    frames, chunks = [], []
    audio_start = None
    width = height = 0
    with av.open(io.BytesIO(data), format="mpegts") as container:
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                width, height = frame.width, frame.height
                luma = frame.to_ndarray(format="gray")
                frames.append((float(frame.pts * frame.time_base), read_counter(luma)))
            else:
                if audio_start is None:
                    audio_start = float(frame.pts * frame.time_base)
                chunks.append(frame.to_ndarray().reshape(-1))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return Segment(name, data, frames, audio, audio_start, width, height, meta or {})

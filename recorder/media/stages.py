"""The typed seams between the media stages.

    source (VideoSource / AudioEncoder) -> router -> pre-event ring | segmenter -> sealer

Each stage knows only the interface of the next: the segmenter writes MPEG-TS into a
``SegmentSealer`` and asks it how far the next durable point is, without knowing that the
sealer is age with 64 KiB chunks; the sealer knows nothing of MPEG-TS.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from drivers.camera import EncodedFrame, RawFrame
from recorder.media.packets import Packet


@runtime_checkable
class VideoStage(Protocol):
    """Camera frames in, encoded H.264 packets out (recorder.media.source.VideoSource)."""

    def process(self, frame: RawFrame | EncodedFrame, wall_time: float) -> list[Packet]: ...

    def request_keyframe(self, at: float = ...) -> None: ...

    def warm(self) -> None: ...

    def reset(self) -> None: ...


@runtime_checkable
class AudioStage(Protocol):
    """Microphone samples in, AAC packets out (recorder.media.audio.AudioEncoder)."""

    rate: int

    def push(self, samples: np.ndarray, capture_time: float) -> list[Packet]: ...

    def flush(self) -> list[Packet]: ...


@runtime_checkable
class SegmentSealer(Protocol):
    """One segment on its way to storage (recorder.evidence.recording.SegmentWriter)."""

    def write(self, data: bytes) -> None: ...

    def bytes_until_durable(self) -> int:
        """Bytes still to write before everything written so far can be made durable."""
        ...

    def sync(self) -> int:
        """Make everything that can be durable durable now."""
        ...

    def seal(self, extra: dict | None = None) -> dict | None: ...

    def abort(self, reason: str) -> dict | None: ...

    def discard(self) -> None:
        """Remove a segment opened ahead and never written."""
        ...


@runtime_checkable
class RecordingSealer(Protocol):
    """The recording the segments go into (recorder.evidence.recording.RecordingWriter)."""

    id: str
    static: dict    # the recording's metadata fields; the router sets its pre_event_s

    def open_segment(self, *, overlap: bool = False) -> SegmentSealer: ...

    def note(self, event: dict) -> None: ...


@runtime_checkable
class SegmentFigures(Protocol):
    """What the segmenter adds to each segment's metadata at its seal: the pipeline's
    own figures (frame accounting, device health), from recorder.media.health.Health."""

    def segment_figures(self) -> dict: ...

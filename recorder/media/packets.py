"""What flows between the stages: encoded packets on the loop's clock."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Packet:
    """One encoded unit: an H.264 access unit or an AAC frame (ADTS-framed).

    ``time`` is the capture time of its first sample on the loop's monotonic clock; the
    segmenter turns it into presentation timestamps relative to the recording's start."""

    kind: str  # "video" or "audio"
    data: bytes = field(repr=False)
    time: float
    keyframe: bool = False
    duration: float = 0.0
    index: int = -1  # video: the sensor's frame number

    @property
    def size(self) -> int:
        return len(self.data)

"""The pre-event buffer: the last seconds of encoded packets, in RAM only.

Packets are kept in groups of pictures (each starting on a keyframe), so the ring always
begins on a keyframe and a recording can start from it. The oldest group is dropped once
the next one alone still covers ``seconds``; a byte cap bounds the memory whatever the
encoder does. Nothing here is ever written to storage unless a recording drains it.
"""

from __future__ import annotations

import threading
from collections import deque

from recorder.media.packets import Packet


class PreEventRing:
    def __init__(self, seconds: float, *, max_bytes: int, audio: bool = False):
        self.seconds = float(seconds)
        self.max_bytes = int(max_bytes)
        self.audio = audio
        self._groups: deque[list[Packet]] = deque()
        self._lock = threading.Lock()
        self.bytes = 0
        self.peak_bytes = 0
        self.dropped_bytes = 0

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    def push(self, packet: Packet) -> None:
        if not self.enabled or (packet.kind == "audio" and not self.audio):
            return
        with self._lock:
            if packet.kind == "video" and packet.keyframe:
                self._groups.append([])
            if not self._groups:
                return  # nothing decodable before the first keyframe
            self._groups[-1].append(packet)
            self.bytes += packet.size
            self._prune(packet.time)
            self.peak_bytes = max(self.peak_bytes, self.bytes)

    def _prune(self, newest: float) -> None:
        while len(self._groups) > 1 and (self._groups[1][0].time <= newest - self.seconds
                                         or self.bytes > self.max_bytes):
            dropped = self._groups.popleft()
            size = sum(p.size for p in dropped)
            self.bytes -= size
            self.dropped_bytes += size

    def span(self) -> float:
        """Seconds from the oldest keyframe to the newest packet."""
        with self._lock:
            if not self._groups:
                return 0.0
            last = self._groups[-1][-1]
            return last.time + last.duration - self._groups[0][0].time

    def drain(self) -> list[Packet]:
        """Everything held, from the oldest keyframe, in time order; the ring is then empty."""
        with self._lock:
            packets = [p for group in self._groups for p in group]
            self._groups.clear()
            self.bytes = 0
        packets.sort(key=lambda p: p.time)  # stable: video before audio at equal times
        return packets

    def clear(self) -> None:
        with self._lock:
            self._groups.clear()
            self.bytes = 0

    def status(self) -> dict:
        with self._lock:
            packets = sum(len(g) for g in self._groups)
        return {"seconds": self.seconds, "span_s": round(self.span(), 3), "bytes": self.bytes,
                "peak_bytes": self.peak_bytes, "max_bytes": self.max_bytes, "packets": packets,
                "audio": self.audio}

    def __repr__(self) -> str:
        return f"<PreEventRing {self.seconds:g}s {self.bytes} bytes>"

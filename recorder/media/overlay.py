"""The burnt-in caption: local date and time with its zone, camera id, agent number, GPS
position.

The time is the one people on the scene read on their watches, with the zone's
abbreviation (``2026-11-27 18:41:11 CET``): that also tells apart the two passes of the
hour repeated when summer time ends; one rule for it, ``recorder.localtime``. The
metadata keeps UTC. Drawn on the luma plane of I420 frames (white on a dark outline,
readable on any scene), so it costs a few text draws per frame and works the same on a
Pi's pre-callback buffer.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from recorder.localtime import format_local, zone


def second_shown(wall_time: float) -> int:
    """The whole second a caption of ``wall_time`` shows: as ``datetime.fromtimestamp``
    takes it (microseconds rounded half to even, so 0.9999996 shows the next second)."""
    fraction, whole = math.modf(wall_time)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole += 1
    elif micro < 0:
        whole -= 1
    return int(whole)


class Overlay:
    """``zone_name``: the caption's time zone (the configuration's ``[device] timezone``)."""

    def __init__(self, camera_id: str, *, enabled: bool = True, zone_name: str = "UTC"):
        self.camera_id = camera_id
        self.enabled = enabled
        self.zone = zone(zone_name).key  # a TimeError now for a zone this system does not know
        self.agent: str | None = None
        self.position: tuple[float, float] | None = None  # (lat, lon) when known
        self._cache = None  # ((lines, height, width), top, left, patch, mask)
        self._shown = None  # (second, agent, position) the cached caption was written for

    def set_agent(self, agent: str | None) -> None:
        self.agent = agent

    def set_position(self, position: tuple[float, float] | None) -> None:
        self.position = position

    def lines(self, wall_time: float) -> list[str]:
        stamp = format_local(wall_time, self.zone)
        first = f"{stamp}  {self.camera_id}"
        if self.agent:
            first += f"  AG {self.agent}"
        lines = [first]
        if self.position is not None:
            lat, lon = self.position
            lines.append(f"{abs(lat):.5f}{'N' if lat >= 0 else 'S'} {abs(lon):.5f}{'E' if lon >= 0 else 'W'}")
        return lines

    def apply(self, i420: np.ndarray, wall_time: float) -> None:
        """Draw the caption in the top-left corner of ``i420`` (shape (h*3/2, w)), in place."""
        if not self.enabled:
            return
        height, width = i420.shape[0] * 2 // 3, i420.shape[1]
        # The caption changes once a second: written and drawn once, then stamped on every
        # frame. What it says depends only on ``shown`` (the zone is fixed at construction).
        shown = (second_shown(wall_time), self.agent, self.position)
        cache = self._cache
        if cache is None or self._shown != shown or cache[0][1:] != (height, width):
            lines = tuple(self.lines(wall_time))
            key = (lines, height, width)
            if cache is None or cache[0] != key:
                self._cache = (key, *self._render(lines, height, width))
            self._shown = shown
        _, top, left, patch, mask = self._cache
        ph, pw = patch.shape
        np.copyto(i420[top:top + ph, left:left + pw], patch, where=mask)
        # neutral chroma under the caption: white on black whatever the scene's colour
        u = i420[height:height + height // 4].reshape(height // 2, width // 2)
        v = i420[height + height // 4:height + height // 2].reshape(height // 2, width // 2)
        u[top // 2:(top + ph + 1) // 2, left // 2:(left + pw + 1) // 2] = 128
        v[top // 2:(top + ph + 1) // 2, left // 2:(left + pw + 1) // 2] = 128

    @staticmethod
    def _render(lines, height: int, width: int):
        scale = max(0.35, height / 720 * 0.8)
        thick = max(1, round(height / 360))
        step = int(28 * scale + 8)
        left = max(6, height // 60)
        sizes = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick + 2) for t in lines]
        top = 0
        bottom = min(height, step * len(lines) + max(b for _, b in sizes) + 4)
        pw = min(width - left, max(w for (w, _), _ in sizes) + 4)
        canvas = np.zeros((bottom - top, pw), np.uint8)
        for n, text in enumerate(lines):
            origin = (0, step * (n + 1) - top)
            cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, 16, thick + 2, cv2.LINE_AA)
            cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, 235, thick, cv2.LINE_AA)
        mask = canvas > 0
        np.maximum(canvas, 16, out=canvas)  # anti-aliased edges fade to black, not below it
        return top, left, canvas, mask

    def __repr__(self) -> str:
        return f"<Overlay {self.camera_id} {self.zone} {'on' if self.enabled else 'off'}>"

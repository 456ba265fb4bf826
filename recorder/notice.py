"""The spoken notice: "Attention, cette intervention est enregistrée."

Loaded once at start (so playing it costs no disk access when the gesture is known) and
played through the speaker; the speaker starts it within its own latency, inside the
recording that is already running, so the recording itself contains it.
"""

from __future__ import annotations

import logging

from drivers.errors import DriverError, DriverFault
from drivers.speaker import load_wav

log = logging.getLogger("pieton.notice")


class Notice:
    def __init__(self, config, speaker):
        self.path = config.resolve(config.notice.audio)
        self.text = config.notice.text
        self.speaker = speaker
        self.samples, self.rate = load_wav(self.path)
        self.duration = len(self.samples) / self.rate

    def play(self) -> tuple[float, float]:
        """Start the notice now; return (loop time playback starts, duration).
        Raises DriverFault when it cannot be played, so the agent is told to say it."""
        if self.speaker is None:
            raise DriverFault("no speaker: the notice cannot be played")
        try:
            start = self.speaker.play(self.samples, self.rate)
        except DriverFault:
            raise
        except DriverError as exc:
            raise DriverFault(f"speaker: {exc}") from exc
        return start, self.duration

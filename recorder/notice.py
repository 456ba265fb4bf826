"""The spoken notice: "Attention, cette intervention est enregistrée."

Loaded once at start (so playing it costs no disk access when the gesture is known) and
played through the speaker; the speaker starts it within its own latency, inside the
recording that is already running, so the recording itself contains it.

The file comes from outside (a technician's bundle), so it is read with the notice's size
limit and every malformed file is a BadAudioFile naming it: at ``config check`` a
configuration error, at daemon start a fault (the notice cannot be given), never a crash.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from drivers.errors import BadAudioFile, DriverError, DriverFault
from drivers.speaker import decode_wav
from recorder.inputs import InputError, read_bounded

log = logging.getLogger("pieton.notice")

DURATION_S = (0.3, 30.0)


def load_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """The notice audio at ``path`` as float32 mono samples and their rate; BadAudioFile
    naming the file when it is missing, too large or not a 16-bit PCM WAV."""
    path = Path(path)
    try:
        data = read_bounded(path, "notice", what=f"{path}: notice audio file")
    except InputError as exc:
        raise BadAudioFile(str(exc)) from None
    return decode_wav(data, str(path))


def check_notice_audio(config: Any) -> list[str]:
    """Problems with the configured notice audio, in the configuration checker's words."""
    where = f"{config.source}: [notice] audio = {config.notice.audio!r}"
    try:
        samples, rate = load_wav(config.resolve(config.notice.audio))
    except BadAudioFile as exc:
        return [f"{where}: {exc}"]
    duration = len(samples) / rate
    if not DURATION_S[0] <= duration <= DURATION_S[1]:
        return [f"{where}: lasts {duration:.1f} s; must be from {DURATION_S[0]} to {DURATION_S[1]} s"]
    return []


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

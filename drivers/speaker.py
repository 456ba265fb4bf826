"""The speaker that plays the spoken notice.

``play`` never blocks: the daemon must keep serving the button and the LEDs while the
notice plays. It returns the loop time at which playback starts, which the daemon notes
in the recording; a broken speaker raises ``DriverFault`` so the daemon can tell the
agent (haptic "notice not played") to say the notice aloud.
"""

from __future__ import annotations

import asyncio
import io
import struct
import wave
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from drivers.acoustics import Playback, Room
from drivers.device import Device
from drivers.errors import BadAudioFile, DriverFault, DriverUnavailable
from drivers.registry import pick_backend

BACKENDS = {"simulated": "drivers.speaker:SimulatedSpeaker",
            "sounddevice": "drivers.speaker:SounddeviceSpeaker"}


# Rates a notice may be recorded at: telephone quality to studio quality.
WAV_RATES_HZ = (8000, 192000)


def decode_wav(data: bytes, name: str) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV file's bytes (mono, or stereo mixed down) as float32 in [-1, 1].
    Every malformed file is a BadAudioFile naming ``name``; reading the file (with its size
    limit) is the caller's job (recorder.notice.load_wav)."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    # the wave module signals a malformed header with any of these (RuntimeError from its
    # chunk reader, struct.error from a short field)
    except (wave.Error, EOFError, struct.error, ValueError, OverflowError, RuntimeError, OSError) as exc:
        raise BadAudioFile(f"{name}: not a PCM WAV file ({exc or type(exc).__name__})") from None
    if width != 2:
        raise BadAudioFile(f"{name}: {8 * width}-bit samples; only 16-bit PCM WAV is supported")
    if channels not in (1, 2):
        raise BadAudioFile(f"{name}: {channels} channels; only mono or stereo is supported")
    if not WAV_RATES_HZ[0] <= rate <= WAV_RATES_HZ[1]:
        raise BadAudioFile(f"{name}: frame rate {rate} Hz; must be from {WAV_RATES_HZ[0]} to "
                           f"{WAV_RATES_HZ[1]} Hz")
    samples = np.frombuffer(frames[: len(frames) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    if channels == 2:
        samples = samples[: len(samples) // 2 * 2].reshape(-1, 2).mean(axis=1)
    if samples.size == 0:
        raise BadAudioFile(f"{name}: the audio file holds no samples")
    return samples, rate


def _mono(samples: np.ndarray, rate: int) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(f"the speaker plays non-empty mono samples, got shape {samples.shape}")
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    return samples


class Speaker(Device, ABC):
    """Plays sound without blocking the loop."""

    backend = ""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.closed = False
        self.last_start: float | None = None
        self.last_end: float | None = None

    @abstractmethod
    def play(self, samples: np.ndarray, rate: int) -> float:
        """Start playing now (replacing any sound still playing); return the loop time
        playback starts. Raises DriverFault when the speaker is broken."""

    @abstractmethod
    def stop(self) -> None:
        """Cut any sound still playing."""

    @staticmethod
    def duration(samples: np.ndarray, rate: int) -> float:
        return len(samples) / rate

    @property
    def playing(self) -> bool:
        return self.last_end is not None and self.loop.time() < self.last_end

    def _check_open(self) -> None:
        if self.closed:
            raise DriverFault(f"{self.backend} speaker is closed")

    def close(self) -> None:
        if not self.closed:
            self.stop()
            self.closed = True

    def _state(self) -> str:
        if self.closed:
            return "closed"
        return "playing" if self.playing else "idle"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._state()}>"


class SimulatedSpeaker(Speaker):
    """Plays into a :class:`Room`, where the simulated microphone hears it. A scenario
    breaks it with ``fail(True)``."""

    backend = "simulated"

    def __init__(self, loop: asyncio.AbstractEventLoop, room: Room | None = None, *, latency_s: float = 0.0):
        super().__init__(loop)
        self.room = room if room is not None else Room()
        self.latency_s = float(latency_s)
        self.failed = False
        self._current: Playback | None = None

    def fail(self, broken: bool = True) -> None:
        self.failed = bool(broken)
        if broken:
            self.stop()

    def play(self, samples: np.ndarray, rate: int, label: str = "") -> float:
        self._check_open()
        samples = _mono(samples, rate)
        if self.failed:
            raise DriverFault("simulated speaker failed: no sound output")
        start = self.loop.time() + self.latency_s
        self.stop()
        self._current = self.room.play(samples, rate, start, label)
        self.last_start, self.last_end = start, self._current.end
        return start

    def stop(self) -> None:
        now = self.loop.time()
        if self._current is not None:
            self._current.stop(now)
            self._current = None
        if self.last_end is not None and self.last_end > now:
            self.last_end = now

    def _state(self) -> str:
        return "failed" if self.failed and not self.closed else super()._state()


class SounddeviceSpeaker(Speaker):
    """The sound card, through PortAudio (sounddevice); ``device`` is a PortAudio device
    name or index, or None for the default output."""

    backend = "sounddevice"

    def __init__(self, loop: asyncio.AbstractEventLoop, device: str | int | None = None):
        super().__init__(loop)
        try:
            import sounddevice
        except OSError as exc:  # PortAudio library missing
            raise DriverUnavailable(f"sounddevice speaker: PortAudio is not available ({exc})") from None
        self._sd = sounddevice
        self.device = device
        try:
            info = sounddevice.query_devices(device, kind="output")
        except (sounddevice.PortAudioError, ValueError) as exc:
            raise DriverUnavailable(
                f"sounddevice speaker: no audio output device"
                f"{'' if device is None else f' {device!r}'} ({exc}); "
                "check the sound card, the 'audio' group, or use the simulated speaker") from None
        self.device_name = info["name"]
        self.latency_s = float(info.get("default_low_output_latency", 0.0))

    def play(self, samples: np.ndarray, rate: int, label: str = "") -> float:
        self._check_open()
        samples = _mono(samples, rate)
        start = self.loop.time()
        try:
            # Non-blocking: PortAudio plays from its own thread; a new play stops the old one.
            self._sd.play(samples, rate, device=self.device, blocking=False)
        except (self._sd.PortAudioError, ValueError) as exc:
            raise DriverFault(f"sounddevice speaker {self.device_name!r}: playback failed ({exc})") from None
        start += self.latency_s
        self.last_start, self.last_end = start, start + self.duration(samples, rate)
        return start

    def stop(self) -> None:
        try:
            self._sd.stop()
        except self._sd.PortAudioError:
            pass  # nothing was playing, or the card is gone: silence either way
        now = self.loop.time()
        if self.last_end is not None and self.last_end > now:
            self.last_end = now

    def __repr__(self) -> str:
        return f"<SounddeviceSpeaker {self.device_name!r} {self._state()}>"


def open_speaker(backend: str, config: Any = None, *, loop: asyncio.AbstractEventLoop,
                 room: Room | None = None, **kw: Any) -> Speaker:
    """The speaker named in the configuration's [drivers] section. ``room`` is the
    simulated acoustic space (shared with the simulated microphone)."""
    cls = pick_backend("speaker", backend, BACKENDS)
    if backend == "simulated":
        return cls(loop, room, **kw)
    return cls(loop, **kw)

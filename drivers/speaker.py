"""The speaker that plays the spoken notice.

``play`` never blocks: the daemon must keep serving the button and the LEDs while the
notice plays. It returns the loop time at which playback starts, which the daemon notes
in the recording; a broken speaker raises ``DriverFault`` so the daemon can tell the
agent (haptic "notice not played") to say the notice aloud.

Each play leaves a :class:`PlaybackReport`: what the output itself confirmed (every frame
handed over, the stream ran to its end, no underflow). Only a real output's complete
report lets a recording say the notice was given (CSI L241-2); the simulated speaker's
report says it was simulated.
"""

from __future__ import annotations

import asyncio
import io
import struct
import wave
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivers.acoustics import Playback, Room
from drivers.device import Device
from drivers.errors import BadAudioFile, DriverFault, DriverUnavailable
from drivers.registry import pick_backend

BACKENDS = {"simulated": "drivers.speaker:SimulatedSpeaker",
            "sounddevice": "drivers.speaker:SounddeviceSpeaker"}


# The output buffer PortAudio is asked for (at least): see SounddeviceSpeaker.play.
OUTPUT_BUFFER_S = 0.5

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


@dataclass
class PlaybackReport:
    """What the output confirmed of one playback. ``finished`` is set by the output when
    the stream ended on its own (PortAudio's finished callback, the simulated room's
    clock); ``cut`` when it was stopped before (a new sound, ``stop()``, ``close()``)."""

    backend: str
    frames: int             # frames to play
    written: int = 0        # frames handed to the output
    underflows: int = 0     # callbacks the output reported starved
    finished: bool = False
    cut: bool = False
    error: str = ""

    @property
    def simulated(self) -> bool:
        return self.backend == "simulated"

    @property
    def complete(self) -> bool:
        return (self.finished and not self.cut and not self.error and not self.underflows
                and self.written == self.frames)

    def problem(self) -> str | None:
        """Why the playback cannot be said to have run to its end, or None."""
        if self.error:
            return self.error
        if self.cut:
            return f"playback cut after {self.written} of {self.frames} frames"
        if self.underflows:
            return f"the output underflowed {self.underflows} times"
        if not self.finished:
            return f"the output has not confirmed the end ({self.written} of {self.frames} frames written)"
        if self.written != self.frames:
            return f"{self.written} of {self.frames} frames written"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "written": self.written, "underflows": self.underflows,
                "finished": self.finished, "cut": self.cut}


class Speaker(Device, ABC):
    """Plays sound without blocking the loop."""

    backend = ""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.closed = False
        self.last_start: float | None = None
        self.last_end: float | None = None
        self.last_report: PlaybackReport | None = None

    def report(self) -> PlaybackReport | None:
        """What the output confirmed of the last playback (None before any)."""
        return self.last_report

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
        self.muted = False
        self._current: Playback | None = None

    def fail(self, broken: bool = True) -> None:
        self.failed = bool(broken)
        if broken:
            self.stop()

    def mute(self, muted: bool = True) -> None:
        """A speaker whose driver works but which emits nothing (a torn cone, a cut wire):
        only the microphone can tell."""
        self.muted = bool(muted)

    def play(self, samples: np.ndarray, rate: int, label: str = "") -> float:
        self._check_open()
        samples = _mono(samples, rate)
        if self.failed:
            raise DriverFault("simulated speaker failed: no sound output")
        start = self.loop.time() + self.latency_s
        self.stop()
        self._current = self.room.play(samples * 0.0 if self.muted else samples, rate, start, label)
        self.last_start, self.last_end = start, self._current.end
        self.last_report = PlaybackReport(self.backend, len(samples))
        return start

    def report(self) -> PlaybackReport | None:
        report = self.last_report
        if report is not None and not report.cut and self.last_start is not None:
            # the room's clock is the output: what has played by now was written
            played = (self.loop.time() - self.last_start) / (self.last_end - self.last_start)
            report.written = int(report.frames * min(max(played, 0.0), 1.0))
            report.finished = played >= 1.0
        return report

    def stop(self) -> None:
        now = self.loop.time()
        if self._current is not None:
            if self._current.end > now:
                self.report()
                if self.last_report is not None:
                    self.last_report.cut = True
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
        self._stream = None
        self.latency_s = max(float(info.get("default_high_output_latency", 0.0)), OUTPUT_BUFFER_S)

    def play(self, samples: np.ndarray, rate: int, label: str = "") -> float:
        self._check_open()
        samples = _mono(samples, rate)
        self.stop()
        report = PlaybackReport(self.backend, len(samples))
        sd = self._sd

        def feed(outdata, frames, time_info, status):  # PortAudio's thread
            if status.output_underflow and 0 < report.written < report.frames:
                report.underflows += 1  # a gap inside the notice (one before or after it is silence)
            chunk = samples[report.written:report.written + frames]
            outdata[:len(chunk), 0] = chunk
            outdata[len(chunk):] = 0
            report.written += len(chunk)
            if report.written >= report.frames:
                raise sd.CallbackStop  # PortAudio drains what it holds, then calls finished

        def finished():  # also called after abort(); stop() marks that case as cut first
            report.finished = True

        start = self.loop.time()
        try:
            # Non-blocking: PortAudio plays from its own thread; a new play stops the old one.
            # A deep buffer: a notice starting half a second later is nothing, a gap in
            # it is a notice not given; the buffer rides out a busy CPU.
            stream = sd.OutputStream(samplerate=rate, channels=1, dtype="float32", device=self.device,
                                     latency=self.latency_s, callback=feed, finished_callback=finished)
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise DriverFault(f"sounddevice speaker {self.device_name!r}: playback failed ({exc})") from None
        # ``start`` is the stream's start: the sound comes out up to the buffer's latency
        # later, which the microphone check measures (its lag).
        self._stream = stream
        self.last_start, self.last_end = start, start + self.duration(samples, rate)
        self.last_report = report
        return start

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            report = self.last_report
            if report is not None and not report.finished:
                report.cut = True
            try:
                stream.abort()
                stream.close()
            except self._sd.PortAudioError:
                pass  # the card is gone: silence either way
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

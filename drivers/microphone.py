"""The microphone: blocks of mono float32 samples, on the loop thread.

A sound card's clock is never exactly the nominal rate, so every block carries both its
position in the card's own sample count and the loop time it was captured at; the
pipeline (recorder.media.audio) corrects the drift against the loop's clock.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from drivers.acoustics import Room
from drivers.device import Source
from drivers.errors import DriverUnavailable
from drivers.registry import pick_backend

BACKENDS = {
    "simulated": "drivers.microphone:SimulatedMicrophone",
    "sounddevice": "drivers.microphone:SoundDeviceMicrophone",
}


@dataclass
class AudioBlock:
    samples: np.ndarray = field(repr=False)  # float32, mono
    first_sample: int  # position in the card's own sample count
    capture_time: float  # loop time of the block's last sample


class Microphone(Source, ABC):
    kind = "microphone"
    backend = "abstract"

    def __init__(self, rate: int):
        super().__init__()
        self.rate = int(rate)
        self.listeners: list[Callable[[AudioBlock], None]] = []

    def listen(self, listener: Callable[[AudioBlock], None]) -> None:
        """Also hand every block to ``listener`` (on the loop thread): the notice checks
        that the microphone heard it, from the very blocks the recording gets."""
        self.listeners.append(listener)

    def _deliver(self, block: AudioBlock) -> None:
        self._callback(block)
        for listener in self.listeners:
            listener(block)

    @abstractmethod
    def start(self, loop, callback: Callable[[AudioBlock], None]) -> None:
        """Begin delivering blocks to ``callback`` on the loop thread."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.rate} Hz {self._run_state()}>"


class SimulatedMicrophone(Microphone):
    """Hears the shared ``Room`` (street ambience plus whatever the speaker played),
    through a sound card whose clock runs ``ppm`` fast. ``fail()`` makes it stop
    delivering (a torn cable), ``recover()`` resumes."""

    backend = "simulated"

    def __init__(self, rate: int = 48000, *, room=None, ppm: float = 50.0, block_s: float = 0.02):
        super().__init__(rate)
        self.room = room if room is not None else Room()
        self.ppm = float(ppm)
        self.block_s = float(block_s)
        self.failed = False
        self._true_rate = self.rate * (1.0 + self.ppm * 1e-6)
        self._produced = 0
        self._handle = None

    def start(self, loop, callback) -> None:
        if not self._begin(loop, callback):
            return
        self._t0 = loop.time()
        self._ticks = 0
        self._started = True
        self._schedule()

    def _schedule(self) -> None:
        self._ticks += 1
        self._handle = self._loop.call_at(self._t0 + self._ticks * self.block_s, self._tick)

    def _tick(self) -> None:
        if self._closed:
            return
        now = self._loop.time()
        due = int((now - self._t0) * self._true_rate)
        n = due - self._produced
        if n > 0:
            start = self._produced
            self._produced = due
            if not self.failed:
                samples = self.room.render(self._t0 + start / self._true_rate, n, self._true_rate)
                self._deliver(AudioBlock(samples, start, now))
        self._schedule()

    def fail(self) -> None:
        self.failed = True

    def recover(self) -> None:
        self.failed = False

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        super().close()


class SoundDeviceMicrophone(Microphone):
    """A real sound card through PortAudio (sounddevice); PortAudio's thread hands blocks
    over to the loop."""

    backend = "sounddevice"

    def __init__(self, rate: int = 48000, *, device=None, block_s: float = 0.02):
        super().__init__(rate)
        self.device = device
        self.blocksize = int(rate * block_s)
        self._stream = None
        self._produced = 0
        try:  # a missing sound card fails here, where the hardware layer reports it
            import sounddevice
            sounddevice.query_devices(device, kind="input")
        except (ImportError, OSError) as exc:
            raise DriverUnavailable(f"sounddevice/PortAudio unavailable: {exc}") from None
        except Exception as exc:  # PortAudioError, ValueError: no such input device
            raise DriverUnavailable(f"no microphone {device!r}: {exc}") from None

    def start(self, loop, callback) -> None:
        if not self._begin(loop, callback):
            return
        try:
            import sounddevice
        except (ImportError, OSError) as exc:
            raise DriverUnavailable(f"sounddevice/PortAudio unavailable: {exc}") from None

        def on_audio(indata, frames, time_info, status):
            block = AudioBlock(indata[:, 0].astype(np.float32, copy=True), self._produced, time.monotonic())
            self._produced += frames
            try:
                loop.call_soon_threadsafe(self._deliver, block)
            except RuntimeError:  # loop closed: shutting down
                pass

        try:
            self._stream = sounddevice.InputStream(samplerate=self.rate, channels=1, dtype="float32",
                                                   blocksize=self.blocksize, device=self.device,
                                                   callback=on_audio)
            self._stream.start()
        except Exception as exc:  # PortAudioError has no common base we can import lazily
            raise DriverUnavailable(f"cannot open microphone {self.device!r}: {exc}") from None
        self._started = True

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None
        super().close()


def open_microphone(backend: str, config, **kw) -> Microphone:
    """The microphone for ``backend`` at the configuration's [audio] sample rate."""
    return pick_backend("microphone", backend, BACKENDS)(config.audio.sample_rate, **kw)

"""The simulated acoustic space shared by the simulated speaker and microphone.

What the speaker plays is recorded with its start time on the loop's clock; the
microphone renders any span of time and hears the street ambience mixed with whatever
was playing then. Every sound is a function of absolute time (ambience and street events
are derived from the seed by hashing, never from a running generator), so rendering a
span in one call or in many small chunks gives the same samples, and two runs with the
same seed give the same sound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A counter-based hash (splitmix64 finaliser) over uint64 arrays."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def _noise(seed: int, salt: int, index: np.ndarray) -> np.ndarray:
    """Uniform noise in [-1, 1) for integer sample indices, the same on every call."""
    key = np.uint64((seed * 0x100000001B3 + salt * 0x9E3779B1) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        h = _splitmix64(index.astype(np.int64).view(np.uint64) ^ key)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53) * 2.0 - 1.0


@dataclass
class Playback:
    """One sound emitted by the speaker; ``end`` moves earlier if playback is cut."""

    start: float
    rate: int
    samples: np.ndarray = field(repr=False)
    label: str = ""
    end: float = 0.0

    def __post_init__(self) -> None:
        self.end = self.start + len(self.samples) / self.rate

    @property
    def duration(self) -> float:
        return self.end - self.start

    def stop(self, at: float) -> None:
        """Cut the sound at loop time ``at`` (a new play replaces the current one)."""
        self.end = max(self.start, min(self.end, at))


@dataclass(frozen=True)
class StreetEvent:
    """A passing sound of the street: a car, a horn, a voice, footsteps."""

    kind: str
    start: float
    duration: float
    level: float
    pitch_hz: float

    @property
    def end(self) -> float:
        return self.start + self.duration


class Room:
    """Ambient street sound plus everything the speaker played, rendered on demand.

    ``noise_level`` is the RMS of the steady background (about -46 dBFS by default);
    ``events_per_minute`` is the mean rate of louder street sounds; ``speaker_gain`` is
    how loud the camera's own speaker reaches its own microphone (they are centimetres
    apart, so it dominates the ambience).
    """

    SLOT_S = 10.0  # street events are drawn per slot of this length
    KINDS = ("car", "horn", "voice", "footsteps")

    def __init__(self, seed: int = 0, *, noise_level: float = 0.005, events_per_minute: float = 3.0,
                 speaker_gain: float = 0.5, keep_s: float = 600.0):
        if noise_level < 0 or events_per_minute < 0 or speaker_gain < 0:
            raise ValueError("noise_level, events_per_minute and speaker_gain must not be negative")
        self.seed = int(seed)
        self.noise_level = float(noise_level)
        self.events_per_minute = float(events_per_minute)
        self.speaker_gain = float(speaker_gain)
        self.keep_s = float(keep_s)
        self.playbacks: list[Playback] = []
        self._slots: dict[int, list[StreetEvent]] = {}

    # -- what the speaker emits ------------------------------------------------------

    def play(self, samples: np.ndarray, rate: int, start_time: float, label: str = "") -> Playback:
        """Record that the speaker emits ``samples`` (float32 mono at ``rate``) from
        ``start_time`` on the loop's clock."""
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"the room takes mono samples, got shape {samples.shape}")
        if rate <= 0:
            raise ValueError(f"sample rate must be positive, got {rate}")
        playback = Playback(float(start_time), int(rate), samples, label)
        self.playbacks.append(playback)
        return playback

    def playing_at(self, t: float) -> Playback | None:
        """The playback audible at loop time ``t``, if any."""
        for playback in reversed(self.playbacks):
            if playback.start <= t < playback.end:
                return playback
        return None

    # -- what the microphone hears ---------------------------------------------------

    def street_events(self, t_start: float, t_end: float) -> list[StreetEvent]:
        """The street events that overlap [t_start, t_end), deterministic from the seed."""
        events = []
        # An event may last up to one slot, so look one slot back.
        first = math.floor(t_start / self.SLOT_S) - 1
        last = math.floor(t_end / self.SLOT_S)
        for slot in range(first, last + 1):
            for event in self._slot_events(slot):
                if event.start < t_end and event.end > t_start:
                    events.append(event)
        return events

    def _slot_events(self, slot: int) -> list[StreetEvent]:
        cached = self._slots.get(slot)
        if cached is None:
            if len(self._slots) > 64:  # the microphone moves forward: old slots are not asked again
                self._slots.clear()
            cached = self._slots[slot] = self._draw_slot(slot)
        return cached

    def _draw_slot(self, slot: int) -> list[StreetEvent]:
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, slot & 0xFFFFFFFF, 0x57EE7])
        count = rng.poisson(self.events_per_minute * self.SLOT_S / 60.0)
        events = []
        for _ in range(count):
            kind = self.KINDS[int(rng.integers(len(self.KINDS)))]
            duration = {"car": rng.uniform(3.0, 8.0), "horn": rng.uniform(0.3, 1.2),
                        "voice": rng.uniform(0.8, 3.0), "footsteps": rng.uniform(2.0, 6.0)}[kind]
            pitch = {"car": rng.uniform(60, 120), "horn": rng.uniform(350, 500),
                     "voice": rng.uniform(110, 240), "footsteps": rng.uniform(1.6, 2.2)}[kind]
            events.append(StreetEvent(kind, slot * self.SLOT_S + rng.uniform(0.0, self.SLOT_S),
                                      float(duration), float(rng.uniform(0.02, 0.12)), float(pitch)))
        return events

    def render(self, t_start: float, n_samples: int, rate: int) -> np.ndarray:
        """The sound in the room over [t_start, t_start + n_samples / rate), float32 mono."""
        if n_samples < 0 or rate <= 0:
            raise ValueError(f"cannot render {n_samples} samples at {rate} Hz")
        if n_samples == 0:
            return np.zeros(0, dtype=np.float32)
        t = t_start + np.arange(n_samples, dtype=np.float64) / rate
        index = np.floor(t * rate + 0.5).astype(np.int64)  # the same grid whatever the chunking
        out = self.noise_level * 1.7 * _noise(self.seed, 1, index)  # uniform noise: RMS = a/sqrt(3)
        out += self.noise_level * 0.8 * np.sin(2 * np.pi * 50.0 * t)  # distant traffic rumble
        t_end = t_start + n_samples / rate
        for event in self.street_events(t_start, t_end):
            out += self._render_event(event, t, index)
        for playback in self.playbacks:
            if playback.start < t_end and playback.end > t_start:
                out += self.speaker_gain * self._render_playback(playback, t)
        self._forget(t_start)
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    def _render_event(self, event: StreetEvent, t: np.ndarray, index: np.ndarray) -> np.ndarray:
        inside = (t >= event.start) & (t < event.end)
        local = np.where(inside, t - event.start, 0.0)
        phase = local / event.duration
        if event.kind == "car":  # swells as it approaches, fades as it goes
            envelope = np.sin(np.pi * phase) ** 2
            sound = 0.6 * _noise(self.seed, 2, index) + np.sin(2 * np.pi * event.pitch_hz * local)
        elif event.kind == "horn":
            envelope = np.minimum(1.0, np.minimum(local, event.duration - local) / 0.03)
            sound = (np.sign(np.sin(2 * np.pi * event.pitch_hz * local))
                     + np.sign(np.sin(2 * np.pi * event.pitch_hz * 1.26 * local))) * 0.4
        elif event.kind == "voice":  # a voiced buzz with a syllable rhythm
            envelope = np.maximum(0.0, np.sin(2 * np.pi * 4.0 * local)) * np.sin(np.pi * phase)
            wobble = 1.0 + 0.1 * np.sin(2 * np.pi * 0.7 * local)
            sound = sum(np.sin(2 * np.pi * k * event.pitch_hz * wobble * local) / k for k in range(1, 6))
        else:  # footsteps: short clicks at the walking cadence
            step = (local * event.pitch_hz) % 1.0
            envelope = np.exp(-step / (0.02 * event.pitch_hz))
            sound = _noise(self.seed, 3, index)
        return np.where(inside, event.level * envelope * sound, 0.0)

    @staticmethod
    def _render_playback(playback: Playback, t: np.ndarray) -> np.ndarray:
        # Position in the played samples; linear interpolation resamples to the mic's rate.
        position = (t - playback.start) * playback.rate
        audible = (t >= playback.start) & (t < playback.end)
        sound = np.interp(position, np.arange(len(playback.samples)), playback.samples, left=0.0, right=0.0)
        return np.where(audible, sound, 0.0)

    def _forget(self, t: float) -> None:
        # Drop the samples of sounds long finished; the microphone never goes back that far.
        horizon = t - self.keep_s
        if self.playbacks and self.playbacks[0].end < horizon:
            self.playbacks = [p for p in self.playbacks if p.end >= horizon]

    def __repr__(self) -> str:
        return (f"<Room seed={self.seed} noise={self.noise_level} events/min={self.events_per_minute} "
                f"playbacks={len(self.playbacks)}>")

"""What the agent sees and feels: the red and green lights and the vibration motor.

The red light is driven by the recording state alone (``recording_light``); nothing else
may switch it, and no setting turns it off. It is a ``RedLight``, which knows whether it can
be driven (recorder/visual_signal.py watches it). Haptic and green-light patterns are timed on
the loop's clock, so they run the same in a scenario. Every change is kept in a timeline
(loop time, what, state) for the demo's summary and the tests.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from recorder.visual_signal import RedLight

log = logging.getLogger(__name__)

# Haptic patterns: (on, off) pairs in seconds. The agent must tell them apart by feel alone:
# every two patterns differ in pulse count, or in one pulse or gap by at least 2x and 150 ms
# (tests/test_gestures.py checks the table; the README prints it).
PATTERNS: dict[str, tuple[tuple[float, float], ...]] = {
    "start": ((0.25, 0.0),),
    "stop": ((0.12, 0.12), (0.12, 0.0)),
    "reminder": ((0.08, 0.0),),
    "bookmark": ((0.08, 0.08),) * 3,                         # three taps
    "error": ((0.5, 0.15), (0.1, 0.15), (0.5, 0.0)),          # long-short-long
    "notice_not_played": ((0.1, 0.1),) * 5,                  # five quick buzzes: say it aloud
    "warning": ((0.1, 0.3), (0.1, 0.0)),                     # low storage / low battery
    "not_assigned": ((0.3, 0.2),) * 4,                       # four firm buzzes at arming: no agent number
    "offload_due": ((0.6, 0.3), (0.6, 0.0)),                 # two long buzzes at arming: dock the camera
}
# The green light flashes with the error pattern, the red one never does.
ERROR_FLASHES = 4
# Arming signals the green light also shows, as (flashes, half-period in seconds): each its
# own rhythm, slower than the error's 4 x 0.15 s, so the agent can tell them apart by sight.
GREEN_SIGNALS: dict[str, tuple[int, float]] = {
    "error": (ERROR_FLASHES, 0.15),
    "not_assigned": (4, 0.5),
    "offload_due": (2, 1.0),
}


@dataclass(frozen=True)
class Change:
    time: float
    device: str   # red, green, haptic
    on: bool
    why: str


class Feedback:
    def __init__(self, leds, haptic, loop: asyncio.AbstractEventLoop, *, leds_fault: str | None = None):
        self.leds = leds
        self.red = RedLight(leds, leds_fault)
        self.haptic = haptic
        self._loop = loop
        self.timeline: list[Change] = []
        self._tasks: set[asyncio.Task] = set()
        self._green_wanted = False
        self._haptic_busy = asyncio.Lock()
        # The green light or motor that failed, with why. A failure is kept here and never
        # raised: an error pattern that raised would report itself by another error pattern,
        # without end. (The red light has its own watch, recorder/visual_signal.py.)
        self.failed: dict[str, str] = {}

    def _set(self, device: str, on: bool, why: str) -> None:
        try:
            if device == "haptic":
                if self.haptic is not None:
                    self.haptic.set(on)
            elif self.leds is not None:
                self.leds.set(device, on)
        except Exception as exc:  # noqa: BLE001 - any driver's failure: kept, shown in status
            if device not in self.failed:
                log.error("%s cannot be driven: %r", device, exc)
            self.failed[device] = f"{device} cannot be driven: {exc}"
        else:
            self.failed.pop(device, None)
        finally:
            self.timeline.append(Change(self._loop.time(), device, on, why))

    # -- lights ----------------------------------------------------------------------
    def recording_light(self, on: bool, why: str) -> bool:
        """True when the light is as asked (set, and read back where a sense input is wired)."""
        try:
            return self.red.drive(on)
        finally:
            self.timeline.append(Change(self._loop.time(), "red", on, why))

    def armed_light(self, on: bool, why: str = "armed") -> None:
        self._green_wanted = on
        self._set("green", on, why)

    # -- patterns --------------------------------------------------------------------
    def pulse(self, pattern: str) -> None:
        """Play a haptic pattern without waiting for it (patterns queue one after another)."""
        self._spawn(self._play(pattern))

    def error(self, why: str) -> None:
        """The error pattern: the green light flashes and the motor buzzes long-short-long."""
        self.signal("error", "error: " + why)

    def signal(self, pattern: str, why: str) -> None:
        """A haptic pattern with its own green-light rhythm (``GREEN_SIGNALS``)."""
        self.pulse(pattern)
        self._spawn(self._flash_green(why, *GREEN_SIGNALS[pattern]))

    async def _play(self, pattern: str) -> None:
        async with self._haptic_busy:
            for on_s, off_s in PATTERNS[pattern]:
                self._set("haptic", True, pattern)
                await asyncio.sleep(on_s)
                self._set("haptic", False, pattern)
                if off_s:
                    await asyncio.sleep(off_s)

    async def _flash_green(self, why: str, flashes: int, half: float) -> None:
        for _ in range(flashes):
            self._set("green", not self._green_wanted, why)
            await asyncio.sleep(half)
            self._set("green", self._green_wanted, why)
            await asyncio.sleep(half)

    def _spawn(self, coro) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for the patterns in progress (at shutdown, so the agent feels the stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def lit(self, device: str) -> bool:
        for change in reversed(self.timeline):
            if change.device == device:
                return change.on
        return False

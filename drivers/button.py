"""The record button: a momentary switch to ground on a GPIO pin.

The driver reports raw edges (pressed or released) to a callback on the asyncio loop's
thread; gestures are classified by the daemon from those edges on its own clock, so the
same code runs faster than real time in a simulation. The simulated backend is the real
gpiozero ``Button`` on a ``MockFactory`` pin that a scenario drives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from drivers.device import Device
from drivers.gpio import pin_factory
from drivers.registry import pick_backend

BACKENDS = {"simulated": "drivers.button:SimulatedButton", "gpiozero": "drivers.button:GpioButton"}


class GpioButton(Device):
    """A gpiozero Button; edges are handed to the loop thread-safely."""

    backend = "gpiozero"

    def __init__(self, pin: int):
        from gpiozero import Button

        self.pin_number = pin
        # No bounce_time: debouncing is the daemon's, on the leading edge.
        self._button = Button(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory(self.backend))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callback: Callable[[bool], None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop, callback: Callable[[bool], None]) -> None:
        self._loop, self._callback = loop, callback
        self._button.when_pressed = lambda: self._edge(True)
        self._button.when_released = lambda: self._edge(False)

    def _edge(self, pressed: bool) -> None:
        # gpiozero calls this on its own thread (or the driving thread in simulation).
        if self._loop is not None and self._callback is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._callback, pressed)

    @property
    def is_pressed(self) -> bool:
        return bool(self._button.is_pressed)

    def close(self) -> None:
        if self._button is not None:
            self._button.close()
            self._button = None

    def __repr__(self) -> str:
        state = "closed" if self._button is None else ("pressed" if self.is_pressed else "released")
        return f"<{type(self).__name__} pin={self.pin_number} {state}>"


class SimulatedButton(GpioButton):
    """The same gpiozero Button on a mock pin; ``press``/``release`` drive the pin."""

    backend = "simulated"

    def press(self) -> None:
        self._button.pin.drive_low()

    def release(self) -> None:
        self._button.pin.drive_high()


def open_button(backend: str, pin: int) -> GpioButton:
    return pick_backend("button", backend, BACKENDS)(pin)

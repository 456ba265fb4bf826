"""The vibration motor, switched by a transistor on a GPIO pin (gpiozero
DigitalOutputDevice). Patterns are timed by the daemon on its own clock."""

from __future__ import annotations

from drivers.device import Device
from drivers.gpio import pin_factory
from drivers.registry import pick_backend

BACKENDS = {"simulated": "drivers.haptic:SimulatedHaptic", "gpiozero": "drivers.haptic:GpioHaptic"}


class GpioHaptic(Device):
    backend = "gpiozero"

    def __init__(self, pin: int):
        from gpiozero import DigitalOutputDevice

        self.pin_number = pin
        self._motor = DigitalOutputDevice(pin, pin_factory=pin_factory(self.backend))

    def set(self, on: bool) -> None:
        self._motor.on() if on else self._motor.off()

    @property
    def running(self) -> bool:
        return bool(self._motor.value)

    def close(self) -> None:
        if self._motor is not None:
            self._motor.close()
            self._motor = None

    def __repr__(self) -> str:
        state = "closed" if self._motor is None else ("on" if self.running else "off")
        return f"<{type(self).__name__} pin={self.pin_number} {state}>"


class SimulatedHaptic(GpioHaptic):
    backend = "simulated"


def open_haptic(backend: str, pin: int) -> GpioHaptic:
    return pick_backend("haptic", backend, BACKENDS)(pin)

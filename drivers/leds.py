"""The status lights: red (recording) and green (armed / status).

Both are gpiozero LEDs; the simulated backend uses gpiozero's MockFactory pins, so the
state a test reads is the pin's own.
"""

from __future__ import annotations

from drivers.device import Device
from drivers.gpio import pin_factory
from drivers.registry import pick_backend

BACKENDS = {"simulated": "drivers.leds:SimulatedLeds", "gpiozero": "drivers.leds:GpioLeds"}


class GpioLeds(Device):
    backend = "gpiozero"

    def __init__(self, red_pin: int, green_pin: int):
        from gpiozero import LED

        factory = pin_factory(self.backend)
        self.red = LED(red_pin, pin_factory=factory)
        self.green = LED(green_pin, pin_factory=factory)

    def set(self, name: str, on: bool) -> None:
        led = getattr(self, name)
        led.on() if on else led.off()

    def is_lit(self, name: str) -> bool:
        return bool(getattr(self, name).is_lit)

    def close(self) -> None:
        for name in ("red", "green"):
            led = getattr(self, name, None)
            if led is not None:
                led.close()
                setattr(self, name, None)

    def __repr__(self) -> str:
        if self.red is None:
            return f"<{type(self).__name__} closed>"
        return f"<{type(self).__name__} red={'on' if self.is_lit('red') else 'off'} " \
               f"green={'on' if self.is_lit('green') else 'off'}>"


class SimulatedLeds(GpioLeds):
    backend = "simulated"


def open_leds(backend: str, red_pin: int, green_pin: int) -> GpioLeds:
    return pick_backend("leds", backend, BACKENDS)(red_pin, green_pin)

"""The status lights: red (recording) and green (armed / status), and the red light's
optional sense input (``[gpio] red_led_sense``: a comparator on the LED's current, high
while it is really lit).

All are gpiozero devices; the simulated backend uses gpiozero's MockFactory pins, so the
state a test reads is the pin's own. The simulated red LED drives its sense pin as the
real circuit would (high while lit), unless a fault is injected (``fail``).
"""

from __future__ import annotations

from drivers.device import Device
from drivers.errors import DriverFault, DriverUnavailable
from drivers.gpio import pin_factory
from drivers.registry import pick_backend

BACKENDS = {"simulated": "drivers.leds:SimulatedLeds", "gpiozero": "drivers.leds:GpioLeds"}


class GpioLeds(Device):
    backend = "gpiozero"

    def __init__(self, red_pin: int, green_pin: int, red_sense_pin: int | None = None):
        from gpiozero import LED, DigitalInputDevice
        from gpiozero.exc import GPIOZeroError

        factory = pin_factory(self.backend)
        self.red = self.green = self.red_sense = None
        part = f"red light on GPIO{red_pin}"
        try:
            self.red = LED(red_pin, pin_factory=factory)
            part = f"green light on GPIO{green_pin}"
            self.green = LED(green_pin, pin_factory=factory)
            if red_sense_pin is not None:
                part = f"red light sense input on GPIO{red_sense_pin}"
                self.red_sense = DigitalInputDevice(red_sense_pin, pull_up=False, pin_factory=factory)
        except GPIOZeroError as exc:   # a pin in use or refused: a driver fault, never a crash
            self.close()
            raise DriverUnavailable(f"{part}: {exc}") from None

    def set(self, name: str, on: bool) -> None:
        led = getattr(self, name)
        if led is None:
            raise DriverFault(f"{name} light: closed")
        led.on() if on else led.off()

    def is_lit(self, name: str) -> bool:
        """What the output is set to (not what the LED shows: see ``red_reads``)."""
        return bool(getattr(self, name).is_lit)

    def red_reads(self, lit: bool, settle_s: float = 0.0) -> bool | None:
        """Whether the sense input reads the red light ``lit`` (waiting up to ``settle_s``
        for it to follow a change); None when no sense input is wired."""
        if self.red_sense is None:
            return None
        sense = self.red_sense
        return bool(sense.wait_for_active(settle_s) if lit else sense.wait_for_inactive(settle_s))

    def close(self) -> None:
        for name in ("red_sense", "red", "green"):
            device = getattr(self, name, None)
            if device is not None:
                device.close()
                setattr(self, name, None)

    def __repr__(self) -> str:
        if self.red is None:
            return f"<{type(self).__name__} closed>"
        return f"<{type(self).__name__} red={'on' if self.is_lit('red') else 'off'} " \
               f"green={'on' if self.is_lit('green') else 'off'}>"


class SimulatedLeds(GpioLeds):
    """Mock pins; the red light's sense pin follows the LED like the real circuit's.

    Fault injection for tests and scenarios: ``fail("output")`` makes setting the red
    light raise (a dead GPIO line or driver); ``fail("dark")`` leaves the output working
    but the LED unlit (burnt out, connector off), so its sense stays low; ``fail("lit")``
    leaves it lit whatever it is set to (a shorted switch), its sense high; ``recover()``
    ends any."""

    backend = "simulated"
    FAULTS = ("output", "dark", "lit")

    def __init__(self, red_pin: int, green_pin: int, red_sense_pin: int | None = None):
        super().__init__(red_pin, green_pin, red_sense_pin)
        self.fault: str | None = None

    def set(self, name: str, on: bool) -> None:
        if name == "red" and self.fault == "output":
            raise DriverFault("red light: the output does not respond")
        super().set(name, on)
        if name == "red":
            self._sense_follows()

    def fail(self, kind: str = "dark") -> None:
        if kind not in self.FAULTS:
            raise ValueError(f"unknown red light fault {kind!r}; faults: {', '.join(self.FAULTS)}")
        self.fault = kind
        self._sense_follows()

    def recover(self) -> None:
        self.fault = None
        self._sense_follows()

    def _sense_follows(self) -> None:
        if self.red_sense is None or self.red is None:
            return
        lit = self.fault == "lit" or (bool(self.red.is_lit) and self.fault != "dark")
        pin = self.red_sense.pin
        pin.drive_high() if lit else pin.drive_low()


def open_leds(backend: str, red_pin: int, green_pin: int, red_sense_pin: int | None = None) -> GpioLeds:
    return pick_backend("leds", backend, BACKENDS)(red_pin, green_pin, red_sense_pin)

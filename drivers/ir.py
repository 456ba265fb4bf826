"""Night vision: the IR cut filter and the IR illuminator.

Both are gpiozero OutputDevices. Night mode pulls the IR cut filter out of the light path
(so the sensor sees infrared) and lights the illuminator. The simulated backend uses
gpiozero's MockFactory pins, so tests read the pins' own state and history.
"""

from __future__ import annotations

from drivers.device import Device
from drivers.gpio import pin_factory
from drivers.registry import pick_backend

BACKENDS = {"simulated": "drivers.ir:SimulatedIr", "gpiozero": "drivers.ir:GpioIr"}


class GpioIr(Device):
    """IR cut filter (pin high = filter removed) and IR illuminator (pin high = lit)."""

    backend = "gpiozero"

    def __init__(self, cut_pin: int, illuminator_pin: int):
        from gpiozero import OutputDevice

        factory = pin_factory(self.backend)
        self.cut = OutputDevice(cut_pin, initial_value=False, pin_factory=factory)
        self.illuminator = OutputDevice(illuminator_pin, initial_value=False, pin_factory=factory)

    @property
    def night(self) -> bool:
        return bool(self.cut is not None and self.cut.value and self.illuminator.value)

    def set_night(self, on: bool) -> None:
        # Filter first, then light: never flood the sensor with IR through the filter.
        if on:
            self.cut.on()
            self.illuminator.on()
        else:
            self.illuminator.off()
            self.cut.off()

    def close(self) -> None:
        for name in ("illuminator", "cut"):
            device = getattr(self, name, None)
            if device is not None:
                device.close()
                setattr(self, name, None)

    def __repr__(self) -> str:
        if self.cut is None:
            return f"<{type(self).__name__} closed>"
        return f"<{type(self).__name__} {'night' if self.night else 'day'}>"


class SimulatedIr(GpioIr):
    backend = "simulated"


def open_ir(backend: str, config, **kw) -> GpioIr:
    """The IR switches for ``backend``, on the pins of the configuration's [gpio] section."""
    return pick_backend("ir", backend, BACKENDS)(config.gpio.ir_cut, config.gpio.ir_illuminator, **kw)

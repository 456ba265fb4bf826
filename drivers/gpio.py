"""Pin factories for the gpiozero devices (button, LEDs, haptic motor, IR switches).

Under simulation every device gets gpiozero's ``MockFactory``, so the real gpiozero
device classes run in tests and scenarios; on the Pi, gpiozero's default factory (lgpio)
is used. One simulated factory is shared by all devices of a daemon, as on a real board.
"""

from __future__ import annotations

from drivers.errors import DriverUnavailable

_mock_factory = None


def pin_factory(backend: str):
    """The pin factory for a backend name: "simulated" or "gpiozero"."""
    global _mock_factory
    if backend == "simulated":
        if _mock_factory is None:
            from gpiozero.pins.mock import MockFactory
            _mock_factory = MockFactory()
        return _mock_factory
    if backend == "gpiozero":
        try:
            from gpiozero import Device
            if Device.pin_factory is None:   # not chosen already (a MockFactory on a test bench)
                from gpiozero.pins.lgpio import LGPIOFactory
                Device.pin_factory = LGPIOFactory()
        except ImportError as exc:
            raise DriverUnavailable(f"gpiozero hardware pins unavailable: {exc}") from None
        return Device.pin_factory
    raise DriverUnavailable(f"no pin factory for backend {backend!r}")


def reset_simulated_pins() -> None:
    """Release every simulated pin (tests and successive simulations start clean)."""
    if _mock_factory is not None:
        _mock_factory.reset()

"""``simcable://NAME/host`` and ``simcable://NAME/device``: an end of a simulated cable
(``drivers.simcable.PtyCable``), opened as the native pyserial port on its pty."""

from __future__ import annotations

import serial

from drivers.errors import DriverUnavailable
from drivers.simcable import resolve


def serial_class_for_url(url: str) -> tuple[str, type[serial.Serial]]:
    """pyserial's hook: the pty path the URL names and the class that opens it."""
    try:
        return resolve(url), serial.Serial
    except DriverUnavailable as exc:
        raise serial.SerialException(str(exc)) from None

"""pieton's pyserial URL handlers, and the one way the project opens a serial port.

pyserial's ``serial_for_url`` picks a backend by the URL's scheme: for ``scheme://...`` it
imports ``protocol_<scheme>`` from each package listed in ``serial.protocol_handler_packages``.
This package is added to that list, so ``simcable://NAME/host`` opens an end of a simulated
cable (``drivers.simcable``) while a plain path such as ``/dev/ttyGS0`` opens the real port.
"""

from __future__ import annotations

import serial


def register() -> None:
    """Let pyserial find the handlers of this package (idempotent)."""
    if __name__ not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(__name__)


def open_serial(url: str, **settings) -> serial.SerialBase:
    """An open port for a path or a URL (``loop://``, ``simcable://NAME/device``...);
    ``settings`` are pyserial's (baudrate, timeout, write_timeout)."""
    register()
    return serial.serial_for_url(url, **settings)

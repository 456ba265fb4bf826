"""Opening the camera's hardware from the configuration's [drivers] section.

Each kind is opened on its own: one that fails (no camera, no GPS, no speaker) is
recorded as a fault and left out, and the daemon runs with what works. Simulated
backends share one acoustic room, so the microphone hears what the speaker plays.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from drivers.acoustics import Room
from drivers.battery import open_battery
from drivers.button import open_button
from drivers.camera import open_camera
from drivers.errors import DriverError
from drivers.gps import open_gps
from drivers.haptic import open_haptic
from drivers.ir import open_ir
from drivers.leds import open_leds
from drivers.microphone import open_microphone
from drivers.speaker import open_speaker

log = logging.getLogger("pieton.hardware")

KINDS = ("leds", "haptic", "button", "speaker", "microphone", "camera", "ir", "gps", "battery")


@dataclass
class Hardware:
    leds: Any = None
    haptic: Any = None
    button: Any = None
    speaker: Any = None
    microphone: Any = None
    camera: Any = None
    ir: Any = None
    gps: Any = None
    battery: Any = None
    room: Any = None
    faults: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        for kind in reversed(KINDS):
            device = getattr(self, kind)
            if device is None:
                continue
            try:
                device.close()
            except Exception:  # closing one device must not keep the others open
                log.exception("closing %s failed", kind)
            setattr(self, kind, None)

    @property
    def simulated(self) -> dict[str, bool]:
        return {kind: getattr(getattr(self, kind), "backend", "") == "simulated" for kind in KINDS}


def _opener(config, loop: asyncio.AbstractEventLoop, room) -> dict[str, Any]:
    d, gpio = config.drivers, config.gpio

    def leds():
        return open_leds(d.leds, gpio.red_led, gpio.green_led, gpio.red_led_sense)

    def haptic():
        return open_haptic(d.haptic, gpio.haptic)

    def button():
        return open_button(d.button, gpio.button)

    def speaker():
        return open_speaker(d.speaker, config, loop=loop, room=room)

    def microphone():
        extra = {"room": room} if d.microphone == "simulated" else {}
        return open_microphone(d.microphone, config, **extra)

    def camera():
        return open_camera(d.camera, config)

    def ir():
        return open_ir(d.ir, config)

    def gps():
        return open_gps(d.gps, config)

    def battery():
        return open_battery(d.battery, config, loop=loop)

    return {"leds": leds, "haptic": haptic, "button": button, "speaker": speaker,
            "microphone": microphone, "camera": camera, "ir": ir, "gps": gps, "battery": battery}


def open_hardware(config, loop: asyncio.AbstractEventLoop, *, simulated_room: bool = True) -> Hardware:
    room = None
    if simulated_room:
        room = Room()
    hardware = Hardware(room=room)
    for kind, open_one in _opener(config, loop, room).items():
        try:
            setattr(hardware, kind, open_one())
        except (DriverError, OSError, ImportError, ValueError) as exc:
            message = f"{kind} ({getattr(config.drivers, kind)}): {exc}"
            hardware.faults[kind] = message
            log.error("hardware fault: %s", message)
    return hardware


"""The battery gauge: charge level and whether the camera is on its charger.

The daemon polls it; below the configured critical level it seals and closes the
recording before power is lost.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from drivers.device import Device
from drivers.errors import DriverFault, DriverUnavailable
from drivers.registry import pick_backend

BACKENDS = {"simulated": "drivers.battery:SimulatedBattery", "sysfs": "drivers.battery:SysfsBattery"}


class Battery(Device, ABC):
    backend = ""

    def __init__(self) -> None:
        self.closed = False

    @abstractmethod
    def percent(self) -> float:
        """Charge level, 0 to 100."""

    @property
    @abstractmethod
    def charging(self) -> bool:
        """True while on external power."""

    def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        if self.closed:
            return f"<{type(self).__name__} closed>"
        try:
            level = f"{self.percent():.1f}%"
        except DriverFault as exc:
            level = f"fault: {exc}"
        return f"<{type(self).__name__} {level}{' charging' if self.charging else ''}>"


class SimulatedBattery(Battery):
    """Drains at ``drain_per_hour`` percent per hour of loop time (charges at
    ``charge_per_hour`` while ``charging``); a scenario sets the level with ``set_level``."""

    backend = "simulated"

    def __init__(self, loop: asyncio.AbstractEventLoop, *, level: float = 100.0,
                 drain_per_hour: float = 10.0, charge_per_hour: float = 40.0):
        super().__init__()
        if drain_per_hour < 0 or charge_per_hour < 0:
            raise ValueError("drain and charge rates must not be negative")
        self.loop = loop
        self.drain_per_hour = float(drain_per_hour)
        self.charge_per_hour = float(charge_per_hour)
        self._charging = False
        self._level = 0.0
        self._since = 0.0
        self.set_level(level)

    def set_level(self, level: float) -> None:
        if not 0.0 <= level <= 100.0:
            raise ValueError(f"battery level must be from 0 to 100, got {level!r}")
        self._level = float(level)
        self._since = self.loop.time()

    def set_charging(self, charging: bool) -> None:
        self.set_level(self.percent())  # the level so far, at the old rate
        self._charging = bool(charging)

    @property
    def charging(self) -> bool:
        return self._charging

    def percent(self) -> float:
        hours = (self.loop.time() - self._since) / 3600.0
        rate = self.charge_per_hour if self._charging else -self.drain_per_hour
        return min(100.0, max(0.0, self._level + rate * hours))


class SysfsBattery(Battery):
    """A Linux power-supply gauge (a UPS HAT or fuel-gauge driver), read from
    ``/sys/class/power_supply/<name>/capacity`` and ``status``. With no ``name``, the first
    supply of type "Battery" is used."""

    backend = "sysfs"

    def __init__(self, name: str | None = None, *, root: str | Path = "/sys/class/power_supply"):
        super().__init__()
        root = Path(root)
        if name is None:
            supplies = sorted(p for p in root.glob("*") if (p / "capacity").is_file()) if root.is_dir() else []
            batteries = [p for p in supplies if _read(p / "type", "Unknown") == "Battery"]
            chosen = (batteries or supplies or [None])[0]
            if chosen is None:
                raise DriverUnavailable(f"sysfs battery: no {root}/*/capacity found; "
                                        "is the battery gauge's kernel driver loaded?")
            self.path = chosen
        else:
            self.path = root / name
            if not (self.path / "capacity").is_file():
                raise DriverUnavailable(f"sysfs battery: {self.path / 'capacity'} not found")

    def percent(self) -> float:
        text = _read(self.path / "capacity", None)
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise DriverFault(f"sysfs battery: cannot read {self.path / 'capacity'} (got {text!r})") from None
        return min(100.0, max(0.0, value))

    @property
    def charging(self) -> bool:
        return _read(self.path / "status", "Unknown") in ("Charging", "Full")


def _read(path: Path, default: str | None) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return default


def open_battery(backend: str, config: Any = None, *, loop: asyncio.AbstractEventLoop | None = None,
                 **kw: Any) -> Battery:
    """The battery named in the configuration's [drivers] section; the simulated one
    drains at ``[battery] simulated_drain_per_hour``."""
    cls = pick_backend("battery", backend, BACKENDS)
    if backend == "simulated":
        if loop is None:
            raise ValueError("the simulated battery needs the daemon's loop (its clock)")
        if config is not None and "drain_per_hour" not in kw:
            kw["drain_per_hour"] = config.battery.simulated_drain_per_hour
        return cls(loop, **kw)
    return cls(**kw)

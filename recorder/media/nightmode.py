"""Day/night switching from a light reading, with hysteresis and a minimum dwell, so a
passing headlight or a shadow never makes the IR filter chatter.

``NightMode`` decides; ``NightSwitch`` reads the camera's light level about once a second,
switches the IR lights and filter and the camera's image mode, and notes each change on
the recording.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("pieton.media")


class NightMode:
    def __init__(self, enter_lux: float, exit_lux: float, min_dwell_s: float, *, enabled: bool = True):
        if enter_lux >= exit_lux:
            raise ValueError(f"enter_lux ({enter_lux}) must be below exit_lux ({exit_lux})")
        self.enter_lux, self.exit_lux, self.min_dwell_s = enter_lux, exit_lux, min_dwell_s
        self.enabled = enabled
        self.night = False
        self.since: float | None = None
        self.switches = 0

    def update(self, lux: float, now: float) -> bool | None:
        """Feed a reading; returns the new mode (True = night) when it switches, else None."""
        if not self.enabled:
            return None
        if self.since is not None and now - self.since < self.min_dwell_s:
            return None
        want = lux < self.enter_lux if not self.night else not lux > self.exit_lux
        if want == self.night:
            if self.since is None:
                self.since = now
            return None
        self.night = want
        self.since = now
        self.switches += 1
        return want

    @classmethod
    def from_config(cls, config) -> NightMode:
        n = config.nightmode
        return cls(n.enter_lux, n.exit_lux, n.min_dwell_s, enabled=n.enabled)

    def __repr__(self) -> str:
        return f"<NightMode {'night' if self.night else 'day'} enter<{self.enter_lux} exit>{self.exit_lux}>"


class NightSwitch:
    LIGHT_INTERVAL_S = 1.0

    def __init__(self, night: NightMode, camera, ir, *, note: Callable[[dict], None],
                 wall_at: Callable[[float], float], fault: Callable[[str, str], None]):
        self.night = night
        self.camera = camera
        self.ir = ir
        self._note, self._wall_at, self._fault = note, wall_at, fault
        self.lux: float | None = None
        self._last_light = -1e9

    def watch(self, now: float) -> None:
        """Called on the loop thread at each watch tick; reads the light when it is time."""
        if self.camera is None or now - self._last_light < self.LIGHT_INTERVAL_S:
            return
        self._last_light = now
        try:
            self.lux = float(self.camera.light_level())
        except Exception as exc:  # a light reading is never worth stopping the pipeline for
            log.warning("light reading failed: %s", exc)
            return
        switch = self.night.update(self.lux, now)
        if switch is None:
            return
        try:
            if self.ir is not None:
                self.ir.set_night(switch)
            self.camera.set_night_mode(switch)
        except Exception as exc:
            self._fault("ir", f"cannot switch night mode {'on' if switch else 'off'}: {exc}")
            return
        self._note({"event": "night_mode", "on": switch, "lux": round(self.lux, 2), "at": self._wall_at(now)})

    def __repr__(self) -> str:
        return f"<NightSwitch {self.night!r} lux={self.lux}>"

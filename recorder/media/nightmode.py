"""Day/night switching from a light reading, with hysteresis and a minimum dwell, so a
passing headlight or a shadow never makes the IR filter chatter."""

from __future__ import annotations


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

"""What no receiver can mean: positions off the globe or moving faster than anything on
the ground, placeholder dates, midnight wraps that are not midnight. Shared by the NMEA
reader and the gpsd backend."""

from __future__ import annotations

import math

from drivers.nmea.fix import Rejection

EARTH_RADIUS_M = 6371008.8
MAX_PLAUSIBLE_SPEED_MPS = 600.0   # faster than any airliner: a jump, not a movement
JUMP_CONFIRMATIONS = 3            # consistent cycles at the new place before it is believed
PLACEHOLDER_YEAR = 2000           # receivers searching report 1980 (GPS epoch) or similar
LAST_YEAR = 2200                  # the latest date a receiver may give (ZDA's four digits)
WRAP_WINDOW_S = 3600.0            # a midnight wrap goes from the day's last hour to the next's first
DAY_S = 86400.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def plausible_year(year: int) -> bool:
    return PLACEHOLDER_YEAR <= year <= LAST_YEAR


def midnight_wrap(old_tod: float, new_tod: float) -> bool:
    """A time of day going from ``old_tod`` to ``new_tod`` (seconds since midnight) crossed
    midnight: late in one day, early in the next. Any other step back is the receiver's
    time going backwards within its day (some do, for a few seconds), never a new day."""
    return old_tod >= DAY_S - WRAP_WINDOW_S and new_tod < WRAP_WINDOW_S


class PositionCheck:
    """Plausibility of positions: a value outside the globe, or a move faster than
    anything on the ground, is not a position. A far-away position is believed once it
    repeats consistently (the receiver really moved, or the first fix after a long gap)."""

    def __init__(self, max_speed_mps: float = MAX_PLAUSIBLE_SPEED_MPS,
                 confirmations: int = JUMP_CONFIRMATIONS):
        self.max_speed = max_speed_mps
        self.confirmations = confirmations
        self._ref: tuple[float, float, float | None] | None = None
        self._candidate: tuple[float, float, float | None] | None = None
        self._candidate_count = 0

    def reset(self) -> None:
        self._ref = self._candidate = None
        self._candidate_count = 0

    def _far(self, a: tuple, lat: float, lon: float, t: float | None) -> bool:
        # cheap bound first: |dlat|+|dlon| in degrees, times the metres of a degree
        near = (abs(a[0] - lat) + abs(a[1] - lon)) * 111195.0
        if near <= self.max_speed:
            return False
        dt = abs(t - a[2]) if (t is not None and a[2] is not None) else 1.0
        return distance_m(a[0], a[1], lat, lon) > self.max_speed * max(dt, 1.0)

    def check(self, lat: float, lon: float, t: float | None) -> Rejection | None:
        """None when plausible, else why not. ``t`` is the receiver's time (epoch
        seconds), None when it has no date yet."""
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):   # NaN fails too
            return Rejection.ABSURD_VALUE
        ref = self._ref
        if ref is not None and ref[0] == lat and ref[1] == lon:
            self._ref = (lat, lon, t)       # still here now: a later jump is measured from now
            return None
        if ref is None or not self._far(ref, lat, lon, t):
            self._ref = (lat, lon, t)
            self._candidate = None
            self._candidate_count = 0
            return None
        cand = self._candidate
        if cand is not None and not self._far(cand, lat, lon, t):
            if t is None or t != cand[2]:      # one confirmation per receiver cycle
                self._candidate_count += 1
        else:
            self._candidate_count = 1
        self._candidate = (lat, lon, t)
        if self._candidate_count >= self.confirmations:
            self._ref = self._candidate
            self._candidate = None
            self._candidate_count = 0
            return None
        return Rejection.JUMP

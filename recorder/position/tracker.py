"""Following the receiver's fixes: fix lost / regained, the track, the fix's age.

Events are dicts for the recording's encrypted metadata, each with ``time`` on the
daemon loop's clock (the session turns it into UTC and keeps the monotonic time beside
it). Receiver times are recorded as received; a receiver time that goes back is kept
and flagged, never corrected.
"""

from __future__ import annotations

from typing import Any


def _iso(when) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when is not None else None


class Tracker:
    def __init__(self, *, track_interval_s: float = 1.0, max_fix_age_s: float = 5.0):
        if track_interval_s <= 0 or max_fix_age_s <= 0:
            raise ValueError("track interval and maximum fix age must be positive")
        self.track_interval_s = track_interval_s
        self.max_fix_age_s = max_fix_age_s
        self.last_fix = None            # the latest fix, good or not
        self.last_good = None           # the latest fix with a position
        self.has_fix = False            # what the last event said
        self.points = 0
        self._last_receiver_time = None
        self._tracked_fix = None
        self._had_fix = False

    def on_fix(self, fix) -> list[dict[str, Any]]:
        """Take one fix; return the events it causes (fix regained / lost, time back)."""
        events: list[dict[str, Any]] = []
        now = fix.received_mono
        self.last_fix = fix
        if fix.time is not None:
            prev = self._last_receiver_time
            if prev is not None and fix.time < prev:
                fix.flags = (*fix.flags, "gps time went back")
                events.append({"event": "gps time went back", "time": now,
                               "gps_time": _iso(fix.time), "previous_gps_time": _iso(prev),
                               "back_s": round((prev - fix.time).total_seconds(), 3)})
            self._last_receiver_time = fix.time
        if fix.has_position:
            self.last_good = fix
            if not self.has_fix:
                self.has_fix = True
                events.append({"event": "gps fix regained" if self._had_fix else "gps fix acquired",
                               "time": now, **self.point(fix)})
                self._had_fix = True
        elif self.has_fix:
            events.append(self._lost(now, "receiver reports no fix"))
        return events

    def _lost(self, now: float, why: str) -> dict[str, Any]:
        self.has_fix = False
        return {"event": "gps fix lost", "time": now, "why": why,
                "last_fix_age_s": None if self.last_good is None else round(now - self.last_good.received_mono, 3)}

    def tick(self, now: float) -> list[dict[str, Any]]:
        """Called every ``track_interval_s``: a track point for a new, fresh fix; a
        "fix lost" event when fixes stopped coming (receiver silent or unplugged)."""
        events: list[dict[str, Any]] = []
        good = self.current(now)
        if good is None:
            if self.has_fix:
                events.append(self._lost(now, f"no fix for more than {self.max_fix_age_s:g} s"))
            return events
        if good is not self._tracked_fix:
            self._tracked_fix = good
            self.points += 1
            events.append({"event": "track", "time": good.received_mono, **self.point(good)})
        return events

    def point(self, fix) -> dict[str, Any]:
        """A fix as a track point: receiver time as received, position, quality."""
        out = {"gps_time": _iso(fix.time), "lat": fix.lat, "lon": fix.lon, "alt": fix.alt,
               "mode": fix.mode, "sats": fix.sats, "hdop": fix.hdop, "eph_m": fix.eph_m,
               "speed_mps": fix.speed_mps, "track_deg": fix.track_deg}
        if fix.flags:
            out["flags"] = list(fix.flags)
        return {k: v for k, v in out.items() if v is not None}

    def current(self, now: float):
        """The latest fix with a position if it is fresh, else None ("position unknown")."""
        fix = self.last_good
        if fix is None or not self.has_fix or now - fix.received_mono > self.max_fix_age_s:
            return None
        return fix

    def age(self, now: float) -> float | None:
        """Seconds since the latest fix with a position (None: never had one)."""
        return None if self.last_good is None else now - self.last_good.received_mono

    def __repr__(self) -> str:
        return f"<Tracker fix={self.has_fix} points={self.points}>"

"""Place and time for the daemon: the GPS fixes, the commune boundary and the clock.

``Position`` ties them together on the daemon's loop:

- ``start()`` starts the GPS, the track timer and the clock probe;
- ``allows_start()`` -> (allowed, flags): the boundary policy and the clock's state,
  for the state machine's start check;
- ``clock_status()``: clock source and offset to GPS time, for every recording;
- ``start_metadata()``: the position, boundary check and clock at a start, for the
  recording's encrypted metadata;
- ``status()``: fix, its age, GPS backend state, boundary, clock (``pieton ctl status``);
- ``on_position``: set it to the overlay's setter (``MediaPipeline.set_position``); it is
  called with (lat, lon) of each fresh fix and None when the position becomes unknown;
  ``overlay_text()`` is the same as one line of text.

Events (fix acquired / lost / regained, track points at ``[gps] track_interval_s``,
boundary crossings, receiver time going back) go to ``on_event`` with ``time`` on the
loop's clock; the session notes them in the recording in progress.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from recorder.clock import wall_at
from recorder.errors import ConfigError, DriverError
from recorder.position.clock import ClockStatus, ClockWatch, system_clock_status
from recorder.position.geofence import BoundaryCheck, Geofence
from recorder.position.tracker import Tracker

__all__ = ["Position", "Geofence", "BoundaryCheck", "Tracker", "ClockWatch", "ClockStatus"]

log = logging.getLogger("pieton.position")

CLOCK_PROBE_INTERVAL_S = 60.0


class Position:
    def __init__(self, config, loop: asyncio.AbstractEventLoop, gps, *, wall_clock,
                 on_event: Callable[[dict], None] | None = None, clock_probe: Any = "auto"):
        self.config = config
        self.loop = loop
        self.gps = gps
        self.wall_clock = wall_clock
        self.on_event = on_event
        self.tracker = Tracker(track_interval_s=config.gps.track_interval_s,
                               max_fix_age_s=config.gps.max_fix_age_s)
        self.geofence_error: str | None = None
        self.gps_error: str | None = None
        try:
            self.geofence: Geofence | None = Geofence.from_config(config)
        except ConfigError as exc:       # config check refuses this; never crash the daemon on it
            self.geofence = None
            self.geofence_error = "; ".join(exc.problems)
            log.error("commune boundary unavailable: %s", self.geofence_error)
        if clock_probe == "auto":
            simulated = getattr(gps, "backend", "") == "simulated" or _is_simulated_clock(wall_clock)
            clock_probe = None if simulated else system_clock_status
        self.clock = ClockWatch(clock_probe)
        self.boundary: BoundaryCheck = BoundaryCheck("unknown", None, None)
        # called with (lat, lon) of each fresh fix, None when the position becomes
        # unknown: the video overlay (MediaPipeline.set_position)
        self.on_position: Callable[[tuple[float, float] | None], None] | None = None
        self._shown: tuple[float, float] | None = None
        self._definite: str | None = None      # last inside/outside, for crossings
        self._tick_handle: asyncio.TimerHandle | None = None
        self._probe_handle: asyncio.TimerHandle | None = None
        self.closed = False

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        if self.gps is not None:
            if getattr(self.gps, "backend", "") == "simulated" and getattr(self.gps, "wall_clock", None) is None:
                self.gps.wall_clock = self.wall_clock.now   # the simulated receiver shares the sim's UTC
            try:
                self.gps.start(self.loop, self._on_fix)
            except (DriverError, OSError) as exc:    # no receiver: positions stay unknown
                self.gps_error = str(exc)
                log.error("GPS not started: %s", exc)
        self._tick_handle = self.loop.call_later(self.tracker.track_interval_s, self._tick)
        if self.clock.probe is not None:
            self._probe()

    def close(self) -> None:
        self.closed = True
        for handle in (self._tick_handle, self._probe_handle):
            if handle is not None:
                handle.cancel()
        self._tick_handle = self._probe_handle = None
        if self.gps is not None:
            self.gps.detach()       # the hardware owns (and closes) the receiver

    def _probe(self) -> None:
        if self.closed:
            return
        future = self.loop.run_in_executor(None, self.clock.refresh)
        future.add_done_callback(lambda f: f.exception())   # never "exception not retrieved"
        self._probe_handle = self.loop.call_later(CLOCK_PROBE_INTERVAL_S, self._probe)

    # ---- fixes and events --------------------------------------------------------------
    def _emit(self, events: list[dict]) -> None:
        if self.on_event is None:
            return
        for event in events:
            try:
                self.on_event(event)
            except Exception:     # a metadata problem must not stop the GPS
                log.exception("position event %s not recorded", event.get("event"))

    def _wall_at(self, mono: float) -> float:
        return wall_at(self.wall_clock.now(), self.loop, mono)

    def _on_fix(self, fix) -> None:
        events = self.tracker.on_fix(fix)
        if fix.time is not None:
            self.clock.note_fix(fix.time.timestamp(), self._wall_at(fix.received_mono))
        if self.geofence is not None and fix.has_position:
            check = self.geofence.check(fix)
            self.boundary = check
            if check.status in ("inside", "outside"):
                if self._definite is not None and check.status != self._definite:
                    events.append({"event": "boundary crossed", "time": fix.received_mono,
                                   "from": self._definite, "to": check.status, **check.as_dict(),
                                   "lat": fix.lat, "lon": fix.lon})
                self._definite = check.status
        self._show(self.tracker.current(fix.received_mono))
        self._emit(events)

    def _show(self, fix) -> None:
        where = (fix.lat, fix.lon) if fix is not None else None
        if where != self._shown and self.on_position is not None:
            self._shown = where
            try:
                self.on_position(where)
            except Exception:     # the overlay must not stop the GPS
                log.exception("overlay position not updated")

    def _tick(self) -> None:
        if self.closed:
            return
        self._tick_handle = self.loop.call_later(self.tracker.track_interval_s, self._tick)
        now = self.loop.time()
        events = self.tracker.tick(now)
        if self.tracker.current(now) is None:
            self.boundary = BoundaryCheck("unknown", None, None)
            self._show(None)
        self._emit(events)

    # ---- for the daemon ----------------------------------------------------------------
    def current_fix(self):
        """The latest fix with a position, if fresh; None means "position unknown"."""
        return self.tracker.current(self.loop.time())

    def allows_start(self) -> tuple[bool, dict]:
        """(allowed, flags). Refused only under policy ``refuse`` with a good fresh fix
        outside every commune by more than its uncertainty. Flags carry no position."""
        now = self.loop.time()
        fix = self.tracker.current(now)
        if self.geofence is None:
            allowed, flags = True, {"position": "unknown" if fix is None else "boundary unavailable"}
        else:
            allowed, flags = self.geofence.allows_start(fix, now)
        clock = self.clock.status()
        if not clock.synchronised:
            flags["clock"] = "unsynchronised"
        return allowed, flags

    def start_metadata(self) -> dict[str, Any]:
        """Position, boundary and clock at a start (personal: for encrypted metadata)."""
        now = self.loop.time()
        fix = self.tracker.current(now)
        check = self.geofence.check(fix, now) if self.geofence is not None else BoundaryCheck("unknown", None, None)
        out: dict[str, Any] = {"boundary": check.as_dict(), "clock": self.clock_status()}
        if fix is None:
            out["position"] = "unknown"
            age = self.tracker.age(now)
            out["last_fix_age_s"] = None if age is None else round(age, 1)
        else:
            out["position"] = self.tracker.point(fix)
            out["fix_age_s"] = round(now - fix.received_mono, 1)
        return out

    def clock_status(self) -> dict[str, Any]:
        return self.clock.status().as_dict()

    def status(self) -> dict[str, Any]:
        """For `pieton ctl status`: the fix (mode, satellites, HDOP, age), the receiver
        backend's state, the boundary, the clock. No position: the status is not evidence."""
        now = self.loop.time()
        fix = self.tracker.current(now)
        age = self.tracker.age(now)
        gps: dict[str, Any] = {"mode": fix.mode if fix is not None else 1,
                               "sats": fix.sats if fix is not None else None,
                               "hdop": fix.hdop if fix is not None else None,
                               "age_s": None if age is None else round(age, 1)}
        if self.gps is None:
            gps.update(backend=None, state="absent")
        else:
            receiver = self.gps.status()
            gps.update(backend=receiver.get("backend"), state=receiver.get("state"))
            if receiver.get("last_error") and receiver.get("state") != "running":
                gps["error"] = receiver["last_error"]
            if self.gps_error:
                gps["error"] = self.gps_error
            rejected = receiver.get("nmea", {}).get("rejected_total") or sum(receiver.get("rejected", {}).values())
            if rejected:
                gps["rejected_sentences"] = rejected
        boundary: dict[str, Any] = {"status": self.boundary.status, "commune": self.boundary.commune,
                                    "policy": self.geofence.policy if self.geofence is not None else None}
        if self.geofence_error:
            boundary["error"] = self.geofence_error
        clock = self.clock.status()
        return {"gps": gps, "boundary": boundary,
                "clock": {"source": clock.source, "synchronised": clock.synchronised,
                          "offset_s": clock.offset_s}}

    def overlay_text(self) -> str:
        """The position line of the video overlay."""
        fix = self.current_fix()
        if fix is None:
            return "position inconnue"
        ns, ew = ("N" if fix.lat >= 0 else "S"), ("E" if fix.lon >= 0 else "W")
        unc = f" ±{fix.eph_m:.0f} m" if fix.eph_m else ""
        return f"{abs(fix.lat):.5f}{ns} {abs(fix.lon):.5f}{ew}{unc}"

    def __repr__(self) -> str:
        return f"<Position {self.tracker!r} boundary={self.boundary.status}>"


def _is_simulated_clock(wall_clock) -> bool:
    return type(wall_clock).__name__ == "SimulatedWallClock"

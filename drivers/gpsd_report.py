"""gpsd's answer to a poll -> a Fix, whatever the answer holds.

gpsd-py3 reads the answer with an unbounded readline and json.loads (NaN and Infinity
accepted), and takes every value as given: a string latitude, a NaN altitude or a
year-99999 time went straight into a fix, or raised from deep inside. Here the line is
bounded and strictly parsed, and every value is checked: a line that is not gpsd's
answer ends the session (ConnectionError: the backend reconnects), a value no receiver
can mean is counted by reason and never becomes part of a fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from drivers.nmea import Fix, PositionCheck, Rejection
from drivers.nmea.plausibility import LAST_YEAR, PLACEHOLDER_YEAR

if TYPE_CHECKING:
    import gpsd

MAX_ANSWER_CHARS = 256 * 1024     # a poll with a full sky is a few KB


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _finite(value: object) -> float | None:
    """A JSON number that is a finite float, else None (strings, booleans, 1e999)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def poll_answer(raw: str, reject: Callable[[Rejection], None]) -> gpsd.GpsResponse | None:
    """The answer to one ?POLL, as gpsd-py3's response; None while gpsd has no receiver or
    no report yet, or when its report does not have gpsd's shape (counted with
    ``reject``). ConnectionError when the line is not gpsd's answer at all."""
    if not raw:
        raise ConnectionError("gpsd closed the connection")
    if not raw.endswith("\n"):
        raise ConnectionError(f"gpsd sent a line of more than {MAX_ANSWER_CHARS} characters")
    try:
        packet = json.loads(raw, parse_constant=_refuse_constant)
    except ValueError as exc:       # bad JSON: the connection is not gpsd's any more
        raise ConnectionError(f"gpsd sent something that is not JSON: {exc}") from None
    except RecursionError:          # JSON nested beyond what gpsd ever sends
        raise ConnectionError("gpsd sent JSON nested too deep to be one of its reports") from None
    if not isinstance(packet, dict) or packet.get("class") != "POLL":
        raise ConnectionError(f"gpsd answered a poll with {str(packet)[:60]!r}")
    import gpsd  # gpsd-py3, the optional backend's library: its response object
    try:
        return gpsd.GpsResponse.from_json(packet)
    except (UserWarning, IndexError, KeyError):
        return None                 # gpsd up, no receiver or no report yet
    except (TypeError, ValueError, AttributeError):     # a report of the wrong shape
        reject(Rejection.MALFORMED)
        return None


def fix_from(r: gpsd.GpsResponse | None, check: PositionCheck, reject: Callable[[Rejection], None]) -> Fix:
    """gpsd's report as our Fix; absurd values, jumps and placeholder dates are rejected
    (counted with ``reject``) and never passed on."""
    mode = r.mode if r is not None else 1
    if type(mode) is not int or mode not in (0, 1, 2, 3):
        reject(Rejection.MALFORMED)
        mode = 1
    when = _time(r.time, reject) if r is not None and r.time else None
    lat = lon = alt = eph = speed = track = None
    if mode >= 2:
        la, lo = _finite(r.lat), _finite(r.lon)
        problem = None
        if la is None or lo is None:
            problem = Rejection.MALFORMED
        elif la == 0.0 and lo == 0.0:
            # gpsd-py3 fills a TPV's missing lat/lon with 0.0: a report without a position
            # (gpsd sends such partial TPVs), never Null Island.
            problem = Rejection.NO_POSITION
        else:
            problem = check.check(la, lo, when.timestamp() if when else None)
        if problem is not None:
            reject(problem)
            mode = 1
        else:
            lat, lon = la, lo
            alt = _finite(r.alt) if mode >= 3 else None
            errors = r.error if isinstance(r.error, dict) else {}
            herr = max(_finite(errors.get("x")) or 0.0, _finite(errors.get("y")) or 0.0)
            eph = herr if herr > 0 else None
            speed, track = _finite(r.hspeed), _finite(r.track)
    sats = r.sats_valid if r is not None and isinstance(r.sats_valid, int) and r.sats_valid > 0 else None
    return Fix(when, lat, lon, alt, max(mode, 1), sats, None, eph, speed, track, 0.0)


def _time(text: object, reject: Callable[[Rejection], None]) -> datetime | None:
    if not isinstance(text, str):
        reject(Rejection.MALFORMED)
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):     # not a time, or one beyond datetime's years
        reject(Rejection.MALFORMED)
        return None
    if when.year < PLACEHOLDER_YEAR:
        reject(Rejection.PLACEHOLDER_DATE)
        return None
    if when.year > LAST_YEAR:
        reject(Rejection.ABSURD_VALUE)
        return None
    return when

"""How long a recording is kept: one calendar month from the local day it was made.

R241-13 of the code de la sécurité intérieure, as amended by décret 2022-1395: recordings
are kept one month, then erased, except what a judicial, administrative or disciplinary
procedure uses. It is not a setting. The seed's deployment (2017) kept six months under
the 2016 decree; the 2022 amendment made it one month.

"One month from the day" counts whole local days: a recording made on 15 January, at any
hour, is erased at the end of 15 February; one made on 31 January, at the end of the last
day of February (28 or 29), the month having no 31st. Both the camera and the vault use
this one function, in the zone of the commune (``[device] timezone`` / the vault's setting).

A recording made while the camera's clock was not synchronised is dated by ``Dating``:
from the signed start of the last earlier recording (by the camera's signed numbering)
whose clock was, so neither a wrong clock nor a late offload extends it. The camera
(``recorder.evidence.expiry``) and the vault (``tools.vault.dating``) both walk their
recordings through it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from recorder.localtime import zone

RULE = "R241-13: kept one calendar month from the local day of recording"
SYNCHRONISED_SOURCES = ("gps", "ntp")   # the clock sources a recording's start can be trusted from
OWN_START = "own start"
UNDATED = "undated"


def retention_end(recorded_at: float, zone_name: str | None = None) -> float:
    """The instant (UTC epoch) a recording made at ``recorded_at`` is past its retention:
    the end of the same day one calendar month later, local time."""
    tz = zone(zone_name)
    day = datetime.fromtimestamp(recorded_at, tz).date()
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    last = min(day.day, calendar.monthrange(year, month)[1])
    following = day.replace(year=year, month=month, day=last) + timedelta(days=1)
    # The first instant of the following day, local time: midnight always exists in our zones
    # (changes of clocks happen at 02:00 or 03:00).
    return datetime.combine(following, time(0, 0), tzinfo=tz).timestamp()


def is_past_retention(recorded_at: float, now: float, zone_name: str | None = None) -> bool:
    return now >= retention_end(recorded_at, zone_name)


def synchronised(clock_source) -> bool:
    """Whether a recording's signed ``clock_source`` makes its start a date to count from."""
    return isinstance(clock_source, str) and clock_source.lower() in SYNCHRONISED_SOURCES


@dataclass(frozen=True)
class Dated:
    counted_from: float | None   # None: nothing synchronised at or before it
    dated_by: str                # OWN_START, "start of <earlier recording id>", or UNDATED


class Dating:
    """One camera's recordings, given in the order of their signed numbers, each dated for
    retention: by its own start when its clock was synchronised, else by the start of the
    last earlier one whose clock was (its time is a bound the recording cannot precede)."""

    def __init__(self) -> None:
        self._anchor: tuple[float, str] | None = None

    def date(self, recording_id: str, start: float | None, clock_synchronised: bool) -> Dated:
        if start is not None and clock_synchronised:
            self._anchor = (start, recording_id)
            return Dated(start, OWN_START)
        if self._anchor is not None:
            return Dated(self._anchor[0], f"start of {self._anchor[1]}")
        return Dated(None, UNDATED)

"""How long a recording is kept: one calendar month from the local day it was made.

R241-13 of the code de la sécurité intérieure, as amended by décret 2022-1395: recordings
are kept one month, then erased, except what a judicial, administrative or disciplinary
procedure uses. It is not a setting. The seed's deployment (2017) kept six months under
the 2016 decree; the 2022 amendment made it one month.

"One month from the day" counts whole local days: a recording made on 15 January, at any
hour, is erased at the end of 15 February; one made on 31 January, at the end of the last
day of February (28 or 29), the month having no 31st. Both the camera and the vault use
this one function, in the zone of the commune (``[device] timezone`` / the vault's setting).
"""

from __future__ import annotations

import calendar
from datetime import datetime, time, timedelta

from recorder.localtime import zone

RULE = "R241-13: kept one calendar month from the local day of recording"


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

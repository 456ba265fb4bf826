"""One rule for the times people type and read.

A time typed without a zone is local time in the zone given (the camera's ``[device]
timezone``, or the vault's own setting; Europe/Paris by default, overseas communes need
others). ISO 8601 (``2026-11-27T14:05``, ``2026-11-27 14:05:30+01:00``, ``...Z``) and French
day-first dates (``27/11/2026 14:05``, ``27/11/2026``) are accepted. A local time that
happens twice (the autumn change of clocks) or never (the spring one) is an error that
asks for the offset. Printed times carry their zone: ``2026-11-27 18:41:11 CET``.
Evidence (manifests, journals, metadata) stays in UTC; this is only for people.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.errors import PietonError

DEFAULT_ZONE = "Europe/Paris"
FIRST_YEAR, LAST_YEAR = 1900, 9998  # years 1 and 9999 overflow once moved to UTC

_FRENCH = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2})[:h](\d{2})(?::(\d{2}))?)?")


class TimeError(PietonError, ValueError):
    """A time typed by a person cannot be read, or is ambiguous; the message says how to write it.
    ``kind`` (zone, year, unreadable, gap, fold) and ``offsets`` (the times to write instead)
    let a page say it in its own language (tools/desk/forms.py)."""

    def __init__(self, message: str, kind: str = "unreadable", offsets: tuple[str, ...] = ()):
        super().__init__(message)
        self.kind, self.offsets = kind, offsets


def zone(name: str | None) -> ZoneInfo:
    """The zone called ``name`` (default Europe/Paris), or a TimeError naming it."""
    name = name or DEFAULT_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):   # OSError: a folder of zones, e.g. "Europe"
        raise TimeError(f"unknown time zone {name!r} (an IANA name such as Europe/Paris, "
                        "America/Cayenne, Indian/Reunion, Pacific/Noumea)", "zone") from None


def parse_time(text: str, zone_name: str | None = None, *, what: str = "time") -> float:
    """The instant (UTC epoch seconds) a person means by ``text``; see the module's rule."""
    tz = zone(zone_name)
    raw = text.strip()
    naive = _read(raw, what)
    if not FIRST_YEAR <= naive.year <= LAST_YEAR:  # year 1 or 9999 would overflow once moved to UTC
        raise TimeError(f"{what} {raw!r}: the year {naive.year} is out of range ({FIRST_YEAR} to {LAST_YEAR})",
                        "year")
    if naive.tzinfo is not None:
        return naive.timestamp()
    return _localise(naive, tz, raw, what).timestamp()


def _read(raw: str, what: str) -> datetime:
    match = _FRENCH.fullmatch(raw)
    try:
        if match:
            day, month, year, hour, minute, second = match.groups()
            return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
        return datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        raise TimeError(f"{what} {raw!r}: not a date and time; write 27/11/2026 14:05, 2026-11-27T14:05 "
                        "or with an offset, 2026-11-27T14:05+01:00") from None


def _localise(naive: datetime, tz: ZoneInfo, raw: str, what: str) -> datetime:
    """``naive`` as a local time in ``tz``; refused when the clocks change over it."""
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        offsets = sorted({_offset(first), _offset(second)})
        # A time that does not exist comes back changed after a round trip through UTC.
        if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
            raise TimeError(f"{what} {raw!r}: does not exist in {tz.key} (the clocks jump forward there); "
                            f"give the offset, for example {naive.isoformat(timespec='minutes')}{offsets[0]}",
                            "gap", (f"{naive.isoformat(timespec='minutes')}{offsets[0]}",))
        raise TimeError(f"{what} {raw!r}: happens twice in {tz.key} (the clocks go back); give the offset, "
                        f"{naive.isoformat(timespec='minutes')}{offsets[1]} (the first) or "
                        f"{naive.isoformat(timespec='minutes')}{offsets[0]} (the second)", "fold",
                        tuple(f"{naive.isoformat(timespec='minutes')}{o}" for o in reversed(offsets)))
    return first


def _offset(moment: datetime) -> str:
    minutes = int((moment.utcoffset() or timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_local(epoch: float, zone_name: str | None = None, *, seconds: bool = True) -> str:
    """``epoch`` as local time with its zone abbreviation: ``2026-11-27 18:41:11 CET``."""
    moment = datetime.fromtimestamp(epoch, zone(zone_name))
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")

"""What the NMEA layer hands out: fixes, the reader's counts, and why a line was refused."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Rejection(StrEnum):
    """Why a line or a report is refused: the keys of ``NmeaStats.rejected`` (a StrEnum, so
    the counts read as plain words in JSON, in the status and on the technician's screen)."""

    CHECKSUM = "checksum"
    NO_CHECKSUM = "no checksum"
    TRUNCATED = "truncated"
    NOISE = "noise"
    TOO_LONG = "too long"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    ABSURD_VALUE = "absurd value"
    PLACEHOLDER_DATE = "placeholder date"
    JUMP = "jump"
    TIME_WRAP = "time wrap"            # a midnight wrap no receiver can mean
    NO_POSITION = "no position"        # gpsd: a fix mode without its position


REASONS = tuple(reason.value for reason in Rejection)


@dataclass(slots=True)
class Fix:
    """One position report. ``time`` is the receiver's UTC time (None while it has no
    date); ``lat``/``lon`` are None unless ``mode`` is 2 (2D) or 3 (3D); ``alt`` only in
    3D. ``eph_m`` is the horizontal uncertainty (95 %, metres) from the receiver or from
    HDOP as gpsd estimates it. ``received_mono`` is the monotonic time it arrived.
    Treat it as read-only (not frozen: a fix is built per receiver cycle, and frozen
    dataclasses cost three times as much to build)."""

    time: datetime | None
    lat: float | None
    lon: float | None
    alt: float | None
    mode: int
    sats: int | None
    hdop: float | None
    eph_m: float | None
    speed_mps: float | None
    track_deg: float | None
    received_mono: float
    flags: tuple[str, ...] = ()

    @property
    def has_position(self) -> bool:
        return self.mode >= 2 and self.lat is not None and self.lon is not None

    def as_dict(self) -> dict:
        """JSON-friendly form (the evidence metadata and `pieton gps parse --json`)."""
        out = {"time": self.time.isoformat().replace("+00:00", "Z") if self.time else None,
               "lat": self.lat, "lon": self.lon, "alt": self.alt, "mode": self.mode,
               "sats": self.sats, "hdop": self.hdop, "eph_m": self.eph_m,
               "speed_mps": self.speed_mps, "track_deg": self.track_deg}
        if self.flags:
            out["flags"] = list(self.flags)
        return out


@dataclass
class NmeaStats:
    """What the reader saw: every framed line is read, then used, ignored (valid but
    carries nothing we merge: satellites in view, text, vendor sentences) or rejected."""

    read: int = 0
    used: int = 0
    ignored: int = 0
    fixes: int = 0
    rejected: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"read": self.read, "used": self.used, "ignored": self.ignored, "fixes": self.fixes,
                "rejected": {str(reason): n for reason, n in sorted(self.rejected.items())},
                "rejected_total": sum(self.rejected.values())}

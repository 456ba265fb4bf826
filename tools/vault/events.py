"""Reading the events of a recording's metadata (as the daemon notes them): their kind,
their time, and the GPS points among them. Shared by the report, its HTML form and `find`."""

from __future__ import annotations

import math

from recorder.errors import VaultError
from tools.vault.layout import parse_time


def track_points(obj) -> list[dict]:
    """GPS points found in metadata events: any object with numeric lat and lon."""
    points = []
    if isinstance(obj, dict):
        lat, lon = obj.get("lat"), obj.get("lon")
        if _degrees(lat, 90) and _degrees(lon, 180):
            point = {"lat": lat, "lon": lon}
            for key in ("time", "at", "eph_m", "hdop", "mode"):
                if key in obj:
                    point[key] = obj[key]
            points.append(point)
        else:
            for value in obj.values():
                points.extend(track_points(value))
    elif isinstance(obj, list):
        for value in obj:
            points.extend(track_points(value))
    return points


def _degrees(value, limit: float) -> bool:
    """A latitude or longitude: a finite number within ±limit (anything else is no position)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        and -limit <= value <= limit


def event_kind(event: dict) -> str:
    return str(event.get("kind") or event.get("event") or event.get("type") or "event")


def event_epoch(event: dict) -> float | None:
    """An event's time (epoch float or ISO text, as the daemon notes them), as epoch."""
    value = event.get("time", event.get("at"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_time(value)
        except VaultError:  # an odd time sorts last, it does not break the report
            return None
    return None

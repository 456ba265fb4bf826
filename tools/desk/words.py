"""Numbers, times and durations as a French reader expects them."""

from __future__ import annotations

from recorder.localtime import format_local


def seconds(value: float | None, digits: int = 1) -> str:
    """``3,4 s``; durations over a minute as ``2 min 05 s``."""
    if value is None:
        return "inconnue"
    if value >= 60:
        minutes, rest = divmod(int(round(value)), 60)
        if minutes >= 60:
            return f"{minutes // 60} h {minutes % 60:02d} min {rest:02d} s"
        return f"{minutes} min {rest:02d} s"
    return f"{value:.{digits}f}".replace(".", ",") + " s"


def local(epoch: float | None, zone: str | None) -> str:
    """Local time with its zone, ``27/11/2026 18:41:11 CET``."""
    if epoch is None:
        return "heure inconnue"
    text = format_local(epoch, zone)  # 2026-11-27 18:41:11 CET
    day, rest = text.split(" ", 1)
    year, month, dom = day.split("-")
    return f"{dom}/{month}/{year} {rest}"

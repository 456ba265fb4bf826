"""A recording's timeline in words a chief reads, from its decrypted metadata.

Only what happened and when, relative to the recording's start: "Avertissement donné
(3,4 s)", "Flagrant délit : pas d'avertissement", "Signet", "Perte GPS". Track points are
counted, not listed (they go on the map)."""

from __future__ import annotations

from dataclasses import dataclass

from tools.desk.event_words import TRIGGERS, describe  # noqa: F401 - TRIGGERS: search.py reads it here
from tools.desk.words import local
from tools.vault.events import event_epoch
from tools.vault.report import recording_summary


@dataclass
class Moment:
    offset_s: float | None
    at: str
    text: str


def timeline(rec, zone: str | None) -> tuple[list[Moment], int, list[tuple[float, float]]]:
    """The moments of an opened recording (``tools.vault.extract.OpenedRecording``) in
    order, how many GPS points it holds, and the track as (lat, lon)."""
    summary = recording_summary(rec)
    start = rec.started_at
    moments = []
    for event in summary["events"]:
        text = describe(event)
        if text is None:
            continue
        at = event_epoch(event)
        moments.append(Moment(None if at is None or start is None else at - start, local(at, zone), text))
    track = [(p["lat"], p["lon"]) for p in summary["gps_track"]]
    return moments, len(track), track


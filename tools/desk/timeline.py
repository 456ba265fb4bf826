"""A recording's timeline in words a chief reads, from its decrypted metadata.

Only what happened and when, relative to the recording's start: "Avertissement donné
(3,4 s)", "Flagrant délit : pas d'avertissement", "Signet", "Perte GPS". Track points are
counted, not listed (they go on the map)."""

from __future__ import annotations

from dataclasses import dataclass

from recorder.visual_signal import SPANS
from tools.desk.words import local, seconds
from tools.vault.events import event_epoch, event_kind
from tools.vault.report import recording_summary

TRIGGERS = {"intervention": "intervention de l'agent", "request": "à la demande de la personne",
            "flagrant_delit": "flagrant délit", "pending": "en attente"}


@dataclass
class Moment:
    offset_s: float | None
    at: str
    text: str


def describe(event: dict) -> str | None:
    """One event in French, or None for what a chief need not read (track points)."""
    kind = event_kind(event)
    if kind == "notice_played":
        return f"Avertissement donné ({seconds(_number(event.get('duration')))})"
    if kind == "notice_skipped":
        if event.get("why") == "flagrant_delit":
            return "Flagrant délit : pas d'avertissement"
        return "Pas d'avertissement"
    if kind == "notice_failed":
        return "Avertissement non diffusé (panne du haut-parleur)"
    if kind == "trigger":
        return f"Déclenchement : {TRIGGERS.get(str(event.get('reason')), str(event.get('reason')))}"
    if kind == "bookmark":
        return "Signet"
    if kind == "gps fix lost":
        return "Perte GPS"
    if kind in ("gps fix regained", "gps fix acquired"):
        return "GPS retrouvé"
    if kind == "boundary crossed":
        return "Limite de la commune franchie"
    if kind == SPANS:   # the red light failed during the recording (CSI L241-2)
        return "Sans signal visuel (voyant rouge en panne)"
    if kind == SPANS + "_end":
        return "Signal visuel rétabli"
    if kind == "video_lost":
        return "Perte de l'image"
    if kind == "video_regained":
        return "Image retrouvée"
    if kind == "audio_lost":
        return "Perte du son"
    if kind == "audio_regained":
        return "Son retrouvé"
    if kind == "night_mode":
        return "Mode nuit" if event.get("on") else "Mode jour"
    if kind == "driver_fault":
        return f"Panne : {event.get('what')}"
    if kind == "media":
        pre = _number(event.get("pre_event_s"))
        return f"Images d'avant le déclenchement : {seconds(pre)}" if pre else None
    if kind in ("track", "encoder_error"):
        return None
    return kind.replace("_", " ")


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


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

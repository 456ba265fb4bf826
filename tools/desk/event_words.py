"""What a recording's events and notice say, in the French a chief or a court reads: the
desk's timeline and the extraction report's page tell them in the same words."""

from __future__ import annotations

import math

from recorder.visual_signal import SPANS
from tools.desk.words import seconds
from tools.vault.events import event_kind

TRIGGERS = {"intervention": "intervention de l'agent", "request": "à la demande de la personne",
            "flagrant_delit": "flagrant délit", "pending": "en attente"}
STOPS = {"stopped by the agent": "arrêté par l'agent", "battery critical": "batterie épuisée",
         "stop": "arrêt"}
PURPOSES = {"judicial": "procédure judiciaire", "administrative": "procédure administrative",
            "disciplinary": "procédure disciplinaire", "training": "formation", "access": "droit d'accès"}


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
        return f"Panne : {event['what']}" if event.get("what") else "Panne"
    if kind == "media":
        pre = _number(event.get("pre_event_s"))
        return f"Images d'avant le déclenchement : {seconds(pre)}" if pre else None
    if kind in ("track", "encoder_error"):
        return None
    return kind.replace("_", " ")


def notice_words(notice: dict) -> str:
    """The recording's spoken notice as a sentence: "Avertissement donné (3,0 s)",
    "Flagrant délit : pas d'avertissement" (recorder/notice.py says it in English for the
    technician)."""
    if not isinstance(notice, dict) or not notice:
        return "Pas d'avertissement enregistré"
    if notice.get("skipped"):
        if notice["skipped"] == "flagrant_delit":
            return "Flagrant délit : pas d'avertissement"
        return f"Pas d'avertissement ({str(notice['skipped']).replace('_', ' ')})"
    given, length = notice.get("given"), _number(notice.get("duration"))
    timed = f" ({seconds(length)})" if length is not None and math.isfinite(length) else ""
    if notice.get("playing"):
        said = "Avertissement en cours de diffusion, non confirmé"
    elif given is True:
        said = f"Avertissement donné{timed}"
    elif given == "simulated":
        said = f"Avertissement non donné : haut-parleur simulé seulement{timed}"
    elif notice.get("failed"):
        said = f"Avertissement NON DONNÉ : {notice['failed']} (l'agent invité à le dire à voix haute)"
    else:
        said = "Avertissement non donné"
    heard = notice.get("heard")
    if isinstance(heard, dict) and "verdict" in heard:
        said += " ; microphone : " + {True: "entendu", False: "NON entendu"}.get(heard["verdict"], "non vérifié")
        if heard["verdict"] is not None:
            said += f" (pic de corrélation {_decimal(heard.get('peak'))}, décalage {_decimal(heard.get('lag_ms'))} ms)"
        elif heard.get("why"):
            said += f" ({heard['why']})"
    return said


def _decimal(value) -> str:
    """A number with the decimal comma; anything else as it is."""
    return str(value).replace(".", ",") if isinstance(value, float) else str(value)


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

"""What a recording's events and notice say, in the French a chief or a court reads: the
desk's timeline and the extraction report's page tell them in the same words."""

from __future__ import annotations

from recorder.visual_signal import SPANS
from tools.desk.words import seconds
from tools.vault.events import event_kind

TRIGGERS = {"intervention": "intervention de l'agent", "request": "à la demande de la personne",
            "flagrant_delit": "flagrant délit", "pending": "en attente"}
STOPS = {"stopped by the agent": "arrêté par l'agent", "battery critical": "batterie épuisée",
         "stop": "arrêt"}
PURPOSES = {"judicial": "procédure judiciaire", "administrative": "procédure administrative",
            "disciplinary": "procédure disciplinaire", "training": "formation", "access": "droit d'accès"}


# The keys of an event's details (identifiers of the metadata, kept as they are in the
# signed JSON report) in the French of the report's page.
DETAIL_KEYS = {
    "why": "motif", "reason": "déclenchement", "given": "donné", "heard": "entendu", "peak": "pic de corrélation",
    "lag_ms": "décalage (ms)", "duration": "durée (s)", "what": "quoi", "error": "erreur", "note": "note",
    "message": "message", "on": "nuit", "lux": "lumière (lux)", "from": "de", "to": "vers", "status": "position",
    "commune": "commune", "distance_m": "distance à la limite (m)", "uncertainty_m": "incertitude (m)",
    "lat": "latitude", "lon": "longitude", "alt": "altitude (m)", "gps_time": "heure GPS", "mode": "mode GPS",
    "sats": "satellites", "hdop": "HDOP", "eph_m": "précision (m)", "speed_mps": "vitesse (m/s)",
    "track_deg": "cap (°)", "flags": "indicateurs", "last_fix_age_s": "âge de la dernière position (s)",
    "pre_event_s": "avant le déclenchement (s)", "pre_event_from": "avant le déclenchement depuis",
    "pre_event_audio": "son avant le déclenchement", "width": "largeur (px)", "height": "hauteur (px)",
    "fps": "images par seconde", "camera": "caméra", "audio": "son", "night_mode": "mode nuit",
    "video_ok": "image", "audio_ok": "son capté", "frame": "image n°",
}
VALUES = {True: "oui", False: "non", None: "inconnu", "inside": "dans la commune", "outside": "hors de la commune",
          "unknown": "inconnue", "flagrant_delit": "flagrant délit", **TRIGGERS}


def detail_key(key: str) -> str:
    """An event detail's name in French; an unknown one as it is, made readable."""
    return DETAIL_KEYS.get(key, key.replace("_", " "))


def detail_value(value) -> str:
    """A detail's plain value in French (oui/non, dans la commune); others as they are."""
    if value is None or isinstance(value, bool | str):   # never a number: 1 == True
        return VALUES.get(value, str(value))
    return str(value)


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
    if kind == "notice_checked":
        verdict = {True: "entendu", False: "NON entendu"}.get(event.get("heard"), "non vérifié")
        return f"Avertissement vérifié : microphone, {verdict}"
    if kind == "fault":
        return f"Panne : {event['kind']}" if event.get("kind") and event.get("kind") != "fault" else "Panne"
    if kind in ("track", "encoder_error"):
        return None
    return kind.replace("_", " ")


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

"""A search: the filters that need decryption (agent, place, reason, notice, outside the
commune), or a person's access request (period and place). Either needs a motive and a
requester and is journaled as one search; what it decrypts stays in the session's memory,
never in the index.

Filtering by agent needs a motive among the procedures: without one it would be watching
the agents (the form cannot send an agent without a motive)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from drivers.nmea import distance_m
from recorder.errors import EvidenceError
from recorder.evidence.metadata import decrypt_metadata
from recorder.localtime import TimeError, parse_time
from tools.desk.access import Refused
from tools.desk.forms import PURPOSES, reasons
from tools.desk.sessions import author
from tools.desk.timeline import TRIGGERS
from tools.vault.events import track_points
from tools.vault.layout import utc_iso

SEARCH_PURPOSES = {**PURPOSES, "access": "Droit d'accès d'une personne"}
MAX_DAYS = 366


def summary(vault, row, identities) -> dict:
    """What the filters read from a recording's metadata (decrypted in memory)."""
    folder = vault.layout.recording(row.camera_id, row.recording_id)
    static: dict = {}
    points: list = []
    for meta in sorted(folder.glob("*.meta.age")):
        try:
            doc = decrypt_metadata(meta, identities, meta.name)
        except EvidenceError:
            continue
        if isinstance(doc.get("recording"), dict):
            static = doc["recording"]  # the latest segment's view of the whole recording
        points.extend(track_points(doc.get("events")))
    notice = static.get("notice") if isinstance(static.get("notice"), dict) else {}
    flags = static.get("flags") if isinstance(static.get("flags"), dict) else {}
    return {"agent": static.get("agent"), "reason": static.get("trigger_reason"),
            "notice": bool(notice.get("given")), "outside": flags.get("position") == "outside",
            "points": [(p["lat"], p["lon"]) for p in points]}


def _form_time(form, name: str, label: str, zone) -> float:
    text = form.get(name)
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        raise Refused(400, "Demande incomplète", f"Indiquez {label} (heure locale, par exemple 27/11/2026 14:05).")
    try:
        return parse_time(text, zone, what=label)
    except TimeError as exc:
        raise Refused(400, "Date refusée", str(exc)) from None


def _place(form):
    text = form.get("lieu")
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        return None, None
    try:
        lat, lon = (float(x) for x in text.replace(" ", "").split(","))
        radius = float(str(form.get("rayon") or "").replace(",", "."))
    except ValueError:
        raise Refused(400, "Lieu refusé", "Le lieu s'écrit LAT,LON en degrés (46.951,4.299), avec un rayon "
                      "en mètres.") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 < radius <= 100_000):
        raise Refused(400, "Lieu refusé", "Latitude entre -90 et 90, longitude entre -180 et 180, rayon de "
                      "1 m à 100 km.")
    return (lat, lon), radius


async def search_form(desk, request, session, form):
    return desk.page(request, "recherche.html", purposes=SEARCH_PURPOSES, triggers=TRIGGERS, found=None)


async def search(desk, request, session, form):
    motive = form.get("motif")
    if motive not in SEARCH_PURPOSES:
        raise Refused(400, "Recherche refusée", "Une recherche dit son motif : une procédure, la formation ou le "
                      "droit d'accès d'une personne (R241-12). Sans motif, filtrer par agent reviendrait à "
                      "surveiller les agents.")
    asked = reasons(form, "demandeur")
    zone = desk.config.zone
    since, until = _form_time(form, "du", "le début de la période", zone), _form_time(form, "au", "la fin", zone)
    if not 0 < until - since <= MAX_DAYS * 86400:
        raise Refused(400, "Période refusée", f"La fin doit suivre le début, et la période tenir en {MAX_DAYS} jours.")
    near, radius = _place(form)
    agent = (form.get("agent") or "").strip() if isinstance(form.get("agent"), str) else ""
    reason = form.get("raison") or ""
    if reason and reason not in TRIGGERS:
        raise Refused(400, "Recherche refusée", f"Déclenchement {reason[:40]!r} inconnu.")
    notice = form.get("avertissement") or ""
    if notice not in ("", "donne", "absent"):
        raise Refused(400, "Recherche refusée", "Avertissement : donné, absent ou indifférent.")
    outside = form.get("hors_commune") == "oui"
    filters = {"agent": agent or None, "reason": reason or None, "notice": notice or None,
               "outside": outside or None, "near": list(near) if near else None, "radius_m": radius}

    def run():
        with desk.vault.open(author(session)) as vault:
            found = []
            for row in vault.index.recordings(since=since - 86400, until=until):
                start, end = row.span
                if start >= until or end < since:
                    continue
                key = row.recording_id
                if key not in session.searched:
                    session.searched[key] = summary(vault, row, session.identities)
                s = session.searched[key]
                if agent and s["agent"] != agent:
                    continue
                if reason and s["reason"] != reason:
                    continue
                if notice and s["notice"] != (notice == "donne"):
                    continue
                if outside and not s["outside"]:
                    continue
                closest = None
                if near is not None:
                    if not s["points"]:
                        continue
                    closest = min(distance_m(near[0], near[1], lat, lon) for lat, lon in s["points"])
                    if closest > radius:
                        continue
                found.append({"row": row, "summary": s, "closest": closest})
            # Only a person's access request is a "search" as `vault find` logs it: the yearly
            # figures count those as access requests, and a procedure's search is not one.
            vault.log("search" if motive == "access" else "search-for-procedure", purpose=motive, requester=asked["demandeur"], period=[utc_iso(since), utc_iso(until)],
                      filters={k: v for k, v in filters.items() if v is not None},
                      found=[f["row"].recording_id for f in found])
            return found
    found = await run_in_threadpool(run)
    return desk.page(request, "recherche.html", purposes=SEARCH_PURPOSES, triggers=TRIGGERS, found=found,
                     motive=SEARCH_PURPOSES[motive], requester=asked["demandeur"])


ROUTES = [
    ("/recherche", search_form, ["GET"], True),
    ("/recherche", search, ["POST"], True),
]

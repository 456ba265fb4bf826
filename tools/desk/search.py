"""A search: the filters that need decryption (agent, place, reason, notice, outside the
commune), or a person's access request (period and place). Either needs a motive and a
requester and is logged twice (journal and register) by the vault's one search
(``tools.vault.find.search``); what it decrypts stays in the session's memory, never in
the index.

Filtering by agent needs a motive among the procedures: without one it would be watching
the agents (the form cannot send an agent without a motive)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from recorder.localtime import TimeError, parse_time
from tools.desk.access import Refused
from tools.desk.forms import PURPOSES, reasons
from tools.desk.sessions import author
from tools.desk.timeline import TRIGGERS
from tools.vault.find import Filters
from tools.vault.find import search as vault_search

SEARCH_PURPOSES = {**PURPOSES, "access": "Droit d'accès d'une personne"}
MAX_DAYS = 366
NOTICES = {"donne": "given", "absent": "absent"}


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
    filters = Filters(agent=agent or None, reason=reason or None, notice=NOTICES.get(notice), outside=outside,
                      near=near, radius_m=radius)

    def run():
        # The same search as `pieton vault find` (logged twice, its motive counted in the
        # yearly figures only when it is a person's access right); what it decrypts stays
        # in the session's memory.
        with desk.vault.open(author(session)) as vault:
            result = vault_search(vault, since, until, filters, motive=motive, requester=asked["demandeur"],
                                  identities=session.identities, cache=session.searched)
            return [{"row": f.row, "summary": f.summary, "closest": f.closest_m} for f in result.found]
    found = await run_in_threadpool(run)
    return desk.page(request, "recherche.html", purposes=SEARCH_PURPOSES, triggers=TRIGGERS, found=found,
                     motive=SEARCH_PURPOSES[motive], requester=asked["demandeur"])


ROUTES = [
    ("/recherche", search_form, ["GET"], True),
    ("/recherche", search, ["POST"], True),
]

"""A search: the filters that need decryption (agent, place, reason, notice, outside the
commune), or a person's access request (period and place). Either needs a motive and a
requester and is logged twice (journal and register) by the vault's one search
(``tools.vault.find.search``); what it decrypts stays in the session's memory, never in
the index.

Filtering by agent needs a motive among the procedures: without one it would be watching
the agents (the form cannot send an agent without a motive)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from tools.desk.access import Refused
from tools.desk.forms import PURPOSES, local_time, number, reasons, shown, text
from tools.desk.sessions import author
from tools.desk.timeline import TRIGGERS
from tools.vault.find import Filters
from tools.vault.find import search as vault_search

SEARCH_PURPOSES = {**PURPOSES, "access": "Droit d'accès d'une personne"}
MAX_DAYS = 366
NOTICES = {"donne": "given", "absent": "absent"}


def _place(form):
    place = text(form, "lieu", "le lieu", required=False, limit=60)
    if not place:
        return None, None
    parts = place.replace(" ", "").split(",")
    if len(parts) != 2:
        raise Refused(400, "Lieu refusé", f"Lieu {shown(place)} : il s'écrit LAT,LON en degrés, avec un point "
                      "décimal (46.951,4.299), et un rayon en mètres.")
    lat, lon = number(parts[0], "Latitude du lieu", -90, 90), number(parts[1], "Longitude du lieu", -180, 180)
    radius = number(form.get("rayon"), "Rayon (mètres)", 1, 100_000)
    if lat is None or lon is None or radius is None:
        raise Refused(400, "Lieu refusé", "Le lieu s'écrit LAT,LON en degrés (46.951,4.299), avec un rayon "
                      "en mètres (de 1 m à 100 km).")
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
    since = local_time(form.get("du"), "le début de la période (Du)", zone, required=True)
    until = local_time(form.get("au"), "la fin de la période (Au)", zone, required=True)
    if not 0 < until - since <= MAX_DAYS * 86400:
        raise Refused(400, "Période refusée", f"La fin doit suivre le début, et la période tenir en {MAX_DAYS} jours.")
    near, radius = _place(form)
    agent = text(form, "agent", "l'agent (matricule)", required=False, limit=40)
    reason = form.get("raison") or ""
    if reason and reason not in TRIGGERS:
        raise Refused(400, "Recherche refusée", f"Déclenchement {shown(reason)} inconnu.")
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

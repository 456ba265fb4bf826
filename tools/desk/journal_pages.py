"""The register (filter, print, CSV) and the yearly figures for the préfet."""

from __future__ import annotations

from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tools.desk.access import Refused
from tools.desk.forms import PURPOSES, choice, local_time, whole
from tools.desk.sessions import author
from tools.vault.find import stats
from tools.vault.register_view import COLUMNS, EVENTS, as_csv, register_rows


def register_lines(desk, vault, params) -> list[dict]:
    """The register's lines as `pieton vault register` prints them (one code path)."""
    since = local_time(params.get("de"), "le début (Du)", desk.config.zone, required=False)
    until = local_time(params.get("a"), "la fin (Au)", desk.config.zone, required=False)
    if since is not None and until is not None and until <= since:
        raise Refused(400, "Période refusée", "La fin (Au) doit suivre le début (Du) : rien n'est montré.")
    event = choice(params, "evenement", ("", *EVENTS), "")
    return register_rows(vault, since=since, until=until, events=(event,) if event else None)


async def register_page(desk, request, session, form):
    params = request.query_params
    fmt = choice(params, "format", ("html", "csv"), "html")

    def read():
        with desk.vault.open(author(session)) as vault:
            return register_lines(desk, vault, params)
    lines = await run_in_threadpool(read)
    if fmt == "csv":
        return Response(as_csv(lines), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="registre.csv"',
                                 "Cache-Control": "no-store"})
    return desk.page(request, "registre.html", lines=lines, columns=COLUMNS, events=EVENTS,
                     params={k: params.get(k, "") for k in ("de", "a", "evenement")})


FIGURES = {"cameras_enrolled": "Caméras enregistrées", "cameras_recording": "Caméras ayant enregistré",
           "recordings": "Enregistrements", "recordings_truncated": "Enregistrements tronqués",
           "recordings_held_now": "Enregistrements retenus aujourd'hui", "recordings_erased": "Enregistrements effacés",
           "holds_placed": "Retenues posées", "extractions_by_purpose": "Extractions par motif",
           "failed_extractions_by_purpose": "Extractions échouées par motif",
           "consultations_by_purpose": "Consultations par motif",
           "access_requests_searched": "Demandes d'accès d'une personne (recherches)"}


async def figures_page(desk, request, session, form):
    year = whole(request.query_params.get("annee", str(datetime.now().year)), "annee", 2000, 2200)

    def read():
        with desk.vault.open(author(session)) as vault:
            return stats(vault, year)
    figures = await run_in_threadpool(read)
    rows = []
    for key, label in FIGURES.items():
        value = figures.get(key)
        if isinstance(value, dict):
            value = ", ".join(f"{PURPOSES.get(k, k)} : {v}" for k, v in value.items()) or "aucune"
        rows.append((label, value))
    return desk.page(request, "chiffres.html", year=year, rows=rows)


ROUTES = [
    ("/registre", register_page, ["GET"], True),
    ("/chiffres", figures_page, ["GET"], True),
]

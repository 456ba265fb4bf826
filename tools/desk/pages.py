"""The recordings: the listing (index fields only, not an access request), a recording's
page, its consultation (motive and requester first, logged twice) and playing it, holds."""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, StreamingResponse

from recorder.errors import PietonError
from tools.desk import cameras, extraction, jobs, journal_pages, search, training
from tools.desk.access import Refused, duration_s, retention_end
from tools.desk.forms import PURPOSES, choice, number, reasons, recording_id, shown, stored_row, whole
from tools.desk.sessions import author
from tools.desk.stream import play_body
from tools.desk.thumbs import thumbnails
from tools.desk.timeline import timeline
from tools.desk.track_map import track_svg
from tools.desk.web import private
from tools.vault.extract import Request, log_consultation, open_recording
from tools.vault.retention import hold, release, retention_ends

SORTS = {"camera": lambda r, end: (r.camera_id, r.started_at or 0.0),
         "debut": lambda r, end: r.started_at or r.ingested_at,
         "duree": lambda r, end: duration_s(r) or 0.0,
         "conservation": lambda r, end: end}


async def recordings(desk, request, session, form):
    params = request.query_params
    sort = choice(params, "tri", SORTS, "debut")
    order = choice(params, "ordre", ("asc", "desc"), "desc")
    page = whole(params.get("page", "1"), "page", 1, 10**6)

    def listing():
        with desk.vault.open(author(session)) as vault:
            rows = vault.index.recordings(state="stored")
            ends = retention_ends(vault, rows)
            key = SORTS[sort]
            rows.sort(key=lambda r: key(r, ends[r.recording_id]), reverse=order == "desc")
            size = desk.config.page_size
            pages = max(1, -(-len(rows) // size))
            shown = rows[(page - 1) * size: page * size]
            lines = [{"row": r, "duration": duration_s(r), "end": ends[r.recording_id],
                      "holds": vault.index.holds(r.recording_id)} for r in shown]
            quarantine = vault.index.quarantined()
            return lines, len(rows), pages, quarantine
    lines, total, pages, quarantine = await run_in_threadpool(listing)
    return desk.page(request, "enregistrements.html", lines=lines, total=total, page=min(page, pages),
                     pages=pages, sort=sort, order=order, quarantine=quarantine)


async def recording(desk, request, session, form):
    rid = recording_id(request.path_params["rid"])

    def read():
        with desk.vault.open(author(session)) as vault:
            row = stored_row(vault, rid)
            return row, retention_end(vault, row), vault.index.holds(rid)
    row, end, holds = await run_in_threadpool(read)
    # The range of an extraction chosen on the timeline: a moment's "début ici" / "fin ici" link.
    chosen = {name: _offset(request.query_params.get(name)) for name in ("debut", "fin")}
    return desk.page(request, "enregistrement.html", row=row, duration=duration_s(row), end=end, holds=holds,
                     consulted=session.consulted.get(rid), purposes=PURPOSES, chosen=chosen)


def _offset(value) -> str:
    """A range bound from the address, for the form only (the extraction checks it again):
    one that is not a number of seconds is left out."""
    try:
        seconds = number(value, "", 0, 7 * 86400)
    except Refused:
        return ""
    return "" if seconds is None else f"{seconds:.1f}"


async def consult(desk, request, session, form):
    """Reading a recording's metadata and playing it is a consultation: its motive and
    requester first, logged twice (journal and register) as `pieton vault view` logs it."""
    rid = recording_id(request.path_params["rid"])
    asked = reasons(form, "motif", "demandeur")
    Request([rid], asked["motif"], asked["demandeur"], "consultation", None).check()

    def run():
        with desk.vault.open(author(session)) as vault:
            row = stored_row(vault, rid)
            try:
                rec = open_recording(vault, rid, session.identities, purpose=asked["motif"])
                moments, points, track = timeline(rec, desk.config.zone)
                drawn = track_svg(track, list(vault.settings.get("communes") or []))
                pictures = thumbnails(rec)
                # Not waiting for the whole recording's hashes (seconds for a long one): they
                # are checked again alongside the playing, which stops at a mismatch.
                entry = log_consultation(vault, rid, asked["motif"], asked["demandeur"], row.camera_id,
                                         duration_s(row), played=True, medium="desk")
            except PietonError as exc:
                vault.log_twice("extraction-failed", recordings=[rid], purpose=asked["motif"],
                                requester=asked["demandeur"], deliver_to="consultation",
                                reason=f"consultation: {exc}"[:500])
                raise
            return rec, moments, points, drawn, pictures, entry["seq"]
    rec, moments, points, drawn, pictures, seq = await run_in_threadpool(run)
    ticket = secrets.token_urlsafe(24)
    session.tickets[ticket] = rid
    session.opened[ticket] = rec  # the first play uses it: verified and decrypted once, not twice
    session.consulted[rid] = {"moments": moments, "points": points, "map": drawn, "thumbs": pictures, "ticket": ticket, "journal_seq": seq,
                              "purpose": PURPOSES[asked["motif"]], "requester": asked["demandeur"]}
    return private(RedirectResponse(f"/enregistrements/{rid}#lecture", status_code=303))


async def play(desk, request, session, form):
    """The consulted recording as fragmented MP4, made as it is sent; never stored."""
    ticket = request.path_params["ticket"]
    rid = session.tickets.get(ticket)
    if rid is None:
        raise Refused(403, "Lecture refusée", "Cette lecture n'a pas été demandée dans cette session "
                      "(motif et demandeur d'abord).", attempt=True)

    def opened():
        with desk.vault.open(author(session)) as vault:
            return open_recording(vault, rid, session.identities)
    rec = session.opened.pop(ticket, None) or await run_in_threadpool(opened)
    return StreamingResponse(play_body(rec), media_type="video/mp4",
                             headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def _holding(action):
    async def handler(desk, request, session, form):
        """A hold (or its release) for a procedure, journaled as `pieton vault hold` does."""
        rid = recording_id(request.path_params["rid"])
        asked = reasons(form, "procedure")

        def run():
            with desk.vault.open(author(session)) as vault:
                stored_row(vault, rid)
                held = vault.index.holds(rid)
                if action is hold and asked["procedure"] in held:
                    raise Refused(400, "Retenue refusée", f"{rid} est déjà retenu pour la procédure "
                                  f"{shown(asked['procedure'])} : rien n'a été fait.")
                if action is release and asked["procedure"] not in held:
                    raise Refused(400, "Libération refusée", f"{rid} n'est pas retenu pour la procédure "
                                  f"{shown(asked['procedure'])} (retenues : {', '.join(held) or 'aucune'}) : "
                                  "rien n'a été fait.")
                action(vault, rid, asked["procedure"])
        await run_in_threadpool(run)
        return private(RedirectResponse(f"/enregistrements/{rid}", status_code=303))
    return handler


async def home(desk, request, session, form):
    return private(RedirectResponse("/enregistrements", status_code=303))


ROUTES = [
    ("/", home, ["GET"], True),
    ("/enregistrements", recordings, ["GET"], True),
    ("/enregistrements/{rid}", recording, ["GET"], True),
    ("/enregistrements/{rid}/consulter", consult, ["POST"], True),
    ("/enregistrements/{rid}/retenir", _holding(hold), ["POST"], True),
    ("/enregistrements/{rid}/liberer", _holding(release), ["POST"], True),
    ("/lecture/{ticket}", play, ["GET"], True),
    *extraction.ROUTES,
    *journal_pages.ROUTES,
    *cameras.ROUTES,
    *search.ROUTES,
    *training.ROUTES,
    *jobs.ROUTES,
]

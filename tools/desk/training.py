"""Training extractions on the desk: the clips awaiting the chief's sign-off, their contact
sheet, the licence-plate boxes the chief draws on it, and the sign-off or the refusal.

The same functions as `pieton vault training-approve|training-reject`
(``tools.vault.training_approval``), with the same check of who signs (``identify``, as the
command's ``--identity``), logged twice the same way. A clip made again with more plate
boxes is a new training extraction (``tools.vault.extract.extract``, pending in its turn);
the one it replaces is refused, logged with the reason. Nothing leaves the vault before
the sign-off, and then only to where the extraction was asked for (the exports folder for
one started on the desk)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import av
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse

from recorder.errors import VaultError
from tools.desk.access import Refused
from tools.desk.forms import shown, text
from tools.desk.jobs import JOB_WAIT_S, job_started
from tools.desk.sessions import author
from tools.desk.web import private
from tools.vault.anonymised_words import in_french
from tools.vault.contact_sheet import pictures
from tools.vault.extract import Request, extract
from tools.vault.persons import identify
from tools.vault.plates import MAX_MARKS, load_plate_file, parse_plate
from tools.vault.training_approval import (
    CLIP,
    PLATES,
    SHEET,
    STATE,
    approve,
    pending_root,
    read_pending,
    redo_request,
    reject,
    waiting,
)

XID = re.compile(r"X-training-[0-9a-f]{16}")
MAX_PLATE_S, MAX_PIXELS = 7 * 86400, 100_000   # as a boxes file (tools/vault/plates.py) allows
SCRIPT_CSP = "default-src 'none'; script-src 'self'; "  # the sheet's page draws boxes with /statique/plaques.js


def extraction_id(value: str) -> str:
    """A training extraction's id from the address: anything else (a path) is refused."""
    if not XID.fullmatch(value or ""):
        raise Refused(400, "Paramètre refusé", f"{shown(value)} n'est pas l'identifiant d'une extraction de "
                      "formation (un chemin ou un nom de fichier n'est jamais accepté).", attempt=True)
    return value


def plate_lines(text) -> list:
    """The plate boxes typed or drawn, one ``T,X,Y,W,H`` a line (``--plate`` of the command)."""
    lines = [line.strip() for line in (text if isinstance(text, str) else "").splitlines() if line.strip()]
    if len(lines) > MAX_MARKS:
        raise Refused(400, "Plaques refusées", f"{len(lines)} cadres de plaque : au plus {MAX_MARKS}.")
    marks = []
    for number, line in enumerate(lines, 1):
        try:
            mark = parse_plate(line) if line.isascii() else None  # 12 in digits of another script: no
        except VaultError:
            mark = None
        if mark is None:
            raise Refused(400, "Plaque refusée", f"Plaques, ligne {number} ({shown(line)}) : écrivez T,X,Y,W,H — "
                          "l'instant en secondes depuis le début de l'extrait (avec un point décimal), puis la "
                          "gauche, le haut, la largeur et la hauteur du cadre en pixels de l'image, par exemple "
                          "3.5,640,400,120,40. Rien n'a été fait.")
        x, y, w, h = mark.box
        if mark.t > MAX_PLATE_S or max(mark.box) >= MAX_PIXELS or w < 4 or h < 4:
            raise Refused(400, "Plaque refusée", f"Plaques, ligne {number} ({shown(line)}) : un cadre d'au moins "
                          f"4 × 4 pixels, à moins de {MAX_PIXELS} pixels du coin de l'image, à un instant de l'extrait "
                          "(en secondes). Rien n'a été fait.")
        marks.append(dataclasses.replace(mark, origin=f"plaques, ligne {number} ({line})"))
    return marks


def _waiting_here(vault, xid: str) -> None:
    if not (pending_root(vault) / xid / STATE).is_file():
        raise Refused(404, "Extraction introuvable", f"Aucune extraction de formation {xid} n'attend de "
                      "validation dans le coffre (déjà validée, refusée, ou jamais faite).", attempt=True)


def _frame_size(clip: Path) -> tuple[int, int] | None:
    """The clip's picture size: boxes drawn on the smaller sheet are given in its pixels."""
    try:
        with av.open(str(clip)) as container:
            context = container.streams.video[0].codec_context
            return context.width, context.height
    except (av.error.FFmpegError, OSError, IndexError):
        return None


def _plates(folder: Path, anonymised: dict) -> str:
    try:
        drawn = len(load_plate_file(folder / PLATES))
    except VaultError:  # made before the vault kept the boxes: the report's own words
        return in_french(anonymised.get("plates", ""))
    return f"{drawn} cadre(s) tracé(s), suivi(s) d'image en image" if drawn else "aucun cadre tracé"


def _summary(folder: Path, state: dict, report: dict) -> dict:
    anonymised = report.get("anonymised") or {}
    mp4 = report.get("mp4") or {}
    return {"id": report.get("extraction_id") or folder.name, "duration": mp4.get("duration_s"),
            "requester": report.get("requester"), "deliver_to": report.get("deliver_to"),
            "out": state.get("out", ""), "plates": _plates(folder, anonymised),
            "faces": in_french(anonymised.get("faces", "")), "since": (folder / STATE).stat().st_mtime}


async def pending_page(desk, request, session, form):
    def read():
        with desk.vault.open(author(session)) as vault:
            items = []
            for item in waiting(vault):
                try:
                    items.append(_summary(*read_pending(vault, item["extraction_id"])))
                except VaultError as exc:  # said, never hidden: its sign-off would be refused too
                    items.append({"id": item["extraction_id"], "problem": str(exc)})
            return items
    items = await run_in_threadpool(read)
    refused = request.query_params.get("refusee", "")
    return desk.page(request, "formation.html", items=items, refused=refused if XID.fullmatch(refused) else None)


async def sheet_page(desk, request, session, form):
    xid = extraction_id(request.path_params["xid"])

    def read():
        with desk.vault.open(author(session)) as vault:
            _waiting_here(vault, xid)
            folder, state, report = read_pending(vault, xid)
            shown = pictures((folder / SHEET).read_text(encoding="utf-8", errors="replace"))
            redo = isinstance(state.get("request"), dict)  # made since the vault keeps what was asked
            return _summary(folder, state, report), shown, _frame_size(folder / CLIP), redo
    item, shown, frame, redo = await run_in_threadpool(read)
    response = desk.page(request, "planche.html", item=item, pictures=shown, frame=frame, redo=redo)
    response.headers["Content-Security-Policy"] = response.headers["Content-Security-Policy"].replace(
        "default-src 'none'; ", SCRIPT_CSP, 1)
    return response


def _signer(vault, session, action: str) -> list:
    """The session's identity, checked as the command checks its ``--identity``: still a
    designated person's (the author of what is logged)."""
    identify(vault, session.identities, action)
    return session.identities


async def approve_page(desk, request, session, form):
    xid = extraction_id(request.path_params["xid"])
    if form.get("verifie") != "oui":
        raise Refused(400, "Validation refusée", "Cochez que vous avez regardé chaque image de la planche (aucun "
                      "visage, aucune plaque lisible, aucune légende) : rien n'a été validé.")

    def run():
        with desk.vault.open(author(session)) as vault:
            _waiting_here(vault, xid)
            return approve(vault, xid, _signer(vault, session, "training-approve"))
    out = await run_in_threadpool(run)
    exports = out.parent.resolve() == desk.config.exports.resolve()
    if exports:
        session.extracted.add(out.stem)  # offered for download, as any extraction made here
    return desk.page(request, "formation_validee.html", xid=xid, out=out, name=out.stem, exports=exports)


def _reason(form) -> str:
    if not isinstance(form.get("raison"), str) or not form.get("raison").strip():
        raise Refused(400, "Demande incomplète", "Dites ce que montre la planche (le motif du refus) : rien n'a "
                      "été fait.")
    return text(form, "raison", "le motif du refus", limit=500)


async def reject_page(desk, request, session, form):
    xid = extraction_id(request.path_params["xid"])
    reason = _reason(form)

    def run():
        with desk.vault.open(author(session)) as vault:
            _waiting_here(vault, xid)
            reject(vault, xid, _signer(vault, session, "training-reject"), reason)
    await run_in_threadpool(run)
    return private(RedirectResponse("/formation?refusee=" + xid, status_code=303))


async def redo_page(desk, request, session, form):
    """Made again with the plate boxes the chief drew (added to those already given): the
    new clip waits for sign-off in its turn, and this one is refused."""
    xid = extraction_id(request.path_params["xid"])
    marks = plate_lines(form.get("plaques"))
    if not marks:
        raise Refused(400, "Demande incomplète", "Tracez ou écrivez au moins un cadre de plaque : rien n'a été fait.")

    identities, operator = list(session.identities), author(session)  # the job's, dropped when it ends

    what = (f"Extrait de formation {xid} refait avec {len(marks)} cadre(s) de plaque de plus (visages floutés, "
            "plaques masquées) ; celui-ci sera refusé")

    def run():
        with desk.vault.open(operator, wait_s=JOB_WAIT_S, job=what) as vault:
            _waiting_here(vault, xid)
            identify(vault, identities, "extract")
            result = extract(vault, Request(**redo_request(vault, xid, marks)), identities)
            new = result.report["extraction_id"]
            identify(vault, identities, "training-reject")
            reject(vault, xid, identities, f"refaite avec {len(marks)} cadre(s) de plaque de plus : extraction {new}")
            return {"redirect": f"/formation/{new}"}
    job = desk.jobs.start(("redo", xid), what, session, request.url.path, run)
    return job_started(job)


ROUTES = [
    ("/formation", pending_page, ["GET"], True),
    ("/formation/{xid}", sheet_page, ["GET"], True),
    ("/formation/{xid}/valider", approve_page, ["POST"], True),
    ("/formation/{xid}/refuser", reject_page, ["POST"], True),
    ("/formation/{xid}/refaire", redo_page, ["POST"], True),
]

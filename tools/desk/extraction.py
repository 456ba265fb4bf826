"""Extraction from the desk: motive, requester, recipient and range, through the same code
as `pieton vault extract` (logged twice, signed report); the MP4 and its report go to the
folder the chief set (`pieton desk --exports`) and are offered for download."""

from __future__ import annotations

import re

from starlette.responses import FileResponse

from tools.desk.access import Refused
from tools.desk.forms import PURPOSES, number, reasons, recording_id, shown
from tools.desk.jobs import JOB_WAIT_S, job_started
from tools.desk.sessions import author
from tools.desk.training import plate_lines
from tools.desk.words import seconds
from tools.vault.extract import Request, extract

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,100}")
SIDE = (".mp4", ".report.json", ".report.html")
_RANGE = re.compile(r"bytes=([0-9]{1,15})-([0-9]{0,15})")


def file_name(value) -> str:
    """The extraction's file name: a plain name in the exports folder, never a path."""
    name = value.strip() if isinstance(value, str) else ""
    if not name:
        raise Refused(400, "Demande incomplète", "Donnez un nom au fichier de l'extraction (par exemple pv-2026-114).")
    if name.lower().endswith(".mp4"):
        name = name[:-4]
    if not _NAME.fullmatch(name) or ".." in name:
        raise Refused(400, "Paramètre refusé", f"Nom du fichier {shown(value)} : pas un simple nom de fichier "
                      "(lettres, chiffres, - _ .) ; un chemin n'est jamais accepté.", attempt=True)
    return name + ".mp4"


def _free(folder, name: str) -> None:
    """An extraction never overwrites: a name already used in the exports folder is refused
    here, in the form's words, before the job (the vault checks again when it writes)."""
    stem = name[:-len(".mp4")]
    taken = [stem + side for side in SIDE if (folder / (stem + side)).exists()]
    if taken:
        raise Refused(400, "Demande refusée", f"Nom du fichier {shown(stem)} : {taken[0]} existe déjà dans le dossier "
                      "des extractions (une extraction n'en remplace jamais une autre) ; choisissez un autre nom. "
                      "Rien n'a été fait.")


def _seconds(value, label: str) -> str | None:
    """A range bound: seconds from the recording's start (a week at most)."""
    seconds = number(value, f"{label} (secondes depuis le début de l'enregistrement)", 0, 7 * 86400)
    return None if seconds is None else repr(seconds)


async def extract_page(desk, request, session, form):
    rid = recording_id(request.path_params["rid"])
    asked = reasons(form, "motif", "demandeur", "destinataire")
    name = file_name(form.get("nom"))
    _free(desk.config.exports, name)
    start, end = _seconds(form.get("debut"), "Début"), _seconds(form.get("fin"), "Fin")
    if start is not None and end is not None and float(end) <= float(start):
        raise Refused(400, "Demande refusée", f"Fin {seconds(float(end))} : elle doit suivre le début "
                      f"({seconds(float(start))}). Rien n'a été fait.")
    plates = plate_lines(form.get("plaques"))
    if plates and asked["motif"] != "training":
        raise Refused(400, "Demande refusée", "Les cadres de plaques ne servent qu'à une extraction pour la formation "
                      "(anonymisée) ; les autres extractions sont remises entières. Rien n'a été fait.")
    out = desk.config.exports / name
    request_ = Request([rid], asked["motif"], asked["demandeur"], asked["destinataire"], out, start, end,
                       plates=plates)

    # The job's own references (not the session's): dropped when it ends.
    identities, extracted, operator = list(session.identities), session.extracted, author(session)

    what = _what(rid, asked, start, end, out.name)

    def run():
        with desk.vault.open(operator, wait_s=JOB_WAIT_S, job=what) as vault:
            if vault.index.recording(rid) is None:
                raise Refused(404, "Enregistrement introuvable", f"Le coffre ne contient pas d'enregistrement {rid}.",
                              attempt=True)
            return extract(vault, request_, identities)

    def shown(result):
        if result.pending is None:  # a training clip is offered once signed off (tools/desk/training.py)
            extracted.add(out.stem)
        return {"template": "extraction.html", "context": {
            "rid": rid, "result": result, "name": out.stem, "folder": desk.config.exports,
            "purpose": PURPOSES[asked["motif"]], "asked": asked}}
    job = desk.jobs.start(("extraction", rid, start, end, asked["motif"]), what, session, request.url.path, run,
                          shown)
    return job_started(job)


def _what(rid: str, asked: dict, start: str | None, end: str | None, name: str) -> str:
    """The job's line: which recording, what for, which part, into which file."""
    part = "en entier" if start is None and end is None else (
        f"de {seconds(float(start or 0))} à {seconds(float(end)) if end else 'la fin'}")
    kind = "anonymisée (visages floutés, son retiré) pour la formation" if asked["motif"] == "training" else (
        f"pour : {PURPOSES[asked['motif']]}")
    return (f"Extraction de {rid} {part}, {kind}, demandée par {asked['demandeur']} pour {asked['destinataire']}, "
            f"dans le fichier {name}")


async def download(desk, request, session, form):
    """A file of an extraction this session made, as an attachment."""
    name = request.path_params["name"]
    stem = next((name[:-len(s)] for s in SIDE if name.endswith(s)), None)
    if stem is None or not _NAME.fullmatch(stem) or ".." in stem:
        raise Refused(400, "Paramètre refusé", f"{name[:80]!r} n'est pas un fichier d'extraction.", attempt=True)
    if stem not in session.extracted:
        raise Refused(403, "Téléchargement refusé", "Ce fichier n'est pas une extraction faite dans cette session.",
                      attempt=True)
    path = desk.config.exports / name
    if not path.is_file():
        raise Refused(404, "Fichier introuvable", f"{name} n'est plus dans le dossier des extractions.")
    _one_range(request.headers.get("range"), path.stat().st_size)
    return FileResponse(path, filename=name, headers={"Cache-Control": "no-store"})


def _one_range(value: str | None, size: int) -> None:
    """A download taken up again asks for one range of bytes inside the file; anything else
    gets a page saying so (not the server's bare English, nor an empty answer)."""
    if value is None:
        return
    found = _RANGE.fullmatch(value.strip())
    if found is None or int(found[1]) >= size or (found[2] and int(found[2]) < int(found[1])):
        raise Refused(416, "Plage refusée", f"Plage d'octets {shown(value)} : le fichier en compte {size} ; "
                      "un téléchargement repris demande une seule plage, bytes=DÉBUT-FIN, à l'intérieur.")


ROUTES = [
    ("/enregistrements/{rid}/extraire", extract_page, ["POST"], True),
    ("/extractions/{name}", download, ["GET"], True),
]

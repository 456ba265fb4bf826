"""The register as an inspector reads it (`pieton vault register`, the desk's register
page): one row per operation, local time with its zone, who did it (the designated
person's matricule), why, for whom, on what. Text table, CSV (what a French spreadsheet
opens) or a printable HTML page."""

from __future__ import annotations

import csv
import html
import io

from recorder.errors import VaultError
from recorder.localtime import TimeError, format_local, parse_time
from tools.vault.register import read_register
from tools.vault.vault import Vault

EVENTS = {
    "extraction": "Extraction", "extraction-failed": "Extraction ou consultation échouée",
    "consultation": "Consultation", "recording-ingested": "Collecte (déchargement)",
    "recording-quarantined": "Collecte mise en quarantaine", "search": "Recherche",
    "hold": "Retenue pour une procédure", "release": "Levée d'une retenue",
    "recording-erased": "Effacement (durée de conservation)", "quarantine-erased": "Effacement (quarantaine)",
    "mirror-erased": "Effacement (copie de secours)", "recording-erased-on-camera": "Effacement sur la caméra",
    "person-designated": "Désignation d'une personne", "person-revoked": "Fin de désignation",
    "training-approved": "Validation d'une extraction de formation",
    "training-rejected": "Refus d'une extraction de formation",
}
PURPOSES = {"judicial": "judiciaire", "administrative": "administrative", "disciplinary": "disciplinaire",
            "training": "formation", "access": "droit d'accès"}
COLUMNS = ("Date", "Opération", "Auteur", "Motif", "Demandeur", "Destinataire", "Enregistrements", "Caméras",
           "Détail", "Entrée du journal")
# Fields shown in "Détail", in this order, with their French names.
_DETAIL = (("procedure", "procédure"), ("matricule", "matricule"), ("name", "nom"), ("role", "rôle"),
           ("decision", "décision"), ("designated_by", "désigné par"), ("filters", "filtres"),
           ("period", "période"), ("folder", "dossier"), ("exports", "dossier d'export"),
           ("mp4", "fichier"), ("extraction_id", "extraction"), ("reason", "raison"))
# A search's filters (tools/vault/find.py Filters.logged) and their values, in French.
_FILTERS = {"camera": "caméra", "agent": "agent", "reason": "déclenchement", "notice": "avis sonore",
            "outside": "hors de la commune", "near": "près de", "radius_m": "rayon (m)"}
_FILTER_VALUES = {"intervention": "intervention", "request": "à la demande de la personne",
                  "requested_by_person": "à la demande de la personne", "flagrant_delit": "flagrant délit",
                  "pending": "en attente", "given": "diffusé", "absent": "non diffusé", True: "oui"}


def register_rows(vault: Vault, *, since: float | None = None, until: float | None = None,
                  events: tuple[str, ...] | None = None) -> list[dict]:
    """The register's lines within [since, until), each as the COLUMNS name them."""
    if since is not None and until is not None and until <= since:
        raise VaultError("--to must be after --from")
    report = read_register(vault.settings["register"], vault.public_key)
    if report.problems:  # an inspection must know the register it reads was altered
        raise VaultError("the register does not verify: " + "; ".join(report.problems[:3])
                         + " (run `pieton vault verify`)")
    rows = []
    for line in report.lines:
        event = line.get("event")
        if event not in EVENTS or (events and event not in events):
            continue
        try:
            at = parse_time(str(line.get("at")), "UTC")
        except TimeError:
            at = None
        if at is not None and ((since is not None and at < since) or (until is not None and at >= until)):
            continue
        recordings = line.get("recordings") or line.get("found") \
            or ([line["recording"]] if line.get("recording") else [])
        cameras = line.get("cameras") or ([line["camera"]] if line.get("camera") else [])
        detail = []
        for key, label in _DETAIL:
            value = line.get(key)
            if value in (None, "", [], {}):
                continue
            if key == "filters" and isinstance(value, dict):
                value = ", ".join(f"{_FILTERS.get(k, k)} : {_filter_value(v)}" for k, v in value.items())
            elif key == "period" and isinstance(value, list):
                value = _period(value, vault.timezone)
            elif isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            elif isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            detail.append(f"{label} : {value}")
        rows.append({
            "Date": format_local(at, vault.timezone) if at is not None else str(line.get("at")),
            "Opération": EVENTS[event], "Auteur": line.get("operator") or "",
            "Motif": PURPOSES.get(line.get("purpose"), line.get("purpose") or ""),
            "Demandeur": line.get("requester") or "", "Destinataire": line.get("deliver_to") or "",
            "Enregistrements": ", ".join(map(str, recordings)), "Caméras": ", ".join(map(str, cameras)),
            "Détail": "; ".join(detail), "Entrée du journal": line.get("journal_seq"),
        })
    return rows


def _filter_value(value) -> str:
    if isinstance(value, list):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return _FILTER_VALUES.get(value, str(value)) if isinstance(value, (str, bool)) else str(value)


def _period(ends: list, zone: str) -> str:
    """A logged period [from, to] (UTC) as the inspector reads it: local times with their zone."""
    words = []
    for end in ends:
        try:
            words.append(format_local(parse_time(str(end), "UTC"), zone, seconds=False) if end else "…")
        except TimeError:
            words.append(str(end))
    return " au ".join(words) if len(words) == 2 else ", ".join(words)


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    """A typed requester or procedure starting like a formula (=HYPERLINK(...)) stays text in
    the spreadsheet an inspector opens the CSV in: quoted with an apostrophe, as they do."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA) else value


def as_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, delimiter=";")
    writer.writeheader()
    writer.writerows({key: _cell(value) for key, value in row.items()} for row in rows)
    return "\ufeff" + out.getvalue()


def as_text(rows: list[dict]) -> str:
    """A table read in a terminal: the long columns last."""
    short = ("Date", "Opération", "Auteur", "Motif", "Entrée du journal")
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in short}
    lines = ["  ".join(c.ljust(widths[c]) for c in short)]
    for r in rows:
        lines.append("  ".join(str(r[c]).ljust(widths[c]) for c in short))
        for c in ("Demandeur", "Destinataire", "Enregistrements", "Caméras", "Détail"):
            if r[c]:
                lines.append(f"    {c} : {r[c]}")
    lines.append(f"{len(rows)} opération(s)")
    return "\n".join(lines)


def as_html(rows: list[dict], title: str) -> str:
    head = "".join(f"<th scope=\"col\">{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c] if r[c] is not None else ''))}</td>"
                                    for c in COLUMNS) + "</tr>\n" for r in rows)
    return (f"<!doctype html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #444;"
            "padding:2px 4px;font-size:10pt;vertical-align:top}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"
            f"<p>{len(rows)} opération(s)</p></body></html>\n")

"""What the desk's forms and addresses may hold: each value checked, a refusal in French that
names the field and the rule.

One reader per kind of value, for every page: ``text`` (a motive, a requester, a reference:
UTF-8 text on one line, without control characters, of a bounded length), ``number`` and
``whole`` (plain decimal digits, a comma or a point; not ``1_0``, ``１２``, ``nan`` nor
``1e308`` as Python's own readers take them), ``local_time`` (the two ways the desk's pages
show a date), ``choice``; and ``single``, which refuses a form or an address naming a field
twice (a desk page never does: which of the two would count?). A value shown back in a
refusal is cut and escaped (``shown``).
"""

from __future__ import annotations

import re

from recorder.arguments import INVISIBLE_MARKS
from recorder.evidence.format import RECORDING_ID
from recorder.localtime import FIRST_YEAR, LAST_YEAR, TimeError, format_local, parse_time
from tools.desk.access import Refused
from tools.desk.words import seconds
from tools.vault.remux import OutsideRecording
from tools.vault.retention import PastRetention

PURPOSES = {"judicial": "Procédure judiciaire", "administrative": "Procédure administrative",
            "disciplinary": "Procédure disciplinaire", "training": "Formation"}
LABELS = {"motif": "le motif", "demandeur": "le demandeur", "destinataire": "le destinataire",
          "procedure": "la référence de la procédure"}

# C0 and C1 controls, DEL, and the Unicode marks that reorder or hide text (bidirectional
# overrides and isolates, line and paragraph separators): a value with one would print
# disguised in the register. U+FFFD is what bytes that are not UTF-8 become once decoded.
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f{INVISIBLE_MARKS}]")
_NOT_UTF8 = "\ufffd"
_NUMBER = re.compile(r"[+-]?[0-9]{1,12}(?:[.,][0-9]{1,9})?")
_WHOLE = re.compile(r"[0-9]{1,9}")
# The desk's two ways of writing a time: 27/11/2026 14:05[:30], or ISO 2026-11-27T14:05[:30][+01:00|Z].
_DATE = re.compile(r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}(?:[ T][0-9]{1,2}[:h][0-9]{2}(?::[0-9]{2})?)?"
                   r"|[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
                   r"(?:Z|[+-][0-9]{2}:[0-9]{2})?)?")
_SHOWN = 60


def shown(value) -> str:
    """A value as a refusal shows it back: cut, quoted, its control characters escaped."""
    text = value if isinstance(value, str) else ""
    return repr(text[:_SHOWN]) + ("…" if len(text) > _SHOWN else "")


def _label(name: str, label: str | None) -> str:
    return label or LABELS.get(name) or name


def single(fields, where: str) -> None:
    """Refuse a form (``where`` = "ce formulaire") or an address ("cette adresse") giving a field twice."""
    seen = set()
    for key, _value in fields.multi_items():
        if key in seen:
            raise Refused(400, "Champ en double", f"Le champ {shown(key)} est donné deux fois dans {where} : "
                          "une page du poste ne l'envoie qu'une fois. Rien n'a été fait.", attempt=True)
        seen.add(key)


def text(fields, name: str, label: str | None = None, *, required: bool = True, limit: int = 200,
         lines: bool = False) -> str:
    """The text field ``name``, stripped: UTF-8 text without control characters (line breaks
    only where ``lines``), at most ``limit`` characters; "" when absent and not ``required``."""
    what = _label(name, label)
    value = fields.get(name)
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        if required:
            raise Refused(400, "Demande incomplète", f"Indiquez {what} : rien n'a été fait "
                          "(R241-12 : chaque consultation ou extraction dit pourquoi et pour qui).")
        return ""
    if len(value) > limit:
        raise Refused(400, "Demande refusée", f"{what[0].upper() + what[1:]} dépasse {limit} caractères "
                      f"({len(value)}) : rien n'a été fait.")
    if _NOT_UTF8 in value:
        raise Refused(400, "Demande refusée", f"{what[0].upper() + what[1:]} {shown(value)} contient des octets qui "
                      "ne sont pas du texte UTF-8 : rien n'a été fait.")
    found = _CONTROL.search(value.replace("\r\n", "\n").replace("\n", "") if lines else value)
    if found:
        raise Refused(400, "Demande refusée", f"{what[0].upper() + what[1:]} {shown(value)} contient un caractère de "
                      f"contrôle (U+{ord(found.group()):04X} : saut de ligne, tabulation, séquence d'échappement "
                      "ou inversion du sens du texte) : écrivez-le sur une ligne, en texte simple. Rien n'a été fait.")
    return value


def number(value, label: str, low: float, high: float) -> float | None:
    """A decimal number typed in a field (a comma or a point), from ``low`` to ``high``; None
    when the field is empty."""
    typed = value.strip() if isinstance(value, str) else ""
    if not typed:
        return None
    if not _NUMBER.fullmatch(typed):
        raise Refused(400, "Demande refusée", f"{label} {shown(typed)} : un nombre en chiffres, avec une virgule "
                      "ou un point (par exemple 12,5).")
    result = float(typed.replace(",", ".")) + 0.0   # -0 is 0
    if not low <= result <= high:
        raise Refused(400, "Demande refusée", f"{label} {shown(typed)} : hors des valeurs possibles "
                      f"({low:g} à {high:g}).")
    return result


def whole(value, label: str, low: int, high: int) -> int:
    """A whole number from an address or a field (digits only), from ``low`` to ``high``."""
    typed = value.strip() if isinstance(value, str) else ""
    if not _WHOLE.fullmatch(typed) or not low <= int(typed) <= high:
        raise Refused(400, "Paramètre refusé", f"{label}={shown(typed)} : un nombre entier de {low} à {high}.")
    return int(typed)


def local_time(value, label: str, zone: str | None, *, required: bool) -> float | None:
    """A time typed in the vault's zone (27/11/2026 14:05 or 2026-11-27T14:05, with an offset
    when the clocks change over it), as an instant; None when empty and not ``required``."""
    typed = value.strip() if isinstance(value, str) else ""
    example = "par exemple 27/11/2026 14:05 (heure locale) ou 2026-11-27T14:05"
    if not typed:
        if required:
            raise Refused(400, "Demande incomplète", f"Indiquez {label} ({example}).")
        return None
    if not _DATE.fullmatch(typed):
        raise Refused(400, "Date refusée", f"{label[0].upper() + label[1:]} {shown(typed)} n'est pas une date : "
                      f"écrivez-la {example}.")
    try:
        return parse_time(typed, zone, what=label)
    except TimeError as exc:
        why = {"year": f"l'année doit être comprise entre {FIRST_YEAR} et {LAST_YEAR}",
               "gap": "cette heure n'existe pas ce jour-là (on avance les horloges) ; donnez le décalage, "
                      f"par exemple {' ou '.join(exc.offsets)}",
               "fold": "cette heure a lieu deux fois ce jour-là (on recule les horloges) ; donnez le décalage : "
                       f"{' (la première) ou '.join(exc.offsets)} (la seconde)",
               "zone": "le fuseau horaire du coffre est inconnu (prévenez le technicien)",
               }.get(exc.kind, f"ce jour ou cette heure n'existe pas au calendrier ; écrivez-la {example}")
        raise Refused(400, "Date refusée", f"{label[0].upper() + label[1:]} {shown(typed)} : {why}.") from None


def recording_id(value: str) -> str:
    """A recording id from the address: anything else (a path, a dot-dot) is refused."""
    if not RECORDING_ID.fullmatch(value or ""):
        raise Refused(400, "Paramètre refusé", f"{shown(value)} n'est pas un identifiant d'enregistrement "
                      "(un chemin ou un nom de fichier n'est jamais accepté).", attempt=True)
    return value


def stored_row(vault, rid: str):
    """The index row of a recording the vault still holds; one erased by the purge is said so."""
    row = vault.index.recording(rid)
    if row is None:
        raise Refused(404, "Enregistrement introuvable", f"Le coffre ne contient pas d'enregistrement {rid}.",
                      attempt=True)
    if row.state != "stored":
        raise Refused(410, "Enregistrement effacé", f"L'enregistrement {rid} a été effacé le "
                      f"{format_local(row.purged_at or 0, vault.timezone)} (fin de sa durée de conservation) : "
                      "rien ne peut plus en être montré ni extrait.", attempt=True)
    return row


def choice(params, name: str, allowed, default: str) -> str:
    value = params.get(name, default)
    if value not in allowed:
        listed = ", ".join(a or "(vide)" for a in allowed)
        raise Refused(400, "Paramètre refusé", f"{name}={shown(value)} : valeurs possibles {listed}.")
    return value


def reasons(form, *names):
    """The motive (one of PURPOSES) and who asks and receives: each checked by ``text``."""
    values = {name: text(form, name) for name in names}
    if "motif" in values and values["motif"] not in PURPOSES:
        raise Refused(400, "Demande refusée", f"Motif {shown(values['motif'])} inconnu : "
                      f"{', '.join(PURPOSES.values())}.")
    return values


def vault_refusal(exc: Exception) -> Refused:
    """The vault's own refusal (its words are the command line's, in English) on a French page."""
    outside = exc.__cause__ if isinstance(exc.__cause__, OutsideRecording) else None
    if outside is not None:
        return Refused(400, "Extraction refusée", f"La partie demandée, de {seconds(outside.start)} à "
                       f"{seconds(outside.end)}, commence après la fin de l'enregistrement, qui dure "
                       f"{seconds(outside.total)} : rien n'a été extrait. L'échec est inscrit au journal et au "
                       "registre.")
    if isinstance(exc, PastRetention):
        lead = ("La durée de conservation de cet enregistrement est échue (R241-13) : il ne peut plus être "
                "consulté, extrait ni retenu, sauf pour la procédure qui le retenait avant ; rien n'a été fait.")
    else:
        lead = "Le coffre a refusé cette opération ; rien n'a été fait."
    return Refused(400, "Opération refusée", f"{lead} Sa raison, telle qu'il l'écrit : {str(exc)[:500]}")

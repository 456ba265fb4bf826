"""What the desk's forms and addresses may hold: each value checked, a refusal in French."""

from __future__ import annotations

from recorder.evidence.format import RECORDING_ID
from tools.desk.access import Refused

PURPOSES = {"judicial": "Procédure judiciaire", "administrative": "Procédure administrative",
            "disciplinary": "Procédure disciplinaire", "training": "Formation"}

def recording_id(value: str) -> str:
    """A recording id from the address: anything else (a path, a dot-dot) is refused."""
    if not RECORDING_ID.fullmatch(value or ""):
        raise Refused(400, "Paramètre refusé", f"{value[:80]!r} n'est pas un identifiant d'enregistrement "
                      "(un chemin ou un nom de fichier n'est jamais accepté).", attempt=True)
    return value


def stored_row(vault, rid: str):
    row = vault.index.recording(rid)
    if row is None:
        raise Refused(404, "Enregistrement introuvable", f"Le coffre ne contient pas d'enregistrement {rid}.",
                      attempt=True)
    return row


def choice(params, name: str, allowed, default: str) -> str:
    value = params.get(name, default)
    if value not in allowed:
        raise Refused(400, "Paramètre refusé", f"{name}={value[:40]!r} : valeurs possibles "
                      f"{', '.join(allowed)}.")
    return value


def reasons(form, *names):
    values = {}
    labels = {"motif": "le motif", "demandeur": "le demandeur", "destinataire": "le destinataire",
              "procedure": "la référence de la procédure"}
    for name in names:
        value = form.get(name)
        value = value.strip() if isinstance(value, str) else ""
        if not value:
            raise Refused(400, "Demande incomplète", f"Indiquez {labels[name]} : rien n'a été fait "
                          "(R241-12 : chaque consultation ou extraction dit pourquoi et pour qui).")
        if len(value) > 200:
            raise Refused(400, "Demande refusée", f"{labels[name].capitalize()} dépasse 200 caractères.")
        values[name] = value
    if "motif" in values and values["motif"] not in PURPOSES:
        raise Refused(400, "Demande refusée", f"Motif {values['motif'][:40]!r} inconnu : "
                      f"{', '.join(PURPOSES.values())}.")
    return values

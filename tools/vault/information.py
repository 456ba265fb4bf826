"""`pieton vault information`: the text the mayor publishes on the commune's website or
at the town hall (CSI L241-2; R241-15: general information of the public).

Everything particular to the commune comes from the vault (the arrêté in force, the
contact recorded with `pieton vault authorise`, the commune boundaries) and, when given,
the device configuration (its arrêté must be the vault's, its boundaries name the
communes, its notice text is quoted). What comes from the law is stated as the law says
it, with its article: the four purposes (L241-2), one month's retention then automatic
erasure except for a procedure (R241-13), the rights and where they are exercised
(R241-15), the complaint to the CNIL. Nothing is printed when something is missing:
a published text with a blank contact or no arrêté would mislead the public.
"""

from __future__ import annotations

import html
from datetime import date

from recorder.config import Config
from recorder.errors import ConfigError, VaultError
from recorder.position.geofence import load_boundary
from tools.vault.authorisation import CONTACT_FIELDS, current, load
from tools.vault.vault import Vault

PURPOSES = (
    "la prévention des incidents au cours des interventions des agents de police municipale ;",
    "le constat des infractions et la poursuite de leurs auteurs par la collecte de preuves ;",
    "la formation et la pédagogie des agents ;",
    "l'information du public sur les circonstances de l'intervention.",
)
REQUIRED_CONTACT = ("mairie", "service", "address")


def _day(text: str) -> str:
    return date.fromisoformat(text).strftime("%d/%m/%Y")


def commune_names(vault: Vault, config: Config | None) -> dict[str, str]:
    """INSEE code -> name, from the vault's boundaries and the configuration's."""
    paths = list(vault.settings.get("communes", []))
    if config is not None:
        paths += [str(config.resolve(c)) for c in config.geofence.communes]
    names = {}
    for path in paths:
        try:
            boundary = load_boundary(path)
        except ConfigError:
            continue  # a boundary that cannot be read names no commune; the code is printed
        if boundary.insee:
            names[boundary.insee] = boundary.name
    return names


def gather(vault: Vault, config: Config | None = None) -> dict:
    """What the text says; VaultError naming everything missing or inconsistent."""
    doc = load(vault)
    arrete = current(vault, doc)
    contact = doc["contact"]
    missing = []
    if arrete is None:
        missing.append("no prefect's arrêté is recorded: `pieton vault authorise VAULT --arrete REF --date D "
                       "--cameras N --communes INSEE...` (CSI L241-2, R241-8)")
    for key in REQUIRED_CONTACT:
        if not contact.get(key):
            missing.append(f"no {key} recorded for the public to contact: `pieton vault authorise VAULT --{key} ...`")
    if config is not None and arrete is not None:
        auth = config.authorisation
        if auth.arrete != arrete["arrete"]:
            missing.append(f"{config.source}: [authorisation] arrete = {auth.arrete!r}, but the arrêté in force in "
                           f"the vault is {arrete['arrete']!r}: publish once the cameras serve under it")
        elif sorted(auth.communes) != sorted(arrete["communes"]):
            missing.append(f"{config.source}: [authorisation] communes = {list(auth.communes)}, the vault's "
                           f"arrêté covers {arrete['communes']}")
    if missing:
        raise VaultError("cannot write the public information: " + "; ".join(missing))
    names = commune_names(vault, config)
    return {
        "arrete": arrete["arrete"], "date": _day(arrete["date"]), "cameras": arrete["cameras"],
        "until": _day(arrete["until"]) if arrete.get("until") else None,
        "communes": [f"{names[c]} (INSEE {c})" if c in names else f"INSEE {c}" for c in arrete["communes"]],
        "contact": {k: contact.get(k) for k in CONTACT_FIELDS},
        "notice": config.notice.text if config is not None and config.notice.text else None,
    }


def sections(info: dict) -> list[tuple[str, list[str]]]:
    """(heading, paragraphs) of the text; a paragraph starting with '- ' is a list item."""
    c = info["contact"]
    where = f"{c['service']}, {c['address']}" + (f" ({c['contact']})" if c.get("contact") else "")
    cameras = "une caméra individuelle" if info["cameras"] == 1 else f"{info['cameras']} caméras individuelles"
    until = f", jusqu'au {info['until']}" if info["until"] else ""
    notice = (f" Le message diffusé par la caméra est : « {info['notice']} »" if info["notice"] else "")
    return [
        ("Autorisation", [
            f"Par arrêté n° {info['arrete']} du {info['date']}, le préfet a autorisé l'enregistrement audiovisuel "
            f"des interventions des agents de police municipale au moyen de {cameras}{until}, sur le territoire "
            f"de : {', '.join(info['communes'])} (articles L241-2 et R241-8 du code de la sécurité intérieure).",
        ]),
        ("Fonctionnement", [
            "Les caméras sont portées de façon apparente. L'enregistrement n'est pas permanent : l'agent le "
            "déclenche lorsqu'un incident se produit ou est susceptible de se produire. Un voyant rouge indique "
            "que la caméra enregistre. Les personnes filmées sont informées du déclenchement de l'enregistrement, "
            f"sauf si les circonstances l'interdisent.{notice}",
        ]),
        ("Finalités (article L241-2 du code de la sécurité intérieure)", [f"- {p}" for p in PURPOSES]),
        ("Durée de conservation (article R241-13)", [
            "Les enregistrements sont conservés un mois à compter du jour de leur enregistrement, puis effacés "
            "automatiquement. Seuls ceux qui sont utilisés dans une procédure judiciaire, administrative ou "
            "disciplinaire sont conservés au-delà, selon les règles de cette procédure.",
        ]),
        ("Vos droits (article R241-15)", [
            f"Le droit d'accès aux enregistrements qui vous concernent s'exerce auprès du maire, responsable du "
            f"traitement ({c['mairie']}), en vous adressant à : {where}. Faites votre demande sans attendre : "
            "passé un mois, les enregistrements sont effacés.",
            "Ce droit peut être restreint pour ne pas gêner une enquête ou une procédure judiciaire, "
            "administrative ou disciplinaire. Le droit d'opposition ne s'applique pas : il n'est pas possible "
            "de refuser d'être filmé.",
            "Si vous estimez que vos droits ne sont pas respectés, vous pouvez adresser une réclamation à la "
            "Commission nationale de l'informatique et des libertés (CNIL, www.cnil.fr).",
        ]),
    ]


TITLE = "Information du public : caméras individuelles de la police municipale"


def as_text(info: dict) -> str:
    lines = [TITLE, "=" * len(TITLE), ""]
    for heading, paragraphs in sections(info):
        lines += [heading, "-" * len(heading)]
        for n, paragraph in enumerate(paragraphs):
            lines.append(paragraph)
            if not (paragraph.startswith("- ") and n + 1 < len(paragraphs)):  # a list holds together
                lines.append("")
    return "\n".join(lines)


def as_html(info: dict) -> str:
    e = html.escape
    body = [f"<h1>{e(TITLE)}</h1>"]
    for heading, paragraphs in sections(info):
        body.append(f"<h2>{e(heading)}</h2>")
        items = [p[2:] for p in paragraphs if p.startswith("- ")]
        body += [f"<p>{e(p)}</p>" for p in paragraphs if not p.startswith("- ")]
        if items:
            body.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>")
    return ("<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">"
            f"<title>{e(TITLE)}</title></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")

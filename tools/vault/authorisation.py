"""The prefect's authorisation in the vault, and the cameras it covers (CSI L241-2, R241-8).

    VAULT/authorisation.json   signed by the vault key (pieton/authorisation/1):
        arretes   every arrêté recorded, oldest first; the last one is in force, the
                  earlier ones are kept (marked superseded) so a recording made under
                  one of them is still recognised
        retired   cameras taken out of service (lost, stolen, broken), with when and why
        contact   whom the public asks (mairie, service, address, contact): the text the
                  mayor publishes (`pieton vault information`) is built from it

Every change is journaled first (the journal is the record); the file is the state the
commands read, signed so an edit by hand shows. It is not pruned with the logs: an
arrêté runs for years, longer than the journal's 3 years.

A camera is enrolled only under an arrêté in force and within its number of cameras; a
retired camera frees its place and is never enrolled again under its id (a stolen
camera's key must not come back). At ingest a retired camera's recordings made after its
retirement (or at a time its unsynchronised clock cannot vouch for) go to quarantine, and
a recording whose arrêté the vault never recorded (or outside that arrêté's communes or
dates) is stored and flagged in the journal.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

from recorder.device_rules import ARRETE_REF, INSEE_CODE
from recorder.errors import VaultError
from recorder.evidence.chain import sign_document, signature_valid, write_atomic
from recorder.evidence.format import MANIFEST_FILE, parse_utc
from recorder.evidence.sequence import first_line
from recorder.inputs import InputError, load_json_file
from recorder.localtime import TimeError, parse_time, zone
from recorder.retention import SYNCHRONISED_SOURCES
from tools.vault.layout import utc_iso
from tools.vault.vault import Vault

FILE = "authorisation.json"
CONTEXT = "pieton/authorisation/1"
LAW = "CSI L241-2, R241-8: the cameras serve under the prefect's arrêté"
REASONS = ("lost", "stolen", "broken")
CONTACT_FIELDS = ("mairie", "service", "address", "contact")
MAX_CAMERAS = 10000


def _path(vault: Vault) -> Path:
    return vault.layout.root / FILE


def load(vault: Vault) -> dict:
    """The signed state; an empty one when nothing was recorded yet."""
    path = _path(vault)
    if not path.exists() and not path.is_symlink():
        return {"format": CONTEXT, "arretes": [], "retired": [], "contact": {}}
    try:
        doc = load_json_file(path, "settings")
    except InputError as exc:
        raise VaultError(f"authorisation {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != CONTEXT or not signature_valid(doc, CONTEXT, vault.public_key):
        raise VaultError(f"{path}: its signature does not verify against the vault key (edited or damaged); "
                         "restore it from a mirror, the journal holds every arrêté and retirement")
    for key, kind in (("arretes", list), ("retired", list), ("contact", dict)):
        if not isinstance(doc.get(key), kind):
            raise VaultError(f"{path}: '{key}' must be a {kind.__name__}")
    return doc


def _save(vault: Vault, doc: dict) -> None:
    doc.pop("sig", None)
    sign_document(doc, CONTEXT, vault.signer)
    write_atomic(_path(vault), (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())


def typed_date(text: str, zone_name: str, what: str) -> date:
    """A calendar date typed by a person: 27/11/2026 or 2026-11-27 (recorder.localtime's rule)."""
    try:
        moment = datetime.fromtimestamp(parse_time(text, zone_name, what=what), zone(zone_name))
    except TimeError as exc:
        raise VaultError(str(exc)) from None
    if (moment.hour, moment.minute, moment.second) != (0, 0, 0):
        raise VaultError(f"{what} {text!r}: a date without a time, such as 27/11/2026 or 2026-11-27")
    return moment.date()


def today(vault: Vault) -> date:
    return datetime.fromtimestamp(vault.now(), zone(vault.timezone)).date()


def current(vault: Vault, doc: dict | None = None) -> dict | None:
    """The arrêté in force (the last recorded), or None."""
    arretes = (doc or load(vault))["arretes"]
    return arretes[-1] if arretes else None


def describe(arrete: dict) -> str:
    """'arrêté 2026-DSC-0412 of 12/03/2026': how every message names one."""
    return f"arrêté {arrete['arrete']} of {date.fromisoformat(arrete['date']).strftime('%d/%m/%Y')}"


def authorise(vault: Vault, arrete: str, signed_on: str, cameras: int, communes: list[str],
              until: str | None = None) -> dict:
    """Record a new arrêté; it supersedes the one in force, which stays in the history."""
    if not isinstance(arrete, str) or not ARRETE_REF.fullmatch(arrete):
        raise VaultError(f"--arrete {arrete!r}: the arrêté's reference is letters, digits, spaces, '/', '.', "
                         "'_', '-', at most 64, as the configuration's [authorisation] arrete")
    day = typed_date(signed_on, vault.timezone, "--date")
    now_day = today(vault)
    if day > now_day:
        raise VaultError(f"--date {signed_on!r}: {day:%d/%m/%Y} is after today; record an arrêté once signed")
    if isinstance(cameras, bool) or not isinstance(cameras, int) or not 1 <= cameras <= MAX_CAMERAS:
        raise VaultError(f"--cameras {cameras!r}: the number of cameras the arrêté authorises, 1 to {MAX_CAMERAS}")
    if not communes:
        raise VaultError(f"--communes: at least one commune, by its INSEE code ({LAW})")
    for code in communes:
        if not INSEE_CODE.fullmatch(code):
            raise VaultError(f"--communes {code!r}: not an INSEE code (5 digits, Corsica 2A/2B + 3 digits, "
                             "e.g. 71014)")
    if len(set(communes)) != len(communes):
        raise VaultError(f"--communes {' '.join(communes)}: a commune is listed twice")
    end = typed_date(until, vault.timezone, "--until") if until else None
    if end is not None and end < day:
        raise VaultError(f"--until {until!r}: {end:%d/%m/%Y} is before the arrêté's date {day:%d/%m/%Y}")
    if end is not None and end < now_day:
        raise VaultError(f"--until {until!r}: the arrêté ended on {end:%d/%m/%Y}; no camera may serve under it "
                         f"({LAW})")
    doc = load(vault)
    record = {"arrete": arrete, "date": day.isoformat(), "cameras": cameras, "communes": list(communes),
              "until": end.isoformat() if end else None}
    previous = current(vault, doc)
    if previous is not None and {k: previous.get(k) for k in record} == record:
        raise VaultError(f"{describe(previous)} is already the one in force, with these values")
    line = vault.log("authorisation-recorded", **record,
                     supersedes=previous["arrete"] if previous is not None else None)
    if previous is not None:
        previous["superseded_at"] = line["at"]
    doc["arretes"].append({**record, "recorded_at": line["at"], "journal_seq": line["seq"]})
    _save(vault, doc)
    return {**record, "active": active_cameras(vault, doc), "previous": previous}


def set_contact(vault: Vault, **fields: str | None) -> dict:
    """Whom the public asks; only the fields given change."""
    given = {k: v.strip() for k, v in fields.items() if k in CONTACT_FIELDS and v is not None}
    for key, value in given.items():
        if not value or len(value) > 300 or any(ord(c) < 32 for c in value):
            raise VaultError(f"--{key} {value!r}: one line of text, 1 to 300 characters")
    doc = load(vault)
    contact = {**doc["contact"], **given}
    if contact == doc["contact"]:
        return contact
    vault.log("contact-recorded", **given)
    doc["contact"] = contact
    _save(vault, doc)
    return contact


def _retired(doc: dict) -> dict[str, dict]:
    return {r["camera"]: r for r in doc["retired"] if isinstance(r, dict) and isinstance(r.get("camera"), str)}


def active_cameras(vault: Vault, doc: dict | None = None) -> list[str]:
    """Enrolled cameras not retired: those that take a place of the arrêté."""
    retired = _retired(doc or load(vault))
    return [camera for camera, _key, _at in vault.index.cameras() if camera not in retired]


def enrol(vault: Vault, camera: str, key: str) -> dict:
    """`pieton vault enrol`: pin a camera's key, within the arrêté in force."""
    doc = load(vault)
    arrete = current(vault, doc)
    if arrete is None:
        raise VaultError(f"camera {camera}: no prefect's arrêté is recorded in this vault; record it first with "
                         f"`pieton vault authorise VAULT --arrete REF --date D --cameras N --communes INSEE...` "
                         f"({LAW})")
    if arrete.get("until") and date.fromisoformat(arrete["until"]) < today(vault):
        raise VaultError(f"camera {camera}: the {describe(arrete)} ended on "
                         f"{date.fromisoformat(arrete['until']):%d/%m/%Y}; record the new arrêté first ({LAW})")
    gone = _retired(doc).get(camera)
    if gone is not None:
        raise VaultError(f"camera {camera} was retired ({gone['reason']}) at {gone['at']}; a retired camera is "
                         "never enrolled again under its id: provision its replacement under a new camera id")
    active = active_cameras(vault, doc)
    if camera not in active and len(active) >= arrete["cameras"]:
        raise VaultError(f"camera {camera}: the {describe(arrete)} authorises {arrete['cameras']} camera(s) and "
                         f"{len(active)} are enrolled ({', '.join(active)}); retire one (`pieton vault retire`) "
                         f"or record the prefect's new arrêté ({LAW})")
    return vault.enrol(camera, key)


def retire(vault: Vault, camera: str, reason: str) -> dict:
    """Take an enrolled camera out of service; its place is freed, its later recordings
    go to quarantine at ingest."""
    if reason not in REASONS:
        raise VaultError(f"--reason {reason!r}: one of {', '.join(REASONS)}")
    doc = load(vault)
    if vault.index.camera_key(camera) is None:
        known = [c for c, _k, _a in vault.index.cameras()]
        raise VaultError(f"--camera {camera!r}: not enrolled in this vault"
                         + (f" (enrolled: {', '.join(known)})" if known else ""))
    gone = _retired(doc).get(camera)
    if gone is not None:
        raise VaultError(f"camera {camera} is already retired ({gone['reason']}) since {gone['at']}")
    line = vault.log("camera-retired", camera=camera, reason=reason)
    record = {"camera": camera, "reason": reason, "at": line["at"], "journal_seq": line["seq"]}
    doc["retired"].append(record)
    _save(vault, doc)
    return record


def _local_day(epoch: float, zone_name: str) -> date:
    return datetime.fromtimestamp(epoch, zone(zone_name)).date()


def _authorisation_mismatch(vault: Vault, doc: dict, named, started: float | None, config_signed) -> str | None:
    """Why a recording's arrêté is not one the vault recorded and covering it, or None."""
    if not named:
        # A simulation configuration names none (its recordings say config_signed false);
        # a signed bundle must (recorder.device_rules).
        return "made under a signed configuration that names no arrêté" if config_signed is True else None
    if not isinstance(named, dict) or not isinstance(named.get("arrete"), str):
        return f"its opened line's authorisation is malformed: {str(named)[:120]}"
    known = [a for a in doc["arretes"] if a.get("arrete") == named["arrete"]]
    if not known:
        recorded = ", ".join(a["arrete"] for a in doc["arretes"]) or "none"
        return f"made under arrêté {named['arrete'][:64]!r}, which this vault never recorded (recorded: {recorded})"
    arrete = known[-1]
    communes = named.get("communes") if isinstance(named.get("communes"), list) else []
    outside = [str(c)[:8] for c in communes if c not in arrete["communes"]]
    if outside:
        return f"names communes {', '.join(outside)}, not covered by the {describe(arrete)}"
    if started is not None:
        day = _local_day(started, vault.timezone)
        if day < date.fromisoformat(arrete["date"]) or (arrete.get("until") and day > date.fromisoformat(arrete["until"])):
            return f"made on {day:%d/%m/%Y}, outside the {describe(arrete)} (until {arrete.get('until') or 'open'})"
    return None


def ingest_problems(vault: Vault, camera: str, folder: Path, report) -> list[str]:
    """At ingest, for a recording that verified: the problems that send it to quarantine
    (a retired camera's recording made after its retirement); a recording whose arrêté
    does not match is stored, journaled and noted in ``report`` (it is genuine evidence of
    what the camera did: hiding it would not undo the recording, the chief must see it)."""
    doc = load(vault)
    opened = first_line(folder / MANIFEST_FILE) or {}
    try:
        started = parse_utc(opened.get("started_at"))
    except (ValueError, TypeError):
        started = None
    rid = folder.name
    gone = _retired(doc).get(camera)
    # A start by an unsynchronised clock proves nothing about "before the retirement".
    trusted = started if opened.get("clock_source") in SYNCHRONISED_SOURCES else None
    if gone is not None and (trusted is None or trusted >= parse_utc(gone["at"])):
        when = utc_iso(trusted) if trusted is not None else "at a time its clock cannot vouch for"
        return [f"{rid}: camera {camera} was retired ({gone['reason']}) at {gone['at']} and this recording was "
                f"made {when}, after it: a camera out of service records nothing lawfully ({LAW})"]
    why = _authorisation_mismatch(vault, doc, opened.get("authorisation"), started, opened.get("config_signed"))
    if why is not None:
        vault.log("authorisation-mismatch", recording=rid, camera=camera, problem=why)
        report.notes.append(f"{rid}: {why} ({LAW}); stored, and noted in the vault journal")
    return []

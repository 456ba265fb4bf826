"""The designated persons (R241-12): who may see the recordings, and who did what.

The list is kept in the vault as ``persons.json``, signed by the vault's key (an edited
list is refused), and every designation and revocation is logged twice (journal and
register). A person acting on the vault proves who they are with their age identity: the
recipient their secret key opens (the stanza a recording addressed to them) names them,
and the journal and the register then carry their matricule, never the login of the
machine. An identity of no designated person (or of a revoked one) is refused, and the
attempt is journaled.

Revoking a person stops the software and the desk from accepting their identity; it cannot
take back what was already encrypted to their key (they still hold the secret): the
recordings' files are protected by the vault's file access, not by cryptography.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from recorder.errors import VaultError
from recorder.evidence.age_keys import identity_to_recipient
from recorder.evidence.chain import sign_document, signature_valid, write_atomic
from recorder.evidence.format import MANIFEST_FILE
from recorder.inputs import InputError, load_json_file
from tools.vault.layout import RECIPIENT, utc_iso
from tools.vault.vault import Vault

PERSONS_FILE = "persons.json"
PERSONS_CONTEXT = "pieton/persons/1"
ROLES = ("maire", "responsable", "agent-habilité")
# Roles that may designate or revoke others (the mayor and the chief of the police).
DESIGNATING = ("maire", "responsable")
_MATRICULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,39}")
ARTICLE = "R241-12 du code de la sécurité intérieure"


@dataclass
class Person:
    name: str
    matricule: str
    role: str
    designated_by: str
    decision: str
    recipient: str
    designated_at: str
    revoked_at: str | None = None
    revocation: str | None = None   # the decision that ended the designation

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def read_persons(vault: Vault) -> list[Person]:
    """Every person ever designated (revoked ones kept, with their revocation)."""
    path = vault.layout.root / PERSONS_FILE
    if not path.exists():
        return []
    try:
        doc = load_json_file(path, "settings")
    except InputError as exc:
        raise VaultError(f"designated persons {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != PERSONS_CONTEXT \
            or not signature_valid(doc, PERSONS_CONTEXT, vault.public_key):
        raise VaultError(f"{path}: the list of designated persons is not signed by this vault "
                         "(edited outside `pieton vault designate`): refused")
    try:
        return [Person(**p) for p in doc["persons"]]
    except (KeyError, TypeError) as exc:
        raise VaultError(f"{path}: unreadable list of designated persons ({exc})") from None


def _write(vault: Vault, persons: list[Person]) -> None:
    doc = sign_document({"format": PERSONS_CONTEXT, "persons": [asdict(p) for p in persons]},
                        PERSONS_CONTEXT, vault.signer)
    write_atomic(vault.layout.root / PERSONS_FILE,
                 (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode(), mode=0o600)


def designated_recipients(persons: list[Person]) -> list[str]:
    return sorted({p.recipient for p in persons if p.active})


def recipients_block(persons: list[Person]) -> str:
    """The lines the technician pastes into the fleet's configuration before signing the
    next bundle: the cameras then encrypt to the designated persons only."""
    active = [p for p in persons if p.active]
    lines = ["[keys]", "recipients = ["]
    for p in sorted(active, key=lambda p: p.recipient):
        lines.append(f'  "{p.recipient}",  # {p.name}, {p.matricule}, {p.role}')
    lines.append("]")
    return "\n".join(lines)


def refuse(vault: Vault, recipient: str | None, action: str, why: str) -> VaultError:
    """Journal a refused attempt and return the error to raise."""
    vault.operator = None
    vault.log("access-refused", recipient=recipient, action=action, reason=why)
    return VaultError(f"{why}: refused ({ARTICLE}); the attempt is in the vault journal")


def identify(vault: Vault, identities: list, action: str, *, roles: tuple[str, ...] = ROLES) -> Person:
    """The designated person whose identity this is; they become the author of everything
    the vault logs from now on (``vault.operator`` = their matricule)."""
    persons = read_persons(vault)
    recipients = {identity_to_recipient(i) for i in identities}
    for person in persons:
        if person.recipient in recipients and person.active:
            if person.role not in roles:
                raise refuse(vault, person.recipient, action,
                             f"{person.name} ({person.matricule}) is designated as {person.role}; "
                             f"{action} needs the role {' or '.join(roles)}")
            vault.operator = person.matricule
            return person
    recipient = sorted(recipients)[0] if recipients else None
    revoked = next((p for p in persons if p.recipient in recipients), None)
    if revoked is not None:
        raise refuse(vault, recipient, action, f"the identity of {revoked.matricule} was revoked on "
                     f"{revoked.revoked_at} (decision {revoked.revocation})")
    raise refuse(vault, recipient, action, f"the identity {recipient} is not that of a designated person "
                 "(`pieton vault designate`)")


def _text(value, what: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > 200 or any(ord(c) < 32 for c in text):
        raise VaultError(f"{what} {value!r}: required, one line of at most 200 characters")
    return text


def designate(vault: Vault, identities: list, *, name: str, matricule: str, role: str, designated_by: str,
              decision: str, recipient: str) -> Person:
    """Add a designated person. The first designation of a vault is the person running it
    (their own identity: the chief who made the vault); later ones need a mayor's or a
    chief's identity."""
    name, designated_by, decision = (_text(name, "--name"), _text(designated_by, "--designated-by"),
                                     _text(decision, "--decision"))
    if not isinstance(matricule, str) or not _MATRICULE.fullmatch(matricule):
        raise VaultError(f"--matricule {matricule!r}: letters, digits and . _ / - (at most 40)")
    if role not in ROLES:
        raise VaultError(f"--role {role!r}: one of {', '.join(ROLES)} ({ARTICLE})")
    if not (isinstance(recipient, str) and RECIPIENT.fullmatch(recipient)):
        raise VaultError(f"--recipient {recipient!r}: an age recipient ('age1' followed by 58 characters)")
    persons = read_persons(vault)
    if not any(p.active for p in persons):
        mine = {identity_to_recipient(i) for i in identities}
        if recipient not in mine:
            raise refuse(vault, sorted(mine)[0] if mine else None, "designate",
                         "no person is designated yet: the first designation is of the person whose "
                         "--identity is given (the chief who made the vault)")
        if role not in DESIGNATING:
            raise VaultError(f"--role {role}: the first person designated is the mayor or the chief "
                             "(maire or responsable), who designates the others")
        vault.operator = matricule
    else:
        identify(vault, identities, "designate", roles=DESIGNATING)
    for p in persons:
        if p.active and p.matricule == matricule:
            raise VaultError(f"--matricule {matricule}: already designated ({p.name}, {p.role})")
        if p.active and p.recipient == recipient:
            raise VaultError(f"--recipient {recipient}: already the key of {p.name} ({p.matricule})")
    person = Person(name, matricule, role, designated_by, decision, recipient, utc_iso(vault.now()))
    vault.log("person-designated", **{k: v for k, v in asdict(person).items() if v is not None})
    _write(vault, [*persons, person])
    return person


def revoke(vault: Vault, identities: list, *, matricule: str, decision: str) -> Person:
    decision = _text(decision, "--decision")
    persons = read_persons(vault)
    author = identify(vault, identities, "revoke", roles=DESIGNATING)
    target = next((p for p in persons if p.matricule == matricule and p.active), None)
    if target is None:
        raise VaultError(f"--matricule {matricule!r}: no designated person has it (active ones: "
                         f"{', '.join(p.matricule for p in persons if p.active) or 'none'})")
    if target.matricule == author.matricule and sum(p.active and p.role in DESIGNATING for p in persons) == 1:
        raise VaultError(f"--matricule {matricule}: the last mayor or chief designated cannot revoke "
                         "themselves (no one could designate anyone afterwards); designate the successor first")
    target.revoked_at = utc_iso(vault.now())
    target.revocation = decision
    vault.log("person-revoked", matricule=matricule, name=target.name, recipient=target.recipient,
              decision=decision)
    _write(vault, persons)
    return target


def flag_recipients(vault: Vault, camera: str, stored: list[str]) -> list[str]:
    """Recordings of ``camera`` whose signed ``opened`` line names other recipients than the
    designated persons: journaled and returned as warnings. They are stored all the same
    (refusing them would lose evidence); the technician must flash the current list."""
    persons = read_persons(vault)
    if not persons:  # a vault where no one is designated yet has no set to compare with
        return []
    wanted = set(designated_recipients(persons))
    warnings = []
    for rid in stored:
        opened = _opened(vault.layout.recording(camera, rid) / MANIFEST_FILE)
        said = opened.get("recipients")
        if not isinstance(said, list):
            continue
        got = {r for r in said if isinstance(r, str)}
        if got == wanted:
            continue
        extra, missing = sorted(got - wanted), sorted(wanted - got)
        vault.log("recipients-differ", camera=camera, recording=rid, not_designated=extra, not_included=missing)
        names = {p.recipient: f"{p.matricule} (revoked)" if not p.active else p.matricule for p in persons}
        warnings.append(f"WARNING {rid}: camera {camera} encrypts to "
                        + (f"{len(extra)} recipient(s) not designated ({', '.join(names.get(r, r) for r in extra)})"
                           if extra else "")
                        + ("; " if extra and missing else "")
                        + (f"not to {', '.join(names.get(r, r) for r in missing)}" if missing else "")
                        + ": flash the fleet bundle with the recipients `pieton vault designate` printed")
    return warnings


def _opened(manifest) -> dict:
    try:
        with open(manifest, "rb") as f:
            first = f.readline(1 << 20)
        line = json.loads(first)
    except (OSError, ValueError):
        return {}
    return line if isinstance(line, dict) and line.get("event") == "opened" else {}

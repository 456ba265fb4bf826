"""`pieton vault designate / revoke / register`: who may see the recordings (R241-12), and
the register printed for an inspection (R241-14)."""

from __future__ import annotations

import argparse
import os

from recorder.errors import AgeError
from tools.vault.arguments import typed_time
from tools.vault.persons import ROLES, designate, identify, read_persons, recipients_block, refuse, revoke
from tools.vault.register_view import as_csv, as_html, as_text, register_rows
from tools.vault.vault import Vault

_TIMES = "27/11/2026 14:05 or 2026-11-27T14:05, local time in the vault's zone unless an offset is given"
IDENTITY_ENV = "PIETON_IDENTITY"


def identity_option(p, required: bool = True) -> None:
    """--identity, which PIETON_IDENTITY may give once for a session of commands."""
    default = os.environ.get(IDENTITY_ENV) or None
    p.add_argument("--identity", metavar="IDENTITY", default=default, required=required and default is None,
                   help=f"your age identity file, as a designated person (default ${IDENTITY_ENV}; "
                        "passphrase: prompt or PIETON_PASSPHRASE)")


def unlock(vault: Vault, path: str, action: str, load_identities) -> list:
    """The identities in the file at ``path``; a wrong passphrase or an unreadable file is
    refused and the attempt journaled."""
    try:
        return load_identities(path)
    except AgeError as exc:
        raise refuse(vault, None, action, f"--identity {path}: {exc}") from None


def author(vault: Vault, path: str, action: str, load_identities, *, roles: tuple[str, ...] = ROLES) -> list:
    """Unlock the identity at ``path`` and make its designated person the author of what
    the vault logs; a wrong passphrase or an identity of no designated person (or not of
    ``roles``) is refused and the attempt journaled. Returns the identities (for the
    commands that decrypt)."""
    identities = unlock(vault, path, action, load_identities)
    identify(vault, identities, action, roles=roles)
    return identities


def register(sub, run, load_identities) -> None:
    """Add the sub-commands; ``run`` wraps a command (errors to exit codes), ``load_identities``
    reads an identity file (the vault commands' own)."""
    p = sub.add_parser("designate", help="designate a person who may see recordings (R241-12), logged twice")
    p.add_argument("vault", metavar="VAULT", help="the vault folder")
    p.add_argument("--name", required=True, help="the person's first name and name")
    p.add_argument("--matricule", required=True, metavar="ID", help="their matricule: the author of what they do")
    p.add_argument("--role", required=True, choices=ROLES, help="maire, responsable (the chief) or agent-habilité")
    p.add_argument("--designated-by", required=True, metavar="WHO", help="who designates them (the mayor)")
    p.add_argument("--decision", required=True, metavar="REF", help="the decision's reference (arrêté)")
    p.add_argument("--recipient", required=True, metavar="age1...", help="their age public key")
    identity_option(p)
    p.set_defaults(func=run(lambda args: cmd_designate(args, load_identities)))

    p = sub.add_parser("revoke", help="end a person's designation, logged twice")
    p.add_argument("vault", metavar="VAULT", help="the vault folder")
    p.add_argument("--matricule", required=True, metavar="ID", help="the matricule of the person whose designation ends")
    p.add_argument("--decision", required=True, metavar="REF", help="the reference of the decision that ends it")
    identity_option(p)
    p.set_defaults(func=run(lambda args: cmd_revoke(args, load_identities)))

    p = sub.add_parser("persons", help="the designated persons and the recipients for the fleet bundle")
    p.add_argument("vault", metavar="VAULT", help="the vault folder")
    p.set_defaults(func=run(cmd_persons))

    p = sub.add_parser("register", help="print the register for an inspection (R241-14)")
    p.add_argument("vault", metavar="VAULT", help="the vault folder")
    p.add_argument("--from", dest="since", metavar="TIME", help=_TIMES)
    p.add_argument("--to", dest="until", metavar="TIME", help=_TIMES)
    p.add_argument("--format", choices=("text", "csv", "html"), default="text",
                   help="text (a table, default), csv (semicolons, for a spreadsheet) or html (to print)")
    p.set_defaults(func=run(cmd_register))


def _print_recipients(persons) -> None:
    print("recipients of the next fleet bundle (paste into the fleet's pieton.toml, then sign and flash it):")
    print(recipients_block(persons))


def cmd_designate(args: argparse.Namespace, load_identities) -> int:
    with Vault.open(args.vault) as vault:
        identities = unlock(vault, args.identity, "designate", load_identities)
        person = designate(vault, identities, name=args.name, matricule=args.matricule, role=args.role,
                           designated_by=args.designated_by, decision=args.decision, recipient=args.recipient)
        persons = read_persons(vault)
    print(f"designated {person.name} ({person.matricule}, {person.role}) by {person.designated_by}, "
          f"decision {person.decision}; logged in the journal and the register")
    _print_recipients(persons)
    return 0


def cmd_revoke(args: argparse.Namespace, load_identities) -> int:
    with Vault.open(args.vault) as vault:
        identities = author(vault, args.identity, "revoke", load_identities)
        person = revoke(vault, identities, matricule=args.matricule, decision=args.decision)
        persons = read_persons(vault)
    print(f"designation of {person.name} ({person.matricule}) ended, decision {person.revocation}; "
          "logged in the journal and the register")
    print("note: their key still opens what was encrypted to it before; the vault and the desk refuse it "
          "from now on, and the next fleet bundle must leave it out")
    _print_recipients(persons)
    return 0


def cmd_persons(args: argparse.Namespace) -> int:
    with Vault.open(args.vault) as vault:
        persons = read_persons(vault)
    for p in persons:
        state = f"revoked {p.revoked_at} ({p.revocation})" if p.revoked_at else "active"
        print(f"{p.matricule:12} {p.name} — {p.role}, designated by {p.designated_by} ({p.decision}), {state}")
    _print_recipients(persons)
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    with Vault.open(args.vault) as vault:
        since = typed_time(vault, args.since, "--from") if args.since else None
        until = typed_time(vault, args.until, "--to") if args.until else None
        rows = register_rows(vault, since=since, until=until)
        title = f"Registre des opérations — {vault.settings['register']}"
    if args.format == "csv":
        print(as_csv(rows), end="")
    elif args.format == "html":
        print(as_html(rows, title), end="")
    else:
        print(as_text(rows))
    return 0

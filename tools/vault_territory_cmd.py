"""`pieton vault authorise | enrol | retire | cameras | information`: the prefect's arrêté,
the cameras it covers, and the text the mayor publishes (CSI L241-2, R241-8, R241-15).

Recording an arrêté, enrolling and retiring a camera are acts of the mayor or the chief
(R241-12, R241-14): each needs their --identity, and the journal names their matricule.
Registered from ``tools.vault_cmd`` (which hands over its error wrapper: a bad argument
or a refusal is a message and exit 2, never a traceback)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from recorder.arguments import bounded_int
from recorder.config import load_config
from recorder.errors import ConfigError, VaultError
from recorder.localtime import TimeError, parse_time
from tools.vault.arguments import shown_time
from tools.vault.authorisation import REASONS, authorise, describe, enrol, load, retire, set_contact
from tools.vault.information import as_html, as_text, gather
from tools.vault.persons import DESIGNATING
from tools.vault.vault import Vault
from tools.vault_people_cmd import author, identity_option

_DATES = "27/11/2026 or 2026-11-27"


def _day(iso: str | None) -> str:
    return date.fromisoformat(iso).strftime("%d/%m/%Y") if iso else "(no end date)"


def register(sub, run, load_identities) -> None:
    """Add the sub-commands to ``pieton vault``'s ``sub``; ``run`` wraps each command,
    ``load_identities`` reads an identity file (the vault commands' own)."""
    def signed(fn, action, check=None):  # the mayor's or the chief's act: they are its author
        def command(args):
            if check is not None:  # bad arguments are refused before anything is journaled
                check(args)
            with Vault.open(args.vault) as vault:
                author(vault, args.identity, action, load_identities, roles=DESIGNATING)
                return fn(args, vault)
        return run(command)

    p = sub.add_parser("authorise", help="record the prefect's arrêté (it supersedes the one in force) "
                                         "and whom the public asks")
    p.add_argument("vault", metavar="VAULT", help="the vault folder")
    p.add_argument("--arrete", metavar="REF", help="the arrêté's reference, as the cameras' [authorisation] arrete")
    p.add_argument("--date", metavar="D", help=f"the day the prefect signed it ({_DATES})")
    p.add_argument("--cameras", type=bounded_int(0, 100_000), metavar="N", help="the number of cameras it authorises")
    p.add_argument("--communes", nargs="+", metavar="INSEE", help="the communes it covers, by INSEE code")
    p.add_argument("--until", metavar="D", help=f"its end date, when it has one ({_DATES})")
    for key, what in (("mairie", "the data controller as the public knows it, e.g. \"Mairie d'Autun\""),
                      ("service", "the service to write to, e.g. \"Police municipale d'Autun\""),
                      ("address", "its postal address"), ("contact", "a telephone or e-mail (optional)")):
        p.add_argument(f"--{key}", metavar="TEXT", help=f"for `vault information`: {what}")
    identity_option(p)
    p.set_defaults(func=signed(cmd_authorise, "authorise", _check_authorise))

    p = sub.add_parser("enrol", help="pin a camera's signing key, within the arrêté's number of cameras")
    p.add_argument("vault", metavar="VAULT", help="the vault folder")
    p.add_argument("--camera", required=True, metavar="ID", help="the camera's id, as pieton provision printed it")
    p.add_argument("--key", required=True, metavar="DEVICE_PUBLIC_KEY",
                   help="the device public key pieton provision printed (64 hex digits)")
    identity_option(p)
    p.set_defaults(func=signed(cmd_enrol, "enrol"))

    p = sub.add_parser("retire", help="take a camera out of service (lost, stolen, broken); frees its place")
    p.add_argument("vault", metavar="VAULT", help="the vault folder")
    p.add_argument("--camera", required=True, metavar="ID", help="the camera's id")
    p.add_argument("--reason", required=True, choices=REASONS, help="why it leaves service")
    identity_option(p)
    p.set_defaults(func=signed(cmd_retire, "retire"))

    p = sub.add_parser("cameras", help="the arrêté in force, its history, the cameras enrolled and retired")
    p.add_argument("vault", metavar="VAULT", help="the vault folder")
    p.set_defaults(func=run(cmd_cameras))

    p = sub.add_parser("information", help="the text the mayor publishes on the commune's site and at the town hall")
    p.add_argument("vault", metavar="VAULT", help="the vault folder")
    p.add_argument("--config", metavar="CONFIG", help="the cameras' configuration (checked against the vault's "
                                                      "arrêté; names the communes and the notice)")
    p.add_argument("--format", choices=("text", "html"), default="text",
                   help="text (default) or an HTML page to publish")
    p.set_defaults(func=run(cmd_information))


def _check_authorise(args) -> None:
    arrete = (args.arrete, args.date, args.cameras, args.communes)
    contact = {k: getattr(args, k) for k in ("mairie", "service", "address", "contact")}
    if any(v is not None for v in arrete) and not all(v is not None for v in arrete):
        missing = [f"--{n}" for n, v in zip(("arrete", "date", "cameras", "communes"), arrete, strict=True) if v is None]
        raise VaultError(f"an arrêté is recorded whole: {', '.join(missing)} missing")
    if args.until is not None and args.arrete is None:
        raise VaultError("--until belongs to an arrêté: give --arrete, --date, --cameras and --communes with it")
    if args.arrete is None and all(v is None for v in contact.values()):
        raise VaultError("nothing to record: give an arrêté (--arrete --date --cameras --communes [--until]) "
                         "or whom the public asks (--mairie --service --address --contact)")


def cmd_authorise(args, vault: Vault) -> int:
    contact = {k: getattr(args, k) for k in ("mairie", "service", "address", "contact")}
    if args.arrete is not None:
        done = authorise(vault, args.arrete, args.date, args.cameras, args.communes, args.until)
        print(f"recorded the {describe(done)}: {done['cameras']} camera(s), communes "
              f"{', '.join(done['communes'])}, until {_day(done['until'])}")
        if done["previous"] is not None:
            print(f"  it supersedes the {describe(done['previous'])} (kept in the history)")
        if len(done["active"]) > done["cameras"]:
            print(f"  WARNING: {len(done['active'])} cameras are enrolled ({', '.join(done['active'])}), "
                  f"more than the {done['cameras']} authorised: retire some (`pieton vault retire`)")
    if any(v is not None for v in contact.values()):
        recorded = set_contact(vault, **contact)
        print("public contact: " + "; ".join(f"{k} {v}" for k, v in recorded.items() if v))
    return 0


def cmd_enrol(args, vault: Vault) -> int:
    line = enrol(vault, args.camera, args.key)  # within the prefect's arrêté (R241-8)
    print(f"camera {args.camera} enrolled with key {line['device_key'][:16]}..."
          + (" (replaces its previous key)" if line.get("replaces") else ""))
    return 0


def cmd_retire(args, vault: Vault) -> int:
    record = retire(vault, args.camera, args.reason)
    print(f"camera {record['camera']} retired ({record['reason']}) at {record['at']}: its place is free; "
          "recordings it makes from now on go to quarantine at ingest")
    return 0


def cmd_cameras(args) -> int:
    with Vault.open(args.vault) as vault:
        doc = load(vault)
        enrolled = vault.index.cameras()
    retired = {r["camera"]: r for r in doc["retired"]}
    if not doc["arretes"]:
        print("no prefect's arrêté recorded (pieton vault authorise)")
    for n, arrete in enumerate(reversed(doc["arretes"])):
        state = "IN FORCE" if n == 0 else f"superseded on {_when(vault, arrete.get('superseded_at'))}"
        print(f"{describe(arrete)}: {arrete['cameras']} camera(s), communes {', '.join(arrete['communes'])}, "
              f"until {_day(arrete['until'])} — {state}")
    active = [c for c, _k, _a in enrolled if c not in retired]
    for camera, key, at in enrolled:
        gone = retired.get(camera)
        print(f"  {camera:16} key {key[:16]}... enrolled {_when(vault, at)}"
              + (f"  RETIRED ({gone['reason']}) on {_when(vault, gone['at'])}" if gone else ""))
    if doc["arretes"]:
        print(f"{len(active)} camera(s) in service of {doc['arretes'][-1]['cameras']} authorised")
    return 0


def _when(vault: Vault, logged) -> str:
    """A time the vault logged (UTC) as people read it: local, with its zone."""
    try:
        return shown_time(vault, parse_time(str(logged), "UTC"))
    except TimeError:
        return str(logged)


def cmd_information(args) -> int:
    try:
        config = load_config(Path(args.config)) if args.config else None
    except ConfigError as exc:
        raise VaultError("--config: " + "; ".join(exc.problems)) from None
    with Vault.open(args.vault) as vault:
        info = gather(vault, config)
    print(as_html(info) if args.format == "html" else as_text(info), end="")
    return 0

"""`pieton vault training-approve|training-reject|training-pending`: the chief signs off a
training extraction's contact sheet before the clip leaves the vault; and the plate boxes
the chief draws for `pieton vault extract --purpose formation` (`--plate`, `--plates-file`).

``register(sub, run, open_vault, author)`` is called by tools/vault_cmd.py with its error
wrapper, vault opener and author check (the designated person whose --identity it is, who
becomes the author of what is logged), so the two modules share them without importing
each other.
"""

from __future__ import annotations

from tools.vault.plates import load_plate_file, parse_plate
from tools.vault.training_approval import approve, reject, waiting
from tools.vault_people_cmd import identity_option


def plate_options(p) -> None:
    """The options of `vault extract` that mark licence plates (training only)."""
    p.add_argument("--plate", action="append", default=[], metavar="T,X,Y,W,H",
                   help="training: a licence plate where it first shows (seconds from the clip's start, box in "
                        "pixels), followed from there; repeat for each plate")
    p.add_argument("--plates-file", metavar="FILE",
                   help='training: plate boxes as JSON, [{"t": 3.5, "box": [640, 400, 120, 40]}, ...]')


def plate_marks(args) -> list:
    """The plate boxes given to `vault extract` (a VaultError names a bad one)."""
    marks = [parse_plate(text) for text in args.plate]
    if args.plates_file:
        marks += load_plate_file(args.plates_file)
    return marks


def register(sub, run, open_vault, author) -> None:
    def common(p) -> None:
        p.add_argument("vault", metavar="VAULT", help="the vault folder")
        p.add_argument("--extraction", required=True, metavar="ID",
                       help="the training extraction's id (pieton vault training-pending lists them)")
        identity_option(p)   # as every other command: PIETON_IDENTITY gives it once; logged by matricule

    p = sub.add_parser("training-approve", help="sign off a training extraction's contact sheet: it is "
                                                "logged twice, then the clip goes where --out said")
    common(p)
    p.set_defaults(func=run(lambda args: cmd_approve(args, open_vault, author)))

    p = sub.add_parser("training-reject", help="refuse a training extraction (logged twice, then erased)")
    common(p)
    p.add_argument("--reason", required=True, metavar="TEXT", help="what the contact sheet showed")
    p.set_defaults(func=run(lambda args: cmd_reject(args, open_vault, author)))

    p = sub.add_parser("training-pending", help="training extractions awaiting the chief's sign-off")
    p.add_argument("vault", metavar="VAULT", help="the vault folder")
    p.set_defaults(func=run(lambda args: cmd_pending(args, open_vault)))


def cmd_approve(args, open_vault, author) -> int:
    with open_vault(args) as vault:
        out = approve(vault, args.extraction, author(vault, args, "training-approve"))
    print(f"training extraction {args.extraction} approved and delivered: {out} (with its report); "
          "logged in the vault's journal and the register")
    return 0


def cmd_reject(args, open_vault, author) -> int:
    with open_vault(args) as vault:
        reject(vault, args.extraction, author(vault, args, "training-reject"), args.reason)
    print(f"training extraction {args.extraction} rejected and erased; logged in the journal and the register")
    return 0


def cmd_pending(args, open_vault) -> int:
    with open_vault(args) as vault:
        items = waiting(vault)
    for item in items:
        print(f"{item['extraction_id']}: contact sheet {item['contact_sheet']}")
    if not items:
        print("no training extraction awaits sign-off")
    return 0

"""Keys: `pieton keys chief`, `pieton keys technician` and `pieton provision`.

The chief's identity is the only key that can read recordings; it is written in age's
own passphrase format (scrypt), so the standard `age -d -i FILE` reads it too. The
technician's key signs configurations; the device's key signs its manifests and journal.
Neither of those two can decrypt anything.

The age CLI (1.1.1) asks for an identity file's passphrase on /dev/tty only; it does not
read it from a pipe. Scripts use our loader with PIETON_PASSPHRASE instead.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from drivers.errors import DriverError, PietonError
from drivers.signer import CAMERA_ID_FILE, KEY_FILE, KEYS_DIR, FileSigner
from recorder.errors import AgeError
from recorder.evidence.age import encrypt_with_passphrase, generate_identity
from recorder.evidence.age_keys import MAX_SCRYPT_WORK_FACTOR, SCRYPT_WORK_FACTOR
from recorder.evidence.format import CAMERA_ID_HELP, is_camera_id
from recorder.inputs import explain_os_error

PASSPHRASE_ENV = "PIETON_PASSPHRASE"
# An identity in clear is for test fixtures only, and only when this variable says so
# explicitly (the tests and the demo set it); there is no command-line flag for it.
UNPROTECTED_ENV = "PIETON_UNPROTECTED_IDENTITY"
UNPROTECTED_VALUE = "test-fixture-only"
MIN_PASSPHRASE_CHARS = 12
MIN_PASSPHRASE_SCORE = 3     # zxcvbn's 0..4 scale: 3 is "safely unguessable" offline at a slow hash


class UsageError(PietonError):
    """A user mistake: printed as one line, exit status 2."""


def read_passphrase(prompt: str = "Passphrase: ", *, confirm: bool = False) -> str:
    """PIETON_PASSPHRASE, or asked on the terminal (twice when ``confirm``)."""
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    if not sys.stdin.isatty():
        raise UsageError(f"no passphrase: set {PASSPHRASE_ENV} or run on a terminal")
    first = getpass.getpass(prompt)
    if not first:
        raise UsageError("the passphrase is empty")
    if confirm and getpass.getpass("Same passphrase again: ") != first:
        raise UsageError("the two passphrases differ")
    return first


def check_passphrase_strength(passphrase: str) -> None:
    """A designated person's identity opens every recording: its passphrase must have at
    least 12 characters and a zxcvbn score of at least 3."""
    from zxcvbn import zxcvbn  # a dictionary load: only when a key is made
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise UsageError(f"the passphrase has {len(passphrase)} characters; at least {MIN_PASSPHRASE_CHARS} "
                         "are needed for an identity that opens recordings (a few unrelated words work well)")
    verdict = zxcvbn(passphrase[:100])
    if verdict["score"] < MIN_PASSPHRASE_SCORE:
        advice = " ".join([verdict["feedback"].get("warning") or "", *verdict["feedback"].get("suggestions", [])])
        raise UsageError(f"the passphrase is too easy to guess (strength {verdict['score']} of 4, "
                         f"at least {MIN_PASSPHRASE_SCORE} needed). {advice.strip()}".rstrip())


def _create_private(path: Path, data: bytes) -> None:
    """A new file readable by its owner only; never replaces an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} already exists: a key is never overwritten") from None
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def register(subparsers) -> None:
    keys = subparsers.add_parser("keys", help="make the chief's and the technicians' keys")
    kinds = keys.add_subparsers(dest="keys_command", metavar="KIND")
    chief = kinds.add_parser("chief", help="a passphrase-protected age identity; prints its recipient (age1...)")
    chief.add_argument("--out", required=True, help="the identity file to create")
    chief.add_argument("--work-factor", type=int, default=SCRYPT_WORK_FACTOR, metavar="LOG2N",
                       help=f"scrypt work factor, log2 N (default {SCRYPT_WORK_FACTOR}, as age)")
    chief.set_defaults(func=cmd_chief)
    tech = kinds.add_parser("technician", help="an Ed25519 key for signing configurations; prints its public key")
    tech.add_argument("--out", required=True, help="the key file to create (mode 0600)")
    tech.set_defaults(func=cmd_technician)

    prov = subparsers.add_parser("provision", help="create a camera's device signing key; prints it for the vault")
    prov.add_argument("--state-dir", required=True, help="the device's state folder (key in STATE/keys/)")
    prov.add_argument("--camera-id", required=True, help="the id printed on the camera's case")
    prov.add_argument("--json", action="store_true", help="print one JSON object")
    prov.set_defaults(func=cmd_provision)


def _run(action):
    """A user mistake or an unusable file becomes one line and exit status 2."""
    def cmd(args) -> int:
        try:
            return action(args)
        except (UsageError, AgeError, DriverError) as exc:
            print(f"pieton {args.command}: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"pieton {args.command}: {explain_os_error(exc)}", file=sys.stderr)
            return 2
    cmd.__name__ = action.__name__
    return cmd


@_run
def cmd_chief(args) -> int:
    out = Path(args.out)
    if out.exists():
        raise UsageError(f"{out} already exists: a key is never overwritten")
    if not 10 <= args.work_factor <= MAX_SCRYPT_WORK_FACTOR:
        raise UsageError(f"--work-factor {args.work_factor}: allowed 10 to {MAX_SCRYPT_WORK_FACTOR}")
    identity, recipient = generate_identity()
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"# created: {created}\n# public key: {recipient}\n{identity}\n".encode("ascii")
    if os.environ.get(UNPROTECTED_ENV) == UNPROTECTED_VALUE:
        print(f"pieton keys chief: {UNPROTECTED_ENV} is set: the identity is left in clear, "
              "for test fixtures only", file=sys.stderr)
    else:
        passphrase = read_passphrase("Passphrase for the chief's identity: ", confirm=True)
        check_passphrase_strength(passphrase)
        text = encrypt_with_passphrase(text, passphrase, work_factor=args.work_factor)
    _create_private(out, text)
    print(recipient)
    return 0


@_run
def cmd_technician(args) -> int:
    out = Path(args.out)
    if out.exists():
        raise UsageError(f"{out} already exists: a key is never overwritten")
    signer = FileSigner.create(out)
    print(signer.public_key_hex)
    return 0


@_run
def cmd_provision(args) -> int:
    if not is_camera_id(args.camera_id):
        raise UsageError(f"--camera-id {args.camera_id!r}: allowed {CAMERA_ID_HELP}")
    keys_dir = Path(args.state_dir) / KEYS_DIR
    key_path = keys_dir / KEY_FILE
    if key_path.exists():
        existing = FileSigner(key_path).public_key_hex
        raise UsageError(f"{key_path} already exists (public key {existing}): "
                         "a device keeps its signing key; it is never overwritten")
    keys_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    signer = FileSigner.create(key_path)
    (keys_dir / CAMERA_ID_FILE).write_text(args.camera_id + "\n")   # the camera's id, whatever bundle it runs
    if args.json:
        print(json.dumps({"camera_id": args.camera_id, "public_key": signer.public_key_hex,
                          "key_file": str(key_path)}, sort_keys=True))
    else:
        print(f"camera {args.camera_id}")
        print(f"device public key {signer.public_key_hex}")
        print(f"key file {key_path} (mode 0600, outside the spool)")
    return 0

"""`pieton verify RECORDING_DIR... [--device-key PUB | --devices FILE] [--identity FILE] [--json]`

Exit 0 only when every recording is intact (a recovered one is intact but truncated, and
says so); 1 with one line per problem naming the recording, the file and the reason (a
malformed line in a manifest or journal is one of them, named by file and line); 2 for
bad usage (an unreadable key, identity or devices file, a path that holds no recording).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from recorder.errors import AgeError, VerificationError
from recorder.evidence.age import load_identities
from recorder.evidence.format import JOURNAL_FILE, MANIFEST_FILE, parse_recording_id
from recorder.evidence.verify import load_devices, parse_device_key, verify_recordings
from recorder.evidence.verify_spool import verify_journal
from recorder.inputs import InputError, read_bounded, read_text_bounded


def register(subparsers) -> None:
    p = subparsers.add_parser("verify", help="check recordings: chain, signatures, hashes, completeness",
                              description=__doc__.split("\n\n")[1])
    p.add_argument("recordings", nargs="+", metavar="RECORDING_DIR",
                   help="recording folders (a spool folder stands for all the recordings in it)")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--device-key", metavar="PUB", help="the camera's public key (64 hex digits, or a file holding it)")
    key.add_argument("--devices", metavar="FILE", help="enrolled devices: lines 'CAMERA-ID HEXKEY' or a JSON object")
    p.add_argument("--identity", metavar="FILE", help="the chief's age identity: also decrypt and demux every segment "
                   "(passphrase from PIETON_PASSPHRASE or prompted)")
    p.add_argument("--json", action="store_true", help="one JSON object with every report")
    p.set_defaults(func=cmd_verify)


def _folders(paths: list[str]) -> tuple[list[Path], dict[Path, list[Path]]]:
    """Recording folders to check, and the spools given whole (their journal is checked too:
    a spool whose journal was removed is still a spool, and every recording in it is checked)."""
    folders, spools = [], {}
    for text in paths:
        path = Path(text)
        if path.is_dir() and not (path / MANIFEST_FILE).exists():
            found = sorted((p for p in path.iterdir() if not p.is_symlink() and p.is_dir()
                            and parse_recording_id(p.name) is not None),
                           key=lambda p: (parse_recording_id(p.name).seq, p.name))
            if found or (path / JOURNAL_FILE).exists():
                spools[path] = found
                folders.extend(found)
                continue
        folders.append(path)
    return folders, spools


def _passphrase() -> str:
    env = os.environ.get("PIETON_PASSPHRASE")
    if env is not None:
        return env
    if not sys.stdin.isatty():
        raise AgeError("the identity is protected by a passphrase: set PIETON_PASSPHRASE")
    return getpass.getpass("passphrase of the chief's identity: ")


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        device_key = devices = identities = None
        if args.device_key:
            text = args.device_key
            if Path(text).is_file():
                text = read_text_bounded(text, "key", what=f"--device-key {text}")
            device_key = parse_device_key(text)
        if args.devices:
            devices = load_devices(args.devices)
        if args.identity:
            if Path(args.identity).exists():   # an endless file ends here, not in MemoryError
                read_bounded(args.identity, "identity", what=f"--identity {args.identity}")
            identities = load_identities(args.identity, passphrase=_passphrase)
    except (VerificationError, AgeError, InputError, OSError) as exc:
        print(f"pieton verify: {exc}", file=sys.stderr)
        return 2
    try:
        folders, spools = _folders(args.recordings)
    except OSError as exc:
        print(f"pieton verify: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    if not folders and not spools:
        print("pieton verify: no recording found in " + ", ".join(args.recordings), file=sys.stderr)
        return 2
    reports = verify_recordings(folders, device_key=device_key, devices=devices, identities=identities)
    journal_problems, journal_notes = [], []
    for spool, found in spools.items():
        mine = [r for r in reports if Path(r.path) in found]
        key = device_key
        if devices is not None and mine and mine[0].camera_id in devices:
            key = devices[mine[0].camera_id]
        problems, notes = verify_journal(spool, key, mine)
        journal_problems += problems
        journal_notes += notes
    failed = [r for r in reports if not r.ok]
    ok = not failed and not journal_problems
    if args.json:
        print(json.dumps({"ok": ok, "recordings": [r.as_dict() for r in reports],
                          "journal_problems": [vars(p) for p in journal_problems],
                          "journal_notes": journal_notes}, indent=1))
    else:
        for r in reports:
            print(r.summary())
            for p in r.problems:
                print(f"  {p}")
            for note in r.notes:
                print(f"  note: {note}")
        for p in journal_problems:
            print(str(p))
        for note in journal_notes:
            print(f"note: {note}")
        print(f"{len(reports) - len(failed)} of {len(reports)} recording(s) intact" +
              (f", {len(failed)} FAILED" if failed else "") +
              (f"; device journal: {len(journal_problems)} problem(s)" if journal_problems else ""))
    return 0 if ok else 1

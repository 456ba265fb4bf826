"""`pieton config check | sign | flash`: the technician's configuration tools.

init:  a copy of the default configuration with every file it references, to edit.
check: a TOML or a bundle; for a bundle, says which check failed (structure, signature,
trust, target, version, completeness, configuration).
sign:  one bundle holding the TOML and every file it references, signed.
flash: over the camera's serial link (the device answers with a reason code), or onto a
mounted SD card or dock folder that the camera reads ([link] card_dir).
answer: the camera's answers written on that card (recorder.card_answer).
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from recorder import card_answer
from recorder.arguments import bounded_int
from recorder.assignment import REASONS as ASSIGNMENT_REASONS
from recorder.bundle import (
    MAGIC,
    REASONS,
    build_bundle,
    check_target,
    check_trust,
    check_version,
    is_bundle,
    load_technician_key,
    materialise,
    public_hex,
    read_bundle,
    referenced_files,
)
from recorder.config import DEFAULT_CONFIG, load_config
from recorder.device_rules import authorisation_ended, is_device_configuration
from recorder.errors import BundleError, ConfigError, LinkError, VaultError
from recorder.evidence.chain import write_atomic
from recorder.inputs import InputError, read_bounded
from recorder.link.protocol import LINK_REASONS
from recorder.toml_writer import toml_value
from tools.link_client import CameraReplyError, FlashClient
from tools.outputs import refuse_overwrite
from tools.vault.authorisation import typed_date


def _end_date(text: str) -> date:
    """A date typed as people write it (the one rule for times), not only ISO."""
    try:
        return typed_date(text, None, "--until")
    except VaultError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers) -> None:
    config = subparsers.add_parser("config", help="check, sign and flash device configurations")
    actions = config.add_subparsers(dest="config_command", metavar="ACTION")

    init = actions.add_parser("init", help="copy the default configuration, with every file it references, "
                                           "into a new folder to edit")
    init.add_argument("dir", help="the folder to create (or an empty one)")
    init.add_argument("--technician-key", metavar="KEY",
                      help="your technician key (pieton keys technician): its public key goes in [keys] "
                           "technicians, so the camera trusts the bundles you sign, this first one included")
    init.add_argument("--recipient", action="append", default=[], metavar="AGE1...",
                      help="a designated person's age recipient, in [keys] recipients (repeatable)")
    init.add_argument("--vault-key", metavar="HEX", help="the vault's public key, in [keys] vault")
    init.add_argument("--device", action="store_true",
                      help="the real drivers of a Raspberry Pi camera (picamera2, sounddevice, gpsd, gpiozero, "
                           "sysfs) instead of the simulated ones")
    init.add_argument("--arrete", metavar="REF", help="the prefect's arrêté the cameras serve under")
    init.add_argument("--commune", action="append", default=[], metavar="INSEE",
                      help="an INSEE code the arrêté covers (repeatable)")
    init.add_argument("--until", type=_end_date, metavar="DATE",
                      help="the arrêté's end date: 30/06/2031 or 2031-06-30")
    init.set_defaults(func=cmd_init)

    check = actions.add_parser("check", help="check a configuration TOML or bundle; prints OK or what failed")
    check.add_argument("file", help="a configuration TOML or a signed bundle")
    check.add_argument("--running", metavar="CONFIG",
                       help="check a bundle as this device would: the TOML or bundle it runs "
                            "(trusted technicians, camera id, fleet, version)")
    check.set_defaults(func=cmd_check)

    sign = actions.add_parser("sign", help="make a signed bundle of a configuration and the files it references")
    sign.add_argument("file", help="the configuration TOML")
    sign.add_argument("--key", required=True, help="the technician key (pieton keys technician)")
    sign.add_argument("--version", required=True, type=bounded_int(0, 2**63 - 1), help="the bundle version, above the device's")
    target = sign.add_mutually_exclusive_group(required=True)
    target.add_argument("--device", metavar="ID", help="for this camera only")
    target.add_argument("--fleet", metavar="NAME", help="for every camera of this fleet")
    sign.add_argument("--out", required=True, help="the bundle file to write")
    sign.add_argument("--notice-encoding", choices=("opus", "raw"), default="opus",
                      help="ship a WAV notice as Opus (default, ~15x smaller on the serial link) or as is")
    sign.set_defaults(func=cmd_sign)

    flash = actions.add_parser("flash", help="send a bundle to a camera over its serial link, or onto its SD card")
    flash.add_argument("bundle", help="the signed bundle")
    where = flash.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="the camera's serial port, e.g. /dev/ttyACM0")
    where.add_argument("--dir", metavar="MOUNTPOINT", help="a mounted SD card: the bundle goes to MOUNTPOINT/inbox/")
    flash.add_argument("--baud", type=bounded_int(50, 4_000_000, " baud"), default=115200,
                       help="the serial link's speed (default 115200)")
    flash.add_argument("--full", action="store_true",
                       help="send every file, even those the camera already holds")
    flash.set_defaults(func=cmd_flash)

    answer = actions.add_parser("answer", help="read the camera's answers to bundles flashed with --dir")
    answer.add_argument("--dir", required=True, metavar="MOUNTPOINT", help="the SD card or dock folder")
    answer.add_argument("--camera-key", metavar="HEX",
                        help="the camera's device public key (printed by pieton provision): check each "
                             "answer is signed by it")
    answer.set_defaults(func=cmd_answer)


def _read(path: str) -> bytes:
    """A configuration or a bundle, with the bundle's size limit (the larger of the two)."""
    try:
        return read_bounded(path, "bundle", what=path)
    except InputError as exc:
        raise BundleError("bad-format", str(exc)) from None


def _failed(step: str, exc: BundleError) -> int:
    print(f"{step}: FAILED [{exc.code}] {exc.reason}", file=sys.stderr)
    return 2 if exc.code == "config-invalid" else 1


def _running(path: str):
    """(config, version) of what a device runs: a plain TOML is version 0."""
    data = _read(path)
    if not is_bundle(data):
        return load_config(path), 0
    bundle = read_bundle(data)
    with tempfile.TemporaryDirectory(prefix="pieton-check-") as tmp:
        return materialise(bundle, tmp), bundle.version


def _starts_like_bundle(path: str) -> bool:
    """Whether the file begins with the bundle magic: a TOML is then read with its own,
    smaller, size limit."""
    if _is_pipe(path):  # opening it would wait for a writer; the loader refuses it plainly
        return False
    try:
        with open(path, "rb") as handle:
            return is_bundle(handle.read(len(MAGIC)))
    except (OSError, ValueError):
        return False   # the configuration loader names the problem


def _is_pipe(path: str) -> bool:
    """A named pipe: opening it would wait for a writer forever."""
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def cmd_init(args) -> int:
    """The default configuration and the files it names (notice audio, commune boundaries),
    laid out as it expects them, so the copy checks and signs as it is."""
    target = Path(args.dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        print(f"{target}: exists and is not an empty folder; give a new one", file=sys.stderr)
        return 2
    try:
        text = _filled(DEFAULT_CONFIG.read_text(encoding="utf-8"), args)
    except (BundleError, InputError) as exc:
        print(f"pieton config init: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 2
    default = load_config(DEFAULT_CONFIG)
    copied = [DEFAULT_CONFIG.name]
    target.mkdir(parents=True, exist_ok=True)
    (target / DEFAULT_CONFIG.name).write_text(text, encoding="utf-8")
    for relative in dict.fromkeys(referenced_files(default)):
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(default.resolve(relative), destination)
        copied.append(relative)
    try:
        load_config(target / DEFAULT_CONFIG.name)
    except ConfigError as exc:      # a recipient or key of the wrong form: said, the copy kept to fix
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    print(f"{target}: " + ", ".join(copied))
    print(f"next: edit {target / DEFAULT_CONFIG.name}, then `pieton config check {target / DEFAULT_CONFIG.name}`")
    return 0


# `config init --device`: the drivers of a camera built as the README's "Running on a Raspberry Pi".
PI_DRIVERS = {"camera": "picamera2", "microphone": "sounddevice", "speaker": "sounddevice", "gps": "gpsd",
              "button": "gpiozero", "leds": "gpiozero", "haptic": "gpiozero", "ir": "gpiozero",
              "battery": "sysfs"}


def _filled(text: str, args) -> str:
    """The default TOML with what the technician gave written into its lines (each setting
    is one line `key = value  # comment` of its section; `# until = ...` is commented out)."""
    values: dict[tuple[str, str], object] = {
        ("keys", "recipients"): args.recipient, ("keys", "vault"): args.vault_key,
        ("authorisation", "arrete"): args.arrete, ("authorisation", "communes"): args.commune,
        ("authorisation", "until"): args.until}
    if args.technician_key:
        values["keys", "technicians"] = [public_hex(load_technician_key(args.technician_key))]
    if args.device:
        values.update({("drivers", kind): name for kind, name in PI_DRIVERS.items()})
    section, lines = "", text.splitlines(keepends=True)
    for number, line in enumerate(lines):
        if line.startswith("["):
            section = line[1:line.index("]")]
            continue
        key = line.lstrip("# ").split("=", 1)[0].strip()
        value = values.get((section, key))
        if value and "=" in line:
            comment = line[line.index("#", 1):] if "#" in line[1:] else "\n"
            lines[number] = f"{key} = {toml_value(value)}".ljust(29) + " " + comment
    return "".join(lines)


def cmd_check(args) -> int:
    if _is_pipe(args.file):
        print(f"{args.file}: a named pipe, not a configuration file", file=sys.stderr)
        return 2
    if not _starts_like_bundle(args.file):
        if args.running:
            print("--running applies to bundles only", file=sys.stderr)
            return 2
        try:
            config = load_config(args.file)
        except ConfigError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return 2
        ended = authorisation_ended(config, date.today())
        if ended and is_device_configuration(config):
            print(ended, file=sys.stderr)
            return 2
        print("OK")
        for note in (*config.notes, *([ended] if ended else [])):   # a simulation may leave these out
            print(f"note: {note}")
        return 0
    try:
        data = _read(args.file)
    except BundleError as exc:
        print(exc.reason, file=sys.stderr)
        return 2
    try:
        bundle = read_bundle(data)
    except BundleError as exc:
        step = {"bad-signature": "signature", "file-altered": "files", "oversize": "size"}.get(exc.code, "structure")
        return _failed(step, exc)
    print(f"structure: OK (version {bundle.version} for {bundle.describe_target()}, created {bundle.created})")
    print(f"signature: OK (technician {bundle.signer})")
    if args.running:
        try:
            config, version = _running(args.running)
        except (BundleError, ConfigError) as exc:
            print(f"--running {args.running}: {exc}", file=sys.stderr)
            return 2
        for step, check in (("trust", lambda: check_trust(bundle, list(config.keys.technicians))),
                            ("target", lambda: check_target(bundle, config.device.camera_id, config.device.fleet)),
                            ("version", lambda: check_version(bundle, version))):
            try:
                check()
            except BundleError as exc:
                return _failed(step, exc)
            print(f"{step}: OK")
    else:
        print("trust, target, version: not checked (give --running with the device's configuration)")
    if bundle.missing:
        return _failed("completeness", BundleError(
            "file-missing", f"left out of this bundle: {', '.join(bundle.missing)}"))
    with tempfile.TemporaryDirectory(prefix="pieton-check-") as tmp:
        try:
            config = materialise(bundle, tmp)
        except BundleError as exc:
            return _failed("completeness" if exc.code == "file-missing" else "configuration", exc)
    ended = authorisation_ended(config, date.today())
    if ended:
        return _failed("configuration", BundleError("config-invalid", ended))
    print(f"completeness: OK ({', '.join(f.name for f in bundle.files)})")
    print("configuration: OK")
    return 0


def cmd_sign(args) -> int:

    try:
        key = load_technician_key(args.key)
        data = build_bundle(args.file, key, args.version, device=args.device, fleet=args.fleet,
                            notice_encoding=args.notice_encoding)
    except BundleError as exc:
        print(f"cannot sign [{exc.code}]: {exc.reason}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        refuse_overwrite(out, "--out", "a bundle", is_bundle)
        write_atomic(out, data)
    except InputError as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot write {out}: {exc.strerror}", file=sys.stderr)
        return 2
    bundle = read_bundle(data)
    print(f"signed version {bundle.version} for {bundle.describe_target()} by {bundle.signer}")
    for f in bundle.files:
        how = f" (opus from WAV, {f.rate} Hz)" if f.encoding == "opus" else ""
        print(f"  {f.name}: {f.size} bytes{how}")
    print(f"{out}: {len(data)} bytes")
    return 0


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr  # looked up now: the default would be bound at import
        self.width, self.start = width, time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        frac = done / total if total else 1.0
        rate = done / max(time.monotonic() - self.start, 1e-6)
        bar = "#" * int(frac * self.width)
        self.stream.write(f"\r[{bar:<{self.width}}] {frac:4.0%} {done / 1000:.1f}/{total / 1000:.1f} kB "
                          f"{rate / 1000:.1f} kB/s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def describe(answer) -> str:
    """The device's answer in words."""

    words = {"applied": "accepted and in force", "queued": "accepted; applied when the current recording ends",
             "assigned": "assigned", **REASONS, **ASSIGNMENT_REASONS, **LINK_REASONS}
    head = "accepted" if answer.ok else "REFUSED"
    return f"{head} [{answer.code}] {words.get(answer.code, answer.code)}: {answer.message}"


def cmd_flash(args) -> int:
    try:
        bundle = read_bundle(_read(args.bundle))
    except BundleError as exc:
        print(f"{args.bundle}: not sent [{exc.code}] {exc.reason}", file=sys.stderr)
        return 2
    if args.dir:
        return _to_card(bundle, Path(args.dir), args.bundle)
    try:
        with FlashClient(args.port, baud=args.baud) as client:
            info = client.info()
            print(f"camera {info.get('camera_id')} (fleet {info.get('fleet')}), configuration version "
                  f"{info.get('config_version')}")
            held = set() if args.full else set(info.get("files", []))
            data = bundle.to_bytes(omit=held)
            left_out = [f.name for f in bundle.files if f.sha256 in held]
            if left_out:
                print(f"already on the camera, not resent: {', '.join(left_out)}")
            answer = client.send("bundle", data, progress=Progress())
    except CameraReplyError as exc:
        print(f"\nflash failed, the camera does not follow the protocol: {exc}", file=sys.stderr)
        return 2
    except LinkError as exc:
        print(f"\nflash failed: {exc}", file=sys.stderr)
        return 1
    print(f"device answer: {describe(answer)}")
    return 0 if answer.ok else 1


def _to_card(bundle, mountpoint: Path, name: str) -> int:
    if not mountpoint.is_dir():
        print(f"--dir {mountpoint}: not a folder (is the SD card mounted?)", file=sys.stderr)
        return 2
    inbox = mountpoint / "inbox"
    target = inbox / f"config-v{bundle.version:06d}-{bundle.target[1]}.pbn"
    try:
        inbox.mkdir(exist_ok=True)
        write_atomic(target, bundle.to_bytes())
    except OSError as exc:
        print(f"cannot write to {inbox}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"{name} -> {target}\n"
          f"The camera takes it from the card at its next start, or within seconds while it runs, "
          f"when its configuration's [link] card_dir is this card's folder on the camera (by default "
          f"none: then use --port). It writes its answer on the card; read it with:\n"
          f"  pieton config answer --dir {mountpoint}")
    return 0


def cmd_answer(args) -> int:
    """The camera's answers on the card; exit 0 only when the latest was an acceptance, no
    bundle still waits, and (with --camera-key) every answer is the camera's."""
    card = Path(args.dir)
    if not card.is_dir():
        print(f"--dir {card}: not a folder (is the SD card mounted?)", file=sys.stderr)
        return 2
    if args.camera_key is not None and not _is_key_hex(args.camera_key):
        print(f"--camera-key {args.camera_key[:80]!r}: not a device public key (64 hex digits, "
              "as pieton provision prints it)", file=sys.stderr)
        return 2
    waiting = sorted(p.name for p in (card / "inbox").glob("*.pbn")) if (card / "inbox").is_dir() else []
    paths = card_answer.answers_on(card)
    if not paths and not waiting:
        print(f"{card}: no bundle and no answer on this card (pieton config flash BUNDLE --dir {card})",
              file=sys.stderr)
        return 1
    good, answers = True, []
    for path in paths:
        try:
            answers.append(card_answer.read_answer(path))
        except InputError as exc:
            print(f"{path.name}: unreadable answer: {exc}")
            good = False
    # Oldest first; what counts is the latest answer (a refusal a later bundle fixed is history).
    answers.sort(key=lambda doc: str(doc["time"]))
    for doc in answers:
        good &= _print_answer(doc, args.camera_key)
    if answers and not answers[-1]["accepted"]:
        good = False
    for name in waiting:
        print(f"{name}: NO ANSWER YET: still in {card / 'inbox'}; the camera has not looked at this card "
              f"(is its [link] card_dir this folder? has it started since?)")
        good = False
    return 0 if good else 1


def _is_key_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)


def _print_answer(doc: dict, camera_key: str | None) -> bool:
    """Print one answer; False when it is not signed by ``camera_key``."""
    head = "accepted" if doc["accepted"] else "REFUSED"
    words = {"applied": "accepted and in force", "queued": "accepted; applied when the current recording ends",
             **REASONS}
    versions = (f"offered version {doc['offered_version']}, camera at version {doc['version_before']} before, "
                f"{doc['version_after']} after")
    if camera_key is None:
        signed, trusted = "signature not checked (give --camera-key)", True
    elif card_answer.signed_by(doc, camera_key):
        signed, trusted = "signed by the camera", True
    else:
        signed, trusted = "NOT signed by that camera's key: do not trust this answer", False
    print(f"{doc['bundle']}: {head} [{doc['code']}] {words.get(doc['code'], doc['code'])}: {doc['message']}\n"
          f"  camera {doc['camera_id']}, {versions}, at {doc['time']}; {signed}")
    return trusted

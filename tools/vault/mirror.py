"""`pieton vault mirror VAULT DEST`: a verified copy of the vault on another medium.

One disk holds every recording under a hold for a procedure; a mirror on a second disk
keeps them if it fails. It holds what is needed to check and restore evidence: the stored
recordings exactly as sealed (ciphertext and manifests), the device journals, the vault
journal and a copy of the register with their checkpoints, the vault's public key, its
settings and a copy of its index. Never a key able to decrypt (the vault has none).

    DEST/mirror.json                  which vault this mirrors (its public key)
    DEST/recordings/CAM/ID/           each stored recording, verified after the copy
    DEST/device-journals/CAM/...      the cameras' journals as the vault holds them
    DEST/journal.jsonl, register.jsonl (and their .checkpoint.json), vault.json, index.sqlite

It is incremental: a recording already there with the same files is not copied again. It
is purged the same way as the vault, the same day: every mirror is recorded in the vault
(``VAULT/mirrors.json``) and ``purge`` erases from each reachable mirror what the vault no
longer stores; a mirror that was not reachable is erased the next time it is mirrored or
purged, and `pieton vault verify` says so until then.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from recorder.errors import PietonError, VaultError
from recorder.evidence.chain import fsync_dir, write_atomic
from recorder.evidence.verify import verify_recording
from recorder.inputs import InputError, expect_object, load_json_file
from tools.vault.authorisation import FILE as AUTHORISATION_FILE
from tools.vault.journal import read_journal
from tools.vault.layout import refuse_inside, remove_tree, utc_iso
from tools.vault.logs import checkpoint_path
from tools.vault.persons import PERSONS_FILE
from tools.vault.register import read_register
from tools.vault.vault import Vault

MIRROR_FORMAT = "pieton/vault-mirror/1"
MIRROR_FILE = "mirror.json"
MIRRORS = "mirrors.json"  # in the vault: the mirrors it keeps, so purge reaches them


@dataclass
class MirrorReport:
    dest: Path
    copied: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    erased: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bytes_copied: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def registered(vault: Vault) -> list[Path]:
    """The mirrors this vault keeps (paths as given when they were made)."""
    path = vault.layout.root / MIRRORS
    if not path.exists():
        return []
    try:
        data = expect_object(load_json_file(path, "settings"), str(path))
        mirrors = data.get("mirrors")
        if not isinstance(mirrors, list) or not all(isinstance(m, str) for m in mirrors):
            raise InputError(f"{path}: 'mirrors' must be a list of paths")
    except InputError as exc:
        raise VaultError(f"vault mirrors {exc}") from None
    return [Path(m) for m in mirrors]


def _register(vault: Vault, dest: Path) -> None:
    mirrors = registered(vault)
    if dest not in mirrors:
        write_atomic(vault.layout.root / MIRRORS,
                     (json.dumps({"mirrors": [str(m) for m in [*mirrors, dest]]}, indent=2) + "\n").encode())


def _claim(vault: Vault, dest: Path) -> None:
    """DEST is an existing folder (a mounted medium) holding nothing or a mirror of this vault."""
    refuse_inside(dest, vault.layout.root, "DEST")
    if not dest.is_dir():
        raise VaultError(f"DEST {dest}: not a folder (is the mirror's disk mounted?)")
    marker = dest / MIRROR_FILE
    if marker.exists():
        try:
            data = expect_object(load_json_file(marker, "settings"), str(marker))
        except InputError as exc:
            raise VaultError(f"mirror {exc}") from None
        if data.get("format") != MIRROR_FORMAT or data.get("vault_key") != vault.signer.public_key_hex:
            raise VaultError(f"DEST {dest}: a mirror of another vault (or not a mirror); refusing to mix them")
        return
    if any(dest.iterdir()):
        raise VaultError(f"DEST {dest}: not empty and not a mirror of this vault; give an empty folder")
    write_atomic(marker, (json.dumps({"format": MIRROR_FORMAT, "vault_key": vault.signer.public_key_hex,
                                      "created": utc_iso(vault.now())}, indent=2) + "\n").encode())


def _refuse_links(dest: Path) -> None:
    """The mirror's folders are its own: a link in them would make the copy, or a purge,
    write or erase elsewhere."""
    folders = [dest / name for name in ("recordings", "incoming", "keys", "device-journals")]
    for parent in (dest / "recordings", dest / "device-journals"):
        if parent.is_dir() and not parent.is_symlink():
            folders += list(parent.iterdir())
    for folder in folders:
        if folder.is_symlink():
            raise VaultError(f"mirror {dest}: {folder.relative_to(dest)} is a symbolic link; refusing to follow it")


def is_mirror_of(vault: Vault, dest: Path) -> bool:
    try:
        data = load_json_file(dest / MIRROR_FILE, "settings")
    except InputError:
        return False
    return isinstance(data, dict) and data.get("vault_key") == vault.signer.public_key_hex


def purge_mirror(vault: Vault, dest: Path) -> list[str]:
    """Erase from the mirror every recording the vault no longer stores (erased for the
    retention, or never stored); each erasure is journaled in the vault."""
    _refuse_links(dest)
    erased = []
    base = dest / "recordings"
    for camera_dir in sorted(base.iterdir()) if base.is_dir() else []:
        for folder in sorted(camera_dir.iterdir()) if camera_dir.is_dir() else []:
            row = vault.index.recording(folder.name)
            if row is not None and row.state == "stored" and row.camera_id == camera_dir.name:
                continue
            vault.log("mirror-erased", recording=folder.name, camera=camera_dir.name, mirror=str(dest),
                      reason="erased in the vault" if row is not None else "not stored in the vault")
            remove_tree(folder)
            erased.append(folder.name)
    remove_tree(dest / "incoming")
    return erased


def mirror(vault: Vault, dest: str | Path, *, recheck: bool = False) -> MirrorReport:
    """Bring the mirror at ``dest`` to the vault's state. A copy already there is trusted
    when its files have the same sizes and manifest (``vault verify`` hashes them all);
    with ``recheck`` it is verified again and copied anew when it fails."""
    dest = Path(dest)
    _claim(vault, dest)
    _register(vault, dest)
    report = MirrorReport(dest)
    report.erased = purge_mirror(vault, dest)
    for row in vault.index.recordings(state="stored"):
        src = vault.layout.recording(row.camera_id, row.recording_id)
        target = dest / "recordings" / row.camera_id / row.recording_id
        if target.is_dir() and _same_files(src, target) and not (recheck and _copy_problems(vault, row, target)):
            report.already.append(row.recording_id)
            continue
        try:
            report.bytes_copied += _copy_verified(vault, row, src, target, dest / "incoming")
        except VaultError as exc:
            report.problems.append(str(exc))
            continue
        report.copied.append(row.recording_id)
    _copy_logs(vault, dest)
    vault.log("mirrored", mirror=str(dest), copied=report.copied, erased=report.erased,
              problems=report.problems[:50], bytes=report.bytes_copied)
    return report


def _same_files(a: Path, b: Path) -> bool:
    def listing(folder: Path):
        return {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    if listing(a) != listing(b):
        return False
    # Stored recordings never change; the manifest (whose last line the receipt names)
    # stands for the rest, which the manifest hashes.
    return (a / "manifest.jsonl").read_bytes() == (b / "manifest.jsonl").read_bytes()


def _copy_verified(vault: Vault, row, src: Path, target: Path, incoming: Path) -> int:
    """Copy into the mirror's staging folder, make durable, verify the copy against the
    camera's pinned key, then one rename into place."""
    stage = incoming / row.recording_id
    remove_tree(stage)
    stage.mkdir(parents=True)
    size = 0
    try:
        for path in sorted(src.iterdir()):
            if path.is_file() and not path.is_symlink():
                shutil.copyfile(path, stage / path.name)
                with open(stage / path.name, "rb") as f:
                    os.fsync(f.fileno())
                size += path.stat().st_size
        fsync_dir(stage)
    except OSError as exc:
        remove_tree(stage)
        raise VaultError(f"{row.recording_id}: not mirrored: {exc.strerror or exc}") from None
    problems = _copy_problems(vault, row, stage)
    if problems:
        remove_tree(stage)
        raise VaultError(f"{row.recording_id}: the mirror's copy does not verify, not mirrored: {problems[0]}")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_tree(target)
    os.rename(stage, target)
    fsync_dir(target.parent)
    return size


def _copy_problems(vault: Vault, row, folder: Path) -> list[str]:
    """What is wrong with a copy of a recording, checked against the camera's pinned key."""
    key = vault.index.camera_key(row.camera_id)
    if key is None:
        return [f"camera {row.camera_id} is no longer enrolled"]
    try:
        return [str(p) for p in verify_recording(folder, devices={row.camera_id: bytes.fromhex(key)}).problems]
    except Exception as exc:  # noqa: BLE001 - the verifier stumbled: the copy is not trusted
        return [f"cannot be verified ({type(exc).__name__}: {exc})"]


def _copy_logs(vault: Vault, dest: Path) -> None:
    """Journals, register copy, key, settings and index, each replaced whole (a crash
    leaves the old copy or the new one)."""
    layout = vault.layout
    pairs = [(layout.journal, dest / "journal.jsonl"), (checkpoint_path(layout.journal), dest / "journal.jsonl.checkpoint.json"),
             (layout.pub, dest / "keys" / "vault.pub"), (layout.settings, dest / "vault.json"),
             (vault.layout.root / MIRRORS, dest / MIRRORS), (vault.layout.root / PERSONS_FILE, dest / PERSONS_FILE)]
    pairs.append((layout.root / AUTHORISATION_FILE, dest / AUTHORISATION_FILE))  # the arrêtés, retirements
    register = Path(vault.settings["register"])
    pairs += [(register, dest / "register.jsonl"), (checkpoint_path(register), dest / "register.jsonl.checkpoint.json")]
    if layout.device_journals.is_dir():
        for journal in sorted(layout.device_journals.glob("*/journal.jsonl")):
            pairs.append((journal, dest / "device-journals" / journal.parent.name / "journal.jsonl"))
    for src, dst in pairs:
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(dst, src.read_bytes())
    tmp = dest / ".index.sqlite.tmp"
    tmp.unlink(missing_ok=True)
    try:
        copy = sqlite3.connect(tmp)
        try:
            vault.index.db.backup(copy)  # a consistent copy, even of a WAL database
        finally:
            copy.close()
        os.replace(tmp, dest / "index.sqlite")
        fsync_dir(dest)
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise VaultError(f"mirror {dest}: the index could not be copied ({exc})") from None


def check_mirrors(vault: Vault) -> tuple[list[str], list[str]]:
    """(problems, notes) of every mirror this vault keeps, for `pieton vault verify`."""
    problems, notes = [], []
    for dest in registered(vault):
        if not is_mirror_of(vault, dest):
            problems.append(f"mirror {dest}: not reachable (or not this vault's): it cannot be checked "
                            "nor purged; connect it and run `pieton vault mirror` or `purge`")
            continue
        stored = {r.recording_id: r for r in vault.index.recordings(state="stored")}
        base = dest / "recordings"
        held = {}
        for camera_dir in sorted(base.iterdir()) if base.is_dir() else []:
            for folder in sorted(camera_dir.iterdir()) if camera_dir.is_dir() else []:
                held[folder.name] = (camera_dir.name, folder)
        for rid, (camera, folder) in held.items():
            if rid not in stored:
                problems.append(f"mirror {dest}: {rid} is no longer stored in the vault but still on the mirror "
                                "(run `pieton vault purge`)")
                continue
            row = stored[rid]
            found = _copy_problems(vault, row, folder) if row.camera_id == camera else [
                f"in the folder of camera {camera}, stored for camera {row.camera_id}"]
            problems.extend(f"mirror {dest}: {rid}: {p}" for p in found)
        missing = sorted(set(stored) - set(held))
        if missing:
            notes.append(f"mirror {dest}: {len(missing)} stored recording(s) not yet mirrored "
                         "(run `pieton vault mirror`)")
        for name, reader in (("journal.jsonl", read_journal), ("register.jsonl", read_register)):
            if (dest / name).is_file():
                problems.extend(f"mirror {dest}: {name} {p}" for p in reader(dest / name, vault.public_key).problems)
            else:
                problems.append(f"mirror {dest}: {name} missing")
    return problems, notes


def purge_mirrors(vault: Vault) -> tuple[list[str], list[str]]:
    """Called by the vault's purge: (recordings erased from mirrors, mirrors not reachable)."""
    erased, unreachable = [], []
    try:
        mirrors = registered(vault)
    except PietonError:
        return erased, [f"{vault.layout.root / MIRRORS} unreadable"]
    for dest in mirrors:
        if not is_mirror_of(vault, dest):
            unreachable.append(str(dest))
            continue
        try:
            erased += [f"{dest}: {rid}" for rid in purge_mirror(vault, dest)]
        except OSError as exc:
            unreachable.append(f"{dest} ({exc.strerror or exc})")
        except PietonError as exc:  # the vault's own purge is done; this mirror waits, said
            unreachable.append(f"{dest} ({exc})")
    return erased, unreachable

"""The vault's folder: what lies where, creating it, opening it.

    VAULT/vault.json              settings: recipients, register path, retention
    VAULT/keys/vault-signing.key  the vault's Ed25519 key (signs journal, receipts, reports)
    VAULT/keys/vault.pub          its public key, hex, handed to cameras and recipients
    VAULT/journal.jsonl           the vault's own signed chain (pieton/vault-journal/1)
    VAULT/index.sqlite            recordings, cameras, times and ingest state
    VAULT/recordings/CAM/ID/      recordings exactly as sealed by the cameras
    VAULT/device-journals/CAM/    each camera's device journal, as last offloaded
    VAULT/quarantine/CAM/ID.N/    what failed verification, with its problems
    VAULT/incoming/               staging of an ingest in progress (two-phase)

The vault holds no key able to decrypt: only the chief's recipients (public keys).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from drivers.signer import FileSigner
from recorder.errors import VaultError
from recorder.evidence.chain import write_atomic
from recorder.evidence.format import JOURNAL_FILE, utc_iso

FORMAT = "pieton/vault/1"
DEFAULT_RETENTION_DAYS = 30      # L241-2 as amended in 2022
LOG_RETENTION_DAYS = 3 * 365 + 1  # journal and register entries: 3 years
SETTINGS = "vault.json"
KEY_FILE = "keys/vault-signing.key"
PUB_FILE = "keys/vault.pub"
_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def parse_time(text: str, what: str = "time") -> float:
    """An ISO 8601 time (UTC unless it says otherwise) as epoch seconds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise VaultError(f"{what} {text!r} is not a date/time like 2026-11-27T14:05:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def safe_name(text: str, what: str) -> str:
    """A camera or recording id used as a folder name: refuse anything that could escape."""
    if not isinstance(text, str) or not _SAFE_NAME.fullmatch(text) or ".." in text:
        raise VaultError(f"{what} {text!r} is not a valid name (letters, digits, '-', '_', '.')")
    return text


class VaultLayout:
    """Paths of one vault folder (no I/O beyond existence checks)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    settings = property(lambda self: self.root / SETTINGS)
    key = property(lambda self: self.root / KEY_FILE)
    pub = property(lambda self: self.root / PUB_FILE)
    journal = property(lambda self: self.root / JOURNAL_FILE)
    index = property(lambda self: self.root / "index.sqlite")
    recordings = property(lambda self: self.root / "recordings")
    device_journals = property(lambda self: self.root / "device-journals")
    quarantine = property(lambda self: self.root / "quarantine")
    incoming = property(lambda self: self.root / "incoming")
    lock = property(lambda self: self.root / ".lock")

    def recording(self, camera: str, recording_id: str) -> Path:
        return self.recordings / safe_name(camera, "camera id") / safe_name(recording_id, "recording id")

    def device_journal(self, camera: str) -> Path:
        return self.device_journals / safe_name(camera, "camera id") / JOURNAL_FILE


def init_vault(root: str | Path, recipients: list[str], register: str | Path, *,
               retention_days: int = DEFAULT_RETENTION_DAYS, communes: list[str] | None = None,
               clock=time.time) -> Path:
    """Create a vault folder; refuses an existing vault or a bad recipient. Returns the
    public key file."""
    from tools.vault.vault import Vault  # the journal and register need an open vault
    layout = VaultLayout(root)
    if layout.settings.exists():
        raise VaultError(f"{layout.root}: already a vault (found {SETTINGS}); refusing to overwrite it")
    if not recipients:
        raise VaultError("at least one --recipient (the chief's age public key, 'age1...') is required")
    for r in recipients:
        if not _RECIPIENT.fullmatch(r):
            raise VaultError(f"--recipient {r!r} is not an age recipient ('age1' followed by 58 characters)")
    if not isinstance(retention_days, int) or not 1 <= retention_days <= 3650:
        raise VaultError(f"--retention-days {retention_days!r}: must be an integer from 1 to 3650")
    register = Path(register).resolve()
    if register.exists():
        raise VaultError(f"--register {register}: file exists; the register of a new vault starts empty")
    if register.is_relative_to(layout.root.resolve()):
        raise VaultError(f"--register {register}: must be outside the vault (the police's own medium)")
    if not register.parent.is_dir():
        raise VaultError(f"--register {register}: folder {register.parent} does not exist")
    boundary = [str(Path(c).resolve()) for c in (communes or [])]
    for c in boundary:
        if not Path(c).is_file():
            raise VaultError(f"--commune {c}: file not found")
    layout.root.mkdir(parents=True, exist_ok=True)
    for folder in (layout.recordings, layout.device_journals, layout.quarantine, layout.incoming):
        folder.mkdir(exist_ok=True)
    os.chmod(layout.root, 0o700)
    layout.key.parent.mkdir(mode=0o700, exist_ok=True)
    signer = FileSigner.create(layout.key)
    write_atomic(layout.pub, (signer.public_key_hex + "\n").encode())
    settings = {
        "format": FORMAT, "created": utc_iso(clock()), "recipients": list(recipients),
        "register": str(register), "retention_days": retention_days,
        "log_retention_days": LOG_RETENTION_DAYS, "communes": boundary,
        "vault_key": signer.public_key_hex,
    }
    write_atomic(layout.settings, (json.dumps(settings, indent=2, sort_keys=True) + "\n").encode())
    with Vault.open(layout.root, clock=clock) as vault:
        entry = vault.log("vault-created", recipients=list(recipients), register=str(register),
                          retention_days=retention_days, vault_key=signer.public_key_hex)
        vault.register.append({"event": "register-opened", "at": entry["at"],
                               "vault_key": signer.public_key_hex})
    return layout.pub


class VaultLock:
    """One writer at a time on a vault (two ingests at once would race on the index)."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def __enter__(self):
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise VaultError(f"{self.path.parent}: another vault command is running") from None
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)

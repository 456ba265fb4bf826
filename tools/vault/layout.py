"""The vault's folder: what lies where, creating it, opening it.

    VAULT/vault.json              settings: recipients, register path, time zone (retention is the law's, not a setting)
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
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from recorder.errors import VaultError
from recorder.evidence.format import JOURNAL_FILE, utc_iso  # noqa: F401 - utc_iso: the vault's writers take it from here

FORMAT = "pieton/vault/1"
LOG_RETENTION_DAYS = 3 * 365 + 1  # journal and register entries: 3 years
SETTINGS = "vault.json"
KEY_FILE = "keys/vault-signing.key"
PUB_FILE = "keys/vault.pub"
RECIPIENT = re.compile(r"age1[02-9ac-hj-np-z]{58}")  # matched whole (fullmatch)
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# Times the vault reads (options, manifests) must fall in this span: beyond it a date
# cannot be written back (utc_iso) and is a typo or an attack, not a recording's time.
_EARLIEST, _LATEST = 0.0, 253402214400.0  # 1970-01-01 .. 9999-12-31


def parse_time(text: str, what: str = "time") -> float:
    """An ISO 8601 time (UTC unless it says otherwise) as epoch seconds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise VaultError(f"{what} {text!r} is not a date/time like 2026-11-27T14:05:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        epoch = moment.timestamp()
    except (OverflowError, ValueError):
        epoch = -1.0
    if not _EARLIEST <= epoch < _LATEST:
        raise VaultError(f"{what} {text!r} is outside 1970 to 9999")
    return epoch


def safe_name(text: str, what: str) -> str:
    """A camera or recording id used as a folder name: refuse anything that could escape."""
    if not isinstance(text, str) or not _SAFE_NAME.fullmatch(text) or ".." in text:
        raise VaultError(f"{what} {text!r} is not a valid name (letters, digits, '-', '_', '.')")
    return text


def refuse_inside(path: str | Path, root: Path, what: str) -> None:
    """An output of the vault (an extraction, its report, a mirror) is never written inside
    the vault, nor around it: it could replace or spoil stored evidence."""
    path, root = Path(path), Path(root).resolve()
    target = path.parent.resolve() / path.name
    if target == root or target.is_relative_to(root) or root.is_relative_to(target):
        raise VaultError(f"{what} {path}: inside the vault {root} (or holding it); write outputs elsewhere")


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

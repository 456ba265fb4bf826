"""An open vault: settings, signing key, journal, register and index together."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path

from drivers.signer import FileSigner
from recorder.errors import VaultError
from tools.vault.index import Index
from tools.vault.journal import VaultJournal
from tools.vault.layout import FORMAT, LOG_RETENTION_DAYS, VaultLayout, VaultLock, safe_name, utc_iso
from tools.vault.register import REGISTERED_EVENTS, Register


class Vault:
    def __init__(self, layout: VaultLayout, settings: dict, clock=time.time):
        self.layout = layout
        self.settings = settings
        self.clock = clock
        self._lock = VaultLock(layout.lock)
        self._lock.__enter__()
        try:
            self.signer = FileSigner(layout.key)
            if self.signer.public_key_hex != settings.get("vault_key"):
                raise VaultError(f"{layout.key}: does not match the vault key in {layout.settings}")
            self.journal = VaultJournal(layout.journal, self.signer)
            self.index = Index(layout.index)
            self._register: Register | None = None
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise

    @classmethod
    def open(cls, root: str | Path, *, clock=time.time) -> Vault:
        layout = VaultLayout(root)
        try:
            settings = json.loads(layout.settings.read_text())
        except FileNotFoundError:
            raise VaultError(f"{layout.root}: not a vault (no {layout.settings.name}); "
                             "create one with `pieton vault init`") from None
        except (OSError, ValueError) as exc:
            raise VaultError(f"{layout.settings}: unreadable: {exc}") from None
        if settings.get("format") != FORMAT:
            raise VaultError(f"{layout.settings}: format {settings.get('format')!r}, expected {FORMAT!r}")
        return cls(layout, settings, clock)

    @property
    def public_key(self) -> bytes:
        return self.signer.public_key

    @property
    def register(self) -> Register:
        if self._register is None:
            self._register = Register(self.settings["register"], self.signer)
        return self._register

    @property
    def retention_days(self) -> int:
        return int(self.settings["retention_days"])

    def now(self) -> float:
        return self.clock()

    def log(self, event: str, **fields) -> dict:
        """One vault-journal entry, stamped with the time and the operator's login."""
        fields.setdefault("operator", _operator())
        line, _ = self.journal.append(event, utc_iso(self.now()), fields)
        return line

    def log_twice(self, event: str, **fields) -> tuple[dict, dict]:
        """A journal entry and its register line, which carries the entry's hash."""
        assert event in REGISTERED_EVENTS, event
        fields.setdefault("operator", _operator())
        register = self.register  # fail before journaling if the register's medium is absent
        line, digest = self.journal.append(event, utc_iso(self.now()), fields)
        reg = register.append({"event": event, "at": line["at"], "journal_seq": line["seq"],
                               "journal_hash": digest, **fields})
        return line, reg

    def prune_logs(self, now: float | None = None) -> list[dict]:
        """Drop journal and register entries past the log retention (3 years), leaving
        signed checkpoints; the writers are reopened on the pruned files."""
        from tools.vault.logs import prune
        now = self.now() if now is None else now
        days = float(self.settings.get("log_retention_days", LOG_RETENTION_DAYS))
        done = []
        self.journal.close()
        try:
            cp = prune(self.layout.journal, self.signer, now, days)
        finally:
            self.journal = VaultJournal(self.layout.journal, self.signer)
        if cp:
            done.append(cp)
        register = Path(self.settings["register"])
        if register.exists():
            if self._register is not None:
                self._register.close()
                self._register = None
            cp = prune(register, self.signer, now, days)
            if cp:
                done.append(cp)
        for cp in done:
            self.log("logs-pruned", log=cp["log"], through_seq=cp["last_seq"], pruned_lines=cp["pruned_lines"],
                     last_pruned_at=cp["last_pruned_at"], keep_days=cp["keep_days"])
        return done

    def enrol(self, camera_id: str, public_key_hex: str) -> dict:
        safe_name(camera_id, "--camera")
        key = public_key_hex.strip().lower()
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise VaultError(f"--key {public_key_hex!r}: expected the device's Ed25519 public key, 64 hex digits")
        previous = self.index.camera_key(camera_id)
        if previous == key:
            raise VaultError(f"camera {camera_id} is already enrolled with this key")
        line = self.log("camera-enrolled", camera=camera_id, device_key=key, replaces=previous)
        self.index.enrol(camera_id, key, line["at"])
        return line

    def close(self) -> None:
        self.journal.close()
        if self._register is not None:
            self._register.close()
        self.index.close()
        self._lock.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"<Vault {self.layout.root} key={self.signer.public_key_hex[:16]}...>"


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"

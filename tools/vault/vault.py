"""An open vault: settings, signing key, journal, register and index together; and
creating one."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from drivers.signer import FileSigner
from recorder.errors import VaultError
from recorder.evidence.chain import write_atomic
from recorder.evidence.format import CAMERA_ID
from recorder.inputs import InputError, expect_object, load_json_file
from recorder.localtime import DEFAULT_ZONE, TimeError, zone
from recorder.retention import RULE
from tools.vault.index import Index
from tools.vault.journal import VaultJournal
from tools.vault.layout import (
    FORMAT,
    LOG_RETENTION_DAYS,
    RECIPIENT,
    SETTINGS,
    VaultLayout,
    VaultLock,
    utc_iso,
)
from tools.vault.logs import prune
from tools.vault.register import REGISTERED_EVENTS, Register


class Vault:
    def __init__(self, layout: VaultLayout, settings: dict, clock=time.time):
        self.layout = layout
        self.settings = settings
        self.clock = clock
        # Who acts: the matricule of the designated person whose identity was given
        # (tools.vault.persons.identify); None for the technical commands no person signs.
        self.operator: str | None = None
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
        if not layout.settings.exists() and not layout.settings.is_symlink():
            raise VaultError(f"{layout.root}: not a vault (no {layout.settings.name}); "
                             "create one with `pieton vault init`")
        return cls(layout, read_settings(layout.settings), clock)

    @property
    def public_key(self) -> bytes:
        return self.signer.public_key

    @property
    def register(self) -> Register:
        if self._register is None:
            self._register = Register(self.settings["register"], self.signer)
        return self._register

    @property
    def notes(self) -> list[str]:
        """What the settings carry that is ignored: said by every command."""
        if "retention_days" not in self.settings:
            return []
        return [f"{self.layout.settings}: 'retention_days' ({str(self.settings['retention_days'])[:20]}) is "
                f"ignored: retention is the law's, not a setting ({RULE}); remove that line"]

    @property
    def timezone(self) -> str:
        """The zone of times typed without one and of printed times (vaults made before
        the setting existed: Europe/Paris)."""
        return self.settings.get("timezone", DEFAULT_ZONE)

    def now(self) -> float:
        return self.clock()

    def log(self, event: str, **fields) -> dict:
        """One vault-journal entry, stamped with the time and its author (never the
        machine's login, which anyone sets); the events the register mirrors go to both."""
        if event in REGISTERED_EVENTS:
            return self.log_twice(event, **fields)[0]
        fields.setdefault("operator", self.operator)
        line, _ = self.journal.append(event, utc_iso(self.now()), fields)
        return line

    def log_twice(self, event: str, **fields) -> tuple[dict, dict]:
        """A journal entry and its register line, which carries the entry's hash."""
        assert event in REGISTERED_EVENTS, event
        fields.setdefault("operator", self.operator)
        register = self.register  # fail before journaling if the register's medium is absent
        line, digest = self.journal.append(event, utc_iso(self.now()), {**fields, "registered": True})
        reg = register.append({"event": event, "at": line["at"], "journal_seq": line["seq"],
                               "journal_hash": digest, **fields})
        return line, reg

    def prune_logs(self, now: float | None = None) -> list[dict]:
        """Drop journal and register entries past the log retention (3 years), leaving
        signed checkpoints; the writers are reopened on the pruned files."""
        now = self.now() if now is None else now
        days = float(self.settings["log_retention_days"])
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
        if not CAMERA_ID.fullmatch(camera_id):  # the one camera-id rule, the spool's
            raise VaultError(f"--camera {camera_id!r}: a camera id is letters, digits, '.' and '-' "
                             "(no '_'), starting with a letter or digit, at most 64 characters")
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


# The author of a vault's creation: no designated person exists yet (R241-12); who installed
# it, when given (`vault init --by`), is recorded beside.
INSTALLATION = "installation"


def init_vault(root: str | Path, recipients: list[str], register: str | Path, *,
               communes: list[str] | None = None, timezone: str = DEFAULT_ZONE, clock=time.time,
               by: str | None = None) -> Path:
    """Create a vault folder; refuses an existing vault or a bad recipient. Returns the
    public key file. No one is designated yet, so its first lines' author is INSTALLATION,
    with ``by`` (who installed it, as they gave it) when given."""
    layout = VaultLayout(root)
    if layout.settings.exists():
        raise VaultError(f"{layout.root}: already a vault (found {SETTINGS}); refusing to overwrite it")
    if not recipients:
        raise VaultError("at least one --recipient (the chief's age public key, 'age1...') is required")
    for r in recipients:
        if not (isinstance(r, str) and RECIPIENT.fullmatch(r)):
            raise VaultError(f"--recipient {r!r} is not an age recipient ('age1' followed by 58 characters)")
    try:
        zone(timezone)
    except TimeError as exc:
        raise VaultError(f"--timezone: {exc}") from None
    if by is not None and not (0 < len(by.strip()) <= 120 and by.isprintable()):
        raise VaultError(f"--by {by[:130]!r}: give the installer's name and role, printable, 1 to 120 characters")
    by = by.strip() if by else None
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
        "register": str(register),
        "log_retention_days": LOG_RETENTION_DAYS, "communes": boundary,
        "vault_key": signer.public_key_hex, "timezone": timezone,
    }
    write_atomic(layout.settings, (json.dumps(settings, indent=2, sort_keys=True) + "\n").encode())
    with Vault.open(layout.root, clock=clock) as vault:
        vault.operator = INSTALLATION
        installer = {"installed_by": by} if by else {}
        entry = vault.log("vault-created", recipients=list(recipients), register=str(register),
                          retention=RULE, timezone=timezone, vault_key=signer.public_key_hex, **installer)
        vault.register.append({"event": "register-opened", "at": entry["at"], "operator": INSTALLATION,
                               **installer, "vault_key": signer.public_key_hex})
    return layout.pub


def read_settings(path: Path) -> dict:
    """vault.json, checked field by field: a vault opened on settings it cannot use would
    fail later, half way through storing or erasing evidence."""
    try:
        settings = expect_object(load_json_file(path, "settings"), str(path))
    except InputError as exc:
        raise VaultError(f"vault settings {exc}") from None
    problems = []
    if settings.get("format") != FORMAT:
        problems.append(f"format {settings.get('format')!r}, expected {FORMAT!r}")
    recipients = settings.get("recipients")
    if not (isinstance(recipients, list) and recipients
            and all(isinstance(r, str) and RECIPIENT.fullmatch(r) for r in recipients)):
        problems.append("'recipients' must be a list of age recipients ('age1...')")
    if not isinstance(settings.get("register"), str) or not settings["register"]:
        problems.append("'register' must be the path of the register file")
    # 'retention_days' of an older vault is ignored (Vault.notes says so): the law
    # sets the retention, and refusing the file would stop the purge the law requires.
    value = settings.get("log_retention_days", LOG_RETENTION_DAYS)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 1 <= value <= 36500:
        problems.append("'log_retention_days' must be a number of days from 1 to 36500")
    key = settings.get("vault_key")
    if not (isinstance(key, str) and len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
        problems.append("'vault_key' must be 64 hex digits")
    communes = settings.get("communes", [])
    if not (isinstance(communes, list) and all(isinstance(c, str) for c in communes)):
        problems.append("'communes' must be a list of file paths")
    tz = settings.get("timezone", DEFAULT_ZONE)
    try:
        if not isinstance(tz, str):
            raise TimeError(f"{tz!r} is not a zone name such as Europe/Paris")
        zone(tz)
    except TimeError as exc:
        problems.append(f"'timezone': {exc}")
    if problems:
        raise VaultError(f"vault settings {path}: " + "; ".join(problems))
    settings.setdefault("log_retention_days", LOG_RETENTION_DAYS)
    settings.setdefault("communes", [])
    settings.setdefault("timezone", DEFAULT_ZONE)
    return settings

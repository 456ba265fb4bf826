"""The health line on every page: last purge, the register's medium, the vault's disk,
cameras not offloaded for a week, the mirror's last check."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from recorder.errors import PietonError
from recorder.evidence.chain import split_pieces
from recorder.localtime import parse_time
from tools.desk.words import local
from tools.vault.authorisation import load as load_authorisation
from tools.vault.logs import DAY
from tools.vault.mirror import registered

DISK_WARNING = 0.90
OFFLOAD_DAYS = 7
MIRROR_DAYS = 7   # a mirror not brought up to date and checked for a week is worth a warning
PURGE_EVENTS = ("purge", "purge-finished", "recording-erased", "quarantine-erased", "logs-pruned")


@dataclass
class Health:
    last_purge: str
    register_present: bool
    disk_used: float
    cameras_late: list[str] = field(default_factory=list)
    mirrors: int = 0                   # mirrors the vault keeps (`pieton vault mirror`)
    mirror_checked: str | None = None  # the last `vault mirror` run, local time
    mirror_problems: int = 0           # what that run found wrong
    mirror_late: bool = False          # never, or more than MIRROR_DAYS ago

    @property
    def disk_warning(self) -> bool:
        return self.disk_used > DISK_WARNING

    @property
    def ok(self) -> bool:
        return self.register_present and not self.disk_warning and not self.cameras_late \
            and not self.mirror_late and not self.mirror_problems


def retired_cameras(vault) -> dict[str, dict]:
    """Cameras taken out of service (`pieton vault retire`), by id: their record (why, when)."""
    try:
        doc = load_authorisation(vault)
    except PietonError:  # unreadable: `vault verify` says so; the page still shows the cameras
        return {}
    return {r["camera"]: r for r in doc.get("retired") or [] if isinstance(r, dict) and isinstance(r.get("camera"), str)}


class HealthCheck:
    """Reads only what the journal gained since the last page (it grows with every action)."""

    def __init__(self):
        self._read = 0               # bytes of the journal read so far (whole lines)
        self._last_purge: str | None = None
        self._last_mirror: dict | None = None

    def _scan(self, journal: Path) -> None:
        try:
            with open(journal, "rb") as f:
                if f.seek(0, 2) < self._read:  # pruned or replaced: read it again
                    self._read, self._last_purge, self._last_mirror = 0, None, None
                f.seek(self._read)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1
        for piece in split_pieces(data[:end]):
            line = piece.line
            if line and line.get("event") in PURGE_EVENTS and isinstance(line.get("at"), str):
                self._last_purge = line["at"]
            elif line and line.get("event") == "mirrored" and isinstance(line.get("at"), str):
                self._last_mirror = line
        self._read += end

    def __call__(self, vault, zone: str | None) -> Health:
        self._scan(vault.layout.journal)
        last = self._last_purge
        register = Path(vault.settings["register"])
        usage = shutil.disk_usage(vault.layout.root)
        now = vault.now()
        late = []
        rows = vault.index.db.execute(
            "SELECT c.camera_id, MAX(r.ingested_at) FROM cameras c LEFT JOIN recordings r "
            "ON r.camera_id = c.camera_id GROUP BY c.camera_id ORDER BY c.camera_id").fetchall()
        retired = retired_cameras(vault)  # out of service: never offloaded again, and rightly
        for camera, last_ingest in rows:
            if camera in retired:
                continue
            if last_ingest is None or now - last_ingest > OFFLOAD_DAYS * DAY:
                late.append(camera)
        health = Health(local(parse_time(last), zone) if last else "jamais",
                        register.parent.is_dir() and register.is_file(),
                        usage.used / usage.total if usage.total else 0.0, late)
        try:
            health.mirrors = len(registered(vault))
        except PietonError:
            health.mirrors, health.mirror_problems = 1, 1  # mirrors.json unreadable: said, never hidden
        checked = self._last_mirror
        if checked is not None:
            at = parse_time(checked["at"])
            health.mirror_checked = local(at, zone)
            health.mirror_problems += len(checked.get("problems") or [])
            health.mirror_late = now - at > MIRROR_DAYS * DAY
        else:
            health.mirror_late = health.mirrors > 0
        return health

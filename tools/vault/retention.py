"""Retention: recordings are erased after the configured period, unless held for a
procedure; every erasure, hold and release is journaled."""

from __future__ import annotations

from dataclasses import dataclass, field

from recorder.errors import VaultError
from recorder.localtime import format_local
from tools.vault.layout import remove_tree, utc_iso
from tools.vault.logs import DAY
from tools.vault.mirror import purge_mirrors
from tools.vault.vault import Vault


@dataclass
class PurgeReport:
    erased: list[str] = field(default_factory=list)
    held: list[tuple[str, list[str]]] = field(default_factory=list)  # due, but under a hold
    kept: int = 0
    pruned: list[dict] = field(default_factory=list)  # log checkpoints written
    quarantine_erased: list[str] = field(default_factory=list)
    mirror_erased: list[str] = field(default_factory=list)      # "DEST: ID", the same day as the vault
    mirrors_unreachable: list[str] = field(default_factory=list)


def purge(vault: Vault, now: float | None = None) -> PurgeReport:
    """Erase every stored recording older than the retention and not held."""
    now = vault.now() if now is None else now
    limit = vault.retention_days * DAY
    report = PurgeReport()
    for row in vault.index.recordings(state="stored"):
        if now - row.retention_base < limit:
            report.kept += 1
            continue
        holds = vault.index.holds(row.recording_id)
        if holds:
            report.held.append((row.recording_id, holds))
            continue
        folder = vault.layout.recording(row.camera_id, row.recording_id)
        # Journal first: a crash after it and before the removal is finished by the next purge.
        vault.log("recording-erased", recording=row.recording_id, camera=row.camera_id,
                  retention_days=vault.retention_days,
                  counted_from="recording" if row.clock_synchronised else "ingest",
                  counted_from_time=utc_iso(row.retention_base), last_hash=row.last_hash)
        remove_tree(folder)
        vault.index.mark_purged(row.recording_id, now)
        report.erased.append(row.recording_id)
    for folder, rid, camera, at, _problems in vault.index.quarantined():
        # The camera keeps its own copy of what failed (no receipt covers it); the vault's
        # copy is personal data like any recording and goes after the same period.
        path = vault.layout.root / folder
        if now - at < limit or not path.exists():
            continue
        vault.log("quarantine-erased", recording=rid, camera=camera, folder=folder,
                  retention_days=vault.retention_days, quarantined_at=utc_iso(at))
        remove_tree(path)
        report.quarantine_erased.append(folder)
    # Mirrors follow the vault the same day: what it no longer stores goes from them too.
    report.mirror_erased, report.mirrors_unreachable = purge_mirrors(vault)
    report.pruned = vault.prune_logs(now)
    return report


def hold(vault: Vault, recording_id: str, procedure: str) -> dict:
    procedure = (procedure or "").strip()
    if not procedure:
        raise VaultError("--procedure REF is required: the reference of the procedure the recording is held for")
    row = _stored(vault, recording_id)
    if procedure in vault.index.holds(recording_id):
        raise VaultError(f"{recording_id} is already held for procedure {procedure!r}")
    line = vault.log("hold", recording=recording_id, camera=row.camera_id, procedure=procedure)
    vault.index.add_hold(recording_id, procedure, vault.now())
    return line


def release(vault: Vault, recording_id: str, procedure: str) -> dict:
    procedure = (procedure or "").strip()
    row = _stored(vault, recording_id)
    if procedure not in vault.index.holds(recording_id):
        held = ", ".join(vault.index.holds(recording_id)) or "none"
        raise VaultError(f"{recording_id} is not held for procedure {procedure!r} (holds: {held})")
    line = vault.log("release", recording=recording_id, camera=row.camera_id, procedure=procedure)
    vault.index.release(recording_id, procedure)
    return line


def _stored(vault: Vault, recording_id: str):
    row = vault.index.recording(recording_id)
    if row is None:
        raise VaultError(f"recording {recording_id!r} is not in this vault")
    if row.state != "stored":
        raise VaultError(f"recording {recording_id} was erased on {format_local(row.purged_at or 0, vault.timezone)}")
    return row


def retention_end(vault: Vault, row, *, quarantined_at: float | None = None) -> float:
    """When a stored recording (or a quarantined copy) falls due for erasure, as purge counts it."""
    base = quarantined_at if row is None else row.retention_base
    return base + vault.retention_days * DAY

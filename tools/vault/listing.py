"""`pieton vault list`: what the vault holds, from its index only. Nothing is decrypted,
no identity is needed; it is journaled as a listing, not as an access request (R241-14:
only searches that look inside recordings are counted)."""

from __future__ import annotations

from dataclasses import dataclass, field

from recorder.errors import VaultError
from tools.vault.layout import utc_iso
from tools.vault.retention import retention_end, retention_ends
from tools.vault.vault import Vault


@dataclass
class Listed:
    camera: str
    recording: str
    start: float | None
    end: float | None
    duration_s: float | None
    retention_end: float
    holds: list[str] = field(default_factory=list)
    quarantine: str | None = None   # when the entry is a quarantined copy: its folder


def list_recordings(vault: Vault, *, camera: str | None = None, since: float | None = None,
                    until: float | None = None) -> list[Listed]:
    if since is not None and until is not None and until <= since:
        raise VaultError("--to must be after --from")
    listed = []
    rows = vault.index.recordings(camera=camera)
    ends = retention_ends(vault, rows)
    for row in rows:
        start, end = row.span
        if (until is not None and start >= until) or (since is not None and end < since):
            continue
        known_end = row.ended_at
        listed.append(Listed(row.camera_id, row.recording_id, row.started_at, known_end,
                             round(known_end - row.started_at, 1)
                             if known_end is not None and row.started_at is not None else None,
                             ends[row.recording_id], vault.index.holds(row.recording_id)))
    for folder, rid, cam, at, _problems in vault.index.quarantined():
        if (camera is not None and cam != camera) or not (vault.layout.root / folder).exists():
            continue
        if (since is not None and at < since) or (until is not None and at >= until):
            continue
        listed.append(Listed(cam, rid, None, None, None, retention_end(vault, None, quarantined_at=at),
                             quarantine=folder))
    vault.log("listing", camera=camera, period=[utc_iso(since) if since is not None else None,
                                                utc_iso(until) if until is not None else None],
              listed=len(listed))
    return listed

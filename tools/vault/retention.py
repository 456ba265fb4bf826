"""Retention in the vault (R241-13): a recording is kept one calendar month from the local
day it was made (``recorder.retention``, in the vault's zone), then erased, except what a
procedure holds; a hold is placed before that end, with the procedure's reference. Past
its end a recording is neither extracted, consulted nor held, even before the purge has
run (a recording held in time stays extractable for its procedure). It is not a setting.
Every erasure, hold, release and refusal is journaled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recorder.errors import VaultError
from recorder.localtime import format_local
from recorder.retention import RULE
from recorder.retention import retention_end as rule_end
from tools.vault.dating import dated_row, dated_rows
from tools.vault.layout import remove_tree, utc_iso
from tools.vault.mirror import purge_mirrors
from tools.vault.vault import Vault


class PastRetention(VaultError):
    """A recording past its retention asked for (extraction, consultation, hold)."""


@dataclass
class PurgeReport:
    erased: list[str] = field(default_factory=list)
    held: list[tuple[str, list[str]]] = field(default_factory=list)  # due, but under a hold
    kept: int = 0
    pruned: list[dict] = field(default_factory=list)  # log checkpoints written
    quarantine_erased: list[str] = field(default_factory=list)
    mirror_erased: list[str] = field(default_factory=list)      # "DEST: ID", the same day as the vault
    mirrors_unreachable: list[str] = field(default_factory=list)
    ends: dict[str, float] = field(default_factory=dict)   # recording (erased or held) -> end of its retention
    next_end: tuple[str, float] | None = None              # the next recording to fall due, and when


def purge(vault: Vault, now: float | None = None) -> PurgeReport:
    """Erase every stored recording past its retention and not held, and every quarantined
    copy past the retention counted from when the vault first saw it."""
    now = vault.now() if now is None else now
    report = PurgeReport()
    rows = vault.index.recordings(state="stored")
    dates = dated_rows(vault, rows)
    for row in rows:
        dated = dates[row.recording_id]
        end = rule_end(dated.counted_from, vault.timezone)
        if now < end:
            report.kept += 1
            if report.next_end is None or end < report.next_end[1]:
                report.next_end = (row.recording_id, end)
            continue
        report.ends[row.recording_id] = end
        holds = vault.index.holds(row.recording_id)
        if holds:
            report.held.append((row.recording_id, holds))
            continue
        folder = vault.layout.recording(row.camera_id, row.recording_id)
        # Journal first: a crash after it and before the removal is finished by the next purge.
        vault.log("recording-erased", recording=row.recording_id, camera=row.camera_id, rule=RULE,
                  counted_from=utc_iso(dated.counted_from), dated_by=dated.dated_by,
                  retention_end=utc_iso(end), last_hash=row.last_hash)
        remove_tree(folder)
        vault.index.mark_purged(row.recording_id, now)
        report.erased.append(row.recording_id)
    for folder, rid, camera, at, _problems in vault.index.quarantined():
        # The camera keeps its own copy of what failed (no receipt covers it); the vault's
        # copy is personal data like any recording and goes after the same period.
        path = vault.layout.root / folder
        end = rule_end(at, vault.timezone)
        if now < end or not path.exists():
            continue
        vault.log("quarantine-erased", recording=rid, camera=camera, folder=folder, rule=RULE,
                  first_seen=utc_iso(at), retention_end=utc_iso(end))
        remove_tree(path)
        report.quarantine_erased.append(folder)
    # Mirrors follow the vault the same day: what it no longer stores goes from them too.
    report.mirror_erased, report.mirrors_unreachable = purge_mirrors(vault)
    report.pruned = vault.prune_logs(now)
    return report


def retention_end(vault: Vault, row, *, quarantined_at: float | None = None) -> float:
    """When a stored recording (or a quarantined copy first seen at ``quarantined_at``)
    falls due for erasure, as purge counts it."""
    base = quarantined_at if row is None else dated_row(vault, row).counted_from
    return rule_end(base, vault.timezone)


def retention_ends(vault: Vault, rows: list) -> dict[str, float]:
    """recording id -> when each of ``rows`` falls due, each camera's recordings dated once."""
    return {rid: rule_end(dated.counted_from, vault.timezone) for rid, dated in dated_rows(vault, rows).items()}


def within_retention(vault: Vault, row, what: str, *, purpose: str | None = None) -> None:
    """Refuse ``what`` (extraction, consultation, hold) of a recording past its retention,
    even before the purge has run. One held before its end stays usable for its procedure, not
    for training."""
    end = retention_end(vault, row)
    if vault.now() < end:
        return
    holds = vault.index.holds(row.recording_id)
    if holds and what != "hold" and purpose != "training":
        return
    if what == "hold":
        why = "a hold is placed before the end of the retention"
    elif holds:
        why = f"held for {', '.join(holds)}: past its retention it serves that procedure, not training"
    else:
        why = "no procedure held it before that end; it is erased at the next purge"
    raise PastRetention(f"{what} of recording {row.recording_id} refused: its retention ended on "
                        f"{format_local(end, vault.timezone)} ({RULE}); {why}")


def hold(vault: Vault, recording_id: str, procedure: str) -> dict:
    procedure = (procedure or "").strip()
    if not procedure:
        raise VaultError("--procedure REF is required: the reference of the procedure the recording is held for")
    row = _stored(vault, recording_id)
    if procedure in vault.index.holds(recording_id):
        raise VaultError(f"{recording_id} is already held for procedure {procedure!r}")
    try:
        within_retention(vault, row, "hold")
    except PastRetention as exc:
        vault.log("hold-refused", recording=recording_id, camera=row.camera_id, procedure=procedure,
                  reason=str(exc)[:500])
        raise
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
        raise VaultError(f"recording {recording_id!r} is not in this vault (`pieton vault list` shows the ids it holds)")
    if row.state != "stored":
        raise VaultError(f"recording {recording_id} was erased on {format_local(row.purged_at or 0, vault.timezone)}")
    return row

"""What a recording's retention counts from in the vault, and what ingest learns about
recordings the camera erased itself.

A stored recording is dated by the camera's own rule (``recorder.retention.Dating``): its
signed start when its clock was synchronised, else the signed start of the last earlier
recording of the same camera (by its signed number) whose clock was: the recordings the
vault holds or erased, and those the camera erased after their retention (its signed
``recording erased`` lines). Only with nothing synchronised before it does the vault count
from the recording's ingest, the one time it knows then. A quarantined copy counts from
the first time the vault saw that recording, whatever later offloads bring.
"""

from __future__ import annotations

from recorder.errors import VaultError
from recorder.evidence.chain import split_pieces
from recorder.evidence.format import JOURNAL_FILE, RECORDING_ERASED, RECORDING_ID
from recorder.evidence.sequence import journal_seq
from recorder.retention import OWN_START, Dated, Dating
from tools.vault.index import RecordingRow
from tools.vault.layout import parse_time
from tools.vault.vault import Vault

FROM_INGEST = "ingest (no synchronised recording before it)"
ERASED_ON_CAMERA = "recording-erased-on-camera"


def dated_rows(vault: Vault, rows: list[RecordingRow]) -> dict[str, Dated]:
    """recording id -> what its retention counts from, for each of ``rows``; each camera's
    recordings are walked once, in the order of their signed numbers."""
    dated: dict[str, Dated] = {}
    for camera in sorted({r.camera_id for r in rows}):
        dated.update(_walk(vault, camera))
    result = {}
    for row in rows:
        found = dated.get(row.recording_id)
        if found is None:  # no signed number to place it: its own start, when synchronised
            found = Dating().date(row.recording_id, row.started_at, row.clock_synchronised)
        result[row.recording_id] = found if found.counted_from is not None else Dated(row.ingested_at, FROM_INGEST)
    return result


def dated_row(vault: Vault, row: RecordingRow) -> Dated:
    return dated_rows(vault, [row])[row.recording_id]


def _walk(vault: Vault, camera: str) -> dict[str, Dated]:
    steps: list[tuple[int, str, float | None, bool]] = []
    for row in vault.index.recordings(state=None, camera=camera):
        if row.device_seq is not None:
            steps.append((row.device_seq, row.recording_id, row.started_at, row.clock_synchronised))
    for rid, seq, counted_from in vault.index.camera_erasures(camera):
        if seq is not None and counted_from is not None:
            steps.append((seq, rid, counted_from, True))
    dating = Dating()
    return {rid: dating.date(rid, start, synced) for _seq, rid, start, synced in sorted(steps)}


def quarantine_first_seen(vault: Vault, camera: str, recording_id: str) -> float:
    """When the vault first quarantined this recording of this camera (now, the first time):
    a copy offloaded again keeps that date, so re-ingest never extends its retention."""
    seen = [at for _folder, rid, cam, at, _problems in vault.index.quarantined()
            if rid == recording_id and cam == camera and isinstance(at, int | float)]
    return min(seen, default=vault.now())


def learn_camera_erasures(vault: Vault, camera: str, device_journal: list[dict]) -> list[str]:
    """Recordings the camera erased after their retention, from its signed ``recording
    erased`` lines (``device_journal`` holds only lines its key signed): each is journaled
    and registered once as erased on the camera, so it is not reported missing."""
    known = {rid for rid, _seq, _at in vault.index.camera_erasures(camera)}
    learnt = []
    for line in device_journal:
        data = line.get("data")
        if line.get("event") != RECORDING_ERASED or not isinstance(data, dict):
            continue
        rid = data.get("recording_id")
        name = RECORDING_ID.fullmatch(rid) if isinstance(rid, str) else None
        if name is None or name["camera"] != camera or rid in known:
            continue
        counted = _time(data.get("counted_from")) if data.get("dated_by") == OWN_START else None
        seq = journal_seq(line)
        vault.log_twice(ERASED_ON_CAMERA, recording=rid, camera=camera, device_seq=seq,
                        erased_at=_text(line.get("time")), reason=_text(data.get("reason")),
                        counted_from=_text(data.get("counted_from")), dated_by=_text(data.get("dated_by")),
                        retention_end=_text(data.get("retention_end")), last_hash=_text(data.get("last_line_hash")),
                        held_in_vault=vault.index.recording(rid) is not None)
        vault.index.add_camera_erasure(rid, camera, seq, counted, vault.now())
        known.add(rid)
        learnt.append(rid)
    return learnt


def journal_camera(spool) -> str | None:
    """The one camera a spool's device journal names, for a spool without any recording
    left (the camera erased them all after their retention): its erasures are still learnt.
    Nothing here is trusted: the journal is checked against that camera's pinned key next."""
    if not spool.exists(JOURNAL_FILE):
        return None
    try:
        data = spool.read(JOURNAL_FILE, "journal")
    except VaultError:
        return None   # a link, a special file, too large: the ingest says so when it reads it
    named = set()
    for piece in split_pieces(data):
        line = piece.line if isinstance(piece.line, dict) else {}
        data = line.get("data") if isinstance(line.get("data"), dict) else {}
        rid = data.get("recording_id")
        match = RECORDING_ID.fullmatch(rid) if isinstance(rid, str) else None
        if match:
            named.add(match["camera"])
    return named.pop() if len(named) == 1 else None


def _text(value) -> str | None:
    """A value of the camera's line, copied into the vault's logs: short text only."""
    return value[:100] if isinstance(value, str) else None


def _time(value) -> float | None:
    try:
        return parse_time(value) if isinstance(value, str) else None
    except VaultError:  # an odd time dates nothing
        return None

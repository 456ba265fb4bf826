"""The camera's device journal at ingest: copying it from the spool (it must verify and
only ever grow), its signed lines, and the check that every recording number the camera
used is on the camera or in the vault."""

from __future__ import annotations

import os

from recorder.errors import PietonError, VaultError
from recorder.evidence.chain import fsync_dir, signature_valid
from recorder.evidence.format import (
    JOURNAL_CONTEXT,
    JOURNAL_FILE,
    MAX_RECORDING_SEQ,
    RECORDING_ERASED,
    parse_recording_id,
)
from recorder.evidence.journal import read_journal
from recorder.evidence.sequence import describe_range, journal_seq, missing_ranges, recording_seq
from tools.vault.layout import utc_iso
from tools.vault.spool_read import Listing, SpoolReader
from tools.vault.vault import Vault

MAX_SEQ = MAX_RECORDING_SEQ + 1
MAX_GAPS = 100      # gaps listed one by one (as ranges) in a report and the journal


def offload_journal(vault: Vault, spool: SpoolReader, camera: str, key_hex: str | None) -> list[str]:
    """Copy the device journal; it must verify and only ever grow. Returns its problems
    (each journaled); the vault's copy is replaced only by one that passes."""
    where = spool.path / JOURNAL_FILE
    if not spool.exists(JOURNAL_FILE):
        problems = [f"{where}: the device journal is missing"]
        vault.log("device-journal-problem", camera=camera, problems=problems)
        return problems
    try:
        data = spool.read(JOURNAL_FILE, "journal")
    except VaultError as exc:  # a link, a special file, too large: not read, not stored
        vault.log("device-journal-problem", camera=camera, problems=[str(exc)])
        return [str(exc)]
    if key_hex is None:
        return []  # the recordings are quarantined for the unknown camera; nothing to pin against
    staged = vault.layout.incoming / f"{camera}.journal.jsonl"
    staged.write_bytes(data)
    try:
        problems = list(read_journal(staged, bytes.fromhex(key_hex)).problems)
    except Exception as exc:  # noqa: BLE001 - hostile content: the journal is refused, not the ingest
        problems = [f"cannot be read ({type(exc).__name__}: {str(exc)[:300]})"]
    dest = vault.layout.device_journal(camera)
    if dest.is_file():
        old = dest.read_bytes()
        if not data.startswith(old):
            problems.append("the device journal does not extend the copy the vault holds "
                            "(lines removed or rewritten on the camera); the previous copy is kept")
    if problems:
        vault.log("device-journal-problem", camera=camera, problems=problems[:50])
        if dest.is_file():
            keep = dest.with_name(f"journal.rejected-{utc_iso(vault.now()).replace(':', '')}.jsonl")
            os.replace(staged, keep)
            return [f"{JOURNAL_FILE}: {p}" for p in problems]
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, dest)
    fsync_dir(dest.parent)
    return [f"{JOURNAL_FILE}: {p}" for p in problems]


def device_journal_lines(vault: Vault, camera: str, key_hex: str | None) -> list[dict]:
    """The lines of the vault's copy of the camera's device journal that the camera's key
    signed: unsigned lines never steer what the vault concludes."""
    path = vault.layout.device_journal(camera)
    if key_hex is None or not path.is_file():
        return []
    key = bytes.fromhex(key_hex)
    try:
        chain = read_journal(path, key)
    except (PietonError, OSError, ValueError, RecursionError):
        return []
    return [line for line in chain.lines if signature_valid(line, JOURNAL_CONTEXT, key)]


def journal_endings(device_journal: list[dict]) -> dict[str, str]:
    """recording id -> the last manifest line the device journal says it ended with (its
    latest ``recording closed`` or ``recording recovered`` entry)."""
    endings: dict[str, str] = {}
    for line in device_journal:
        data = line.get("data") or {}
        if line.get("event") in ("recording closed", "recording recovered") and data.get("last_line_hash"):
            endings[str(data.get("recording_id"))] = data["last_line_hash"]
    return endings


def check_sequence(vault: Vault, listing: Listing, camera: str, device_journal: list[dict]) -> list[str]:
    """Every recording number the camera used must be in the spool or the vault. How far
    the numbers go comes only from signed lines (the recordings' own, as the index holds
    them, and the device journal's signed lines); names on the spool or in quarantine only
    say what is present. Gaps are reported as ranges, at most MAX_GAPS of them."""
    signed: set[int] = set()
    for row in vault.index.recordings(state=None, camera=camera):
        if recording_seq(row.device_seq) is not None:
            signed.add(row.device_seq)
    present = set(signed) | {seq for seq, _name in listing.recordings}
    for _folder, rid, cam, *_ in vault.index.quarantined():
        name = parse_recording_id(rid)
        if name and cam == camera:
            present.add(name.seq)
    named: dict[int, str] = {}
    for line in device_journal:
        seq = journal_seq(line)
        if str(line.get("event", "")).startswith("recording ") and seq is not None:
            rid = line["data"].get("recording_id")
            named[seq] = rid if isinstance(rid, str) else f"{camera} recording #{seq}"
            if line.get("event") == RECORDING_ERASED:
                present.add(seq)  # erased on the camera after its retention: accounted for, not missing
    gaps = missing_ranges(present, max([*signed, *named], default=-1))
    missing = [describe_range(first, last, named, camera) for first, last in gaps[:MAX_GAPS]]
    if len(gaps) > MAX_GAPS:
        missing.append(f"{camera}: {len(gaps) - MAX_GAPS} more gap(s) in the sequence")
    if missing:
        vault.log("recordings-missing", camera=camera, recordings=missing,
                  reason="in the camera's sequence but neither on the camera nor in the vault")
    return missing

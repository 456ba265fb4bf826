"""Erasure on the camera after the retention, and the offload warning before it (R241-13).

A recording still on the camera (no vault receipt freed it) is erased once it is past its
retention (``recorder.retention``: one calendar month from the local day), but only while
the camera's clock is synchronised: an unsynchronised clock could be months ahead, so then
the recording is kept and the status says why. Each erasure is journaled first with a
signed ``recording erased`` line naming the recording, its sequence number, its last
manifest line's hash and the reason, so the vault can tell "erased on the camera" from
"missing"; then the folder goes. A cut between the two leaves a folder the next sweep
erases again (a second line for the same recording, never a recording gone unsaid).

A recording is counted from its own signed start when its clock was synchronised;
otherwise from the signed start of the last earlier recording still on the camera whose
clock was (the rule the vault applies with the journal); with neither it cannot be dated,
is never erased by age, and the status lists it. From ``[storage] offload_warning_days``
a recording not yet offloaded shows in the status and by a pattern at arming.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from recorder.evidence.chain import SCAN_WINDOW, fsync_dir, line_hash, signature_valid, windows_from_end
from recorder.evidence.format import (
    ENDINGS,
    MANIFEST_CONTEXT,
    MANIFEST_FILE,
    RECORDING_ERASED,
    parse_utc,
    utc_iso,
)
from recorder.evidence.sequence import first_line, signed_opened_seq
from recorder.retention import RULE, Dating, is_past_retention, retention_end, synchronised

DAY_S = 86400.0


@dataclass(frozen=True)
class Held:
    """A finished recording still on the camera, and the time its retention counts from."""

    recording_id: str
    seq: int
    folder: Path
    counted_from: float | None     # None: it cannot be dated (no synchronised start at or before it)
    dated_by: str                  # "own start", "start of <earlier recording id>", or "undated"
    last_line_hash: str | None


@dataclass
class Sweep:
    """What one pass found: ids erased, kept past retention (and why), undated, and due
    for offload (older than the warning age, or undated, or kept past retention)."""

    erased: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    kept_because: str = ""
    undated: list[str] = field(default_factory=list)
    offload_due: list[str] = field(default_factory=list)

    def status(self) -> dict:
        """For `pieton ctl status`: counts only, nothing personal."""
        status = {"offload_due": len(self.offload_due)}
        if self.kept:
            status.update(kept_past_retention=len(self.kept), kept_because=self.kept_because)
        if self.undated:
            status["undated"] = len(self.undated)
        return status


def _ended_hash(path: Path, key: bytes) -> str | None:
    """The hash of the manifest's last line when it is a signed ``closed`` or ``recovered``
    line; None for a recording still open or with an unsigned line after its end."""
    try:
        for pieces in windows_from_end(path, SCAN_WINDOW):
            for piece in reversed(pieces):
                if piece.line is None:
                    continue
                if piece.line.get("event") in ENDINGS and signature_valid(piece.line, MANIFEST_CONTEXT, key):
                    return line_hash(piece.raw)
                return None
    except OSError:
        pass
    return None


def held_recordings(spool) -> list[Held]:
    """The finished recordings in the spool, in sequence order, with what dates them."""
    key = spool.signer.public_key
    held: list[Held] = []
    dating = Dating()   # the rule the vault applies too
    current = spool.current.path if spool.current is not None and spool.current.state != "closed" else None
    for folder in spool.recordings():
        seq = signed_opened_seq(folder, key)
        start, synced = None, False
        if seq is not None:
            opened = first_line(folder / MANIFEST_FILE) or {}
            try:
                start = parse_utc(opened.get("started_at"))
                synced = synchronised(opened.get("clock_source"))
            except ValueError:
                start = None
        dated = dating.date(folder.name, start, synced)
        if folder == current or seq is None:
            continue   # being written; or no signed start: the vault's verifier judges it
        ended = _ended_hash(folder / MANIFEST_FILE, key)
        if ended is None:
            continue
        held.append(Held(folder.name, seq, folder, dated.counted_from, dated.dated_by, ended))
    return held


def sweep(spool, now: float, *, synchronised: bool, zone: str | None, warning_days: int,
          erase: bool = True) -> Sweep:
    """Erase what is past its retention (only with a synchronised clock, only when
    ``erase``: never during a recording) and list what is due for offload."""
    found = Sweep()
    for rec in held_recordings(spool):
        if rec.counted_from is None:
            found.undated.append(rec.recording_id)
            found.offload_due.append(rec.recording_id)
        elif is_past_retention(rec.counted_from, now, zone):
            if synchronised and erase:
                erase_recording(spool, rec, zone)
                found.erased.append(rec.recording_id)
            else:
                found.kept.append(rec.recording_id)
                found.offload_due.append(rec.recording_id)
                found.kept_because = ("clock not synchronised: kept until it is" if not synchronised
                                      else "a recording is running: erased after it")
        elif now - rec.counted_from >= warning_days * DAY_S:
            found.offload_due.append(rec.recording_id)
    return found


def erase_recording(spool, rec: Held, zone: str | None) -> None:
    """Journal the erasure (signed), then remove the folder."""
    size = sum(p.stat().st_size for p in rec.folder.iterdir() if p.is_file())
    spool.journal.append(RECORDING_ERASED, {
        "recording_id": rec.recording_id, "recording_seq": rec.seq, "last_line_hash": rec.last_line_hash,
        "reason": "retention", "rule": RULE, "counted_from": utc_iso(rec.counted_from),
        "dated_by": rec.dated_by, "retention_end": utc_iso(retention_end(rec.counted_from, zone)),
        "offloaded": False, "bytes": size})
    shutil.rmtree(rec.folder)
    fsync_dir(rec.folder.parent)

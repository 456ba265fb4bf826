"""Verifying a whole spool: the device journal against the recordings in it.

Every recording the camera numbered must be in the spool, or accounted for by a line the
device key signed: space freed on a vault receipt, or erased after the retention. A
removed journal fails (the recordings are still each verified); a journal that does not
say how a recording ended fails; numbers no folder and no journal entry accounts for are
reported as ranges. Only signed lines count: an unsigned one accounts for nothing.
"""

from __future__ import annotations

from pathlib import Path

from recorder.errors import VerificationError
from recorder.evidence.chain import read_chain, signature_valid
from recorder.evidence.format import GONE_EVENTS, JOURNAL_CONTEXT, JOURNAL_FILE
from recorder.evidence.sequence import describe_range, journal_endings, journal_seq, missing_ranges
from recorder.evidence.verify import Problem, RecordingReport, parse_device_key


def _spool_key(device_key: bytes | None, recordings: list[RecordingReport]) -> bytes | None:
    """The key a spool's journal is checked against: the pinned one, else the one key
    every verified recording of the spool names."""
    if device_key is not None:
        return device_key
    named = {r.device_key for r in recordings if r.ok and r.device_key}
    if len(named) == 1:
        try:
            return parse_device_key(named.pop())
        except VerificationError:
            return None
    return None


def verify_journal(spool_dir: str | Path, device_key: bytes | None,
                   recordings: list[RecordingReport]) -> tuple[list[Problem], list[str]]:
    """The device journal of a spool: its chain and signatures, that every recording folder
    given is one the journal saw opened, and that every recording the journal or the
    sequence knows and the spool lacks is accounted for by a signed line (space freed on
    a vault receipt, or erased after the retention). Returns (problems, notes)."""
    spool_dir = Path(spool_dir)
    problems: list[Problem] = []
    notes: list[str] = []
    key = _spool_key(device_key, recordings)
    report = read_chain(spool_dir / JOURNAL_FILE, JOURNAL_CONTEXT, key)
    journal_missing = report.problems == ["missing"]
    for p in report.problems:
        if journal_missing:
            p = "missing: the device journal was removed, nothing accounts for the spool's recordings"
        problems.append(Problem(spool_dir.name, JOURNAL_FILE, p))
    if device_key is None:
        notes.append(f"{JOURNAL_FILE}: device key not pinned, " +
                     ("checked against the key the recordings name" if key else "signatures not checked"))
    # Only lines the device key signed account for anything.
    signed = [line for line in report.lines if key is not None and signature_valid(line, JOURNAL_CONTEXT, key)]
    seen: dict[str, int | None] = {}
    gone: set[str] = set()
    gone_seqs: set[int] = set()
    top = -1
    for line in signed:
        data = line.get("data") if isinstance(line.get("data"), dict) else {}
        rid, seq = data.get("recording_id"), journal_seq(line)
        if seq is not None:
            top = max(top, seq)
        if not isinstance(rid, str):
            continue
        if str(line.get("event", "")).startswith("recording "):
            seen.setdefault(rid, seq)
        if line.get("event") in GONE_EVENTS:
            gone.add(rid)
            if seq is not None:
                gone_seqs.add(seq)
    given = {rec.recording for rec in recordings}
    endings = journal_endings(signed)
    for rec in recordings if not journal_missing else ():
        if rec.recording not in seen:
            problems.append(Problem(rec.recording, JOURNAL_FILE, "recording not in the device journal"))
        elif rec.last_line_hash and endings.get(rec.recording) != rec.last_line_hash:
            problems.append(Problem(rec.recording, JOURNAL_FILE, "the device journal does not say it ended with its "
                                    "last manifest line (journal lines removed, or manifest lines added)"))
    for rid in sorted(set(seen) - given - gone):
        problems.append(Problem(rid, JOURNAL_FILE, "in the device journal but not in the spool, and no signed "
                                                   "line frees or erases it (deleted from the card?)"))
    freed = sorted(gone - given)
    if freed:
        notes.append(f"{JOURNAL_FILE}: {len(freed)} recording(s) freed after a vault receipt or erased after "
                     f"the retention: {', '.join(freed[:5])}{' ...' if len(freed) > 5 else ''}")
    # Numbers the device signed that no folder and no journal entry accounts for.
    camera = next((r.camera_id for r in recordings if r.camera_id), spool_dir.name)
    verified = [r.recording_seq for r in recordings if r.ok and isinstance(r.recording_seq, int)]
    top = max([top, *verified])
    present = {*verified, *gone_seqs, *(s for s in seen.values() if s is not None)}
    for first, last in missing_ranges(present, top):
        problems.append(Problem(describe_range(first, last, {}, camera), JOURNAL_FILE,
                                "missing: numbered by the camera, neither in the spool nor in its journal"))
    return problems, notes

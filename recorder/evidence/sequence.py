"""A camera's recording sequence, read only from what its key signed.

The device numbers its recordings 0, 1, 2, ... and never reuses a number. At every start
it finds the highest number it used again, and the vault and the verifier find which
numbers are missing. Folder names and unsigned lines are not evidence: anyone holding the
card can make a folder ``CAM_..._999999999`` or append a line to the journal, so a number
counts only when a line signed by the device key states it (the journal's recording
entries, a manifest's ``opened`` line). Missing numbers are reported as ranges, so one
forged number costs one entry, not a billion.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from recorder.evidence.chain import SCAN_WINDOW, line_hash, signature_valid, split_pieces, windows_from_end
from recorder.evidence.format import (
    JOURNAL_CONTEXT,
    JOURNAL_FILE,
    MANIFEST_CONTEXT,
    MANIFEST_FILE,
    MAX_RECORDING_SEQ,
    OPENED,
    RECORDING_CLOSED,
    RECORDING_RECOVERED,
    parse_recording_id,
)
from recorder.inputs import LIMITS


def recording_seq(value) -> int | None:
    """``value`` as a recording sequence number, or None when it cannot be one."""
    return value if type(value) is int and 0 <= value <= MAX_RECORDING_SEQ else None


def journal_seq(line: dict | None) -> int | None:
    """The recording number a journal line's public data names, if any."""
    data = line.get("data") if isinstance(line, dict) else None
    return recording_seq(data.get("recording_seq")) if isinstance(data, dict) else None


@dataclass
class SequenceState:
    """The highest recording number the device signed, and the hash of that recording's
    last manifest line when known (the next recording's ``opened`` line names it)."""

    last_seq: int = -1
    last_hash: str | None = None

    @property
    def next_seq(self) -> int:
        return self.last_seq + 1


def first_line(path: Path) -> dict | None:
    """The first well-formed chain line of a file, reading at most one line's bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(LIMITS["line"] + 1)
    except OSError:
        return None
    pieces = split_pieces(head.split(b"\n", 1)[0]) if b"\n" in head else []
    return pieces[0].line if pieces else None


def last_signed_hash(path: Path, key: bytes) -> str | None:
    """The hash of the last manifest line signed by ``key`` (a line added after it by
    someone else is not the recording's end)."""
    try:
        for pieces in windows_from_end(path, SCAN_WINDOW):
            for piece in reversed(pieces):
                if piece.line is not None and signature_valid(piece.line, MANIFEST_CONTEXT, key):
                    return line_hash(piece.raw)
    except OSError:
        pass
    return None


def signed_opened_seq(folder: Path, key: bytes) -> int | None:
    """The folder's recording number when its manifest starts with an ``opened`` line
    signed by ``key`` that names this folder and this number."""
    name = parse_recording_id(folder.name)
    line = first_line(folder / MANIFEST_FILE)
    if name is None or line is None or line.get("event") != OPENED:
        return None
    if line.get("recording_id") != folder.name or recording_seq(line.get("recording_seq")) != name.seq:
        return None
    return name.seq if signature_valid(line, MANIFEST_CONTEXT, key) else None


def signed_state(spool_dir: str | Path, key: bytes, folders: Iterable[tuple[int, Path]] = ()) -> SequenceState:
    """The device's sequence state from its signed lines: the journal's recording entries,
    then the ``opened`` line of any recording folder numbered above them (a cut between
    the manifest's first line and the journal's). The journal is read a window at a time
    (memory bounded whatever its size); in each, candidates above the best so far are tried
    from the highest down and the first whose signature holds wins, so the usual cost is
    one check per window."""
    state = SequenceState()
    signed: list[dict] = []
    path = Path(spool_dir) / JOURNAL_FILE
    try:
        for pieces in windows_from_end(path, SCAN_WINDOW) if path.is_file() and not path.is_symlink() else ():
            candidates = [(s, p.line) for p in pieces if (s := journal_seq(p.line)) is not None and s >= state.last_seq]
            for seq, line in sorted(candidates, key=lambda c: c[0], reverse=True):
                if seq < state.last_seq:
                    break
                if signature_valid(line, JOURNAL_CONTEXT, key):
                    if seq > state.last_seq:
                        state.last_seq, signed = seq, []
                    signed.append(line)
    except OSError:
        pass   # what was read stands; an unreadable journal adds nothing
    for line in sorted(signed, key=lambda line: line.get("seq")):
        if isinstance(line["data"].get("last_line_hash"), str):
            state.last_hash = line["data"]["last_line_hash"]   # the latest entry says how it ended
    for seq, folder in sorted(folders, reverse=True):
        if seq < state.last_seq:
            break
        if signed_opened_seq(folder, key) == seq:
            state.last_seq = seq
            state.last_hash = last_signed_hash(folder / MANIFEST_FILE, key) or state.last_hash
            break
    return state


def journal_endings(lines: Iterable[dict], key: bytes | None = None) -> dict[str, str]:
    """recording id -> the hash of the manifest line the journal says it ended with (its
    latest ``recording closed`` or ``recording recovered`` entry); with ``key``, only
    entries that key signed count."""
    endings: dict[str, str] = {}
    for line in lines:
        data = line.get("data") if isinstance(line, dict) else None
        if (line.get("event") in (RECORDING_CLOSED, RECORDING_RECOVERED) and isinstance(data, dict)
                and isinstance(data.get("recording_id"), str) and isinstance(data.get("last_line_hash"), str)
                and (key is None or signature_valid(line, JOURNAL_CONTEXT, key))):
            endings[data["recording_id"]] = data["last_line_hash"]
    return endings


def missing_ranges(present: Iterable[int], last: int) -> list[tuple[int, int]]:
    """The numbers 0..``last`` not in ``present``, as (first, last) ranges; the work grows
    with how many are present, never with ``last``."""
    ranges, expected = [], 0
    for seq in sorted({s for s in present if 0 <= s <= last}):
        if seq > expected:
            ranges.append((expected, seq - 1))
        expected = seq + 1
    if last >= expected:
        ranges.append((expected, last))
    return ranges


def describe_range(first: int, last: int, names: dict[int, str], camera: str) -> str:
    """One missing range in words: a single recording by its id, a range by its numbers."""
    if first == last:
        return names.get(first) or f"{camera} recording #{first}"
    return f"{camera} recordings #{first}–#{last} ({last - first + 1} recordings)"

"""Journal and register entries are kept 3 years; pruning leaves a signed checkpoint.

Pruning removes the lines older than the log retention from the start of a chain file and
writes, beside it, a checkpoint signed by the vault: how many lines went, the sequence
number and the hash of the last one removed (which the first kept line links to), and the
time span they covered. A reader then checks the chain from the checkpoint on: a line
removed from the middle, or a forged checkpoint, still shows.
"""

from __future__ import annotations

import json
from pathlib import Path

from recorder.errors import VaultError
from recorder.evidence.chain import (
    ChainReport,
    line_hash,
    read_chain,
    sign_document,
    signature_valid,
    split_pieces,
    write_atomic,
)
from recorder.evidence.format import CHECKPOINT_CONTEXT
from recorder.inputs import InputError, load_json_file
from tools.vault.layout import parse_time, utc_iso

DAY = 86400.0


def checkpoint_path(log: Path) -> Path:
    return log.with_name(log.name + ".checkpoint.json")


def read_checkpoint(log: Path, key: bytes) -> dict | None:
    path = checkpoint_path(log)
    if not path.exists():
        return None
    try:
        cp = load_json_file(path, "settings")
    except InputError as exc:
        raise VaultError(f"unreadable checkpoint: {exc}") from None
    if not isinstance(cp, dict) or cp.get("log") != log.name or not signature_valid(cp, CHECKPOINT_CONTEXT, key):
        raise VaultError(f"{path}: checkpoint signature does not verify against the vault key")
    return cp


def read_log(log: Path, context: str, key: bytes) -> ChainReport:
    """``read_chain`` from the checkpoint on, when the log was pruned."""
    try:
        cp = read_checkpoint(log, key)
    except VaultError as exc:
        report = read_chain(log, context, key)
        report.problems.append(str(exc))
        return report
    first_line = next((p.line for p in split_pieces(log.read_bytes()) if p.line), None) if log.exists() else None
    if cp is None or (first_line and first_line.get("seq", 0) <= cp["last_seq"]):
        # Not pruned, or a crash came between the checkpoint and the pruning: the file
        # still starts before the checkpoint and its chain checks as it is.
        return read_chain(log, context, key, genesis=first_line.get("prev") if first_line and first_line.get(
            "seq", 0) > 0 else "0" * 64)
    report = read_chain(log, context, key, genesis=cp["last_hash"])
    first = cp["last_seq"] + 1
    # read_chain counts from 0; after a checkpoint the first line is the one after it.
    report.problems = [p for p in report.problems if not p.startswith("line 1: sequence number")]
    if report.lines and report.lines[0].get("seq") != first:
        report.problems.append(f"line 1: sequence number {report.lines[0].get('seq')}, the checkpoint "
                               f"says {first} (lines removed after pruning)")
    return report


def prune(log: Path, signer, now: float, keep_days: float) -> dict | None:
    """Remove the lines older than ``keep_days`` (by their ``at``) from the start of
    ``log``; returns the new checkpoint, or None when nothing was old enough."""
    if not log.exists():
        return None
    data = log.read_bytes()
    pieces = [p for p in split_pieces(data) if p.raw]
    cutoff = now - keep_days * DAY
    old = 0
    for piece in pieces:
        line = piece.line
        try:
            at = parse_time(str(line.get("at"))) if line else None
        except VaultError:
            at = None
        if at is None or at >= cutoff:
            break
        old += 1
    old = min(old, len(pieces) - 1)  # keep at least the newest line: the chain goes on from it
    if old <= 0:
        return None
    gone = pieces[:old]
    previous = read_checkpoint(log, signer.public_key)
    cp = {
        "format": CHECKPOINT_CONTEXT, "log": log.name, "at": utc_iso(now),
        "last_seq": gone[-1].line["seq"], "last_hash": line_hash(gone[-1].raw),
        "pruned_lines": old + (previous["pruned_lines"] if previous else 0),
        "first_pruned_at": previous["first_pruned_at"] if previous else gone[0].line.get("at"),
        "last_pruned_at": gone[-1].line.get("at"), "keep_days": keep_days,
    }
    sign_document(cp, CHECKPOINT_CONTEXT, signer)
    # Checkpoint first: a crash between the two leaves a checkpoint the old file still
    # passes (its extra lines are simply older), never a pruned file without one.
    write_atomic(checkpoint_path(log), (json.dumps(cp, indent=2, sort_keys=True) + "\n").encode())
    write_atomic(log, b"".join(p.raw + b"\n" for p in pieces[old:]), mode=0o600)
    return cp

"""The files an installed bundle wrote beside it, checked against the bundle at every load.

A flashed bundle is kept whole (``bundle.pbn``, signed, every file's SHA-256 in its header)
beside the files the configuration reads (the notice audio decoded back to WAV, the
commune boundaries). Those files can be damaged on the card after installation: cut
short by a power loss, bytes changed, replaced, deleted. A notice whose bytes are not the
ones the technician signed must never be played as if it were the notice (CSI L241-2), nor
a boundary trusted that is not the signed one, so each file is compared with what the
signed bundle installs and, when it differs, rewritten from the bundle, the last good
copy. Each repair is noted in ``config/repaired.json`` for the device journal (the journal
is not open yet when the configuration is loaded); a file that cannot be rewritten makes
the configuration fail to load, and the device falls back as for any other failure.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from recorder.bundle import Bundle
from recorder.errors import ConfigError
from recorder.evidence.chain import fsync_dir, write_atomic
from recorder.evidence.format import utc_iso
from recorder.inputs import InputError, load_json_file

log = logging.getLogger(__name__)

REPAIR_NOTE = "repaired.json"
JOURNAL_EVENT = "config files restored"


def _current_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() and not path.is_symlink() else None
    except OSError:
        return None


def restore(bundle: Bundle, directory: Path, now: float) -> list[str]:
    """Rewrite every file under ``directory`` whose bytes are not those ``bundle`` installs;
    return their names (each with what was wrong). ConfigError when one cannot be rewritten."""
    repaired = []
    for f in bundle.files[1:]:  # the TOML is read from the bundle itself, never from the card
        if f.data is None:
            continue
        try:
            wanted = f.installed_bytes()
        except Exception as exc:  # noqa: BLE001 - the bundle was decoded at acceptance: say so
            raise ConfigError([f"{directory / f.name}: the installed bundle's copy does not decode ({exc})"]) from None
        path = directory / f.name
        found = _current_bytes(path)
        if found == wanted:
            continue
        why = ("missing" if found is None else
               f"truncated ({len(found)} of {len(wanted)} bytes)" if wanted.startswith(found) else
               "altered (its bytes are not those the technician signed)")
        try:
            if path.is_symlink() or path.is_dir():
                raise ConfigError([f"{path}: not a regular file; the bundle's copy cannot be restored"])
            write_atomic(path, wanted)
        except OSError as exc:
            raise ConfigError([f"{path}: {why}, and the signed bundle's copy cannot be restored: "
                               f"{exc.strerror or exc}"]) from None
        log.error("%s: %s; restored from the signed bundle v%d", path, why, bundle.version)
        repaired.append({"file": f.name, "problem": why, "version": bundle.version, "at": utc_iso(now)})
    if repaired:
        _note(directory.parent, repaired)
    return [f"{r['file']}: {r['problem']}" for r in repaired]


def _note(root: Path, repaired: list[dict]) -> None:
    notes = pending_notes(root) + repaired
    try:
        write_atomic(root / REPAIR_NOTE, json.dumps(notes[-32:]).encode())
    except OSError as exc:  # the repair stands; only its note for the journal is lost
        log.error("cannot note the restored files for the journal: %s", exc)


def pending_notes(root: Path) -> list[dict]:
    """The repairs not yet written to the device journal."""
    path = root / REPAIR_NOTE
    if not path.exists():
        return []
    try:
        notes = load_json_file(path, "settings")
    except InputError:
        return [{"problem": f"{path} unreadable: repairs were made and their note lost"}]
    return [n for n in notes if isinstance(n, dict)] if isinstance(notes, list) else []


def journal_repairs(root: Path, journal) -> None:
    """Write the noted repairs to the device journal, then forget them."""
    for note in pending_notes(root):
        journal.append(JOURNAL_EVENT, note)
    (root / REPAIR_NOTE).unlink(missing_ok=True)
    fsync_dir(root)

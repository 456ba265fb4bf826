"""A training extraction waits in the vault until the chief signs off its contact sheet.

No detector finds licence plates, and no face detector finds every face: a person checks.
The anonymised clip, its report and its contact sheet are kept in
``VAULT/training-pending/ID/`` (inside the vault, where extractions are never delivered)
and nothing is written where ``--out`` said. ``pieton vault training-approve VAULT
--extraction ID --identity KEY`` checks the clip is the one the report signs, logs the
approval twice (journal and register, with the approver's recipient) and only then moves
the clip and its report to ``--out``; ``training-reject`` logs a refusal and erases them.
An unapproved clip is never delivered: until then, it exists only in the vault.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from recorder.errors import VaultError
from recorder.evidence.age_keys import identity_to_recipient
from recorder.evidence.chain import fsync_dir, write_atomic
from recorder.inputs import InputError, expect_object, load_json_file
from tools.vault.layout import refuse_inside, safe_name
from tools.vault.persons import read_persons
from tools.vault.plates import load_plate_file

PENDING = "training-pending"
CLIP, REPORT, HTML, SHEET, STATE = "clip.mp4", "report.json", "report.html", "contact-sheet.html", "pending.json"
PLATES = "plates.json"  # the boxes the chief drew, as a --plates-file: a new extraction adds to them


def pending_root(vault) -> Path:
    return vault.layout.root / PENDING


def stage(vault, extraction_id: str, mp4: Path, report_files: list[Path], sheet_html: str, out: Path,
          request=None) -> Path:
    """Move the finished clip and its report files into the pending folder (they are on the
    vault's medium already when ``--out`` is, else copied), with the contact sheet; and what
    was asked (``request``, a ``tools.vault.extract.Request``), so that the clip can be made
    again with one more plate box (``redo_request``) without retyping it."""
    folder = pending_root(vault) / safe_name(extraction_id, "extraction id")
    folder.mkdir(parents=True, mode=0o700)
    try:
        for src, name in zip([mp4, *report_files], (CLIP, REPORT, HTML), strict=True):
            shutil.move(src, folder / name)
        write_atomic(folder / SHEET, sheet_html.encode(), 0o600)
        state = {"extraction_id": extraction_id, "out": str(Path(out).resolve())}
        if request is not None:
            state["request"] = {"recordings": list(request.recordings), "requester": request.requester,
                                "deliver_to": request.deliver_to, "start": request.start, "end": request.end,
                                "zone": request.zone}
            marks = [{"t": m.t, "box": list(m.box)} for m in request.plates]
            write_atomic(folder / PLATES, json.dumps(marks).encode(), 0o600)
        write_atomic(folder / STATE, json.dumps(state, indent=1).encode(), 0o600)
        fsync_dir(folder.parent)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # half a pending extraction is none
        raise
    return folder


def approve_command(vault, extraction_id: str) -> str:
    return f"pieton vault training-approve {vault.layout.root} --extraction {extraction_id} --identity YOUR_IDENTITY_FILE"


def _pending(vault, extraction_id: str) -> tuple[Path, dict, dict]:
    folder = pending_root(vault) / safe_name(extraction_id, "--extraction")
    if not (folder / STATE).is_file():
        waiting = sorted(p.name for p in pending_root(vault).glob("*/") if (p / STATE).is_file()) \
            if pending_root(vault).is_dir() else []
        raise VaultError(f"--extraction {extraction_id}: no training extraction awaits approval under that id "
                         f"(waiting: {', '.join(waiting) or 'none'})")
    try:
        state = expect_object(load_json_file(folder / STATE, "config"), f"{folder / STATE}")
        report = expect_object(load_json_file(folder / REPORT, "config"), f"{folder / REPORT}")
    except InputError as exc:
        raise VaultError(f"pending extraction {extraction_id}: {exc}") from None
    return folder, state, report


def _approver(vault, identities: list) -> str:
    """The recipient of the identity that signs off: one of the vault's, or of a person
    designated now (`pieton vault designate`)."""
    known = set(vault.settings.get("recipients") or []) | {p.recipient for p in read_persons(vault) if p.active}
    for identity in identities:
        try:
            recipient = identity_to_recipient(identity)
        except Exception:  # noqa: BLE001 - a plugin or malformed identity is simply not the chief's
            continue
        if recipient in known:
            return recipient
    raise VaultError("--identity: none of its keys is the vault's or a designated person's; only they sign "
                     "off a training extraction")


def approve(vault, extraction_id: str, identities: list) -> Path:
    """Sign off a pending training extraction: checked, logged twice, then delivered."""
    folder, state, report = _pending(vault, extraction_id)
    approver = _approver(vault, identities)
    out = Path(state.get("out", ""))
    if out.suffix.lower() != ".mp4":
        raise VaultError(f"pending extraction {extraction_id}: its output {out} is not an .mp4")
    refuse_inside(out, vault.layout.root, "output")
    side = [out.with_name(out.stem + ".report.json"), out.with_name(out.stem + ".report.html")]
    for path in (out, *side):
        if path.exists() or path.is_symlink():
            raise VaultError(f"{path}: file exists; an extraction never overwrites (move it away, then approve)")
    if not out.parent.is_dir():
        raise VaultError(f"{out.parent}: folder does not exist (the extraction's --out)")
    with open(folder / CLIP, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if digest != (report.get("mp4") or {}).get("sha256"):
        raise VaultError(f"pending extraction {extraction_id}: the clip does not match its signed report; "
                         "not delivered (reject it and extract again)")
    vault.log_twice("training-approved", extraction_id=extraction_id, mp4=out.name, mp4_sha256=digest,
                    approved_by=approver, contact_sheet="checked")
    for name, final in zip((REPORT, HTML, CLIP), (*side, out), strict=True):
        shutil.move(folder / name, final)
    fsync_dir(out.parent)
    shutil.rmtree(folder)
    return out


def reject(vault, extraction_id: str, identities: list, reason: str) -> None:
    """Refuse a pending training extraction: logged twice, then erased from the vault."""
    folder, _, report = _pending(vault, extraction_id)
    if not reason or not reason.strip():
        raise VaultError("--reason TEXT is required: say what the contact sheet showed")
    approver = _approver(vault, identities)
    vault.log_twice("training-rejected", extraction_id=extraction_id,
                    mp4_sha256=(report.get("mp4") or {}).get("sha256"), rejected_by=approver, reason=reason[:500])
    shutil.rmtree(folder)
    fsync_dir(folder.parent)


def read_pending(vault, extraction_id: str) -> tuple[Path, dict, dict]:
    """The pending folder, its state and its signed report (a VaultError names a missing one)."""
    return _pending(vault, extraction_id)


def redo_request(vault, extraction_id: str, more_plates: list) -> dict:
    """What was asked for a pending extraction, with ``more_plates`` added to the boxes
    already drawn: the fields of the ``tools.vault.extract.Request`` that makes it again
    (the one it replaces is then rejected)."""
    folder, state, _ = _pending(vault, extraction_id)
    asked = state.get("request")
    if not isinstance(asked, dict) or not isinstance(asked.get("recordings"), list) \
            or not all(isinstance(asked.get(k), str | None) for k in ("start", "end", "zone")):
        raise VaultError(f"pending extraction {extraction_id}: made before the vault kept what was asked; "
                         "reject it and extract again with --plate")
    marks = load_plate_file(folder / PLATES) if (folder / PLATES).is_file() else []
    return {"recordings": [str(r) for r in asked["recordings"]], "purpose": "training",
            "requester": str(asked.get("requester") or ""), "deliver_to": str(asked.get("deliver_to") or ""),
            "out": Path(state.get("out", "")), "start": asked.get("start"), "end": asked.get("end"),
            "zone": asked.get("zone"), "plates": marks + list(more_plates)}


def waiting(vault) -> list[dict]:
    """The training extractions awaiting sign-off: id and contact sheet."""
    root = pending_root(vault)
    if not root.is_dir():
        return []
    return [{"extraction_id": p.name, "contact_sheet": str(p / SHEET)}
            for p in sorted(root.iterdir()) if (p / STATE).is_file()]


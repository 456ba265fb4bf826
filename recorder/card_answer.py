"""The camera's answer on the SD card (or dock folder) to a bundle left there by
`pieton config flash --dir`.

Over the serial link the technician reads the camera's answer at once; a bundle on the card
is taken when the camera next looks at its ``[link] card_dir`` (at start, then at every
monitor tick between recordings). The camera then moves the bundle to ``inbox/done/``
(accepted) or ``inbox/refused/``, and writes its answer beside them::

    inbox/answers/<bundle file name>.json

one JSON object: the bundle, the reason code and words, whether it was accepted, the
versions (offered, in force before and after, the floor), the camera and the time, signed
by the device key (context ``pieton/card-answer/1``) so that `pieton config answer
--camera-key` can tell the camera's word from a file someone put on the card. The device
journal keeps the same decision ("config applied" / "config refused").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recorder.evidence.chain import sign_document, signature_valid, write_atomic
from recorder.evidence.format import utc_iso
from recorder.inputs import InputError, expect_object, load_json_file

ANSWERS = "answers"
DONE = "done"
REFUSED = "refused"
CONTEXT = "pieton/card-answer/1"
SUFFIX = ".json"
FIELDS = ("bundle", "code", "message", "accepted", "camera_id", "offered_version", "version_before",
          "version_after", "time")


def write_answer(inbox: Path, bundle_name: str, code: str, message: str, *, accepted: bool,
                 camera_id: str, offered_version: int | None, version_before: int, version_after: int,
                 now: float, signer=None) -> Path:
    """Write (durably) the camera's answer for ``bundle_name`` in ``inbox/answers/``."""
    doc: dict[str, Any] = {"bundle": bundle_name, "code": code, "message": message, "accepted": accepted,
                           "camera_id": camera_id, "offered_version": offered_version,
                           "version_before": version_before, "version_after": version_after,
                           "time": utc_iso(now)}
    if signer is not None:
        doc["device_key"] = signer.public_key_hex
        sign_document(doc, CONTEXT, signer)
    folder = inbox / ANSWERS
    folder.mkdir(exist_ok=True)
    path = folder / (bundle_name + SUFFIX)
    write_atomic(path, json.dumps(doc, ensure_ascii=False, indent=1).encode() + b"\n")
    return path


def read_answer(path: Path) -> dict[str, Any]:
    """One answer file, checked for its fields; InputError naming the file otherwise."""
    doc = expect_object(load_json_file(path, "receipt", what=f"camera answer {path}"), str(path))
    missing = [name for name in FIELDS if name not in doc]
    if missing:
        raise InputError(f"{path}: not a camera's answer (missing {', '.join(missing)})")
    return doc


def answers_on(card_dir: Path) -> list[Path]:
    folder = Path(card_dir) / "inbox" / ANSWERS
    return sorted(folder.glob("*" + SUFFIX)) if folder.is_dir() else []


def signed_by(doc: dict[str, Any], camera_key_hex: str) -> bool:
    """Whether the answer carries a valid signature by that camera's device key."""
    try:
        key = bytes.fromhex(camera_key_hex)
    except ValueError:
        return False
    return len(key) == 32 and signature_valid(doc, CONTEXT, key)

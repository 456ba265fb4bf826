"""Encrypted per-segment metadata: the personal part of a recording.

Agent number, trigger reason, pre-event span, notice, bookmarks, GPS track, night-mode
changes, clock source and offset, driver faults: everything that names a person or a
place goes here, encrypted to the chief's recipients in the same age format as the media,
one small file per segment, so a power cut loses no more metadata than media.
"""

from __future__ import annotations

from recorder.errors import EvidenceError
from recorder.evidence.age import decrypt, encrypt_bytes
from recorder.evidence.format import METADATA_FORMAT, canonical, utc_iso
from recorder.inputs import InputError, loads_strict


def segment_metadata(recording_id: str, segment: int, static: dict, events: list[dict], *,
                     started_at: float, ended_at: float | None, final: bool,
                     extra: dict | None = None) -> dict:
    """The metadata document of one segment. ``final`` is False for the provisional copy
    written when the segment opens (it survives a power cut that the segment does not)."""
    return {
        "format": METADATA_FORMAT,
        "recording_id": recording_id,
        "segment": segment,
        "final": final,
        "started_at": utc_iso(started_at),
        "ended_at": utc_iso(ended_at) if ended_at is not None else None,
        "recording": static,
        "events": events,
        "segment_info": extra or {},
    }


def encode(meta: dict) -> bytes:
    try:
        return canonical(meta)
    except (TypeError, ValueError) as exc:
        raise EvidenceError(f"metadata of {meta.get('recording_id')} is not JSON-serialisable: {exc}") from None


def encrypt_metadata(meta: dict, recipients: list[str]) -> bytes:
    return encrypt_bytes(encode(meta), recipients)


def decrypt_metadata(source, identities: list, name: str = "metadata") -> dict:
    """The metadata document; EvidenceError when it is incomplete or not pieton metadata."""
    result = decrypt(source, identities)
    if not result.complete:
        raise EvidenceError(f"{name}: incomplete ({result.reason})")
    try:
        meta = loads_strict(result.plaintext, name)
    except InputError as exc:
        raise EvidenceError(f"{name}: decrypts but is not JSON we accept ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != METADATA_FORMAT:
        raise EvidenceError(f"{name}: not {METADATA_FORMAT} metadata")
    return meta

"""Recovery at every start: every recording left unfinished by a power cut gets a signed
``recovered`` line saying what was found. Nothing is deleted, renamed or rewritten.

Cases: a ``.part`` segment (its durable chunks stay decryptable; the line records its
length and hash: the data stops there), a segment renamed but with no ``sealed`` line,
metadata written but not listed, a torn last manifest line (the chain writer ends the
fragment and the recovered line documents it), a recording with no ``closed`` line, and a
crash during recovery itself (running it again finds the same things, or finds them done).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from drivers.signer import Signer
from recorder.errors import AgeError
from recorder.evidence.age import ENCRYPTED_CHUNK, NONCE_SIZE, header_info
from recorder.evidence.chain import ChainWriter, read_chain_bytes, split_pieces
from recorder.evidence.format import (
    ENDINGS,
    MANIFEST_CONTEXT,
    MANIFEST_FILE,
    META_SUFFIX,
    OPENED,
    PART,
    RECOVERED,
    SEALED,
    SEGMENT_SUFFIX,
    is_age_file,
    is_media_file,
    listed_files,
)
from recorder.inputs import InputError


def age_layout(path: Path, name: str) -> dict:
    """What the ciphertext of an age file holds, read without any key: header length,
    stanza count, whole STREAM chunks and the bytes after them."""
    try:
        header = header_info(path)
    except AgeError as exc:
        return {"age_header": f"unreadable: {str(exc).replace(str(path), name)}"}
    size = path.stat().st_size
    payload = max(0, size - header.header_size - NONCE_SIZE)
    return {"age_header": "ok", "header_bytes": header.header_size, "stanzas": header.recipients,
            "whole_chunks": payload // ENCRYPTED_CHUNK, "tail_bytes": payload % ENCRYPTED_CHUNK}


def describe(name: str) -> str:
    if name.endswith(SEGMENT_SUFFIX + PART):
        return "segment in progress at the cut: its durable chunks are kept, data stops there"
    if name.endswith(SEGMENT_SUFFIX):
        return "segment renamed but not sealed in the manifest"
    if name.endswith(META_SUFFIX + PART):
        return "provisional metadata of the segment in progress"
    if name.endswith(META_SUFFIX):
        return "metadata written but not listed in the manifest"
    return "unexpected file"


def examine(folder: Path, name: str) -> dict:
    path = folder / name
    if path.is_symlink() or not path.is_file():
        return {"file": name, "state": "not a regular file (link or folder): not followed"}
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:  # streamed: a file of any size costs no memory
        while block := f.read(1 << 20):
            digest.update(block)
            size += len(block)
    found = {"file": name, "size": size, "sha256": digest.hexdigest(), "state": describe(name)}
    if is_age_file(name):
        found.update(age_layout(path, f"{folder.name}/{name}"))
    return found


def recover_recording(folder: str | Path, signer: Signer, *, on_durable=None) -> dict | None:
    """The ``recovered`` line appended to ``folder``'s manifest, or None when the
    recording ended properly and nothing is unaccounted for."""
    folder = Path(folder)
    manifest = folder / MANIFEST_FILE
    try:
        data = read_chain_bytes(manifest, MANIFEST_CONTEXT)
    except FileNotFoundError:
        data = b""
    except InputError:
        return None   # larger than any manifest we write: not ours to extend; the verifier says so
    pieces = split_pieces(data)
    lines = [p.line for p in pieces if p.line is not None]
    ended = bool(lines) and lines[-1].get("event") in ENDINGS
    after_last = pieces[max((i for i, p in enumerate(pieces) if p.line is not None), default=-1) + 1:]
    torn = any(p.raw for p in after_last)
    listed = listed_files(lines)
    extra = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST_FILE and p.name not in listed)
    if ended and not torn and not extra:
        return None
    found = [examine(folder, name) for name in extra]
    media = [f for f in found if is_media_file(f["file"]) and "size" in f]
    record = {
        "event": RECOVERED,
        "recording_id": folder.name,
        "after": lines[-1].get("event") if lines else None,
        "segments_sealed": sum(1 for line in lines if line.get("event") == SEALED),
        "found": found,
        "data_stops": (f"{media[-1]['file']} after {media[-1]['size']} durable bytes" if media
                       else "at the last sealed segment"),
    }
    if not any(line.get("event") == OPENED for line in lines):
        record["opened_missing"] = True  # cut before the opened line was durable
    with ChainWriter(manifest, MANIFEST_CONTEXT, signer, on_durable=on_durable) as writer:
        return writer.append(record)

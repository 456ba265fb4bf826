"""The vault's offload receipt: what the camera may free.

After verifying and storing recordings, the vault writes a receipt into the camera's
inbox, signed by the vault key. The camera frees a recording's space only when a receipt
verifies against the vault key it was provisioned with (``[keys] vault``), names this
camera and its key, and lists the recording with the hash of its manifest's last line as
the camera has it: a receipt for another camera, an older state of the recording, or one
signed by any other key frees nothing.
"""

from __future__ import annotations

from pathlib import Path

from drivers.signer import Signer
from recorder.errors import VerificationError
from recorder.evidence.chain import line_hash, sign_document, signature_valid, write_atomic
from recorder.evidence.format import RECEIPT_CONTEXT, canonical
from recorder.inputs import InputError, loads_strict, read_bounded


def make_receipt(signer: Signer, camera_id: str, device_key: str, recordings: list[dict],
                 issued_at: str) -> dict:
    """``recordings``: [{"id", "last_hash", "segments"}]: what the vault holds, verified."""
    receipt = {
        "format": RECEIPT_CONTEXT, "camera": camera_id, "device_key": device_key,
        "vault_key": signer.public_key_hex, "issued_at": issued_at,
        "recordings": sorted(({"id": r["id"], "last_hash": r["last_hash"], "segments": r["segments"]}
                              for r in recordings), key=lambda r: r["id"]),
    }
    sign_document(receipt, RECEIPT_CONTEXT, signer)
    return receipt


def write_receipt(inbox: str | Path, receipt: dict) -> Path:
    """Write the receipt atomically into ``inbox``; returns its path."""
    inbox = Path(inbox)
    inbox.mkdir(parents=True, exist_ok=True)
    data = canonical(receipt) + b"\n"
    name = f"receipt-{receipt['issued_at'].replace(':', '')}-{line_hash(data)[:12]}.json"
    path = inbox / name
    write_atomic(path, data)
    return path


def verify_receipt(source: str | Path | bytes | dict, vault_key: bytes | str, *,
                   camera_id: str | None = None, device_key: str | None = None) -> dict:
    """The receipt, once its signature by ``vault_key`` and its addressee are checked;
    VerificationError naming what is wrong otherwise."""
    where = str(source) if isinstance(source, str | Path) else "receipt"
    if isinstance(vault_key, str):
        try:
            vault_key = bytes.fromhex(vault_key)
        except ValueError:
            raise VerificationError(f"{where}: the provisioned vault key is not hex") from None
    if len(vault_key) != 32:
        raise VerificationError(f"{where}: no valid vault key provisioned (need 32 bytes, [keys] vault)")
    if isinstance(source, dict):
        receipt = source
    else:
        try:
            data = read_bounded(source, "receipt", what=where) if isinstance(source, str | Path) else source
            receipt = loads_strict(data, where)
        except InputError as exc:
            raise VerificationError(f"not a readable receipt: {exc}") from None
    if not isinstance(receipt, dict) or receipt.get("format") != RECEIPT_CONTEXT:
        raise VerificationError(f"{where}: not a pieton receipt (format {RECEIPT_CONTEXT})")
    try:
        valid = signature_valid(receipt, RECEIPT_CONTEXT, vault_key)
    except (ValueError, TypeError, RecursionError) as exc:   # a dict given with NaN or the like
        raise VerificationError(f"{where}: cannot be checked ({type(exc).__name__}: {exc})") from None
    if not valid:
        raise VerificationError(f"{where}: signature does not verify against the vault key "
                                f"{vault_key.hex()[:16]}... (forged, altered or from another vault)")
    if camera_id is not None and receipt.get("camera") != camera_id:
        raise VerificationError(f"{where}: addressed to camera {receipt.get('camera')!r}, not {camera_id!r}")
    if device_key is not None and receipt.get("device_key") != device_key:
        raise VerificationError(f"{where}: names another device key than this camera's")
    if not isinstance(receipt.get("recordings"), list):
        raise VerificationError(f"{where}: no list of recordings")
    return receipt


def freeable(receipt: dict, held: dict[str, str]) -> list[str]:
    """Of the recordings the camera holds (id -> hash of its manifest's last line), those
    the verified receipt covers exactly."""
    covered = {r.get("id"): r.get("last_hash") for r in receipt["recordings"]
               if isinstance(r, dict) and isinstance(r.get("id"), str)}
    return sorted(rid for rid, last in held.items() if covered.get(rid) == last)

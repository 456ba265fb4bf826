"""The extraction report: what was extracted, from what, for whom, signed by the vault.

The recipient checks it with `pieton vault check-report REPORT FILE.mp4 --vault-key PUB`:
the signature against the vault's public key, then the MP4's SHA-256 against the one the
report names.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from pathlib import Path

from drivers.signer import Signer
from recorder.errors import VaultError, VerificationError
from recorder.evidence.chain import sign_document, signature_valid
from recorder.evidence.format import REPORT_CONTEXT, canonical
from recorder.inputs import InputError, load_json_file, open_without_waiting
from tools.vault.events import event_epoch, event_kind, track_points
from tools.vault.layout import utc_iso
from tools.vault.report_events import spans_json
from tools.vault.report_html import render_html


def _find(static: dict, *keys):
    """A recording-level datum, at the top of the static metadata or one level down
    (the spool keeps the daemon's flags in their own dict)."""
    for key in keys:
        if key in static:
            return static[key]
    for value in static.values():
        if isinstance(value, dict):
            for key in keys:
                if key in value:
                    return value[key]
    return None


def recording_summary(rec) -> dict:
    """The report's view of one opened recording."""
    static: dict = {}
    events: list[dict] = []
    seen = set()
    for meta in rec.metadata:
        if isinstance(meta.get("recording"), dict):
            static = meta["recording"] or static
        listed = meta.get("events") if isinstance(meta.get("events"), list) else []
        for event in (e for e in listed if isinstance(e, dict)):  # the report reads objects only
            key = canonical(event)
            if key not in seen:
                seen.add(key)
                events.append(event)
    events.sort(key=lambda e: (event_epoch(e) is None, event_epoch(e) or 0.0))
    notice = _find(static, "notice", "notice_played", "notice_given")
    notice_events = [e for e in events if "notice" in event_kind(e)]
    summary = {
        "id": rec.recording_id, "camera": rec.camera, "device_key": rec.device_key,
        "started_at": utc_iso(rec.started_at) if rec.started_at is not None else None,
        "closed": ({"reason": rec.closed.get("reason"), "segments": rec.closed.get("segments"),
                    "ended_at": rec.closed.get("ended_at")} if rec.closed else None),
        "truncated": rec.truncated,
        "authorisation": rec.opened.get("authorisation"),  # the prefect's arrêté it was made under (R241-8)
        "segments": rec.segments,
        "recording": static,
        "notice": notice if notice is not None else (notice_events or "not recorded"),
        "pre_event_s": _find(static, "pre_event_s", "pre_event", "pre_event_seconds"),
        "events": events,
        "gps_track": track_points(events),
        "unreadable_metadata": [m["unreadable"] for m in rec.metadata if "unreadable" in m],
    }
    # CSI L241-2: the spans without the red light (and without position, image, sound), in words
    summary["lapses"] = spans_json(summary, utc_iso)
    return summary


def build_report(vault, request, recordings, result, mp4_name: str, mp4_sha256: str, mp4_size: int, *,
                 anonymised: dict | None, keep_audio: bool) -> dict:
    created = utc_iso(vault.now())
    return {
        "format": REPORT_CONTEXT,
        "extraction_id": f"X-{created.replace(':', '').replace('-', '')}-{secrets.token_hex(4)}",
        "created": created,
        "vault_key": vault.signer.public_key_hex,
        "purpose": request.purpose, "requester": request.requester, "deliver_to": request.deliver_to,
        "recordings": [recording_summary(r) for r in recordings],
        "mp4": {"name": mp4_name, "sha256": mp4_sha256, "size": mp4_size, "duration_s": result.duration_s,
                "video_packets": result.video_packets, "audio_packets": result.audio_packets,
                "re_encoded": anonymised is not None,
                "range_s": list(result.range_s) if result.range_s else None,
                "spans": [list(s) for s in result.spans],
                "truncated_segments": result.truncated_segments,
                "audio": "kept" if keep_audio else "muted"},
        "truncated": ("the recording ends early: exported up to its last good frame "
                      f"({', '.join(result.truncated_segments)})" if result.truncated_segments else None),
        "anonymised": anonymised,
    }


def sign_report(signer: Signer, report: dict) -> dict:
    signed = dict(report)
    sign_document(signed, REPORT_CONTEXT, signer)
    return signed


def write_report_files(report: dict, paths: list[Path], mp4_path: Path, vault, thumbs=None, *,
                       html: str | None = None) -> list[Path]:
    """The signed JSON report and its HTML form (``html``, or rendered here), written and
    fsynced at ``paths``."""
    json_path, html_path = paths
    _write(json_path, json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    if html is None:
        html = render_html(report, mp4_path, vault.settings.get("communes") or [], thumbs, zone=vault.timezone)
    _write(html_path, html.encode())
    return [json_path, html_path]


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _shape_problem(report: dict) -> str | None:
    """What `check-report` needs of a report, checked before it is used or printed."""
    mp4 = report.get("mp4")
    if not isinstance(mp4, dict) or not isinstance(mp4.get("sha256"), str):
        return "'mp4' does not name the file's SHA-256"
    for key in ("extraction_id", "purpose", "requester", "deliver_to"):
        if not isinstance(report.get(key), str):
            return f"{key!r} is not text"
    if report.get("purpose") == "training":  # names no recording: see tools/vault/training_report.py
        sources = report.get("sources")
        if not isinstance(sources, dict) or not isinstance(sources.get("recordings"), int):
            return "'sources' does not count the recordings of the training clip"
        return None
    recordings = report.get("recordings")
    if not isinstance(recordings, list) or not all(
            isinstance(r, dict) and isinstance(r.get("id"), str) and isinstance(r.get("segments"), list)
            for r in recordings):
        return "'recordings' is not a list of recordings with their segments"
    return None


def check_report(report_path: str | Path, mp4_path: str | Path, vault_key: str) -> dict:
    """The report, when signed by ``vault_key`` and naming this MP4's hash; else
    VerificationError naming what does not match."""
    try:
        key = bytes.fromhex(vault_key.strip())
        if len(key) != 32:
            raise ValueError
    except ValueError:
        raise VaultError(f"--vault-key {vault_key!r}: expected the vault's public key, 64 hex digits") from None
    try:
        report = load_json_file(report_path, "report")
    except InputError as exc:
        raise VaultError(f"not a pieton extraction report: {exc}") from None
    if not isinstance(report, dict) or report.get("format") != REPORT_CONTEXT:
        raise VerificationError(f"{report_path}: not a pieton extraction report ({REPORT_CONTEXT})")
    if not signature_valid(report, REPORT_CONTEXT, key):
        raise VerificationError(f"{report_path}: signature does not verify against vault key "
                                f"{vault_key[:16]}... (altered, or from another vault)")
    shape = _shape_problem(report)
    if shape:
        raise VerificationError(f"{report_path}: signed, but {shape}")
    try:
        # A FIFO or a device given as the MP4 is refused, not waited on.
        with open_without_waiting(mp4_path) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise VaultError(f"{mp4_path}: not a regular file")
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise VaultError(f"{mp4_path}: cannot read: {exc.strerror}") from None
    if digest != report["mp4"]["sha256"]:
        raise VerificationError(f"{mp4_path}: SHA-256 {digest[:16]}... is not the one in the report "
                                f"({report['mp4']['sha256'][:16]}...): not the extracted file, or altered")
    return report

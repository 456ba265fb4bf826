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
from pathlib import Path

from drivers.signer import Signer
from recorder.errors import VaultError, VerificationError
from recorder.evidence.chain import sign_document, signature_valid
from recorder.evidence.format import REPORT_CONTEXT, canonical
from tools.vault.layout import utc_iso


def track_points(obj) -> list[dict]:
    """GPS points found in metadata events: any object with numeric lat and lon."""
    points = []
    if isinstance(obj, dict):
        lat, lon = obj.get("lat"), obj.get("lon")
        if isinstance(lat, int | float) and isinstance(lon, int | float) and not isinstance(lat, bool):
            point = {"lat": lat, "lon": lon}
            for key in ("time", "at", "eph_m", "hdop", "mode"):
                if key in obj:
                    point[key] = obj[key]
            points.append(point)
        else:
            for value in obj.values():
                points.extend(track_points(value))
    elif isinstance(obj, list):
        for value in obj:
            points.extend(track_points(value))
    return points


def event_kind(event: dict) -> str:
    return str(event.get("kind") or event.get("event") or event.get("type") or "event")


def event_epoch(event: dict) -> float | None:
    """An event's time (epoch float or ISO text, as the daemon notes them), as epoch."""
    value = event.get("time", event.get("at"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            from tools.vault.layout import parse_time
            return parse_time(value)
        except Exception:  # noqa: BLE001 - an odd time sorts last, it does not break the report
            return None
    return None


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
        for event in meta.get("events") or []:
            key = canonical(event)
            if key not in seen:
                seen.add(key)
                events.append(event)
    events.sort(key=lambda e: (event_epoch(e) is None, event_epoch(e) or 0.0))
    notice = _find(static, "notice", "notice_played", "notice_given")
    notice_events = [e for e in events if "notice" in event_kind(e)]
    return {
        "id": rec.recording_id, "camera": rec.camera, "device_key": rec.device_key,
        "started_at": utc_iso(rec.started_at) if rec.started_at is not None else None,
        "closed": ({"reason": rec.closed.get("reason"), "segments": rec.closed.get("segments"),
                    "ended_at": rec.closed.get("ended_at")} if rec.closed else None),
        "truncated": rec.truncated,
        "segments": rec.segments,
        "recording": static,
        "notice": notice if notice is not None else (notice_events or "not recorded"),
        "pre_event_s": _find(static, "pre_event_s", "pre_event", "pre_event_seconds"),
        "events": events,
        "gps_track": track_points(events),
        "unreadable_metadata": [m["unreadable"] for m in rec.metadata if "unreadable" in m],
    }


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


def write_report_files(report: dict, paths: list[Path], mp4_path: Path, vault, thumbs=None) -> list[Path]:
    """The signed JSON report and its HTML form, written and fsynced at ``paths``."""
    json_path, html_path = paths
    _write(json_path, json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    from tools.vault.report_html import render_html
    _write(html_path, render_html(report, mp4_path, vault.settings.get("communes") or [], thumbs).encode())
    return [json_path, html_path]


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


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
        report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise VaultError(f"{report_path}: cannot read: {exc.strerror}") from None
    except ValueError:
        raise VerificationError(f"{report_path}: not a JSON extraction report") from None
    if not isinstance(report, dict) or report.get("format") != REPORT_CONTEXT:
        raise VerificationError(f"{report_path}: not a pieton extraction report ({REPORT_CONTEXT})")
    if not signature_valid(report, REPORT_CONTEXT, key):
        raise VerificationError(f"{report_path}: signature does not verify against vault key "
                                f"{vault_key[:16]}... (altered, or from another vault)")
    try:
        with open(mp4_path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise VaultError(f"{mp4_path}: cannot read: {exc.strerror}") from None
    if digest != report["mp4"]["sha256"]:
        raise VerificationError(f"{mp4_path}: SHA-256 {digest[:16]}... is not the one in the report "
                                f"({report['mp4']['sha256'][:16]}...): not the extracted file, or altered")
    return report

"""Answering a person's access request (`find`) and the préfet's yearly figures (`stats`)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from drivers.nmea import distance_m
from recorder.errors import AgeError, VaultError
from recorder.evidence.chain import split_pieces
from recorder.evidence.format import META_SUFFIX
from recorder.evidence.metadata import decrypt_metadata
from tools.vault.events import track_points
from tools.vault.index import RecordingRow
from tools.vault.layout import utc_iso
from tools.vault.vault import Vault

MAX_RADIUS_M = 20_037_508.0  # half the Earth's circumference: every place is within it


def parse_near(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(x) for x in text.split(","))
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise ValueError
    except ValueError:
        raise VaultError(f"--near {text!r}: expected LAT,LON in degrees, e.g. 46.951,4.299") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise VaultError(f"--near {text!r}: latitude must be within ±90 and longitude within ±180")
    return lat, lon


@dataclass
class Found:
    row: RecordingRow
    closest_m: float | None = None  # with --near: the closest recorded position


@dataclass
class FindResult:
    found: list[Found] = field(default_factory=list)
    without_position: list[str] = field(default_factory=list)


def find(vault: Vault, since: float, until: float, *, camera: str | None = None,
         near: tuple[float, float] | None = None, radius_m: float | None = None,
         identities: list | None = None) -> FindResult:
    if until <= since:
        raise VaultError("--to must be after --from")
    if near is not None and not identities:
        raise VaultError("--near needs --identity CHIEF_KEY: positions are encrypted")
    if near is not None and radius_m is None:
        raise VaultError("--near needs --radius M, a positive distance in metres")
    if radius_m is not None and not (math.isfinite(radius_m) and 0 < radius_m <= MAX_RADIUS_M):
        raise VaultError(f"--radius {radius_m!r}: a distance in metres, more than 0 and at most {MAX_RADIUS_M:.0f}")
    # A recording overlaps the period if it started before its end (a day at most earlier).
    rows = vault.index.recordings(camera=camera, since=since - 86400, until=until)
    result = FindResult()
    for row in rows:
        start, end = row.span
        if start >= until or end < since:
            continue
        if near is None:
            result.found.append(Found(row))
            continue
        points = _positions(vault, row, identities)
        if not points:
            result.without_position.append(row.recording_id)
            continue
        closest = min(distance_m(near[0], near[1], p["lat"], p["lon"]) for p in points)
        if closest <= radius_m:
            result.found.append(Found(row, round(closest, 1)))
    vault.log("search", period=[utc_iso(since), utc_iso(until)], camera=camera,
              near=list(near) if near else None, radius_m=radius_m,
              found=[f.row.recording_id for f in result.found])
    return result


def _positions(vault: Vault, row: RecordingRow, identities: list) -> list[dict]:
    folder = vault.layout.recording(row.camera_id, row.recording_id)
    points = []
    for meta in sorted(folder.glob("*" + META_SUFFIX)):
        try:
            points.extend(track_points(decrypt_metadata(meta, identities, meta.name).get("events")))
        except AgeError as exc:  # a bad identity is the caller's error, said once
            raise VaultError(f"cannot read positions of {row.recording_id}: {exc}") from None
        except Exception:  # noqa: BLE001 - an unreadable metadata file adds no position
            pass
    return points


def stats(vault: Vault, year: int) -> dict:
    """The yearly figures: cameras, recordings, consultations and extractions by purpose."""
    if not 2000 <= year <= 2200:
        raise VaultError(f"--year {year}: not a plausible year")
    since = datetime(year, 1, 1, tzinfo=UTC).timestamp()
    until = datetime(year + 1, 1, 1, tzinfo=UTC).timestamp()
    rows = vault.index.recordings(state=None, since=since, until=until)
    extractions: Counter = Counter()
    failed: Counter = Counter()
    consultations: Counter = Counter()
    erased = holds = searches = 0
    data = vault.layout.journal.read_bytes() if vault.layout.journal.exists() else b""
    prefix = str(year)
    for piece in split_pieces(data):
        line = piece.line
        if not line or not str(line.get("at", "")).startswith(prefix):
            continue
        event = line.get("event")
        if event == "extraction":
            extractions[line.get("purpose")] += 1
        elif event == "extraction-failed":
            failed[line.get("purpose")] += 1
        elif event == "consultation":
            consultations[line.get("purpose")] += 1
        elif event == "recording-erased":
            erased += 1
        elif event == "hold":
            holds += 1
        elif event == "search":
            searches += 1
    return {
        "year": year,
        "cameras_enrolled": len(vault.index.cameras()),
        "cameras_recording": len({r.camera_id for r in rows}),
        "recordings": len(rows),
        "recordings_truncated": sum(r.truncated for r in rows),
        "recordings_held_now": sum(1 for r in rows if r.state == "stored" and vault.index.holds(r.recording_id)),
        "recordings_erased": erased,
        "holds_placed": holds,
        "extractions_by_purpose": dict(sorted(extractions.items())),
        "failed_extractions_by_purpose": dict(sorted(failed.items())),
        "consultations_by_purpose": dict(sorted(consultations.items())),
        "access_requests_searched": searches,
    }

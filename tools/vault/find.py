"""The one rule for looking (R241-12, R241-14): a search and the préfet's yearly figures.

`vault list` shows index fields only and is no access request. Anything that needs to
decrypt a recording's metadata (its agent, place, trigger, notice, whether it was outside
the commune) is a search: it states a requester and a motive (a procedure, training, or a
person's access right), is logged twice (journal and register), and only the searches for
a person's access right count as access requests in the yearly figures. Filtering by agent
without a motive would be monitoring the agents: refused.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from drivers.nmea import distance_m
from recorder.errors import EvidenceError, VaultError
from recorder.evidence.chain import split_pieces
from recorder.evidence.format import META_SUFFIX
from recorder.evidence.metadata import decrypt_metadata
from recorder.localtime import zone
from tools.vault.events import track_points
from tools.vault.extract import FRENCH_PURPOSES, PURPOSES
from tools.vault.index import RecordingRow
from tools.vault.layout import parse_time, utc_iso
from tools.vault.vault import Vault

MAX_RADIUS_M = 20_037_508.0  # half the Earth's circumference: every place is within it
ACCESS = "access"            # a person's access right (droit d'accès): an access request
MOTIVES = (*PURPOSES, ACCESS)
_FRENCH_MOTIVES = {**FRENCH_PURPOSES, "droit d'accès": ACCESS, "droit d'acces": ACCESS}
TRIGGERS = ("intervention", "request", "flagrant_delit", "pending")
NOTICES = ("given", "absent")
ARTICLE = "R241-12 and R241-14 of the code de la sécurité intérieure"


def motive_name(typed) -> str:
    """The internal name of a search's motive, typed in French or English, in any case."""
    name = typed.strip().casefold().replace("\u2019", "'") if isinstance(typed, str) else ""
    name = _FRENCH_MOTIVES.get(name, name)
    if name not in MOTIVES:
        raise VaultError(f"--purpose {typed!r}: a search states its motive, one of judiciaire, administrative, "
                         f"disciplinaire, formation, droit d'accès ({ARTICLE})")
    return name


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
class Filters:
    """What a search looks for; each of these but the period and the camera needs decryption."""
    camera: str | None = None
    agent: str | None = None
    reason: str | None = None
    notice: str | None = None       # "given" or "absent"
    outside: bool = False           # outside the commune only
    near: tuple[float, float] | None = None
    radius_m: float | None = None

    def check(self) -> None:
        if self.near is not None and self.radius_m is None:
            raise VaultError("--near needs --radius M, a positive distance in metres")
        if self.radius_m is not None and self.near is None:
            raise VaultError("--radius needs --near LAT,LON")
        if self.radius_m is not None and not (math.isfinite(self.radius_m) and 0 < self.radius_m <= MAX_RADIUS_M):
            raise VaultError(f"--radius {self.radius_m!r}: a distance in metres, more than 0 and at most "
                             f"{MAX_RADIUS_M:.0f}")
        if self.reason is not None and self.reason not in TRIGGERS:
            raise VaultError(f"--reason {self.reason!r}: one of {', '.join(TRIGGERS)}")
        if self.notice is not None and self.notice not in NOTICES:
            raise VaultError(f"--notice {self.notice!r}: given or absent")
        if self.agent is not None and not self.agent.strip():
            raise VaultError("--agent: an agent number")

    def logged(self) -> dict:
        out = {"camera": self.camera, "agent": self.agent, "reason": self.reason, "notice": self.notice,
               "outside": self.outside or None, "near": list(self.near) if self.near else None,
               "radius_m": self.radius_m}
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class Found:
    row: RecordingRow
    closest_m: float | None = None  # with --near: the closest recorded position
    summary: dict | None = None     # what was decrypted for the filters (memory only)


@dataclass
class FindResult:
    found: list[Found] = field(default_factory=list)
    without_position: list[str] = field(default_factory=list)
    journal_seq: int | None = None


def summary(vault: Vault, row: RecordingRow, identities: list) -> dict:
    """What the filters read from a recording's metadata, decrypted in memory."""
    folder = vault.layout.recording(row.camera_id, row.recording_id)
    static: dict = {}
    points: list = []
    for meta in sorted(folder.glob("*" + META_SUFFIX)):
        try:
            doc = decrypt_metadata(meta, identities, meta.name)
        except EvidenceError as exc:
            if "no identity" in str(exc).lower():  # a wrong identity is the caller's error, said once
                raise VaultError(f"cannot read the metadata of {row.recording_id}: {exc}") from None
            continue  # an unreadable metadata file adds nothing
        if isinstance(doc.get("recording"), dict):
            static = doc["recording"]  # the latest segment's view of the whole recording
        points.extend(track_points(doc.get("events")))
    notice = static.get("notice") if isinstance(static.get("notice"), dict) else {}
    flags = static.get("flags") if isinstance(static.get("flags"), dict) else {}
    return {"agent": static.get("agent"), "reason": static.get("trigger_reason"),
            "notice": bool(notice.get("given")), "outside": flags.get("position") == "outside",
            "points": [(p["lat"], p["lon"]) for p in points]}


def _matches(f: Filters, s: dict) -> tuple[bool, float | None]:
    if f.agent is not None and str(s["agent"]) != f.agent:
        return False, None
    if f.reason is not None and s["reason"] != f.reason:
        return False, None
    if f.notice is not None and s["notice"] != (f.notice == "given"):
        return False, None
    if f.outside and not s["outside"]:
        return False, None
    if f.near is None:
        return True, None
    closest = min(distance_m(f.near[0], f.near[1], lat, lon) for lat, lon in s["points"])
    return closest <= f.radius_m, round(closest, 1)


def search(vault: Vault, since: float, until: float, filters: Filters, *, motive: str, requester: str,
           identities: list, cache: dict | None = None) -> FindResult:
    """Recordings of the period matching the filters; logged twice as a search with its
    motive, requester and filters. ``cache`` (the desk's session) keeps what was decrypted."""
    motive = motive_name(motive)
    if not isinstance(requester, str) or not requester.strip():
        raise VaultError(f"--requester NAME is required: every search says who asked for it ({ARTICLE})")
    if until <= since:
        raise VaultError("--to must be after --from")
    filters.check()
    cache = {} if cache is None else cache
    result = FindResult()
    # A recording overlaps the period if it started before its end (a day at most earlier).
    for row in vault.index.recordings(camera=filters.camera, since=since - 86400, until=until):
        start, end = row.span
        if start >= until or end < since:
            continue
        if row.recording_id not in cache:
            cache[row.recording_id] = summary(vault, row, identities)
        s = cache[row.recording_id]
        if filters.near is not None and not s["points"]:
            result.without_position.append(row.recording_id)
            continue
        ok, closest = _matches(filters, s)
        if ok:
            result.found.append(Found(row, closest, s))
    entry = vault.log("search", purpose=motive, requester=requester.strip(), period=[utc_iso(since), utc_iso(until)],
                      filters=filters.logged(), found=[f.row.recording_id for f in result.found])
    result.journal_seq = entry["seq"]
    return result


def stats(vault: Vault, year: int) -> dict:
    """The yearly figures: cameras, recordings, consultations and extractions by purpose."""
    if not 2000 <= year <= 2200:
        raise VaultError(f"--year {year}: not a plausible year")
    tz = zone(vault.timezone)  # the commune's year, not UTC's: 1 January 00:30 in Paris is in it
    since = datetime(year, 1, 1, tzinfo=tz).timestamp()
    until = datetime(year + 1, 1, 1, tzinfo=tz).timestamp()
    rows = vault.index.recordings(state=None, since=since, until=until)
    extractions: Counter = Counter()
    failed: Counter = Counter()
    consultations: Counter = Counter()
    erased = holds = searches = 0
    data = vault.layout.journal.read_bytes() if vault.layout.journal.exists() else b""
    for piece in split_pieces(data):
        line = piece.line
        if not line or not _within(line.get("at"), since, until):
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
        elif event == "search" and line.get("purpose") == ACCESS:
            searches += 1  # only a person's access right is an access request
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


def _within(at, since: float, until: float) -> bool:
    """Whether a journal entry's time falls in [since, until); an unreadable one does not."""
    try:
        return since <= parse_time(str(at)) < until
    except VaultError:
        return False

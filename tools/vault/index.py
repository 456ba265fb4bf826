"""The vault's index (SQLite): cameras, recordings, their times and ingest state, holds.

The index is a convenience for finding things fast; the journal is the record. Every
change here follows a journal entry, and `pieton vault verify` re-checks the stored files.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from recorder.errors import VaultError

SCHEMA = """
CREATE TABLE IF NOT EXISTS cameras (
    camera_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    enrolled_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recordings (
    recording_id TEXT PRIMARY KEY,
    camera_id TEXT NOT NULL,
    device_seq INTEGER,
    started_at REAL,            -- epoch seconds, from the device's clock
    clock_synchronised INTEGER, -- 0 when the device said its clock was not synchronised
    ingested_at REAL NOT NULL,
    state TEXT NOT NULL,        -- stored | purged
    segments INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    last_hash TEXT NOT NULL,    -- SHA-256 of the manifest's last line, as receipted
    truncated INTEGER NOT NULL DEFAULT 0,
    purged_at REAL,
    ended_at REAL               -- the closed line's time; NULL when recovered after a cut
);
CREATE TABLE IF NOT EXISTS holds (
    recording_id TEXT NOT NULL,
    procedure TEXT NOT NULL,
    since REAL NOT NULL,
    PRIMARY KEY (recording_id, procedure)
);
CREATE TABLE IF NOT EXISTS quarantine (
    folder TEXT PRIMARY KEY,
    recording_id TEXT NOT NULL,
    camera_id TEXT NOT NULL,
    at REAL NOT NULL,           -- when this recording was first seen in quarantine (its retention's base)
    problems TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS camera_erasures (
    recording_id TEXT PRIMARY KEY,  -- erased on the camera after its retention (a signed journal line)
    camera_id TEXT NOT NULL,
    device_seq INTEGER,
    counted_from REAL,          -- its own synchronised start, when the camera dated it so
    learnt_at REAL NOT NULL     -- the ingest that read the line
);
"""


@dataclass
class RecordingRow:
    recording_id: str
    camera_id: str
    device_seq: int | None
    started_at: float | None
    clock_synchronised: bool
    ingested_at: float
    state: str
    segments: int
    bytes: int
    last_hash: str
    truncated: bool
    purged_at: float | None
    ended_at: float | None = None

    @property
    def span(self) -> tuple[float, float]:
        """When the recording ran, as far as known: an unknown end counts as an hour
        (an access request should find too much rather than miss one)."""
        start = self.started_at if self.started_at is not None else self.ingested_at
        return start, self.ended_at if self.ended_at is not None else start + 3600

    @property
    def retention_base(self) -> float:
        """Retention runs from the recording's time, or from ingest when the camera's
        clock could not be trusted."""
        if self.clock_synchronised and self.started_at is not None:
            return self.started_at
        return self.ingested_at


class Index:
    """Every SQLite error (a garbage file, a full disk) becomes a VaultError naming the
    index and what to do; the journal and the stored files are untouched by it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = None
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            self._check_schema()
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            if self.db is not None:
                self.db.close()
            raise self._error(exc) from None

    def _check_schema(self) -> None:
        for table, columns in (("cameras", 3), ("recordings", 13), ("holds", 3), ("quarantine", 5)):
            found = len(self.db.execute(f"PRAGMA table_info({table})").fetchall())
            if found != columns:
                raise sqlite3.DatabaseError(f"table {table} has {found} columns, expected {columns}")

    def _error(self, exc: Exception) -> VaultError:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and "full" in text:
            return VaultError(f"index {self.path}: the vault's disk is full ({text}); nothing stored is lost: "
                              "free space and run the command again")
        return VaultError(f"index {self.path}: cannot be used ({text}); the recordings and the journal are "
                          "untouched: restore the index from a copy (or a mirror)")

    def _run(self, sql: str, args=()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, args)
        except (sqlite3.Error, UnicodeDecodeError) as exc:  # text SQLite holds need not be UTF-8
            raise self._error(exc) from None
        except OverflowError:  # a number SQLite cannot hold (64 bits): never one of ours
            raise VaultError(f"index {self.path}: a number too large to record: {args!r:.200}") from None

    def _all(self, sql: str, args=()) -> list:
        try:
            return self._run(sql, args).fetchall()
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        self.db.close()

    # cameras
    def camera_key(self, camera_id: str) -> str | None:
        row = next(iter(self._all("SELECT public_key FROM cameras WHERE camera_id=?", (camera_id,))), None)
        return _key(camera_id, row[0]) if row else None

    def enrol(self, camera_id: str, public_key: str, at: str) -> None:
        self._run("INSERT OR REPLACE INTO cameras VALUES (?,?,?)", (camera_id, public_key, at))

    def cameras(self) -> list[tuple[str, str, str]]:
        rows = self._all("SELECT camera_id, public_key, enrolled_at FROM cameras ORDER BY camera_id")
        return [(camera, _key(camera, key), at) for camera, key, at in rows]

    # recordings
    def add_recording(self, row: RecordingRow) -> None:
        self._run("INSERT OR REPLACE INTO recordings VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (row.recording_id, row.camera_id, row.device_seq, row.started_at,
                         int(row.clock_synchronised), row.ingested_at, row.state, row.segments, row.bytes,
                         row.last_hash, int(row.truncated), row.purged_at, row.ended_at))

    def recording(self, recording_id: str) -> RecordingRow | None:
        row = next(iter(self._all("SELECT * FROM recordings WHERE recording_id=?", (recording_id,))), None)
        return _row(row) if row else None

    def recordings(self, *, state: str | None = "stored", camera: str | None = None,
                   since: float | None = None, until: float | None = None) -> list[RecordingRow]:
        sql, args = "SELECT * FROM recordings WHERE 1=1", []
        for condition, value in (("state=?", state), ("camera_id=?", camera),
                                 ("COALESCE(started_at, ingested_at) >= ?", since),
                                 ("COALESCE(started_at, ingested_at) < ?", until)):
            if value is not None:
                sql += f" AND {condition}"
                args.append(value)
        sql += " ORDER BY camera_id, COALESCE(device_seq, 0), recording_id"
        return [_row(r) for r in self._all(sql, args)]

    def mark_purged(self, recording_id: str, at: float) -> None:
        self._run("UPDATE recordings SET state='purged', purged_at=? WHERE recording_id=?", (at, recording_id))

    # holds
    def holds(self, recording_id: str) -> list[str]:
        return [r[0] for r in self._all("SELECT procedure FROM holds WHERE recording_id=? ORDER BY since",
                                        (recording_id,))]

    def add_hold(self, recording_id: str, procedure: str, since: float) -> None:
        self._run("INSERT OR IGNORE INTO holds VALUES (?,?,?)", (recording_id, procedure, since))

    def release(self, recording_id: str, procedure: str) -> bool:
        cur = self._run("DELETE FROM holds WHERE recording_id=? AND procedure=?", (recording_id, procedure))
        return cur.rowcount > 0

    # quarantine
    def add_quarantine(self, folder: str, recording_id: str, camera_id: str, at: float, problems: str) -> None:
        self._run("INSERT OR REPLACE INTO quarantine VALUES (?,?,?,?,?)",
                        (folder, recording_id, camera_id, at, problems))

    def quarantined(self) -> list[tuple]:
        return self._all("SELECT folder, recording_id, camera_id, at, problems FROM quarantine ORDER BY at")

    # recordings the camera erased after their retention (learnt from its signed journal)
    def add_camera_erasure(self, recording_id: str, camera_id: str, device_seq: int | None,
                           counted_from: float | None, learnt_at: float) -> None:
        self._run("INSERT OR IGNORE INTO camera_erasures VALUES (?,?,?,?,?)",
                  (recording_id, camera_id, device_seq, counted_from, learnt_at))

    def camera_erasures(self, camera_id: str) -> list[tuple[str, int | None, float | None]]:
        """(recording id, device number, synchronised start or None); odd values read as unknown."""
        rows = self._all("SELECT recording_id, device_seq, counted_from FROM camera_erasures WHERE camera_id=?",
                         (camera_id,))
        return [(rid, seq if type(seq) is int else None,
                 float(at) if isinstance(at, int | float) and math.isfinite(at) else None)
                for rid, seq, at in rows if isinstance(rid, str)]


def _key(camera, key) -> str:
    """A pinned device key as the index holds it: 64 lowercase hex digits."""
    if not (isinstance(key, str) and len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
        raise VaultError(f"index: the key pinned for camera {camera!r} is not 64 hex digits "
                         "(the index was altered or damaged: restore it from a copy)")
    return key


def _row(r) -> RecordingRow:
    """A recordings row, its types checked: an index edited by hand or damaged gives a
    clear error, not a wrong retention date or a traceback far from here."""
    problems = []
    if not (isinstance(r[0], str) and isinstance(r[1], str) and isinstance(r[9], str)):
        problems.append("ids and hash must be text")
    if r[6] not in ("stored", "purged"):
        problems.append(f"state {r[6]!r}")
    for name, value, optional in (("device_seq", r[2], True), ("segments", r[7], False), ("bytes", r[8], False)):
        if not (isinstance(value, int) or (optional and value is None)):
            problems.append(f"{name} {value!r} is not a whole number")
    for name, value, optional in (("started_at", r[3], True), ("ingested_at", r[5], False),
                                  ("purged_at", r[11], True), ("ended_at", r[12], True)):
        if value is None and optional:
            continue
        if not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"{name} {value!r} is not a time")
    if problems:
        raise VaultError(f"index: recording {r[0]!r}: " + "; ".join(problems)
                         + " (the index was altered or damaged: restore it from a copy)")
    return RecordingRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8], r[9], bool(r[10]), r[11], r[12])

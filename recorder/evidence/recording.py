"""A recording being written: its folder, its manifest and its segments.

A segment is streamed into an age writer on ``seg-NNNNNN.ts.age.part``: every full 64 KiB
chunk reaches the file at once and the file is fsynced at least every ``sync_interval``;
each fsync adds a signed ``progress`` line with the durable length and its SHA-256.
Sealing writes the last chunk, fsyncs, renames, writes the encrypted metadata, fsyncs the
folder and adds a signed ``sealed`` line.

The storage keeps a reserve of free space: a write that would eat into it is refused with
StorageFull *before* it reaches the age writer, so the reserve is still there to seal the
segment, write its metadata and close the recording with the reason.

A recording gets from its spool only what writing needs (:class:`WritingTerms`) and a
callback for its end; it never reaches back into the spool.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recorder.errors import AgeError, EvidenceError, StorageFull
from recorder.evidence.age import CHUNK_SIZE, AgeWriter
from recorder.evidence.chain import ChainWriter, fsync_dir
from recorder.evidence.format import CLOSE_META, PART, segment_names, utc_iso
from recorder.evidence.metadata import encrypt_metadata, segment_metadata
from recorder.evidence.storage import Storage


class Durability:
    """Tells an optional observer of every fsync: ``observer("file", path, size)`` and
    ``observer("dir", path, None)``; the power-cut benchmark uses it to know what a real
    power cut would keep."""

    def __init__(self, observer: Callable[[str, str, int | None], None] | None = None):
        self.observer = observer

    def file(self, path, size: int) -> None:
        if self.observer is not None:
            self.observer("file", str(path), size)

    def folder(self, path) -> None:
        if self.observer is not None:
            self.observer("dir", str(path), None)


@dataclass(frozen=True)
class WritingTerms:
    """What writing a recording needs from its spool, and nothing more."""

    recipients: tuple[str, ...]            # the designated persons' age recipients
    sync_interval: float                   # seconds between fsyncs of a segment in progress
    now: Callable[[], float]               # wall clock, epoch seconds
    monotonic: Callable[[], float]         # for the age writer's fsync rhythm
    storage: Storage                       # refuses writes that would eat the reserve
    durability: Durability                 # told of every fsync


# Once this share of the sync interval has passed, the next chunk to reach the file is
# fsynced at once (see SegmentWriter.write): a power cut loses at most about the interval's
# share plus one chunk of media, instead of the whole interval plus a chunk.
EARLY_SYNC = 0.4


def _storage_full(where: Path, exc: OSError) -> StorageFull:
    return StorageFull(f"storage full while writing {where}: {exc.strerror or exc}")


def write_durable(path: Path, data: bytes) -> None:
    """Create ``path`` (never overwriting) with ``data`` and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise _storage_full(path, exc) from None
        raise
    finally:
        os.close(fd)


class _SegmentFile:
    """The segment file as the age writer sees it: unbuffered, counting and hashing the
    ciphertext, so each fsync can be logged with the hash of exactly what is durable."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.size = 0
        self.sha256 = hashlib.sha256()

    def write(self, data) -> int:
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.fd, view)
                self.sha256.update(view[:n])
                self.size += n
                view = view[n:]
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise _storage_full(self.path, exc) from None
            raise
        return len(data)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @property
    def closed(self) -> bool:
        return self.fd < 0


class SegmentWriter:
    """One segment of a recording; see the module docstring."""

    def __init__(self, recording: RecordingWriter, index: int, terms: WritingTerms):
        self.recording = recording
        self.terms = terms
        self.index = index
        self.name, self.meta_name = segment_names(index)
        folder = recording.path
        self.final_path = folder / self.name
        self.part_path = folder / (self.name + PART)
        self.meta_path = folder / self.meta_name
        self.meta_part_path = folder / (self.meta_name + PART)
        self.started_at = terms.now()
        self.events: list[dict] = recording.take_pending_events()
        self.state = "starting"
        self._durable = 0
        self._synced_at = terms.monotonic()
        self._file = _SegmentFile(self.part_path)
        try:
            self._age = AgeWriter(self._file, list(terms.recipients), sync_interval=terms.sync_interval,
                                  clock=terms.monotonic, on_durable=self._on_durable)
            self._age.sync()  # the header now, so even a cut in the first chunk leaves an age file
            # Provisional metadata: the agent and trigger survive a cut in the first segment.
            self._write_meta(self.meta_part_path, final=False)
            fsync_dir(folder)
        except BaseException:
            self._file.close()
            raise
        self.state = "open"
        terms.durability.folder(folder)

    @property
    def durable_size(self) -> int:
        return self._durable

    @property
    def plaintext_size(self) -> int:
        return self._age.plaintext_size

    def _on_durable(self, length: int) -> None:
        self._durable = length
        self._synced_at = self.terms.monotonic()
        self.terms.durability.file(self.part_path, length)
        if self.state != "open":
            return  # the header at the start, or the final fsync of a seal: no progress line
        if length == self._file.size:
            digest = self._file.sha256.hexdigest()
        else:  # the age writer buffered differently than expected: hash what is on disk
            with open(self.part_path, "rb") as f:
                digest = hashlib.sha256(f.read(length)).hexdigest()
        self.recording.manifest.append({"event": "progress", "segment": self.index,
                                        "file": self.part_path.name, "durable_bytes": length,
                                        "sha256": digest})

    def write(self, ts_bytes: bytes) -> None:
        if self.state != "open":
            raise EvidenceError(f"{self.recording.id}/{self.name}: segment is {self.state}, cannot write")
        self.terms.storage.check_write(self.part_path, len(ts_bytes))
        written = self._age.written_size
        self._age.write(ts_bytes)
        if (self._age.written_size > written
                and self.terms.monotonic() - self._synced_at >= self.terms.sync_interval * EARLY_SYNC):
            # A chunk just reached the file: fsync now rather than at the interval's end, when
            # up to a chunk of media would still wait in memory. Every fsync then makes whole
            # chunks durable, the interval still bounds the time between two.
            self._age.sync()

    def sync(self) -> int:
        """Make everything complete durable now (the daemon may call it on a timer)."""
        return self._age.sync()

    def bytes_until_durable(self) -> int:
        """Plaintext bytes still to write before ``sync()`` makes all written so far durable:
        age writes a chunk only once it is full and a byte of the next one is known."""
        return (CHUNK_SIZE - self._age.plaintext_size % CHUNK_SIZE) % CHUNK_SIZE + 1

    def note(self, event: dict) -> None:
        self.events.append(event)

    def _write_meta(self, path: Path, *, final: bool, extra: dict | None = None) -> bytes:
        rec = self.recording
        meta = segment_metadata(rec.id, self.index, rec.static, self.events,
                                started_at=self.started_at, ended_at=self.terms.now() if final else None,
                                final=final, extra=extra)
        return rec.write_metadata(path, meta)

    def seal(self, extra: dict | None = None) -> dict | None:
        """Final chunk, fsync, rename, metadata, folder fsync, signed ``sealed`` line."""
        if self.state != "open":
            raise EvidenceError(f"{self.recording.id}/{self.name}: segment already {self.state}")
        return self._seal(extra, reason=None)

    def abort(self, reason: str) -> dict | None:
        """The segment cannot go on (disk full): seal it from the reserve. When even that
        fails, the ``.part`` stays as it is with a signed ``aborted`` line saying how much
        is durable, and recovery at the next start finds it."""
        if self.state != "open":
            return None
        return self._seal(None, reason=reason)

    def discard(self) -> None:
        """A segment opened ahead (for the press's media) and never written: no manifest
        line names it, so its files go, as if it had never been opened."""
        if self.state != "open" or self._age.plaintext_size:
            raise EvidenceError(f"{self.recording.id}/{self.name}: a {self.state} segment holding "
                                f"{self._age.plaintext_size} bytes cannot be discarded")
        self._file.close()
        self.state = "discarded"
        for path in (self.part_path, self.meta_part_path):
            path.unlink(missing_ok=True)
        fsync_dir(self.recording.path)
        self.terms.durability.folder(self.recording.path)
        self.recording.segment_sealed(self)

    def _seal(self, extra: dict | None, reason: str | None) -> dict | None:
        self.state = "sealing"
        try:
            size = self._age.close()
        except (OSError, AgeError) as exc:
            self._file.close()
            self.state = "aborted"
            self.recording.segment_sealed(self)
            if reason is None:
                raise
            return self._record_aborted(reason, exc)
        self._file.close()
        return self._finish(size, extra, reason)

    def _record_aborted(self, reason: str, exc: Exception) -> dict | None:
        try:
            data = self.part_path.read_bytes()
            return self.recording.manifest.append({
                "event": "aborted", "segment": self.index, "file": self.part_path.name,
                "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "durable_bytes": self._durable, "reason": reason,
                "error": getattr(exc, "strerror", None) or str(exc)})
        except OSError:
            return None  # not even a line fits: recovery will document it

    def _finish(self, size: int, extra: dict | None, reason: str | None) -> dict:
        rec = self.recording
        folder = rec.path
        os.rename(self.part_path, self.final_path)
        meta = self._write_meta(self.meta_path, final=True, extra=extra)
        fsync_dir(folder)
        self.terms.durability.folder(folder)
        try:
            os.unlink(self.meta_part_path)  # superseded by the final metadata
        except FileNotFoundError:
            pass
        self.state = "sealed"
        record = {"event": "sealed", "segment": self.index,
                  "file": self.name, "size": size, "sha256": self._file.sha256.hexdigest(),
                  "meta_file": self.meta_name, "meta_size": len(meta),
                  "meta_sha256": hashlib.sha256(meta).hexdigest()}
        if reason:
            record["reason"] = reason
        line = rec.manifest.append(record)
        rec.segment_sealed(self)
        return line

    def __repr__(self) -> str:
        return f"<SegmentWriter {self.recording.id}/{self.name} {self.state} durable={self._durable}>"


class RecordingWriter:
    """One recording: a folder in the spool with its manifest, segments and metadata.

    ``on_closed(recording, reason)`` is called once its signed ``closed`` line is written
    (the spool journals it and chains the next recording to it). Without a ``manifest`` the
    recording is still being opened by another thread (Spool.begin_recording), which calls
    ``placed`` once the folder is durable in place and ``opening_over`` at its end; until
    then segments wait (``wait_in_place``), notes are kept."""

    def __init__(self, terms: WritingTerms, recording_id: str, seq: int, path: Path,
                 manifest: ChainWriter | None, static: dict, *,
                 on_closed: Callable[[RecordingWriter, str], None] | None = None):
        self.terms = terms
        self.on_closed = on_closed
        self.id = recording_id
        self.seq = seq
        self.path = path
        self.manifest = manifest
        self.static = static
        self.segments = 0
        self.state = "recording"
        self.current: SegmentWriter | None = None
        self.previous: SegmentWriter | None = None   # still open while the next one starts
        self._events: list[dict] = []
        # the media worker notes while the press's segments open in the background
        self._lock = threading.RLock()
        self._in_place = threading.Event()      # opened line durable, folder renamed into place
        self._opening_done = threading.Event()  # ... and journalled (or failed)
        self.opening_error: BaseException | None = None
        self.trace: dict[str, float] = {}       # the opening, step by step (monotonic)
        if manifest is not None:
            self._in_place.set()
            self._opening_done.set()

    # -- opening (Spool.begin_recording) ----------------------------------------------------
    def mark(self, stage: str) -> None:
        self.trace.setdefault(stage, self.terms.monotonic())

    def placed(self, manifest: ChainWriter) -> None:
        """The opened line is durable and the folder in place: segments may open."""
        self.manifest = manifest
        self.mark("in_place")
        self._in_place.set()

    def opening_over(self, error: BaseException | None = None) -> None:
        if error is not None and not self._in_place.is_set():
            self.opening_error = error
            self.state = "closed"   # nothing was recorded: the spool may open the next one
        self.mark("opening_journalled" if error is None else "opening_failed")
        self._in_place.set()
        self._opening_done.set()

    def wait_opened(self) -> None:
        """Wait for the whole opening, its journal entry included; raise why it failed."""
        self._opening_done.wait()
        self.wait_in_place()

    def wait_in_place(self) -> None:
        """Wait until the folder is durable in place; raise why when the opening failed."""
        self._in_place.wait()
        error = self.opening_error
        if error is not None and not isinstance(error, Exception):
            raise error   # a kill (KeyboardInterrupt, SystemExit) in the opening thread
        if error is not None:
            kind = StorageFull if isinstance(error, StorageFull) else EvidenceError
            raise kind(f"recording {self.id} could not be opened: {error}") from error

    def note(self, event: dict) -> None:
        """A timestamped metadata event, kept for the metadata of the segment in progress
        (or of the next one)."""
        event = dict(event)
        event.setdefault("time", utc_iso(self.terms.now()))
        with self._lock:
            if self.current is not None and self.current.state == "open":
                self.current.note(event)
            else:
                self._events.append(event)

    def take_pending_events(self) -> list[dict]:
        """Events noted between segments: the next segment's metadata owns them."""
        with self._lock:
            events, self._events = self._events, []
            return events

    def open_segment(self, *, overlap: bool = False) -> SegmentWriter:
        """The next segment. With ``overlap`` the one in progress may stay open a moment
        (its owner seals it right after): the media captured after the press is made
        durable before the pre-event span's large seal. Segments are still sealed in order."""
        self.wait_in_place()   # outside the lock: notes go on meanwhile
        with self._lock:
            if self.state != "recording":
                raise EvidenceError(f"recording {self.id} is {self.state}: no new segment")
            lingering = self.current is not None and self.current.state == "open"
            if lingering and (not overlap or self.previous is not None):
                raise EvidenceError(f"recording {self.id}: segment {self.current.name} is still open")
            self.terms.storage.check_write(self.path, 0)
            if lingering:
                self.previous = self.current
            self.current = SegmentWriter(self, self.segments + 1 + (1 if lingering else 0), self.terms)
            return self.current

    def segment_sealed(self, segment: SegmentWriter) -> None:
        with self._lock:
            if segment.state == "sealed":
                self.segments += 1
            if segment is self.current:
                self.current = None
            if segment is self.previous:
                self.previous = None

    def write_metadata(self, path: Path, meta: dict) -> bytes:
        """Encrypt ``meta`` to the chief, write it durably to ``path``; returns the file."""
        data = encrypt_metadata(meta, list(self.terms.recipients))
        write_durable(path, data)
        self.terms.durability.file(path, len(data))
        return data

    def close(self, reason: str) -> dict:
        """Seal any open segment, then the signed ``closed`` line and the journal entry."""
        self._opening_done.wait()
        if self.opening_error is not None:
            return {}   # never opened: nothing to close (the spool journalled the opening undone)
        if self.state != "recording":
            raise EvidenceError(f"recording {self.id} already {self.state}")
        self.state = "closing"
        for segment in (self.previous, self.current):   # in segment order
            if segment is not None and segment.state == "open":
                segment.abort(reason)
        record = {"event": "closed", "segments": self.segments, "reason": reason,
                  "ended_at": utc_iso(self.terms.now())}
        if self._events:  # events after the last segment: their own metadata file
            meta = segment_metadata(self.id, 0, self.static, self._events,
                                    started_at=self.terms.now(), ended_at=self.terms.now(), final=True)
            data = self.write_metadata(self.path / CLOSE_META, meta)
            fsync_dir(self.path)
            self.terms.durability.folder(self.path)
            record.update(meta_file=CLOSE_META, meta_size=len(data),
                          meta_sha256=hashlib.sha256(data).hexdigest())
        line = self.manifest.append(record)
        self.manifest.close()
        self.state = "closed"
        if self.on_closed is not None:
            self.on_closed(self, reason)
        return line

    def __repr__(self) -> str:
        return f"<RecordingWriter {self.id} {self.state} segments={self.segments}>"

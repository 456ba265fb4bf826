"""Offload from a docked camera's spool into the vault, in two phases.

Phase one copies a recording into ``incoming/`` (every file fsynced) and verifies the
copy with the one shared verifier (``recorder.evidence.verify``) against the camera's
pinned key. Phase two moves it into ``recordings/`` (or ``quarantine/``) with one rename,
journals it, then indexes it. A crash anywhere loses nothing (the camera still has it:
it frees space only against a receipt) and duplicates nothing (a leftover in ``incoming/``
is redone; a stored folder without its index row is finished by the next run).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from recorder.errors import PietonError, VaultError
from recorder.evidence.chain import fsync_dir, split_pieces, write_atomic
from recorder.evidence.format import INBOX, JOURNAL_FILE, MANIFEST_FILE, RECORDING_ID
from recorder.evidence.receipt import make_receipt, write_receipt
from recorder.evidence.verify import verify_recording
from recorder.retention import synchronised
from tools.vault.ahead import Ahead
from tools.vault.authorisation import ingest_problems
from tools.vault.dating import journal_camera, learn_camera_erasures, quarantine_first_seen
from tools.vault.device_journal import (
    MAX_SEQ,
    check_sequence,
    device_journal_lines,
    journal_endings,
    offload_journal,
)
from tools.vault.durable import make_durable
from tools.vault.index import RecordingRow
from tools.vault.layout import parse_time, remove_tree, utc_iso
from tools.vault.persons import flag_recipients
from tools.vault.retention import purge
from tools.vault.spool_read import SpoolReader
from tools.vault.vault import Vault

# Recordings verified at once, each on its own thread: hashing is what ingest waits for,
# and hashlib lets the threads use every CPU.
VERIFY_WORKERS = 4
# Files of a recording copied and hashed at once (the kernel copies, hashlib hashes
# without the GIL; each creation of a file may wait for the filesystem's journal).
COPY_THREADS = 4


@dataclass
class IngestReport:
    camera: str | None = None
    stored: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    quarantined: list[tuple[str, list[str]]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)     # gaps in the camera's sequence
    journal_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    receipt: Path | None = None
    bytes_copied: int = 0
    erased: list[str] = field(default_factory=list)
    erased_on_camera: list[str] = field(default_factory=list)   # by the camera, after their retention

    @property
    def ok(self) -> bool:
        return not (self.quarantined or self.failed or self.missing or self.journal_problems)


class Progress:
    """A progress bar on stderr for long transfers (only on a terminal)."""

    def __init__(self, total: int, enabled: bool | None = None):
        self.total = max(total, 1)
        self.done = 0
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    def advance(self, n: int, label: str = "") -> None:
        self.done += n
        if self.enabled:
            width = 30
            filled = int(width * self.done / self.total)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done / 1e6:7.1f}/"
                             f"{self.total / 1e6:.1f} MB {label[:40]:<40}")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


class _Durable(threading.Thread):
    """fsyncs a copied folder in the background while the copy is verified: the disk
    writes while the CPU hashes. ``wait()`` re-raises its error, whatever stopped it: a
    folder not known durable is never stored nor receipted."""

    def __init__(self, folder: Path):
        super().__init__(daemon=True)
        self.folder = folder
        self.error: OSError | None = None
        self.start()

    def run(self) -> None:
        try:
            make_durable(self.folder)
        except OSError as exc:
            self.error = exc
        except BaseException as exc:  # noqa: BLE001 - a thread's error is otherwise lost
            self.error = OSError(errno.EIO, f"not made durable ({type(exc).__name__}: {str(exc)[:200]})")

    def wait(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


def _opened_closed(manifest: Path) -> tuple[dict, dict]:
    """The manifest's opened line (when it starts with one) and its closed line, or {}."""
    try:
        data = manifest.read_bytes()
    except OSError:
        return {}, {}
    lines = [p.line for p in split_pieces(data) if p.line is not None]
    opened = lines[0] if lines and lines[0].get("event") == "opened" else {}
    return opened, next((line for line in lines if line.get("event") == "closed"), {})


def _time(line: dict, key: str) -> float | None:
    if not line.get(key):
        return None
    try:
        return parse_time(str(line[key]))
    except VaultError:
        return None


def verify_recording_folder(vault: Vault, camera: str, folder: Path) -> list[str]:
    """Problems of one recording folder checked against the camera's pinned key."""
    return _verify_copy(camera, vault.index.camera_key(camera), folder)[0]


def _recording_row(folder: Path, camera: str, report, ingested_at: float) -> RecordingRow:
    opened, closed = _opened_closed(folder / MANIFEST_FILE)
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    return RecordingRow(
        recording_id=folder.name, camera_id=camera, device_seq=report.recording_seq,
        started_at=_time(opened, "started_at"),
        clock_synchronised=synchronised(opened.get("clock_source")),
        ingested_at=ingested_at, state="stored", segments=report.segments, bytes=size,
        last_hash=report.last_line_hash, truncated=bool(report.truncated), purged_at=None,
        ended_at=_time(closed, "ended_at"))


def _journaled_ingests(vault: Vault) -> set[str]:
    ids = set()
    try:
        data = vault.layout.journal.read_bytes()
    except FileNotFoundError:
        return ids
    for piece in split_pieces(data):
        if piece.line and piece.line.get("event") == "recording-ingested":
            ids.add(piece.line.get("recording"))
    return ids


def finish_interrupted(vault: Vault) -> list[str]:
    """Redo what a crash left half done: clear the staging area, and journal and index a
    recording already moved into ``recordings/`` but not yet indexed."""
    remove_tree(vault.layout.incoming)
    vault.layout.incoming.mkdir()
    done = []
    journaled = None
    for camera_dir in sorted(p for p in vault.layout.recordings.iterdir() if p.is_dir()):
        for folder in sorted(p for p in camera_dir.iterdir() if p.is_dir()):
            if vault.index.recording(folder.name) is not None:
                continue
            problems, report = _verify_copy(camera_dir.name, vault.index.camera_key(camera_dir.name), folder)
            if problems:
                continue  # left for `pieton vault verify` to report; never deleted here
            row = _recording_row(folder, camera_dir.name, report, vault.now())
            journaled = _journaled_ingests(vault) if journaled is None else journaled
            if folder.name not in journaled:
                vault.log("recording-ingested", recording=folder.name, camera=camera_dir.name,
                          device_seq=row.device_seq, segments=row.segments, bytes=row.bytes,
                          last_hash=row.last_hash, truncated=row.truncated, completed_after_crash=True)
            vault.index.add_recording(row)
            done.append(folder.name)
    return done


def _quarantine(vault: Vault, staged: Path, camera: str, rid: str, problems: list[str]) -> Path:
    base = vault.layout.quarantine / camera
    base.mkdir(parents=True, exist_ok=True)
    n = 1
    while (base / f"{rid}.{n}").exists():
        n += 1
    target = base / f"{rid}.{n}"
    write_atomic(staged / "QUARANTINE.json",
                 (json.dumps({"recording": rid, "camera": camera, "at": utc_iso(vault.now()),
                              "problems": problems}, indent=2) + "\n").encode())
    os.rename(staged, target)
    fsync_dir(base)
    vault.log("recording-quarantined", recording=rid, camera=camera, folder=str(target.relative_to(vault.layout.root)),
              problems=problems[:50])
    vault.index.add_quarantine(str(target.relative_to(vault.layout.root)), rid, camera,
                               quarantine_first_seen(vault, camera, rid), "\n".join(problems))
    return target


def _same_quarantined(vault: Vault, camera: str, rid: str, manifest_hash: str) -> bool:
    base = vault.layout.quarantine / camera
    if not base.is_dir():
        return False
    for folder in base.glob(f"{rid}.*"):
        try:
            if hashlib.sha256((folder / MANIFEST_FILE).read_bytes()).hexdigest() == manifest_hash:
                return True
        except OSError:
            continue
    return False


def ingest(vault: Vault, spool_dir: str | Path, *, progress: bool | None = None) -> IngestReport:
    """Offload one camera's spool. Recordings are taken one by one: one that fails is
    quarantined (or, when it cannot even be copied, left on the camera), the others are
    stored and receipted. Nothing is read through a link (``spool_read``)."""
    vault.register  # noqa: B018 - every recording stored is registered: its medium must be there first
    with SpoolReader(spool_dir) as spool:
        try:
            return _ingest(vault, spool, progress)
        finally:
            _clear_incoming(vault)  # a staged copy never stays behind, whatever stopped the ingest


def _ingest(vault: Vault, spool: SpoolReader, progress: bool | None) -> IngestReport:
    listing = spool.listing()
    folders = listing.recordings
    if not folders and not listing.refused and not spool.exists(JOURNAL_FILE):
        raise VaultError(f"--from {spool.path}: no recording and no {JOURNAL_FILE}: not a camera spool")
    names = [n for _, n in folders] + [n for n, _ in listing.refused]
    cameras = {RECORDING_ID.fullmatch(name)["camera"] for name in names}
    report = IngestReport()
    if len(cameras) > 1:
        raise VaultError(f"--from {spool.path}: recordings of several cameras ({', '.join(sorted(cameras))}); "
                         "a spool holds one camera's recordings")
    finish_interrupted(vault)
    camera = next(iter(cameras), None) or journal_camera(spool)
    if camera is None:  # only a journal that names no one camera: nothing to offload
        report.notes.append("no recording to offload")
        return report
    report.camera = camera
    key_hex = vault.index.camera_key(camera)
    vault.log("ingest-started", camera=camera, spool=str(spool.path.resolve()), recordings=len(folders))
    for name, why in listing.refused:
        report.failed.append((name, why))
        vault.log("ingest-failed", recording=name, camera=camera, reason=why)
    report.journal_problems += offload_journal(vault, spool, camera, key_hex)
    device_journal = device_journal_lines(vault, camera, key_hex)
    endings = journal_endings(device_journal)
    held = {name: spool.last_line_hash(name, MANIFEST_FILE) for _, name in folders}
    todo = []
    for _seq, rid in folders:
        row = vault.index.recording(rid)
        if row is not None and row.last_hash == held[rid]:
            report.already.append(rid)
        else:
            todo.append(rid)  # new, or same id with other content: verified and quarantined below
    stopped = None
    try:
        _store(vault, spool, todo, camera, key_hex, report, endings, progress)
        report.erased_on_camera = learn_camera_erasures(vault, camera, device_journal)
    except (PietonError, OSError, sqlite3.Error) as exc:
        stopped = exc  # the vault itself cannot go on (disk full, index): receipt what is stored
    _clear_incoming(vault)
    if stopped is None:
        report.missing = check_sequence(vault, listing, camera, device_journal)
    _issue_receipt(vault, spool, camera, key_hex, folders, held, report)
    if stopped is not None:
        why = "the vault's disk is full" if getattr(stopped, "errno", None) == errno.ENOSPC else str(stopped)
        try:
            vault.log("ingest-stopped", camera=camera, reason=why[:500], stored=report.stored)
        except (PietonError, OSError):
            pass  # the journal's disk may be the full one; the error below is what the chief sees
        raise VaultError(f"ingest from {spool.path} stopped: {why}; {len(report.stored)} recording(s) stored "
                         f"before it{' and receipted' if report.receipt else ''}, the camera keeps the others")
    report.notes += flag_recipients(vault, camera, report.stored)  # stored all the same, said
    report.erased = purge(vault).erased
    vault.log("ingest-finished", camera=camera, stored=report.stored, already=report.already,
              quarantined=[q[0] for q in report.quarantined], failed=[f[0] for f in report.failed],
              missing=report.missing, bytes=report.bytes_copied)
    return report


def _store(vault: Vault, spool: SpoolReader, todo: list[str], camera: str, key_hex: str | None,
           report: IngestReport, endings: dict[str, str], progress: bool | None) -> None:
    bar = Progress(sum(spool.size(rid) for rid in todo), progress)
    workers = max(1, min(VERIFY_WORKERS, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vault-verify") as pool, \
            ThreadPoolExecutor(max_workers=COPY_THREADS, thread_name_prefix="vault-copy") as copier:
        # copies run on their own thread, at most this far ahead of the commits
        staging = Ahead(lambda rid: _stage(vault, spool, rid, camera, key_hex, bar, pool, copier), todo, workers)
        try:
            for item in staging:
                _commit_one(vault, item, camera, report, endings)
        finally:
            for item in staging.close():  # the vault stopped: let their fsyncs end before clearing
                item.settle()
    bar.finish()


def _clear_incoming(vault: Vault) -> None:
    for path in vault.layout.incoming.iterdir() if vault.layout.incoming.is_dir() else []:
        if path.is_dir() and not path.is_symlink():
            remove_tree(path)
        else:
            path.unlink(missing_ok=True)


def _issue_receipt(vault: Vault, spool: SpoolReader, camera: str, key_hex: str | None,
                   folders: list[tuple[int, str]], held: dict[str, str | None], report: IngestReport) -> None:
    """The receipt lists everything of this spool the vault holds, verified, as the camera has it."""
    try:
        covered = []
        for _seq, rid in folders:
            row = vault.index.recording(rid)
            if row is not None and row.last_hash == held[rid]:
                covered.append({"id": row.recording_id, "last_hash": row.last_hash, "segments": row.segments})
        if not (covered and key_hex):
            return
        receipt = make_receipt(vault.signer, camera, key_hex, covered, utc_iso(vault.now()))
        report.receipt = write_receipt(spool.inbox(INBOX), receipt)
    except (PietonError, OSError, sqlite3.Error) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        report.notes.append(f"receipt not written to {spool.path / INBOX}: {why}; "
                            "the camera keeps its recordings until the next offload")
        return
    vault.log("receipt-issued", camera=camera, recordings=[r["id"] for r in covered], receipt=report.receipt.name)


@dataclass
class _Staged:
    rid: str
    staged: Path
    durable: _Durable | None = None
    check: object = None  # Future of (problems, verifier report)
    refused: list[str] = field(default_factory=list)  # links and special files left on the camera
    copied: int = 0
    error: Exception | None = None  # the copy failed: nothing staged

    def settle(self) -> None:
        """Wait for its background work, whatever its outcome."""
        for wait in (self.durable.join if self.durable else None, self.check.exception if self.check else None):
            if wait is not None:
                wait()


def _verify_copy(camera: str, key_hex: str | None, folder: Path, digests=None):
    """(problems, verifier's report or None) of a recording against the camera's pinned
    key; phase one runs it on a worker thread (no index access here). Whatever the content,
    this returns: a verifier that stumbles on it says the recording is not intact.
    ``digests``: its files' hashes, read back as they were copied (``spool_read.Copied``)."""
    if key_hex is None:
        return [f"camera {camera} is not enrolled in this vault (pieton vault enrol)"], None
    try:
        report = verify_recording(folder, devices={camera: bytes.fromhex(key_hex)}, digests=digests)
    except Exception as exc:  # noqa: BLE001 - hostile content: this recording alone fails
        return [f"{folder.name}: cannot be verified ({type(exc).__name__}: {str(exc)[:300]})"], None
    return [str(p) for p in report.problems], report


def _stage(vault: Vault, spool: SpoolReader, rid: str, camera: str, key_hex: str | None,
           bar: Progress, pool, copier) -> _Staged:
    """Phase one, on the staging thread (no journal nor index here): copy into incoming/
    (files side by side on ``copier``, each hashed as read back), then fsync and verify
    the copy in the background while the next one is copied."""
    staged = vault.layout.incoming / rid
    try:
        remove_tree(staged)  # a leftover from an interrupted run is redone from the camera's copy
        copied = spool.copy_recording(rid, staged, bar, copier)
    except (OSError, VaultError) as exc:
        return _Staged(rid, staged, error=exc)
    return _Staged(rid, staged, _Durable(staged), pool.submit(_verify_copy, camera, key_hex, staged, copied.digests),
                   copied.problems, copied.bytes)


def _failed(vault: Vault, staged: Path, camera: str, rid: str, exc: Exception, report: IngestReport) -> None:
    remove_tree(staged)
    if isinstance(exc, OSError):
        why = "the vault's disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    else:
        why = str(exc)
    report.failed.append((rid, why))
    try:
        vault.log("ingest-failed", recording=rid, camera=camera, reason=why)
    except OSError:
        pass


def _commit_one(vault: Vault, item: _Staged, camera: str, report: IngestReport, endings: dict[str, str]) -> None:
    """Phase two for one recording. What its content makes fail is this recording's
    problem (quarantined); what the vault's own disk or index makes fail stops the ingest."""
    if item.error is not None:
        _failed(vault, item.staged, camera, item.rid, item.error, report)
        return
    report.bytes_copied += item.copied
    try:
        _commit(vault, item, camera, report, endings)
    except (PietonError, OSError, sqlite3.Error):
        raise
    except Exception as exc:  # noqa: BLE001 - hostile content the checks did not foresee
        problems = [f"{item.rid}: cannot be checked ({type(exc).__name__}: {str(exc)[:300]})"]
        if item.staged.is_dir():
            _quarantine(vault, item.staged, camera, item.rid, problems)
        report.quarantined.append((item.rid, problems))


def _commit(vault: Vault, item: _Staged, camera: str, report: IngestReport, endings: dict[str, str]) -> None:
    """Phase two: one rename into recordings/ (or quarantine/), journal, index."""
    rid, staged = item.rid, item.staged
    try:
        problems, verified = item.check.result()
        item.durable.wait()
    except OSError as exc:
        _failed(vault, staged, camera, rid, exc, report)
        return
    problems = item.refused + problems
    existing = vault.index.recording(rid)
    if existing is not None:
        problems.append(f"{rid}: the vault already holds this recording with other content "
                        "(a second copy that differs: altered on the camera or in the vault)")
    seq = getattr(verified, "recording_seq", None)
    if not problems and seq is not None and (not isinstance(seq, int) or not 0 <= seq < MAX_SEQ):
        problems.append(f"{rid}: recording number {str(seq)[:30]} is out of any camera's range")
    if not problems:
        link = _link_problem(vault, camera, rid, verified)
        if link:
            problems.append(link)
        said = endings.get(rid)
        if said is not None and said != verified.last_line_hash:
            problems.append(f"{rid}: the device journal says it ended with another manifest line "
                            "(lines removed or added after it was closed)")
        problems += ingest_problems(vault, camera, staged, report)  # retired camera, arrêté (R241-8)
    if problems:
        manifest_hash = hashlib.sha256((staged / MANIFEST_FILE).read_bytes()).hexdigest() \
            if (staged / MANIFEST_FILE).is_file() else ""
        if manifest_hash and _same_quarantined(vault, camera, rid, manifest_hash):
            remove_tree(staged)
            report.quarantined.append((rid, problems + ["(already in quarantine from an earlier offload)"]))
            return
        _quarantine(vault, staged, camera, rid, problems)
        report.quarantined.append((rid, problems))
        return
    target = vault.layout.recording(camera, rid)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staged, target)
    fsync_dir(target.parent)
    row = _recording_row(target, camera, verified, vault.now())
    vault.log("recording-ingested", recording=rid, camera=camera, device_seq=row.device_seq,
              segments=row.segments, bytes=row.bytes, last_hash=row.last_hash, truncated=row.truncated)
    vault.index.add_recording(row)
    report.stored.append(rid)


def _link_problem(vault: Vault, camera: str, rid: str, verified) -> str | None:
    """The recording must name the last manifest line of the camera's previous recording,
    when the vault holds that one (both as its opened line states them, read by the verifier)."""
    seq = verified.recording_seq
    if not isinstance(seq, int) or seq == 0:
        return None
    rows = [r for r in vault.index.recordings(state=None, camera=camera) if r.device_seq == seq - 1]
    if rows and verified.previous_recording_last_line not in (None, rows[0].last_hash):
        return (f"{rid}: does not follow {rows[0].recording_id} (its opened line names another "
                "previous last line: a recording was replaced)")
    return None

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
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from recorder.errors import VaultError
from recorder.evidence.chain import fsync_dir, signature_valid, split_pieces
from recorder.evidence.format import INBOX, JOURNAL_CONTEXT, JOURNAL_FILE, MANIFEST_FILE, RECORDING_ID
from recorder.evidence.journal import read_journal
from recorder.evidence.receipt import make_receipt, write_receipt
from recorder.evidence.sequence import describe_range, journal_seq, missing_ranges
from recorder.evidence.verify import verify_recording
from tools.vault.index import RecordingRow
from tools.vault.layout import parse_time, remove_tree, utc_iso, write_atomic
from tools.vault.vault import Vault

UNSYNCHRONISED = ("unsynchronised", "unknown", "none", "")
# Recordings verified at once, each on its own thread: hashing is what ingest waits for,
# and hashlib lets the threads use every CPU.
VERIFY_WORKERS = 4


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


def _copy_file(src: Path, dst: Path, progress: Progress | None) -> int:
    shutil.copyfile(src, dst)  # in the kernel (sendfile / copy_file_range)
    size = dst.stat().st_size
    if progress:
        progress.advance(size, src.parent.name)
    return size


def _copy_tree(src: Path, dst: Path, progress: Progress | None) -> int:
    """Copy a recording folder; the copies are made durable by ``_make_durable``."""
    remove_tree(dst)  # a leftover from an interrupted run is redone from the camera's copy
    dst.mkdir(parents=True)
    total = 0
    for path in sorted(src.iterdir()):
        if path.is_file():
            total += _copy_file(path, dst / path.name, progress)
        elif path.exists():
            (dst / path.name).mkdir()  # listed as an unexpected entry by the verifier
    return total


class _Durable(threading.Thread):
    """fsyncs a copied folder in the background while the copy is verified: the disk
    writes while the CPU hashes. ``wait()`` re-raises its error."""

    def __init__(self, folder: Path):
        super().__init__(daemon=True)
        self.folder = folder
        self.error: OSError | None = None
        self.start()

    def run(self) -> None:
        try:
            for path in sorted(self.folder.iterdir()):
                if path.is_file():
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            fsync_dir(self.folder)
        except OSError as exc:
            self.error = exc

    def wait(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


def _last_line_hash(manifest: Path) -> str | None:
    from recorder.evidence.spool import last_good_line
    return last_good_line(manifest)[1]


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
        clock_synchronised=str(opened.get("clock_source", "unknown")).lower() not in UNSYNCHRONISED,
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
            key = vault.index.camera_key(camera_dir.name)
            report = verify_recording(folder, devices={camera_dir.name: bytes.fromhex(key)} if key else {})
            if report.problems:
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
    vault.index.add_quarantine(str(target.relative_to(vault.layout.root)), rid, camera, vault.now(),
                               "\n".join(problems))
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
    spool = Path(spool_dir)
    if not spool.is_dir():
        raise VaultError(f"--from {spool}: not a folder (is the camera docked and its spool mounted?)")
    folders = sorted((int(RECORDING_ID.fullmatch(p.name)["seq"]), p) for p in spool.iterdir()
                     if p.is_dir() and RECORDING_ID.fullmatch(p.name))
    if not folders and not (spool / JOURNAL_FILE).is_file():
        raise VaultError(f"--from {spool}: no recording and no {JOURNAL_FILE}: not a camera spool")
    cameras = {RECORDING_ID.fullmatch(p.name)["camera"] for _, p in folders}
    report = IngestReport()
    if len(cameras) > 1:
        raise VaultError(f"--from {spool}: recordings of several cameras ({', '.join(sorted(cameras))}); "
                         "a spool holds one camera's recordings")
    finish_interrupted(vault)
    if not cameras:  # only a journal: it does not name its camera, nothing to offload
        report.notes.append("no recording to offload")
        return report
    camera = next(iter(cameras))
    report.camera = camera
    key_hex = vault.index.camera_key(camera)
    vault.log("ingest-started", camera=camera, spool=str(spool.resolve()), recordings=len(folders))
    _offload_journal(vault, spool, camera, key_hex, report)
    device_journal = _device_journal_lines(vault, camera)
    endings = _journal_endings(device_journal)
    todo = []
    for _seq, folder in folders:
        rid = folder.name
        row = vault.index.recording(rid)
        last = _last_line_hash(folder / MANIFEST_FILE)
        if row is not None:
            if row.last_hash == last:
                report.already.append(rid)
            else:
                todo.append(folder)  # same id, other content: verified and quarantined below
            continue
        todo.append(folder)
    bar = Progress(sum(f.stat().st_size for folder in todo for f in folder.iterdir() if f.is_file()), progress)
    workers = max(1, min(VERIFY_WORKERS, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vault-verify") as pool:
        pending: list[_Staged] = []
        for folder in todo:
            item = _stage(vault, folder, camera, key_hex, report, bar, pool)
            if item is not None:
                pending.append(item)
            while len(pending) > workers:  # copies run at most this far ahead of verification
                _commit(vault, pending.pop(0), camera, report, endings)
        for item in pending:
            _commit(vault, item, camera, report, endings)
    bar.finish()
    _check_sequence(vault, spool, camera, report, device_journal)
    # The receipt lists everything of this spool the vault holds, verified, as the camera has it.
    covered = []
    for _seq, folder in folders:
        row = vault.index.recording(folder.name)
        if row is not None and row.last_hash == _last_line_hash(folder / MANIFEST_FILE):
            covered.append({"id": row.recording_id, "last_hash": row.last_hash, "segments": row.segments})
    if covered and key_hex:
        receipt = make_receipt(vault.signer, camera, key_hex, covered, utc_iso(vault.now()))
        try:
            report.receipt = write_receipt(spool / INBOX, receipt)
        except OSError as exc:
            report.notes.append(f"receipt not written to {spool / INBOX}: {exc.strerror}; "
                                "the camera keeps its recordings until the next offload")
        else:
            vault.log("receipt-issued", camera=camera, recordings=[r["id"] for r in covered],
                      receipt=report.receipt.name)
    from tools.vault.retention import purge
    report.erased = purge(vault).erased
    vault.log("ingest-finished", camera=camera, stored=report.stored, already=report.already,
              quarantined=[q[0] for q in report.quarantined], failed=[f[0] for f in report.failed],
              missing=report.missing, bytes=report.bytes_copied)
    return report


def _device_journal_lines(vault: Vault, camera: str) -> list[dict]:
    """The lines of the vault's (verified) copy of the camera's device journal."""
    path = vault.layout.device_journal(camera)
    return read_journal(path, None).lines if path.is_file() else []


def _journal_endings(device_journal: list[dict]) -> dict[str, str]:
    """recording id -> the last manifest line the device journal says it ended with (its
    latest ``recording closed`` or ``recording recovered`` entry)."""
    endings: dict[str, str] = {}
    for line in device_journal:
        data = line.get("data") or {}
        if line.get("event") in ("recording closed", "recording recovered") and data.get("last_line_hash"):
            endings[str(data.get("recording_id"))] = data["last_line_hash"]
    return endings


@dataclass
class _Staged:
    rid: str
    staged: Path
    durable: _Durable
    check: object  # Future of (problems, verifier report)


def _verify_copy(camera: str, key_hex: str | None, folder: Path):
    """(problems, verifier's report or None) of a recording against the camera's pinned
    key; phase one runs it on a worker thread (no index access here)."""
    if key_hex is None:
        return [f"camera {camera} is not enrolled in this vault (pieton vault enrol)"], None
    report = verify_recording(folder, devices={camera: bytes.fromhex(key_hex)})
    return [str(p) for p in report.problems], report


def _stage(vault: Vault, folder: Path, camera: str, key_hex: str | None, report: IngestReport,
           bar: Progress, pool) -> _Staged | None:
    """Phase one: copy into incoming/, then fsync and verify the copy in the background
    while the next recording is copied (the kernel copies, hashlib hashes on the other CPU)."""
    rid = folder.name
    staged = vault.layout.incoming / rid
    try:
        report.bytes_copied += _copy_tree(folder, staged, bar)
    except OSError as exc:
        _failed(vault, staged, camera, rid, exc, report)
        return None
    return _Staged(rid, staged, _Durable(staged), pool.submit(_verify_copy, camera, key_hex, staged))


def _failed(vault: Vault, staged: Path, camera: str, rid: str, exc: OSError, report: IngestReport) -> None:
    remove_tree(staged)
    why = "the vault's disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    report.failed.append((rid, why))
    try:
        vault.log("ingest-failed", recording=rid, camera=camera, reason=why)
    except OSError:
        pass


def _commit(vault: Vault, item: _Staged, camera: str, report: IngestReport, endings: dict[str, str]) -> None:
    """Phase two: one rename into recordings/ (or quarantine/), journal, index."""
    rid, staged = item.rid, item.staged
    try:
        problems, verified = item.check.result()
        item.durable.wait()
    except OSError as exc:
        _failed(vault, staged, camera, rid, exc, report)
        return
    existing = vault.index.recording(rid)
    if existing is not None:
        problems.append(f"{rid}: the vault already holds this recording with other content "
                        "(a second copy that differs: altered on the camera or in the vault)")
    if not problems:
        link = _link_problem(vault, camera, rid, verified)
        if link:
            problems.append(link)
        said = endings.get(rid)
        if said is not None and said != verified.last_line_hash:
            problems.append(f"{rid}: the device journal says it ended with another manifest line "
                            "(lines removed or added after it was closed)")
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


def _offload_journal(vault: Vault, spool: Path, camera: str, key_hex: str | None, report: IngestReport) -> None:
    """Copy the device journal; it must verify and only ever grow."""
    src = spool / JOURNAL_FILE
    if not src.is_file():
        report.journal_problems.append(f"{src}: the device journal is missing")
        vault.log("device-journal-problem", camera=camera, problems=report.journal_problems)
        return
    if key_hex is None:
        return  # the recordings are quarantined for the unknown camera; nothing to pin against
    data = src.read_bytes()
    staged = vault.layout.incoming / f"{camera}.journal.jsonl"
    staged.write_bytes(data)
    chain = read_journal(staged, bytes.fromhex(key_hex))
    problems = list(chain.problems)
    dest = vault.layout.device_journal(camera)
    if dest.is_file():
        old = dest.read_bytes()
        if not data.startswith(old):
            problems.append("the device journal does not extend the copy the vault holds "
                            "(lines removed or rewritten on the camera); the previous copy is kept")
    if problems:
        report.journal_problems.extend(f"{JOURNAL_FILE}: {p}" for p in problems)
        vault.log("device-journal-problem", camera=camera, problems=problems[:50])
        if dest.is_file():
            keep = dest.with_name(f"journal.rejected-{utc_iso(vault.now()).replace(':', '')}.jsonl")
            os.replace(staged, keep)
            return
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, dest)
    fsync_dir(dest.parent)


def _check_sequence(vault: Vault, spool: Path, camera: str, report: IngestReport,
                    device_journal: list[dict]) -> None:
    """Every recording number the camera used must be in the spool or the vault. Only
    signed numbers (verified recordings, the verified device journal) say how far the
    sequence goes; folder names only say what is present. Gaps come as ranges."""
    signed: set[int] = set()
    for row in vault.index.recordings(state=None, camera=camera):
        if isinstance(row.device_seq, int):
            signed.add(row.device_seq)
    present = set(signed)
    for folder in spool.iterdir():
        m = RECORDING_ID.fullmatch(folder.name)
        if m and folder.is_dir():
            present.add(int(m["seq"]))
    for quarantined in vault.index.quarantined():
        m = RECORDING_ID.fullmatch(quarantined[1])
        if m and quarantined[2] == camera:
            present.add(int(m["seq"]))
    named: dict[int, str] = {}
    key_hex = vault.index.camera_key(camera)
    for line in device_journal:
        seq = journal_seq(line)
        if (str(line.get("event", "")).startswith("recording ") and seq is not None and key_hex
                and signature_valid(line, JOURNAL_CONTEXT, bytes.fromhex(key_hex))):
            rid = line["data"].get("recording_id")
            named[seq] = rid if isinstance(rid, str) else f"#{seq}"
    top = max([*signed, *named], default=-1)
    for first, last in missing_ranges(present, top):
        report.missing.append(describe_range(first, last, named, camera))
    if report.missing:
        vault.log("recordings-missing", camera=camera, recordings=report.missing,
                  reason="in the camera's sequence but neither on the camera nor in the vault")

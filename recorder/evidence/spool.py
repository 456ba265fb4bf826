"""The device spool: where recordings are written, and the device journal.

Layout: ``<spool>/journal.jsonl`` and one folder ``<spool>/<recording-id>/`` per recording
(``manifest.jsonl``, ``seg-NNNNNN.ts.age``, ``seg-NNNNNN.meta.age``). A recording folder is
made as ``.opening-<recording-id>`` and renamed into place once its signed ``opened`` line is
durable, so every folder named by a recording id starts with that line. A recording a vault
receipt frees is renamed ``.freeing-<recording-id>``, journalled, then removed; a start
finishes what a kill left (``finish_freeing``). The recording
sequence number and the hash of the previous recording's last manifest line are found
again at every start from the lines the device key signed (``recorder.evidence.sequence``),
so they never go backwards and nothing unsigned moves them.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from drivers.signer import Signer
from recorder.clock import wall_now
from recorder.errors import EvidenceError, RecordingRefused, StorageFull, VerificationError
from recorder.evidence.age import parse_recipient
from recorder.evidence.chain import SCAN_WINDOW, ChainWriter, fsync_dir, line_hash, windows_from_end
from recorder.evidence.format import (
    CAMERA_ID_HELP,
    FREEING_PREFIX,
    INBOX,
    JOURNAL_FILE,
    MANIFEST_CONTEXT,
    MANIFEST_FILE,
    OFFLOAD_RECEIPT,
    OPENING_PREFIX,
    OPENING_UNDONE,
    RECORDING_CLOSED,
    SPACE_FREED,
    is_camera_id,
    parse_recording_id,
    recording_id,
    utc_iso,
)
from recorder.evidence.journal import DeviceJournal
from recorder.evidence.receipt import freeable, verify_receipt
from recorder.evidence.recording import Durability, RecordingWriter, WritingTerms
from recorder.evidence.recovery import recover_recording
from recorder.evidence.sequence import journal_endings, signed_opened_seq, signed_state
from recorder.evidence.storage import DEFAULT_RESERVE_BYTES, Storage

log = logging.getLogger("pieton.spool")


def last_good_line(path: Path) -> tuple[dict | None, str | None]:
    """The last well-formed line of a chain file and its hash (no signature check), read
    from the end a window at a time."""
    try:
        for pieces in windows_from_end(path, SCAN_WINDOW):
            for piece in reversed(pieces):
                if piece.line is not None:
                    return piece.line, line_hash(piece.raw)
    except (FileNotFoundError, IsADirectoryError):
        pass
    return None, None


class Spool:
    """Opens recordings, keeps the device journal, and recovers after a power cut.

    ``spool_dir``: the folder on the camera's storage; ``signer``: the device key;
    ``recipients``: the designated persons' age recipients; ``camera_id``, ``config_digest``
    and ``config_signed``: what every ``opened`` line binds. ``storage`` is the one judge of
    free space (the daemon builds it from ``[storage]``); without it, one is made for
    ``spool_dir`` from ``min_free_bytes`` and ``reserve_bytes``. ``observer`` (optional) is
    told of every fsync: ``observer("file", path, size)`` and ``observer("dir", path, None)``;
    the power-cut benchmark uses it to know what a real power cut would keep.
    """

    def __init__(self, spool_dir: str | Path, signer: Signer, recipients: list[str], camera_id: str,
                 config_digest: str, config_signed: bool, *, sync_interval: float = 0.5,
                 wall_clock=time.time, monotonic=time.monotonic, storage: Storage | None = None,
                 min_free_bytes: int | None = None, reserve_bytes: int = DEFAULT_RESERVE_BYTES, observer=None):
        if not recipients:
            raise EvidenceError("no recipients: the chief's age recipient (age1...) is required to record")
        for r in recipients:
            parse_recipient(r)  # AgeError naming the bad one
        if not is_camera_id(camera_id):
            raise EvidenceError(f"camera id {camera_id!r}: {CAMERA_ID_HELP} (it names recordings)")
        self.dir = Path(spool_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.signer = signer
        self.recipients = list(recipients)
        self.camera_id = camera_id
        self.config_digest = config_digest
        self.config_signed = bool(config_signed)
        self.sync_interval = sync_interval
        self.now = wall_now(wall_clock)
        self.monotonic = monotonic
        if storage is None:
            storage = Storage(self.dir, reserve_bytes=reserve_bytes,
                              **({} if min_free_bytes is None else {"min_free_bytes": min_free_bytes}))
        self.storage = storage
        self.durability = Durability(observer)
        self.terms = WritingTerms(tuple(self.recipients), sync_interval, self.now, monotonic,
                                  storage, self.durability)
        self.journal = DeviceJournal(self.dir / JOURNAL_FILE, signer, self.recipients,
                                     wall_clock=self.now, on_durable=self.durability.file)
        self.current: RecordingWriter | None = None
        self._recovered = False
        self._next_seq = 0
        self._prev_hash: str | None = None
        self._opener: ThreadPoolExecutor | None = None   # makes openings durable (begin_recording)

    # -- start ---------------------------------------------------------------------------
    def _numbered_recordings(self) -> list[tuple[int, Path]]:
        """(sequence number, folder) of every recording folder, in sequence order. The number
        is the folder name's: a claim, which only a signed line confirms."""
        found = []
        for entry in self.dir.iterdir():
            name = parse_recording_id(entry.name)
            if name is not None and entry.is_dir() and not entry.is_symlink():
                found.append((name.seq, entry))
        return sorted(found)

    def recordings(self) -> list[Path]:
        return [p for _, p in self._numbered_recordings()]

    def recover(self) -> list[dict]:
        """Run at every start: remove the ``.opening-`` folders a cut left (they hold no
        media; journalled), give every recording left unfinished a signed ``recovered``
        line (nothing of a recording deleted or rewritten), write the journal entry a cut kept from a
        recording that did close, then find the sequence state again."""
        self._undo_openings()
        self.finish_freeing()
        reports = []
        key = self.signer.public_key
        expected = signed_state(self.dir, key, self._numbered_recordings()).next_seq
        # Unsigned entries may hide a missing one: the verifier, which counts only signed ones, says so.
        endings = self._journal_endings({folder.name for _, folder in self._numbered_recordings()})
        for seq, folder in self._numbered_recordings():
            if self.current is not None and self.current.state != "closed" and folder == self.current.path:
                continue  # being written by this process, not left by a cut
            line = recover_recording(folder, self.signer, on_durable=self.durability.file)
            if line is None:
                self._journal_late_close(seq, folder, endings.get(folder.name))
                continue
            reports.append(line)
            _, last_hash = last_good_line(folder / MANIFEST_FILE)
            entry = {"recording_id": folder.name, "last_line_hash": last_hash,
                     "segments_sealed": line.get("segments_sealed"),
                     "files": [f["file"] for f in line.get("found", [])]}
            # The journal signs a number only when a signed line vouches for it, or when the
            # folder is the one a cut left before its opened line: the next number, ours.
            name = parse_recording_id(folder.name)
            if signed_opened_seq(folder, key) == seq or (seq == expected and name.camera == self.camera_id):
                entry["recording_seq"] = seq
            self.journal.append("recording recovered", entry)
        self._load_sequence()
        self._recovered = True
        return reports

    def _undo_openings(self) -> None:
        """Remove the folders a cut left before their opened line was renamed into place:
        they hold at most that line (no media, no number taken: the sequence counts signed
        lines of recording folders only), journalled. Anything else found there is not
        ours: left alone."""
        for entry in sorted(self.dir.iterdir()):
            if not entry.name.startswith(OPENING_PREFIX) or entry.is_symlink() or not entry.is_dir():
                continue
            held = list(entry.iterdir())
            if any(p.name != MANIFEST_FILE or p.is_symlink() or not p.is_file() for p in held):
                log.warning("%s: holds more than an opened line, left alone", entry.name)
                continue
            size = sum(p.stat().st_size for p in held)
            shutil.rmtree(entry)
            fsync_dir(self.dir)
            self.journal.append(OPENING_UNDONE, {"folder": entry.name, "bytes": size,
                                                 "why": "cut before its opened line was in place: nothing recorded"})

    def _journal_endings(self, held: set[str]) -> dict[str, str]:
        """How the journal says each recording held in the spool ended (its latest entry),
        read from the end a window at a time."""
        endings: dict[str, str] = {}
        try:
            for pieces in windows_from_end(self.dir / JOURNAL_FILE, SCAN_WINDOW):
                said = journal_endings(p.line for p in pieces if p.line)
                endings = {**{k: v for k, v in said.items() if k in held}, **endings}  # later wins
        except FileNotFoundError:
            pass
        return endings

    def _journal_late_close(self, seq: int, folder: Path, said: str | None) -> None:
        """A cut between a recording's closed line and its journal entry: write the entry
        now, so the journal says how every recording of ours ended."""
        line, last_hash = last_good_line(folder / MANIFEST_FILE)
        if said == last_hash or signed_opened_seq(folder, self.signer.public_key) != seq:
            return
        self.journal.append(RECORDING_CLOSED, {
            "recording_id": folder.name, "recording_seq": seq, "segments": line.get("segments"),
            "reason": line.get("reason"), "last_line_hash": last_hash, "entered_at_next_start": True})

    def _load_sequence(self) -> None:
        state = signed_state(self.dir, self.signer.public_key, self._numbered_recordings())
        self._next_seq = state.next_seq
        self._prev_hash = state.last_hash

    @property
    def next_seq(self) -> int:
        return self._next_seq

    # -- recording -----------------------------------------------------------------------
    def open_recording(self, started_at: float, reason: str, flags: dict, *,
                       started_mono: float | None = None, authorisation: dict | None = None) -> RecordingWriter:
        """A new recording folder with its signed ``opened`` line, durable and in place, and
        journalled, when this returns (see ``begin_recording``)."""
        writer = self.begin_recording(started_at, reason, flags, started_mono=started_mono,
                                      authorisation=authorisation)
        writer.wait_opened()
        return writer

    @property
    def opener(self) -> ThreadPoolExecutor:
        """The thread that makes openings durable (begin_recording)."""
        if self._opener is None:
            self._opener = ThreadPoolExecutor(1, thread_name_prefix="pieton-opening")
        return self._opener

    def begin_recording(self, started_at: float, reason: str, flags: dict, *,
                        started_mono: float | None = None, authorisation: dict | None = None,
                        submit=None) -> RecordingWriter:
        """A new recording whose opening (the signed ``opened`` line, its fsyncs, the rename
        into place, the journal entry) goes on in the spool's opening thread: a press does
        not wait for those fsyncs, its media is captured and encoded meanwhile. The writer
        opens no segment before its folder is durable in place (``wait_in_place``), so no
        media is ever durable before the opened line. ``reason`` (the trigger) and
        ``flags`` are personal: they go to the encrypted metadata only, except
        ``flags["clock_source"]``, which the manifest also states. ``authorisation`` (the
        prefect's arrêté: reference, communes, end date) is not personal: the opened line
        states it, so the vault checks it without decrypting anything. An opening that
        fails leaves nothing (its ``.opening-`` folder undone, journalled) and a writer
        that refuses every segment with the reason. ``submit(fn, *args)`` runs the
        opening on ``self.opener`` (the daemon's loop hands it over with run_in_executor,
        so a simulation's virtual clock holds still meanwhile); by default submitted
        directly."""
        if not self._recovered:
            self.recover()
        if self.current is not None and self.current.state != "closed":
            raise RecordingRefused(f"recording {self.current.id} is still open")
        refusal = self.storage.start_refusal()
        if refusal is not None:
            self.journal.append("recording refused", {"reason": "storage full",
                                                      "free_bytes": self.storage.free_bytes()})
            raise StorageFull(refusal)
        seq = self._next_seq
        rid = recording_id(self.camera_id, started_at, seq)
        folder = self.dir / rid
        if os.path.lexists(folder):   # rename would replace an empty folder: refuse as mkdir did
            raise FileExistsError(errno.EEXIST, "recording folder already exists", str(folder))
        opening = self.dir / (OPENING_PREFIX + rid)
        opening.mkdir()
        opened = {
            "event": "opened", "camera_id": self.camera_id, "device_key": self.signer.public_key.hex(),
            "recording_id": rid, "recording_seq": seq, "previous_recording_last_line": self._prev_hash,
            "recipients": self.recipients, "config_digest": self.config_digest,
            "config_signed": self.config_signed, "started_at": utc_iso(started_at),
            "started_mono": round(self.monotonic() if started_mono is None else started_mono, 6),
            "clock_source": str((flags or {}).get("clock_source", "unknown")),
            **({"authorisation": authorisation} if authorisation else {})}
        self._next_seq = seq + 1
        static = {"trigger_reason": reason, "flags": dict(flags or {}), "started_at": utc_iso(started_at)}
        self.current = RecordingWriter(self.terms, rid, seq, folder, None, static,
                                       on_closed=self.recording_closed)
        (submit or self.opener.submit)(self._make_opened, self.current, opening, opened)
        return self.current

    def _make_opened(self, writer: RecordingWriter, opening: Path, opened: dict) -> None:
        """The opening thread: the opened line durable, then the folder renamed into place
        and the rename durable, then the journal entry. Only a folder in place takes
        segments (RecordingWriter.wait_in_place), so after a power cut at any instant the
        spool holds either an ``.opening-`` folder with at most the opened line (undone at
        the next start) or a recording starting with its opened line."""
        try:
            manifest = ChainWriter(opening / MANIFEST_FILE, MANIFEST_CONTEXT, self.signer,
                                   on_durable=self.durability.file)
            self.durability.folder(opening)
            manifest.append(opened)
            writer.mark("opened_line_durable")
            # Only now does a folder with the recording's id appear: it always starts with its opened line.
            os.rename(opening, writer.path)
            manifest.moved(writer.path / MANIFEST_FILE)   # the same open file, under its new name
            fsync_dir(self.dir)
            self.durability.folder(self.dir)
            self.durability.folder(writer.path)
        except Exception as exc:
            log.error("recording %s could not be opened: %s", writer.id, exc)
            self._opening_failed(writer, opening, exc)
            return
        except BaseException as exc:   # the process is going (a kill): the next start undoes it
            writer.opening_over(exc)
            raise
        writer.placed(manifest)
        try:
            # The trigger reason is personal and may still be "pending": the metadata carries it.
            self.journal.append("recording opened", {"recording_id": writer.id, "recording_seq": writer.seq})
        finally:
            writer.opening_over()

    def _opening_failed(self, writer: RecordingWriter, opening: Path, exc: BaseException) -> None:
        """Nothing was recorded: the ``.opening-`` folder goes (as recovery would), the
        number is not taken, and the writer refuses segments with the reason."""
        if self._next_seq == writer.seq + 1:
            self._next_seq = writer.seq
        try:
            if opening.is_dir():
                size = sum(p.stat().st_size for p in opening.iterdir())
                shutil.rmtree(opening)
                fsync_dir(self.dir)
                self.journal.append(OPENING_UNDONE, {"folder": opening.name, "bytes": size,
                                                     "why": f"opening failed: {exc}"[:500]})
        except Exception as exc2:  # noqa: BLE001 - the next start's recovery undoes it
            log.warning("%s: cannot undo the opening now: %s", opening.name, exc2)
        finally:
            writer.opening_over(exc)

    def recording_closed(self, recording: RecordingWriter, reason: str) -> None:
        self._prev_hash = recording.manifest.last_hash
        self.journal.append("recording closed", {
            "recording_id": recording.id, "recording_seq": recording.seq, "segments": recording.segments,
            "reason": reason, "last_line_hash": recording.manifest.last_hash})

    # -- offload -------------------------------------------------------------------------
    def apply_receipts(self, vault_key: bytes | str) -> list[str]:
        """Free the recordings that the vault's signed receipts in ``inbox/`` cover exactly
        (same camera, same device key, same last manifest line), journalling the receipt
        and each recording freed. Each receipt is judged alone: one that does not verify or
        cannot be read (NaN, deep nesting, oversize, garbage) frees nothing, is journalled as
        refused and set aside in ``inbox/refused/``, and the receipts after it still apply.
        Returns the recording ids freed."""
        inbox = self.dir / INBOX
        if not inbox.is_dir():
            return []
        freed: list[str] = []
        paths = sorted(p for p in inbox.iterdir() if p.is_file() and p.suffix == ".json")
        # A kill may have cut an application after its journal line: it goes on, not again.
        journaled = self._journaled_receipts() if paths else set()
        for path in paths:
            try:
                receipt = verify_receipt(path, vault_key, camera_id=self.camera_id,
                                         device_key=self.signer.public_key.hex())
            except VerificationError as exc:
                self._refuse_receipt(path, str(exc), already_journaled=path.name in journaled)
                continue
            try:
                freed += self._apply_receipt(path, receipt, already_journaled=path.name in journaled)
            except OSError as exc:  # left in the inbox, tried again; the others still apply
                log.warning("receipt %s: cannot free its recordings now: %s", path.name, exc)
        return freed

    def _refuse_receipt(self, path: Path, why: str, *, already_journaled: bool = False) -> None:
        if not already_journaled:
            self.journal.append(OFFLOAD_RECEIPT, {"receipt": path.name, "accepted": False,
                                                  "reason": why.replace(str(path), path.name)[:500]})
        self._file_receipt(path, "refused")

    def _apply_receipt(self, path: Path, receipt: dict, *, already_journaled: bool = False) -> list[str]:
        held = {}
        for folder in self.recordings():
            if self.current is not None and folder == self.current.path and self.current.state != "closed":
                continue
            line, last_hash = last_good_line(folder / MANIFEST_FILE)
            if line is not None and line.get("event") in ("closed", "recovered"):
                held[folder.name] = last_hash
        covered = freeable(receipt, held)
        if not already_journaled:
            self.journal.append(OFFLOAD_RECEIPT, {"receipt": path.name, "accepted": True,
                                                  "issued_at": receipt.get("issued_at"),
                                                  "vault_key": receipt.get("vault_key"),
                                                  "recordings": len(receipt["recordings"]),
                                                  "freeable": covered})
        freed = []
        for rid in covered:
            # Out of place first: a kill after the rename leaves a folder the next start
            # journals and removes (finish_freeing), never one gone without its journal line.
            leaving = self.dir / (FREEING_PREFIX + rid)
            os.rename(self.dir / rid, leaving)
            fsync_dir(self.dir)
            self._free(leaving, rid, held[rid])
            freed.append(rid)
        self._file_receipt(path, "applied")
        return freed

    def _free(self, leaving: Path, rid: str, last_hash: str | None) -> None:
        size = sum(p.stat().st_size for p in leaving.iterdir() if p.is_file())
        self.journal.append(SPACE_FREED, {"recording_id": rid, "recording_seq": parse_recording_id(rid).seq,
                                          "last_line_hash": last_hash, "bytes": size})
        shutil.rmtree(leaving)
        fsync_dir(self.dir)

    def finish_freeing(self) -> list[str]:
        """Recordings a kill left renamed out of place by a receipt: journalled as freed
        (unless their line already is), then removed. Returns their ids."""
        left = sorted(p for p in self.dir.iterdir() if p.name.startswith(FREEING_PREFIX)
                      and not p.is_symlink() and p.is_dir())
        if not left:
            return []
        done = self._journaled_frees()
        for leaving in left:
            rid = leaving.name[len(FREEING_PREFIX):]
            if rid in done:
                shutil.rmtree(leaving)
                fsync_dir(self.dir)
            else:
                self._free(leaving, rid, last_good_line(leaving / MANIFEST_FILE)[1])
        return [p.name[len(FREEING_PREFIX):] for p in left]

    def _journal_data(self, event: str):
        """The ``data`` of the journal's lines of one event, read from the end a window at a time."""
        try:
            for pieces in windows_from_end(self.dir / JOURNAL_FILE, SCAN_WINDOW):
                for piece in pieces:
                    line = piece.line
                    if line is not None and line.get("event") == event and isinstance(line.get("data"), dict):
                        yield line["data"]
        except FileNotFoundError:
            return

    def _journaled_receipts(self) -> set[str]:
        return {d["receipt"] for d in self._journal_data(OFFLOAD_RECEIPT)
                if isinstance(d.get("receipt"), str)}

    def _journaled_frees(self) -> set[str]:
        return {d["recording_id"] for d in self._journal_data(SPACE_FREED) if isinstance(d.get("recording_id"), str)}

    def _file_receipt(self, path: Path, state: str) -> None:
        done = path.parent / state
        done.mkdir(exist_ok=True)
        os.replace(path, done / path.name)
        fsync_dir(path.parent)

    def power_cut(self) -> None:
        """The simulator's loss of power: an opening in progress ends (as a cut just after it
        would leave it) before the next start's spool reads the journal; nothing more is
        written through this spool."""
        opener, self._opener = self._opener, None
        if opener is not None:
            opener.shutdown(wait=True)

    def close(self) -> None:
        self.power_cut()   # the opening in progress ends first
        self.journal.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Spool {self.dir} camera={self.camera_id} next_seq={self._next_seq}>"

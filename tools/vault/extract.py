"""Extraction and consultation: only for a stated purpose, requester and recipient; every
extraction logged twice (vault journal + register), and a failed one leaves no file.

The MP4 is first written to a hidden temporary file in the output's folder; it gets its
final name only after the journal entry and the register line are durable. Any failure
removes the temporary file and logs the attempt in both places.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from recorder.errors import AgeError, EvidenceError, PietonError, VaultError
from recorder.evidence.age import decrypt
from recorder.evidence.chain import fsync_dir, read_chain
from recorder.evidence.format import (
    MANIFEST_CONTEXT,
    MANIFEST_FILE,
    META_SUFFIX,
    PART,
    SEGMENT_SUFFIX,
    is_media_file,
)
from recorder.evidence.metadata import decrypt_metadata
from recorder.evidence.verify import verify_recording
from recorder.localtime import format_local
from recorder.localtime import parse_time as parse_local_time
from tools.vault.anonymise import anonymise_segments
from tools.vault.layout import parse_time, refuse_inside
from tools.vault.remux import SegmentInput, remux_to_mp4
from tools.vault.report import build_report, sign_report, write_report_files
from tools.vault.report_html import thumbnails
from tools.vault.retention import PastRetention, within_retention
from tools.vault.training_approval import CLIP, HTML, REPORT, SHEET, approve_command, stage
from tools.vault.training_report import build_training_report, relative_timeline, render_training_html
from tools.vault.vault import Vault

PURPOSES = ("judicial", "administrative", "disciplinary", "training")
# The names the chief uses (R241-8 is written in French), in any case.
FRENCH_PURPOSES = {"judiciaire": "judicial", "administrative": "administrative",
                   "disciplinaire": "disciplinary", "formation": "training"}
_ID_TIME = re.compile(r"_(\d{8}T\d{6}Z)_\d+\Z")
# A file a manifest names is read only when its name is a plain name in the recording's
# folder: the manifest is checked on another thread while decryption already runs.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MAX_OFFSET_S = 7 * 86400  # --start/--end: no recording is longer than a week
MAX_SEGMENT_BYTES = 256 * 1024 * 1024  # a segment holds seconds of video: a few MB


@dataclass
class Request:
    recordings: list[str]
    purpose: str
    requester: str
    deliver_to: str
    out: Path
    start: str | None = None
    end: str | None = None
    zone: str | None = None  # of --start/--end times typed without one (the vault's)
    # Training only: called with (seconds done, seconds in all) every few seconds of media.
    progress: Callable[[float, float], None] | None = field(default=None, repr=False)
    plates: list = field(default_factory=list)  # training: PlateMark boxes the chief drew

    def check(self) -> None:
        """The request's own arguments: an error here is not an access attempt, so it is
        raised before anything is journaled."""
        self.purpose = purpose_name(self.purpose)
        for name, value in (("--requester", self.requester), ("--deliver-to", self.deliver_to)):
            if not value or not value.strip():
                raise VaultError(f"{name} NAME is required: every extraction says who asked and for whom")
        if not self.recordings:
            raise VaultError("name at least one RECORDING to extract")
        if self.plates and self.purpose != "training":
            raise VaultError("--plate/--plates-file: only for a training extraction (--purpose formation); "
                             "other extractions are delivered whole")
        if len(set(self.recordings)) != len(self.recordings):
            raise VaultError("a recording is named twice")
        for what, value in (("--start", self.start), ("--end", self.end)):
            _bound(value, what, self.zone)


def purpose_name(typed: str) -> str:
    """The internal name of a purpose typed in English or French, in any case."""
    name = typed.strip().casefold() if isinstance(typed, str) else typed
    name = FRENCH_PURPOSES.get(name, name)
    if name not in PURPOSES:
        raise VaultError(f"--purpose {typed!r}: must be one of {', '.join(FRENCH_PURPOSES)} "
                         f"(or {', '.join(PURPOSES)}) (R241-8: consultation and extraction only for a "
                         "procedure or training)")
    return name


@dataclass
class OpenedRecording:
    """A stored recording being verified (on another thread) and decrypted segment by
    segment as the remux asks for them (``media()``); ``verified()`` waits for the check."""

    recording_id: str
    camera: str
    device_key: str
    folder: Path
    opened: dict
    started_at: float | None
    segments: list[dict] = field(default_factory=list)   # name, sha256, size, complete, reason
    metadata: list[dict] = field(default_factory=list)
    closed: dict | None = None
    truncated: bool = False
    identities: list = field(default_factory=list, repr=False)
    check: object = field(default=None, repr=False)
    error: str | None = None
    _first: object = field(default=None, repr=False)

    def media(self):
        """Decrypted segments, one at a time. An error ends the stream and is kept in
        ``error`` (raised by ``verified()``): the demuxer reading it cannot carry it."""
        for number, segment in enumerate(self.segments):
            name = segment["file"]
            if number == 0 and self._first is not None:
                result, self._first = self._first, None
            else:
                try:
                    _check_size(self.folder / name, segment, self.recording_id)
                    result = decrypt(self.folder / name, self.identities)
                except (AgeError, OSError, VaultError) as exc:
                    self.error = f"{self.recording_id}/{name}: cannot decrypt: {exc}"
                    return
            segment["complete"] = result.complete
            if not result.complete:
                segment["reason"] = result.reason
                self.truncated = True
            yield SegmentInput(f"{self.recording_id}/{name}", result.plaintext, result.complete)

    def verified(self) -> None:
        problems = self.check.result() if self.check is not None else []
        if problems:
            raise VaultError(f"recording {self.recording_id} no longer verifies in the vault: "
                             + "; ".join(problems))
        if self.error:
            raise VaultError(self.error)


def recording_start(recording_id: str, opened: dict) -> float | None:
    """The device's start time of a recording: the ``opened`` line, else the id."""
    for key in ("started_at", "time", "opened_at"):
        value = opened.get(key)
        if isinstance(value, str):
            try:
                return parse_time(value)
            except VaultError:
                pass
        elif isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    match = _ID_TIME.search(recording_id)
    if match:
        return parse_time(match.group(1)[:4] + "-" + match.group(1)[4:6] + "-" + match.group(1)[6:11] + ":"
                          + match.group(1)[11:13] + ":" + match.group(1)[13:15] + "Z")
    return None


def open_recording(vault: Vault, recording_id: str, identities: list, *,
                   purpose: str | None = None) -> OpenedRecording:
    """Verify a stored recording again and decrypt its segments and metadata (for a
    consultation, or an extraction checked before)."""
    row = vault.index.recording(recording_id)
    if row is None:
        raise VaultError(f"recording {recording_id!r} is not in this vault (`pieton vault list` shows the ids it holds)")
    if row.state != "stored":
        raise VaultError(f"recording {recording_id} was erased on {format_local(row.purged_at or 0, vault.timezone)} "
                          "(retention)")
    within_retention(vault, row, "consultation", purpose=purpose)  # past it: refused even before the purge
    folder = vault.layout.recording(row.camera_id, recording_id)
    key_hex = vault.index.camera_key(row.camera_id)
    # The stored recording is verified again (hashing every file) on another thread while
    # this one decrypts: hashlib and the AEAD release the GIL, and the two CPUs share the work.
    if key_hex is None:
        raise VaultError(f"recording {recording_id}: camera {row.camera_id} is no longer enrolled")
    devices = {row.camera_id: bytes.fromhex(key_hex)}
    check = _Background(lambda: [str(p) for p in verify_recording(folder, devices=devices).problems])
    chain = read_chain(folder / MANIFEST_FILE, MANIFEST_CONTEXT, bytes.fromhex(key_hex))
    opened = next((line for line in chain.lines if line.get("event") == "opened"), {})
    rec = OpenedRecording(recording_id, row.camera_id, key_hex, folder, opened,
                          recording_start(recording_id, opened), identities=list(identities), check=check)
    files: dict[str, str | None] = {}  # segment file -> its metadata file
    listed: dict[str, tuple] = {}  # segment file -> (sha256, size) as the manifest lists it
    for line in chain.lines:
        event = line.get("event")
        if event == "closed":
            rec.closed = line
        if event == "sealed" and line.get("file"):
            files[line["file"]] = line.get("meta_file")
            listed[line["file"]] = (line.get("sha256"), line.get("size"))
        elif event == "recovered":
            found = [f for f in line.get("found", []) if isinstance(f, dict)]
            names = {f.get("file") for f in found}
            listed.update({f.get("file"): (f.get("sha256"), f.get("size")) for f in found})
            for name in names:
                if is_media_file(name):
                    stem = name.split(SEGMENT_SUFFIX)[0]
                    meta = next((m for m in (stem + META_SUFFIX, stem + META_SUFFIX + PART) if m in names), None)
                    files.setdefault(name, meta)
    for name in sorted((n for n in files if _plain(n)), key=lambda n: n.split(".")[0]):
        if not (folder / name).is_file():
            continue
        # The manifest's hash: the verifier running alongside checks the file against it.
        rec.segments.append({"file": name, "sha256": listed[name][0], "size": listed[name][1],
                             "complete": None})
        meta_name = files[name]
        if _plain(meta_name) and (folder / meta_name).is_file():
            rec.metadata.append(_metadata(folder / meta_name, identities, recording_id))
    if rec.closed and _plain(rec.closed.get("meta_file")) and (folder / rec.closed["meta_file"]).is_file():
        rec.metadata.append(_metadata(folder / rec.closed["meta_file"], identities, recording_id))
    if not rec.segments:
        raise VaultError(f"recording {recording_id}: no segment to export")
    name = rec.segments[0]["file"]
    _check_size(folder / name, rec.segments[0], recording_id)
    try:  # the first segment now: a wrong identity is said before anything is written
        rec._first = decrypt(folder / name, identities)
    except AgeError as exc:
        raise VaultError(f"{recording_id}/{name}: cannot decrypt with the given identity: {exc}") from None
    return rec


def _check_size(path: Path, segment: dict, recording_id: str) -> None:
    """A segment is decrypted whole in memory: only when its size is the manifest's and
    within a segment's bound (the hashes are checked alongside, on another thread)."""
    size = path.stat().st_size
    if size != segment.get("size") or size > MAX_SEGMENT_BYTES:
        raise VaultError(f"{recording_id}/{path.name}: {size} bytes, the manifest says {segment.get('size')!r} "
                         "(altered in the vault)" if size != segment.get("size") else
                         f"{recording_id}/{path.name}: {size} bytes, more than a segment may hold")


def _plain(name) -> bool:
    return isinstance(name, str) and bool(_FILE_NAME.fullmatch(name)) and ".." not in name


class _Background:
    def __init__(self, fn):
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn):
        try:
            self._value = fn()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _metadata(path: Path, identities: list, recording_id: str) -> dict:
    try:
        return decrypt_metadata(path, identities, f"{recording_id}/{path.name}")
    except EvidenceError as exc:
        return {"unreadable": str(exc)}


def _bound(value: str | None, what: str, zone: str | None) -> tuple[str, float] | None:
    """``--start``/``--end`` read alone: ("offset", seconds from the recording's start) or
    ("time", epoch) for a time (without a zone: local time in ``zone``)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds) or abs(seconds) > MAX_OFFSET_S:
            raise VaultError(f"{what} {value!r}: not a number of seconds within a recording "
                             f"(at most {MAX_OFFSET_S // 86400} days)")
        return "offset", seconds
    return "time", parse_local_time(value, zone, what=what)


def _offset(value: str | None, start: float | None, what: str, zone: str | None) -> float | None:
    """``--start``/``--end`` as seconds from the recording's start."""
    bound = _bound(value, what, zone)
    if bound is None or bound[0] == "offset":
        return None if bound is None else bound[1]
    if start is None:
        raise VaultError(f"{what} {value!r}: the recording's start time is unknown; give seconds from its start")
    seconds = bound[1] - start
    if abs(seconds) > MAX_OFFSET_S:
        raise VaultError(f"{what} {value!r}: {seconds / 86400:.0f} days from the recording's start, not within it")
    return seconds


@dataclass
class ExtractionResult:
    out: Path
    report_path: Path
    html_path: Path | None
    report: dict
    journal_seq: int
    pending: Path | None = None  # training: the contact sheet of the clip awaiting sign-off


def extract(vault: Vault, request: Request, identities: list) -> ExtractionResult:
    """Extract, report, log twice; see the module docstring."""
    if request.zone is None:
        request.zone = vault.timezone
    request.check()
    out = Path(request.out)
    if out.suffix.lower() != ".mp4":
        raise VaultError(f"--out {out}: must be an .mp4 file")
    refuse_inside(out, vault.layout.root, "--out")
    if out.exists() or out.is_symlink():
        raise VaultError(f"--out {out}: file exists; choose another name (an extraction never overwrites)")
    if not out.parent.is_dir():
        raise VaultError(f"--out {out}: folder {out.parent} does not exist")
    base = {"recordings": list(request.recordings), "purpose": request.purpose,
            "requester": request.requester, "deliver_to": request.deliver_to,
            "range": {"start": request.start, "end": request.end}}
    vault.register  # noqa: B018 - the register's medium must be there before anything starts
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    logged = False
    side = [out.with_name(out.stem + ".report.json"), out.with_name(out.stem + ".report.html")]
    try:
        for path in side:
            if path.exists():
                raise VaultError(f"{path}: file exists; an extraction never overwrites")
        for rid in request.recordings:
            row = vault.index.recording(rid)
            if row is not None and row.state == "stored":
                within_retention(vault, row, "extraction", purpose=request.purpose)
        recordings = [open_recording(vault, rid, identities) for rid in request.recordings]
        base["cameras"] = sorted({r.camera for r in recordings})
        media = itertools.chain.from_iterable(r.media() for r in recordings)
        first_start = recordings[0].started_at
        start = _offset(request.start, first_start, "--start", request.zone)
        end = _offset(request.end, first_start, "--end", request.zone)
        anonymised = thumbs = None
        keep_audio = request.purpose != "training"  # training: never any sound (R241-13)
        if request.purpose == "training":
            plain = tmp.with_name(tmp.name + ".plain.mp4")
            try:
                result = remux_to_mp4(media, plain, start_s=start, end_s=end, keep_audio=False)
                done = anonymise_segments(plain, tmp, progress=request.progress, plates=request.plates)
                anonymised, thumbs = done.summary, done.thumbnails  # thumbnails of the blurred frames
            finally:
                plain.unlink(missing_ok=True)
        else:
            result = remux_to_mp4(media, tmp, start_s=start, end_s=end, keep_audio=keep_audio)
        for r in recordings:
            r.verified()  # the hashes checked alongside; a failure leaves no file
        hashing = _Background(lambda: _sha256_file(tmp))  # while the thumbnails decode
        thumbs = thumbnails(tmp) if thumbs is None else thumbs
        mp4_hash = hashing.result()
        html = None
        if anonymised is not None:  # names, places and dates no one
            report = sign_report(vault.signer, build_training_report(
                vault, request, recordings, result, out.name, mp4_hash, tmp.stat().st_size, anonymised=anonymised))
            html = render_training_html(report, thumbs, relative_timeline(recordings, result, french=True))
        else:
            report = sign_report(vault.signer, build_report(
                vault, request, recordings, result, out.name, mp4_hash, tmp.stat().st_size,
                anonymised=None, keep_audio=keep_audio))
        staged = write_report_files(report, [p.with_name(f".{p.name}.{os.getpid()}.part") for p in side],
                                    tmp, vault, thumbs, html=html)
        entry, _ = vault.log_twice("extraction", **base, mp4=out.name, exports=str(out.parent), mp4_sha256=mp4_hash,
                                   report_id=report["extraction_id"],
                                   segments=sum(len(r.segments) for r in recordings),
                                   truncated=[r.recording_id for r in recordings if r.truncated],
                                   anonymised=anonymised is not None,
                                   **({"awaiting_approval": True} if anonymised is not None else {}))
        logged = True
        if anonymised is not None:  # kept in the vault until the chief signs off its contact sheet
            rid = report["extraction_id"]
            folder = stage(vault, rid, tmp, staged, done.contact_sheet.html(rid, anonymised, approve_command(
                vault, rid)), out, request)
            return ExtractionResult(folder / CLIP, folder / REPORT, folder / HTML, report, entry["seq"],
                                    pending=folder / SHEET)
        for part, final in zip(staged, side, strict=True):
            os.replace(part, final)
        os.replace(tmp, out)
        fsync_dir(out.parent)
        return ExtractionResult(out, side[0], side[1], report, entry["seq"])
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        for path in side:
            path.with_name(f".{path.name}.{os.getpid()}.part").unlink(missing_ok=True)
        if logged:  # logged but not delivered: nothing may stay under the final names either
            for path in (*side, out):
                path.unlink(missing_ok=True)
        reason = str(exc) if isinstance(exc, PietonError | OSError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, KeyboardInterrupt):
            reason = "interrupted"
        try:
            vault.log_twice("extraction-failed", **base, reason=reason[:500])
        except (PietonError, OSError):
            pass  # the original error is what the chief must see
        if isinstance(exc, PastRetention):
            raise  # the refusal in its own words (logged above as a failed attempt)
        if isinstance(exc, Exception):  # content the checks did not foresee is said, not a traceback
            raise VaultError(f"extraction failed, nothing written: {reason}") from exc  # the desk words the cause
        raise


def _sha256_file(path: Path) -> str:
    """The file's SHA-256, after making it durable (it is delivered as evidence)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        return hashlib.file_digest(f, "sha256").hexdigest()


def log_consultation(vault: Vault, recording_id: str, purpose: str, requester: str, camera: str,
                     duration_s: float | None, *, played: bool, **more) -> dict:
    """A consultation, logged twice (journal and register) before anything is shown: the
    one path for `pieton vault view` and the desk."""
    entry, _ = vault.log_twice("consultation", recordings=[recording_id], purpose=purpose, requester=requester,
                               cameras=[camera], duration_s=duration_s, played=played, **more)
    return entry


def consult(vault: Vault, recording_id: str, purpose: str, requester: str, identities: list, *,
            play=None) -> dict:
    """Decrypt a recording to a private temporary place, hand it to ``play(path)`` (ffplay
    by default, when present; ``play=False``: no player), remove it afterwards, and log
    the consultation twice."""
    purpose = purpose_name(purpose)
    Request([recording_id], purpose, requester, "consultation", Path("view.mp4")).check()
    base = {"recordings": [recording_id], "purpose": purpose, "requester": requester}
    shm = Path("/dev/shm")
    tmpdir = Path(tempfile.mkdtemp(prefix="pieton-view-", dir=shm if shm.is_dir() else None))
    try:
        os.chmod(tmpdir, 0o700)
        rec = open_recording(vault, recording_id, identities, purpose=purpose)
        path = tmpdir / f"{recording_id}.mp4"
        result = remux_to_mp4(rec.media(), path)
        rec.verified()
        if play is False:  # --no-play: the register must not say it was shown
            play = None
        elif play is None:
            player = shutil.which("ffplay")
            if player is None or not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
                play = None
            else:
                def play(p):
                    subprocess.run([player, "-autoexit", "-loglevel", "error", str(p)], check=False)
        entry = log_consultation(vault, recording_id, purpose, requester, rec.camera, result.duration_s,
                                 played=play is not None)
        if play is not None:
            play(path)
        return {"journal_seq": entry["seq"], "duration_s": result.duration_s, "played": play is not None,
                "truncated": rec.truncated}
    except Exception as exc:  # noqa: BLE001 - logged twice and said, never a traceback
        why = str(exc) if isinstance(exc, PietonError | OSError) else f"{type(exc).__name__}: {exc}"
        try:
            vault.log_twice("extraction-failed", **base, deliver_to="consultation", reason=f"consultation: {why}"[:500])
        except (PietonError, OSError):
            pass
        if isinstance(exc, PastRetention):
            raise
        raise VaultError(f"consultation failed: {why}") from None
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)

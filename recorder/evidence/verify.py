"""The one verifier of recordings, shared by `pieton verify` and the vault.

It checks the manifest's chain and every signature (against a pinned device key when one
is given), every hash and size, that the manifest ends with ``closed`` or ``recovered``,
the folder name against the recording id, that every file in the folder is listed, and the
stanza count of every age file against the recipients in ``opened``. With the chief's
identities it also decrypts each segment and demuxes it as MPEG-TS, and reads each
metadata file. Each problem names the recording, the file and the reason.

It never raises on what it reads: a line that is not a chain line (garbage, truncated,
wrong types, NaN, deep nesting, absurd numbers) is tampering, named by file and line,
unless it is a torn fragment that the next signed line documents (the power-cut rule).
It stands beside the device's writers, on the format module, and imports none of them.
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass, field
from pathlib import Path

from recorder.errors import AgeError, EvidenceError, VerificationError
from recorder.evidence.age import decrypt, header_info
from recorder.evidence.chain import read_chain, read_chain_bytes, split_pieces
from recorder.evidence.format import (
    ABORTED,
    CLOSED,
    ENDINGS,
    MANIFEST_CONTEXT,
    MANIFEST_EVENTS,
    MANIFEST_FILE,
    OPENED,
    PROGRESS,
    RECOVERED,
    SEALED,
    found_entries,
    is_age_file,
    is_media_file,
    is_metadata_file,
    is_plain_name,
    listed_files,
    parse_recording_id,
    segment_index,
    segment_names,
)
from recorder.evidence.metadata import decrypt_metadata
from recorder.evidence.sequence import (
    recording_seq,
)
from recorder.inputs import InputError, expect_object, loads_strict, read_text_bounded


@dataclass
class Problem:
    recording: str
    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.recording} {self.file}: {self.reason}"


@dataclass
class RecordingReport:
    recording: str
    path: str
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    camera_id: str | None = None
    recording_seq: int | None = None
    device_key: str | None = None
    key_pinned: bool = False
    segments: int = 0
    closed_reason: str | None = None
    truncated: str | None = None        # where the data stops, for a recovered recording
    previous_recording_last_line: str | None = None
    last_line_hash: str | None = None
    media: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def status(self) -> str:
        if self.problems:
            return "failed"
        return "intact-truncated" if self.truncated else "intact"

    def problem(self, file: str, reason: str) -> None:
        self.problems.append(Problem(self.recording, file, reason))

    def summary(self) -> str:
        if self.problems:
            return f"{self.recording}: FAILED, {len(self.problems)} problem(s)"
        if self.truncated:
            return (f"{self.recording}: intact but truncated: {self.segments} segment(s) sealed, "
                    f"data stops at {self.truncated}")
        return f"{self.recording}: intact, {self.segments} segment(s), closed ({self.closed_reason})"

    def as_dict(self) -> dict:
        return {"recording": self.recording, "path": self.path, "status": self.status,
                "problems": [vars(p) for p in self.problems], "notes": self.notes,
                "camera_id": self.camera_id, "recording_seq": self.recording_seq,
                "device_key": self.device_key, "key_pinned": self.key_pinned,
                "segments": self.segments, "closed_reason": self.closed_reason,
                "truncated": self.truncated, "media": self.media}


def parse_device_key(text: str) -> bytes:
    """A device public key as 64 hex digits (what `pieton provision` prints)."""
    text = text.strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise VerificationError(f"device key {text[:80]!r}: expected 64 hex digits (an Ed25519 public key)")
    return key


def load_devices(path: str | Path) -> dict[str, bytes]:
    """Enrolled devices: JSON ``{"CAMERA-ID": "hex key"}`` or lines ``CAMERA-ID HEXKEY``."""
    path = Path(path)
    try:
        text = read_text_bounded(path, "devices", what=f"devices file {path}")
    except InputError as exc:
        raise VerificationError(str(exc)) from None
    devices: dict[str, bytes] = {}
    if text.lstrip().startswith("{"):
        try:
            data = expect_object(loads_strict(text, f"devices file {path}"), f"devices file {path}")
        except InputError as exc:
            raise VerificationError(str(exc)) from None
        items = [(str(k), str(v)) for k, v in data.items()]
    else:
        items = []
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                raise VerificationError(f"devices file {path} line {number}: expected 'CAMERA-ID HEXKEY'")
            items.append((parts[0], parts[1]))
    for camera, key in items:
        try:
            devices[camera] = parse_device_key(key)
        except VerificationError as exc:
            raise VerificationError(f"devices file {path}, camera {camera}: {exc}") from None
    return devices


_buffers = threading.local()


def _read_buffer() -> memoryview:
    """This thread's 1 MiB read buffer, reused: a new buffer per read costs the kernel a
    page fault and a zeroed page per 4 KiB, more than the hashing of them (measured)."""
    buf = getattr(_buffers, "buf", None)
    if buf is None:
        buf = _buffers.buf = memoryview(bytearray(1 << 20))
    return buf


def sha256_file(path: Path) -> tuple[int, str]:
    """(size, SHA-256) of a file as read now."""
    h, size, buf = hashlib.sha256(), 0, _read_buffer()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(buf[:n])
            size += n
    return size, h.hexdigest()


def demux_mpegts(data: bytes) -> dict:
    """Demux a plaintext as MPEG-TS with PyAV; raises ValueError when it is not."""
    import av
    try:
        with av.open(io.BytesIO(data), format="mpegts") as container:
            kinds = sorted({s.type for s in container.streams})
            packets = video = 0
            for packet in container.demux():
                if packet.size:
                    packets += 1
                    video += packet.stream.type == "video"
    except av.FFmpegError as exc:
        raise ValueError(f"does not demux as MPEG-TS: {exc}") from None
    if not video:
        raise ValueError(f"no video packet in the MPEG-TS (streams: {', '.join(kinds) or 'none'})")
    return {"streams": kinds, "packets": packets, "video_packets": video}


class _Checker:
    def __init__(self, folder: Path, device_key, devices, identities, digests=None):
        self.folder = folder
        self.report = RecordingReport(folder.name, str(folder))
        self.device_key = device_key
        self.devices = devices
        self.identities = identities
        self.sizes: dict[str, tuple[int, str]] = dict(digests or {})
        self.cut_short: set[str] = set()

    def _local(self, exc: Exception) -> str:
        """An error message with the folder's path taken out (the problem names the file)."""
        return str(exc).replace(str(self.folder) + "/", "")

    def _file(self, name) -> Path | None:
        """The folder's file ``name`` when it is a regular file (never a link out)."""
        if not is_plain_name(name):
            return None
        path = self.folder / name
        return path if path.is_file() and not path.is_symlink() else None

    def file_digest(self, name: str) -> tuple[int, str] | None:
        path = self._file(name)
        if path is None:
            return None
        if name not in self.sizes:
            self.sizes[name] = sha256_file(path)
        return self.sizes[name]

    def expect(self, name, size, sha256, what: str) -> bool:
        if not is_plain_name(name):
            self.report.problem(MANIFEST_FILE, f"a {what} entry names {str(name)[:80]!r}, not a file of the folder")
            return False
        found = self.file_digest(name)
        if found is None:
            self.report.problem(name, f"{what} listed in the manifest but missing")
            return False
        if found[0] != size:
            self.report.problem(name, f"size {found[0]} bytes, the manifest says {str(size)[:40]} (truncated or replaced)")
            return False
        if found[1] != sha256:
            self.report.problem(name, "SHA-256 differs from the manifest (altered, swapped or copied from elsewhere)")
            return False
        return True

    def run(self) -> RecordingReport:
        r = self.report
        if self.folder.is_symlink() or not self.folder.is_dir():
            r.problem("-", "not a folder (or a link, which is not followed)")
            return r
        manifest = self.folder / MANIFEST_FILE
        if manifest.is_symlink() or not manifest.is_file():
            r.problem(MANIFEST_FILE, "missing: this is not a recording, or its manifest was removed")
            return r
        try:
            data = read_chain_bytes(manifest, MANIFEST_CONTEXT)
        except (FileNotFoundError, InputError) as exc:
            r.problem(MANIFEST_FILE, f"unreadable: {self._local(exc)}")
            return r
        first = next((p.line for p in split_pieces(data) if p.line is not None), None)
        opened = first if first and first.get("event") == OPENED else None
        key = self._pick_key(opened)
        chain = read_chain(manifest, MANIFEST_CONTEXT, key, data=data)
        for p in chain.problems:
            r.problem(MANIFEST_FILE, p)
        r.last_line_hash = chain.last_hash
        if key is None and opened is not None:
            r.problem(MANIFEST_FILE, "no usable device key: signatures not checked")
        if opened is None:
            r.problem(MANIFEST_FILE, "does not start with an 'opened' line")
        else:
            self._check_opened(opened)
        self._walk(chain.lines, opened)
        return r

    def _pick_key(self, opened: dict | None) -> bytes | None:
        r = self.report
        named = None
        if opened is not None:
            r.camera_id = opened.get("camera_id") if isinstance(opened.get("camera_id"), str) else None
            r.recording_seq = recording_seq(opened.get("recording_seq"))
            r.device_key = str(opened.get("device_key"))[:64]
            r.previous_recording_last_line = opened.get("previous_recording_last_line")
            try:
                named = parse_device_key(str(opened.get("device_key")))
            except VerificationError:
                r.problem(MANIFEST_FILE, "the opened line has no valid device key")
        pinned = self.device_key
        if self.devices is not None:
            pinned = self.devices.get(str(r.camera_id))
            if pinned is None:
                r.problem(MANIFEST_FILE, f"camera {r.camera_id} is not an enrolled device")
                return None
        if pinned is None:
            r.notes.append("device key not pinned: signatures checked only against the key the manifest "
                           "names (give --device-key or --devices to prove which camera made it)")
            return named
        r.key_pinned = True
        if named is not None and named != pinned:
            r.problem(MANIFEST_FILE, f"made by another device (key {named.hex()[:16]}...), "
                                     f"not the pinned key {pinned.hex()[:16]}...")
        return pinned

    def _check_opened(self, opened: dict) -> None:
        r = self.report
        rid = opened.get("recording_id")
        if rid != self.folder.name:
            r.problem(MANIFEST_FILE, f"recording id {str(rid)[:120]} does not match the folder name {self.folder.name}")
        name = parse_recording_id(rid)
        if name is None:
            r.problem(MANIFEST_FILE, f"recording id {str(rid)[:120]!r} is malformed")
        else:
            if name.camera != opened.get("camera_id"):
                r.problem(MANIFEST_FILE, f"recording id names camera {name.camera}, the manifest "
                                         f"{str(opened.get('camera_id'))[:80]}")
            if name.seq != opened.get("recording_seq"):
                r.problem(MANIFEST_FILE, f"recording id has sequence {name.seq}, the manifest "
                                         f"{str(opened.get('recording_seq'))[:40]}")
            stamp = str(opened.get("started_at", ""))[:80]
            if stamp[:19].replace("-", "").replace(":", "") + "Z" != name.time:
                r.problem(MANIFEST_FILE, f"recording id time {name.time} differs from started_at {stamp}")
        if not isinstance(opened.get("recipients"), list) or not opened["recipients"]:
            r.problem(MANIFEST_FILE, "the opened line lists no recipients")

    def _walk(self, lines: list[dict], opened: dict | None) -> None:
        r = self.report
        sealed: list[dict] = []
        progress: dict[str, list[dict]] = {}
        partials: list[dict] = []
        closed = False
        for line in lines[1:] if opened else lines:
            event, seq = line.get("event"), str(line.get("seq"))[:40]
            if event not in MANIFEST_EVENTS or event == OPENED:
                r.problem(MANIFEST_FILE, f"seq {seq}: unexpected {str(event)[:80]!r} line")
                continue
            if closed and event != RECOVERED:
                r.problem(MANIFEST_FILE, f"seq {seq}: {event!r} line after the recording was closed")
            if event == PROGRESS:
                if is_plain_name(line.get("file")):
                    progress.setdefault(line["file"], []).append(line)
                else:
                    r.problem(MANIFEST_FILE, f"seq {seq}: progress line names no file of the folder")
            elif event == SEALED:
                index = line.get("segment")
                expected = len(sealed) + 1
                name = line.get("file") if is_plain_name(line.get("file")) else MANIFEST_FILE
                if index != expected:
                    r.problem(name, f"sealed as segment {str(index)[:40]}, expected segment {expected} "
                                    "(segment missing or moved)")
                if type(index) is int and (line.get("file"), line.get("meta_file")) != segment_names(index):
                    r.problem(name, f"file names do not match segment {index}")
                sealed.append(line)
                self.expect(line.get("file"), line.get("size"), line.get("sha256"), "segment")
                self.expect(line.get("meta_file"), line.get("meta_size"), line.get("meta_sha256"), "metadata")
            elif event == ABORTED:
                partials.append(line)
                self.expect(line.get("file"), line.get("size"), line.get("sha256"), "aborted segment")
            elif event == CLOSED:
                closed = True
                r.closed_reason = str(line.get("reason"))[:200]
                if line.get("segments") != len(sealed):
                    r.problem(MANIFEST_FILE, f"closed with {str(line.get('segments'))[:40]} segment(s) but "
                                             f"{len(sealed)} sealed")
                if line.get("meta_file"):
                    self.expect(line.get("meta_file"), line.get("meta_size"), line.get("meta_sha256"), "metadata")
            elif event == RECOVERED:
                if not isinstance(line.get("found", []), list):
                    r.problem(MANIFEST_FILE, f"seq {seq}: recovered line whose 'found' is not a list")
                for found in found_entries(line):
                    self.expect(found.get("file"), found.get("size"), found.get("sha256"), "recovered file")
                    if is_media_file(found.get("file")):
                        partials.append(found)
                if not closed:
                    r.truncated = (f"{str(line.get('data_stops') or 'the last sealed segment')[:200]} "
                                   "(power cut; recovered at the next start)")
                closed = True
        r.segments = len(sealed)
        if not lines or lines[-1].get("event") not in ENDINGS:
            r.problem(MANIFEST_FILE, "no closed or recovered line at the end: the end of the recording is missing "
                                     "(last segments or closing line removed, or recovery not run)")
        if partials and not r.truncated:
            r.truncated = (f"{str(partials[-1].get('file'))[:80]} (segment aborted: "
                           f"{str(partials[-1].get('reason', 'power cut'))[:200]})")
        listed = listed_files(lines)
        for path in sorted(self.folder.iterdir()):
            if path.name != MANIFEST_FILE and path.name not in listed:
                r.problem(path.name, "in the folder but not listed in the manifest")
        self._check_progress(progress)
        recipients = len(opened.get("recipients") or []) if opened and isinstance(opened.get("recipients"), list) else None
        self.cut_short = {f.get("file") for line in lines if line.get("event") == RECOVERED
                          for f in found_entries(line) if f.get("age_header", "ok") != "ok" and is_plain_name(f.get("file"))}
        for name in sorted(listed):
            if self._file(name) is not None and is_age_file(name):
                self._check_stanzas(name, recipients)
        if self.identities:
            self._decrypt(sealed, partials, lines)

    def _check_progress(self, progress: dict[str, list[dict]]) -> None:
        for part_name, entries in progress.items():
            name = part_name.removesuffix(".part")
            path = self._file(name) or self._file(part_name)
            if path is None:
                continue
            if any(recording_seq(e.get("durable_bytes")) is None for e in entries):
                self.report.problem(path.name, "a progress line has no valid durable_bytes")
                continue
            h, done, buf = hashlib.sha256(), 0, _read_buffer()
            with open(path, "rb", buffering=0) as f:
                for entry in sorted(entries, key=lambda e: e["durable_bytes"]):
                    want = entry["durable_bytes"]
                    while done < want:
                        n = f.readinto(buf[:min(want - done, len(buf))])
                        if not n:
                            break
                        h.update(buf[:n])
                        done += n
                    if done < want:
                        self.report.problem(path.name, f"shorter than the {want} bytes the manifest says were durable")
                        break
                    if h.copy().hexdigest() != entry.get("sha256"):
                        self.report.problem(path.name, f"first {want} bytes differ from what was durable when written")
                        break

    def _check_stanzas(self, name: str, recipients: int | None) -> None:
        try:
            info = header_info(self.folder / name)
        except AgeError as exc:
            if name in self.cut_short:  # recovery found the cut inside the header: no data
                self.report.notes.append(f"{name}: cut before its age header was durable, no data in it")
            else:
                self.report.problem(name, f"not a readable age file: {self._local(exc)}")
            return
        if recipients is not None and info.recipients != recipients:
            self.report.problem(name, f"encrypted to {info.recipients} recipient(s), the opened line lists {recipients}")

    def _decrypt(self, sealed: list[dict], partials: list[dict], lines: list[dict]) -> None:
        r = self.report
        for entry, must_be_complete in [(s, True) for s in sealed] + [(p, False) for p in partials]:
            name = entry.get("file")
            if self._file(name) is None or name in self.cut_short:
                continue
            try:
                result = decrypt(self.folder / name, self.identities)
            except AgeError as exc:
                r.problem(name, f"cannot decrypt: {self._local(exc)}")
                continue
            if must_be_complete and not result.complete:
                r.problem(name, f"sealed but its age stream is incomplete: {result.reason}")
            info = {"plaintext_bytes": len(result.plaintext), "complete": result.complete}
            if result.plaintext:
                try:
                    info.update(demux_mpegts(result.plaintext))
                except ValueError as exc:
                    r.problem(name, str(exc))
            r.media[name] = info
        metas = [(line.get("meta_file"), line.get("segment", 0) if line.get("event") == SEALED else 0)
                 for line in lines if line.get("meta_file")]
        for line in lines:
            for found in found_entries(line) if line.get("event") == RECOVERED else []:
                name = found.get("file")
                if is_metadata_file(name):
                    metas.append((name, segment_index(name) or 0))
        for meta, expected in metas:
            if self._file(meta) is None:
                continue
            try:
                doc = decrypt_metadata(self.folder / meta, self.identities, meta)
            except (AgeError, EvidenceError) as exc:
                r.problem(meta, f"metadata unreadable: {self._local(exc)}")
                continue
            if doc.get("recording_id") != r.recording or doc.get("segment") != expected:
                r.problem(meta, f"metadata belongs to {str(doc.get('recording_id'))[:120]} "
                                f"segment {str(doc.get('segment'))[:40]}")


def verify_recording(folder: str | Path, *, device_key: bytes | None = None,
                     devices: dict[str, bytes] | None = None, identities: list | None = None,
                     digests: dict[str, tuple[int, str]] | None = None) -> RecordingReport:
    """The report of one recording folder; never raises on what the folder holds.

    ``device_key``: the camera's pinned Ed25519 public key (32 bytes), or ``devices``:
    enrolled camera id -> key; without either, signatures are checked against the key
    the manifest names. ``identities``: age identities that also decrypt and demux.
    ``digests``: file name -> ``sha256_file`` of files of the folder the caller has just
    hashed (the vault, as it copies them side by side), not read a second time."""
    checker = _Checker(Path(folder), device_key, devices, identities, digests)
    try:
        return checker.run()
    except OSError as exc:  # the folder changed or became unreadable while being checked
        checker.report.problem("-", f"could not be read to the end: {checker._local(exc)}")
        return checker.report


def verify_recordings(folders, **kw) -> list[RecordingReport]:
    """Each recording, then the links between recordings of one camera given together:
    each must name the previous recording's last manifest line."""
    reports = [verify_recording(f, **kw) for f in folders]
    by_camera: dict[str, dict[int, RecordingReport]] = {}
    for rep in reports:
        if rep.camera_id is None or not isinstance(rep.recording_seq, int):
            continue
        seen = by_camera.setdefault(rep.camera_id, {})
        if rep.recording_seq in seen:
            rep.problem(MANIFEST_FILE, f"same sequence number {rep.recording_seq} as {seen[rep.recording_seq].recording}")
            continue
        seen[rep.recording_seq] = rep
    for camera, seen in by_camera.items():
        seqs = sorted(seen)
        for a, b in zip(seqs, seqs[1:], strict=False):
            if b == a + 1:
                if seen[b].previous_recording_last_line != seen[a].last_line_hash:
                    seen[b].problem(MANIFEST_FILE, f"does not follow {seen[a].recording}: its opened line names "
                                                   "another previous last line")
            else:
                seen[b].notes.append(f"camera {camera}: recordings {a + 1} to {b - 1} not given here")
    return reports

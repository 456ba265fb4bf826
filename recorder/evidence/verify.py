"""The one verifier of recordings, shared by `pieton verify` and the vault.

It checks the manifest's chain and every signature (against a pinned device key when one
is given), every hash and size, that the manifest ends with ``closed`` or ``recovered``,
the folder name against the recording id, that every file in the folder is listed, and the
stanza count of every age file against the recipients in ``opened``. With the chief's
identities it also decrypts each segment and demuxes it as MPEG-TS, and reads each
metadata file. Each problem names the recording, the file and the reason.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from recorder.errors import AgeError, EvidenceError, VerificationError
from recorder.evidence.chain import MANIFEST_CONTEXT, read_chain, split_pieces
from recorder.evidence.metadata import decrypt_metadata
from recorder.evidence.recording import segment_names
from recorder.evidence.recovery import MANIFEST_FILE, listed_files
from recorder.evidence.spool import RECORDING_ID

KNOWN_EVENTS = ("opened", "progress", "sealed", "aborted", "closed", "recovered")


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
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise VerificationError(f"devices file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    devices: dict[str, bytes] = {}
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise VerificationError(f"devices file {path}: not valid JSON ({exc})") from None
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


def _sha256_file(path: Path) -> tuple[int, str]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
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
    def __init__(self, folder: Path, device_key, devices, identities):
        self.folder = folder
        self.report = RecordingReport(folder.name, str(folder))
        self.device_key = device_key
        self.devices = devices
        self.identities = identities
        self.sizes: dict[str, tuple[int, str]] = {}
        self.cut_short: set[str] = set()

    def _local(self, exc: Exception) -> str:
        """An error message with the folder's path taken out (the problem names the file)."""
        return str(exc).replace(str(self.folder) + "/", "")

    def file_digest(self, name: str) -> tuple[int, str] | None:
        if name not in self.sizes:
            path = self.folder / name
            if not path.is_file():
                return None
            self.sizes[name] = _sha256_file(path)
        return self.sizes[name]

    def expect(self, name: str, size, sha256, what: str) -> bool:
        found = self.file_digest(name)
        if found is None:
            self.report.problem(name, f"{what} listed in the manifest but missing")
            return False
        if found[0] != size:
            self.report.problem(name, f"size {found[0]} bytes, the manifest says {size} (truncated or replaced)")
            return False
        if found[1] != sha256:
            self.report.problem(name, "SHA-256 differs from the manifest (altered, swapped or copied from elsewhere)")
            return False
        return True

    def run(self) -> RecordingReport:
        r = self.report
        if not self.folder.is_dir():
            r.problem("-", "not a folder")
            return r
        manifest = self.folder / MANIFEST_FILE
        if not manifest.is_file():
            r.problem(MANIFEST_FILE, "missing: this is not a recording, or its manifest was removed")
            return r
        first = next((p.line for p in split_pieces(manifest.read_bytes()) if p.line is not None), None)
        opened = first if first and first.get("event") == "opened" else None
        key = self._pick_key(opened)
        chain = read_chain(manifest, MANIFEST_CONTEXT, key)
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
            r.camera_id = opened.get("camera_id")
            r.recording_seq = opened.get("recording_seq")
            r.device_key = opened.get("device_key")
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
            r.problem(MANIFEST_FILE, f"recording id {rid} does not match the folder name {self.folder.name}")
        m = RECORDING_ID.match(str(rid))
        if not m:
            r.problem(MANIFEST_FILE, f"recording id {rid!r} is malformed")
        else:
            if m["camera"] != opened.get("camera_id"):
                r.problem(MANIFEST_FILE, f"recording id names camera {m['camera']}, the manifest {opened.get('camera_id')}")
            if int(m["seq"]) != opened.get("recording_seq"):
                r.problem(MANIFEST_FILE, f"recording id has sequence {m['seq']}, the manifest {opened.get('recording_seq')}")
            stamp = str(opened.get("started_at", ""))
            if stamp[:19].replace("-", "").replace(":", "") + "Z" != m["time"]:
                r.problem(MANIFEST_FILE, f"recording id time {m['time']} differs from started_at {stamp}")
        if not isinstance(opened.get("recipients"), list) or not opened["recipients"]:
            r.problem(MANIFEST_FILE, "the opened line lists no recipients")

    def _walk(self, lines: list[dict], opened: dict | None) -> None:
        r = self.report
        sealed: list[dict] = []
        progress: dict[str, list[dict]] = {}
        partials: list[dict] = []
        closed = False
        for line in lines[1:] if opened else lines:
            event = line.get("event")
            if event not in KNOWN_EVENTS or event == "opened":
                r.problem(MANIFEST_FILE, f"seq {line.get('seq')}: unexpected {event!r} line")
                continue
            if closed and event != "recovered":
                r.problem(MANIFEST_FILE, f"seq {line.get('seq')}: {event!r} line after the recording was closed")
            if event == "progress":
                progress.setdefault(str(line.get("file")), []).append(line)
            elif event == "sealed":
                index = line.get("segment")
                expected = len(sealed) + 1
                if index != expected:
                    r.problem(str(line.get("file")), f"sealed as segment {index}, expected segment {expected} (segment missing or moved)")
                if isinstance(index, int) and (line.get("file"), line.get("meta_file")) != segment_names(index):
                    r.problem(str(line.get("file")), f"file names do not match segment {index}")
                sealed.append(line)
                self.expect(line["file"], line.get("size"), line.get("sha256"), "segment")
                self.expect(line["meta_file"], line.get("meta_size"), line.get("meta_sha256"), "metadata")
            elif event == "aborted":
                partials.append(line)
                self.expect(line["file"], line.get("size"), line.get("sha256"), "aborted segment")
            elif event == "closed":
                closed = True
                r.closed_reason = line.get("reason")
                if line.get("segments") != len(sealed):
                    r.problem(MANIFEST_FILE, f"closed with {line.get('segments')} segment(s) but {len(sealed)} sealed")
                if line.get("meta_file"):
                    self.expect(line["meta_file"], line.get("meta_size"), line.get("meta_sha256"), "metadata")
            elif event == "recovered":
                for found in line.get("found", []):
                    self.expect(found.get("file"), found.get("size"), found.get("sha256"), "recovered file")
                    if str(found.get("file")).endswith((".ts.age.part", ".ts.age")):
                        partials.append(found)
                if not closed:
                    r.truncated = (f"{line.get('data_stops') or 'the last sealed segment'} "
                                   "(power cut; recovered at the next start)")
                closed = True
        r.segments = len(sealed)
        if not lines or lines[-1].get("event") not in ("closed", "recovered"):
            r.problem(MANIFEST_FILE, "no closed or recovered line at the end: the end of the recording is missing "
                                     "(last segments or closing line removed, or recovery not run)")
        if partials and not r.truncated:
            r.truncated = f"{partials[-1].get('file')} (segment aborted: {partials[-1].get('reason', 'power cut')})"
        listed = listed_files(lines)
        for path in sorted(self.folder.iterdir()):
            if path.name != MANIFEST_FILE and path.name not in listed:
                r.problem(path.name, "in the folder but not listed in the manifest")
        self._check_progress(progress)
        recipients = len(opened.get("recipients") or []) if opened else None
        self.cut_short = {str(f.get("file")) for line in lines if line.get("event") == "recovered"
                          for f in line.get("found", []) if f.get("age_header", "ok") != "ok"}
        for name in sorted(listed):
            if (self.folder / name).is_file() and name.endswith((".age", ".age.part")):
                self._check_stanzas(name, recipients)
        if self.identities:
            self._decrypt(sealed, partials, lines)

    def _check_progress(self, progress: dict[str, list[dict]]) -> None:
        for part_name, entries in progress.items():
            name = part_name[:-5] if part_name.endswith(".part") else part_name
            path = self.folder / name if (self.folder / name).is_file() else self.folder / part_name
            if not path.is_file():
                continue
            h, done = hashlib.sha256(), 0
            with open(path, "rb") as f:
                for entry in sorted(entries, key=lambda e: e.get("durable_bytes") or 0):
                    want = entry.get("durable_bytes") or 0
                    block = f.read(max(0, want - done))
                    h.update(block)
                    done += len(block)
                    if done < want:
                        self.report.problem(path.name, f"shorter than the {want} bytes the manifest says were durable")
                        break
                    if h.copy().hexdigest() != entry.get("sha256"):
                        self.report.problem(path.name, f"first {want} bytes differ from what was durable when written")
                        break

    def _check_stanzas(self, name: str, recipients: int | None) -> None:
        from recorder.evidence.age import header_info
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
        from recorder.evidence.age import decrypt
        r = self.report
        for entry, must_be_complete in [(s, True) for s in sealed] + [(p, False) for p in partials]:
            name = entry.get("file")
            if not (self.folder / name).is_file() or name in self.cut_short:
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
        metas = [(line.get("meta_file"), line.get("segment", 0) if line.get("event") == "sealed" else 0)
                 for line in lines if line.get("meta_file")]
        for line in lines:
            for found in line.get("found", []) if line.get("event") == "recovered" else []:
                name = str(found.get("file"))
                if name.endswith((".meta.age", ".meta.age.part")):
                    metas.append((name, int(name[4:10]) if name[4:10].isdigit() else 0))
        for meta, expected in metas:
            if not (self.folder / meta).is_file():
                continue
            try:
                doc = decrypt_metadata(self.folder / meta, self.identities, meta)
            except (AgeError, EvidenceError) as exc:
                r.problem(meta, f"metadata unreadable: {self._local(exc)}")
                continue
            if doc.get("recording_id") != r.recording or doc.get("segment") != expected:
                r.problem(meta, f"metadata belongs to {doc.get('recording_id')} segment {doc.get('segment')}")


def verify_recording(folder: str | Path, *, device_key: bytes | None = None,
                     devices: dict[str, bytes] | None = None, identities: list | None = None) -> RecordingReport:
    return _Checker(Path(folder), device_key, devices, identities).run()


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


def verify_journal(spool_dir: str | Path, device_key: bytes | None,
                   recordings: list[RecordingReport]) -> tuple[list[Problem], list[str]]:
    """The device journal of a spool: its chain and signatures, and that every recording
    folder given is one the journal saw opened. Returns (problems, notes)."""
    from recorder.evidence.journal import JOURNAL_FILE, read_journal
    spool_dir = Path(spool_dir)
    problems: list[Problem] = []
    notes: list[str] = []
    report = read_journal(spool_dir / JOURNAL_FILE, device_key)
    for p in report.problems:
        problems.append(Problem(spool_dir.name, JOURNAL_FILE, p))
    if device_key is None:
        notes.append(f"{JOURNAL_FILE}: device key not pinned, signatures not checked")
    seen = {(line.get("data") or {}).get("recording_id") for line in report.lines
            if line.get("event") in ("recording opened", "recording closed", "recording recovered")}
    for rec in recordings:
        if rec.recording not in seen:
            problems.append(Problem(rec.recording, JOURNAL_FILE, "recording not in the device journal"))
    given = {rec.recording for rec in recordings}
    absent = sorted(str(r) for r in seen - given if r)
    if absent:
        notes.append(f"{JOURNAL_FILE}: {len(absent)} recording(s) in the journal not in this spool "
                     f"(offloaded?): {', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}")
    return problems, notes

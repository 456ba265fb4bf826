"""One signed hash chain, shared by the manifest, the device journal and the vault's journal.

Each line is the canonical JSON (sorted keys, no spaces, UTF-8) of a record plus ``seq``,
``prev`` (SHA-256 hex of the previous line's bytes, without its newline) and ``sig`` (hex
Ed25519 signature over ``context + "\\n" + canonical(line without sig)``). The context
names the log, so a signed line cannot be moved from one log into another.

A power cut can leave a torn last line. The writer never rewrites what is on disk: it ends
the fragment with a newline and the next line it appends carries ``torn`` (the fragment's
offset, length and SHA-256) so a reader accepts the fragment as documented, and the chain
goes on from the last good line.
"""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from drivers.signer import Signer, verify_signature
from recorder.errors import EvidenceError, StorageFull
from recorder.evidence.format import canonical
from recorder.inputs import LIMITS, InputError, loads_strict, read_bounded

GENESIS = "0" * 64  # ``prev`` of a chain's first line
RESERVED = ("seq", "prev", "sig", "torn")
MAX_TORN = 64   # fragments one line documents; a power cut leaves one or two
SCAN_WINDOW = 16 * 1024 * 1024   # how much of a chain's end a writer reads to go on from it


def line_hash(line_bytes: bytes) -> str:
    return hashlib.sha256(line_bytes).hexdigest()


def signed_bytes(context: str, line: dict) -> bytes:
    unsigned = {k: v for k, v in line.items() if k != "sig"}
    return context.encode("utf-8") + b"\n" + canonical(unsigned)


def sign_document(doc: dict, context: str, signer: Signer) -> dict:
    """Sign a standalone JSON document (receipt, report, checkpoint) the way chain lines
    are signed: ``sig`` over the context and the canonical document without it."""
    doc["sig"] = signer.sign(signed_bytes(context, doc)).hex()
    return doc


def signature_valid(doc: dict, context: str, public_key: bytes) -> bool:
    """True when ``doc["sig"]`` is the signature of ``doc`` under ``context`` by the key."""
    sig = doc.get("sig")
    # One spelling only, as written (.hex()): fromhex would also take capitals and spaces,
    # so a changed line would still verify.
    if not isinstance(sig, str) or not all(c in "0123456789abcdef" for c in sig):
        return False
    try:
        sig_bytes = bytes.fromhex(sig)
    except ValueError:
        return False
    return verify_signature(public_key, sig_bytes, signed_bytes(context, doc))


def fsync_dir(path: str | Path) -> None:
    """Make a folder's entries (a new or renamed file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: bytes, mode: int = 0o644) -> None:
    """Replace a whole file: a crash leaves the old one or the new one, never half, and
    the new one is durable (file, then folder, fsynced) when this returns."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


@dataclass
class Piece:
    """One newline-separated piece of a chain file."""

    offset: int
    raw: bytes          # without the newline
    line: dict | None   # parsed, when it is a well-formed chain line
    terminated: bool    # followed by a newline


def _parse(raw: bytes) -> dict | None:
    """The line as a chain line, or None for anything else (garbage, a torn fragment, NaN,
    deep nesting, absurd numbers, a line over the size of any line we write)."""
    if len(raw) > LIMITS["line"]:
        return None
    try:
        obj = loads_strict(raw, "chain line")
    except InputError:
        return None
    if not isinstance(obj, dict) or not all(k in obj for k in ("seq", "prev", "sig")):
        return None
    return obj


def split_pieces(data: bytes) -> list[Piece]:
    pieces, offset = [], 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        terminated = end >= 0
        if not terminated:
            end = len(data)
        raw = data[offset:end]
        pieces.append(Piece(offset, raw, _parse(raw), terminated))
        offset = end + 1
    return pieces


def windows_from_end(path: str | Path, window: int):
    """The pieces of a chain file, ``window`` bytes at a time from its end (offsets in the
    whole file; a line cut by a window's start belongs to the next window back). Memory
    stays within one window, whatever the file's size; a line longer than a window is
    skipped (no line we write comes near it)."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - window)
            f.seek(max(0, start - 1))
            data = f.read(end - max(0, start - 1))
            if start > 0:
                first = data.find(b"\n")      # the byte before ``start`` is data[0]
                base = start - 1 + first + 1
                if first < 0 or base >= end:   # one line longer than the window: skipped
                    end = _line_start(f, start - 1)
                    continue
                data = data[first + 1:]
            else:
                base = 0
            pieces = split_pieces(data)
            for piece in pieces:
                piece.offset += base
            yield pieces
            end = base


def _line_start(f, pos: int) -> int:
    """Where the line holding byte ``pos - 1`` starts (after the last newline before pos)."""
    while pos > 0:
        low = max(0, pos - 65536)
        f.seek(low)
        at = f.read(pos - low).rfind(b"\n")
        if at >= 0:
            return low + at + 1
        pos = low
    return 0


def read_chain_bytes(path: Path, context: str) -> bytes:
    """A chain file, bounded by the size limit of its kind; FileNotFoundError when it is
    absent, InputError when it is too large or unreadable."""
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(path)
    kind = "journal" if "journal" in context or "register" in context else "manifest"
    return read_bounded(path, kind, what=str(path))


def _torn_key(rec) -> tuple | None:
    """A torn record as something to look up (None when it is not a record at all)."""
    if not isinstance(rec, dict):
        return None
    key = (rec.get("offset"), rec.get("length"), rec.get("sha256"))
    return key if all(isinstance(v, int | str) for v in key) else None


def torn_record(piece: Piece) -> dict:
    return {"offset": piece.offset, "length": len(piece.raw), "sha256": line_hash(piece.raw)}


class ChainWriter:
    """Appends signed lines to a chain file; each append is flushed and fsynced.

    ``on_durable(path, size)`` is told the file's durable length after each fsync (the
    power-cut benchmark uses it to know what a real power cut would keep).
    """

    def __init__(self, path: str | Path, context: str, signer: Signer, *, on_durable=None):
        self.path = Path(path)
        self.context = context
        self.signer = signer
        self.on_durable = on_durable
        self.next_seq = 0
        self.last_hash = GENESIS
        self._pending_torn: list[dict] = []
        self._needs_newline = False
        existed = self.path.exists()
        if existed:
            self._scan()
        self._file = open(self.path, "ab", buffering=0)  # a failed write leaves nothing buffered
        if not existed:
            fsync_dir(self.path.parent)

    def _scan(self) -> None:
        """Find the chain's state again from the file (at open, and after a failed write).

        The chain goes on from the last line this key signed: whatever follows it (a torn
        fragment, or a line someone added) is documented as torn by the next append, and
        never sets the sequence number or the link. When no line is this key's (the camera
        was provisioned again), it goes on from the last well-formed line, as the verifier
        will say. At most MAX_TORN fragments are documented: more is not a power cut."""
        after: list[dict] = []          # torn records after the last signed line, oldest first
        fallback, found = None, None
        with open(self.path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            self._needs_newline = size > 0 and f.seek(size - 1) >= 0 and f.read(1) != b"\n"
        for pieces in windows_from_end(self.path, SCAN_WINDOW):   # memory: one window
            at = next((i for i in range(len(pieces) - 1, -1, -1) if self._signed_here(pieces[i].line)), None)
            rest = pieces if at is None else pieces[at + 1:]
            after = ([torn_record(p) for p in rest if p.raw] + after)[:MAX_TORN]
            if fallback is None:
                fallback = next((p for p in reversed(rest) if p.line is not None
                                 and type(p.line.get("seq")) is int and p.line["seq"] >= 0), None)
            if at is not None:
                found = pieces[at]
                break
        if found is None and fallback is not None:   # no line of this key's: another key
            found = fallback
            after = [rec for rec in after if rec["offset"] > fallback.offset]
        if found is not None:
            self.next_seq = found.line["seq"] + 1
            self.last_hash = line_hash(found.raw)
        self._pending_torn = after

    def _signed_here(self, line: dict | None) -> bool:
        return (line is not None and type(line.get("seq")) is int and line["seq"] >= 0
                and signature_valid(line, self.context, self.signer.public_key))

    @property
    def torn(self) -> list[dict]:
        """Fragments after the last good line, to be documented by the next append."""
        return list(self._pending_torn)

    def append(self, record: dict) -> dict:
        clash = [k for k in RESERVED if k in record]
        if clash:
            raise EvidenceError(f"{self.path}: record uses reserved chain field(s) {clash}")
        line = dict(record)
        line["seq"] = self.next_seq
        line["prev"] = self.last_hash
        if self._pending_torn:
            line["torn"] = self._pending_torn
        line["sig"] = self.signer.sign(signed_bytes(self.context, line)).hex()
        raw = canonical(line)
        data = (b"\n" if self._needs_newline else b"") + raw + b"\n"
        try:
            view = memoryview(data)
            while view:
                view = view[self._file.write(view):]
            os.fsync(self._file.fileno())
        except OSError as exc:
            # Part of the line may be on disk: the next append must document it as torn.
            self._scan()
            if exc.errno == errno.ENOSPC:
                raise StorageFull(f"storage full while appending to {self.path}") from None
            raise
        self._needs_newline = False
        self._pending_torn = []
        self.next_seq += 1
        self.last_hash = line_hash(raw)
        if self.on_durable is not None:
            self.on_durable(str(self.path), self._file.tell())
        return line

    def moved(self, path: str | Path) -> None:
        """The file was renamed (its folder put in place): go on appending to the same open
        file under its new name, without reading it again."""
        self.path = Path(path)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ChainWriter {self.path} context={self.context} next_seq={self.next_seq}>"


@dataclass
class ChainReport:
    """What a chain file holds and what is wrong with it (``problems``, one per place)."""

    path: Path
    context: str
    lines: list[dict] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    torn: list[dict] = field(default_factory=list)      # documented fragments
    signatures_checked: bool = False
    last_hash: str = GENESIS

    @property
    def ok(self) -> bool:
        return not self.problems


def read_chain(path: str | Path, context: str, public_key: bytes | None,
               *, genesis: str = GENESIS, data: bytes | None = None) -> ChainReport:
    """Read and check a chain: form, sequence, links, signatures (when ``public_key`` is
    given) and fragments. Each problem names the line (1-based) and what is wrong; nothing
    in the file makes it raise. ``data``: the file's bytes, when the caller read them."""
    path = Path(path)
    report = ChainReport(path, context, signatures_checked=public_key is not None)
    if data is None:
        try:
            data = read_chain_bytes(path, context)
        except FileNotFoundError:
            report.problems.append("missing")
            return report
        except InputError as exc:
            report.problems.append(str(exc).replace(f"{path}: ", ""))
            return report
    if not data:
        report.problems.append("empty")
        return report
    pieces = split_pieces(data)
    documented = {_torn_key(rec) for p in pieces if p.line is not None
                  for rec in (p.line.get("torn") if isinstance(p.line.get("torn"), list) else [])}
    expected_seq, prev = 0, genesis
    undocumented: list[tuple[int, dict]] = []
    for number, piece in enumerate(pieces, start=1):
        where = f"line {number}"
        if piece.line is not None and _torn_key(torn_record(piece)) in documented:
            # A whole line the writer found after its last signed line and documented: not
            # a torn write (those never parse), a line someone else added.
            if public_key is None or not signature_valid(piece.line, context, public_key):
                report.problems.append(f"{where}: a line not signed by the device key, found after its "
                                       "last line and documented by the next one (added by someone else)")
            undocumented.append((number, torn_record(piece)))
            continue
        if piece.line is None:
            if piece.raw:
                undocumented.append((number, torn_record(piece)))
            elif piece.terminated:
                report.problems.append(f"{where}: empty line")
            continue
        line = piece.line
        if canonical(line) != piece.raw:
            report.problems.append(f"{where}: not in canonical form (edited?)")
        torn = line.get("torn") if isinstance(line.get("torn"), list) else []
        for n, rec in undocumented:
            if rec in torn:
                report.torn.append(rec)
            else:
                report.problems.append(f"line {n}: damaged line ({rec['length']} bytes) not documented by a recovery")
        undocumented = []
        if line.get("seq") != expected_seq:
            report.problems.append(f"{where}: sequence number {line.get('seq')!r}, expected {expected_seq} (line missing, added or moved)")
        if line.get("prev") != prev:
            report.problems.append(f"{where}: does not link to the previous line (a line was edited, removed or moved)")
        if public_key is not None:
            if not signature_valid(line, context, public_key):
                report.problems.append(f"{where}: bad signature (not signed by this device key for {context})")
        report.lines.append(line)
        report.raw.append(piece.raw)
        expected_seq = (line["seq"] + 1) if isinstance(line.get("seq"), int) else expected_seq + 1
        prev = line_hash(piece.raw)
    for n, rec in undocumented:
        report.problems.append(f"line {n}: torn last line ({rec['length']} bytes), not yet recovered")
    report.last_hash = prev
    return report

"""The age v1 header and ASCII armor (C2SP age specification, age-encryption.org/v1).

The header is text: a version line, one stanza per recipient, then a MAC line.

    age-encryption.org/v1
    -> X25519 <ephemeral share, base64>
    <wrapped file key, base64, 64-column lines, the last one shorter>
    --- <HMAC-SHA256 of everything up to and including '---', base64>

Base64 is the standard alphabet without padding, and must be canonical.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from recorder.errors import AgeError

VERSION_LINE = b"age-encryption.org/v1"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
COLUMNS = 64
MAX_LINE = 4096        # no header line of a valid file is this long
MAX_STANZAS = 1000


class HeaderTruncated(AgeError):
    """The file ends inside its header (a write cut short before the header was durable)."""


@dataclass
class Stanza:
    type: str
    args: list[str]
    body: bytes

    def encode(self) -> bytes:
        text = b64encode(self.body)
        lines = [text[i:i + COLUMNS] for i in range(0, len(text), COLUMNS)]
        if len(text) % COLUMNS == 0:
            lines.append("")  # the last body line is always shorter than 64 columns
        head = " ".join(["->", self.type, *self.args])
        return (head + "\n" + "".join(line + "\n" for line in lines)).encode("ascii")


@dataclass
class Header:
    stanzas: list[Stanza]
    mac: bytes
    mac_input: bytes          # the header bytes the MAC covers
    size: int                 # header length in bytes, MAC line included
    types: list[str] = field(default_factory=list)


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    return hmac.new(hkdf(file_key, b"", b"header"), mac_input, hashlib.sha256).digest()


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    """Strict: standard alphabet, no padding, canonical (unused bits zero)."""
    if "=" in text or len(text) % 4 == 1:
        raise AgeError(f"invalid base64 {text[:20]!r}")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise AgeError(f"invalid base64 {text[:20]!r}") from None
    if b64encode(data) != text:
        raise AgeError(f"non-canonical base64 {text[:20]!r}")
    return data


def encode_header(stanzas: list[Stanza], file_key: bytes) -> bytes:
    mac_input = VERSION_LINE + b"\n" + b"".join(s.encode() for s in stanzas) + b"---"
    return mac_input + b" " + b64encode(header_mac(file_key, mac_input)).encode("ascii") + b"\n"


def _is_arg(text: str) -> bool:
    return bool(text) and all(33 <= ord(c) <= 126 for c in text)


def read_header(f, name: str) -> Header:
    """Parse the header from a binary file object positioned at its start; leaves it
    positioned at the payload. Raises HeaderTruncated if the file ends inside the header,
    AgeError if it is not age or the header is malformed."""
    consumed = bytearray()

    def line() -> str:
        first = not consumed
        raw = f.readline(MAX_LINE)
        consumed.extend(raw)
        if first and not (raw.rstrip(b"\n") == VERSION_LINE[:len(raw.rstrip(b"\n"))]):
            raise AgeError(f"{name} is not an age file")
        if not raw.endswith(b"\n"):
            if len(raw) < MAX_LINE:
                raise HeaderTruncated(f"{name}: the file ends inside its age header")
            raise AgeError(f"{name}: header line too long")
        try:
            return raw[:-1].decode("ascii")
        except UnicodeDecodeError:
            raise AgeError(f"{name}: non-ASCII bytes in the age header") from None

    if line().encode() != VERSION_LINE:
        raise AgeError(f"{name} is not an age file")
    stanzas: list[Stanza] = []
    text = line()
    while text.startswith("-> "):
        parts = text[3:].split(" ")
        if not all(_is_arg(p) for p in parts):
            raise AgeError(f"{name}: malformed stanza line in the age header")
        body = ""
        while True:
            body_line = line()
            if len(body_line) > COLUMNS:
                raise AgeError(f"{name}: stanza body line longer than {COLUMNS} columns")
            body += body_line
            if len(body_line) < COLUMNS:
                break
        stanzas.append(Stanza(parts[0], parts[1:], b64decode(body)))
        if len(stanzas) > MAX_STANZAS:
            raise AgeError(f"{name}: too many stanzas in the age header")
        text = line()
    if not text.startswith("--- "):
        raise AgeError(f"{name}: malformed age header (expected '-> ' or '--- ')")
    mac = b64decode(text[4:])
    if len(mac) != 32:
        raise AgeError(f"{name}: header MAC has the wrong length")
    if not stanzas:
        raise AgeError(f"{name}: age header has no recipient stanza")
    mac_input = bytes(consumed[:len(consumed) - len(text) - 1]) + b"---"
    return Header(stanzas, mac, mac_input, len(consumed), types=[s.type for s in stanzas])


def armor(data: bytes) -> bytes:
    text = base64.b64encode(data)
    lines = [text[i:i + COLUMNS] for i in range(0, len(text), COLUMNS)]
    return ARMOR_BEGIN + b"\n" + b"".join(line + b"\n" for line in lines) + ARMOR_END + b"\n"


def is_armored(data: bytes) -> bool:
    """As the age CLI decides: armored when the file starts with the BEGIN line itself."""
    return data[:len(ARMOR_BEGIN)] == ARMOR_BEGIN


# What age's armor reader (Go's bytes.TrimSpace) counts as white space after the END line.
_GO_SPACE = frozenset(" \t\n\v\f\r\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
                      + "".join(chr(c) for c in range(0x2000, 0x200B)))
MAX_ARMOR_TRAILER = 1024    # age refuses this much white space after the END line


def _armor_line(text: bytes) -> bytes | None:
    """One body line of strict (padded, canonical) base64, or None; like age's decoder,
    CRs inside the line are skipped (they still count as columns)."""
    line = text.replace(b"\r", b"")
    try:
        data = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if base64.b64encode(data) == line else None


def dearmor(data: bytes, name: str) -> bytes:
    """The binary age file inside its armor, read line by line as age's reader does: the
    BEGIN line, lines of at most 64 columns of padded base64 (48 bytes each but the last,
    which is shorter, possibly empty), the END line, then at most a little white space."""
    pos = 0

    def line(what: str) -> bytes:
        nonlocal pos
        if pos >= len(data):
            raise AgeError(f"{name}: malformed armor (the file ends before {what})")
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        text, pos = data[pos:end], end + 1
        return text[:-1] if text.endswith(b"\r") else text

    if line("the BEGIN line") != ARMOR_BEGIN:
        raise AgeError(f"{name}: malformed armor (the first line is not the BEGIN line)")
    out = bytearray()
    number = 1
    while True:
        text = line("the END line")
        number += 1
        if text == ARMOR_END:
            break
        if len(text) > COLUMNS:
            raise AgeError(f"{name}: malformed armor (line {number} is longer than {COLUMNS} columns)")
        decoded = _armor_line(text)
        if decoded is None:
            raise AgeError(f"{name}: malformed armor (line {number} is not canonical base64)")
        out += decoded
        if len(decoded) < COLUMNS // 4 * 3:       # the short line is the last one
            if line("the END line") != ARMOR_END:
                raise AgeError(f"{name}: malformed armor (line {number + 1} is not the END line)")
            break
    _check_trailer(data[pos:], name)
    return bytes(out)


def _check_trailer(trailer: bytes, name: str) -> None:
    if len(trailer) >= MAX_ARMOR_TRAILER:
        raise AgeError(f"{name}: malformed armor (too much data after the END line)")
    try:
        text = trailer.decode("utf-8")
    except UnicodeDecodeError:
        text = "x"
    if any(c not in _GO_SPACE for c in text):
        raise AgeError(f"{name}: malformed armor (data after the END line)")

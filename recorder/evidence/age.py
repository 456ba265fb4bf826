"""age v1 files, written as they are produced and read back even when cut short.

The payload after the header is a 16-byte nonce then a STREAM of ChaCha20-Poly1305
chunks of 64 KiB plaintext; each chunk's nonce is an 11-byte big-endian counter and a
flag byte, 1 on the last chunk. The last chunk may be empty only when the whole plaintext
is, so the writer keeps a full chunk until the next byte shows it is not the last: at
most 64 KiB of plaintext is ever held back in memory.

The device only encrypts: it holds recipients, never an identity.
"""

from __future__ import annotations

import errno
import io
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from recorder.errors import AgeError, StorageFull
from recorder.inputs import InputError, read_bounded

from .age_format import (
    Header,
    HeaderTruncated,
    armor,
    dearmor,
    encode_header,
    header_mac,
    hkdf,
    is_armored,
    read_header,
)
from .age_keys import (
    FILE_KEY_SIZE,
    SCRYPT_WORK_FACTOR,
    ScryptIdentity,
    ScryptRecipient,
    as_identity,
    as_recipient,
    format_recipient,
    generate_identity,
    identity_to_recipient,
    parse_identity_lines,
    parse_recipient,
)

__all__ = [
    "AgeWriter", "Decrypted", "DecryptStream", "AgeHeaderInfo", "parse_recipient",
    "format_recipient", "generate_identity", "identity_to_recipient", "load_identities",
    "decrypt", "iter_decrypt", "encrypt_bytes", "encrypt_with_passphrase", "header_info",
    "CHUNK_SIZE", "TAG_SIZE", "NONCE_SIZE",
]

CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
NONCE_SIZE = 16
ENCRYPTED_CHUNK = CHUNK_SIZE + TAG_SIZE


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class AgeWriter:
    """Encrypts to ``recipients`` into ``fileobj`` (a binary file it does not close).

    Each full chunk is encrypted and written as soon as it is known not to be the last;
    the file is fsynced at a write when ``sync_interval`` seconds (on ``clock``) have
    passed since the previous fsync, and ``on_durable(length)`` is told each durable
    ciphertext length. Call ``sync()`` from a timer when writes may pause.
    """

    def __init__(self, fileobj, recipients: Iterable, *, sync_interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic,
                 on_durable: Callable[[int], None] | None = None):
        recipients = [as_recipient(r) for r in recipients]
        if not recipients:
            raise AgeError("no age recipient given: the chief's public key (age1...) is required")
        if len(recipients) > 1 and any(isinstance(r, ScryptRecipient) for r in recipients):
            raise AgeError("a passphrase must be the only recipient of an age file")
        self._file = fileobj
        self.sync_interval = sync_interval
        self._clock = clock
        self._on_durable = on_durable
        file_key = os.urandom(FILE_KEY_SIZE)
        header = encode_header([r.wrap(file_key) for r in recipients], file_key)
        nonce = os.urandom(NONCE_SIZE)
        self._aead = ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))
        self._counter = 0
        self._buf = bytearray()
        self._failed: BaseException | None = None
        self.closed = False
        self.header_size = len(header)
        self.plaintext_size = 0
        self.written_size = 0
        self.durable_size = 0
        self._last_sync = clock()
        self._put(header + nonce)

    def _put(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:  # a raw file may take part of a write; None: a writer that returns nothing
                n = self._file.write(view)
                view = view[len(view) if n is None else n:]
            self._file.flush()
        except OSError as exc:
            self._fail(exc)
            raise
        self.written_size += len(data)

    def _fail(self, exc: OSError) -> None:
        """Refuse any further write; a full disk is raised as StorageFull."""
        self._failed = exc
        if exc.errno == errno.ENOSPC:
            raise StorageFull(f"age file {self._name()}: no space left on the device") from exc

    def _name(self) -> str:
        return str(getattr(self._file, "name", "<stream>"))

    def _seal_chunk(self, plaintext, last: bool) -> None:
        self._put(self._aead.encrypt(_chunk_nonce(self._counter, last), bytes(plaintext), None))
        self._counter += 1

    def _check(self) -> None:
        if self.closed:
            raise AgeError(f"age file {self._name()} is already closed")
        if self._failed is not None:
            raise AgeError(f"age file {self._name()} failed earlier: {self._failed}")

    def write(self, data) -> int:
        self._check()
        view = memoryview(data).cast("B")
        n, pos, buf = len(view), 0, self._buf
        if buf:
            pos = min(CHUNK_SIZE - len(buf), n)
            buf += view[:pos]
            if len(buf) == CHUNK_SIZE and pos < n:
                self._seal_chunk(buf, last=False)
                buf.clear()
        if not buf:
            while n - pos > CHUNK_SIZE:
                self._seal_chunk(view[pos:pos + CHUNK_SIZE], last=False)
                pos += CHUNK_SIZE
            buf += view[pos:]
        self.plaintext_size += n
        if self._clock() - self._last_sync >= self.sync_interval:
            self.sync()
        return n

    @property
    def durable_plaintext_size(self) -> int:
        """Plaintext bytes inside the durable chunks: what a cut now would keep."""
        if self.closed:
            return self.plaintext_size
        return max(0, self.durable_size - self.header_size - NONCE_SIZE) // ENCRYPTED_CHUNK * CHUNK_SIZE

    def sync(self) -> int:
        """Flush and fsync now; returns the durable ciphertext length."""
        if self._failed is not None:
            return self.durable_size
        try:
            self._file.flush()
            try:
                fd = self._file.fileno()
            except (AttributeError, io.UnsupportedOperation):
                fd = None
            if fd is not None:
                os.fsync(fd)
        except OSError as exc:
            self._fail(exc)
            raise
        self._last_sync = self._clock()
        self.durable_size = self.written_size
        if self._on_durable is not None:
            self._on_durable(self.durable_size)
        return self.durable_size

    def close(self) -> int:
        """Write the last chunk (with the final flag), fsync; returns the file's size."""
        if self.closed:
            return self.written_size
        self._check()
        self._seal_chunk(self._buf, last=True)
        self._buf.clear()
        self.closed = True
        return self.sync()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("failed" if self._failed else "open")
        return (f"<AgeWriter {self._name()} {state} plaintext={self.plaintext_size} "
                f"written={self.written_size} durable={self.durable_size}>")


@dataclass
class Decrypted:
    plaintext: bytes
    complete: bool
    chunks: int
    reason: str | None = None


@dataclass
class AgeHeaderInfo:
    stanza_types: list[str]
    header_size: int

    @property
    def recipients(self) -> int:
        return len(self.stanza_types)


def _open_source(source) -> tuple[io.BufferedIOBase, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "<bytes>"
    else:
        name = str(source)
        try:
            f = open(source, "rb")
        except FileNotFoundError:
            raise AgeError(f"{name}: no such file") from None
        except OSError as exc:
            raise AgeError(f"{name}: {exc.strerror}") from None
        if not is_armored(f.read(64)):
            f.seek(0)
            return f, name
        f.seek(0)
        data = f.read()
        f.close()
    if is_armored(data):
        data = dearmor(data, name)
    return io.BytesIO(data), name


def header_info(source) -> AgeHeaderInfo:
    """The header's stanza types and size, without any key (for stanza-count checks)."""
    f, name = _open_source(source)
    with f:
        header = read_header(f, name)
    return AgeHeaderInfo(header.types, header.size)


def _file_key(header: Header, identities, name: str) -> bytes:
    if not identities:
        raise AgeError(f"no identity given to decrypt {name}")
    file_key = None
    for identity in identities:
        file_key = as_identity(identity).unwrap(header.stanzas, name)
        if file_key is not None:
            break
    if file_key is None:
        raise AgeError(f"no identity matches any recipient of {name}")
    if header_mac(file_key, header.mac_input) != header.mac:
        raise AgeError(f"{name}: header MAC mismatch (the age header was altered)")
    return file_key


class DecryptStream:
    """Iterates over the plaintext chunks of an age file; when iteration ends,
    ``complete``, ``chunks`` and ``reason`` say whether the file was whole."""

    def __init__(self, source, identities, *, name: str | None = None):
        self._f, self.name = _open_source(source)
        self.name = name or self.name
        self.complete = False
        self.chunks = 0
        self.reason: str | None = None
        try:
            header = read_header(self._f, self.name)
        except HeaderTruncated:
            self._f.close()
            self._aead = None
            self.reason = "truncated inside the age header: no chunk is readable"
            return
        except BaseException:
            self._f.close()
            raise
        file_key = _file_key(header, list(identities), self.name)
        nonce = self._f.read(NONCE_SIZE)
        if len(nonce) < NONCE_SIZE:
            self._f.close()
            self._aead = None
            self.reason = "truncated before the first chunk (payload nonce incomplete)"
            return
        self._aead = ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))

    def __iter__(self) -> Iterator[bytes]:
        if self._aead is None:
            return
        with self._f:
            yield from self._chunks()

    def _open(self, data: bytes, last: bool) -> bytes | None:
        try:
            return self._aead.decrypt(_chunk_nonce(self.chunks, last), data, None)
        except InvalidTag:
            return None

    def _chunks(self) -> Iterator[bytes]:
        f = self._f
        data = f.read(ENCRYPTED_CHUNK)
        while True:
            n = self.chunks
            if not data:
                self.reason = (f"truncated: the file ends after chunk {n - 1} without a final chunk"
                               if n else "truncated: the file ends before its first chunk")
                return
            if len(data) < TAG_SIZE:
                self.reason = f"truncated: chunk {n} is cut short ({len(data)} bytes)"
                return
            following = f.read(ENCRYPTED_CHUNK) if len(data) == ENCRYPTED_CHUNK else b""
            plain = self._open(data, last=False) if len(data) == ENCRYPTED_CHUNK else None
            if plain is not None:
                self.chunks += 1
                yield plain
                data = following
                continue
            plain = self._open(data, last=True)
            if plain is None:
                if len(data) < ENCRYPTED_CHUNK:
                    self.reason = (f"chunk {n} fails authentication: it is cut short "
                                   f"({len(data)} of {ENCRYPTED_CHUNK} bytes) or altered")
                else:
                    self.reason = f"chunk {n} fails authentication: the file was altered"
                return
            if not plain and n:
                self.reason = f"chunk {n} is an empty final chunk after data (not valid age v1)"
                return
            self.chunks += 1
            yield plain
            if following:
                self.reason = f"unexpected data after the final chunk {n}"
                return
            self.complete = True
            return


def iter_decrypt(path, identities) -> DecryptStream:
    """Plaintext chunks of a (large) age file; check ``.complete``/``.reason`` after."""
    return DecryptStream(path, identities)


def decrypt(source, identities) -> Decrypted:
    """Decrypt a path or bytes. A truncated file gives its complete chunks with
    ``complete=False`` and the reason; a wrong identity, a non-age file or an altered
    header raise AgeError."""
    stream = DecryptStream(source, identities)
    plaintext = b"".join(stream)
    return Decrypted(plaintext, stream.complete, stream.chunks, stream.reason)


def encrypt_bytes(data: bytes, recipients) -> bytes:
    out = io.BytesIO()
    writer = AgeWriter(out, recipients)
    writer.write(data)
    writer.close()
    return out.getvalue()


def encrypt_with_passphrase(data: bytes, passphrase, *, work_factor: int = SCRYPT_WORK_FACTOR,
                            armored: bool = True) -> bytes:
    """age's passphrase format (as ``age -p``), e.g. for an encrypted identity file."""
    out = encrypt_bytes(data, [ScryptRecipient(passphrase, work_factor)])
    return armor(out) if armored else out


def load_identities(path, passphrase=None) -> list[str]:
    """The identities in an identity file, plain (age-keygen) or passphrase-protected
    (``age -p``, armored or not), as the age CLI reads them. ``passphrase`` may be a
    string or a callable asked only if the file is protected."""
    name = str(path)
    if not os.path.lexists(path):
        raise AgeError(f"identity file {name}: no such file")
    try:  # bounded, and a named pipe refused without waiting for a writer
        data = read_bounded(path, "identity", what=f"identity file {name}")
    except InputError as exc:
        raise AgeError(str(exc)) from None
    if not (data.startswith(b"age-encryption.org/") or is_armored(data)):
        return parse_identity_lines(data, f"identity file {name}")
    header = read_header(io.BytesIO(dearmor(data, name) if is_armored(data) else data), name)
    if header.types != ["scrypt"]:
        raise AgeError(f"identity file {name} is encrypted to a key, not with a passphrase")
    if passphrase is None:
        raise AgeError(f"identity file {name} is protected by a passphrase: give it "
                       "(prompt or PIETON_PASSPHRASE)")
    stream = DecryptStream(data, [ScryptIdentity(passphrase)], name=f"identity file {name}")
    plaintext = b"".join(stream)
    if not stream.complete:
        raise AgeError(f"identity file {name} is damaged: {stream.reason}")
    return parse_identity_lines(plaintext, f"identity file {name}")

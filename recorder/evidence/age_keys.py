"""age recipients and identities: X25519 keys in bech32, and scrypt passphrases.

Error messages never repeat a secret: an identity string or a passphrase is never echoed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from recorder.errors import AgeError

from . import bech32
from .age_format import Stanza, b64decode, b64encode, hkdf

RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"
X25519_LABEL = b"age-encryption.org/v1/X25519"
SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
ZERO_NONCE = bytes(12)
FILE_KEY_SIZE = 16
SCRYPT_WORK_FACTOR = 18      # age's own default: about a second
MAX_SCRYPT_WORK_FACTOR = 22  # what the age CLI accepts when decrypting

Passphrase = str | bytes | Callable[[], str | bytes]


def _raw(pub) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def parse_recipient(text: str) -> bytes:
    """The 32-byte X25519 public key of an 'age1...' recipient."""
    if not isinstance(text, str):
        raise AgeError(f"an age recipient must be a string 'age1...', not {type(text).__name__}")
    if text.upper().startswith("AGE-SECRET-KEY-"):
        raise AgeError("a secret identity (AGE-SECRET-KEY-1...) was given where a recipient "
                       "(age1...) is expected; give the public recipient only")
    try:
        hrp, data = bech32.decode(text)
    except bech32.Bech32Error as exc:
        raise AgeError(f"not an age recipient: {text!r} ({exc})") from None
    if hrp != RECIPIENT_HRP or len(data) != 32:
        raise AgeError(f"not an age recipient: {text!r} (expected 'age1' and 32 bytes of key)")
    return data


def format_recipient(pub: bytes) -> str:
    if len(pub) != 32:
        raise AgeError(f"an X25519 public key has 32 bytes, not {len(pub)}")
    return bech32.encode(RECIPIENT_HRP, pub)


def _parse_identity(text: str) -> bytes:
    try:
        hrp, data = bech32.decode(text.strip())
    except bech32.Bech32Error as exc:
        raise AgeError(f"not an age identity ({exc})") from None
    if hrp != IDENTITY_HRP or len(data) != 32:
        raise AgeError("not an age identity (expected 'AGE-SECRET-KEY-1' and 32 bytes of key)")
    return data


def generate_identity() -> tuple[str, str]:
    """A new (identity 'AGE-SECRET-KEY-1...', recipient 'age1...') pair."""
    key = X25519PrivateKey.generate()
    secret = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                               serialization.NoEncryption())
    return bech32.encode(IDENTITY_HRP, secret).upper(), format_recipient(_raw(key.public_key()))


def identity_to_recipient(identity) -> str:
    return format_recipient(_raw(as_identity(identity)._key.public_key()))


class X25519Recipient:
    def __init__(self, recipient: str | bytes):
        self.public_key = recipient if isinstance(recipient, bytes) else parse_recipient(recipient)
        if len(self.public_key) != 32:
            raise AgeError("an X25519 recipient has 32 bytes")

    def wrap(self, file_key: bytes) -> Stanza:
        ephemeral = X25519PrivateKey.generate()
        share = _raw(ephemeral.public_key())
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(self.public_key))
        wrap_key = hkdf(shared, share + self.public_key, X25519_LABEL)
        body = ChaCha20Poly1305(wrap_key).encrypt(ZERO_NONCE, file_key, None)
        return Stanza("X25519", [b64encode(share)], body)


class X25519Identity:
    def __init__(self, identity: str):
        self._key = X25519PrivateKey.from_private_bytes(_parse_identity(identity))
        self.public_key = _raw(self._key.public_key())

    def unwrap(self, stanzas: list[Stanza], name: str) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != "X25519":
                continue
            if len(stanza.args) != 1 or len(stanza.body) != FILE_KEY_SIZE + 16:
                raise AgeError(f"{name}: malformed X25519 stanza")
            share = b64decode(stanza.args[0])
            if len(share) != 32:
                raise AgeError(f"{name}: malformed X25519 stanza (share length)")
            try:
                shared = self._key.exchange(X25519PublicKey.from_public_bytes(share))
            except ValueError:  # all-zero shared secret: a low-order point
                raise AgeError(f"{name}: X25519 stanza with a low-order share") from None
            wrap_key = hkdf(shared, share + self.public_key, X25519_LABEL)
            try:
                return ChaCha20Poly1305(wrap_key).decrypt(ZERO_NONCE, stanza.body, None)
            except InvalidTag:
                continue
        return None

    def __repr__(self) -> str:
        return f"<X25519Identity for {format_recipient(self.public_key)}>"


def _scrypt_key(passphrase: bytes, salt: bytes, log_n: int) -> bytes:
    return Scrypt(salt=SCRYPT_LABEL + salt, length=32, n=1 << log_n, r=8, p=1).derive(passphrase)


def _passphrase_bytes(passphrase: Passphrase) -> bytes:
    if callable(passphrase):
        passphrase = passphrase()
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if not passphrase:
        raise AgeError("the passphrase is empty")
    return passphrase


class ScryptRecipient:
    """A passphrase; age requires it to be the file's only recipient."""

    def __init__(self, passphrase: Passphrase, work_factor: int = SCRYPT_WORK_FACTOR):
        if not 1 <= work_factor <= MAX_SCRYPT_WORK_FACTOR:
            raise AgeError(f"scrypt work factor {work_factor} outside 1..{MAX_SCRYPT_WORK_FACTOR}")
        self._passphrase = _passphrase_bytes(passphrase)
        self.work_factor = work_factor

    def wrap(self, file_key: bytes) -> Stanza:
        salt = os.urandom(16)
        key = _scrypt_key(self._passphrase, salt, self.work_factor)
        body = ChaCha20Poly1305(key).encrypt(ZERO_NONCE, file_key, None)
        return Stanza("scrypt", [b64encode(salt), str(self.work_factor)], body)


class ScryptIdentity:
    def __init__(self, passphrase: Passphrase):
        self._passphrase = passphrase   # a callable is asked only when a file needs it

    def unwrap(self, stanzas: list[Stanza], name: str) -> bytes | None:
        scrypt = [s for s in stanzas if s.type == "scrypt"]
        if not scrypt:
            return None
        if len(stanzas) != 1:
            raise AgeError(f"{name}: an scrypt stanza must be the only one in the header")
        stanza = scrypt[0]
        if (len(stanza.args) != 2 or not re.fullmatch(r"[1-9][0-9]?", stanza.args[1])
                or len(stanza.body) != FILE_KEY_SIZE + 16):
            raise AgeError(f"{name}: malformed scrypt stanza")
        salt, log_n = b64decode(stanza.args[0]), int(stanza.args[1])
        if len(salt) != 16:
            raise AgeError(f"{name}: malformed scrypt stanza (salt length)")
        if log_n > MAX_SCRYPT_WORK_FACTOR:
            raise AgeError(f"{name}: scrypt work factor {log_n} is above {MAX_SCRYPT_WORK_FACTOR}")
        key = _scrypt_key(_passphrase_bytes(self._passphrase), salt, log_n)
        try:
            return ChaCha20Poly1305(key).decrypt(ZERO_NONCE, stanza.body, None)
        except InvalidTag:
            raise AgeError(f"{name}: wrong passphrase") from None


def as_identity(identity):
    """An identity object from an 'AGE-SECRET-KEY-1...' string (objects pass through)."""
    if isinstance(identity, str):
        return X25519Identity(identity)
    if hasattr(identity, "unwrap"):
        return identity
    raise AgeError(f"not an age identity: a {type(identity).__name__}")


def as_recipient(recipient):
    if isinstance(recipient, (str, bytes)):
        return X25519Recipient(recipient)
    if hasattr(recipient, "wrap"):
        return recipient
    raise AgeError(f"not an age recipient: a {type(recipient).__name__}")


def parse_identity_lines(text: bytes, name: str) -> list[str]:
    """The identities of a plain identity file: one per line, '#' comments and blank lines
    ignored, as age-keygen writes them."""
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise AgeError(f"{name} is not an age identity file (not text)") from None
    identities = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.upper().startswith("AGE-SECRET-KEY-1"):
            raise AgeError(f"{name} line {number} is not an age identity (expected AGE-SECRET-KEY-1...)")
        try:
            _parse_identity(line)
        except AgeError as exc:
            raise AgeError(f"{name} line {number}: {exc}") from None
        identities.append(line.upper())
    if not identities:
        raise AgeError(f"{name} contains no age identity")
    return identities

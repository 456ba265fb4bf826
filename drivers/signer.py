"""The device's signing key, behind a small interface.

The default backend keeps an Ed25519 key in a file readable only by the service, outside
the spool; a secure-element backend can replace it without touching the callers. The key
only signs: it can never decrypt anything.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drivers.device import Device
from drivers.errors import DriverUnavailable
from drivers.registry import pick_backend

BACKENDS = {"file": "drivers.signer:FileSigner"}
KEYS_DIR = "keys"                # in the state folder, outside the spool
KEY_FILE = "device-signing.key"
CAMERA_ID_FILE = "camera-id"     # the id `pieton provision` bound to this key


class Signer(Device, ABC):
    """Signs bytes with the device key."""

    @property
    @abstractmethod
    def public_key(self) -> bytes:
        """The 32 raw bytes of the Ed25519 public key."""

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """A 64-byte Ed25519 signature of ``data``."""

    @property
    def public_key_hex(self) -> str:
        return self.public_key.hex()



class FileSigner(Signer):
    """An Ed25519 key in a raw 32-byte file, mode 0600."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            seed = self.path.read_bytes()
        except FileNotFoundError:
            raise DriverUnavailable(
                f"device signing key {self.path} not found: provision the device first "
                "(pieton provision --state-dir DIR --camera-id ID)") from None
        except OSError as exc:
            raise DriverUnavailable(f"device signing key {self.path}: {exc.strerror}") from None
        if len(seed) != 32:
            raise DriverUnavailable(f"device signing key {self.path}: expected 32 bytes, found {len(seed)}")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self._public = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @classmethod
    def create(cls, path: str | Path) -> FileSigner:
        """Make a new key file (never overwrites one: a device keeps its identity)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, seed)
            os.fsync(fd)
        finally:
            os.close(fd)
        return cls(path)

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"<FileSigner {self.path} public={self.public_key_hex[:16]}...>"


def open_signer(backend: str, key_dir: str | Path) -> Signer:
    """The signer named in the configuration's [drivers] section."""
    cls = pick_backend("signer", backend, BACKENDS)
    return cls(Path(key_dir) / KEY_FILE)


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``data`` by ``public_key``."""
    from cryptography.exceptions import InvalidSignature
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True

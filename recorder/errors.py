"""The daemon's and the evidence format's errors: a small hierarchy, each also a built-in
exception, so callers may catch ours or the standard one."""

from drivers.errors import DriverError, DriverFault, DriverUnavailable, UnknownBackend

__all__ = [
    "PietonError", "ConfigError", "EvidenceError", "AgeError", "VerificationError",
    "StorageFull", "RecordingRefused", "DriverError", "DriverFault", "DriverUnavailable",
    "UnknownBackend",
]


class PietonError(Exception):
    """Base of pieton's own errors."""


class ConfigError(PietonError, ValueError):
    """A configuration is malformed; ``problems`` lists every error found, each naming
    file, section, key, offending value and what is allowed."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class EvidenceError(PietonError):
    """Base of errors about recordings, manifests, journals and keys."""


class AgeError(EvidenceError, ValueError):
    """An age file or key cannot be read: not age, wrong identity, wrong passphrase..."""


class VerificationError(EvidenceError, ValueError):
    """Evidence does not verify; the message names the recording, the file and the reason."""


class StorageFull(EvidenceError, OSError):
    """The spool's disk is full."""


class RecordingRefused(PietonError, RuntimeError):
    """A start was refused (outside the commune, no storage, ...); the reason says why."""

"""The daemon's and the evidence format's errors: a small hierarchy under the one root
``PietonError`` (in drivers.errors, the bottom of the house), each also a built-in
exception, so callers may catch ours or the standard one."""

from drivers.errors import DriverError, DriverFault, DriverUnavailable, PietonError, UnknownBackend

__all__ = [
    "PietonError", "ConfigError", "EvidenceError", "AgeError", "VerificationError",
    "StorageFull", "RecordingRefused", "VaultError", "DriverError", "DriverFault", "DriverUnavailable",
    "UnknownBackend", "RefusedError", "BundleError", "AssignmentError", "LinkError", "MediaError",
    "EncoderError",
]


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


class VaultError(PietonError, ValueError):
    """A vault operation is refused or cannot complete; the message says which and why."""


class RefusedError(PietonError, ValueError):
    """Something offered to the device (bundle, assignment, frame) is refused; ``code`` is
    the short reason code sent back to the technician, the message says it in words."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.reason = message
        super().__init__(f"{code}: {message}")


class BundleError(RefusedError):
    """A configuration bundle is malformed, unsigned, untrusted or fails its checks."""


class AssignmentError(RefusedError):
    """A shift assignment is malformed, untrusted, replayed or expired."""


class LinkError(PietonError, OSError):
    """The serial link failed: no answer, cable pulled, port unavailable."""


class ControlError(PietonError, OSError):
    """The control socket cannot be served or reached (daemon not running, no permission,
    no answer); the message names the socket and what to do."""


class MediaError(PietonError, RuntimeError):
    """The media pipeline cannot go on as asked (bad state, a stage failed)."""


class EncoderError(MediaError):
    """The encoder refused a frame or a block of samples; the message says which."""

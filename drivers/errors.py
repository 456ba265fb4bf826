"""Driver errors. They inherit twice so callers may catch ours or the built-in one."""


class DriverError(Exception):
    """Base of every hardware driver error."""


class UnknownBackend(DriverError, ValueError):
    """The configuration names a backend that does not exist for this kind of hardware."""


class DriverUnavailable(DriverError, OSError):
    """The hardware (or the library behind it) cannot be opened."""


class DriverFault(DriverError, RuntimeError):
    """The hardware failed while in use."""


class BadAudioFile(DriverError, ValueError):
    """An audio file (the spoken notice) cannot be read or has an unsupported format."""

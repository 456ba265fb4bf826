"""The root of every pieton error, and the drivers' errors.

The root lives here, at the bottom of the house (drivers <- recorder <- tools), so that one
``except PietonError`` catches every error the project raises. Errors inherit twice so
callers may catch ours or the built-in one."""


class PietonError(Exception):
    """Base of every error pieton raises itself."""


class DriverError(PietonError):
    """Base of every hardware driver error."""


class UnknownBackend(DriverError, ValueError):
    """The configuration names a backend that does not exist for this kind of hardware."""


class DriverUnavailable(DriverError, OSError):
    """The hardware (or the library behind it) cannot be opened."""


class DriverFault(DriverError, RuntimeError):
    """The hardware failed while in use."""


class BadAudioFile(DriverError, ValueError):
    """An audio file (the spoken notice) cannot be read or has an unsupported format."""

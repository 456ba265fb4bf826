"""pieton recorder: the daemon that runs on the body-worn camera."""

__version__ = "0.1.0"

"""What every driver is, as gpiozero's devices are: a context manager whose ``close()``
is idempotent and releases the hardware."""

from __future__ import annotations


class Device:
    def close(self) -> None:  # noqa: B027  (a device with nothing to release)
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

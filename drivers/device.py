"""What every driver is, as gpiozero's devices are: a context manager whose ``close()``
is idempotent and releases the hardware."""

from __future__ import annotations

from drivers.errors import DriverFault


class Device:
    def close(self) -> None:  # noqa: B027  (a device with nothing to release)
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Source(Device):
    """A device that, once started, hands what it captures to a callback on the loop
    (the camera, the microphone). Starting again is a no-op; a closed source cannot start."""

    kind = "source"

    def __init__(self) -> None:
        self._closed = False
        self._started = False

    def _begin(self, loop, callback) -> bool:
        """Every backend's start guard: True when this call is to start the source (the
        loop and callback are kept), False when it already runs; raises once closed."""
        if self._closed:
            raise DriverFault(f"{self.kind} is closed")
        if self._started:
            return False
        self._loop, self._callback = loop, callback
        return True

    def close(self) -> None:
        self._closed = True

    def _run_state(self) -> str:
        return "closed" if self._closed else ("running" if self._started else "stopped")

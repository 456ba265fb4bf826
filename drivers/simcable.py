"""A simulated USB serial cable between a technician's workstation and a camera.

Two pseudo-terminals joined by a relay thread: whatever is written on one end comes out of
the other, as on a real cable, through the real termios and pyserial code. The cable
publishes its two ends by name, so anything that opens ports with ``serial_for_url``
(``drivers.serial_urls.open_serial``) reaches them as ``simcable://NAME/host`` and
``simcable://NAME/device``, in this process or another one of the same user: tests,
scenarios and benchmarks pick the simulated cable like any port.

The names live as symbolic links to the pty ends in a folder only the user can write
(``cable_folder()``), removed when the cable closes.
"""

from __future__ import annotations

import itertools
import os
import select
import stat
import tempfile
import threading
import time
import tty
from pathlib import Path

from drivers.errors import DriverUnavailable

SCHEME = "simcable"
ENDS = ("host", "device")
_NUMBERS = itertools.count(1)


def cable_folder() -> Path:
    """Where cables publish their ends: per user, so no one else can plant a name."""
    return Path(tempfile.gettempdir()) / f"pieton-simcable-{os.getuid()}"


def _private_folder() -> Path:
    folder = cable_folder()
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise DriverUnavailable(f"simulated cables: {folder} is not a private folder of this user")
    return folder


def resolve(url: str) -> str:
    """The pty path behind ``simcable://NAME/END``; DriverUnavailable names what is wrong."""
    prefix = f"{SCHEME}://"
    if not url.lower().startswith(prefix):
        raise DriverUnavailable(f"{url!r} is not a {prefix}NAME/END address")
    name, _, end = url[len(prefix):].partition("/")
    if not name or "." in name or end not in ENDS:
        raise DriverUnavailable(f"{url!r}: expected {prefix}NAME/host or {prefix}NAME/device")
    try:
        return os.readlink(_private_folder() / f"{name}.{end}")
    except FileNotFoundError:
        raise DriverUnavailable(f"{url!r}: no simulated cable named {name!r} is plugged in") from None


class PtyCable:
    """Two pseudo-terminals joined by a relay, as a USB serial cable between a workstation
    (``host_path`` or ``host_url``) and a camera (``device_path`` or ``device_url``). ``baud``
    throttles both directions to that line rate (10 bits a byte); ``pull()`` cuts the cable:
    bytes stop flowing; ``add_noise()`` flips a bit in what the host sends next."""

    def __init__(self, baud: int | None = None, *, name: str | None = None):
        self.baud = baud
        self.name = name or f"cable-{os.getpid()}-{next(_NUMBERS)}"
        if "/" in self.name or "." in self.name:
            raise ValueError(f"cable name {self.name!r}: no '/' or '.'")
        self._fds: list[int] = []
        self._links: list[Path] = []
        self.pulled = False
        self.closed = False
        self._noise = 0
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()  # wakes the relay at close, not after its poll
        ends = []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo, no line editing, before anyone opens it
            self._fds += [master, slave]
            ends.append((master, os.ttyname(slave)))
        (self._host_master, self.host_path), (self._device_master, self.device_path) = ends
        self._publish()
        self._threads = [threading.Thread(target=self._relay, args=(a, b), daemon=True, name="pty-cable")
                         for a, b in ((self._host_master, self._device_master),
                                      (self._device_master, self._host_master))]
        for t in self._threads:
            t.start()

    @property
    def host_url(self) -> str:
        return f"{SCHEME}://{self.name}/host"

    @property
    def device_url(self) -> str:
        return f"{SCHEME}://{self.name}/device"

    def _publish(self) -> None:
        folder = _private_folder()
        for end, path in (("host", self.host_path), ("device", self.device_path)):
            link = folder / f"{self.name}.{end}"
            tmp = folder / f".{self.name}.{end}.{os.getpid()}"
            tmp.unlink(missing_ok=True)
            os.symlink(path, tmp)
            os.replace(tmp, link)  # a name left by a crashed run is taken over
            self._links.append(link)

    def _relay(self, src: int, dst: int) -> None:
        next_free = time.monotonic()
        while not self._stop.is_set():
            ready, _, _ = select.select([src, self._wake_r], [], [], 0.5)
            if src not in ready:
                continue
            try:
                data = os.read(src, 4096)
            except OSError:
                return
            if self.pulled:
                continue
            if self._noise and src == self._host_master:
                self._noise -= 1  # line noise: one bit flipped in this burst
                mid = len(data) // 2
                data = data[:mid] + bytes([data[mid] ^ 0x10]) + data[mid + 1:]
            step = 64 if self.baud else len(data)
            for i in range(0, len(data), step):
                piece = data[i:i + step]
                if self.baud:
                    next_free = max(next_free, time.monotonic()) + len(piece) * 10 / self.baud
                    delay = next_free - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                try:
                    os.write(dst, piece)
                except OSError:
                    return

    def pull(self) -> None:
        self.pulled = True

    def add_noise(self, bursts: int = 1) -> None:
        """Flip a bit in each of the next ``bursts`` reads from the host (line noise)."""
        self._noise += bursts

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for link in self._links:
            link.unlink(missing_ok=True)
        self._stop.set()
        os.write(self._wake_w, b"x")
        for t in self._threads:
            t.join(timeout=2)
        for fd in self._fds + [self._wake_r, self._wake_w]:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "pulled" if self.pulled else "connected"
        return f"<PtyCable {self.name} host={self.host_path} device={self.device_path} baud={self.baud} {state}>"

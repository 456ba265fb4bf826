"""The GPS receiver: fixes (time, position, fix mode, uncertainty) for the daemon.

Three backends produce the same ``Fix`` records (drivers/nmea):

- ``nmea-serial``: NMEA 0183 on a serial port (pyserial); a reader thread frames and
  merges the sentences with drivers/nmea and hands fixes to the loop.
- ``gpsd``: a gpsd daemon (gpsd-py3), polled once a second; it reconnects with backoff
  when gpsd is absent or dies, and its status says so.
- ``simulated``: a receiver walking a route (by default a short walk in the centre of
  Autun) that writes NMEA sentences at 1 Hz on the loop's clock and feeds them through
  the same drivers/nmea path as a real receiver. A scenario moves it, makes it lose
  and regain its fix, or jump.

Callbacks always run on the asyncio loop's thread. ``Fix.received_mono`` is the loop's
clock when the fix reached it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from drivers import gpsd_report
from drivers.device import Device
from drivers.errors import DriverUnavailable
from drivers.nmea import KNOTS_TO_MPS, Fix, NmeaReader, PositionCheck, distance_m, sentence
from drivers.registry import pick_backend

__all__ = ["Fix", "Gps", "SimulatedGps", "SerialNmeaGps", "GpsdGps", "open_gps", "AUTUN_WALK", "BACKENDS"]

log = logging.getLogger("pieton.gps")

BACKENDS = {
    "simulated": "drivers.gps:SimulatedGps",
    "gpsd": "drivers.gps:GpsdGps",
    "nmea-serial": "drivers.gps:SerialNmeaGps",
}

# A short walk in the centre of Autun: Champ de Mars, town hall, rue aux Cordiers,
# towards the cathedral (about 700 m).
AUTUN_WALK: list[tuple[float, float]] = [
    (46.95150, 4.29790), (46.95085, 4.29880), (46.95010, 4.29930),
    (46.94920, 4.29950), (46.94820, 4.29905), (46.94730, 4.29870),
]

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 10.0


class Gps(Device, ABC):
    """A GPS receiver. ``start(loop, callback)`` begins delivering fixes to ``callback``
    on the loop's thread; ``close()`` is idempotent; ``status()`` is for the daemon."""

    backend = ""

    def __init__(self) -> None:
        self.closed = False
        self.last_fix: Fix | None = None
        self.fixes = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callback: Callable[[Fix], None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop, callback: Callable[[Fix], None]) -> None:
        if self.closed:
            raise DriverUnavailable(f"{self.backend} GPS is closed")
        self._loop, self._callback = loop, callback
        self._start()

    @abstractmethod
    def _start(self) -> None:
        """Begin producing fixes (self._loop and self._callback are set)."""

    def _deliver(self, fix: Fix) -> None:
        """On the loop's thread: stamp, keep and hand over one fix."""
        if self.closed or self._loop is None:
            return
        fix.received_mono = self._loop.time()
        self.last_fix = fix
        self.fixes += 1
        if self._callback is not None:
            self._callback(fix)

    def _deliver_threadsafe(self, fix: Fix) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._deliver, fix)
            except RuntimeError:     # the loop closed meanwhile
                pass

    def detach(self) -> None:
        """Stop handing fixes to the callback (the receiver keeps running)."""
        self._callback = None

    def close(self) -> None:
        self.closed = True

    def status(self) -> dict[str, Any]:
        fix = self.last_fix
        age = None
        if fix is not None and self._loop is not None:
            age = round(self._loop.time() - fix.received_mono, 3)
        return {"backend": self.backend, "state": self._state(), "fixes": self.fixes,
                "last_fix_mode": fix.mode if fix else None, "last_fix_age_s": age}

    def _state(self) -> str:
        if self.closed:
            return "closed"
        return "running" if self._loop is not None else "idle"

    def __repr__(self) -> str:
        fix = self.last_fix
        what = "no fix yet" if fix is None else f"mode {fix.mode}"
        return f"<{type(self).__name__} {self._state()} fixes={self.fixes} {what}>"


# ---- simulated ---------------------------------------------------------------------


class SimulatedGps(Gps):
    """A receiver on a route, at ``speed_mps``, writing GGA+GSA+RMC every second of the
    loop's clock. Its UTC time is ``wall_clock()`` (set it to the daemon's wall clock in
    a simulation; by default the host's time at start, then the loop's clock)."""

    backend = "simulated"

    def __init__(self, route: list[tuple[float, float]] | None = None, speed_mps: float = 1.4, *,
                 period_s: float = 1.0, wall_clock: Callable[[], float] | None = None,
                 sats: int = 8, hdop: float = 0.9, altitude_m: float = 300.0):
        super().__init__()
        self.reader = NmeaReader()
        self.period_s = float(period_s)
        self.wall_clock = wall_clock
        self.sats, self.hdop, self.altitude_m = sats, hdop, altitude_m
        self.has_fix = True
        self.sentences_written = 0
        self._route: list[tuple[float, float]] = []
        self._legs: list[float] = []
        self._speed = 0.0
        self._route_start = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._wall_offset: float | None = None
        self.set_route(route or AUTUN_WALK, speed_mps)

    # scenario controls
    def set_position(self, lat: float, lon: float) -> None:
        self.set_route([(lat, lon)], 0.0)

    def jump_to(self, lat: float, lon: float) -> None:
        """Appear elsewhere at once (a receiver glitch, or a scenario's jump outside the
        commune): the NMEA layer holds such a jump until it repeats."""
        self.set_position(lat, lon)

    def set_route(self, points: list[tuple[float, float]], speed_mps: float = 1.4) -> None:
        if not points:
            raise ValueError("a GPS route needs at least one point")
        for lat, lon in points:
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ValueError(f"route point ({lat}, {lon}) is not on the globe")
        if speed_mps < 0:
            raise ValueError(f"speed must not be negative, got {speed_mps}")
        self._route = [(float(a), float(b)) for a, b in points]
        self._legs = [distance_m(*a, *b) for a, b in zip(self._route, self._route[1:], strict=False)]
        self._speed = float(speed_mps)
        self._route_start = self._loop.time() if self._loop is not None else 0.0

    def lose_fix(self) -> None:
        self.has_fix = False

    def regain_fix(self) -> None:
        self.has_fix = True

    def inject(self, data: bytes) -> None:
        """Raw bytes on the simulated line (noise, a corrupt sentence), through the reader."""
        for fix in self.reader.feed(data):
            self._deliver(fix)

    # the receiver
    def _start(self) -> None:
        self._route_start = self._loop.time()
        self._handle = self._loop.call_later(self.period_s, self._tick)

    def position(self) -> tuple[float, float, float, float]:
        """(lat, lon, speed m/s, track degrees) at the loop's current time."""
        now = self._loop.time() if self._loop is not None else self._route_start
        walked = max(0.0, now - self._route_start) * self._speed
        for (a, b), leg in zip(zip(self._route, self._route[1:], strict=False), self._legs, strict=False):
            if walked <= leg and leg > 0:
                f = walked / leg
                return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, self._speed, _bearing(a, b))
            walked -= leg
        lat, lon = self._route[-1]
        return lat, lon, 0.0, 0.0

    def _now_utc(self) -> float:
        if self.wall_clock is not None:
            return self.wall_clock()
        if self._wall_offset is None:
            self._wall_offset = time.time() - self._loop.time()
        return self._wall_offset + self._loop.time()

    def _tick(self) -> None:
        if self.closed:
            return
        self._handle = self._loop.call_later(self.period_s, self._tick)
        lines = self.nmea_cycle()
        self.sentences_written += len(lines)
        self.inject(("\r\n".join(lines) + "\r\n").encode("ascii"))

    def nmea_cycle(self) -> list[str]:
        """The sentences of one second: GGA, GSA, RMC (the order of most receivers)."""
        when = datetime.fromtimestamp(self._now_utc(), UTC)
        hms = when.strftime("%H%M%S") + f".{when.microsecond // 10000:02d}"
        dmy = when.strftime("%d%m%y")
        if not self.has_fix:
            return [sentence(f"GPGGA,{hms},,,,,0,00,99.9,,M,,M,,"),
                    sentence("GPGSA,A,1,,,,,,,,,,,,,99.9,99.9,99.9"),
                    sentence(f"GPRMC,{hms},V,,,,,,,{dmy},,,N")]
        lat, lon, speed, track = self.position()
        la, ns, lo, ew = _nmea_coord(lat, 2), "N" if lat >= 0 else "S", _nmea_coord(lon, 3), "E" if lon >= 0 else "W"
        sats = ",".join(f"{n:02d}" for n in range(1, self.sats + 1)) + "," * (12 - self.sats)
        return [
            sentence(f"GPGGA,{hms},{la},{ns},{lo},{ew},1,{self.sats:02d},{self.hdop:.1f},"
                     f"{self.altitude_m:.1f},M,48.0,M,,"),
            sentence(f"GPGSA,A,3,{sats},{self.hdop * 1.7:.1f},{self.hdop:.1f},{self.hdop * 1.4:.1f}"),
            sentence(f"GPRMC,{hms},A,{la},{ns},{lo},{ew},{speed / KNOTS_TO_MPS:.2f},{track:.1f},{dmy},,,A"),
        ]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        super().close()

    def status(self) -> dict[str, Any]:
        out = super().status()
        out.update(receiver_fix=self.has_fix, nmea=self.reader.stats.as_dict())
        return out


def _nmea_coord(value: float, degree_digits: int) -> str:
    """abs(value) as NMEA ddmm.mmmm (latitude, 2 digits) or dddmm.mmmm (longitude, 3)."""
    value = abs(value)
    deg = int(value)
    return f"{deg:0{degree_digits}d}{(value - deg) * 60:07.4f}"


def _bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dl = math.radians(b[1] - a[1])
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(x, y)) + 360.0) % 360.0


# ---- real receivers: a thread each ----------------------------------------------------


class _ThreadedGps(Gps):
    """A reader thread that reconnects with backoff; ``state`` and ``last_error`` say
    what it is doing, for the daemon's status."""

    def __init__(self) -> None:
        super().__init__()
        self.state = "idle"
        self.last_error: str | None = None
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self.state = "connecting"
        self._thread = threading.Thread(target=self._run, name=f"gps-{self.backend}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._stop.is_set():
            try:
                self._session()         # returns or raises when the source goes away
                backoff = BACKOFF_START_S
            except Exception as exc:    # any failure of the source: report, wait, retry
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("%s GPS: %s; retrying in %.1f s", self.backend, self.last_error, backoff)
            if self._stop.is_set():
                break
            self.state = "reconnecting"
            self.reconnects += 1
            self._stop.wait(backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2)
        self.state = "closed"

    @abstractmethod
    def _session(self) -> None:
        """Connect, then deliver fixes until the source fails or ``_stop`` is set."""

    def _state(self) -> str:
        return "closed" if self.closed else self.state

    def close(self) -> None:
        if self.closed:
            return
        self._stop.set()
        super().close()
        self._interrupt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def _interrupt(self) -> None:
        """Unblock the thread's read, if it is blocked."""

    def status(self) -> dict[str, Any]:
        out = super().status()
        out.update(reconnects=self.reconnects, last_error=self.last_error)
        return out


class SerialNmeaGps(_ThreadedGps):
    """An NMEA 0183 receiver on a serial port, read with pyserial. ``port`` may be any
    pyserial URL (a device, ``loop://``, ``socket://host:port``)."""

    backend = "nmea-serial"

    def __init__(self, port: str = "/dev/serial0", baud: int = 9600, *, read_timeout_s: float = 0.2):
        super().__init__()
        import serial  # pyserial, only when this backend is chosen

        self._serial_mod = serial
        self.port, self.baud = port, int(baud)
        self.read_timeout_s = read_timeout_s
        self.reader = NmeaReader()
        self.bytes_read = 0
        self._serial = None
        self._lock = threading.Lock()
        self._serial = self._open()     # fail now if the port does not exist

    def _open(self):
        try:
            return self._serial_mod.serial_for_url(self.port, baudrate=self.baud, timeout=self.read_timeout_s)
        except (self._serial_mod.SerialException, OSError, ValueError) as exc:
            raise DriverUnavailable(f"nmea-serial GPS: cannot open {self.port}: {exc}") from None

    def _session(self) -> None:
        with self._lock:
            port = self._serial
            if port is None:
                port = self._serial = self._open()
        self.state = "running"
        try:
            while not self._stop.is_set():
                data = port.read(max(1, min(port.in_waiting, 4096)))
                if not data:
                    continue
                self.bytes_read += len(data)
                for fix in self.reader.feed(data):
                    self._deliver_threadsafe(fix)
        finally:
            with self._lock:
                if self._serial is port:
                    self._serial = None
            try:
                port.close()
            except Exception:   # closing a port that already failed
                pass

    def _interrupt(self) -> None:
        with self._lock:
            port = self._serial
        if port is not None:
            try:
                port.cancel_read()
            except Exception:   # not every pyserial backend can cancel
                pass

    def status(self) -> dict[str, Any]:
        out = super().status()
        out.update(port=self.port, baud=self.baud, bytes_read=self.bytes_read, nmea=self.reader.stats.as_dict())
        return out


_GPSD_CLIENT_LOCK = threading.Lock()   # gpsd-py3 keeps its connection in module globals


class GpsdGps(_ThreadedGps):
    """Fixes from a gpsd daemon through gpsd-py3, polled every ``poll_interval_s``.
    gpsd-py3 holds one connection per process, so only one GpsdGps may run at a time."""

    backend = "gpsd"

    def __init__(self, host: str = "127.0.0.1", port: int = 2947, *, poll_interval_s: float = 1.0,
                 socket_timeout_s: float = 5.0):
        super().__init__()
        import gpsd  # gpsd-py3, only when this backend is chosen

        self._gpsd = gpsd
        self.host, self.port = host, int(port)
        self.poll_interval_s = poll_interval_s
        self.socket_timeout_s = socket_timeout_s
        self.check = PositionCheck()
        self.rejected: dict[str, int] = {}
        self.polls = 0
        self._last_report: tuple = ()

    def _session(self) -> None:
        if not _GPSD_CLIENT_LOCK.acquire(blocking=False):
            raise DriverUnavailable("another gpsd client is running in this process (gpsd-py3 allows one)")
        gpsd = self._gpsd
        try:
            gpsd.connect(host=self.host, port=self.port)
            if gpsd.gpsd_socket is not None:
                gpsd.gpsd_socket.settimeout(self.socket_timeout_s)
            self.state = "running"
            while not self._stop.is_set():
                fix = self._poll()
                self.polls += 1
                report = (fix.time, fix.mode, fix.lat, fix.lon)
                if report != self._last_report or fix.time is None:
                    # gpsd answers a poll with its last report, however old: pass on only
                    # new ones, so a receiver that went silent ages into "position unknown"
                    self._last_report = report
                    self._deliver_threadsafe(fix)
                self._stop.wait(self.poll_interval_s)
        finally:
            try:
                if gpsd.gpsd_socket is not None:
                    gpsd.gpsd_socket.close()
            except OSError:
                pass
            gpsd.gpsd_socket = gpsd.gpsd_stream = None
            _GPSD_CLIENT_LOCK.release()

    def _reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def _poll(self) -> Fix:
        """Ask gpsd for its last report (gpsd-py3's get_current, with a bounded line and
        every value checked)."""
        stream = self._gpsd.gpsd_stream
        stream.write("?POLL;\n")
        stream.flush()
        return self._fix_from_answer(stream.readline(gpsd_report.MAX_ANSWER_CHARS))

    def _fix_from_answer(self, raw: str) -> Fix:
        """One line of gpsd's as a fix; ConnectionError when it is not gpsd's answer."""
        return self._fix_from(gpsd_report.poll_answer(raw, self._reject))

    def _fix_from(self, r) -> Fix:
        """gpsd's report as our Fix (drivers/gpsd_report.py)."""
        return gpsd_report.fix_from(r, self.check, self._reject)

    def _interrupt(self) -> None:
        sock = self._gpsd.gpsd_socket
        if sock is not None:
            try:
                import socket
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def status(self) -> dict[str, Any]:
        out = super().status()
        out.update(host=self.host, port=self.port, polls=self.polls, rejected=dict(self.rejected))
        return out


def open_gps(backend: str, config: Any = None, **kw: Any) -> Gps:
    """The GPS named in the configuration's [drivers] section, set up from its [gps]."""
    cls = pick_backend("gps", backend, BACKENDS)
    if config is not None:
        g = config.gps
        if backend == "gpsd":
            kw.setdefault("host", g.gpsd_host)
            kw.setdefault("port", g.gpsd_port)
        elif backend == "nmea-serial":
            kw.setdefault("port", g.serial_port)
            kw.setdefault("baud", g.serial_baud)
    return cls(**kw)

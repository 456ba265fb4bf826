"""systemd's notify protocol, without libsystemd.

The daemon tells systemd it is ready, what it is doing (``STATUS=``) and that it is alive
(``WATCHDOG=1``) by sending datagrams to the socket named in ``$NOTIFY_SOCKET``. Outside
systemd the variable is unset and every call is a no-op, so the daemon runs the same way
in a terminal, in tests and under the service manager.

The watchdog pings only while the loop is healthy: a hung or badly lagging loop, or a
health callback that reports a stuck part, stops the pings, and systemd restarts the
service after ``WatchdogSec=``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends notify datagrams to one socket; ``address`` None means "not under systemd"."""

    def __init__(self, address: str | None):
        self.address = address or None
        self.sent = 0
        self._warned = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields in one datagram; True when systemd got it."""
        if self.address is None:
            return False
        address = self.address
        if address.startswith("@"):  # abstract namespace socket
            address = "\0" + address[1:]
        elif not address.startswith("/"):
            self._warn(f"NOTIFY_SOCKET {self.address!r} is neither a path nor an abstract socket")
            return False
        payload = "\n".join(fields).encode()
        try:
            # never blocking: a notify socket nobody reads (its queue full) must not hang the loop
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as sock:
                sock.sendto(payload, address)
        except OSError as exc:
            self._warn(f"cannot notify systemd at {self.address}: {exc.strerror or exc}")
            return False
        self.sent += 1
        self._warned = False
        return True

    def _warn(self, message: str) -> None:
        if not self._warned:  # once per outage, not at every ping
            log.warning(message)
            self._warned = True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([_status_field(status)] if status is not None else []))

    def status(self, text: str) -> bool:
        return self.send(_status_field(text))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *([_status_field(status)] if status is not None else []))

    def __repr__(self) -> str:
        return f"<Notifier {self.address or 'disabled'} sent={self.sent}>"


def _status_field(text: str) -> str:
    # One line: a newline would start a new field.
    return "STATUS=" + " ".join(str(text).split())


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout systemd expects pings within (seconds), or None when the
    watchdog is off or meant for another process."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not an integer", usec)
        return None
    return value / 1e6 if value > 0 else None


def ready(status: str | None = None) -> bool:
    return Notifier.from_env().ready(status)


def status(text: str) -> bool:
    return Notifier.from_env().status(text)


def watchdog() -> bool:
    return Notifier.from_env().watchdog()


def stopping(status: str | None = None) -> bool:
    return Notifier.from_env().stopping(status)


class Watchdog:
    """Pings systemd's watchdog at half its interval, only while the loop is healthy.

    Healthy means: the loop ran this task's probes with less than ``max_lag`` seconds of
    delay since the last ping (measured on ``clock``, by default the loop's own monotonic
    clock, so a virtual-clock loop checks the schedule without waiting), and ``healthy()``
    returns True. A loop blocked in a callback runs no probe at all, so no ping is sent.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, *,
                 healthy: Callable[[], bool] | None = None, interval: float | None = None,
                 notifier: Notifier | None = None, max_lag: float | None = None,
                 clock: Callable[[], float] | None = None):
        self.loop = loop
        self.interval = watchdog_interval() if interval is None else interval
        self.notifier = notifier if notifier is not None else Notifier.from_env()
        self.healthy = healthy
        self.period = self.interval / 2 if self.interval else None
        # Lag beyond a quarter of the interval means the loop is too slow to trust.
        self.max_lag = max_lag if max_lag is not None else (self.interval / 4 if self.interval else None)
        self.clock = clock
        self.pings = 0
        self.missed = 0
        self.last_problem: str | None = None
        self._task: asyncio.Task | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.interval) and self.notifier.enabled

    def start(self) -> asyncio.Task | None:
        """Start pinging on the loop; no-op when systemd asked for no watchdog."""
        if not self.enabled or self._task is not None:
            return self._task
        loop = self.loop or asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="systemd-watchdog")
        return self._task

    def stop(self) -> None:
        """Stop pinging (the task ends at the loop's next turn); idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()

    async def _run(self) -> None:
        clock = self.clock or asyncio.get_running_loop().time
        probe = min(0.25, self.period / 4)
        worst_lag = 0.0
        self._ping(0.0)
        last_ping = clock()
        while True:
            before = clock()
            await asyncio.sleep(probe)
            worst_lag = max(worst_lag, clock() - before - probe)
            if clock() - last_ping >= self.period:
                self._ping(worst_lag)
                last_ping, worst_lag = clock(), 0.0

    def _ping(self, lag: float) -> None:
        problem = None
        if lag > self.max_lag:
            problem = f"event loop lagged {lag:.2f} s (bound {self.max_lag:.2f} s)"
        elif self.healthy is not None:
            try:
                if not self.healthy():
                    problem = "health check failed"
            except Exception as exc:  # a broken check is an unhealthy daemon, not a crash
                problem = f"health check raised {type(exc).__name__}: {exc}"
        if problem is None:
            if self.notifier.watchdog():
                self.pings += 1
            self.last_problem = None
            return
        self.missed += 1
        if problem != self.last_problem:
            log.error("withholding watchdog ping: %s", problem)
        self.last_problem = problem

    def __repr__(self) -> str:
        state = "running" if self._task is not None else ("idle" if self.enabled else "disabled")
        return f"<Watchdog {state} interval={self.interval} pings={self.pings} missed={self.missed}>"

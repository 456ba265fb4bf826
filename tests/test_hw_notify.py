import asyncio
import logging
import os
import socket
import threading
import time

import pytest

from recorder import notify
from recorder.clock import VirtualClockLoop
from recorder.notify import Notifier, Watchdog, watchdog_interval


@pytest.fixture
def systemd_socket(tmp_path):
    """A real AF_UNIX datagram socket standing in for systemd's notify socket."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    yield str(path), sock
    sock.close()


def drain(sock):
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def test_notify_messages_reach_the_socket_named_in_the_environment(systemd_socket, monkeypatch):
    path, sock = systemd_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert notify.ready("armed, 0 recordings")
    assert notify.status("recording\nCAM-1_20260101T000000Z_000001")
    assert notify.watchdog()
    assert notify.stopping()
    assert drain(sock) == ["READY=1\nSTATUS=armed, 0 recordings",
                           "STATUS=recording CAM-1_20260101T000000Z_000001", "WATCHDOG=1", "STOPPING=1"]


def test_abstract_notify_socket():
    name = f"pieton-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        notifier = Notifier("@" + name)
        assert notifier.ready() and notifier.sent == 1
        assert sock.recv(100) == b"READY=1"


def test_without_systemd_every_call_is_a_quiet_no_op(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify.ready() is False and not Notifier.from_env().enabled
    gone = Notifier(str(tmp_path / "absent.sock"))
    with caplog.at_level(logging.WARNING, logger="recorder.notify"):
        assert gone.watchdog() is False and gone.watchdog() is False
    assert len(caplog.records) == 1 and "absent.sock" in caplog.records[0].getMessage()


def test_watchdog_interval_from_environment(caplog):
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "10000000"}) == 10.0
    assert watchdog_interval({"WATCHDOG_USEC": "2500000", "WATCHDOG_PID": str(os.getpid())}) == 2.5
    assert watchdog_interval({"WATCHDOG_USEC": "2500000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert "soon" in caplog.text


class VirtualWatch:
    """A watchdog on a virtual-clock loop and a real notify socket: ``run_to(t)`` lets the
    loop run until its clock reads ``t`` (no real waiting), then returns the messages
    systemd received meanwhile."""

    def __init__(self, sock, path, *, interval, healthy=lambda: True):
        self.sock = sock
        self.loop = VirtualClockLoop(start=0.0)
        self.dog = Watchdog(self.loop, interval=interval, notifier=Notifier(path), healthy=healthy)

    def run_to(self, t: float) -> list[str]:
        async def until():
            await asyncio.sleep(t - self.loop.time())

        self.loop.run_until_complete(until())
        return drain(self.sock)

    def close(self) -> None:
        self.dog.stop()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()


def test_watchdog_ping_schedule_on_a_virtual_clock(systemd_socket):
    """WatchdogSec=10: a ping at start, then one every 5 s (half the interval), exactly."""
    path, sock = systemd_socket
    watch = VirtualWatch(sock, path, interval=10.0)
    dog = watch.dog
    assert dog.period == 5.0 and dog.max_lag == 2.5
    try:
        dog.start()
        assert watch.run_to(0.1) == ["WATCHDOG=1"]
        assert watch.run_to(4.9) == []
        assert watch.run_to(5.1) == ["WATCHDOG=1"]
        assert watch.run_to(59.9) == ["WATCHDOG=1"] * 10        # at 10, 15, ... 55
        assert dog.pings == 12 and dog.missed == 0
        assert watch.loop.time() < 60.0
    finally:
        watch.close()


def test_watchdog_withholds_pings_while_unhealthy_or_after_a_hang_on_a_virtual_clock(systemd_socket, caplog):
    path, sock = systemd_socket
    healthy = {"ok": True}
    watch = VirtualWatch(sock, path, interval=10.0, healthy=lambda: healthy["ok"])
    dog = watch.dog
    try:
        dog.start()
        assert len(watch.run_to(29.9)) == 6                     # 0, 5, ... 25
        healthy["ok"] = False
        assert watch.run_to(59.9) == []                          # due at 30, 35, ... 55: withheld
        assert dog.missed == 6 and dog.last_problem == "health check failed"
        healthy["ok"] = True
        assert watch.run_to(60.1) == ["WATCHDOG=1"] and dog.last_problem is None

        # A callback blocks the loop for three times WatchdogSec: the virtual clock jumps
        # as the real one would. The next probe sees the lag and withholds the ping.
        watch.loop.call_soon(watch.loop.advance, 30.0)
        assert watch.run_to(90.3) == []
        assert dog.missed == 7 and dog.last_problem.startswith("event loop lagged 29.")
        assert watch.run_to(95.1) == ["WATCHDOG=1"]              # recovered: the schedule goes on
        assert "withholding watchdog ping: event loop lagged" in caplog.text
    finally:
        watch.close()


def test_watchdog_treats_a_raising_health_check_as_unhealthy(systemd_socket, caplog):
    path, sock = systemd_socket

    def broken():
        raise OSError("spool unreadable")

    watch = VirtualWatch(sock, path, interval=2.0, healthy=broken)
    try:
        watch.dog.start()
        assert watch.run_to(3.5) == [] and watch.dog.missed == 4   # at 0, 1, 2, 3
    finally:
        watch.close()
    assert "spool unreadable" in caplog.text


def test_a_hung_loop_gets_no_ping_in_real_time(systemd_socket):
    """The one real-time check: a callback blocks the loop for three times WatchdogSec
    (0.6 s for 0.2 s). Systemd hears nothing during the first third of the hang (every
    ping due then is at least 0.4 s overdue before the loop can send anything), and the
    first ping due after it is withheld for the lag, which is three times the bound."""
    path, sock = systemd_socket
    interval, hang = 0.2, 0.6
    dog = Watchdog(interval=interval, notifier=Notifier(path), max_lag=hang / 3)
    hung = threading.Event()
    heard: dict = {}

    def block():
        heard["hung at"] = time.monotonic()
        hung.set()
        time.sleep(hang)

    def listen():
        hung.wait(30)
        drain(sock)                       # all sent before the hang began
        end = heard["hung at"] + hang / 3
        messages = []
        while time.monotonic() < end:
            messages += drain(sock)
            time.sleep(0.01)
        heard["during hang"] = messages

    async def scenario():
        dog.start()
        while dog.pings == 0:             # pinging: the loop is healthy so far
            await asyncio.sleep(0.01)
        listener = threading.Thread(target=listen)
        listener.start()
        asyncio.get_running_loop().call_soon(block)
        missed = dog.missed
        for _ in range(1000):             # up to 10 s for the withheld ping
            await asyncio.sleep(0.01)
            if dog.missed > missed:
                break
        problem = dog.last_problem
        dog.stop()
        listener.join(30)
        return problem

    problem = asyncio.run(scenario())
    assert heard["during hang"] == []
    assert problem is not None and problem.startswith("event loop lagged")


def test_watchdog_disabled_without_interval_or_socket(systemd_socket, monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    path, _ = systemd_socket
    assert not Watchdog(notifier=Notifier(path)).enabled
    assert not Watchdog(interval=5.0, notifier=Notifier(None)).enabled

    async def scenario():
        return Watchdog(interval=5.0, notifier=Notifier(None)).start()

    assert asyncio.run(scenario()) is None


def test_watchdog_as_the_daemon_starts_it_from_the_service_environment(systemd_socket, monkeypatch):
    path, sock = systemd_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")            # WatchdogSec=20
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    loop = VirtualClockLoop(start=0.0)
    try:
        dog = Watchdog(loop, healthy=lambda: True)
        assert dog.interval == 20.0 and dog.start() is dog.start()
        loop.run_until_complete(asyncio.sleep(25.0))            # pings at 0, 10, 20
        dog.stop()
        dog.stop()
        loop.run_until_complete(asyncio.sleep(30.0))            # stopped: no more
    finally:
        loop.close()
    assert drain(sock) == ["WATCHDOG=1"] * 3 and dog.pings == 3

import asyncio
import logging
import os
import socket
import time

import pytest

from recorder import notify
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


def test_watchdog_pings_only_while_the_loop_is_healthy(systemd_socket):
    path, sock = systemd_socket
    healthy = {"ok": True}
    dog = Watchdog(interval=0.4, notifier=Notifier(path), healthy=lambda: healthy["ok"], max_lag=0.3)
    assert dog.enabled and dog.period == 0.2

    async def scenario():
        dog.start()
        await asyncio.sleep(1.0)
        running = len(drain(sock))
        # A callback blocks the loop longer than the whole watchdog interval.
        asyncio.get_running_loop().call_soon(time.sleep, 0.8)
        await asyncio.sleep(0.9)
        while_hung = drain(sock)
        missed_after_hang, problem = dog.missed, dog.last_problem
        await asyncio.sleep(0.6)
        recovered = len(drain(sock))
        healthy["ok"] = False
        await asyncio.sleep(0.7)
        while_unhealthy = drain(sock)
        healthy["ok"] = True
        await asyncio.sleep(0.5)
        back = len(drain(sock))
        dog.stop()
        return running, while_hung, missed_after_hang, problem, recovered, while_unhealthy, back

    running, while_hung, missed_after_hang, problem, recovered, while_unhealthy, back = asyncio.run(scenario())
    assert running >= 4                 # about every 0.2 s
    assert while_hung == []             # blocked loop: no ping, and the lag withholds the next one
    assert missed_after_hang >= 1 and problem.startswith("event loop lagged")
    assert recovered >= 1
    assert while_unhealthy == []        # health callback False: no ping
    assert back >= 1
    assert "pings=" in repr(dog) and dog.missed >= 3


def test_watchdog_treats_a_raising_health_check_as_unhealthy(systemd_socket, caplog):
    path, sock = systemd_socket

    def broken():
        raise OSError("spool unreadable")

    dog = Watchdog(interval=0.2, notifier=Notifier(path), healthy=broken)

    async def scenario():
        dog.start()
        await asyncio.sleep(0.35)
        dog.stop()

    asyncio.run(scenario())
    assert drain(sock) == [] and dog.missed >= 2
    assert "spool unreadable" in caplog.text


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
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    loop = asyncio.new_event_loop()
    try:
        dog = Watchdog(loop, healthy=lambda: True)
        assert dog.interval == 0.2 and dog.start() is dog.start()
        loop.run_until_complete(asyncio.sleep(0.35))
        dog.stop()
        dog.stop()
        loop.run_until_complete(asyncio.sleep(0.2))
    finally:
        loop.close()
    assert drain(sock) == ["WATCHDOG=1"] * dog.pings and dog.pings >= 3

"""The daemon as the device runs it: `pieton run` with a control socket and SIGTERM,
callback crashes, the watchdog, and refusal to start without the chief's recipient."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from recorder.config import load_config
from recorder.daemon import Daemon, Options
from recorder.errors import ConfigError
from tests.conftest import SMALL_VIDEO, device_config, read_jsonl, wait_for, write_config
from tests.daemon_support import daemon_in_thread, stop_daemon


def pieton(*args, **kw):
    return subprocess.run([sys.executable, "-m", "tools.cli", *args], capture_output=True, text=True,
                          timeout=60, **kw)


def test_run_serves_status_and_seals_on_sigterm(tmp_path, chief):
    _, recipient = chief
    config = write_config(tmp_path / "cfg", SMALL_VIDEO)
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "recorder", "--config", str(config),
                             "--state-dir", str(state), "--recipient", recipient],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: (state / "control.sock").exists()), proc.stderr
        status = None

        def got_status():
            nonlocal status
            result = pieton("ctl", "status", "--state-dir", str(state), "--json")
            if result.returncode == 0:
                status = json.loads(result.stdout)
                return True
            return False

        assert wait_for(got_status)
        assert status["state"] == "armed"
        assert status["camera_id"] == "CAM-SIM-001"
        assert status["config"]["signed"] is False
        readable = pieton("ctl", "status", "--state-dir", str(state))
        assert readable.returncode == 0 and "ARMED" in readable.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    journal = read_jsonl(state / "spool" / "journal.jsonl")
    assert journal[0]["event"] == "boot"
    assert journal[-1]["event"] == "shutdown"


def test_run_refuses_without_a_recipient_and_names_why(tmp_path):
    config = write_config(tmp_path / "cfg", SMALL_VIDEO)
    result = subprocess.run([sys.executable, "-m", "recorder", "--config", str(config),
                             "--state-dir", str(tmp_path / "state")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "[keys] recipients is empty" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state" / "spool").exists(), "nothing started"


def test_plain_toml_with_real_drivers_needs_the_development_flag(tmp_path, chief):
    _, recipient = chief
    config = load_config(write_config(tmp_path / "cfg", device_config(["7e" * 32], [recipient],
                                                                    drivers={"camera": "opencv"})))
    loop = asyncio.new_event_loop()
    try:
        daemon = Daemon(config, Options(tmp_path / "state", [recipient], simulated=False,
                                        control_socket=False, notify=False), loop=loop)
        with pytest.raises(ConfigError, match="--unsigned-config"):
            loop.run_until_complete(daemon.start())
    finally:
        loop.close()


def _daemon_in_thread(tmp_path, recipient, notify=False):
    config = load_config(write_config(tmp_path / "cfg", SMALL_VIDEO))
    return daemon_in_thread(config, tmp_path / "state", [recipient], notify=notify)


def test_a_crashing_driver_callback_does_not_stop_the_loop(tmp_path, chief):
    daemon, loop, thread = _daemon_in_thread(tmp_path, chief[1])
    try:
        def broken_callback():
            raise ZeroDivisionError("driver bug")
        loop.call_soon_threadsafe(broken_callback)
        assert wait_for(lambda: "callback" in daemon.faults, 5)
        assert "driver bug" in daemon.faults["callback"]
        # The loop still serves the button: a press starts a recording.
        daemon.hardware.button.press()
        assert wait_for(lambda: daemon.machine.state.value == "recording", 5)
        daemon.hardware.button.release()
    finally:
        stop_daemon(daemon, loop, thread)
    assert daemon.machine.history[0].stop_reason == "test over", "SIGTERM-like stop sealed it"


def test_a_hung_loop_stops_the_watchdog_pings(tmp_path, chief, monkeypatch):
    """The daemon's watchdog as systemd starts it (WatchdogSec=0.2): a callback blocks the
    loop for three times that; nothing is heard during the first third of the hang, the
    first ping due after it is withheld for the lag, and the pings resume. Only the
    absence of pings is timed, with margins of three times; the schedule itself is checked
    on a virtual clock in test_hw_notify."""
    sock_path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(sock_path)
    listener.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", sock_path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    hang = 0.6
    daemon, loop, thread = _daemon_in_thread(tmp_path, chief[1], notify=True)

    def pings():
        heard = []
        while True:
            try:
                heard += [m for m in listener.recv(4096).decode().split("\n") if m == "WATCHDOG=1"]
            except BlockingIOError:
                return heard

    hung = threading.Event()
    hung_at = []

    def block():
        hung_at.append(time.monotonic())
        hung.set()
        time.sleep(hang)

    try:
        assert wait_for(lambda: pings(), 10), "a healthy loop pings"
        dog = daemon._watchdog
        missed = dog.missed
        loop.call_soon_threadsafe(block)       # the loop hangs
        assert hung.wait(10)
        pings()                                # sent before the hang
        during = []
        while time.monotonic() < hung_at[0] + hang / 3:
            during += pings()
            time.sleep(0.01)
        assert during == [], "no ping while the loop is hung"
        assert wait_for(lambda: dog.missed > missed, 10)
        assert dog.last_problem is None or dog.last_problem.startswith("event loop lagged")
        assert wait_for(lambda: pings(), 10), "pings resume when the loop recovers"
    finally:
        stop_daemon(daemon, loop, thread)
        listener.close()


def test_missing_hardware_leaves_the_daemon_running_and_starts_are_not_refused(tmp_path, chief, monkeypatch):
    """No camera, no sound card, no gpsd on this machine: the daemon runs with what works,
    the faults show in the status, and a press still starts a recording that says what
    was missing. A device configuration: the lights, haptic motor and button are the real
    gpiozero devices, on gpiozero's mock pins (a bench without a Pi)."""
    import gpiozero
    from gpiozero.pins.mock import MockFactory

    from recorder.clock import VirtualClockLoop

    pins = MockFactory()
    monkeypatch.setattr(gpiozero.Device, "pin_factory", pins)
    config = load_config(write_config(tmp_path / "cfg", device_config(
        ["7e" * 32], [chief[1]], **SMALL_VIDEO,
        drivers={"camera": "opencv", "speaker": "sounddevice", "microphone": "sounddevice", "gps": "gpsd"},
        gps={"gpsd_port": 1},  # nothing listens there
    )))
    from drivers.signer import FileSigner
    FileSigner.create(tmp_path / "state" / "keys" / "device-signing.key")   # pieton provision
    loop = VirtualClockLoop(start=100.0)
    asyncio.set_event_loop(loop)
    daemon = Daemon(config, Options(tmp_path / "state", [chief[1]], simulated=False, unsigned_config=True,
                                    control_socket=False, notify=False), loop=loop)
    try:
        loop.run_until_complete(daemon.start())
        assert {"camera", "speaker"} <= set(daemon.faults), daemon.faults
        status = daemon.status()
        assert status["state"] == "armed"
        assert "camera" in status["faults"] and "speaker" in status["faults"]
        timeline = daemon.machine.feedback.timeline
        assert any(c.why.startswith("error: hardware fault") for c in timeline), "the agent sees the fault"
        assert not {"leds", "button", "haptic"} & set(daemon.faults), daemon.faults
        button = pins.pin(config.gpio.button)
        button.drive_low()
        loop.run_until_complete(asyncio.sleep(0.2))
        button.drive_high()
        loop.run_until_complete(asyncio.sleep(1.0))
        rec = daemon.machine.current
        assert rec is not None, "a missing camera, speaker or GPS never refuses a start"
        assert pins.pin(config.gpio.red_led).state, "the red light is on"
        assert rec.notice["given"] is False and "speaker" in rec.notice["failed"]
        assert rec.session.writer.static["hardware_faults"].keys() >= {"camera", "speaker"}
        assert rec.session.writer.static["flags"]["position"] == "unknown"
        loop.run_until_complete(daemon.shutdown("test over"))
    finally:
        loop.close()
        asyncio.set_event_loop(None)

"""A notice at fault when the daemon starts (CSI L241-2): the daemon runs, its status says
the notice is at fault, every start is refused, and the serial link is up so that a new
bundle can be flashed. `pieton config check` still refuses such a configuration."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import wave

import numpy as np
import pytest

from recorder.clock import VirtualClockLoop
from recorder.config import DEFAULT_CONFIG, load_config
from recorder.config_update import load_device_config
from recorder.daemon import Daemon, Options
from recorder.errors import ConfigError
from recorder.state import NOTICE_FAULT
from tests.conftest import SMALL_VIDEO, write_config


def damage(folder, how):
    notice = folder / "notice-fr.wav"
    if how == "missing":
        notice.unlink()
    else:  # silent: a WAV that reads, plays, and tells no one anything
        with wave.open(str(notice), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(22050)
            w.writeframes(np.zeros(22050 * 3, dtype="<i2").tobytes())


@pytest.fixture
def serial_pty():
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


@pytest.mark.parametrize("how", ["missing", "silent"])
def test_a_notice_at_fault_at_start_refuses_starts_and_keeps_the_link(tmp_path, chief, serial_pty, how):
    path = write_config(tmp_path / "cfg", {**SMALL_VIDEO, "link": {"serial_port": serial_pty}})
    damage(tmp_path / "cfg", how)
    with pytest.raises(ConfigError, match=r"\[notice\] audio"):
        load_config(path)                                   # config check still refuses it
    config, version = load_device_config(path, tmp_path / "state")
    assert version == 0 and config.notice_fault and "notice-fr.wav" in config.notice_fault[0]
    loop = VirtualClockLoop(start=100.0)
    asyncio.set_event_loop(loop)
    daemon = Daemon(config, Options(tmp_path / "state", [chief[1]], simulated=True, control_socket=False,
                                    notify=False), loop=loop)
    try:
        loop.run_until_complete(daemon.start())
        status = daemon.status()
        assert status["state"] == "armed" and "notice-fr.wav" in status["faults"]["notice"]
        assert daemon.listener is not None, "the serial link is up: a new bundle can be flashed"
        daemon.hardware.button.press()
        loop.run_until_complete(asyncio.sleep(0.2))
        daemon.hardware.button.release()
        loop.run_until_complete(asyncio.sleep(2.0))
        assert daemon.machine.current is None, "no recording starts without the notice"
        assert [why for _, why in daemon.machine.refusals] == [NOTICE_FAULT]
        assert any(c.why.startswith("error: start refused: hors service : avis sonore")
                   for c in daemon.machine.feedback.timeline)
        loop.run_until_complete(daemon.shutdown("test over"))
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def test_config_check_still_refuses_a_missing_notice(tmp_path):
    path = write_config(tmp_path / "cfg", SMALL_VIDEO)
    damage(tmp_path / "cfg", "missing")
    result = subprocess.run([sys.executable, "-m", "tools.cli", "config", "check", str(path)], capture_output=True,
                            text=True, timeout=120, cwd=DEFAULT_CONFIG.parent.parent)
    assert result.returncode == 2 and "[notice] audio" in result.stderr and "Traceback" not in result.stderr

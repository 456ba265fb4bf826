"""A notice at fault when the daemon starts (CSI L241-2): the daemon runs, its status says
the notice is at fault, every start is refused, and the serial link is up so that a new
bundle can be flashed. `pieton config check` still refuses such a configuration."""

from __future__ import annotations

import subprocess
import sys
import wave

import numpy as np
import pytest

from recorder.config import DEFAULT_CONFIG, load_config
from recorder.config_update import load_device_config
from recorder.errors import ConfigError
from tests.conftest import SMALL_VIDEO, write_config
from tests.notice_rig import assert_a_press_is_refused, faulty_notice_daemon


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


@pytest.mark.parametrize("how", ["missing", "silent"])
def test_a_notice_at_fault_at_start_refuses_starts_and_keeps_the_link(tmp_path, chief, serial_pty, how):
    path = write_config(tmp_path / "cfg", {**SMALL_VIDEO, "link": {"serial_port": serial_pty}})
    damage(tmp_path / "cfg", how)
    with pytest.raises(ConfigError, match=r"\[notice\] audio"):
        load_config(path)                                   # config check still refuses it
    config, version = load_device_config(path, tmp_path / "state")
    assert version == 0 and config.notice_fault and "notice-fr.wav" in config.notice_fault[0]
    with faulty_notice_daemon(config, tmp_path / "state", chief[1]) as daemon:
        status = daemon.status()
        assert status["state"] == "armed" and "notice-fr.wav" in status["faults"]["notice"]
        assert daemon.listener is not None, "the serial link is up: a new bundle can be flashed"
        assert_a_press_is_refused(daemon)


def test_config_check_still_refuses_a_missing_notice(tmp_path):
    path = write_config(tmp_path / "cfg", SMALL_VIDEO)
    damage(tmp_path / "cfg", "missing")
    result = subprocess.run([sys.executable, "-m", "tools.cli", "config", "check", str(path)], capture_output=True,
                            text=True, timeout=120, cwd=DEFAULT_CONFIG.parent.parent)
    assert result.returncode == 2 and "[notice] audio" in result.stderr and "Traceback" not in result.stderr

"""A green light or vibration motor that cannot be driven is a fault shown in status, never
an exception: the error pattern that reported it would fail again and report itself without end
(found by the self-test's fault injection: the daemon looped on its own errors)."""

from __future__ import annotations

import asyncio

import pytest

from recorder.clock import VirtualClockLoop
from recorder.config import load_config
from recorder.daemon import Daemon, Options
from tests.conftest import SMALL_VIDEO, write_config


@pytest.mark.parametrize("part", ["haptic", "green"])
def test_a_motor_or_green_light_that_fails_is_shown_and_recording_goes_on(tmp_path, chief, part):
    config = load_config(write_config(tmp_path / "cfg", SMALL_VIDEO))
    loop = VirtualClockLoop(start=100.0)
    asyncio.set_event_loop(loop)
    daemon = Daemon(config, Options(tmp_path / "state", [chief[1]], simulated=True, control_socket=False,
                                    notify=False), loop=loop)
    try:
        loop.run_until_complete(daemon.start())
        if part == "haptic":
            daemon.hardware.haptic.close()          # its driver gone: every set raises
        else:
            daemon.hardware.leds.green.close()
            daemon.hardware.leds.green = None
        daemon.hardware.button.press()
        loop.run_until_complete(asyncio.sleep(0.2))
        daemon.hardware.button.release()
        loop.run_until_complete(asyncio.sleep(8.0))
        assert daemon.machine.current is not None, "the recording starts: the red light works"
        status = daemon.status()
        assert "cannot be driven" in status["faults"][part]
        assert "callback" not in status["faults"], status["faults"]   # no exception reached the loop
        loop.run_until_complete(daemon.shutdown("test over"))
    finally:
        loop.close()
        asyncio.set_event_loop(None)

"""A notice that cannot be read at the daemon's start is a fault that refuses starts: the
daemon, its status and its serial link stay up, and no recording starts without it."""

from __future__ import annotations

import asyncio

import pytest

from recorder.clock import VirtualClockLoop
from recorder.config import load_config
from recorder.daemon import Daemon, Options
from recorder.state import NOTICE_FAULT
from tests.conftest import SMALL_VIDEO, write_config


@pytest.mark.parametrize("damage", ["missing", "junk", "frame rate 0"])
def test_an_unreadable_notice_at_start_refuses_starts_without_a_crash(tmp_path, chief, damage):
    config = load_config(write_config(tmp_path / "cfg", SMALL_VIDEO))   # checked while it was whole
    notice = tmp_path / "cfg" / "notice-fr.wav"
    if damage == "missing":
        notice.unlink()
    elif damage == "junk":
        notice.write_bytes(b"RIFF\x10\0\0\0WAVEjunk")
    else:
        data = bytearray(notice.read_bytes())
        data[24:28] = b"\0\0\0\0"     # the fmt chunk's sample rate
        notice.write_bytes(bytes(data))
    loop = VirtualClockLoop(start=100.0)
    asyncio.set_event_loop(loop)
    daemon = Daemon(config, Options(tmp_path / "state", [chief[1]], simulated=True, control_socket=False,
                                    notify=False), loop=loop)
    try:
        loop.run_until_complete(daemon.start())
        assert "notice" in daemon.faults and "notice-fr.wav" in daemon.faults["notice"]
        assert daemon.status()["state"] == "armed"
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

"""A notice that cannot be read at the daemon's start is a fault that refuses starts: the
daemon, its status and its serial link stay up, and no recording starts without it."""

from __future__ import annotations

import pytest

from recorder.config import load_config
from tests.conftest import SMALL_VIDEO, write_config
from tests.notice_rig import assert_a_press_is_refused, faulty_notice_daemon


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
    with faulty_notice_daemon(config, tmp_path / "state", chief[1]) as daemon:
        assert "notice" in daemon.faults and "notice-fr.wav" in daemon.faults["notice"]
        assert daemon.status()["state"] == "armed"
        assert_a_press_is_refused(daemon)

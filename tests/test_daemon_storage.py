"""One storage authority: the daemon's start check, the low-space warning and the spool's
own refusal all use ``[storage]`` of the configuration, and a scenario's filling disk
reaches every one of them."""

from __future__ import annotations

import asyncio

import pytest

from recorder.clock import VirtualClockLoop
from recorder.config import load_config
from recorder.daemon import Daemon, Options
from recorder.errors import StorageFull
from tests.conftest import SMALL_VIDEO, read_jsonl, write_config


@pytest.fixture
def started(tmp_path, chief):
    """Start a simulated daemon with the given [storage] section; shut it down after."""
    made = []

    def start(storage: dict) -> Daemon:
        config = load_config(write_config(tmp_path / "cfg", {**SMALL_VIDEO, "storage": storage}))
        loop = VirtualClockLoop(start=100.0)
        asyncio.set_event_loop(loop)
        daemon = Daemon(config, Options(tmp_path / "state", [chief[1]], simulated=True,
                                        control_socket=False, notify=False), loop=loop)
        loop.run_until_complete(daemon.start())
        made.append((daemon, loop))
        return daemon

    yield start
    for daemon, loop in made:
        loop.run_until_complete(daemon.shutdown("test over"))
        loop.close()
    asyncio.set_event_loop(None)


def test_the_spool_refuses_a_start_below_the_configured_min_free_mb(started):
    daemon = started({"min_free_mb": 200, "low_space_mb": 500})
    daemon.free_mb_override = 150      # the disk-filling scenario
    with pytest.raises(StorageFull, match="storage full"):
        daemon.spool.open_recording(daemon.wall.now(), "agent", {})
    refused = [line for line in read_jsonl(daemon.spool.dir / "journal.jsonl")
               if line["event"] == "recording refused"]
    assert refused and refused[-1]["data"]["free_bytes"] == 150_000_000
    # The daemon's own start check and warning say the same, from the same numbers.
    assert "storage full" in daemon.sessions.check_start().why
    assert daemon.status()["storage_free_mb"] == 150.0
    daemon._check_storage()
    assert "storage_low" in daemon.warnings


def test_the_spool_starts_above_the_configured_min_free_mb_not_its_own_default(started):
    """With min_free_mb = 10, 40 MB free is enough: the spool no longer applies a 64 MiB
    default of its own that the configuration cannot change."""
    daemon = started({"min_free_mb": 10, "low_space_mb": 20})
    daemon.free_mb_override = 40
    assert daemon.sessions.check_start().allowed
    recording = daemon.spool.open_recording(daemon.wall.now(), "agent", {})
    recording.close("test")
    daemon._check_storage()
    assert "storage_low" not in daemon.warnings

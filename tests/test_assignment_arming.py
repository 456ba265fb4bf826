"""At arming the agent feels and sees that the camera has no assignment (its recordings
would carry no agent number), and that recordings wait for the dock; the status says both.
An assignment left in the spool's inbox (the dock) is taken at start."""

from __future__ import annotations

import asyncio
from itertools import combinations

import pytest

from drivers.signer import FileSigner
from recorder.assignment import sign_assignment, sign_assignment_end
from recorder.bundle import public_hex
from recorder.clock import SimulatedWallClock, VirtualClockLoop
from recorder.config import load_config
from recorder.control import format_status
from recorder.daemon import Daemon, Options
from recorder.evidence.spool import Spool
from recorder.feedback import GREEN_SIGNALS
from tests.conftest import SMALL_VIDEO, read_jsonl, write_config
from tests.tech_device import technician
from tests.test_evidence_support import mpegts

NOW = 1_800_000_000.0


def _run(tmp_path, chief, tech_hex, prepare=None):
    config = load_config(write_config(tmp_path / "cfg", {**SMALL_VIDEO, "keys": {"technicians": [tech_hex]}}))
    state = tmp_path / "state"
    signer = FileSigner.create(state / "keys" / "device-signing.key")
    if prepare is not None:
        prepare(state, signer)
    loop = VirtualClockLoop(start=100.0)
    asyncio.set_event_loop(loop)
    daemon = Daemon(config, Options(state, [chief[1]], simulated=True, control_socket=False, notify=False),
                    loop=loop, wall_clock=SimulatedWallClock(loop, NOW))
    loop.run_until_complete(daemon.start())
    loop.run_until_complete(asyncio.sleep(8.0))
    timeline = list(daemon.machine.feedback.timeline)
    status = daemon.status()
    loop.run_until_complete(daemon.shutdown("test over"))
    loop.close()
    asyncio.set_event_loop(None)
    return timeline, status


def _played(timeline, pattern):
    return sum(1 for c in timeline if c.device == "haptic" and c.on and c.why == pattern)


def test_arming_without_an_assignment_is_felt_seen_and_in_status(tmp_path, chief):
    _, tech = technician(tmp_path)
    timeline, status = _run(tmp_path, chief, public_hex(tech))
    assert _played(timeline, "not_assigned") == 4
    assert sum(1 for c in timeline if c.device == "green" and c.why == "armed without an assignment") == 8
    assert status["assignment"]["state"].startswith("NOT ASSIGNED")
    assert "NOT ASSIGNED: recordings carry no agent number" in format_status(status)


def test_an_assignment_in_the_dock_inbox_is_taken_at_start(tmp_path, chief):
    _, tech = technician(tmp_path)

    def leave_assignment(state, _):
        inbox = state / "spool" / "inbox"
        inbox.mkdir(parents=True)
        (inbox / "shift.assignment").write_bytes(sign_assignment(tech, "PM-0421", "CAM-SIM-001", 7, NOW + 3600,
                                                                 issued=NOW))
    timeline, status = _run(tmp_path, chief, public_hex(tech), leave_assignment)
    assert _played(timeline, "not_assigned") == 0
    assert status["assignment"]["state"] == "assigned"
    assert not (tmp_path / "state" / "spool" / "inbox" / "shift.assignment").exists()


def test_recordings_not_offloaded_after_the_warning_age_are_signalled_at_arming(tmp_path, chief):
    _, tech = technician(tmp_path)

    def old_recording(state, signer):
        with Spool(state / "spool", signer, [chief[1]], "CAM-SIM-001", "d" * 64, False,
                   wall_clock=lambda: NOW - 8 * 86400, min_free_bytes=0) as spool:
            rec = spool.open_recording(NOW - 8 * 86400, "agent", {"clock_source": "gps"})
            seg = rec.open_segment()
            seg.write(mpegts(1.0, 0))
            seg.seal({"duration_s": 1.0})
            rec.close("stop gesture")
    timeline, status = _run(tmp_path, chief, public_hex(tech), old_recording)
    assert _played(timeline, "offload_due") == 2
    assert status["retention"]["offload_due"] == 1 and status["retention"]["erased_since_start"] == 0
    assert "offload_due: 1" in format_status(status)


def _recording_made(days_ago, clock_source="gps", chief=None):
    def make(state, signer):
        with Spool(state / "spool", signer, [chief[1]], "CAM-SIM-001", "d" * 64, False,
                   wall_clock=lambda: NOW - days_ago * 86400, min_free_bytes=0) as spool:
            rec = spool.open_recording(NOW - days_ago * 86400, "agent", {"clock_source": clock_source})
            seg = rec.open_segment()
            seg.write(mpegts(1.0, 0))
            seg.seal({"duration_s": 1.0})
            rec.close("stop gesture")
    return make


def test_the_daemon_erases_past_retention_once_its_clock_is_synchronised(tmp_path, chief):
    _, tech = technician(tmp_path)
    timeline, status = _run(tmp_path, chief, public_hex(tech), _recording_made(40, chief=chief))
    assert status["clock"]["synchronised"] is True
    assert status["retention"]["erased_since_start"] == 1
    spool = tmp_path / "state" / "spool"
    assert [p.name for p in spool.iterdir() if p.is_dir()] == []
    erased = [line for line in read_jsonl(spool / "journal.jsonl") if line["event"] == "recording erased"]
    assert len(erased) == 1 and erased[0]["data"]["reason"] == "retention"


@pytest.mark.parametrize(("a", "b"), list(combinations(GREEN_SIGNALS, 2)))
def test_green_light_signals_differ_in_count_or_rhythm(a, b):
    (n1, h1), (n2, h2) = GREEN_SIGNALS[a], GREEN_SIGNALS[b]
    assert n1 != n2 or max(h1, h2) / min(h1, h2) >= 2.0


def test_an_end_in_the_inbox_while_armed_is_shown_within_a_tick(tmp_path, chief):
    tech_path, tech = technician(tmp_path)
    config = load_config(write_config(tmp_path / "cfg", {**SMALL_VIDEO,
                                                         "keys": {"technicians": [public_hex(tech)]}}))
    state = tmp_path / "state"
    inbox = state / "spool" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "a.assignment").write_bytes(sign_assignment(tech, "PM-0421", "CAM-SIM-001", 1, NOW + 3600, issued=NOW))
    loop = VirtualClockLoop(start=100.0)
    asyncio.set_event_loop(loop)
    daemon = Daemon(config, Options(state, [chief[1]], simulated=True, control_socket=False, notify=False),
                    loop=loop, wall_clock=SimulatedWallClock(loop, NOW))
    try:
        loop.run_until_complete(daemon.start())
        loop.run_until_complete(asyncio.sleep(1.0))
        timeline = daemon.machine.feedback.timeline
        assert daemon.assignment.agent_number() == "PM-0421" and _played(timeline, "not_assigned") == 0
        (inbox / "b.assignment").write_bytes(sign_assignment_end(tech, "CAM-SIM-001", 2, issued=NOW))
        loop.run_until_complete(asyncio.sleep(6.0))
        assert daemon.assignment.agent_number() is None
        assert _played(timeline, "not_assigned") == 4
        assert any(c.why == "assignment ended" for c in timeline if c.device == "green")
        loop.run_until_complete(daemon.shutdown("test over"))
    finally:
        loop.close()
        asyncio.set_event_loop(None)

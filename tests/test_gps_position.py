"""Position on the daemon's loop: the simulated receiver, fix tracking, boundary
crossings, the clock source; and `pieton gps parse`."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from drivers.gps import AUTUN_WALK, SimulatedGps, open_gps
from drivers.nmea import Fix
from recorder.clock import SimulatedWallClock, VirtualClockLoop
from recorder.config import load_config, parse_config
from recorder.position import Position
from recorder.position.clock import ClockWatch, kernel_clock_status, parse_chronyc_tracking
from recorder.position.tracker import Tracker
from tools.benchmarks.gps import receiver_log

START = 1_790_000_000.0     # 2026-09-21


def _config(policy="refuse"):
    base = load_config()
    text = open(base.source, encoding="utf-8").read().replace('policy = "refuse"', f'policy = "{policy}"')
    return parse_config(text.encode(), base.source, base.base_dir)


@pytest.fixture
def sim():
    loop = VirtualClockLoop()
    wall = SimulatedWallClock(loop, START)
    yield loop, wall
    loop.close()


def _position(loop, wall, gps=None, policy="refuse"):
    events = []
    gps = gps or SimulatedGps()
    position = Position(_config(policy), loop, gps, wall_clock=wall, on_event=events.append)
    position.start()
    return position, gps, events


def _run(loop, seconds):
    loop.run_until_complete(asyncio.sleep(seconds))


def test_simulated_walk_in_autun_is_inside_with_track_and_synchronised_clock(sim):
    loop, wall = sim
    position, gps, events = _position(loop, wall)
    assert position.allows_start() == (True, {"position": "unknown", "clock": "unsynchronised"})
    _run(loop, 20)
    allowed, flags = position.allows_start()
    assert allowed and flags == {"position": "inside", "commune": "Autun"}
    names = [e["event"] for e in events]
    assert names[0] == "gps fix acquired" and names.count("track") >= 15
    track = [e for e in events if e["event"] == "track"]
    assert track[-1]["lat"] < track[0]["lat"]          # walking south
    assert track[0]["gps_time"].startswith("2026-09-21")
    clock = position.clock_status()
    assert clock["source"] == "gps" and clock["synchronised"] and abs(clock["offset_s"]) < 1.0
    status = position.status()
    assert status["gps"]["mode"] == 3 and status["gps"]["age_s"] <= 1.0 and status["gps"]["sats"] == 8
    assert status["gps"]["backend"] == "simulated" and status["gps"]["state"] == "running"
    assert "'lat'" not in str(status) and "distance" not in str(status)
    assert status["boundary"]["status"] == "inside" and status["boundary"]["policy"] == "refuse"
    assert position.overlay_text().startswith("46.9")
    meta = position.start_metadata()
    assert meta["boundary"]["status"] == "inside" and meta["position"]["mode"] == 3
    position.close()


def test_fix_lost_and_regained_are_events_and_position_unknown_meanwhile(sim):
    loop, wall = sim
    position, gps, events = _position(loop, wall)
    shown = []
    position.on_position = shown.append
    _run(loop, 5)
    gps.lose_fix()
    _run(loop, 3)
    assert position.allows_start() == (True, {"position": "unknown"})
    assert position.overlay_text() == "position inconnue"
    gps.regain_fix()
    _run(loop, 3)
    names = [e["event"] for e in events]
    assert "gps fix lost" in names and "gps fix regained" in names
    assert shown[0][0] > 46.9 and None in shown and shown[-1] is not None   # the overlay followed
    assert names.index("gps fix lost") < names.index("gps fix regained")
    assert position.allows_start()[1]["position"] == "inside"


def test_a_silent_receiver_is_a_lost_fix_after_max_age(sim):
    loop, wall = sim
    position, gps, events = _position(loop, wall)
    _run(loop, 4)
    gps.close()                        # unplugged: no more sentences at all
    _run(loop, 8)
    lost = [e for e in events if e["event"] == "gps fix lost"]
    assert lost and "no fix for more than 5 s" in lost[0]["why"]
    assert position.status()["gps"]["mode"] == 1 and position.status()["gps"]["age_s"] > 5


def test_jump_outside_the_commune_is_refused_then_crossing_back_recorded(sim):
    loop, wall = sim
    position, gps, events = _position(loop, wall)
    _run(loop, 5)
    gps.jump_to(46.8600, 4.2800)       # 8 km south of the boundary
    _run(loop, 6)
    allowed, flags = position.allows_start()
    assert not allowed and flags == {"position": "outside", "commune": "Autun"}
    gps.set_route(AUTUN_WALK, 1.4)     # back in town (again a jump for the receiver)
    _run(loop, 6)
    crossings = [e for e in events if e["event"] == "boundary crossed"]
    assert [(c["from"], c["to"]) for c in crossings] == [("inside", "outside"), ("outside", "inside")]
    assert position.allows_start()[0]


def test_policy_flag_allows_outside_and_marks_it(sim):
    loop, wall = sim
    gps = SimulatedGps()
    gps.set_position(46.8600, 4.2800)
    position, _, _ = _position(loop, wall, gps, policy="flag")
    _run(loop, 4)
    allowed, flags = position.allows_start()
    assert allowed and flags["position"] == "outside" and flags["outside_commune"] is True


def test_noise_injected_on_the_simulated_line_is_counted(sim):
    loop, wall = sim
    position, gps, events = _position(loop, wall)
    _run(loop, 3)
    gps.inject(b"\x00\xff\x13garbage\r\n$GPGGA,123519,4807.038,N*00\r\n$GPRMC,12\r\n")
    _run(loop, 2)
    rejected = gps.status()["nmea"]["rejected"]
    assert rejected["noise"] == 1 and rejected["checksum"] == 1 and rejected["truncated"] == 1
    assert position.status()["gps"]["rejected_sentences"] == 3
    assert position.allows_start()[1]["position"] == "inside"


def _fix(t, lat=46.95, mode=3, received=0.0):
    when = datetime(2006, 9, 16, 19, 41, tzinfo=UTC) + timedelta(seconds=t)
    return Fix(when, lat if mode >= 2 else None, 4.3 if mode >= 2 else None, 300.0, mode, 8, 1.0, 19.0,
               1.0, 90.0, received)


def test_tracker_keeps_backwards_receiver_time_as_received_and_flags_it():
    tracker = Tracker(track_interval_s=1.0, max_fix_age_s=5.0)
    events = []
    for i, t in enumerate([24, 25, 11, 12]):          # humminbird: 19:41:25 -> 19:41:11
        events += tracker.on_fix(_fix(t, received=float(i)))
        events += tracker.tick(float(i) + 0.5)
    back = [e for e in events if e["event"] == "gps time went back"]
    assert len(back) == 1 and back[0]["back_s"] == 14.0
    track = [e for e in events if e["event"] == "track"]
    assert [e["gps_time"][-9:] for e in track] == ["19:41:24Z", "19:41:25Z", "19:41:11Z", "19:41:12Z"]
    assert track[2]["flags"] == ["gps time went back"] and "flags" not in track[3]


def test_tracker_track_interval_and_age():
    tracker = Tracker(track_interval_s=5.0, max_fix_age_s=5.0)
    tracker.on_fix(_fix(0, received=0.0))
    assert tracker.age(3.0) == 3.0 and tracker.current(3.0) is not None
    assert tracker.current(6.0) is None
    assert tracker.tick(6.0)[0]["event"] == "gps fix lost"
    with pytest.raises(ValueError):
        Tracker(track_interval_s=0)


def test_clock_source_from_chrony_and_kernel():
    gps = parse_chronyc_tracking("47505300,GPS,1,1790000000.1,0.000012,0.00001,0.00002,-1.2,0.0,0.1,"
                                 "0.0,0.001,16.0,Normal\n")
    assert (gps.source, gps.synchronised, gps.via, gps.reference) == ("gps", True, "chrony", "GPS")
    ntp = parse_chronyc_tracking("C0A80001,ntp.example.org,2,1790000000.1,-0.0003,0,0,0,0,0,0.01,0.01,64,Normal")
    assert ntp.source == "ntp" and ntp.sync_offset_s == -0.0003
    none = parse_chronyc_tracking("00000000,,0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0,1.0,0.0,Not synchronised")
    assert not none.synchronised and none.source in ("rtc", "unsynchronised")
    with pytest.raises(ValueError):
        parse_chronyc_tracking("garbage")
    kernel = kernel_clock_status()          # the real adjtimex, read-only
    assert kernel.via == "kernel" and kernel.source in ("ntp", "rtc", "unsynchronised")


def test_clock_watch_combines_probe_and_measured_gps_offset():
    watch = ClockWatch(lambda: parse_chronyc_tracking(
        "47505300,GPS,1,0,0.000012,0,0,0,0,0,0,0,16,Normal"))
    assert watch.status().source == "unsynchronised"         # not probed yet
    watch.refresh()
    for i in range(5):
        watch.note_fix(1000.0 + i, 1000.3 + i)
    status = watch.status()
    assert status.source == "gps" and status.offset_s == 0.3 and status.synchronised
    sim_watch = ClockWatch(None)
    sim_watch.note_fix(1000.0, 1007.0)                        # 7 s off: not synchronised
    assert sim_watch.status().source == "unsynchronised"


def test_open_gps_uses_the_configuration():
    gps = open_gps("simulated", load_config())
    assert gps.backend == "simulated" and "SimulatedGps" in repr(gps)
    with pytest.raises(ValueError, match="valid backends"):
        open_gps("galileo", load_config())
    with pytest.raises(ValueError):
        SimulatedGps().set_route([(95.0, 4.0)])


def test_gps_parse_command(capsys):
    from tools.cli import main
    triton = receiver_log("triton400.log")
    assert main(["gps", "parse", str(triton)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "sentences read 29" in out[-1] and "truncated 1" in out[-1]
    assert main(["gps", "parse", "--json", str(triton)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    fixes, counts = lines[:-1], lines[-1]["sentences"]
    assert fixes and set(fixes[0]) == {"time", "lat", "lon", "alt", "mode", "sats", "hdop"}
    assert counts["rejected"] == {"truncated": 1}
    assert main(["gps", "parse", "/no/such/log"]) == 2


def test_gps_parse_refuses_a_file_that_is_no_capture(tmp_path, capsys):
    """A technician who checks the wrong file (random bytes, an empty file, a named pipe
    nobody writes) is told so with exit 2, not shown '0 fixes' and a success."""
    from tools.cli import main
    garbage = tmp_path / "garbage.nmea"
    garbage.write_bytes(bytes(range(256)) * 12 + b"$GPGGA,garbled*ZZ\r\n")
    empty = tmp_path / "empty.nmea"
    empty.write_bytes(b"")
    fifo = tmp_path / "fifo.nmea"
    os.mkfifo(fifo)
    assert main(["gps", "parse", str(garbage)]) == 2
    assert f"{garbage} holds no NMEA sentence" in capsys.readouterr().err
    assert main(["gps", "parse", str(empty)]) == 2
    assert f"{empty} is empty" in capsys.readouterr().err
    assert main(["gps", "parse", str(fifo)]) == 2          # returns: open() does not wait for a writer
    assert "is empty" in capsys.readouterr().err
    # a receiver still searching (sentences, no fix) is a capture: exit 0
    searching = tmp_path / "searching.nmea"
    searching.write_bytes(b"$GPGSA,A,1,,,,,,,,,,,,,,,*1E\r\n")
    assert main(["gps", "parse", str(searching)]) == 0


def test_a_receiver_that_cannot_start_leaves_position_unknown(sim):
    loop, wall = sim
    gps = SimulatedGps()
    gps.close()
    position, _, events = _position(loop, wall, gps)
    _run(loop, 3)
    assert position.allows_start() == (True, {"position": "unknown", "clock": "unsynchronised"})
    assert "closed" in position.status()["gps"]["error"]
    assert position.start_metadata()["position"] == "unknown"

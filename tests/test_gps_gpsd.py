"""Integration: a real gpsd, run by gpsfake on 127.0.0.1, read through our gpsd backend
(gpsd-py3): a shared real receiver log, a route of ours in Autun, and gpsd absent at
first (the backend retries with backoff and says so in its status)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from drivers.gps import BACKOFF_START_S, GpsdGps, SimulatedGps
from recorder.clock import VirtualClockLoop
from recorder.config import load_config
from recorder.position.geofence import Geofence
from tests.gps_support import run_gps
from tools.benchmarks.gps import receiver_log

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("gpsfake") is None or shutil.which("gpsd") is None,
                                 reason="gpsfake/gpsd not installed (apt install gpsd gpsd-clients)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GpsFake:
    """gpsfake feeding ``log`` once to its own gpsd on ``port``, a sentence every ``cycle_s``,
    from ``release_once_connected`` on.

    Two causes of this file's flake under load are met here. gpsfake feeds on its own clock
    from its start, and gpsd flushes what waits on the device when a first client makes it
    open it: a backend connecting late (gpsd slow to start, retries after 0.5, 1, 2 s) found
    the log gone. So gpsd opens the device at once (-n), and gpsfake steps through the log
    (-i, a newline on its stdin a sentence) only once the backend is connected. And gpsfake
    takes its gpsd for ready as soon as $TMPDIR/gpsfake-<pid>.sock exists, a file a killed
    gpsd leaves behind: in a shared /tmp, a gpsfake reusing an old pid added its device
    before its gpsd listened, and that gpsd never had one ("No gps devices found" to the
    end). So each gpsfake has a folder of its own."""

    def __init__(self, log, port: int, cycle_s: float = 0.05):
        self.port = port
        self.steps = log.read_bytes().count(b"\n") + 1   # a sentence a line at most
        self.released = False
        self.folder = tempfile.mkdtemp(prefix="pieton-gpsfake-")
        self.proc = subprocess.Popen(["gpsfake", "-1", "-q", "-n", "-i", "-P", str(port), "-c", str(cycle_s),
                                      str(log)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     env=dict(os.environ, TMPDIR=self.folder))

    def wait_listening(self, timeout: float = 60.0) -> None:
        """Until its gpsd accepts connections (however slow the machine is to start it)."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"gpsfake exited with {self.proc.returncode} before gpsd listened"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, f"gpsfake's gpsd did not listen on {self.port} in {timeout} s"
                time.sleep(0.05)

    def release_once_connected(self, gps: GpsdGps) -> None:
        """Let the log go as soon as ``gps`` is connected to this gpsd."""
        if not self.released and gps.status()["state"] == "running":
            self.proc.stdin.write(b"\n" * self.steps)
            self.proc.stdin.flush()
            self.released = True

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        try:
            self.proc.stdin.close()
        except OSError:     # gpsfake gone with steps unread
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


def _started(log, port: int, **kw) -> GpsFake:
    """gpsfake holding ``log``, once its gpsd listens."""
    fake = GpsFake(log, port, **kw)
    try:
        fake.wait_listening()
    except BaseException:
        fake.stop()
        raise
    return fake


def _through_gpsd(gps: GpsdGps, log, until, cycle_s: float = 0.05) -> list:
    """The fixes of ``gps`` reading ``log`` through gpsfake's gpsd on its port, until ``until(fixes)``."""
    fake = _started(log, gps.port, cycle_s=cycle_s)
    try:
        return run_gps(gps, until, timeout=30, during=lambda now: fake.release_once_connected(gps))
    finally:
        fake.stop()


def _tpv_positions(chk):
    out = set()
    for line in chk.read_text().splitlines():
        if line.startswith('{"class":"TPV"') and '"lat"' in line:
            tpv = json.loads(line)
            out.add((round(tpv["lat"], 6), round(tpv["lon"], 6)))
    return out


def test_shared_log_through_real_gpsd():
    log = receiver_log("haicom-305N.log")          # moving, from no fix to 2D to 3D
    expected = _tpv_positions(log.with_name(log.name + ".chk"))
    gps = GpsdGps("127.0.0.1", _free_port(), poll_interval_s=0.05)
    fixes = _through_gpsd(gps, log, lambda f: len({(x.lat, x.lon) for x in f if x.has_position}) >= 5)
    status = gps.status()
    good = [f for f in fixes if f.has_position]
    print(f"\ngpsd via gpsfake: {len(fixes)} polls, {len(good)} with a position, "
          f"{len({(f.lat, f.lon) for f in good})} distinct positions")
    assert len({(f.lat, f.lon) for f in good}) >= 5
    for fix in good:   # every position gpsd gave is one gpsd's regression output has too
        assert (round(fix.lat, 6), round(fix.lon, 6)) in expected
        assert fix.mode in (2, 3)
    assert status["backend"] == "gpsd" and status["polls"] >= len(fixes)


def _simulated_nmea(seconds, jump_to=None, after_jump_s=0.0) -> str:
    """What our simulated receiver sends while walking the default Autun route for
    ``seconds``, then (if ``jump_to``) for ``after_jump_s`` more at that position."""
    loop = VirtualClockLoop()
    sim = SimulatedGps(wall_clock=lambda: 1_790_000_000.0 + loop.time())
    lines = []
    sim.inject = lambda data: lines.append(data.decode())   # capture instead of reading
    sim.start(loop, lambda fix: None)
    loop.run_until_complete(asyncio.sleep(seconds))
    if jump_to is not None:
        sim.jump_to(*jump_to)
        loop.run_until_complete(asyncio.sleep(after_jump_s))
    sim.close()
    loop.close()
    return "".join(lines)


def _autun_route_log(path, seconds=40):
    """NMEA of our simulated receiver walking the default Autun route, as a capture."""
    path.write_text("# Simulated receiver walking in the centre of Autun\n# Date: 2026-09-21\n"
                    + _simulated_nmea(seconds))
    return path


def test_autun_route_through_real_gpsd(tmp_path):
    log = _autun_route_log(tmp_path / "autun-walk.log")
    fence = Geofence.from_config(load_config())
    gps = GpsdGps("127.0.0.1", _free_port(), poll_interval_s=0.05)
    fixes = _through_gpsd(gps, log, lambda f: len({(x.lat, x.lon) for x in f if x.has_position}) >= 6)
    good = [f for f in fixes if f.has_position]
    assert len({(f.lat, f.lon) for f in good}) >= 6
    for fix in good:
        assert fence.check(fix).status == "inside"
        assert 46.945 < fix.lat < 46.953 and 4.296 < fix.lon < 4.301
        assert fix.time is None or fix.time.year == 2026     # no time until the first RMC's date
        assert fix.eph_m is None or fix.eph_m > 0
    assert [f for f in good if f.time is not None]
    # the walk moves south
    assert good[-1].lat < good[0].lat


@pytest.fixture(scope="module")
def autun_walk(tmp_path_factory):
    """A minute of the simulated Autun walk, for the tests that only need a moving receiver."""
    return _autun_route_log(tmp_path_factory.mktemp("gps") / "autun-walk.log", seconds=60)


def test_gpsd_absent_then_started_reconnects_with_backoff(autun_walk, caplog):
    port = _free_port()
    gps = GpsdGps("127.0.0.1", port, poll_interval_s=0.05)
    state = {"fake": None, "seen_reconnecting": False, "error": None}

    def during(now):
        st = gps.status()
        if st["state"] == "reconnecting" and st["last_error"]:
            state["seen_reconnecting"] = True
            state["error"] = st["last_error"]
            if state["fake"] is None and st["reconnects"] >= 2:
                state["fake"] = GpsFake(autun_walk, port)
        if state["fake"] is not None:
            state["fake"].release_once_connected(gps)

    try:
        # the retries wait 0.5, 1, 2, 4, 8, 10 s: room for a gpsd slow to start on a loaded machine
        fixes = run_gps(gps, lambda f: any(x.has_position for x in f), timeout=60, during=during)
    finally:
        if state["fake"] is not None:
            state["fake"].stop()
    assert state["seen_reconnecting"], "status showed the retries"
    assert "Connection" in state["error"] or "refused" in state["error"].lower()
    assert any(f.has_position for f in fixes)
    assert gps.reconnects >= 2
    # each retry waited twice as long as the one before, as the backend said
    waits = [float(m.group(1)) for r in caplog.records if (m := re.search(r"retrying in ([\d.]+) s", r.getMessage()))]
    assert waits[:2] == [BACKOFF_START_S, 2 * BACKOFF_START_S], waits


def test_gpsd_dying_mid_stream_is_reported_and_retried(autun_walk):
    port = _free_port()
    fake = _started(autun_walk, port)
    gps = GpsdGps("127.0.0.1", port, poll_interval_s=0.05)
    seen = {"killed": False, "after": None}

    def during(now):
        fake.release_once_connected(gps)
        if not seen["killed"] and gps.fixes >= 3 and gps.last_fix is not None and gps.last_fix.has_position:
            fake.stop()
            seen["killed"] = True
        elif seen["killed"] and gps.status()["state"] == "reconnecting":
            seen["after"] = gps.status()

    try:
        run_gps(gps, lambda f: seen["after"] is not None, timeout=30, during=during)
    finally:
        fake.stop()
    assert seen["killed"] and seen["after"] is not None
    assert seen["after"]["last_error"]


def test_a_jump_reported_by_gpsd_is_rejected_and_counted(tmp_path):
    log = tmp_path / "jump.log"
    # ~500 km north in one second
    log.write_text("# Date: 2026-09-21\n" + _simulated_nmea(30, jump_to=(51.50, 4.30), after_jump_s=8))
    gps = GpsdGps("127.0.0.1", _free_port(), poll_interval_s=0.03)
    fixes = _through_gpsd(gps, log, lambda f: any(x.has_position and x.lat > 51 for x in f)
                          or gps.rejected.get("jump", 0) >= 3, cycle_s=0.03)
    assert gps.rejected.get("jump", 0) >= 1
    good = [f for f in fixes if f.has_position]
    first_far = next((i for i, f in enumerate(fixes) if f.has_position and f.lat > 51), None)
    # the far position is never taken at once: rejections come first
    assert first_far is None or any(not f.has_position for f in fixes[:first_far])
    assert good and good[0].lat < 47


def test_a_gpsd_report_without_lat_lon_is_no_position():
    """gpsd sends partial TPVs; gpsd-py3 fills the missing lat/lon with 0.0. That is no
    position at all, never a fix at 0°N 0°E."""
    import gpsd
    report = gpsd.GpsResponse.from_json({"active": 1, "sky": [{"satellites": []}],
                                         "tpv": [{"class": "TPV", "mode": 2, "time": "2026-11-27T10:00:00.000Z"}]})
    gps = GpsdGps("127.0.0.1", 1)
    fix = gps._fix_from(report)
    assert fix.mode == 1 and fix.lat is None and fix.lon is None and not fix.has_position
    assert gps.rejected == {"no position": 1}

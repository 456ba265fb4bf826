"""The nmea-serial backend over a pty pair (socat), with real pyserial at both ends:
a real receiver's log, then garbage and binary noise on the line."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time

import pytest
import serial

from drivers.errors import DriverUnavailable
from drivers.gps import SerialNmeaGps, open_gps
from drivers.nmea import sentence
from tests.gps_support import run_gps
from tools.benchmarks.gps import receiver_log

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")


def _plug(receiver, camera):
    """socat joining two ptys linked at ``receiver`` and ``camera``, once both links exist
    (or socat died, or 5 s passed)."""
    proc = subprocess.Popen(["socat", f"pty,raw,echo=0,link={receiver}", f"pty,raw,echo=0,link={camera}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 5
    while not (receiver.exists() and camera.exists()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc


def _unplug(proc):
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=5)


@pytest.fixture
def pty_pair(tmp_path):
    receiver, camera = tmp_path / "receiver", tmp_path / "camera"
    proc = _plug(receiver, camera)
    if not (receiver.exists() and camera.exists()):
        proc.kill()
        pytest.fail("socat did not create the pty pair")
    yield str(receiver), str(camera)
    _unplug(proc)


def test_real_log_over_the_serial_line(pty_pair):
    receiver_port, camera_port = pty_pair
    log = receiver_log("bu353s4.log")
    # a receiver sends sentences only: the capture's '#' comment lines stay in the file
    data = b"".join(line for line in log.read_bytes().splitlines(keepends=True) if not line.startswith(b"#"))
    gps = SerialNmeaGps(camera_port, 9600)
    line = serial.Serial(receiver_port, 9600)

    def write():
        for i in range(0, len(data), 256):      # like a UART: in pieces
            line.write(data[i:i + 256])
            line.flush()
            time.sleep(0.005)

    try:
        fixes = run_gps(gps, lambda f: len(f) >= 25, timeout=8.0, alongside=write)
        status = gps.status()
    finally:
        line.close()
    assert len(fixes) >= 25
    assert all(f.has_position for f in fixes)
    assert fixes[-1].lat == pytest.approx(-37.7848, abs=1e-3) and fixes[-1].lon == pytest.approx(175.3149, abs=1e-3)
    assert fixes[-1].time.year == 2014
    assert 0 < status["bytes_read"] <= len(data) and status["port"] == camera_port
    assert sum(gps.reader.stats.rejected.values()) == 0


def test_garbage_and_binary_noise_are_counted_never_a_crash(pty_pair):
    receiver_port, camera_port = pty_pair
    gps = open_gps("nmea-serial", None, port=camera_port, baud=9600)
    line = serial.Serial(receiver_port, 9600)

    def cycle(s, lat="4657.0600"):
        return [sentence(f"GPGGA,1200{s:02d}.00,{lat},N,00417.9400,E,1,08,0.9,300.0,M,48.0,M,,"),
                sentence("GPGSA,A,3,01,02,03,04,05,06,07,08,,,,,1.6,0.9,1.3"),
                sentence(f"GPRMC,1200{s:02d}.00,A,{lat},N,00417.9400,E,0.5,90.0,270226,,,A")]

    rng = __import__("random").Random(5)
    noise = bytes(rng.randrange(256) for _ in range(3000))

    def write():
        chunks = []
        for s in range(0, 3):
            chunks.append(("\r\n".join(cycle(s)) + "\r\n").encode())
        chunks.append(noise)                                           # binary noise
        chunks.append(b"\r\n$GPGGA,120003.00,4657.06*7F\r\n")          # bad checksum
        chunks.append(b"$GPRMC,120003.00,A,46\r\n")                    # cut short
        chunks.append(("\r\n".join(cycle(4, lat="9530.0000")) + "\r\n").encode())   # latitude 95
        chunks.append(b"\xff" * 600 + b"\r\n")                         # a flood without line end
        for s in range(5, 9):
            chunks.append(("\r\n".join(cycle(s)) + "\n").encode())     # LF only now
        for chunk in chunks:
            line.write(chunk)
            line.flush()
            time.sleep(0.01)

    try:
        fixes = run_gps(gps, lambda f: any(x.time and x.time.second == 8 for x in f), timeout=8.0, alongside=write)
    finally:
        line.close()
    stats = gps.reader.stats
    assert sum(stats.rejected.values()) >= 4
    assert stats.rejected["checksum"] >= 1
    assert stats.rejected["absurd value"] >= 1
    assert stats.rejected["noise"] + stats.rejected["too long"] >= 1
    assert stats.rejected["truncated"] >= 1
    good = [f for f in fixes if f.has_position]
    assert good and all(-90 <= f.lat <= 90 for f in good)
    assert all(abs(f.lat - 46.951) < 0.001 for f in good)
    assert good[-1].time.second == 8


def test_receiver_unplugged_and_plugged_back(tmp_path):
    """The line disappears mid-stream (socat killed): the backend reports it, retries
    with backoff, and reads fixes again once the port is back."""
    receiver, camera = tmp_path / "receiver", tmp_path / "camera"

    def cycle(s):
        return ("\r\n".join([sentence(f"GPGGA,1200{s:02d}.00,4657.0600,N,00417.9400,E,1,08,0.9,300.0,M,48.0,M,,"),
                              sentence(f"GPRMC,1200{s:02d}.00,A,4657.0600,N,00417.9400,E,0.5,90.0,270226,,,A")])
                + "\r\n").encode()

    proc = _plug(receiver, camera)
    gps = SerialNmeaGps(str(camera), 9600)
    loop = asyncio.new_event_loop()
    fixes, seen = [], {}

    async def main():
        gps.start(loop, fixes.append)
        nonlocal proc
        line = serial.Serial(str(receiver), 9600)
        for s in range(3):
            line.write(cycle(s))
            await asyncio.sleep(0.05)
        line.close()
        await asyncio.sleep(0.3)
        _unplug(proc)
        deadline = loop.time() + 5
        while gps.status()["state"] != "reconnecting" and loop.time() < deadline:
            await asyncio.sleep(0.02)
        seen.update(gps.status())
        proc = _plug(receiver, camera)
        before = len(fixes)
        line = serial.Serial(str(receiver), 9600)
        deadline = loop.time() + 10
        s = 10
        while len(fixes) < before + 2 and loop.time() < deadline:
            line.write(cycle(s))
            s += 1
            await asyncio.sleep(0.1)
        line.close()

    try:
        loop.run_until_complete(main())
    finally:
        gps.close()
        loop.close()
        if proc.poll() is None:
            _unplug(proc)
    assert seen["state"] == "reconnecting" and seen["last_error"]
    assert gps.reconnects >= 1
    assert fixes[-1].has_position and fixes[-1].time.second >= 10


def test_missing_port_is_a_driver_error():
    with pytest.raises(DriverUnavailable, match="/dev/no-such-gps"):
        SerialNmeaGps("/dev/no-such-gps", 9600)


def test_repr_and_idempotent_close():
    gps = SerialNmeaGps("loop://", 9600)
    assert "SerialNmeaGps" in repr(gps)
    gps.close()
    gps.close()
    assert "closed" in repr(gps)

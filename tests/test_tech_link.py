"""The serial link over a pty pair, real pyserial at both ends: flashing, assignments and
every bad input of the line (garbage, damaged or cut frames, oversize, cable pulled)."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
import serial

from drivers.simcable import PtyCable
from recorder.assignment import sign_assignment
from recorder.bundle import public_hex, read_bundle
from recorder.errors import LinkError
from recorder.link.listener import SerialListener, device_listener
from recorder.link.protocol import Frame, FrameReader, Received, encode_frame
from tests.tech_device import make_config, make_device, sign, technician
from tools.cli import main
from tools.link_client import FlashClient


@pytest.fixture
def rig(tmp_path, chief):
    tech_path, tech = technician(tmp_path)
    tech_hex = public_hex(tech)
    _, recipient = chief
    device = make_device(tmp_path / "device", make_config(tmp_path / "running", [tech_hex], recipient))
    cable = PtyCable()
    listener = device_listener(cable.device_path, device.updater, device.keeper,
                               idle_timeout=0.5, frame_timeout=0.2, max_size=400_000).start()
    yield tmp_path, tech_path, tech, recipient, device, cable, listener
    listener.close()
    cable.close()


def bundle_v(tmp_path, tech, recipient, version, **overrides):
    tech_hex = public_hex(tech)
    return sign(make_config(tmp_path / f"v{version}", [tech_hex], recipient, **overrides), tech, version)


def raw_port(path):
    return serial.Serial(path, 115200, timeout=0.05)


def test_flash_over_the_serial_link_then_a_thin_configuration_only_flash(rig, capsys):
    tmp_path, tech_path, tech, recipient, device, cable, listener = rig
    out = tmp_path / "v1.pbn"
    out.write_bytes(bundle_v(tmp_path, tech, recipient, 1))
    assert main(["config", "flash", str(out), "--port", cable.host_path]) == 0
    captured = capsys.readouterr()
    assert "camera CAM-SIM-001 (fleet autun-pm), configuration version 0" in captured.out
    assert "device answer: accepted [applied]" in captured.out
    assert "100%" in captured.err  # the progress bar
    assert device.updater.running_version == 1

    out.write_bytes(bundle_v(tmp_path, tech, recipient, 2, video={"fps": 25}))
    assert main(["config", "flash", str(out), "--port", cable.host_path]) == 0
    captured = capsys.readouterr()
    assert "not resent: notice-fr.wav, communes/autun.geojson" in captured.out
    assert device.updater.running.video.fps == 25

    assert main(["config", "flash", str(out), "--port", cable.host_path]) == 1  # replay
    assert "REFUSED [not-newer]" in capsys.readouterr().out
    assert [e["event"] for e in device.events()] == ["config applied", "config applied", "config refused"]


def test_garbage_on_the_line_is_skipped_and_changes_nothing(rig):
    tmp_path, _, tech, recipient, device, cable, listener = rig
    before = device.snapshot()
    with raw_port(cable.host_path) as port:
        port.write(os.urandom(3000) + b"\xa5\x5a\x02\xff")  # noise, then a header cut short
        port.flush()
        time.sleep(0.6)
        assert device.snapshot() == before
        with FlashClient(port) as client:
            assert client.send("bundle", bundle_v(tmp_path, tech, recipient, 1)).code == "applied"
    assert listener.counts["accepted"] == 1


def test_damaged_and_truncated_frames_are_answered_and_resent(rig):
    tmp_path, _, tech, recipient, device, cable, listener = rig
    with raw_port(cable.host_path) as port:
        reader = FrameReader(port)
        frame = bytearray(encode_frame(Frame.INFO, 7))
        frame[-1] ^= 0xFF
        port.write(bytes(frame))
        nak = reader.read(2.0)
        assert isinstance(nak, Received) and nak.type == Frame.NAK and nak.json()["code"] == "bad-checksum"
        port.write(encode_frame(Frame.DATA, 8, b"\0\0\0\0" + b"x" * 200)[:50])  # cut short
        nak = reader.read(2.0)
        assert nak.type == Frame.NAK and nak.json()["code"] == "truncated-frame"
        port.write(encode_frame(Frame.DATA, 9, b"\0\0\0\0abc"))
        assert reader.read(2.0).json()["code"] == "no-transfer"
        port.write(encode_frame(Frame.BEGIN, 10, b'{"kind":"firmware","size":3,"sha256":"00"}'))
        assert reader.read(2.0).json()["code"] == "unknown-kind"

        # line noise in the middle of a transfer: the damaged chunks are resent
        client = FlashClient(port, reply_timeout=1.0)
        data = bundle_v(tmp_path, tech, recipient, 1)
        done = []

        def progress(sent, total):
            if 0 < sent < total and len(done) in (2, 5):
                cable.add_noise()
            done.append(sent)

        assert client.send("bundle", data, progress=progress).code == "applied"
        assert client.resends >= 2 and listener.counts["bad_frames"] >= 4


def test_oversize_and_corrupted_transfers_are_refused(rig):
    tmp_path, _, tech, recipient, device, cable, listener = rig
    before = device.snapshot()
    with FlashClient(cable.host_path) as client:
        answer = client.send("bundle", b"PIETONB1" + bytes(500_000))
        assert answer.code == "oversize"
        # a transfer whose bytes do not match what BEGIN announced
        import hashlib
        import json
        import struct
        good = bundle_v(tmp_path, tech, recipient, 1)
        begin = {"kind": "bundle", "size": len(good), "sha256": hashlib.sha256(b"other").hexdigest()}
        client._exchange(Frame.BEGIN, json.dumps(begin).encode(), (Frame.ACK,), 1.0)
        for offset in range(0, len(good), 1024):
            client._exchange(Frame.DATA, struct.pack(">I", offset) + good[offset:offset + 1024], (Frame.ACK,), 1.0)
        result = client._exchange(Frame.END, b"", (Frame.RESULT,), 5.0).json()
        assert result["code"] == "corrupted"
        # a transfer ended early
        client._exchange(Frame.BEGIN, json.dumps(dict(begin, sha256=hashlib.sha256(good).hexdigest())).encode(),
                         (Frame.ACK,), 1.0)
        client._exchange(Frame.DATA, struct.pack(">I", 0) + good[:1024], (Frame.ACK,), 1.0)
        assert client._exchange(Frame.END, b"", (Frame.RESULT,), 5.0).json()["code"] == "truncated"
    assert device.snapshot() == before


def test_cable_pulled_mid_transfer_changes_nothing(rig):
    tmp_path, _, tech, recipient, device, cable, listener = rig
    before = device.snapshot()
    data = bundle_v(tmp_path, tech, recipient, 1, notice={"text": "x"})
    with FlashClient(cable.host_path, reply_timeout=0.3, retries=1) as client:
        def progress(sent, total):
            if sent > 4000:
                cable.pull()

        with pytest.raises(LinkError, match="no answer from the device"):
            client.send("bundle", data, progress=progress)
    deadline = time.monotonic() + 3
    while listener.counts["aborted"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.counts["aborted"] == 1 and listener.status()["state"] == "listening"
    assert device.snapshot() == before and device.events() == []


def test_assign_over_the_link_replay_other_camera_and_expiry(rig, capsys, chief):
    tmp_path, tech_path, tech, recipient, device, cable, listener = rig
    chief_path, _ = chief
    assert device.keeper.status()["agent"] == "agent not assigned"
    assert main(["assign", "--agent", "PM-0421", "--device", "CAM-SIM-001", "--until", "+8h",
                 "--port", cable.host_path, "--key", str(tech_path)]) == 0
    assert "accepted [assigned]" in capsys.readouterr().out
    assert device.keeper.recording_static()["agent"] == "PM-0421"
    assert device.keeper.status()["agent"] == "assigned"
    # the agent number is nowhere in clear on the device's storage; the journal has it encrypted
    for path in device.state.rglob("*"):
        if path.is_file():
            assert b"PM-0421" not in path.read_bytes(), path
    line = device.events(chief_path)[-1]
    assert line["event"] == "assignment" and line["personal_clear"] == {"agent": "PM-0421"}

    signed = sign_assignment(tech, "PM-0421", "CAM-SIM-001", device.keeper.counter, time.time() + 3600)
    with FlashClient(cable.host_path) as client:
        assert client.send("assignment", signed).code == "replayed"
        other = sign_assignment(tech, "PM-0421", "CAM-SIM-002", 99, time.time() + 3600)
        assert client.send("assignment", other).code == "wrong-device"
        late = sign_assignment(tech, "PM-0421", "CAM-SIM-001", 50, time.time() - 1)
        assert client.send("assignment", late).code == "expired"
        _, stranger = technician(tmp_path, "stranger")
        forged = sign_assignment(stranger, "PM-0421", "CAM-SIM-001", 51, time.time() + 60)
        assert client.send("assignment", forged).code == "unknown-signer"
        tampered = forged.replace(b"PM-0421", b"PM-0666")
        assert client.send("assignment", tampered).code == "bad-signature"
        assert client.send("assignment", b"{not json").code == "bad-format"
    assert device.keeper.recording_static()["agent"] == "PM-0421"
    results = [e["data"]["result"] for e in device.events() if e["event"] == "assignment"]
    assert results == ["assigned"] + ["refused"] * 6


def test_the_assignment_expires_at_the_end_of_the_shift(tmp_path, chief):
    tech_path, tech = technician(tmp_path)
    now = [1_800_000_000.0]
    _, recipient = chief
    device = make_device(tmp_path / "d", make_config(tmp_path / "r", [public_hex(tech)], recipient),
                         clock=lambda: now[0])
    assert device.keeper.offer(sign_assignment(tech, "A7", "CAM-SIM-001", 1, now[0] + 3600)).code == "assigned"
    assert device.keeper.offer(sign_assignment(tech, "A7", "CAM-SIM-001", 2, now[0] + 90_000)).code == "too-long"
    assert device.keeper.agent_number(now[0] + 3599) == "A7"
    now[0] += 3601
    assert device.keeper.agent_number() is None
    assert device.keeper.status() == {"agent": "agent not assigned", "until": None,
                                      "state": "NOT ASSIGNED: recordings carry no agent number"}
    assert device.keeper.recording_static() == {"agent": None, "agent_status": "agent not assigned"}
    assert device.events()[-1]["data"]["result"] == "expired"


def test_handlers_run_on_the_daemon_loop_thread(tmp_path, rig):
    """As in a simulation: the daemon's loop is virtual-clocked; the flash is handed over
    to it from the listener thread and runs there, between its timers."""
    from recorder.clock import VirtualClockLoop

    tmp_path, _, tech, recipient, device, cable, listener = rig
    listener.close()
    loop = VirtualClockLoop()
    threads = []

    def handler(data):
        threads.append(threading.current_thread())
        return device.updater.offer(data)

    async def flash():
        ticker = loop.create_task(asyncio.sleep(3600))  # a daemon timer far ahead
        own = SerialListener(cable.device_path, {"bundle": handler}, device.updater.info, loop=loop).start()
        try:
            with FlashClient(cable.host_path) as client:
                return await loop.run_in_executor(None, client.send, "bundle",
                                                  bundle_v(tmp_path, tech, recipient, 3))
        finally:
            own.close()
            ticker.cancel()

    try:
        assert loop.run_until_complete(flash()).code == "applied"
    finally:
        loop.close()
    assert threads == [threading.main_thread()]
    assert loop.time() < 3600
    assert read_bundle((device.state / "config" / "current" / "bundle.pbn").read_bytes()).version == 3


def test_a_lost_answer_is_repeated_not_redone(rig):
    import hashlib
    import json
    import struct

    tmp_path, _, tech, recipient, device, cable, listener = rig
    data = bundle_v(tmp_path, tech, recipient, 1)
    with raw_port(cable.host_path) as port:
        reader = FrameReader(port)
        begin = {"kind": "bundle", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        port.write(encode_frame(Frame.BEGIN, 1, json.dumps(begin).encode()))
        assert reader.read(2.0).type == Frame.ACK
        for seq, offset in enumerate(range(0, len(data), 2048), start=2):
            port.write(encode_frame(Frame.DATA, seq, struct.pack(">I", offset) + data[offset:offset + 2048]))
            assert reader.read(2.0).type == Frame.ACK
        port.write(encode_frame(Frame.END, 500))
        first = reader.read(5.0)
        port.write(encode_frame(Frame.END, 500))  # as if the RESULT had been lost on the line
        again = reader.read(5.0)
    assert first.type == again.type == Frame.RESULT and first.json() == again.json()
    assert first.json()["code"] == "applied"
    assert [e["event"] for e in device.events()] == ["config applied"]

import argparse
import asyncio
import json
import socket
import stat

import pytest

from recorder.control import ControlServer, format_status, register_ctl, request, socket_path
from recorder.errors import ControlError

STATUS = {
    "state": "recording",
    "camera_id": "CAM-SIM-001",
    "config": {"digest": "0123456789abcdef", "signed": False},
    "recording": {"id": "CAM-SIM-001_20260101T080000Z_000003", "reason": "intervention",
                  "seconds": 12.5, "bookmarks": 1},
    "storage_free_mb": 20480.0,
    "battery_percent": 64.5,
    "gps": {"mode": 3, "sats": 9, "hdop": 0.8, "lat": 46.95, "lon": 4.3, "commune": "inside"},
    "clock": {"source": "gps", "offset_s": 0.012, "synchronised": True},
    "faults": {"speaker": "no audio output device"},
    "warnings": ["storage_low"],
    "recordings_made": 3,
    "agent_number": "A-1234",
}


def ctl(argv):
    parser = argparse.ArgumentParser(prog="pieton")
    register_ctl(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def serve(path, handlers, body):
    async def main():
        async with ControlServer(path, handlers) as server:
            return await body(server)
    return asyncio.run(main())


def test_status_round_trip_and_ctl_output(tmp_path, capsys):
    path = socket_path(tmp_path)
    calls = []

    def status():
        calls.append("status")
        return STATUS

    async def body(server):
        assert stat.S_IMODE(path.stat().st_mode) == 0o660 and "listening" in repr(server)
        result = await asyncio.to_thread(request, path, "status")
        code = await asyncio.to_thread(ctl, ["ctl", "status", "--state-dir", str(tmp_path), "--verbose"])
        readable = capsys.readouterr().out
        await asyncio.to_thread(ctl, ["ctl", "status", "--state-dir", str(tmp_path)])
        summary = capsys.readouterr().out
        json_code = await asyncio.to_thread(ctl, ["ctl", "status", "--state-dir", str(tmp_path), "--json"])
        return result, code, readable, summary, json_code, json.loads(capsys.readouterr().out)

    result, code, readable, summary, json_code, as_json = serve(path, {"status": status}, body)
    assert result == STATUS and calls == ["status"] * 4
    # By default, a summary read at a glance; everything with --verbose or --json.
    assert [" ".join(line.split()) for line in summary.splitlines()] == [
        "state: RECORDING",
        "recording: CAM-SIM-001_20260101T080000Z_000003, reason intervention, 12.5 s (bookmarks=1)",
        "storage: 20480 MB free",
        "battery: 64.5 %",
        "GPS: 3D fix, 9 satellites, hdop 0.8 (commune=inside)",
        "clock: gps, offset +0.012 s, synchronised",
        "faults: speaker (details: --verbose)",
        "(everything: pieton ctl status --verbose, or --json)",
    ]
    assert code == 0 and json_code == 0 and as_json == STATUS
    lines = [" ".join(line.split()) for line in readable.splitlines()]
    assert lines == [
        "state: RECORDING",
        "camera: CAM-SIM-001",
        "recording: CAM-SIM-001_20260101T080000Z_000003, reason intervention, 12.5 s (bookmarks=1)",
        "storage: 20480 MB free",
        "battery: 64.5 %",
        "GPS: 3D fix, 9 satellites, hdop 0.8 (commune=inside)",
        "clock: gps, offset +0.012 s, synchronised",
        "configuration: digest 0123456789abcdef, UNSIGNED (development)",
        "warnings: storage_low",
        "recordings made: 3",
        "driver faults:",
        "speaker: no audio output device",
    ]
    assert readable.splitlines()[0] == "state:           RECORDING"  # values aligned
    # Positions and identities never reach the readable output.
    assert "46.95" not in readable and "4.3" not in readable and "A-1234" not in readable
    assert not path.exists()  # removed on close


def test_server_answers_errors_and_survives_them(tmp_path):
    path = tmp_path / "control.sock"

    async def bookmark(note=""):
        await asyncio.sleep(0)
        return {"bookmarked": note}

    def boom():
        raise OSError("disk gone")

    async def body(server):
        def talk():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(str(path))
                stream = sock.makefile("rwb")
                answers = []
                for line in [b'{"cmd": "bookmark", "note": "door"}', b"not json", b'["status"]',
                             b'{"cmd": "erase"}', b'{"cmd": "bookmark", "who": 1}', b'{"cmd": "boom"}',
                             b'{"cmd": "bookmark"}', b"x" * (70 * 1024)]:
                    stream.write(line + b"\n")
                    stream.flush()
                    answers.append(json.loads(stream.readline()))
                answers.append(stream.readline())  # the server hung up after the oversized line
                return answers
        return await asyncio.to_thread(talk)

    answers = serve(path, {"bookmark": bookmark, "boom": boom}, body)
    assert answers[0] == {"ok": True, "result": {"bookmarked": "door"}}
    assert "not JSON" in answers[1]["error"]
    assert '"cmd" string' in answers[2]["error"]
    assert answers[3]["error"] == "unknown command 'erase'; commands: bookmark, boom"
    assert "bad arguments for 'bookmark'" in answers[4]["error"]
    assert answers[5] == {"ok": False, "error": "boom failed: OSError: disk gone"}
    assert answers[6] == {"ok": True, "result": {"bookmarked": ""}}
    assert answers[7]["ok"] is False and "longer than" in answers[7]["error"]
    assert answers[8] == b""


def test_ctl_says_clearly_when_the_daemon_is_not_running(tmp_path, capsys):
    assert ctl(["ctl", "status", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no control socket at" in err and "not running" in err and "Traceback" not in err
    # A socket file left by a daemon that died.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(socket_path(tmp_path)))
    assert ctl(["ctl", "status", "--state-dir", str(tmp_path)]) == 1
    assert "connection refused" in capsys.readouterr().err
    with pytest.raises(ControlError, match="not running"):
        request(tmp_path / "nowhere.sock", "status")
    assert ctl(["ctl"]) == 2


def test_ctl_reports_a_refused_command_and_a_silent_daemon(tmp_path, capsys):
    path = socket_path(tmp_path)

    async def slow():
        await asyncio.sleep(1.0)

    async def body(server):
        with pytest.raises(ControlError, match="did not answer within 0.2 s"):
            await asyncio.to_thread(request, path, "status", timeout=0.2)
        with pytest.raises(ControlError, match="refused 'reboot': unknown command"):
            await asyncio.to_thread(request, path, "reboot")

    serve(path, {"status": slow}, body)


def test_start_replaces_a_stale_socket_but_never_a_live_one(tmp_path):
    path = tmp_path / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))

    async def body(server):
        with pytest.raises(ControlError, match="another daemon is already serving it"):
            await ControlServer(path, {}).start()
        return await asyncio.to_thread(request, path, "status")

    assert serve(path, {"status": lambda: {"state": "armed"}}, body) == {"state": "armed"}
    path.write_text("not a socket")

    async def regular_file():
        with pytest.raises(ControlError, match="exists and is not a socket"):
            await ControlServer(path, {}).start()
        with pytest.raises(ControlError, match="does not exist"):
            await ControlServer(tmp_path / "missing" / "control.sock", {}).start()
        server = ControlServer(tmp_path / "other.sock", {})
        await server.start()
        await server.close()
        await server.close()  # idempotent
        assert "closed" in repr(server)

    asyncio.run(regular_file())


def test_format_status_prints_unknown_keys_generically():
    text = format_status({"state": "armed", "recording": None, "faults": {}, "pre_event_s": 30.0,
                          "segments": [1, 2], "media": {"encoder": "libx264", "lat": 1.5,
                                                        "video": {"fps": 30, "ok": True}}})
    assert text.splitlines() == ["state:         ARMED", "recording:     none", "pre event s:   30",
                                 "segments:      1, 2", "driver faults: none",
                                 "media:", "  encoder: libx264", "  video: {fps=30, ok=yes}"]


def test_the_summary_names_the_agent_state_and_faults():
    from recorder.control import format_summary
    unassigned = format_summary({"state": "armed", "faults": {},
                                 "assignment": {"agent": "not assigned", "until": None,
                                                "state": "NOT ASSIGNED: recordings carry no agent number"}})
    assert "agent:" in unassigned and "NOT ASSIGNED" in unassigned and "faults: none" in unassigned
    assigned = format_summary({"state": "armed", "assignment": {"agent": "assigned", "state": "assigned",
                                                                "until": "2026-11-30T19:00:00Z"}})
    assert "assigned until 2026-11-30T19:00:00Z" in assigned

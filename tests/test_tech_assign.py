"""`pieton assign --out FILE`: the signed assignment written to a file, to reach the camera
later, and taken by the camera in the order the files were written."""

from __future__ import annotations

import stat
import time

import pytest

from recorder.assignment import read_assignment
from recorder.bundle import public_hex
from tests.tech_device import make_config, make_device, technician
from tools.cli import main


def assign(*extra: str) -> int:
    return main(["assign", "--agent", "PM-0421", "--device", "CAM-SIM-001", "--until", "+8h", *extra])


def test_assign_out_writes_a_signed_assignment_the_camera_takes(tmp_path, chief, capsys):
    tech_path, tech = technician(tmp_path)
    _, recipient = chief
    device = make_device(tmp_path / "device", make_config(tmp_path / "running", [public_hex(tech)], recipient))
    first, second = tmp_path / "shift-1.assignment", tmp_path / "shift-2.assignment"
    assert assign("--out", str(first), "--key", str(tech_path)) == 0
    assert f"signed assignment written to {first}" in capsys.readouterr().out
    time.sleep(0.002)  # the next millisecond: a later counter
    assert assign("--out", str(second), "--key", str(tech_path)) == 0
    assert stat.S_IMODE(first.stat().st_mode) == 0o600  # it names the agent

    one, two = read_assignment(first.read_bytes()), read_assignment(second.read_bytes())
    assert (one.agent, one.device, one.signer) == ("PM-0421", "CAM-SIM-001", public_hex(tech))
    assert 7.9 * 3600 < one.until - time.time() <= 8 * 3600
    assert two.counter > one.counter
    assert device.keeper.offer(first.read_bytes()).code == "assigned"
    assert device.keeper.offer(second.read_bytes()).code == "assigned"
    assert device.keeper.offer(first.read_bytes()).code == "replayed"
    assert device.keeper.agent_number() == "PM-0421"


def test_assign_out_with_a_given_counter(tmp_path, capsys):
    tech_path, _ = technician(tmp_path)
    out = tmp_path / "a.assignment"
    assert assign("--out", str(out), "--key", str(tech_path), "--counter", "42") == 0
    assert read_assignment(out.read_bytes()).counter == 42


def test_assign_needs_one_of_port_or_out_and_a_writable_place(tmp_path, capsys):
    tech_path, _ = technician(tmp_path)
    with pytest.raises(SystemExit) as both:
        assign("--out", str(tmp_path / "a"), "--port", "/dev/null", "--key", str(tech_path))
    assert both.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit) as neither:
        assign("--key", str(tech_path))
    assert neither.value.code == 2 and "one of the arguments --port --out is required" in capsys.readouterr().err

    assert assign("--out", str(tmp_path / "nowhere" / "a"), "--key", str(tech_path)) == 2
    assert f"folder {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    assert assign("--out", str(tmp_path), "--key", str(tech_path)) == 2
    assert "is a folder; name the file to write" in capsys.readouterr().err
    assert assign("--out", str(tmp_path / "b"), "--key", str(tech_path), "--counter", "0") == 2
    assert "cannot assign [bad-format]: counter 0" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_until_follows_the_one_rule_for_times():
    from datetime import UTC, datetime

    from tools.assign import parse_until
    def utc(*moment):
        return datetime(*moment, tzinfo=UTC).timestamp()

    evening = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)          # 18:00 in Paris
    assert parse_until("22:00", now=evening) == utc(2026, 11, 27, 21, 0)       # tonight, Paris time
    assert parse_until("07:00", now=evening) == utc(2026, 11, 28, 6, 0)        # tomorrow morning
    assert parse_until("27/11/2026 22:00") == utc(2026, 11, 27, 21, 0)         # a French date
    assert parse_until("22:00", "America/Cayenne", now=evening) == utc(2026, 11, 28, 1, 0)
    with pytest.raises(ValueError, match="happens twice"):
        parse_until("25/10/2026 02:30")
    with pytest.raises(ValueError, match="not a date and time"):
        parse_until("tonight")


def test_the_written_assignment_says_its_end_in_local_time(tmp_path, capsys):
    key = tmp_path / "tech.key"
    assert main(["keys", "technician", "--out", str(key)]) == 0
    assert main(["assign", "--agent", "PM-0421", "--device", "CAM-SIM-001", "--until", "31/12/2099 22:00",
                 "--key", str(key), "--out", str(tmp_path / "a.json")]) == 0
    assert "until 2099-12-31 22:00 CET" in capsys.readouterr().out

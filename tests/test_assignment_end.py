"""`pieton assign --end` (CSI R241-10): a camera handed over carries no agent number from
the signed end of its assignment until a new one."""

from __future__ import annotations

import time

import pytest

from drivers.simcable import PtyCable
from recorder.assignment import (
    NOT_ASSIGNED,
    AssignmentEnd,
    read_assignment,
    read_offer,
    sign_assignment,
    sign_assignment_end,
)
from recorder.bundle import public_hex
from recorder.errors import AssignmentError
from recorder.link.listener import device_listener
from tests.tech_device import make_config, make_device, technician
from tools.cli import main


@pytest.fixture
def device(tmp_path, chief):
    tech_path, tech = technician(tmp_path)
    _, recipient = chief
    cam = make_device(tmp_path / "device", make_config(tmp_path / "running", [public_hex(tech)], recipient))
    return cam, tech, tech_path


def test_an_end_drops_the_agent_number_and_is_journaled(device, chief):
    cam, tech, _ = device
    until = time.time() + 8 * 3600
    assert cam.keeper.offer(sign_assignment(tech, "PM-0421", "CAM-SIM-001", 1, until)).code == "assigned"
    assert cam.keeper.agent_number() == "PM-0421"

    answer = cam.keeper.offer(sign_assignment_end(tech, "CAM-SIM-001", 2))
    assert (answer.code, answer.ok) == ("ended", True)
    assert cam.keeper.agent_number() is None                    # well before the shift's end
    assert cam.keeper.recording_static() == {"agent": None, "agent_status": NOT_ASSIGNED}
    assert cam.keeper.status()["state"].startswith("NOT ASSIGNED")
    last = cam.events(chief[0])[-1]
    assert last["event"] == "assignment"
    assert {k: last["data"][k] for k in ("result", "counter", "ended_counter", "status")} == {
        "result": "ended", "counter": 2, "ended_counter": 1, "status": NOT_ASSIGNED}
    assert "personal_clear" not in last                         # an end names no agent

    # the old assignment cannot come back, and the end itself cannot be replayed
    assert cam.keeper.offer(sign_assignment(tech, "PM-0421", "CAM-SIM-001", 1, until)).code == "replayed"
    assert cam.keeper.offer(sign_assignment_end(tech, "CAM-SIM-001", 2)).code == "replayed"
    # the next agent's assignment is taken
    assert cam.keeper.offer(sign_assignment(tech, "PM-0007", "CAM-SIM-001", 3, until)).code == "assigned"
    assert cam.keeper.agent_number() == "PM-0007"


def test_an_end_for_another_camera_or_by_a_stranger_is_refused(device, tmp_path):
    cam, tech, _ = device
    _, stranger = technician(tmp_path, "stranger")
    cam.keeper.offer(sign_assignment(tech, "PM-0421", "CAM-SIM-001", 1, time.time() + 3600))
    assert cam.keeper.offer(sign_assignment_end(tech, "CAM-SIM-002", 2)).code == "wrong-device"
    assert cam.keeper.offer(sign_assignment_end(stranger, "CAM-SIM-001", 2)).code == "unknown-signer"
    forged = sign_assignment_end(tech, "CAM-SIM-001", 2).replace(b'"counter":2', b'"counter":9')
    assert cam.keeper.offer(forged).code == "bad-signature"
    assert cam.keeper.agent_number() == "PM-0421"


def test_an_end_is_not_an_assignment(device):
    _, tech, _ = device
    data = sign_assignment_end(tech, "CAM-SIM-001", 5)
    assert isinstance(read_offer(data), AssignmentEnd)
    with pytest.raises(AssignmentError, match="an end of assignment"):
        read_assignment(data)
    # an end with an agent or an expiry smuggled in is not well formed
    with pytest.raises(AssignmentError, match="fields"):
        read_offer(data.replace(b'"counter"', b'"agent":"X","counter"'))


def test_pieton_assign_end_writes_a_signed_end(device, tmp_path, capsys):
    cam, tech, tech_path = device
    start, end = tmp_path / "start.assignment", tmp_path / "end.assignment"
    assert main(["assign", "--agent", "PM-0421", "--device", "CAM-SIM-001", "--until", "+8h",
                 "--out", str(start), "--key", str(tech_path), "--counter", "10"]) == 0
    assert main(["assign", "--end", "--device", "CAM-SIM-001", "--out", str(end), "--key", str(tech_path),
                 "--counter", "11"]) == 0
    assert f"signed end of assignment written to {end}" in capsys.readouterr().out
    assert cam.keeper.offer(start.read_bytes()).code == "assigned"
    assert cam.keeper.offer(end.read_bytes()).code == "ended"
    assert cam.keeper.agent_number() is None


@pytest.mark.parametrize(("args", "said"), [
    (["--end", "--agent", "PM-1"], "--agent is not allowed with it"),
    (["--end", "--until", "+8h"], "--until is not allowed with it"),
    ([], "--agent and --until required (or --end"),
    (["--agent", "PM-1"], "--until required"),
])
def test_assign_arguments_are_checked(device, tmp_path, capsys, args, said):
    _, _, tech_path = device
    code = main(["assign", "--device", "CAM-SIM-001", "--out", str(tmp_path / "x.assignment"),
                 "--key", str(tech_path), *args])
    assert code == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "x.assignment").exists()


def test_pieton_assign_end_over_the_serial_link(tmp_path, chief, capsys):
    tech_path, tech = technician(tmp_path)
    cam = make_device(tmp_path / "device", make_config(tmp_path / "running", [public_hex(tech)], chief[1]))
    cable = PtyCable()
    listener = device_listener(cable.device_path, cam.updater, cam.keeper, idle_timeout=0.5,
                               frame_timeout=0.2).start()
    try:
        assert main(["assign", "--agent", "PM-0421", "--device", "CAM-SIM-001", "--until", "+8h",
                     "--port", cable.host_path, "--key", str(tech_path)]) == 0
        assert cam.keeper.agent_number() == "PM-0421"
        capsys.readouterr()
        assert main(["assign", "--end", "--device", "CAM-SIM-001", "--port", cable.host_path,
                     "--key", str(tech_path)]) == 0
        assert "accepted [ended]" in capsys.readouterr().out
        assert cam.keeper.agent_number() is None
    finally:
        listener.close()
        cable.close()

"""`[keys] assigners` (CSI R241-10): keys that sign shift assignments only. Once a
configuration lists any, the technicians' keys (which can reflash the fleet) no longer
sign assignments, and an assigner's key never signs a bundle."""

from __future__ import annotations

import time

import pytest

from recorder.assignment import AssignmentKeeper, assignment_signers, sign_assignment
from recorder.bundle import public_hex
from recorder.config import load_config
from recorder.errors import ConfigError
from tests.tech_device import make_config, make_device, sign, technician


def _device_with_assigner(tmp_path, recipient):
    tech_path, tech = technician(tmp_path, "tech")
    _, assigner = technician(tmp_path, "desk")
    config = make_config(tmp_path / "running", [public_hex(tech)], recipient,
                         keys={"assigners": [public_hex(assigner)]})
    cam = make_device(tmp_path / "device", config)
    # the daemon's rule for who may sign assignments
    cam.keeper = AssignmentKeeper(cam.state, cam.journal, "CAM-SIM-001",
                                  lambda: assignment_signers(cam.updater.running))
    return cam, tech, assigner


def test_only_assigners_sign_assignments_when_listed(tmp_path, chief):
    cam, tech, assigner = _device_with_assigner(tmp_path, chief[1])
    until = time.time() + 3600
    refused = cam.keeper.offer(sign_assignment(tech, "PM-0421", "CAM-SIM-001", 1, until))
    assert refused.code == "unknown-signer" and "[keys] assigners" in refused.message
    assert cam.keeper.offer(sign_assignment(assigner, "PM-0421", "CAM-SIM-001", 2, until)).code == "assigned"


def test_an_assigner_key_cannot_sign_a_bundle(tmp_path, chief):
    cam, tech, assigner = _device_with_assigner(tmp_path, chief[1])
    keys = {"assigners": [public_hex(assigner)]}
    by_assigner = sign(make_config(tmp_path / "v1", [public_hex(tech)], chief[1], keys=keys), assigner, 1)
    assert cam.updater.offer(by_assigner).code == "unknown-signer"
    by_tech = sign(make_config(tmp_path / "v2", [public_hex(tech)], chief[1], keys=keys), tech, 2)
    assert cam.updater.offer(by_tech).ok


def test_without_assigners_the_technicians_still_sign(tmp_path, chief):
    _, tech = technician(tmp_path)
    config = load_config(make_config(tmp_path / "c", [public_hex(tech)], chief[1]))
    assert config.keys.assigners == [] and assignment_signers(config) == [public_hex(tech)]


def test_a_key_both_assigner_and_technician_is_a_configuration_error(tmp_path, chief):
    _, tech = technician(tmp_path)
    path = make_config(tmp_path / "c", [public_hex(tech)], chief[1], keys={"assigners": [public_hex(tech)]})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "[keys] assigners lists" in str(err.value) and "also in [keys] technicians" in str(err.value)


def test_an_assigner_must_be_an_ed25519_key(tmp_path, chief):
    _, tech = technician(tmp_path)
    path = make_config(tmp_path / "c", [public_hex(tech)], chief[1], keys={"assigners": ["age1nope"]})
    with pytest.raises(ConfigError, match=r"\[keys\] assigners"):
        load_config(path)

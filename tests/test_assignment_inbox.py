"""An assignment reaches the camera through the inbox of its spool (the dock) or of its
SD card too: taken lowest counter first, journaled, and deleted (it names the agent in
clear, which the device's storage never keeps)."""

from __future__ import annotations

import time

from recorder.assignment import sign_assignment, sign_assignment_end
from recorder.bundle import public_hex
from tests.tech_device import make_config, make_device, technician


def test_assignments_in_the_inbox_are_taken_in_counter_order_and_deleted(tmp_path, chief):
    _, tech = technician(tmp_path)
    cam = make_device(tmp_path / "device", make_config(tmp_path / "running", [public_hex(tech)], chief[1]))
    inbox = tmp_path / "spool" / "inbox"
    inbox.mkdir(parents=True)
    until = time.time() + 3600
    # names sort the other way round from the counters: the counter decides
    (inbox / "a.assignment").write_bytes(sign_assignment_end(tech, "CAM-SIM-001", 3))
    (inbox / "b.assignment").write_bytes(sign_assignment(tech, "PM-0421", "CAM-SIM-001", 2, until))
    (inbox / "c.assignment").write_bytes(sign_assignment(tech, "PM-0007", "CAM-SIM-001", 4, until))
    (inbox / "receipt.json").write_text("{}")                  # the vault's: not ours
    (inbox / "z.assignment").write_bytes(b"\xff not json")

    answers = dict(cam.keeper.pickup_inbox(inbox))
    assert {k: a.code for k, a in answers.items()} == {
        "z.assignment": "bad-format", "b.assignment": "assigned", "a.assignment": "ended",
        "c.assignment": "assigned"}
    assert cam.keeper.agent_number() == "PM-0007"
    assert sorted(p.name for p in inbox.iterdir()) == ["receipt.json"]
    origins = [e["data"].get("origin") for e in cam.events() if e["event"] == "assignment"]
    assert origins == ["inbox:z.assignment", "inbox:b.assignment", "inbox:a.assignment", "inbox:c.assignment"]
    assert cam.keeper.pickup_inbox(inbox) == []                 # offered once
    assert cam.keeper.pickup_inbox(tmp_path / "no-card") == []


def test_an_oversized_file_is_refused_not_read_whole(tmp_path, chief):
    _, tech = technician(tmp_path)
    cam = make_device(tmp_path / "device", make_config(tmp_path / "running", [public_hex(tech)], chief[1]))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "big.assignment").write_bytes(b"{" + b" " * 10_000_000)
    [(name, answer)] = cam.keeper.pickup_inbox(inbox, origin="card")
    assert (name, answer.code) == ("big.assignment", "bad-format")
    assert str(tmp_path) not in answer.message and "big.assignment" in answer.message
    assert cam.events()[-1]["data"]["origin"] == "card:big.assignment"

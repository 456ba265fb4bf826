"""The technician's channel in a running daemon: a bundle flashed during a recording is
applied only after it ends; the shift's assignment is carried by the recordings."""

from __future__ import annotations

import json
import textwrap
import time

from recorder.assignment import sign_assignment
from recorder.bundle import public_hex
from recorder.cli import simulate
from recorder.evidence.age import load_identities
from recorder.evidence.metadata import decrypt_metadata
from recorder.scenario import verdict
from tests.conftest import SMALL_VIDEO, device_config, read_jsonl, write_config
from tests.tech_device import technician
from tools.cli import main as pieton


def test_flash_during_a_recording_is_applied_after_it_and_the_agent_is_recorded(tmp_path, chief):
    key_path, key = technician(tmp_path)
    public = public_hex(key)
    trust = {"keys": {"technicians": [public]}}
    running = write_config(tmp_path / "running", {**SMALL_VIDEO, **trust})
    # the bundle is a device configuration: real feedback drivers, keys, authorisation
    newer = write_config(tmp_path / "newer", device_config([public], [chief[1]], **SMALL_VIDEO,
                                                           gestures={"haptic_reminder_s": 60.0}))
    bundle = tmp_path / "v1.bundle"
    assert pieton(["config", "sign", str(newer), "--key", str(key_path), "--version", "1",
                   "--device", "CAM-SIM-001", "--out", str(bundle)]) == 0
    start = 1_800_000_000
    (tmp_path / "shift.assignment").write_bytes(
        sign_assignment(key, "PM-0412", "CAM-SIM-001", 1, until=start + 8 * 3600, issued=time.time()))
    scenario = tmp_path / "shift.toml"
    scenario.write_text(textwrap.dedent(f"""
        [scenario]
        start = {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start))}
        duration_s = 40
        [[event]]
        at = 1
        do = "assign"
        assignment = "shift.assignment"
        [[event]]
        at = 2
        do = "press"
        [[event]]
        at = 6
        do = "flash"
        bundle = "{bundle}"
        [[event]]
        at = 8
        do = "expect"
        state = "recording"
        [[event]]
        at = 10
        do = "hold"
        seconds = 3.5
        [[event]]
        at = 25
        do = "expect"
        state = "armed"
        recordings = 1
    """))
    player = simulate(scenario, tmp_path / "device", config_path=running, recipients=[chief[1]])
    assert verdict(player) is None, player.failures
    said = [text for _, text in player.log]
    assert any("device answers: queued" in text for text in said), said
    assert len(player.daemons) == 2, "the daemon restarted on the new configuration"
    first, second = player.daemons
    assert first.config_version == 0 and second.config_version == 1
    assert second.config.gestures.haptic_reminder_s == 60.0
    assert second.assignment.agent_number() == "PM-0412", "the shift's assignment survives the restart"
    # Applied only after the recording closed.
    journal = read_jsonl(tmp_path / "device" / "spool" / "journal.jsonl")
    events = [line["event"] for line in journal]
    assert events.index("config applied") > max(i for i, e in enumerate(events) if e == "recording closed")
    # The recording carries the agent number, encrypted to the chief; never in clear.
    spool = tmp_path / "device" / "spool"
    (rec_dir,) = [p for p in spool.iterdir() if p.is_dir()]
    meta = decrypt_metadata(rec_dir / "seg-000001.meta.age", load_identities(chief[0]))
    assert json.dumps(meta).count("PM-0412") >= 1
    for path in (tmp_path / "device").rglob("*"):
        if path.is_file():
            assert b"PM-0412" not in path.read_bytes(), f"agent number in clear in {path}"

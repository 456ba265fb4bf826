"""The device never writes images, sound, positions or identities in clear, and never
holds a key that can decrypt: plant known values, record, then scan the state folder,
TMPDIR and the daemon's log output."""

from __future__ import annotations

import logging
import textwrap
import time

from recorder.assignment import sign_assignment
from recorder.bundle import public_hex
from recorder.cli import simulate
from recorder.scenario import verdict
from tests.conftest import SMALL_VIDEO, write_config
from tests.tech_device import technician

AGENT = "PM-7731"
LAT, LON = "46.95", "4.299"   # the planted route runs through these


def test_no_agent_position_or_key_in_clear_anywhere_on_the_device(tmp_path, chief, monkeypatch, caplog, capsys):
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    key_path, key = technician(tmp_path)
    public = public_hex(key)
    config = write_config(tmp_path / "cfg", {**SMALL_VIDEO, "keys": {"technicians": [public]}})
    start = 1_800_000_000
    (tmp_path / "a.assignment").write_bytes(sign_assignment(
        key, AGENT, "CAM-SIM-001", 1, until=start + 3600, issued=time.time()))
    scenario = tmp_path / "s.toml"
    scenario.write_text(textwrap.dedent(f"""
        [scenario]
        start = {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start))}
        duration_s = 30
        [[event]]
        at = 0.5
        do = "gps_route"
        points = [[46.9535, 4.2990], [46.9510, 4.2985]]
        [[event]]
        at = 1
        do = "assign"
        assignment = "{tmp_path / 'a.assignment'}"
        [[event]]
        at = 4
        do = "press"
        [[event]]
        at = 12
        do = "press"
        [[event]]
        at = 18
        do = "hold"
        seconds = 3.5
    """))
    caplog.set_level(logging.DEBUG)
    player = simulate(scenario, tmp_path / "device", config_path=config, recipients=[chief[1]])
    assert verdict(player) is None
    assert player.daemons[0].machine.history, "a recording was made"
    assert player.daemons[0].sessions.position.current_fix() is not None, "the GPS had a fix"

    planted = [AGENT.encode(), LAT.encode(), LON.encode(), b"AGE-SECRET-KEY-"]
    scanned = 0
    for folder in (tmp_path / "device", tmpdir):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                scanned += 1
                for value in planted:
                    assert value not in data, f"{value!r} in clear in {path}"
    assert scanned > 10
    logs = caplog.text + capsys.readouterr().err
    for value in planted:
        assert value.decode() not in logs, f"{value!r} in the daemon's log output"

"""Scenarios through the whole daemon on simulated hardware, faster than real time."""

from __future__ import annotations

import textwrap
import time

import pytest

from recorder.cli import SCENARIOS, simulate
from recorder.scenario import ScenarioError, load_scenario, verdict
from recorder.summary import print_summary, recordings
from tests.conftest import SMALL_VIDEO, read_jsonl, write_config


def run(tmp_path, chief, scenario_text=None, scenario_path=None, overrides=None):
    config = write_config(tmp_path / "cfg", {**SMALL_VIDEO, **(overrides or {})})
    if scenario_text is not None:
        scenario_path = tmp_path / "scenario.toml"
        scenario_path.write_text(textwrap.dedent(scenario_text))
    return simulate(scenario_path, tmp_path / "device", config_path=config, recipients=[chief[1]])


def manifest(rec_dir):
    return read_jsonl(rec_dir / "manifest.jsonl")


def test_the_demo_patrol(tmp_path, chief):
    player = run(tmp_path, chief, scenario_path=SCENARIOS / "patrol.toml")
    assert verdict(player) is None, player.failures
    rows = recordings(player)
    assert [r["reason"] for r in rows] == ["intervention", "requested_by_person", "flagrant_delit"]
    # the simulated speaker never says a notice was given (CSI L241-2), only simulated
    assert [r["notice"].get("given") for r in rows] == ["simulated", "simulated", False]
    assert [r["notice"]["heard"]["verdict"] for r in rows[:2]] == [True, True]
    assert rows[2]["notice"]["skipped"] == "flagrant_delit"
    assert len(rows[0]["bookmarks"]) == 1 and len(rows[2]["bookmarks"]) == 1
    assert all(r["stop_reason"] == "stopped by the agent" for r in rows)
    assert all(r["segments"] and r["segments"] >= 5 for r in rows)
    refusals = player.daemons[0].machine.refusals
    assert len(refusals) == 1 and "outside" in refusals[0][1]
    spool = tmp_path / "device" / "spool"
    for row in rows:
        lines = manifest(spool / row["id"])
        assert lines[0]["event"] == "opened" and lines[-1]["event"] == "closed"
    # The events reach the encrypted metadata, in the segments they happened in.
    from recorder.evidence.age import load_identities
    from recorder.evidence.metadata import decrypt_metadata
    identities = load_identities(chief[0])
    first = spool / rows[0]["id"]
    events = [e for meta in sorted(first.glob("*.meta.age"))
              for e in decrypt_metadata(meta, identities).get("events", [])]
    kinds = [e.get("kind") for e in events]
    assert "notice_played" in kinds and "bookmark" in kinds and "trigger" in kinds, kinds
    assert "notice_checked" in kinds, kinds
    # the last segment's metadata carries the notice as checked: simulated, heard, its text
    last = decrypt_metadata(sorted(first.glob("*.meta.age"))[-1], identities)["recording"]["notice"]
    assert last["given"] == "simulated" and last["heard"]["verdict"] is True and last["heard"]["peak"] > 0.8
    assert last["text"].startswith("Attention")
    lines = []
    print_summary(player, out=lines.append)
    text = "\n".join(lines)
    assert "requested_by_person" in text and "skipped (flagrant delit)" in text
    assert "simulated speaker only, not given" in text and "microphone: heard" in text


def test_critical_battery_seals_and_closes_the_recording(tmp_path, chief):
    player = run(tmp_path, chief, """
        [scenario]
        duration_s = 40
        [[event]]
        at = 2
        do = "press"
        [[event]]
        at = 15
        do = "battery"
        percent = 3
        [[event]]
        at = 30
        do = "expect"
        state = "armed"
        recordings = 1
    """)
    assert verdict(player) is None, player.failures
    rec = player.daemons[0].machine.history[0]
    assert rec.stop_reason == "battery critical"
    assert 15 <= rec.stopped - player.t0 <= 21
    assert "battery_critical" in player.daemons[0].warnings


def test_a_broken_speaker_never_refuses_a_start_and_says_the_notice_was_not_played(tmp_path, chief):
    player = run(tmp_path, chief, """
        [scenario]
        duration_s = 20
        [[event]]
        at = 1
        do = "speaker_failure"
        [[event]]
        at = 2
        do = "press"
        [[event]]
        at = 6
        do = "expect"
        state = "recording"
    """)
    assert verdict(player) is None, player.failures
    rec = recordings(player)[0]
    assert rec["notice"]["given"] is False and "speaker" in rec["notice"]["failed"]
    timeline = player.daemons[0].machine.feedback.timeline
    assert any(c.why == "notice_not_played" for c in timeline)


def test_a_full_disk_refuses_the_start_with_the_error_pattern(tmp_path, chief):
    player = run(tmp_path, chief, """
        [scenario]
        duration_s = 10
        [[event]]
        at = 1
        do = "disk_fill"
        free_mb = 10
        [[event]]
        at = 2
        do = "press"
        [[event]]
        at = 5
        do = "expect"
        state = "armed"
        recordings = 0
        refusals = 1
    """)
    assert verdict(player) is None, player.failures
    assert "storage full" in player.daemons[0].machine.refusals[0][1]


def test_a_power_cut_mid_recording_is_recovered_at_the_next_start(tmp_path, chief):
    player = run(tmp_path, chief, """
        [scenario]
        duration_s = 30
        [[event]]
        at = 2
        do = "press"
        [[event]]
        at = 9.3
        do = "power_cut"
        restart_after = 5
        [[event]]
        at = 20
        do = "expect"
        state = "armed"
    """)
    assert verdict(player) is None, player.failures
    assert len(player.daemons) == 2
    assert player.daemons[1].recovered, "the second start recovered the cut recording"
    spool = tmp_path / "device" / "spool"
    (rec_dir,) = [p for p in spool.iterdir() if p.is_dir()]
    assert manifest(rec_dir)[-1]["event"] == "recovered"


def test_expectations_that_fail_are_reported(tmp_path, chief):
    player = run(tmp_path, chief, """
        [scenario]
        duration_s = 5
        [[event]]
        at = 1
        do = "expect"
        state = "recording"
    """)
    assert "expected state = 'recording', found 'armed'" in verdict(player)


def test_malformed_scenarios_name_the_event_and_field(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(textwrap.dedent("""
        [scenario]
        duration_s = 10
        [[event]]
        at = 1
        do = "jump"
        [[event]]
        at = 50
        do = "press"
        [[event]]
        at = 2
        do = "hold"
        secs = 3
    """))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    text = str(info.value)
    assert "event #1: do = 'jump'" in text
    assert "event #2 (press): at = 50" in text
    assert "event #3 (hold): unknown field 'secs'" in text
    assert "event #3 (hold): missing field(s) seconds" in text


def test_the_provisioned_camera_id_wins_over_the_fleet_configuration(tmp_path, chief):
    from tools.cli import main as pieton
    assert pieton(["provision", "--state-dir", str(tmp_path / "device"), "--camera-id", "CAM-AUTUN-07"]) == 0
    player = run(tmp_path, chief, """
        [scenario]
        duration_s = 12
        [[event]]
        at = 1
        do = "press"
    """)
    (rec,) = recordings(player)
    assert rec["id"].startswith("CAM-AUTUN-07_")
    assert manifest(tmp_path / "device" / "spool" / rec["id"])[0]["camera_id"] == "CAM-AUTUN-07"


@pytest.mark.parametrize("start", ["", 'start = "now"'])
def test_a_scenario_is_dated_when_it_is_played_unless_it_names_its_start(tmp_path, start):
    # A fixed past date would put every simulated recording past its month of retention
    # (R241-13) once that month is over: the vault would erase them at ingest.
    path = tmp_path / "s.toml"
    path.write_text(f"[scenario]\n{start}\nduration_s = 5\n")
    before = time.time()
    assert before - 1 <= load_scenario(path).start_epoch <= time.time()
    path.write_text("[scenario]\nstart = 2026-11-27T14:00:00Z\nduration_s = 5\n")
    assert load_scenario(path).start_epoch == 1795788000.0
    path.write_text('[scenario]\nstart = "yesterday"\nduration_s = 5\n')
    with pytest.raises(ScenarioError, match=r"start = 'yesterday': must be \"now\" or a UTC date-time"):
        load_scenario(path)

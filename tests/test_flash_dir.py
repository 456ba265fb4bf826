"""`pieton config flash --dir` through a running simulated camera whose [link] card_dir is
the card: the camera takes the bundle from the card while it runs, moves it to
inbox/refused/ or inbox/done/, writes its signed answer on the card, and
`pieton config answer --dir` prints it (applied, or refused and why, with the versions)."""

from __future__ import annotations

import json

import pytest
from selftest_bench import OTHER_PINS, Bench

from recorder.bundle import public_hex
from tests.tech_device import make_config, sign, technician
from tools.cli import main


@pytest.fixture
def camera(tmp_path, chief):
    _, tech = technician(tmp_path)
    card = tmp_path / "card"
    card.mkdir()
    overrides = {**OTHER_PINS, "link": {"card_dir": str(card)}, "keys": {"technicians": [public_hex(tech)]}}
    bench = Bench(tmp_path / "camera", chief[1], overrides)
    try:
        yield bench, card, tech
    finally:
        bench.close()


def test_a_refused_then_an_applied_bundle_are_answered_on_the_card(camera, tmp_path, chief, capsys):
    bench, card, tech = camera
    camera_key = bench.daemon.spool.signer.public_key_hex
    # A bundle signed by a key the camera does not trust: refused, and the card says why.
    _, stranger = technician(tmp_path, "stranger")
    untrusted = tmp_path / "untrusted.pbn"
    untrusted.write_bytes(sign(make_config(tmp_path / "v1", [public_hex(stranger)], chief[1]), stranger, 1))
    assert main(["config", "flash", str(untrusted), "--dir", str(card)]) == 0
    said = capsys.readouterr().out
    assert "[link] card_dir" in said and f"pieton config answer --dir {card}" in said
    assert main(["config", "answer", "--dir", str(card)]) == 1
    assert "NO ANSWER YET" in capsys.readouterr().out
    assert bench.wait_until(lambda: list((card / "inbox" / "answers").glob("*.json")), 15)
    assert main(["config", "answer", "--dir", str(card), "--camera-key", camera_key]) == 1
    out = capsys.readouterr().out
    assert "REFUSED [unknown-signer]" in out and "is not in [keys] technicians" in out, out
    assert "offered version 1, camera at version 0 before, 0 after" in out and "signed by the camera" in out
    assert [p.name for p in (card / "inbox" / "refused").iterdir()] == ["config-v000001-CAM-SIM-001.pbn"]
    assert not (card / "inbox" / "done").exists()
    # A bundle from the trusted technician: applied, and the answer says so.
    trusted = tmp_path / "trusted.pbn"
    trusted.write_bytes(sign(make_config(tmp_path / "v2", [public_hex(tech)], chief[1]), tech, 2))
    assert main(["config", "flash", str(trusted), "--dir", str(card)]) == 0
    capsys.readouterr()
    assert bench.wait_until(lambda: len(list((card / "inbox" / "answers").glob("*.json"))) == 2, 15)
    assert bench.daemon.updater.running_version == 2 and bench.daemon.restart_requested
    assert main(["config", "answer", "--dir", str(card), "--camera-key", camera_key]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].startswith("config-v000002-CAM-SIM-001.pbn: accepted [applied]")
    assert "offered version 2, camera at version 0 before, 2 after" in out[-1] and "signed by the camera" in out[-1]
    assert [p.name for p in (card / "inbox" / "done").iterdir()] == ["config-v000002-CAM-SIM-001.pbn"]
    events = [json.loads(line)["event"] for line in (bench.state / "spool" / "journal.jsonl").read_text().splitlines()]
    assert events.count("config refused") == 1 and events.count("config applied") == 1


def test_an_answer_altered_on_the_card_is_not_the_cameras(camera, tmp_path, chief, capsys):
    bench, card, tech = camera
    bundle = tmp_path / "v1.pbn"
    bundle.write_bytes(sign(make_config(tmp_path / "v1", [public_hex(tech)], chief[1]), tech, 1))
    assert main(["config", "flash", str(bundle), "--dir", str(card)]) == 0
    assert bench.wait_until(lambda: list((card / "inbox" / "answers").glob("*.json")), 15)
    (path,) = (card / "inbox" / "answers").glob("*.json")
    doc = json.loads(path.read_text())
    doc["message"] = "all good, trust me"
    path.write_text(json.dumps(doc))
    capsys.readouterr()
    key = bench.daemon.spool.signer.public_key_hex
    assert main(["config", "answer", "--dir", str(card), "--camera-key", key]) == 1
    assert "NOT signed by that camera's key" in capsys.readouterr().out
    assert main(["config", "answer", "--dir", str(card), "--camera-key", "xyz"]) == 2
    assert "not a device public key" in capsys.readouterr().err
    path.write_text("{not json")
    assert main(["config", "answer", "--dir", str(card)]) == 1
    assert "unreadable answer" in capsys.readouterr().out

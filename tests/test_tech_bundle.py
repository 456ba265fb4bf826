"""Signed configuration bundles and their acceptance by the device (no serial link here)."""

from __future__ import annotations

import wave

import pytest

from recorder.bundle import MAX_BUNDLE_BYTES, public_hex, read_bundle
from recorder.config_update import ConfigUpdater, installed_config
from recorder.errors import ConfigError
from tests.tech_device import forge, make_config, provisioned, sign, technician
from tools.cli import main


@pytest.fixture
def setup(tmp_path, chief):
    return provisioned(tmp_path, chief)


def refused(device, data, code):
    before = device.snapshot()
    answer = device.updater.offer(data)
    assert answer.code == code, answer
    assert not answer.ok
    assert device.snapshot() == before  # nothing changed on the device
    last = device.events()[-1]
    assert last["event"] == "config refused" and last["data"]["code"] == code
    return answer


def test_bundle_holds_the_toml_every_referenced_file_and_a_signature(setup):
    tmp_path, _, tech, recipient, device = setup
    new = make_config(tmp_path / "v1", [public_hex(tech)], recipient)
    data = sign(new, tech, 1)
    bundle = read_bundle(data)
    assert [f.name for f in bundle.files] == ["pieton.toml", "notice-fr.wav", "communes/autun.geojson"]
    assert bundle.version == 1 and bundle.target == ("device", "CAM-SIM-001")
    assert bundle.signer == tech.public_key().public_bytes_raw().hex()
    notice = bundle.file("notice-fr.wav")
    assert notice.encoding == "opus" and notice.size * 8 < (new.parent / "notice-fr.wav").stat().st_size
    # re-signing an unchanged notice gives the same bytes, so a flash can leave it out
    assert read_bundle(sign(new, tech, 2)).file("notice-fr.wav").sha256 == notice.sha256

    answer = device.updater.offer(data)
    assert answer.code == "applied", answer
    installed = device.state / "config" / "current" / "notice-fr.wav"
    with wave.open(str(installed)) as wav:  # decoded back to a WAV the speaker reads
        assert wav.getframerate() == 22050 and wav.getnchannels() == 1
        assert 2.9 < wav.getnframes() / 22050 < 3.2
    config, version = installed_config(device.state)
    assert version == 1 and config.signed and config.digest == bundle.digest
    last = device.events()[-1]
    assert last["event"] == "config applied"
    assert last["data"]["version"] == 1 and last["data"]["signer"] == bundle.signer


def test_every_bad_bundle_is_refused_with_its_reason_and_nothing_changes(setup):
    tmp_path, _, tech, recipient, device = setup
    tech_hex = public_hex(tech)
    good = sign(make_config(tmp_path / "v1", [tech_hex], recipient), tech, 1)

    flipped = bytearray(good)
    flipped[12 + int.from_bytes(good[8:12], "big") + 10] ^= 1  # inside the signature
    refused(device, bytes(flipped), "bad-signature")

    altered = bytearray(good)
    altered[-20] ^= 1  # inside the last file
    refused(device, bytes(altered), "file-altered")

    _, stranger = technician(tmp_path, "stranger")
    refused(device, sign(make_config(tmp_path / "s", [tech_hex], recipient), stranger, 1), "unknown-signer")
    refused(device, sign(make_config(tmp_path / "d", [tech_hex], recipient, camera="CAM-OTHER"), tech, 1,
                         device="CAM-OTHER"), "wrong-device")
    refused(device, sign(make_config(tmp_path / "f", [tech_hex], recipient, fleet="beaune-pm"), tech, 1,
                         fleet="beaune-pm"), "wrong-fleet")
    invalid = (tmp_path / "v1" / "pieton.toml").read_bytes().replace(b"width = 1280", b"width = 99")
    refused(device, forge(tech, good, toml=invalid), "config-invalid")
    refused(device, forge(tech, good, drop="communes/autun.geojson"), "file-missing")
    refused(device, b"PIETONB1" + b"\xff" * 40, "bad-format")
    refused(device, b"garbage, not a bundle", "bad-format")
    refused(device, good[:-30], "bad-format")
    refused(device, b"PIETONB1" + bytes(MAX_BUNDLE_BYTES), "oversize")
    thin = read_bundle(good).to_bytes(omit={read_bundle(good).file("notice-fr.wav").sha256})
    refused(device, thin, "file-missing")  # the device has no such notice to fill it from

    assert device.updater.offer(good).code == "applied"
    refused(device, good, "not-newer")  # replay
    refused(device, sign(tmp_path / "v1" / "pieton.toml", tech, 1), "not-newer")  # same version, re-signed


def test_a_new_bundle_revokes_a_key_and_rollback_is_refused(setup):
    tmp_path, _, tech, recipient, device = setup
    _, second = technician(tmp_path, "second")
    keys = [public_hex(tech), public_hex(second)]
    assert device.updater.offer(sign(make_config(tmp_path / "v2", keys, recipient), second, 2)).code == "unknown-signer"
    assert device.updater.offer(sign(make_config(tmp_path / "v1", keys, recipient), tech, 1)).code == "applied"
    # now `second` is trusted; it signs v3, which drops the first technician's key
    assert device.updater.offer(sign(make_config(tmp_path / "v3", keys[1:], recipient), second, 3)).code == "applied"
    assert device.events()[-1]["data"]["revoked"] == [keys[0]]
    refused(device, sign(make_config(tmp_path / "v4", keys, recipient), tech, 4), "revoked-signer")
    refused(device, sign(make_config(tmp_path / "v2b", keys[1:], recipient), second, 2), "not-newer")  # rollback
    previous = (device.state / "config" / "previous").readlink()
    assert str(previous) == "v000001" and (device.state / "config" / "v000001" / "bundle.pbn").is_file()


def test_a_bundle_offered_during_a_recording_waits_for_its_end(setup):
    tmp_path, _, tech, recipient, device = setup
    tech_hex = public_hex(tech)
    first = device.updater.running
    device.recording.append("recording")
    answer = device.updater.offer(sign(make_config(tmp_path / "v1", [tech_hex], recipient, video={"fps": 25}), tech, 1))
    assert answer.code == "queued"
    assert device.updater.running is first and device.updater.running_version == 0
    assert device.updater.apply_pending() is None  # still recording
    # a restart keeps the queued bundle (it is on the device's storage, not in RAM)
    again = ConfigUpdater(device.state, first, device.journal, is_recording=lambda: False)
    assert again.pending is not None and again.pending[0].version == 1
    # while it waits, a newer one replaces it; the queued one cannot be offered again
    v2 = sign(make_config(tmp_path / "v2", [tech_hex], recipient, video={"fps": 25}), tech, 2)
    assert device.updater.offer(sign(tmp_path / "v1" / "pieton.toml", tech, 1)).code == "not-newer"
    assert device.updater.offer(v2).code == "queued"
    assert sorted(p.name for p in (device.state / "config").glob("v*")) == ["v000002"]
    device.recording.clear()
    applied = []
    device.updater.on_applied = applied.append
    config = device.updater.apply_pending()
    assert config.video.fps == 25 and applied == [config] and device.updater.running_version == 2
    assert [e["event"] for e in device.events()] == ["config refused", "config applied"]


def test_sd_card_pickup_at_start(setup, capsys):
    tmp_path, tech_path, tech, recipient, device = setup
    new = make_config(tmp_path / "v5", [public_hex(tech)], recipient)
    out = tmp_path / "v5.pbn"
    assert main(["config", "sign", str(new), "--key", str(tech_path), "--version", "5",
                 "--device", "CAM-SIM-001", "--out", str(out)]) == 0
    card = tmp_path / "card"
    card.mkdir()
    assert main(["config", "flash", str(out), "--dir", str(card)]) == 0
    (answer,) = device.updater.pickup_inbox(card)
    assert answer[1].code == "applied" and device.updater.running_version == 5
    assert not list((card / "inbox").glob("*.pbn")) and list((card / "inbox" / "done").glob("*.pbn"))
    assert device.updater.pickup_inbox(card) == []  # offered once


def test_config_check_says_which_check_failed(setup, capsys):
    tmp_path, tech_path, tech, recipient, device = setup
    new = make_config(tmp_path / "v1", [public_hex(tech)], recipient)
    running = tmp_path / "running" / "pieton.toml"
    out = tmp_path / "v1.pbn"
    assert main(["config", "sign", str(new), "--key", str(tech_path), "--version", "1",
                 "--device", "CAM-SIM-001", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["config", "check", str(out), "--running", str(running)]) == 0
    text = capsys.readouterr().out
    for step in ("structure: OK", "signature: OK", "trust: OK", "target: OK", "version: OK",
                 "completeness: OK", "configuration: OK"):
        assert step in text

    data = bytearray(out.read_bytes())
    data[-5] ^= 0x40
    out.write_bytes(bytes(data))
    assert main(["config", "check", str(out)]) == 1
    assert "files: FAILED [file-altered]" in capsys.readouterr().err

    _, stranger = technician(tmp_path, "stranger")
    (tmp_path / "x.pbn").write_bytes(sign(new, stranger, 1))
    assert main(["config", "check", str(tmp_path / "x.pbn"), "--running", str(running)]) == 1
    assert "trust: FAILED [unknown-signer]" in capsys.readouterr().err

    invalid = new.read_bytes().replace(b"fps = 30", b"fps = 500")
    (tmp_path / "bad.pbn").write_bytes(forge(tech, sign(new, tech, 1), toml=invalid))
    assert main(["config", "check", str(tmp_path / "bad.pbn")]) == 2
    err = capsys.readouterr().err
    assert "configuration: FAILED [config-invalid]" in err and "[video] fps = 500" in err


def test_sign_refuses_what_it_cannot_vouch_for(setup, capsys):
    tmp_path, tech_path, tech, recipient, _ = setup
    new = make_config(tmp_path / "v1", [public_hex(tech)], recipient)
    (new.parent / "notice-fr.wav").unlink()
    out = tmp_path / "out.pbn"
    common = ["--key", str(tech_path), "--version", "1", "--out", str(out)]
    assert main(["config", "sign", str(new), *common, "--device", "CAM-SIM-001"]) == 2
    err = capsys.readouterr().err
    assert "[file-missing]" in err and "notice-fr.wav" in err
    other = make_config(tmp_path / "v2", [public_hex(tech)], recipient)
    assert main(["config", "sign", str(other), *common, "--device", "CAM-OTHER"]) == 2
    assert "[wrong-device]" in capsys.readouterr().err
    assert main(["config", "sign", str(other), *common[:2], "--version", "0", *common[4:], "--fleet", "autun-pm"]) == 2
    assert "version 0" in capsys.readouterr().err
    assert main(["config", "sign", str(other), "--key", str(other), *common[2:], "--fleet", "autun-pm"]) == 2
    assert "[bad-key]" in capsys.readouterr().err
    assert not out.exists()


def test_an_installed_bundle_that_no_longer_verifies_stops_the_start(setup):
    tmp_path, _, tech, recipient, device = setup
    new = make_config(tmp_path / "v1", [public_hex(tech)], recipient)
    assert device.updater.offer(sign(new, tech, 1)).code == "applied"
    installed = device.state / "config" / "current" / "bundle.pbn"
    data = bytearray(installed.read_bytes())
    data[-3] ^= 1
    installed.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=r"bundle.pbn: installed configuration does not verify \[file-altered\]"):
        installed_config(device.state)
    with pytest.raises(ConfigError):
        ConfigUpdater(device.state, device.updater.running, device.journal)

"""A notice damaged on the card after installation (CSI L241-2): cut short, bytes changed,
replaced by silence, deleted. It is never played as if it were the notice: an installed
bundle's copy is compared with the signed bundle at every load and restored from it (the
repair journaled, the configuration in force kept); a plain configuration's notice is
measured at start, and a truncated WAV is a fault that refuses starts."""

from __future__ import annotations

import numpy as np
import pytest

from recorder.bundle import public_hex, read_bundle
from recorder.config import load_config
from recorder.config_update import ConfigUpdater, load_device_config
from recorder.errors import ConfigError
from recorder.notice import Notice, load_wav
from tests.conftest import SMALL_VIDEO, write_config
from tests.notice_rig import assert_a_press_is_refused, faulty_notice_daemon
from tests.tech_device import make_config, provisioned, sign
from tests.test_notice_start import damage as damage_notice

NOTICE = "notice-fr.wav"


def damage(path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":     # a power cut while the card wrote it
        path.write_bytes(data[: len(data) // 3])
    elif how == "changed":     # bytes flipped across the speech: still a WAV, still "speech"
        changed = bytearray(data)
        for i in range(200, len(changed), 97):
            changed[i] ^= 0x55
        path.write_bytes(bytes(changed))
    else:                      # missing, or silence: a WAV that plays and tells no one anything
        assert path.name == NOTICE
        damage_notice(path.parent, how)


def flashed(tmp_path, chief):
    """A device that accepted bundles v1 and v2 (v2 in force); returns it and v2's notice bytes."""
    tmp_path, _, tech, recipient, device = provisioned(tmp_path, chief)
    for version in (1, 2):
        config = make_config(tmp_path / f"v{version}", [public_hex(tech)], recipient, video={"fps": 20 + version})
        assert device.updater.offer(sign(config, tech, version)).code == "applied"
    current = (device.state / "config" / "current").resolve()
    signed = read_bundle((current / "bundle.pbn").read_bytes()).file(NOTICE).installed_bytes()
    assert (current / NOTICE).read_bytes() == signed
    return tmp_path, device, current, signed


@pytest.mark.parametrize("how", ["missing", "truncated", "changed", "silent"])
def test_an_installed_notice_damaged_on_the_card_is_restored_from_the_signed_bundle(tmp_path, chief, how):
    tmp_path, device, current, signed = flashed(tmp_path, chief)
    damage(current / NOTICE, how)
    config, version = load_device_config(tmp_path / "running" / "pieton.toml", device.state)
    # the configuration in force stays (no fallback to v1 for a file the bundle still holds)
    assert version == 2 and config.video.fps == 22 and not config.notice_fault
    assert (current / NOTICE).read_bytes() == signed
    notice = Notice(config, None)   # what the daemon plays: the signed notice, whole
    samples, rate = load_wav(current / NOTICE)
    assert notice.rate == rate and np.array_equal(notice.samples, samples) and notice.duration > 2.0
    # the repair reaches the device journal at the next start, naming the file and the damage
    ConfigUpdater(device.state, config, device.journal)
    restored = [e["data"] for e in device.events() if e["event"] == "config files restored"]
    assert len(restored) == 1 and restored[0]["file"] == NOTICE and restored[0]["version"] == 2
    assert {"missing": "missing", "truncated": "truncated"}.get(how, "altered") in restored[0]["problem"]
    assert not (device.state / "config" / "repaired.json").exists()


def test_an_undamaged_installed_notice_is_left_alone_and_nothing_is_journaled(tmp_path, chief):
    tmp_path, device, current, signed = flashed(tmp_path, chief)
    before = (current / NOTICE).stat().st_mtime_ns
    config, version = load_device_config(tmp_path / "running" / "pieton.toml", device.state)
    assert version == 2 and (current / NOTICE).stat().st_mtime_ns == before
    assert not (device.state / "config" / "repaired.json").exists()


def test_a_truncated_plain_notice_is_an_error_at_check_and_a_fault_at_start(tmp_path, chief, serial_pty):
    path = write_config(tmp_path / "cfg", {**SMALL_VIDEO, "link": {"serial_port": serial_pty}})
    damage(tmp_path / "cfg" / NOTICE, "truncated")
    with pytest.raises(ConfigError, match=r"\[notice\] audio.*truncated"):
        load_config(path)
    config, version = load_device_config(path, tmp_path / "state")
    assert version == 0 and "truncated" in config.notice_fault[0]
    with faulty_notice_daemon(config, tmp_path / "state", chief[1]) as daemon:
        assert "truncated" in daemon.status()["faults"]["notice"]
        assert daemon.listener is not None, "the serial link is up: a new bundle can be flashed"
        assert_a_press_is_refused(daemon)

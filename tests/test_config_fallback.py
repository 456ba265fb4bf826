"""A configuration the camera cannot run: refused before it is accepted (the device
rehearses it), and when one still fails at load or at start, the previous one comes back,
journaled, keeping the failed version as a floor and every revocation made since; with
nothing to fall back to, the status and the serial link stay up for a new bundle."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from drivers.signer import FileSigner
from drivers.simcable import PtyCable
from recorder.assignment import AssignmentKeeper, sign_assignment
from recorder.bundle import materialise, public_hex, read_bundle
from recorder.config_update import ConfigUpdater, fall_back, load_device_config
from recorder.errors import BundleError
from tests.conftest import device_config, read_jsonl, write_config
from tests.tech_device import forge, make_config, make_device, provisioned, sign, technician


@pytest.fixture
def setup(tmp_path, chief):
    return provisioned(tmp_path, chief)


def refused_unchanged(device, data):
    before = device.snapshot()
    answer = device.updater.offer(data)
    assert answer.code == "config-invalid", answer
    assert device.snapshot() == before
    last = device.events()[-1]
    assert last["event"] == "config refused" and last["data"]["code"] == "config-invalid"
    return answer


def with_nan_keyframes(tech, bundle: bytes) -> bytes:
    """The bundle re-signed with keyframe_interval_s = nan, as a careless technician's tool
    (or an older one) could make it."""
    toml = read_bundle(bundle).files[0].data.replace(b"keyframe_interval_s = 1.0", b"keyframe_interval_s = nan")
    assert b"= nan" in toml
    return forge(tech, bundle, toml=toml)


@pytest.mark.parametrize("video, part", [
    ("nan", "keyframe_interval_s"),            # the schema refuses it (the rehearsal did before)
    ({"width": 321}, "camera"),                # passes the schema, cannot run
])
def test_a_bundle_the_camera_cannot_run_is_refused_before_it_is_accepted(setup, video, part):
    tmp_path, _, tech, recipient, device = setup
    overrides = {"video": video} if isinstance(video, dict) else {}
    bundle = sign(make_config(tmp_path / "bad", [public_hex(tech)], recipient, **overrides), tech, 1)
    if video == "nan":
        bundle = with_nan_keyframes(tech, bundle)
    answer = refused_unchanged(device, bundle)
    assert part in answer.message or "cannot run" in answer.message
    good = sign(make_config(tmp_path / "good", [public_hex(tech)], recipient), tech, 1)
    assert device.updater.offer(good).code == "applied"


@pytest.fixture
def small_card(tmp_path):
    """The camera's state on a 64 MB card (a tmpfs)."""
    mnt = tmp_path / "card"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_min_free_mb_larger_than_the_whole_card_is_refused(tmp_path, chief, small_card):
    """The schema allows up to 16384 MB; on a 64 MB card, 100 MB could never be free."""
    _, tech = technician(tmp_path)
    _, recipient = chief
    device = make_device(small_card / "state", make_config(tmp_path / "running", [public_hex(tech)], recipient))
    assert shutil.disk_usage(device.state).total < 100_000_000
    bundle = sign(make_config(tmp_path / "bad", [public_hex(tech)], recipient, storage={"min_free_mb": 100}), tech, 1)
    answer = refused_unchanged(device, bundle)
    assert "min_free_mb = 100" in answer.message and "no recording could ever start" in answer.message
    good = sign(make_config(tmp_path / "good", [public_hex(tech)], recipient, storage={"min_free_mb": 10}), tech, 1)
    assert device.updater.offer(good).code == "applied"


def _install_v1_v2(tmp_path, tech, second, recipient, device):
    keys = [public_hex(tech), public_hex(second)]
    assert device.updater.offer(sign(make_config(tmp_path / "v1", keys, recipient), tech, 1)).code == "applied"
    # v2, signed by the second technician, revokes the first one's key
    assert device.updater.offer(sign(make_config(tmp_path / "v2", keys[1:], recipient), second, 2)).code == "applied"
    return keys


def test_an_installed_bundle_that_no_longer_loads_falls_back_keeping_floor_and_revocations(setup):
    tmp_path, _, tech, recipient, device = setup
    _, second = technician(tmp_path, "second")
    keys = _install_v1_v2(tmp_path, tech, second, recipient, device)
    installed = device.state / "config" / "current" / "bundle.pbn"
    data = bytearray(installed.read_bytes())
    data[-3] ^= 1                       # the card went bad under the running bundle
    installed.write_bytes(bytes(data))

    config, version = load_device_config(tmp_path / "running" / "pieton.toml", device.state)
    assert version == 1 and list(config.keys.technicians) == keys
    updater = ConfigUpdater(device.state, config, device.journal)
    fallback = device.events()[-1]
    assert fallback["event"] == "config fallback"
    assert fallback["data"]["failed_version"] == 2 and fallback["data"]["version"] == 1
    assert "does not verify" in fallback["data"]["reason"]
    assert updater.running_version == 1 and updater.version_floor == 2
    assert not (device.state / "config" / "fallback.json").exists(), "journaled once"
    # v1 trusts the first technician again, but its key was revoked since: never trusted again
    assert updater.offer(sign(make_config(tmp_path / "v3a", keys, recipient), tech, 3)).code == "revoked-signer"
    # the failed version is the floor: replaying it is refused
    assert updater.offer(sign(make_config(tmp_path / "v2b", keys[1:], recipient), second, 2)).code == "not-newer"
    assert updater.offer(sign(make_config(tmp_path / "v3", keys[1:], recipient), second, 3)).code == "applied"


def test_a_fallback_never_trusts_a_key_the_failed_bundle_revoked(setup):
    """v2, signed by B, revokes A and then fails at start. Back on v1, which lists A and
    B, A may sign nothing (a bundle, or an assignment: the keeper asks the same list); B
    may, above the failed version."""
    tmp_path, _, a, recipient, device = setup
    _, b = technician(tmp_path, "b")
    ab = [public_hex(a), public_hex(b)]
    assert device.updater.offer(sign(make_config(tmp_path / "v1", ab, recipient), a, 1)).code == "applied"
    assert device.updater.offer(sign(make_config(tmp_path / "v2", ab[1:], recipient), b, 2)).code == "applied"
    note = fall_back(device.state, "start failed: test")
    assert note["failed_version"] == 2 and note["version"] == 1 and note["version_floor"] == 2
    config, version = load_device_config(tmp_path / "running" / "pieton.toml", device.state)
    assert version == 1 and list(config.keys.technicians) == ab
    updater = ConfigUpdater(device.state, config, device.journal)
    assert updater.trusted_technicians() == ab[1:]
    assert updater.offer(sign(make_config(tmp_path / "v3a", ab, recipient), a, 3)).code == "revoked-signer"
    keeper = AssignmentKeeper(device.state, device.journal, "CAM-SIM-001", updater.trusted_technicians)
    until = time.time() + 3600
    assert keeper.offer(sign_assignment(a, "PM-1", "CAM-SIM-001", keeper.counter + 1, until)).code == "unknown-signer"
    assert keeper.offer(sign_assignment(b, "PM-1", "CAM-SIM-001", keeper.counter + 1, until)).code == "assigned"
    assert updater.offer(sign(make_config(tmp_path / "v2b", ab[1:], recipient), b, 2)).code == "not-newer"
    assert updater.offer(sign(make_config(tmp_path / "v3", ab[1:], recipient), b, 3)).code == "applied"


def _wait(predicate, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _status(state):
    result = subprocess.run([sys.executable, "-m", "tools.cli", "ctl", "status", "--state-dir", str(state),
                             "--json"], capture_output=True, text=True, timeout=60)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _run(config, state, recipient, *extra):
    return subprocess.Popen([sys.executable, "-m", "recorder", "--config", str(config), "--state-dir",
                             str(state), "--recipient", recipient, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return err


def test_a_bundle_that_fails_at_start_falls_back_to_the_previous_one(setup):
    """v2 was installed by a version of the software that did not rehearse bundles, and
    the camera cannot run it: the daemon falls back to v1 instead of crashing at every
    start, and says so in its journal and status."""
    tmp_path, _, tech, recipient, device = setup
    keys = [public_hex(tech)]
    assert device.updater.offer(sign(make_config(tmp_path / "v1", keys, recipient), tech, 1)).code == "applied"
    bad = read_bundle(with_nan_keyframes(tech, sign(make_config(tmp_path / "v2", keys, recipient), tech, 2)))
    root = device.state / "config"
    (root / "v000002").mkdir()
    try:
        materialise(bad, root / "v000002")
    except BundleError:
        pass   # today's schema refuses NaN: the files are written all the same, as before
    os.replace(root / "current", root / "previous")
    os.symlink("v000002", root / "current")
    FileSigner.create(device.state / "keys" / "device-signing.key")

    proc = _run(tmp_path / "running" / "pieton.toml", device.state, recipient)
    try:
        assert _wait(lambda: (_status(device.state) or {}).get("state") == "armed"), proc.stderr.read()
        status = _status(device.state)
        assert status["config"]["version"] == 1 and status["config"]["version_floor"] == 2
    finally:
        err = _stop(proc)
    assert proc.returncode == 0, err
    events = [line["event"] for line in read_jsonl(device.state / "spool" / "journal.jsonl")]
    assert "config fallback" in events
    assert os.readlink(root / "current") == "v000001" and not (root / "v000002").exists()


def test_with_nothing_to_fall_back_to_status_and_link_stay_up_for_a_new_bundle(tmp_path, chief):
    """A plain device configuration (real drivers) without the development flag cannot
    start: the daemon serves its status and serial link (recording nothing) and a flashed
    bundle brings it up."""
    _, recipient = chief
    tech_path, tech = technician(tmp_path)
    cable = PtyCable()
    state = tmp_path / "state"
    FileSigner.create(state / "keys" / "device-signing.key")
    plain = write_config(tmp_path / "plain", device_config([public_hex(tech)], [recipient],
                                                           link={"serial_port": cable.device_path}))
    proc = _run(plain, state, recipient)
    try:
        assert _wait(lambda: (_status(state) or {}).get("state") == "maintenance"), proc.stderr.read()
        status = _status(state)
        assert "--unsigned-config" in status["maintenance"] and "link" in status
        bundle = tmp_path / "v1.pbn"
        bundle.write_bytes(sign(make_config(tmp_path / "v1", [public_hex(tech)], recipient,
                                            link={"serial_port": cable.device_path}), tech, 1))
        flash = subprocess.run([sys.executable, "-m", "tools.cli", "config", "flash", str(bundle),
                                "--port", cable.host_path], capture_output=True, text=True, timeout=120)
        assert flash.returncode == 0, flash.stdout + flash.stderr
        assert _wait(lambda: (_status(state) or {}).get("state") == "armed")
        assert _status(state)["config"]["version"] == 1
    finally:
        err = _stop(proc)
        cable.close()
    assert proc.returncode == 0, err
    events = [line["event"] for line in read_jsonl(state / "spool" / "journal.jsonl")]
    assert "start failed" in events and "config applied" in events
